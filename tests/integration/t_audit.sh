#!/usr/bin/env bash
# t_audit.sh - the audit log (DESIGN §4.10): a line is on disk before the
# answer, the chain verifies with `darvaza audit verify` (also its signed
# heads against the JWKS), an edited or deleted line is detected and named,
# and no password, code, TOTP secret or token appears in any log.
. "$(dirname "$0")/lib.sh"

plan 21
stack_start
AUDIT="$STATE_DIR/audit.log"
DZ="$BUILD_DIR/darvaza"
A=$(pick_person registered 0)
U=$(pick_person unregistered 0)
A_PW=$(person "$A" password)
SECRETS=("$A_PW")            # every secret value sent; none may be logged
CODES=()

# ---- traffic -------------------------------------------------------------------------------
gw_json POST /auth/password "$(jq -nc --arg f "$A" '{fin:$f,password:"not-the-password-1"}')"
SECRETS+=("not-the-password-1")
FAIL_RID=$(hdr darvaza-request-id)
code=$(totp_fresh "$A" "$(person "$A" totp_secret)")
CODES+=("$code")
gw_json POST /auth/password "$(jq -nc --arg f "$A" --arg p "$A_PW" --arg o "$code" '{fin:$f,password:$p,otp:$o}')"
TOK=$(jb '.token // empty')
LOGIN_RID=$(hdr darvaza-request-id)
# Read at once: the line must be durable before the answer was sent.
LOGIN_LINE=$(grep -F "\"$LOGIN_RID\"" "$AUDIT" 2>/dev/null | head -n 1)
is "$(jq -r '[.type, .fin] | join(" ")' <<<"${LOGIN_LINE:-null}" 2>/dev/null)" "login $A" \
    "the login's audit line (type login, the FIN) is on disk when the answer arrives"
FAIL_LINE=$(grep -F "\"$FAIL_RID\"" "$AUDIT" 2>/dev/null | head -n 1)
is "$(jq -r '[.type, .fin, (if .status == 401 or .result == "bad_credentials" then "refused" else "?" end)] | join(" ")' <<<"${FAIL_LINE:-null}" 2>/dev/null)" \
    "login $A refused" "the failed login is audited as refused (status 401 or result bad_credentials)"
SECRETS+=("$TOK")

gw GET /api/registry/me -H "$(bearer "$TOK")"
FWD_RID=$(hdr darvaza-request-id)
FWD_LINE=$(grep -F "\"$FWD_RID\"" "$AUDIT" 2>/dev/null | head -n 1)
is "$(jq -r '[.type, .phase, .fin, .service, .decision] | map(tostring) | join(" ")' <<<"${FWD_LINE:-null}" 2>/dev/null)" \
    "forward sent $A registry allow" "the forwarded request was on record before it left: fin, service, decision"
# Its outcome follows the answer; wait for it (bounded), never guess.
for _ in $(seq 1 100); do
    RES_LINE=$(grep -F "\"$FWD_RID\"" "$AUDIT" 2>/dev/null | grep -F '"forward_result"' | head -n 1)
    [ -n "$RES_LINE" ] && break
    sleep 0.1
done
is "$(jq -r '[.status, .result, .sent, (.jti == $j)] | map(tostring) | join(" ")' --arg j "$(jq -r .jti <<<"${FWD_LINE:-null}")" <<<"${RES_LINE:-null}" 2>/dev/null)" \
    "200 ok true true" "and its outcome follows, linked by request id and the assertion's jti: 200 ok"
gw GET /api/registry/persons/AB12CD3 -H "$(bearer "$TOK")"
DENY_LINE=$(grep -F "\"$(hdr darvaza-request-id)\"" "$AUDIT" 2>/dev/null | head -n 1)
is "$(jq -r '[.decision, .status] | map(tostring) | join(" ")' <<<"${DENY_LINE:-null}" 2>/dev/null)" "deny 403" \
    "a refused cross-person lookup is audited as deny 403"

NEW_PW="Audit-$$-secret-password"
register_person "$U" "$(person "$U" document)" "$NEW_PW"
NEW_SECRET=$(jb '.totp.secret // empty')
SECRETS+=("$NEW_PW" "$NEW_SECRET")
code=$(totp_at "$NEW_SECRET" "$(date +%s)")
CODES+=("$code")
gw_json POST /auth/password "$(jq -nc --arg f "$U" --arg p "$NEW_PW" --arg o "$code" '{fin:$f,password:$p,otp:$o}')"
TOK2=$(jb '.token // empty')
SECRETS+=("$TOK2")
gw POST /auth/logout -H "$(bearer "$TOK2")"
is "$STATUS" 204 "traffic done: register, logins, forwards, logout"
gw GET /.well-known/jwks.json
cp "$RESP_BODY_FILE" "$WORK/jwks.json"

# Stop the gateway: its last lines and a signed chain head are written at close.
stack_stop

# ---- verify ---------------------------------------------------------------------------------
OUT=$("$DZ" audit verify "$AUDIT" 2>&1)
rc=$?
is "$rc" 0 "darvaza audit verify: the untouched log is intact"
like "$OUT" '^ok' "it says ok ($OUT)"
OUT=$("$DZ" audit verify "$AUDIT" --jwks "$WORK/jwks.json" 2>&1)
like "$?|$(grep '^ok:' <<<"$OUT")" '^0\|ok: [0-9]+ lines, [1-9][0-9]* signed heads verified' "with --jwks the signed chain heads verify too"
# The latest signed head the gateway logged finds lines cut from the end.
HEAD=$(jq -r 'select(.event == "audit_head") | "\(.seq):\(.head)"' "$(gw_log)" 2>/dev/null | tail -n 1)
OUT=$("$DZ" audit verify "$AUDIT" --head "${HEAD:-none}" 2>&1)
is "$?" 0 "with --head $HEAD (from the gateway's log) the whole log verifies"
head -n -2 "$AUDIT" >"$WORK/cut.log"
OUT=$("$DZ" audit verify "$WORK/cut.log" --head "${HEAD:-none}" 2>&1)
is "$?" 1 "the log cut by its last 2 lines is detected with --head ($OUT)"
LINES=$(wc -l <"$AUDIT")
ok "the log has enough lines to edit one in the middle ($LINES)" test "$LINES" -ge 6

# Edit line 3: change its first digit (the line stays valid JSON).
awk 'NR == 3 && !done { if (match($0, /[0-9]/)) { d = substr($0, RSTART, 1); $0 = substr($0, 1, RSTART - 1) (d == "9" ? "8" : d + 1) substr($0, RSTART + 1); done = 1 } } { print }' \
    "$AUDIT" >"$WORK/edited.log"
ok "the copy really differs from the log on line 3 only" bash -c \
    '[ "$(diff "$1" "$2" | grep -c "^[<>]")" = 2 ] && diff "$1" "$2" | head -n 1 | grep -q "^3c3"' _ "$AUDIT" "$WORK/edited.log"
OUT=$("$DZ" audit verify "$WORK/edited.log" 2>&1)
rc=$?
is "$rc" 1 "an edited line -> exit 1"
like "$OUT" 'line 3([^0-9]|$)|:3:' "the verdict names line 3 ($OUT)"

sed '2d' "$AUDIT" >"$WORK/deleted.log"
OUT=$("$DZ" audit verify "$WORK/deleted.log" 2>&1)
rc=$?
is "$rc" 1 "a deleted line -> exit 1"
like "$OUT" 'delet' "the verdict says a line was deleted ($OUT)"

# ---- no secrets in any log ---------------------------------------------------------------------------
LOGS=("$AUDIT")
while IFS= read -r f; do LOGS+=("$f"); done < <(find "$STATE_DIR" -type f \( -name '*.log' -o -name '*.err' -o -name '*.out' \) ! -path "$AUDIT")
diag "logs searched: ${LOGS[*]#"$STATE_DIR"/}"
GWLOG=$(gw_log)
ok "the gateway's log is one JSON object per line ($(wc -l <"$GWLOG" 2>/dev/null) lines)" bash -c \
    '[ -s "$1" ] && jq -e "type == \"object\"" "$1" >/dev/null' _ "$GWLOG"
found=""
for s in "${SECRETS[@]}"; do
    [ -n "$s" ] || continue
    grep -lF -- "$s" "${LOGS[@]}" >/dev/null 2>&1 && found+=" ${s:0:6}…($(grep -lF -- "$s" "${LOGS[@]}" | xargs -n1 basename | tr '\n' ' '))"
done
is "$found" "" "no password, TOTP secret or session token in any log (${#SECRETS[@]} values searched)"
found=""
for c in "${CODES[@]}"; do
    # as a JSON string, or after "otp" (a bare 6-digit search would hit hex ids)
    grep -lE -- "\"$c\"|otp[\"=: ]+$c" "${LOGS[@]}" >/dev/null 2>&1 && found+=" $c"
done
is "$found" "" "no one-time code in any log"

finish
