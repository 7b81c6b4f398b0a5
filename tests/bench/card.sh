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
# OCSP answer cached by a first login.  CPU from /proc/PID/stat (10 ms
# ticks) over the whole run, divided by the logins that got a session; a
# login that got none is counted and its darvaza-card message kept
# ($OUT/card-errors) - never silently dropped.  The cost is also given in
# ECDSA P-256 verifications (openssl speed, one core).  Each client keeps
# its TLS session in a file of its own (darvaza-card --tls-session, when the
# build has it; BENCH_CARD_RESUME=0 turns it off) and resumes it at its next
# login, as a browser would; the warm-up logins make the first ones.
# BENCH_PERF=1 records
# a perf profile of the gateway during one more batch ($OUT/perf-card.data)
# and prints the share of the CPU by stage of a card login.
BENCH_CARD_LOGINS=${BENCH_CARD_LOGINS:-40}

# card_bench: sets CARD_RATE, CARD_OK, CARD_CPU_US, ECDSA_VERIFY, CARD_FAILS,
# CARD_RESUMED (logins whose TLS session was resumed), CARD_CHECKS (the
# certificate checks of the measured logins on the worker loop and on the
# pool, "loop/pool", when the build counts them: darvaza_certchecks_total).
card_bench() {
    local card t0 t1 ticks0 ticks1 loop0 pool0
    CARD_RATE="-" CARD_OK=0 CARD_CPU_US="-" ECDSA_VERIFY="-" CARD_FAILS=0 CARD_RESUMED=0 CARD_CHECKS="-"
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
    rm -f "$OUT/card-tls"
    loop0=$(metric 'darvaza_certchecks_total{path="loop"}')
    pool0=$(metric 'darvaza_certchecks_total{path="pool"}')
    ticks0=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
    t0=$(date +%s%N)
    card_run "$BENCH_CARD_LOGINS" >"$OUT/card-tokens"
    t1=$(date +%s%N)
    ticks1=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
    if [ -n "$loop0" ]; then
        CARD_CHECKS="$(($(metric 'darvaza_certchecks_total{path="loop"}') - loop0))/$(($(metric 'darvaza_certchecks_total{path="pool"}') - pool0))"
    fi
    CARD_RESUMED=$(cat "$OUT/card-tls" 2>/dev/null | grep -c 'session resumed')
    CARD_OK=$(grep -cE '^[A-Za-z0-9_-]{43}$' "$OUT/card-tokens")
    CARD_FAILS=$((BENCH_CARD_LOGINS - CARD_OK))
    CARD_RATE=$(awk -v n="$CARD_OK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
    # CPU the gateway spent per card login (clock ticks are 10 ms).
    CARD_CPU_US=$(awk -v t=$((ticks1 - ticks0)) -v n="$CARD_OK" 'BEGIN { if (n) printf "%.0f", t * 10000 / n }')
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
    t0=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
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
    t1=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
    HS_US=$(awk -v t=$((t1 - t0)) -v n="$1" 'BEGIN { printf "%.0f", t * 10000 / n }')
}

# card_summary: the lines run.sh's results print.
card_summary() {
    echo "Card logins: $CARD_RATE logins/s ($CARD_OK of $BENCH_CARD_LOGINS; 4 darvaza-card processes at a"
    echo "time, SoftHSM2 signing each challenge; OCSP answer cached; TLS sessions $([ "$CARD_TLS_RESUME" = 1 ] && echo "resumed: $CARD_RESUMED" || echo "not resumed")). The gateway spent $CARD_CPU_US µs of"
    echo "CPU per card login; openssl speed verifies $ECDSA_VERIFY ECDSA P-256 signatures/s on one core,"
    echo "so one card login costs about $(awk -v c="$CARD_CPU_US" -v v="$ECDSA_VERIFY" 'BEGIN { if (v > 0) printf "%.1f", c / (1e6 / v) }')"
    echo "ECDSA verifications' worth of gateway CPU."
    [ "$CARD_CHECKS" = - ] || echo "Certificate checks on the worker loop / on the pool: $CARD_CHECKS."
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
        echo "| round | build | logins | logins/s | gateway CPU µs per login | ECDSA P-256 verify/s | verifications' worth |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        for r in $(seq 1 "${BENCH_CARD_ROUNDS:-2}"); do
            for b in "$BENCH_CARD_BASE" "$THIS"; do
                one_round "$b"
                echo "| $r | $b$([ "$CARD_TLS_RESUME" = 1 ] && echo " ($CARD_RESUMED resumed)") | $CARD_OK of $BENCH_CARD_LOGINS | $CARD_RATE | $CARD_CPU_US | $ECDSA_VERIFY | $(awk -v c="$CARD_CPU_US" -v v="$ECDSA_VERIFY" 'BEGIN { if (v > 0) printf "%.1f", c / (1e6 / v) }') |"
                [ "$CARD_FAILS" = 0 ] || sort "$OUT/card-errors" | uniq -c | sed 's/^/#   /'
                [ "$CARD_CHECKS" = - ] || echo "#   $b: certificate checks on the worker loop / on the pool: $CARD_CHECKS"
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
