# tests/integration/cluster.sh - the demo cluster for integration scripts
# (sourced after lib.sh): demo/cluster.sh into STATE_DIR - PostgreSQL,
# Redis with its replica and sentinels, instance A (the stack's gateway,
# with the peers), instance B and haproxy - stopped by the EXIT trap before
# lib.sh's cleanup, whatever happens.
#
#   cluster_start [VAR=VALUE...]   start it (extra environment for demo/cluster.sh
#                                  and demo/stack.sh, e.g. LOCKOUT_DURATION=5s)
#   cluster_stop                   stop everything
#   cluster_ctl CMD                demo/cluster.sh CMD STATE_DIR (kill-a, start-a,
#                                  redis-stop, redis-start, pg-stop, pg-start)
#   on A|B|LB CMD...               run CMD (gw, gw_json, login...) against instance
#                                  A, B or haproxy
#   mgmt_of A|B PATH               GET PATH on that instance's management listener
#   metric_of A|B SERIES           one sample of that instance's /metrics
#   cluster_redis_cli ARGS...      redis-cli on the master with the cluster's password
#
# Ports: haproxy 8443, A 8451 (management 9181), B 8452 (management 9182),
# Redis 9130 (sentinels 9131-9133, replica 9134), PostgreSQL 9140.

A_URL=https://localhost:8451
B_URL=https://localhost:8452
LB_URL=https://localhost:8443
A_MGMT=http://127.0.0.1:9181
B_MGMT=http://127.0.0.1:9182
GW_ORIGIN=https://localhost:8443
GW_URL=$A_URL
CLUSTER_UP=0
CLUSTER_DIR="$STATE_DIR/cluster"

cluster_start() {
    local log="$WORK/cluster-start.log"
    CLUSTER_UP=1
    if ! env BUILD_DIR="$BUILD_DIR" EXTRA_POLICIES="${EXTRA_POLICIES:-$ROOT/tests/integration/policies}" \
        STARTS_PER_ADDRESS=100000 QR_PENDING_PER_ADDRESS=100000 \
        "$@" timeout 180 "$ROOT/demo/cluster.sh" start "$STATE_DIR" >"$log" 2>&1; then
        diag "demo/cluster.sh start failed:
$(tail -n 30 "$log")"
        bail "the cluster did not start"
    fi
    PEOPLE="$STATE_DIR/people.json"
    [ -f "$PEOPLE" ] || bail "the cluster wrote no $PEOPLE"
}

cluster_stop() {
    [ "$CLUSTER_UP" = 1 ] || return 0
    CLUSTER_UP=0
    timeout 90 "$ROOT/demo/cluster.sh" stop "$STATE_DIR" >"$WORK/cluster-stop.log" 2>&1 ||
        echo "# demo/cluster.sh stop failed: $(tail -n 5 "$WORK/cluster-stop.log")"
}

cluster_ctl() {
    timeout 60 "$ROOT/demo/cluster.sh" "$1" "$STATE_DIR" >>"$WORK/cluster-ctl.log" 2>&1
}

on() {
    local which=$1 saved=$GW_URL rc=0
    shift
    case $which in
    A) GW_URL=$A_URL ;;
    B) GW_URL=$B_URL ;;
    LB) GW_URL=$LB_URL ;;
    *) bail "on: A, B or LB, not $which" ;;
    esac
    "$@" || rc=$?
    GW_URL=$saved
    return $rc
}

mgmt_of() {
    local base=$A_MGMT
    [ "$1" = B ] && base=$B_MGMT
    : >"$HDRS"
    STATUS=$(curl -sS --max-time 10 -o "$RESP_BODY_FILE" -D "$HDRS" -w '%{http_code}' "$base$2" 2>/dev/null) || true
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(cat "$RESP_BODY_FILE" 2>/dev/null)
}

metric_of() {
    local base=$A_MGMT
    [ "$1" = B ] && base=$B_MGMT
    curl -s --max-time 10 "$base/metrics" | awk -v s="$2" '$1 == s { print $2; exit }'
}

cluster_redis_cli() {
    REDISCLI_AUTH=$(cat "$CLUSTER_DIR/redis/password") redis-cli -h 127.0.0.1 -p 9130 "$@"
}

# Stop the cluster before lib.sh's cleanup removes its directories; keep the
# exit status for cleanup.
trap 'cl_rc=$?; cluster_stop; (exit $cl_rc); cleanup' EXIT

# finish, with the whole cluster stopped first (its daemons then write their
# exit-time sanitizer reports).
cluster_finish() {
    cluster_stop
    finish
}
