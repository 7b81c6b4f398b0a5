#!/usr/bin/env bash
# t_card.sh - e-signature card login end to end (DESIGN §4.4, §4.9): the demo
# cards are SoftHSM2 tokens (certs/mkcards.sh), darvaza-card logs in with
# them through the challenge, curl presents a card certificate through the
# OpenSSL pkcs11 engine on POST /auth/card/tls, and every refusal the
# contract names is shown: revoked (OCSP), responder down and nothing cached
# (fail closed), expired, unknown CA, no FIN, a signing certificate used to
# log in, a mobile-signature certificate, replayed / expired / invented
# nonces, a signature made for another origin, garbage in every field.  Then
# the judges' route: a judge's card session reads another person's record
# with a purpose (only the released fields; tgt and pur audited), and is
# refused without purpose, for a citizen's card and for a password session.
. "$(dirname "$0")/lib.sh"

plan 90

CARD="$BUILD_DIR/darvaza-card"
ROOTCA="$STATE_DIR/certs/root.pem"
AUDIT="$STATE_DIR/audit.log"
TTL=10 # the shortest challenge_ttl the config allows: the expired-nonce test waits it out

for t in softhsm2-util pkcs11-tool openssl script; do
    command -v "$t" >/dev/null || bail "$t is not installed"
done
[ -x "$CARD" ] || bail "no $CARD (make first)"
openssl engine -t pkcs11 2>/dev/null | grep -q available ||
    bail "the OpenSSL pkcs11 engine is missing (Debian: libengine-pkcs11-openssl)"

stack_start CONFIG_SET="cards.challenge_ttl=${TTL}s"
card_env
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"

# ---- helpers --------------------------------------------------------------------
# card_of, card_field, pin_file: tests/integration/lib.sh.
# card_login LABEL [darvaza-card options...]: sets RC, OUT (stdout), ERR.
card_login() {
    local label=$1
    shift
    OUT=$(timeout 60 "$CARD" login --gateway "$GW_URL" --cacert "$ROOTCA" --token "$label" \
        --pin-file "$(pin_file "$label")" "$@" 2>"$WORK/card.err")
    RC=$?
    ERR=$(cat "$WORK/card.err")
}
# challenge: a fresh nonce (sets NONCE).
challenge() {
    gw POST /auth/card/challenge
    NONCE=$(jb '.nonce // empty')
}
# signed LABEL NONCE [ORIGIN] [KEY]: the POST /auth/card body the card makes.
signed() {
    local key=()
    [ -z "${4:-}" ] || key=(--key "$4")
    timeout 60 "$CARD" sign-challenge --origin "${3:-$GW_ORIGIN}" --nonce "$2" --token "$1" \
        --pin-file "$(pin_file "$1")" "${key[@]}" 2>>"$WORK/card.err"
}
# card_post LABEL [ORIGIN] [KEY]: challenge, sign, POST /auth/card.
card_post() {
    challenge
    REQ=$(signed "$1" "$NONCE" "${2:-}" "${3:-}")
    gw_json POST /auth/card "$REQ"
}
# tls_login LABEL: POST /auth/card/tls on the card listener (the portal's
# origin asks for no certificate) with the card's auth certificate and key on
# the token, through curl and the OpenSSL pkcs11 engine.
CARD_URL=${CARD_URL:-https://localhost:8444}
tls_login() {
    local label=$1 cfg="$WORK/curl-$1.cfg"
    # The PIN reaches curl in a config file, not argv.
    (umask 077 && printf 'pass = "%s"\n' "$(card_field "$label" pin)" >"$cfg")
    GW_URL=$CARD_URL gw POST /auth/card/tls -K "$cfg" --engine pkcs11 --cert-type ENG --key-type ENG \
        --cert "pkcs11:token=$label;object=auth;type=cert" \
        --key "pkcs11:token=$label;object=auth;type=private"
}
audit_last() { # audit_last JQ_SELECT: the last audit line that matches
    jq -c "select($1)" "$AUDIT" 2>/dev/null | tail -n 1
}
certchecks() { # certchecks loop|pool: darvaza_certchecks_total{path=...} now (docs/metrics.md)
    local v
    v=$(metric "darvaza_certchecks_total{path=\"$1\"}")
    echo "${v:-0}"
}

CIT1=$(card_of citizen 0)
CIT2=$(card_of citizen 1)
CIT3=$(card_of citizen 2)
JUDGE1=$(card_of judge 0)
JUDGE2=$(card_of judge 1)
REVOKED=$(card_of revoked)
[ -n "$CIT1" ] && [ -n "$CIT3" ] && [ -n "$JUDGE2" ] && [ -n "$REVOKED" ] || bail "cards.json lacks demo cards"
FIN1=$(card_field "$CIT1" fin)
JFIN1=$(card_field "$JUDGE1" fin)

# ---- people.json and darvaza-card list ------------------------------------------
is "$(person "$JFIN1" card_label)|$(person "$JFIN1" role)|$(person "$JFIN1" card_kind)" \
    "$JUDGE1|judge|judge" "people.json names the judge's card, role and kind"
is "$(person "$FIN1" card_label)|$(person "$FIN1" role)|$([ -n "$(person "$FIN1" card_pin)" ] && echo pin)" \
    "$CIT1|citizen|pin" "people.json names a citizen's card, role and PIN"
LIST=$("$CARD" list 2>&1)
is "$?" 0 "darvaza-card list exits 0"
is "$(grep -c '^token "card-' <<<"$LIST")" "$(jq length "$CARDS_JSON")" "darvaza-card list shows every demo card"
like "$(grep -A 7 "^token \"$JUDGE1\"" <<<"$LIST")" "certificate \"auth\" id 01: FIN $JFIN1, judge" \
    "list: the judge's authentication certificate, its FIN and role"
like "$(grep -A 14 '^token "card-expired"' <<<"$LIST")" '\(EXPIRED\)' "list: an expired certificate is marked"
like "$(grep -A 14 '^token "card-mobile"' <<<"$LIST")" 'mobile signature \(not a card certificate\)' \
    "list: a mobile-signature certificate is named as such"

# ---- challenge login with darvaza-card ---------------------------------------------
card_login "$CIT1" --cookie-jar "$WORK/jar"
is "$RC" 0 "darvaza-card login with a citizen's card exits 0${ERR:+ ($ERR)}"
SESSION=$(sed -n 1p <<<"$OUT")
TOK=$(tail -n 1 <<<"$OUT")
is "$(jq -c '[.fin, .acr, .amr, .method]' <<<"$SESSION" 2>/dev/null)" "[\"$FIN1\",\"high\",[\"sc\",\"pin\"],\"card\"]" \
    "the session: FIN from the certificate, acr high, amr [sc,pin], method card"
is "$TOK" "$(jq -r .token <<<"$SESSION" 2>/dev/null)" "the token alone on the last line"
is "$(wc -l <<<"$OUT" | tr -d ' ')" 2 "darvaza-card prints the session and the token, nothing else"
gw GET /auth/session -H "$(bearer "$TOK")"
is "$STATUS $(jb .fin) $(jb .acr)" "200 $FIN1 high" "GET /auth/session with the card session's token"
is "$(stat -c %a "$WORK/jar" 2>/dev/null) $(grep -c '__Host-darvaza' "$WORK/jar" 2>/dev/null)" "600 1" \
    "--cookie-jar: the session cookie, in a 0600 file"
LINE=$(audit_last ".type == \"login\" and .means == \"card\" and .fin == \"$FIN1\"")
is "$(jq -r '[.revocation, .role, (.certificate_sha256 | length)] | join(" ")' <<<"$LINE" 2>/dev/null)" \
    "ocsp citizen 64" "audit: the card login with its certificate digest and OCSP evidence"
unlike "$(cat "$AUDIT" "$(gw_log)")" "\"$(card_field "$CIT1" pin)\"" "the card PIN is in no log"
# The same card again: what its check needs is cached now (the chain's
# signatures, the OCSP answer), so the check runs on the worker loop.
L0=$(certchecks loop) P0=$(certchecks pool)
card_login "$CIT1"
is "$RC $(($(certchecks loop) - L0)) $(($(certchecks pool) - P0))" "0 1 0" \
    "the card's second login: its certificate check ran on the worker loop, not the pool${ERR:+ ($ERR)}"

# Other keys: an RSA card signs RS256, a P-384 card ES384.
for k in rsa-2048 ec-p384; do
    L=$(jq -r --arg k "$k" 'map(select(.kind == "citizen" and .key == $k))[0].label // empty' "$CARDS_JSON")
    card_login "$L"
    is "$RC $(sed -n 1p <<<"$OUT" | jq -r '[.fin, .acr] | join(" ")' 2>/dev/null)" "0 $(card_field "$L" fin) high" \
        "a card with an $k key logs in${ERR:+ ($ERR)}"
done
is "$(signed "$L" AAAA | jq -r .algorithm)" ES384 "the P-384 card's answer says ES384"

# ---- the PIN ------------------------------------------------------------------------
BAD="$WORK/badpin"
(umask 077 && echo 000000 >"$BAD")
OUT=$(timeout 60 "$CARD" login --gateway "$GW_URL" --cacert "$ROOTCA" --token "$CIT1" \
    --pin-file "$BAD" 2>&1)
RC=$?
is "$RC" 1 "a wrong PIN: darvaza-card exits 1"
like "$OUT" '^darvaza-card: wrong PIN' "a wrong PIN is said plainly (and not retried)"
# Typed at the terminal: script(1) gives darvaza-card a terminal, and the
# PIN is typed once the prompt is there (what was typed ahead is discarded
# when echo goes off, as readpassphrase does); it must not be echoed.
PIN1=$(card_field "$CIT1" pin)
mkfifo "$WORK/tty.in"
timeout 60 script -qefc "'$CARD' login --gateway '$GW_URL' --cacert '$ROOTCA' --token '$CIT1'" \
    "$WORK/typescript" <"$WORK/tty.in" >/dev/null 2>&1 &
SCRIPT_PID=$!
OWN_PIDS+=("$SCRIPT_PID")
exec 7>"$WORK/tty.in"
wait_until 30 grep -q 'PIN of the card' "$WORK/typescript" || diag "no PIN prompt: $(cat "$WORK/typescript")"
printf '%s\n' "$PIN1" >&7
wait "$SCRIPT_PID"
exec 7>&-
OUT=$(tr -d '\r' <"$WORK/typescript")
like "$OUT" "PIN of the card \"$CIT1\": " "without --pin-file the PIN is asked on the terminal"
like "$OUT" "\"acr\":\"high\"" "the PIN typed at the terminal logs in"
unlike "$OUT" "$PIN1" "the PIN typed is not echoed"
OUT=$("$CARD" login --gateway "$GW_URL" --pin 1234 2>&1)
is "$?" 2 "--pin on the command line is refused (usage, exit 2)"
OUT=$("$CARD" 2>&1)
is "$?" 2 "no command: usage, exit 2"

# ---- TLS client certificate ------------------------------------------------------------
tls_login "$CIT1"
is "$STATUS $(jb .fin) $(jb .acr) $(jb -c .amr)" "200 $FIN1 high [\"sc\",\"pin\"]" \
    "POST /auth/card/tls with the card (curl + pkcs11 engine): a high session"
ok "audit: the TLS card login is recorded as card_tls" test -n \
    "$(audit_last ".type == \"login\" and .means == \"card_tls\" and .fin == \"$FIN1\"")"
GW_URL=$CARD_URL gw POST /auth/card/tls
problem 401 certificate_required "POST /auth/card/tls without a client certificate -> 401 certificate_required"
tls_login "$REVOKED"
problem 401 certificate_revoked "POST /auth/card/tls with a revoked card -> 401 certificate_revoked"
tls_login card-expired
problem 401 certificate_invalid "POST /auth/card/tls with an expired card -> 401 certificate_invalid"

# ---- refused certificates (challenge path) ------------------------------------------------
card_login "$REVOKED"
is "$RC" 1 "darvaza-card login with a revoked card exits 1"
like "$ERR" "refused: 401 certificate_revoked" "darvaza-card names the refusal (certificate_revoked)"
L0=$(certchecks loop)
card_post "$REVOKED"
problem 401 certificate_revoked "revoked card (OCSP says revoked) -> 401 certificate_revoked"
is "$(($(certchecks loop) - L0))" 1 "the revoked card's answer is cached: refused on the worker loop, the same code"
LINE=$(audit_last ".type == \"login\" and .reason == \"revoked\" and .fin == \"$(card_field "$REVOKED" fin)\"")
like "$(jq -r .revocation <<<"$LINE" 2>/dev/null)" '^ocsp(_cache)?$' \
    "audit: the revoked card's refusal, learned by OCSP (fresh or cached since the TLS attempt)"
for c in "card-expired expired" "card-unknownca unknown_ca" "card-nofin no_fin" \
    "card-mobile wrong_policy"; do
    set -- $c
    card_post "$1"
    problem 401 certificate_invalid "$1 -> 401 certificate_invalid"
    is "$(jb .detail)" "$2" "$1: the detail says why ($2)"
done
card_post "$CIT1" "" sign
problem 401 certificate_invalid "the signing (non-repudiation) key used to log in -> 401 certificate_invalid"
is "$(jb .detail)" bad_key_usage "the detail says bad_key_usage"

# ---- nonces and origins ---------------------------------------------------------------
challenge
is "$STATUS $(jb .expires_in) $(jb '.nonce | length')" "200 $TTL 44" \
    "POST /auth/card/challenge: a 32-byte base64 nonce and its lifetime"
REQ=$(signed "$CIT1" "$NONCE")
gw_json POST /auth/card "$REQ"
is "$STATUS $(jb .fin)" "200 $FIN1" "a signed challenge logs in (raw POST /auth/card)"
gw_json POST /auth/card "$REQ"
problem 401 invalid_nonce "the same answer again (replayed nonce) -> 401 invalid_nonce"
card_post "$CIT1" "https://localhost:9443"
problem 401 bad_signature "a signature made for another origin -> 401 bad_signature"
card_post "$CIT1" "https://evil.example"
problem 401 bad_signature "a signature made for a look-alike site -> 401 bad_signature"
REQ=$(signed "$CIT1" "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")
gw_json POST /auth/card "$REQ"
problem 401 invalid_nonce "a nonce the gateway never gave -> 401 invalid_nonce"
challenge
REQ=$(signed "$CIT1" "$NONCE")
gw_json POST /auth/card "$(jq -c '.algorithm = "ES384"' <<<"$REQ")"
problem 401 bad_signature "an algorithm that does not fit the key -> 401 bad_signature"
challenge
REQ=$(signed "$CIT1" "$NONCE")
# Another first base64 character: other top bits of r, same length.
gw_json POST /auth/card "$(jq -c '.signature |= (if startswith("A") then "B" else "A" end) + .[1:]' <<<"$REQ")"
problem 401 bad_signature "a tampered signature -> 401 bad_signature"
challenge
REQ=$(signed "$CIT1" "$NONCE")
CERT2=$(base64 -w0 <(openssl x509 -in "$(card_field "$JUDGE1" auth_cert)" -outform DER))
gw_json POST /auth/card "$(jq -c --arg c "$CERT2" '.certificate = $c' <<<"$REQ")"
problem 401 bad_signature "a citizen's signature presented with a judge's certificate -> 401 bad_signature"
challenge
REQ=$(signed "$CIT1" "$NONCE")
sleep $((TTL + 1))
gw_json POST /auth/card "$REQ"
problem 401 invalid_nonce "an answer after the nonce expired (${TTL}s) -> 401 invalid_nonce"

# ---- garbage in every field ------------------------------------------------------------
challenge
REQ=$(signed "$CIT1" "$NONCE")
garbage() { # garbage JQ DESC: the request changed by JQ is refused with 400 invalid_request
    gw_json POST /auth/card "$(jq -c "$1" <<<"$REQ")"
    problem 400 invalid_request "$2 -> 400 invalid_request"
}
garbage '.certificate = "not base64!"' "certificate that is not base64"
garbage '.certificate = "AAAA"' "certificate that is not DER"
garbage '.certificate = 42' "certificate that is a number"
garbage '.signature = "%%%"' "signature that is not base64"
garbage '.signature = ""' "empty signature"
garbage 'del(.nonce)' "no nonce"
garbage '.nonce = ["x"]' "nonce that is an array"
garbage '.algorithm = null' "algorithm null"
gw_json POST /auth/card '{"certificate":'
problem 400 invalid_json "a body that is not JSON -> 400 invalid_json"
gw_json POST /auth/card "$REQ"
is "$STATUS $(jb .fin)" "200 $FIN1" "after all that garbage the nonce was still unused: the answer logs in"
challenge
REQ=$(signed "$CIT1" "$NONCE")
gw_json POST /auth/card "$(jq -c '.algorithm = "none"' <<<"$REQ")"
problem 401 bad_signature "algorithm none -> 401 bad_signature"
gw GET /healthz
is "$STATUS" 200 "the gateway is still healthy"

# ---- revocation cannot be learned ----------------------------------------------------
ok "demo/stack.sh ocsp-stop stops the OCSP responder" card_ocsp_stop
card_post "$CIT2"
problem 503 revocation_unavailable "OCSP responder down, nothing cached -> 503 revocation_unavailable"
is "$(jb .detail)" revocation_unknown "the detail says revocation_unknown"
card_post "$CIT1"
is "$STATUS $(jb .fin)" "200 $FIN1" "a card whose OCSP answer is cached (until nextUpdate) still logs in"
# The CRL as the fallback: the same configuration with cards.crl, reloaded.
awk -v crl="$STATE_DIR/certs/esign.crl" '{ print } /^cards:/ { print "  crl: " crl }' \
    "$STATE_DIR/darvaza.yaml" >"$WORK/cfg" && cp "$WORK/cfg" "$STATE_DIR/darvaza.yaml"
RELOADS=$(grep -c '"event":"reloaded"' "$(gw_log)")
stack_reload
wait_until 10 bash -c '[ "$(grep -c "\"event\":\"reloaded\"" "$1")" -gt "$2" ]' _ "$(gw_log)" "$RELOADS" ||
    diag "no reload seen in the gateway log: $(tail -n 3 "$(gw_log)")"
card_post "$CIT3"
is "$STATUS $(jb .fin)" "200 $(card_field "$CIT3" fin)" "OCSP down, cards.crl configured: the CRL decides (good)"
is "$(jq -r .revocation <<<"$(audit_last ".type == \"login\" and .fin == \"$(card_field "$CIT3" fin)\"")")" crl \
    "audit: the revocation evidence is the CRL"
card_post "$REVOKED"
problem 401 certificate_revoked "OCSP down, the CRL lists the card -> 401 certificate_revoked"
ok "demo/stack.sh ocsp-start brings the responder back" card_ocsp_start
card_post "$CIT2"
is "$STATUS $(jb .fin)" "200 $(card_field "$CIT2" fin)" "with the responder back the card logs in"

# ---- the judges' route ------------------------------------------------------------------
card_login "$JUDGE1"
JTOK=$(tail -n 1 <<<"$OUT")
is "$RC $(sed -n 1p <<<"$OUT" | jq -r .fin)" "0 $JFIN1" "a judge logs in with the card"
TARGET=$(pick_person registered 1)
PURPOSE="case 2-123/2026"
gw GET "/api/registry/persons/$TARGET" -H "$(bearer "$JTOK")" -H "Darvaza-Purpose: $PURPOSE" \
    -H "$(probe_hdr judge-lookup)"
is "$STATUS $(jb .fin)" "200 $TARGET" "the judge reads another person's record with a purpose -> 200"
is "$(jb -c 'keys - ["fin","name","surname","patronymic","address","phones"]')" "[]" \
    "only the released fields (fin, name, surname, patronymic, address, phones)"
is "$(jb -c '[has("birth_date"), has("document"), has("gender")]')" "[false,false,false]" \
    "birth date, document and gender are not released"
LINE=$(audit_last ".type == \"forward\" and .fin == \"$JFIN1\" and .tgt == \"$TARGET\"")
L_RID=$(jq -r '.rid // empty' <<<"$LINE" 2>/dev/null)
# The outcome line follows the answer (the request was on record before it left).
for _ in $(seq 1 100); do
    RES=$(audit_last ".type == \"forward_result\" and .rid == \"$L_RID\"")
    [ -n "$RES" ] && break
    sleep 0.1
done
is "$(jq -r '[.pur, .decision] | join("|")' <<<"$LINE" 2>/dev/null)|$(jq -r '.status|tostring' <<<"${RES:-null}" 2>/dev/null)" \
    "$PURPOSE|allow|200" "audit: the lookup with tgt (the person) and pur (the purpose), and its outcome 200"
CLAIMS=$(peer_request_with judge-lookup | jq -c '.claims // {}')
is "$(jq -r '[.sub, .tgt, .pur, .acr] | join("|")' <<<"$CLAIMS")" "$JFIN1|$TARGET|$PURPOSE|high" \
    "the registry received an assertion with sub, tgt, pur and acr high"
gw GET "/api/registry/persons/$TARGET" -H "$(bearer "$JTOK")"
problem 400 purpose_required "the judge without Darvaza-Purpose -> 400 purpose_required"
LONG_PUR="case-$(printf 'y%.0s' $(seq 1 200))-LONGPURPOSE"
gw GET "/api/registry/persons/$TARGET" -H "$(bearer "$JTOK")" -H "Darvaza-Purpose: $LONG_PUR"
problem 400 invalid_purpose "the judge with a 216-character Darvaza-Purpose -> 400 invalid_purpose"
is "$(grep -c LONGPURPOSE "$AUDIT")" 0 "... on record by its code, the invalid text not written down"
card_login "$CIT1"
gw GET "/api/registry/persons/$TARGET" -H "$(bearer "$(tail -n 1 <<<"$OUT")")" -H "Darvaza-Purpose: $PURPOSE"
problem 403 forbidden "a citizen's card session on the judges' route -> 403 forbidden"
login_person "$(pick_person registered 0)"
gw GET "/api/registry/persons/$TARGET" -H "$(bearer "$LOGIN_TOKEN")" -H "Darvaza-Purpose: $PURPOSE"
problem 403 insufficient_assurance "a password session on the judges' route -> 403 insufficient_assurance"
card_login card-unknownca
is "$RC" 1 "a judge look-alike card from an unknown CA gets no session"

finish
