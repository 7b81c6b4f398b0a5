#!/usr/bin/env bash
# tests/bench/store.sh - what the Redis store costs a forwarded request (not
# part of `make test`; run it in its own network namespace like the tests):
#   unshare --net bash -c 'ip link set lo up && tests/bench/store.sh'
# One stack, two gateways on the same config and machine: A with
# store.backend redis (a local redis-server on 9136, sealed values, near
# cache on), B (port 8453) with the in-process store.  h2load (BENCH_N
# requests, BENCH_C connections x BENCH_M streams) interleaved over
# BENCH_ROUNDS rounds against /api/static/ping (a session only) and
# /api/static/rated (plus an exact per-subject rate counter) on each; the
# median round by req/s is reported, with the Redis commands per request
# (INFO commandstats before and after).  Gateway C (port 8455) is A with
# store.redis.rate_batch: 16.  Results: build/bench/store.md.
set -u
BENCH_N=${BENCH_N:-20000}
BENCH_C=${BENCH_C:-20}
BENCH_M=${BENCH_M:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/build/bench"
NGX="$OUT/nginx-store"
rm -rf "$NGX"
mkdir -p "$NGX/tmp"
export DZ_STATE_DIR="$OUT/stack-store"
export EXTRA_POLICIES="$HERE/policies"
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/redis.sh"
cd "$ROOT" || exit 2
RPORT=9136
B_PORT=8453
B_URL="https://localhost:$B_PORT"
log() { printf '%s\n' "$*" >&2; }

(umask 077 && openssl rand -hex 32 >"$WORK/redis.key")
redis_start bench "$RPORT"
stack_start STORE_REDIS="address: 127.0.0.1:$RPORT, value_key_file: $WORK/redis.key" >"$WORK/start.tap"
CFG="$STATE_DIR/darvaza.yaml"
WORKERS=$(awk '/^[[:space:]]+workers:/ {print $2; exit}' "$CFG")
# B: the same config on its own ports and files (demo/stack.sh renumber),
# with the in-process store.
"$ROOT/demo/stack.sh" renumber "$CFG" "$WORK/b.yaml" "$WORK/b" - "$B_PORT" 8454 9190 8090 || exit 1
sed -i -e '/^  backend: redis/d' -e '/^  redis: {/d' "$WORK/b.yaml"
"$BUILD_DIR/darvazad" -c "$WORK/b.yaml" >"$WORK/b.log" 2>&1 &
OWN_PIDS+=("$!")
# C: Redis again, with rate counters sent in batches of 16.
C_PORT=8455
C_URL="https://localhost:$C_PORT"
"$ROOT/demo/stack.sh" renumber "$CFG" "$WORK/c.yaml" "$WORK/c" - "$C_PORT" 8456 9191 8091 || exit 1
sed -i 's#^  redis: { #  redis: { rate_batch: 16, #' "$WORK/c.yaml"
"$BUILD_DIR/darvazad" -c "$WORK/c.yaml" >"$WORK/c.log" 2>&1 &
OWN_PIDS+=("$!")
b_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$B_URL/readyz")" = 200 ]; }
wait_until 60 b_ready || { log "gateway B did not start: $(tail -n 5 "$WORK/b.log")"; exit 1; }
c_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$C_URL/readyz")" = 200 ]; }
wait_until 60 c_ready || { log "gateway C did not start: $(tail -n 5 "$WORK/c.log")"; exit 1; }

sed -e "s|@DIR@|$NGX|g" -e "s|@WORKERS@|1|g" "$HERE/upstream.conf" >"$NGX/upstream.conf"
nginx -e "$NGX/upstream-error.log" -p "$NGX" -c "$NGX/upstream.conf" || { log "nginx did not start"; exit 1; }
wait_until 5 test -s "$NGX/upstream.pid"
OWN_PIDS+=("$(cat "$NGX/upstream.pid")")

# A session on each (B's store is its own memory).
login_person "$(pick_person registered 0)"
TOKEN_A=$LOGIN_TOKEN
GW_URL=$B_URL login_person "$(pick_person registered 1)"
TOKEN_B=$LOGIN_TOKEN
[ -n "$TOKEN_A" ] && [ -n "$TOKEN_B" ] || { log "cannot log in: $STATUS $BODY"; exit 1; }
for p in ping rated; do
    gw GET "/api/static/$p" -H "$(bearer "$TOKEN_A")"
    [ "$STATUS" = 200 ] || { log "A /api/static/$p answers $STATUS $BODY"; exit 1; }
    GW_URL=$B_URL gw GET "/api/static/$p" -H "$(bearer "$TOKEN_B")"
    [ "$STATUS" = 200 ] || { log "B /api/static/$p answers $STATUS $BODY"; exit 1; }
done

calls() { redis_cli "$RPORT" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_[a-z|]*:calls=\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}'; }
run() { # run URL TOKEN -> "req/s mean succeeded"
    h2load -n "$BENCH_N" -c "$BENCH_C" -m "$BENCH_M" -t "${WORKERS:-2}" -H "authorization: Bearer $2" "$1" 2>/dev/null |
        awk '/^finished in/ {rps = $4} /^time for request:/ {mean = $6} /^requests:/ {ok = $8}
             END {print rps + 0, mean, ok}'
}
declare -A RES OPS
for r in $(seq 1 "$BENCH_ROUNDS"); do
    for s in mem-ping redis-ping mem-rated redis-rated redis16-rated; do
        case $s in mem-*) url=$B_URL tok=$TOKEN_B ;; redis16-*) url=$C_URL tok=$TOKEN_A ;;
            *) url=$GW_URL tok=$TOKEN_A ;; esac
        c0=$(calls)
        read -r rps mean okn < <(run "$url/api/static/${s#*-}" "$tok")
        c1=$(calls)
        RES[$s]+="$rps $mean $okn
"
        OPS[$s]+="$(awk -v a="$c0" -v b="$c1" -v n="$BENCH_N" 'BEGIN {printf "%.3f", (b - a - 1) / n}')
"
        log "round $r $s: $rps req/s, mean $mean, $okn succeeded, $(echo "${OPS[$s]}" | tail -n 2 | head -n 1) Redis commands/request"
    done
done
median() { printf '%s' "$1" | sort -n | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}'; }
{
    echo "# Store cost per forwarded request ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "h2load -n $BENCH_N -c $BENCH_C -m $BENCH_M, median of $BENCH_ROUNDS rounds by req/s"
    echo
    echo "| setup | req/s | mean latency | Redis commands / request |"
    echo "| --- | ---: | ---: | ---: |"
    for s in mem-ping redis-ping mem-rated redis-rated redis16-rated; do
        m=$(median "${RES[$s]}")
        echo "| $s | ${m%% *} | $(echo "$m" | cut -d' ' -f2) | $(median "${OPS[$s]}") |"
    done
} | tee "$OUT/store.md"
