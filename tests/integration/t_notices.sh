#!/usr/bin/env bash
# t_notices.sh - court notices a person can act on (docs/portal.md "Court
# notices"): the signed notice carries the hearing's court, date, time and
# place; the party downloads the document and its level-T CAdES signature,
# which `openssl cms -verify` accepts on its own; "I have read it" reaches the
# court, which keeps the first time, and the judge who filed it sees it.
. "$(dirname "$0")/lib.sh"

plan 18
stack_start

C="$STATE_DIR/certs"
CARDS_JSON="$STATE_DIR/cards/cards.json"
export SOFTHSM2_CONF="$STATE_DIR/cards/softhsm2.conf"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PARTY=$(pick_person registered 0)
OTHER=$(pick_person registered 1)
[ -n "$PARTY" ] && [ -n "$OTHER" ] && [ -s "$CARDS_JSON" ] || bail "people.json or cards.json lacks what this test needs"
CASE="2-$RANDOM/2026"
HEARING='{"court":"Baku Administrative Court","hearing":"2026-12-15T10:00:00+04:00","place":"room 4"}'

OUT=$(bash "$ROOT/tests/browser/file_notice.sh" "$STATE_DIR" "$GW_URL" "$BUILD_DIR" "$PARTY" "$CASE" \
    "You are summoned to the hearing of case $CASE." "$HEARING" 2>"$WORK/file.err")
is "$?" 0 "a judge files a signed notice with the hearing's court, date, time and place${OUT:+ ($(head -c 200 <<<"$OUT"))}"
ID=$(jq -r '.id // empty' <<<"$OUT")

# ---- the party's view and downloads --------------------------------------------------
login_person "$PARTY"; TOK=$LOGIN_TOKEN
gw GET /api/court/my-notices -H "$(bearer "$TOK")"
N=$(jb --argjson id "${ID:-0}" '.notices | map(select(.id == $id))[0] // empty')
is "$STATUS $(jq -r .case <<<"$N")" "200 $CASE" "the party sees the notice"
jq -r .document <<<"$N" | base64 -d >"$WORK/notice.json"
jq -r .signature <<<"$N" | base64 -d >"$WORK/notice.p7s"
is "$(jq -r '[.court, .hearing, .place] | join(" | ")' "$WORK/notice.json")" \
    "Baku Administrative Court | 2026-12-15T10:00:00+04:00 | room 4" "the signed document carries court, hearing date/time and place"
is "$(jq -r '.read_at' <<<"$N")" null "not read yet"
ok "the downloaded .p7s verifies over the downloaded document with openssl cms -verify" \
    openssl cms -verify -binary -inform DER -in "$WORK/notice.p7s" -content "$WORK/notice.json" \
    -CAfile "$C/root.pem" -purpose any -out /dev/null
openssl cms -cmsout -print -inform DER -in "$WORK/notice.p7s" >"$WORK/p7s.txt" 2>/dev/null
like "$(grep -c 'id-smime-aa-timeStampToken\|1.2.840.113549.1.9.16.2.14' "$WORK/p7s.txt")" '^[1-9]' "it is level T: an RFC 3161 time-stamp token is in its unsigned attributes"
like "$(jq -r '.report.signer.name // .report.signer // empty' <<<"$N" | head -c 200)" '.' "the court's report names the signer"
sed 's/room 4/room 5/' "$WORK/notice.json" >"$WORK/tampered.json"
openssl cms -verify -binary -inform DER -in "$WORK/notice.p7s" -content "$WORK/tampered.json" \
    -CAfile "$C/root.pem" -purpose any -out /dev/null 2>/dev/null
isnt "$?" 0 "a changed hearing place fails the verification"

# ---- "I have read it" -------------------------------------------------------------------
gw POST "/api/court/notices/$ID/read" -H "$(bearer "$TOK")"
is "$STATUS $(jb .id)" "200 $ID" "POST /api/court/notices/{id}/read -> 200"
AT=$(jb .read_at)
like "$AT" '^[0-9]{10}$' "the court answers the time it recorded"
gw POST "/api/court/notices/$ID/read" -H "$(bearer "$TOK")"
is "$STATUS $(jb .read_at)" "200 $AT" "reading again keeps the first time"
gw GET /api/court/my-notices -H "$(bearer "$TOK")"
is "$(jb --argjson id "$ID" '.notices | map(select(.id == $id))[0].read_at')" "$AT" "the party's list shows it read"
login_person "$OTHER"
gw POST "/api/court/notices/$ID/read" -H "$(bearer "$LOGIN_TOKEN")"
is "$STATUS $(jb .code)" "404 not_found" "someone else cannot mark the party's notice read -> 404 not_found"
gw GET /api/court/filed -H "$(bearer "$LOGIN_TOKEN")"
problem 403 insufficient_assurance "a citizen's password session cannot list a judge's filed notices"

# ---- the judge sees it --------------------------------------------------------------------
LABEL=$(jq -r 'map(select(.kind == "judge"))[0].label' "$CARDS_JSON")
(umask 077 && jq -r --arg l "$LABEL" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$WORK/pin")
JTOK=$(timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --token "$LABEL" --pin-file "$WORK/pin" \
    --cacert "$C/root.pem" --module "$MODULE" 2>"$WORK/card.err" | tail -n 1)
gw GET /api/court/filed -H "$(bearer "$JTOK")"
F=$(jb --argjson id "$ID" '.notices | map(select(.id == $id))[0] // empty')
is "$STATUS $(jq -r .party_fin <<<"$F")" "200 $PARTY" "the judge lists the notices they filed"
is "$(jq -r .read_at <<<"$F")" "$AT" "and sees when the party read it"
grep -q "\"path\":\"/api/court/notices/$ID/read\"" "$STATE_DIR/logs/access.log" 2>/dev/null ||
    grep -q "/api/court/notices/" "$STATE_DIR/audit.log"
is "$?" 0 "the read receipt went through the gateway's record"

finish
