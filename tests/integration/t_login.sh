#!/usr/bin/env bash
# t_login.sh - registration, FIN + password (+ TOTP) login, sessions, cookie,
# logout, as a browser or a curl user sees them (DESIGN §4.2, §4.3).
. "$(dirname "$0")/lib.sh"

plan 47
stack_start

U=$(pick_person unregistered 0)       # registers during this test
U2=$(pick_person unregistered 1)      # only lends its document
R=$(pick_person registered 0)         # registered by the stack, has a TOTP secret
[ -n "$U" ] && [ -n "$U2" ] && [ -n "$R" ] || bail "people.json lacks 2 unregistered and 1 registered person"
U_DOC=$(person "$U" document)
U2_DOC=$(person "$U2" document)
R_PW=$(person "$R" password)
R_SECRET=$(person "$R" totp_secret)
PW="Darvaza-test-$$-Correct-Horse"
diag "people: new=$U other=$U2 registered=$R"

reg() { gw_json POST /auth/register "$(jq -nc --arg f "$1" --arg d "$2" --arg p "$3" '{fin:$f,document:$d,password:$p}')"; }
pwlogin() { # pwlogin FIN PASSWORD [OTP]
    if [ $# -ge 3 ]; then gw_json POST /auth/password "$(jq -nc --arg f "$1" --arg p "$2" --arg o "$3" '{fin:$f,password:$p,otp:$o}')"
    else gw_json POST /auth/password "$(jq -nc --arg f "$1" --arg p "$2" '{fin:$f,password:$p}')"; fi
}
sans_detail() { jq -cS 'del(.detail, .instance)' <<<"$1" 2>/dev/null; }

# ---- registration --------------------------------------------------------------
reg "$U" "$U2_DOC" "$PW"
problem 422 registration_refused "register with someone else's document -> 422 registration_refused"
REFUSED_BODY=$BODY
reg "${U:0:6}" "$U_DOC" "$PW"
problem 400 invalid_fin "register with a 6-character FIN -> 400 invalid_fin"
reg "${U}X" "$U_DOC" "$PW"
problem 400 invalid_fin "register with an 8-character FIN -> 400 invalid_fin"
reg "${U:0:6}Ç" "$U_DOC" "$PW"
problem 400 invalid_fin "register with a non-ASCII FIN -> 400 invalid_fin"
reg "$U" "!!" "$PW"
problem 400 invalid_document "register with a malformed document number -> 400 invalid_document"
reg "$U" "$U_DOC" "abc"
problem 400 weak_password "register with a 3-character password -> 400 weak_password"

register_person "$(tr 'A-Z' 'a-z' <<<"$U")" "$U_DOC" "$PW"
is "$STATUS" 201 "register with own document and the SMS code (FIN in lower case) -> 201"
is "$(jb .fin)" "$U" "registration answers the normalised (upper-case) FIN"
SECRET=$(jb '.totp.secret // empty')
like "$SECRET" '^[A-Z2-7]{16,}=*$' "registration returns a base32 TOTP secret"
like "$(jb '.totp.otpauth_uri // empty')" "^otpauth://totp/[^?]+\\?(.*&)?secret=$SECRET(&|\$)" "otpauth URI carries that secret"
like "$(jb '.totp.qr_svg // empty' | head -c 300)" '<svg' "registration returns the QR code as SVG"

register_person "$U" "$U_DOC" "$PW"
problem 422 registration_refused "registering again (with a new SMS code) -> 422 registration_refused"
is "$(sans_detail "$BODY")" "$(sans_detail "$REFUSED_BODY")" \
    "'already registered' and 'not your document' give the same answer"

# ---- password only, before the TOTP is first used ----------------------------------
pwlogin "$U" "$PW"
is "$STATUS $(jb '[.acr, (.amr|join(",")), .fin] | join(" ")')" "200 low pwd $U" \
    "password-only login before TOTP activation -> 200, acr low, amr [pwd]"
TOK_LOW=$(jb '.token // empty')
like "$TOK_LOW" '^[A-Za-z0-9_-]{43,}$' "the token is a long random string (256 bits)"
like "$(jb '.method // empty')" '.' "the login answer names the method"
exp_at=$(jb '.expires_at // empty')
if [[ "$exp_at" =~ ^[0-9]+$ ]]; then exp_s=$exp_at; else exp_s=$(date -d "$exp_at" +%s 2>/dev/null || echo 0); fi
ok "expires_at ($exp_at) lies in the future, within 12 h" test "$exp_s" -gt "$(date +%s)" -a "$exp_s" -le $(($(date +%s) + 12 * 3600 + 60))
COOKIE=$(hdr set-cookie)
like "$COOKIE" "^__Host-darvaza=$TOK_LOW;" "Set-Cookie carries __Host-darvaza=<token>"
ok "cookie is Secure; HttpOnly; SameSite=Lax; Path=/ and has no Domain" bash -c '
    c=$(tr "A-Z" "a-z" <<<"$1")
    grep -Eq "; *secure(;|$)" <<<"$c" && grep -Eq "; *httponly(;|$)" <<<"$c" &&
    grep -Eq "; *samesite=lax(;|$)" <<<"$c" && grep -Eq "; *path=/(;|$)" <<<"$c" && ! grep -q "domain=" <<<"$c"' _ "$COOKIE"

# ---- TOTP ------------------------------------------------------------------------------
# Codes of three different steps (previous, current, next) let us test the
# ±1 window and replay without waiting; first make sure no boundary comes
# before the last of them is sent (a few logins later, slower under ASan).
now=$(date +%s)
[ $((30 - now % 30)) -le 15 ] && sleep $((30 - now % 30))
now=$(date +%s)
C_PREV=$(totp_at "$SECRET" $((now - 30)))
C_CUR=$(totp_at "$SECRET" "$now")
C_NEXT=$(totp_at "$SECRET" $((now + 30)))
pwlogin "$(tr 'A-Z' 'a-z' <<<"$U")" "$PW" "$C_PREV"
is "$STATUS $(jb '[.acr, (.amr|join(",")), .fin] | join(" ")')" "200 substantial pwd,otp $U" \
    "password + code of the previous step -> 200, acr substantial, amr [pwd,otp]"
TOK_SUB=$(jb '.token // empty')
ok "a new token at every login" test -n "$TOK_SUB" -a "$TOK_SUB" != "$TOK_LOW"
pwlogin "$U" "$PW"
problem 401 otp_required "after TOTP activation, password only -> 401 otp_required"
pwlogin "$U" "$PW" "$C_PREV"
problem 401 bad_credentials "the same code a second time (replay) -> 401 bad_credentials"
pwlogin "$U" "$PW" "$(printf '%06d' $(((10#$C_CUR + 1) % 1000000)))"
problem 401 bad_credentials "a wrong code -> 401 bad_credentials"
pwlogin "$U" "$PW" "$C_CUR"
is "$STATUS $(jb .acr)" "200 substantial" "a fresh code of the current step still works after the refusals"
TOK_U=$(jb '.token // empty')
pwlogin "$U" "$PW" "$C_NEXT"
is "$STATUS $(jb .acr)" "200 substantial" "a code of the next step is accepted (±1 window)"
totp_mark_used "$U" $((now + 30))

# ---- wrong credentials look alike ------------------------------------------------------
# R's first login with a code activates its TOTP; then a wrong password
# without a code must not answer otp_required (that would confirm the FIN).
login_person "$R"
is "$STATUS $(jb .acr)" "200 substantial" "a person registered by the stack logs in with password + TOTP"
TOK_R=$LOGIN_TOKEN
pwlogin "$R" "wrong-$PW"
problem 401 bad_credentials "wrong password, no code, TOTP active -> 401 bad_credentials, not otp_required"
WRONG_BODY=$BODY
pwlogin "$R" "$R_PW"
problem 401 otp_required "while the right password without a code -> 401 otp_required"
UNKNOWN=Z9Z9Z9Z
[ -z "$(person_json "$UNKNOWN")" ] || UNKNOWN=Y8Y8Y8Y
pwlogin "$UNKNOWN" "wrong-$PW"
problem 401 bad_credentials "unknown FIN -> 401 bad_credentials"
is "$(sans_detail "$BODY")" "$(sans_detail "$WRONG_BODY")" "unknown FIN and wrong password give the same problem (minus detail)"
pwlogin "$R" "$R_PW" "$(totp_at "$R_SECRET" $(($(date +%s) - 90)))"
problem 401 bad_credentials "a code three steps old -> 401 bad_credentials"
pwlogin "abc123" "$R_PW"
problem 400 invalid_fin "login with a 6-character FIN -> 400 invalid_fin"

# ---- session ------------------------------------------------------------------------------
gw GET /auth/session -H "$(bearer "$TOK_R")"
is "$STATUS $(jb '[.fin, .acr, (.amr|join(","))] | join(" ")')" "200 $R substantial pwd,otp" "GET /auth/session with the bearer token -> the session"
ok "the session answer holds no token" bash -c '! jq -e "has(\"token\")" <<<"$1" >/dev/null && ! grep -qF -- "$2" <<<"$1"' _ "$BODY" "$TOK_R"
gw GET /auth/session -b "__Host-darvaza=$TOK_R"
is "$STATUS $(jb .fin)" "200 $R" "GET /auth/session with the cookie -> the session"
gw GET /auth/session
problem 401 unauthenticated "GET /auth/session without credentials -> 401 unauthenticated"
gw GET /auth/session -H "$(bearer "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"
problem 401 unauthenticated "GET /auth/session with an unknown token -> 401 unauthenticated"

# ---- logout -------------------------------------------------------------------------------
gw POST /auth/logout -b "__Host-darvaza=$TOK_R" -H 'origin: https://evil.example'
problem 403 bad_origin "logout by cookie from a foreign Origin -> 403 bad_origin"
gw GET /auth/session -H "$(bearer "$TOK_R")"
is "$STATUS" 200 "the session survives the refused cross-origin logout"
gw POST /auth/logout -H "$(bearer "$TOK_R")"
is "$STATUS" 204 "POST /auth/logout with the bearer token -> 204"
gw GET /auth/session -H "$(bearer "$TOK_R")"
problem 401 unauthenticated "after logout the bearer token is dead"
gw GET /auth/session -b "__Host-darvaza=$TOK_R"
problem 401 unauthenticated "after logout the same token as a cookie is dead"

login_person "$R"
TOK_R2=$LOGIN_TOKEN
gw POST /auth/logout -b "__Host-darvaza=$TOK_R2" -H "origin: $GW_ORIGIN"
is "$STATUS" 204 "logout by cookie from the gateway's own Origin -> 204"
gw GET /auth/session -H "$(bearer "$TOK_R2")"
problem 401 unauthenticated "after a cookie logout the token is dead as a bearer too"
gw GET /auth/session -H "$(bearer "$TOK_U")"
is "$STATUS $(jb .fin)" "200 $U" "another person's session is not touched by these logouts"

finish
