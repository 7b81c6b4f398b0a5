#!/usr/bin/env bash
# t_browser_card.sh - the card login of a browser in Debian's chromium with
# the demo's SoftHSM2 cards in NSS (tests/browser/card.sh); this name lets
# tests/run.sh pick it up with the other integration scripts.  It writes a
# Chromium policy file under /etc/chromium/policies for its run (removed
# afterwards), which every Chromium on the machine reads meanwhile:
# run.sh: alone
exec bash "$(dirname "$0")/../browser/card.sh" "$@"
