#!/usr/bin/env bash
# t_card_resume.sh - TLS session resumption for card logins (docs/cards.md
# "TLS session file"): darvaza-card --tls-session keeps the gateway's TLS 1.3
# session ticket between processes (0600, nothing of the card in it) and the
# next login resumes; the gateway issues and takes tickets on the portal's
# listener.  A resumed connection logs nobody in: the session file of one
# person used with another card opens that card's session, and a resumed
# connection with a bad card answer gets the same refusal as a full
# handshake.  The card listener (client certificates) never resumes: each
# certificate login proves the card's key in its own handshake.
. "$(dirname "$0")/lib.sh"

plan 25

CARD="$BUILD_DIR/darvaza-card"
ROOTCA="$STATE_DIR/certs/root.pem"
CARD_HOSTPORT=localhost:8444

for t in softhsm2-util openssl; do
    command -v "$t" >/dev/null || bail "$t is not installed"
done
[ -x "$CARD" ] || bail "no $CARD (make first)"

stack_start
card_env
[ -s "$CARDS_JSON" ] || bail "the stack made no cards ($CARDS_JSON)"

# card_login LABEL [options...]: sets RC, OUT (stdout), ERR (stderr).
card_login() {
    local label=$1
    shift
    OUT=$(timeout 60 "$CARD" login --gateway "$GW_URL" --token "$label" \
        --pin-file "$(pin_file "$label")" "$@" 2>"$WORK/card.err")
    RC=$?
    ERR=$(cat "$WORK/card.err")
}
fin_of() { sed -n 1p <<<"$1" | jq -r .fin 2>/dev/null; }
# s_client HOST:PORT ARGS...: "Reused" or "New" (openssl's word for the
# handshake), the session written or read as ARGS say.
s_client() {
    local hp=$1
    shift
    timeout 30 openssl s_client -connect "$hp" -servername localhost -alpn h2 -CAfile "$ROOTCA" \
        "$@" </dev/null 2>/dev/null | grep -aEo '^(Reused|New), TLSv1\.[23]' | head -n 1
}

CIT1=$(card_of citizen 0)
CIT2=$(card_of citizen 1)
[ -n "$CIT1" ] && [ -n "$CIT2" ] || bail "cards.json lacks two citizen cards"
FIN1=$(card_field "$CIT1" fin)
FIN2=$(card_field "$CIT2" fin)
SESS="$WORK/tls-session"
rm -f "$SESS"

# ---- a first login writes the file, the next one resumes ---------------------
card_login "$CIT1" --cacert "$ROOTCA" --tls-session "$SESS" --verbose
is "$RC $(fin_of "$OUT")" "0 $FIN1" "first login with --tls-session: the card's session"
like "$ERR" 'TLS: full handshake' "the first login had no session to resume: a full handshake"
is "$(stat -c %a "$SESS" 2>/dev/null)" 600 "the TLS session file is 0600"
like "$(head -n 1 "$SESS")" "^darvaza-card-tls-session 1 $GW_URL [0-9a-f]{64}\$" \
    "its header names the gateway and the trust (SHA-256 of --cacert)"
unlike "$(cat "$SESS")" "$(card_field "$CIT1" pin)|PRIVATE KEY|$FIN1" "it holds no PIN, no key, no FIN"
openssl sess_id -in "$SESS" -noout -text >"$WORK/sess.txt" 2>&1
like "$(cat "$WORK/sess.txt")" 'Protocol  *: TLSv1\.3' "it is a TLS 1.3 session (a ticket of the gateway's)"
like "$(cat "$WORK/sess.txt")" 'TLS session ticket lifetime hint' "the gateway sent a ticket"
FIRST_TOK=$(tail -n 1 <<<"$OUT")

card_login "$CIT1" --cacert "$ROOTCA" --tls-session "$SESS" --verbose
is "$RC $(fin_of "$OUT")" "0 $FIN1" "second login: the card's session again"
like "$ERR" 'TLS: session resumed' "the second login resumed the TLS session"
isnt "$(tail -n 1 <<<"$OUT")" "$FIRST_TOK" "a new session token (the card signed a new challenge)"
gw GET /auth/session -H "authorization: Bearer $(tail -n 1 <<<"$OUT")"
is "$STATUS $(jb .fin) $(jb .acr)" "200 $FIN1 high" "the resumed login's token is a working card session"

# The gateway takes the ticket from any client (OpenSSL's own), on the
# portal's listener.
is "$(s_client "${GW_URL#https://}" -sess_in "$SESS")" "Reused, TLSv1.3" \
    "the portal's listener resumes the stored session for another TLS client too"

# ---- a stolen session file logs nobody in --------------------------------------
cp "$SESS" "$WORK/stolen"
card_login "$CIT2" --cacert "$ROOTCA" --tls-session "$WORK/stolen" --verbose
like "$ERR" 'TLS: session resumed' "another card with the stolen session file: the TLS session resumes"
is "$RC $(fin_of "$OUT")" "0 $FIN2" "... and the login is that card's FIN, not the file's first owner's"

# A resumed connection with an answer that does not hold (the card signed
# another origin): refused exactly as on a full handshake.
cp "$SESS" "$WORK/stolen2"
card_login "$CIT1" --cacert "$ROOTCA" --tls-session "$WORK/stolen2" --verbose --origin https://evil.example
like "$ERR" 'TLS: session resumed' "a bad answer on a resumed connection: the connection did resume"
RESUMED_REFUSAL=$(grep -o 'login refused: [0-9]* [a-z_]*' <<<"$ERR")
is "$RC $RESUMED_REFUSAL" "1 login refused: 401 bad_signature" \
    "... and the login is refused: 401 bad_signature, exit 1"
card_login "$CIT1" --cacert "$ROOTCA" --origin https://evil.example
is "$RC $(grep -o 'login refused: [0-9]* [a-z_]*' <<<"$ERR")" "1 $RESUMED_REFUSAL" \
    "the same answer on a full handshake: the same refusal"

# ---- what the file must be to be used ---------------------------------------------
cp "$SESS" "$WORK/loose" && chmod 0644 "$WORK/loose"
card_login "$CIT1" --cacert "$ROOTCA" --tls-session "$WORK/loose" --verbose
is "$RC" 0 "a session file others can read: the login still works"
like "$(one_line "$ERR")" 'not used \(it must be yours with mode 0600\).*TLS: full handshake' \
    "... with a full handshake, and says why the file was not used"
cp "$SESS" "$WORK/other-trust"
cp "$ROOTCA" "$WORK/root-copy.pem" && echo >>"$WORK/root-copy.pem"
card_login "$CIT1" --cacert "$WORK/root-copy.pem" --tls-session "$WORK/other-trust" --verbose
like "$RC $(one_line "$ERR")" '^0 .*TLS: full handshake' "a session verified under another --cacert is not offered"
ln -sf "$SESS" "$WORK/link"
card_login "$CIT1" --cacert "$ROOTCA" --tls-session "$WORK/link" --verbose
like "$RC $(one_line "$ERR")" '^0 .*TLS: full handshake' "a symbolic link is not followed"

# ---- the card listener never resumes ----------------------------------------------
rm -f "$WORK/card13" "$WORK/card12"
is "$(s_client "$CARD_HOSTPORT" -sess_out "$WORK/card13") $([ -s "$WORK/card13" ] && echo ticket || echo no-ticket)" \
    "New, TLSv1.3 no-ticket" "the card listener (client certificates) sends no TLS 1.3 session ticket"
is "$(s_client "$CARD_HOSTPORT" -tls1_2 -sess_out "$WORK/card12") $([ -s "$WORK/card12" ] && echo session || echo no-session)" \
    "New, TLSv1.2 no-session" "nor a TLS 1.2 session id or ticket: every handshake proves the card's key"
rm -f "$WORK/portal12"
s_client "${GW_URL#https://}" -tls1_2 -sess_out "$WORK/portal12" >/dev/null
is "$(s_client "${GW_URL#https://}" -tls1_2 -sess_in "$WORK/portal12")" "Reused, TLSv1.2" \
    "(the portal's listener resumes TLS 1.2 sessions: the check above is not an artefact of the client)"
finish
