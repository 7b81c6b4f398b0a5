# tests/integration/lib.sh - shared helpers of the integration scripts (sourced).
#
# A script does:
#   . "$(dirname "$0")/lib.sh"
#   plan 12
#   stack_start                      # demo/stack.sh start, once per script
#   gw GET /healthz; is "$STATUS" 200 "healthz answers"
#   ...
#   finish                           # stops the stack, checks sanitizer reports, exit code
#
# TAP: plan N, ok DESC CMD..., is GOT WANT DESC, like GOT ERE DESC, unlike GOT ERE DESC,
#      pass DESC, fail DESC, problem STATUS CODE DESC (checks the last gw answer), diag MSG.
# HTTP: gw METHOD PATH [curl args...] sets STATUS, BODY (text), HDRS (file), and keeps the
#      body in $RESP_BODY_FILE; hdr NAME prints a header of the last answer; jb FILTER runs jq
#      on the last body.  gw_json METHOD PATH JSON [curl args...] posts JSON.
# People: person_json FIN, pick_person registered|unregistered N, login FIN PASSWORD [SECRET].
# TOTP: totp_at SECRET UNIXTIME, totp_fresh FIN SECRET (a code of a step not used yet).
# JWS: jws_part TOKEN 0|1 (decoded header/payload), b64url_decode.
# Peers: peer_requests (the registry's debug view), start_echo / stop_echo.
# Phones: sim_holders JQ_COND, phone_of FIN, phone_ctl FIN METHOD PATH [JSON], phone_set_mode
#      FIN MODE, phone_shown, mssp_idle; stranger_holds_phone (the mobile flows' shared checks).
# Management listener: mgmt PATH [curl args...] (HTTP/1.1, sets STATUS/BODY/HDRS like gw);
#      metric 'NAME{labels}' prints that sample's value from its /metrics (empty if absent).
#
# Everything a script starts is stopped by the EXIT trap, whatever happens.

set -u
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LIB_DIR/../.." && pwd)
cd "$ROOT" || exit 2
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR
SCRIPT_NAME=$(basename "$0" .sh)

GW_URL=${GW_URL:-https://localhost:8443}
GW_ORIGIN=${GW_ORIGIN:-https://localhost:8443}
REGISTRY_PEER=${REGISTRY_PEER:-https://127.0.0.1:9101}
ECHO_ADDR=${ECHO_ADDR:-127.0.0.1:9109}
H1_PORT=${H1_PORT:-9110}

STATE_DIR=${DZ_STATE_DIR:-"$ROOT/build/test-stack-$SCRIPT_NAME-$$"}   # DZ_STATE_DIR: the benchmark's
SAN_DIR="$STATE_DIR.sanitizer"   # outside STATE_DIR: stack.sh may own that tree
WORK="$STATE_DIR.work"           # this script's scratch files
mkdir -p "$SAN_DIR" "$WORK"
# Daemons built with sanitizers write their reports here; finish fails on any.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$SAN_DIR/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$SAN_DIR/ubsan"

# ---- TAP ----------------------------------------------------------------------
TAP_N=0
TAP_FAILED=0
TAP_PLAN=0

plan() { TAP_PLAN=$1; echo "1..$1"; }
diag() { local l; while IFS= read -r l; do echo "# $l"; done <<<"$*"; }
# A description is one line: embedded newlines would forge TAP lines.
one_line() { local s="$*"; s=${s//$'\r'/ }; printf '%s' "${s//$'\n'/ }"; }
pass() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $(one_line "$*")"; }
fail() {
    TAP_N=$((TAP_N + 1))
    TAP_FAILED=$((TAP_FAILED + 1))
    echo "not ok $TAP_N - $(one_line "$1")"
    shift
    [ $# -gt 0 ] && diag "$*"
    return 0
}
# ok DESC CMD [ARGS...]: passes when CMD exits 0.
ok() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$desc"; else fail "$desc" "command failed: $* ${out:+
$(printf '%s' "$out" | head -c 2000)}"; fi
}
# nok DESC CMD [ARGS...]: passes when CMD exits non-zero.
nok() {
    local desc=$1
    shift
    if "$@" >/dev/null 2>&1; then fail "$desc" "command succeeded but should not: $*"; else pass "$desc"; fi
}
is() {
    if [ "$1" = "$2" ]; then pass "$3"; else fail "$3" "got:      '$(printf '%s' "$1" | head -c 1500)'
expected: '$2'${BODY:+
last answer $STATUS: $(printf '%s' "$BODY" | head -c 600)}"; fi
}
isnt() {
    if [ "$1" != "$2" ]; then pass "$3"; else fail "$3" "got '$1', expected anything else"; fi
}
like() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then pass "$3"; else fail "$3" "got:    '$(printf '%s' "$1" | head -c 1500)'
wanted: /$2/"; fi
}
unlike() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then fail "$3" "matched /$2/: '$(printf '%s' "$1" | grep -Eo -- ".{0,60}$2.{0,60}" | head -3)'"; else pass "$3"; fi
}
bail() { echo "Bail out! $*"; exit 1; }

# ---- cleanup ------------------------------------------------------------------
OWN_PIDS=()          # processes this script started (ended by pid, never by name)
STACK_UP=0
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${OWN_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ "$STACK_UP" = 1 ] && stack_stop
    for p in "${OWN_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$TAP_FAILED" -eq 0 ] && [ "$rc" -eq 0 ] && [ "${KEEP_STATE:-0}" != 1 ]; then
        rm -rf "$STATE_DIR" "$SAN_DIR" "$WORK"
    else
        echo "# state kept for inspection: ${STATE_DIR#"$ROOT"/}{,.work,.sanitizer}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the stack ----------------------------------------------------------------
# stack_start [VAR=VALUE...]: starts the demo stack (gateway + peers) into
# STATE_DIR with EXTRA_POLICIES=tests/integration/policies; extra environment
# (e.g. LOCKOUT_DURATION=5s) is passed to stack.sh.  Waits for /readyz.
# Every script starts its logins from 127.0.0.1, so the per-address start
# limits are raised unless the script sets its own (t_abuse does).
stack_start() {
    local log="$WORK/stack-start.log" i
    STACK_UP=1
    if ! env BUILD_DIR="$BUILD_DIR" EXTRA_POLICIES="${EXTRA_POLICIES:-$ROOT/tests/integration/policies}" \
        STARTS_PER_ADDRESS=100000 QR_PENDING_PER_ADDRESS=100000 \
        "$@" timeout 120 "$ROOT/demo/stack.sh" start "$STATE_DIR" >"$log" 2>&1; then
        diag "demo/stack.sh start failed:
$(tail -n 30 "$log")"
        bail "the stack did not start"
    fi
    for i in $(seq 1 120); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE_DIR/certs/root.pem" \
            "$GW_URL/readyz" 2>/dev/null)" = 200 ]; then
            PEOPLE="$STATE_DIR/people.json"
            [ -f "$PEOPLE" ] || bail "the stack wrote no $PEOPLE"
            return 0
        fi
        sleep 0.5
    done
    diag "gateway never answered 200 on /readyz; stack log:
$(tail -n 30 "$log")
$(tail -n 30 "$(gw_log)" 2>/dev/null)"
    bail "the gateway did not become ready"
}
stack_stop() {
    [ "$STACK_UP" = 1 ] || return 0
    STACK_UP=0
    timeout 60 "$ROOT/demo/stack.sh" stop "$STATE_DIR" >"$WORK/stack-stop.log" 2>&1 ||
        echo "# demo/stack.sh stop failed: $(tail -n 5 "$WORK/stack-stop.log")"
}
stack_reload() {
    timeout 30 "$ROOT/demo/stack.sh" reload "$STATE_DIR" >>"$WORK/stack-reload.log" 2>&1
}
# The gateway's log file (one JSON object per line).
gw_log() {
    local f
    for f in "$STATE_DIR/logs/darvazad.log" "$STATE_DIR/darvazad.log" "$STATE_DIR/logs/gateway.log"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    echo "$STATE_DIR/logs/darvazad.log"
}
# Pid of the process listening on a TCP port (from ss), e.g. the gateway on 8443.
listener_pid() {
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# finish: stops the stack (so the daemons write their exit-time sanitizer
# reports), checks there are none, and exits non-zero if any test failed.
finish() {
    local p
    for p in "${OWN_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    OWN_PIDS=()
    stack_stop
    if [ -n "$(ls -A "$SAN_DIR" 2>/dev/null)" ]; then
        fail "no sanitizer reports from the daemons" "$(for f in "$SAN_DIR"/*; do echo "== $f"; head -n 40 "$f"; done)"
    else
        pass "no sanitizer reports from the daemons"
    fi
    [ "$TAP_N" -eq "$TAP_PLAN" ] || diag "planned $TAP_PLAN tests, ran $TAP_N"
    [ "$TAP_FAILED" -eq 0 ] && [ "$TAP_N" -eq "$TAP_PLAN" ] && exit 0
    exit 1
}

# ---- HTTP ---------------------------------------------------------------------
RESP_BODY_FILE="$WORK/resp.body"
HDRS="$WORK/resp.headers"
STATUS=000
BODY=
CURL_GW=(curl --http2 -sS --max-time 30 --cacert "$STATE_DIR/certs/root.pem")

# gw METHOD PATH [curl args...]: one request to the gateway.
gw() {
    local method=$1 path=$2
    shift 2
    : >"$HDRS"
    STATUS=$("${CURL_GW[@]}" -X "$method" -o "$RESP_BODY_FILE" -D "$HDRS" -w '%{http_code}' \
        "$@" "$GW_URL$path" 2>"$WORK/curl.err") || true
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(tr -d '\0' <"$RESP_BODY_FILE" 2>/dev/null)
}
# gw_json METHOD PATH JSON [curl args...]
gw_json() {
    local method=$1 path=$2 json=$3
    shift 3
    gw "$method" "$path" -H 'content-type: application/json' --data-binary "$json" "$@"
}
# hdr NAME: value of a header of the last answer (last occurrence, CR stripped).
hdr() {
    tr -d '\r' <"$HDRS" | awk -v n="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); last = v } }
        END { if (last != "") print last }'
}
# jb FILTER: jq over the last body (prints nothing on bad JSON).
jb() { jq -r "$@" <"$RESP_BODY_FILE" 2>/dev/null; }

# problem STATUS CODE DESC: the last answer is that RFC 9457 problem.
problem() {
    local want_status=$1 want_code=$2 desc=$3 why=""
    [ "$STATUS" = "$want_status" ] || why="status $STATUS, expected $want_status; "
    case "$(hdr content-type)" in application/problem+json*) ;; *) why+="content-type '$(hdr content-type)'; " ;; esac
    if ! jq -e --argjson s "$want_status" --arg c "$want_code" \
        '(.type|type)=="string" and (.title|type)=="string" and .status==$s and (.detail|type)=="string" and .code==$c' \
        <"$RESP_BODY_FILE" >/dev/null 2>&1; then
        why+="body is not the problem {type,title,status:$want_status,detail,code:$want_code}; "
    fi
    [ -n "$(hdr darvaza-request-id)" ] || why+="no darvaza-request-id; "
    if [ -z "$why" ]; then pass "$desc"; else fail "$desc" "$why
body: $(head -c 600 "$RESP_BODY_FILE" 2>/dev/null)"; fi
}

# ---- the management listener (docs/metrics.md) --------------------------------------
MGMT_URL=${MGMT_URL:-http://127.0.0.1:9180}
# mgmt PATH [curl args...]: GET PATH on the management listener over HTTP/1.1.
mgmt() {
    local path=$1
    shift
    : >"$HDRS"
    STATUS=$(curl --http1.1 -sS --max-time 30 -o "$RESP_BODY_FILE" -D "$HDRS" -w '%{http_code}' \
        "$@" "$MGMT_URL$path" 2>"$WORK/curl.err") || true
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(tr -d '\0' <"$RESP_BODY_FILE" 2>/dev/null)
}
# metric SERIES: the value of one sample of a fresh scrape.  SERIES is a bare
# name, or name{labels} written exactly as exposed (labels in their order).
metric() {
    curl --http1.1 -sS --max-time 10 "$MGMT_URL/metrics" 2>/dev/null |
        awk -v want="$1" '!/^#/ && NF >= 2 { v = $NF; s = substr($0, 1, length($0) - length(v) - 1)
                                              if (s == want) { print v; exit } }'
}

# ---- people and logins ----------------------------------------------------------
# people.json (written by the stack): an array, or {"people":[...]}, of
# {"fin","document","password"?,"totp_secret"?,"registered":bool,...}.
PEOPLE="$STATE_DIR/people.json"
people() {
    jq -c '(if type == "array" then . else .people end)
           | map(. + {document: (if (.document|type) == "object"
                                 then ((.document.series // "") + (.document.number // ""))
                                 else .document end)})' "$PEOPLE"
}
# pick_person registered|unregistered [N]: FIN of the Nth (0-based) such person.
# A registered person has a password (and usually a totp_secret).
pick_person() {
    local kind=$1 n=${2:-0}
    people | jq -r --arg k "$kind" --argjson n "$n" '
        map(select(if $k == "registered" then (.registered == true and (.password|type) == "string")
                   else (.registered != true) end)) | .[$n].fin // empty'
}
person_json() { people | jq -c --arg f "$1" 'map(select(.fin == $f))[0] // empty'; }
person() { people | jq -r --arg f "$1" --arg k "$2" 'map(select(.fin == $f))[0][$k] // empty'; }
# phone_shown FIN N: FIN's phone (the stand-in, its control port) has shown
# at least N requests since it started.
phone_shown() {
    curl -sS --http2-prior-knowledge --max-time 2 "http://127.0.0.1:$(person "$1" phone_control)/mode" |
        jq -e --argjson n "$2" '.counts.shown >= $n' >/dev/null
}
# mssp_idle PHONE: the stack's MSSP has sessions for PHONE, and every one has ended.
mssp_idle() {
    curl -sS --http2 --max-time 5 --cacert "$STATE_DIR/certs/root.pem" \
        "https://localhost:9103/_mssp/sessions?phone=%2B${1#+}" |
        jq -e 'length > 0 and all(.state == "COMPLETE")' >/dev/null
}
# sim_holders JQ_COND: the FINs of the SIM holders for whom JQ_COND holds.
sim_holders() { people | jq -r "map(select(.sim == true and $1)) | .[].fin"; }
phone_of() { person "$1" phone; }
ctl_of() { person "$1" phone_control; }
# phone_ctl FIN METHOD PATH [JSON]: the holder's phone control endpoint.
phone_ctl() {
    curl -sS --http2-prior-knowledge --max-time 10 -X "$2" ${4:+-H 'content-type: application/json' --data-binary "$4"} \
        "http://127.0.0.1:$(ctl_of "$1")$3"
}
phone_set_mode() { phone_ctl "$1" POST /mode "{\"mode\":\"$2\"}" >/dev/null; }
# stranger_holds_phone START ID_VAR FIN WHAT OWN DELAY_MS: a request nobody
# polls holds the phone only while it waits (4 checks), for the login and
# for signing.  Anyone who knows V's (FIN's) number and FIN can start a
# request on V's phone (START PHONE FIN, which sets STATUS and, on 202, the
# request's id in the variable ID_VAR) and never poll it.  While it waits on
# the phone, V's own START is refused (one request per phone); once V has
# refused it on the phone, V's START goes on although nobody polled the
# stranger's.  V's phone then approves after DELAY_MS.  WHAT and OWN word
# the checks: "a login for" and "start", "signing on" and "request".
# STRANGER_ID: the stranger's request id; V's is left in ID_VAR.
stranger_holds_phone() {
    local start=$1 idvar=$2 v=$3 what=$4 own=$5 delay=$6 theirs="the stranger's request"
    [ "$own" = request ] && theirs="the stranger's" # not "request" twice
    phone_ctl "$v" POST /mode '{"mode":"refuse","delay_ms":8000}' >/dev/null
    "$start" "$(phone_of "$v")" "$v"
    STRANGER_ID=${!idvar}
    is "$STATUS" 202 "a stranger starts $what V's phone (and never polls it) -> 202"
    "$start" "$(phone_of "$v")" "$v"
    problem 429 request_pending "while it waits on the phone, V's own $own -> 429 request_pending"
    # The phone takes its mode when it shows a request: V's next one is approved.
    wait_until 10 phone_shown "$v" 1
    phone_ctl "$v" POST /mode "{\"mode\":\"auto\",\"delay_ms\":$delay}" >/dev/null
    ok "V refuses the stranger's request on the phone" wait_until 30 mssp_idle "$(phone_of "$v")"
    "$start" "$(phone_of "$v")" "$v"
    is "$STATUS" 202 "then V's own $own -> 202, $theirs never polled"
}

totp_at() { oathtool --totp -b -N "@$2" "$1"; }
# totp_fresh FIN SECRET: a valid code for a TOTP step this script has not
# used yet for FIN (the gateway refuses replays), waiting for the next step
# boundary (at most 30 s) only when the ±1 window is used up.  Steps handed
# out only ever increase, so it also suits a "last step used" replay check.
totp_fresh() {
    local fin=$1 secret=$2 f="$WORK/otp-step-$1" last now cur s
    last=$(cat "$f" 2>/dev/null || echo 0)
    while :; do
        now=$(date +%s)
        # Too close to a boundary: the server may see the next step; wait it out.
        if [ $((30 - now % 30)) -le 2 ]; then sleep $((30 - now % 30)); continue; fi
        cur=$((now / 30))
        for s in $((cur - 1)) $cur $((cur + 1)); do
            if [ "$s" -gt "$last" ]; then
                echo "$s" >"$f"
                totp_at "$secret" $((s * 30 + 1))
                return 0
            fi
        done
        sleep $((30 - now % 30))
    done
}
# totp_mark_used FIN UNIXTIME: tell totp_fresh a code was used outside it.
totp_mark_used() {
    local f="$WORK/otp-step-$1" s=$(($2 / 30)) last
    last=$(cat "$f" 2>/dev/null || echo 0)
    [ "$s" -gt "$last" ] && echo "$s" >"$f"
    return 0
}

# login FIN PASSWORD [TOTP_SECRET]: prints the session token (empty on failure,
# with the answer left in STATUS/BODY).  Not in a subshell if you need STATUS.
LOGIN_TOKEN=
login() {
    local fin=$1 pw=$2 secret=${3:-} body
    if [ -n "$secret" ]; then
        body=$(jq -nc --arg f "$fin" --arg p "$pw" --arg o "$(totp_fresh "$fin" "$secret")" '{fin:$f,password:$p,otp:$o}')
    else
        body=$(jq -nc --arg f "$fin" --arg p "$pw" '{fin:$f,password:$p}')
    fi
    gw_json POST /auth/password "$body"
    LOGIN_TOKEN=
    [ "$STATUS" = 200 ] && LOGIN_TOKEN=$(jb '.token // empty')
    return 0
}
# login_person FIN: logs a registered person of people.json in with password
# and a TOTP code; sets LOGIN_TOKEN.
login_person() {
    login "$1" "$(person "$1" password)" "$(person "$1" totp_secret)"
}
bearer() { printf 'authorization: Bearer %s' "$1"; }
# mob_cookie: the "name=value" of the binding cookie the last POST
# /auth/mobile set (only that browser may poll the login).
mob_cookie() { hdr set-cookie | sed -n 's/^\(__Host-darvaza-mob=[^;]*\);.*/\1/p'; }
# mobile_login FIN: a mobile-signature (high) session; sets MTOKEN.
mobile_login() {
    MTOKEN=
    gw_json POST /auth/mobile "$(jq -nc --arg p "$(person "$1" phone)" --arg f "$1" '{phone:$p, fin:$f}')" -H "Origin: $GW_ORIGIN"
    local id cookie _
    id=$(jb '.id // empty')
    cookie=$(mob_cookie)
    [ -n "$id" ] || return 0
    for _ in 1 2 3; do
        gw GET "/auth/mobile/$id?wait=10" -H "cookie: $cookie"
        [ "$STATUS" = 200 ] && [ "$(jb .state)" = pending ] || break
    done
    MTOKEN=$(jb '.token // empty')
}

# ---- JWS ------------------------------------------------------------------------
b64url_decode() {
    local s
    s=$(tr -d '\n' | tr '_-' '/+')
    case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
    printf '%s' "$s" | base64 -d 2>/dev/null
}
# jws_part TOKEN 0|1|2: the decoded header (0), payload (1) or raw signature (2).
jws_part() { printf '%s' "$1" | cut -d. -f$(($2 + 1)) | b64url_decode; }
b64url_sha256() { openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='; }

# ---- peers ------------------------------------------------------------------------
# peer_requests [registry|echo]: a peer's debug view GET /_peer/requests (the
# requests it received, oldest first), normalised to an array of {path,
# headers{lowercase: value}, claims, error, verified}.  The registry's needs
# the gateway's client certificate.
peer_requests() {
    if [ "${1:-registry}" = echo ]; then
        curl -sS --http2-prior-knowledge --max-time 10 "http://$ECHO_ADDR/_peer/requests"
    else
        curl -sS --http2 --max-time 10 --cacert "$STATE_DIR/certs/root.pem" \
            --cert "$STATE_DIR/certs/gateway-client.pem" --key "$STATE_DIR/certs/gateway-client.key" \
            "$REGISTRY_PEER/_peer/requests"
    fi | jq -c '
        (if type == "array" then . else (.requests // []) end)
        | map(. + {
            path: (.path // .url // .htu // ""),
            headers: ((.headers // {}) | if type == "array"
                      then (map({key: ((.[0] // .name) | ascii_downcase), value: (.[1] // .value)}) | from_entries)
                      else with_entries(.key |= ascii_downcase) end),
            claims: (.claims // .assertion.claims // null),
            error: (.reason // .error // .assertion.error // null)})
        | map(. + {verified: (if has("verified") then .verified
                             elif (.assertion|type) == "object" then (.assertion.verified == true)
                             else (.claims != null and .error == null) end)})'
}
# peer_request_with PROBE [registry|echo]: the last request that peer saw
# whose path contains PROBE or that carried the header "x-test-probe: PROBE"
# (send it with: gw ... -H "$(probe_hdr PROBE)").
probe_hdr() { printf 'x-test-probe: %s' "$1"; }
peer_request_with() {
    peer_requests "${2:-registry}" |
        jq -c --arg s "$1" 'map(select((.path | contains($s)) or (.headers["x-test-probe"] == $s))) | last // empty'
}

ECHO_PID=
# start_echo: the echo back end (darvaza-peer echo, h2c) on ECHO_ADDR.
start_echo() {
    "$BUILD_DIR/darvaza-peer" echo --listen "$ECHO_ADDR" --h2c >"$WORK/echo.log" 2>&1 &
    ECHO_PID=$!
    OWN_PIDS+=("$ECHO_PID")
    wait_until 10 curl -s -o /dev/null --http2-prior-knowledge --max-time 1 "http://$ECHO_ADDR/"
}
stop_echo() {
    [ -n "$ECHO_PID" ] || return 0
    kill "$ECHO_PID" 2>/dev/null
    wait "$ECHO_PID" 2>/dev/null
    ECHO_PID=
}
# wait_until SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_until() {
    local limit=$(($(date +%s) + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$limit" ] && return 1
        sleep 0.2
    done
    return 0
}

# jwk_to_pem JWK_JSON OUT.pem: a P-256 public JWK as a PEM SubjectPublicKeyInfo,
# built with openssl from the fixed DER prefix of an id-ecPublicKey/prime256v1
# key and the uncompressed point 04 || x || y.
jwk_to_pem() {
    local x y
    x=$(jq -r .x <<<"$1" | b64url_decode | xxd -p -c 256)
    y=$(jq -r .y <<<"$1" | b64url_decode | xxd -p -c 256)
    [ ${#x} -eq 64 ] && [ ${#y} -eq 64 ] || return 1
    printf '3059301306072a8648ce3d020106082a8648ce3d03010703420004%s%s' "$x" "$y" |
        xxd -r -p | openssl pkey -pubin -inform DER -out "$2" 2>/dev/null
}
# jws_verify_openssl TOKEN JWKS_FILE: verifies an ES256 JWS with the openssl
# CLI only (the key is the JWKS entry named by the token's kid); prints
# openssl's verdict, exit 0 when it is "Verified OK".
jws_verify_openssl() {
    local tok=$1 jwks=$2 kid jwk sig d
    d=$(mktemp -d "$WORK/jws.XXXXXX")
    kid=$(jws_part "$tok" 0 | jq -r '.kid // empty')
    jwk=$(jq -c --arg k "$kid" '.keys[] | select(.kid == $k)' "$jwks" | head -n 1)
    [ -n "$jwk" ] || { echo "kid '$kid' not in the JWKS"; return 1; }
    jwk_to_pem "$jwk" "$d/pub.pem" || { echo "cannot build a PEM key from $jwk"; return 1; }
    # JWS ES256 signatures are r || s (32 bytes each); openssl wants DER.
    sig=$(printf '%s' "$tok" | cut -d. -f3 | b64url_decode | xxd -p -c 256)
    [ ${#sig} -eq 128 ] || { echo "signature is ${#sig} hex digits, not 128"; return 1; }
    printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${sig:0:64}" "${sig:64:64}" >"$d/sig.cnf"
    openssl asn1parse -genconf "$d/sig.cnf" -out "$d/sig.der" -noout >/dev/null || return 1
    printf '%s' "${tok%.*}" | openssl dgst -sha256 -verify "$d/pub.pem" -signature "$d/sig.der"
}

# ---- e-signature cards (demo/stack_cards.sh, docs/cards.md) ---------------------------
# card_env: PKCS#11 clients (darvaza-card, pkcs11-tool, the OpenSSL pkcs11
# engine that curl uses) see the stack's demo cards; CARDS_JSON lists them.
card_env() {
    export SOFTHSM2_CONF="$STATE_DIR/cards/softhsm2.conf"
    export PKCS11_MODULE_PATH=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
    CARDS_JSON="$STATE_DIR/cards/cards.json"
}
# card_of KIND [N]: the label of the Nth card of that kind; card_field LABEL
# FIELD: a field of that card; pin_file LABEL: a 0600 file with its PIN (the
# PIN never goes into argv).  After card_env.
card_of() { jq -r --arg k "$1" --argjson n "${2:-0}" 'map(select(.kind == $k))[$n].label // empty' "$CARDS_JSON"; }
card_field() { jq -r --arg l "$1" --arg f "$2" 'map(select(.label == $l))[0][$f] // empty' "$CARDS_JSON"; }
pin_file() {
    local f="$WORK/pin-$1"
    (umask 077 && card_field "$1" pin >"$f")
    echo "$f"
}
# card_ocsp_stop / card_ocsp_start: the E-Signature CA's OCSP responder
# down and up again (the gateway then has only its cache, or a CRL).
card_ocsp_stop() { timeout 30 "$ROOT/demo/stack.sh" ocsp-stop "$STATE_DIR" >>"$WORK/stack-ocsp.log" 2>&1; }
card_ocsp_start() { timeout 30 "$ROOT/demo/stack.sh" ocsp-start "$STATE_DIR" >>"$WORK/stack-ocsp.log" 2>&1; }

# ---- SMS and registration (demo/stack_sms.sh; docs/api.md "Registration") ----------
SMS_PEER=${SMS_PEER:-https://localhost:9106}
# sms_read NUMBER: the messages the SMS gateway stand-in kept for NUMBER (JSON array).
sms_read() {
    curl -sS --http2 --max-time 10 --cacert "$STATE_DIR/certs/root.pem" \
        --cert "$STATE_DIR/certs/gateway-client.pem" --key "$STATE_DIR/certs/gateway-client.key" \
        "$SMS_PEER/_sms/messages?to=${1#+}"
}
# sms_code NUMBER: the code of the last registration SMS to NUMBER.
sms_code() { sms_read "$1" | jq -r '[.[].text | capture("code (?<c>[0-9]{6})") | .c] | last // empty'; }
# person_phone FIN: the first mobile number the registry holds for FIN.
person_phone() { sqlite3 "$STATE_DIR/registry.db" "SELECT number FROM phone WHERE fin = '$1' ORDER BY pos LIMIT 1"; }
# register_person FIN DOCUMENT PASSWORD: both steps of POST /auth/register
# (the code from the SMS sent to the person's phone); STATUS/BODY are the
# second answer's (or the first's when it was not code_required).
register_person() {
    local body
    body=$(jq -nc --arg f "$1" --arg d "$2" --arg p "$3" '{fin:$f,document:$d,password:$p}')
    gw_json POST /auth/register "$body"
    [ "$STATUS" = 401 ] && [ "$(jb .code)" = code_required ] || return 0
    gw_json POST /auth/register "$(jq -c --arg c "$(sms_code "$(person_phone "$(tr 'a-z' 'A-Z' <<<"$1")")")" '. + {code:$c}' <<<"$body")"
}
