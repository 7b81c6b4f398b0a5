#!/usr/bin/env bash
# t_robust.sh - the general HTTP contract (request ids, problem answers,
# health, readiness, metrics, JWKS, 404, 415, Origin) and bad input of every
# kind: malformed JSON, bad UTF-8, empty bodies, huge and many headers, a
# thousand random bad requests, raw garbage on the TLS socket.  After each
# storm the gateway must still answer (DESIGN §4.1, §4.10).
. "$(dirname "$0")/lib.sh"

plan 31
stack_start
GW_PID=$(listener_pid 8443)
diag "gateway pid ${GW_PID:-unknown}"

# ---- the general contract ---------------------------------------------------------------
gw GET /healthz
is "$STATUS" 200 "GET /healthz -> 200"
RID1=$(hdr darvaza-request-id)
like "$RID1" '^[A-Za-z0-9._:-]{8,}$' "answers carry Darvaza-Request-Id ($RID1)"
gw GET /readyz
is "$STATUS" 200 "GET /readyz -> 200"
isnt "$(hdr darvaza-request-id)" "$RID1" "request ids differ between requests"
gw GET /no/such/thing
problem 404 not_found "an unknown path -> 404 not_found problem"

pw_post() { gw POST /auth/password -H 'content-type: application/json' "$@"; }
pw_post --data-binary '{"fin":"AB12CD3","password":'
problem 400 invalid_json "truncated JSON -> 400 invalid_json"
pw_post --data-binary "$(printf '{"fin":"AB12CD3","password":"\xff\xfe"}')"
problem 400 invalid_json "JSON with bad UTF-8 -> 400 invalid_json"
pw_post --data-binary ''
problem 400 invalid_json "an empty JSON body -> 400 invalid_json"
pw_post --data-binary "$(printf '%.0s[' $(seq 1 5000))"
like "$STATUS $(jb .code)" '^4[0-9][0-9] [a-z_]+$' "5000 nested arrays -> a 4xx problem, no crash ($STATUS)"
pw_post --data-binary '[1,2,3]'
like "$STATUS $(jb .code)" '^400 [a-z_]+$' "JSON that is not an object -> 400 problem"
gw POST /auth/password -H 'content-type: text/plain' --data-binary '{"fin":"AB12CD3","password":"x"}'
problem 415 unsupported_media_type "text/plain on a JSON endpoint -> 415 unsupported_media_type"
pw_post -H 'origin: https://evil.example' --data-binary '{"fin":"AB12CD3","password":"wrong-password"}'
problem 403 bad_origin "login from a foreign Origin -> 403 bad_origin"
pw_post -H "origin: $GW_ORIGIN" --data-binary '{"fin":"AB12CD3","password":"wrong-password"}'
problem 401 bad_credentials "the same from the gateway's own Origin is judged normally (401 bad_credentials)"

mgmt /metrics
ok "GET /metrics on the management listener -> 200 Prometheus text" test "$STATUS" = 200 -a -n "$(hdr content-type | grep '^text/plain')"
like "$BODY" '^darvaza_requests_total\{[^}]*status="4xx"[^}]*\} [0-9]' "metrics count requests by route and status class (the 4xx are there)"
like "$BODY" '^darvaza_logins_total\{[^}]*\} [0-9]' "metrics count logins by means and result"

# ---- invalid FIN in a path ----------------------------------------------------------------------
A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || diag "login of $A failed: $STATUS $BODY"
gw GET /api/registry/persons/AB12 -H "$(bearer "$TOK")"
problem 400 invalid_fin "a 4-character FIN in the path -> 400 invalid_fin"
gw GET /api/registry/persons/AB12CD34 -H "$(bearer "$TOK")"
problem 400 invalid_fin "an 8-character FIN in the path -> 400 invalid_fin"
gw GET /api/registry/persons/AB%C3%87CD3 -H "$(bearer "$TOK")"
problem 400 invalid_fin "a non-ASCII FIN in the path -> 400 invalid_fin"

# ---- headers: too big, too many ---------------------------------------------------------------
gw GET /healthz -H "x-big: $(head -c 65536 /dev/zero | tr '\0' 'a')"
like "$STATUS" '^(000|4[0-9][0-9])$' "a 64 KiB header is refused ($STATUS), not served"
hdrs=()
for i in $(seq 1 1000); do hdrs+=(-H "x-h$i: v"); done
gw GET /healthz "${hdrs[@]}"
like "$STATUS" '^(000|4[0-9][0-9])$' "1000 headers are refused ($STATUS), not served"
gw GET /healthz
is "$STATUS" 200 "after the oversized headers /healthz still answers"

# ---- 1000 random bad requests over one HTTP/2 connection ---------------------------------------
SEED=${ROBUST_SEED:-$(date +%s)}
diag "random requests with seed $SEED (ROBUST_SEED=$SEED to repeat)"
mkdir -p "$WORK/rand"
awk -v seed="$SEED" -v n=1000 -v dir="$WORK/rand" -v url="$GW_URL" -v ca="$STATE_DIR/certs/root.pem" '
function pick(list,   a, k) { k = split(list, a, " "); return a[int(rand() * k) + 1] }
function junk(len,   s, i, c) {
    s = ""
    for (i = 0; i < len; i++) { c = int(rand() * 94) + 33; if (c == 34 || c == 92) c = 65; s = s sprintf("%c", c) }
    return s
}
function pct(len,   s, i) { s = ""; for (i = 0; i < len; i++) s = s sprintf("%%%02X", int(rand() * 256)); return s }
BEGIN {
    srand(seed)
    for (i = 1; i <= n; i++) {
        m = pick("GET POST POST POST PUT DELETE PATCH OPTIONS BREW")
        p = pick("/auth/password /auth/register /auth/session /auth/logout /api/registry/me /api/registry/persons/ /api/echo/post /.well-known/jwks.json /metrics /x")
        r = rand()
        if (r < 0.3) p = p pct(int(rand() * 20))
        else if (r < 0.5) p = p "/" junk(int(rand() * 40))
        else if (r < 0.6) p = p "/../../" pick("etc/passwd .. %2e%2e")
        else if (r < 0.7) p = p "?" junk(int(rand() * 100))
        gsub(/[ #]/, "_", p)
        body = dir "/b" i
        printf "" > body
        kind = int(rand() * 6)
        if (kind == 0) for (j = int(rand() * 300); j > 0; j--) printf "%c", int(rand() * 256) > body
        else if (kind == 1) printf "{\"fin\":\"%s\",\"password\":\"%s\",\"otp\":%d}", junk(int(rand() * 12)), junk(8), int(rand() * 1e6) > body
        else if (kind == 2) printf "{\"fin\":%s}", pick("null true 1e999 [] {} \"\\ud800\" \"\\u0000\"") > body
        else if (kind == 3) for (j = int(rand() * 50); j > 0; j--) printf "{\"a\":" > body
        else if (kind == 4) printf "{\"document\":\"%s\",\"fin\":\"%s\",\"password\":\"%s\",\"password\":1}", junk(10), junk(7), junk(3) > body
        close(body)
        print "url = \"" url p "\""
        print "request = \"" m "\""
        print "http2"
        print "globoff"
        print "silent"
        print "cacert = \"" ca "\""
        print "max-time = 10"
        print "output = \"/dev/null\""
        print "write-out = \"%{http_code}\\n\""
        if (m != "GET" && m != "OPTIONS") print "data-binary = \"@" body "\""
        print "header = \"content-type: " pick("application/json application/json text/plain application/x-www-form-urlencoded application/json;charset=latin1 */*") "\""
        # (no value may end in a space: RFC 9113 makes that a malformed request,
        # which the HTTP/2 layer rightly resets without an answer)
        if (rand() < 0.5) print "header = \"authorization: " pick("Bearer Basic Bearer") " " junk(int(rand() * 60) + 1) "\""
        if (rand() < 0.3) print "header = \"cookie: __Host-darvaza=" junk(int(rand() * 50)) "\""
        if (rand() < 0.3) print "header = \"origin: " pick("https://evil.example null https://localhost:8443") "\""
        if (rand() < 0.2) print "header = \"darvaza-purpose: " junk(30) "\""
        if (i < n) print "next"
    }
}' >"$WORK/rand.curl"
timeout 240 curl -S -K "$WORK/rand.curl" >"$WORK/rand.codes" 2>"$WORK/rand.err"
CODES=$(sort "$WORK/rand.codes" | uniq -c | awk '{printf "%s×%s ", $2, $1}')
diag "answers: $CODES"
is "$(wc -l <"$WORK/rand.codes" | tr -d ' ')" 1000 "all 1000 random requests were answered"
is "$(grep -cvE '^[234][0-9][0-9]$' "$WORK/rand.codes")" 0 "none of them got a 5xx or no answer (000)"
gw GET /healthz
is "$STATUS" 200 "after the random requests /healthz still answers"

# ---- raw bytes on the socket ---------------------------------------------------------------------
# Random bytes after the TLS handshake (ALPN h2), the HTTP/2 preface followed
# by random frames, and a frame with a huge declared length.
for i in $(seq 1 10); do
    head -c $((RANDOM % 4096 + 1)) /dev/urandom |
        timeout 5 openssl s_client -alpn h2 -quiet -connect 127.0.0.1:8443 >/dev/null 2>&1
    { printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0'; head -c $((RANDOM % 2048 + 9)) /dev/urandom; } |
        timeout 5 openssl s_client -alpn h2 -quiet -connect 127.0.0.1:8443 >/dev/null 2>&1
done
printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0\377\377\377\1\4\0\0\0\1' |
    timeout 5 openssl s_client -alpn h2 -quiet -connect 127.0.0.1:8443 >/dev/null 2>&1
printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' |
    timeout 5 openssl s_client -alpn http/1.1 -quiet -connect 127.0.0.1:8443 >/dev/null 2>&1
head -c 3000 /dev/urandom | timeout 5 bash -c 'cat >/dev/tcp/127.0.0.1/8443' 2>/dev/null
gw GET /healthz
is "$STATUS" 200 "after raw garbage on 22 connections /healthz still answers"

# ---- a header value with raw bytes (the engine may answer or reset the stream) --------------------
gw GET /auth/session -H "$(printf 'authorization: Bearer \x01\x7f\xff')"
like "$STATUS" '^(000|4[0-9][0-9])$' "control bytes in a header value -> refused ($STATUS)"

# ---- many concurrent streams ---------------------------------------------------------------------
H2=$(timeout 120 h2load -n 2000 -c 4 -m 50 "$GW_URL/healthz" 2>&1)
like "$H2" 'status codes: 2000 2xx' "h2load: 2000 requests on 4 connections x 50 streams all 200"
[ -n "$(grep -o 'status codes.*' <<<"$H2")" ] && diag "$(grep -E 'requests:|status codes' <<<"$H2")"

# ---- the same process, still healthy --------------------------------------------------------------
is "$(listener_pid 8443)" "$GW_PID" "the same gateway process is listening as at the start"
gw GET /readyz
is "$STATUS" 200 "/readyz -> 200 at the end"

finish
