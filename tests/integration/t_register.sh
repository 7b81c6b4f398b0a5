#!/usr/bin/env bash
# t_register.sh - registration a photocopy cannot pass (docs/api.md
# "Registration"): FIN + document only start it, a code sent by SMS to the
# phone the registry holds finishes it; wrong, expired and reused codes are
# refused, tries are bounded, the owner is told; a high session registers
# without a document or code.
. "$(dirname "$0")/lib.sh"

plan 42
# Two registered people only, so that the third SIM holder (whose demo phone
# answers) is unregistered and can register with a mobile signature.
stack_start PEOPLE_REGISTERED=2 PHONE_DELAY_MS=100 CONFIG_SET="sms.code_ttl=60s"

V=$(pick_person unregistered 1)   # the victim: an attacker holds a photocopy of their card
O=$(pick_person unregistered 2)   # expires a code
Q=$(pick_person unregistered 3)   # asks for too many codes
M=$(people | jq -r 'map(select(.sim == true and .registered != true and .phone_on == true))[0].fin // empty')
[ -n "$V" ] && [ -n "$O" ] && [ -n "$Q" ] && [ -n "$M" ] || bail "people.json lacks the unregistered people this test needs"
VDOC=$(person "$V" document); VPHONE=$(person_phone "$V")
[ -n "$VPHONE" ] || bail "the registry holds no number for $V"
PW="Reg-test-$$-Correct-Horse"
req() { jq -nc --arg f "$1" --arg d "$2" --arg p "$3" '{fin:$f,document:$d,password:$p}'; }
with_code() { jq -c --arg c "$2" '. + {code:$c}' <<<"$1"; }
sms_count() { sms_read "$1" | jq length; }
more_sms() { [ "$(sms_count "$1")" -gt "$2" ]; }

# second_phone FIN: the second mobile number the registry holds for FIN, one
# added (after the first) when it holds only one.
second_phone() {
    local n
    n=$(sqlite3 "$STATE_DIR/registry.db" \
        "SELECT number FROM phone WHERE fin = '$1' AND active = 1 ORDER BY pos LIMIT 1 OFFSET 1")
    if [ -z "$n" ]; then
        n=$(printf '+99477%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))
        sqlite3 -cmd ".timeout 5000" "$STATE_DIR/registry.db" \
            "INSERT INTO phone (number, fin, pos) VALUES ('$n', '$1', 99)" || return 1
    fi
    echo "$n"
}
VPHONE2=$(second_phone "$V")
[ -n "$VPHONE2" ] || bail "cannot give $V a second number"

# ---- the attacker: FIN + document from a photocopy --------------------------------
gw_json POST /auth/register "$(req "$V" "$VDOC" "$PW")"
problem 401 code_required "FIN + document alone -> 401 code_required (no account yet)"
MASKED=$(jb .phone)
like "$MASKED" '^\+994[0-9]{2}\*+[0-9]{2}$' "the answer names where the code went, masked ($MASKED)"
is "${MASKED: -2} ${#MASKED}" "${VPHONE: -2} ${#VPHONE}" "the mask keeps the number's length and last two digits"
is "$(jb .expires_in)" 60 "and says how long the code lives (sms.code_ttl)"
is "$(jb .phones_held)" 2 "and how many numbers the registry holds (the page says the code went to the first)"
CODE=$(sms_code "$VPHONE")
like "$CODE" '^[0-9]{6}$' "a six-digit code reached the phone the registry holds"
unlike "$BODY" "$CODE" "the answer does not carry the code"
like "$(sms_read "$VPHONE" | jq -r 'last.text')" 'If you did not ask for it' "the SMS tells the owner what an unasked code means"
is "$(sms_count "$VPHONE2")" 0 "the code goes to one number only: the second has none"
BAD=$(printf '%06d' $(((10#$CODE + 1) % 1000000)))
gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "$BAD")"
problem 401 code_invalid "a wrong code -> 401 code_invalid"
is "$(jb .attempts_left)" 4 "with the tries left"
gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "${CODE}0")"
problem 401 code_invalid "the right code with a digit more is not cut down to it -> code_invalid"
gw_json POST /auth/register "$(with_code "$(req "$V" "$(person "$O" document)" "$PW")" "$CODE")"
problem 401 code_invalid "the right code with another (well-formed) document -> code_invalid"
for i in 1 2; do gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "$BAD")"; done
is "$STATUS $(jb .code) $(jb .attempts_left)" "401 code_invalid 0" "the fifth wrong try spends the code"
gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "$CODE")"
problem 401 code_invalid "then even the right code is refused: guessing has a bound"
login "$V" "$PW"
problem 401 bad_credentials "no account exists for the victim: the attacker could not finish"
grep -q "\"reason\":\"code_wrong\"" "$STATE_DIR/audit.log" && grep -q "\"result\":\"code_sent\"" "$STATE_DIR/audit.log"
is "$?" 0 "the audit log records the code sent and the wrong tries"

# ---- the owner finishes -----------------------------------------------------------
N0=$(sms_count "$VPHONE")
register_person "$V" "$VDOC" "$PW"
is "$STATUS" 201 "the owner, with the code from their phone -> 201"
like "$(jb .totp.secret)" '^[A-Z2-7]+=*$' "with the TOTP secret"
is "$(jb .notice_sent)" true "and the notice was sent"
is "$(sms_count "$VPHONE")" $((N0 + 2)) "two SMS: the code, then the notice"
like "$(sms_read "$VPHONE" | jq -r 'last.text')" 'An account was registered in your name' "the person is told an account now exists"
is "$(sms_count "$VPHONE2") $(sms_read "$VPHONE2" | jq -r 'last.text' | grep -c 'An account was registered in your name')" "1 1" \
    "the notice also reaches the registry's second number (and only the notice)"
login "$V" "$PW"
is "$STATUS $(jb .acr)" "200 low" "the new account signs in"
gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "$(sms_code "$VPHONE")")"
problem 401 code_invalid "the used code again -> code_invalid (single use)"
gw_json POST /auth/register "$(req "$V" "$VDOC" "$PW")"
problem 401 code_required "asking again for an existing account sends a code too: the answer says nothing of accounts"
gw_json POST /auth/register "$(with_code "$(req "$V" "$VDOC" "$PW")" "$(sms_code "$VPHONE")")"
problem 422 registration_refused "and the right code for an existing account -> 422 registration_refused"

# ---- expiry, mismatch, the flood limit ---------------------------------------------------
OPHONE=$(person_phone "$O")
# A one-second code life (sms.code_ttl is reloadable), to watch one expire.
sed -i 's/^  code_ttl: .*/  code_ttl: 1s/' "$STATE_DIR/darvaza.yaml"
stack_reload
reloaded() { [ "$(metric 'darvaza_config_reloads_total{result="success"}')" = 1 ]; }
wait_until 20 reloaded
gw_json POST /auth/register "$(req "$O" "$(person "$O" document)" "$PW")"
T0=$(date +%s%3N)
is "$STATUS $(jb .expires_in)" "401 1" "after a reload the codes live one second"
OCODE=$(sms_code "$OPHONE")
past_ms() { [ "$(date +%s%3N)" -ge "$1" ]; }
wait_until 10 past_ms $((T0 + 1500))
gw_json POST /auth/register "$(with_code "$(req "$O" "$(person "$O" document)" "$PW")" "$OCODE")"
problem 401 code_expired "a code older than sms.code_ttl -> 401 code_expired"
N0=$(sms_count "$OPHONE")
gw_json POST /auth/register "$(req "$O" "$VDOC" "$PW")"
problem 422 registration_refused "someone else's document -> 422 registration_refused"
is "$(sms_count "$OPHONE")" "$N0" "and no SMS is sent for it"
QDOC=$(person "$Q" document)
for i in 1 2 3; do gw_json POST /auth/register "$(req "$Q" "$QDOC" "$PW")"; done
is "$STATUS $(jb .code)" "401 code_required" "three codes an hour for one person"
gw_json POST /auth/register "$(req "$Q" "$QDOC" "$PW")"
problem 429 rate_limited "the fourth -> 429 rate_limited (a victim's phone is not flooded)"
like "$(hdr retry-after)" '^[0-9]+$' "with Retry-After"

# ---- a high means registers without a document or code ---------------------------------
R=$(pick_person registered 0)
login_person "$R"
gw_json POST /auth/register "{\"password\":\"$PW\"}" -H "$(bearer "$LOGIN_TOKEN")"
problem 403 insufficient_assurance "{password} with a password session -> 403 insufficient_assurance"
MPHONE=$(person "$M" phone)
gw_json POST /auth/mobile "$(jq -nc --arg p "$MPHONE" --arg f "$M" '{phone:$p, fin:$f}')" -H "Origin: $GW_ORIGIN"
MID=$(jb '.id // empty')
MCOOKIE=$(mob_cookie)
for _ in 1 2 3; do
    gw GET "/auth/mobile/$MID?wait=10" -H "cookie: $MCOOKIE"
    [ "$STATUS" = 200 ] && [ "$(jb .state)" = pending ] || break
done
MTOKEN=$(jb '.token // empty')
is "$(jb .acr)" high "a mobile-signature login of an unregistered person gives a high session"
RPHONE=$(person_phone "$M")
N0=$(sms_count "$RPHONE")
gw_json POST /auth/register "{\"password\":\"$PW\"}" -b "__Host-darvaza=$MTOKEN"
problem 403 bad_origin "{password} with that session's cookie and no Origin -> 403 bad_origin (CSRF)"
gw_json POST /auth/register "{\"password\":\"$PW\"}" -b "__Host-darvaza=$MTOKEN" -H 'origin: https://evil.example'
problem 403 bad_origin "{password} with that session's cookie from a foreign Origin -> 403 bad_origin"
is "$(sms_count "$RPHONE")" "$N0" "no account was made for them (no notice)"
gw_json POST /auth/register "{\"password\":\"$PW\"}" -H "$(bearer "$MTOKEN")"
is "$STATUS $(jb .fin)" "201 $M" "{password} with that session -> 201, no document, no code"
wait_until 10 more_sms "$RPHONE" "$N0"
like "$(sms_read "$RPHONE" | jq -r 'last.text')" 'An account was registered in your name.* with mobile' "the notice names the means"

finish
