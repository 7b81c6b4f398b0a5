#!/usr/bin/env bash
# t_qr.sh - QR smartphone login (DESIGN §3, §4.6): the browser's QR code
# (SVG rendered with rsvg-convert, read back with zbarimg), answered by the
# demo phone (`darvaza-peer phone scan`, the SIM key behind its PIN), the
# session collected only by the browser holding the binding cookie; stale,
# reused, foreign and look-alike-origin answers refused.
. "$(dirname "$0")/lib.sh"

plan 41
command -v rsvg-convert >/dev/null || bail "rsvg-convert is not installed (Debian package librsvg2-bin)"
command -v zbarimg >/dev/null || bail "zbarimg is not installed (Debian package zbar-tools)"
stack_start

A=$(people | jq -r 'map(select(.sim == true and .sim_revoked == false)) | .[0].fin // empty')
D=$(people | jq -r 'map(select(.sim == true and .sim_revoked == true)) | .[0].fin // empty')
[ -n "$A" ] && [ -n "$D" ] || bail "people.json lacks SIM holders (one valid, one revoked)"
diag "SIM holder A=$A, revoked D=$D"
for f in "$A" "$D"; do (umask 077 && person "$f" sim_pin >"$WORK/$f.pin"); done

# ---- helpers ------------------------------------------------------------------------
# qr_new JAR: a QR login opened by the browser whose cookie jar is JAR; QID.
qr_new() {
    gw POST /auth/qr -H "Origin: $GW_ORIGIN" -c "$1"
    QID=
    [ "$STATUS" = 201 ] && QID=$(jb '.id // empty')
    return 0
}
# qr_code ID JAR: the code as that browser sees it; PAYLOAD on 200.
qr_code() {
    gw GET "/auth/qr/$1/code" ${2:+-b "$2"}
    PAYLOAD=
    [ "$STATUS" = 200 ] && PAYLOAD=$(jb '.payload // empty')
    return 0
}
# scan FIN PAYLOAD|--image FILE [phone scan args...]: the holder's phone
# answers; its stdout (the gateway's answer) in SCAN_OUT, exit code in SCAN_RC.
scan() {
    local fin=$1
    shift
    SCAN_OUT=$("$BUILD_DIR/darvaza-peer" phone scan "$@" --gateway "$GW_URL" \
        --cacert "$STATE_DIR/certs/root.pem" --key "$(person "$fin" sim_key)" \
        --pin-file "$WORK/$fin.pin" --cert "$(person "$fin" sim_cert)" 2>"$WORK/scan.err")
    SCAN_RC=$?
}
scan_code() { jq -r '.code // .state // empty' <<<"$SCAN_OUT" 2>/dev/null; }
B1="$WORK/browser1.jar"
B2="$WORK/browser2.jar"

# ---- the browser opens a QR login ----------------------------------------------------
qr_new "$B1"
is "$STATUS" 201 "POST /auth/qr -> 201"
like "$QID" '^[A-Za-z0-9_-]{22}$' "the QR login id is random base64url (128 bits)"
is "$(jb .poll)" "/auth/qr/$QID" "and where to poll"
like "$(hdr set-cookie)" '^__Host-darvaza-qr=[A-Za-z0-9_-]{43}; Secure; HttpOnly; SameSite=Strict; Path=/$' \
    "the binding cookie: __Host-darvaza-qr, Secure, HttpOnly, SameSite=Strict"
qr_code "$QID" "$B1"
is "$STATUS" 200 "the browser reads its code"
like "$PAYLOAD" "^darvaza-qr:1:$QID:[0-9]+:[0-9a-f]{64}\$" "payload darvaza-qr:1:<id>:<t>:<hex HMAC-SHA256>"
ok "refresh_ms is within the second" jq -e '.refresh_ms >= 1 and .refresh_ms <= 1000' "$RESP_BODY_FILE"
jb -r .svg >"$WORK/qr.svg"
like "$(head -c 200 "$WORK/qr.svg")" '<svg' "the code comes as SVG too"
ok "the SVG renders to PNG (rsvg-convert)" rsvg-convert -b white -w 400 -o "$WORK/qr.png" "$WORK/qr.svg"
is "$(zbarimg --raw -q "$WORK/qr.png" 2>/dev/null | tr -d '\n')" "$PAYLOAD" "the rendered QR code reads back (zbarimg) as the payload"
P0=$PAYLOAD
sleep 1.1
qr_code "$QID" "$B1"
isnt "$PAYLOAD" "$P0" "a second later the payload has changed"
ok "its t counts the seconds since the QR login started" \
    test "$(cut -d: -f4 <<<"$PAYLOAD")" -gt "$(cut -d: -f4 <<<"$P0")"

# ---- other browsers ---------------------------------------------------------------------
qr_code "$QID"
problem 403 forbidden "a browser without the binding cookie cannot read the code"
gw GET "/auth/qr/$QID?wait=1"
problem 403 forbidden "nor poll for the result"
Q1=$QID
qr_new "$B2"
Q2=$QID
QID=$Q1
qr_code "$QID" "$B2"
problem 403 forbidden "another browser's binding cookie does not open this QR login"
gw GET "/auth/qr/$QID?wait=1" -b "$B1"
is "$STATUS $(jb .state)" "200 pending" "the right browser's poll: pending until the phone answers"

# ---- the phone scans the screen -------------------------------------------------------------
qr_code "$QID" "$B1"
jb -r .svg | rsvg-convert -b white -w 400 -o "$WORK/qr2.png"
scan "$A" --image "$WORK/qr2.png" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "0 accepted" "the phone scans the rendered code and answers -> 200 accepted"
is "$(jq -r .service <<<"$SCAN_OUT")" "Darvaza demo portal" "the phone is told the service's name"
is "$(jq -r .browser <<<"$SCAN_OUT")" "127.0.0.1" "and the browser's address"
scan "$A" "$PAYLOAD" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "1 qr_used" "the same payload answered twice -> 409 qr_used"
gw GET "/auth/qr/$QID?wait=2" -b "$B2"
problem 403 forbidden "another browser cannot collect the session"
gw GET "/auth/qr/$QID?wait=5" -b "$B1"
is "$STATUS $(jb .state)" "200 complete" "the browser's poll gets the session"
is "$(jb '[.fin, .acr, (.amr|join(",")), .method] | join(" ")')" "$A high qr,mob,pin qr" \
    "session: the holder's FIN, acr high, amr [qr,mob,pin], method qr"
TOKEN=$(jb '.token // empty')
like "$(hdr set-cookie)" '^__Host-darvaza=[^;]+;.*Secure.*HttpOnly' "with the session cookie"
gw GET /api/registry/me -H "$(bearer "$TOKEN")"
is "$STATUS $(jb .fin)" "200 $A" "the QR session reads the holder's registry record"
gw GET "/auth/qr/$QID?wait=1" -b "$B1"
problem 404 not_found "the QR login completes once"
scan "$A" "$PAYLOAD" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "1 qr_invalid" "an answer after completion -> qr_invalid"

# ---- stale, foreign, forged, look-alike --------------------------------------------------------
qr_new "$B1"
qr_code "$QID" "$B1"
OLD=$PAYLOAD
sleep 6
scan "$A" "$OLD" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "1 qr_expired" "a payload older than the freshness window (5 s) -> 401 qr_expired"
qr_code "$QID" "$B1"
scan "$A" "$PAYLOAD" --origin https://evil.example
is "$SCAN_RC $(scan_code)" "1 bad_signature" "a signature over another origin (a look-alike site) -> 401 bad_signature"
scan "$A" "${PAYLOAD%?}$(printf '%x' $(((0x${PAYLOAD: -1} + 1) % 16)))" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "1 qr_invalid" "a payload with a forged code -> 400 qr_invalid"
# A payload of this QR login posted to another's answer endpoint.
qr_code "$QID" "$B1"
scan "$A" "$PAYLOAD" --origin "$GW_ORIGIN" --print
printf '%s' "$SCAN_OUT" >"$WORK/answer.json"
gw POST "/auth/qr/$Q2/answer" -H 'content-type: application/json' --data-binary @"$WORK/answer.json"
problem 400 qr_invalid "a payload from another QR session -> 400 qr_invalid"
# This time the browser is already long-polling when the phone answers.
"${CURL_GW[@]}" -b "$B1" -o "$WORK/longpoll.json" -D "$WORK/longpoll.hdr" "$GW_URL/auth/qr/$QID?wait=10" &
LP=$!
OWN_PIDS+=("$LP")
sleep 1
gw POST "/auth/qr/$QID/answer" -H 'content-type: application/json' --data-binary @"$WORK/answer.json"
is "$STATUS $(jb .state)" "200 accepted" "the same answer at its own QR login is accepted"
wait "$LP"
is "$(jq -r '.state + " " + .fin' "$WORK/longpoll.json" 2>/dev/null)" "complete $A" \
    "the browser's long-poll in progress gets the session"
ok "with its session cookie" grep -qi '^set-cookie: __Host-darvaza=' "$WORK/longpoll.hdr"

qr_new "$B1"
qr_code "$QID" "$B1"
scan "$D" "$PAYLOAD" --origin "$GW_ORIGIN"
is "$SCAN_RC $(scan_code)" "1 certificate_revoked" "a revoked SIM certificate -> 401 certificate_revoked"
gw GET "/auth/qr/$QID?wait=1" -b "$B1"
is "$STATUS $(jb .state)" "200 pending" "after a refused answer the QR login still waits"

# ---- bad input ----------------------------------------------------------------------------------
gw POST /auth/qr -H 'Origin: https://evil.example'
problem 403 bad_origin "POST /auth/qr from another origin -> 403 bad_origin"
gw GET /auth/qr/AAAAAAAAAAAAAAAAAAAAAA/code -b "$B1"
problem 404 not_found "the code of an unknown QR login -> 404"
gw_json POST "/auth/qr/$QID/answer" '{"payload":"darvaza-qr:1:x"}'
problem 400 invalid_request "an answer without certificate and signature -> 400 invalid_request"
ok "the QR login is in the audit log" grep -q "\"means\":\"qr\".*\"$A\"\|\"$A\".*\"means\":\"qr\"" "$STATE_DIR/audit.log"

finish
