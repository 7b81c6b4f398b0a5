#!/usr/bin/env bash
# tests/bench/run.sh - `make bench`: darvaza against nginx, same machine, same run.
#
# One static back end (nginx, HTTP/1.1, a tiny JSON answer) behind three fronts,
# all TLS + HTTP/2 on loopback with the same certificate:
#   (a) nginx reverse proxy                          https://127.0.0.1:9443
#   (b) nginx reverse proxy + auth_request (an auth  https://127.0.0.1:9444
#       service that checks a header and answers 204)
#   (c) darvaza forwarding an authenticated request   https://localhost:8443
#       (bearer session, signed assertion, audit line; policy tests/bench/policies)
#   (c batch) the same with the service's assertions batch-signed
#       (assertion: { signing: batch }, docs/assertions.md)
#   (c') the same darvaza with its ephemeral store in Redis and its accounts in
#       PostgreSQL (tests/bench/cprime.sh)            https://localhost:8453
#   (d) Apache httpd + mod_auth_openidc, its session  https://127.0.0.1:9445
#       from darvaza's OpenID Connect provider, claims forwarded as headers
#       (tests/bench/apache.sh; skipped when apache2 or the module is missing)
# measured with h2load (BENCH_N requests, BENCH_C connections x BENCH_M streams,
# one warm-up round, BENCH_ROUNDS rounds interleaved a,b,c; the median round by
# req/s is reported with its p50/p99 latency from h2load's per-request log).
# Then the latency of each setup at a light load: one connection, one stream
# at a time (BENCH_LAT_N requests, BENCH_ROUNDS rounds interleaved, medians of
# the rounds' p50 and p99): what each front adds to a request when nothing
# queues, beside the saturated rounds' latency, which is their in-flight
# requests over their throughput.
# Also: password+TOTP logins per second (BENCH_LOGINS real logins, 4 clients
# in parallel, a new TLS connection each) and memory per idle HTTP/2
# connection (BENCH_IDLE connections held open, RSS before/after).
# Results: build/bench/results.md (also printed).  Not part of `make test`.
# BENCH_PERF=1 also records a perf call-graph profile of the gateway during
# one more round of (c) and of (c batch) after the measured ones (so the
# measured rounds run without perf): build/bench/perf-c.data, perf-cb.data,
# and prints where the CPU time of a forwarded request goes (profile.sh),
# in microseconds per request from the gateway's CPU time in the measured
# rounds.
set -u
BENCH_N=${BENCH_N:-20000}
BENCH_C=${BENCH_C:-20}
BENCH_M=${BENCH_M:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_LOGINS=${BENCH_LOGINS:-60}
BENCH_IDLE=${BENCH_IDLE:-500}
BENCH_LAT_N=${BENCH_LAT_N:-2000}

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/build/bench"
NGX="$OUT/nginx"
rm -rf "$NGX" "$OUT/stack" "$OUT/rounds"
mkdir -p "$NGX/tmp" "$OUT/rounds"
export DZ_STATE_DIR="$OUT/stack"
BUILD_DIR=${BUILD_DIR:-build}
# The integration library gives the stack, login and cleanup helpers.
. "$ROOT/tests/integration/lib.sh"
cd "$ROOT" || exit 2
# The bench's policies, and the client policy of (d)'s relying party.
EXTRA_POLICIES="$OUT/policies"
rm -rf "$EXTRA_POLICIES"
mkdir -p "$EXTRA_POLICIES"
cp "$HERE"/policies/*.yaml "$EXTRA_POLICIES/"
. "$HERE/apache.sh"
apache_policy "$EXTRA_POLICIES"

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }
for t in nginx h2load curl jq oathtool python3 openssl; do
    command -v "$t" >/dev/null || die "$t is missing (make deps)"
done
WORKERS=$(nproc)

# ---- the gateway (optional: the nginx parts run without it) -----------------------------
GW=0
if [ -x "$BUILD_DIR/darvazad" ] && [ -x "$ROOT/demo/stack.sh" ]; then
    log "starting the darvaza stack in ${STATE_DIR#"$ROOT"/} ..."
    # Enough unregistered people for the login measurement (3 logins each).
    if ( stack_start PEOPLE_TOTAL=$((8 + (BENCH_LOGINS + 2) / 3 + 2)) ) >"$OUT/stack-start.tap" 2>&1; then
        STACK_UP=1
        GW=1
    else
        STACK_UP=1 # stop whatever half started
        log "the stack did not start (setup (c) skipped): $(tail -n 5 "$OUT/stack-start.tap")"
    fi
else
    log "no $BUILD_DIR/darvazad or demo/stack.sh: setup (c) skipped"
fi
if [ "$GW" = 1 ]; then
    CERT="$STATE_DIR/certs/gateway-tls.pem"
    KEY="$STATE_DIR/certs/gateway-tls.key"
    PEOPLE="$STATE_DIR/people.json"
    WORKERS=$(awk '/^[[:space:]]+workers:/ {print $2; exit}' "$(find "$STATE_DIR" -maxdepth 2 -name 'darvaza*.yaml' | head -n 1)" 2>/dev/null)
    WORKERS=${WORKERS:-$(nproc)}
else
    CERT="$NGX/cert.pem"
    KEY="$NGX/key.pem"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$KEY" -out "$CERT" 2>/dev/null ||
        die "cannot make a certificate"
fi

# ---- nginx: static back end + auth service, and the TLS fronts -----------------------------
for c in upstream proxy; do
    sed -e "s|@DIR@|$NGX|g" -e "s|@CERT@|$CERT|g" -e "s|@KEY@|$KEY|g" -e "s|@WORKERS@|$WORKERS|g" \
        "$HERE/$c.conf" >"$NGX/$c.conf"
    nginx -e "$NGX/$c-error.log" -p "$NGX" -c "$NGX/$c.conf" || die "nginx ($c) did not start: $(cat "$NGX/$c-error.log")"
    wait_until 5 test -s "$NGX/$c.pid" || die "nginx ($c) wrote no pid"
    OWN_PIDS+=("$(cat "$NGX/$c.pid")")
done
PROXY_MASTER=$(cat "$NGX/proxy.pid")

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -k "$@"; }
[ "$(code https://127.0.0.1:9443/api/static/ping)" = 200 ] || die "(a) does not answer 200"
[ "$(code -H 'authorization: Bearer bench-token' https://127.0.0.1:9444/api/static/ping)" = 200 ] || die "(b) does not answer 200"
[ "$(code -H 'authorization: Bearer wrong' https://127.0.0.1:9444/api/static/ping)" = 401 ] || die "(b) does not check the header"

TOKEN=
if [ "$GW" = 1 ]; then
    A=$(pick_person registered 0)
    login_person "$A"
    TOKEN=$LOGIN_TOKEN
    [ -n "$TOKEN" ] || { log "cannot log in $A ($STATUS $BODY): setup (c) skipped"; GW=0; }
fi
if [ "$GW" = 1 ]; then
    gw GET /api/static/ping -H "$(bearer "$TOKEN")"
    [ "$STATUS $BODY" = '200 {"ok":true}' ] || { log "(c) answers $STATUS $BODY: setup (c) skipped"; GW=0; }
    gw GET /api/static/ping
    [ "$STATUS" = 401 ] || { log "(c) without a session answers $STATUS, not 401: setup (c) skipped"; GW=0; }
    gw GET /api/static-batch/ping -H "$(bearer "$TOKEN")"
    [ "$STATUS $BODY" = '200 {"ok":true}' ] || { log "(c batch) answers $STATUS $BODY"; GW=0; }
fi

# ---- (c'): Redis and PostgreSQL -------------------------------------------------------------
CP=0
if [ "$GW" = 1 ]; then
    . "$HERE/cprime.sh"
    log "starting (c'): Redis on 127.0.0.1:9130, PostgreSQL on 127.0.0.1:9140, darvaza on $CP_URL ..."
    cprime_start
fi
if [ "$CP" = 1 ]; then
    cprime_login 0
    [ -n "$CP_TOKEN" ] || { log "(c') cannot log in: setup (c') skipped"; CP=0; }
fi
if [ "$CP" = 1 ]; then
    GW_URL=$CP_URL gw GET /api/static/ping -H "$(bearer "$CP_TOKEN")"
    [ "$STATUS $BODY" = '200 {"ok":true}' ] || { log "(c') answers $STATUS $BODY: setup (c') skipped"; CP=0; }
fi

# ---- (d): Apache httpd + mod_auth_openidc -------------------------------------------------
if [ "$GW" = 1 ]; then
    log "starting (d): Apache httpd + mod_auth_openidc on $D_URL ..."
    apache_start
fi
if [ "$D" = 1 ]; then
    apache_login "$TOKEN"
    [ -n "$D_COOKIE" ] || D=0
fi
if [ "$D" = 1 ]; then
    [ "$(code -H "cookie: mod_auth_openidc_session=$D_COOKIE" "$D_URL/api/static/ping")" = 200 ] ||
        { log "(d) with its session does not answer 200: setup (d) skipped"; D=0; }
    [ "$(code "$D_URL/api/static/ping")" = 302 ] ||
        { log "(d) without a session does not send to the provider: setup (d) skipped"; D=0; }
    # The claims reach the back end as headers (the static back end echoes one).
    got=$(curl -sk --max-time 5 -H "cookie: mod_auth_openidc_session=$D_COOKIE" "$D_URL/api/static/claims")
    [ "$got" = "{\"fin\":\"$A\"}" ] || { log "(d) forwarded no fin claim to the back end ($got): setup (d) skipped"; D=0; }
fi

# ---- memory per idle HTTP/2 connection (before any load, so freed memory is not reused) ---------
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
idle_cost() { # idle_cost PORT PATH PID... -> "bytes_per_conn opened client_pid" (PATH -: no request first)
    # The client keeps its connections open (60 s, or until idle_done): a
    # later measurement of the same server then does not reuse what they hold.
    local port=$1 path=$2 ready="$OUT/idle.ready.$1.${2//[!a-z]/}" before after n pid
    shift 2
    [ "$path" = - ] && path=
    rm -f "$ready"
    before=$(rss_kb "$@")
    "$HERE/idle_h2.sh" 127.0.0.1 "$port" "$BENCH_IDLE" 60 "$ready" $path >/dev/null 2>>"$OUT/idle.err" &
    pid=$!
    wait_until 60 test -s "$ready"
    sleep 1
    after=$(rss_kb "$@")
    n=$(cat "$ready" 2>/dev/null || echo 0)
    if [ "${n:-0}" -gt 0 ]; then echo "$(((after - before) * 1024 / n)) $n $pid"; else echo "- 0 $pid"; fi
}
idle_done() { kill "$@" 2>/dev/null; wait_until 10 bash -c "! kill -0 $* 2>/dev/null"; }
NGINX_WORKERS=$(ps -o pid= --ppid "$PROXY_MASTER" | tr -d ' ' | tr '\n' ' ')
# Without a request, then after one GET each (a browser's header fields, the
# answer read whole), the first connections still open: nginx (a) proxies
# its path to the static back end, darvaza answers /healthz.
# shellcheck disable=SC2086
read -r IDLE_NGX IDLE_NGX_N P0 < <(idle_cost 9443 - $NGINX_WORKERS)
# shellcheck disable=SC2086
read -r IDLE1_NGX IDLE1_NGX_N P1 < <(idle_cost 9443 /api/static/ping $NGINX_WORKERS)
idle_done "$P0" "$P1"
IDLE_GW="-" IDLE_GW_N=0 IDLE1_GW="-" IDLE1_GW_N=0
if [ "$GW" = 1 ]; then
    GW_PID=$(listener_pid 8443)
    read -r IDLE_GW IDLE_GW_N P0 < <(idle_cost 8443 - "$GW_PID")
    read -r IDLE1_GW IDLE1_GW_N P1 < <(idle_cost 8443 /healthz "$GW_PID")
    idle_done "$P0" "$P1"
fi
log "idle HTTP/2 connection: nginx $IDLE_NGX B ($IDLE_NGX_N conns), darvaza $IDLE_GW B ($IDLE_GW_N conns)"
log "idle HTTP/2 connection after one GET: nginx $IDLE1_NGX B ($IDLE1_NGX_N conns), darvaza $IDLE1_GW B ($IDLE1_GW_N conns)"

# ---- h2load rounds ---------------------------------------------------------------------------
url_of() { case $1 in a) echo https://127.0.0.1:9443/api/static/ping ;; b) echo https://127.0.0.1:9444/api/static/ping ;;
    c) echo "$GW_URL/api/static/ping" ;; cb) echo "$GW_URL/api/static-batch/ping" ;;
    c2) echo "$CP_URL/api/static/ping" ;; d) echo "$D_URL/api/static/ping" ;; esac; }
auth_of() { case $1 in c | cb) echo "authorization: Bearer $TOKEN" ;; c2) echo "authorization: Bearer $CP_TOKEN" ;;
    d) echo "cookie: mod_auth_openidc_session=$D_COOKIE" ;;
    *) echo "authorization: Bearer bench-token" ;; esac; }
SETUPS="a b"
[ "$GW" = 1 ] && SETUPS="a b c cb"
[ "$CP" = 1 ] && SETUPS="$SETUPS c2"
[ "$D" = 1 ] && SETUPS="$SETUPS d"
gw_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat" 2>/dev/null || echo 0; }
# Redis commands per forwarded request of (c'): INFO commandstats around
# all of (c')'s rounds (warm-up included), over the requests they sent.
[ "$CP" = 1 ] && CP_CALLS0=$(cprime_redis_calls)
ROUNDS="warmup $(seq 1 "$BENCH_ROUNDS")"
[ -n "${BENCH_PERF:-}" ] && [ "$GW" = 1 ] && ROUNDS="$ROUNDS profile"
for r in $ROUNDS; do
    for s in $SETUPS; do
        n=$BENCH_N
        [ "$r" = warmup ] && n=$((BENCH_N / 4))
        perf_pid=""
        if [ "$r" = profile ]; then
            case $s in c | cb) ;; *) continue ;; esac
            # BENCH_PERF=1: a call-graph profile of the gateway (DWARF unwinding:
            # neither darvazad nor the Debian libraries keep frame pointers).
            perf record -q -F 499 --call-graph dwarf,16384 -o "$OUT/perf-$s.data" -p "$GW_PID" \
                >"$OUT/perf-$s.log" 2>&1 &
            perf_pid=$!
            wait_until 10 test -s "$OUT/perf-$s.data"
        fi
        log "round $r, setup $s ..."
        t0=$(gw_ticks)
        timeout 300 h2load -n "$n" -c "$BENCH_C" -m "$BENCH_M" -t 1 -H "$(auth_of "$s")" \
            --log-file="$OUT/rounds/$s-$r.log" "$(url_of "$s")" >"$OUT/rounds/$s-$r.txt" 2>&1
        # The gateway's CPU time (user + system, 10 ms ticks) in this round.
        [ "$GW" = 1 ] && echo $(($(gw_ticks) - t0)) >"$OUT/rounds/$s-$r.ticks"
        if [ -n "$perf_pid" ]; then
            kill -INT "$perf_pid" 2>/dev/null
            wait "$perf_pid" 2>/dev/null
            log "perf profile: $OUT/perf-$s.data"
        fi
    done
done
CP_OPS="-"
if [ "$CP" = 1 ]; then
    CP_CALLS1=$(cprime_redis_calls)
    CP_OPS=$(awk -v d=$((CP_CALLS1 - CP_CALLS0)) -v n=$((BENCH_N / 4 + BENCH_ROUNDS * BENCH_N)) \
        'BEGIN { printf "%.2f", d / n }')
fi
# stats SETUP -> "rps p50_ms p99_ms ok_of_n round" of the median round by req/s
stats() {
    local s=$1 r rps best
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        rps=$(grep -o 'finished in [^,]*, [0-9.]* req/s' "$OUT/rounds/$s-$r.txt" | awk '{print $4}')
        echo "${rps:-0} $r"
    done | sort -n | awk -v m=$(((BENCH_ROUNDS + 1) / 2)) 'NR == m' >"$OUT/rounds/$s.median"
    read -r rps best <"$OUT/rounds/$s.median"
    lat=$(awk -F'\t' '{print $3}' "$OUT/rounds/$s-$best.log" | sort -n | awk '
        { v[NR] = $1 } END { if (NR) printf "%.2f %.2f", v[int(NR * 0.50 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000; else print "- -" }')
    okn=$(grep -o 'status codes: [0-9]* 2xx' "$OUT/rounds/$s-$best.txt" | awk '{print $3}')
    echo "$rps $lat ${okn:-0} $best"
}
# cpu_us SETUP: the gateway's CPU microseconds per request, median of the measured rounds.
cpu_us() {
    local r
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        awk -v t="$(cat "$OUT/rounds/$1-$r.ticks" 2>/dev/null || echo 0)" -v n="$BENCH_N" 'BEGIN { printf "%.1f\n", t * 10000 / n }'
    done | sort -n | awk -v m=$(((BENCH_ROUNDS + 1) / 2)) 'NR == m'
}
declare -A RPS P50 P99 OK CPU
for s in $SETUPS; do
    read -r RPS[$s] P50[$s] P99[$s] OK[$s] _ < <(stats "$s")
    CPU[$s]=-
    case $s in c | cb) CPU[$s]=$(cpu_us "$s") ;; esac
done
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }'; }

# ---- latency at a light load ------------------------------------------------------------------
# h2load -c 1 -m 1: every request waits for the one before, so none queues
# behind another and each latency is the front's own time plus the back end's.
# pct FILE P: the Pth percentile of an h2load log's latencies, in ms.
pct() { awk -F'\t' '{print $3}' "$1" | sort -n | awk -v p="$2" '
    { v[NR] = $1 } END { if (NR) printf "%.3f\n", v[int(NR * p + 0.5)] / 1000; else print "-" }'; }
# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
declare -A LP50 LP99 LOK
for r in $(seq 1 "$BENCH_ROUNDS"); do
    for s in $SETUPS; do
        log "light load, round $r, setup $s ..."
        timeout 300 h2load -n "$BENCH_LAT_N" -c 1 -m 1 -t 1 -H "$(auth_of "$s")" \
            --log-file="$OUT/rounds/lat-$s-$r.log" "$(url_of "$s")" >"$OUT/rounds/lat-$s-$r.txt" 2>&1
    done
done
for s in $SETUPS; do
    LP50[$s]=$(for r in $(seq 1 "$BENCH_ROUNDS"); do pct "$OUT/rounds/lat-$s-$r.log" 0.50; done | median)
    LP99[$s]=$(for r in $(seq 1 "$BENCH_ROUNDS"); do pct "$OUT/rounds/lat-$s-$r.log" 0.99; done | median)
    LOK[$s]=$(cat "$OUT"/rounds/lat-"$s"-*.txt | grep -o 'status codes: [0-9]* 2xx' | awk '{ n += $3 } END { print n + 0 }')
done

# ---- logins per second ----------------------------------------------------------------------
# measure_logins URL FIRST: LOGIN_RATE, LOGIN_OK, LOGIN_TRIED, LOGIN_P50 of
# password + TOTP logins through URL, with accounts registered there from the
# FIRSTth unregistered person on; LOGIN_NEXT: the next unused one.
measure_logins() {
    local url=$1 i=$2 need f pw t0 t1
    LOGIN_RATE="-" LOGIN_OK=0 LOGIN_TRIED=0 LOGIN_P50="-"
    # Fresh accounts (registration is not timed); each logs in with the codes
    # of three consecutive TOTP steps, in order, so no code is a replay.
    need=$(((BENCH_LOGINS + 2) / 3))
    : >"$OUT/login-accounts"
    while [ "$(wc -l <"$OUT/login-accounts")" -lt "$need" ]; do
        f=$(pick_person unregistered "$i")
        i=$((i + 1))
        [ -n "$f" ] || break
        pw="Bench-$$-password-$i"
        GW_URL=$url register_person "$f" "$(person "$f" document)" "$pw"
        [ "$STATUS" = 201 ] && echo "$f $pw $(jb .totp.secret)" >>"$OUT/login-accounts"
    done
    LOGIN_NEXT=$i
    LOGIN_TRIED=$(($(wc -l <"$OUT/login-accounts") * 3))
    t0=$(date +%s%N)
    # One account per job, four jobs at a time; each job logs its account in
    # three times, each time with the code of the earliest TOTP step that is
    # in the ±1 window and later than the one it used before (no replay),
    # computed when the request leaves.
    xargs -P 4 -L 1 bash -c 'last=0
        for i in 1 2 3; do
            now=$(date +%s); cur=$((now / 30)); first=$((cur - 1))
            [ $((30 - now % 30)) -le 2 ] && first=$cur
            s=$first; [ "$s" -gt "$last" ] || s=$((last + 1))
            [ "$s" -le $((cur + 1)) ] || { sleep $((30 - now % 30)); s=$((last + 1)); }
            last=$s
            jq -nc --arg f "$1" --arg p "$2" --arg o "$(oathtool --totp -b -N "@$((s * 30 + 1))" "$3")" "{fin:\$f,password:\$p,otp:\$o}" |
                curl -s -o /dev/null -w "%{http_code} %{time_total}\n" --max-time 30 --cacert "'"$STATE_DIR"'/certs/root.pem" \
                    -H "content-type: application/json" --data-binary @- "'"$url"'/auth/password"
        done' _ <"$OUT/login-accounts" >"$OUT/login-codes"
    t1=$(date +%s%N)
    LOGIN_OK=$(grep -c '^200 ' "$OUT/login-codes")
    LOGIN_P50=$(awk '{print $2}' "$OUT/login-codes" | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.0f", v[int(NR * 0.5 + 0.5)] * 1000 }')
    LOGIN_RATE=$(awk -v n="$LOGIN_OK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
}
LOGIN_RATE="-" LOGIN_OK=0 LOGIN_TRIED=0 LOGIN_P50="-" ARGON="?"
CP_LOGIN_RATE="-" CP_LOGIN_OK=0 CP_LOGIN_TRIED=0 CP_LOGIN_P50="-"
if [ "$GW" = 1 ]; then
    measure_logins "$GW_URL" 0
    CONF=$(find "$STATE_DIR" -maxdepth 2 -name 'darvaza*.yaml' | head -n 1)
    ARGON=$(awk '/argon2_(memory|iterations|parallelism):/ {printf "%s %s ", $1, $2}' "$CONF")
    if [ "$CP" = 1 ]; then
        R=($LOGIN_RATE $LOGIN_OK $LOGIN_TRIED $LOGIN_P50)
        # (c') after (c): the same people, registered again in PostgreSQL
        # (cprime_login took the first one).
        measure_logins "$CP_URL" 1
        CP_LOGIN_RATE=$LOGIN_RATE CP_LOGIN_OK=$LOGIN_OK CP_LOGIN_TRIED=$LOGIN_TRIED CP_LOGIN_P50=$LOGIN_P50
        LOGIN_RATE=${R[0]} LOGIN_OK=${R[1]} LOGIN_TRIED=${R[2]} LOGIN_P50=${R[3]}
    fi
fi

# ---- card logins per second ------------------------------------------------------------------
# tests/bench/card.sh: challenge + ECDSA signature check + chain + OCSP (cached after the first)
# per login, against openssl speed's ECDSA P-256 verifications on this machine.
. "$HERE/card.sh"
CARD_RATE="-" CARD_OK=0 CARD_CPU_US="-" ECDSA_VERIFY="-" CARD_FAILS=0
[ "$GW" = 1 ] && card_bench

# ---- results ----------------------------------------------------------------------------------
{
    echo "# darvaza benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
    echo "$(nginx -v 2>&1 | sed 's/.*: //'), $(h2load --version 2>&1 | head -n 1), darvaza build: ${BUILD_DIR#"$ROOT"/}, $WORKERS workers each."
    echo
    echo "h2load -n $BENCH_N -c $BENCH_C -m $BENCH_M -t 1, TLS + HTTP/2 on loopback, one warm-up round then"
    echo "$BENCH_ROUNDS rounds interleaved; the median round by req/s, with its latency percentiles."
    echo "Back end: nginx on 127.0.0.1:9120 (HTTP/1.1, kept-alive connections) answering {\"ok\":true}."
    echo
    echo "| setup | req/s | p50 ms | p99 ms | 2xx of $BENCH_N | gateway CPU µs/req |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for s in $SETUPS; do
        case $s in a) name="(a) nginx reverse proxy" ;; b) name="(b) nginx + auth_request (HTTP auth service)" ;;
            c) name="(c) darvaza (session, policy, signed assertion, audit line)" ;;
            cb) name="(c batch) darvaza, assertions batch-signed" ;;
            c2) name="(c') darvaza, store in Redis, accounts in PostgreSQL" ;;
            d) name="(d) Apache httpd + mod_auth_openidc (session from darvaza's OIDC provider)" ;; esac
        echo "| $name | ${RPS[$s]} | ${P50[$s]} | ${P99[$s]} | ${OK[$s]} | ${CPU[$s]} |"
    done
    [ "$GW" = 1 ] || echo "| (c) darvaza | not run: the gateway or the stack is missing | | | | |"
    echo
    echo "At a light load (h2load -n $BENCH_LAT_N -c 1 -m 1: one request at a time, nothing queues;"
    echo "medians over $BENCH_ROUNDS interleaved rounds of each round's percentile):"
    echo
    echo "| setup | p50 ms | p99 ms | 2xx of $((BENCH_LAT_N * BENCH_ROUNDS)) |"
    echo "| --- | ---: | ---: | ---: |"
    for s in $SETUPS; do
        echo "| ($s) | ${LP50[$s]} | ${LP99[$s]} | ${LOK[$s]} |"
    done
    echo
    if [ "$GW" = 1 ]; then
        echo "Light-load p99: c/a = $(ratio "${LP99[c]}" "${LP99[a]}"), (c batch)/a = $(ratio "${LP99[cb]}" "${LP99[a]}"), c/b = $(ratio "${LP99[c]}" "${LP99[b]}")."
        echo
    fi
    if [ "$GW" = 1 ]; then
        echo "Throughput ratios: c/a = $(ratio "${RPS[c]}" "${RPS[a]}"), c/b = $(ratio "${RPS[c]}" "${RPS[b]}");"
        echo "batch-signed: (c batch)/(c) = $(ratio "${RPS[cb]}" "${RPS[c]}"), (c batch)/a = $(ratio "${RPS[cb]}" "${RPS[a]}"),"
        echo "(c batch)/b = $(ratio "${RPS[cb]}" "${RPS[b]}").  Targets (issue 16): c >= 1.2 a and c >= 2 b:"
        echo "$(awk -v c="${RPS[c]}" -v a="${RPS[a]}" -v b="${RPS[b]}" 'BEGIN { print ((c >= 1.2 * a) ? "met" : "not met") " and " ((c >= 2 * b) ? "met" : "not met") }')."
        echo "Latency under this load: p99 c/a = $(ratio "${P99[c]}" "${P99[a]}"); target (issue 16) p99 no worse than"
        echo "nginx's: $(awk -v c="${P99[c]}" -v a="${P99[a]}" 'BEGIN { print (c + 0 <= a + 0) ? "met" : "not met" }')."
        if [ "$D" = 1 ]; then
            echo "Against Apache httpd + mod_auth_openidc: c/d = $(ratio "${RPS[c]}" "${RPS[d]}"),"
            echo "(c batch)/d = $(ratio "${RPS[cb]}" "${RPS[d]}"), d/a = $(ratio "${RPS[d]}" "${RPS[a]}")."
        else
            echo "(d) Apache httpd + mod_auth_openidc not run (see the log above)."
        fi
        echo
        if [ -n "${BENCH_PERF:-}" ]; then
            for s in c cb; do
                echo "Where the gateway's CPU time per request goes, setup ($s) (perf, DWARF call graphs,"
                echo "an extra round after the measured ones; µs from the measured rounds' ${CPU[$s]} µs/request):"
                echo
                "$HERE/profile.sh" "$OUT/perf-$s.data" "${CPU[$s]}"
                echo
            done
        fi
        echo "Password + TOTP logins: $LOGIN_RATE logins/s ($LOGIN_OK of $LOGIN_TRIED answered 200, median"
        echo "$LOGIN_P50 ms each; 4 clients in parallel, a new TLS connection per login; $ARGON)."
        echo
    fi
    if [ "$CP" = 1 ]; then
        echo "(c') against (c): c'/c = $(ratio "${RPS[c2]}" "${RPS[c]}") (target >= 0.9); Redis commands per"
        echo "forwarded request of (c'): $CP_OPS ($((CP_CALLS1 - CP_CALLS0)) commands for $((BENCH_N / 4 + BENCH_ROUNDS * BENCH_N))"
        echo "requests; INFO commandstats around all its rounds, warm-up included)."
        echo "Password + TOTP logins with accounts in PostgreSQL: $CP_LOGIN_RATE logins/s ($CP_LOGIN_OK of"
        echo "$CP_LOGIN_TRIED, median $CP_LOGIN_P50 ms), against $LOGIN_RATE logins/s with SQLite (above)."
        echo
    elif [ "$GW" = 1 ]; then
        echo "(c') not run: Redis, PostgreSQL or its gateway did not start (see the log above)."
        echo
    fi
    if [ "$CARD_OK" != 0 ]; then
        card_summary
        echo
    fi
    echo "Memory per idle HTTP/2 connection (RSS growth with $BENCH_IDLE connections open, preface and"
    echo "SETTINGS exchanged, no stream): nginx (a) $IDLE_NGX bytes ($IDLE_NGX_N open),"
    echo "darvaza $IDLE_GW bytes ($IDLE_GW_N open); target darvaza <= nginx:"
    echo "$(awk -v g="$IDLE_GW" -v n="$IDLE_NGX" 'BEGIN { print (g != "-" && n != "-" && g + 0 <= n + 0) ? "met" : "not met" }')."
    echo "After one GET each (browser header fields, answer read, then idle): nginx (a) $IDLE1_NGX bytes"
    echo "($IDLE1_NGX_N open), darvaza $IDLE1_GW bytes ($IDLE1_GW_N open); target darvaza <= nginx:"
    echo "$(awk -v g="$IDLE1_GW" -v n="$IDLE1_NGX" 'BEGIN { print (g != "-" && n != "-" && g + 0 <= n + 0) ? "met" : "not met" }')."
    echo
    echo "Raw h2load output: build/bench/rounds/."
} >"$OUT/results.md"
cat "$OUT/results.md"
for s in $SETUPS; do
    [ "${OK[$s]}" = "$BENCH_N" ] || { log "bench: setup $s had failed requests (see build/bench/rounds/$s-*.txt)"; exit 1; }
    [ "${LOK[$s]}" = $((BENCH_LAT_N * BENCH_ROUNDS)) ] ||
        { log "bench: setup $s had failed requests at a light load (see build/bench/rounds/lat-$s-*.txt)"; exit 1; }
done
exit 0
