# tests/integration/redis.sh - throw-away Redis servers and sentinels for the
# integration scripts (sourced after lib.sh).  Debian's redis-server and
# redis-sentinel on fixed loopback ports, data and logs under $WORK/redis-NAME,
# no persistence; every one this file started is stopped by the EXIT trap
# before lib.sh's cleanup, whatever happens.
#
#   redis_start NAME PORT [ARGS...]    a server (ARGS: more redis-server options,
#                                      e.g. --requirepass X); waits until it answers
#   redis_replica_start NAME PORT MASTER_PORT [ARGS...]   a replica of 127.0.0.1:MASTER_PORT;
#                                      waits until the link is up
#   sentinel_start NAME PORT MASTER_NAME MASTER_PORT QUORUM [DOWN_AFTER_MS]
#                                      a sentinel watching that master; waits until it answers
#   redis_stop NAME                    SIGTERM (no save), waits for the exit
#   redis_kill NAME                    SIGKILL, waits for the exit
#   redis_cli PORT ARGS...             redis-cli on 127.0.0.1:PORT (REDIS_AUTH: -a password)
#   redis_role PORT                    master | slave | sentinel | down
#   sentinel_master PORT MASTER_NAME   the "host port" the sentinel names now
# Names are [a-z0-9_]; the pids are in REDIS_PIDS[NAME].

declare -A REDIS_PIDS=()
REDIS_AUTH=${REDIS_AUTH:-}

redis_cli() {
    local port=$1
    shift
    if [ -n "$REDIS_AUTH" ]; then
        REDISCLI_AUTH="$REDIS_AUTH" redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$port" "$@"
    fi
}

# redis_acked PORT: a write on the master at PORT is acknowledged by at least
# one replica within a second (one connection: the SET, then WAIT for it).
redis_acked() {
    local n
    n=$(printf 'SET dz-test:acked 1\nWAIT 1 1000\n' | redis_cli "$1" 2>/dev/null | tail -n 1)
    [ "${n:-0}" -ge 1 ] 2>/dev/null
}

redis_role() {
    local r
    r=$(redis_cli "$1" ROLE 2>/dev/null | head -n 1)
    echo "${r:-down}"
}

_redis_answers() { [ "$(redis_cli "$1" PING 2>/dev/null)" = PONG ]; }

_redis_launch() { # _redis_launch NAME PORT BINARY ARGS...: started in the background
    local name=$1 port=$2 bin=$3 dir="$WORK/redis-$1"
    shift 3
    mkdir -p "$dir"
    "$bin" "$@" >>"$dir/server.log" 2>&1 &
    REDIS_PIDS[$name]=$!
    wait_until 20 _redis_answers "$port" ||
        bail "$name did not start on $port: $(tail -n 5 "$dir/server.log")"
}

redis_start() {
    local name=$1 port=$2
    shift 2
    _redis_launch "$name" "$port" redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly no --dir "$WORK/redis-$name" --daemonize no "$@"
}

# redis_loop_stack PORT PREFIX: a Redis on PORT and the gateway on it with one
# worker loop (so a request that held the loop would hold every other one),
# the value key, a 3 s command timeout, and every blocking round trip on the
# loop logged with its stack (DARVAZA_DEBUG_LOOP_WAITS, tools/loop_waits.py).
# The t_redis_loop_* scripts' stack.
redis_loop_stack() {
    redis_start main "$1"
    export DARVAZA_DEBUG_LOOP_WAITS=1
    (umask 077 && openssl rand -hex 32 >"$WORK/redis.key")
    stack_start CONFIG_SET="gateway.workers=1" \
        STORE_REDIS="value_key_file: $WORK/redis.key, address: 127.0.0.1:$1, prefix: \"$2\", timeouts: {command: 3s}"
}

_replica_linked() { redis_cli "$1" INFO replication 2>/dev/null | grep -q '^master_link_status:up'; }

redis_replica_start() {
    local name=$1 port=$2 master=$3
    shift 3
    redis_start "$name" "$port" --replicaof 127.0.0.1 "$master" "$@"
    wait_until 20 _replica_linked "$port" || bail "replica $name never linked to $master"
}

sentinel_start() {
    local name=$1 port=$2 mname=$3 mport=$4 quorum=$5 down=${6:-1000} dir="$WORK/redis-$1"
    mkdir -p "$dir"
    # Sentinel rewrites its config file: one per sentinel.
    cat >"$dir/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
sentinel resolve-hostnames no
sentinel monitor $mname 127.0.0.1 $mport $quorum
sentinel down-after-milliseconds $mname $down
sentinel failover-timeout $mname 10000
sentinel parallel-syncs $mname 1
CONF
    if [ -n "$REDIS_AUTH" ]; then echo "sentinel auth-pass $mname $REDIS_AUTH" >>"$dir/sentinel.conf"; fi
    local REDIS_AUTH=
    _redis_launch "$name" "$port" redis-sentinel "$dir/sentinel.conf"
}

sentinel_master() {
    local REDIS_AUTH=
    redis_cli "$1" SENTINEL get-master-addr-by-name "$2" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

redis_stop() {
    local pid=${REDIS_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "REDIS_PIDS[$1]"
}

redis_kill() {
    local pid=${REDIS_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "REDIS_PIDS[$1]"
}

_redis_stop_all() {
    local n
    for n in "${!REDIS_PIDS[@]}"; do redis_kill "$n"; done
}

# Stop the servers before lib.sh's cleanup removes their directories; keep
# the exit status for cleanup (composes with pg.sh's trap when both are used).
_REDIS_PREV_TRAP=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\\1/")
trap 'redis_rc=$?; _redis_stop_all; (exit $redis_rc); '"${_REDIS_PREV_TRAP:-cleanup}" EXIT
