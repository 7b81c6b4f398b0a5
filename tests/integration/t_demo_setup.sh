#!/usr/bin/env bash
# t_demo_setup.sh - `make demo` (demo/run.sh) survives being interrupted:
# a start killed with SIGKILL half-way through its set-up (its whole
# process group, as a closed terminal would) leaves a state the next start
# detects and makes afresh, saying so; and a start with one of the demo's
# ports taken refuses before starting anything, naming the port and the
# program holding it.
. "$(dirname "$0")/lib.sh"

plan 14

RUN_LOG="$WORK/run"
HOLD="$WORK/hold"
# start_demo N [VAR=VALUE...]: demo/run.sh in its own process group (so that
# the test can kill it all at once), its output in $RUN_LOG.N.
start_demo() {
    local n=$1
    shift
    setsid env DEMO_STATE="$STATE_DIR" BUILD_DIR="$BUILD_DIR" "$@" "$ROOT/demo/run.sh" \
        >"$RUN_LOG.$n" 2>&1 </dev/null &
    DEMO_PID=$!
    OWN_PIDS+=("$DEMO_PID")
}
is_up() { grep -q 'darvaza demo is up' "$RUN_LOG.$1"; }
all_down() { ! "$ROOT/demo/stack.sh" status "$STATE_DIR" | grep -q ' runs '; }

# ---- killed half-way -----------------------------------------------------------------------
start_demo 1 SETUP_HOLD="$HOLD"
ok "the first start gets half-way: the gateway is up and one person is registered" wait_until 180 test -e "$HOLD"
ok "... and people.json is not written yet" test ! -e "$STATE_DIR/people.json"
{ kill -KILL -- "-$DEMO_PID"; wait "$DEMO_PID"; } 2>/dev/null
rm -f "$HOLD"
ok "the killed start left its daemons running (they have their own sessions)" \
    test -n "$(ss -ltnH 'sport = :9101')"

# ---- the next start makes it afresh ----------------------------------------------------------
start_demo 2
ok "the next start comes up" wait_until 240 is_up 2
like "$(cat "$RUN_LOG.2")" "left half made by an interrupted start: starting afresh" "and says it started afresh"
like "$(cat "$RUN_LOG.2")" "stopping what that start left running" "after stopping what the killed start left"
ok "it marks its set-up complete" test -e "$STATE_DIR/.set-up-complete"
A=$(pick_person registered 0)
login_person "$A"
is "$STATUS" 200 "a person of the new people.json logs in with password and TOTP (accounts and people.json agree)"
kill -TERM "$DEMO_PID"
wait "$DEMO_PID" 2>/dev/null
ok "Ctrl-C/SIGTERM stops the whole demo" wait_until 30 all_down
MARKED=$(stat -c %Y "$STATE_DIR/people.json")

# ---- a port taken ----------------------------------------------------------------------------
python3 -m http.server 9101 --bind 127.0.0.1 >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
OWN_PIDS+=("$HTTP_PID")
listening_9101() { [ -n "$(ss -ltnH 'sport = :9101')" ]; }
wait_until 10 listening_9101 || bail "python3 did not listen on 9101"
out=$(DEMO_STATE="$STATE_DIR" BUILD_DIR="$BUILD_DIR" timeout 60 "$ROOT/demo/run.sh" 2>&1 </dev/null)
rc=$?
isnt "$rc" 0 "with port 9101 taken the demo refuses to start (exit $rc)"
like "$out" "port 9101 \(registry peer\) is already taken by python3 \(pid $HTTP_PID\)" \
    "naming the port, what it is for and the program holding it"
unlike "$out" "registry peer on|OCSP responder on|gateway on|mkcards" "before starting or making anything"
ok "the complete state of the last start is kept (no afresh)" \
    test "$(stat -c %Y "$STATE_DIR/people.json")" = "$MARKED" -a -e "$STATE_DIR/.set-up-complete"
kill "$HTTP_PID" 2>/dev/null
wait "$HTTP_PID" 2>/dev/null

STACK_UP=1
finish
