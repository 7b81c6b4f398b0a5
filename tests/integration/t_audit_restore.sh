#!/usr/bin/env bash
# t_audit_restore.sh - the audit log's Merkle tree fails closed at start
# (docs/transparency.md "Derived, never trusted over the log",
# docs/operations.md "Restoring the audit log"): a log cut back to an older
# copy, or changed by an insider (audit_forge.py: a line changed, the chain
# rebuilt, the heads signed again with a key of their own), stops the gateway
# with a message naming the log, the seq and what differs, and nothing is
# moved, written or signed; after `darvaza audit accept-restore` the gateway
# starts, keeps the old tree aside, and the restore is a line of the log that
# the next signed head covers (proven with darvaza audit prove/check-proof).
. "$(dirname "$0")/lib.sh"

plan 36
stack_start
LOG="$STATE_DIR/audit.log"
DZ="$BUILD_DIR/darvaza"
C="$STATE_DIR/certs"

A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
deny() { gw GET /api/registry/persons/AB12CD3 -H "$(bearer "$TOK")"; }
deny
is "$STATUS" 403 "a refused cross-person lookup (a deny line, status 403)"
is "$(find "$STATE_DIR" -maxdepth 1 -name 'audit-*T*Z-*.log' | wc -l)" 0 "one live file, no rotation"
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/jwks.json"

OUT=$("$DZ" audit accept-restore "$LOG" --reason "test" 2>&1)
like "$?|$(one_line "$OUT")" "^1\|.*a gateway is writing this log; stop it first" \
    "accept-restore while the gateway writes the log: refused"

stop_gw() {
    local p
    p=$(cat "$STATE_DIR/pids/darvazad.pid")
    kill -TERM "$p"
    wait_until 60 sh -c "! kill -0 $p"
}
start_gw() {
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$STATE_DIR/pids/darvazad.pid" "$BUILD_DIR/darvazad" \
        -c "$STATE_DIR/darvaza.yaml" >>"$(gw_log)" 2>&1 </dev/null &
    wait_until 60 sh -c "curl -sf --max-time 2 --cacert '$C/root.pem' '$GW_URL/readyz' >/dev/null"
}
# A start that must be refused: it runs in the foreground (a gateway that
# starts anyway is stopped by the timeout, rc 124).  Under ASan leaks are
# not counted for it: every start failure returns from main with what the
# process opened so far still held (the process ends there); any other
# sanitizer error still is.
refused_start() {
    OUT=$(ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" \
        timeout 60 "$BUILD_DIR/darvazad" -c "$STATE_DIR/darvaza.yaml" 2>&1 </dev/null)
    RC=$?
}
last_seq() { tail -n 1 "$1" | jq .seq; }
state_sum() { cat "$LOG" "$LOG.tree/heads.jsonl" "$LOG.tree/L00" | sha256sum; }
aside() { find "$STATE_DIR" -maxdepth 1 -name 'audit.log.tree.bad-*' | wc -l; }

# ---- a backup, then more history ----------------------------------------------------------------
ok "the gateway stops" stop_gw
mkdir -p "$WORK/backup"
cp "$LOG" "$WORK/backup/audit.log"
N1=$(last_seq "$LOG")
ok "the gateway starts again" start_gw
login_person "$A"
TOK=$LOGIN_TOKEN
deny
deny
ok "the gateway stops after more lines" stop_gw
N2=$(last_seq "$LOG")
ok "the history grew past the backup ($N1 -> $N2), the tree with it" \
    test "$N2" -gt "$N1" -a "$(($(stat -c %s "$LOG.tree/L00") / 32))" = "$N2"
cp "$LOG" "$WORK/current.log"
DB=$(awk '/^accounts:/{a=1} a && /database:/{print $2; exit}' "$STATE_DIR/darvaza.yaml")
case "$DB" in /*) ;; *) DB="$ROOT/$DB" ;; esac
ok "the access index holds the later refusals (seq > $N1)" \
    test "$(sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM access_index WHERE seq > $N1")" -ge 1

# ---- the log cut back to the backup: refused ----------------------------------------------------
cp "$WORK/backup/audit.log" "$LOG"
BEFORE=$(state_sum)
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*darvazad: ${LOG//./\\.}: the audit log disagrees with its Merkle tree at seq $((N1 + 1)): the log ends at seq $N1 but the tree has $N2 leaves: lines $((N1 + 1))\.\.$N2 were cut.*Not started, nothing signed" \
    "a log cut back to an older copy: the gateway does not start (exit 1), the log, seq $((N1 + 1)) and what differs named"
is "$(state_sum) $(aside)" "$BEFORE 0" "... nothing written to the log or the tree, no head signed, nothing moved aside"
ok "... logged as audit_tree_mismatch" grep -q '"event":"audit_tree_mismatch"' <<<"$OUT"

# ---- an insider's forged history: refused, not signed again --------------------------------------
mkdir -p "$WORK/forged"
cp "$WORK/current.log" "$WORK/forged/audit.log"
cp "$STATE_DIR/audit-keys.jwks" "$WORK/forged/"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/insider.pem" 2>/dev/null)
DENY_SEQ=$(jq -c 'select(.status == 403)' "$WORK/current.log" | head -n 1 | jq .seq)
/usr/bin/python3 "$ROOT/tests/integration/audit_forge.py" "$WORK/forged" "$DENY_SEQ" "$WORK/insider.pem" insider
ok "audit_forge.py changed line $DENY_SEQ and rebuilt the chain after it" \
    test "$(sed -n "${DENY_SEQ}p" "$WORK/forged/audit.log" | jq .status)" = 200 -a \
    "$(last_seq "$WORK/forged/audit.log")" = "$N2"
cp "$WORK/forged/audit.log" "$LOG"
BEFORE=$(state_sum)
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*${LOG//./\\.}: the audit log disagrees with its Merkle tree at seq $DENY_SEQ: line $DENY_SEQ is not the line the tree holds .*the log was changed" \
    "the forged history: the gateway does not start, the first changed line ($DENY_SEQ) named"
is "$(state_sum) $(aside)" "$BEFORE 0" "... and signs nothing over it"

# A line changed at the end (no chain to rebuild after it): refused too.
cp "$WORK/current.log" "$LOG"
sed -i '$ s/"type":"/"type":"x/' "$LOG"
refused_start
like "$RC|$(one_line "$OUT")" "^1\|.*at seq $N2: line $N2 is not the line the tree holds" \
    "the last line changed: refused at seq $N2"
OUT=$("$DZ" audit accept-restore "$LOG" 2>&1)
is "$?" 2 "accept-restore without --reason: usage"

# ---- the forged history with its tree removed: the log's own signed heads refuse it --------------
# Without its tree (and heads.jsonl) nothing beside the log remembers the
# old roots: the heads in the log, signed over the chain, must.
DENY_SEQ_HEAD=$(jq -c "select(.type == \"head\" and .seq > $DENY_SEQ)" "$WORK/forged/audit.log" | head -n 1 | jq .seq)
cp "$WORK/forged/audit.log" "$LOG"
mv "$LOG.tree" "$WORK/tree-kept"
cp "$STATE_DIR/audit-keys.jwks" "$WORK/archive-kept.jwks"
cp "$WORK/forged/audit-keys.jwks" "$STATE_DIR/audit-keys.jwks"
LOGSUM=$(sha256sum <"$LOG")
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*darvazad: ${LOG//./\\.}: the audit tree is to take lines 1\\.\\.$N2 from the log \\(it does not hold them[^)]*\\), but ${LOG//./\\.}:[0-9]+: untrusted_key: its last signed head \(seq $N2\) is signed by kid \"insider\".*Not started, nothing signed" \
    "forged, re-signed with a key added to the archive, tree deleted: the gateway does not start (exit 1), the untrusted last head named"
is "$(sha256sum <"$LOG") $(find "$STATE_DIR" -maxdepth 1 -name 'audit.log.tree*' | wc -l)" "$LOGSUM 0" \
    "... nothing written to the log, no tree built"
cp "$WORK/archive-kept.jwks" "$STATE_DIR/audit-keys.jwks"
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*from the log \\(it does not hold them[^)]*\\), but ${LOG//./\\.}:$DENY_SEQ_HEAD: unknown_kid: no public key for kid \"insider\"" \
    "... with the archive as the gateway wrote it: unknown_kid at the first re-signed head"
# Heads that name the gateway's own kid but were not signed by it: refused.
KID=$(jq -r 'select(.type == "head") | .kid' "$WORK/current.log" | head -n 1)
sed "s/\"kid\":\"insider\"/\"kid\":\"$KID\"/" "$WORK/forged/audit.log" >"$LOG"
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*from the log \\(it does not hold them[^)]*\\), but ${LOG//./\\.}:$DENY_SEQ_HEAD: bad_head_signature: head signature does not verify with kid \"$KID\"" \
    "... heads under the gateway's own kid: the first head after the change does not verify"
# The tree cut to its first leaf and its heads.jsonl removed: lines 2..N
# come from the log, and only its heads vouch for them.
cp "$WORK/forged/audit.log" "$LOG"
cp -r "$WORK/tree-kept" "$LOG.tree"
truncate -s 32 "$LOG.tree/L00"
rm "$LOG.tree/heads.jsonl"
refused_start
like "$RC|$(one_line "$OUT")" \
    "^1\|.*the audit tree is to take lines 2\.\.$N2 from the log .*, but ${LOG//./\\.}:$DENY_SEQ_HEAD: unknown_kid: no public key for kid \"insider\"" \
    "... the tree cut to one leaf, heads.jsonl removed: refused the same way"
rm -rf "$LOG.tree"
cp "$WORK/current.log" "$LOG"
ok "the genuine history with its tree deleted: the gateway starts" start_gw
ok "... the tree rebuilt from the log (at least $N2 leaves)" \
    test "$(($(stat -c %s "$LOG.tree/L00") / 32))" -ge "$N2"
ok "the gateway stops" stop_gw
rm -rf "$LOG.tree"
mv "$WORK/tree-kept" "$LOG.tree"
cp "$WORK/current.log" "$LOG"

# ---- the restore acknowledged -------------------------------------------------------------------
cp "$WORK/backup/audit.log" "$LOG"
REASON="restored from the 2026-12-06 backup, ticket OPS-17"
OUT=$("$DZ" audit accept-restore "$LOG" --reason "$REASON" 2>&1)
like "$?|$(one_line "$OUT")" "^0\|accepted: .*the tree of $N2 leaves .*differed at seq $((N1 + 1))" \
    "darvaza audit accept-restore LOG --reason: accepted, naming the old tree"
OLD_ROOT=$(tail -n 1 "$LOG.tree/heads.jsonl" | jq -r .root)
OLD_SIZE=$(tail -n 1 "$LOG.tree/heads.jsonl" | jq -r .tree_size)
ok "after the acknowledgement the gateway starts" start_gw
RLINE=$(grep '"type":"audit_restore"' "$LOG")
RSEQ=$(jq .seq <<<"$RLINE")
is "$(jq -r '[.seq, .old_tree_size, .old_root, .old_head_size, .old_head_root, .reason] | map(tostring) | join(" ")' <<<"$RLINE")" \
    "$((N1 + 1)) $N2 $OLD_ROOT $OLD_SIZE $OLD_ROOT $REASON" \
    "the restore is the log's next line: the old tree's size and root, its last signed head, the reason"
KEPT=$(find "$STATE_DIR" -maxdepth 1 -name 'audit.log.tree.bad-*')
is "$(jq -r .kept_at <<<"$RLINE") $(tail -n 1 "$KEPT/heads.jsonl" | jq -r .root) $(jq -r .reason "$KEPT/accept-restore.json")" \
    "$(basename "$KEPT") $OLD_ROOT $REASON" "the old tree is kept aside, with its heads and the acknowledgement"
covered() {
    gw GET /.well-known/audit-head
    [ "$STATUS" = 200 ] && [ "$(jb .tree_size)" -ge "$RSEQ" ]
}
ok "a signed head covers the restore line" wait_until 15 covered
# The index mirrors the log again: no row of a cut line is left, and a
# refusal written at a seq a cut line had is indexed with its own line.
rows_match_log() {
    local seq line
    while IFS='|' read -r seq line; do
        [ "$line" = "$(sed -n "${seq}p" "$LOG")" ] || return 1
    done < <(sqlite3 "file:$DB?mode=ro" "SELECT seq, line FROM access_index WHERE seq > $N1")
}
login_person "$A"
TOK=$LOGIN_TOKEN
deny
NS=$(jq -c 'select(.status == 403)' "$LOG" | tail -n 1 | jq .seq)
indexed() { [ "$(sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM access_index WHERE seq = $NS")" = 1 ] && rows_match_log; }
ok "the index was rewound with the log: the refusal at seq $NS is indexed, every row above $N1 is its log line" \
    wait_until 20 indexed
"$DZ" audit prove "$RSEQ" "$LOG" >"$WORK/restore-proof.json" 2>"$WORK/prove.err"
is "$? $("$DZ" audit check-proof "$WORK/restore-proof.json" --jwks "$WORK/jwks.json" | cut -c1-6) $(jq -r .line "$WORK/restore-proof.json" | jq -r .type)" \
    "0 valid: audit_restore" "the inclusion proof of the restore line checks against the signed head"
OUT=$("$DZ" audit verify "$LOG" --jwks "$WORK/jwks.json" 2>&1)
is "$?" 0 "the restored history, with the restore line and what followed, verifies ($(one_line "$OUT"))"

ok "a later restart" eval 'stop_gw && start_gw'
is "$(grep -c '"type":"audit_restore"' "$LOG") $(aside)" "1 1" "... records the restore once, moves nothing again"
OUT=$("$DZ" audit accept-restore "$LOG" --reason again 2>&1)
like "$?|$(one_line "$OUT")" "^1\|.*a gateway is writing this log" "the log is in use again"
finish
