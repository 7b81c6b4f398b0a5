#!/usr/bin/env bash
# t_oidc_browser.sh - the OpenID Connect provider with a real relying party:
# Apache httpd + mod_auth_openidc (demo/stack_rp.sh, https://127.0.0.1:9150/)
# in Debian's chromium driven by playwright-core (tests/browser/oidc.test.mjs):
# sign-in through darvaza, step-up to "high" with a mobile signature, a
# person already signed in going straight through, back-channel logout.
. "$(dirname "$0")/lib.sh"

HERE="$ROOT/tests/browser"
# shellcheck source=tests/browser/node_tap.sh
. "$HERE/node_tap.sh"
SHOT_DIR="$ROOT/build/browser-oidc"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
RP_URL=https://127.0.0.1:9150

[ -x "$CHROMIUM" ] && command -v node >/dev/null && command -v apache2 >/dev/null ||
    bail "needs chromium, node and apache2 (make deps)"
# playwright-core and axe-core as tests/browser/run.sh installs them (tests/run.sh
# does it before the scripts; this does nothing when they are current).
browser_install
browser_count oidc.test.mjs
plan $((COUNT + 2))
mkdir -p "$SHOT_DIR"
rm -f "$SHOT_DIR"/*.png
stack_start CONFIG_SET="gateway.web_root=$ROOT/gateway/web" CARDS=0
rp_stop() { "$ROOT/demo/stack_rp.sh" stop "$STATE_DIR" >>"$WORK/rp.log" 2>&1; }
trap 'rc=$?; rp_stop; (exit $rc); cleanup' EXIT
"$ROOT/demo/stack_rp.sh" start "$STATE_DIR" >"$WORK/rp.log" 2>&1 ||
    bail "the demo e-service (apache2) did not start: $(tail -n 5 "$WORK/rp.log")"
ok "Apache httpd with mod_auth_openidc runs as the demo e-service (port 9150, its own config)" \
    test -s "$STATE_DIR/rp/run/apache2.pid"

SPKI_LIST="$(spki_of "$STATE_DIR/certs/gateway-tls.pem"),$(spki_of "$STATE_DIR/certs/peer-tls.pem")"

TAP_OUT="$WORK/browser.tap"
GW_URL="$GW_URL" RP_URL="$RP_URL" STATE_DIR="$STATE_DIR" SHOT_DIR="$SHOT_DIR" CHROMIUM="$CHROMIUM" \
    SPKI_LIST="$SPKI_LIST" TAP_OFFSET="$TAP_N" timeout -k 10 90 node "$HERE/oidc.test.mjs" \
    2>"$WORK/node.err" | tee "$TAP_OUT"
browser_tally "$TAP_OUT" $((COUNT + 1)) ||
    diag "apache: $(tail -n 20 "$STATE_DIR/rp/logs/error.log" 2>/dev/null)"
diag "screenshots: ${SHOT_DIR#"$ROOT"/}/"
rp_stop
finish
