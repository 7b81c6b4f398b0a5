#!/usr/bin/env bash
# cluster_config.sh CONFIG [a|b] - turns a demo stack's gateway config into
# the config of one instance of the demo cluster (demo/cluster.sh), in place:
#   - its own public listener (a: 8451, b: 8452) and no cleartext one,
#   - its own management listener (a: 9181, b: 9182: haproxy's health checks),
#   - its own audit chain: audit.instance gw-a|gw-b, the audit log in
#     CLUSTER_DIR/a|b/ (two writers never share a file; nothing else there:
#     `darvaza audit verify DIR` reads every *.log), the access log in
#     CLUSTER_DIR/logs/access-a|b.log,
#   - the shared store when CLUSTER_STORE=redis (Redis 9130 through the
#     sentinels 9131-9133), the password in CLUSTER_DIR/redis/password.
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
mkdir -p "$CLUSTER_DIR/$inst" "$CLUSTER_DIR/logs"

tmp=$(mktemp "$cfg.XXXXXX")
# The public listener moves to the instance's port, whatever port it had
# (the config of instance a is the input of b), and the card listener (the
# one with client_auth: required, the second TLS listener) to its card port:
# haproxy passes :8444 through to those.  The cleartext listener (8080)
# goes: haproxy passes TLS through and nothing else.
awk -v port="$port" -v cport="$cport" -v mport="$mport" -v dir="$CLUSTER_DIR/$inst" -v inst="gw-$inst" \
    -v logs="$CLUSTER_DIR/logs" -v name="$inst" -v store="${CLUSTER_STORE:-redis}" \
    -v rdir="$CLUSTER_DIR/redis" '
    /^[^ #]/ { sec = $1 }
    sec == "listeners:" && /^  - address:/ && /cleartext/ { skip = 1; next }
    skip && /^    port:/ { skip = 0; next }
    skip { next }
    sec == "listeners:" && /^    port:/ { print "    port: " (++nport == 1 ? port : cport); next }
    sec == "management:" && /^  listen:/ { print "  listen: 127.0.0.1:" mport; next }
    sec == "audit:" && /^  file:/ { print "  file: " dir "/audit.log"; next }
    sec == "audit:" && /^  instance:/ { next }
    sec == "store:" && /^  (backend|redis):/ { skipstore = 1; next }
    sec == "store:" && skipstore && /^    / { next }
    sec == "store:" && /^  [a-z]/ { skipstore = 0 }
    sec == "access_log:" && /^  file:/ { print "  file: " logs "/access-" name ".log"; next }
    { print }
    sec == "audit:" && /^audit:/ { print "  instance: " inst }
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
grep -q "^    port: $port\$" "$cfg" && grep -q "^  instance: gw-$inst\$" "$cfg" || {
    echo "cluster_config.sh: $cfg: cannot set the listener or audit.instance" >&2
    exit 1
}
