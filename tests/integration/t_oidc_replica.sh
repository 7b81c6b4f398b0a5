#!/usr/bin/env bash
# t_oidc_replica.sh - a replayed authorization code with the provider's
# state in a Redis master that must have every single-use write and every
# revocation acknowledged by its replica (store.redis.wait_replicas: 1;
# docs/oidc.md "Codes and tokens").  With the replica detached nothing can
# be made durable: the replay is answered 503 temporarily_unavailable,
# never "its tokens are revoked" while the token still works; with the
# replica back, the same replay revokes the token.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"
# shellcheck source=tests/integration/redis.sh
. "$LIB_DIR/redis.sh"

plan 8

M_PORT=9136
R_PORT=9137
BC_PORT=9199
RP_URI="https://127.0.0.1:$BC_PORT/cb"
KEY="$WORK/rp.key"

oidc_policies
JWKS=$($RP keygen "$KEY") || bail "authlib could not make a key"
oidc_client oidc-replica test-rp DIS-9401 "jwks: '$JWKS'"

redis_start master "$M_PORT"
redis_replica_start replica "$R_PORT" "$M_PORT"
(umask 077 && openssl rand -hex 32 >"$WORK/redis.key")
EXTRA_POLICIES="$WORK/policies" stack_start CARDS=0 MOBILE=0 \
    STORE_REDIS="value_key_file: $WORK/redis.key, address: 127.0.0.1:$M_PORT, prefix: \"o:\", wait_replicas: 1, timeouts: {command: 2s}"
ISS=$GW_ORIGIN
TOKEN_URL="$ISS/token"

# The replica detached (it stops acknowledging) and attached again (waited
# for until a write on the master is acknowledged: the replica reports its
# link up before the master counts it).
detach() { redis_cli "$R_PORT" REPLICAOF NO ONE >/dev/null; }
linked() { _replica_linked "$R_PORT" && redis_acked "$M_PORT"; }
attach() {
    redis_cli "$R_PORT" REPLICAOF 127.0.0.1 "$M_PORT" >/dev/null
    wait_until 30 linked
}

authz() {
    START=$($RP start "$ISS/authorize" test-rp "$RP_URI")
    gw GET "$(jq -r .url <<<"$START" | sed "s#^$ISS##")" -H "cookie: __Host-darvaza=$SESSION"
    LOC=$(hdr location)
}
code_of() { $RP callback "$LOC" "$(jq -r .state <<<"$START")" | jq -r '.code // empty'; }
token_pkjwt() { # CODE VERIFIER
    gw POST /token --data-urlencode grant_type=authorization_code --data-urlencode "code=$1" \
        --data-urlencode "redirect_uri=$RP_URI" --data-urlencode "code_verifier=$2" \
        --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
        --data-urlencode "client_assertion=$($RP assertion "$KEY" test-rp "$TOKEN_URL")"
}
oauth_error() { # STATUS ERROR DESC
    if [ "$STATUS" = "$1" ] && [ "$(jb .error)" = "$2" ]; then pass "$3"
    else fail "$3" "status $STATUS, body $(head -c 300 "$RESP_BODY_FILE")"; fi
}

R=$(pick_person registered 0)
[ -n "$R" ] || bail "people.json has no registered person"
login_person "$R"
SESSION=$LOGIN_TOKEN
[ -n "$SESSION" ] || bail "password + TOTP login failed: $STATUS $BODY"

# ---- a replayed code: the revocation must hold through a failover -------------------------
# (Detached, the replay fails at its first waited write, the client
# assertion's jti or the code's used mark, before the revocation: what
# this shows is the answer, never "revoked" while the token works.  The
# revocation's own durable delete is test_oidc_revoke's.)
authz
CODE=$(code_of)
VERIFIER=$(jq -r .verifier <<<"$START")
token_pkjwt "$CODE" "$VERIFIER"
AT=$(jb '.access_token // empty')
is "$STATUS|${#AT}" "200|43" "the code exchanged with the replica acknowledging: an access token"
gw GET /userinfo -H "authorization: Bearer $AT"
is "$STATUS" 200 "the access token works"

detach
token_pkjwt "$CODE" "$VERIFIER"
oauth_error 503 temporarily_unavailable "the code replayed with the replica detached: 503, not 'its tokens are revoked'"
gw GET /userinfo -H "authorization: Bearer $AT"
is "$STATUS" 200 "... and indeed the token was not revoked for good (still answered)"
ok "the replica is attached again" attach
token_pkjwt "$CODE" "$VERIFIER"
oauth_error 400 invalid_grant "the same replay with the replica back: 400 invalid_grant"
gw GET /userinfo -H "authorization: Bearer $AT"
is "$STATUS|$(jb .error)" "401|invalid_token" "... and the token is revoked"

finish
