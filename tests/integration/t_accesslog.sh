#!/usr/bin/env bash
# t_accesslog.sh - the access log and the ops log as an operator reads them
# (docs/operations.md "Logs"): one access line per request with the request
# id a citizen reads as "instance", the route template and never a FIN
# (unless access_log.log_fin), an upstream failure at warning with its
# reason, per-subsystem debug lines without secrets, SIGUSR1 reopen, and a
# bad access_log value refused with file:line.
. "$(dirname "$0")/lib.sh"
plan 35

stack_start
CFG="$STATE_DIR/darvaza.yaml"
ACC="$STATE_DIR/logs/access.log"
LOG=$(gw_log)
GW_PID=$(listener_pid 8443)

# access_line RID: the access log's line for that request id.
access_line() { grep -F "\"rid\":\"$1\"" "$ACC" 2>/dev/null | tail -n 1; }
has_access_line() { [ -n "$(access_line "$1")" ]; }
# acc RID FILTER: jq over that line.
acc() { access_line "$1" | jq -r "$2"; }
reloads() { grep -c '"event":"reloaded"' "$LOG" 2>/dev/null || true; }
# reload_and_wait: SIGHUP, then wait for the next "reloaded" line.
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
reload_and_wait() {
    local before
    before=$(reloads)
    stack_reload
    wait_until 20 reloaded_since "$before"
}

# ---- debug for auth and forward only, through gateway.log_levels ------------------------------
sed -i 's/ auth: default,/ auth: debug,/; s/ forward: default,/ forward: debug,/' "$CFG"
ok "log_levels reloaded (auth and forward at debug)" reload_and_wait

A=$(pick_person registered 0)
B=$(pick_person registered 1)
PW=$(person "$A" password)
SECRET=$(person "$A" totp_secret)
OTP=$(totp_fresh "$A" "$SECRET")
gw_json POST /auth/password "$(jq -nc --arg f "$A" --arg p "$PW" --arg o "$OTP" '{fin:$f,password:$p,otp:$o}')"
TOK=$(jb '.token // empty')
LOGIN_RID=$(hdr darvaza-request-id)
is "$STATUS" 200 "password + TOTP login"

# ---- a forward --------------------------------------------------------------------------------
gw GET /api/registry/me -H "$(bearer "$TOK")"
FWD_RID=$(hdr darvaza-request-id)
is "$STATUS" 200 "GET /api/registry/me forwarded"
ok "the forward has an access line with its rid" wait_until 10 has_access_line "$FWD_RID"
is "$(acc "$FWD_RID" '[.method, .route, .status, .up_status, .means, .acr, .gw] | join(" ")')" \
    "GET /api/registry/me 200 200 password substantial darvaza-demo" \
    "forward line: method, route template, status, upstream status, means, acr, gateway"
is "$(acc "$FWD_RID" '[(.bytes > 0), (.dur_ms >= 0), (.up_ms >= 0), (.sid|length), (.client), (.path)] | join(" ")')" \
    "true true true 12 127.0.0.1 /api/registry/me" \
    "forward line: bytes, durations, a 12-character session hash, client, a FIN-free path"
like "$(access_line "$FWD_RID")" '"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"' \
    "time is RFC 3339 UTC with milliseconds"
ok "the login has an access line too" has_access_line "$LOGIN_RID"

# ---- a denied forward whose path carries a FIN ------------------------------------------------
gw GET "/api/registry/persons/$B" -H "$(bearer "$TOK")"
problem 403 insufficient_assurance "a password session may not look up a person (403 insufficient_assurance)"
DENY_RID=$(jb .instance)
is "$DENY_RID" "$(hdr darvaza-request-id)" "the problem's instance is the request id"
ok "the refusal has an access line with the instance as rid" wait_until 10 has_access_line "$DENY_RID"
is "$(acc "$DENY_RID" '[.status, .route, (has("path")|tostring)] | join(" ")')" \
    "403 /api/registry/persons/{fin} false" "denied line: status, route template, no path"
unlike "$(access_line "$DENY_RID")" "$B" "the looked-up FIN is not in the access line"
ok "forward_denied in the ops log carries the rid, structured, without the FIN" \
    bash -c "grep -F '\"rid\":\"$DENY_RID\"' '$LOG' | grep '\"event\":\"forward_denied\"' | grep -F '\"code\":\"insufficient_assurance\"' | grep -vqF '$B'"

# ---- a dead back end: 502 with a warning that says why ----------------------------------------
gw GET /api/echo/get -H "$(bearer "$TOK")"
problem 502 upstream_unavailable "nothing listens on the echo back end: 502 upstream_unavailable"
DEAD_RID=$(jb .instance)
ok "the 502 has an access line with the instance as rid" wait_until 10 has_access_line "$DEAD_RID"
is "$(acc "$DEAD_RID" '[.status, .route, (has("up_status")|tostring)] | join(" ")')" \
    "502 /api/echo/get false" "502 line: status, route, no upstream status (nothing answered)"
W=$(grep -F "\"rid\":\"$DEAD_RID\"" "$LOG" | grep '"event":"upstream_failed"' | tail -n 1)
is "$(jq -r '[.level, .reason, .service] | join(" ")' <<<"$W" 2>/dev/null)" \
    "warn connect_refused echo" "upstream_failed at warning with reason connect_refused and the service"

# ---- debug lines of the login and the forward, no secret anywhere -----------------------------
ok "debug login_ok carries the rid of the login" \
    bash -c "grep -F '\"rid\":\"$LOGIN_RID\"' '$LOG' | grep -q '\"event\":\"login_ok\"'"
ok "debug forward_allowed, forward_sent, upstream_answered carry the forward's rid" \
    bash -c "for e in forward_allowed forward_sent upstream_answered; do grep -F '\"rid\":\"$FWD_RID\"' '$LOG' | grep -q \"\\\"event\\\":\\\"\$e\\\"\" || exit 1; done"
LEAKS=""
for f in "$LOG" "$ACC"; do
    grep -qF "$PW" "$f" && LEAKS+="password in $f; "
    grep -qF "$TOK" "$f" && LEAKS+="token in $f; "
    grep -qE "[\"=: ]$OTP([\",; ]|$)" "$f" && LEAKS+="OTP in $f; "
done
is "$LEAKS" "" "neither log holds the password, the one-time code or the session token"

# ---- log_fin: true logs the FIN-bearing path ----------------------------------------------------
sed -i 's/^  log_fin: false.*/  log_fin: true/' "$CFG"
ok "access_log.log_fin: true reloaded" reload_and_wait
gw GET "/api/registry/persons/$B" -H "$(bearer "$TOK")"
FIN_RID=$(jb .instance)
wait_until 10 has_access_line "$FIN_RID"
is "$(acc "$FIN_RID" '.path')" "/api/registry/persons/$B" "with log_fin: true the path with the FIN is logged"

# ---- SIGUSR1: reopen after a rename -----------------------------------------------------------
mv "$ACC" "$ACC.1"
kill -USR1 "$GW_PID"
ok "after SIGUSR1 the access log is created again" wait_until 10 test -f "$ACC"
gw GET /healthz
HZ_RID=$(hdr darvaza-request-id)
ok "the next request is logged in the new file" wait_until 10 has_access_line "$HZ_RID"
ok "and not in the renamed one" bash -c "! grep -qF '\"rid\":\"$HZ_RID\"' '$ACC.1'"

# ---- a burst: the writer takes the queued lines in batches (one writev each) --------------------
# 400 requests on 40 concurrent streams: exactly 400 more lines, each one whole JSON object.
BEFORE=$(wc -l <"$ACC")
timeout 120 h2load -n 400 -c 4 -m 10 -t 1 "$GW_URL/healthz" >"$WORK/burst.txt" 2>&1
like "$(cat "$WORK/burst.txt")" "status codes: 400 2xx" "a burst of 400 /healthz answered 200"
ok "the burst wrote 400 access lines" wait_until 10 bash -c "[ \$(wc -l <'$ACC') -ge $((BEFORE + 400)) ]"
is "$(tail -n +$((BEFORE + 1)) "$ACC" | jq -c 'select(.path == "/healthz") | .status' | grep -c '^200$')" 400 \
    "every line of the burst is a whole JSON object (jq reads 400 with status 200)"

# ---- a bad value names file:line --------------------------------------------------------------
sed 's/^  output: file.*/  output: sideways/' "$CFG" >"$WORK/bad.yaml"
LINE=$(grep -n '^  output: sideways' "$WORK/bad.yaml" | cut -d: -f1)
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/bad.yaml" --check 2>&1)
like "$OUT" "bad\.yaml:$LINE: access_log\.output" "access_log.output: sideways is refused with file:line ($OUT)"
sed 's/ forward: debug,/ forward: loud,/' "$CFG" >"$WORK/bad2.yaml"
LINE=$(grep -n ' forward: loud,' "$WORK/bad2.yaml" | cut -d: -f1)
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/bad2.yaml" --check 2>&1)
like "$OUT" "bad2\.yaml:$LINE: gateway\.log_levels\.forward" "a bad subsystem level is refused with file:line ($OUT)"
is "$(listener_pid 8443)" "$GW_PID" "the gateway ran throughout (no restart)"

# ---- stopping: a line still waiting for the writer is written, not lost -----------------------
# The writer lets lines gather for a moment after each write; a stop must
# end that wait and write them before the gateway exits.
gw GET /healthz
LAST_RID=$(hdr darvaza-request-id)
gw GET /healthz
LAST_RID2=$(hdr darvaza-request-id)
kill -TERM "$GW_PID"
ok "the gateway stops on SIGTERM" wait_until 30 bash -c "! kill -0 $GW_PID 2>/dev/null"
ok "the requests just before the stop are in the access log" \
    bash -c "grep -qF '\"rid\":\"$LAST_RID\"' '$ACC' && grep -qF '\"rid\":\"$LAST_RID2\"' '$ACC'"

finish
