# shellcheck shell=bash
# tests/integration/oidc_clients.sh - what the OpenID Connect scripts
# (t_oidc*.sh) set up the same way before their stack starts: the test
# relying party (Debian's python3-authlib, oidc_rp.py), a policies folder
# holding the usual policies plus the script's own clients, and the gateway
# with its state in the process or, REDIS=1, in a Redis of its own.
# Sourced after lib.sh.

PY=/usr/bin/python3 # Debian's, where python3-authlib lives
# shellcheck disable=SC2034 # used by the scripts that source this
RP="$PY $LIB_DIR/oidc_rp.py"

# REDIS=1: the gateway keeps its state in a Redis this script starts.
# shellcheck source=tests/integration/redis.sh
[ "${REDIS:-0}" = 1 ] && . "$LIB_DIR/redis.sh"

# oidc_policies: $WORK/policies with the usual policies (EXTRA_POLICIES).
oidc_policies() {
    mkdir -p "$WORK/policies"
    cp "$ROOT"/tests/integration/policies/*.yaml "$WORK/policies/"
}

# oidc_client SERVICE CLIENT_ID DIS KEYS [LINE...]: the policy
# $WORK/policies/SERVICE.yaml of a private_key_jwt client with the keys KEYS
# (a line: "jwks: '{...}'" or "jwks_uri: https://..."), redirected to
# $RP_URI, asking openid and given the FIN, at acr low, pre-approved; each
# LINE is one more key of its oidc block ("  backchannel_logout_uri: ...").
oidc_client() {
    local f="$WORK/policies/$1.yaml"
    cat >"$f" <<EOF
service: $1
registered_as: "$3"
oidc:
  client_id: $2
  token_endpoint_auth_method: private_key_jwt
  $4
  redirect_uris: [$RP_URI]
  scopes: [openid]
  release: [fin]
  acr_default: low
  consent: pre-approved
EOF
    shift 4
    [ $# -eq 0 ] || printf '%s\n' "$@" >>"$f"
}

# oidc_stack_start ARG...: stack_start with the policies above; REDIS=1
# (tests/integration/redis.sh starts one, port 9137): the state in Redis,
# behind an ACL user and with its values encrypted, and a command timeout
# of OIDC_REDIS_COMMAND_TIMEOUT (1s unless set).
oidc_stack_start() {
    if [ "${REDIS:-0}" = 1 ]; then
        local port=9137
        # Every blocking round trip made on a worker loop is logged with its
        # stack (oidc_loop_waits_check names the provider's).
        export DARVAZA_DEBUG_LOOP_WAITS=1
        (umask 077 && openssl rand -hex 16 >"$WORK/redis.pw" && openssl rand -hex 32 >"$WORK/redis.key")
        redis_start main "$port" --user darvaza on ">$(cat "$WORK/redis.pw")" '~x:*' '&x:*' \
            '&__redis__:invalidate' '+@all'
        EXTRA_POLICIES="$WORK/policies" stack_start "$@" \
            STORE_REDIS="address: 127.0.0.1:$port, username: darvaza, password_file: $WORK/redis.pw, value_key_file: $WORK/redis.key, prefix: \"x:\", timeouts: {command: ${OIDC_REDIS_COMMAND_TIMEOUT:-1s}}"
    else
        EXTRA_POLICIES="$WORK/policies" stack_start "$@"
    fi
}

# sid_of TOKEN: the sid the gateway gives a session (its cookie's SHA-256).
sid_of() { printf '%s' "$1" | b64url_sha256; }

# logout_tokens: the back-channel logout tokens the script's listener
# (oidc_bc_listen.py, bodies in $WORK/bc) received so far, one line each:
# [aud, sid, sub, typ, has the back-channel event].
logout_tokens() {
    local f t
    for f in "$WORK"/bc/*.body; do
        [ -e "$f" ] || continue
        t=$(tail -n 1 "$f" | sed 's/^logout_token=//')
        jq -c --arg typ "$(jws_part "$t" 0 | jq -r .typ)" \
            '[.aud, .sid, .sub, $typ, (.events | has("http://schemas.openid.net/event/backchannel-logout"))]' \
            <<<"$(jws_part "$t" 1)"
    done
}

# With REDIS=1, the number of tests oidc_loop_waits_check adds (0 otherwise).
# shellcheck disable=SC2034 # used by the scripts that source this
OIDC_LOOP_WAIT_TESTS=0
# shellcheck disable=SC2034
[ "${REDIS:-0}" = 1 ] && OIDC_LOOP_WAIT_TESTS=2

# oidc_loop_waits: the store_loop_wait events of the gateway's log, one
# line each: the command, the file that made the store call (the first
# frame outside gateway/state and gateway/core, which only carry it), then
# the files of the whole stack (inlined frames too), from the raw stacks
# DARVAZA_DEBUG_LOOP_WAITS=1 logs.
oidc_loop_waits() {
    local log bin="$BUILD_DIR/darvazad" files
    log=$(gw_log)
    awk '/"event":"store_loop_wait"/ { if (ev) print ev; match($0, /redis: [A-Z]+/); ev = substr($0, RSTART + 7, RLENGTH - 7); next }
         ev && /darvazad\(\+0x[0-9a-f]+\)/ { match($0, /\+0x[0-9a-f]+/); ev = ev " " substr($0, RSTART + 1, RLENGTH - 1); next }
         ev && !/\[0x[0-9a-f]+\]/ { print ev; ev = "" }
         END { if (ev) print ev }' "$log" |
        while read -r cmd addrs; do
            # shellcheck disable=SC2086 # one argument per address
            files=$(addr2line -i -e "$bin" $addrs | sed -e 's/:.*//' -e "s#^$ROOT/##" -e 's#^/.*/\(gateway/\|lib/\)#\1#')
            printf '%s %s <- %s\n' "$cmd" \
                "$(grep -v -e '^gateway/state/' -e '^gateway/core/' <<<"$files" | head -n 1)" \
                "$(tr '\n' ' ' <<<"$files")"
        done
}

# oidc_loop_waits_check (REDIS=1 only; before finish): no store call made
# by the provider's code (gateway/oidc) waited on a worker loop (a wait of
# another path that the provider merely called back, e.g. the portal's
# logout after its back-channel step, is that path's), and
# the log shows every wait darvaza_store_loop_waits_total counts (so the
# first check saw them all).
oidc_loop_waits_check() {
    [ "${REDIS:-0}" = 1 ] || return 0
    local waits total
    # The counter first: a wait counted after the scrape (a timer) is then
    # in the log too, never the other way round.
    total=$(metric darvaza_store_loop_waits_total)
    waits=$(oidc_loop_waits)
    is "$(grep '^[A-Z]* gateway/oidc/' <<<"$waits" | head -n 5)" "" \
        "no store call of the provider (gateway/oidc) waited on a worker loop"
    ok "... the log has a stack for each of the ${total:-(absent)} waits darvaza_store_loop_waits_total counts" \
        test "$(grep -c . <<<"$waits")" -ge "${total:-999999999}"
}
