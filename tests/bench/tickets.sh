#!/usr/bin/env bash
# tests/bench/tickets.sh - what shared session ticket keys buy a cluster
# (docs/performance.md "Session tickets shared by the cluster's instances"):
# the demo cluster (demo/cluster.sh: A and B behind haproxy, TLS passed
# through, leastconn), one client reconnecting BENCH_TICKETS_CONNS times
# through haproxy, each connection offering the latest session it got (as a
# browser does): the handshake, the HTTP/2 preface and SETTINGS, close.
# BENCH_TICKETS_CLIENTS=K (default 1): K such clients at once, each making
# its share of the connections with its own sessions (with one client
# leastconn alternates the instances; with several, where a reconnection
# lands depends on the others).
# Rounds alternate the public listeners' ticket_keys on (the cluster's
# shared key) and off (OpenSSL's own keys per instance: the state before),
# switched by SIGHUP on both instances, BENCH_TICKETS_ROUNDS rounds of each.
# Per round: connections resumed, and the two instances' CPU (utime + stime
# from /proc/PID/stat, 10 ms ticks) per connection.
#
#   unshare --net bash -c 'ip link set lo up && tests/bench/tickets.sh'
set -u
BENCH_TICKETS_CONNS=${BENCH_TICKETS_CONNS:-1000}
BENCH_TICKETS_ROUNDS=${BENCH_TICKETS_ROUNDS:-3}
BENCH_TICKETS_CLIENTS=${BENCH_TICKETS_CLIENTS:-1}
. "$(dirname "$0")/../integration/lib.sh"
. "$LIB_DIR/cluster.sh"

cluster_start CARDS=0 DOCUMENTS=0 MOBILE=0 PEOPLE_REGISTERED=1
A_PID=$(cat "$STATE_DIR/pids/darvazad.pid")
B_PID=$(cat "$CLUSTER_DIR/pids/darvazad-b.pid")
KEYS_LINE="      ticket_keys: [$CLUSTER_DIR/tickets/current.key]"

ticks() { awk '{ s += $14 + $15 } END { print s }' "/proc/$A_PID/stat" "/proc/$B_PID/stat"; }
reloads() { metric_of "$1" 'darvaza_config_reloads_total{result="success"}'; }

# keys on|off: both instances' public listeners with or without the key
# file, then SIGHUP and wait for both reloads.
keys() {
    local ra rb f
    ra=$(reloads A)
    rb=$(reloads B)
    for f in "$STATE_DIR/darvaza.yaml" "$CLUSTER_DIR/b/darvaza.yaml"; do
        if [ "$1" = on ]; then
            sed -i "s|^      # ticket_keys off$|$KEYS_LINE|" "$f"
        else
            sed -i "s|^      ticket_keys: .*|      # ticket_keys off|" "$f"
        fi
    done
    kill -HUP "$A_PID" "$B_PID"
    both() { [ "$(reloads A)" -gt "${ra:-0}" ] && [ "$(reloads B)" -gt "${rb:-0}" ]; }
    wait_until 20 both || bail "the instances did not reload"
}

# run: RESUMED and US (gateway CPU per connection) of one batch.
run() {
    local t0 t1
    t0=$(ticks)
    RESUMED=$(python3 - "$BENCH_TICKETS_CONNS" "$BENCH_TICKETS_CLIENTS" localhost 8443 \
        "$STATE_DIR/certs/root.pem" <<'PY'
import socket, ssl, sys, threading
n, k, host, port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"])
counts = [0] * k
def client(i):
    sess = None
    for _ in range(n // k):
        with socket.create_connection((host, port)) as raw:
            with ctx.wrap_socket(raw, server_hostname=host, session=sess) as s:
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                s.recv(4096)  # the server's SETTINGS (and, before them, the tickets)
                counts[i] += s.session_reused
                sess = s.session
threads = [threading.Thread(target=client, args=(i,)) for i in range(k)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(counts))
PY
)
    t1=$(ticks)
    US=$(awk -v t=$((t1 - t0)) -v n="$BENCH_TICKETS_CONNS" 'BEGIN { printf "%.0f", t * 10000 / n }')
}

echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg); $BENCH_TICKETS_CONNS connections per run through haproxy, $BENCH_TICKETS_CLIENTS client(s)"
echo "| round | ticket keys | resumed | gateway CPU µs per connection (A + B) |"
echo "| --- | --- | ---: | ---: |"
run >/dev/null # warm-up (and the first session)
for r in $(seq 1 "$BENCH_TICKETS_ROUNDS"); do
    for mode in off on; do
        keys "$mode"
        run
        echo "| $r | $mode | $RESUMED of $BENCH_TICKETS_CONNS | $US |"
    done
done
echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg)"
cluster_stop
