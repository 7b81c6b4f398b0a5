# demo/cluster_services.sh - the shared services of the demo cluster
# (sourced by demo/cluster.sh): PostgreSQL for the accounts, Redis with a
# replica and three sentinels for the ephemeral state, haproxy in front of
# the instances.  Each runs in the foreground in its own session, logs to
# CLUSTER_DIR/logs/NAME.log, pid in CLUSTER_DIR/pids/NAME.pid.
#
# Ports (fixed, loopback): Redis master 9130, sentinels 9131-9133, replica
# 9134, PostgreSQL 9140, haproxy 8443.

REDIS_PORT=9130
REDIS_REPLICA_PORT=9134
SENTINEL_PORTS=(9131 9132 9133)
REDIS_MASTER_NAME=darvaza
PG_PORT=9140
HAPROXY_PORT=8443

# ---- processes ------------------------------------------------------------------

# svc_pid NAME: the recorded pid of NAME if it still runs as what we started.
svc_pid() {
    local f="$CLUSTER_DIR/pids/$1.pid" pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'redis|haproxy|darvaza' || return 0
    echo "$pid"
}

# svc_launch NAME CMD...: CMD in its own session (Ctrl-C reaches only the
# script, which stops everything in order).
svc_launch() {
    local name=$1 i
    shift
    mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/pids"
    rm -f "$CLUSTER_DIR/pids/$name.pid"
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$CLUSTER_DIR/pids/$name.pid" "$@" \
        >>"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
    for i in $(seq 1 50); do
        [ -s "$CLUSTER_DIR/pids/$name.pid" ] && return 0
        sleep 0.1
    done
    cdie "$name did not start (no pid file)"
}

# svc_wait NAME SECONDS CMD...: until CMD succeeds; fails if NAME exits.
svc_wait() {
    local name=$1 secs=$2 end=$(($(date +%s) + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ -z "$(svc_pid "$name")" ]; then
            tail -n 20 "$CLUSTER_DIR/logs/$name.log" >&2 2>/dev/null || true
            cdie "$name exited during start-up"
        fi
        [ "$(date +%s)" -lt "$end" ] || cdie "$name not ready after $secs s (see $CLUSTER_DIR/logs/$name.log)"
        sleep 0.2
    done
}

# svc_stop NAME...: SIGTERM together, bounded wait, then SIGKILL.
svc_stop() {
    local n pid pids=() end=$(($(date +%s) + 10)) left
    for n in "$@"; do
        pid=$(svc_pid "$n")
        [ -z "$pid" ] || { pids+=("$n:$pid"); kill -TERM "$pid" 2>/dev/null || true; }
    done
    while :; do
        left=0
        for n in "${pids[@]}"; do kill -0 "${n#*:}" 2>/dev/null && left=1; done
        [ $left -eq 1 ] && [ "$(date +%s)" -lt "$end" ] || break
        sleep 0.1
    done
    for n in "${pids[@]}"; do
        if kill -0 "${n#*:}" 2>/dev/null; then kill -KILL "${n#*:}" 2>/dev/null || true; fi
        csay "${n%%:*} (pid ${n#*:}) stopped"
        rm -f "$CLUSTER_DIR/pids/${n%%:*}.pid"
    done
}

# ---- PostgreSQL ------------------------------------------------------------------
# A cluster of its own under STATE/pg, run as the unprivileged "postgres"
# user of Debian's package when we are root (PostgreSQL refuses root), else
# as ourselves.  Local socket: trust for the set-up; TCP: passwords only.
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ "$(id -u)" = 0 ]; then
    PG_OSUSER=${PG_OSUSER:-postgres}
    pg_as() { runuser -u "$PG_OSUSER" -- "$@"; }
else
    PG_OSUSER=$(id -un)
    pg_as() { "$@"; }
fi

pg_sql() { # pg_sql DB SQL: as the superuser over the socket, tuples unaligned
    local db=$1
    shift
    pg_as "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" \
        -U postgres -d "$db" -c "$*"
}

pg_running() { pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; }

pg_up() {
    local pw
    [ -x "$PG_BINDIR/initdb" ] || cdie "no PostgreSQL server binaries (apt-get install postgresql)"
    getent passwd "$PG_OSUSER" >/dev/null || cdie "no user $PG_OSUSER to run PostgreSQL as"
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        rm -rf "$PG_DIR"
        mkdir -p "$PG_DIR/sock" && chown -R "$PG_OSUSER:" "$PG_DIR"
        pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --no-sync \
            --auth-local=trust --auth-host=scram-sha-256 >"$CLUSTER_DIR/logs/pg-initdb.log" 2>&1 ||
            cdie "initdb failed: $(tail -n 5 "$CLUSTER_DIR/logs/pg-initdb.log")"
        cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
CONF
    fi
    pg_running || pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start \
        >>"$CLUSTER_DIR/logs/pg_ctl.log" 2>&1 || cdie "PostgreSQL did not start: $(tail -n 5 "$PG_DIR/server.log")"
    # The gateways' role and database, once; the password only in files (0600).
    if [ ! -s "$CLUSTER_DIR/pg.conninfo" ] ||
        [ "$(pg_sql postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'darvaza'")" != 1 ]; then
        pw=$(openssl rand -hex 16)
        if [ "$(pg_sql postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'darvaza'")" = 1 ]; then
            pg_sql postgres "ALTER ROLE darvaza PASSWORD '$pw'" >/dev/null
        else
            pg_sql postgres "CREATE ROLE darvaza LOGIN PASSWORD '$pw'" >/dev/null
        fi
        [ "$(pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname = 'darvaza'")" = 1 ] ||
            pg_sql postgres "CREATE DATABASE darvaza OWNER darvaza" >/dev/null
        (umask 077 && echo "host=127.0.0.1 port=$PG_PORT dbname=darvaza user=darvaza password=$pw" \
            >"$CLUSTER_DIR/pg.conninfo")
    fi
    csay "PostgreSQL on 127.0.0.1:$PG_PORT (data $PG_DIR, run as $PG_OSUSER)"
}

pg_down() {
    pg_running || return 0
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >>"$CLUSTER_DIR/logs/pg_ctl.log" 2>&1 &&
        csay "PostgreSQL stopped"
}

# Accounts rows in PostgreSQL (0 when the schema is not there yet).
pg_accounts() {
    pg_sql darvaza "SELECT count(*) FROM accounts" 2>/dev/null || echo 0
}

# pg_import_sqlite DB: the accounts of the single-instance demo (SQLite)
# copied into PostgreSQL, replacing rows of the same FIN: people.json was
# made with them.  The sealed TOTP seeds are copied as they are (the same
# seed key opens them).
pg_import_sqlite() {
    sqlite3 "$1" "SELECT printf('INSERT INTO accounts(fin, pwd_hash, totp_seed, totp_active,
                totp_last_step, created_at, updated_at) VALUES(%Q, %Q, %s, %s, %d, %d, %d)
                ON CONFLICT (fin) DO UPDATE SET pwd_hash = EXCLUDED.pwd_hash,
                totp_seed = EXCLUDED.totp_seed, totp_active = EXCLUDED.totp_active,
                totp_last_step = EXCLUDED.totp_last_step, updated_at = EXCLUDED.updated_at;',
            fin, pwd_hash,
            CASE WHEN totp_seed IS NULL THEN 'NULL' ELSE '''\\x' || hex(totp_seed) || '''::bytea' END,
            CASE WHEN totp_active THEN 'true' ELSE 'false' END,
            totp_last_step, created_at, updated_at) FROM accounts" |
        pg_as "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" \
            -U postgres -d darvaza -1 >/dev/null ||
        cdie "cannot copy the accounts of $1 into PostgreSQL"
}

# ---- Redis, its replica and three sentinels ------------------------------------------
# The state is ephemeral (sessions, pending logins, counters): no RDB, no
# AOF, made afresh at every start with the master on 9130 (a failover of
# the previous run is forgotten).  One password for the gateways, the
# replica and the sentinels, from a file (0600).
redis_conf() { # redis_conf PORT [replicaof]
    local pw
    pw=$(cat "$CLUSTER_DIR/redis/password")
    mkdir -p "$CLUSTER_DIR/redis/$1"
    cat <<CONF
bind 127.0.0.1
port $1
protected-mode yes
daemonize no
dir $CLUSTER_DIR/redis/$1
save ""
appendonly no
requirepass $pw
masterauth $pw
repl-diskless-sync-delay 0
CONF
    [ -z "${2:-}" ] || echo "replicaof 127.0.0.1 $REDIS_PORT"
}

sentinel_conf() { # sentinel_conf PORT
    mkdir -p "$CLUSTER_DIR/redis/$1"
    cat <<CONF
bind 127.0.0.1
port $1
daemonize no
dir $CLUSTER_DIR/redis/$1
sentinel monitor $REDIS_MASTER_NAME 127.0.0.1 $REDIS_PORT 2
sentinel auth-pass $REDIS_MASTER_NAME $(cat "$CLUSTER_DIR/redis/password")
sentinel down-after-milliseconds $REDIS_MASTER_NAME 3000
sentinel failover-timeout $REDIS_MASTER_NAME 10000
sentinel parallel-syncs $REDIS_MASTER_NAME 1
CONF
}

rcli() { # rcli PORT ARGS...: redis-cli with the password from the environment
    REDISCLI_AUTH=$(cat "$CLUSTER_DIR/redis/password") redis-cli -h 127.0.0.1 -p "$@"
}

redis_master_up() {
    redis_conf "$REDIS_PORT" >"$CLUSTER_DIR/redis/master.conf"
    svc_launch redis redis-server "$CLUSTER_DIR/redis/master.conf"
    svc_wait redis 10 sh -c "[ \"\$(REDISCLI_AUTH=\$(cat '$CLUSTER_DIR/redis/password') redis-cli -h 127.0.0.1 -p $REDIS_PORT ping)\" = PONG ]"
}

# The master and its replica (the data nodes).
redis_data_up() {
    redis_master_up
    redis_conf "$REDIS_REPLICA_PORT" replica >"$CLUSTER_DIR/redis/replica.conf"
    svc_launch redis-replica redis-server "$CLUSTER_DIR/redis/replica.conf"
    svc_wait redis-replica 10 sh -c "REDISCLI_AUTH=\$(cat '$CLUSTER_DIR/redis/password') redis-cli -h 127.0.0.1 -p $REDIS_REPLICA_PORT info replication | grep -q 'master_link_status:up'"
    # The gateways wait for one replica's acknowledgement (wait_replicas: 1),
    # and the replica reports its link up before the master counts it: ready
    # once a write on the master is acknowledged (a SET, then WAIT for it).
    svc_wait redis-replica 10 replica_acks
}

replica_acks() {
    [ "$(printf 'SET dz-demo:acked 1\nWAIT 1 1000\n' | rcli "$REDIS_PORT" 2>/dev/null | tail -n 1)" = 1 ]
}

redis_up() {
    local i p
    command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null ||
        cdie "no redis-server / redis-sentinel (apt-get install redis-server redis-sentinel)"
    mkdir -p "$CLUSTER_DIR/redis"
    [ -s "$CLUSTER_DIR/redis/password" ] ||
        (umask 077 && openssl rand -hex 24 >"$CLUSTER_DIR/redis/password")
    # The instances' shared key for values sealed and key names hashed in Redis.
    [ -s "$CLUSTER_DIR/redis/value.key" ] ||
        (umask 077 && openssl rand -hex 32 >"$CLUSTER_DIR/redis/value.key")
    redis_data_up
    i=0
    for p in "${SENTINEL_PORTS[@]}"; do
        i=$((i + 1))
        # Sentinels rewrite their file (what they learn): written afresh.
        sentinel_conf "$p" >"$CLUSTER_DIR/redis/sentinel$i.conf"
        svc_launch "sentinel$i" redis-sentinel "$CLUSTER_DIR/redis/sentinel$i.conf"
    done
    i=0
    for p in "${SENTINEL_PORTS[@]}"; do
        i=$((i + 1))
        svc_wait "sentinel$i" 10 sh -c "redis-cli -h 127.0.0.1 -p $p sentinel get-master-addr-by-name $REDIS_MASTER_NAME | grep -q $REDIS_PORT"
    done
    csay "Redis master 127.0.0.1:$REDIS_PORT, replica :$REDIS_REPLICA_PORT, sentinels :${SENTINEL_PORTS[*]} (master name $REDIS_MASTER_NAME)"
}

redis_down() { svc_stop sentinel1 sentinel2 sentinel3 redis-replica redis; }

# ---- haproxy ---------------------------------------------------------------------------
# TLS passthrough (mode tcp): see docs/operations.md "Several instances".
haproxy_up() {
    command -v haproxy >/dev/null || cdie "no haproxy (apt-get install haproxy)"
    cat >"$CLUSTER_DIR/haproxy.cfg" <<CONF
# The demo cluster's load balancer (demo/cluster.sh): TLS passed through to
# the instances, which hold the certificate and see client certificates.
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout check 2s
    retries 2
    option redispatch
frontend darvaza
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend instances
backend instances
    # Long-lived HTTP/2 connections: count them, not requests.
    balance leastconn
    # Health: GET /readyz on each instance's management listener (503 while
    # the store is unreachable or the instance drains).
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr host localhost
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    server a 127.0.0.1:8451 check port 9181
    server b 127.0.0.1:8452 check port 9182
# The card listener (cards.tls_origin https://localhost:8444): passed through
# as well, since the TLS handshake itself carries the card's certificate.
frontend darvaza-card
    bind 127.0.0.1:8444
    default_backend card-listeners
backend card-listeners
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr host localhost
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    server a 127.0.0.1:8461 check port 9181
    server b 127.0.0.1:8462 check port 9182
CONF
    haproxy -c -q -f "$CLUSTER_DIR/haproxy.cfg" || cdie "haproxy refuses $CLUSTER_DIR/haproxy.cfg"
    svc_launch haproxy haproxy -db -f "$CLUSTER_DIR/haproxy.cfg"
    svc_wait haproxy 10 curl -sf --max-time 2 --cacert "$STATE/certs/root.pem" "https://localhost:$HAPROXY_PORT/healthz"
    csay "haproxy on https://localhost:$HAPROXY_PORT (TLS passthrough to :8451 and :8452; card listener :8444 to :8461 and :8462)"
}
