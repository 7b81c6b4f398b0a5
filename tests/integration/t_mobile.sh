#!/usr/bin/env bash
# t_mobile.sh - mobile-signature login (DESIGN §3, §4.5) through the demo
# stack's real MSSP and phones (docs/mobile.md, docs/mssp.md): approved,
# refused, ignored, wrong PIN, wrong FIN, switched-off phone, tampered
# signature and certificate, revoked SIM, MSSP down, one request per phone
# (and a request nobody polls holds the phone only while it waits),
# push-bombing, and 50 logins waiting at once while /healthz stays fast.
. "$(dirname "$0")/lib.sh"

USER_TIMEOUT=24          # the MSSP's --user-timeout: an ignored request ends TIMEOUT
DELIVERY_TIMEOUT=24      # the MSSP's --delivery-timeout: a phone that is off ends PHONE_ABSENT
PHONE_RATE=5             # mobile.phone_rate: requests per phone per minute
LOAD_POLLS=50            # browser long-polls waiting at once
LOAD_WAIT=6              # their ?wait= (s); the 8 requests they wait on must outlive the
                         # whole load phase, so both timeouts are far above it (a loaded
                         # machine spends seconds starting the 50 polls)

plan 61
stack_start MSSP_USER_TIMEOUT=$USER_TIMEOUT MSSP_DELIVERY_TIMEOUT=$DELIVERY_TIMEOUT PHONE_DELAY_MS=400 \
    CONFIG_SET="mobile.phone_rate=$PHONE_RATE"

MSSP=https://localhost:9103
# SIM holders from people.json: A, B, C with phones, D's SIM is revoked (its
# phone runs), E1..E4 hold SIMs but their phones are off.
mapfile -t ON < <(sim_holders '.phone_on and (.sim_revoked | not)')
mapfile -t REV < <(sim_holders '.sim_revoked')
mapfile -t OFF < <(sim_holders '(.phone_on | not)')
[ ${#ON[@]} -ge 4 ] && [ ${#REV[@]} -ge 1 ] && [ ${#OFF[@]} -ge 4 ] ||
    bail "people.json lacks the SIM holders (4 with phones, 1 revoked, 4 with phones off)"
A=${ON[0]} B=${ON[1]} C=${ON[2]} V=${ON[3]} D=${REV[0]}
E1=${OFF[0]} E2=${OFF[1]} E3=${OFF[2]} E4=${OFF[3]}
phone_log() { echo "$STATE_DIR/logs/phone$(($(ctl_of "$1") - 9110)).log"; }   # phoneN: port 9110+N
diag "phones on: A=$A B=$B C=$C V=$V; revoked: D=$D; phones off: $E1 $E2 $E3 $E4"

# ---- helpers ------------------------------------------------------------------------
# mob_start PHONE FIN: POST /auth/mobile; MID, MCODE and the browser's
# binding cookie (COOKIE_OF[MID]) on 202.
declare -A COOKIE_OF
mob_start() {
    gw_json POST /auth/mobile "$(jq -nc --arg p "$1" --arg f "$2" '{phone:$p, fin:$f}')" \
        -H "Origin: $GW_ORIGIN"
    MID='' MCODE=''
    [ "$STATUS" = 202 ] && {
        MID=$(jb '.id // empty')
        MCODE=$(jb '.verification_code // empty')
        COOKIE_OF[$MID]=$(mob_cookie)
    }
    return 0
}
# mob_poll ID WAIT: one poll by the browser that started ID.
mob_poll() { gw GET "/auth/mobile/$1?wait=$2" -H "cookie: ${COOKIE_OF[$1]:-}"; }
# mob_wait ID [ROUNDS]: long-polls (10 s each) until the state is no longer
# pending; the last answer in STATUS/BODY.
mob_wait() {
    local _
    for _ in $(seq 1 "${2:-3}"); do
        mob_poll "$1" 10
        [ "$STATUS" = 200 ] && [ "$(jb .state)" = pending ] || return 0
    done
}
# outcome: "STATUS state result" of the last poll.
outcome() { printf '%s %s %s' "$STATUS" "$(jb '.state // .code')" "$(jb '.result // empty')"; }
# hook PATH JSON: an MSSP test hook (loopback only).
hook() {
    curl -sS --http2 --max-time 10 --cacert "$STATE_DIR/certs/root.pem" -o /dev/null -w '%{http_code}' \
        -H 'content-type: application/json' --data-binary "$2" "$MSSP$1"
}

# ---- approved ---------------------------------------------------------------------
mob_start "$(phone_of "$A")" "$A"
is "$STATUS" 202 "POST /auth/mobile -> 202"
like "$MCODE" '^[0-9]{4}$' "the answer carries a 4-digit verification code"
is "$(jb .poll)" "/auth/mobile/$MID" "and where to poll"
like "$MID" '^[A-Za-z0-9_-]{22}$' "the request id is random base64url (128 bits)"
like "$(hdr set-cookie)" '^__Host-darvaza-mob=[A-Za-z0-9_-]{43}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=[0-9]+$' \
    "and the browser's binding cookie: __Host-, Secure, HttpOnly, SameSite=Strict"
# Only that browser collects: an id carried elsewhere, or a victim's browser
# sent to the poll of a login approved on the sender's phone (login CSRF),
# opens nothing and spends nothing.
gw GET "/auth/mobile/$MID?wait=1"
problem 403 forbidden "a poll without the starting browser's cookie -> 403 forbidden"
gw GET "/auth/mobile/$MID?wait=1" -H "cookie: __Host-darvaza-mob=$(printf 'A%.0s' $(seq 43))"
problem 403 forbidden "a poll with another browser's cookie -> 403 forbidden"
mob_wait "$MID"
is "$(outcome)" "200 complete " "approved on the phone -> complete"
is "$(jb '[.fin, .acr, (.amr|join(",")), .method] | join(" ")')" "$A high mob,pin mobile" \
    "session: the holder's FIN, acr high, amr [mob,pin], method mobile"
TOKEN=$(jb '.token // empty')
like "$(hdr set-cookie)" '^__Host-darvaza=[^;]+;.*Secure.*HttpOnly' "the session cookie is set"
is "$(phone_ctl "$A" GET /shown | jq -r .verification_code)" "$MCODE" \
    "the phone showed the same verification code as the browser"
like "$(phone_ctl "$A" GET /shown | jq -r .display_text)" "Darvaza demo portal" "the phone showed the service's name"
mob_poll "$MID" 1
problem 404 not_found "a finished request completes once: the next poll is 404"
gw GET /api/registry/me -H "$(bearer "$TOKEN")"
is "$STATUS $(jb .fin)" "200 $A" "the mobile session reads the holder's registry record"
gw GET /auth/session -H "$(bearer "$TOKEN")"
is "$(jb '.method + " " + .acr')" "mobile high" "GET /auth/session shows the mobile session"

# ---- long waits, started now, collected later ------------------------------------
phone_set_mode "$C" ignore
mob_start "$(phone_of "$C")" "$C"
C_ID=$MID
is "$STATUS" 202 "request to a phone whose user ignores it -> 202"
T_C=$(date +%s)
mob_start "$(phone_of "$C")" "$C"
problem 429 request_pending "a second request to the same phone while one waits -> 429 request_pending"
mob_start "$(phone_of "$E2")" "$E2"
E2_ID=$MID
is "$STATUS" 202 "request to a phone that is switched off -> 202"
mob_poll "$C_ID" 1
is "$(outcome)" "200 pending " "meanwhile the poll answers pending"

# ---- refused, wrong PIN, wrong FIN -----------------------------------------------------
phone_set_mode "$B" refuse
mob_start "$(phone_of "$B")" "$B"
mob_wait "$MID"
is "$(outcome)" "200 failed user_cancelled" "refused on the phone -> failed user_cancelled"
phone_set_mode "$B" wrong-pin
pin_wrong0=$(grep -c '"phone_pin_wrong"' "$(phone_log "$B")")
mob_start "$(phone_of "$B")" "$B"
mob_wait "$MID"
is "$(outcome)" "200 failed user_cancelled" "wrong PIN three times: no signature -> failed user_cancelled"
is "$(($(grep -c '"phone_pin_wrong"' "$(phone_log "$B")") - pin_wrong0))" 3 "the phone really tried three wrong PINs"
mob_start "$(phone_of "$E1")" "$A"
mob_wait "$MID"
is "$(outcome)" "200 failed not_mobile_client" "FIN that does not hold that phone's SIM -> failed not_mobile_client"

# ---- a request nobody polls holds the phone only while it waits ------------------------
# (lib.sh stranger_holds_phone; V approves after 6 s, so V's request still
# waits on the phone below.)
stranger_holds_phone mob_start MID "$V" "a login for" start 6000
X_ID=$STRANGER_ID V_ID=$MID
# The stranger's request, polled at last, must not free V's waiting one.
mob_poll "$X_ID" 1
is "$(outcome)" "200 failed user_cancelled" "the stranger's request, polled late, ended refused"
mob_start "$(phone_of "$V")" "$V"
problem 429 request_pending "and V's request still holds the phone -> 429 request_pending"
mob_wait "$V_ID"
is "$(outcome)" "200 complete " "V approves on the phone and is logged in"
phone_ctl "$V" POST /mode '{"delay_ms":400}' >/dev/null

# ---- the MSSP lies --------------------------------------------------------------------
is "$(hook /_mssp/tamper "$(jq -nc --arg p "$(phone_of "$A")" '{phone:$p, mode:"signature"}')")" 200 "tamper hook: signature"
mob_start "$(phone_of "$A")" "$A"
mob_wait "$MID"
is "$(outcome)" "200 failed signature_invalid" "a signature that does not verify -> failed signature_invalid"
hook /_mssp/tamper "$(jq -nc --arg p "$(phone_of "$A")" '{phone:$p, mode:"certificate"}')" >/dev/null
mob_start "$(phone_of "$A")" "$A"
mob_wait "$MID"
is "$(outcome)" "200 failed signature_invalid" "another holder's certificate -> failed signature_invalid"
# A mixed-up MSSP directory: B's login goes to A's phone, which signs with
# A's SIM; the signature and certificate are good, but not B's.
is "$(hook /_mssp/tamper "$(jq -nc --arg p "$(phone_of "$A")" --arg f "$B" '{phone:$p, mode:"holder", fin:$f}')")" 200 \
    "tamper hook: holder"
shown0=$(phone_ctl "$A" GET /shown | jq -r .count)
mob_start "$(phone_of "$A")" "$B"
mob_wait "$MID"
is "$(outcome)" "200 failed signature_invalid" "B's login signed on A's phone with A's certificate -> failed signature_invalid"
is "$(($(phone_ctl "$A" GET /shown | jq -r .count) - shown0))" 1 "A's phone really was asked (and signed)"
like "$(cat "$(gw_log)")" "certificate's FIN is not the FIN given" "the gateway refused on the FIN check, not before"
phone_set_mode "$B" auto

# ---- revoked SIM --------------------------------------------------------------------------
mob_start "$(phone_of "$D")" "$D"
mob_wait "$MID"
is "$(outcome)" "200 failed certificate_revoked" "revoked SIM certificate (OCSP on 9107) -> failed certificate_revoked"
is "$(phone_ctl "$D" GET /mode | jq -r .counts.approved)" 1 "the revoked holder's phone did approve: the gateway refused"

# ---- MSSP down ----------------------------------------------------------------------------
phone_set_mode "$D" refuse
is "$(hook /_mssp/down '{"seconds":30}')" 200 "MSSP down hook"
mob_start "$(phone_of "$D")" "$D"
problem 502 upstream_unavailable "MSSP down -> 502 upstream_unavailable"
hook /_mssp/down '{"seconds":0}' >/dev/null
mob_start "$(phone_of "$D")" "$D"
is "$STATUS" 202 "MSSP back: the phone is not left locked by the failed request"
mob_wait "$MID"
phone_set_mode "$D" auto

# ---- bad input ----------------------------------------------------------------------------
mob_start "+99450123" "$A"
problem 400 invalid_phone "a phone number that is not +994 and 9 digits -> 400 invalid_phone"
mob_start "$(phone_of "$A")" "ABC12"
problem 400 invalid_fin "a 5-character FIN -> 400 invalid_fin"
gw GET "/auth/mobile/AAAAAAAAAAAAAAAAAAAAAA?wait=1"
problem 404 not_found "an unknown request id -> 404"
gw_json POST /auth/mobile "$(jq -nc --arg p "$(phone_of "$A")" --arg f "$A" '{phone:$p, fin:$f}')" \
    -H 'Origin: https://evil.example'
problem 403 bad_origin "POST /auth/mobile from another origin -> 403 bad_origin"

# ---- push-bombing ---------------------------------------------------------------------------
# A number the MSSP does not know: each request ends NOT_MID_CLIENT at once,
# and the poll that sees it frees the phone for the next request.
BOMB=+994559$(printf '%06d' $((RANDOM % 1000000)))
codes=""
for _ in $(seq 1 $PHONE_RATE); do
    mob_start "$BOMB" "$A"
    codes+="$STATUS "
    [ -n "$MID" ] && mob_wait "$MID" 1
done
is "$codes" "$(printf '202 %.0s' $(seq 1 $PHONE_RATE))" "$PHONE_RATE requests to one phone in a minute are accepted"
mob_start "$BOMB" "$A"
problem 429 rate_limited "request $((PHONE_RATE + 1)) within the minute -> 429 rate_limited"
is "$(hdr retry-after)" 60 "with Retry-After"

# ---- the long waits end ---------------------------------------------------------------------
mob_wait "$C_ID" 4
is "$(outcome)" "200 failed timeout" "ignored on the phone -> failed timeout"
el=$(($(date +%s) - T_C))
ok "the timeout came no sooner than the MSSP's user timeout (${el}s >= ${USER_TIMEOUT}s)" test "$el" -ge $((USER_TIMEOUT - 1))
mob_wait "$E2_ID" 4
is "$(outcome)" "200 failed phone_absent" "phone switched off -> failed phone_absent"

# ---- 50 logins waiting at once; the loops stay responsive -----------------------------------
for h in "$A" "$B" "$C" "$D"; do phone_set_mode "$h" ignore; done
ids=()
for h in "$A" "$B" "$C" "$D" "$E1" "$E2" "$E3" "$E4"; do
    mob_start "$(phone_of "$h")" "$h"
    [ -n "$MID" ] && ids+=("$MID")
done
is "${#ids[@]}" 8 "8 mobile requests pending (4 ignored, 4 on phones that are off)"
: >"$WORK/load.out"
# Browsers: five connections of ten streams each; one block of options per
# poll ("next" between them), each with the binding cookie of its login.
for k in 0 1 2 3 4; do
    : >"$WORK/load.$k.cfg"
    for i in $(seq $((k * LOAD_POLLS / 5)) $(((k + 1) * LOAD_POLLS / 5 - 1))); do
        id=${ids[$((i % ${#ids[@]}))]}
        [ ! -s "$WORK/load.$k.cfg" ] || echo next >>"$WORK/load.$k.cfg"
        printf '%s\n' "url = \"$GW_URL/auth/mobile/$id?wait=$LOAD_WAIT\"" \
            "header = \"cookie: ${COOKIE_OF[$id]}\"" "output = \"$WORK/poll.$i\"" http2 silent show-error \
            "max-time = 40" "cacert = \"$STATE_DIR/certs/root.pem\"" \
            'write-out = "%{http_code} %{time_total}\n"' >>"$WORK/load.$k.cfg"
    done
    curl -sS --parallel --parallel-max 10 -K "$WORK/load.$k.cfg" >>"$WORK/load.out" 2>"$WORK/load.$k.err" &
    OWN_PIDS+=($!)
    load_pids+=($!)
done
sleep 1
: >"$WORK/healthz.times"
t_end=$(($(date +%s) + LOAD_WAIT - 2))
while [ "$(date +%s)" -lt "$t_end" ]; do
    curl --http2 -sS -o /dev/null --max-time 5 --cacert "$STATE_DIR/certs/root.pem" \
        -w '%{http_code} %{time_total}\n' "$GW_URL/healthz" >>"$WORK/healthz.times" 2>/dev/null ||
        echo "000 9" >>"$WORK/healthz.times"
done
for p in "${load_pids[@]}"; do wait "$p"; done
n=$(wc -l <"$WORK/healthz.times")
stats=$(awk '{ print $2 }' "$WORK/healthz.times" | sort -n | awk '{ v[NR] = $1; s += $1 }
    END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; if (i > NR) i = NR;
          printf "%.4f %.4f %.4f", v[int((NR + 1) / 2)], v[i], v[NR] }')
read -r p50 p99 pmax <<<"$stats"
diag "healthz while $LOAD_POLLS mobile logins waited: $n requests, p50 ${p50}s p99 ${p99}s max ${pmax}s"
is "$(awk '$1 != 200' "$WORK/healthz.times" | wc -l | tr -d ' ')" 0 "every /healthz answered 200 meanwhile"
# A loop blocked by a waiting login would hold /healthz for the whole wait
# (LOAD_WAIT s); the bound is far from that and far above a loaded
# machine's scheduling noise, so it tells blocking, not speed.
ok "/healthz p99 ${p99}s < 2s over $n requests: no loop blocked" awk -v p="$p99" -v n="$n" 'BEGIN { exit !(p < 2 && n >= 10) }'
is "$(awk '$1 == 200' "$WORK/load.out" | wc -l | tr -d ' ')" "$LOAD_POLLS" "all $LOAD_POLLS long-polls answered 200"
is "$(cat "$WORK"/poll.* | jq -r .state | sort | uniq -c | awk '{ print $1, $2 }')" "$LOAD_POLLS pending" \
    "all of them pending: none was cut short"
ok "each long-poll waited its ${LOAD_WAIT}s (all were in flight during the measurement)" \
    awk -v w="$LOAD_WAIT" '$2 < w - 0.5 { bad = 1 } END { exit bad }' "$WORK/load.out"

# ---- audit and logs ----------------------------------------------------------------------------
ok "the mobile login is in the audit log" grep -q "\"means\":\"mobile\".*\"$A\"\|\"$A\".*\"means\":\"mobile\"" "$STATE_DIR/audit.log"
pins=$(people | jq -r 'map(select(.sim == true) | .sim_pin) | join("|")')
# (verification codes are 4 digits too: not counted as PINs)
unlike "$(cat "$(gw_log)" "$STATE_DIR"/logs/mssp.log "$STATE_DIR"/logs/phone*.log |
    sed -E 's/"[a-z_]*verification_code":"[0-9]{4}"//g')" \
    "\"($pins)\"|$(cat "$STATE_DIR/keys/mssp-rp.secret")|$TOKEN" "no PIN, relying-party secret or token in the logs"

finish
