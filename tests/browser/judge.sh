#!/usr/bin/env bash
# tests/browser/judge.sh - the judge's workspace (docs/portal.md "The judge's
# workspace") in Debian's chromium against the demo stack; TAP for
# tests/run.sh (tests/integration/t_browser_judge.sh calls it).
#
# 1. judge.test.mjs drives the browsers: a demo judge signs in with their
#    mobile signature (the stack's phone approves), looks a party up,
#    composes a notice, signs it on the phone, files it; the party (another
#    browser context, signed in with their own mobile signature) reads it;
#    the judge sees it read; then a second notice signed by `darvaza-card
#    sign` on the judge's SoftHSM2 card is uploaded through the page and
#    filed; axe-core over the workspace in az and en.
# 2. the refusals, with curl on the same stack (status and problem code):
#    a citizen's card session on the workspace routes, a judge's password
#    session, a notice signed by another judge's card, a signature over
#    another document, a party FIN the registry does not have.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHOT_DIR="$ROOT/build/browser-judge"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
mkdir -p "$SHOT_DIR"
rm -rf "${SHOT_DIR:?}"/*

export DZ_STATE_DIR="$ROOT/build/test-stack-browser-judge-$$"
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=tests/browser/node_tap.sh
. "$HERE/node_tap.sh"

for t in node jq sqlite3 openssl "$CHROMIUM"; do
    command -v "$t" >/dev/null || bail "$t is not installed (chromium, nodejs)"
done
browser_install

browser_count judge.test.mjs
SHELL_TESTS=11
plan $((COUNT + SHELL_TESTS + 1))

# The demo judges (rows 8, 9) registered too: a judge's password session
# is one of the refusals.
stack_start CONFIG_SET="gateway.web_root=$ROOT/gateway/web" PEOPLE_REGISTERED=10
card_env
C="$STATE_DIR/certs"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
card() { jq -r --arg k "$1" "map(select(.kind == \$k))[${3:-0}].$2 // empty" "$CARDS_JSON"; }
J1_LABEL=$(card judge label 0) J1_FIN=$(card judge fin 0)
J2_LABEL=$(card judge label 1)
CIT_LABEL=$(card citizen label 0)
[ -n "$J1_FIN" ] && [ -n "$J2_LABEL" ] && [ -n "$CIT_LABEL" ] || bail "cards.json lacks two judges and a citizen"
[ "$(person "$J1_FIN" sim_judge)" = true ] || bail "people.json: the first judge ($J1_FIN) holds no judge's SIM"

SPKI=$(spki_of "$C/gateway-tls.pem")
TAP_OUT="$WORK/judge.tap"
browser_run judge.test.mjs 240 "$TAP_OUT" GW_URL="$GW_URL" STATE_DIR="$STATE_DIR" SHOT_DIR="$SHOT_DIR" \
    CHROMIUM="$CHROMIUM" GW_SPKI="$SPKI" BUILD_DIR="$BUILD_DIR" DARVAZA_PKCS11_MODULE="$MODULE"
# On a failure the shell's tests still go on numbering after the planned browser ones.
browser_tally "$TAP_OUT" "$COUNT" || TAP_N=$COUNT

# ---- the refusals (curl) -------------------------------------------------------------
pin_file() { # pin_file LABEL: a 0600 file with the card's PIN
    local f="$WORK/$1.pin"
    (umask 077 && jq -r --arg l "$1" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$f")
    echo "$f"
}
card_login() { # card_login LABEL: the session token of a card login
    timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --token "$1" \
        --pin-file "$(pin_file "$1")" --cacert "$C/root.pem" --module "$MODULE" 2>>"$WORK/card.err" | tail -n 1
}
card_sign() { # card_sign LABEL DOC OUT
    timeout 60 "$BUILD_DIR/darvaza-card" sign "$2" -o "$3" --token "$1" --pin-file "$(pin_file "$1")" \
        --module "$MODULE" --chain "$C/esign-ca.pem" >/dev/null 2>>"$WORK/card.err"
}
b64() { base64 -w0 <"$1"; }
notice() { # notice CASE PARTY OUT: a notice as the workspace composes it
    jq -nc --arg c "$1" --arg p "$2" '{case:$c, party:$p, court:"Bakı Apellyasiya Məhkəməsi",
        hearing:"2027-01-20T10:00:00+04:00", place:"zal 3", text:"Dinləməyə çağırılırsınız."}' |
        tr -d '\n' >"$3"
}
file_notice() { # file_notice TOKEN CASE DOC SIG PARTY
    gw_json POST /api/court/notices "$(jq -nc --arg d "$(b64 "$3")" --arg s "$(b64 "$4")" --arg p "$5" \
        '{document:$d, signature:$s, party:$p}')" -H "$(bearer "$1")" -H "darvaza-purpose: $2"
}
PARTY=$(pick_person registered 3)
GHOST=ZZZZZZ9
[ -z "$(person "$GHOST" fin)" ] || bail "people.json has $GHOST: pick another FIN for the unknown party"

CIT_TOKEN=$(card_login "$CIT_LABEL")
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$CIT_TOKEN")" -H "darvaza-purpose: 1-1/2027"
problem 403 forbidden "a citizen's card session: party lookup -> 403 forbidden"
gw GET /api/court/filed -H "$(bearer "$CIT_TOKEN")"
problem 403 forbidden "a citizen's card session: filed notices -> 403 forbidden"
notice 1-1/2027 "$PARTY" "$WORK/c.json"
card_sign "$CIT_LABEL" "$WORK/c.json" "$WORK/c.p7s"
file_notice "$CIT_TOKEN" 1-1/2027 "$WORK/c.json" "$WORK/c.p7s" "$PARTY"
problem 403 forbidden "a citizen's card session: filing a notice -> 403 forbidden"

login_person "$J1_FIN"
J1_PW=$LOGIN_TOKEN
isnt "$J1_PW" "" "the judge also has a password account (FIN + password + code)"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J1_PW")" -H "darvaza-purpose: 1-2/2027"
problem 403 insufficient_assurance "a judge's password session: party lookup -> 403 insufficient_assurance"
gw GET /api/court/filed -H "$(bearer "$J1_PW")"
problem 403 insufficient_assurance "a judge's password session: filed notices -> 403 insufficient_assurance"

J1_TOKEN=$(card_login "$J1_LABEL")
notice 1-3/2027 "$PARTY" "$WORK/m.json"
card_sign "$J2_LABEL" "$WORK/m.json" "$WORK/m.p7s"
file_notice "$J1_TOKEN" 1-3/2027 "$WORK/m.json" "$WORK/m.p7s" "$PARTY"
problem 403 signer_mismatch "a notice signed by another judge's card -> 403 signer_mismatch"

notice 1-4/2027 "$PARTY" "$WORK/a.json"
notice 1-4/2027 "$PARTY" "$WORK/b.json"
sed -i 's/zal 3/zal 4/' "$WORK/b.json"
card_sign "$J1_LABEL" "$WORK/a.json" "$WORK/a.p7s"
file_notice "$J1_TOKEN" 1-4/2027 "$WORK/b.json" "$WORK/a.p7s" "$PARTY"
problem 403 signature_rejected "a signature over another document -> 403 signature_rejected"

gw GET "/api/registry/persons/$GHOST" -H "$(bearer "$J1_TOKEN")" -H "darvaza-purpose: 1-5/2027"
problem 404 not_found "a party FIN the registry does not have: lookup -> 404 not_found"
notice 1-5/2027 "$GHOST" "$WORK/g.json"
card_sign "$J1_LABEL" "$WORK/g.json" "$WORK/g.p7s"
file_notice "$J1_TOKEN" 1-5/2027 "$WORK/g.json" "$WORK/g.p7s" "$GHOST"
problem 404 unknown_party "a party FIN the registry does not have: filing -> 404 unknown_party"
is "$(sqlite3 "$STATE_DIR/court.db" "SELECT count(*) FROM notice WHERE case_no LIKE '1-_/2027'")" 0 \
    "none of the refused notices reached the court"

finish
