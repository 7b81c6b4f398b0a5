#!/usr/bin/env bash
# t_oidc_expiry.sh - back-channel logout of a session that simply expires
# (docs/oidc.md "Logout"): with sessions idling out after 10 s, a session
# that signed in to a client and is left alone is logged out at that client
# by the gateway's expiry sweeper, with no request from the browser; a
# session still in use is not.  Run with the in-process store, and with
# Redis when REDIS=1 (tests/integration/redis.sh starts one).
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"

plan $((8 + OIDC_LOOP_WAIT_TESTS))

BC_PORT=9199
RP_URI="https://127.0.0.1:$BC_PORT/cb"

mkdir -p "$WORK/bc"
oidc_policies
JWKS=$($RP keygen "$WORK/rp.key") || bail "authlib could not make a key"
for i in 1 2; do
    oidc_client "oidc-ex$i" "ex-rp$i" "DIS-95$i" "jwks: '$JWKS'" "  backchannel_logout_uri: https://127.0.0.1:$BC_PORT/bc$i"
done
# REDIS=1: the same with the state in Redis (the sweeper's index, its claims).
oidc_stack_start CARDS=0 MOBILE=0
ISS=$GW_ORIGIN
LOG=$(gw_log)

# Sessions idle out after 10 s (reloaded: the sessions block is reloadable).
reloads() { grep -c '"event":"reloaded"' "$LOG" 2>/dev/null || true; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
BEFORE=$(reloads)
sed -i -e 's/^  idle: .*/  idle: 10s/' -e 's/^  idle_high: .*/  idle_high: 10s/' "$STATE_DIR/darvaza.yaml"
stack_reload
ok "sessions idle out after 10 s (reloaded)" wait_until 20 reloaded_since "$BEFORE"

$PY "$LIB_DIR/oidc_bc_listen.py" "$STATE_DIR/certs/peer-tls.pem" "$STATE_DIR/certs/peer-tls.key" \
    "$BC_PORT" "$WORK/bc" 2>"$WORK/bc.log" &
OWN_PIDS+=($!)
wait_until 10 test -e "$WORK/bc/ready" || bail "the back-channel listener did not start"

R=$(pick_person registered 0)
[ -n "$R" ] || bail "people.json has no registered person"
authz() { # SESSION CLIENT: a code for CLIENT with SESSION -> STATUS, LOCATION
    $RP start "$ISS/authorize" "$2" "$RP_URI" | jq -r .url >"$WORK/url"
    gw GET "$(sed "s#^$ISS##" "$WORK/url")" -H "cookie: __Host-darvaza=$1"
    LOCATION=$(hdr location)
}

# The session kept in use signs in first, so its expiry is swept no later
# than the other's.
login_person "$R"
KEPT=$LOGIN_TOKEN
login_person "$R"
LEFT=$LOGIN_TOKEN
[ -n "$KEPT" ] && [ -n "$LEFT" ] || bail "password + TOTP login failed: $STATUS $BODY"
authz "$KEPT" ex-rp2
authz "$LEFT" ex-rp1
like "$STATUS|$LOCATION" "^302\\|$RP_URI\\?code=" "two sessions each get a code for a client with a back-channel URI"

# Wait for the left session's logout token, using the kept one meanwhile
# (each use restarts its idle period).
SID_LEFT=$(sid_of "$LEFT")
SID_KEPT=$(sid_of "$KEPT")
left_told() { logout_tokens | grep -q "\"$SID_LEFT\""; }
keep_using() { gw GET /auth/session -H "$(bearer "$KEPT")"; left_told; }
ok "the session left alone expires and its client is sent a logout token, with no request from the browser" \
    wait_until 45 keep_using
is "$(logout_tokens | grep "\"$SID_LEFT\"")" "[\"ex-rp1\",\"$SID_LEFT\",\"$R\",\"logout+jwt\",true]" \
    "... naming the session (sid), the person (sub) and the back-channel event"
like "$(grep '"type":"oidc_logout_sent"' "$STATE_DIR/audit.log" | grep -F "$SID_LEFT")" '"clients":\["ex-rp1"\]' \
    "... and the sending is on the audit record"
gw GET /auth/session -H "$(bearer "$LEFT")"
problem 401 unauthenticated "the expired session is gone"
gw GET /auth/session -H "$(bearer "$KEPT")"
is "$STATUS|$(logout_tokens | grep -c "\"$SID_KEPT\"")" "200|0" "the session in use is alive and its client was told nothing"

oidc_loop_waits_check
finish
