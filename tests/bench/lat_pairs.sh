#!/usr/bin/env bash
# tests/bench/lat_pairs.sh BIN_A BIN_B [PAIRS] - two builds of darvazad at a
# light load, alternated in one sitting: one demo stack and the bench's
# static back end (nginx, tests/bench/upstream.conf); the gateway restarted
# with BIN_A, then BIN_B, PAIRS times (default 5).  Each run: 300 warm-up
# requests, then h2load -n LAT_N (2000) -c 1 -m 1 (p50 and p99 from its
# per-request log), then -n SAT_N (20000) -c 20 -m 10 req/s (SAT=0 skips it).
# Prints one line per run.  Run it in its own network namespace:
#   unshare --net bash -c 'ip link set lo up && bash tests/bench/lat_pairs.sh A/darvazad B/darvazad 6'
set -u
A=${1:?BIN_A} B=${2:?BIN_B} PAIRS=${3:-5} LAT_N=${LAT_N:-2000} SAT_N=${SAT_N:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/build/latpairs
rm -rf "$OUT"
mkdir -p "$OUT/ngx/tmp" "$OUT/r"
export DZ_STATE_DIR=$OUT/stack
BUILD_DIR=${BUILD_DIR:-build}
. "$ROOT/tests/integration/lib.sh"
cd "$ROOT" || exit 2
EXTRA_POLICIES=$OUT/policies
mkdir -p "$EXTRA_POLICIES"
cp "$HERE"/policies/*.yaml "$EXTRA_POLICIES/"
stack_start PEOPLE_TOTAL=14 >"$OUT/stack.log" 2>&1
sed -e "s|@DIR@|$OUT/ngx|g" -e "s|@WORKERS@|1|g" "$HERE/upstream.conf" >"$OUT/ngx/upstream.conf"
nginx -e "$OUT/ngx/error.log" -p "$OUT/ngx" -c "$OUT/ngx/upstream.conf" || exit 1
wait_until 5 test -s "$OUT/ngx/upstream.pid" || exit 1
OWN_PIDS+=("$(cat "$OUT/ngx/upstream.pid")")
PIDF=$STATE_DIR/pids/darvazad.pid
URL=$GW_URL/api/static/ping
k=0
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/readyz")" = 200 ]; }
# restart BIN: the gateway on the stack's config with BIN, and a new session
# (sessions live in the process); a different person each time (TOTP replay).
restart() {
    local pid
    pid=$(cat "$PIDF")
    kill "$pid"
    wait_until 30 bash -c "! kill -0 $pid 2>/dev/null" || exit 1
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$PIDF" "$1" -c "$STATE_DIR/darvaza.yaml" \
        >>"$STATE_DIR/logs/darvazad.log" 2>&1 </dev/null &
    wait_until 30 ready || exit 1
    login_person "$(pick_person registered $k)"
    k=$(((k + 1) % 6))
    TOKEN=$LOGIN_TOKEN
    [ -n "$TOKEN" ] || { echo "login failed: $STATUS $BODY"; exit 1; }
}
# pct LOG P: the Pth percentile of an h2load log's latencies, in µs.
pct() { awk -F'\t' '{print $3}' "$1" | sort -n | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p); if (i < 1) i = 1; print v[i] }'; }
for i in $(seq 1 "$PAIRS"); do
    for b in A B; do
        bin=$A
        [ $b = B ] && bin=$B
        restart "$bin"
        h2load -n 300 -c 1 -m 1 -t 1 -H "$(bearer "$TOKEN")" "$URL" >/dev/null 2>&1
        h2load -n "$LAT_N" -c 1 -m 1 -t 1 -H "$(bearer "$TOKEN")" --log-file="$OUT/r/$b-$i.log" \
            "$URL" >"$OUT/r/$b-$i.txt" 2>&1
        ok=$(grep -o 'status codes: [0-9]* 2xx' "$OUT/r/$b-$i.txt" | awk '{print $3}')
        rps=-
        if [ "${SAT:-1}" = 1 ]; then
            h2load -n "$SAT_N" -c 20 -m 10 -t 1 -H "$(bearer "$TOKEN")" "$URL" >"$OUT/r/$b-$i.sat" 2>&1
            rps=$(awk '/^finished in/ {print $4}' "$OUT/r/$b-$i.sat")
        fi
        echo "pair $i $b p50_us $(pct "$OUT/r/$b-$i.log" 0.50) p99_us $(pct "$OUT/r/$b-$i.log" 0.99)" \
            "ok ${ok:-0} sat_rps $rps load $(cut -d' ' -f1 /proc/loadavg)"
    done
done
