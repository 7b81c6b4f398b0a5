#!/usr/bin/env bash
# run.sh: alone
# t_walkthrough.sh - the walk-through `make demo` prints (demo/run.sh) works
# for a person who copies it: the whole demo is started as make demo does,
# the printed steps are taken from its output and run in order in ONE shell
# (their variables carry from step to step), and each step is checked for
# what a person following it would look at: it exits 0 (every command of
# it, pipes included), and its answers have the members the text promises
# (login tokens, the registry record, the filed notice, the access list with
# the judge's lookup, check-proof and the Python checker valid, audit verify
# OK, the OpenID Connect redirect with a code, the registration with the
# SMS code).
#
# Skipped, and only these: the command of step 10b that opens Chromium (a
# GUI browser).  The step's NSS database set-up runs, with HOME in this
# script's scratch directory so that nothing of the machine's user changes.
# It starts the whole demo (every peer, cards, the OIDC e-service): alone.
. "$(dirname "$0")/lib.sh"

plan 22

RUN_LOG="$WORK/run.log"
STEPS="$WORK/steps"
mkdir -p "$STEPS" "$WORK/home"
setsid env DEMO_STATE="$STATE_DIR" BUILD_DIR="$BUILD_DIR" "$ROOT/demo/run.sh" >"$RUN_LOG" 2>&1 </dev/null &
DEMO_PID=$!
OWN_PIDS+=("$DEMO_PID")
is_up() { grep -q '^ darvaza demo is up' "$RUN_LOG"; }
walkthrough_printed() { is_up && [ "$(grep -c '^=====' "$RUN_LOG")" -ge 3 ]; }
ok "make demo (demo/run.sh) comes up and prints the walk-through" wait_until 240 walkthrough_printed ||
    bail "the demo did not come up: $(tail -n 20 "$RUN_LOG")"

# The steps: from "# 0." to the closing rule, one file per "# N." heading
# (and the registration at the end); the Chromium command is left out.
python3 - "$RUN_LOG" "$STEPS" <<'PY' >"$WORK/skipped.txt"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read().split("\n")
start = next(i for i, l in enumerate(text) if l.startswith("# 0. "))
end = next(i for i in range(start, len(text)) if text[i].startswith("====="))
steps, cur, name = [], [], None
for line in text[start:end]:
    m = re.match(r"# (\d+[a-z]?)\. ", line) or re.match(r"# (Register) a person", line)
    if m:
        if name:
            steps.append((name, cur))
        name, cur = m.group(1), []
    cur.append(line)
steps.append((name, cur))
for n, (name, lines) in enumerate(steps):
    out, i = [], 0
    while i < len(lines):
        cmd = [lines[i]]
        while cmd[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd.append(lines[i])
        i += 1
        words = [w for w in cmd[0].split() if not re.match(r"^[A-Z0-9_]+=", w)]
        if words and words[0] == "chromium":
            print(f"step {name}: " + cmd[0][:100])
            continue
        out.extend(cmd)
    open(f"{sys.argv[2]}/{n:02d}-{name}.sh", "w", encoding="utf-8").write("\n".join(out) + "\n")
PY
like "$(wc -l <"$WORK/skipped.txt") $(cat "$WORK/skipped.txt")" '^1 step 10b: SOFTHSM2_CONF=\$SOFTHSM2_CONF chromium ' \
    "only the command that opens Chromium (step 10b) is left out"

# All steps in one shell, in order; every failing command is written down
# with its step (ERR, with pipefail: a failing stage of a pipe counts).
cat >"$WORK/driver.sh" <<'SH'
set -E -o pipefail
cd "$1"
trap 'echo "$BASH_COMMAND" >>"$CUR.fail"' ERR
for CUR in "$2"/*.sh; do
    : >"$CUR.fail"
    source "$CUR" >"$CUR.out" 2>"$CUR.err" </dev/null
done
SH
T0=$(date +%s)
HOME="$WORK/home" timeout 180 bash "$WORK/driver.sh" "$ROOT" "$STEPS" >"$WORK/driver.log" 2>&1
is "$?" 0 "the walk-through runs to its end (in $(($(date +%s) - T0)) s)"

out() { cat "$STEPS"/*-"$1".sh.out; }
# json NAME: the JSON values of a step's output, one a line (the steps mix
# them with text: darvaza-card's, openssl's).
json() {
    out "$1" | python3 -c '
import json, sys
d, t, i = json.JSONDecoder(), sys.stdin.read(), 0
while i < len(t):
    if t[i] in "{[\"":
        try:
            v, i = d.raw_decode(t, i)
            print(json.dumps(v, ensure_ascii=False))
            continue
        except ValueError:
            pass
    n = t.find("\n", i)
    i = len(t) if n < 0 else n + 1
'
}
FIN=$(grep -o '^CA=.* FIN=[0-9A-Z]*' "$RUN_LOG" | sed 's/.*FIN=//')
JFIN=$(jq -r 'map(select(.role == "judge" and .card_label != null))[0].fin' "$STATE_DIR/people.json")
JNAME=$(jq -r 'map(select(.role == "judge" and .card_label != null))[0] | .name + " " + .surname' "$STATE_DIR/people.json")

# Every step, every command of it, exits 0: one test over all the steps
# (the walk-through gains steps as the demo grows), naming each step that
# failed with its failing commands and its stderr.
failed="" n_steps=0
for f in "$STEPS"/*.sh; do
    n_steps=$((n_steps + 1))
    name=$(basename "$f" .sh)
    if [ -s "$f.fail" ]; then
        failed+="== step ${name#*-}: $(sed -n 1p "$f" | cut -c3-70)
$(cat "$f.fail")
-- stderr: $(head -c 1500 "$f.err")
"
    fi
done
diag "$n_steps steps: $(ls "$STEPS"/*.sh | sed 's|.*/[0-9]*-||; s|\.sh$||' | tr '\n' ' ')"
is "$failed" "" "every step of the walk-through exits 0 (each command, pipes included)"

like "$(out 1)" '^[A-Za-z0-9_-]{43}$' "step 1: a session token"
is "$(out 2 | jq -r '.fin')" "$FIN" "step 2: the registry record of the person"
is "$(out 3 | jq -r '.fin + " " + .acr')" "$FIN substantial" "step 3: the session (FIN, acr)"
is "$(out 4 | jq -r '.verified')" true "step 4: the registry verified the Darvaza-Assertion"
like "$(out 5)" ':status: 200' "step 5: nghttp gets 200 over HTTP/2"
is "$(out 6 | jq -sc '[(.[0].keys | length > 0), .[1], .[2].status]')" '[true,204,401]' \
    "step 6: the published keys, logout 204, then the session is 401"
is "$(out 7 | jq -sr '.[2].state')" complete "step 7: the mobile-signature login completes"
is "$(out 8 | jq -sr 'last.state')" complete "step 8: the QR login completes"
is "$(json 9 | jq -sr --arg f "$FIN" '[.[] | objects | select(.fin == $f and .address != null)] | length > 0')" true \
    "step 9: the judge gets the party's record"
is "$(json 10 | jq -sc '[(.[] | strings | select(. == "TOTAL_PASSED")),
        ([.[] | objects | select(.case == "2-101/2026" and .hearing.place == "room 4")] | length > 0),
        ([.[] | objects | select(.case == "2-101/2026" and .read_at != null)] | length > 0)]')" \
    '["TOTAL_PASSED",true,true]' "step 10: the notice verifies, the party's list shows its hearing, the judge sees it read"
like "$(cat "$STEPS"/*-10.sh.err)" 'Verification successful' "step 10: openssl cms -verify accepts the download"
is "$(json 10c | jq -sr --arg j "$JFIN" '[.[] | objects | select(.actor.fin? == $j and .purpose == "case 2-101/2026") | .actor.name] | first // empty' 2>/dev/null)" \
    "$JNAME" "step 10c: the judge's lookup is listed with the judge's name and the purpose"
like "$(out 10c | grep -E '^valid' | tr '\n' '|')" '^valid: line seq [0-9]+ is in the audit history.*\|valid\|$' \
    "step 10c: darvaza audit check-proof and tools/check_audit_proof.py: valid"
like "$(out 11)" '^ok: instance [^ ]+: [0-9]+ segment' "step 11: darvaza audit verify: ok"
like "$(out 12 | tail -n 1)" '^302 https://127\.0\.0\.1:9150/redirect_uri\?code=' \
    "step 12: OIDC authorize redirects to the e-service with a code"
is "$(json Register | jq -sc '[.[0].code, (.[1].totp.secret | type), .[1].notice_sent]')" '["code_required","string",true]' \
    "registration: code_required, then the account with its TOTP secret, the person told"
like "$(out Register | tail -n 1)" 'An account was registered in your name' "registration: the SMS the person got ends with the notice"
kill -TERM "$DEMO_PID" 2>/dev/null
wait "$DEMO_PID" 2>/dev/null
STACK_UP=1
finish
