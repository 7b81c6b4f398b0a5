#!/usr/bin/env bash
# t_faults.sh - small protocol faults a hostile tester found (hardening),
# each refused or mended through the real gateway: the QR binding cookie
# never reaches a back end; a header the gateway reads as one value sent
# twice is 400; a 401 names how to authenticate (WWW-Authenticate); a
# request target too long to forward is 414, not 503; oversized header
# fields get a problem+json 431; a registration password over 1024 bytes
# is weak_password; a GET with a body reaches the back end without a
# content type the client never sent.
. "$(dirname "$0")/lib.sh"

plan 24
stack_start
start_echo || bail "the echo peer did not start on $ECHO_ADDR"

A=$(pick_person registered 0)
U=$(pick_person unregistered 0)
[ -n "$A" ] && [ -n "$U" ] || bail "people.json lacks a registered and an unregistered person"
login_person "$A"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || bail "no session for $A"

# ---- our cookies stay here ------------------------------------------------------------------
PROBE="probe-$$-qr"
gw GET "/api/registry/me?probe=$PROBE" -H "$(bearer "$TOK")" -H "$(probe_hdr "$PROBE")" \
    -b "__Host-darvaza-qr=binding-secret-$$; other=1"
is "$STATUS" 200 "a forwarded request with the QR binding cookie is served"
H=$(peer_request_with "$PROBE" | jq -c '.headers // {}')
unlike "$H" "__Host-darvaza|binding-secret" "the QR binding cookie does not reach the back end"
like "$(jq -r '.cookie // empty' <<<"$H")" '^other=1$' "the client's other cookie does"

# ---- the client's :authority is not passed on as ours ----------------------------------------
PROBE="probe-$$-auth"
gw GET "/api/registry/me?probe=$PROBE" -H "$(bearer "$TOK")" -H "$(probe_hdr "$PROBE")" \
    -H "Host: evil.example:8443"
is "$STATUS" 200 "a request with another :authority is served"
H=$(peer_request_with "$PROBE" | jq -c '.headers // {}')
like "$(jq -r '.forwarded // empty' <<<"$H")" 'host="localhost:8443"$' \
    "the back end's Forwarded host= is the gateway's own authority, not the client's"

# ---- one value, one header --------------------------------------------------------------------
gw POST /auth/qr -H "Origin: $GW_ORIGIN" -H "Origin: https://evil.example"
problem 400 invalid_request "two Origin headers -> 400 invalid_request"
like "$(jb .detail)" 'more than one origin' "... naming the header"
gw GET /api/registry/me -H "$(bearer "$TOK")" -H "Darvaza-Purpose: a" -H "Darvaza-Purpose: b"
problem 400 invalid_request "two Darvaza-Purpose headers -> 400 invalid_request"
gw GET /api/registry/me -H "$(bearer "$TOK")" -H "Authorization: Bearer other"
problem 400 invalid_request "two Authorization headers -> 400 invalid_request"

# ---- a 401 says how to authenticate -----------------------------------------------------------
gw GET /api/registry/me
problem 401 unauthenticated "no session -> 401"
is "$(hdr www-authenticate)" 'Bearer realm="darvaza"' "with WWW-Authenticate: Bearer (RFC 9110 15.5.2)"
gw_json POST /auth/password "$(jq -nc --arg f "$A" '{fin:$f, password:"not the password"}')"
is "$STATUS $(hdr www-authenticate)" '401 Bearer realm="darvaza"' "a wrong password's 401 carries it too"

# ---- too long, too many -------------------------------------------------------------------------
LONGQ=$(head -c 15000 /dev/zero | tr '\0' 'q')
gw GET "/api/registry/me?x=$LONGQ" -H "$(bearer "$TOK")"
problem 414 uri_too_long "a 15 KB query on a forwarded route -> 414 uri_too_long"
args=()
for i in $(seq 1 120); do args+=(-H "x-pad-$i: v"); done
gw GET /healthz "${args[@]}"
# (the engine answers before any route, so there is no request id to carry)
is "$STATUS $(hdr content-type) $(jb .code) $(jb .status)" "431 application/problem+json header_fields_too_large 431" \
    "120 header fields -> 431 with a problem+json body"

# ---- registration: a long password is a weak one ----------------------------------------------
LONGPW=$(head -c 2000 /dev/zero | tr '\0' 'p')
gw_json POST /auth/register "$(jq -nc --arg f "$U" --arg d "$(person "$U" document)" --arg p "$LONGPW" \
    '{fin:$f, document:$d, password:$p}')" -H "Origin: $GW_ORIGIN"
problem 400 weak_password "a 2000-byte password at registration -> 400 weak_password"

# ---- a GET with a body: no invented content type ------------------------------------------------
PROBE="probe-$$-ct"
gw GET /api/echo/get -H "$(bearer "$TOK")" -H "$(probe_hdr "$PROBE")" -H 'Content-Type:' --data-binary 'abc' -X GET
is "$STATUS" 200 "a GET with a body and no content type is forwarded"
H=$(peer_request_with "$PROBE" echo | jq -c '.headers // {}')
is "$(jq -r 'has("content-type")' <<<"$H")" false "the back end sees no content type the client never sent"

# ---- audit before acting: a client that leaves mid-forward ----------------------------------
# The client gives up (0.8 s) while the back end takes 3 s (the route's own
# timeout is 1 s): the back end has the request, so the log must say so.
AUDIT="$STATE_DIR/audit.log"
ECHO_RID=
for attempt in 1 2 3; do
    PROBE="probe-$$-gone-$attempt"
    curl --http2 -sS -o /dev/null --max-time 0.8 --cacert "$STATE_DIR/certs/root.pem" \
        -H "$(bearer "$TOK")" -H "$(probe_hdr "$PROBE")" "$GW_URL/api/echo/slow?delay_ms=3000" 2>/dev/null
    for _ in $(seq 1 50); do
        ECHO_RID=$(peer_request_with "$PROBE" echo | jq -r '.headers["darvaza-request-id"] // empty')
        [ -n "$ECHO_RID" ] && break
        sleep 0.1
    done
    [ -n "$ECHO_RID" ] && break # else the client left before its request did: try again
done
ok "the back end got a request whose client then left (attempt $attempt)" test -n "$ECHO_RID"
SENT=$(grep -F "\"$ECHO_RID\"" "$AUDIT" 2>/dev/null | grep -F '"phase":"sent"' | head -n 1)
is "$(jq -r '[.type, .decision, .path] | join(" ")' <<<"${SENT:-null}" 2>/dev/null)" \
    "forward allow /api/echo/slow?delay_ms=3000" "its sent line was in the log before it reached the back end"
for _ in $(seq 1 100); do
    GONE=$(grep -F "\"$ECHO_RID\"" "$AUDIT" 2>/dev/null | grep -F '"forward_result"' | head -n 1)
    [ -n "$GONE" ] && break
    sleep 0.1
done
is "$(jq -r '[.result, .sent] | map(tostring) | join(" ")' <<<"${GONE:-null}" 2>/dev/null)" "client_gone true" \
    "and its outcome says the client went after the request was sent"

# ---- the demo survives a responder stopped on purpose ---------------------------------------------
card_ocsp_stop
ok "after ocsp-stop, demo/stack.sh status still says the stack is up (make demo keeps running)" \
    "$ROOT/demo/stack.sh" status "$STATE_DIR"
like "$("$ROOT/demo/stack.sh" status "$STATE_DIR" 2>&1)" 'ocsp-esign stopped on purpose' "... naming the responder as stopped on purpose"
card_ocsp_start
gw GET /healthz
is "$STATUS" 200 "after ocsp-start the stack is whole and the gateway answers"
finish
