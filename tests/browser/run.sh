#!/usr/bin/env bash
# tests/browser/run.sh - the portal page (gateway/web/, docs/portal.md) in a
# real browser: Debian's chromium driven by playwright-core, against the demo
# stack.  Prints TAP for tests/run.sh (tests/integration/t_browser.sh calls
# this script), saves a screenshot of every step under build/browser/.
#
#   tests/browser/run.sh                 (BUILD_DIR=build/asan for the ASan daemons)
#   tests/browser/run.sh --install       (step 1 only: tests/run.sh does it before
#                                         the scripts, which run without a network)
#
# 1. installs what is missing: chromium, nodejs, npm, zbar-tools, oathtool,
#    fonts (apt-get, as root), and playwright-core from package-lock.json
#    (npm ci; Playwright's own browser download is never used);
# 2. starts the demo stack (demo/stack.sh through tests/integration/lib.sh)
#    with gateway.web_root set to this tree's gateway/web;
# 3. runs portal.test.mjs with node; its TAP lines are the tests, plus one
#    for the daemons' sanitizer reports; the stack is stopped whatever happens.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHOT_DIR="$ROOT/build/browser"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
NODE_TIMEOUT=${NODE_TIMEOUT:-220}

mkdir -p "$SHOT_DIR"
INSTALL_LOG="$SHOT_DIR/install.log"
: >"$INSTALL_LOG"

# ---- 1. what the tests need ------------------------------------------------------
ensure_deps() {
    local pkgs=()
    [ -x "$CHROMIUM" ] || pkgs+=(chromium)
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    command -v zbarimg >/dev/null 2>&1 || pkgs+=(zbar-tools)
    command -v oathtool >/dev/null 2>&1 || pkgs+=(oathtool)
    command -v unzip >/dev/null 2>&1 || pkgs+=(unzip)   # the ASiC-S container
    # Azerbaijani letters (ə, ş, ğ, İ) need a real font to be drawn.
    fc-list 2>/dev/null | grep -qi dejavu || pkgs+=(fonts-dejavu-core)
    if [ ${#pkgs[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "Bail out! missing ${pkgs[*]} (run as root, or apt-get install them)"
            exit 1
        fi
        echo "# installing ${pkgs[*]} (apt-get)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" \
            >>"$INSTALL_LOG" 2>&1; then
            apt-get update >>"$INSTALL_LOG" 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" \
                >>"$INSTALL_LOG" 2>&1 ||
                { echo "Bail out! apt-get install ${pkgs[*]} failed (see ${INSTALL_LOG#"$ROOT"/})"; exit 1; }
        fi
    fi
    # playwright-core and axe-core (the accessibility checks), exactly as
    # locked; Playwright's browser download is never asked for (Debian's
    # chromium is used through executablePath).
    local want
    want=$(jq -r '.packages["node_modules/playwright-core"].version' "$HERE/package-lock.json")
    if ! node_modules_current; then
        echo "# npm ci (playwright-core $want)"
        # Locked, and looked at again under the lock: t_oidc_browser.sh may
        # be installing the same at the same time.
        mkdir -p "$ROOT/build"
        (
            cd "$HERE" || exit 1
            exec 9>"$ROOT/build/.npm-browser.lock"
            flock 9
            node_modules_current ||
                PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --prefer-offline --no-audit --no-fund
        ) >>"$INSTALL_LOG" 2>&1 ||
            { echo "Bail out! npm ci failed (see ${INSTALL_LOG#"$ROOT"/})"; exit 1; }
    fi
}
# Every package the lock file names for the tests is installed at its version.
node_modules_current() {
    local p
    for p in playwright-core axe-core; do
        [ "$(jq -r ".packages[\"node_modules/$p\"].version" "$HERE/package-lock.json")" = \
            "$(jq -r '.version // empty' "$HERE/node_modules/$p/package.json" 2>/dev/null)" ] || return 1
    done
}
ensure_deps
[ "${1:-}" = --install ] && exit 0

# ---- 2. the stack -------------------------------------------------------------------
export DZ_STATE_DIR="$ROOT/build/test-stack-browser-$$"
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=tests/browser/node_tap.sh
. "$HERE/node_tap.sh"

browser_count portal.test.mjs
plan $((COUNT + 1))
rm -f "$SHOT_DIR"/*.png
stack_start CONFIG_SET="gateway.web_root=$ROOT/gateway/web"

# Chromium trusts exactly the gateway's key, nothing else of the demo PKI.
SPKI=$(spki_of "$STATE_DIR/certs/gateway-tls.pem")

# ---- 3. the browser ------------------------------------------------------------------
TAP_OUT="$WORK/browser.tap"
GW_URL="$GW_URL" STATE_DIR="$STATE_DIR" SHOT_DIR="$SHOT_DIR" PEER_BIN="$BUILD_DIR/darvaza-peer" \
    CHROMIUM="$CHROMIUM" GW_SPKI="$SPKI" \
    timeout -k 10 "$NODE_TIMEOUT" node "$HERE/portal.test.mjs" 2>"$WORK/node.err" | tee "$TAP_OUT"
# The node script numbered its tests; lib.sh's finish carries on from there.
# Chromium's own chatter (D-Bus, GPU) goes to stderr: shown only when
# something failed.
browser_tally "$TAP_OUT" "$COUNT"
diag "screenshots: ${SHOT_DIR#"$ROOT"/}/"
finish
