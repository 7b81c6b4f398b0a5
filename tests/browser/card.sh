#!/usr/bin/env bash
# tests/browser/card.sh - the browser's card login in Debian's chromium with a
# real PKCS#11 stack (docs/cards.md "In the browser"); TAP for tests/run.sh
# (tests/integration/t_browser_card.sh calls it).
#
# For each person (a citizen, a judge, a revoked card, and nobody):
#   - a SoftHSM2 token directory holding a copy of that one demo card;
#   - $HOME/.pki/nssdb, the NSS database Chromium reads, with the card's
#     module registered by modutil: the PIN-pad module (pinpad_pkcs11.c,
#     built here) in front of SoftHSM2, which enters the card's PIN from a
#     0600 file because headless Chromium cannot show its PIN dialog;
#   - the Chromium policy AutoSelectCertificateForUrls for the card listener
#     (issuer: the demo E-Signature CA), so no certificate picker either.
#     Chromium on Linux reads policies only from /etc/chromium/policies: the
#     file is written for this run (root) and removed whatever happens.
# Then card.test.mjs drives the browsers.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHOT_DIR="$ROOT/build/browser-card"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
POLICY_DIR=${CHROMIUM_POLICY_DIR:-/etc/chromium/policies/managed}
CARD_URL=${CARD_URL:-https://localhost:8444}
mkdir -p "$SHOT_DIR"
rm -rf "$SHOT_DIR"/*

export DZ_STATE_DIR="$ROOT/build/test-stack-browser-card-$$"
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=tests/browser/node_tap.sh
. "$HERE/node_tap.sh"

for t in node certutil modutil softhsm2-util cc jq "$CHROMIUM"; do
    command -v "$t" >/dev/null || bail "$t is not installed (libnss3-tools, softhsm2, chromium, nodejs)"
done
browser_install
[ -w "$(dirname "$(dirname "$POLICY_DIR")")" ] || [ -w "$POLICY_DIR" ] ||
    bail "cannot write the Chromium policy to $POLICY_DIR (run as root)"

browser_count card.test.mjs
plan $((COUNT + 1))

PINPAD="$WORK/pinpad_pkcs11.so"
cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -shared -fPIC -I/usr/include/p11-kit-1 \
    "$HERE/pinpad_pkcs11.c" -o "$PINPAD" -ldl 2>"$WORK/pinpad.err" ||
    bail "cannot build the PIN-pad module: $(cat "$WORK/pinpad.err")"

stack_start CONFIG_SET="gateway.web_root=$ROOT/gateway/web"
card_env
TOKDIR=$(sed -n 's/^directories\.tokendir *= *//p' "$SOFTHSM2_CONF")
[ -d "$TOKDIR" ] || bail "no SoftHSM2 token directory in $SOFTHSM2_CONF"

POLICY="$POLICY_DIR/darvaza-card-test-$$.json"
cleanup_policy() { rm -f "$POLICY"; }
trap 'cleanup_policy; cleanup' EXIT
ISSUER_CN=$(openssl x509 -in "$STATE_DIR/certs/esign-ca.pem" -noout -subject -nameopt multiline |
    sed -n 's/^ *commonName *= *//p')
mkdir -p "$POLICY_DIR"
jq -n --arg p "$CARD_URL" --arg cn "$ISSUER_CN" \
    '{AutoSelectCertificateForUrls: [({pattern: $p, filter: {ISSUER: {CN: $cn}}} | tojson)]}' >"$POLICY"

# person NAME KIND: a home with an NSS database holding that one card
# (KIND "" : an empty database, no card).  Prints the JSON entry.
person() {
    local name=$1 kind=$2 home="$WORK/home-$1" label="" fin="" role="" d
    mkdir -p "$home/.pki/nssdb" "$home/tokens"
    certutil -N -d "sql:$home/.pki/nssdb" --empty-password >/dev/null 2>&1 || bail "certutil -N failed"
    if [ -n "$kind" ]; then
        label=$(jq -r --arg k "$kind" 'map(select(.kind == $k))[0].label // empty' "$CARDS_JSON")
        fin=$(jq -r --arg l "$label" 'map(select(.label == $l))[0].fin' "$CARDS_JSON")
        role=$([ "$kind" = judge ] && echo judge || echo citizen)
        for d in "$TOKDIR"/*/; do
            grep -qa -- "$label" "$d/token.object" 2>/dev/null && cp -a "$d" "$home/tokens/"
        done
        [ -n "$(ls -A "$home/tokens")" ] || bail "no token directory for $label"
        printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
            "$home" >"$home/softhsm2.conf"
        (umask 077 && jq -r --arg l "$label" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$home/pin")
        # modutil asks to confirm on a terminal; there is none here.
        SOFTHSM2_CONF="$home/softhsm2.conf" DZ_PINPAD_PIN_FILE="$home/pin" \
            modutil -dbdir "sql:$home/.pki/nssdb" -add darvaza-card -libfile "$PINPAD" -force \
            </dev/null >"$WORK/modutil-$name.log" 2>&1 || bail "modutil -add failed: $(cat "$WORK/modutil-$name.log")"
        SOFTHSM2_CONF="$home/softhsm2.conf" DZ_PINPAD_PIN_FILE="$home/pin" \
            certutil -L -d "sql:$home/.pki/nssdb" -h all 2>/dev/null | grep -q "$label:auth" ||
            bail "NSS does not see $label's certificate"
    fi
    jq -nc --arg n "$name" --arg h "$home" --arg f "$fin" --arg r "$role" --arg k "$kind" \
        '{name: $n, home: $h, fin: $f, role: $r, kind: $k}'
}
CARDS=$(for p in "citizen citizen" "judge judge" "revoked revoked" "none "; do
    set -- $p
    person "$1" "${2:-}"
done | jq -sc .)

SPKI=$(spki_of "$STATE_DIR/certs/gateway-tls.pem")
TAP_OUT="$WORK/card.tap"
browser_run card.test.mjs 240 "$TAP_OUT" GW_URL="$GW_URL" CARD_URL="$CARD_URL" GW_SPKI="$SPKI" \
    SHOT_DIR="$SHOT_DIR" CHROMIUM="$CHROMIUM" AUDIT="$STATE_DIR/audit.log" CARDS="$CARDS"
browser_tally "$TAP_OUT" "$COUNT"
cleanup_policy
finish
