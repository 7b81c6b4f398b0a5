#!/usr/bin/env bash
# tests/bench/card.sh - card logins per second and the gateway's CPU per card
# login (docs/performance.md "Card logins").  Sourced by run.sh (after the
# stack started: STATE_DIR, PEOPLE, GW_URL, GW_PID, OUT, BUILD_DIR), or run
# alone, which starts the demo stack itself:
#
#   unshare --net bash -c 'ip link set lo up && tests/bench/card.sh'
#
# Each login is one darvaza-card process (one TLS connection: the challenge,
# SoftHSM2 signs it, the answer), BENCH_CARD_LOGINS in all, 4 at a time (each
# client its own copy of the SoftHSM2 tokens), the
# OCSP answer cached by a first login.  The gateway's CPU is its process CPU
# clock (gw_cpu_ns: nanoseconds, every thread, also those that ended between
# the reads), read around each of BENCH_CARD_BATCHES batches (default 5):
# the whole run's CPU divided by the logins that got a session, and the
# batches' median and range per login; the old figure from /proc/PID/stat
# (10 ms ticks) is printed beside it.  A login that got none is counted and
# its darvaza-card message kept ($OUT/card-errors) - never silently dropped.  The cost is also given in
# ECDSA P-256 verifications (openssl speed, one core).  Each client keeps
# its TLS session in a file of its own (darvaza-card --tls-session, when the
# build has it; BENCH_CARD_RESUME=0 turns it off) and resumes it at its next
# login, as a browser would; the warm-up logins make the first ones.
# BENCH_PERF=1 records
# a perf profile of the gateway during one more batch ($OUT/perf-card.data)
# and prints the share of the CPU by stage of a card login.
BENCH_CARD_LOGINS=${BENCH_CARD_LOGINS:-40}

# gw_cpu_ns: the gateway's CPU so far, in nanoseconds - the process CPU clock
# (clock_getcpuclockid(GW_PID), CPUCLOCK_SCHED: the scheduler's runtime of
# every thread, those that have ended included, the sum /proc/PID/stat's
# utime+stime is cut to 10 ms ticks from).  Summing
# /proc/PID/task/*/schedstat instead would lose a thread that ends between
# the reads (libcurl's resolver threads do).
gw_cpu_ns() {
    python3 -c 'import sys, time; p = int(sys.argv[1]); print(time.clock_gettime_ns((~p << 3) | 2))' "$GW_PID"
}

gw_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }

# gw_schedstat_ns: the sum of the first field of /proc/PID/task/*/schedstat,
# the threads alive now; against gw_cpu_ns over the same run it shows whether
# any thread ended in between (CARD_LOST_NS, printed by card_summary).
gw_schedstat_ns() { cat /proc/"$GW_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# gw_threads: one line per thread of the gateway: tid, CPU ns (schedstat),
# voluntary and involuntary context switches.
gw_threads() {
    local t
    for t in /proc/"$GW_PID"/task/*; do
        printf '%s %s %s %s\n' "${t##*/}" "$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null)" \
            "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null)" \
            "$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null)"
    done
}

# card_threads BEFORE AFTER LOGINS: per thread of the gateway (named by the
# function its thread started in, from gdb when there is one), CPU and
# context switches per login over the run; how many times a login puts a
# thread to sleep and wakes it (BENCH_CARD_THREADS=1).
card_threads() {
    local names=/dev/null
    if command -v gdb >/dev/null; then
        names="$OUT/card-thread-names"
        # The frame below start_thread is the thread's own function; the
        # thread without one is the process's main thread.
        gdb -p "$GW_PID" -batch -ex 'thread apply all bt' 2>/dev/null | awk '
            function done() { if (tid != "") print tid, (fn == "" ? "main" : fn); tid = "" }
            /^Thread / { done(); match($0, /LWP [0-9]+/); tid = substr($0, RSTART + 4, RLENGTH - 4); fn = ""; prev = "" }
            /^#[0-9]+ / { f = ($3 == "in") ? $4 : $2; if (f == "start_thread" && fn == "") fn = prev; prev = f }
            END { done() }' >"$names"
    fi
    awk -v n="$3" 'FILENAME == ARGV[1] { name[$1] = $2; next }
        FILENAME == ARGV[2] { c[$1] = $2; v[$1] = $3; i[$1] = $4; next }
        { nm = ($1 in name) ? name[$1] : "?"
          printf "| %s %s | %.0f | %.2f | %.2f |\n", $1, nm, ($2 - c[$1]) / 1000 / n, ($3 - v[$1]) / n, ($4 - i[$1]) / n }' \
        "$names" "$1" "$2"
}

# card_bench: sets CARD_RATE, CARD_OK, CARD_CPU_US (gateway CPU per login, the
# whole run, from gw_cpu_ns), CARD_CPU_SPREAD ("median (lowest-highest)" of
# the batches, µs per login), CARD_CPU_TICK_US (the same from 10 ms ticks),
# ECDSA_VERIFY, CARD_FAILS, CARD_RESUMED (logins whose TLS session was
# resumed), CARD_CHECKS (the certificate checks of the measured logins on the
# worker loop and on the pool, "loop/pool", when the build counts them:
# darvaza_certchecks_total).
card_bench() {
    local card t0 t1 ticks0 ticks1 loop0 pool0 ns0 ns1 ns_all=0 b n ok_before ok batches per
    CARD_RATE="-" CARD_OK=0 CARD_CPU_US="-" CARD_CPU_SPREAD="-" CARD_CPU_TICK_US="-" ECDSA_VERIFY="-"
    CARD_FAILS=0 CARD_RESUMED=0 CARD_CHECKS="-" CARD_LOST_NS="-"
    [ -x "$BUILD_DIR/darvaza-card" ] && [ -f "$STATE_DIR/cards/softhsm2.conf" ] || return 0
    card=$(jq -c 'map(select(.card_label != null and .role == "citizen"))[0]' "$PEOPLE")
    [ "$card" != null ] || return 0
    rm -f "$OUT/card.pin" "$OUT/card-errors" # (umask applies only to a new file)
    (umask 077 && jq -r .card_pin <<<"$card" >"$OUT/card.pin") # a PIN file must be the owner's alone
    CARD_LABEL=$(jq -r .card_label <<<"$card")
    # SoftHSM2 does not take several processes on one token directory: a
    # login at the same time as another's fails on the client ("cannot
    # list the card readers", "General Error") before the gateway sees
    # anything.  Each of the 4 clients gets its own copy of the tokens.
    local w
    for w in 1 2 3 4; do
        rm -rf "$OUT/card-hsm-$w"
        mkdir -p "$OUT/card-hsm-$w"
        cp -a "$STATE_DIR/cards/tokens" "$OUT/card-hsm-$w/tokens"
        printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
            "$OUT/card-hsm-$w/tokens" >"$OUT/card-hsm-$w/softhsm2.conf"
    done
    CARD_TLS_RESUME=0
    if [ "${BENCH_CARD_RESUME:-1}" = 1 ] && "$BUILD_DIR/darvaza-card" --help | grep -q -- --tls-session; then
        CARD_TLS_RESUME=1
    fi
    # Warms the OCSP cache (and, resuming, gives each client its session).
    for w in 1 2 3 4; do
        rm -f "$OUT/card-hsm-$w/tls-session"
        SOFTHSM2_CONF="$OUT/card-hsm-$w/softhsm2.conf" CARD_W=$w card_login >/dev/null
    done
    rm -f "$OUT/card-tls" "$OUT/card-tokens" "$OUT/card-batches"
    loop0=$(metric 'darvaza_certchecks_total{path="loop"}')
    pool0=$(metric 'darvaza_certchecks_total{path="pool"}')
    batches=${BENCH_CARD_BATCHES:-5}
    [ "$batches" -ge 1 ] && [ "$batches" -le "$BENCH_CARD_LOGINS" ] || batches=1
    [ "${BENCH_CARD_THREADS:-0}" != 1 ] || gw_threads >"$OUT/card-threads0"
    ticks0=$(gw_ticks)
    local ss0 cl0
    ss0=$(gw_schedstat_ns) cl0=$(gw_cpu_ns)
    t0=$(date +%s%N)
    for ((b = 1; b <= batches; b++)); do
        # The batches share the logins out; the last takes what is left.
        per=$((BENCH_CARD_LOGINS / batches))
        [ "$b" -lt "$batches" ] || per=$((BENCH_CARD_LOGINS - (batches - 1) * (BENCH_CARD_LOGINS / batches)))
        ok_before=$(grep -cE '^[A-Za-z0-9_-]{43}$' "$OUT/card-tokens" 2>/dev/null)
        ns0=$(gw_cpu_ns)
        card_run "$per" >>"$OUT/card-tokens"
        ns1=$(gw_cpu_ns)
        ok=$(($(grep -cE '^[A-Za-z0-9_-]{43}$' "$OUT/card-tokens") - ${ok_before:-0}))
        ns_all=$((ns_all + ns1 - ns0))
        [ "$ok" = 0 ] || echo $(((ns1 - ns0) / ok / 1000)) >>"$OUT/card-batches"
    done
    t1=$(date +%s%N)
    ticks1=$(gw_ticks)
    # What the live threads' schedstat misses of the CPU clock: the CPU of
    # threads that ended during the run (a few µs of read skew aside).
    CARD_LOST_NS=$(($(gw_cpu_ns) - cl0 - ($(gw_schedstat_ns) - ss0)))
    if [ "${BENCH_CARD_THREADS:-0}" = 1 ]; then
        gw_threads >"$OUT/card-threads1"
        card_threads "$OUT/card-threads0" "$OUT/card-threads1" "$BENCH_CARD_LOGINS" >"$OUT/card-threads.md"
    fi
    if [ -n "$loop0" ]; then
        CARD_CHECKS="$(($(metric 'darvaza_certchecks_total{path="loop"}') - loop0))/$(($(metric 'darvaza_certchecks_total{path="pool"}') - pool0))"
    fi
    CARD_RESUMED=$(cat "$OUT/card-tls" 2>/dev/null | grep -c 'session resumed')
    CARD_OK=$(grep -cE '^[A-Za-z0-9_-]{43}$' "$OUT/card-tokens")
    CARD_FAILS=$((BENCH_CARD_LOGINS - CARD_OK))
    CARD_RATE=$(awk -v n="$CARD_OK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
    # The CPU between the batches (a few shell commands' worth of the
    # gateway idling) is not in ns_all; the ticks cover the whole run.
    CARD_CPU_US=$(awk -v ns="$ns_all" -v n="$CARD_OK" 'BEGIN { if (n) printf "%.0f", ns / 1000 / n }')
    CARD_CPU_SPREAD=$(sort -n "$OUT/card-batches" 2>/dev/null | awk '{ v[NR] = $1 }
        END { if (NR) printf "%d (%d-%d)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')
    # The old figure: clock ticks are 10 ms.
    CARD_CPU_TICK_US=$(awk -v t=$((ticks1 - ticks0)) -v n="$CARD_OK" 'BEGIN { if (n) printf "%.0f", t * 10000 / n }')
    ECDSA_VERIFY=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF)}')
    if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
        perf record -q -F 4000 --call-graph dwarf,16384 -o "$OUT/perf-card.data" -p "$GW_PID" \
            >/dev/null 2>&1 &
        local perf_pid=$!
        card_run "${BENCH_CARD_PERF_LOGINS:-200}" >/dev/null
        kill -TERM "$perf_pid" 2>/dev/null # (SIGINT is ignored by a background job)
        wait "$perf_pid" 2>/dev/null
    fi
}

# card_run N: N logins by 4 clients in parallel (each its own token copy),
# one token per line on stdout.
card_run() {
    local w pids=()
    for w in 1 2 3 4; do
        (
            export SOFTHSM2_CONF="$OUT/card-hsm-$w/softhsm2.conf" CARD_W=$w
            local i
            for ((i = w; i <= $1; i += 4)); do card_login; done
        ) &
        pids+=($!)
    done
    # Only these four: a bare `wait` would also wait for the daemons this
    # shell started in the background (c'), that is forever.
    wait "${pids[@]}"
}

# One login (client CARD_W); the token on stdout, darvaza-card's complaint
# (if any) kept.
card_login() {
    local err resume=()
    err=$(mktemp)
    [ "$CARD_TLS_RESUME" != 1 ] || resume=(--tls-session "$OUT/card-hsm-$CARD_W/tls-session" --verbose)
    "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --cacert "$STATE_DIR/certs/root.pem" \
        --token "$CARD_LABEL" --pin-file "$OUT/card.pin" "${resume[@]}" 2>"$err" | tail -n 1
    # --verbose's one line says how the TLS connection went: counted.
    grep -h '^darvaza-card: TLS: ' "$err" >>"$OUT/card-tls" 2>/dev/null
    sed -i '/^darvaza-card: TLS: /d' "$err"
    if [ -s "$err" ]; then cat "$err" >>"$OUT/card-errors"; fi
    rm -f "$err"
}

# handshake_cost N full|resumed: the gateway's CPU (µs) per TLS connection
# to the portal's listener - handshake, the HTTP/2 preface and SETTINGS,
# close - over N connections from one python3 process (full: a new
# handshake each; resumed: each offers the previous one's TLS 1.3 ticket).
# Sets HS_US and HS_REUSED (how many resumed).
handshake_cost() {
    local t0 t1
    t0=$(gw_cpu_ns)
    HS_REUSED=$(python3 - "$1" "$2" "${GW_URL#https://}" "$STATE_DIR/certs/root.pem" <<'PY'
import socket, ssl, sys
n, mode, hp, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host, port = hp.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"])
sess, reused = None, 0
for _ in range(n):
    with socket.create_connection((host, int(port))) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, session=sess if mode == "resumed" else None) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            s.recv(4096)  # the server's SETTINGS (and, before them, the tickets)
            reused += s.session_reused
            sess = s.session
print(reused)
PY
)
    t1=$(gw_cpu_ns)
    HS_US=$(awk -v ns=$((t1 - t0)) -v n="$1" 'BEGIN { printf "%.0f", ns / 1000 / n }')
}

# card_summary: the lines run.sh's results print.
card_summary() {
    echo "Card logins: $CARD_RATE logins/s ($CARD_OK of $BENCH_CARD_LOGINS; 4 darvaza-card processes at a"
    echo "time, SoftHSM2 signing each challenge; OCSP answer cached; TLS sessions $([ "$CARD_TLS_RESUME" = 1 ] && echo "resumed: $CARD_RESUMED" || echo "not resumed")). The gateway spent $CARD_CPU_US µs of"
    echo "CPU per card login (its CPU clock; batches: median (range) $CARD_CPU_SPREAD µs; 10 ms ticks said"
    echo "$CARD_CPU_TICK_US µs); openssl speed verifies $ECDSA_VERIFY ECDSA P-256 signatures/s on one core,"
    echo "so one card login costs about $(awk -v c="$CARD_CPU_US" -v v="$ECDSA_VERIFY" 'BEGIN { if (v > 0) printf "%.1f", c / (1e6 / v) }')"
    echo "ECDSA verifications' worth of gateway CPU."
    [ "$CARD_CHECKS" = - ] || echo "Certificate checks on the worker loop / on the pool: $CARD_CHECKS."
    if [ "${BENCH_CARD_THREADS:-0}" = 1 ]; then
        echo "Per thread of the gateway, per login:"
        echo "| thread | CPU µs | voluntary switches (sleeps) | involuntary switches |"
        echo "| --- | ---: | ---: | ---: |"
        cat "$OUT/card-threads.md"
    fi
    echo "CPU of threads that ended during the run (CPU clock minus the live threads' schedstat): ${CARD_LOST_NS:-?} ns."
    if [ "$CARD_FAILS" != 0 ]; then
        echo "$CARD_FAILS logins got no session; darvaza-card said (counted):"
        sort "$OUT/card-errors" 2>/dev/null | uniq -c | sed 's/^/    /'
    fi
}

# Alone: the demo stack, the measurement, the summary.  BENCH_CARD_BASE=DIR
# (another tree's build directory, e.g. main's): that build and this one
# alternate, BENCH_CARD_ROUNDS rounds each (default 2), a fresh stack per
# round, and a table of both compares them.  BENCH_CARD_HANDSHAKES=N: also
# the gateway's CPU per TLS connection, full and resumed (N of each, twice;
# with BENCH_PERF=1 a perf record of N more resumed ones, $OUT/perf-hs.data).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    HERE=$(cd "$(dirname "$0")" && pwd)
    ROOT=$(cd "$HERE/../.." && pwd)
    OUT="$ROOT/build/bench"
    mkdir -p "$OUT"
    export DZ_STATE_DIR="$OUT/card-stack"
    BUILD_DIR=${BUILD_DIR:-build}
    . "$ROOT/tests/integration/lib.sh"
    cd "$ROOT" || exit 2
    one_round() { # one_round BUILD_DIR: a stack from that build, the measurement
        BUILD_DIR=$1
        rm -rf "$STATE_DIR"
        stack_start ${BENCH_CARD_CONFIG:+CONFIG_SET="$BENCH_CARD_CONFIG"} >/dev/null
        GW_PID=$(listener_pid 8443)
        card_bench
        if [ -n "${BENCH_CARD_HANDSHAKES:-}" ]; then # full and resumed, alternating
            local k
            for k in 1 2; do
                for m in full resumed; do
                    handshake_cost "$BENCH_CARD_HANDSHAKES" $m
                    echo "# $BUILD_DIR: $m TLS connections: $HS_US µs of gateway CPU each ($HS_REUSED of $BENCH_CARD_HANDSHAKES resumed)"
                done
            done
            if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
                # Where a resumed connection's CPU goes: $OUT/perf-hs.data.
                perf record -q -F 4000 --call-graph dwarf,16384 -o "$OUT/perf-hs.data" -p "$GW_PID" \
                    >/dev/null 2>&1 &
                local perf_pid=$!
                handshake_cost "$BENCH_CARD_HANDSHAKES" resumed
                kill -TERM "$perf_pid" 2>/dev/null
                wait "$perf_pid" 2>/dev/null
            fi
        fi
        stack_stop
    }
    if [ -n "${BENCH_CARD_BASE:-}" ]; then
        THIS=$BUILD_DIR
        echo "| round | build | logins | logins/s | gateway CPU µs per login | batches: median (range) | 10 ms ticks | ECDSA P-256 verify/s | verifications' worth |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for r in $(seq 1 "${BENCH_CARD_ROUNDS:-2}"); do
            for b in "$BENCH_CARD_BASE" "$THIS"; do
                one_round "$b"
                echo "| $r | $b$([ "$CARD_TLS_RESUME" = 1 ] && echo " ($CARD_RESUMED resumed)") | $CARD_OK of $BENCH_CARD_LOGINS | $CARD_RATE | $CARD_CPU_US | $CARD_CPU_SPREAD | $CARD_CPU_TICK_US | $ECDSA_VERIFY | $(awk -v c="$CARD_CPU_US" -v v="$ECDSA_VERIFY" 'BEGIN { if (v > 0) printf "%.1f", c / (1e6 / v) }') |"
                [ "$CARD_FAILS" = 0 ] || sort "$OUT/card-errors" | uniq -c | sed 's/^/#   /'
                [ "$CARD_CHECKS" = - ] || echo "#   $b: certificate checks on the worker loop / on the pool: $CARD_CHECKS"
                [ "${BENCH_CARD_THREADS:-0}" != 1 ] || sed "s|^|#   $b: |" "$OUT/card-threads.md"
            done
        done
        exit 0
    fi
    one_round "$BUILD_DIR"
    card_summary
    if [ "${BENCH_PERF:-0}" = 1 ] && [ -f "$OUT/perf-card.data" ] && [ -x "$HERE/profile_card.sh" ]; then
        echo
        echo "Where the CPU goes (perf, by stage; $OUT/perf-card.data):"
        "$HERE/profile_card.sh" "$OUT/perf-card.data" "$CARD_CPU_US" "$ECDSA_VERIFY"
    fi
fi
