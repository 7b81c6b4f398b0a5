#!/usr/bin/env bash
# t_lockout.sh - repeated login failures lock a FIN and a client address
# (429 locked + Retry-After), a locked FIN stays locked even with the right
# password, and the lock ends after its duration (DESIGN §4.3).
#
# The stack is started with LOCKOUT_ATTEMPTS=5 LOCKOUT_DURATION=5s (stack.sh
# passes them to the gateway's config) so that the recovery takes seconds.
# Loopback has the whole of 127.0.0.0/8: curl --interface 127.0.0.N gives each
# phase its own client address.
. "$(dirname "$0")/lib.sh"

ATTEMPTS=5
DURATION=5
plan 14
stack_start LOCKOUT_ATTEMPTS=$ATTEMPTS LOCKOUT_DURATION=${DURATION}s

R=$(pick_person registered 0)
R2=$(pick_person registered 1)
[ -n "$R" ] && [ -n "$R2" ] || bail "people.json lacks 2 registered people"
R_PW=$(person "$R" password)
R_SECRET=$(person "$R" totp_secret)

# from ADDR FIN PASSWORD [OTP]: a login attempt from client address ADDR.
from() {
    local addr=$1 fin=$2 pw=$3 body
    if [ $# -ge 4 ]; then body=$(jq -nc --arg f "$fin" --arg p "$pw" --arg o "$4" '{fin:$f,password:$p,otp:$o}')
    else body=$(jq -nc --arg f "$fin" --arg p "$pw" '{fin:$f,password:$p}'); fi
    gw_json POST /auth/password "$body" --interface "$addr" --resolve "localhost:8443:127.0.0.1"
}

# ---- per FIN ------------------------------------------------------------------------
codes=""
for i in $(seq 1 $((ATTEMPTS - 1))); do
    from 127.0.0.2 "$R" "wrong-password-$i"
    codes+="$STATUS:$(jb .code) "
done
is "$codes" "$(for i in $(seq 1 $((ATTEMPTS - 1))); do printf '401:bad_credentials '; done)" \
    "the first $((ATTEMPTS - 1)) wrong passwords answer 401 bad_credentials"
from 127.0.0.2 "$R" "wrong-password-$ATTEMPTS"
from 127.0.0.2 "$R" "wrong-password-again"
problem 429 locked "after $ATTEMPTS failures the FIN is locked: 429 locked"
RA=$(hdr retry-after)
like "$RA" '^[0-9]+$' "429 carries Retry-After in seconds ($RA)"
ok "Retry-After is within the configured lockout ($DURATION s)" test "${RA:-0}" -ge 1 -a "${RA:-0}" -le $((DURATION + 1))
from 127.0.0.2 "$R" "$R_PW" "$(totp_fresh "$R" "$R_SECRET")"
problem 429 locked "the right password and code while locked -> still 429 locked"
from 127.0.0.3 "$R" "$R_PW"
problem 429 locked "the FIN is locked from another client address too"
login_person "$R2"
is "$STATUS" 200 "meanwhile another person logs in"

# Wait out the lock (bounded: the lock must end within Retry-After).
if [ "${RA:-0}" -ge 1 ] && [ "$RA" -le 20 ]; then sleep $((RA + 1)); fi
from 127.0.0.2 "$R" "$R_PW" "$(totp_fresh "$R" "$R_SECRET")"
is "$STATUS $(jb .acr)" "200 substantial" "after Retry-After the right password and code log in again"

# ---- per client address -------------------------------------------------------------
# Failures for ever-new unknown FINs (so no FIN lock) from one address.
locked_at=0
for i in $(seq 1 60); do
    from 127.0.0.4 "$(printf 'Q%06d' "$i")" "wrong-password"
    if [ "$STATUS" = 429 ]; then locked_at=$i; break; fi
    [ "$STATUS" = 401 ] || break
done
ok "failures for many FINs from one address end in 429 (after $locked_at, at most 60)" test "$locked_at" -gt 1
problem 429 locked "that answer is the problem locked"
like "$(hdr retry-after)" '^[0-9]+$' "with Retry-After"
from 127.0.0.4 "$R2" "$(person "$R2" password)" "$(totp_fresh "$R2" "$(person "$R2" totp_secret)")"
problem 429 locked "the locked address cannot log in even with right credentials"
from 127.0.0.5 "$R2" "$(person "$R2" password)" "$(totp_fresh "$R2" "$(person "$R2" totp_secret)")"
is "$STATUS" 200 "another address logs the same person in"

finish
