#!/usr/bin/env bash
# t_assertion_batch.sh - batch-signed assertions end to end (docs/assertions.md):
# a service set to `assertion: { signing: batch }` (policies/echo_batch.yaml)
# behind the echo peer, which checks every assertion with the peers' library
# (--aud echo-batch).  Concurrent requests on one connection get tokens of the
# batch form sharing a root JWS; each is bound to its own request; the peer,
# `darvaza verify-assertion` and tools/verify_assertion.py (PyJWT and a few
# lines of hashing) accept them; a changed claim, path or root is refused by
# all three; replay is still refused by the peer; the per-request service
# keeps the single form.
. "$(dirname "$0")/lib.sh"

plan 17
DZ="$BUILD_DIR/darvaza"
PY=/usr/bin/python3 # Debian's, with python3-jwt
stack_start
"$BUILD_DIR/darvaza-peer" echo --listen "$ECHO_ADDR" --h2c --jwks-url "$GW_URL/.well-known/jwks.json" \
    --cacert "$STATE_DIR/certs/root.pem" --aud echo-batch >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
OWN_PIDS+=("$ECHO_PID")
wait_until 10 curl -s -o /dev/null --http2-prior-knowledge --max-time 1 "http://$ECHO_ADDR/" ||
    bail "the echo peer did not start on $ECHO_ADDR"
curl -sS --max-time 10 --cacert "$STATE_DIR/certs/root.pem" "$GW_URL/.well-known/jwks.json" >"$WORK/jwks.json"
login_person "$(pick_person registered 0)"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || bail "cannot log in ($STATUS $BODY)"

# ---- one request alone: the batch form, accepted by the peer ---------------------------------
gw GET "/api/echo-batch/get?one=1" -H "$(bearer "$TOK")"
is "$STATUS $(jb -c '[.assertion_error, .assertion.htu]')" '200 [null,"/api/echo-batch/get?one=1"]' \
    "a lone request to a batch service: 200, the peer's library accepts its assertion"
ONE=$(peer_requests echo | jq -r 'map(select(.path | contains("one=1"))) | last.headers["darvaza-assertion"] // empty')
IFS='~' read -r ONE_ROOT ONE_LEAF ONE_PATH <<<"$ONE"
is "$(jws_part "$ONE_ROOT" 0 | jq -c '[.alg, .typ]') ${#ONE_PATH}" '["ES256","darvaza-assertion-batch+jwt"] 0' \
    "its token is root JWS ~ claims ~ path, a batch of one with an empty path"
ISS=$(jws_part "$ONE_ROOT" 1 | jq -r .iss)
is "$(jws_part "$ONE_ROOT" 1 | jq -c 'keys')" '["aud","exp","iat","iss","mrk"]' \
    "the root JWS states iss, aud, iat, exp and the Merkle root"

# ---- many at once on one connection: one signature --------------------------------------------
N=16
h2load -n "$N" -c 1 -m "$N" -t 1 -H "$(bearer "$TOK")" "$GW_URL/api/echo-batch/get?many=1" \
    >"$WORK/h2load.txt" 2>&1
like "$(grep -o 'status codes: [0-9]* 2xx' "$WORK/h2load.txt")" "status codes: $N 2xx" \
    "$N concurrent requests on one connection: all 200"
peer_requests echo | jq -c '[.[] | select(.path | contains("many=1"))]' >"$WORK/many.json"
is "$(jq -c '[length, ([.[] | select(.verified)] | length), ([.[].claims.jti] | unique | length)]' "$WORK/many.json")" \
    "[$N,$N,$N]" "the peer saw $N requests, verified every assertion, $N distinct jti"
jq -r '.[].headers["darvaza-assertion"]' "$WORK/many.json" >"$WORK/many.tokens"
ROOTS=$(cut -d'~' -f1 "$WORK/many.tokens" | sort -u | wc -l)
diag "$N requests, $ROOTS root signature(s)"
ok "requests read together share root signatures ($ROOTS roots for $N requests)" test "$ROOTS" -lt "$N"

# ---- the CLI and the Python verifier, both forms ---------------------------------------------
T=$(head -n 1 "$WORK/many.tokens")
verify_cli() { "$DZ" verify-assertion --jwks "$WORK/jwks.json" --iss "$ISS" --aud echo-batch "$@" 2>&1; }
verify_py() { "$PY" "$ROOT/tools/verify_assertion.py" --jwks "$WORK/jwks.json" --iss "$ISS" --aud echo-batch "$@" 2>&1; }
OUT=$(verify_cli --htm GET --htu "/api/echo-batch/get?many=1" "$T")
is "$? $(jq -r .aud <<<"$OUT" 2>/dev/null)" "0 echo-batch" "darvaza verify-assertion accepts a batch-signed token"
OUT=$(verify_py --htm GET --htu "/api/echo-batch/get?many=1" "$T")
is "$? $(jq -r .htu <<<"$OUT" 2>/dev/null)" "0 /api/echo-batch/get?many=1" \
    "tools/verify_assertion.py (PyJWT + hashing) accepts it"
OUT=$(verify_cli --htu "/api/echo-batch/get?one=1" "$T")
is "$? $OUT" "1 invalid: path_mismatch" "bound to its own request: another path is refused"

IFS='~' read -r R L P <<<"$T"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
FORGED_LEAF=$(printf '%s' "$L" | b64url_decode | jq -c '.sub = "AAAAAA1"' | b64url)
OUT=$(verify_cli "$R~$FORGED_LEAF~$P")
is "$? $OUT" "1 invalid: bad_signature" "another subject in the claims: darvaza verify-assertion refuses (bad_signature)"
OUT=$(verify_py "$R~$FORGED_LEAF~$P")
is "$? $OUT" "1 invalid: bad_signature" "... and so does the Python verifier"
# The first step's side byte flipped (a batch of one has no step: add one).
HEX=$(printf '%s' "$P" | b64url_decode | xxd -p -c 4096)
case $HEX in 00*) HEX="01${HEX:2}" ;; 01*) HEX="00${HEX:2}" ;; *) HEX=$(printf '00%064d' 0) ;; esac
FORGED_PATH=$(xxd -r -p <<<"$HEX" | b64url)
OUT=$(verify_cli "$R~$L~$FORGED_PATH")
is "$? $OUT" "1 invalid: bad_signature" "a changed inclusion path is refused"
OTHER_ROOT=$ONE_ROOT
OUT=$(verify_cli "$OTHER_ROOT~$L~$P")
is "$? $OUT" "1 invalid: bad_signature" "these claims under another batch's root are refused"
OUT=$(verify_cli "$R")
is "$? $OUT" "1 invalid: wrong_type" "the root JWS alone is not an assertion"

# ---- replay and the forged token at the peer ---------------------------------------------------
RJ=$(curl -sS --http2-prior-knowledge --max-time 10 -H "darvaza-assertion: $T" \
    "http://$ECHO_ADDR/api/echo-batch/get?many=1" | jq -r .assertion_error)
is "$RJ" replayed "the peer refuses a batch-signed token it has seen (jti replay)"

# ---- the per-request service is unchanged -----------------------------------------------------
gw GET /api/echo/get -H "$(bearer "$TOK")"
SINGLE=$(peer_requests echo | jq -r 'map(select(.path == "/api/echo/get")) | last.headers["darvaza-assertion"] // empty')
is "$STATUS $(jws_part "$SINGLE" 0 | jq -r .typ) $(grep -c '~' <<<"$SINGLE")" "200 darvaza-assertion+jwt 0" \
    "a service without assertion.signing keeps one signature per request"

finish
