#!/usr/bin/env bash
# t_conncap.sh - the process connection cap across worker threads: each
# worker accepts on its own SO_REUSEPORT socket and the kernel picks which
# one a client reaches, so at the cap the worker a newcomer lands on may hold
# nothing to shed while the other holds a connection that never started TLS.
# With limits.connections=2, one browser waiting in a QR long poll (a
# connection that serves someone) and one handshake-less connection fill the
# process; a newcomer's /healthz must answer whichever worker it reaches,
# the handshake-less connection going for it, the browser's poll untouched.
# Ten rounds, each with a fresh handshake-less connection: when the newcomer
# reached the worker without it (one time in two, the kernel's choice),
# that newcomer was refused before sheds crossed workers.
. "$(dirname "$0")/lib.sh"

ROUNDS=10
plan 9
stack_start CONFIG_SET="limits.connections=2"

# ---- a browser waiting: its connection serves someone, it is never shed ---------
JAR="$WORK/browser.jar"
gw POST /auth/qr -H "Origin: $GW_ORIGIN" -c "$JAR"
is "$STATUS" 201 "a browser opens a QR login"
QID=$(jb .id)
curl --http2 -sS --max-time 40 --cacert "$STATE_DIR/certs/root.pem" -b "$JAR" -o "$WORK/qrpoll.json" \
    -w '%{http_code}' "$GW_URL/auth/qr/$QID?wait=25" >"$WORK/qrpoll.status" 2>/dev/null &
POLL_PID=$!
OWN_PIDS+=("$POLL_PID")
qr_waiting() { [ "$(metric darvaza_long_polls_waiting)" = 1 ]; }
ok "its long poll waits (one connection of the two the process may hold)" wait_until 10 qr_waiting

# ---- rounds: a handshake-less connection fills the cap, a newcomer comes ---------
GW_PORT=${GW_URL##*:}
open_is() { [ "$(metric darvaza_open_connections)" = "$1" ]; }
flood_gone() { [ "$(tail -n 1 "$WORK/hold.$1.out" 2>/dev/null)" = "open 0" ]; }
served=0
gone=0
for r in $(seq 1 "$ROUNDS"); do
    # The last round's newcomer closed on the client's side first: until the
    # gateway has seen it go, it would be this round's idle connection to shed.
    wait_until 10 open_is 1 || diag "round $r: the last round's connections are still open"
    /usr/bin/python3 "$ROOT/tests/integration/holdconns.py" 127.0.0.1 "$GW_PORT" 1 127.0.0.40 30 \
        >"$WORK/hold.$r.out" 2>&1 &
    HOLD_PID=$!
    OWN_PIDS+=("$HOLD_PID")
    wait_until 10 open_is 2 || diag "round $r: the process did not reach 2 open connections"
    gw GET /healthz --interface 127.0.0.41 --resolve "localhost:8443:127.0.0.1"
    [ "$STATUS" = 200 ] && served=$((served + 1))
    wait_until 10 flood_gone "$r" && gone=$((gone + 1))
    kill "$HOLD_PID" 2>/dev/null
    wait "$HOLD_PID" 2>/dev/null
done
is "$served" "$ROUNDS" "at the cap, every newcomer's /healthz answered ($served of $ROUNDS rounds)"
is "$gone" "$ROUNDS" "each round's handshake-less connection was closed for it"
is "$(metric darvaza_connections_refused_full_total)" 0 "no newcomer was refused (darvaza_connections_refused_full_total)"
is "$(metric darvaza_connections_shed_total)" "$ROUNDS" "one shed per newcomer (darvaza_connections_shed_total)"
ok "the browser still waits: its connection was never shed" qr_waiting
wait "$POLL_PID"
is "$(cat "$WORK/qrpoll.status") $(jq -r '.state // empty' "$WORK/qrpoll.json")" "200 pending" \
    "its poll ends as a poll does (200 pending after its wait), not cut"
finish
