#!/usr/bin/env bash
# t_oidc_jwks.sh - private_key_jwt clients whose keys are registered by URL
# (jwks_uri, docs/oidc.md): the gateway fetches the set over https, caches
# it, picks up a rotation when an assertion names an unknown kid, fetches at
# most once per jwks_min_interval however many unknown kids arrive, and
# answers invalid_client when the set cannot be had (unreachable, oversized,
# not JSON) without spending the code.  A JWKS server run by this script
# counts the fetches.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"

plan 19

JW_PORT=9196
JW="https://127.0.0.1:$JW_PORT"
RP_URI="https://127.0.0.1:$JW_PORT/cb"

mkdir -p "$WORK/jw"
oidc_policies
JWKS_A=$($RP keygen "$WORK/a.key") || bail "authlib could not make a key"
JWKS_B=$($RP keygen "$WORK/b.key") || bail "authlib could not make a key"
printf '%s' "$JWKS_A" >"$WORK/jw/a.json"
printf '%s' "$JWKS_A" >"$WORK/jw/f.json"
client() { # NAME N URL [extra yaml line]
    oidc_client "oidc-$1" "$1" "DIS-94$2" "jwks_uri: $3" ${4:+"$4"}
}
client jr-a 1 "$JW/a" "  jwks_min_interval: 1s"
client jr-f 2 "$JW/f" # the default interval: one minute
client jr-down 3 "https://127.0.0.1:9197/none"
client jr-big 4 "$JW/big"
client jr-txt 5 "$JW/notjson"
EXTRA_POLICIES="$WORK/policies" stack_start CARDS=0 MOBILE=0
ISS=$GW_ORIGIN
TOKEN_URL="$ISS/token"

$PY "$LIB_DIR/oidc_jwks_serve.py" "$STATE_DIR/certs/peer-tls.pem" "$STATE_DIR/certs/peer-tls.key" \
    "$JW_PORT" "$WORK/jw" 2>"$WORK/jw.log" &
OWN_PIDS+=($!)
wait_until 10 test -e "$WORK/jw/ready" || bail "the JWKS server did not start"
fetches() { grep -cx "/$1" "$WORK/jw/fetches.log" 2>/dev/null || true; }

R=$(pick_person registered 0)
[ -n "$R" ] || bail "people.json has no registered person"
login_person "$R"
COOKIE="cookie: __Host-darvaza=$LOGIN_TOKEN"
[ -n "$LOGIN_TOKEN" ] || bail "password + TOTP login failed: $STATUS $BODY"

token() { # CLIENT ASSERTION CODE VERIFIER
    gw POST /token --data-urlencode grant_type=authorization_code --data-urlencode "code=$3" \
        --data-urlencode "redirect_uri=$RP_URI" --data-urlencode "code_verifier=$4" \
        --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
        --data-urlencode "client_assertion=$2"
}
# probe CLIENT KEYFILE: client authentication alone, with a code that does
# not exist: 400 invalid_grant means the assertion was accepted, 401
# invalid_client that it was not.
probe() { token "$1" "$($RP assertion "$2" "$1" "$TOKEN_URL")" "no-such-code" "x"; }
answer() { echo "$STATUS $(jb .error)"; }
probe_ok() { probe "$@"; [ "$(answer)" = "400 invalid_grant" ]; }
code_for() { # CLIENT -> START (json), CODE
    START=$($RP start "$ISS/authorize" "$1" "$RP_URI")
    gw GET "$(jq -r .url <<<"$START" | sed "s#^$ISS##")" -H "$COOKIE"
    CODE=$($RP callback "$(hdr location)" "$(jq -r .state <<<"$START")" | jq -r '.code // empty')
}

# ---- a client with jwks_uri signs in --------------------------------------------------
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/gw-jwks.json"
code_for jr-a
token jr-a "$($RP assertion "$WORK/a.key" jr-a "$TOKEN_URL")" "$CODE" "$(jq -r .verifier <<<"$START")"
is "$STATUS|$(jb .token_type)" "200|Bearer" "a client registered with jwks_uri trades its code (the key set fetched over https)"
CLAIMS=$($RP verify "$(jb .id_token)" "$WORK/gw-jwks.json" "$ISS" jr-a "$(jq -r .nonce <<<"$START")" "$(jb .access_token)")
is "$(jq -r .sub <<<"$CLAIMS" 2>/dev/null)" "$R" "authlib validates its ID token"
is "$(fetches a)" 1 "the set was fetched once"
probe jr-a "$WORK/a.key"
is "$(answer)|$(fetches a)" "400 invalid_grant|1" "the next assertion is verified with the cached set: no fetch"

# ---- rotation at the URL ----------------------------------------------------------------
printf '%s' "$JWKS_B" >"$WORK/jw/a.json"
ok "a key rotated at the URL is accepted once the set is fetched again (unknown kid)" \
    wait_until 15 probe_ok jr-a "$WORK/b.key"
is "$(fetches a)" 2 "... one more fetch"
probe jr-a "$WORK/a.key"
is "$(answer)" "401 invalid_client" "the key rotated out is refused"
code_for jr-a
VERIFIER=$(jq -r .verifier <<<"$START")
token jr-a "$($RP assertions "$WORK/b.key" jr-a "$TOKEN_URL" 1)" "$CODE" "$VERIFIER"
is "$(answer)" "401 invalid_client" "an assertion with an unknown kid: 401 invalid_client"
token jr-a "$($RP assertion "$WORK/b.key" jr-a "$TOKEN_URL")" "$CODE" "$VERIFIER"
is "$STATUS|$(jb .token_type)" "200|Bearer" "... and the code it came with is not spent: the client's own assertion still trades it"

# ---- a flood of random kids ---------------------------------------------------------------
probe jr-f "$WORK/a.key"
is "$(answer)|$(fetches f)" "400 invalid_grant|1" "a second client (jwks_min_interval 1m) authenticates: one fetch"
$RP assertions "$WORK/a.key" jr-f "$TOKEN_URL" 30 >"$WORK/flood"
REFUSED=0
while read -r A; do
    token jr-f "$A" "no-such-code" "x"
    [ "$(answer)" = "401 invalid_client" ] && REFUSED=$((REFUSED + 1))
done <"$WORK/flood"
is "$REFUSED" 30 "30 assertions naming random kids: each 401 invalid_client"
is "$(fetches f)" 1 "... and no further fetch within jwks_min_interval (the URL is not hammered)"

# ---- a set that cannot be had -------------------------------------------------------------
probe jr-down "$WORK/a.key"
is "$(answer)" "401 invalid_client" "jwks_uri unreachable: 401 invalid_client"
probe jr-big "$WORK/a.key"
is "$(answer)|$(fetches big)" "401 invalid_client|1" "jwks_uri answering over 64 KiB: 401 invalid_client"
probe jr-txt "$WORK/a.key"
is "$(answer)|$(fetches notjson)" "401 invalid_client|1" "jwks_uri answering something not a key set: 401 invalid_client"
is "$(grep '"oidc_jwks_fetched"' "$(gw_log)" | grep -E '"client":"jr-(down|big|txt)"' | grep -vc '"result":"ok"')" 3 \
    "each failed fetch is in the ops log with its reason"

# ---- registration rules -----------------------------------------------------------------
mkdir -p "$WORK/bad"
sed -e "s#^policies:.*#policies: $WORK/bad/#" "$STATE_DIR/darvaza.yaml" >"$WORK/bad.yaml"
check_bad() { # SED-EXPR: the jr-a policy changed by it, checked by darvazad --check
    rm -f "$WORK"/bad/*.yaml
    sed -e "$1" "$WORK/policies/oidc-jr-a.yaml" >"$WORK/bad/p.yaml"
    "$BUILD_DIR/darvazad" -c "$WORK/bad.yaml" --check 2>&1
}
like "$(check_bad "s#jwks_uri: .*#jwks_uri: http://127.0.0.1:$JW_PORT/a#")" 'p.yaml:[0-9]+: oidc.jwks_uri: https only' \
    "a cleartext jwks_uri is refused at load (file:line)"
like "$(check_bad "s#^  jwks_min_interval: .*#  jwks: '$JWKS_A'#")" 'p.yaml:[0-9]+: oidc.jwks_uri: give jwks or jwks_uri, not both' \
    "jwks and jwks_uri together are refused at load"

finish
