# stack_sms.sh - the SMS side of the demo stack, sourced by demo/stack.sh:
# `darvaza-peer sms` (h2 + TLS on SMS_ADDR, the gateway's client
# certificate required) stands in for the operator's SMS gateway.  It keeps
# every message; GET /_sms/messages?to=NUMBER reads them back (loopback), as
# the demo people's phones would show them.  The gateway's sms: section
# points at it (demo/darvaza.yaml); registration by FIN and document needs
# the code it carries (docs/api.md "Registration").
#
# Environment: SMS=0 leaves it out (registration by document then answers
# 502 upstream_unavailable: the code cannot be sent).

SMS_ADDR=127.0.0.1:9106
SMS=${SMS:-1}
[ "$SMS" = 0 ] || PROCS=(sms "${PROCS[@]}")

start_sms() {
    local c="$STATE/certs"
    [ "$SMS" != 0 ] || return 0
    ! port_busy "${SMS_ADDR##*:}" || die "port ${SMS_ADDR##*:} is busy (another stack or program listens on it)"
    launch sms "$PEER_BIN" sms --listen "$SMS_ADDR" \
        --tls-cert "$c/peer-tls.pem" --tls-key "$c/peer-tls.key" --client-ca "$c/gateway-ca.pem"
    wait_for sms 10 curl -sf --http2 --max-time 2 --cacert "$c/root.pem" \
        --cert "$c/gateway-client.pem" --key "$c/gateway-client.key" \
        "https://localhost:${SMS_ADDR##*:}/_peer/requests"
    say "SMS gateway on $SMS_ADDR (pid $(pid_of sms))"
}

# sms_read NUMBER: the messages kept for NUMBER (a JSON array, oldest first).
sms_read() {
    local c="$STATE/certs"
    curl -sS --http2 --max-time 10 --cacert "$c/root.pem" \
        --cert "$c/gateway-client.pem" --key "$c/gateway-client.key" \
        "https://localhost:${SMS_ADDR##*:}/_sms/messages?to=${1#+}"
}

# sms_last_code NUMBER: the code of the last registration SMS to NUMBER.
sms_last_code() {
    sms_read "$1" | jq -r '[.[].text | capture("code (?<c>[0-9]{6})") | .c] | last // empty'
}

# register_person FIN DOCUMENT PASSWORD PHONE: the two steps of
# POST /auth/register (the code goes by SMS to PHONE); prints the answer of
# the second step with its status on the last line.
register_person() {
    local fin=$1 doc=$2 pw=$3 phone=$4 body resp code otp
    body=$(jq -nc --arg f "$fin" --arg d "$doc" --arg p "$pw" '{fin:$f,document:$d,password:$p}')
    resp=$(curl_gw -H "Origin: $GW_ORIGIN" -H 'content-type: application/json' \
        --data-binary "$body" -w '\n%{http_code}' "$GW_URL/auth/register") || return 1
    code=${resp##*$'\n'}
    if [ "$code" != 401 ] || [ "$(jq -r .code <<<"${resp%$'\n'*}")" != code_required ]; then
        echo "$resp"
        return 0
    fi
    otp=$(sms_last_code "$phone")
    [ -n "$otp" ] || { printf 'no code reached %s\n000\n' "$phone"; return 0; }
    body=$(jq -c --arg c "$otp" '. + {code:$c}' <<<"$body")
    curl_gw -H "Origin: $GW_ORIGIN" -H 'content-type: application/json' \
        --data-binary "$body" -w '\n%{http_code}' "$GW_URL/auth/register"
}
