#!/usr/bin/env bash
# t_redis_loop_mob.sh - the QR and mobile logins do not wait on Redis
# (docs/internals/redis-store.md "QR login, mobile login and mobile
# signing"): one worker
# loop, store.backend redis.  A QR login (the phone answering), a mobile
# login and a mobile signing through the MSSP make no blocking Redis round
# trip on the loop (darvaza_store_loop_waits_total stays 0; under
# DARVAZA_DEBUG_LOOP_WAITS=1 each one would be logged with its stack, and
# loop_wait_callers.py names the file that asked).  With Redis paused
# (SIGSTOP), a QR start and a QR poll wait while /healthz is answered on the
# same loop, then answer 503 state_unavailable after the command timeout;
# Redis resumed, a QR login works again.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 29

RPORT=9143

redis_loop_stack "$RPORT" "m:"
gw GET /readyz
is "$STATUS" 200 "one worker loop, store.backend redis: ready"

A=$(people | jq -r 'map(select(.sim == true and .sim_revoked == false and .phone_on)) | .[0].fin // empty')
[ -n "$A" ] || bail "people.json lacks a SIM holder with a phone"
(umask 077 && person "$A" sim_pin >"$WORK/a.pin")
JAR="$WORK/browser.jar"

# qr_new: a QR login opened by the browser (JAR); QID on 201.
qr_new() {
    gw POST /auth/qr -H "Origin: $GW_ORIGIN" -c "$JAR"
    QID=
    [ "$STATUS" = 201 ] && QID=$(jb '.id // empty')
    return 0
}
# qr_scan: the browser reads its code, the phone of A answers it; SCAN_CODE.
qr_scan() {
    gw GET "/auth/qr/$QID/code" -b "$JAR"
    SCAN_CODE=$("$BUILD_DIR/darvaza-peer" phone scan "$(jb -r '.payload // empty')" \
        --gateway "$GW_URL" --cacert "$STATE_DIR/certs/root.pem" --key "$(person "$A" sim_key)" \
        --pin-file "$WORK/a.pin" --cert "$(person "$A" sim_cert)" --origin "$GW_ORIGIN" \
        2>"$WORK/scan.err" | jq -r '.code // .state // empty' 2>/dev/null)
}

# ---- a QR login and a mobile login on Redis, nothing waiting on the loop ------------------
qr_new
is "$STATUS" 201 "POST /auth/qr -> 201"
gw GET "/auth/qr/$QID?wait=1" -b "$JAR"
is "$STATUS $(jb .state)" "200 pending" "the browser's poll: pending until the phone answers"
qr_scan
is "$SCAN_CODE" accepted "the phone answers the code -> accepted"
qr_scan
is "$SCAN_CODE" qr_used "the same QR login answered twice -> qr_used (single use on Redis)"
gw GET "/auth/qr/$QID?wait=5" -b "$JAR"
is "$STATUS $(jb .state)" "200 complete" "the browser's poll gets the session"
TOKEN=$(jb '.token // empty')
gw GET /api/registry/me -H "$(bearer "$TOKEN")"
is "$STATUS $(jb .fin)" "200 $A" "the QR session works"
gw GET "/auth/qr/$QID?wait=1" -b "$JAR"
problem 404 not_found "the QR login completes once"

# A second poll of the same QR login waiting while the phone answers: woken.
qr_new
curl -s -o "$WORK/woken.body" --max-time 20 --cacert "$STATE_DIR/certs/root.pem" -b "$JAR" \
    "$GW_URL/auth/qr/$QID?wait=15" &
WOKEN=$!
OWN_PIDS+=("$WOKEN")
qr_scan
is "$SCAN_CODE" accepted "a second QR login: the phone answers while the browser waits"
wait "$WOKEN"
is "$(jq -r .state "$WORK/woken.body" 2>/dev/null)" complete "the waiting poll is woken with the session"

mobile_login "$A"
ok "a mobile login through the MSSP gets a session" test -n "$MTOKEN"
gw GET /api/registry/me -H "$(bearer "$MTOKEN")"
is "$STATUS $(jb .fin)" "200 $A" "the mobile session works"
gw GET "/auth/mobile/AAAAAAAAAAAAAAAAAAAAAA?wait=1"
problem 404 not_found "an unknown mobile login -> 404 not_found"

# A mobile signing (the same phone: the login's lock is released).
DOC_B64=$(printf 'Court notice 1/2026\n' | base64 -w0)
gw_json POST /sign/mobile "$(jq -nc --arg p "$(person "$A" phone)" --arg f "$A" --arg d "$DOC_B64" \
    '{phone:$p, fin:$f, document:$d}')" -H "Origin: $GW_ORIGIN"
is "$STATUS" 202 "a mobile signing starts (POST /sign/mobile -> 202)"
SID=$(jb '.id // empty')
for _ in 1 2 3; do
    gw GET "/sign/mobile/$SID?wait=10"
    [ "$STATUS" = 200 ] && [ "$(jb .state)" = pending ] || break
done
is "$STATUS $(jb .state) $(jb .report.indication)" "200 complete TOTAL_PASSED" \
    "the phone signs: complete, and the signature verifies"
gw GET "/sign/mobile/$SID?wait=1"
problem 404 not_found "the signing request completes once"

# The files of these flows (a wait of the waiting forms of core/startlimit.c
# is the caller's that still uses them, e.g. registration; it is counted by
# the total below).
MINE='^gateway/(auth/auth_qr|auth/auth_mobile|sign/sign_mobile|mssp/[a-z_]+|core/gwstorecall)\.c '
# The count and the log agree (a wait is counted, then logged: looked at again
# until a periodic one in between is in both).
logged_all() {
    local w
    w=$(metric darvaza_store_loop_waits_total)
    "$LIB_DIR/loop_wait_callers.py" "$BUILD_DIR/darvazad" "$(gw_log)" >"$WORK/callers"
    [ -n "$w" ] && [ "$(wc -l <"$WORK/callers")" = "$w" ]
}
ok "every blocking round trip on the loop (darvaza_store_loop_waits_total) is logged with its stack" \
    wait_until 10 logged_all
is "$(grep -cE "$MINE" "$WORK/callers")" 0 "none of them was made by the QR, mobile login or mobile signing code"
is "$(metric darvaza_store_loop_waits_total)" 0 "darvaza_store_loop_waits_total is 0: nothing waited on the loop"
if [ -s "$WORK/callers" ]; then
    diag "loop waits by the file that asked: $(sort "$WORK/callers" | uniq -c | tr '\n' ';')"
fi

# ---- Redis paused: a QR start and a QR poll wait, the loop answers others ------------------
qr_new
PENDING=$QID
kill -STOP "${REDIS_PIDS[main]}"
curl -s -o "$WORK/start.body" -w '%{http_code}' --max-time 20 --cacert "$STATE_DIR/certs/root.pem" \
    -X POST -H "Origin: $GW_ORIGIN" "$GW_URL/auth/qr" >"$WORK/start.status" 2>/dev/null &
START=$!
curl -s -o "$WORK/poll.body" -w '%{http_code}' --max-time 20 --cacert "$STATE_DIR/certs/root.pem" \
    -b "$JAR" "$GW_URL/auth/qr/$PENDING?wait=1" >"$WORK/poll.status" 2>/dev/null &
POLL=$!
OWN_PIDS+=("$START" "$POLL")
# Both commands queued on the paused server's sockets (the subscriber's PING
# is 14 bytes; a QR start's count and a poll's read are longer).
queued() { ss -tnH state established "( sport = :$RPORT )" | awk '$1 > 30 { n++ } END { exit !(n >= 1) }'; }
ok "the QR start and poll are waiting for Redis (commands queued on the paused server)" wait_until 10 queued
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the same loop meanwhile"
ok "the QR start is still waiting" kill -0 "$START"
ok "the QR poll is still waiting" kill -0 "$POLL"
wait "$START" "$POLL"
is "$(cat "$WORK/start.status") $(jq -r .code "$WORK/start.body" 2>/dev/null)" "503 state_unavailable" \
    "after the command timeout the QR start -> 503 state_unavailable (fail closed)"
is "$(cat "$WORK/poll.status") $(jq -r .code "$WORK/poll.body" 2>/dev/null)" "503 state_unavailable" \
    "and the QR poll -> 503 state_unavailable"
kill -CONT "${REDIS_PIDS[main]}"
ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis resumed: ready again by itself" wait_until 20 ready

# ---- and a QR login works again ---------------------------------------------------------------
qr_started() { qr_new; [ "$STATUS" = 201 ]; }
wait_until 10 qr_started
is "$STATUS" 201 "a QR login starts again"
qr_scan
gw GET "/auth/qr/$QID?wait=5" -b "$JAR"
is "$SCAN_CODE $STATUS $(jb .state)" "accepted 200 complete" "the phone answers and the browser gets its session"

finish
