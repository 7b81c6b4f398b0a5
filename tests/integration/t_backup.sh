#!/usr/bin/env bash
# t_backup.sh - back up and restore (docs/operations.md, "Back up and
# restore"): `darvaza accounts backup` while the gateway runs and logins
# happen, then the state is wiped (accounts DB and seed key), restored, the
# gateway restarted, and a person logs in with password and TOTP (the seed
# decrypts with the restored seed.key).  A restore with the wrong seed.key
# fails clearly: the login is refused without a crash, and the ops log says
# the seed does not decrypt (never the seed or the key).
. "$(dirname "$0")/lib.sh"

plan 18
stack_start
CFG="$STATE_DIR/darvaza.yaml"
DB=$(awk '/^accounts:/{a=1;next} /^[^ #]/{a=0} a && $1=="database:"{print $2}' "$CFG")
SEED=$(awk '/^accounts:/{a=1;next} /^[^ #]/{a=0} a && $1=="seed_key_file:"{print $2}' "$CFG")
[ -f "$DB" ] && [ -f "$SEED" ] || bail "no accounts DB ($DB) or seed key ($SEED)"
DZ="$BUILD_DIR/darvaza"
BAK="$WORK/accounts.bak"
A=$(pick_person registered 0)
B=$(pick_person registered 1)

# ---- backup while the gateway runs and a login is under way ---------------------------------
login_person "$B" >/dev/null &
BG=$!
out=$("$DZ" accounts backup -c "$CFG" "$BAK" 2>&1)
rc=$?
wait "$BG"
is "$rc" 0 "darvaza accounts backup succeeds while the gateway runs and a login happens"
like "$out" "backed up [0-9]+ account\(s\)" "it says how many accounts it copied"
is "$(stat -c %a "$BAK")" 600 "the backup file is readable by its owner only"
is "$(sqlite3 "$BAK" 'PRAGMA integrity_check')" ok "the copy passes SQLite's integrity check"
nok "a second backup to the same file is refused (no silent overwrite)" "$DZ" accounts backup -c "$CFG" "$BAK"
cp "$SEED" "$WORK/seed.key.bak"
out=$("$DZ" accounts restore -c "$CFG" "$BAK" 2>&1)
rc=$?
isnt "$rc" 0 "restore under a running gateway is refused"
like "$out" "darvazad runs with this configuration" "... saying why (use --force to override)"

# ---- stop, wipe, restore, restart ------------------------------------------------------------
gw_stop() {
    local pid
    pid=$(cat "$STATE_DIR/pids/darvazad.pid" 2>/dev/null)
    [ -n "$pid" ] || return 1
    kill -TERM "$pid"
    wait_until 30 sh -c "! kill -0 $pid 2>/dev/null"
}
gw_start() {
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$STATE_DIR/pids/darvazad.pid" "$BUILD_DIR/darvazad" -c "$CFG" \
        >>"$(gw_log)" 2>&1 </dev/null &
    ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/readyz")" = 200 ]; }
    wait_until 30 ready
}
ok "the gateway stops" gw_stop
rm -f "$DB" "$DB-wal" "$DB-shm" "$SEED"
ok "the state is wiped (no accounts DB, no seed key)" test ! -e "$DB" -a ! -e "$SEED"
(umask 077 && cp "$WORK/seed.key.bak" "$SEED")
ok "darvaza accounts restore puts the backup back" "$DZ" accounts restore -c "$CFG" "$BAK"
ok "the gateway starts on the restored state" gw_start
login_person "$A"
is "$STATUS" 200 "a person logs in with password and TOTP after the restore (seed decrypts)"

# ---- the wrong seed key ------------------------------------------------------------------------
ok "the gateway stops again" gw_stop
WRONG=$(openssl rand -hex 32)
(umask 077 && echo "$WRONG" >"$SEED")
gw_start || bail "the gateway did not start with another seed key"
login_person "$A"
problem 500 internal_error "with the wrong seed.key a TOTP login is refused 500 internal_error, no crash"
gw GET /readyz
is "$STATUS" 200 "the gateway still serves"
like "$(grep -F '"accounts_seed"' "$(gw_log)" | tail -n 1)" "does not decrypt" \
    "the ops log says the TOTP seed cannot be decrypted"
unlike "$(cat "$(gw_log)")" "$WRONG|$(head -c 64 "$WORK/seed.key.bak")" "and never prints either seed key"

finish
