#!/usr/bin/env bash
# cluster_config.sh CONFIG [a|b] - turns a demo stack's gateway config into
# the config of one instance of the demo cluster (demo/cluster.sh), in place:
#   - its own public listener (a: 8451, b: 8452) and no cleartext one,
#   - its own management listener (a: 9181, b: 9182: haproxy's health checks),
#   - its own audit chain: audit.instance gw-a|gw-b, the audit log in
#     CLUSTER_DIR/a|b/ (two writers never share a file; nothing else there:
#     `darvaza audit verify DIR` reads every *.log), the access log in
#     CLUSTER_DIR/a|b/logs/access.log (demo/stack.sh renumber does these),
#   - the shared store when CLUSTER_STORE=redis (Redis 9130 through the
#     sentinels 9131-9133), the password in CLUSTER_DIR/redis/password,
#   - the shared session ticket keys on the public listener (tls.ticket_keys:
#     CLUSTER_DIR/tickets/current.key, made by demo/cluster.sh), so a browser
#     resumes its TLS session on either instance; never on the card listener.
# gateway.id (the assertions' issuer), gateway.origin (haproxy's
# https://localhost:8443) and the keys stay the same on every instance: one
# gateway to browsers and back ends, one JWKS.
# Environment: CLUSTER_DIR (required), CLUSTER_STORE (memory|redis, default redis).
set -euo pipefail

cfg=${1:?usage: cluster_config.sh CONFIG [a|b]}
inst=${2:-a}
: "${CLUSTER_DIR:?CLUSTER_DIR is required}"
case $inst in
a) port=8451 cport=8461 mport=9181 ;;
b) port=8452 cport=8462 mport=9182 ;;
*) echo "cluster_config.sh: instance a or b, not $inst" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Its own ports, audit chain and access log (demo/stack.sh renumber): the
# public listener on the instance's port, whatever port it had (the config
# of instance a is the input of b), the card listener on its card port
# (haproxy passes :8444 through to those), no cleartext listener (haproxy
# passes TLS through and nothing else), the management listener for
# haproxy's health checks; audit in CLUSTER_DIR/a|b/audit.log, the access
# log in CLUSTER_DIR/a|b/logs/access.log.
"$ROOT/demo/stack.sh" renumber "$cfg" "$cfg" "$CLUSTER_DIR/$inst" "gw-$inst" "$port" "$cport" "$mport"

# The shared store.
tmp=$(mktemp "$cfg.XXXXXX")
awk -v store="${CLUSTER_STORE:-redis}" -v rdir="$CLUSTER_DIR/redis" '
    /^[^ #]/ { sec = $1 }
    sec == "store:" && /^  (backend|redis):/ { skipstore = 1; next }
    sec == "store:" && skipstore && /^    / { next }
    sec == "store:" && /^  [a-z]/ { skipstore = 0 }
    { print }
    sec == "store:" && /^store:/ && store == "redis" {
        print "  backend: redis"
        print "  redis:"
        print "    sentinels:"
        print "      - address: 127.0.0.1:9131"
        print "      - address: 127.0.0.1:9132"
        print "      - address: 127.0.0.1:9133"
        print "    master_name: darvaza"
        print "    password_file: " rdir "/password"
        print "    value_key_file: " rdir "/value.key"
        print "    prefix: \"darvaza-demo:\""
        print "    wait_replicas: 1"
    }
' "$cfg" >"$tmp"
mv "$tmp" "$cfg"

# The ticket keys, on the TLS listener that asks for no client certificate
# (a listener item is buffered until its tls: block shows its kind; a
# ticket_keys line already there, from the config of A as B's input, is
# replaced).
tmp=$(mktemp "$cfg.XXXXXX")
awk -v keys="[$CLUSTER_DIR/tickets/current.key]" '
    function flush(   i) {
        for (i = 1; i <= n; i++) {
            print item[i]
            if (item[i] ~ /^    tls:/ && !asks) print "      ticket_keys: " keys
        }
        n = asks = 0
    }
    /^[^ #]/ { if (sec == "listeners:") flush(); sec = $1 }
    sec == "listeners:" && /^  - / { flush() }
    sec == "listeners:" && (n || /^  - /) {
        if ($0 ~ /^      ticket_keys:/) next
        item[++n] = $0
        if ($0 ~ /^      client_auth:[ ]*(optional|required)/) asks = 1
        next
    }
    { print }
    END { if (sec == "listeners:") flush() }
' "$cfg" >"$tmp"
mv "$tmp" "$cfg"
grep -q "^    port: $port\$" "$cfg" && grep -q "^  instance: gw-$inst\$" "$cfg" &&
    [ "$(grep -c '^      ticket_keys: ' "$cfg")" = 1 ] || {
    echo "cluster_config.sh: $cfg: cannot set the listener, audit.instance or the ticket keys" >&2
    exit 1
}
