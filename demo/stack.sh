#!/usr/bin/env bash
# stack.sh - starts, stops and reloads the demo stack: the stand-in peers and
# the gateway, all on 127.0.0.1, with their state under one directory.
#
#   demo/stack.sh start  STATE_DIR    PKI, registry DB, config, peers, gateway,
#                                     demo people registered -> STATE_DIR/people.json
#   demo/stack.sh stop   STATE_DIR    SIGTERM every process, bounded wait, SIGKILL
#   demo/stack.sh reload STATE_DIR    SIGHUP to the gateway
#   demo/stack.sh status STATE_DIR    which processes run
#   demo/stack.sh ocsp-stop STATE_DIR  stop the e-signature OCSP responder alone
#   demo/stack.sh ocsp-start STATE_DIR start it again (demo/stack_cards.sh)
#
# Environment:
#   BUILD_DIR          where the binaries are (build, build/asan; default build)
#   EXTRA_POLICIES     a directory whose *.yaml are added to the policies
#   LOCKOUT_ATTEMPTS, LOCKOUT_ADDRESS_ATTEMPTS, LOCKOUT_WINDOW, LOCKOUT_DURATION
#                      override the lockout section of the gateway config
#   CONFIG_SET         more overrides: "section.key=value ..." (top-level sections)
#   PEOPLE_TOTAL (12), PEOPLE_REGISTERED (8)
#   CARDS (1)          0: no demo cards (STATE_DIR/cards/) and no e-signature OCSP
#                      responder (port 9105); see demo/stack_cards.sh
#
# Ports: 9101 registry peer (h2, TLS, gateway client certificate required),
#        8443 gateway (h2, TLS), plus every other port the config's listeners name.
# Layout of STATE_DIR: certs/ keys/ (certs/mkpki.sh), registry.db, darvaza.yaml,
# policies/, logs/{registry,darvazad}.log, pids/{registry,darvazad}.pid,
# people.json, and whatever the gateway keeps (accounts.db, audit.log).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
PEER_BIN="$BUILD_DIR/darvaza-peer"
GW_BIN="$BUILD_DIR/darvazad"

REGISTRY_ADDR=127.0.0.1:9101
GW_URL=          # from the config: https://localhost:<first listener port>
GW_ORIGIN=       # gateway.origin
GW_ISS=          # gateway.id
READY_TIMEOUT=${READY_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
PEOPLE_TOTAL=${PEOPLE_TOTAL:-12}
PEOPLE_REGISTERED=${PEOPLE_REGISTERED:-8}
# Processes in start order; stop goes the other way.
PROCS=(registry darvazad)

say() { echo "stack: $*"; }
die() { echo "stack: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|reload|status|ocsp-stop|ocsp-start STATE_DIR" >&2
    exit 2
}

# The e-signature card world: demo cards, their OCSP responder, the card
# fields of people.json.
. "$ROOT/demo/stack_cards.sh"

# ---- processes ---------------------------------------------------------------

# pid_of NAME: the pid recorded for NAME if that process still runs and is
# ours (a darvaza binary), else nothing.
pid_of() {
    local f="$STATE/pids/$1.pid" pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q darvaza || return 0
    echo "$pid"
}

# launch NAME CMD...: starts CMD in its own session (so a terminal's Ctrl-C
# reaches only run.sh, which stops the stack in order), logs to
# logs/NAME.log, pid to pids/NAME.pid.
launch() {
    local name=$1
    shift
    : >"$STATE/logs/$name.log"
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$STATE/pids/$name.pid" "$@" \
        >>"$STATE/logs/$name.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 50); do
        [ -s "$STATE/pids/$name.pid" ] && return 0
        sleep 0.1
    done
    die "$name did not start (no pid file)"
}

log_tail() {
    local f="$STATE/logs/$1.log"
    echo "---- last lines of $f ----" >&2
    tail -n "${2:-30}" "$f" >&2 2>/dev/null || echo "(no log)" >&2
}

# fail_start NAME MESSAGE: stop what runs, show NAME's log, exit 1.
fail_start() {
    echo "stack: error: $2" >&2
    log_tail "$1" 40
    do_stop >&2 || true
    exit 1
}

port_busy() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# wait_for NAME SECONDS CMD...: polls CMD until it succeeds; fails the start
# with NAME's log if NAME exits or time runs out.
wait_for() {
    local name=$1 secs=$2 end
    shift 2
    end=$(($(date +%s) + secs))
    until "$@" >/dev/null 2>&1; do
        [ -n "$(pid_of "$name")" ] || fail_start "$name" "$name exited during start-up"
        [ "$(date +%s)" -lt "$end" ] || fail_start "$name" "$name not ready after ${secs}s"
        sleep 0.2
    done
}

# ---- configuration -------------------------------------------------------------

# yaml_set FILE SECTION KEY VALUE: set "  KEY: VALUE" inside top-level SECTION.
yaml_set() {
    local file=$1 tmp
    tmp=$(mktemp "$file.XXXXXX")
    if ! awk -v s="$2" -v k="$3" -v v="$4" '
        /^[^ #]/ { insec = ($0 ~ "^" s ":") }
        insec && $0 ~ "^  " k ":" { print "  " k ": " v; found = 1; next }
        { print }
        END { exit found ? 0 : 3 }' "$file" >"$tmp"; then
        rm -f "$tmp"
        die "cannot set $2.$3 in $file (no such key)"
    fi
    mv "$tmp" "$file"
}

# yaml_get FILE SECTION KEY: the scalar value of "  KEY:" in top-level SECTION.
yaml_get() {
    awk -v s="$2" -v k="$3" '/^[^ #]/ { insec = ($0 ~ "^" s ":") }
        insec && $1 == k ":" { print $2; exit }' "$1"
}

make_config() {
    local src="$ROOT/demo/darvaza.yaml" cfg="$STATE/darvaza.yaml" f kv
    [ -f "$src" ] || die "missing $src"
    # Paths in the demo config live under build/demo/; here under STATE_DIR.
    sed -e "s#build/demo/#$STATE/#g" \
        -e "s#^policies:[[:space:]]*[^[:space:]\#]*#policies: $STATE/policies/#" \
        "$src" >"$cfg.tmp"
    mv "$cfg.tmp" "$cfg"
    [ -z "${LOCKOUT_ATTEMPTS:-}" ] || yaml_set "$cfg" lockout fin_attempts "$LOCKOUT_ATTEMPTS"
    [ -z "${LOCKOUT_ADDRESS_ATTEMPTS:-}" ] ||
        yaml_set "$cfg" lockout address_attempts "$LOCKOUT_ADDRESS_ATTEMPTS"
    [ -z "${LOCKOUT_WINDOW:-}" ] || yaml_set "$cfg" lockout window "$LOCKOUT_WINDOW"
    [ -z "${LOCKOUT_DURATION:-}" ] || yaml_set "$cfg" lockout duration "$LOCKOUT_DURATION"
    for kv in ${CONFIG_SET:-}; do
        [[ "$kv" =~ ^([a-z_]+)\.([a-z_]+)=(.+)$ ]] || die "CONFIG_SET item '$kv' is not section.key=value"
        yaml_set "$cfg" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    done
    GW_ISS=$(yaml_get "$cfg" gateway id)
    [ -n "$GW_ISS" ] || die "no gateway.id in $cfg"
    GW_ORIGIN=$(yaml_get "$cfg" gateway origin)
    [ -n "$GW_ORIGIN" ] || die "no gateway.origin in $cfg"
    # The first listener is the public TLS one; origin and certificate name
    # it "localhost".
    GW_URL="https://localhost:$(stack_ports | sed -n 2p)"

    # Policies: the repository's, plus EXTRA_POLICIES; stale ones removed.
    rm -rf "$STATE/policies"
    mkdir -p "$STATE/policies"
    for f in "$ROOT"/policies/*.yaml ${EXTRA_POLICIES:+"$EXTRA_POLICIES"/*.yaml}; do
        [ -f "$f" ] && cp "$f" "$STATE/policies/"
    done
    return 0
}

# The ports every process of the stack will listen on.
stack_ports() {
    echo "${REGISTRY_ADDR##*:}"
    awk '/^listeners:/ { l = 1; next } /^[^ #]/ { l = 0 }
         l && $1 == "port:" { print $2 }' "$STATE/darvaza.yaml"
}

# ---- demo people ------------------------------------------------------------------

curl_gw() {
    curl -sS --http2 --max-time 30 --cacert "$STATE/certs/root.pem" "$@"
}

# Registers the first PEOPLE_REGISTERED of PEOPLE_TOTAL people of the registry
# through the gateway's real API and writes people.json.
make_people() {
    local out="$STATE/people.json" tmp fin doc phone name surname pw body resp code secret n=0
    # The accounts and people.json belong together: keep both or neither.
    if [ -s "$out" ] && [ -f "$STATE/accounts.db" ] && jq -e 'length > 0' "$out" >/dev/null 2>&1; then
        say "people.json exists, kept (remove $STATE to start afresh)"
        return 0
    fi
    tmp=$(mktemp "$out.XXXXXX")
    echo '[]' >"$tmp"
    while IFS='|' read -r fin doc phone name surname; do
        pw=null
        secret=null
        if [ $n -lt "$PEOPLE_REGISTERED" ]; then
            pw="Dz-$(openssl rand -hex 8)"
            body=$(jq -nc --arg f "$fin" --arg d "$doc" --arg p "$pw" '{fin:$f,document:$d,password:$p}')
            resp=$(curl_gw -H "Origin: $GW_ORIGIN" -H 'content-type: application/json' \
                --data-binary "$body" -w '\n%{http_code}' "$GW_URL/auth/register") ||
                fail_start darvazad "POST /auth/register for $fin failed (curl)"
            code=${resp##*$'\n'}
            resp=${resp%$'\n'*}
            [ "$code" = 201 ] ||
                fail_start darvazad "POST /auth/register for $fin answered $code: $resp"
            secret=$(jq -r '.totp.secret // empty' <<<"$resp")
            [ -n "$secret" ] || fail_start darvazad "registration of $fin gave no TOTP secret: $resp"
            pw=$(jq -nc --arg p "$pw" '$p')
            secret=$(jq -nc --arg s "$secret" '$s')
        fi
        jq --arg f "$fin" --arg d "$doc" --arg ph "$phone" --arg nm "$name" --arg sn "$surname" \
            --argjson r "$([ $n -lt "$PEOPLE_REGISTERED" ] && echo true || echo false)" \
            --argjson p "$pw" --argjson s "$secret" \
            '. + [{fin:$f, registered:$r, password:$p, totp_secret:$s, document:$d, phone:$ph,
                   name:$nm, surname:$sn}]' "$tmp" >"$tmp.new"
        mv "$tmp.new" "$tmp"
        n=$((n + 1))
    done < <(sqlite3 -separator '|' "$STATE/registry.db" \
        "SELECT p.fin, p.doc_series || p.doc_number,
                (SELECT number FROM phone WHERE fin = p.fin ORDER BY pos LIMIT 1),
                p.name, p.surname
         FROM person p ORDER BY p.rowid LIMIT $PEOPLE_TOTAL")
    [ $n -eq "$PEOPLE_TOTAL" ] || die "the registry has only $n people"
    chmod 600 "$tmp"
    mv "$tmp" "$out"
    say "registered $PEOPLE_REGISTERED of $PEOPLE_TOTAL demo people -> $out"
}

# ---- commands ------------------------------------------------------------------------

do_start() {
    local name p
    [ -x "$PEER_BIN" ] || die "no $PEER_BIN (make first, or set BUILD_DIR)"
    [ -x "$GW_BIN" ] || die "no $GW_BIN (make first, or set BUILD_DIR)"
    for name in "${PROCS[@]}"; do
        [ -z "$(pid_of "$name")" ] || die "$name already runs for $STATE (pid $(pid_of "$name")); stop it first"
    done
    mkdir -p "$STATE"/{certs,keys,logs,pids}
    rm -f "$STATE"/pids/*.pid

    "$ROOT/certs/mkpki.sh" "$STATE/certs" "$STATE/keys" >/dev/null
    make_config
    for p in $(stack_ports); do
        ! port_busy "$p" || die "port $p is busy (another stack or program listens on it)"
    done
    if [ ! -f "$STATE/registry.db" ]; then
        "$PEER_BIN" registry --db "$STATE/registry.db" --init-db 10000 \
            >>"$STATE/logs/registry-init.log" 2>&1 ||
            { tail -n 20 "$STATE/logs/registry-init.log" >&2; die "cannot create the registry DB"; }
    fi
    make_cards
    start_card_ocsp

    launch registry "$PEER_BIN" registry --listen "$REGISTRY_ADDR" \
        --tls-cert "$STATE/certs/registry-tls.pem" --tls-key "$STATE/certs/registry-tls.key" \
        --client-ca "$STATE/certs/gateway-ca.pem" --db "$STATE/registry.db" \
        --jwks-url "$GW_URL/.well-known/jwks.json" --cacert "$STATE/certs/root.pem" \
        --iss "$GW_ISS" --aud registry
    wait_for registry 10 curl -sf --http2 --max-time 2 --cacert "$STATE/certs/root.pem" \
        --cert "$STATE/certs/gateway-client.pem" --key "$STATE/certs/gateway-client.key" \
        "https://localhost:${REGISTRY_ADDR##*:}/_peer/requests"
    say "registry peer on $REGISTRY_ADDR (pid $(pid_of registry))"

    launch darvazad "$GW_BIN" -c "$STATE/darvaza.yaml"
    wait_for darvazad "$READY_TIMEOUT" curl -sf --max-time 2 --cacert "$STATE/certs/root.pem" \
        "$GW_URL/readyz"
    say "gateway on $GW_URL (pid $(pid_of darvazad))"

    make_people
    card_people
    say "up: state in $STATE"
}

do_stop() {
    local i name pid pids=() end
    for ((i = ${#PROCS[@]} - 1; i >= 0; i--)); do
        name=${PROCS[$i]}
        pid=$(pid_of "$name")
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$name:$pid")
        # The gateway first, and alone: it may be forwarding to the peers.
        end=$(($(date +%s) + STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) did not stop in ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        else
            say "$name (pid $pid) stopped"
        fi
    done
    for name in "${PROCS[@]}"; do rm -f "$STATE/pids/$name.pid"; done
    [ ${#pids[@]} -gt 0 ] || say "nothing runs for $STATE"
    return 0
}

do_reload() {
    local pid
    pid=$(pid_of darvazad)
    [ -n "$pid" ] || die "the gateway does not run for $STATE"
    kill -HUP "$pid"
    say "SIGHUP sent to darvazad (pid $pid)"
}

do_status() {
    local name pid rc=0
    for name in "${PROCS[@]}"; do
        pid=$(pid_of "$name")
        if [ -n "$pid" ]; then say "$name runs (pid $pid)"; else say "$name is down"; rc=1; fi
    done
    return $rc
}

[ $# -eq 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
case $1 in
start) do_start ;;
stop) do_stop ;;
reload) do_reload ;;
status) do_status ;;
ocsp-stop) stop_card_ocsp ;;
ocsp-start) start_card_ocsp ;;
*) usage ;;
esac
