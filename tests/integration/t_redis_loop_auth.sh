#!/usr/bin/env bash
# t_redis_loop_auth.sh - the login side does not wait on Redis on a worker
# loop (docs/internals/redis-store.md "Off the loop on the login side"): one
# worker loop, store.backend redis.  A password login, GET /auth/session, a
# registration (start and code), the account page (list, end one session,
# end the others) and a logout make no blocking Redis round trip on the loop
# (no login-side chain among the waits DARVAZA_DEBUG_LOOP_WAITS logs).  With
# Redis paused (SIGSTOP) a logout waits while /healthz on the same loop is
# answered; the logout then answers 503 state_unavailable after the command
# timeout; Redis resumed, logins and logouts work again by themselves.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 25

RPORT=9142

redis_loop_stack "$RPORT" "l:"
gw GET /readyz
is "$STATUS" 200 "one worker loop, store.backend redis: ready"

# ---- every login-side call, none waiting on the loop -----------------------------------------
R1=$(pick_person registered 0)
login_person "$R1"
TOK=$LOGIN_TOKEN
is "$STATUS" 200 "password login"
gw GET /auth/session -H "$(bearer "$TOK")"
is "$STATUS $(jb .fin)" "200 $R1" "GET /auth/session names the person"
gw GET /auth/session -H "$(bearer "not-a-session-token-$$")"
is "$STATUS $(jb .code)" "401 unauthenticated" "an unknown token -> 401 unauthenticated"

U=$(pick_person unregistered 1)
[ -n "$U" ] || bail "people.json lacks an unregistered person"
UDOC=$(person "$U" document)
REG=$(jq -nc --arg f "$U" --arg d "$UDOC" --arg p "Loop-auth-$$-Correct-Horse" '{fin:$f,document:$d,password:$p}')
gw_json POST /auth/register "$REG"
is "$STATUS $(jb .code)" "401 code_required" "registration start -> 401 code_required (a code sent by SMS)"
CODE=$(sms_code "$(person_phone "$U")")
gw_json POST /auth/register "$(jq -c --arg c "$CODE" '. + {code:$c}' <<<"$REG")"
is "$STATUS $(jb .fin)" "201 $U" "the code from the SMS registers the person"

gw GET /api/account/sessions -H "$(bearer "$TOK")"
is "$STATUS $(jb '[.sessions[] | select(.current)] | length')" "200 1" "the account page lists the current session"
gw GET /api/account/consents -H "$(bearer "$TOK")"
is "$STATUS" 200 "the account page's consents"

login_person "$R1"
TOK_OTHER=$LOGIN_TOKEN
login_person "$R1"
TOK_THIRD=$LOGIN_TOKEN
gw GET /api/account/sessions -H "$(bearer "$TOK_THIRD")"
THIRD_ID=$(jb '.sessions[] | select(.current) | .id')
gw DELETE "/api/account/sessions/$THIRD_ID" -H "$(bearer "$TOK")"
is "$STATUS" 204 "end one session from the account page"
gw GET /auth/session -H "$(bearer "$TOK_THIRD")"
is "$STATUS $(jb .code)" "401 unauthenticated" "that session is gone"
gw DELETE "/api/account/sessions?except=current" -H "$(bearer "$TOK")"
is "$STATUS" 204 "sign out the other sessions from the account page"
gw GET /auth/session -H "$(bearer "$TOK_OTHER")"
is "$STATUS $(jb .code)" "401 unauthenticated" "the other session is gone"

gw POST /auth/logout -H "$(bearer "$TOK")"
is "$STATUS" 204 "logout"
gw GET /auth/session -H "$(bearer "$TOK")"
is "$STATUS $(jb .code)" "401 unauthenticated" "the logged-out token is refused"
# Each blocking round trip on a worker loop is logged with its stack
# (DARVAZA_DEBUG_LOOP_WAITS, below); tools/loop_waits.py names the chains.
LOGIN_WAITS=$(python3 "$ROOT/tools/loop_waits.py" "$BUILD_DIR/darvazad" "$(gw_log)")
is "$LOGIN_WAITS" "" "no blocking Redis round trip on the worker loop (no chain logged)"
is "$(metric darvaza_store_loop_waits_total)" 0 "darvaza_store_loop_waits_total is 0 after the login-side flows"

# ---- Redis paused: a waiting logout does not hold the loop -----------------------------------
# Other people from here: a person's TOTP steps are single use (lib.sh
# totp_fresh would wait for the next one).
R2=$(pick_person registered 1)
R3=$(pick_person registered 2)
login_person "$R2"
TOK2=$LOGIN_TOKEN
is "$STATUS" 200 "a second login"
kill -STOP "${REDIS_PIDS[main]}"
curl -s -o "$WORK/waiting.body" -w '%{http_code}' --max-time 20 --cacert "$STATE_DIR/certs/root.pem" \
    -X POST -H "$(bearer "$TOK2")" "$GW_URL/auth/logout" >"$WORK/waiting.status" 2>/dev/null &
WAITING=$!
OWN_PIDS+=("$WAITING")
# Its lookup or delete is queued on the paused server's socket (a
# command with a key is over 50 bytes; the subscriber's PING is 14).
sent() { ss -tnH state established "( sport = :$RPORT )" | awk '$1 > 50 { f = 1 } END { exit !f }'; }
ok "the logout is waiting for Redis (its command queued on the paused server)" wait_until 10 sent
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the same loop meanwhile"
# Looked at at once: the command timeout (3 s) bounds the window.
ok "and the logout is still waiting" kill -0 "$WAITING"
wait "$WAITING"
is "$(cat "$WORK/waiting.status") $(jq -r .code "$WORK/waiting.body" 2>/dev/null)" \
    "503 state_unavailable" "after the command timeout the logout -> 503 state_unavailable"
kill -CONT "${REDIS_PIDS[main]}"
ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis resumed: ready again by itself" wait_until 20 ready
relogin() { login_person "$R3"; [ "$STATUS" = 200 ]; }
ok "a password login works again" wait_until 10 relogin
gw POST /auth/logout -H "$(bearer "$TOK2")"
is "$STATUS" 204 "and the logout that could not happen now does"

finish
