#!/usr/bin/env bash
# t_browser_judge.sh - the judge's workspace in Debian's chromium
# (tests/browser/judge.sh): mobile-signature login of a demo judge, lookup,
# notice composed, signed on the phone or with `darvaza-card sign`, filed,
# read by the party; the refusals with curl.  This name lets tests/run.sh
# pick it up with the other integration scripts.
exec bash "$(dirname "$0")/../browser/judge.sh" "$@"
