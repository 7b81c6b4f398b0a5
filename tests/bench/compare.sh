#!/usr/bin/env bash
# tests/bench/compare.sh - `make bench-compare BASE=REV`: the cost of a change,
# measured in one command.  Builds REV (default: the session's starting point
# given by BASE) in a worktree of its own, runs its `make bench` (its own demo
# config, scripts and binaries), then this tree's, and prints both tables and
# the before/after ratios.  Each pass measures nginx beside darvaza, so the
# ratio of the c/a ratios cancels what the machine itself did between the
# passes; the raw req/s ratio is printed too.
#
#   BASE=00ccc5c tests/bench/compare.sh     (BENCH_* variables are passed on)
set -u
BASE=${BASE:?set BASE to the git revision to compare with}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/build/bench-compare"
SRC="$OUT/base-src"
cd "$ROOT" || exit 2
mkdir -p "$OUT"

log() { printf '%s\n' "$*" >&2; }
die() { log "bench-compare: $*"; exit 1; }

rev=$(git rev-parse --verify "$BASE^{commit}" 2>/dev/null) || die "no such revision: $BASE"
if [ ! -d "$SRC/.git" ] && [ ! -f "$SRC/.git" ]; then
    git worktree add --detach "$SRC" "$rev" >/dev/null 2>&1 || die "cannot make a worktree of $BASE"
else
    git -C "$SRC" checkout --detach -q "$rev" || die "cannot check out $BASE in $SRC"
fi
log "building the baseline $(git -C "$SRC" log --oneline -1) ..."
make -C "$SRC" -j"$(nproc)" all >"$OUT/base-build.log" 2>&1 || die "the baseline does not build: $OUT/base-build.log"
log "building this tree ..."
make -j"$(nproc)" all >"$OUT/new-build.log" 2>&1 || die "this tree does not build: $OUT/new-build.log"

log "bench: the baseline ..."
(cd "$SRC" && bash tests/bench/run.sh) >"$OUT/base.txt" 2>"$OUT/base.err" || log "(the baseline's bench reported failures: $OUT/base.err)"
cp "$SRC/build/bench/results.md" "$OUT/base-results.md" 2>/dev/null
log "bench: this tree ..."
bash tests/bench/run.sh >"$OUT/new.txt" 2>"$OUT/new.err" || log "(this tree's bench reported failures: $OUT/new.err)"
cp "$ROOT/build/bench/results.md" "$OUT/new-results.md" 2>/dev/null

# rps FILE SETUP: the req/s of a setup in a results table.
rps() { awk -F'|' -v s="($2)" 'index($2, s) == 2 { gsub(/ /, "", $3); print $3; exit }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
idle() { grep -o 'darvaza [0-9]* bytes' "$1" | awk '{print $2}'; }
{
    echo "# darvaza before/after: $(git -C "$SRC" log --oneline -1 | cut -c1-60) -> $(git log --oneline -1 | cut -c1-60)"
    echo
    echo "| | baseline | this tree | after/before |"
    echo "| --- | ---: | ---: | ---: |"
    for s in a b c; do
        b=$(rps "$OUT/base-results.md" "$s"); n=$(rps "$OUT/new-results.md" "$s")
        echo "| ($s) req/s | ${b:--} | ${n:--} | $(ratio "${n:-0}" "${b:-0}") |"
    done
    cb=$(ratio "$(rps "$OUT/base-results.md" c)" "$(rps "$OUT/base-results.md" a)")
    cn=$(ratio "$(rps "$OUT/new-results.md" c)" "$(rps "$OUT/new-results.md" a)")
    echo "| c/a (machine drift cancelled) | $cb | $cn | $(ratio "$cn" "$cb") |"
    echo "| darvaza RSS per idle connection, bytes | $(idle "$OUT/base-results.md") | $(idle "$OUT/new-results.md") | |"
    echo
    echo "Full tables: ${OUT#"$ROOT"/}/base-results.md and new-results.md."
} >"$OUT/compare.md"
cat "$OUT/compare.md"
