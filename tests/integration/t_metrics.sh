#!/usr/bin/env bash
# t_metrics.sh - the metrics an operator scrapes (docs/metrics.md): served on
# the management listener over plain HTTP/1.1 and refused on the public one;
# series that keep their labels when a policy is edited and reloaded; build
# info; reload success and failure; certificate expiry against openssl's
# reading of the certificate; the upstream duration histogram; and a
# management listener that refuses junk without going down.
. "$(dirname "$0")/lib.sh"

plan 47
# management.hosts lists one name besides IP addresses and localhost.
mkdir -p "$WORK"
cat >"$WORK/mgmt_hosts.sh" <<'SH'
#!/bin/sh
sed -i '/^management:/a\  hosts: [metrics.test]' "$1"
SH
chmod +x "$WORK/mgmt_hosts.sh"
stack_start CONFIG_HOOK="$WORK/mgmt_hosts.sh"
start_echo || bail "the echo peer did not start on $ECHO_ADDR"
GW_PID=$(listener_pid 8443)
POL="$STATE_DIR/policies"
[ -f "$POL/echo.yaml" ] || bail "the stack has no $POL/echo.yaml"

# mgmt_code: the problem code of the last answer (jq), with its status.
mgmt_problem() {
    local want_status=$1 want_code=$2 desc=$3
    is "$STATUS $(hdr content-type | cut -d';' -f1) $(jb .code)" \
        "$want_status application/problem+json $want_code" "$desc"
}
# raw_mgmt BYTES: send BYTES (printf format) to the management port and print
# the first line of the answer (python3: no netcat in the image).
raw_mgmt() {
    python3 - "$1" "${MGMT_URL#http://}" <<'PY'
import socket, sys
data = sys.argv[1].encode().decode('unicode_escape').encode('latin-1')
host, port = sys.argv[2].rsplit(':', 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
buf = b''
while True:
    b = s.recv(65536)
    if not b:
        break
    buf += b
print(buf.split(b'\r\n', 1)[0].decode('latin-1'))
PY
}

# ---- where /metrics is served ---------------------------------------------------------------
gw GET /metrics
problem 404 not_found "public listener: GET /metrics -> 404 not_found (management.public_metrics is false)"
gw GET /healthz
is "$STATUS" 200 "public listener still answers /healthz"
OUT=$(curl --http1.1 -sS --max-time 10 -o "$WORK/m.txt" -w '%{http_code} %{http_version} %{content_type}' "$MGMT_URL/metrics")
is "$OUT" "200 1.1 text/plain; version=0.0.4; charset=utf-8" "management listener: GET /metrics over HTTP/1.1 -> 200 Prometheus text"
like "$(cat "$WORK/m.txt")" '# TYPE darvaza_requests_total counter' "the scrape has typed families"
# A counter is typed counter: every family named *_total says so.
WRONG=$(awk '$1 == "#" && $2 == "TYPE" && $3 ~ /_total$/ && $4 != "counter" { print $3 }' "$WORK/m.txt")
is "$WRONG" "" "every *_total family is typed counter"
OUT=$(curl --http1.0 -sS --max-time 10 -o /dev/null -w '%{http_code}' "$MGMT_URL/healthz")
is "$OUT" 200 "an HTTP/1.0 health check (no Host) -> 200"
mgmt /readyz
is "$STATUS $(jb .status)" "200 ready" "management listener: /readyz -> 200 ready"
mgmt /nothing
mgmt_problem 404 not_found "management listener: an unknown path -> 404 not_found"
mgmt /metrics -X POST
mgmt_problem 405 method_not_allowed "management listener: POST /metrics -> 405 method_not_allowed"
is "$(hdr allow)" "GET" "with Allow: GET"
# h2c is not spoken there: a prior-knowledge preface is a malformed HTTP/1.1 request.
is "$(raw_mgmt 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')" "HTTP/1.1 400 Bad Request" \
    "an HTTP/2 (h2c) preface gets an HTTP/1.1 400 (h2c is not served; docs/metrics.md)"

# ---- which Host the management listener answers (DNS rebinding) ------------------------------
# A page on evil.example, rebound to the listener's address, makes the
# operator's browser send that name: refused before anything is read.
MGMT_PORT=${MGMT_URL##*:}
is "$(raw_mgmt "GET /metrics HTTP/1.1\\r\\nHost: evil.example:$MGMT_PORT\\r\\n\\r\\n")" \
    "HTTP/1.1 421 Misdirected Request" "management listener: Host evil.example (a rebound name) -> 421"
curl --http1.1 -sS --max-time 10 -o "$RESP_BODY_FILE" -D "$HDRS" -H "Host: evil.example:$MGMT_PORT" \
    "$MGMT_URL/metrics" >/dev/null 2>&1
STATUS=$(head -n 1 "$HDRS" | awk '{print $2}')
mgmt_problem 421 misdirected_request "the refusal is 421 misdirected_request (problem+json)"
unlike "$(cat "$RESP_BODY_FILE")" 'darvaza_' "and it carries no metric"
is "$(raw_mgmt "GET /readyz HTTP/1.0\\r\\nHost: evil.example\\r\\n\\r\\n")" \
    "HTTP/1.1 421 Misdirected Request" "/readyz for Host evil.example, over HTTP/1.0 too -> 421"
is "$(raw_mgmt "GET /healthz HTTP/1.1\\r\\nHost: localhost:$MGMT_PORT\\r\\n\\r\\n")" \
    "HTTP/1.1 200 OK" "Host localhost -> 200"
is "$(raw_mgmt "GET /healthz HTTP/1.1\\r\\nHost: METRICS.test:$MGMT_PORT\\r\\n\\r\\n")" \
    "HTTP/1.1 200 OK" "Host metrics.test (listed in management.hosts, any case) -> 200"
is "$(raw_mgmt "GET /healthz HTTP/1.1\\r\\nHost: metrics.test.evil.example\\r\\n\\r\\n")" \
    "HTTP/1.1 421 Misdirected Request" "Host metrics.test.evil.example (a listed name as a prefix) -> 421"

# ---- junk on the management listener ----------------------------------------------------------
is "$(raw_mgmt 'GET /metrics\r\n\r\n')" "HTTP/1.1 400 Bad Request" "a request line without a version -> 400"
curl --http1.1 -sS --max-time 10 -o "$RESP_BODY_FILE" -D "$HDRS" "$MGMT_URL/metrics" -H "X-Pad: $(head -c 9000 /dev/zero | tr '\0' a)" >/dev/null 2>&1
STATUS=$(head -n 1 "$HDRS" | awk '{print $2}')
mgmt_problem 431 request_header_too_large "a 9000-byte header -> 431 request_header_too_large"
is "$(raw_mgmt 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')" "HTTP/1.1 400 Bad Request" "two Host fields -> 400"
is "$(raw_mgmt 'GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')" \
    "HTTP/1.1 400 Bad Request" "a request with a body (Transfer-Encoding) -> 400"
mgmt /healthz
is "$STATUS $(jb .status)" "200 ok" "after the junk the management listener still answers /healthz"
is "$(listener_pid 8443)" "$GW_PID" "and the same gateway process is running"

# ---- build info -------------------------------------------------------------------------------
VERSION=$(cat VERSION)
# The commit the Makefile stamped this build with (git rev-parse --short HEAD
# at build time); it is HEAD unless commits came after the build.
COMMIT=$(cat "$BUILD_DIR/commit-stamp" 2>/dev/null || git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$COMMIT" = "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" ] || diag "the build is of commit $COMMIT, not HEAD: rebuild to test HEAD"
is "$(metric "darvaza_build_info{version=\"$VERSION\",commit=\"$COMMIT\"}")" 1 \
    "darvaza_build_info{version=\"$VERSION\",commit=\"$COMMIT\"} 1"

# ---- certificate expiry -------------------------------------------------------------------------
CERT="$STATE_DIR/certs/gateway-tls.pem"
SUBJ=$(openssl x509 -in "$CERT" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
SERIAL=$(openssl x509 -in "$CERT" -noout -serial | sed 's/^serial=//')
NOT_AFTER=$(date -u -d "$(openssl x509 -in "$CERT" -noout -enddate | sed 's/^notAfter=//')" +%s)
is "$(metric "darvaza_certificate_expiry_timestamp_seconds{role=\"tls_server\",subject=\"$SUBJ\",serial=\"$SERIAL\"}")" \
    "$NOT_AFTER" "TLS certificate expiry = openssl's notAfter ($NOT_AFTER)"

# ---- labels that survive a policy edit ------------------------------------------------------------
A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || bail "cannot log in $A: $STATUS $BODY"
SERIES='darvaza_requests_total{service="echo",route="/api/echo/get",method="GET",status="2xx"}'
gw GET /api/echo/get -H "$(bearer "$TOK")"
is "$STATUS" 200 "a forward to the echo back end -> 200"
is "$(metric "$SERIES")" 1 "counted as $SERIES"
is "$(metric 'darvaza_upstream_request_duration_seconds_count{service="echo"}')" 1 \
    "the upstream histogram counts the forward (service=echo)"
like "$(metric 'darvaza_upstream_request_duration_seconds_bucket{service="echo",le="10"}')" '^1$' \
    "its 10 s bucket holds it"

# ---- what the lower layers count -------------------------------------------------------------------
like "$(metric darvaza_audit_fsync_duration_seconds_count)" '^[1-9][0-9]*$' \
    "the audit fdatasync histogram has counted the logins' and the forward's batches"
is "$(metric 'darvaza_store_quota{kind="sessions"}')" "$(awk '/^store:/ { s = 1 } s && $1 == "sessions:" { print $2; exit }' "$STATE_DIR/darvaza.yaml")" \
    "darvaza_store_quota{kind=sessions} is the config's store.sessions"
like "$(metric 'darvaza_store_entries{kind="sessions"}')" '^[1-9][0-9]*$' "the live session is counted in darvaza_store_entries{kind=sessions}"
like "$(metric darvaza_pool_queue_depth) $(metric darvaza_pool_rejected_total) $(metric 'darvaza_ocsp_cache_lookups_total{result="miss"}')" \
    '^[0-9]+ [0-9]+ [0-9]+$' "pool queue depth and rejects, OCSP cache lookups are exposed"

{ echo "# a comment line added by t_metrics.sh: the routes below move one line down"; cat "$POL/echo.yaml"; } >"$WORK/echo.yaml"
cp "$WORK/echo.yaml" "$POL/echo.yaml"
stack_reload
reload_ok_is() { [ "$(metric 'darvaza_config_reloads_total{result="success"}')" = "$1" ]; }
ok "the reload is counted as a success" wait_until 15 reload_ok_is 1
gw GET /api/echo/get -H "$(bearer "$TOK")"
is "$(metric "$SERIES")" 2 "after the edit and the reload the same series counts on (2)"
unlike "$(curl --http1.1 -sS --max-time 10 "$MGMT_URL/metrics")" 'route="[^"]*(\.yaml|:[0-9])' \
    "no route label carries a policy file or line"

# ---- a failed reload, then a good one ------------------------------------------------------------
cat >"$POL/zz-broken.yaml" <<'EOF'
service: broken
registered_as: "DIS-9998"
upstream: http://127.0.0.1:9
routes:
  - path: /api/broken/x
    methods: [GET]
    acr: ultra-high
EOF
stack_reload
reload_failed_is() { [ "$(metric 'darvaza_config_reloads_total{result="failure"}')" = "$1" ]; }
ok "a broken policy: the failure counter goes to 1" wait_until 15 reload_failed_is 1
is "$(metric darvaza_config_last_reload_successful)" 0 "darvaza_config_last_reload_successful is 0"
BEFORE=$(date +%s)
rm -f "$POL/zz-broken.yaml"
stack_reload
ok "fixed and reloaded: the success counter goes to 2" wait_until 15 reload_ok_is 2
is "$(metric darvaza_config_last_reload_successful)" 1 "darvaza_config_last_reload_successful is 1 again"
TS=$(metric darvaza_config_last_reload_success_timestamp_seconds)
ok "the last-success timestamp ($TS) is not older than the good reload ($BEFORE)" test "${TS:-0}" -ge "$BEFORE"

# ---- a service's cap on requests in flight (docs/policies.md) -----------------------------------
# A cap of 1: one request held at the back end (its audit line says it is
# on its way), the next one refused 503 with Retry-After and counted.  Its
# reason is the service's cap or the caller's share (the two requests may
# land on one worker or two), so the detail is checked up to where the two
# differ (" from this caller" follows) and the count sums both.
sed -i 's/^limits: { body: 1KiB, timeout: 1s }$/limits: { body: 1KiB, timeout: 1s, in_flight: 1 }/' "$POL/echo.yaml"
stack_reload
ok "a cap of 1 request in flight on echo: reloaded" wait_until 15 reload_ok_is 3
"${CURL_GW[@]}" -o /dev/null -H "$(bearer "$TOK")" "$GW_URL/api/echo/record?delay_ms=10000" &
SLOW_PID=$!
slow_sent() { grep -F '"type":"forward"' "$STATE_DIR/audit.log" | grep -F '/api/echo/record' | grep -qF '"decision":"allow"'; }
wait_until 15 slow_sent || diag "the held request's audit line did not appear"
gw GET /api/echo/get -H "$(bearer "$TOK")"
problem 503 service_unavailable "a second request while one is in flight -> 503 service_unavailable"
is "$(hdr retry-after) $(jb .detail | cut -c1-43)" "1 the service has too many requests in flight" \
    "... with Retry-After: 1 and the detail saying why"
refused_sum() {
    local a b
    a=$(metric 'darvaza_forward_refused_total{service="echo",reason="in_flight"}')
    b=$(metric 'darvaza_forward_refused_total{service="echo",reason="in_flight_caller"}')
    echo $((${a:-0} + ${b:-0}))
}
is "$(refused_sum)" 1 "... counted in darvaza_forward_refused_total{service=echo}"
kill "$SLOW_PID" 2>/dev/null
wait "$SLOW_PID" 2>/dev/null

finish
