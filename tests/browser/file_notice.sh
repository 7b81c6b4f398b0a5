#!/usr/bin/env bash
# file_notice.sh - a judge of the demo stack's cards files a court notice for
# a party, the way t_court.sh does: darvaza-card login (card PIN from
# cards.json), a detached CAdES signature made on the card's sign key
# (openssl cms with the pkcs11 engine), POST /api/court/notices with the
# case as Darvaza-Purpose.  For portal.test.mjs: the party's account page
# must then show the notice.
#
#   file_notice.sh STATE_DIR GW_URL BUILD_DIR PARTY_FIN CASE TEXT [EXTRA_JSON]
#
# EXTRA_JSON (an object) is merged into the signed notice, e.g.
# {"court":"...","hearing":"2026-12-15T10:00:00+04:00","place":"room 4"}.
# Prints the court's answer; exit 0 when it is 201.
set -euo pipefail
[ $# -eq 6 ] || [ $# -eq 7 ] || { echo "usage: $0 STATE_DIR GW_URL BUILD_DIR PARTY_FIN CASE TEXT [EXTRA_JSON]" >&2; exit 2; }
STATE=$1 GW=$2 BUILD=$3 PARTY=$4 CASE=$5 TEXT=$6 EXTRA=${7:-"{}"}
CARDS="$STATE/cards/cards.json"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export SOFTHSM2_CONF="$STATE/cards/softhsm2.conf"
[ -s "$CARDS" ] || { echo "no $CARDS" >&2; exit 1; }
LABEL=$(jq -r 'map(select(.kind == "judge"))[0].label // empty' "$CARDS")
CERT=$(jq -r --arg l "$LABEL" 'map(select(.label == $l))[0].sign_cert' "$CARDS")
[ -n "$LABEL" ] || { echo "no judge card in $CARDS" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(umask 077 && jq -r --arg l "$LABEL" 'map(select(.label == $l))[0].pin' "$CARDS" >"$WORK/pin")
jq -nc --arg c "$CASE" --arg p "$PARTY" --arg t "$TEXT" --argjson x "$EXTRA" \
    '{case:$c, party:$p} + $x + {text:$t}' >"$WORK/notice.json"

OPENSSL_CONF=/dev/null openssl cms -sign -binary -cades -md sha256 -in "$WORK/notice.json" \
    -outform DER -out "$WORK/notice.p7s" -engine pkcs11 -keyform engine \
    -inkey "pkcs11:token=$LABEL;id=%02;type=private" -passin "file:$WORK/pin" \
    -signer "$CERT" -certfile "$STATE/certs/esign-ca.pem" 2>"$WORK/cms.err" ||
    { cat "$WORK/cms.err" >&2; exit 1; }
TOKEN=$(timeout 60 "$BUILD/darvaza-card" login --gateway "$GW" --token "$LABEL" \
    --pin-file "$WORK/pin" --cacert "$STATE/certs/root.pem" --module "$MODULE" 2>"$WORK/card.err" |
    tail -n 1)
[ -n "$TOKEN" ] || { cat "$WORK/card.err" >&2; exit 1; }
jq -nc --arg d "$(base64 -w0 <"$WORK/notice.json")" --arg s "$(base64 -w0 <"$WORK/notice.p7s")" \
    --arg p "$PARTY" '{document:$d, signature:$s, party:$p}' >"$WORK/body.json"
code=$(curl -sS --http2 --max-time 30 --cacert "$STATE/certs/root.pem" -o "$WORK/answer" -w '%{http_code}' \
    -H "authorization: Bearer $TOKEN" -H "darvaza-purpose: $CASE" -H 'content-type: application/json' \
    --data-binary @"$WORK/body.json" "$GW/api/court/notices")
cat "$WORK/answer"
echo
[ "$code" = 201 ]
