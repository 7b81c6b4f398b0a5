#!/usr/bin/env bash
# t_forward.sh - forwarding to back ends by policy (DESIGN §4.8, §4.9): the
# released fields, the signed assertion (checked with the openssl CLI, not our
# code), header hygiene, access rules, limits, upstream failures, an HTTP/1.1
# back end, and nghttp as a client.
. "$(dirname "$0")/lib.sh"

plan 75
stack_start
start_echo || bail "the echo peer did not start on $ECHO_ADDR"

# An HTTP/1.1 back end: nginx serving a 4 MiB file, logging protocol and assertion.
mkdir -p "$WORK/www/api/files" "$WORK/ngx-tmp"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/www/api/files/blob.bin"
# A back end's page that would run a script at the portal's origin, served with
# the CORS of a back end that trusts whoever asks (the Origin reflected, with
# credentials).
printf '<!doctype html><script>fetch("/api/account/sessions")</script>\n' >"$WORK/www/api/files/page.html"
cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
    log_format probe '\$request|\$server_protocol|\$http_darvaza_assertion';
    access_log $WORK/nginx-access.log probe;
    client_body_temp_path $WORK/ngx-tmp/body;
    proxy_temp_path $WORK/ngx-tmp/proxy;
    fastcgi_temp_path $WORK/ngx-tmp/fastcgi;
    uwsgi_temp_path $WORK/ngx-tmp/uwsgi;
    scgi_temp_path $WORK/ngx-tmp/scgi;
    server {
        listen 127.0.0.1:$H1_PORT; root $WORK/www;
        location = /api/files/page.html {
            add_header Access-Control-Allow-Origin \$http_origin always;
            add_header Access-Control-Allow-Credentials true always;
        }
    }
}
EOF
nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" &
OWN_PIDS+=($!)

A=$(pick_person registered 0)
B=$(pick_person registered 1)
P=$(pick_person unregistered 0)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$P" ] || bail "people.json lacks 2 registered and 1 unregistered person"
login_person "$A"
TOK_A=$LOGIN_TOKEN
# A password-only (acr low) session: a freshly registered person before TOTP use.
P_PW="Darvaza-forward-$$-password"
register_person "$P" "$(person "$P" document)" "$P_PW"
login "$P" "$P_PW"
TOK_LOW=$LOGIN_TOKEN
[ -n "$TOK_A" ] && [ -n "$TOK_LOW" ] || bail "cannot log in (A: $A, P: $P): $STATUS $BODY"
diag "A=$A (password+TOTP) B=$B P=$P (password only)"

# ---- the record and the assertion the registry received -------------------------------
PROBE="probe-$$-1"
gw GET "/api/registry/me?probe=$PROBE" -H "$(bearer "$TOK_A")" -H "$(probe_hdr "$PROBE")"
is "$STATUS $(jb .fin)" "200 $A" "GET /api/registry/me -> 200 with the person's own record"
# The fields the route releases, as the policy in force says.
RELEASE=$(awk '/^[[:space:]]*- path:/ { inroute = ($3 == "/api/registry/me") }
               inroute && /^[[:space:]]*release:/ { sub(/^[^[]*\[/, ""); sub(/\].*/, ""); gsub(/[ ,]+/, " "); print; exit }' \
          "$STATE_DIR/policies/registry.yaml")
diag "released by policy for /api/registry/me: ${RELEASE:-nothing found}"
RELJSON=$(jq -nc --arg r "$RELEASE" '$r | split(" ") | map(select(length > 0))')
is "$(jb --argjson rel "$RELJSON" '[keys[] | select(. as $k | $rel | index($k) | not)] | join(",")')" "" \
    "the record holds only the fields the policy releases"
ok "phones are not released on /api/registry/me (policy and answer)" \
    bash -c '! grep -qw phones <<<"$1" && [ -n "$1" ] && ! jq -e "has(\"phones\")" "$2" >/dev/null' _ "$RELEASE" "$RESP_BODY_FILE"
like "$(jb '.name // empty')" '.' "the record has the person's name"
like "$(hdr darvaza-request-id)" '.' "the answer carries Darvaza-Request-Id"
GW_RID=$(hdr darvaza-request-id)

REQ=$(peer_request_with "$PROBE")
is "$(jq -r '.verified' <<<"${REQ:-null}" 2>/dev/null)" true "the registry verified the assertion it received"
is "$(jq -r '[.claims.sub, .claims.aud] | join(" ")' <<<"${REQ:-null}" 2>/dev/null)" "$A registry" \
    "the registry saw sub = the FIN and aud = registry"
TOKEN=$(jq -r '.headers["darvaza-assertion"] // empty' <<<"${REQ:-null}" 2>/dev/null)
is "$(jws_part "$TOKEN" 0 | jq -r '[.alg, .typ, (.kid|type)] | join(" ")' 2>/dev/null)" "ES256 darvaza-assertion+jwt string" \
    "the assertion's header: alg ES256, typ darvaza-assertion+jwt, a kid"
CLAIMS=$(jws_part "$TOKEN" 1)
[ -n "$CLAIMS" ] || CLAIMS='{}'
ok "claims iss, iat, exp <= iat + 60, jti, sid, acr, amr, auth_time, htm, htu, no bdy" \
    jq -e --arg sub "$A" --arg htu "/api/registry/me?probe=$PROBE" '
        (.iss|type) == "string" and .sub == $sub and .aud == "registry"
        and (.iat|type) == "number" and (.exp|type) == "number" and .exp > .iat and .exp - .iat <= 60
        and (.iat - now | fabs) < 120
        and (.jti|type) == "string" and (.jti|length) >= 8 and (.sid|type) == "string"
        and .acr == "substantial" and .amr == ["pwd","otp"]
        and (.auth_time|type) == "number" and .auth_time <= .iat
        and .htm == "GET" and .htu == $htu and (has("bdy") | not)' <<<"$CLAIMS"
[ "$CLAIMS" != '{}' ] || diag "no assertion found in the registry's view: ${REQ:-nothing}"

gw GET /.well-known/jwks.json
JWKS="$WORK/jwks.json"
cp "$RESP_BODY_FILE" "$JWKS"
ok "JWKS: 200, keys of kty EC / crv P-256 with kid, x, y and no private part" jq -e --argjson st "$STATUS" '
    $st == 200 and (.keys | length) >= 1
    and all(.keys[]; .kty == "EC" and .crv == "P-256" and (.kid|type) == "string" and (.x|type) == "string"
                     and (.y|type) == "string" and (has("d") | not))' "$JWKS"
ok "the assertion verifies with the openssl CLI against the published JWK" jws_verify_openssl "$TOKEN" "$JWKS"
FORGED="$(printf '%s' "$TOKEN" | cut -d. -f1).$(jq -c --arg b "$B" '.sub = $b' <<<"$CLAIMS" | base64 -w0 | tr '+/' '-_' | tr -d '=').$(printf '%s' "$TOKEN" | cut -d. -f3)"
if [ -n "$TOKEN" ]; then
    nok "the same signature over a payload with another sub does not verify (openssl)" jws_verify_openssl "$FORGED" "$JWKS"
else
    fail "the same signature over a payload with another sub does not verify (openssl)" "no assertion to forge"
fi
ok "darvaza verify-assertion --jwks --aud --htm --htu accepts the token" "$BUILD_DIR/darvaza" verify-assertion \
    --jwks "$JWKS" --aud registry --htm GET --htu "/api/registry/me?probe=$PROBE" "$TOKEN"
if [ -n "$TOKEN" ]; then
    nok "darvaza verify-assertion --jwks refuses the forged token" "$BUILD_DIR/darvaza" verify-assertion --jwks "$JWKS" "$FORGED"
else
    fail "darvaza verify-assertion --jwks refuses the forged token" "no assertion to forge"
fi

# ---- header hygiene ------------------------------------------------------------------------
PROBE="probe-$$-2"
gw GET "/api/registry/me?probe=$PROBE" -H "$(bearer "$TOK_A")" -H "$(probe_hdr "$PROBE")" \
    -b "__Host-darvaza=$TOK_A; other=1" -H "Darvaza-Assertion: spoofed.assertion.value" \
    -H "Darvaza-Subject: $B" -H "Darvaza-Request-Id: spoofed-rid-$$" -H "Darvaza-Purpose: spoofed"
is "$STATUS $(jb .fin)" "200 $A" "with spoofed Darvaza-* headers the person still gets only their own record"
RID=$(hdr darvaza-request-id)
REQ=$(peer_request_with "$PROBE")
H=$(jq -c '.headers // {}' <<<"${REQ:-null}" 2>/dev/null)
[ -n "$H" ] || H='{}'
is "$(jq -r 'if has("darvaza-assertion") then ([.["darvaza-subject"], .["darvaza-purpose"]] | map(select(. != null)) | length) else "no request seen" end' <<<"$H")" 0 \
    "client Darvaza-Subject / Darvaza-Purpose never reach the back end"
ok "the back end got the gateway's assertion, not the client's" bash -c '
    a=$(jq -r ".[\"darvaza-assertion\"] // empty" <<<"$1"); [ -n "$a" ] && [ "$a" != spoofed.assertion.value ] &&
    ! grep -q spoofed <<<"$a"' _ "$H"
is "$(jq -r '.["darvaza-request-id"] // empty' <<<"$H")" "$RID" \
    "the back end got the gateway's request id (the one the client sees), not the spoofed one"
unlike "$RID$GW_RID" "spoofed" "the client's Darvaza-Request-Id is not echoed either"
ok "no Authorization, no session cookie, no token reach the back end" bash -c '
    jq -e "has(\"darvaza-assertion\")" <<<"$1" >/dev/null && ! jq -e "has(\"authorization\")" <<<"$1" >/dev/null && ! grep -qF -- "$2" <<<"$1" && ! grep -q "__Host-darvaza" <<<"$1"' _ "$H" "$TOK_A"
like "$(jq -r '.forwarded // empty' <<<"$H")" 'for=' "the gateway adds Forwarded: for=..."
is "$(jws_part "$(jq -r '.["darvaza-assertion"] // empty' <<<"$H")" 1 | jq -r 'if . == null then "no assertion" else has("pur") end')" false \
    "a Darvaza-Purpose on a route without a purpose rule is ignored: no pur in the assertion"
is "$(grep -F "\"$RID\"" "$STATE_DIR/audit.log" | grep -c spoofed)" 0 "... nor in the audit lines of that request"
ok "... which are on record" grep -qF "\"$RID\"" "$STATE_DIR/audit.log"

# ---- access rules -------------------------------------------------------------------------------
gw GET /api/registry/me
problem 401 unauthenticated "no session -> 401 unauthenticated"
gw GET /api/registry/me/phones -H "$(bearer "$TOK_LOW")"
problem 403 insufficient_assurance "password-only session on the acr substantial route -> 403 insufficient_assurance"
gw GET /api/registry/me/phones -H "$(bearer "$TOK_A")"
is "$STATUS $(jb '.phones | type')" "200 array" "password + TOTP session on that route -> 200 with phones"
gw GET "/api/registry/persons/$B" -H "$(bearer "$TOK_A")"
like "$STATUS $(jb .code)" '^403 (forbidden|insufficient_assurance)$' "a citizen on the judges' cross-person route -> 403"
REFUSED_PUR="$(printf 'y%.0s' $(seq 1 1500))REFUSEDMARK"
gw GET "/api/registry/persons/$B" -H "$(bearer "$TOK_A")" -H "Darvaza-Purpose: $REFUSED_PUR"
like "$STATUS $(jb .code)" '^403 (forbidden|insufficient_assurance)$' "... also with a 1,511-character Darvaza-Purpose"
REFUSED_RID=$(hdr darvaza-request-id)
ok "... which is on record as denied" bash -c 'grep -F "\"$1\"" "$2" | grep -q "\"decision\":\"deny\""' _ "$REFUSED_RID" "$STATE_DIR/audit.log"
is "$(grep -c REFUSEDMARK "$STATE_DIR/audit.log")" 0 "... without the unchecked purpose text"
gw GET "/api/registry/me?fin=$B" -H "$(bearer "$TOK_A")"
ok "a query naming another FIN still gives only one's own record" bash -c '[ "$(jq -r .fin <<<"$1" 2>/dev/null)" = "$2" ] && ! grep -q "$3" <<<"$1"' _ "$BODY" "$A" "$B"
gw GET "/api/registry/me/../persons/$B" --path-as-is -H "$(bearer "$TOK_A")"
ok "a dot-dot path does not reach another's record ($STATUS)" bash -c '! grep -q "$1" <<<"$2"' _ "$B" "$BODY"
gw GET /api/no-such-service/x -H "$(bearer "$TOK_A")"
problem 404 not_found "a path no policy declares -> 404 not_found"

# ---- the echo back end (h2c): body digest, limits, failures -----------------------------------
PROBE="probe-$$-3"
head -c 512 /dev/urandom | base64 -w0 | head -c 600 >"$WORK/small.txt"
gw POST "/api/echo/post?probe=$PROBE" -H "$(bearer "$TOK_LOW")" -H "$(probe_hdr "$PROBE")" \
    -H 'content-type: text/plain' --data-binary "@$WORK/small.txt"
is "$STATUS" 200 "POST of 600 bytes to a route limited to 1 KiB -> 200"
REQ=$(peer_request_with "$PROBE" echo)
ECLAIMS=$(jws_part "$(jq -r '.headers["darvaza-assertion"] // empty' <<<"${REQ:-null}" 2>/dev/null)" 1)
is "$(jq -r '[.aud, .htm, .htu, .bdy, .acr] | join(" ")' <<<"${ECLAIMS:-null}" 2>/dev/null)" \
    "echo POST /api/echo/post?probe=$PROBE $(b64url_sha256 <"$WORK/small.txt") low" \
    "the echo back end's assertion: aud echo, htm POST, htu, bdy = base64url(SHA-256(body)), acr low"
# A method/URL override field would make a framework act on another request
# than the one the policy matched and the assertion signed: never passed on.
PROBE="probe-$$-override"
gw POST "/api/echo/post?probe=$PROBE" -H "$(bearer "$TOK_LOW")" -H "$(probe_hdr "$PROBE")" \
    -H 'content-type: text/plain' --data-binary 'x' -H 'X-HTTP-Method-Override: DELETE' \
    -H 'X-Original-URL: /api/echo/admin' -H 'X-Forwarded-Prefix: /admin' -H 'X-Method-Override: PUT'
REQ=$(peer_request_with "$PROBE" echo)
is "$STATUS $(jq -r '[.method, ([.headers | keys[] | select(test("override|original|^x-forwarded"))] | length)] | map(tostring) | join(" ")' <<<"${REQ:-null}" 2>/dev/null)" \
    "200 POST 0" "method-override and original-URL fields never reach the back end"
is "$(hdr x-echo-view)" "request" "a route without a release list passes the back end's own fields on"
# A release route's errors are filtered as its records are (the echo peer's
# answer is its view of the request: headers, path, assertion, none released).
gw GET "/api/echo/record?status=409" -H "$(bearer "$TOK_LOW")"
is "$STATUS $BODY" "409 {}" "a release route's JSON 409 keeps its status and only released fields"
is "$(hdr x-echo-view)|$(hdr content-type)" "|application/json" \
    "... and none of the back end's own header fields (the gateway's content type)"
gw GET "/api/echo/record" -H "$(bearer "$TOK_LOW")"
is "$STATUS $BODY $(hdr x-echo-view)" "200 {} " "a release route's 200 carries no header field of the back end's"
gw GET "/api/echo/record?status=429" -H "$(bearer "$TOK_LOW")"
is "$STATUS $(hdr x-echo-view)" "429 " "... nor its 429"
gw GET "/api/echo/record?status=404&size=64" -H "$(bearer "$TOK_LOW")"
problem 404 upstream_error_withheld "... a 404 that is not JSON: its status, not its content"
gw GET "/api/echo/record?status=302" -H "$(bearer "$TOK_LOW")"
problem 502 upstream_unavailable "... a redirect there is refused (502)"
PROBE="probe-$$-4"
head -c 2048 /dev/urandom >"$WORK/big.bin"
gw POST "/api/echo/post?probe=$PROBE" -H "$(bearer "$TOK_LOW")" -H "$(probe_hdr "$PROBE")" \
    -H 'content-type: application/octet-stream' --data-binary "@$WORK/big.bin"
problem 413 payload_too_large "POST of 2 KiB to that route -> 413 payload_too_large"
ok "the refused body never reached the back end" jq -e --arg s "$PROBE" \
    'length > 0 and (map(select(.headers["x-test-probe"] == $s or (.path | contains($s)))) | length == 0)' \
    <<<"$(peer_requests echo)"
t0=$(date +%s%N)
gw GET "/api/echo/slow?delay_ms=3000" -H "$(bearer "$TOK_LOW")"
ms=$((($(date +%s%N) - t0) / 1000000))
problem 504 upstream_timeout "a back end slower than the route's 1 s timeout -> 504 upstream_timeout"
ok "the 504 came after about the timeout ($ms ms), not after the back end's 3 s" test "$ms" -ge 900 -a "$ms" -lt 2900
# A back end that breaks off mid-body (the echo peer resets its stream after
# 64 KiB of 256 KiB): too late for a status, so the client's stream is reset
# (RST_STREAM INTERNAL_ERROR) and curl fails with 92, instead of getting an
# answer that ends cleanly and saving a truncated file as a whole one.
CUT_RC=0
"${CURL_GW[@]}" -o "$WORK/cut.bin" -H "$(bearer "$TOK_LOW")" \
    "$GW_URL/api/echo/cut?size=262144&cut=65536" 2>"$WORK/cut.err" || CUT_RC=$?
is "$CUT_RC $(($(stat -c %s "$WORK/cut.bin" 2>/dev/null || echo 0) < 262144))" "92 1" \
    "a back end that breaks off mid-body -> the client's stream is reset (curl 92), the body short"
cut_logged() { grep -q '"event":"upstream_failed".*"streaming":true' "$(gw_log)"; }
ok "... and the ops log says upstream_failed while streaming" wait_until 10 cut_logged
# A back end that sends a release route's answer over the gateway's bound
# (8 MiB) and then holds the rest (the echo peer's ?size=N&hold=M: 9 MiB
# of 16, then nothing until its client lets go; the route's timeout is 60 s):
# the client gets its 502 while the peer still holds, and the gateway is the
# one that closes the back end's stream.  curl's --max-time (30 s) is only a
# safety bound: before, the refused answer was read to the route's timeout.
ERRS0=$(metric 'darvaza_upstream_errors_total{service="echo",kind="unavailable"}')
gw GET "/api/echo/record?size=16777216&hold=9437184" -H "$(bearer "$TOK_LOW")"
problem 502 upstream_unavailable "a release answer over the bound, the rest held -> 502 upstream_unavailable"
is "$(jb .detail)" "the service answer is too large" "... whose detail says the answer is too large"
HOLD_RID=$(hdr darvaza-request-id)
hold_let_go() { grep -F '"echo_closed_unfinished"' "$WORK/echo.log" | grep -qF "rid=${HOLD_RID:-none} "; }
ok "... and the gateway closed the back end's unfinished stream (echo peer's log)" wait_until 10 hold_let_go
hold_outcome() { grep -F "\"${HOLD_RID:-none}\"" "$STATE_DIR/audit.log" | grep -F '"forward_result"'; }
wait_until 10 hold_outcome >/dev/null
is "$(hold_outcome | jq -r '[.result, .status, .sent] | map(tostring) | join(" ")' 2>/dev/null)" \
    "too_large 502 true" "... its outcome line: too_large, 502, sent"
is "$(metric 'darvaza_upstream_errors_total{service="echo",kind="unavailable"}')" "$((${ERRS0:-0} + 1))" \
    "... counted in darvaza_upstream_errors_total{kind=\"unavailable\"}"
# The peer checks hold= as it checks its other parameters.
BAD_HOLD=$(curl -sS --http2-prior-knowledge --max-time 10 -o "$WORK/hold400.json" -w '%{http_code}' \
    "http://$ECHO_ADDR/x?size=10&hold=ten")
is "$BAD_HOLD $(jq -r .code "$WORK/hold400.json" 2>/dev/null)" "400 bad_request" \
    "the echo peer answers a malformed hold= with 400 bad_request"
BAD_CUT=$(curl -sS --http2-prior-knowledge --max-time 10 -o "$WORK/cut400.json" -w '%{http_code}' \
    "http://$ECHO_ADDR/x?size=10&cut=1x")
is "$BAD_CUT $(jq -r .code "$WORK/cut400.json" 2>/dev/null)" "400 bad_request" \
    "... and a malformed cut= too"
# A client that reads nothing (every stream's window 0) and asks for three
# 6 MiB downloads at once on one connection: each forward pauses its back
# end at 4 MiB unsent, and the third pushes the connection's unsent answers
# over its budget (8 MiB): the gateway ends that connection.  The forwards
# whose writes were refused are told so inside their writes, while the
# connection still stands; it closes when the loop flushes (before, it was
# closed inside the write and the forward then went on with freed memory:
# the sanitizer build saw it).
STALLED0=$(metric 'darvaza_connections_closed_stalled_total')
GONE0=$(grep -F '"forward_result"' "$STATE_DIR/audit.log" | grep -c '"result":"client_gone"')
STALL_OUT=$(/usr/bin/python3 "$LIB_DIR/h2raw.py" --cafile "$STATE_DIR/certs/root.pem" --wait 20 \
    --count 3 --path "/api/echo/stall?size=6291456" --header "authorization: Bearer $TOK_LOW" \
    stalled-reader 2>"$WORK/stall.err")
# The three heads come in whatever order the back end answers; the end last.
is "$(grep '^STATUS' <<<"$STALL_OUT" | sort | paste -sd ' ') / $(tail -n 1 <<<"$STALL_OUT")" \
    "STATUS 1 200 STATUS 3 200 STATUS 5 200 / CLOSED" \
    "a client that reads none of three 6 MiB answers: answered, then its connection closed"
stall_logged() { grep -q '"event":"answer_buffer"' "$(gw_log)"; }
ok "... the ops log says answer_buffer" wait_until 10 stall_logged
is "$(metric 'darvaza_connections_closed_stalled_total')" "$((${STALLED0:-0} + 1))" \
    "... counted once in darvaza_connections_closed_stalled_total"
stall_outcomes() { grep -F '"path":"/api/echo/stall?size=6291456"' "$STATE_DIR/audit.log" | grep -c '"phase":"sent"'; }
stall_gone() { [ "$(grep -F '"forward_result"' "$STATE_DIR/audit.log" | grep -c '"result":"client_gone"')" -ge "$((${GONE0:-0} + 3))" ]; }
is "$(stall_outcomes)" 3 "... the three requests were on record before they left"
ok "... and each has its outcome line: client_gone" wait_until 10 stall_gone
gw GET /api/echo/get -H "$(bearer "$TOK_LOW")"
is "$STATUS" 200 "... and the gateway serves the next request"
gw GET /api/echo/get -H "$(bearer "$TOK_LOW")"
is "$STATUS" 200 "GET /api/echo/get -> 200 while the echo back end runs"
stop_echo
gw GET /api/echo/get -H "$(bearer "$TOK_LOW")"
problem 502 upstream_unavailable "with the echo back end stopped -> 502 upstream_unavailable"

# ---- HTTP/1.1 back end -------------------------------------------------------------------------
wait_until 10 curl -s -o /dev/null "http://127.0.0.1:$H1_PORT/api/files/blob.bin" || diag "nginx did not start: $(cat "$WORK/nginx-error.log")"
gw GET /api/files/blob.bin -H "$(bearer "$TOK_LOW")"
is "$STATUS $(sha256sum <"$RESP_BODY_FILE" | cut -d' ' -f1)" "200 $(sha256sum <"$WORK/www/api/files/blob.bin" | cut -d' ' -f1)" \
    "a 4 MiB file from an HTTP/1.1 back end streams through intact"
ACC=$(grep -F 'GET /api/files/blob.bin' "$WORK/nginx-access.log" 2>/dev/null | tail -n 1)
like "$ACC" '\|HTTP/1\.1\|[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "nginx got it over HTTP/1.1 with a Darvaza-Assertion"
is "$(jws_part "${ACC##*|}" 1 | jq -r '[.aud, .sub] | join(" ")' 2>/dev/null)" "files $P" "that assertion names aud files and the person"
# The portal's origin is the gateway's: a back end's page may not run scripts
# there (they could call the account API with the person's cookie and a
# matching Origin), nor open it to other origins' credentialed reads.
gw GET /api/files/page.html -H "$(bearer "$TOK_LOW")" -H 'Origin: https://evil.example'
is "$STATUS $(hdr content-type)" "200 text/html" "a back end's HTML page is forwarded"
like "$(grep -i '^content-security-policy:' "$HDRS" | tr -d '\r' | tail -n 1)" "sandbox" \
    "... with a Content-Security-Policy sandbox: its scripts do not run at the portal's origin"
is "$(grep -ci '^access-control-' "$HDRS")" 0 \
    "... and without the back end's Access-Control-* fields (no origin is let read the portal's answers)"

# ---- nghttp as the client ------------------------------------------------------------------------
NG=$(timeout 30 nghttp -H "authorization: Bearer $TOK_A" "$GW_URL/api/registry/me" 2>"$WORK/nghttp.err")
is "$(jq -r .fin <<<"$NG" 2>/dev/null)" "$A" "nghttp (HTTP/2 client) gets the person's record"
NGV=$(timeout 30 nghttp -v "$GW_URL/healthz" 2>&1)
like "$NGV" ':status: 200' "nghttp -v /healthz -> :status 200"
like "$NGV" 'darvaza-request-id: ' "with darvaza-request-id"

finish
