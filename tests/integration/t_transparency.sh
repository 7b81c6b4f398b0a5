#!/usr/bin/env bash
# t_transparency.sh - who accessed my data, with proofs (docs/transparency.md):
# a judge's lookup of a citizen with a purpose, and a refused lookup by
# another citizen, appear in the citizen's GET /api/my/access (newest first,
# paged), each with an inclusion proof that `darvaza audit check-proof` and
# tools/check_audit_proof.py (hashlib + openssl CLI) accept; a changed line
# or head fails both; `darvaza audit prove` rebuilds a proof from the log and
# refuses a log whose line was changed; a consistency proof joins two
# published heads, from the CLI and from the public endpoint
# GET /api/transparency/consistency (unknown sizes 404, bad ones 400, rate
# limited per address); and a kill -9 between the audit write and the index write
# (the index database locked) loses nothing: after the restart the index
# catches up from the audit log.
. "$(dirname "$0")/lib.sh"

plan 61
stack_start

C="$STATE_DIR/certs"
CARDS_JSON="$STATE_DIR/cards/cards.json"
export SOFTHSM2_CONF="$STATE_DIR/cards/softhsm2.conf"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
LOG="$STATE_DIR/audit.log"
DB=$(awk '/^accounts:/{a=1} a && /database:/{print $2; exit}' "$STATE_DIR/darvaza.yaml")
case "$DB" in /*) ;; *) DB="$ROOT/$DB" ;; esac
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"
J_LABEL=$(jq -r 'map(select(.kind == "judge"))[0].label // empty' "$CARDS_JSON")
J_FIN=$(jq -r 'map(select(.kind == "judge"))[0].fin // empty' "$CARDS_JSON")
J_NAME=$(jq -r 'map(select(.kind == "judge"))[0].name // empty' "$CARDS_JSON")
PARTY=$(pick_person registered 0)
OTHER=$(pick_person registered 1)
[ -n "$J_FIN" ] && [ -n "$PARTY" ] && [ -n "$OTHER" ] || bail "no judge card or registered people"
[ -f "$DB" ] || bail "no accounts database at $DB"
CASE="case 2-$RANDOM/2026"
diag "judge $J_FIN, party $PARTY, other $OTHER, case $CASE"

(umask 077 && jq -r --arg l "$J_LABEL" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$WORK/j.pin")
J_TOKEN=$(timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --token "$J_LABEL" \
    --pin-file "$WORK/j.pin" --cacert "$C/root.pem" --module "$MODULE" 2>>"$WORK/card.err" | tail -n 1)
isnt "$J_TOKEN" "" "the judge logs in with the card"
login_person "$PARTY"
P_TOKEN=$LOGIN_TOKEN
isnt "$P_TOKEN" "" "the citizen logs in with password and code"
login_person "$OTHER"
O_TOKEN=$LOGIN_TOKEN

# ---- the published head --------------------------------------------------------
head_ready() { gw GET /.well-known/audit-head && [ "$STATUS" = 200 ]; }
# The first ask finds no head when the stack only registered people so far:
# a 503 that asks the writer for one.
wait_until 10 head_ready
is "$STATUS $(jb .type) $(jb .kid)" "200 darvaza-audit-tree-head k2" \
    "GET /.well-known/audit-head: a signed tree head with the active kid"
cp "$RESP_BODY_FILE" "$WORK/head1.json"
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/jwks.json"
jwk_to_pem "$(jq -c '.keys[] | select(.kid == "k2")' "$WORK/jwks.json")" "$WORK/k2.pem"
ok "the head key is the gateway's published k2" test -s "$WORK/k2.pem"

# ---- the accesses ---------------------------------------------------------------
# Another site's page (a link, an <img>) makes the judge's browser reach for
# the citizen's record: the browser sends the cookie (SameSite=Lax lets a
# link through, a same-site page an <img> too) but no purpose, and says where
# it comes from.  That is not the judge's lookup: refused, and not listed
# under the judge's name.
J_COOKIE="Cookie: __Host-darvaza=$J_TOKEN"
gw GET "/api/registry/persons/$PARTY" -H "$J_COOKIE" -H "Sec-Fetch-Site: cross-site"
problem 403 bad_origin "a lookup sent by the judge's browser from another site is refused"
gw GET "/api/registry/persons/$PARTY" -H "$J_COOKIE" -H "Sec-Fetch-Site: same-site"
problem 403 bad_origin "... from a sibling site (same-site) too"
gw GET "/api/registry/persons/$PARTY" -H "$J_COOKIE" -H "Sec-Fetch-Site: same-origin" \
    -H "Darvaza-Purpose: $CASE-web"
is "$STATUS" 200 "the portal's own page (same-origin) looks the citizen up with the judge's cookie"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J_TOKEN")" -H "Darvaza-Purpose: $CASE"
is "$STATUS" 200 "the judge looks the citizen up with a purpose"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$O_TOKEN")" -H "Darvaza-Purpose: curiosity"
problem 403 insufficient_assurance "another citizen's lookup is refused (and audited)"

access_ready() { # the four entries listed with their proofs
    gw GET /api/my/access -H "$(bearer "$P_TOKEN")"
    [ "$STATUS" = 200 ] && [ "$(jb '[.entries[] | select(.proof_status == "ok")] | length')" -ge 4 ]
}
ok "GET /api/my/access lists them, with proofs, within 15 s" wait_until 15 access_ready
gw GET /api/my/access -H "$(bearer "$P_TOKEN")"
cp "$RESP_BODY_FILE" "$WORK/access.json"
E_JUDGE=$(jq -c --arg j "$J_FIN" '[.entries[] | select(.actor.fin == $j)][0]' "$WORK/access.json")
E_DENY=$(jq -c --arg o "$OTHER" '[.entries[] | select(.actor.fin == $o)][0]' "$WORK/access.json")
is "$(jq -r '[.actor.role, .actor.means, .purpose, .decision, .service] | join("|")' <<<"$E_JUDGE")" \
    "judge|card|$CASE|allow|registry" "the judge's entry: role, means, purpose, decision, service"
is "$(jq -r '.actor.name' <<<"$E_JUDGE")" "$J_NAME" \
    "the judge's entry names the judge (the card certificate's name, kept in the session)"
is "$(jq -r '.actor.name' <<<"$E_DENY")" null \
    "a password sign-in gives no name: the refused lookup's actor.name is null"
like "$(jq -r '.fields | join(",")' <<<"$E_JUDGE")" '(^|,)address(,|$)' \
    "the judge's entry lists the released fields (address among them)"
is "$(jq -r '[.decision, .reason, .purpose] | join("|")' <<<"$E_DENY")" "deny|insufficient_assurance|curiosity" \
    "the refused lookup is listed as refused, with its reason and purpose"
is "$(jq -r '.entries[0].actor.fin' "$WORK/access.json")" "$OTHER" "newest first: the refusal comes first"
is "$(jq '[.entries[] | select(.actor.fin == "'"$PARTY"'")] | length' "$WORK/access.json")" 0 \
    "the citizen's own reads are not in the list"
is "$(jq -c --arg j "$J_FIN" '[.entries[] | select(.actor.fin == $j) | .decision + " " + .purpose]' "$WORK/access.json")" \
    "[\"allow $CASE\",\"allow $CASE-web\"]" \
    "the judge's name is on the judge's two lookups only, not on those another site's page made"

gw GET "/api/my/access?limit=1" -H "$(bearer "$P_TOKEN")"
NEXT=$(jb .next_before)
is "$STATUS $(jb '.entries | length') $(jb '.entries[0].actor.fin')" "200 1 $OTHER" "?limit=1: one entry and a cursor"
gw GET "/api/my/access?limit=1&before=$NEXT" -H "$(bearer "$P_TOKEN")"
is "$STATUS $(jb '.entries[0].actor.fin')" "200 $J_FIN" "?before= the cursor: the next page"
gw GET "/api/my/access?limit=0" -H "$(bearer "$P_TOKEN")"
problem 400 invalid_request "?limit=0 is refused"
gw GET "/api/my/access?before=x1" -H "$(bearer "$P_TOKEN")"
problem 400 invalid_request "?before= that is not a number is refused"
gw GET /api/my/access
problem 401 unauthenticated "no session: 401"
gw GET /api/my/access -H "$(bearer "$J_TOKEN")"
is "$STATUS $(jb --arg p "$PARTY" '[.entries[] | select(.actor.fin == "'"$J_FIN"'")] | length')" "200 0" \
    "the judge's own list does not show the judge's lookups of others"

# Each page is up to 100 inclusion proofs on the blocking pool that logins
# share: a person asking without end is refused, per FIN (another person's
# list is still answered).
n=0
while [ $n -lt 250 ]; do
    gw GET "/api/my/access?limit=100" -H "$(bearer "$O_TOKEN")"
    [ "$STATUS" = 200 ] || break
    n=$((n + 1))
done
problem 429 rate_limited "a person asking for their access list without end is refused (after $n lists)"
ok "... after 120 lists in a minute (at most two minutes' worth: $n)" test "$n" -ge 120 -a "$n" -le 240
is "$(hdr retry-after)" 60 "... with Retry-After: 60"
gw GET /api/my/access -H "$(bearer "$P_TOKEN")"
is "$STATUS" 200 "... while another person's list is still answered"

# ---- the proofs ----------------------------------------------------------------
jq '.proof' <<<"$E_JUDGE" >"$WORK/proof.json"
SEQ=$(jq -r .seq "$WORK/proof.json")
like "$("$BUILD_DIR/darvaza" audit check-proof "$WORK/proof.json" --jwks "$WORK/jwks.json")" \
    "^valid: line seq $SEQ is in the audit history" "darvaza audit check-proof: the judge's entry is proven"
is "$(python3 "$ROOT/tools/check_audit_proof.py" "$WORK/proof.json" "$WORK/k2.pem")" valid \
    "tools/check_audit_proof.py (hashlib + openssl) accepts the same proof"
is "$(jq -r .line "$WORK/proof.json" | jq -r '[.tgt, .pur, .fin, .name] | join("|")')" "$PARTY|$CASE|$J_FIN|$J_NAME" \
    "the proven line is the judge's lookup of the citizen for the case, the judge's name in it"
is "$(sqlite3 "file:$DB?mode=ro" "SELECT actor_name FROM access_index WHERE line LIKE '%$CASE\"%'")" "$J_NAME" \
    "the index row holds the judge's name"
# The line as it would read had someone changed the purpose afterwards.
jq --arg c "$CASE" '.line |= sub($c; "case 9-999/2026")' "$WORK/proof.json" >"$WORK/tampered.json"
"$BUILD_DIR/darvaza" audit check-proof "$WORK/tampered.json" --jwks "$WORK/jwks.json" >"$WORK/t.out"
is "$? $(cat "$WORK/t.out")" "1 invalid: bad_path" "check-proof: a changed line does not lead to the signed root"
python3 "$ROOT/tools/check_audit_proof.py" "$WORK/tampered.json" "$WORK/k2.pem" >/dev/null
is "$?" 1 "check_audit_proof.py: the changed line fails too"
jq '.head.tree_size += 1' "$WORK/proof.json" >"$WORK/tampered2.json"
"$BUILD_DIR/darvaza" audit check-proof "$WORK/tampered2.json" --jwks "$WORK/jwks.json" >/dev/null
a=$?
python3 "$ROOT/tools/check_audit_proof.py" "$WORK/tampered2.json" "$WORK/k2.pem" >/dev/null
is "$a $?" "1 1" "a head whose size was changed fails both checkers"
"$BUILD_DIR/darvaza" audit check-proof "$WORK/proof.json" >/dev/null 2>&1
is "$?" 2 "check-proof without a key is a usage error, not a pass"

# darvaza audit prove: the same line, proven from the log files.
"$BUILD_DIR/darvaza" audit prove "$SEQ" "$LOG" >"$WORK/prove.json" 2>"$WORK/prove.err"
is "$? $("$BUILD_DIR/darvaza" audit check-proof "$WORK/prove.json" --jwks "$WORK/jwks.json" | cut -c1-6)" "0 valid:" \
    "darvaza audit prove SEQ LOG: a proof from the log that checks"
# A copy of the log with the judge's line changed no longer matches its heads.
mkdir -p "$WORK/copy"
cp -r "$LOG" "$LOG.tree" "$WORK/copy/"
sed -i "s|$CASE|case 9-999/2026|" "$WORK/copy/audit.log"
"$BUILD_DIR/darvaza" audit prove "$SEQ" "$WORK/copy/audit.log" >/dev/null 2>"$WORK/copy.err"
a=$?
like "$a $(cat "$WORK/copy.err")" "^1 .*does not match the signed head" \
    "darvaza audit prove refuses a log whose audited line was changed"

# A name changed in the index (not in the line) is not shown as proven.
sqlite3 "$DB" "UPDATE access_index SET actor_name = 'Someone Else' WHERE line LIKE '%$CASE\"%'"
gw GET /api/my/access -H "$(bearer "$P_TOKEN")"
is "$(jb --arg c "$CASE" '[.entries[] | select(.purpose == $c)][0] | [.proof_status, .actor.name] | join("|")')" \
    "mismatch|$J_NAME" "an index row whose name was changed shows as mismatch (the name shown is the line's)"
sqlite3 "$DB" "UPDATE access_index SET actor_name = NULL WHERE line LIKE '%$CASE\"%'"
# A row moved to another person in the database (its tgt column changed, not
# its line) is not shown to that person: the line names whose record it was.
sqlite3 "$DB" "UPDATE access_index SET tgt = '$J_FIN' WHERE line LIKE '%$CASE\"%'"
gw GET "/api/my/access?limit=100" -H "$(bearer "$J_TOKEN")"
is "$STATUS $(jb --arg c "$CASE" '[.entries[] | select(.purpose == $c)] | length')" "200 0" \
    "an index row moved to another person in the database is not listed to them"
ok "... and is logged as an error" grep -q 'is not about the person it is listed for' "$(gw_log)"
sqlite3 "$DB" "UPDATE access_index SET tgt = '$PARTY' WHERE line LIKE '%$CASE\"%'"

# ---- consistency between two heads ------------------------------------------------
head2_ready() {
    gw GET /.well-known/audit-head
    [ "$STATUS" = 200 ] && [ "$(jb .tree_size)" -gt "$(jq .tree_size "$WORK/head1.json")" ]
}
ok "a later head is published (signed when the proofs were asked for)" wait_until 15 head2_ready
cp "$RESP_BODY_FILE" "$WORK/head2.json"
"$BUILD_DIR/darvaza" audit consistency "$WORK/head1.json" "$WORK/head2.json" "$LOG" --jwks "$WORK/jwks.json" \
    >"$WORK/cons.json" 2>"$WORK/cons.err"
is "$? $(jq -r .type "$WORK/cons.json" 2>/dev/null)" "0 darvaza-audit-consistency" \
    "darvaza audit consistency OLD NEW: the later head extends the earlier one"
is "$(python3 "$ROOT/tools/check_audit_proof.py" "$WORK/cons.json" "$WORK/k2.pem") $("$BUILD_DIR/darvaza" audit check-proof "$WORK/cons.json" --jwks "$WORK/jwks.json" | cut -c1-6)" \
    "valid valid:" "the consistency proof checks with the Python script and check-proof"
jq '.old.root = .new.root' "$WORK/cons.json" >"$WORK/cons-bad.json"
python3 "$ROOT/tools/check_audit_proof.py" "$WORK/cons-bad.json" "$WORK/k2.pem" >/dev/null
a=$?
"$BUILD_DIR/darvaza" audit check-proof "$WORK/cons-bad.json" --jwks "$WORK/jwks.json" >/dev/null
is "$a $?" "1 1" "a forged old head (another root) fails both checkers"
"$BUILD_DIR/darvaza" audit consistency "$WORK/head1.json" "$WORK/head2.json" "$WORK/copy/audit.log" \
    >/dev/null 2>&1
is "$?" 1 "consistency refuses a log changed after the heads were published"

# ---- the same proof for anyone: GET /api/transparency/consistency ---------------------
# A citizen who kept head1 (e.g. inside a downloaded inclusion proof) asks
# the gateway, without a session, for the proof that head2 extends it.
S1=$(jq .tree_size "$WORK/head1.json")
S2=$(jq .tree_size "$WORK/head2.json")
gw GET "/api/transparency/consistency?first=$S1&second=$S2"
cp "$RESP_BODY_FILE" "$WORK/cons-api.json"
is "$STATUS $(jb .type) $(jb -c '[.old.root, .new.root] == [$a, $b]' --arg a "$(jq -r .root "$WORK/head1.json")" --arg b "$(jq -r .root "$WORK/head2.json")")" \
    "200 darvaza-audit-consistency true" \
    "GET /api/transparency/consistency?first=$S1&second=$S2: the proof between the two published heads, no session"
is "$(python3 "$ROOT/tools/check_audit_proof.py" "$WORK/cons-api.json" "$WORK/k2.pem") $("$BUILD_DIR/darvaza" audit check-proof "$WORK/cons-api.json" --jwks "$WORK/jwks.json" | cut -c1-6) $(jq -c .path "$WORK/cons-api.json" | cmp -s - <(jq -c .path "$WORK/cons.json") && echo same)" \
    "valid valid: same" "... checked by the Python script and check-proof, the path the operator's CLI proves from the log"
# A size with no published head (inside the tree, and beyond it) is not
# proven against a root the gateway never signed.
UNSIGNED=$(jq -s --argjson n "$S2" '[range(1; $n + 1)] - map(.tree_size) | first // empty' "$LOG.tree/heads.jsonl")
gw GET "/api/transparency/consistency?first=$UNSIGNED&second=$S2"
problem 404 not_found "first=$UNSIGNED (no head of that size was published): 404 not_found"
gw GET "/api/transparency/consistency?first=$S1&second=$((S2 + 1000000))"
problem 404 not_found "second beyond the tree: 404 not_found"
bad_q=0
for q in "first=$S2&second=$S1" "first=0&second=$S2" "first=$S1" "first=1x&second=$S2" "first=$S1&first=$S1&second=$S2" \
    "first=$S1&second=$S2&x=1" "first=-1&second=$S2" "first=%31&second=$S2" "first=1234567890123456789&second=$S2"; do
    gw GET "/api/transparency/consistency?$q"
    [ "$STATUS $(jb .code)" = "400 invalid_request" ] || { bad_q=1; diag "?$q: $STATUS $(jb .code)"; }
done
is "$bad_q" 0 "sizes out of order, zero, missing, not digits, twice, unknown parameters, too long: 400 invalid_request"
# Counted per client address, 60 a minute (a second window at most in between).
limited() {
    local i
    for i in $(seq 1 130); do
        gw GET "/api/transparency/consistency?first=$S1&second=$S2"
        [ "$STATUS" = 429 ] && return 0
    done
    return 1
}
limited
problem 429 rate_limited "over 60 proofs a minute from one address: 429 rate_limited"
is "$(hdr retry-after)" 60 "... with Retry-After: 60"

# ---- a crash between the audit write and the index write ------------------------
# A writer holds the accounts database's write lock: the index cannot commit.
python3 - "$DB" "$WORK/lock.held" "$WORK/lock.release" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
db.execute("ROLLBACK")
PY
LOCK_PID=$!
OWN_PIDS+=("$LOCK_PID")
wait_until 10 test -f "$WORK/lock.held"
CASE2="case 3-$RANDOM/2026"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J_TOKEN")" -H "Darvaza-Purpose: $CASE2"
is "$STATUS" 200 "with the index locked, the judge's lookup is still answered (its audit line is durable)"
ok "the lookup is in the audit log" grep -q "$CASE2" "$LOG"
in_list() {
    gw GET "/api/my/access?limit=100" -H "$(bearer "$P_TOKEN")"
    [ "$STATUS" = 200 ] && [ "$(jb --arg c "$1" '[.entries[] | select(.purpose == $c)] | length')" -ge 1 ]
}
GW_PID=$(cat "$STATE_DIR/pids/darvazad.pid")
kill -9 "$GW_PID"
wait_until 10 sh -c "! kill -0 $GW_PID"
ok "the gateway was killed (-9) before the index could write the lookup" \
    test "$(sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM access_index WHERE line LIKE '%$CASE2%'")" = 0
touch "$WORK/lock.release"
wait "$LOCK_PID" 2>/dev/null
# The database as a gateway before names were indexed left it: no column.
sqlite3 "$DB" "ALTER TABLE access_index DROP COLUMN actor_name"
setsid sh -c 'echo $$ >"$0"; exec "$@"' "$STATE_DIR/pids/darvazad.pid" "$BUILD_DIR/darvazad" \
    -c "$STATE_DIR/darvaza.yaml" >>"$STATE_DIR/logs/darvazad.log" 2>&1 </dev/null &
ok "the gateway restarts on the same audit log and database" wait_until 30 sh -c \
    "curl -sf --max-time 2 --cacert '$C/root.pem' '$GW_URL/readyz' >/dev/null"
login_person "$PARTY"
P_TOKEN=$LOGIN_TOKEN
ok "after the restart the index caught up from the audit log: the lookup is listed" wait_until 15 in_list "$CASE2"
is "$(sqlite3 "file:$DB?mode=ro" "SELECT actor_name FROM access_index WHERE line LIKE '%$CASE\"%' OR line LIKE '%$CASE2%' ORDER BY seq")" \
    "$J_NAME
$J_NAME" "the restart added the name column back, filled from the rows' own lines"
gw GET "/api/my/access?limit=100" -H "$(bearer "$P_TOKEN")"
is "$(jb --arg c "$CASE" '[.entries[] | select(.purpose == $c)][0] | [.proof_status, .actor.name] | join("|")')" \
    "ok|$J_NAME" "after the migration the judge's entry is proven again, with the name"
finish
