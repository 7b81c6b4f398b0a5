#!/usr/bin/env bash
# cluster.sh - the demo cluster: two darvazad instances behind haproxy,
# sharing their ephemeral state in Redis (a replica, three sentinels) and
# their accounts in PostgreSQL, with the peers of the demo stack.
#
#   demo/cluster.sh run [STATE]       what `make demo-cluster` runs: start, print a
#                                     walk-through, wait in the foreground; Ctrl-C stops all
#   demo/cluster.sh start STATE       start everything (returns when all is ready)
#   demo/cluster.sh stop STATE        stop everything
#   demo/cluster.sh status STATE      which processes run
#   demo/cluster.sh kill-a STATE      kill -9 instance A (tests: a crashed host)
#   demo/cluster.sh start-a STATE     start instance A again
#   demo/cluster.sh redis-stop|redis-start STATE   all of Redis (master, replica,
#                                     sentinels): the state is unreachable, then back
#                                     empty (no persistence)
#   demo/cluster.sh pg-stop|pg-start STATE         PostgreSQL alone
#
# STATE is the demo stack's directory (default build/demo: the same peers,
# people.json and certs/root.pem as `make demo`); the cluster's own files are
# in STATE/cluster (configs of the instances, the session ticket key they
# share in tickets/, Redis, haproxy, logs, pids) and
# STATE/pg (the PostgreSQL cluster).  Instance A is the stack's gateway
# (demo/stack.sh with demo/cluster_config.sh as its CONFIG_HOOK), B a second
# darvazad from the same config with its own ports and audit chain.
#
# Ports: haproxy 8443 and 8444 (the card listener); A 8451 (card 8461,
# management 9181), B 8452 (card 8462, management 9182);
# Redis 9130, sentinels 9131-9133, replica 9134; PostgreSQL 9140; the
# stack's peers as in demo/stack.sh.
#
# Environment: BUILD_DIR (build), CLUSTER_STORE (redis|memory; memory: every
# instance keeps its own sessions - the state before the shared store).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
GW_BIN="$BUILD_DIR/darvazad"
export CLUSTER_STORE=${CLUSTER_STORE:-redis}

csay() { echo "cluster: $*"; }
cdie() { echo "cluster: error: $*" >&2; exit 1; }

. "$ROOT/demo/cluster_services.sh"

usage() {
    echo "usage: $0 run [STATE] | start|stop|status|kill-a|start-a|redis-stop|redis-start|pg-stop|pg-start STATE" >&2
    exit 2
}

CLUSTER_PORTS=("$REDIS_PORT Redis master" "${SENTINEL_PORTS[0]} sentinel 1" "${SENTINEL_PORTS[1]} sentinel 2"
    "${SENTINEL_PORTS[2]} sentinel 3" "$REDIS_REPLICA_PORT Redis replica" "$PG_PORT PostgreSQL"
    "$HAPROXY_PORT haproxy" "8444 haproxy (card listener)" "8452 instance B"
    "8462 instance B card listener" "9182 instance B management")

check_cluster_ports() {
    local pw busy=0
    for pw in "${CLUSTER_PORTS[@]}"; do
        if [ -n "$(ss -ltnH "sport = :${pw%% *}" 2>/dev/null)" ]; then
            echo "cluster: error: port ${pw%% *} (${pw#* }) is already taken" >&2
            busy=1
        fi
    done
    [ $busy -eq 0 ] || cdie "nothing was started; free the port(s) above (is make demo running?)"
}

ready() { # ready URL: /readyz answers 200
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ]
}

# The session ticket key both instances share (demo/cluster_config.sh puts
# it on their public listeners, docs/operations.md "Several instances"):
# made once, 0600, kept across restarts, so a browser's TLS session resumes
# on either instance and after a restart.
ticket_key() {
    local f="$CLUSTER_DIR/tickets/current.key"
    [ -s "$f" ] && return 0
    mkdir -p "$CLUSTER_DIR/tickets"
    chmod 700 "$CLUSTER_DIR/tickets"
    (umask 077 && openssl rand 80 >"$f.tmp") && mv "$f.tmp" "$f"
}

# Instance B: A's config with B's ports and audit chain.
start_b() {
    mkdir -p "$CLUSTER_DIR/b"
    cp "$STATE/darvaza.yaml" "$CLUSTER_DIR/b/darvaza.yaml"
    "$ROOT/demo/cluster_config.sh" "$CLUSTER_DIR/b/darvaza.yaml" b
    svc_launch darvazad-b "$GW_BIN" -c "$CLUSTER_DIR/b/darvaza.yaml"
    svc_wait darvazad-b 60 ready http://127.0.0.1:9182/readyz
    csay "instance B on https://localhost:8452 (pid $(svc_pid darvazad-b))"
}

# Instance A again after kill-a: as demo/stack.sh starts it (same pid file).
start_a() {
    local pidf="$STATE/pids/darvazad.pid" i
    rm -f "$pidf"
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$GW_BIN" -c "$STATE/darvaza.yaml" \
        >>"$STATE/logs/darvazad.log" 2>&1 </dev/null &
    for i in $(seq 1 300); do
        ready http://127.0.0.1:9181/readyz && { csay "instance A on https://localhost:8451"; return 0; }
        sleep 0.2
    done
    cdie "instance A did not become ready (see $STATE/logs/darvazad.log)"
}

kill_a() {
    local pid
    pid=$(cat "$STATE/pids/darvazad.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || cdie "instance A does not run"
    kill -KILL "$pid"
    csay "instance A (pid $pid) killed with SIGKILL"
}

do_start() {
    local keep=
    [ -x "$GW_BIN" ] || cdie "no $GW_BIN (make first, or set BUILD_DIR)"
    mkdir -p "$CLUSTER_DIR"/{logs,pids}
    [ -n "$(svc_pid haproxy)" ] && cdie "the cluster already runs for $STATE; stop it first: demo/cluster.sh stop $STATE"
    check_cluster_ports
    ticket_key || cdie "cannot make the session ticket key in $CLUSTER_DIR/tickets"
    # A start that fails half-way stops what it started.
    trap '[ $? -eq 0 ] || { echo "cluster: start failed, stopping what runs" >&2; do_stop >&2 || true; }' EXIT
    pg_up
    [ "$CLUSTER_STORE" != redis ] || redis_up
    # The accounts: PostgreSQL.  With a single-instance demo's SQLite accounts
    # (people.json was made with them) they are copied over once A made the
    # schema; with only the cluster's own history, PostgreSQL keeps them.
    if [ -f "$STATE/accounts.db" ]; then
        :
    elif [ -s "$STATE/people.json" ] && [ -e "$STATE/.set-up-complete" ]; then
        keep=1
    elif [ "$(pg_accounts)" != 0 ]; then
        # Accounts whose passwords nobody knows any more (people.json is
        # made again): the stack registers everyone afresh.
        pg_sql darvaza "DELETE FROM accounts" >/dev/null
    fi
    CONFIG_HOOK="$ROOT/demo/cluster_config.sh" PEOPLE_KEEP=$keep \
        ACCOUNTS_PG="conninfo_file: $CLUSTER_DIR/pg.conninfo, pool: 4, connect_timeout: 2s, statement_timeout: 2s" \
        "$ROOT/demo/stack.sh" start "$STATE" || cdie "the demo stack (instance A and the peers) did not start"
    if [ -f "$STATE/accounts.db" ]; then
        pg_import_sqlite "$STATE/accounts.db"
        csay "accounts of $STATE/accounts.db copied into PostgreSQL ($(pg_accounts) rows)"
    fi
    start_b
    haproxy_up
    trap - EXIT
    csay "up: state in $STATE and $CLUSTER_DIR"
}

do_stop() {
    # The load balancer first (no new connections), then the instances
    # (demo/stack.sh stops A with the peers), then what they use.
    svc_stop haproxy
    svc_stop darvazad-b
    "$ROOT/demo/stack.sh" stop "$STATE" || true
    redis_down
    pg_down
}

do_status() {
    local n rc=0
    "$ROOT/demo/stack.sh" status "$STATE" || rc=1
    for n in darvazad-b haproxy $([ "$CLUSTER_STORE" != redis ] || echo redis redis-replica sentinel1 sentinel2 sentinel3); do
        if [ -n "$(svc_pid "$n")" ]; then csay "$n runs (pid $(svc_pid "$n"))"; else csay "$n is down"; rc=1; fi
    done
    if pg_running; then csay "PostgreSQL runs"; else csay "PostgreSQL is down"; rc=1; fi
    return $rc
}

walkthrough() {
    local CA=$STATE/certs/root.pem P FIN PASSWORD SECRET
    P=$(jq -c 'map(select(.registered == true))[0]' "$STATE/people.json")
    FIN=$(jq -r .fin <<<"$P")
    PASSWORD=$(jq -r .password <<<"$P")
    SECRET=$(jq -r .totp_secret <<<"$P")
    cat <<EOF

================================================================================
 darvaza demo cluster is up                            (Ctrl-C stops everything)
================================================================================
 haproxy     https://localhost:8443   (TLS passthrough, health: GET /readyz on :9181/:9182)
 instance A  https://localhost:8451   management http://127.0.0.1:9181
 instance B  https://localhost:8452   management http://127.0.0.1:9182
 Redis       127.0.0.1:9130 (replica :9134, sentinels :9131-9133, master name darvaza)
 PostgreSQL  127.0.0.1:9140 (accounts; data $PG_DIR)
 peers       as make demo (registry :9101, MSSP :9103, ...); people: $STATE/people.json
 logs        $CLUSTER_DIR/logs/, $STATE/logs/; audit: $CLUSTER_DIR/a/ and $CLUSTER_DIR/b/
             (access logs: $CLUSTER_DIR/a/logs/ and $CLUSTER_DIR/b/logs/)

CA=$CA FIN=$FIN PASSWORD='$PASSWORD' SECRET=$SECRET
A=https://localhost:8451 B=https://localhost:8452 LB=https://localhost:8443

# 1. log in on instance A (the Origin is the cluster's public one, haproxy's)
TOKEN=\$(curl -s --cacert \$CA -H "Origin: \$LB" -H 'content-type: application/json' \\
  -d "{\"fin\":\"\$FIN\",\"password\":\"\$PASSWORD\",\"otp\":\"\$(oathtool --totp -b \$SECRET)\"}" \\
  \$A/auth/password | jq -r .token); echo "\$TOKEN"

# 2. use the session on instance B: the session lives in Redis, not in A
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$B/api/registry/me | jq
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$B/auth/session | jq

# 3. the same through haproxy, a few times (leastconn spreads new connections)
for i in 1 2 3 4; do curl -s --cacert \$CA -o /dev/null -w '%{http_code} ' \\
  -H "Authorization: Bearer \$TOKEN" \$LB/api/registry/me; done; echo

# 4. one key set: both instances publish the same JWKS
diff <(curl -s --cacert \$CA \$A/.well-known/jwks.json) <(curl -s --cacert \$CA \$B/.well-known/jwks.json) && echo same JWKS

# 5. log out on B: the token is refused on A at once
curl -s --cacert \$CA -X POST -H "Origin: \$LB" -H "Authorization: Bearer \$TOKEN" \\
  -o /dev/null -w '%{http_code}\n' \$B/auth/logout                                  # 204
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$A/auth/session | jq .code  # "unauthenticated"

# 6. what each instance wrote: one audit chain each, every line with its instance
tail -n 2 $CLUSTER_DIR/a/audit.log | jq -c '{instance, type, fin, status}'
tail -n 2 $CLUSTER_DIR/b/audit.log | jq -c '{instance, type, fin, status}'
$BUILD_DIR/darvaza audit verify $CLUSTER_DIR/a $CLUSTER_DIR/b --jwks <(curl -s --cacert \$CA \$LB/.well-known/jwks.json)

# 7. the shared state, and the balancer's view of the instances
REDISCLI_AUTH=\$(cat $CLUSTER_DIR/redis/password) redis-cli -p 9130 dbsize
redis-cli -p 9131 sentinel get-master-addr-by-name darvaza
curl -s http://127.0.0.1:9181/readyz; curl -s http://127.0.0.1:9182/readyz

# 8. a crashed instance: haproxy sends everyone to B (and A comes back)
demo/cluster.sh kill-a $STATE; sleep 2
curl -s --cacert \$CA -o /dev/null -w '%{http_code}\n' \$LB/healthz
demo/cluster.sh start-a $STATE

# 9. one TLS session for both instances (one ticket key in $CLUSTER_DIR/tickets):
#    made on B (sleep: the ticket comes after the handshake), resumed on A
sleep 1 | openssl s_client -connect localhost:8452 -CAfile \$CA -alpn h2 -sess_out $CLUSTER_DIR/walkthrough-tls.sess 2>/dev/null | grep -E '^(New|Reused),'
openssl s_client -connect localhost:8451 -CAfile \$CA -alpn h2 -sess_in $CLUSTER_DIR/walkthrough-tls.sess </dev/null 2>/dev/null | grep -E '^(New|Reused),'
================================================================================
EOF
}

do_run() {
    local stopping=0
    trap 'exit 130' INT
    trap 'exit 143' TERM
    do_start
    trap '[ $stopping -eq 1 ] || { stopping=1; echo; do_stop || true; }' EXIT
    walkthrough
    while do_status >/dev/null 2>&1; do
        sleep 2 &
        wait $! || true
    done
    echo "cluster.sh: a process exited; see $CLUSTER_DIR/logs/ and $STATE/logs/" >&2
    do_status >&2 || true
    exit 1
}

[ $# -ge 1 ] || usage
cmd=$1
if [ "$cmd" = run ]; then
    [ $# -le 2 ] || usage
    STATE_ARG=${2:-build/demo}
else
    [ $# -eq 2 ] || usage
    STATE_ARG=$2
fi
mkdir -p "$STATE_ARG"
STATE=$(cd "$STATE_ARG" && pwd)
export CLUSTER_DIR="$STATE/cluster"
PG_DIR="$STATE/pg"
mkdir -p "$CLUSTER_DIR"/{logs,pids}
case $cmd in
run) do_run ;;
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
kill-a) kill_a ;;
start-a) start_a ;;
redis-stop) redis_down ;;
redis-start) redis_up ;;
pg-stop) pg_down ;;
pg-start) pg_up ;;
*) usage ;;
esac
