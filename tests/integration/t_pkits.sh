#!/usr/bin/env bash
# t_pkits.sh - the NIST PKITS 1.0.1 path validation suite (249 cases of
# tests/data/pkits/pkits-manifest.json) through `darvaza cert check`, the
# validator every login uses.  Each case becomes one line of a --batch file:
# trust anchor as --ca, intermediates as --untrusted, CRLs as --crl (so
# revocation is CRL-only, every certificate of the path), validation_time as
# --at, the RFC 5280 6.1.1 inputs as flags, purpose any, and
# --legacy-algorithms (PKITS is RSA-1024 and SHA-1 throughout: it tests path
# logic, not the key floor, which t_trust_floor.sh covers).  The result must
# agree with should_validate on at least 247 cases: OpenSSL's own figure
# (4.1.5, DSA parameter inheritance, and 4.14.30, a cRLIssuer case, are its
# known misses).  Every disagreement is printed as a diag line.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
DZ="$BUILD_DIR/darvaza"
P="$ROOT/tests/data/pkits"
M="$P/pkits-manifest.json"
MIN_AGREE=${PKITS_MIN_AGREE:-247}

echo "1..3"
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
diag() { echo "# $*"; }

[ -x "$DZ" ] || { echo "Bail out! $DZ not built"; exit 1; }
[ -r "$M" ] || { echo "Bail out! $M missing"; exit 1; }
command -v jq >/dev/null || { echo "Bail out! jq missing"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/t_pkits.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# One line of options per case, in manifest order (line i = case i).
jq -r --arg p "$P" '
  .policy_oids as $oids
  | .testcases[]
  | [ "\($p)/certs/\(.end_entity).crt",
      "--ca", "\($p)/certs/\(.trust_anchor).crt",
      (.intermediates[] | ("--untrusted", "\($p)/certs/\(.).crt")),
      (.crls[] | ("--crl", "\($p)/crls/\(.).crl")),
      "--at", .validation_time, "--purpose", "any", "--legacy-algorithms",
      (if .initial_explicit_policy then "--explicit-policy" else empty end),
      (if .initial_policy_mapping_inhibit then "--inhibit-policy-mapping" else empty end),
      (if .initial_inhibit_any_policy then "--inhibit-any-policy" else empty end),
      (.initial_policy_set[] | ("--initial-policy", $oids[.])) ]
  | join(" ")' "$M" >"$WORK/cases" || { echo "Bail out! cannot read the manifest"; exit 1; }
jq -r '.testcases[] | "\(.test_number)\t\(.title)\t\(.should_validate)"' "$M" >"$WORK/expect"
total=$(wc -l <"$WORK/expect")

start=$(date +%s)
timeout -k 5 240 "$DZ" cert check --batch "$WORK/cases" >"$WORK/out" 2>"$WORK/err"
rc=$?
secs=$(($(date +%s) - start))
results=$(grep -c '^[0-9]*: \(valid\|invalid\):' "$WORK/out")
if [ "$rc" -eq 0 ] && [ "$results" -eq "$total" ] && [ "$total" -eq 249 ]; then
    ok "batch ran all $total cases in ${secs}s"
else
    nok "batch ran all cases (exit $rc, $results results of $total)"
    head -n 20 "$WORK/err" | while IFS= read -r l; do diag "$l"; done
fi

agree=0
i=0
while IFS=$'\t' read -r num title want; do
    i=$((i + 1))
    line=$(grep -m1 "^$i: " "$WORK/out")
    case "$line" in
    "$i: valid:"*) got=true; why=ok ;;
    "$i: invalid:"*) got=false; why=${line#"$i: invalid: "}; why=${why%%:*} ;;
    *) got=none; why="no result" ;;
    esac
    if [ "$got" = "$want" ]; then
        agree=$((agree + 1))
    else
        diag "disagreement: $num $title expected=$want got=$why"
    fi
done <"$WORK/expect"
diag "PKITS agreement: $agree of $total (threshold $MIN_AGREE)"
if [ "$agree" -ge "$MIN_AGREE" ]; then
    ok "agrees with PKITS on $agree of $total cases (>= $MIN_AGREE)"
else
    nok "agrees with PKITS on $agree of $total cases (>= $MIN_AGREE)"
fi

# The batch path and separate invocations must decide alike: a sample of
# valid and invalid cases run one process each, compared by exit code.
mismatch=""
for i in 1 2 3 14 40 75 120 170 210 249; do
    # shellcheck disable=SC2046
    "$DZ" cert check $(sed -n "${i}p" "$WORK/cases") >"$WORK/one" 2>&1
    code=$?
    line=$(grep -m1 "^$i: " "$WORK/out")
    case "$line" in
    "$i: valid:"*) want=0 ;;
    *) want=1 ;;
    esac
    [ "$code" -eq "$want" ] && [ "$(cat "$WORK/one")" = "${line#"$i: "}" ] || mismatch="$mismatch $i"
done
if [ -z "$mismatch" ]; then
    ok "single invocations print and exit as the batch decided (10 cases)"
else
    nok "single invocations print and exit as the batch decided (differ:$mismatch)"
fi
[ "$failed" -eq 0 ]
