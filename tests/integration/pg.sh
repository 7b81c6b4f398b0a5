# tests/integration/pg.sh - a throw-away PostgreSQL server for integration
# scripts (sourced after lib.sh).  Debian's binaries, run as the unprivileged
# system user darvaza-test when run as root (PostgreSQL refuses root; created
# if missing), else as the calling user, on
# 127.0.0.1:$PG_PORT, data and socket under $WORK/pg.  Stopped by the EXIT
# trap before lib.sh's cleanup, whatever happens.
#
#   pg_start          initdb on first use, then start and wait until it accepts connections
#   pg_stop           fast shutdown, waits for it
#   pg_sql DB SQL     run SQL as the superuser over the socket; prints tuples unaligned
#   pg_create_db DB ROLE PASSWORD   a login role owning a new database
#   PG_PORT, PG_DIR   the port (9140) and the directory

PG_PORT=${PG_PORT:-9140}
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_OSUSER=${PG_OSUSER:-darvaza-test}
PG_DIR="$WORK/pg"
PG_UP=0

# PostgreSQL refuses to run as root: as root, run it as PG_OSUSER; as anyone
# else, as that user.
if [ "$(id -u)" = 0 ]; then
    pg_as() { runuser -u "$PG_OSUSER" -- "$@"; }
else
    pg_as() { "$@"; }
    PG_OSUSER=$(id -un)
fi

pg_start() {
    [ -x "$PG_BINDIR/initdb" ] || bail "no PostgreSQL server binaries (apt-get install postgresql)"
    if [ "$(id -u)" = 0 ] && ! getent passwd "$PG_OSUSER" >/dev/null; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OSUSER" ||
            bail "cannot create the system user $PG_OSUSER"
    fi
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        mkdir -p "$PG_DIR/sock" && chown -R "$PG_OSUSER:" "$PG_DIR" || bail "cannot prepare $PG_DIR"
        # Local socket: trust (the test's own superuser access); TCP: passwords only.
        pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --no-sync \
            --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
            bail "initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")"
        cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
fsync = off
CONF
    fi
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start \
        >"$PG_DIR/pg_ctl.log" 2>&1 || bail "PostgreSQL did not start: $(tail -n 5 "$PG_DIR/server.log")"
    PG_UP=1
}

pg_stop() {
    [ "$PG_UP" = 1 ] || return 0
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >>"$PG_DIR/pg_ctl.log" 2>&1 &&
        PG_UP=0
}

pg_sql() {
    local db=$1
    shift
    pg_as "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" \
        -U postgres -d "$db" -c "$*"
}

pg_create_db() {
    pg_sql postgres "CREATE ROLE \"$2\" LOGIN PASSWORD '$3'" >/dev/null &&
        pg_sql postgres "CREATE DATABASE \"$1\" OWNER \"$2\"" >/dev/null
}

# Stop the server before lib.sh's cleanup removes its directory; keep the
# exit status for cleanup.
trap 'pg_rc=$?; pg_stop; (exit $pg_rc); cleanup' EXIT
