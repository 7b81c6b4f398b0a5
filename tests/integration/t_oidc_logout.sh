#!/usr/bin/env bash
# t_oidc_logout.sh - back-channel logout (docs/oidc.md "Logout") when a
# session ends without a logout request: ended from the account page (one
# session, and "sign out everywhere else"), and the record of which clients
# a session signed in to under concurrent authorizations (one store entry
# per session and client, so none is lost).  REDIS=1: the state in Redis
# (tests/integration/redis.sh starts one).
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"

plan $((15 + OIDC_LOOP_WAIT_TESTS))

BC_PORT=9199
RP_URI="https://127.0.0.1:$BC_PORT/cb"
KEY="$WORK/rp.key"
NCLIENTS=6

# NCLIENTS clients of one key, each with its own back-channel URI on the
# listener this script serves.
mkdir -p "$WORK/bc"
oidc_policies
JWKS=$($RP keygen "$KEY") || bail "authlib could not make a key"
for i in $(seq 1 $NCLIENTS); do
    oidc_client "oidc-lo$i" "lo-rp$i" "DIS-93$i" "jwks: '$JWKS'" "  backchannel_logout_uri: https://127.0.0.1:$BC_PORT/bc$i"
done
# REDIS=1: the same with the state in Redis.
oidc_stack_start CARDS=0 PHONE_DELAY_MS=100
ISS=$GW_ORIGIN

$PY "$LIB_DIR/oidc_bc_listen.py" "$STATE_DIR/certs/peer-tls.pem" "$STATE_DIR/certs/peer-tls.key" \
    "$BC_PORT" "$WORK/bc" 2>"$WORK/bc.log" &
OWN_PIDS+=($!)
wait_until 10 test -e "$WORK/bc/ready" || bail "the back-channel listener did not start"

# A registered person with a SIM and a phone: a high (mobile) session
# changes the password at the end.
R=$(people | jq -r 'map(select(.sim == true and .registered == true and .phone_on == true and .sim_revoked != true))[0].fin // empty')
[ -n "$R" ] || bail "people.json has no registered person"
count_for() { logout_tokens | grep -c "\"$1\"" || true; } # SID: tokens naming it
has_count() { [ "$(count_for "$1")" -ge "$2" ]; }

login_person "$R"
S1=$LOGIN_TOKEN
[ -n "$S1" ] || bail "password + TOTP login failed: $STATUS $BODY"

# ---- the clients of one session, recorded under concurrent authorizations ---------------
# Every client gets a code for S1 at the same moment (the gateway's workers
# run them in parallel): each (session, client) is its own store entry.
for i in $(seq 1 $NCLIENTS); do
    $RP start "$ISS/authorize" "lo-rp$i" "$RP_URI" | jq -r .url >"$WORK/url$i"
done
for i in $(seq 1 $NCLIENTS); do
    "${CURL_GW[@]}" -o /dev/null -w '%{http_code} %{redirect_url}\n' \
        -H "cookie: __Host-darvaza=$S1" "$(cat "$WORK/url$i")" >"$WORK/authz$i" 2>&1 &
done
wait_until 20 bash -c "cat $WORK/authz* | grep -c '^302 $RP_URI?code=' | grep -qx $NCLIENTS"
is "$(cat "$WORK"/authz* | grep -c "^302 $RP_URI?code=")" "$NCLIENTS" \
    "$NCLIENTS clients get a code for one session at the same moment"

login_person "$R"
S2=$LOGIN_TOKEN
$RP start "$ISS/authorize" lo-rp1 "$RP_URI" | jq -r .url >"$WORK/url-s2"
gw GET "$(sed "s#^$ISS##" "$WORK/url-s2")" -H "cookie: __Host-darvaza=$S2"
like "$STATUS|$(hdr location)" "^302\\|$RP_URI\\?code=" "a second session signs in to lo-rp1"
login_person "$R"
S3=$LOGIN_TOKEN
[ -n "$S2" ] && [ -n "$S3" ] || bail "the second or third login failed: $STATUS $BODY"

# ---- "end this session" on the account page ---------------------------------------------
SID2=$(sid_of "$S2")
gw DELETE "/api/account/sessions/$SID2" -H "$(bearer "$S3")"
is "$STATUS" 204 "the account page ends the second session"
wait_until 10 has_count "$SID2" 1
is "$(logout_tokens | grep "\"$SID2\"")" "[\"lo-rp1\",\"$SID2\",\"$R\",\"logout+jwt\",true]" \
    "... and lo-rp1 receives a logout token for it (sid, sub, typ logout+jwt, the event)"
gw GET /auth/session -H "$(bearer "$S2")"
problem 401 unauthenticated "... the ended session is gone"

# ---- "sign out everywhere else" ---------------------------------------------------------
SID1=$(sid_of "$S1")
gw DELETE "/api/account/sessions?except=current" -H "$(bearer "$S3")"
is "$STATUS" 204 "sign out everywhere else from the third session"
wait_until 15 has_count "$SID1" $NCLIENTS
is "$(logout_tokens | grep "\"$SID1\"" | jq -r '.[0]' | sort | tr '\n' ' ')" \
    "$(for i in $(seq 1 $NCLIENTS); do printf 'lo-rp%s ' "$i"; done)" \
    "every one of the $NCLIENTS clients of the first session gets its logout token: none was lost"
is "$(logout_tokens | grep "\"$SID1\"" | jq -c '.[1:]' | sort -u)" "[\"$SID1\",\"$R\",\"logout+jwt\",true]" \
    "... each naming the session, the person and the back-channel event"
gw GET /auth/session -H "$(bearer "$S3")"
is "$STATUS" 200 "the current session is kept"
is "$(logout_tokens | wc -l)" $((NCLIENTS + 1)) "no client is told twice, and the kept session's clients not at all"
like "$(grep -c '"type":"oidc_logout_sent"' "$STATE_DIR/audit.log")" '^[2-9]' \
    "each back-channel logout is on the audit record"

# ---- a new password ends the other sessions: their clients are told ----------------------
# S3 signs in to lo-rp3; a mobile-signature (high) session sets a new
# password, which ends S3 at once.
$RP start "$ISS/authorize" lo-rp3 "$RP_URI" | jq -r .url >"$WORK/url-s3"
gw GET "$(sed "s#^$ISS##" "$WORK/url-s3")" -H "cookie: __Host-darvaza=$S3"
like "$STATUS|$(hdr location)" "^302\\|$RP_URI\\?code=" "the third session signs in to lo-rp3"
mobile_login "$R"
[ -n "$MTOKEN" ] || bail "the mobile login failed: $STATUS $BODY"
gw_json POST /api/account/password "$(jq -nc --arg p "Logout-test-$$-New-Horse" '{password:$p}')" \
    -H "$(bearer "$MTOKEN")"
is "$STATUS $(jb .sessions_ended)" "200 1" "a high session changes the password: the third session ends"
SID3=$(sid_of "$S3")
wait_until 10 has_count "$SID3" 1
is "$(logout_tokens | grep "\"$SID3\"")" "[\"lo-rp3\",\"$SID3\",\"$R\",\"logout+jwt\",true]" \
    "... and lo-rp3 receives its logout token at once, not when the session would have expired"

oidc_loop_waits_check
finish
