#!/usr/bin/env bash
# t_oidc.sh - the OpenID Connect provider (docs/oidc.md) as clients see it:
# discovery, the code flow with PKCE driven by Debian's python3-authlib (URI,
# PKCE, private_key_jwt and the ID token's validation are authlib's own code;
# curl carries them, the gateway speaking HTTP/2), a client_secret_basic
# client, userinfo, consent, step-up, RP-initiated and back-channel logout,
# and the attacks of the provider's threat list, each refused with its status
# and code.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"

plan $((79 + OIDC_LOOP_WAIT_TESTS))

BC_PORT=9199
RP_URI="https://127.0.0.1:$BC_PORT/cb"
KEY="$WORK/rp.key"

# The test client: private_key_jwt with a key made now, codes living 1 s (the
# expiry test), a back-channel logout endpoint served by this script.
mkdir -p "$WORK/bc"
oidc_policies
JWKS=$($RP keygen "$KEY") || bail "authlib could not make a key"
cat >"$WORK/policies/oidc-test.yaml" <<EOF
service: oidc-test
registered_as: "DIS-9101"
oidc:
  client_id: test-rp
  token_endpoint_auth_method: private_key_jwt
  jwks: '$JWKS'
  redirect_uris: [$RP_URI, http://127.0.0.1:$BC_PORT/cb]
  post_logout_redirect_uris: [https://127.0.0.1:$BC_PORT/bye]
  backchannel_logout_uri: https://127.0.0.1:$BC_PORT/bc
  scopes: [openid, profile]
  release: [fin, name, surname, birth_date]
  acr_default: low
  consent: pre-approved
EOF
# The same client with codes living 1 s (the expiry test).
sed -e 's/^service: oidc-test/service: oidc-short/' -e 's/DIS-9101/DIS-9102/' -e 's/client_id: test-rp/client_id: test-short/' \
    -e '/backchannel_logout_uri/d' -e 's/^  consent:/  code_lifetime: 1s\n  consent:/' \
    "$WORK/policies/oidc-test.yaml" >"$WORK/policies/oidc-short.yaml"
# REDIS=1: the same with the state in Redis (tests/integration/redis.sh starts one).
# Only logins by password here, so the start limit (raised for every
# script) can be the real one for requests parked by /authorize.
oidc_stack_start CARDS=0 MOBILE=0 STARTS_PER_ADDRESS=40
CA="$STATE_DIR/certs/root.pem"
ISS=$GW_ORIGIN
TOKEN_URL="$ISS/token"
DEMO_SECRET=$(cat "$STATE_DIR/oidc/demo-eservice.secret")
DEMO_URI=https://127.0.0.1:9150/redirect_uri

R=$(pick_person registered 0)
[ -n "$R" ] || bail "people.json has no registered person"
login_person "$R"
SESSION=$LOGIN_TOKEN
[ -n "$SESSION" ] || bail "password + TOTP login failed: $STATUS $BODY"
COOKIE="cookie: __Host-darvaza=$SESSION"

$PY "$LIB_DIR/oidc_bc_listen.py" "$STATE_DIR/certs/peer-tls.pem" "$STATE_DIR/certs/peer-tls.key" \
    "$BC_PORT" "$WORK/bc" 2>"$WORK/bc.log" &
OWN_PIDS+=($!)
wait_until 10 test -e "$WORK/bc/ready" || bail "the back-channel listener did not start"

# authz [k=v ...]: a fresh authorization request of test-rp (authlib) -> START
# (json), then GET it with the session cookie -> STATUS, LOC.
authz_url() { START=$($RP start "$ISS/authorize" "${CLIENT:-test-rp}" "${URI:-$RP_URI}" "$@"); }
authz() {
    authz_url "$@"
    gw GET "${GW_PATH_PREFIX:-}$(jq -r .url <<<"$START" | sed "s#^$ISS##")" -H "${AUTH_COOKIE-$COOKIE}"
    LOC=$(hdr location)
}
code_of() { $RP callback "$LOC" "$(jq -r .state <<<"$START")" | jq -r '.code // empty'; }
assertion() { $RP assertion "$KEY" "${CLIENT:-test-rp}" "$TOKEN_URL"; }
token_pkjwt() { # CODE VERIFIER [ASSERTION]
    gw POST /token --data-urlencode grant_type=authorization_code --data-urlencode "code=$1" \
        --data-urlencode "redirect_uri=$RP_URI" --data-urlencode "code_verifier=$2" \
        --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
        --data-urlencode "client_assertion=${3:-$(assertion)}"
}
oauth_error() { # STATUS ERROR DESC: the last answer is an RFC 6749 5.2 error
    if [ "$STATUS" = "$1" ] && [ "$(jb .error)" = "$2" ]; then pass "$3"
    else fail "$3" "status $STATUS, body $(head -c 300 "$RESP_BODY_FILE")"; fi
}
redirect_error() { # ERROR DESC: a 302 to the client's URI with error and the exact state
    local got_state
    got_state=$($PY -c 'import sys,urllib.parse as u; q=u.parse_qs(u.urlsplit(sys.argv[1]).query); print(q.get("error",[""])[0]+"|"+q.get("state",[""])[0])' "$LOC")
    is "$STATUS|${LOC%%\?*}|$got_state" "302|${URI:-$RP_URI}|$1|$(jq -r .state <<<"$START")" "$2"
}

# ---- discovery and keys ------------------------------------------------------------
gw GET /.well-known/openid-configuration
is "$STATUS|$(jb .issuer)|$(jb .token_endpoint)|$(jb .jwks_uri)" \
    "200|$ISS|$ISS/token|$ISS/.well-known/jwks.json" "discovery names the issuer (the origin) and the endpoints"
is "$(jb -c '[.code_challenge_methods_supported, .response_types_supported, .id_token_signing_alg_values_supported, .backchannel_logout_supported]')" \
    '[["S256"],["code"],["ES256"],true]' "discovery: PKCE S256, code flow, ES256, back-channel logout"
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/jwks.json"
is "$STATUS" 200 "the JWKS that signs ID tokens is published"

# ---- the code flow with authlib (private_key_jwt) -------------------------------------
AUTH_COOKIE="x-none: 1" authz
like "$STATUS|$LOC" '^302\|/\?oidc=[A-Za-z0-9_-]{43}&acr=low' "no session: /authorize sends the browser to the portal's sign-in"
gw GET "$LOC"
like "$STATUS|$(hdr content-security-policy)" "^200\|.*frame-ancestors 'none'" "the sign-in page it lands on cannot be framed (clickjacking)"

authz
CODE=$(code_of)
like "$STATUS|$CODE" '^302\|[A-Za-z0-9_-]{43}$' "with a session: 302 to the registered redirect_uri with a code (authlib checks state)"
like "$LOC" "[?&]iss=$($PY -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$ISS")(&|\$)" "the redirect names the issuer (RFC 9207)"
VERIFIER=$(jq -r .verifier <<<"$START")
NONCE=$(jq -r .nonce <<<"$START")
token_pkjwt "$CODE" "$VERIFIER"
AT=$(jb '.access_token // empty')
IDT=$(jb '.id_token // empty')
is "$STATUS|$(jb .token_type)|$(jb .expires_in)|$(hdr cache-control)" "200|Bearer|300|no-store" "/token trades the code (private_key_jwt, PKCE) for tokens, not cached"
CLAIMS=$($RP verify "$IDT" "$WORK/jwks.json" "$ISS" test-rp "$NONCE" "$AT")
ok "authlib validates the ID token (signature, iss, aud, exp, nonce, at_hash)" test -n "$CLAIMS"
is "$(jq -c '[.sub, .acr, .amr, (.sid|length), (.auth_time|type), ._header.alg, ._header.typ]' <<<"$CLAIMS")" \
    "[\"$R\",\"substantial\",[\"pwd\",\"otp\"],43,\"number\",\"ES256\",\"JWT\"]" \
    "ID token: sub = FIN, acr, amr, sid, auth_time; ES256, typ JWT (not the assertion's)"
gw GET /userinfo -H "authorization: Bearer $AT"
is "$STATUS|$(jb .sub)|$(jb .fin)|$(jb .name)|$(jb .surname)|$(jb 'has("address")')|$(jb 'has("phones")')" \
    "200|$R|$R|$(person "$R" name)|$(person "$R" surname)|false|false" \
    "/userinfo: sub and exactly the released fields (fin, names from the registry; no address or phones)"
like "$(grep '"type":"oidc_userinfo"' "$STATE_DIR/audit.log" | tail -n 1)" '"released":\["fin","name","surname","birth_date"\]' \
    "the userinfo read is audited with the fields released"
gw POST /userinfo -H "authorization: Bearer $AT"
is "$STATUS|$(jb .sub)" "200|$R" "/userinfo by POST too"
gw GET /userinfo -H "authorization: Bearer $SESSION"
is "$STATUS|$(jb .error)" "401|invalid_token" "a session token is no access token at /userinfo"
gw GET /api/registry/me -H "authorization: Bearer $AT"
problem 401 unauthenticated "the access token opens nothing but /userinfo"
gw GET /userinfo
is "$STATUS|$(hdr www-authenticate)" '401|Bearer realm="darvaza", error="invalid_request"' "/userinfo without a token: 401 with a Bearer challenge"

authz_url
gw POST /authorize -H "$COOKIE" -H 'content-type: application/x-www-form-urlencoded' \
    --data-binary "$(jq -r .url <<<"$START" | sed 's/^[^?]*?//')"
LOC=$(hdr location)
like "$STATUS|$(code_of)" '^302\|[A-Za-z0-9_-]{43}$' "the same request as a form POST to /authorize gets a code too"

# ---- a client_secret_basic client (the demo e-service) ---------------------------------
CLIENT=demo-eservice URI=$DEMO_URI authz
DCODE=$(code_of)
DVER=$(jq -r .verifier <<<"$START")
basic_token() { # SECRET CODE VERIFIER
    gw POST /token -u "demo-eservice:$1" --data-urlencode grant_type=authorization_code \
        --data-urlencode "code=$2" --data-urlencode "redirect_uri=$DEMO_URI" --data-urlencode "code_verifier=$3"
}
basic_token "wrong-$DEMO_SECRET" "$DCODE" "$DVER"
is "$STATUS|$(jb .error)|$(hdr www-authenticate)" '401|invalid_client|Basic realm="darvaza", error="invalid_client"' "a wrong client secret: 401 invalid_client with a Basic challenge"
basic_token "$DEMO_SECRET" "$DCODE" "$DVER"
is "$STATUS|$(jb .token_type)" "200|Bearer" "the secret from the policy's file works with HTTP Basic"

# ---- attacks: where the code may go ---------------------------------------------------
authz_url
BASE=$(jq -r .url <<<"$START" | sed "s#^$ISS##")
gw GET "$(sed "s#redirect_uri=[^&]*#redirect_uri=https%3A%2F%2F127.0.0.1%3A$BC_PORT%2Fcb%2Fextra#" <<<"$BASE")" -H "$COOKIE"
is "$STATUS|$(jb .code)|$(hdr location)" "400|invalid_redirect_uri|" "redirect_uri with an extra path: 400 invalid_redirect_uri, no redirect"
gw GET "$(sed "s#redirect_uri=[^&]*#redirect_uri=https%3A%2F%2Fevil.example%2Fcb#" <<<"$BASE")" -H "$COOKIE"
problem 400 invalid_redirect_uri "another host's redirect_uri: 400 invalid_redirect_uri"
gw GET "$(sed "s#client_id=test-rp#client_id=nobody#" <<<"$BASE")" -H "$COOKIE"
problem 400 unknown_client "an unregistered client: 400 unknown_client"
gw GET "$BASE&state=again" -H "$COOKIE"
problem 400 invalid_request "a parameter given twice: 400 invalid_request"
gw GET "$(sed "s#state=[^&]*#state=$(head -c 600 /dev/zero | tr '\0' a)#" <<<"$BASE")" -H "$COOKIE"
is "$STATUS|$(jb .code)|$(jb .detail)|$(hdr location)" "400|invalid_request|state is longer than 512 bytes|" "a 600-byte state: a clear 400, not echoed anywhere"
gw GET "$(sed "s#nonce=[^&]*#nonce=$(head -c 600 /dev/zero | tr '\0' n)#" <<<"$BASE")" -H "$COOKIE"
is "$STATUS|$(jb .detail)" "400|nonce is longer than 512 bytes" "a 600-byte nonce: a clear 400"

# ---- attacks: PKCE ---------------------------------------------------------------------
authz_url
gw GET "$(jq -r .url <<<"$START" | sed "s#^$ISS##; s#&code_challenge=[^&]*##; s#&code_challenge_method=S256##")" -H "$COOKIE"
LOC=$(hdr location)
redirect_error invalid_request "no PKCE: the client hears invalid_request (state echoed exactly)"
gw GET "$(jq -r .url <<<"$START" | sed "s#^$ISS##; s#code_challenge_method=S256#code_challenge_method=plain#")" -H "$COOKIE"
LOC=$(hdr location)
redirect_error invalid_request "PKCE plain: refused, invalid_request"
authz
CODE=$(code_of)
token_pkjwt "$CODE" "$(jq -r .verifier <<<"$START" | rev)"
oauth_error 400 invalid_grant "a wrong code_verifier: 400 invalid_grant"
token_pkjwt "$CODE" "$(jq -r .verifier <<<"$START")"
oauth_error 400 invalid_grant "... and the code is spent by that failed try"
authz
gw POST /token --data-urlencode grant_type=authorization_code --data-urlencode "code=$(code_of)" \
    --data-urlencode "redirect_uri=$RP_URI" \
    --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
    --data-urlencode "client_assertion=$(assertion)"
oauth_error 400 invalid_grant "no code_verifier: 400 invalid_grant"

# ---- attacks: the code ----------------------------------------------------------------
authz
CODE=$(code_of)
VERIFIER=$(jq -r .verifier <<<"$START")
token_pkjwt "$CODE" "$VERIFIER"
AT1=$(jb '.access_token // empty')
gw GET /userinfo -H "authorization: Bearer $AT1"
is "$STATUS" 200 "the first exchange's access token works"
token_pkjwt "$CODE" "$VERIFIER"
oauth_error 400 invalid_grant "the code replayed: 400 invalid_grant"
gw GET /userinfo -H "authorization: Bearer $AT1"
is "$STATUS|$(jb .error)" "401|invalid_token" "... and the replay revoked the access token the code bought"
like "$(grep -c '"type":"oidc_code_replay"' "$STATE_DIR/audit.log" 2>/dev/null)" '^[1-9]' "the replay is on the audit record"
# The same code exchanged twice at the same moment (two connections, the
# store steps on two pool threads; with REDIS=1 as two instances would):
# whichever wins, no access token it bought survives the other use.
token_form() { # CODE VERIFIER: the body of an exchange with a fresh assertion
    printf 'grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s&client_assertion_type=%s&client_assertion=%s' \
        "$1" "$(jq -rn --arg u "$RP_URI" '$u|@uri')" "$2" \
        'urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer' "$(assertion)"
}
SURVIVED=0
for i in $(seq 1 20); do
    authz
    CODE=$(code_of)
    VERIFIER=$(jq -r .verifier <<<"$START")
    "${CURL_GW[@]}" --parallel --parallel-immediate -o "$WORK/race1.json" --data-binary "$(token_form "$CODE" "$VERIFIER")" "$TOKEN_URL" \
        --next "${CURL_GW[@]:1}" -o "$WORK/race2.json" --data-binary "$(token_form "$CODE" "$VERIFIER")" "$TOKEN_URL" 2>>"$WORK/curl.err"
    for f in race1 race2; do
        RAT=$(jq -r '.access_token // empty' "$WORK/$f.json" 2>/dev/null)
        [ -n "$RAT" ] || continue
        gw GET /userinfo -H "authorization: Bearer $RAT"
        [ "$STATUS" = 401 ] || SURVIVED=$((SURVIVED + 1))
    done
done
is "$SURVIVED" 0 "a code exchanged twice at once, 20 times: no access token of either exchange survives"

authz
CODE=$(code_of)
basic_token "$DEMO_SECRET" "$CODE" "$(jq -r .verifier <<<"$START")"
oauth_error 400 invalid_grant "a code used by another client: 400 invalid_grant"

CLIENT=test-short authz
CODE=$(code_of)
A_SHORT=$(CLIENT=test-short assertion)
T0=$(date +%s)
wait_until 5 test "$(date +%s)" -ge $((T0 + 2))
token_pkjwt "$CODE" "$(jq -r .verifier <<<"$START")" "$A_SHORT"
oauth_error 400 invalid_grant "an expired code (code_lifetime 1s): 400 invalid_grant"

authz
token_pkjwt "$(code_of)" "$(jq -r .verifier <<<"$START")"
OUT=$($RP verify "$(jb .id_token)" "$WORK/jwks.json" "$ISS" test-rp "another-nonce" "$(jb .access_token)")
is "$?|$(jq -r .error <<<"$OUT")" "1|invalid_claim" "a nonce mismatch is visible to the client: authlib refuses the ID token"

# ---- attacks: client authentication --------------------------------------------------
b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
mkjwt_claims() { jq -nc --arg c test-rp --arg a "$TOKEN_URL" --arg j "$1" --argjson e $(($(date +%s) + 60)) '{iss:$c,sub:$c,aud:$a,jti:$j,exp:$e}' | b64u; }
authz
CODE=$(code_of); VERIFIER=$(jq -r .verifier <<<"$START")
NONE_JWT="$(printf '{"alg":"none","typ":"JWT"}' | b64u).$(mkjwt_claims none-1)."
token_pkjwt "$CODE" "$VERIFIER" "$NONE_JWT"
oauth_error 401 invalid_client "an alg:none client assertion: 401 invalid_client"
H_HS="$(printf '{"alg":"HS256","typ":"JWT"}' | b64u).$(mkjwt_claims hs-1)"
HS_JWT="$H_HS.$(printf %s "$H_HS" | openssl dgst -sha256 -hmac "$JWKS" -binary | b64u)"
token_pkjwt "$CODE" "$VERIFIER" "$HS_JWT"
oauth_error 401 invalid_client "an HS256 client assertion (the public key as secret): 401 invalid_client"
A1=$(assertion)
token_pkjwt "$CODE" "$VERIFIER" "$A1"
is "$STATUS" 200 "a fresh ES256 assertion works (the refusals did not spend the code)"
authz
token_pkjwt "$(code_of)" "$(jq -r .verifier <<<"$START")" "$A1"
oauth_error 401 invalid_client "a client assertion replayed (same jti): 401 invalid_client"

# ---- prompt, step-up, max_age -------------------------------------------------------
AUTH_COOKIE="x-none: 1" authz prompt=none
redirect_error login_required "prompt=none without a session: login_required to the client"
authz acr_values=high
like "$STATUS|$LOC" '^302\|/\?oidc=[A-Za-z0-9_-]{43}&acr=high' "acr_values=high on a password session: step-up at the portal, no code"
authz acr_values=high prompt=none
redirect_error interaction_required "prompt=none when a step-up is needed: interaction_required"
T0=$(date +%s)
wait_until 5 test "$(date +%s)" -gt "$T0"
authz max_age=0 prompt=none
redirect_error login_required "max_age=0 with a session of an earlier second: login_required (a new login)"
authz login_hint=ZZZ9999 prompt=none
redirect_error login_required "login_hint naming another person than the session's: login_required"
authz prompt=login
like "$STATUS|$LOC" '^302\|/\?oidc=' "prompt=login: the person signs in again"
PEND=$(sed -E 's/.*oidc=([A-Za-z0-9_-]+).*/\1/' <<<"$LOC")
gw GET "/authorize/resume?id=$PEND" -H "$COOKIE"
like "$STATUS|$(hdr location)" '^302\|/\?oidc=' "... and the old session does not satisfy it on resume"
login_person "$R"
gw GET "/authorize/resume?id=$PEND" -H "cookie: __Host-darvaza=$LOGIN_TOKEN"
LOC=$(hdr location)
like "$STATUS|$LOC" "^302\\|$RP_URI\\?code=" "after a fresh login the parked request resumes to the client with a code"
SESSION2=$LOGIN_TOKEN
# max_age=0 sends the person to sign in again; the login that follows
# satisfies it even when the page hands the request back a second later.
authz max_age=0
like "$STATUS|$LOC" '^302\|/\?oidc=' "max_age=0 with a session of an earlier second: the person signs in again"
PEND=$(sed -E 's/.*oidc=([A-Za-z0-9_-]+).*/\1/' <<<"$LOC")
login_person "$R"
T0=$(date +%s)
wait_until 5 test "$(date +%s)" -gt "$T0"
gw GET "/authorize/resume?id=$PEND" -H "cookie: __Host-darvaza=$LOGIN_TOKEN"
like "$STATUS|$(hdr location)" "^302\\|$RP_URI\\?code=" "... and the login made for it satisfies max_age on resume, a second later too"

# ---- consent (demo-consent asks) ---------------------------------------------------------
CLIENT=demo-consent URI=https://127.0.0.1:9151/callback authz
like "$STATUS|$LOC" '^302\|/\?oidc=[A-Za-z0-9_-]{43}&acr=substantial&consent=1' "a client that is not pre-approved: to the consent page"
CID=$(sed -E 's/.*oidc=([A-Za-z0-9_-]+).*/\1/' <<<"$LOC")
gw GET "/authorize/consent?id=$CID" -H "$COOKIE"
is "$STATUS|$(jb .name)|$(jb .registered_as)|$(jb -c .fields)|$(jb .purpose)" \
    '200|Demo municipal library|DIS-0102|["fin"]|to open a library account in your name' "the consent page learns the service, its register entry, the fields and the purpose"
gw_json POST /authorize/consent "{\"id\":\"$CID\",\"approve\":true}" -H "$COOKIE" -H "origin: https://evil.example"
problem 403 bad_origin "consent posted from another site (CSRF): 403 bad_origin"
gw_json POST /authorize/consent "{\"id\":\"$CID\",\"approve\":true}" -H "$COOKIE"
problem 403 bad_origin "consent posted with the cookie and no Origin: 403 bad_origin"
gw_json POST /authorize/consent "{\"id\":\"$CID\",\"approve\":true}" -H "$COOKIE" -H "origin: $GW_ORIGIN"
NEXT=$(jb .next)
is "$STATUS|$NEXT" "200|/authorize/resume?id=$CID" "consent approved from the portal: go on"
gw GET "$NEXT" -H "$COOKIE"
like "$STATUS|$(hdr location)" '^302\|https://127.0.0.1:9151/callback\?code=' "... to the client with a code"
CLIENT=demo-consent URI=https://127.0.0.1:9151/callback authz
like "$STATUS|$LOC" '^302\|https://127.0.0.1:9151/callback\?code=' "the decision is remembered: the next request gets a code at once"
CLIENT=demo-consent URI=https://127.0.0.1:9151/callback authz prompt=consent
like "$STATUS|$LOC" '^302\|/\?oidc=[A-Za-z0-9_-]{43}&acr=substantial&consent=1' "prompt=consent: asked again though the decision is remembered"
CID=$(sed -E 's/.*oidc=([A-Za-z0-9_-]+).*/\1/' <<<"$LOC")
gw_json POST /authorize/consent "{\"id\":\"$CID\",\"approve\":true}" -H "$COOKIE" -H "origin: $GW_ORIGIN"
gw GET "$(jb .next)" -H "$COOKIE"
like "$STATUS|$(hdr location)" '^302\|https://127.0.0.1:9151/callback\?code=' "... and once approved again, resume goes to the client with a code (not back to the consent page)"
gw GET /oidc/consents -H "$COOKIE"
is "$STATUS|$(jb -c '[.consents[] | .client]')" '200|["demo-consent"]' "the account page lists the decision"
gw_json POST /oidc/consents '{"withdraw":"demo-consent"}' -H "$COOKIE" -H "origin: $GW_ORIGIN"
CLIENT=demo-consent URI=https://127.0.0.1:9151/callback authz prompt=none
URI=https://127.0.0.1:9151/callback redirect_error consent_required "withdrawn: asked again (prompt=none hears consent_required)"
like "$(grep -c '"type":"oidc_consent"' "$STATE_DIR/audit.log")" '^[2-9]' "approve and withdraw are on the audit record"

# ---- logout: RP-initiated and back-channel ---------------------------------------------
authz
token_pkjwt "$(code_of)" "$(jq -r .verifier <<<"$START")"
HINT=$(jb .id_token)
AT_L=$(jb .access_token)
gw GET "/logout?id_token_hint=$HINT&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F" -H "$COOKIE"
problem 400 invalid_redirect_uri "post_logout_redirect_uri not registered: 400, no open redirect"
gw GET "/logout?post_logout_redirect_uri=https%3A%2F%2F127.0.0.1%3A$BC_PORT%2Fbye&state=s1" -H "$COOKIE"
problem 400 invalid_redirect_uri "post_logout_redirect_uri without a hint naming the client: 400"
gw GET "/logout?id_token_hint=$HINT&post_logout_redirect_uri=https%3A%2F%2F127.0.0.1%3A$BC_PORT%2Fbye&state=s%201" -H "$COOKIE"
is "$STATUS|$(hdr location)" "302|https://127.0.0.1:$BC_PORT/bye?state=s%201" "RP-initiated logout: back to the registered URI with the state"
gw GET /auth/session -H "$COOKIE"
problem 401 unauthenticated "... and the session is gone"
gw GET /userinfo -H "authorization: Bearer $AT_L"
is "$STATUS|$(jb .error)" "401|invalid_token" "... and the access token it bought reads nothing more at /userinfo"
wait_until 10 test -e "$WORK/bc/1.body"
LT=$(tail -n 1 "$WORK/bc/1.body" 2>/dev/null | sed 's/^logout_token=//')
SID=$(jq -r .sid <<<"$CLAIMS")
is "$(head -n 1 "$WORK/bc/1.body" 2>/dev/null)|$(jws_part "$LT" 0 | jq -r .typ)|$(jws_part "$LT" 1 | jq -c --arg s "$SID" '[.aud, .sub, (.sid == $s), (.events | has("http://schemas.openid.net/event/backchannel-logout")), has("nonce")]')" \
    "application/x-www-form-urlencoded|logout+jwt|[\"test-rp\",\"$R\",true,true,false]" \
    "a back-channel logout token reached the client: typ logout+jwt, its sid, the event, no nonce"
LT_OK=$($PY -c 'import json,sys
from authlib.jose import jwt, JsonWebKey
k=JsonWebKey.import_key_set(json.load(open(sys.argv[2])))
c=jwt.decode(sys.argv[1],k); print(c["iss"])' "$LT" "$WORK/jwks.json" 2>&1)
is "$LT_OK" "$ISS" "authlib verifies the logout token's signature with the published keys"

# A logout at the portal reaches the clients of that session too.
AUTH_COOKIE="cookie: __Host-darvaza=$SESSION2" authz
CODE=$(code_of)
VERIFIER=$(jq -r .verifier <<<"$START")
gw_json POST /auth/logout '{}' -H "authorization: Bearer $SESSION2"
is "$STATUS" 204 "logout at the portal (the session that resumed a request of test-rp)"
wait_until 10 test -e "$WORK/bc/2.body"
ok "... sends test-rp a back-channel logout token" test -e "$WORK/bc/2.body"
token_pkjwt "$CODE" "$VERIFIER"
oauth_error 400 invalid_grant "a code given to the session before its logout is refused at /token afterwards"
like "$(grep -c '"type":"oidc_logout_sent"' "$STATE_DIR/audit.log")" '^[2-9]' "each back-channel logout is on the audit record"

# ---- limits: a request parked for the portal is a start like any other -----------------
# limits.starts_per_address (40 a minute here): one address cannot fill the
# store with parked requests (the earlier ones of this script count too; a
# new minute may start once in the loop).
N=0
while [ $N -lt 82 ]; do
    AUTH_COOKIE="x-none: 1" authz
    [ "$STATUS" = 302 ] || break
    N=$((N + 1))
done
is "$STATUS|$(jb .code)|$(hdr retry-after | grep -c '^[0-9]')" "429|rate_limited|1" \
    "requests parked without a session, over limits.starts_per_address from one address: 429 rate_limited with Retry-After"

# ---- registration rules ---------------------------------------------------------------
mkdir -p "$WORK/bad"
sed '/^registered_as/d' "$WORK/policies/oidc-test.yaml" >"$WORK/bad/noreg.yaml"
sed -e "s#^policies:.*#policies: $WORK/bad/#" "$STATE_DIR/darvaza.yaml" >"$WORK/bad.yaml"
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/bad.yaml" --check 2>&1)
like "$?|$OUT" '^[1-9][0-9]*\|.*noreg.yaml:[0-9]+: registered_as: required key is missing' "a client of a service without registered_as: the policy is refused (file:line)"
sed "s#$RP_URI#http://192.0.2.1/cb#" "$WORK/policies/oidc-test.yaml" >"$WORK/bad/noreg.yaml"
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/bad.yaml" --check 2>&1)
like "$OUT" 'oidc.redirect_uris: https, or http only to a loopback host' "a cleartext redirect URI off loopback is refused at load"

oidc_loop_waits_check
finish
