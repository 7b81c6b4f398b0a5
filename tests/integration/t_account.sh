#!/usr/bin/env bash
# t_account.sh - the person's own account (docs/api.md "Account"): sessions
# listed and ended one by one or everywhere, password change (current
# password + code, or a high session), TOTP reset and recovery of a
# locked-out account with a high means only, the SMS notices, the list of
# e-services and what each receives, the OIDC consent hook.
. "$(dirname "$0")/lib.sh"

plan 48
# fin_limit 3: three wrong passwords in a row close password login for a FIN,
# so that recovery with a high means can be shown.
stack_start PHONE_DELAY_MS=100 CONFIG_SET="lockout.fin_limit=3"

SIMS=$(people | jq -r 'map(select(.sim == true and .registered == true and .phone_on == true and .sim_revoked != true)) | .[].fin')
A=$(sed -n 1p <<<"$SIMS")     # changes password, resets TOTP
B=$(sed -n 2p <<<"$SIMS")     # locked out, recovers
[ -n "$A" ] && [ -n "$B" ] || bail "people.json lacks two registered SIM holders with phones"
A_PW=$(person "$A" password); A_SECRET=$(person "$A" totp_secret); A_PHONE=$(person_phone "$A")
NEW_PW="Acct-test-$$-New-Horse"
sms_count() { sms_read "$1" | jq length; }
sms_last() { sms_read "$1" | jq -r 'last.text // empty'; }
more_sms() { [ "$(sms_count "$1")" -gt "$2" ]; }
sid_of() { printf '%s' "$1" | openssl dgst -sha256 -binary | basenc --base64url | tr -d '='; }

# ---- sessions -----------------------------------------------------------------------
# pwotp FIN PASSWORD CODE: a password login with an explicit code; sets LOGIN_TOKEN.
pwotp() { gw_json POST /auth/password "$(jq -nc --arg f "$1" --arg p "$2" --arg o "$3" '{fin:$f,password:$p,otp:$o}')"
          LOGIN_TOKEN=$(jb '.token // empty'); }
login_person "$A"; T1=$LOGIN_TOKEN
mobile_login "$A"; T2=$MTOKEN
[ -n "$T1" ] && [ -n "$T2" ] || bail "A cannot sign in"
gw GET /api/account/sessions
problem 401 unauthenticated "the account needs a session -> 401 unauthenticated"
gw GET /api/account/sessions -H "$(bearer "$T1")"
is "$STATUS $(jb '.sessions | length')" "200 2" "two logins -> two sessions listed"
is "$(jb '[.sessions[] | select(.current)] | length')" 1 "exactly one is marked current"
is "$(jb '[.sessions[] | [.method, .acr, .address] | join(" ")] | join(", ")')" "password substantial 127.0.0.1, mobile high 127.0.0.1" "each with its means, level and address, oldest first"
like "$(jb '.sessions[0].created_at')" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "and the time it began"
is "$(jb '.sessions[] | select(.current) | .id')" "$(sid_of "$T1")" "a session's id is the sid assertions carry (SHA-256 of the token), never the token"
unlike "$BODY" "$T2" "no token in the list"
gw DELETE "/api/account/sessions/$(sid_of "$T2")" -H "$(bearer "$T1")"
is "$STATUS" 204 "ending the other session -> 204"
gw GET /auth/session -H "$(bearer "$T2")"
problem 401 unauthenticated "that session is gone"
gw GET /auth/session -H "$(bearer "$T1")"
is "$STATUS" 200 "this one still works"
gw DELETE /api/account/sessions/not-a-session -H "$(bearer "$T1")"
problem 404 not_found "an unknown id -> 404 not_found"
login_person "$B"; TB=$LOGIN_TOKEN
gw DELETE "/api/account/sessions/$(sid_of "$TB")" -H "$(bearer "$T1")"
problem 404 not_found "another person's session -> 404 not_found (nobody ends someone else's)"
gw GET /auth/session -H "$(bearer "$TB")"
is "$STATUS" 200 "and it lives on"
gw PUT /api/account/sessions -H "$(bearer "$T1")"
problem 405 method_not_allowed "PUT on the sessions -> 405"

# ---- password change with the current password and a code ----------------------------
mobile_login "$A"; T3=$MTOKEN
body() { jq -nc --arg c "$1" --arg o "$2" --arg p "$3" '{current_password:$c, otp:$o, password:$p}'; }
gw_json POST /api/account/password "$(jq -nc --arg p "$NEW_PW" '{password:$p}')" -H "$(bearer "$T1")"
problem 400 invalid_request "a password session must give the current password and a code"
gw_json POST /api/account/password "$(body "$A_PW" 000000 short)" -H "$(bearer "$T1")"
problem 400 weak_password "a weak new password -> 400 weak_password"
gw_json POST /api/account/password "$(body "wrong-$A_PW" 000000 "$NEW_PW")" -H "$(bearer "$T1")"
problem 401 bad_credentials "a wrong current password -> 401 bad_credentials"
# A second number in the registry (after the first): notices go to every one.
A_PHONE2=$(sqlite3 "$STATE_DIR/registry.db" \
    "SELECT number FROM phone WHERE fin = '$A' AND active = 1 ORDER BY pos LIMIT 1 OFFSET 1")
if [ -z "$A_PHONE2" ]; then
    A_PHONE2=$(printf '+99470%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))
    sqlite3 -cmd ".timeout 5000" "$STATE_DIR/registry.db" \
        "INSERT INTO phone (number, fin, pos) VALUES ('$A_PHONE2', '$A', 99)" || bail "cannot add a number"
fi
N2=$(sms_count "$A_PHONE2")
N0=$(sms_count "$A_PHONE")
gw_json POST /api/account/password "$(body "$A_PW" "$(totp_fresh "$A" "$A_SECRET")" "$NEW_PW")" -H "$(bearer "$T1")"
is "$STATUS $(jb .changed) $(jb .notice_sent)" "200 true true" "current password + code -> 200, and the person is told"
is "$(jb .sessions_ended) $(jb .sessions_end_failed)" "1 false" "the other session (T3) was ended, and the answer says none is left"
gw GET /auth/session -H "$(bearer "$T3")"
problem 401 unauthenticated "so whoever knew the old password is out"
wait_until 10 more_sms "$A_PHONE" "$N0"
like "$(sms_last "$A_PHONE")" 'password of your account .* was changed' "the SMS says the password was changed"
wait_until 10 more_sms "$A_PHONE2" "$N2"
like "$(sms_last "$A_PHONE2")" 'password of your account .* was changed' "the registry's second number is told too"
login "$A" "$A_PW"
problem 401 bad_credentials "the old password no longer signs in"
login "$A" "$NEW_PW" "$A_SECRET"
is "$STATUS" 200 "the new one does"
grep -q '"type":"account_password"' "$STATE_DIR/audit.log"
is "$?" 0 "the change is on the audit log"

# ---- TOTP reset: a high means only ------------------------------------------------------------
gw_json POST /api/account/totp '{}' -H "$(bearer "$T1")"
problem 403 insufficient_assurance "TOTP reset with a password session -> 403 insufficient_assurance"
mobile_login "$A"
[ -n "$MTOKEN" ] || bail "mobile login of $A failed: $BODY"
N0=$(sms_count "$A_PHONE")
gw_json POST /api/account/totp '{}' -H "$(bearer "$MTOKEN")"
NEW_SECRET=$(jb '.totp.secret // empty')
is "$STATUS $(jb .notice_sent)" "200 true" "TOTP reset with a mobile-signature session -> 200, person told"
like "$NEW_SECRET" '^[A-Z2-7]{16,}=*$' "with a new secret"
like "$(jb '.totp.qr_svg' | head -c 200)" '<svg' "and its QR code"
is "$(jb .sessions_ended) $(jb .sessions_end_failed)" "2 false" "the other sessions (T1 and the last login, both with the old authenticator) were ended, none left"
gw GET /auth/session -H "$(bearer "$T1")"
problem 401 unauthenticated "so whoever holds the lost phone (and the password) is out"
gw GET /auth/session -H "$(bearer "$MTOKEN")"
is "$STATUS" 200 "the session that reset it stays"
wait_until 10 more_sms "$A_PHONE" "$N0"
like "$(sms_last "$A_PHONE")" 'one-time code app of your account .* was reset' "the SMS says the code app was reset"
pwotp "$A" "$NEW_PW" "$(totp_at "$A_SECRET" "$(date +%s)")"
problem 401 bad_credentials "the old authenticator no longer works"
gw_json POST /auth/password "$(jq -nc --arg f "$A" --arg p "$NEW_PW" '{fin:$f,password:$p}')"
problem 401 otp_required "nor does the password alone: a code of the new secret is required at once"
pwotp "$A" "$NEW_PW" "$(totp_at "$NEW_SECRET" "$(date +%s)")"
is "$STATUS $(jb .acr)" "200 substantial" "the new secret does"
T4=$LOGIN_TOKEN

# ---- recovery of a locked-out account --------------------------------------------------------
for _ in 1 2 3; do login "$B" "wrong-$$"; done
login "$B" "$(person "$B" password)" "$(person "$B" totp_secret)"
problem 429 locked "three wrong passwords in a row (lockout.fin_limit) lock password login, even for the owner"
mobile_login "$B"
[ -n "$MTOKEN" ] || bail "mobile login of $B failed: $BODY"
gw_json POST /api/account/password "$(jq -nc --arg p "$NEW_PW-B" '{password:$p}')" -H "$(bearer "$MTOKEN")"
is "$STATUS $(jb .changed)" "200 true" "with a mobile-signature session a new password needs no current one"
gw_json POST /api/account/totp '{}' -H "$(bearer "$MTOKEN")"
B_SECRET=$(jb '.totp.secret // empty')
pwotp "$B" "$NEW_PW-B" "$(totp_at "$B_SECRET" "$(date +%s)")"
is "$STATUS" 200 "the person is back in with the new password and code"
TB2=$LOGIN_TOKEN

# ---- sign out everywhere ------------------------------------------------------------------------
gw DELETE "/api/account/sessions?except=current" -H "$(bearer "$MTOKEN")" -H "Origin: $GW_ORIGIN"
is "$STATUS" 204 "sign out everywhere else -> 204"
gw GET /auth/session -H "$(bearer "$TB2")"
problem 401 unauthenticated "the other sessions are gone"
gw DELETE /api/account/sessions -H "$(bearer "$MTOKEN")" -H "Origin: $GW_ORIGIN"
is "$STATUS $(hdr set-cookie | grep -c 'Max-Age=0')" "204 1" "sign out everywhere -> 204 and the cookie cleared"
gw GET /auth/session -H "$(bearer "$MTOKEN")"
problem 401 unauthenticated "this session is gone too"

# ---- e-services, consents ---------------------------------------------------------------------
gw GET /api/account/services -H "$(bearer "$T4")"
is "$(jb '.services[] | select(.service == "registry") | .routes[] | select(.path == "/api/registry/me") | .releases | join(",")')" \
    "fin,name,surname,patronymic,birth_date,birth_place,gender,document,address" "the registry's /me route releases the fields its policy lists"
is "$(jb '[.services[].service] | index("court") != null')" true "every connected e-service is listed (court too)"
gw GET /api/account/consents -H "$(bearer "$T4")"
is "$STATUS $(jb .provider) $(jb '.consents | length')" "200 true 0" "the OIDC provider's consents through the account API: none yet"
gw DELETE /api/account/consents/some-client -H "$(bearer "$T4")"
problem 404 not_found "withdrawing a consent that does not exist -> 404"

finish
