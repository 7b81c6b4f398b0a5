#!/usr/bin/env bash
# t_accounts_pg.sh - accounts on PostgreSQL (docs/operations.md "Accounts on
# PostgreSQL"): a real server (pg.sh), the stack with accounts.backend
# postgresql, a second gateway on other ports sharing the database: logins,
# TOTP replay refused across instances, the seed sealed at rest, `darvaza
# accounts migrate`, PostgreSQL down -> 503 state_unavailable, back -> logins
# resume without a restart.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/pg.sh"

plan 49

PG_PW="pg-$$-$RANDOM-secret"
CONNINFO="$WORK/pg.conninfo"
B_PORT=8453
B_URL="https://localhost:$B_PORT"

pg_start
pass "PostgreSQL started on 127.0.0.1:$PG_PORT as $PG_OSUSER"
pg_create_db darvaza darvaza "$PG_PW" || bail "cannot create the database"
pg_create_db darvaza_empty darvaza_empty "$PG_PW" || bail "cannot create the second database"
(umask 077 && echo "host=127.0.0.1 port=$PG_PORT dbname=darvaza user=darvaza password=$PG_PW" >"$CONNINFO")

stack_start ACCOUNTS_PG="conninfo_file: $CONNINFO, pool: 3, connect_timeout: 2s, statement_timeout: 2s"
CFG="$STATE_DIR/darvaza.yaml"
is "$(pg_sql darvaza "SELECT version FROM darvaza_schema")" 1 "the gateway created the schema (version 1) in the empty database"
N_REG=$(people | jq '[.[] | select(.registered)] | length')
is "$(pg_sql darvaza "SELECT count(*) FROM accounts")" "$N_REG" "the stack's registrations are rows in PostgreSQL"

pwlogin() { # pwlogin URL FIN PASSWORD [OTP]
    local url=$1 body
    if [ $# -ge 4 ]; then body=$(jq -nc --arg f "$2" --arg p "$3" --arg o "$4" '{fin:$f,password:$p,otp:$o}')
    else body=$(jq -nc --arg f "$2" --arg p "$3" '{fin:$f,password:$p}'); fi
    GW_URL=$url gw_json POST /auth/password "$body"
}
R1=$(pick_person registered 0); R2=$(pick_person registered 1)
R3=$(pick_person registered 2); R4=$(pick_person registered 3)
U=$(pick_person unregistered 0)
[ -n "$R4" ] && [ -n "$U" ] || bail "people.json lacks 4 registered and 1 unregistered person"

# ---- the seed at rest ----------------------------------------------------------------
SEED_HEX=$(python3 -c 'import base64,sys; s=sys.argv[1]; print(base64.b32decode(s+"="*(-len(s)%8)).hex())' "$(person "$R1" totp_secret)")
BLOB=$(pg_sql darvaza "SELECT encode(totp_seed, 'hex') FROM accounts WHERE fin = '$R1'")
like "$BLOB" '^01[0-9a-f]+$' "the stored seed is a version-1 sealed blob"
is "${#BLOB}" $(((1 + 12 + 16) * 2 + ${#SEED_HEX})) "blob = version + nonce + ciphertext + tag"
unlike "$BLOB" "$SEED_HEX" "the plaintext seed is nowhere in the stored blob"
like "$(pg_sql darvaza "SELECT pwd_hash FROM accounts WHERE fin = '$R1'")" '^\$argon2id\$' "passwords are stored as argon2id hashes"

# ---- register, password, TOTP on instance A ---------------------------------------
register_person "$U" "$(person "$U" document)" "Pg-test-$$-Correct-Horse"
is "$STATUS" 201 "registration through the gateway -> 201"
U_SECRET=$(jb '.totp.secret // empty')
is "$(pg_sql darvaza "SELECT count(*) FROM accounts WHERE fin = '$U'")" 1 "the new account is a row in PostgreSQL"
pwlogin "$GW_URL" "$U" "Pg-test-$$-Correct-Horse"
is "$STATUS $(jb .acr)" "200 low" "password login of the new account (no code yet) -> 200"
pwlogin "$GW_URL" "$U" "wrong-password-$$"
problem 401 bad_credentials "a wrong password -> 401 bad_credentials"
# The account page's password change writes PostgreSQL too.
pwlogin "$GW_URL" "$U" "Pg-test-$$-Correct-Horse"
TOK_U=$(jb '.token // empty')
HASH0=$(pg_sql darvaza "SELECT pwd_hash FROM accounts WHERE fin = '$U'")
gw_json POST /api/account/password "$(jq -nc --arg c "Pg-test-$$-Correct-Horse" --arg o "$(totp_fresh "$U" "$U_SECRET")" \
    --arg p "Pg-test-$$-Changed-Horse" '{current_password:$c, otp:$o, password:$p}')" -H "$(bearer "$TOK_U")"
is "$STATUS $(jb .changed)" "200 true" "password change (current password + code) on PostgreSQL -> 200"
isnt "$(pg_sql darvaza "SELECT pwd_hash FROM accounts WHERE fin = '$U'")" "$HASH0" "the row's hash is new"
pwlogin "$GW_URL" "$U" "Pg-test-$$-Changed-Horse" "$(totp_fresh "$U" "$U_SECRET")"
is "$STATUS" 200 "the new password signs in"

CODE=$(totp_fresh "$R1" "$(person "$R1" totp_secret)")
pwlogin "$GW_URL" "$R1" "$(person "$R1" password)" "$CODE"
is "$STATUS $(jb .acr)" "200 substantial" "password + TOTP login -> 200"
pwlogin "$GW_URL" "$R1" "$(person "$R1" password)" "$CODE"
problem 401 bad_credentials "the same code again on the same instance -> 401 bad_credentials"

# ---- argon2id parameters: a correct password re-hashes the row ----------------------
# A hash made with older parameters (t=1; the gateway's are t=3) answers a
# wrong password in its own time, not the dummy hash's: a correct password
# stores it again with the configured ones, by a compare-and-set on the hash
# it verified.  The hash below: argon2id of OLD_PW, m=64MiB, a fixed salt.
OLD_PW="Pg-old-params-pw"
OLD_HASH='$argon2id$v=19$m=65536,t=1,p=1$cGctb2xkLXBhcmFtcy0xNg$Zw3r7mHrw6MAeEqaunjiSozoGSoAnLwl1WpcvPUTlN8'
r1_hash() { pg_sql darvaza "SELECT pwd_hash FROM accounts WHERE fin = '$R1'"; }
pg_sql darvaza "UPDATE accounts SET pwd_hash = '$OLD_HASH' WHERE fin = '$R1'" >/dev/null
pwlogin "$GW_URL" "$R1" "wrong-password-$$"
problem 401 bad_credentials "an old-parameter hash and a wrong password -> 401 bad_credentials"
is "$(r1_hash)" "$OLD_HASH" "and the row is untouched"
pwlogin "$GW_URL" "$R1" "$OLD_PW"
problem 401 otp_required "an old-parameter hash and the right password -> 401 otp_required"
like "$(r1_hash)" '^\$argon2id\$v=19\$m=65536,t=3,p=1\$' "and the row now has the configured parameters (t=3)"
pwlogin "$GW_URL" "$R1" "$OLD_PW" "$(totp_fresh "$R1" "$(person "$R1" totp_secret)")"
is "$STATUS $(jb .acr)" "200 substantial" "the same password and a code sign in against the new hash"

# ---- a second gateway sharing the database -----------------------------------------
"$ROOT/demo/stack.sh" renumber "$CFG" "$WORK/b/darvaza.yaml" "$WORK/b" - "$B_PORT" 8454 9190 8090 ||
    bail "cannot derive the second gateway's config"
"$BUILD_DIR/darvazad" -c "$WORK/b/darvaza.yaml" >"$WORK/b/darvazad.log" 2>&1 &
B_PID=$!
OWN_PIDS+=("$B_PID")
b_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$B_URL/readyz")" = 200 ]; }
ok "a second gateway on port $B_PORT with the same database is ready" wait_until 60 b_ready ||
    diag "$(tail -n 20 "$WORK/b/darvazad.log")"

CODE=$(totp_fresh "$R2" "$(person "$R2" totp_secret)")
pwlogin "$GW_URL" "$R2" "$(person "$R2" password)" "$CODE"
is "$STATUS" 200 "TOTP login on instance A -> 200"
pwlogin "$B_URL" "$R2" "$(person "$R2" password)" "$CODE"
problem 401 bad_credentials "the same code on instance B -> 401 bad_credentials"

# Both instances at once with one code: exactly one may accept it.
CODE=$(totp_fresh "$R3" "$(person "$R3" totp_secret)")
BODY3=$(jq -nc --arg f "$R3" --arg p "$(person "$R3" password)" --arg o "$CODE" '{fin:$f,password:$p,otp:$o}')
race() { curl --http2 -sS --max-time 30 --cacert "$STATE_DIR/certs/root.pem" -o /dev/null -w '%{http_code}\n' \
    -H 'content-type: application/json' --data-binary "$BODY3" "$1/auth/password"; }
race "$GW_URL" >"$WORK/race.a" & RA=$!
race "$B_URL" >"$WORK/race.b" & RB=$!
wait "$RA" "$RB"
is "$(cat "$WORK/race.a" "$WORK/race.b" | sort | tr '\n' ' ')" "200 401 " \
    "one code sent to A and B at once: exactly one 200, the other 401"

# ---- darvaza accounts migrate ----------------------------------------------------------
OUT=$("$BUILD_DIR/darvaza" accounts migrate -c "$CFG" 2>&1); RC=$?
is "$RC $OUT" "0 accounts: schema version 1, up to date" "migrate on the gateway's database: up to date"
(umask 077 && echo "postgresql://darvaza_empty:$PG_PW@127.0.0.1:$PG_PORT/darvaza_empty" >"$WORK/empty.conninfo")
sed "s#conninfo_file: $CONNINFO#conninfo_file: $WORK/empty.conninfo#" "$CFG" >"$WORK/empty.yaml"
OUT=$("$BUILD_DIR/darvaza" accounts migrate -c "$WORK/empty.yaml" 2>&1); RC=$?
is "$RC $OUT" "0 accounts: schema version 1 created" "migrate on an empty database (URI conninfo) creates the schema"
OUT=$("$BUILD_DIR/darvaza" accounts migrate -c "$WORK/empty.yaml" 2>&1); RC=$?
is "$RC $OUT $(pg_sql darvaza_empty "SELECT count(*) FROM darvaza_schema")" \
    "0 accounts: schema version 1, up to date 1" "migrate again: nothing to do, one version row"
pg_sql darvaza_empty "INSERT INTO darvaza_schema VALUES (2)" >/dev/null
OUT=$("$BUILD_DIR/darvaza" accounts migrate -c "$WORK/empty.yaml" 2>&1); RC=$?
like "$RC $(one_line "$OUT")" '^1 .*unknown schema version 2 \(want 1\).*cannot create or migrate the schema' \
    "a database with a newer schema is refused"

OUT=$("$BUILD_DIR/darvaza" accounts backup -c "$CFG" "$WORK/copy.db" 2>&1); RC=$?
like "$RC $(one_line "$OUT")" '^1 .*backend is postgresql: use pg_dump' \
    "accounts backup (SQLite's) refuses a postgresql config and points to pg_dump"

# ---- config checks -----------------------------------------------------------------------
chmod 0644 "$CONNINFO"
OUT=$("$BUILD_DIR/darvazad" -c "$CFG" --check 2>&1); RC=$?
chmod 0600 "$CONNINFO"
like "$RC $(one_line "$OUT")" "^[12] .*darvaza\\.yaml:[0-9]+.*accounts\\.postgresql\\.conninfo_file.*chmod 600" \
    "--check: a conninfo_file others can read -> refused with file:line"
grep -v '^  postgresql:' "$CFG" >"$WORK/nopg.yaml"
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/nopg.yaml" --check 2>&1); RC=$?
like "$RC $(one_line "$OUT")" "^[12] .*nopg\\.yaml:[0-9]+.*accounts\\.postgresql.*required with backend postgresql" \
    "--check: backend postgresql without its section -> file:line"

# ---- PostgreSQL slow: a row lock held longer than statement_timeout --------------------
R5=$(pick_person registered 4)
[ -n "$R5" ] || bail "people.json lacks a 5th registered person"
pg_sql darvaza "BEGIN; SELECT 1 FROM accounts WHERE fin = '$R5' FOR UPDATE; SELECT pg_sleep(60); COMMIT" \
    >/dev/null 2>&1 &
LOCKER=$!
OWN_PIDS+=("$LOCKER")
lock_held() { [ "$(pg_sql darvaza "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()")" = 1 ]; }
ok "a transaction holds the row of $R5" wait_until 10 lock_held
CODE=$(totp_fresh "$R5" "$(person "$R5" totp_secret)")
pwlogin "$GW_URL" "$R5" "$(person "$R5" password)" "$CODE"
problem 503 state_unavailable "the code's UPDATE waits past statement_timeout -> 503 state_unavailable"
pg_sql darvaza "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$LOCKER" 2>/dev/null
OWN_PIDS=("$B_PID")
is "$(pg_sql darvaza "SELECT totp_last_step < $(( $(date +%s) / 30 - 1 )) FROM accounts WHERE fin = '$R5'")" t \
    "the timed-out login consumed no step"
CODE=$(totp_fresh "$R5" "$(person "$R5" totp_secret)")
pwlogin "$GW_URL" "$R5" "$(person "$R5" password)" "$CODE"
is "$STATUS" 200 "once the lock is gone the next login succeeds"
N_CONN=$(pg_sql darvaza "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'darvaza'")
like "$N_CONN" '^[1-6]$' "the two gateways hold at most 2 x pool (3) connections (have $N_CONN)"

# ---- PostgreSQL restarted while the gateways are idle ---------------------------------
# Every pooled connection is now dead; none has failed yet, so no backoff:
# the first login must get through on a new connection, not answer 503.
R6=$(pick_person registered 5)
[ -n "$R6" ] || bail "people.json lacks a 6th registered person"
pg_stop && pg_start
CODE=$(totp_fresh "$R6" "$(person "$R6" totp_secret)")
pwlogin "$B_URL" "$R6" "$(person "$R6" password)" "$CODE"
is "$STATUS" 200 "PostgreSQL restarted: the first login on B succeeds (a stale connection is replaced)"
pwlogin "$GW_URL" "$R6" "$(person "$R6" password)" "$CODE"
problem 401 bad_credentials "and its code is refused on A"

# ---- PostgreSQL down, then back ---------------------------------------------------------
pg_stop
is "$PG_UP" 0 "PostgreSQL stopped"
CODE=$(totp_fresh "$R4" "$(person "$R4" totp_secret)")
pwlogin "$GW_URL" "$R4" "$(person "$R4" password)" "$CODE"
problem 503 state_unavailable "PostgreSQL down: password + TOTP login -> 503 state_unavailable"
like "$(hdr retry-after)" '^[0-9]+$' "the 503 carries Retry-After"
is "$(jb '.token // "none"')" none "no session is handed out while the database is down"
pwlogin "$B_URL" "$U" "Pg-test-$$-Changed-Horse"
problem 503 state_unavailable "PostgreSQL down: password-only login on instance B -> 503 state_unavailable"
U2=$(pick_person unregistered 1)
register_person "$U2" "$(person "$U2" document)" "Pg-test-$$-Other-Horse"
problem 503 state_unavailable "PostgreSQL down: registration -> 503 state_unavailable"

pg_start
# A code of the current step at each try: the one taken before the stop may
# have left the ±1 window by the time PostgreSQL is back.
login_ok() {
    local now
    now=$(date +%s)
    CODE=$(totp_at "$(person "$R4" totp_secret)" "$now")
    totp_mark_used "$R4" "$now"
    pwlogin "$GW_URL" "$R4" "$(person "$R4" password)" "$CODE"
    [ "$STATUS" = 200 ]
}
ok "PostgreSQL back: the same login succeeds on A without restarting the gateway" wait_until 20 login_ok
pwlogin "$B_URL" "$R4" "$(person "$R4" password)" "$CODE"
problem 401 bad_credentials "and the code it used is refused on B"

unlike "$(cat "$(gw_log)" "$WORK/b/darvazad.log" "$WORK"/stack-*.log 2>/dev/null)" "$PG_PW" \
    "the database password appears in no log"

kill "$B_PID" 2>/dev/null
wait "$B_PID" 2>/dev/null
OWN_PIDS=()
finish
