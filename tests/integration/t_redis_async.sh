#!/usr/bin/env bash
# t_redis_async.sh - the forward path does not wait on Redis
# (docs/internals/redis-store.md "Asynchronous on the loops"): one worker
# loop, store.backend redis.  A forwarded request on a rate-limited route
# waits for a paused Redis (SIGSTOP) while, on the same loop, /healthz and a
# forward on a route without a rate (its session in the near cache) are
# answered; the waiting one answers 503 state_unavailable after the command
# timeout, while Redis is still stopped; a client that gives up meanwhile
# harms nothing; Redis resumed, service comes back by itself.  Paused once
# more, with no request in flight: a store call the instance makes on its
# own (the OIDC expiry sweeper's, every 5 s) waits on the paused server
# while /healthz is answered on the loop (it once ran on the loop and held
# it for the command timeout on each tick).  The rate limit stays exact: one count per
# request on Redis, 429 rate_limited from the first request over it.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 21

RPORT=9141
RATE=4

# The echo service of the other scripts, plus a route with a per-subject
# rate: a rate per hour, so the whole script runs in one window.
mkdir -p "$WORK/policies"
cp "$ROOT"/tests/integration/policies/*.yaml "$WORK/policies/"
sed -i "s#^routes:#routes:\n  - path: /api/echo/rated\n    methods: [GET]\n    acr: low\n    limits: { rate: $RATE/h per subject }#" \
    "$WORK/policies/echo.yaml"

redis_start main "$RPORT"
(umask 077 && openssl rand -hex 32 >"$WORK/redis.key")  # the value key (names and values sealed)
EXTRA_POLICIES="$WORK/policies" stack_start CONFIG_SET="gateway.workers=1" \
    STORE_REDIS="value_key_file: $WORK/redis.key, address: 127.0.0.1:$RPORT, prefix: \"a:\", timeouts: {command: 8s}"
start_echo
gw GET /readyz
is "$STATUS" 200 "one worker loop, store.backend redis: ready"

R1=$(pick_person registered 0)
login_person "$R1"
TOK=$LOGIN_TOKEN
is "$STATUS" 200 "login"

# ---- exact rate: one count on Redis per request, the first over it refused ------------------
CODES=""
for i in $(seq 1 $((RATE + 2))); do
    gw GET /api/echo/rated -H "$(bearer "$TOK")"
    CODES="$CODES $STATUS"
    [ "$STATUS" = 429 ] && LAST429_CODE=$(jb .code)
done
is "$CODES" "$(printf ' 200%.0s' $(seq 1 $RATE)) 429 429" "$RATE requests within the rate -> 200, the next two -> 429"
is "${LAST429_CODE:-}" rate_limited "the refusal is rate_limited"
# The counter's name is a keyed hash; it is the only rate counter so far.
RKEY=$(redis_cli "$RPORT" --scan --pattern 'a:rate:*' | tr -d '\r')
is "$(wc -w <<<"$RKEY") $(redis_cli "$RPORT" GET "$RKEY" | tr -d '\r')" "1 $((RATE + 2))" \
    "Redis counted each of the $((RATE + 2)) requests once (exact, one counter)"

# ---- Redis paused: the waiting request does not hold the loop ---------------------------------
login_person "$(pick_person registered 1)"
TOK2=$LOGIN_TOKEN
# The near cache holds the session once a read costs no GET (the login's own
# invalidation may land after the first read, which is then not kept).
gets() { redis_cli "$RPORT" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_get:calls=\([0-9]*\),.*/\1/p'; }
cached() { local g0; g0=$(gets); gw GET /api/echo/get -H "$(bearer "$TOK2")"; [ "$STATUS" = 200 ] && [ "$(gets)" = "$g0" ]; }
ok "a forward without a rate, its session in the near cache" wait_until 10 cached
kill -STOP "${REDIS_PIDS[main]}"
curl -s -o "$WORK/waiting.body" -w '%{http_code}' --max-time 40 --cacert "$STATE_DIR/certs/root.pem" \
    -H "$(bearer "$TOK2")" "$GW_URL/api/echo/rated" >"$WORK/waiting.status" 2>/dev/null &
WAITING=$!
OWN_PIDS+=("$WAITING")
# The count is on the paused server's socket (a script is over 50 bytes; the
# subscriber's PING is 14).  /metrics is not asked now: its session gauge
# counts on Redis synchronously, from the management thread.
sent() { ss -tnH state established "( sport = :$RPORT )" | awk '$1 > 50 { f = 1 } END { exit !f }'; }
ok "the rated forward is waiting for Redis (its count queued on the paused server)" wait_until 10 sent
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the same loop meanwhile"
# Looked at at once: the command timeout (8 s) bounds the window.
ok "and the rated one is still waiting" kill -0 "$WAITING"
gw GET /api/echo/get -H "$(bearer "$TOK2")"
is "$STATUS" 200 "a forward on a route without a rate is answered meanwhile"
# A client that gives up while its count is in flight: its request must not
# be touched when the answer comes (the sanitizer check at the end).
curl -s -o /dev/null --max-time 1 --cacert "$STATE_DIR/certs/root.pem" \
    -H "$(bearer "$TOK2")" "$GW_URL/api/echo/rated" 2>/dev/null
wait "$WAITING"
# The 503 comes from the loop's own timer while Redis is still stopped (it
# is resumed only below); a loop held by synchronous calls answered it only
# once Redis resumed (curl would give up: 000).
is "$(cat "$WORK/waiting.status")" 503 "after the command timeout the waiting forward -> 503"
is "$(jq -r .code "$WORK/waiting.body" 2>/dev/null)" state_unavailable "with state_unavailable (fail closed)"
kill -CONT "${REDIS_PIDS[main]}"
ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis resumed: ready again by itself" wait_until 20 ready
rated_ok() { gw GET /api/echo/rated -H "$(bearer "$TOK2")"; [ "$STATUS" = 200 ]; }
ok "the rated route forwards again" wait_until 10 rated_ok
is "$(metric darvaza_store_inflight)" 0 "nothing left in flight"
like "$(cat "$(gw_log)")" '"event":"store_unavailable"' "the timeout tripped the breaker (logged)"

# ---- paused again, no request in flight: the instance's own calls wait off the loop ----------
# Connections of the instance with bytes queued on the paused server, by the
# gateway's port, but the subscriber's (its PING): a store call, or a
# connection being made for one (its ROLE).
SUBP=$(redis_cli "$RPORT" CLIENT LIST | tr -d '\r' |
    awk '/ flags=[^ ]*P/ { for (i = 1; i <= NF; i++) if ($i ~ /^addr=/) { sub(/.*:/, "", $i); print $i } }')
queued() { ss -tnH state established "( sport = :$RPORT )" | awk -v s="$SUBP" '$1 > 0 { sub(/.*:/, "", $4); if ($4 != s) print $4 }'; }
first_queued() { SYNC=$(queued | head -n 1); [ -n "$SYNC" ]; }
kill -STOP "${REDIS_PIDS[main]}"
SYNC=""
wait_until 10 first_queued
isnt "$SYNC" "" "a store call of the instance itself waits on the paused server"
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the loop meanwhile"
# The same connection still has its bytes queued: the call did not end (by
# its timeout) before the loop answered.
ok "while that call is still waiting (it does not hold the loop)" eval 'queued | grep -qx "$SYNC"'
kill -CONT "${REDIS_PIDS[main]}"
ok "Redis resumed: ready again" wait_until 20 ready

finish
