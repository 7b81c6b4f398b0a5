#!/usr/bin/env bash
# t_audit_rotate.sh - audit segments (docs/operations.md "Audit: rotate,
# verify, archive"): rotation by size under load and on SIGUSR1 loses no
# line, `darvaza audit verify` checks the whole history (files or DIR) and
# names the file of a deleted, edited, swapped or cut segment; after a key
# rollover the archive JWKS lets old heads verify (unknown_kid without it);
# a bad audit.rotate value is a config error naming file:line.
. "$(dirname "$0")/lib.sh"

plan 32
stack_start AUDIT_ROTATE="size: 64KiB"
DIR="$STATE_DIR"
AUDIT="$DIR/audit.log"
DZ="$BUILD_DIR/darvaza"
GW_PID=$(cat "$STATE_DIR/pids/darvazad.pid" 2>/dev/null)
segments() { find "$DIR" -maxdepth 1 -name 'audit-*T*Z-*.log' | sort; }
nsegments() { segments | wc -l; }
all_lines() { cat $(segments) "$AUDIT"; }

A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
ok "a session for the load ($A)" test -n "$TOK"

# ---- rotation by size under load ----------------------------------------------------------------
# Each refused cross-person lookup is one audit line (deny 403): thousands of
# them over several connections fill many 64 KiB segments while lines are
# being written.
N=3000
OUT=$(h2load -n "$N" -c 4 -m 8 -H "$(bearer "$TOK")" "$GW_URL/api/registry/persons/AB12CD3" 2>&1)
N403=$(grep -oE '[0-9]+ 4xx' <<<"$OUT" | grep -oE '^[0-9]+')
is "$N403" "$N" "h2load: $N refused lookups, all answered 403"
ok "the live file was rotated by size several times ($(nsegments) closed segments)" test "$(nsegments)" -ge 5
is "$(find "$DIR" -maxdepth 1 -name 'audit-*.log' -size +80k | wc -l)" 0 "no closed segment is much over 64 KiB"
is "$(all_lines | jq -c 'select(.status == 403 and .decision == "deny")' | wc -l)" "$N" \
    "each refusal is on record exactly once across the segments (no line lost or doubled)"
FIRST=$(head -n 1 "$AUDIT")
LAST_SEG=$(segments | tail -n 1)
is "$(jq -r '[.type, .prev_file, .prev_seq == .seq - 1, .instance] | map(tostring) | join(" ")' <<<"$FIRST")" \
    "segment $(basename "$LAST_SEG") true darvaza-demo" \
    "the live file starts with a header naming the last closed segment, its seq and the instance"

# ---- SIGUSR1 ---------------------------------------------------------------------------------
before=$(nsegments)
kill -USR1 "$GW_PID"
wait_until 20 eval '[ "$(nsegments)" -gt "$before" ]'
ok "SIGUSR1: a new segment is closed ($before -> $(nsegments))" test "$(nsegments)" -gt "$before"
ok "the gateway logged the rotation" grep -q '"audit_rotated"' "$(gw_log)"

# ---- key rollover: a new key signs the heads, the old one leaves the JWKS ----------------------
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/jwks-before.json"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$STATE_DIR/keys/assertion-k3.pem" 2>/dev/null)
awk -v key="$STATE_DIR/keys/assertion-k3.pem" '
    /^signing:/ { insec = 1; print; next }
    insec && /^[^ #]/ { insec = 0 }
    insec && /^  active:/ { print "  active: k3"; next }
    insec && /^  keys:/ { print; print "    - kid: k3"; print "      key: " key; skip = 1; next }
    insec && skip && /^    / { next }
    insec && skip && /^  [a-z]/ { skip = 0 }
    { print }' "$STATE_DIR/darvaza.yaml" >"$WORK/rolled.yaml" && cp "$WORK/rolled.yaml" "$STATE_DIR/darvaza.yaml"
stack_reload
wait_until 20 eval 'gw GET /.well-known/jwks.json; [ "$(jb "[.keys[].kid] | join(\",\")")" = k3 ]'
is "$(jb '[.keys[].kid] | join(",")')" k3 "after SIGHUP only the new key k3 is published (k1, k2 retired)"
cp "$RESP_BODY_FILE" "$WORK/jwks-after.json"
for _ in 1 2 3; do gw GET /api/registry/persons/AB12CD3 -H "$(bearer "$TOK")"; done
before=$(nsegments)
kill -USR1 "$GW_PID"
wait_until 20 eval '[ "$(nsegments)" -gt "$before" ]'
is "$(jq -r '[.keys[].kid] | sort | join(",")' "$DIR/audit-keys.jwks" 2>/dev/null)" "k1,k2,k3" \
    "the key archive next to the log holds the retired keys and the new one"
stack_stop

# ---- verify the whole history ---------------------------------------------------------------------
OUT=$("$DZ" audit verify "$DIR" --jwks "$WORK/jwks-after.json" 2>&1)
rc=$?
is "$rc" 0 "darvaza audit verify DIR: the history verifies, old heads with the archive ($OUT)"
LASTSEQ=$(tail -n 1 "$AUDIT" | jq .seq)
like "$OUT" "ok: instance darvaza-demo: [0-9]+ segment\(s\), seq 1\.\.$LASTSEQ, $LASTSEQ lines, [1-9][0-9]* signed heads verified" \
    "one instance, seq 1..$LASTSEQ with as many lines: each line in exactly one segment"
mapfile -t FILES < <( (segments; echo "$AUDIT") | shuf)
OUT=$("$DZ" audit verify "${FILES[@]}" --jwks "$WORK/jwks-after.json" 2>&1)
is "$?" 0 "the same given as ${#FILES[@]} files in a shuffled order (ordered by seq, not name)"
OUT=$("$DZ" audit verify "$DIR" --jwks "$WORK/jwks-after.json" --no-archive 2>&1)
rc=$?
like "$rc|$OUT" '^1\|.*unknown_kid' "without the archive the heads of the retired key fail: unknown_kid"
like "$OUT" "audit-[0-9T]+Z-[0-9]+\.log:[0-9]+: unknown_kid" "and the verdict names the segment file and line"

# The copytruncate failure of old: the live file alone starts mid-history.
OUT=$("$DZ" audit verify "$AUDIT" 2>&1)
like "$?|$OUT" '^1\|.*(missing_segment|continues)' "the live file alone: it says the earlier segments are missing ($OUT)"
OUT=$("$DZ" audit verify --from-header "$AUDIT" 2>&1)
is "$?" 0 "with --from-header the live file verifies on its own"

# ---- tampering ----------------------------------------------------------------------------------
mapfile -t SEGS < <(segments)
MID=${SEGS[2]}
copy_history() { rm -rf "$WORK/$1" && mkdir -p "$WORK/$1" && cp "$DIR"/audit*.log "$DIR/audit-keys.jwks" "$WORK/$1/"; }

copy_history deleted
rm "$WORK/deleted/$(basename "$MID")"
OUT=$("$DZ" audit verify "$WORK/deleted" 2>&1)
like "$?|$OUT" "^1\|.*$(basename "${SEGS[3]}"):1: seq_gap" "a deleted middle segment: exit 1, the next file named, seq_gap ($OUT)"

copy_history edited
awk 'NR == 5 { sub(/"status":403/, "\"status\":200") } { print }' "$MID" >"$WORK/edited/$(basename "$MID")"
ok "the edit changed line 5 of $(basename "$MID") only" bash -c '[ "$(diff "$1" "$2" | head -n 1)" = 5c5 ]' _ "$MID" "$WORK/edited/$(basename "$MID")"
OUT=$("$DZ" audit verify "$WORK/edited" 2>&1)
like "$?|$OUT" "^1\|.*$(basename "$MID"):6: chain_broken" "an edited line: exit 1, named as $(basename "$MID"):6 ($OUT)"

copy_history swapped
cp "${SEGS[1]}" "$WORK/swapped/$(basename "${SEGS[3]}")"
cp "${SEGS[3]}" "$WORK/swapped/$(basename "${SEGS[1]}")"
OUT=$("$DZ" audit verify "$WORK/swapped" 2>&1)
like "$?|$OUT" "^1\|.*audit-[0-9T]+Z-[0-9]+\.log:1: segment_swapped" "two segments swapped: exit 1, the file named ($OUT)"

copy_history cut
head -n -1 "$MID" >"$WORK/cut/$(basename "$MID")"
OUT=$("$DZ" audit verify "$WORK/cut" 2>&1)
like "$?|$OUT" "^1\|.*$(basename "${SEGS[3]}"):1: seq_gap.*cut" "a segment cut at its end: exit 1 at the next segment's header ($OUT)"

OUT=$("$DZ" audit verify "$MID" 2>&1)
like "$?|$OUT" "^1\|.*$(basename "$MID"):1: missing_segment" "a middle segment alone: the earlier segments are missing"

# An insider who can write the directory but has no gateway key: line 5 of
# the middle segment changed, the chain rebuilt after it, every later head
# signed with a key of their own, and that key added to the archive next to
# the log.  The operator's keys (--jwks) must still be what the history ends
# under.
copy_history forged
cp "$DIR/audit-keys.jwks" "$WORK/archive-kept.jwks"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/insider.pem" 2>/dev/null)
/usr/bin/python3 "$ROOT/tests/integration/audit_forge.py" "$WORK/forged" "$(sed -n 5p "$MID" | jq .seq)" \
    "$WORK/insider.pem" insider
OUT=$("$DZ" audit verify "$WORK/forged" --jwks "$WORK/jwks-after.json" 2>&1)
like "$?|$(one_line "$OUT")" '^1\|.*audit\.log:[0-9]+: untrusted_key: .*"insider"' \
    "a rewritten history signed by a key added to the archive next to the log: exit 1, untrusted_key ($OUT)"
OUT=$("$DZ" audit verify "$WORK/forged" --jwks "$WORK/jwks-after.json" --archive "$WORK/archive-kept.jwks" 2>&1)
like "$?|$(one_line "$OUT")" '^1\|.*: unknown_kid: .*"insider"' "against the archive copy kept elsewhere: unknown_kid"
OUT=$("$DZ" audit verify "$DIR" --jwks "$WORK/jwks-before.json" --archive "$WORK/archive-kept.jwks" 2>&1)
is "$?" 0 "the untouched history with that copy given as --archive verifies ($OUT)"

# ---- a second instance: two histories in one archive --------------------------------------------
# The same config under another gateway.id and audit file (the stack is
# stopped, so its ports are free): a few refused logins, a SIGUSR1, more.
mkdir -p "$WORK/gw2"
sed -e 's/^\(  id: \)[^ ]*/\1gw-two/' -e "s#^\(  file: \).*audit\.log.*#\1$WORK/gw2/audit.log#" \
    "$STATE_DIR/darvaza.yaml" >"$WORK/gw2.yaml"
"$BUILD_DIR/darvazad" -c "$WORK/gw2.yaml" >"$WORK/gw2.log" 2>&1 &
GW2=$!
OWN_PIDS+=("$GW2")
wait_until 30 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/readyz")" = 200 ]'
bad_login() { gw_json POST /auth/password "$(jq -nc --arg f "$A" --arg p "wrong-$1" '{fin:$f,password:$p}')"; }
bad_login 1; bad_login 2
kill -USR1 "$GW2"
wait_until 20 eval '[ "$(find "$WORK/gw2" -name "audit-*.log" | wc -l)" -ge 1 ]'
bad_login 3
kill -TERM "$GW2"
wait "$GW2"
OWN_PIDS=()
mkdir -p "$WORK/multi"
cp "$DIR"/audit*.log "$WORK/gw2"/audit-*.log "$DIR/audit-keys.jwks" "$WORK/multi/"
cp "$WORK/gw2/audit.log" "$WORK/multi/audit-gw2-live.log"
OUT=$("$DZ" audit verify "$WORK/multi" --jwks "$WORK/jwks-after.json" 2>&1)
rc=$?
like "$rc|$(grep -c '^ok: instance' <<<"$OUT")|$(one_line "$OUT")" "^0\|2\|.*instance darvaza-demo: .*instance gw-two: 2 segment\(s\), seq 1\.\." \
    "two gateways' segments in one directory: each instance's chain verified on its own ($OUT)"
# A line added after gw-two's last head: the chain holds, nothing signs it,
# and verify says so for that instance even with two histories.
L=$(tail -n 1 "$WORK/multi/audit-gw2-live.log")
printf '{"instance":"gw-two","prev":"%s","seq":%s,"time":"2026-12-07T00:00:00.000Z","type":"login"}\n' \
    "$(printf '%s' "$L" | sha256sum | cut -c1-64)" "$(($(jq .seq <<<"$L") + 1))" >>"$WORK/multi/audit-gw2-live.log"
OUT=$("$DZ" audit verify "$WORK/multi" --jwks "$WORK/jwks-after.json" 2>&1)
like "$?|$(one_line "$OUT")" '^0\|.*note: instance gw-two: the last 1 line\(s\) .*nothing signs them' \
    "an unsigned line at the end of one of two histories: named in a note for that instance ($OUT)"
rm "$WORK/multi/$(basename "$(find "$WORK/gw2" -name 'audit-*.log' | head -n 1)")"
OUT=$("$DZ" audit verify "$WORK/multi" 2>&1)
rc=$?
like "$rc|$(one_line "$OUT")" "^1\|.*ok: instance darvaza-demo.*audit-gw2-live\.log:1: missing_segment" \
    "gw-two's first segment deleted: exit 1 for gw-two, darvaza-demo still ok"

# ---- config errors -------------------------------------------------------------------------------
sed 's/^\(  rotate: \).*/\1{ size: 64XB }/' "$STATE_DIR/darvaza.yaml" >"$WORK/bad.yaml"
LINE=$(grep -n '^  rotate:' "$WORK/bad.yaml" | cut -d: -f1)
OUT=$("$BUILD_DIR/darvazad" --check -c "$WORK/bad.yaml" 2>&1)
like "$?|$OUT" "^[1-9][0-9]*\|.*bad\.yaml:$LINE: audit\.rotate\.size" "audit.rotate.size 64XB: a config error naming bad.yaml:$LINE ($OUT)"
sed 's/^\(  rotate: \).*/\1{ every: 1w }/' "$STATE_DIR/darvaza.yaml" >"$WORK/bad.yaml"
OUT=$("$BUILD_DIR/darvazad" --check -c "$WORK/bad.yaml" 2>&1)
like "$?|$OUT" "^[1-9][0-9]*\|.*bad\.yaml:$LINE: audit\.rotate\.every" "audit.rotate.every 1w: a config error naming bad.yaml:$LINE"

finish
