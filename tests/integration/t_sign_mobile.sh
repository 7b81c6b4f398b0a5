#!/usr/bin/env bash
# t_sign_mobile.sh - document signing with a mobile signature (DESIGN §4.7,
# docs/signatures.md) through the demo stack's real MSSP, phones and TSA: a
# SIM holder signs a document, the CAdES signature verifies with openssl and
# with POST /api/documents/verify (TOTAL_PASSED, level T), the phone showed
# the same code; refused on the phone, wrong FIN, one request per phone
# (a request nobody polls holds the phone only while it waits), completes
# once, bad input, a revoked SIM certificate, ignored on the phone, the TSA
# down.
. "$(dirname "$0")/lib.sh"

plan 41
stack_start MSSP_USER_TIMEOUT=12 MSSP_DELIVERY_TIMEOUT=10 PHONE_DELAY_MS=400

mapfile -t ON < <(sim_holders '.phone_on and (.sim_revoked | not)')
[ ${#ON[@]} -ge 2 ] || bail "people.json lacks two SIM holders with phones on"
A=${ON[0]} B=${ON[1]}
diag "signers: A=$A B=$B"

DOC="$WORK/notice.txt"
printf 'Court notice 2-4321/2026\nThe hearing is on 12 January 2027 at 10:00.\n' >"$DOC"
DOC_B64=$(base64 -w0 "$DOC")

# sign_start PHONE FIN [DOC_B64]: POST /sign/mobile; SID and SCODE on 202.
sign_start() {
    gw_json POST /sign/mobile "$(jq -nc --arg p "$1" --arg f "$2" --arg d "${3-$DOC_B64}" \
        '{phone:$p, fin:$f, document:$d}')" -H "Origin: $GW_ORIGIN"
    SID='' SCODE=''
    [ "$STATUS" = 202 ] && { SID=$(jb '.id // empty'); SCODE=$(jb '.verification_code // empty'); }
    return 0
}
sign_wait() {
    local _
    for _ in 1 2 3; do
        gw GET "/sign/mobile/$1?wait=10"
        [ "$STATUS" = 200 ] && [ "$(jb .state)" = pending ] || return 0
    done
}
outcome() { printf '%s %s %s' "$STATUS" "$(jb '.state // .code')" "$(jb '.result // empty')"; }

# The signature carries the signer's certificate and the mobile signature
# CA, so a verifier needs only the root.
# ---- approved ------------------------------------------------------------------------
# The phone approves after 3 s: the second request below comes while the
# first still waits on it (a request that has ended no longer holds the phone).
phone_ctl "$A" POST /mode '{"mode":"auto","delay_ms":3000}' >/dev/null
sign_start "$(phone_of "$A")" "$A"
is "$STATUS" 202 "POST /sign/mobile -> 202"
like "$SCODE" '^[0-9]{4}$' "the answer carries a 4-digit verification code"
is "$(jb .poll)" "/sign/mobile/$SID" "and where to poll"
like "$SID" '^[A-Za-z0-9_-]{22}$' "the request id is random base64url (128 bits)"
A_ID=$SID A_CODE=$SCODE
sign_start "$(phone_of "$A")" "$A"
problem 429 request_pending "a second request to the same phone while one waits -> 429 request_pending"
T0=$(date +%s)
SID=$A_ID SCODE=$A_CODE
sign_wait "$SID"
is "$(outcome)" "200 complete " "approved on the phone -> complete"
cp "$RESP_BODY_FILE" "$WORK/complete.json"
jq -r .signature "$WORK/complete.json" | base64 -d >"$WORK/sig.p7s"
is "$(jq -r '.report.indication + " " + .report.level + " " + .report.signer.fin' "$WORK/complete.json")" \
    "TOTAL_PASSED T $A" "the report: TOTAL_PASSED, level T, the holder's FIN"
is "$(phone_ctl "$A" GET /shown | jq -r .verification_code)" "$SCODE" \
    "the phone showed the same verification code"
is "$(phone_ctl "$A" GET /shown | jq -r .kind)" "signature" "the phone was asked for a signature, not a login"
# Only the root is given: the signature itself must carry the mobile CA.
if out=$(openssl cms -verify -binary -content "$DOC" -inform DER -in "$WORK/sig.p7s" \
    -CAfile "$STATE_DIR/certs/root.pem" -purpose any -out /dev/null 2>&1); then
    pass "openssl cms -verify, given only the root, accepts the detached signature (it carries the mobile CA)"
else
    fail "openssl cms -verify, given only the root, accepts the detached signature (it carries the mobile CA)" "$out"
fi
openssl cms -cmsout -print -inform DER -in "$WORK/sig.p7s" >"$WORK/sig.txt" 2>&1
for a in contentType signingTime messageDigest id-smime-aa-signingCertificateV2 id-smime-aa-timeStampToken; do
    grep -q "$a" "$WORK/sig.txt" && pass "the signature carries $a" ||
        fail "the signature carries $a" "$(head -c 400 "$WORK/sig.txt")"
done
gw_json POST /api/documents/verify "$(jq -nc --arg d "$DOC_B64" --rawfile s <(base64 -w0 "$WORK/sig.p7s") \
    '{document:$d, signature:$s}')"
is "$STATUS $(jb '.indication + " " + .level')" "200 TOTAL_PASSED T" \
    "POST /api/documents/verify: TOTAL_PASSED at level T"
gw_json POST /api/documents/verify "$(jq -nc --arg d "$(printf 'another document' | base64 -w0)" \
    --rawfile s <(base64 -w0 "$WORK/sig.p7s") '{document:$d, signature:$s}')"
is "$(jb '.indication + " " + .sub_indication')" "TOTAL_FAILED HASH_FAILURE" \
    "the same signature over another document -> HASH_FAILURE"
gw GET "/sign/mobile/$SID?wait=1"
problem 404 not_found "a finished request completes once: the next poll is 404"
SIGN_LINE=$(grep -F '"type":"sign"' "$STATE_DIR/audit.log" 2>/dev/null | grep -F "\"fin\":\"$A\"" | head -n 1)
is "$(printf '%s' "$SIGN_LINE" | jq -r '.means + " " + .decision + " " + .level')" "mobile allow T" \
    "the audit log has the sign line (mobile, allow, level T)"

# ---- refused, wrong FIN, bad input ----------------------------------------------------
phone_set_mode "$B" refuse
sign_start "$(phone_of "$B")" "$B"
is "$STATUS" 202 "a request to B -> 202"
sign_wait "$SID"
is "$(outcome)" "200 failed user_cancelled" "refused on the phone -> failed user_cancelled"
phone_set_mode "$B" auto
sign_start "$(phone_of "$B")" "$A"
problem 403 not_mobile_client "a FIN that does not hold that phone's SIM -> 403 not_mobile_client"
sign_start "$(phone_of "$B")" "$B" 'not base64!'
problem 400 invalid_request "a document that is not base64 -> 400"
sign_start "+99450" "$B"
problem 400 invalid_phone "a malformed phone number -> 400 invalid_phone"
gw_json POST /sign/mobile "$(jq -nc --arg p "$(phone_of "$B")" --arg f "$B" '{phone:$p, fin:$f, document:"eA=="}')" \
    -H "Origin: https://evil.example"
problem 403 bad_origin "another site's Origin -> 403"
gw GET "/sign/mobile/AAAAAAAAAAAAAAAAAAAAAA?wait=1"
problem 404 not_found "an unknown id -> 404"
# The MSSP's certificate query is for authenticated relying parties only.
MSSP_CERT_Q=$(jq -nc --arg p "$(phone_of "$A")" --arg f "$A" '{relying_party:"darvaza-demo", phone:$p, fin:$f}')
is "$(curl -sS --http2 --max-time 10 --cacert "$STATE_DIR/certs/root.pem" -o /dev/null -w '%{http_code}' \
    -H 'content-type: application/json' --data-binary "$MSSP_CERT_Q" https://localhost:9103/mid/certificate)" 401 \
    "MSSP POST /mid/certificate without the relying party's secret -> 401"
is "$(curl -sS --http2 --max-time 10 --cacert "$STATE_DIR/certs/root.pem" -o /dev/null -w '%{http_code}' \
    -H 'authorization: Bearer wrong' -H 'content-type: application/json' --data-binary "$MSSP_CERT_Q" \
    https://localhost:9103/mid/certificate)" 401 "MSSP POST /mid/certificate with a wrong secret -> 401"
ok "the signing part of the run is quick" test $(($(date +%s) - T0)) -lt 60

# ---- a request nobody polls holds the phone only while it waits ------------------------
# (lib.sh stranger_holds_phone.)
V=${ON[3]:-}
[ -n "$V" ] || bail "people.json lacks a fourth SIM holder with a phone on"
stranger_holds_phone sign_start SID "$V" "signing on" request 400
sign_wait "$SID"
is "$(outcome)" "200 complete " "V approves on the phone: the document is signed"

# ---- revoked SIM, ignored on the phone, TSA down ----------------------------------------
mapfile -t REV < <(sim_holders '.phone_on and .sim_revoked')
C=${ON[2]:-}
if [ ${#REV[@]} -ge 1 ]; then
    R=${REV[0]}
    sign_start "$(phone_of "$R")" "$R"
    is "$STATUS" 202 "a holder whose SIM certificate is revoked starts signing -> 202"
    sign_wait "$SID"
    is "$(outcome)" "200 failed certificate_revoked" "signed with a revoked SIM certificate -> failed certificate_revoked"
else
    fail "a revoked SIM holder with a phone" "people.json has none"
    fail "signed with a revoked SIM certificate" "people.json has none"
fi
[ -n "$C" ] || bail "people.json lacks a third SIM holder with a phone on"
phone_set_mode "$C" ignore
sign_start "$(phone_of "$C")" "$C"
sign_wait "$SID"
is "$(outcome)" "200 failed timeout" "ignored on the phone -> failed timeout (the MSSP's user timeout)"
phone_set_mode "$C" auto
timeout 30 "$ROOT/demo/stack.sh" tsa-stop "$STATE_DIR" >>"$WORK/tsa.log" 2>&1
sign_start "$(phone_of "$C")" "$C"
is "$STATUS" 202 "with the TSA down a signing request still starts (the phone is asked first)"
sign_wait "$SID"
is "$(outcome)" "200 failed timestamp_unavailable" "TSA down when the phone has signed -> failed timestamp_unavailable, no signature"
timeout 30 "$ROOT/demo/stack.sh" tsa-start "$STATE_DIR" >>"$WORK/tsa.log" 2>&1
is "$(grep -F '"type":"sign"' "$STATE_DIR/audit.log" | grep -F "\"fin\":\"$C\"" | jq -r .result | sort | tr '\n' ' ')" \
    "timeout timestamp_unavailable " "the audit log has both refusals of C's signing requests"

finish
