#!/usr/bin/env bash
# t_oidc_redis.sh - the OpenID Connect provider does not wait on Redis on a
# worker loop (docs/oidc.md "Codes and tokens"): one worker loop, Redis.
# A code exchange (POST /token) that meets a paused Redis (SIGSTOP) waits on
# the blocking pool while /healthz is answered on the same loop, then
# answers 503 temporarily_unavailable (nothing issued, and the code not
# called unknown); Redis resumed, the code flow works again by itself; and
# no store round trip of the provider's code waited on the loop
# (DARVAZA_DEBUG_LOOP_WAITS stacks, oidc_clients.sh), nor any other of the
# script's flows (darvaza_store_loop_waits_total 0).
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034 # read by oidc_clients.sh
REDIS=1
# shellcheck source=tests/integration/oidc_clients.sh
. "$LIB_DIR/oidc_clients.sh"

plan $((11 + OIDC_LOOP_WAIT_TESTS))

oidc_policies
# A command timeout long enough to look at the loop while a call waits.
OIDC_REDIS_COMMAND_TIMEOUT=3s oidc_stack_start CARDS=0 MOBILE=0 CONFIG_SET="gateway.workers=1"
ISS=$GW_ORIGIN
RPORT=9137
DEMO_SECRET=$(cat "$STATE_DIR/oidc/demo-eservice.secret")
DEMO_URI=https://127.0.0.1:9150/redirect_uri

R=$(pick_person registered 0)
[ -n "$R" ] || bail "people.json has no registered person"
login_person "$R"
SESSION=$LOGIN_TOKEN
[ -n "$SESSION" ] || bail "password + TOTP login failed: $STATUS $BODY"

# code_flow: a code for the demo e-service (client_secret_basic) -> CODE, VER.
code_flow() {
    local start
    start=$($RP start "$ISS/authorize" demo-eservice "$DEMO_URI")
    gw GET "$(jq -r .url <<<"$start" | sed "s#^$ISS##")" -H "cookie: __Host-darvaza=$SESSION"
    CODE=$($RP callback "$(hdr location)" "$(jq -r .state <<<"$start")" | jq -r '.code // empty')
    VER=$(jq -r .verifier <<<"$start")
}
token_args() { # CODE VERIFIER: the curl arguments of its exchange
    printf '%s\n' -u "demo-eservice:$DEMO_SECRET" --data-urlencode grant_type=authorization_code \
        --data-urlencode "code=$1" --data-urlencode "redirect_uri=$DEMO_URI" \
        --data-urlencode "code_verifier=$2"
}
exchange() { mapfile -t A < <(token_args "$1" "$2"); gw POST /token "${A[@]}"; }

code_flow
like "$STATUS|$CODE" '^302\|[A-Za-z0-9_-]{43}$' "one worker loop, the state in Redis: /authorize gives a code"
exchange "$CODE" "$VER"
is "$STATUS|$(jb .token_type)" "200|Bearer" "... and /token trades it for tokens"

# ---- Redis paused: the exchange waits off the loop --------------------------------------
code_flow
[ -n "$CODE" ] || bail "no second code: $STATUS"
kill -STOP "${REDIS_PIDS[main]}"
mapfile -t A < <(token_args "$CODE" "$VER")
curl -s -o "$WORK/waiting.body" -w '%{http_code}' --max-time 20 --cacert "$STATE_DIR/certs/root.pem" \
    "${A[@]}" "$GW_URL/token" >"$WORK/waiting.status" 2>/dev/null &
WAITING=$!
OWN_PIDS+=("$WAITING")
# The code's take is on the paused server's socket (a script is over 50
# bytes; the subscriber's PING is 14).
sent() { ss -tnH state established "( sport = :$RPORT )" | awk '$1 > 50 { f = 1 } END { exit !f }'; }
ok "the exchange is waiting for Redis (its take queued on the paused server)" wait_until 10 sent
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the same (only) loop meanwhile"
# Looked at at once: the command timeout (3 s) bounds the window.
ok "and the exchange is still waiting" kill -0 "$WAITING"
wait "$WAITING"
is "$(cat "$WORK/waiting.status")|$(jq -r .error "$WORK/waiting.body" 2>/dev/null)" "503|temporarily_unavailable" \
    "after the command timeout: 503 temporarily_unavailable (not invalid_grant: the store could not say)"
is "$(jq -r '.access_token // "none"' "$WORK/waiting.body" 2>/dev/null)" none "... and nothing is issued"
kill -CONT "${REDIS_PIDS[main]}"
ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis resumed: ready again by itself" wait_until 20 ready
flow_ok() { code_flow && exchange "$CODE" "$VER" && [ "$STATUS" = 200 ]; }
ok "the code flow works again" wait_until 10 flow_ok

# This script's flows (a password login, the code flow, health) have no
# path left that waits on a loop: the counter itself is 0.
is "$(metric darvaza_store_loop_waits_total)" 0 "darvaza_store_loop_waits_total is 0 after every flow of this script"
oidc_loop_waits_check
finish
