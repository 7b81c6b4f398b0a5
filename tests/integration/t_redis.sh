#!/usr/bin/env bash
# t_redis.sh - the ephemeral store on Redis (docs/internals/redis-store.md):
# a real redis-server (redis.sh; ACL user, password from a file, AOF so that
# a restart keeps the data) under the stack with store.backend redis and a
# second gateway on other ports sharing it: login, forward, the session on
# both instances, nothing in clear in Redis, the near cache (session reads
# stay off Redis) and a logout on B refused on A at once, a TOTP code used on
# A refused on B; Redis stopped -> 503 state_unavailable with Retry-After
# everywhere, /readyz 503 with the reason, /healthz 200, nothing let through;
# Redis back -> service resumes by itself; config errors with file:line; no
# secret in a log.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 42

RPORT=9136
B_PORT=8453
B_URL="https://localhost:$B_PORT"
ADMIN_PW="admin-$$-$RANDOM-pw"
GW_PW="gw-$$-$RANDOM-redis-secret"
(umask 077 && echo "$GW_PW" >"$WORK/redis.pw" && openssl rand -hex 32 >"$WORK/redis.key")
VALUE_KEY=$(cat "$WORK/redis.key")
REDIS_AUTH=$ADMIN_PW

# The gateway's ACL user may touch its prefix and the invalidation channel only.
redis_start main "$RPORT" --appendonly yes --requirepass "$ADMIN_PW" \
    --user darvaza on ">$GW_PW" '~t:*' '&t:*' '&__redis__:invalidate' '+@all'
is "$(redis_role "$RPORT")" master "redis-server on 127.0.0.1:$RPORT"

stack_start STORE_REDIS="address: 127.0.0.1:$RPORT, username: darvaza, password_file: $WORK/redis.pw, value_key_file: $WORK/redis.key, prefix: \"t:\", timeouts: {command: 1s}"
CFG="$STATE_DIR/darvaza.yaml"
gw GET /readyz
is "$STATUS" 200 "the gateway with store.backend redis is ready"
is "$(metric darvaza_store_up)" 1 "darvaza_store_up 1"

R1=$(pick_person registered 0); R2=$(pick_person registered 1); R3=$(pick_person registered 2)
R4=$(pick_person registered 3); R5=$(pick_person registered 4)
[ -n "$R5" ] || bail "people.json lacks 5 registered people"

# ---- login and forward on A; the state is in Redis, sealed -------------------------------
login_person "$R1"
TOK1=$LOGIN_TOKEN
is "$STATUS" 200 "password + TOTP login on A -> 200"
gw GET /api/registry/me -H "$(bearer "$TOK1")"
is "$STATUS $(jb .fin)" "200 $R1" "forward on A with the session -> 200, the person's record"
NSESS=$(redis_cli "$RPORT" --scan --pattern 't:sess:*' | wc -l)
ok "the session is an entry under t:sess: ($NSESS)" test "$NSESS" -ge 1
FIN_HEX=$(printf '%s' "$R1" | xxd -p | tr -d '\n')
unlike "$(redis_cli "$RPORT" --scan --pattern '*')" "$R1|$FIN_HEX" "no key names the FIN, in clear or hex"
DUMPED=$(for k in $(redis_cli "$RPORT" --scan --pattern 't:*'); do
    [ "$(redis_cli "$RPORT" TYPE "$k")" = string ] && redis_cli "$RPORT" --raw GET "$k" | xxd -p | tr -d '\n'; echo; done)
unlike "$DUMPED" "$FIN_HEX" "no value holds the FIN in clear (values are sealed)"

# ---- a second gateway on the same Redis ----------------------------------------------------
mkdir -p "$WORK/b"
sed -e "s#port: 8443#port: $B_PORT#" -e 's#port: 8080#port: 8090#' -e 's#port: 8444#port: 8454#' \
    -e 's#listen: 127.0.0.1:9180#listen: 127.0.0.1:9190#' \
    -e "s#^  file: .*audit.log#  file: $WORK/b/audit.log#" \
    -e "s#^  file: .*access.log#  file: $WORK/b/access.log#" "$CFG" >"$WORK/b/darvaza.yaml"
"$BUILD_DIR/darvazad" -c "$WORK/b/darvaza.yaml" >"$WORK/b/darvazad.log" 2>&1 &
B_PID=$!
OWN_PIDS+=("$B_PID")
b_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" "$B_URL/readyz")" = 200 ]; }
ok "a second gateway (B, port $B_PORT) on the same Redis is ready" wait_until 60 b_ready ||
    diag "$(tail -n 20 "$WORK/b/darvazad.log")"
GW_URL=$B_URL gw GET /api/registry/me -H "$(bearer "$TOK1")"
is "$STATUS $(jb .fin)" "200 $R1" "the session made on A forwards on B"

# ---- the near cache: session reads stay off Redis; a logout on B is seen on A at once ----
gets() { redis_cli "$RPORT" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_get:calls=\([0-9]*\),.*/\1/p'; }
gw GET /auth/session -H "$(bearer "$TOK1")"
G0=$(gets)
for i in 1 2 3 4 5 6 7 8; do gw GET /auth/session -H "$(bearer "$TOK1")"; done
is "$STATUS" 200 "eight session reads on A -> 200"
G1=$(gets)
ok "they cost at most 2 GETs on Redis (near cache; $((G1 - G0)) seen)" test $((G1 - G0)) -le 2
GW_URL=$B_URL gw POST /auth/logout -H "$(bearer "$TOK1")"
is "$STATUS" 204 "logout on B -> 204"
T0=$(date +%s%N)
gw GET /auth/session -H "$(bearer "$TOK1")"
T1=$(date +%s%N)
problem 401 unauthenticated "the very next request on A with that token -> 401 (invalidated across instances)"
diag "logout on B to refusal on A: $(((T1 - T0) / 1000000)) ms including the request"
gw GET /api/registry/me -H "$(bearer "$TOK1")"
problem 401 unauthenticated "and a forward with it on A -> 401"

# ---- single use across instances ---------------------------------------------------------------
CODE=$(totp_fresh "$R2" "$(person "$R2" totp_secret)")
BODY2=$(jq -nc --arg f "$R2" --arg p "$(person "$R2" password)" --arg o "$CODE" '{fin:$f,password:$p,otp:$o}')
gw_json POST /auth/password "$BODY2"
is "$STATUS" 200 "TOTP login on A -> 200"
GW_URL=$B_URL gw_json POST /auth/password "$BODY2"
problem 401 bad_credentials "the same code on B -> 401 bad_credentials"

# ---- Redis down: fail closed -------------------------------------------------------------------
login_person "$R3"
TOK3=$LOGIN_TOKEN
is "$STATUS" 200 "another session (R3) before Redis stops"
redis_stop main
gw GET /api/registry/me -H "$(bearer "$TOK3")"
problem 503 state_unavailable "Redis stopped: a forward with a live session -> 503 state_unavailable (not 401, not 200)"
like "$(hdr retry-after)" '^[0-9]+$' "the 503 carries Retry-After"
GW_URL=$B_URL gw GET /api/registry/me -H "$(bearer "$TOK3")"
problem 503 state_unavailable "the same on B"
gw GET /auth/session -H "$(bearer "$TOK3")"
problem 503 state_unavailable "GET /auth/session -> 503 state_unavailable"
CODE=$(totp_fresh "$R4" "$(person "$R4" totp_secret)")
gw_json POST /auth/password "$(jq -nc --arg f "$R4" --arg p "$(person "$R4" password)" --arg o "$CODE" '{fin:$f,password:$p,otp:$o}')"
problem 503 state_unavailable "a password + TOTP login -> 503 state_unavailable"
is "$(jb '.token // "none"')" none "no session is handed out while Redis is down"
gw POST /auth/logout -H "$(bearer "$TOK3")"
problem 503 state_unavailable "a logout that cannot reach Redis says so (503), not 204"
gw GET /readyz
problem 503 state_unavailable "/readyz on the public listener -> 503 state_unavailable"
mgmt /readyz
is "$STATUS $(jb .code)" "503 state_unavailable" "/readyz on the management listener -> 503 state_unavailable"
like "$(jb .detail)" '^redis: ' "with the reason ($(jb .detail))"
gw GET /healthz
is "$STATUS" 200 "/healthz stays 200 (the process is alive)"
is "$(metric darvaza_store_up)" 0 "darvaza_store_up 0"
ok "darvaza_store_errors_total counts the failures" test "$(metric darvaza_store_errors_total)" -gt 0

# ---- Redis back: no restart of the gateways ------------------------------------------------------
redis_start main "$RPORT" --appendonly yes --requirepass "$ADMIN_PW" \
    --user darvaza on ">$GW_PW" '~t:*' '&t:*' '&__redis__:invalidate' '+@all'
a_ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis restarted: A is ready again by itself" wait_until 20 a_ready
gw GET /api/registry/me -H "$(bearer "$TOK3")"
is "$STATUS $(jb .fin)" "200 $R3" "the session kept in Redis (AOF) forwards again on A"
ok "B is ready again by itself" wait_until 20 b_ready
GW_URL=$B_URL login_person "$R5"
is "$STATUS" 200 "a login on B works again"
is "$(metric darvaza_store_up)" 1 "darvaza_store_up 1 again"
ok "darvaza_store_reconnects_total counts the reconnections" test "$(metric darvaza_store_reconnects_total)" -ge 2

# ---- config ------------------------------------------------------------------------------------
chmod 0644 "$WORK/redis.pw"
OUT=$("$BUILD_DIR/darvazad" -c "$CFG" --check 2>&1); RC=$?
chmod 0600 "$WORK/redis.pw"
like "$RC $(one_line "$OUT")" "^[12] .*darvaza\\.yaml:[0-9]+.*store\\.redis\\.password_file" \
    "--check: a password_file others can read -> refused with file:line"
grep -v '^  redis:' "$CFG" >"$WORK/noredis.yaml"
OUT=$("$BUILD_DIR/darvazad" -c "$WORK/noredis.yaml" --check 2>&1); RC=$?
like "$RC $(one_line "$OUT")" "^[12] .*noredis\\.yaml:[0-9]+.*store\\.redis.*required with backend redis" \
    "--check: backend redis without its section -> file:line"

LOGS=$(cat "$(gw_log)" "$WORK/b/darvazad.log" "$WORK"/stack-*.log 2>/dev/null)
unlike "$LOGS" "$GW_PW" "the Redis password appears in no log"
unlike "$LOGS" "$VALUE_KEY" "the value key appears in no log"

kill "$B_PID" 2>/dev/null
wait "$B_PID" 2>/dev/null
OWN_PIDS=()
finish
