#!/usr/bin/env bash
# t_court.sh - signed documents (DESIGN §4.7) and the e-court (§5) through
# the demo stack: CAdES signatures made on the demo cards (SoftHSM2) by
# `darvaza-card sign`, checked by `openssl cms -verify` and by POST
# /api/documents/verify (good, altered, revoked card, unknown CA, garbage,
# a mobile-signature key), the gateway's time-stamp checked by
# `openssl ts -verify`, and the court route: a judge's signed notice is
# delivered (outbox rows) and read by the party; the same signed notice
# again, another judge's signature, a citizen, no signature, a TSA that is
# down are refused and store nothing.
. "$(dirname "$0")/lib.sh"

plan 31
# A low verification rate, so that the rate limit is reached at the end.
VERIFY_RATE=12
stack_start CONFIG_SET="documents.verify_rate=$VERIFY_RATE"

C="$STATE_DIR/certs"
CARDS_JSON="$STATE_DIR/cards/cards.json"
export SOFTHSM2_CONF="$STATE_DIR/cards/softhsm2.conf"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
COURT_DB="$STATE_DIR/court.db"
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"
card() { jq -r --arg k "$1" --arg f "$2" "map(select(.kind == \$k))[${3:-0}].$2 // empty" "$CARDS_JSON"; }
J1_LABEL=$(card judge label 0) J1_FIN=$(card judge fin 0)
J2_LABEL=$(card judge label 1) J2_FIN=$(card judge fin 1)
CIT_LABEL=$(card citizen label 0)
[ -n "$J1_FIN" ] && [ -n "$J2_FIN" ] && [ -n "$CIT_LABEL" ] || bail "cards.json lacks two judges and a citizen"
PARTY=$(pick_person registered 3)
[ -n "$PARTY" ] || bail "no registered party"
diag "judges $J1_FIN $J2_FIN, party $PARTY"

pin_file() { # pin_file LABEL: a 0600 file with the card's PIN
    local f="$WORK/$1.pin"
    (umask 077 && jq -r --arg l "$1" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$f")
    echo "$f"
}
# card_sign LABEL DOC OUT [CHAIN]: detached CAdES-B (DER) with the card's
# non-repudiation key (id 02) by `darvaza-card sign`.
card_sign() {
    timeout 60 "$BUILD_DIR/darvaza-card" sign "$2" -o "$3" --token "$1" --pin-file "$(pin_file "$1")" \
        --module "$MODULE" ${4:+--chain "$4"} >/dev/null 2>>"$WORK/card.err"
}
cms_sign() { card_sign "$1" "$2" "$3" "$C/esign-ca.pem"; }
b64() { base64 -w0 <"$1"; }
verify_doc() { # verify_doc DOC SIG: POST /api/documents/verify
    gw_json POST /api/documents/verify "$(jq -nc --arg d "$(b64 "$1")" --arg s "$(b64 "$2")" '{document:$d,signature:$s}')"
}
outbox_rows() { sqlite3 "$COURT_DB" 'SELECT count(*) FROM outbox' 2>/dev/null || echo 0; }
notices() { sqlite3 "$COURT_DB" 'SELECT count(*) FROM notice' 2>/dev/null || echo 0; }

# ---- signatures and /api/documents/verify ----------------------------------------
CASE="2-$RANDOM/2025"
DOC="$WORK/notice.json"
printf '{"case":"%s","party":"%s","text":"You are summoned to the hearing of case %s."}' \
    "$CASE" "$PARTY" "$CASE" >"$DOC"
cms_sign "$J1_LABEL" "$DOC" "$WORK/j1.p7s"
ok "darvaza-card sign makes a CAdES signature with a judge's card" test -s "$WORK/j1.p7s"
ok "openssl cms -verify accepts it" \
    openssl cms -verify -binary -content "$DOC" -inform DER -in "$WORK/j1.p7s" -CAfile "$C/root.pem" -purpose any -out /dev/null

verify_doc "$DOC" "$WORK/j1.p7s"
is "$STATUS $(jb .indication) $(jb .level) $(jb .signer.fin)" "200 TOTAL_PASSED B $J1_FIN" \
    "verify: the judge's signature is TOTAL_PASSED at level B"
is "$(jb '[.checks[] | select(.result != "passed" and .result != "absent")] | length')" 0 \
    "verify: every check passed (time-stamp absent)"
cat "$DOC" >"$WORK/altered.json"; printf ' ' >>"$WORK/altered.json"
verify_doc "$WORK/altered.json" "$WORK/j1.p7s"
is "$STATUS $(jb .indication) $(jb .sub_indication)" "200 TOTAL_FAILED HASH_FAILURE" \
    "verify: an altered document is TOTAL_FAILED / HASH_FAILURE"

REV_LABEL=$(card revoked label 0)
cms_sign "$REV_LABEL" "$DOC" "$WORK/rev.p7s"
verify_doc "$DOC" "$WORK/rev.p7s"
is "$STATUS $(jb .indication) $(jb .sub_indication)" "200 TOTAL_FAILED REVOKED" \
    "verify: a revoked card's signature is TOTAL_FAILED / REVOKED (OCSP)"

UNK_LABEL=$(card unknownca label 0)
card_sign "$UNK_LABEL" "$DOC" "$WORK/unk.p7s"
verify_doc "$DOC" "$WORK/unk.p7s"
is "$STATUS $(jb .indication) $(jb .sub_indication)" "200 INDETERMINATE NO_CERTIFICATE_CHAIN_FOUND" \
    "verify: a look-alike from an unknown CA is INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND"

head -c 300 /dev/urandom >"$WORK/garbage.p7s"
verify_doc "$DOC" "$WORK/garbage.p7s"
problem 400 malformed_signature "verify: garbage CMS is 400 malformed_signature"
gw_json POST /api/documents/verify '{"document":"aGk="}'
problem 400 invalid_request "verify: a missing signature is 400 invalid_request"

# A mobile-signature key (the SIM's key file, the same key the phone uses).
SIM_FIN=$(people | jq -r 'map(select(.sim == true and .phone_on == true and (.sim_revoked | not)))[0].fin // empty')
if [ -n "$SIM_FIN" ]; then
    printf '%s' "$(person "$SIM_FIN" sim_pin)" >"$WORK/sim.pin"
    openssl cms -sign -binary -cades -md sha256 -in "$DOC" -outform DER -out "$WORK/mob.p7s" \
        -inkey "$(person "$SIM_FIN" sim_key)" -passin "file:$WORK/sim.pin" \
        -signer "$(person "$SIM_FIN" sim_cert)" -certfile "$C/mobile-ca.pem" 2>>"$WORK/cms.err"
    verify_doc "$DOC" "$WORK/mob.p7s"
    is "$STATUS $(jb .indication) $(jb .signer.fin)" "200 TOTAL_PASSED $SIM_FIN" \
        "verify: a document signed with a mobile-signature key passes the same verification"
else
    fail "verify: a document signed with a mobile-signature key" "the stack has no SIM holders"
fi

# ---- the court route ---------------------------------------------------------------
card_login() { # card_login LABEL: the session token of a card login
    timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --token "$1" \
        --pin-file "$(pin_file "$1")" --cacert "$C/root.pem" --module "$MODULE" 2>>"$WORK/card.err" | tail -n 1
}
J1_TOKEN=$(card_login "$J1_LABEL")
isnt "$J1_TOKEN" "" "the first judge logs in with the card"
envelope() { # envelope DOC SIG: the require_signed_body envelope
    jq -nc --arg d "$(b64 "$1")" --arg s "$(b64 "$2")" --arg p "$PARTY" '{document:$d,signature:$s,party:$p}'
}
post_notice() { # post_notice TOKEN BODY [CASE]
    gw_json POST /api/court/notices "$2" -H "$(bearer "$1")" -H "Darvaza-Purpose: ${3:-$CASE}"
}
N0=$(notices) O0=$(outbox_rows)
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/j1.p7s")"
is "$STATUS $(jb .report.level) $(jb .party)" "201 T $PARTY" \
    "court: the judge's signed notice is accepted, at level T after the gateway's time-stamp"
NOTICE_ID=$(jb .id)
ok "court: the notice is stored with an outbox row per phone of the party" \
    test "$(notices)" -eq $((N0 + 1)) -a "$(outbox_rows)" -gt "$O0"
is "$(sqlite3 "$COURT_DB" "SELECT count(*) FROM outbox o JOIN notice n ON n.id = o.notice_id
     WHERE n.id = ${NOTICE_ID:-0} AND o.channel = 'sms' AND o.address LIKE '+994%'")" \
    "$(sqlite3 "$STATE_DIR/registry.db" "SELECT count(*) FROM phone WHERE fin = '$PARTY'")" \
    "court: the outbox has the party's phones from the registry (via the onward assertion)"
REGLOG=$(curl -s --http2 --max-time 5 --cacert "$C/root.pem" --cert "$C/gateway-client.pem" \
    --key "$C/gateway-client.key" "https://localhost:9101/_peer/requests")
is "$(jq -r --arg p "$PARTY" '[.[] | select(.path == "/api/registry/persons/" + $p and .verified)
        | .claims | select(.aud == "registry" and .tgt == $p)][-1] | "\(.sub) \(.pur)"' <<<"$REGLOG")" \
    "$J1_FIN $CASE" "court: the registry saw the onward assertion (sub judge, tgt party, pur case)"

# The stored signature: level T, its token checked by openssl ts -verify.
sqlite3 "$COURT_DB" "SELECT hex(signature) FROM notice WHERE id = ${NOTICE_ID:-0}" | xxd -r -p >"$WORK/t.p7s"
verify_doc "$DOC" "$WORK/t.p7s"
is "$STATUS $(jb .indication) $(jb .level) $(jb '.timestamp_time != null')" "200 TOTAL_PASSED T true" \
    "verify: the forwarded signature is TOTAL_PASSED at level T"
# Find the time-stamp token (the SEQUENCE after id-smime-aa-timeStampToken)
# and the signature value (the OCTET STRING before the unsigned attributes).
openssl asn1parse -inform DER -in "$WORK/t.p7s" >"$WORK/t.asn1" 2>/dev/null
TOK_OFF=$(awk '/:id-smime-aa-timeStampToken/ { f = 1; next } f && /cons: SEQUENCE/ { split($1, a, ":"); print a[1]; exit }' "$WORK/t.asn1")
SIG_LINE=$(awk '/cont \[ 1 \]/ { print prev; exit } { prev = $0 }' "$WORK/t.asn1")
if [ -n "$TOK_OFF" ] && [[ "$SIG_LINE" == *"OCTET STRING"* ]]; then
    openssl asn1parse -inform DER -in "$WORK/t.p7s" -strparse "$TOK_OFF" -noout -out "$WORK/tok.der" >/dev/null 2>&1 ||
        { TL=$(awk -v o="$TOK_OFF" '{ split($1, a, ":") } a[1] == o { match($0, /hl= *[0-9]+/); h = substr($0, RSTART + 3, RLENGTH - 3) + 0;
                match($0, /l= *[0-9]+/); l = substr($0, RSTART + 2, RLENGTH - 2) + 0; print h + l; exit }' "$WORK/t.asn1")
          dd if="$WORK/t.p7s" of="$WORK/tok.der" bs=1 skip="$TOK_OFF" count="$TL" 2>/dev/null; }
    SIG_HEX=$(sed 's/.*\[HEX DUMP\]://' <<<"$SIG_LINE")
    DIGEST=$(xxd -r -p <<<"$SIG_HEX" | openssl dgst -sha256 -r | cut -d' ' -f1)
    ok "openssl ts -verify accepts the gateway's time-stamp over the signature value" \
        openssl ts -verify -digest "$DIGEST" -token_in -in "$WORK/tok.der" -CAfile "$C/root.pem" \
        -untrusted "$C/gateway-ca.pem"
else
    fail "openssl ts -verify accepts the gateway's time-stamp" "no token found: $(grep -c . "$WORK/t.asn1") asn1 lines"
fi

# The party reads it.
login_person "$PARTY"
PARTY_TOKEN=$LOGIN_TOKEN
gw GET /api/court/my-notices -H "$(bearer "$PARTY_TOKEN")"
is "$STATUS $(jb --argjson id "${NOTICE_ID:-0}" '.notices[] | select(.id == $id) | "\(.case) \(.report.indication) \(.report.level) \(.judge_fin)"')" \
    "200 $CASE TOTAL_PASSED T $J1_FIN" "my-notices: the party reads the notice with its report"
is "$(jb --argjson id "${NOTICE_ID:-0}" '.notices[] | select(.id == $id) | .document' | base64 -d)" "$(cat "$DOC")" \
    "my-notices: the document is the signed bytes"
gw GET /api/court/my-notices -H "$(bearer "$J1_TOKEN")"
is "$STATUS $(jb --argjson id "${NOTICE_ID:-0}" '[.notices[] | select(.id == $id)] | length')" "200 0" \
    "my-notices: the judge does not see the party's notice among their own"

# Refusals: nothing stored.
N1=$(notices) O1=$(outbox_rows)
# A photocopy: the same signed notice again, as signed (the gateway stamps it
# anew) and as forwarded (level T already): one act of signing is served once.
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/j1.p7s")"
problem 409 already_filed "court: the same signed notice filed again is 409 already_filed"
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/t.p7s")"
problem 409 already_filed "court: the filed level-T signature sent again is 409 already_filed"
cms_sign "$J2_LABEL" "$DOC" "$WORK/j2.p7s"
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/j2.p7s")"
problem 403 signer_mismatch "court: a notice signed by another judge is 403 signer_mismatch"
post_notice "$J1_TOKEN" "$(jq -nc --arg d "$(b64 "$DOC")" --arg p "$PARTY" '{document:$d,party:$p}')"
problem 400 signed_body_required "court: an unsigned notice is 400 signed_body_required"
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/garbage.p7s")"
problem 400 malformed_signature "court: garbage for a signature is 400 malformed_signature"
CIT_TOKEN=$(card_login "$CIT_LABEL")
cms_sign "$CIT_LABEL" "$DOC" "$WORK/cit.p7s"
post_notice "$CIT_TOKEN" "$(envelope "$DOC" "$WORK/cit.p7s")"
problem 403 forbidden "court: a citizen's card session may not file notices (role judge)"
timeout 30 "$ROOT/demo/stack.sh" tsa-stop "$STATE_DIR" >>"$WORK/tsa.log" 2>&1
post_notice "$J1_TOKEN" "$(envelope "$DOC" "$WORK/j1.p7s")"
problem 503 timestamp_unavailable "court: TSA down is 503 timestamp_unavailable"
timeout 30 "$ROOT/demo/stack.sh" tsa-start "$STATE_DIR" >>"$WORK/tsa.log" 2>&1
is "$(notices) $(outbox_rows)" "$N1 $O1" "court: none of the refused notices was stored"

# The public verification endpoint is rate limited per address: 2 x rate + 2
# calls put more than the rate into one minute window whatever the clock.
limited=""
for _ in $(seq $((2 * VERIFY_RATE + 2))); do
    gw_json POST /api/documents/verify '{}'
    if [ "$STATUS" = 429 ]; then
        limited=1
        break
    fi
done
problem 429 rate_limited "verify: more than documents.verify_rate calls a minute is 429 rate_limited"
is "${limited:-no 429} $(hdr retry-after)" "1 60" "verify: the 429 says Retry-After: 60"

finish
