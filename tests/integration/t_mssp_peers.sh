#!/usr/bin/env bash
# t_mssp_peers.sh - the mobile-signature stand-ins on their own, driven with
# curl and openssl as the gateway will drive them (docs/mssp.md): SIM keys
# and certificates from certs/mksim.sh under a fresh demo PKI, one MSSP over
# TLS on 19103, four phones (auto, refuse, ignore, wrong-pin) with control
# endpoints on 19106..19109, an echo peer on 19110 standing in for the
# gateway's QR endpoint.  No gateway runs.
ECHO_ADDR=${ECHO_ADDR:-127.0.0.1:19110}
. "$(dirname "$0")/lib.sh"

PEER="$BUILD_DIR/darvaza-peer"
MSSP_PORT=19103
MSSP="https://localhost:$MSSP_PORT"
CERTS="$WORK/certs"
SIM="$WORK/sim"
SECRET_GW="gw-$(openssl rand -hex 16)"
SECRET_COURT="court-$(openssl rand -hex 16)"
USER_TIMEOUT=4

# Holders: FIN PHONE PIN MODE CONTROL_PORT
A=(1AB2C3D +994500000001 1234 auto 19106)
B=(2BC3D4E +994500000002 2345 refuse 19107)
C=(3CD4E5F +994500000003 3456 ignore 19108)
D=(4DE5F6A +994500000004 4567 wrong-pin 19109)
R=(9ZZZZZ9 +994500000009 9999)   # revoked; no phone runs for it

plan 72

# ---- helpers --------------------------------------------------------------------
# mc METHOD PATH [curl args...]: one request to the MSSP; MST status, MBODY body.
mc() {
    local m=$1 p=$2
    shift 2
    MST=$(curl -sS --http2 --max-time 40 --cacert "$CERTS/root.pem" -X "$m" -o "$WORK/m.body" \
        -w '%{http_code}' "$@" "$MSSP$p" 2>"$WORK/curl.err") || true
    [ -n "$MST" ] || MST=000
    MBODY=$(cat "$WORK/m.body" 2>/dev/null)
}
auth() { printf 'authorization: Bearer %s' "${1:-$SECRET_GW}"; }
# new_hash NAME [BYTES]: random digest in $WORK/NAME.bin; prints its base64.
new_hash() {
    openssl rand "${2:-32}" >"$WORK/$1.bin"
    base64 -w0 <"$WORK/$1.bin"
}
# start KIND PHONE FIN HASH_B64 [TYPE] [TEXT] [SECRET] [RP]: POST /mid/KIND; SID on 200.
start() {
    local body
    body=$(jq -nc --arg rp "${8:-darvaza}" --arg p "$2" --arg f "$3" --arg h "$4" \
        --arg t "${5:-SHA256}" --arg d "${6:-Log in to Darvaza}" \
        '{relying_party:$rp, phone:$p, fin:$f, hash:$h, hash_type:$t, display_text:$d}')
    mc POST "/mid/$1" -H "$(auth "${7:-}")" -H 'content-type: application/json' --data-binary "$body"
    SID=
    [ "$MST" = 200 ] && SID=$(jq -r '.session_id // empty' <<<"$MBODY")
    return 0
}
# state SID [TIMEOUT_MS] [SECRET]: GET /mid/session/SID; result body in $WORK/m.body.
state() { mc GET "/mid/session/$1?timeoutMs=${2:-0}" -H "$(auth "${3:-}")"; }
# wait_complete SID [SECRET]: long-polls until COMPLETE (bounded); leaves the
# answer in MBODY.  SECRET is the relying party's that started the session.
wait_complete() {
    local _
    for _ in 1 2 3 4; do
        state "$1" 10000 "${2:-}"
        [ "$(jq -r .state <<<"$MBODY" 2>/dev/null)" = COMPLETE ] && return 0
    done
    return 1
}
# code_of FILE: the Mobile-ID verification code of a digest, computed here.
code_of() {
    local hex
    hex=$(xxd -p -c 256 "$1")
    printf '%04d' $(( ((0x${hex:0:2} & 0xFC) << 5) | (0x${hex: -2} & 0x7F) ))
}
# raw_to_der HEX OUT: a raw r||s ECDSA signature as DER.
raw_to_der() {
    local n=$((${#1} / 2))
    printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${1:0:$n}" "${1:$n}" \
        >"$2.cnf"
    openssl asn1parse -genconf "$2.cnf" -out "$2" -noout >/dev/null
}
# verify_result JSON_FILE DIGEST_FILE: the result's signature verifies over
# the digest with the public key of the result's certificate.
verify_result() {
    local d
    d=$(mktemp -d "$WORK/v.XXXXXX")
    jq -r .cert "$1" | base64 -d >"$d/c.der" || return 1
    openssl x509 -inform DER -in "$d/c.der" -noout -pubkey >"$d/pub.pem" || return 1
    jq -r .signature "$1" | base64 -d | xxd -p -c 256 >"$d/sig.hex" || return 1
    [ "$(wc -c <"$d/sig.hex")" -eq 129 ] || { echo "signature is not 64 bytes"; return 1; }
    raw_to_der "$(cat "$d/sig.hex")" "$d/sig.der" || return 1
    openssl pkeyutl -verify -pubin -inkey "$d/pub.pem" -in "$2" -sigfile "$d/sig.der"
}
cert_b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
ctl() { # ctl PORT METHOD PATH [JSON]
    if [ -n "${4:-}" ]; then
        curl -sS --http2-prior-knowledge --max-time 10 -X "$2" -H 'content-type: application/json' \
            --data-binary "$4" "http://127.0.0.1:$1$3"
    else
        curl -sS --http2-prior-knowledge --max-time 10 -X "$2" "http://127.0.0.1:$1$3"
    fi
}
shown() { ctl "$1" GET /shown | jq -r "$2"; }
log_count() { grep -c "\"event\":\"$2\"" "$WORK/$1.log" 2>/dev/null || true; }

# ---- PKI and SIMs -------------------------------------------------------------------
"$ROOT/certs/mkpki.sh" "$CERTS" "$WORK/keys" >"$WORK/mkpki.log" 2>&1 || bail "certs/mkpki.sh failed: $(tail -5 "$WORK/mkpki.log")"
ok "certs/mksim.sh makes SIM keys and certificates" "$ROOT/certs/mksim.sh" --revoked "${R[0]}:${R[1]}:${R[2]}" \
    "$CERTS" "$SIM" "${A[0]}:${A[1]}:${A[2]}:Aysel Mammadova" "${B[0]}:${B[1]}:${B[2]}" \
    "${C[0]}:${C[1]}:${C[2]}" "${D[0]}:${D[1]}:${D[2]}"
ext=$(openssl x509 -in "$SIM/sim-${A[0]}.pem" -noout -subject -ext certificatePolicies,keyUsage,authorityInfoAccess,crlDistributionPoints -nameopt RFC2253 2>&1)
like "$ext" "serialNumber=PNOAZ-${A[0]}" "SIM certificate subject carries serialNumber PNOAZ-<FIN>"
like "$ext" "CN=Aysel Mammadova" "SIM certificate subject carries the holder's name"
like "$ext" "Policy: 1\.3\.6\.1\.4\.1\.55555\.1\.1\.2" "SIM certificate has the mobile policy OID"
like "$(tr '\n' ' ' <<<"$ext")" "critical.*Digital Signature, Non Repudiation" "keyUsage critical digitalSignature+nonRepudiation"
like "$ext" "OCSP - URI:http://127\.0\.0\.1:9107/" "AIA names the OCSP responder"
like "$ext" "URI:http://127\.0\.0\.1:9107/mobile\.crl" "CRL distribution point"
ok "SIM certificate chains to the demo root through the mobile CA" \
    openssl verify -CAfile "$CERTS/root.pem" -untrusted "$CERTS/mobile-ca.pem" "$SIM/sim-${A[0]}.pem"
like "$(head -1 "$SIM/sim-${A[0]}.key")" "ENCRYPTED PRIVATE KEY" "SIM key is PKCS#8 encrypted"
nok "the SIM key does not open with a wrong PIN" openssl pkey -in "$SIM/sim-${A[0]}.key" -passin pass:0000 -noout
ok "the SIM key opens with its PIN" openssl pkey -in "$SIM/sim-${A[0]}.key" -passin "pass:${A[2]}" -noout
rser=$(openssl x509 -in "$SIM/sim-${R[0]}.pem" -noout -serial | cut -d= -f2)
is "$(awk -F'\t' -v s="$rser" '$4 == s { print $1 }' "$SIM/mobile-index.txt")" R "the revoked holder is an R line of mobile-index.txt"
is "$(awk -F'\t' '$1 == "V"' "$SIM/mobile-index.txt" | wc -l | tr -d ' ')" 4 "the others are V lines"
like "$(openssl crl -in "$SIM/mobile.crl" -noout -text)" "Serial Number: $rser" "the CRL lists the revoked certificate"

# ---- start the MSSP and the phones ------------------------------------------------------
printf '%s\n' "$SECRET_COURT" >"$WORK/court.secret"
"$PEER" mssp --listen "127.0.0.1:$MSSP_PORT" --tls-cert "$CERTS/peer-tls.pem" --tls-key "$CERTS/peer-tls.key" \
    --phones "$SIM/phones.json" --rp "darvaza:$SECRET_GW" --rp "court:@$WORK/court.secret" \
    --user-timeout "$USER_TIMEOUT" --delivery-timeout 1500ms >"$WORK/mssp.log" 2>&1 &
OWN_PIDS+=($!)
wait_until 15 curl -sf --http2 --max-time 1 --cacert "$CERTS/root.pem" "$MSSP/_mssp/sessions" ||
    bail "the MSSP did not start: $(tail -5 "$WORK/mssp.log")"
for h in A B C D; do
    declare -n hh=$h
    "$PEER" phone --mssp "$MSSP" --cacert "$CERTS/root.pem" --phone "${hh[1]}" \
        --key "$SIM/sim-${hh[0]}.key" --pin "${hh[2]}" --mode "${hh[3]}" --delay-ms 200 \
        --control "127.0.0.1:${hh[4]}" >"$WORK/phone$h.log" 2>&1 &
    OWN_PIDS+=($!)
    wait_until 15 curl -sf --http2-prior-knowledge --max-time 1 "http://127.0.0.1:${hh[4]}/mode" ||
        bail "phone $h did not start: $(tail -5 "$WORK/phone$h.log")"
    unset -n hh
done
pass "MSSP (TLS) and four phones are up"

# ---- relying-party authentication --------------------------------------------------------
H=$(new_hash h1)
mc POST /mid/authentication -H 'content-type: application/json' --data-binary "$(jq -nc --arg h "$H" \
    '{relying_party:"darvaza",phone:"+994500000001",fin:"1AB2C3D",hash:$h,hash_type:"SHA256"}')"
is "$MST $(jq -r .code <<<"$MBODY")" "401 unauthenticated" "no bearer secret: 401"
start authentication "${A[1]}" "${A[0]}" "$H" SHA256 "x" "wrong-secret"
is "$MST" 401 "wrong bearer secret: 401"
start authentication "${A[1]}" "${A[0]}" "$H" SHA256 "x" "$SECRET_COURT" darvaza
is "$MST" 401 "one relying party's secret with another's name: 401"
mc POST /mid/authentication -H "$(auth)" -H 'content-type: application/json' --data-binary '{"relying_party":"darvaza","phone":"+994500000001"}'
is "$MST $(jq -r .code <<<"$MBODY")" "400 bad_request" "incomplete request: 400 problem"

# ---- approved authentication -----------------------------------------------------------------
start authentication "${A[1]}" "${A[0]}" "$H" SHA256 "Log in to e-gov (darvaza)"
is "$MST" 200 "authentication started"
like "$SID" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "session id is a UUID"
SID1=$SID
wait_complete "$SID1"
cp "$WORK/m.body" "$WORK/r1.json"
is "$(jq -r '[.state,.result,.algorithm]|join(" ")' "$WORK/r1.json")" "COMPLETE OK SHA256withECDSA" "approved: COMPLETE OK SHA256withECDSA"
is "$(jq -r .cert "$WORK/r1.json")" "$(cert_b64 "$SIM/sim-${A[0]}.pem")" "the holder's certificate is attached"
ok "the signature (raw r||s) verifies over the hash with the SIM certificate's key" verify_result "$WORK/r1.json" "$WORK/h1.bin"
is "$(shown "${A[4]}" .verification_code)" "$(code_of "$WORK/h1.bin")" "the phone shows the verification code computed from the hash"
is "$(shown "${A[4]}" .display_text)" "Log in to e-gov (darvaza)" "the phone shows the display text"
is "$(shown "${A[4]}" '.session_id + " " + .relying_party + " " + .kind')" "$SID1 darvaza authentication" "the phone shows the session, relying party and kind"
state "$SID1" 0 "$SECRET_COURT"
is "$MST" 404 "another relying party cannot read the session"
mc POST "/phone/%2B994500000001/answer" -H 'content-type: application/json' \
    --data-binary "$(jq -nc --arg s "$SID1" '{session_id:$s,result:"USER_CANCELLED"}')"
is "$MST $(jq -r .code <<<"$MBODY")" "409 session_complete" "an answer to a finished session: 409"

# Signature session with SHA-512, through the @FILE relying party.
H=$(new_hash h2 64)
start signature "${A[1]}" "${A[0]}" "$H" SHA512 "Sign notice 42" "$SECRET_COURT" court
wait_complete "$SID" "$SECRET_COURT"
cp "$WORK/m.body" "$WORK/r2.json"
is "$(jq -r '.result + " " + .algorithm' "$WORK/r2.json")" "OK SHA512withECDSA" "signature session with SHA-512 (relying party secret from a file)"
ok "the SHA-512 signature verifies over the 64-byte digest" verify_result "$WORK/r2.json" "$WORK/h2.bin"
is "$(shown "${A[4]}" .kind)" signature "the phone shows kind signature"

# ---- refusals and failures --------------------------------------------------------------------
H=$(new_hash h3)
start authentication "${B[1]}" "${B[0]}" "$H"
wait_complete "$SID"
is "$(jq -r '.result + " " + (has("signature")|tostring)' <<<"$MBODY")" "USER_CANCELLED false" "refuse: USER_CANCELLED, no signature"
is "$(shown "${B[4]}" .verification_code)" "$(code_of "$WORK/h3.bin")" "the refusing phone showed the right code too"

H=$(new_hash h4)
start authentication "${C[1]}" "${C[0]}" "$H"
SIDC=$SID
t0=$(date +%s.%N)
state "$SIDC" 1000
t1=$(date +%s.%N)
is "$(jq -r .state <<<"$MBODY")" RUNNING "ignored request: RUNNING while the user does nothing"
ok "the long-poll waited for timeoutMs (~1 s)" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 0.9 && b - a < 5) }'
wait_complete "$SIDC"
t2=$(date +%s.%N)
is "$(jq -r .result <<<"$MBODY")" TIMEOUT "ignore: TIMEOUT"
ok "TIMEOUT came after --user-timeout ($USER_TIMEOUT s)" awk -v a="$t0" -v b="$t2" -v u="$USER_TIMEOUT" 'BEGIN { exit !(b - a >= u - 1.5 && b - a < u + 5) }'

H=$(new_hash h5)
start authentication "${A[1]}" "${B[0]}" "$H"
state "$SID" 0
is "$(jq -r '.state + " " + .result' <<<"$MBODY")" "COMPLETE NOT_MID_CLIENT" "phone and FIN that do not match: NOT_MID_CLIENT at once"
start authentication +994509999000 "${A[0]}" "$H"
state "$SID" 0
is "$(jq -r .result <<<"$MBODY")" NOT_MID_CLIENT "unknown phone: NOT_MID_CLIENT"

H=$(new_hash h6)
start authentication "${D[1]}" "${D[0]}" "$H"
wait_complete "$SID"
is "$(jq -r '.result + " " + (has("signature")|tostring)' <<<"$MBODY")" "USER_CANCELLED false" "wrong PIN: no signature, USER_CANCELLED"
is "$(log_count phoneD phone_pin_wrong) $(log_count phoneD phone_pin_blocked)" "3 1" "the phone really tried three wrong PINs, then blocked"
unlike "$(cat "$WORK"/phone?.log "$WORK/mssp.log")" "\"(${A[2]}|${B[2]}|${D[2]})\"|$SECRET_GW|$SECRET_COURT" "no PIN or relying-party secret in the logs"

H=$(new_hash h7)
start authentication "${R[1]}" "${R[0]}" "$H"
wait_complete "$SID"
is "$(jq -r .result <<<"$MBODY")" PHONE_ABSENT "a phone that never fetches the request: PHONE_ABSENT"

# ---- per-phone queue ----------------------------------------------------------------------------
n0=$(shown "${A[4]}" .count)
Hq1=$(new_hash q1)
Hq2=$(new_hash q2)
# The phone takes 3 s over the first request, so the second one must queue
# behind it; poll until the phone has fetched the first (not a fixed sleep).
ctl "${A[4]}" POST /mode '{"delay_ms":3000}' >/dev/null
start authentication "${A[1]}" "${A[0]}" "$Hq1"
Q1=$SID
start signature "${A[1]}" "${A[0]}" "$Hq2" SHA256 "second"
Q2=$SID
qstates=""
for _ in $(seq 50); do
    mc GET "/_mssp/sessions?phone=%2B994500000001"
    qstates=$(jq -r --arg a "$Q1" --arg b "$Q2" '[.[] | select(.session_id == $a or .session_id == $b) | .state] | join(" ")' <<<"$MBODY")
    case $qstates in "ACTIVE "* | "QUEUED "* | "") sleep 0.1 ;; *) break ;; esac
done
ctl "${A[4]}" POST /mode '{"delay_ms":200}' >/dev/null
is "$qstates" "DELIVERED QUEUED" "second request to a busy phone waits in its queue"
wait_complete "$Q1"
cp "$WORK/m.body" "$WORK/q1.json"
wait_complete "$Q2"
cp "$WORK/m.body" "$WORK/q2.json"
is "$(jq -r .result "$WORK/q1.json") $(jq -r .result "$WORK/q2.json")" "OK OK" "both queued requests complete in turn"
ok "first queued signature verifies" verify_result "$WORK/q1.json" "$WORK/q1.bin"
ok "second queued signature verifies" verify_result "$WORK/q2.json" "$WORK/q2.bin"
is "$(shown "${A[4]}" .count)" $((n0 + 2)) "the phone was shown both, one after the other"
ctl "${A[4]}" POST /mode '{"delay_ms":200}' >/dev/null
codes=""
for _ in 1 2 3 4 5 6 7 8 9; do
    start authentication "${C[1]}" "${C[0]}" "$(new_hash qc)"
    codes+="$MST "
done
is "$codes" "200 200 200 200 200 200 200 200 429 " "a phone's queue is bounded (8, then 429)"

# ---- test hooks --------------------------------------------------------------------------------
mc POST /_mssp/tamper -H 'content-type: application/json' --data-binary '{"phone":"+994500000001","mode":"signature"}'
is "$MST" 200 "tamper hook (signature) accepted"
H=$(new_hash t1)
start authentication "${A[1]}" "${A[0]}" "$H"
wait_complete "$SID"
cp "$WORK/m.body" "$WORK/t1.json"
is "$(jq -r .result "$WORK/t1.json")" OK "tampered session still says OK"
nok "but its signature does not verify" verify_result "$WORK/t1.json" "$WORK/t1.bin"
H=$(new_hash t2)
start authentication "${A[1]}" "${A[0]}" "$H"
wait_complete "$SID"
cp "$WORK/m.body" "$WORK/t2.json"
ok "tampering is one-shot: the next signature verifies" verify_result "$WORK/t2.json" "$WORK/t2.bin"

mc POST /_mssp/tamper -H 'content-type: application/json' --data-binary '{"phone":"+994500000001","mode":"certificate"}'
H=$(new_hash t3)
start authentication "${A[1]}" "${A[0]}" "$H"
wait_complete "$SID"
c3=$(jq -r .cert <<<"$MBODY")
ok "tamper certificate: another holder's certificate is attached" \
    test "$c3" != "$(cert_b64 "$SIM/sim-${A[0]}.pem")" -a "$c3" = "$(cert_b64 "$SIM/sim-${B[0]}.pem")"
mc POST /_mssp/tamper -H 'content-type: application/json' \
    --data-binary "$(jq -nc --arg f "$SIM/sim-${R[0]}.pem" '{phone:"+994500000001",mode:"certificate",cert_file:$f}')"
is "$MST" 200 "tamper certificate with cert_file accepted"
start authentication "${A[1]}" "${A[0]}" "$(new_hash t4)"
wait_complete "$SID"
is "$(jq -r .cert <<<"$MBODY")" "$(cert_b64 "$SIM/sim-${R[0]}.pem")" "tamper certificate: the given file's certificate is attached"

mc POST /_mssp/fail -H 'content-type: application/json' --data-binary '{"phone":"+994500000001","result":"DELIVERY_ERROR"}'
start authentication "${A[1]}" "${A[0]}" "$(new_hash f1)"
wait_complete "$SID"
is "$(jq -r .result <<<"$MBODY")" DELIVERY_ERROR "fail hook: the next session ends DELIVERY_ERROR"

mc POST /_mssp/down -H 'content-type: application/json' --data-binary '{"seconds":30}'
start authentication "${A[1]}" "${A[0]}" "$(new_hash d1)"
is "$MST" 503 "down hook: the MSSP answers 503"
mc POST /_mssp/down -H 'content-type: application/json' --data-binary '{"seconds":0}'
start authentication "${A[1]}" "${A[0]}" "$(new_hash d2)"
is "$MST" 200 "down for 0 s: back up"
wait_complete "$SID"

mc POST /_mssp/tamper -H 'content-type: application/json' --data-binary '{"phone":"+994500000001","mode":"everything"}'
is "$MST" 400 "a bad hook request: 400"

# ---- phone control and QR answers -----------------------------------------------------------------
is "$(ctl "${A[4]}" POST /mode '{"mode":"sleep"}' | jq -r .code)" bad_request "phone control refuses an unknown mode"
is "$(ctl "${A[4]}" POST /mode '{"mode":"refuse","delay_ms":0}' | jq -r '.mode + " " + (.delay_ms|tostring)')" "refuse 0" "phone control switches the mode at run time"
start authentication "${A[1]}" "${A[0]}" "$(new_hash m1)"
wait_complete "$SID"
is "$(jq -r .result <<<"$MBODY")" USER_CANCELLED "the switched phone now refuses"

PAYLOAD="darvaza-qr:1:Qr_id-7:3:$(openssl rand -hex 32)"
ORIGIN=https://localhost:8443
scan() { "$PEER" phone scan "$@" --key "$SIM/sim-${A[0]}.key" --cert "$SIM/sim-${A[0]}.pem" --cacert "$CERTS/root.pem"; }
scan "$PAYLOAD" --gateway "$ORIGIN/some/path" --pin "${A[2]}" --print >"$WORK/qr.json" 2>"$WORK/qr.err"
is "$(jq -r '.payload + " " + .algorithm' "$WORK/qr.json")" "$PAYLOAD ES256" "phone scan: answer carries the payload, ES256"
is "$(jq -r .certificate "$WORK/qr.json")" "$(cert_b64 "$SIM/sim-${A[0]}.pem")" "phone scan: answer carries the SIM certificate"
qr_verify() { # ORIGIN: the QR signature verifies over SHA-256(payload) || SHA-256(ORIGIN)
    { printf '%s' "$PAYLOAD" | openssl dgst -sha256 -binary; printf '%s' "$1" | openssl dgst -sha256 -binary; } >"$WORK/qr.msg"
    openssl x509 -in "$SIM/sim-${A[0]}.pem" -noout -pubkey >"$WORK/qr.pub"
    raw_to_der "$(jq -r .signature "$WORK/qr.json" | base64 -d | xxd -p -c 256)" "$WORK/qr.sig" || return 1
    openssl dgst -sha256 -verify "$WORK/qr.pub" -signature "$WORK/qr.sig" "$WORK/qr.msg"
}
ok "phone scan: ES256 over SHA-256(payload) || SHA-256(origin) verifies" qr_verify "$ORIGIN"
nok "phone scan: the signature is bound to the origin" qr_verify https://evil.example
nok "phone scan: a wrong PIN makes no answer" scan "$PAYLOAD" --gateway "$ORIGIN" --pin 0000 --print
nok "phone scan: a malformed payload is refused" scan "darvaza-qr:1:x" --gateway "$ORIGIN" --pin "${A[2]}" --print
start_echo >/dev/null 2>&1 || diag "echo peer did not start"
scan "$PAYLOAD" --gateway "http://$ECHO_ADDR" --pin "${A[2]}" >"$WORK/qr-echo.json" 2>"$WORK/qr-echo.err"
rc=$?
is "$rc $(jq -r '.method + " " + .path' "$WORK/qr-echo.json" 2>/dev/null)" "0 POST /auth/qr/Qr_id-7/answer" "phone scan posts to /auth/qr/{id}/answer"

finish
