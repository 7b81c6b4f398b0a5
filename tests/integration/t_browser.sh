#!/usr/bin/env bash
# t_browser.sh - the portal page in a real browser (Debian chromium driven by
# playwright-core) against the demo stack: every way in, registration, the
# account page.  All of it lives in tests/browser/run.sh; this name lets
# tests/run.sh pick it up with the other integration scripts.
exec bash "$(dirname "$0")/../browser/run.sh" "$@"
