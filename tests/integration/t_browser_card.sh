#!/usr/bin/env bash
# t_browser_card.sh - the card login of a browser in Debian's chromium with
# the demo's SoftHSM2 cards in NSS (tests/browser/card.sh); this name lets
# tests/run.sh pick it up with the other integration scripts.
exec bash "$(dirname "$0")/../browser/card.sh" "$@"
