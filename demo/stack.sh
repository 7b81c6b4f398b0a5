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
#   demo/stack.sh tsa-stop|tsa-start STATE_DIR  the TSA alone (demo/stack_documents.sh)
#   demo/stack.sh renumber IN OUT DIR INSTANCE PUBLIC CARD MGMT [CLEARTEXT]
#                                     config IN as another instance's (ports, audit
#                                     and access log under DIR): stack_config_renumber
#
# Environment:
#   BUILD_DIR          where the binaries are (build, build/asan; default build)
#   EXTRA_POLICIES     a directory whose *.yaml are added to the policies
#   LOCKOUT_ATTEMPTS, LOCKOUT_ADDRESS_ATTEMPTS, LOCKOUT_WINDOW, LOCKOUT_DURATION
#                      override the lockout section of the gateway config
#   STARTS_PER_ADDRESS, QR_PENDING_PER_ADDRESS
#                      override limits.starts_per_address and
#                      mobile.qr_pending_per_address (the test stacks start many
#                      logins from 127.0.0.1 and raise them)
#   CONFIG_SET         more overrides: "section.key=value ..." (top-level sections)
#   CONFIG_HOOK        a program run on the finished config (its path as argument)
#   AUDIT_ROTATE       the audit.rotate mapping, e.g. "size: 64KiB" (t_audit_rotate)
#   PEOPLE_TOTAL (12), PEOPLE_REGISTERED (8)
#   CARDS (1)          0: no demo cards (STATE_DIR/cards/) and no e-signature OCSP
#                      responder (port 9105); see demo/stack_cards.sh
#   MOBILE (1)         0: no mobile world (SIMs, MSSP, phones, mobile OCSP responder)
#   SIM_ABSENT (4)     SIM holders whose phones are off (after 3 with phones
#                      and 1 with a revoked SIM)
#   MSSP_USER_TIMEOUT (120), MSSP_DELIVERY_TIMEOUT (10)   the MSSP's --user-timeout
#                      and --delivery-timeout (seconds, or 1500ms, 2s, 2m)
#   PHONE_DELAY_MS (1500)  how long a demo phone's user takes to answer
#
# Ports: 9101 registry peer (h2, TLS, gateway client certificate required),
#        8443 gateway (h2, TLS), plus every other port the config's listeners name;
#        mobile world: 9103 MSSP (h2, TLS), 9107 mobile CA's OCSP responder,
#        9111..9114 the phones' control endpoints (h2c), 9115, 9116 the judges' phones.
# Layout of STATE_DIR: certs/ keys/ (certs/mkpki.sh), registry.db, darvaza.yaml,
# policies/, logs/{registry,darvazad}.log, pids/{registry,darvazad}.pid,
# people.json, and whatever the gateway keeps (accounts.db, audit.log);
# sim/ (SIM keys, certificates and PINs, phones.json, mobile-index.txt).
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
# The mobile world's processes (see start_mobile); none with MOBILE=0.
MOBILE=${MOBILE:-1}
MOBILE_PROCS=(ocsp-mobile mssp phone1 phone2 phone3 phone4 phone5 phone6)
[ "$MOBILE" != 0 ] || MOBILE_PROCS=()
PROCS=(registry "${MOBILE_PROCS[@]}" darvazad)

say() { echo "stack: $*"; }
die() { echo "stack: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|reload|status|ocsp-stop|ocsp-start|tsa-stop|tsa-start STATE_DIR" >&2
    exit 2
}

# The e-signature card world: demo cards, their OCSP responder, the card
# fields of people.json.
. "$ROOT/demo/stack_cards.sh"

# The signed-documents world: the TSA and the e-court (demo/stack_documents.sh).
. "$ROOT/demo/stack_documents.sh"

# The SMS gateway stand-in: registration codes and account notices (demo/stack_sms.sh).
. "$ROOT/demo/stack_sms.sh"

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
    [ -z "${STARTS_PER_ADDRESS:-}" ] ||
        yaml_set "$cfg" limits starts_per_address "$STARTS_PER_ADDRESS"
    [ -z "${QR_PENDING_PER_ADDRESS:-}" ] ||
        yaml_set "$cfg" mobile qr_pending_per_address "$QR_PENDING_PER_ADDRESS"
    # AUDIT_ROTATE: the audit.rotate mapping's body, e.g. "size: 64KiB, every: 1d".
    [ -z "${AUDIT_ROTATE:-}" ] || sed -i "/^audit:/a\\  rotate: { $AUDIT_ROTATE }" "$cfg"
    # ACCOUNTS_PG: the accounts.postgresql mapping's body, e.g.
    # "conninfo_file: /path, pool: 4": the accounts move to PostgreSQL.
    [ -z "${ACCOUNTS_PG:-}" ] ||
        sed -i "/^accounts:/a\\  backend: postgresql\\n  postgresql: { $ACCOUNTS_PG }" "$cfg"
    # STORE_REDIS: the store.redis mapping's body, e.g. "address: 127.0.0.1:9136,
    # prefix: x": the ephemeral store moves to Redis.
    [ -z "${STORE_REDIS:-}" ] ||
        sed -i "/^store:/a\\  backend: redis\\n  redis: { $STORE_REDIS }" "$cfg"
    for kv in ${CONFIG_SET:-}; do
        [[ "$kv" =~ ^([a-z_]+)\.([a-z0-9_]+)=(.+)$ ]] || die "CONFIG_SET item '$kv' is not section.key=value"
        yaml_set "$cfg" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    done
    # CONFIG_HOOK: a program given the config's path, run last, that edits it
    # in place (demo/cluster.sh: the instance's own ports, Redis, audit id).
    [ -z "${CONFIG_HOOK:-}" ] || "$CONFIG_HOOK" "$cfg" || die "CONFIG_HOOK $CONFIG_HOOK failed on $cfg"
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
    make_oidc_clients
    return 0
}

# stack_config_renumber IN OUT DIR INSTANCE PUBLIC CARD MGMT [CLEARTEXT]:
# IN (a gateway config) as the config of another instance on this host,
# written to OUT (may be IN): the one way the demo cluster, the benchmark's
# setup (c') and the tests derive a second gateway from the stack's.
#   - the public TLS listener to port PUBLIC, the card listener (the TLS one
#     with client_auth: required) to CARD, the cleartext one to CLEARTEXT
#     or, without it (or "-"), dropped; the management listener to MGMT;
#   - its own files under DIR: the audit chain in DIR/audit.log (with its
#     key_archive, if set, beside it), the access log in DIR/logs/access.log
#     (not beside the audit log: `darvaza audit verify DIR` reads every
#     *.log); audit.instance INSTANCE unless "-".
# What instances share stays: keys, policies, gateway.id and origin, the
# store and accounts (a second instance sharing state needs store.backend
# redis and accounts.backend postgresql; one SQLite file is not shared).
# Fails (and writes nothing) if IN has not exactly one listener of each
# kind it renumbers.
stack_config_renumber() {
    local in=$1 out=$2 dir=$3 inst=$4 pub=$5 card=$6 mgmt=$7 clear=${8:--} tmp
    mkdir -p "$dir/logs"
    tmp=$(mktemp "$out.XXXXXX")
    if ! awk -v pub="$pub" -v card="$card" -v clear="$clear" -v mgmt="$mgmt" -v dir="$dir" \
        -v inst="$inst" '
        # A listener item is buffered until the next one (or the section)
        # ends: its kind shows only in its tls: block.
        function flush(   i, kind, port) {
            if (!n) return
            kind = !tls ? "clear" : required ? "card" : "pub"
            seen[kind]++
            port = kind == "pub" ? pub : kind == "card" ? card : clear
            if (port != "-")
                for (i = 1; i <= n; i++)
                    print (item[i] ~ /^    port:/ ? "    port: " port : item[i])
            n = tls = required = 0
        }
        /^[^ #]/ { if (sec == "listeners:") flush(); sec = $1 }
        sec == "listeners:" && /^  - / { flush() }
        sec == "listeners:" && (n || /^  - /) {
            item[++n] = $0
            if ($0 ~ /^    tls:/) tls = 1
            if ($0 ~ /^      client_auth:[ ]*required/) required = 1
            next
        }
        sec == "management:" && /^  listen:/ { sub(/:[0-9]+/, ":" mgmt); listen = 1 }
        sec == "audit:" && /^  file:/ { print "  file: " dir "/audit.log"; next }
        sec == "audit:" && /^  key_archive:/ { print "  key_archive: " dir "/audit-keys.jwks"; next }
        sec == "audit:" && /^  instance:/ && inst != "-" { next }
        sec == "access_log:" && /^  file:/ { print "  file: " dir "/logs/access.log"; next }
        { print }
        /^audit:/ && inst != "-" { print "  instance: " inst }
        END {
            if (sec == "listeners:") flush()
            if (seen["pub"] != 1 || seen["card"] > 1 || seen["clear"] > 1 || !listen) exit 3
            if (card != "-" && seen["card"] != 1) exit 3
        }' "$in" >"$tmp"; then
        rm -f "$tmp"
        echo "stack: error: $in: cannot renumber (one public TLS listener and a management listener are needed, at most one card and one cleartext listener)" >&2
        return 1
    fi
    mv "$tmp" "$out"
}

# The demo's OpenID Connect clients (demo/policies): their secrets made once
# into STATE/oidc/ (0600), their paths moved under STATE like the config's.
make_oidc_clients() {
    local f n
    mkdir -p "$STATE/oidc"
    for f in "$ROOT"/demo/policies/*.yaml; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .yaml)
        if [ ! -s "$STATE/oidc/$n.secret" ]; then
            (umask 077 && openssl rand -base64 48 | tr -d '\n/+=' >"$STATE/oidc/$n.secret")
        fi
        sed -e "s#build/demo/#$STATE/#g" "$f" >"$STATE/policies/$n.yaml"
    done
}

# The ports every process of the stack will listen on.
stack_ports() {
    echo "${REGISTRY_ADDR##*:}"
    awk '/^listeners:/ { l = 1; next } /^[^ #]/ { l = 0 }
         l && $1 == "port:" { print $2 }' "$STATE/darvaza.yaml"
}

# demo_ports: "PORT WHAT" for every port the stack will listen on, from the
# same variables and config the processes are started with (the one list the
# start-up check reads).  Needs STATE/darvaza.yaml (make_config).
demo_ports() {
    local url p i=0
    echo "${REGISTRY_ADDR##*:} registry peer"
    for p in $(stack_ports | tail -n +2); do
        i=$((i + 1))
        echo "$p gateway listener $i"
    done
    p=$(yaml_get "$STATE/darvaza.yaml" management listen)
    [ -z "$p" ] || echo "${p##*:} gateway management listener"
    if [ "$MOBILE" != 0 ]; then
        url=$(yaml_get "$STATE/darvaza.yaml" mobile mssp_url)
        if [[ "$url" =~ ^https://127\.0\.0\.1:([0-9]+)/?$ ]]; then
            echo "${BASH_REMATCH[1]} MSSP"
            echo "${MOBILE_OCSP_ADDR##*:} mobile OCSP responder"
            for p in $(seq "$PHONE_CONTROL_BASE" $((PHONE_CONTROL_BASE + SIM_HOLDERS))); do
                echo "$p demo phone control"
            done
        fi
    fi
    [ "$CARDS" = 0 ] || echo "$CARD_OCSP_PORT e-signature OCSP responder"
    if [ "$DOCUMENTS" != 0 ]; then
        echo "${TSA_ADDR##*:} time-stamping authority"
        echo "${COURT_ADDR##*:} e-court"
    fi
    [ "$SMS" = 0 ] || echo "${SMS_ADDR##*:} SMS gateway"
}

# port_holder PORT: "program (pid N)" listening on PORT, when ss can tell.
port_holder() {
    local u
    u=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1)
    [ -n "$u" ] || return 0
    u=${u#users:((\"}
    echo "${u%%\"*} (pid ${u##*pid=})"
}

# check_ports: every port of demo_ports free, before anything starts; else
# one line per taken port and exit 1.
check_ports() {
    local port what holder busy=0
    while read -r port what; do
        port_busy "$port" || continue
        holder=$(port_holder "$port")
        echo "stack: error: port $port ($what) is already taken${holder:+ by $holder}" >&2
        busy=1
    done < <(demo_ports)
    [ $busy -eq 0 ] || die "nothing was started; free the port(s) above or stop the other stack"
}

# ---- a start interrupted half-way ---------------------------------------------------
# A start writes SETUP_MARK last, atomically, once everything it makes (PKI,
# registry, registered people, people.json) is complete.  A STATE_DIR with
# files but no mark was left by a start that was killed (kill -9, a closed
# terminal, power loss): its accounts and people.json may disagree, so it is
# made afresh, saying so, after stopping what that start left running.
SETUP_MARK=.set-up-complete

is_stack_dir() {
    [ -f "$STATE/darvaza.yaml" ] || [ -d "$STATE/pids" ] || [ -d "$STATE/certs" ] || [ -d "$STATE/logs" ]
}

afresh_if_half_made() {
    local name pid left=()
    [ -e "$STATE/$SETUP_MARK" ] && return 0
    # STATE/cluster and STATE/pg belong to demo/cluster.sh, which starts its
    # services before the stack: neither is a sign of a half-made stack.
    [ -n "$(ls -A "$STATE" 2>/dev/null | grep -vx -e cluster -e pg)" ] || return 0
    is_stack_dir || die "$STATE holds files that are not a demo stack's; choose another directory"
    # Made before the mark existed: people.json is written (atomically) only
    # once every registration is done, so with the accounts it is whole.
    if [ -f "$STATE/accounts.db" ] && jq -e 'length > 0' "$STATE/people.json" >/dev/null 2>&1; then
        mark_set_up
        return 0
    fi
    for name in "${PROCS[@]}"; do
        pid=$(pid_of "$name")
        [ -z "$pid" ] || left+=("$name:$pid")
    done
    say "$STATE was left half made by an interrupted start: starting afresh"
    [ ${#left[@]} -eq 0 ] || { say "stopping what that start left running"; stop_all "${left[@]}"; }
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name cluster ! -name pg -exec rm -rf {} +
    mkdir -p "$STATE"
}

mark_set_up() {
    : >"$STATE/$SETUP_MARK.tmp"
    mv "$STATE/$SETUP_MARK.tmp" "$STATE/$SETUP_MARK"
}

# SETUP_HOLD (tests only): after the first person is registered, create this
# file and wait (at most 120 s) until it is removed: a test can then kill
# the start while it is certainly half-way.
setup_hold() {
    local end
    [ -n "${SETUP_HOLD:-}" ] || return 0
    : >"$SETUP_HOLD"
    end=$(($(date +%s) + 120))
    while [ -e "$SETUP_HOLD" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
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
    # PEOPLE_KEEP: the accounts live elsewhere (PostgreSQL: demo/cluster.sh).
    if [ -s "$out" ] && { [ -f "$STATE/accounts.db" ] || [ -n "${PEOPLE_KEEP:-}" ]; } &&
        jq -e 'length > 0' "$out" >/dev/null 2>&1; then
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
            # The code goes by SMS to the phone the registry holds (stack_sms.sh).
            resp=$(register_person "$fin" "$doc" "$pw" "$phone") ||
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
        [ $n -ne 0 ] || setup_hold
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

# ---- the mobile world (DESIGN §4.5, §4.6; docs/mobile.md) -------------------------
# SIM holders are people of the registry: the first SIM_HOLDERS hold a SIM
# and a phone that approves by itself (phone1..phone3); the next one holds a
# revoked SIM, and its phone (phone4) runs too, so that the gateway's
# revocation check is what refuses it; the next SIM_ABSENT hold SIMs whose
# phones are switched off (the MSSP ends their requests PHONE_ABSENT).  The
# MSSP listens where the config's mobile.mssp_url points, the mobile CA's
# OCSP responder (openssl ocsp) where the SIM certificates' AIA points.
SIM_HOLDERS=3                    # fixed: PROCS names their phones
SIM_ABSENT=${SIM_ABSENT:-4}
MOBILE_OCSP_ADDR=127.0.0.1:9107  # certs/mksim.sh writes it into every SIM certificate
PHONE_CONTROL_BASE=9111          # phoneN's control endpoint is 127.0.0.1:(9110 + N)
MSSP_USER_TIMEOUT=${MSSP_USER_TIMEOUT:-120}
MSSP_DELIVERY_TIMEOUT=${MSSP_DELIVERY_TIMEOUT:-10}
PHONE_DELAY_MS=${PHONE_DELAY_MS:-1500}
MSSP_ADDR=                       # from the config's mobile.mssp_url
# The demo judges (rows 8 and 9, demo/stack_cards.sh) hold SIMs too, whose
# certificates carry the judge marks (certs/mksim.sh --judge), and phones
# that approve by themselves: phone5 and phone6, control 9115 and 9116.
JUDGE_SIM_FIRST_ROW=8
JUDGE_SIMS=2
JUDGE_PHONE_BASE=$((PHONE_CONTROL_BASE + SIM_HOLDERS + 1))

# judge_rows: "FIN|PHONE|Name Surname" of the judges who hold a SIM (none
# when the registry is too small for the demo judges).
judge_rows() {
    sqlite3 -separator '|' "$STATE/registry.db" \
        "SELECT p.fin, (SELECT number FROM phone WHERE fin = p.fin ORDER BY pos LIMIT 1),
                p.name || ' ' || p.surname
         FROM person p ORDER BY p.rowid LIMIT $JUDGE_SIMS OFFSET $JUDGE_SIM_FIRST_ROW"
}

# mobile_rows: "FIN|PHONE|Name Surname" of every SIM holder, in registry
# order: SIM_HOLDERS with phones, one revoked, SIM_ABSENT switched off.
mobile_rows() {
    sqlite3 -separator '|' "$STATE/registry.db" \
        "SELECT p.fin, (SELECT number FROM phone WHERE fin = p.fin ORDER BY pos LIMIT 1),
                p.name || ' ' || p.surname
         FROM person p ORDER BY p.rowid LIMIT $((SIM_HOLDERS + 1 + SIM_ABSENT))"
}

# make_sims: SIM keys (PIN-protected) and certificates under the mobile CA,
# the MSSP's phones.json and the OCSP index (certs/mksim.sh, idempotent);
# each holder's PIN in sim/FIN.pin (0600), kept across starts.
make_sims() {
    local rows=() specs=() i fin phone name pin
    mapfile -t rows < <(mobile_rows)
    [ ${#rows[@]} -eq $((SIM_HOLDERS + 1 + SIM_ABSENT)) ] ||
        die "the registry has too few people for $((SIM_HOLDERS + 1 + SIM_ABSENT)) SIM holders"
    mkdir -p "$STATE/sim"
    for i in "${!rows[@]}"; do
        IFS='|' read -r fin phone name <<<"${rows[$i]}"
        if [ ! -s "$STATE/sim/$fin.pin" ]; then
            pin=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
            (umask 077 && printf '%04d\n' $((pin % 10000)) >"$STATE/sim/$fin.pin")
        fi
        pin=$(head -n 1 "$STATE/sim/$fin.pin")
        if [ "$i" -eq "$SIM_HOLDERS" ]; then
            specs+=(--revoked "$fin:$phone:$pin:$name")
        else
            specs+=("$fin:$phone:$pin:$name")
        fi
    done
    while IFS='|' read -r fin phone name; do
        if [ ! -s "$STATE/sim/$fin.pin" ]; then
            pin=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
            (umask 077 && printf '%04d\n' $((pin % 10000)) >"$STATE/sim/$fin.pin")
        fi
        specs+=(--judge "$fin:$phone:$(head -n 1 "$STATE/sim/$fin.pin"):$name")
    done < <(judge_rows)
    "$ROOT/certs/mksim.sh" "$STATE/certs" "$STATE/sim" "${specs[@]}" \
        >>"$STATE/logs/mksim.log" 2>&1 || { tail -n 5 "$STATE/logs/mksim.log" >&2; die "certs/mksim.sh failed"; }
}

# start_mobile: SIMs, the mobile OCSP responder, the MSSP and the phones;
# nothing when the config has no mobile.mssp_url.
start_mobile() {
    local cfg="$STATE/darvaza.yaml" url rp secret p i fin phone name
    [ "$MOBILE" != 0 ] || return 0
    url=$(yaml_get "$cfg" mobile mssp_url)
    [ -n "$url" ] || { say "no mobile.mssp_url in the config: no MSSP, no phones"; return 0; }
    [[ "$url" =~ ^https://127\.0\.0\.1:([0-9]+)/?$ ]] || die "mobile.mssp_url $url: the demo MSSP runs on https://127.0.0.1:PORT"
    MSSP_ADDR=127.0.0.1:${BASH_REMATCH[1]}
    rp=$(yaml_get "$cfg" mobile relying_party)
    secret=$(yaml_get "$cfg" mobile rp_secret_file)
    [ -n "$rp" ] && [ -s "$secret" ] || die "mobile.relying_party or rp_secret_file ($secret) missing"
    for p in "${MSSP_ADDR##*:}" "${MOBILE_OCSP_ADDR##*:}" $(seq "$PHONE_CONTROL_BASE" $((JUDGE_PHONE_BASE + JUDGE_SIMS - 1))); do
        ! port_busy "$p" || die "port $p is busy (another stack or program listens on it)"
    done
    make_sims

    # openssl ocsp rereads the index when it changes; argv[0] names it ours
    # for pid_of.  -nmin: answers carry a nextUpdate, so the gateway caches
    # them.  OpenSSL 3.0's -port takes a number only: it listens on every
    # address (what it tells is public anyway, like the CRL); -timeout bounds
    # a client that connects and sends nothing.
    launch ocsp-mobile bash -c 'exec -a darvaza-ocsp-mobile openssl ocsp "$@"' darvaza-ocsp-mobile \
        -index "$STATE/sim/mobile-index.txt" -port "${MOBILE_OCSP_ADDR##*:}" \
        -rsigner "$STATE/certs/mobile-ocsp.pem" -rkey "$STATE/certs/mobile-ocsp.key" \
        -CA "$STATE/certs/mobile-ca.pem" -nmin 60 -timeout 5 -ignore_err
    # (not probed with a connection: openssl ocsp serves one at a time)
    wait_for ocsp-mobile 10 grep -q 'waiting for OCSP client connections' "$STATE/logs/ocsp-mobile.log"
    say "mobile CA's OCSP responder on $MOBILE_OCSP_ADDR (pid $(pid_of ocsp-mobile))"

    launch mssp "$PEER_BIN" mssp --listen "$MSSP_ADDR" \
        --tls-cert "$STATE/certs/peer-tls.pem" --tls-key "$STATE/certs/peer-tls.key" \
        --phones "$STATE/sim/phones.json" --rp "$rp:@$secret" \
        --user-timeout "$MSSP_USER_TIMEOUT" --delivery-timeout "$MSSP_DELIVERY_TIMEOUT"
    wait_for mssp 10 curl -sf --http2 --max-time 2 --cacert "$STATE/certs/root.pem" \
        "https://localhost:${MSSP_ADDR##*:}/_mssp/sessions"
    say "MSSP on $MSSP_ADDR (pid $(pid_of mssp)), relying party $rp"

    # One phone per holder with a phone: the SIM_HOLDERS, then the revoked one.
    i=0
    while IFS='|' read -r fin phone name && [ $i -le "$SIM_HOLDERS" ]; do
        i=$((i + 1))
        launch "phone$i" "$PEER_BIN" phone --mssp "https://localhost:${MSSP_ADDR##*:}" \
            --cacert "$STATE/certs/root.pem" --phone "$phone" --key "$STATE/sim/sim-$fin.key" \
            --pin-file "$STATE/sim/$fin.pin" --delay-ms "$PHONE_DELAY_MS" \
            --control "127.0.0.1:$((PHONE_CONTROL_BASE + i - 1))"
    done < <(mobile_rows)
    # The judges' phones: phone5, phone6.
    while IFS='|' read -r fin phone name; do
        i=$((i + 1))
        launch "phone$i" "$PEER_BIN" phone --mssp "https://localhost:${MSSP_ADDR##*:}" \
            --cacert "$STATE/certs/root.pem" --phone "$phone" --key "$STATE/sim/sim-$fin.key" \
            --pin-file "$STATE/sim/$fin.pin" --delay-ms "$PHONE_DELAY_MS" \
            --control "127.0.0.1:$((PHONE_CONTROL_BASE + i - 1))"
    done < <(judge_rows)
    for i in $(seq 1 "$i"); do
        wait_for "phone$i" 10 curl -sf --http2-prior-knowledge --max-time 2 \
            "http://127.0.0.1:$((PHONE_CONTROL_BASE + i - 1))/mode"
    done
    say "$i phones (control 127.0.0.1:$PHONE_CONTROL_BASE..$((PHONE_CONTROL_BASE + i - 1)); the judges' from $JUDGE_PHONE_BASE), $SIM_ABSENT SIM holders with their phones off"
}

# mobile_people: adds to people.json, for every SIM holder: "sim": true,
# "phone" (the number the MSSP knows), "sim_pin", "sim_key", "sim_cert",
# "sim_revoked", "phone_on" and "phone_control" (its control port, or
# null); the judges' SIMs the same plus "sim_judge": true; "sim": false for
# everyone else.  Run at every start.
mobile_people() {
    local out="$STATE/people.json" tmp m='{}' i=0 fin phone name ctl
    [ "$MOBILE" != 0 ] && [ -f "$STATE/sim/phones.json" ] && [ -s "$out" ] || return 0
    while IFS='|' read -r fin phone name; do
        ctl=null
        [ $i -gt "$SIM_HOLDERS" ] || ctl=$((PHONE_CONTROL_BASE + i))
        m=$(jq -c --arg f "$fin" --arg p "$phone" --arg pin "$(head -n 1 "$STATE/sim/$fin.pin")" \
            --arg k "$STATE/sim/sim-$fin.key" --arg c "$STATE/sim/sim-$fin.pem" \
            --argjson r "$([ $i -eq "$SIM_HOLDERS" ] && echo true || echo false)" --argjson ctl "$ctl" \
            '. + {($f): {sim: true, phone: $p, sim_pin: $pin, sim_key: $k, sim_cert: $c,
                         sim_revoked: $r, phone_on: ($ctl != null), phone_control: $ctl}}' <<<"$m")
        i=$((i + 1))
    done < <(mobile_rows)
    i=0
    while IFS='|' read -r fin phone name; do
        [ -s "$STATE/sim/sim-$fin.pem" ] || continue
        m=$(jq -c --arg f "$fin" --arg p "$phone" --arg pin "$(head -n 1 "$STATE/sim/$fin.pin")" \
            --arg k "$STATE/sim/sim-$fin.key" --arg c "$STATE/sim/sim-$fin.pem" \
            --argjson ctl "$((JUDGE_PHONE_BASE + i))" \
            '. + {($f): {sim: true, sim_judge: true, phone: $p, sim_pin: $pin, sim_key: $k, sim_cert: $c,
                         sim_revoked: false, phone_on: true, phone_control: $ctl}}' <<<"$m")
        i=$((i + 1))
    done < <(judge_rows)
    tmp=$(mktemp "$out.XXXXXX")
    jq --argjson m "$m" 'map(. + ($m[.fin] // {sim: false}))' "$out" >"$tmp" ||
        { rm -f "$tmp"; die "cannot add the SIM holders to $out"; }
    chmod 600 "$tmp"
    mv "$tmp" "$out"
}

# ---- commands ------------------------------------------------------------------------

do_start() {
    local name p
    [ -x "$PEER_BIN" ] || die "no $PEER_BIN (make first, or set BUILD_DIR)"
    [ -x "$GW_BIN" ] || die "no $GW_BIN (make first, or set BUILD_DIR)"
    afresh_if_half_made
    for name in "${PROCS[@]}"; do
        [ -z "$(pid_of "$name")" ] ||
            die "$name already runs for $STATE (pid $(pid_of "$name")); stop it first: demo/stack.sh stop $STATE"
    done
    mkdir -p "$STATE"/{certs,keys,logs,pids}
    rm -f "$STATE"/pids/*.pid "$STATE"/pids/*.stopped

    make_config
    check_ports
    "$ROOT/certs/mkpki.sh" "$STATE/certs" "$STATE/keys" >/dev/null
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

    start_mobile

    start_documents

    start_sms

    launch darvazad "$GW_BIN" -c "$STATE/darvaza.yaml"
    wait_for darvazad "$READY_TIMEOUT" curl -sf --max-time 2 --cacert "$STATE/certs/root.pem" \
        "$GW_URL/readyz"
    say "gateway on $GW_URL (pid $(pid_of darvazad))"

    make_people
    card_people
    mobile_people
    mark_set_up
    say "up: state in $STATE"
}

# alive PID: the process runs (a zombie waiting for its reaper has stopped).
alive() {
    kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_all NAME:PID...: SIGTERM them together, wait (bounded), SIGKILL the rest.
stop_all() {
    local np left end=$(($(date +%s) + STOP_TIMEOUT))
    for np in "$@"; do kill -TERM "${np#*:}" 2>/dev/null || true; done
    while :; do
        left=0
        for np in "$@"; do alive "${np#*:}" && left=1; done
        [ $left -eq 1 ] && [ "$(date +%s)" -lt "$end" ] || break
        sleep 0.1
    done
    for np in "$@"; do
        if alive "${np#*:}"; then
            say "${np%%:*} (pid ${np#*:}) did not stop in ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "${np#*:}" 2>/dev/null || true
        else
            say "${np%%:*} (pid ${np#*:}) stopped"
        fi
    done
}

do_stop() {
    local name pid gw=() peers=()
    for name in "${PROCS[@]}"; do
        pid=$(pid_of "$name")
        [ -n "$pid" ] || continue
        if [ "$name" = darvazad ]; then gw+=("$name:$pid"); else peers+=("$name:$pid"); fi
    done
    # The gateway first and alone (it drains what it forwards to the peers),
    # then every peer at once: stopping them one by one made a stop outlast
    # the callers' timeouts and leave peers behind.
    [ ${#gw[@]} -eq 0 ] || stop_all "${gw[@]}"
    [ ${#peers[@]} -eq 0 ] || stop_all "${peers[@]}"
    for name in "${PROCS[@]}"; do rm -f "$STATE/pids/$name.pid"; done
    [ ${#gw[@]} -gt 0 ] || [ ${#peers[@]} -gt 0 ] || say "nothing runs for $STATE"
    return 0
}

do_reload() {
    local pid
    pid=$(pid_of darvazad)
    [ -n "$pid" ] || die "the gateway does not run for $STATE"
    kill -HUP "$pid"
    say "SIGHUP sent to darvazad (pid $pid)"
}

# A process stopped on purpose (ocsp-stop, tsa-stop: a test or an operator
# showing what the gateway does without it) leaves pids/NAME.stopped, so
# status, and the demo's watch on the stack, do not take it for a crash.
mark_stopped() { : >"$STATE/pids/$1.stopped"; }
unmark_stopped() { rm -f "$STATE/pids/$1.stopped"; }

do_status() {
    local name pid rc=0
    for name in "${PROCS[@]}"; do
        pid=$(pid_of "$name")
        if [ -n "$pid" ]; then
            say "$name runs (pid $pid)"
        elif [ -f "$STATE/pids/$name.stopped" ]; then
            say "$name stopped on purpose (demo/stack.sh ocsp-start|tsa-start brings it back)"
        else
            say "$name is down"
            rc=1
        fi
    done
    return $rc
}

# renumber: the config of another instance (stack_config_renumber); no stack
# directory of its own.
if [ "${1:-}" = renumber ]; then
    shift
    [ $# -ge 7 ] && [ $# -le 8 ] ||
        { echo "usage: $0 renumber IN OUT DIR INSTANCE PUBLIC CARD MGMT [CLEARTEXT]" >&2; exit 2; }
    stack_config_renumber "$@"
    exit
fi
[ $# -eq 2 ] || usage
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
case $1 in
start) do_start ;;
stop) do_stop ;;
reload) do_reload ;;
status) do_status ;;
ocsp-stop) stop_card_ocsp && mark_stopped ocsp-esign ;;
ocsp-start) unmark_stopped ocsp-esign && start_card_ocsp ;;
tsa-stop) stop_tsa && mark_stopped tsa ;;
tsa-start) unmark_stopped tsa && start_tsa ;;
*) usage ;;
esac
