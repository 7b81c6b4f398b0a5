#!/usr/bin/env bash
# t_cardtls.sh - the browser's card login through the card listener
# (docs/cards.md "In the browser"), with the demo's SoftHSM2 cards presented
# by curl through the OpenSSL pkcs11 engine: the portal's origin sends no
# CertificateRequest (openssl s_client), the card listener does, naming only
# the e-signature CA; start -> card listener -> code -> exchange opens a
# session for a citizen and a judge; the code is single use and counts only
# with the cookie of the browser that started; a revoked, an expired and a
# missing certificate send the browser back with the refusal; the card
# listener serves nothing else.
. "$(dirname "$0")/lib.sh"

plan 50

CARD_URL=${CARD_URL:-https://localhost:8444}
CARD_PORT=${CARD_URL##*:}
GW_PORT=${GW_URL##*:}
AUDIT="$STATE_DIR/audit.log"

for t in softhsm2-util openssl jq; do
    command -v "$t" >/dev/null || bail "$t is not installed"
done
openssl engine -t pkcs11 2>/dev/null | grep -q available ||
    bail "the OpenSSL pkcs11 engine is missing (Debian: libengine-pkcs11-openssl)"

stack_start
card_env
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"

audit_last() { jq -c "select($1)" "$AUDIT" 2>/dev/null | tail -n 1; }

# card_args LABEL: curl options presenting the card's authentication
# certificate and key through the pkcs11 engine (the PIN in a config file,
# never in argv).
card_args() {
    local cfg="$WORK/curl-$1.cfg"
    (umask 077 && printf 'pass = "%s"\n' "$(card_field "$1" pin)" >"$cfg")
    printf '%s\n' -K "$cfg" --engine pkcs11 --cert-type ENG --key-type ENG \
        --cert "pkcs11:token=$1;object=auth;type=cert" --key "pkcs11:token=$1;object=auth;type=private"
}
# card GET|POST PATH [curl args...]: a request to the card listener (like gw).
card() {
    local method=$1 path=$2
    shift 2
    : >"$HDRS"
    STATUS=$("${CURL_GW[@]}" -X "$method" -o "$RESP_BODY_FILE" -D "$HDRS" -w '%{http_code}' \
        "$@" "$CARD_URL$path" 2>"$WORK/curl.err") || true
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(tr -d '\0' <"$RESP_BODY_FILE" 2>/dev/null)
}
# start: POST /auth/card/tls/start as the portal page does; sets URL and
# BIND (the pre-login cookie pair "name=value").
start() {
    gw POST /auth/card/tls/start -H "origin: $GW_ORIGIN"
    URL=$(jb '.url // empty')
    BIND=$(hdr set-cookie | sed -n 's/^\(__Host-darvaza-card=[^;]*\);.*/\1/p')
}
# visit LABEL|- : the browser at URL with that card (- : no certificate);
# sets FRAG (the fragment of the Location back to the portal).
visit() {
    local args=()
    [ "$1" = - ] || mapfile -t args < <(card_args "$1")
    card GET "${URL#"$CARD_URL"}" "${args[@]}"
    FRAG=$(hdr location | sed -n "s|^$GW_ORIGIN/#||p")
}
frag() { tr '&' '\n' <<<"$FRAG" | sed -n "s/^$1=//p"; }
# exchange CODE [COOKIE]: the portal page posts the code with its cookie.
exchange() {
    local c=()
    [ -z "${2:-}" ] || c=(-H "cookie: $2")
    gw_json POST /auth/card/tls/exchange "{\"code\":\"$1\"}" -H "origin: $GW_ORIGIN" "${c[@]}"
}
# handshake PORT: openssl s_client's message trace of one TLS 1.3 and one
# TLS 1.2 handshake with that listener.
handshake() {
    local v
    for v in -tls1_3 -tls1_2; do
        # (tr: s_client's trace holds NUL bytes bash would warn about)
        openssl s_client -connect "127.0.0.1:$1" -servername localhost -alpn h2 "$v" -msg \
            -CAfile "$STATE_DIR/certs/root.pem" </dev/null 2>&1 | tr -d '\0'
    done
}

CIT=$(card_of citizen 0)
JUDGE=$(card_of judge 0)
REVOKED=$(card_of revoked)
[ -n "$CIT" ] && [ -n "$JUDGE" ] && [ -n "$REVOKED" ] || bail "cards.json lacks demo cards"
FIN=$(card_field "$CIT" fin)
JFIN=$(card_field "$JUDGE" fin)

# ---- who asks for a certificate ----------------------------------------------------------
HS=$(handshake "$GW_PORT")
is "$(grep -c 'Handshake.*ServerHello$' <<<"$HS")" 2 "s_client: TLS 1.3 and 1.2 handshakes with the portal's listener"
unlike "$HS" 'CertificateRequest' "the portal's listener sends no CertificateRequest (TLS 1.3 nor 1.2)"
HS=$(handshake "$CARD_PORT")
is "$(grep -c 'CertificateRequest' <<<"$HS")" 2 "the card listener sends a CertificateRequest (TLS 1.3 and 1.2)"
NAMES=$(awk '/^Acceptable client certificate CA names/ { on = 1; next }
    on && /^(Requested|Client Certificate Types|Shared|Peer|Server|---)/ { on = 0 } on' <<<"$HS" | sort -u)
is "$NAMES" "$(openssl x509 -in "$STATE_DIR/certs/esign-ca.pem" -noout -subject | sed 's/^subject=//')" \
    "its acceptable CA names: the e-signature CA and nothing else"
mapfile -t CARGS < <(card_args "$CIT")
gw POST /auth/card/tls "${CARGS[@]}"
problem 401 certificate_required "POST /auth/card/tls on the portal's origin: no certificate asked -> 401 certificate_required"

# ---- the card listener serves only the card login -----------------------------------------
card GET /healthz
is "$STATUS" 200 "card listener: GET /healthz -> 200"
card GET /
problem 404 not_found "card listener: GET / (the portal) -> 404 not_found"
card GET /auth/session
problem 404 not_found "card listener: GET /auth/session -> 404 not_found"
card POST /auth/card/tls/start
problem 404 not_found "card listener: POST /auth/card/tls/start -> 404 not_found"
gw GET /auth/card/tls/login?state=AAAAAAAAAAAAAAAAAAAAAA
isnt "$STATUS" 303 "the portal's origin does not serve the card login page"

# ---- a citizen signs in --------------------------------------------------------------------
start
is "$STATUS $(jb .expires_in)" "201 300" "POST /auth/card/tls/start -> 201 with the login's lifetime"
like "$URL" "^$CARD_URL/auth/card/tls/login\\?state=[A-Za-z0-9_-]{22}\$" "the URL points at the card listener with a state"
like "$(hdr set-cookie)" '^__Host-darvaza-card=[A-Za-z0-9_-]{43}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=300$' \
    "the pre-login cookie: __Host-, Secure, HttpOnly, SameSite=Strict, Max-Age of the login"
visit "$CIT"
CODE=$(frag card-code)
is "$STATUS" 303 "the card listener validates the card and answers 303"
like "$(hdr location)" "^$GW_ORIGIN/#card-code=[A-Za-z0-9_-]{43}&ref=[0-9a-f]+\$" \
    "back to the portal's origin with a one-time code in the fragment"
is "$(hdr referrer-policy)" no-referrer "the redirect carries Referrer-Policy: no-referrer"
exchange "$CODE" "$BIND"
is "$STATUS $(jb .fin) $(jb .acr) $(jb -c .amr) $(jb .method)" \
    "200 $FIN high [\"sc\",\"pin\"] card" "the portal exchanges the code: a high card session for the citizen"
like "$(hdr set-cookie)" '^__Host-darvaza=' "the exchange sets the session cookie"
SESSION_COOKIE=$(hdr set-cookie | sed -n 's/^\(__Host-darvaza=[^;]*\);.*/\1/p')
gw GET /auth/session -H "cookie: $SESSION_COOKIE"
is "$STATUS $(jb .fin)" "200 $FIN" "the session cookie works on the portal's origin"
LINE=$(audit_last ".type == \"login\" and .means == \"card_tls\" and .fin == \"$FIN\" and .result == \"ok\"")
is "$(jq -r '[.role, .revocation, (.certificate_sha256 | length)] | join(" ")' <<<"$LINE" 2>/dev/null)" \
    "citizen ocsp 64" "audit: the login as card_tls with the certificate digest and its OCSP evidence"
exchange "$CODE" "$BIND"
problem 401 card_login_invalid "the same code again -> 401 card_login_invalid (single use)"
unlike "$(cat "$AUDIT" "$(gw_log)")" "$CODE|${BIND#*=}|$(card_field "$CIT" pin)" \
    "neither the code, the cookie nor the PIN is in a log"

# ---- a judge ---------------------------------------------------------------------------------
start
visit "$JUDGE"
exchange "$(frag card-code)" "$BIND"
is "$STATUS $(jb .fin) $(jb .acr) $(jq -r .role <<<"$(audit_last ".means == \"card_tls\" and .fin == \"$JFIN\"")")" \
    "200 $JFIN high judge" "a judge's card: a high session with the judge role"

# ---- no login on a connection the card already opened ----------------------------------------
# A browser keeps its connection to the card listener after a login; a login
# started later on it would need no new signature by the card (the card
# pulled out, no PIN).  Every answer there ends its connection (GOAWAY): two
# logins in one client are two handshakes, each signed by the card.
start
R1_URL=$URL
start
R2_URL=$URL
mapfile -t CARGS < <(card_args "$CIT")
OUT=$("${CURL_GW[@]}" "${CARGS[@]}" -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
    "$R1_URL" "$R2_URL" 2>"$WORK/curl.err")
is "$(one_line "$OUT")" "303 1 303 1" \
    "two card logins from one client: the second makes a new connection (a new handshake with the card)"

# ---- binding and single use ------------------------------------------------------------------
start
A_URL=$URL A_BIND=$BIND
start
B_BIND=$BIND
URL=$A_URL
visit "$CIT"
A_CODE=$(frag card-code)
exchange "$A_CODE" "$B_BIND"
problem 401 card_login_invalid "a code exchanged by another browser (its own cookie) -> 401 card_login_invalid"
is "$(jb .detail)" "this card login was started in another browser" "the detail says so"
ok "audit: the refusal, with reason other_browser" test -n \
    "$(audit_last ".means == \"card_tls\" and .reason == \"other_browser\" and .result == \"card_login_invalid\"")"
exchange "$A_CODE" "$A_BIND"
problem 401 card_login_invalid "that code is spent: the right browser cannot use it afterwards either"
start
visit "$CIT"
exchange "$(frag card-code)"
problem 401 card_login_invalid "a code without the pre-login cookie -> 401 card_login_invalid"
start
visit "$CIT"
gw_json POST /auth/card/tls/exchange "{\"code\":\"$(frag card-code)\"}" -H "origin: https://evil.example" \
    -H "cookie: $BIND"
problem 403 bad_origin "an exchange from another origin -> 403 bad_origin"
start
visit "$CIT"
visit "$CIT"
is "$STATUS $(frag card-refused)" "303 card_login_invalid" "the same state twice: the second visit is refused (card_login_invalid)"
URL="$CARD_URL/auth/card/tls/login?state=AAAAAAAAAAAAAAAAAAAAAA"
visit "$CIT"
is "$STATUS $(frag card-refused)" "303 card_login_invalid" "an invented state -> refused (card_login_invalid)"
URL="$CARD_URL/auth/card/tls/login?state=../../etc"
visit "$CIT"
is "$STATUS $(frag card-refused)" "303 card_login_invalid" "a malformed state -> refused (card_login_invalid)"
exchange "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "$BIND"
problem 401 card_login_invalid "an invented code -> 401 card_login_invalid"
gw_json POST /auth/card/tls/exchange '{"code":42}' -H "origin: $GW_ORIGIN"
problem 400 invalid_request "a code that is not a string -> 400 invalid_request"
gw_json POST /auth/card/tls/exchange '{"code":' -H "origin: $GW_ORIGIN"
problem 400 invalid_json "a body that is not JSON -> 400 invalid_json"

# ---- refusals go back to the portal with the problem code -----------------------------------
start
visit "$REVOKED"
is "$STATUS $(frag card-refused)" "303 certificate_revoked" "a revoked card -> back to the portal with certificate_revoked"
LINE=$(audit_last ".means == \"card_tls\" and .fin == \"$(card_field "$REVOKED" fin)\"")
is "$(jq -r '[.result, .reason, .status, .decision] | join(" ")' <<<"$LINE" 2>/dev/null)" \
    "certificate_revoked revoked 401 deny" "audit: the revoked card's refusal (status 401 as the API would answer)"
start
visit card-expired
is "$STATUS $(frag card-refused)" "303 certificate_invalid" "an expired card -> certificate_invalid"
start
visit card-mobile
is "$STATUS $(frag card-refused)" "303 certificate_invalid" "a mobile-signature certificate -> certificate_invalid"
start
visit -
is "$STATUS $(frag card-refused)" "303 certificate_required" "no certificate presented -> certificate_required"
like "$(frag ref)" '^[0-9a-f]+$' "the refusal carries the request id the portal shows"

# ---- programs: POST /auth/card/tls on the card listener -----------------------------------------
mapfile -t CARGS < <(card_args "$CIT")
card POST /auth/card/tls "${CARGS[@]}"
is "$STATUS $(jb .fin) $(jb .acr)" "200 $FIN high" "POST /auth/card/tls on the card listener (programs) -> a high session"
mapfile -t CARGS < <(card_args "$REVOKED")
card POST /auth/card/tls "${CARGS[@]}"
problem 401 certificate_revoked "POST /auth/card/tls on the card listener with a revoked card -> 401 certificate_revoked"
card POST /auth/card/tls
problem 401 certificate_required "POST /auth/card/tls on the card listener without a card -> 401 certificate_required"

# ---- configuration -------------------------------------------------------------------------------
CFG="$WORK/bad.yaml"
sed 's#^  tls_origin:.*#  tls_origin: https://localhost:8444/#' "$STATE_DIR/darvaza.yaml" >"$CFG"
OUT=$("$BUILD_DIR/darvazad" -c "$CFG" --check 2>&1)
like "$OUT" "bad.yaml:[0-9]+: cards.tls_origin: expected https://host\\[:port\\] with no path" \
    "--check: a tls_origin with a path is refused with file:line"
sed 's#client_auth: required#client_auth: none#; /client_ca:.*esign-ca/d' "$STATE_DIR/darvaza.yaml" >"$CFG"
OUT=$("$BUILD_DIR/darvazad" -c "$CFG" --check 2>&1)
like "$OUT" "bad.yaml:[0-9]+: cards.tls_origin: needs a listener with tls.client_auth: required" \
    "--check: tls_origin without a card listener is refused"
sed 's#client_auth: required#client_auth: required\n      #; /client_ca:.*esign-ca/d' "$STATE_DIR/darvaza.yaml" >"$CFG"
OUT=$("$BUILD_DIR/darvazad" -c "$CFG" --check 2>&1)
like "$OUT" "bad.yaml:[0-9]+: listeners\\[2\\].tls.client_ca: required when client_auth is optional or required" \
    "--check: client_auth: required without client_ca is refused"
gw GET /healthz
is "$STATUS" 200 "the gateway is still healthy"

finish
