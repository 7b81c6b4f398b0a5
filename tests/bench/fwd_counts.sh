#!/usr/bin/env bash
# tests/bench/fwd_counts.sh - what one forwarded request of setup (c) costs the
# gateway, counted: CPU µs (the process's user + system ticks), allocations
# (tests/bench/malloc_count.c preloaded into darvazad), and system calls by
# kind and context switches (perf stat on the syscalls tracepoints), over BENCH_ROUNDS rounds of
# BENCH_N requests after a warm-up; the median round is printed.  The shim
# only with FWD_ALLOCS=1: it takes a stack trace per allocation, so the CPU
# time of such a run is the shim's more than the gateway's.  Quicker than
# `make bench` (only (c), no peers but the back end), so two builds can be
# measured alternately in one sitting:
#
#   unshare --net bash -c 'ip link set lo up && BUILD_DIR=build bash tests/bench/fwd_counts.sh'
#   ... BUILD_DIR=build/bench-compare/base-src/build bash tests/bench/fwd_counts.sh   (main)
#
# FWD_PROFILE=1 records the last round with perf (DWARF call graphs, as
# BENCH_PERF=1 make bench) and prints profile.sh's µs per stage, from the
# median CPU µs/req of the rounds.
# FWD_TRACE=EVENT (syscalls:sys_enter_futex, say) records that event's call
# graphs during the last round (perf, DWARF) and prints who calls it most.
# FWD_ALLOCS=1 FWD_SITES=N also prints the N darvazad functions whose
# calls allocate most per request.
# FWD_SETUP=cprime measures setup (c') instead: the same config with the
# store in Redis (sealed values, near cache) and the accounts in PostgreSQL
# (tests/bench/cprime.sh), its gateway's CPU and system calls, and prints
# the Redis commands per request.  Not part of `make test`.
set -u
BENCH_N=${BENCH_N:-20000}
BENCH_C=${BENCH_C:-20}
BENCH_M=${BENCH_M:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
FWD_ALLOCS=${FWD_ALLOCS:-0}
FWD_TRACE=${FWD_TRACE:-}
FWD_PROFILE=${FWD_PROFILE:-}
FWD_SITES=${FWD_SITES:-0}
FWD_SETUP=${FWD_SETUP:-c}
case "$FWD_SETUP" in c | cprime) ;; *) echo "fwd_counts: FWD_SETUP is c or cprime" >&2; exit 2 ;; esac
# The counting shim is preloaded into (c)'s gateway only.
[ "$FWD_SETUP" = cprime ] && [ "$FWD_ALLOCS" = 1 ] && { echo "fwd_counts: FWD_ALLOCS=1 counts (c) only" >&2; exit 2; }
[ "$FWD_ALLOCS" = 1 ] || FWD_SITES=0
SYSCALLS=${FWD_SYSCALLS:-epoll_ctl epoll_wait futex write writev sendto recvfrom read pwrite64 fdatasync}

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/build/bench/fwd"
NGX="$OUT/nginx"
rm -rf "$OUT"
mkdir -p "$NGX/tmp"
export DZ_STATE_DIR="$OUT/stack"
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
. "$ROOT/tests/integration/lib.sh"
cd "$ROOT" || exit 2
EXTRA_POLICIES="$OUT/policies"
mkdir -p "$EXTRA_POLICIES"
cp "$HERE"/policies/*.yaml "$EXTRA_POLICIES/"
log() { printf '%s\n' "$*" >&2; }
die() { log "fwd_counts: $*"; exit 1; }

MC="$OUT/mc"
PRELOAD=()
if [ "$FWD_ALLOCS" = 1 ]; then
    SHIM="$OUT/malloc_count.so"
    cc -O2 -shared -fPIC -o "$SHIM" "$HERE/malloc_count.c" -ldl -lpthread || die "cannot build the counting shim"
    PRELOAD=(LD_PRELOAD="$SHIM" MALLOC_COUNT_OUT="$MC")
fi
( stack_start "${PRELOAD[@]}" ) >"$OUT/stack-start.tap" 2>&1 ||
    { STACK_UP=1; die "the stack did not start: $(tail -n 5 "$OUT/stack-start.tap")"; }
STACK_UP=1
sed -e "s|@DIR@|$NGX|g" -e "s|@WORKERS@|1|g" "$HERE/upstream.conf" >"$NGX/upstream.conf"
nginx -e "$NGX/upstream-error.log" -p "$NGX" -c "$NGX/upstream.conf" || die "the back end did not start"
wait_until 5 test -s "$NGX/upstream.pid" || die "the back end wrote no pid"
OWN_PIDS+=("$(cat "$NGX/upstream.pid")")

A=$(pick_person registered 0)
login_person "$A"
[ -n "$LOGIN_TOKEN" ] || die "cannot log in $A ($STATUS $BODY)"
gw GET /api/static/ping -H "$(bearer "$LOGIN_TOKEN")"
[ "$STATUS $BODY" = '200 {"ok":true}' ] || die "(c) answers $STATUS $BODY"
GW_PID=$(listener_pid 8443)
[ -n "$GW_PID" ] || die "no gateway pid"
CP=0
if [ "$FWD_SETUP" = cprime ]; then
    # (c'), beside (c)'s stack as in make bench; its own person, token, pid.
    . "$HERE/cprime.sh"
    cprime_start
    [ "$CP" = 1 ] || die "(c') did not start"
    cprime_login 0
    [ -n "$CP_TOKEN" ] || die "(c') cannot log in"
    GW_URL=$CP_URL
    LOGIN_TOKEN=$CP_TOKEN
    GW_PID=$CP_PID
    gw GET /api/static/ping -H "$(bearer "$LOGIN_TOKEN")"
    [ "$STATUS $BODY" = '200 {"ok":true}' ] || die "(c') answers $STATUS $BODY"
fi
ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
snap=0
dump() { # dump: the shim's counts so far into $MC.$snap
    [ "$FWD_ALLOCS" = 1 ] || return 0
    snap=$((snap + 1))
    : >"$MC.req"
    wait_until 10 test -s "$MC.$snap" || die "the shim wrote no $MC.$snap" # renamed when complete
}
run() { # run N LOG
    timeout 300 h2load -n "$1" -c "$BENCH_C" -m "$BENCH_M" -t 1 -H "authorization: Bearer $LOGIN_TOKEN" \
        "$GW_URL/api/static/ping" >"$2" 2>&1
    grep -q "status codes: $1 2xx" "$2" || die "not every request answered 2xx: $(grep 'status codes' "$2")"
}
run $((BENCH_N / 4)) "$OUT/warmup.txt"
[ "$CP" = 1 ] && CP_CALLS0=$(cprime_redis_calls)
events=$(for s in $SYSCALLS; do printf 'syscalls:sys_enter_%s,' "$s"; done)
for r in $(seq 1 "$BENCH_ROUNDS"); do
    dump
    a=$snap
    t0=$(ticks)
    perf stat -x, -e "context-switches,${events%,}" -p "$GW_PID" -o "$OUT/stat-$r.csv" &
    perf_pid=$!
    trace_pid=
    if [ -n "$FWD_TRACE" ] && [ "$r" = "$BENCH_ROUNDS" ]; then
        perf record -q -e "$FWD_TRACE" --call-graph dwarf,8192 -p "$GW_PID" -o "$OUT/trace.data" >"$OUT/trace.log" 2>&1 &
        trace_pid=$!
        wait_until 10 test -s "$OUT/trace.data"
    elif [ -n "$FWD_PROFILE" ] && [ "$r" = "$BENCH_ROUNDS" ]; then
        perf record -q -F 499 --call-graph dwarf,16384 -p "$GW_PID" -o "$OUT/perf.data" >"$OUT/perf.log" 2>&1 &
        trace_pid=$!
        wait_until 10 test -s "$OUT/perf.data"
    fi
    wait_until 10 test -s "$OUT/stat-$r.csv" # perf stat writes its header once attached
    run "$BENCH_N" "$OUT/round-$r.txt"
    kill -INT "$perf_pid"
    wait "$perf_pid"
    if [ -n "$trace_pid" ]; then
        kill -INT "$trace_pid"
        wait "$trace_pid"
    fi
    t1=$(ticks)
    dump
    b=$snap
    rps=$(grep -o 'finished in [^,]*, [0-9.]* req/s' "$OUT/round-$r.txt" | awk '{print $4}')
    allocs=-
    [ "$FWD_ALLOCS" = 1 ] && allocs=$(awk -v n="$BENCH_N" 'FNR == 1 { v[FILENAME] = $1 } END { for (f in v) if (f ~ /\.'"$a"'$/) x = v[f]; else y = v[f]; printf "%.1f", (y - x) / n }' "$MC.$a" "$MC.$b")
    sc=$(awk -F, -v n="$BENCH_N" '$3 ~ /syscalls|context-switches/ { sub(/syscalls:sys_enter_/, "", $3); printf "%s %.2f  ", $3, $1 / n }' "$OUT/stat-$r.csv")
    echo "$rps $(awk -v t=$((t1 - t0)) -v n="$BENCH_N" 'BEGIN { printf "%.1f", t * 10000 / n }') $allocs $sc" >>"$OUT/rounds"
    log "round $r: $(tail -n 1 "$OUT/rounds")"
done
m=$(((BENCH_ROUNDS + 1) / 2))
echo "# fwd_counts ($FWD_SETUP): $(basename "$(dirname "$BUILD_DIR")")/$(basename "$BUILD_DIR") $("$BUILD_DIR/darvazad" --version 2>/dev/null | head -n 1)"
echo "h2load -n $BENCH_N -c $BENCH_C -m $BENCH_M, $BENCH_ROUNDS rounds (req/s, gateway CPU µs/req, allocations/req, syscalls/req):"
cat "$OUT/rounds"
echo "median by CPU µs/req: $(sort -k2,2n "$OUT/rounds" | awk -v m=$m 'NR == m')"
if [ "$CP" = 1 ]; then
    CP_CALLS1=$(cprime_redis_calls)
    echo "(c') Redis commands per request: $(awk -v d=$((CP_CALLS1 - CP_CALLS0)) -v n=$((BENCH_ROUNDS * BENCH_N)) \
        'BEGIN { printf "%.3f", d / n }') ($((CP_CALLS1 - CP_CALLS0)) for $((BENCH_ROUNDS * BENCH_N)) requests)"
fi
if [ "$FWD_SITES" -gt 0 ]; then
    # Each site's count per request (last round), charged to the first
    # darvazad function up its stack (addr2line), the sites without one to
    # the library that allocated.
    awk -v n="$BENCH_N" 'FNR == NR { if ($2 != "total") { k = $0; sub(/^[0-9]+ /, "", k); a[k] = $1 } next }
        $2 != "total" { k = $0; sub(/^[0-9]+ /, "", k); d = $1 - a[k]; if (d > 0) printf "%.3f %s\n", d / n, k }' \
        "$MC.$((snap - 1))" "$MC.$snap" >"$OUT/sites"
    awk '{ who = ""; for (i = 2; i <= NF; i++) if ($i ~ /darvazad\+/) { who = $i; break }
        if (who == "") { who = $2; sub(/\+.*/, "", who); sub(/.*\//, "", who); who = "(" who ")" }
        print $1, who }' "$OUT/sites" >"$OUT/sites.who"
    grep -o 'darvazad+0x[0-9a-f]*' "$OUT/sites.who" | sort -u | sed 's/.*+//' >"$OUT/offsets"
    addr2line -f -s -e "$BUILD_DIR/darvazad" $(cat "$OUT/offsets") | paste - - | paste "$OUT/offsets" - >"$OUT/names"
    echo "allocations per request by the first darvazad function up the stack (last round):"
    awk 'FNR == NR { nm[$1] = $2 " (" $3 ")"; next }
        { o = $2; sub(/.*darvazad\+/, "", o); k = (o in nm) ? nm[o] : $2; s[k] += $1 } END { for (k in s) printf "%8.2f %s\n", s[k], k }' \
        "$OUT/names" "$OUT/sites.who" | sort -rn | head -n "$FWD_SITES"
fi
if [ -n "$FWD_TRACE" ]; then
    echo "$FWD_TRACE: callers (perf report, caller graph, last round):"
    perf report -i "$OUT/trace.data" --stdio --no-children -G --percent-limit 3 2>/dev/null | grep -v '^$' | head -n 120
fi
if [ -n "$FWD_PROFILE" ]; then
    echo "where the CPU goes (perf, last round; µs from the median CPU µs/req):"
    "$HERE/profile.sh" "$OUT/perf.data" "$(sort -k2,2n "$OUT/rounds" | awk -v m=$m 'NR == m {print $2}')"
fi
