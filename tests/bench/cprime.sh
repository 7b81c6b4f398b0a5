# tests/bench/cprime.sh - setup (c') of `make bench` (sourced by run.sh after
# the stack of (c) is up): a second darvazad from the same config, with the
# ephemeral store in Redis (127.0.0.1:9130, one server, no persistence, a
# password) and the accounts in PostgreSQL (127.0.0.1:9140, pg.sh), at
# https://localhost:8453 (card listener 8463, management 9183).  Both servers are stopped by the
# EXIT traps of tests/integration/pg.sh and redis.sh.
#
#   cprime_start         start it all; sets CP=1 and CP_URL, or CP=0 and says why
#   cprime_login         a registered person logged in through (c'); sets CP_TOKEN
#   cprime_redis_calls   total commands Redis has executed (INFO commandstats)

CP=0
CP_URL=https://localhost:8453
CP_DIR="$WORK/cprime"
CP_REDIS_PORT=9130
CP_PG_PW="bench-$$-$RANDOM"
. "$ROOT/tests/integration/pg.sh"
REDIS_AUTH="redis-bench-$$-$RANDOM"
. "$ROOT/tests/integration/redis.sh"

cprime_start() {
    local cfg="$CP_DIR/darvaza.yaml" i
    mkdir -p "$CP_DIR"
    ( pg_start ) >"$CP_DIR/pg.log" 2>&1 || { log "(c') PostgreSQL did not start: $(tail -n 3 "$CP_DIR/pg.log")"; return 0; }
    PG_UP=1
    pg_create_db darvaza darvaza "$CP_PG_PW" || { log "(c') cannot create the database"; return 0; }
    (umask 077 && echo "host=127.0.0.1 port=$PG_PORT dbname=darvaza user=darvaza password=$CP_PG_PW" >"$CP_DIR/pg.conninfo")
    redis_start cprime "$CP_REDIS_PORT" --requirepass "$REDIS_AUTH" >"$CP_DIR/redis.log" 2>&1 ||
        { log "(c') Redis did not start"; return 0; }
    (umask 077 && printf '%s\n' "$REDIS_AUTH" >"$CP_DIR/redis.password" && openssl rand -hex 32 >"$CP_DIR/redis.key")
    # (c)'s config with its own ports and files (demo/stack.sh renumber),
    # then Redis and PostgreSQL.
    "$ROOT/demo/stack.sh" renumber "$STATE_DIR/darvaza.yaml" "$cfg" "$CP_DIR" bench-cprime 8453 8463 9183 ||
        { log "(c') cannot derive its config from (c)'s"; return 0; }
    awk -v dir="$CP_DIR" -v rport="$CP_REDIS_PORT" '
        { print }
        /^store:/ {
            print "  backend: redis"
            print "  redis: { address: \"127.0.0.1:" rport "\", password_file: " dir "/redis.password, value_key_file: " dir "/redis.key }"
        }
        /^accounts:/ {
            print "  backend: postgresql"
            print "  postgresql: { conninfo_file: " dir "/pg.conninfo, pool: 4 }"
        }' "$cfg" >"$cfg.tmp" && mv "$cfg.tmp" "$cfg"
    "$BUILD_DIR/darvazad" -c "$cfg" >"$CP_DIR/darvazad.log" 2>&1 &
    OWN_PIDS+=("$!")
    CP_PID=$!
    for i in $(seq 1 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:9183/readyz)" = 200 ] && { CP=1; return 0; }
        kill -0 "$CP_PID" 2>/dev/null || break
        sleep 0.5
    done
    log "(c') the gateway did not become ready: $(tail -n 5 "$CP_DIR/darvazad.log")"
}

# A person of the stack registered again through (c') (its accounts are in
# PostgreSQL, not in (c)'s SQLite file), then password + TOTP.
cprime_login() {
    local f pw secret
    CP_TOKEN=
    f=$(pick_person unregistered "${1:-0}")
    pw="Bench-$$-cprime-password"
    GW_URL=$CP_URL register_person "$f" "$(person "$f" document)" "$pw"
    [ "$STATUS" = 201 ] || { log "(c') registration answered $STATUS $BODY"; return 0; }
    secret=$(jb .totp.secret)
    GW_URL=$CP_URL gw_json POST /auth/password \
        "$(jq -nc --arg f "$f" --arg p "$pw" --arg o "$(totp_fresh "$f" "$secret")" '{fin:$f,password:$p,otp:$o}')"
    [ "$STATUS" = 200 ] && CP_TOKEN=$(jb .token)
}

cprime_redis_calls() {
    redis_cli "$CP_REDIS_PORT" INFO commandstats | tr -d '\r' |
        awk -F'[=,:]' '/^cmdstat_/ { s += $3 } END { print s + 0 }'
}
