#!/usr/bin/env bash
# tests/run.sh - runs every test of darvaza against one build and ends with
# one summary line "N passed, M failed" (exit 1 if M > 0).
#
#   BUILD_DIR=build/asan tests/run.sh            (what `make test` runs)
#   BUILD_DIR=build tests/run.sh t_login          (only integration scripts matching)
#
# What counts as one test:
#   - a unit test binary $BUILD_DIR/tests/test_*   (by its exit code; cmocka prints its own lines)
#   - a fuzz replayer $BUILD_DIR/tests/replay_fuzz_X over tests/fuzz/corpus/X/ (exit code)
#   - each TAP line `ok N` / `not ok N` of tests/integration/t_*.sh; tests a script
#     planned but never printed (it died, bailed out or timed out) count as failed,
#     and so does `ok ... # SKIP` (a test that did not run proved nothing).
# Each binary or script runs under a time bound; logs go to build/test-logs/.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR
FILTER=${1:-}
LOGDIR="$ROOT/build/test-logs"
mkdir -p "$LOGDIR"

# Sanitizers: abort at the first error, leaks are errors.  The integration
# library sends the daemons' reports to files and fails a test for any report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
REPLAY_TIMEOUT=${REPLAY_TIMEOUT:-120}
SCRIPT_TIMEOUT=${SCRIPT_TIMEOUT:-300}

passed=0
failed=0
failures=()
started=$(date +%s)

record() { # record pass|fail NAME
    if [ "$1" = pass ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$2")
    fi
}

section() { printf '\n=== %s\n' "$*"; }

# ---- unit tests --------------------------------------------------------------
if [ -z "$FILTER" ]; then
    section "unit tests ($BUILD_DIR/tests/test_*)"
    for bin in "$BUILD_DIR"/tests/test_*; do
        [ -x "$bin" ] || continue
        name=$(basename "$bin")
        log="$LOGDIR/$name.log"
        timeout -k 5 "$UNIT_TIMEOUT" "$bin" >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            record pass "$name"
            printf 'PASS  %s\n' "$name"
        else
            record fail "unit $name (exit $rc)"
            printf 'FAIL  %s (exit %d)\n' "$name" "$rc"
            sed 's/^/    /' "$log" | tail -n 60
        fi
    done

    # ---- fuzz corpora replayed -------------------------------------------------
    section "fuzz corpus replays ($BUILD_DIR/tests/replay_fuzz_*)"
    for bin in "$BUILD_DIR"/tests/replay_fuzz_*; do
        [ -x "$bin" ] || continue
        name=$(basename "$bin")
        target=${name#replay_fuzz_}
        corpus="tests/fuzz/corpus/$target"
        log="$LOGDIR/$name.log"
        if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
            record fail "replay $target (no seed corpus in $corpus)"
            printf 'FAIL  %s (no seed corpus in %s)\n' "$name" "$corpus"
            continue
        fi
        timeout -k 5 "$REPLAY_TIMEOUT" "$bin" "$corpus" >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            record pass "$name"
            printf 'PASS  %s (%s)\n' "$name" "$(tail -n 1 "$log")"
        else
            record fail "replay $target (exit $rc)"
            printf 'FAIL  %s (exit %d)\n' "$name" "$rc"
            sed 's/^/    /' "$log" | tail -n 60
        fi
    done
fi

# ---- integration scripts (TAP) -------------------------------------------------
# Parses one script's TAP output; prints "passed failed" and appends the names
# of failed tests to the file given.
tap_count() { # tap_count LOG RC SCRIPT FAILFILE
    awk -v rc="$2" -v script="$3" -v failfile="$4" '
        /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; haveplan = 1; next }
        /^not ok [0-9]+([ \t]|$)/ { seen++; bad++; print script ": " $0 >> failfile; next }
        /^ok [0-9]+([ \t]|$)/ {
            seen++
            if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) { bad++; print script ": " $0 " (skipped counts as failed)" >> failfile }
            else good++
            next
        }
        /^Bail out!/ { print script ": " $0 >> failfile }
        END {
            if (!haveplan) { bad++; print script ": no TAP plan printed (exit " rc ")" >> failfile }
            else if (seen < plan) {
                bad += plan - seen
                print script ": ran " seen + 0 " of " plan " planned tests (exit " rc "); the missing count as failed" >> failfile
            } else if (seen > plan) {
                bad++
                print script ": printed " seen " tests but planned " plan >> failfile
            }
            if (rc != 0 && bad == 0) { bad++; print script ": exited " rc " although every test passed" >> failfile }
            printf "%d %d\n", good, bad
        }' "$1"
}

# Scripts run TEST_JOBS at a time, each in its own network namespace (its own
# loopback, so the fixed ports of one never meet another's).  A script that
# changes the machine itself (packages, system users) says "# run.sh: alone"
# and runs after the others, by itself.  Without the right to make a
# namespace (not root), everything runs one by one as before.
if [ -z "${TEST_JOBS:-}" ]; then
    if unshare --net true 2>/dev/null && command -v ip >/dev/null; then TEST_JOBS=2; else TEST_JOBS=1; fi
fi
section "integration (tests/integration/t_*.sh, timeout ${SCRIPT_TIMEOUT}s each, $TEST_JOBS at a time)"
failfile="$LOGDIR/integration-failures.txt"
: >"$failfile"

run_script() { # run_script SCRIPT: runs it, leaves its exit code and time in LOG.rc
    local script=$1 name log t0 rc
    name=$(basename "$script" .sh)
    log="$LOGDIR/$name.log"
    t0=$(date +%s)
    # setsid: the script and everything it starts form one process group that
    # timeout can end as a whole; the script's own trap stops the stack.
    if [ "$TEST_JOBS" -gt 1 ]; then
        timeout -k 20 "$SCRIPT_TIMEOUT" unshare --net setsid bash -c \
            'ip link set lo up && exec bash "$0"' "$script" >"$log" 2>&1 </dev/null
    else
        timeout -k 20 "$SCRIPT_TIMEOUT" setsid bash "$script" >"$log" 2>&1 </dev/null
    fi
    rc=$?
    [ $rc -eq 124 ] && echo "# TIMEOUT: $name ran longer than ${SCRIPT_TIMEOUT}s" >>"$log"
    echo "$rc $(($(date +%s) - t0))" >"$log.rc"
}

report_script() { # report_script NAME: its TAP lines and counts, from its log
    local name=$1 log="$LOGDIR/$1.log" rc secs good bad
    read -r rc secs <"$log.rc"
    printf -- '--- %s\n' "$name"
    # Show the TAP lines and diagnostics; keep the noise in the log.
    grep -E '^(ok|not ok|1\.\.|#|Bail out!)' "$log" | sed 's/^/    /'
    read -r good bad < <(tap_count "$log" "$rc" "$name" "$failfile")
    passed=$((passed + good))
    failed=$((failed + bad))
    printf -- '    (%s: %d passed, %d failed, %ds, log %s)\n' "$name" "$good" "$bad" \
        "$secs" "${log#"$ROOT"/}"
}

together=()
alone=()
for script in tests/integration/t_*.sh; do
    [ -f "$script" ] || continue
    name=$(basename "$script" .sh)
    case "$name" in *"$FILTER"*) ;; *) continue ;; esac
    rm -f "$LOGDIR/$name.log.rc"
    if grep -q '^# run.sh: alone' "$script"; then alone+=("$script"); else together+=("$script"); fi
done

# The browser tests' packages (apt-get, npm ci) come from the network, which
# the scripts' namespaces do not have: installed here, before them.
if [ "$TEST_JOBS" -gt 1 ] && printf '%s\n' "${together[@]}" "${alone[@]}" | grep -q browser; then
    echo "--- browser test packages (tests/browser/run.sh --install)"
    bash tests/browser/run.sh --install 2>&1 | sed 's/^/    /'
fi

declare -A running=() # pid -> script name
reap_one() { # waits for one running script and reports it
    local pid=""
    wait -n -p pid "${!running[@]}" 2>/dev/null
    if [ -z "$pid" ] || [ -z "${running[$pid]:-}" ]; then
        # Nothing to wait for any more: whatever is not alive has ended.
        for pid in "${!running[@]}"; do
            kill -0 "$pid" 2>/dev/null && continue
            report_script "${running[$pid]}"
            unset "running[$pid]"
        done
        return 0
    fi
    report_script "${running[$pid]}"
    unset "running[$pid]"
}
for script in "${together[@]}"; do
    while [ ${#running[@]} -ge "$TEST_JOBS" ]; do reap_one; done
    run_script "$script" &
    running[$!]=$(basename "$script" .sh)
done
while [ ${#running[@]} -gt 0 ]; do reap_one; done
for script in "${alone[@]}"; do
    run_script "$script"
    report_script "$(basename "$script" .sh)"
done
while IFS= read -r line; do failures+=("$line"); done <"$failfile"

# ---- summary -------------------------------------------------------------------
printf '\n=== done in %ds\n' "$(($(date +%s) - started))"
if [ ${#failures[@]} -gt 0 ]; then
    echo "failures:"
    for f in "${failures[@]}"; do printf '  - %s\n' "$f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
