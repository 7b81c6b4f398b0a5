#!/usr/bin/env bash
# t_redis_loop_card.sh - the card logins do not wait on Redis on a worker loop
# (docs/internals/redis-store.md "Card logins and document verification"):
# one worker loop, store.backend redis, the demo's SoftHSM2 cards.  A card
# login through the challenge (start count, nonce put and take), the TLS
# card login of the browser (start count, state put and take, code put and
# take, the session) and the document verification's rate count keep their
# answers and single-use guarantees, and make no blocking round trip on the
# loop (DARVAZA_DEBUG_LOOP_WAITS stacks named by tools/loop_waits.py: none
# at all).  Redis paused
# (SIGSTOP): a card challenge waits while /healthz on the same loop is
# answered, then 503 state_unavailable, and the challenge answer is refused
# 503 state_unavailable, never a session; resumed, the same answer logs in
# by itself.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 20

RPORT=9141
CARD="$BUILD_DIR/darvaza-card"
ROOTCA="$STATE_DIR/certs/root.pem"
CARD_URL=${CARD_URL:-https://localhost:8444}

for t in softhsm2-util openssl jq addr2line; do
    command -v "$t" >/dev/null || bail "$t is not installed"
done
[ -x "$CARD" ] || bail "no $CARD (make first)"
openssl engine -t pkcs11 2>/dev/null | grep -q available ||
    bail "the OpenSSL pkcs11 engine is missing (Debian: libengine-pkcs11-openssl)"

redis_loop_stack "$RPORT" "c:"
card_env
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"
gw GET /readyz
is "$STATUS" 200 "one worker loop, store.backend redis: ready"

signed() { # signed LABEL NONCE: the POST /auth/card body darvaza-card makes
    timeout 60 "$CARD" sign-challenge --origin "$GW_ORIGIN" --nonce "$2" --token "$1" \
        --pin-file "$(pin_file "$1")" 2>>"$WORK/card.err"
}
waits() { metric darvaza_store_loop_waits_total; }
CIT1=$(card_of citizen 0)
FIN1=$(card_field "$CIT1" fin)
[ -n "$CIT1" ] || bail "cards.json lacks a citizen's card"

# ---- no loop wait on the card steps ----------------------------------------------------
# Counted from here on (the stack's set-up registered people, and timers run
# on the loop): the debug stacks name each wait's call chain.
MARK=$(wc -l <"$(gw_log)")
gw POST /auth/card/challenge
NONCE=$(jb '.nonce // empty')
is "$STATUS $(jb '.nonce | length')" "200 44" "POST /auth/card/challenge answers a nonce (start count and nonce on Redis)"
REQ=$(signed "$CIT1" "$NONCE")
gw_json POST /auth/card "$REQ"
is "$STATUS $(jb .fin) $(jb .acr)" "200 $FIN1 high" "the challenge answered with the card -> a high session (card login against Redis)"
gw_json POST /auth/card "$REQ"
problem 401 invalid_nonce "the same answer again -> 401 invalid_nonce (single use on Redis)"

# The browser's TLS card login: start (start count, state put), the card
# listener (state take, certificate check, code put), the exchange (code take).
(umask 077 && printf 'pass = "%s"\n' "$(card_field "$CIT1" pin)" >"$WORK/curl.cfg")
gw POST /auth/card/tls/start -H "origin: $GW_ORIGIN"
URL=$(jb '.url // empty')
BIND=$(hdr set-cookie | sed -n 's/^\(__Host-darvaza-card=[^;]*\);.*/\1/p')
is "$STATUS $([ -n "$BIND" ] && echo cookie)" "201 cookie" "POST /auth/card/tls/start: 201 and the pre-login cookie"
GW_URL=$CARD_URL gw GET "${URL#"$CARD_URL"}" -K "$WORK/curl.cfg" --engine pkcs11 --cert-type ENG --key-type ENG \
    --cert "pkcs11:token=$CIT1;object=auth;type=cert" --key "pkcs11:token=$CIT1;object=auth;type=private"
CODE=$(hdr location | tr '#&' '\n\n' | sed -n 's/^card-code=//p')
is "$STATUS $([ ${#CODE} = 43 ] && echo code)" "303 code" "the card listener sends the browser back with a code"
gw_json POST /auth/card/tls/exchange "{\"code\":\"$CODE\"}" -H "origin: $GW_ORIGIN" -H "cookie: $BIND"
is "$STATUS $(jb .fin)" "200 $FIN1" "the code exchanged for a session (TLS card login against Redis)"
gw_json POST /auth/card/tls/exchange "{\"code\":\"$CODE\"}" -H "origin: $GW_ORIGIN" -H "cookie: $BIND"
problem 401 card_login_invalid "the same code again -> 401 card_login_invalid (single use on Redis)"
gw_json POST /api/documents/verify '{}'
problem 400 invalid_request "POST /api/documents/verify (counted on Redis, then refused for its body)"

# Every blocking round trip on the loop since the mark, by call chain: none
# from the card flows (their own steps, nor the session step they end in,
# auth/login.c), nor from anything else on the loop meanwhile.
tail -n +"$((MARK + 1))" "$(gw_log)" >"$WORK/steps.log"
CHAINS=$("$ROOT/tools/loop_waits.py" "$BUILD_DIR/darvazad" "$WORK/steps.log" 2>&1)
[ -z "$CHAINS" ] || diag "loop waits meanwhile:
$CHAINS"
is "$CHAINS" "" \
    "no blocking Redis round trip on the loop from the card flows (start counts, nonce, state, code, session, verify count)"
is "$(waits)" 0 "darvaza_store_loop_waits_total is 0 after the card flows (every side, since start-up)"

# ---- Redis paused: a card challenge waits, the loop does not -----------------------------
challenge_bg() { # challenge_bg NAME [curl args...]: a POST in the background
    local name=$1 path=$2
    shift 2
    curl -s -o "$WORK/$name.body" -w '%{http_code}' --max-time 20 --cacert "$ROOTCA" \
        -H "origin: $GW_ORIGIN" "$@" -X POST "$GW_URL$path" >"$WORK/$name.status" 2>/dev/null &
    OWN_PIDS+=("$!")
    eval "${name}_PID=$!"
}
gw POST /auth/card/challenge
REQ=$(signed "$CIT1" "$(jb '.nonce // empty')")
kill -STOP "${REDIS_PIDS[main]}"
challenge_bg waiting /auth/card/challenge
# The count is on the paused server's socket (a script is over 50 bytes;
# the subscriber's PING is 14).
sent() { ss -tnH state established "( sport = :$RPORT )" | awk '$1 > 50 { f = 1 } END { exit !f }'; }
ok "the card challenge is waiting for Redis (its count queued on the paused server)" wait_until 10 sent
gw GET /healthz
is "$STATUS" 200 "/healthz is answered on the same loop meanwhile"
ok "and the challenge is still waiting" kill -0 "$waiting_PID"
wait "$waiting_PID"
is "$(cat "$WORK/waiting.status")|$(jq -r .code "$WORK/waiting.body" 2>/dev/null)" "503|state_unavailable" \
    "after the command timeout the challenge -> 503 state_unavailable (fail closed)"
# The breaker is open now: the answer's nonce take fails at once, closed.
gw_json POST /auth/card "$REQ"
problem 503 state_unavailable "the challenge answer while Redis is paused -> 503 state_unavailable (never a session)"
kill -CONT "${REDIS_PIDS[main]}"
ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "Redis resumed: ready again by itself" wait_until 20 ready
gw_json POST /auth/card "$REQ"
is "$STATUS $(jb .fin)" "200 $FIN1" "the nonce survived the pause unspent: the answer logs in now"
is "$(metric darvaza_store_inflight)" 0 "nothing left in flight"

finish
