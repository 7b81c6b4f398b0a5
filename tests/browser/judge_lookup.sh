#!/usr/bin/env bash
# judge_lookup.sh - a judge of the demo stack's cards looks a person up in the
# population registry with a purpose, the way t_transparency.sh does
# (darvaza-card login, GET /api/registry/persons/{fin} with Darvaza-Purpose).
# For access.cases.mjs: the person's "Who accessed my data" must then list it.
#
#   judge_lookup.sh STATE_DIR GW_URL BUILD_DIR FIN PURPOSE
#
# Prints the judge's FIN; exit 0 when the lookup was answered 200.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 STATE_DIR GW_URL BUILD_DIR FIN PURPOSE" >&2; exit 2; }
STATE=$1 GW=$2 BUILD=$3 FIN=$4 PURPOSE=$5
CARDS="$STATE/cards/cards.json"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export SOFTHSM2_CONF="$STATE/cards/softhsm2.conf"
LABEL=$(jq -r 'map(select(.kind == "judge"))[0].label // empty' "$CARDS")
[ -n "$LABEL" ] || { echo "no judge card in $CARDS" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(umask 077 && jq -r --arg l "$LABEL" 'map(select(.label == $l))[0].pin' "$CARDS" >"$WORK/pin")
TOKEN=$(timeout 60 "$BUILD/darvaza-card" login --gateway "$GW" --token "$LABEL" \
    --pin-file "$WORK/pin" --cacert "$STATE/certs/root.pem" --module "$MODULE" 2>"$WORK/card.err" |
    tail -n 1)
[ -n "$TOKEN" ] || { cat "$WORK/card.err" >&2; exit 1; }
code=$(curl -sS --http2 --max-time 30 --cacert "$STATE/certs/root.pem" -o /dev/null -w '%{http_code}' \
    -H "authorization: Bearer $TOKEN" -H "darvaza-purpose: $PURPOSE" "$GW/api/registry/persons/$FIN")
[ "$code" = 200 ] || { echo "the lookup answered $code" >&2; exit 1; }
jq -r --arg l "$LABEL" 'map(select(.label == $l))[0].fin' "$CARDS"
