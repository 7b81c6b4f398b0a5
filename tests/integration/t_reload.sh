#!/usr/bin/env bash
# t_reload.sh - SIGHUP (demo/stack.sh reload): a broken policy is reported with
# file:line and the old policies keep serving; a fixed policy is applied; an
# open HTTP/2 connection survives the reload (DESIGN §4.9, §4.10).
. "$(dirname "$0")/lib.sh"

plan 14
stack_start
GW_PID=$(listener_pid 8443)
POL="$STATE_DIR/policies"
[ -d "$POL" ] || bail "the stack has no $POL"
A=$(pick_person registered 0)
login_person "$A"
TOK=$LOGIN_TOKEN
[ -n "$TOK" ] || bail "cannot log in $A: $STATUS $BODY"

gw GET /api/reload-test/x -H "$(bearer "$TOK")"
problem 404 not_found "before the reload /api/reload-test/x is not routed (404 not_found)"

# logs_mention TEXT: some log file of the stack contains TEXT.
logs_mention() { grep -rsqF -- "$1" "$STATE_DIR" --include='*.log' --include='*.err' --include='*.out'; }

# ---- a broken policy -----------------------------------------------------------------------------
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
ok "the broken policy is logged with file:line (zz-broken.yaml:7)" wait_until 10 logs_mention "zz-broken.yaml:7"
gw GET /api/registry/me -H "$(bearer "$TOK")"
is "$STATUS $(jb .fin)" "200 $A" "the old policies keep serving after the bad reload"
gw GET /api/broken/x -H "$(bearer "$TOK")"
problem 404 not_found "nothing of the broken file is applied"
is "$(listener_pid 8443)" "$GW_PID" "the same gateway process listens (no restart)"

# ---- a good policy, with an HTTP/2 connection open across the reload -----------------------------------
rm -f "$POL/zz-broken.yaml"
# One curl, one connection, four requests three seconds apart (--rate).
curl --http2 -sS --cacert "$STATE_DIR/certs/root.pem" --rate 20/m --max-time 60 \
    -w '%{num_connects} %{http_code}\n' -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "$GW_URL/healthz" "$GW_URL/healthz" "$GW_URL/healthz" "$GW_URL/healthz" \
    >"$WORK/conn.out" 2>"$WORK/conn.err" &
CURL_PID=$!
OWN_PIDS+=("$CURL_PID")
sleep 1
cat >"$POL/zz-reload.yaml" <<'EOF'
# added by t_reload.sh: an upstream where nothing listens, so the new route answers 502
service: reloadtest
registered_as: "DIS-9997"
upstream: http://127.0.0.1:9
upstream_http: http1
routes:
  - path: /api/reload-test/x
    methods: [GET]
    acr: low
limits: { body: 1KiB, timeout: 2s }
EOF
stack_reload
route_live() { gw GET /api/reload-test/x -H "$(bearer "$TOK")"; [ "$STATUS" = 502 ]; }
wait_until 10 route_live
problem 502 upstream_unavailable "after fixing and reloading, the new route is live (502 from its dead upstream)"
gw GET /api/registry/me -H "$(bearer "$TOK")"
is "$STATUS $(jb .fin)" "200 $A" "and the registry route still serves"

wait "$CURL_PID" 2>/dev/null
is "$(awk '{print $2}' "$WORK/conn.out" | tr '\n' ' ')" "200 200 200 200 " "4 requests on the open connection across the reload: all 200"
is "$(awk '{print $1}' "$WORK/conn.out" | tr '\n' ' ')" "1 0 0 0 " "they used one connection (1 connect, then 0): it survived the reload"
is "$(listener_pid 8443)" "$GW_PID" "still the same gateway process"

# ---- a setting only a restart applies: said, not silently ignored -------------------------------
CFG="$STATE_DIR/darvaza.yaml"
sed -i 's/^\(  listen: 127\.0\.0\.1:\)9180/\19181/' "$CFG"
grep -q '127.0.0.1:9181' "$CFG" || bail "could not change management.listen in $CFG"
stack_reload
restart_warned() { # the log has non-JSON lines too (start-up), so grep the one line
    grep -F '"event":"reload_needs_restart"' "$(gw_log)" | grep -F '"key":"management.listen"' |
        grep -qF '"level":"warn"'
}
ok "a changed management.listen is logged as reload_needs_restart (warning, naming the key)" \
    wait_until 10 restart_warned
mgmt /healthz
is "$STATUS" 200 "... and the management listener still answers where it was bound at start"

# The account store hashes with the cost it was opened with: a changed cost is said too.
sed -i 's/^\(  argon2_iterations:\) [0-9]*/\1 4/' "$CFG"
grep -q '^  argon2_iterations: 4' "$CFG" || bail "could not change accounts.argon2_iterations in $CFG"
stack_reload
argon2_warned() {
    grep -F '"event":"reload_needs_restart"' "$(gw_log)" | grep -F '"key":"accounts.argon2"' |
        grep -qF '"level":"warn"'
}
ok "a changed argon2id cost is logged as reload_needs_restart (key accounts.argon2)" \
    wait_until 10 argon2_warned

finish
