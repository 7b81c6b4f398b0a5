#!/usr/bin/env bash
# t_lockout.sh - the password lockout (docs/api.md "Lockout") cannot be
# turned on a victim: failures of one FIN from one address lock that pair
# (429 locked + Retry-After, the right password there too) while the person
# logs in from elsewhere; failures of a FIN from many addresses only make it
# wait a delay that grows; a person kept out of password login signs in
# with a card, which lifts the delay; failures of many FINs from one
# address lock that address only.
#
# The stack runs with LOCKOUT_DURATION=8s, lockout.pair_attempts=5,
# lockout.fin_attempts=8 and lockout.fin_delay=3s so that locks and delays
# take seconds.  Loopback has the whole of 127.0.0.0/8: curl --interface
# 127.0.0.N gives each attempt the client address the phase needs.
. "$(dirname "$0")/lib.sh"

PAIR=5
FIN_ATTEMPTS=8
DURATION=8
plan 19
stack_start LOCKOUT_DURATION=${DURATION}s \
    CONFIG_SET="lockout.pair_attempts=$PAIR lockout.fin_attempts=$FIN_ATTEMPTS lockout.fin_delay=3s"
card_env

R=$(pick_person registered 0)
R2=$(pick_person registered 1)
[ -n "$R" ] && [ -n "$R2" ] || bail "people.json lacks 2 registered people"
R_PW=$(person "$R" password)
R_SECRET=$(person "$R" totp_secret)
R_CARD=$(person "$R" card_label)
[ -n "$R_CARD" ] || bail "$R has no demo card"

# from ADDR FIN PASSWORD [OTP]: a login attempt from client address ADDR.
from() {
    local addr=$1 fin=$2 pw=$3 body
    if [ $# -ge 4 ]; then body=$(jq -nc --arg f "$fin" --arg p "$pw" --arg o "$4" '{fin:$f,password:$p,otp:$o}')
    else body=$(jq -nc --arg f "$fin" --arg p "$pw" '{fin:$f,password:$p}'); fi
    gw_json POST /auth/password "$body" --interface "$addr" --resolve "localhost:8443:127.0.0.1"
}
right() { from "$1" "$R" "$R_PW" "$(totp_fresh "$R" "$R_SECRET")"; }
# probe ADDR: the right password without a code, at once (totp_fresh may wait
# for a new step, longer than a delay): 429 locked, or 401 otp_required when
# nothing holds the FIN back.
probe() { from "$1" "$R" "$R_PW"; }
retry_after() { local v; v=$(hdr retry-after); [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0; }
# wait_unlocked SECONDS: the lock must end within its Retry-After (bounded).
wait_unlocked() { if [ "$1" -ge 1 ] && [ "$1" -le 20 ]; then sleep $(($1 + 1)); fi; }

# ---- one FIN from one address: that pair is locked, the person is not --------------
codes=""
for i in $(seq 1 $PAIR); do
    from 127.0.0.2 "$R" "wrong-password-$i"
    codes+="$STATUS:$(jb .code) "
done
is "$codes" "$(for i in $(seq 1 $PAIR); do printf '401:bad_credentials '; done)" \
    "$PAIR wrong passwords from one address answer 401 bad_credentials"
from 127.0.0.2 "$R" "wrong-password-again"
problem 429 locked "then that FIN is locked from that address: 429 locked"
RA=$(retry_after)
ok "with Retry-After within the lock duration ($RA s)" test "$RA" -ge 1 -a "$RA" -le $((DURATION + 1))
right 127.0.0.2
problem 429 locked "the right password and code from that address -> still 429 locked"
right 127.0.0.3
is "$STATUS $(jb .acr)" "200 substantial" "the person logs in from another address meanwhile"
login_person "$R2"
is "$STATUS" 200 "and another person logs in"
wait_unlocked "$RA"
right 127.0.0.2
is "$STATUS" 200 "after Retry-After the right password logs in from the first address again"

# ---- one FIN from many addresses: growing delays, never a long lock --------------------
codes=""
for i in $(seq 1 $FIN_ATTEMPTS); do
    from "127.0.0.$((20 + i))" "$R" "wrong-password-$i"
    codes+="$STATUS "
done
is "$codes" "$(for i in $(seq 1 $FIN_ATTEMPTS); do printf '401 '; done)" \
    "$FIN_ATTEMPTS wrong passwords for the FIN from $FIN_ATTEMPTS addresses answer 401"
probe 127.0.0.40
problem 429 locked "then the FIN waits a delay, from any address: 429 locked"
RA1=$(retry_after)
ok "the first delay is about fin_delay (Retry-After $RA1 s <= 3)" test "$RA1" -ge 1 -a "$RA1" -le 3
wait_unlocked "$RA1"
from 127.0.0.41 "$R" "wrong-password-after-delay"
is "$STATUS" 401 "after the delay the next wrong password is counted (401)"
probe 127.0.0.42
RA2=$(retry_after)
ok "and the delay has doubled (Retry-After $RA2 s, 4..6)" test "$STATUS" = 429 -a "$RA2" -ge 4 -a "$RA2" -le 6

# ---- kept out of password login, the person signs in with a card ------------------------
(umask 077 && person "$R" card_pin >"$WORK/card.pin")
OUT=$(timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --cacert "$STATE_DIR/certs/root.pem" \
    --token "$R_CARD" --pin-file "$WORK/card.pin" 2>"$WORK/card.err")
is "$?" 0 "the person signs in with their card while password login waits$(test -s "$WORK/card.err" && printf ' (%s)' "$(head -c 200 "$WORK/card.err")")"
probe 127.0.0.43
problem 401 otp_required "and the card login lifted the delay: the right password is judged at once (otp_required, not locked)"

# ---- many FINs from one address: that address is locked -------------------------------
locked_at=0
for i in $(seq 1 60); do
    from 127.0.0.4 "$(printf 'Q%06d' "$i")" "wrong-password"
    if [ "$STATUS" = 429 ]; then locked_at=$i; break; fi
    [ "$STATUS" = 401 ] || break
done
ok "failures for many FINs from one address end in 429 (after $locked_at, at most 60)" test "$locked_at" -gt 1
problem 429 locked "that answer is the problem locked"
from 127.0.0.4 "$R2" "$(person "$R2" password)" "$(totp_fresh "$R2" "$(person "$R2" totp_secret)")"
problem 429 locked "the locked address cannot log in even with right credentials"
from 127.0.0.5 "$R2" "$(person "$R2" password)" "$(totp_fresh "$R2" "$(person "$R2" totp_secret)")"
is "$STATUS" 200 "another address logs the same person in"

finish
