#!/usr/bin/env bash
# t_cluster_browser.sh - QR login in Debian's chromium through haproxy against
# the demo cluster (tests/browser/cluster.test.mjs): the page's long poll
# waits on one instance, the phone answers on the other, the page signs in by
# itself (woken through Redis) and its session works on both instances.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/cluster.sh"

HERE="$ROOT/tests/browser"
# shellcheck source=tests/browser/node_tap.sh
. "$HERE/node_tap.sh"
SHOT_DIR="$ROOT/build/browser-cluster"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

[ -x "$CHROMIUM" ] && command -v node >/dev/null && command -v zbarimg >/dev/null ||
    bail "needs chromium, node and zbarimg (make deps)"
command -v haproxy >/dev/null && command -v redis-server >/dev/null || bail "needs haproxy and redis-server"
# playwright-core as tests/browser/run.sh installs it (tests/run.sh does it
# before the scripts; this does nothing when it is current).
browser_install
browser_count cluster.test.mjs
plan $((COUNT + 2))
mkdir -p "$SHOT_DIR"
rm -f "$SHOT_DIR"/*.png

cluster_start CARDS=0 DOCUMENTS=0 PEOPLE_REGISTERED=2 CONFIG_SET="gateway.web_root=$ROOT/gateway/web"
ready_both() { mgmt_of A /readyz; [ "$STATUS" = 200 ] || return 1; mgmt_of B /readyz; [ "$STATUS" = 200 ]; }
ok "the cluster runs: haproxy, instances A and B ready, Redis, PostgreSQL" wait_until 10 ready_both

SPKI=$(spki_of "$STATE_DIR/certs/gateway-tls.pem")
TAP_OUT="$WORK/browser.tap"
LB_URL="$LB_URL" A_URL="$A_URL" B_URL="$B_URL" A_MGMT="$A_MGMT" B_MGMT="$B_MGMT" STATE_DIR="$STATE_DIR" \
    SHOT_DIR="$SHOT_DIR" PEER_BIN="$BUILD_DIR/darvaza-peer" CHROMIUM="$CHROMIUM" GW_SPKI="$SPKI" \
    TAP_OFFSET="$TAP_N" timeout -k 10 120 node "$HERE/cluster.test.mjs" 2>"$WORK/node.err" | tee "$TAP_OUT"
browser_tally "$TAP_OUT" $((COUNT + 1))
diag "screenshots: ${SHOT_DIR#"$ROOT"/}/"
cluster_finish
