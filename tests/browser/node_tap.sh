# shellcheck shell=bash
# tests/browser/node_tap.sh - the shell side of every Chromium test: the
# node modules in place, the count of a test file's cases for the plan, the
# gateway's key pinned for Chromium, and the node script's TAP lines added
# to the calling script's own.  Sourced after tests/integration/lib.sh
# (uses WORK, TAP_N, TAP_FAILED, bail, diag).

BROWSER_DIR="$ROOT/tests/browser"

# playwright-core and axe-core as tests/browser/run.sh installs them
# (tests/run.sh does it before the scripts; nothing happens when current).
browser_install() {
    bash "$BROWSER_DIR/run.sh" --install >"$WORK/npm.log" 2>&1 ||
        bail "npm ci failed (tests/browser/run.sh --install): $(tail -n 5 "$WORK/npm.log")"
}

# browser_count FILE: COUNT= how many cases FILE (in tests/browser) has.
# shellcheck disable=SC2034 # COUNT is the caller's plan
browser_count() {
    COUNT=$(node "$BROWSER_DIR/$1" --count 2>"$WORK/count.err") ||
        bail "node cannot load $1: $(head -c 600 "$WORK/count.err")"
}

# spki_of CERT: what --ignore-certificate-errors-spki-list wants for CERT's
# key (Chromium trusts exactly the keys named, nothing else of the demo PKI).
spki_of() {
    openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64
}

# browser_run FILE SECONDS TAP_FILE VAR=value...: node runs FILE (in
# tests/browser, its folder the working directory) with those variables, for
# at most SECONDS; its TAP to the terminal and TAP_FILE, its stderr (Chromium's
# chatter) to $WORK/node.err.
browser_run() {
    local file=$1 secs=$2 tap=$3
    shift 3
    (cd "$BROWSER_DIR" && env "$@" timeout -k 10 "$secs" node "$BROWSER_DIR/$file") 2>"$WORK/node.err" | tee "$tap"
}

# browser_tally TAP_FILE WANT: the node script numbered its tests after the
# calling script's (TAP_OFFSET); count them in so lib.sh's finish carries on
# from there.  Fails (and shows node's stderr, without Chromium's own D-Bus
# chatter) when a test failed or TAP_N is not WANT.
browser_tally() {
    TAP_N=$((TAP_N + $(grep -cE '^(not )?ok [0-9]+' "$1")))
    TAP_FAILED=$((TAP_FAILED + $(grep -cE '^not ok [0-9]+' "$1")))
    if [ "$TAP_FAILED" -gt 0 ] || [ "$TAP_N" -ne "$2" ]; then
        [ -s "$WORK/node.err" ] && diag "node stderr: $(grep -v -e dbus -e 'Connection ' "$WORK/node.err" | head -c 2000)"
        return 1
    fi
}
