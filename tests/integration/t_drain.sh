#!/usr/bin/env bash
# t_drain.sh - SIGTERM drains in three steps (docs/operations.md, Stopping):
# /readyz answers 503 draining at once while the listeners still accept and
# serve for drain.grace; then they close (new connections refused) while
# open requests go on; at drain.deadline what is still open is cut, and
# each cut request has its audit line.  Bad drain settings are refused with
# file:line.
. "$(dirname "$0")/lib.sh"

plan 20

# A route to the echo peer with room for slow answers (the shared echo
# policy times out after 1 s).
POL="$WORK/policies"
mkdir -p "$POL"
cp "$ROOT"/tests/integration/policies/*.yaml "$POL/"
cat >"$POL/drainslow.yaml" <<'EOF'
service: drainslow
registered_as: "DIS-9077"
upstream: http://127.0.0.1:9109
upstream_http: h2c
routes:
  - path: /api/drainslow/get
    methods: [GET]
    acr: low
limits: { timeout: 60s }
EOF

GRACE_MS=4000
DEADLINE_MS=9000
# The MSSP keeps a request to a switched-off phone longer than the deadline.
EXTRA_POLICIES="$POL" stack_start CONFIG_SET="drain.grace=${GRACE_MS}ms drain.deadline=${DEADLINE_MS}ms" \
    MSSP_DELIVERY_TIMEOUT=60
start_echo || bail "the echo peer did not start on $ECHO_ADDR"
CFG="$STATE_DIR/darvaza.yaml"
AUDIT="$STATE_DIR/audit.log"
GWPID=$(cat "$STATE_DIR/pids/darvazad.pid")
[ -n "$GWPID" ] || bail "no gateway pid"

# ---- bad settings: file:line ------------------------------------------------------------------
bad="$WORK/bad.yaml"
sed -e 's/^  grace: .*/  grace: 5s/' -e 's/^  deadline: .*/  deadline: 2s/' "$CFG" >"$bad"
line=$(grep -n '^  deadline:' "$bad" | cut -d: -f1)
out=$("$BUILD_DIR/darvazad" -c "$bad" --check 2>&1)
like "$out" "bad\.yaml:$line: drain\.deadline: must not be shorter than grace" \
    "deadline shorter than grace -> refused with file:line"
sed -e 's/^  grace: .*/  grace: soon/' "$CFG" >"$bad"
line=$(grep -n '^  grace:' "$bad" | cut -d: -f1)
out=$("$BUILD_DIR/darvazad" -c "$bad" --check 2>&1)
like "$out" "bad\.yaml:$line: drain\.grace: " "a grace that is not a duration -> refused with file:line"
sed -e 's/^  grace: .*/  grace: 6m/' "$CFG" >"$bad"
nok "a grace over 5m is refused" "$BUILD_DIR/darvazad" -c "$bad" --check

# ---- before -----------------------------------------------------------------------------------
gw GET /readyz
is "$STATUS" 200 "ready before the signal"
A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || bail "no session for $A"

# A slow forward that finishes during the drain, one that outlasts the
# deadline, and a mobile login's long poll (a phone that is off never
# answers) that outlasts it too.
slow() { # slow PROBE DELAY_MS OUTFILE
    curl --http2 -sS -o "$3.body" -w '%{http_code}' --max-time 40 --cacert "$STATE_DIR/certs/root.pem" \
        -H "$(bearer "$TOK")" -H "$(probe_hdr "$1")" "$GW_URL/api/drainslow/get?delay_ms=$2" >"$3" 2>"$3.err"
}
slow "probe-$$-done" 6000 "$WORK/done" &
DONE_PID=$!
slow "probe-$$-cut" 30000 "$WORK/cut" &
CUT_PID=$!
OWN_PIDS+=("$DONE_PID" "$CUT_PID")
OFF=$(people | jq -r 'map(select(.sim == true and (.phone_on | not) and (.sim_revoked | not))) | .[0].fin // empty')
[ -n "$OFF" ] || bail "people.json has no SIM holder with the phone off"
gw_json POST /auth/mobile "$(jq -nc --arg p "$(person "$OFF" phone)" --arg f "$OFF" '{phone:$p, fin:$f}')" \
    -H "Origin: $GW_ORIGIN"
MID=$(jb '.id // empty')
MCOOKIE=$(mob_cookie)
[ "$STATUS" = 202 ] && [ -n "$MID" ] || bail "mobile login did not start ($STATUS $BODY)"
curl --http2 -sS -o /dev/null -D "$WORK/poll.hdr" -w '%{http_code}' --max-time 40 -H "cookie: $MCOOKIE" \
    --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/auth/mobile/$MID?wait=25" >"$WORK/poll" 2>/dev/null &
POLL_PID=$!
OWN_PIDS+=("$POLL_PID")

rid_at_echo() { peer_request_with "$1" echo | jq -r '.headers["darvaza-request-id"] // empty'; }
both_at_echo() { [ -n "$(rid_at_echo "probe-$$-done")" ] && [ -n "$(rid_at_echo "probe-$$-cut")" ]; }
ok "both slow requests reached the back end" wait_until 20 both_at_echo
CUT_RID=$(rid_at_echo "probe-$$-cut")

# ---- the signal: readiness off at once, still serving -------------------------------------
kill -TERM "$GWPID"
T0=$(date +%s%N)
readyz_503() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/readyz")" = 503 ]; }
wait_until 5 readyz_503
gw GET /readyz
problem 503 draining "during the grace /readyz answers 503 draining (a new connection, accepted)"
MG=$(curl -s -w '\n%{http_code}' --max-time 3 "http://127.0.0.1:9180/readyz")
is "$(tail -n 1 <<<"$MG") $(head -n 1 <<<"$MG" | jq -r .code 2>/dev/null)" "503 draining" \
    "the management listener's /readyz says the same"
gw GET "/api/echo/get?probe=grace" -H "$(bearer "$TOK")"
is "$STATUS" 200 "during the grace a new request is still forwarded and served"
ELAPSED_MS=$((($(date +%s%N) - T0) / 1000000))
ok "... and all that within the grace (${ELAPSED_MS} ms of ${GRACE_MS})" test "$ELAPSED_MS" -lt "$GRACE_MS"

# ---- after the grace: listeners closed ----------------------------------------------------------
closed() { grep -q '"drain_listeners_closed"' "$(gw_log)"; }
ok "after the grace the gateway logs that its listeners closed" wait_until 15 closed
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/healthz")
is "$code" 000 "a new connection after the grace is refused"

# ---- the request that fits in the deadline completes ----------------------------------------
wait "$DONE_PID"
is "$(cat "$WORK/done")" 200 "the slow request begun before the signal completes with 200 during the drain"

# ---- the deadline cuts the rest, on record ---------------------------------------------------
gone() { ! kill -0 "$GWPID" 2>/dev/null; }
ok "the gateway exits after the deadline" wait_until 30 gone
wait "$CUT_PID"
isnt "$(cat "$WORK/cut")" 200 "the request still running at the deadline did not complete"
wait "$POLL_PID"
isnt "$(cat "$WORK/poll")" 200 "nor did the long poll"
CUTLINE=$(grep -F "\"$CUT_RID\"" "$AUDIT" | grep -F '"forward_result"' | head -n 1)
is "$(jq -r '[.result, .sent] | map(tostring) | join(" ")' <<<"${CUTLINE:-null}" 2>/dev/null)" "drain_cut true" \
    "the audit log records the forward cut at the deadline as drain_cut"
PCUT=$(grep -F '"type":"drain_cut"' "$AUDIT" | grep -F '"route":"auth_mobile_poll"' | head -n 1)
is "$(jq -r '[.method, .answered] | map(tostring) | join(" ")' <<<"${PCUT:-null}" 2>/dev/null)" "GET false" \
    "and the cut long poll has its own drain_cut line"
ok "the audit log still verifies after the drain" "$BUILD_DIR/darvaza" audit verify "$AUDIT"
log_events=$(jq -r 'select(.event | test("^drain")) | .event' "$(gw_log)" 2>/dev/null | tr '\n' ' ')
is "$log_events" "draining drain_listeners_closed " "the ops log tells the drain's steps in order"

STACK_UP=1
finish
