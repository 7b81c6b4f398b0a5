#!/usr/bin/env bash
# t_install.sh - what `make install` puts on a system runs: the installed
# binaries print their version and commit, the man pages are clean mdoc and
# darvaza.yaml(5) names every key, the systemd unit verifies, the installed
# darvazad serves the demo stack; then, started as root with gateway.user,
# it drops to that account (uid/gid in /proc), still serves and reloads, and
# tells a stand-in notify socket READY=1, RELOADING=1, STOPPING=1; an
# unknown account is refused at load with file:line.
# run.sh: alone (it changes the machine: packages or system users)
. "$(dirname "$0")/lib.sh"
plan 28

INST="$WORK/root"
SRC_BUILD=$BUILD_DIR
VERSION_WANT=$(cat "$ROOT/VERSION")
COMMIT_WANT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
TEST_USER=darvaza-t
# wait_for_file_match FILE ERE [TRIES]: poll (0.2 s steps) until FILE matches.
wait_match() {
    local i
    for i in $(seq 1 "${3:-150}"); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# ---- make install -----------------------------------------------------------
ok "make install DESTDIR=... PREFIX=/usr" \
    make -C "$ROOT" --no-print-directory install DESTDIR="$INST" PREFIX=/usr BUILD="$SRC_BUILD"
missing=""
for f in usr/sbin/darvazad usr/bin/darvaza usr/bin/darvaza-card \
    usr/share/man/man8/darvazad.8 usr/share/man/man1/darvaza.1 usr/share/man/man1/darvaza-card.1 \
    usr/share/man/man5/darvaza.yaml.5 etc/darvaza/darvaza.yaml.example \
    usr/share/darvaza/examples/policies/registry.yaml usr/share/darvaza/web/index.html \
    usr/lib/systemd/system/darvazad.service usr/lib/sysusers.d/darvaza.conf \
    usr/lib/tmpfiles.d/darvaza.conf etc/logrotate.d/darvaza; do
    [ -f "$INST/$f" ] || missing+=" $f"
done
is "$missing" "" "every expected file is installed"
like "$(grep '^ExecStart=' "$INST/usr/lib/systemd/system/darvazad.service")" \
    '^ExecStart=/usr/sbin/darvazad -c /etc/darvaza/darvaza.yaml$' "the unit runs the installed path"

# ---- --version --------------------------------------------------------------
for b in usr/sbin/darvazad usr/bin/darvaza usr/bin/darvaza-card; do
    n=$(basename "$b")
    is "$("$INST/$b" --version 2>&1 | head -n 1)" "$n $VERSION_WANT (commit $COMMIT_WANT)" "$n --version: VERSION and HEAD"
done
like "$("$INST/usr/sbin/darvazad" -V | sed -n 2p)" '^OpenSSL 3\.[0-9.]+.*, nghttp2 1\.[0-9.]+$' \
    "darvazad -V names the OpenSSL and nghttp2 it runs with"

# ---- man pages --------------------------------------------------------------
pages=$(find "$INST/usr/share/man" -type f | sort)
lint=$(for p in $pages; do mandoc -Tlint -W warning "$p" 2>&1; done)
is "$(echo "$pages" | wc -l | tr -d ' ')/$lint" "4/" "mandoc -Tlint is clean on the 4 man pages"
# Every key of the config tables (gateway/core/config.c) is in darvaza.yaml(5).
keys=$(grep -oE '^\s*\{"[a-z_0-9]+", T_' "$ROOT/gateway/core/config.c" | grep -oE '"[a-z_0-9]+"' | tr -d '"' | sort -u)
undoc=""
for k in $keys; do grep -Eq "^\.(It Cm|Ss) ([a-z_]+(\[\])?\.)?$k\$" "$INST/usr/share/man/man5/darvaza.yaml.5" || undoc+=" $k"; done
is "$(echo "$keys" | wc -l | awk '$1 > 80 {print "many"}')/$undoc" "many/" "darvaza.yaml(5) documents every config key"

# ---- systemd unit -----------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart= exists and that Documentation= man pages
    # resolve: point both at the DESTDIR tree.
    sed "s|/usr/sbin/darvazad|$INST/usr/sbin/darvazad|g" \
        "$INST/usr/lib/systemd/system/darvazad.service" >"$WORK/darvazad.service"
    ok "systemd-analyze verify on the installed unit" \
        env MANPATH="$INST/usr/share/man" systemd-analyze verify "$WORK/darvazad.service"
    expo=$(systemd-analyze security --offline=true "$WORK/darvazad.service" 2>&1 |
        grep -oE 'Overall exposure level for [^:]+: [0-9.]+' | grep -oE '[0-9.]+$')
    diag "systemd-analyze security --offline: exposure $expo"
    like "$expo" '^(0\.[0-9]|1\.[0-9]|2\.[0-4])$' "systemd-analyze security: exposure below 2.5 (got ${expo:-none})"
else
    fail "systemd-analyze verify on the installed unit" "systemd-analyze is missing (package systemd): the unit was not checked"
    fail "systemd-analyze security: exposure below 2.5" "systemd-analyze is missing (package systemd)"
fi

# ---- the installed darvazad runs the demo stack -----------------------------
# The stack takes its binaries from BUILD_DIR: the installed gateway, the
# peers (not installed) from the build.
mkdir -p "$WORK/bin"
ln -sf "$INST/usr/sbin/darvazad" "$WORK/bin/darvazad"
ln -sf "$SRC_BUILD/darvaza-peer" "$WORK/bin/darvaza-peer"
BUILD_DIR="$WORK/bin" stack_start MOBILE=0 CARDS=0
gw_pid=$(cat "$STATE_DIR/pids/darvazad.pid")
is "$(readlink "/proc/$gw_pid/exe")" "$INST/usr/sbin/darvazad" "the stack's gateway is the installed darvazad"
fin=$(pick_person registered 0)
login "$fin" "$(person "$fin" password)" "$(person "$fin" totp_secret)"
is "$STATUS" 200 "a password login through the installed gateway"

# ---- the example config is a valid one -------------------------------------
# Its paths moved under WORK, the files it names taken from the demo PKI.
ex="$WORK/etc/darvaza"
mkdir -p "$ex/tls" "$ex/keys" "$WORK/var"
cp "$STATE_DIR/certs/gateway-tls.pem" "$ex/tls/gateway.pem"
cp "$STATE_DIR/certs/gateway-tls.key" "$ex/tls/gateway.key"
cp "$STATE_DIR/certs/root.pem" "$ex/tls/upstream-ca.pem"
cp "$STATE_DIR/certs/gateway-client.pem" "$STATE_DIR/certs/gateway-client.key" "$ex/tls/"
cp "$STATE_DIR/keys/seed.key" "$STATE_DIR/keys/assertion-k1.pem" "$ex/keys/"
chmod 600 "$ex/keys/"* "$ex/tls/"*.key
cp -r "$INST/usr/share/darvaza/examples/policies" "$ex/policies"
sed -e "s|/etc/darvaza|$ex|g" -e "s|/var/lib/darvaza|$WORK/var|g" -e "s|/usr/share/darvaza|$INST/usr/share/darvaza|g" \
    "$INST/etc/darvaza/darvaza.yaml.example" >"$ex/darvaza.yaml"
ok "the installed darvaza.yaml.example passes darvazad --check" \
    "$INST/usr/sbin/darvazad" -c "$ex/darvaza.yaml" --check

# ---- logrotate: the access log only ------------------------------------------
id "$TEST_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$TEST_USER"
mkdir -p "$WORK/log"
echo '{"line":1}' >"$WORK/log/access.log"
sed -e "s|/var/log/darvaza|$WORK/log|" -e "s/create 0640 darvaza darvaza/create 0640 $TEST_USER $TEST_USER/" \
    "$INST/etc/logrotate.d/darvaza" >"$WORK/logrotate.conf"
ok "logrotate -f runs the installed snippet" logrotate -f -s "$WORK/logrotate.state" "$WORK/logrotate.conf"
is "$(cat "$WORK/log/access.log.1" 2>/dev/null)|$(stat -c '%a %U %s' "$WORK/log/access.log" 2>/dev/null)" \
    "{\"line\":1}|640 $TEST_USER 0" "the access log moved to access.log.1, a new empty one 0640 for the account"

# ---- privilege drop and sd_notify -------------------------------------------
kill -TERM "$gw_pid"
for i in $(seq 1 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.2; done
want_uid=$(id -u "$TEST_USER")
want_gid=$(id -g "$TEST_USER")
# The account owns the state (database journal, audit log, keys re-read on
# reload) and the sanitizer report directory.
chown -R "$TEST_USER:" "$STATE_DIR" "$SAN_DIR"
cfg="$WORK/darvaza-user.yaml"
sed "s/^gateway:\$/gateway:\n  user: $TEST_USER/" "$STATE_DIR/darvaza.yaml" >"$cfg"
python3 "$LIB_DIR/notify_listen.py" "$WORK/notify.sock" "$WORK/notify.log" &
OWN_PIDS+=($!)
for i in $(seq 1 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$WORK/notify.sock" "$INST/usr/sbin/darvazad" -c "$cfg" >>"$STATE_DIR/logs/darvazad.log" 2>&1 &
gw_pid=$!
echo "$gw_pid" >"$STATE_DIR/pids/darvazad.pid"
if wait_match "$WORK/notify.log" '^READY=1$'; then pass "READY=1 on the notify socket after start"; else
    fail "READY=1 on the notify socket after start" "$(cat "$WORK/notify.log" 2>/dev/null; tail -5 "$STATE_DIR/logs/darvazad.log")"; fi
is "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$gw_pid/status")" "$want_uid $want_uid $want_uid $want_uid" \
    "after start every uid (real, effective, saved, fs) is $TEST_USER's"
is "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$gw_pid/status")" "$want_gid $want_gid $want_gid $want_gid" \
    "and every gid is $TEST_USER's group"
gw GET /healthz
is "$STATUS" 200 "the gateway serves after dropping root"
login "$fin" "$(person "$fin" password)" "$(person "$fin" totp_secret)"
is "$STATUS" 200 "a login (database writes) works after dropping root"
kill -HUP "$gw_pid"
if wait_match "$WORK/notify.log" '^RELOADING=1$' && wait_match "$WORK/notify.log" '^MONOTONIC_USEC=[0-9]+$' &&
    wait_match "$STATE_DIR/logs/darvazad.log" '"reloaded"'; then
    pass "SIGHUP: RELOADING=1 with MONOTONIC_USEC, and the reload succeeds as $TEST_USER"
else
    fail "SIGHUP: RELOADING=1 with MONOTONIC_USEC, and the reload succeeds as $TEST_USER" \
        "$(cat "$WORK/notify.log"; grep -E 'reload' "$STATE_DIR/logs/darvazad.log" | tail -3)"
fi
like "$(awk '/^RELOADING=1$/ {r = 1} r && /^READY=1$/ {print "ready again"; exit}' "$WORK/notify.log")" \
    '^ready again$' "READY=1 again after the reload"
kill -TERM "$gw_pid"
wait "$gw_pid"
rc=$?
if wait_match "$WORK/notify.log" '^STOPPING=1$' 10; then pass "SIGTERM: STOPPING=1"; else fail "SIGTERM: STOPPING=1" "$(cat "$WORK/notify.log")"; fi
is "$rc" 0 "the dropped gateway exits 0 after the drain"

# ---- an unknown account -----------------------------------------------------
sed "s/^gateway:\$/gateway:\n  user: no-such-user-dz/" "$STATE_DIR/darvaza.yaml" >"$WORK/bad-user.yaml"
out=$("$INST/usr/sbin/darvazad" -c "$WORK/bad-user.yaml" 2>&1)
rc=$?
like "$rc:$out" "^1:.*bad-user\\.yaml:[0-9]+: gateway\\.user: no such user \"no-such-user-dz\"" \
    "an unknown gateway.user: exit 1, file:line, key and the name"

# ---- make uninstall -------------------------------------------------------------
make -C "$ROOT" --no-print-directory uninstall DESTDIR="$INST" PREFIX=/usr >"$WORK/uninstall.log" 2>&1
is "$(find "$INST" -type f | sed "s|^$INST||" | sort | tr '\n' ' ')" "" "make uninstall removes every file make install put there"
finish
