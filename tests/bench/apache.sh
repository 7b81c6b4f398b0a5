# tests/bench/apache.sh - setup (d) of `make bench` (sourced by run.sh): Apache
# httpd 2.4 with mod_auth_openidc, a product people deploy for authenticated
# forwarding, in front of the same static back end as (a), (b) and (c):
# https://127.0.0.1:9445 (mpm_event, TLS + HTTP/2 by mod_http2, the same
# certificate), /api/ protected by mod_auth_openidc and forwarded by mod_proxy
# (kept-alive HTTP/1.1 connections, as nginx's), the claims passed to the back
# end as headers (OIDCPassClaimsAs headers).  Its sessions come from darvaza's
# OpenID Connect provider: it is the relying party "bench-rp" (a client
# policy written next to the bench's, consent pre-approved, client_secret_basic)
# and one scripted code flow (curl, the person's darvaza session cookie at
# /authorize) gives the mod_auth_openidc session cookie h2load sends.
#
#   apache_policy DIR     write the bench-rp client policy (and its secret) into DIR
#   apache_start          start it; sets D=1, or D=0 and says why
#   apache_login TOKEN    the code flow with darvaza session TOKEN; sets D_COOKIE
# Stopped by lib.sh's EXIT trap (its master's pid is in OWN_PIDS).

D=0
D_PORT=9445
D_URL="https://127.0.0.1:$D_PORT"
D_DIR="$OUT/apache"
D_COOKIE=
D_MODS=/usr/lib/apache2/modules

apache_policy() {
    mkdir -p "$D_DIR"
    rm -f "$D_DIR/bench-rp.secret"
    (umask 077 && openssl rand -hex 32 >"$D_DIR/bench-rp.secret")
    cat >"$1/bench-rp.yaml" <<POLICY
# The relying party of setup (d) (tests/bench/apache.sh): Apache httpd with
# mod_auth_openidc on $D_URL.  Written by tests/bench/run.sh.
service: bench-rp
registered_as: "DIS-9103"
oidc:
  client_id: bench-rp
  name: "Benchmark relying party"
  token_endpoint_auth_method: client_secret_basic
  secret_file: $D_DIR/bench-rp.secret
  redirect_uris: [$D_URL/redirect_uri]
  scopes: [openid]
  release: [fin]
  acr_default: substantial
  consent: pre-approved
POLICY
}

apache_start() {
    local pass
    command -v apache2 >/dev/null && [ -f "$D_MODS/mod_auth_openidc.so" ] && [ -f "$D_MODS/mod_http2.so" ] ||
        { log "(d) apache2, mod_http2 or mod_auth_openidc is missing: setup (d) skipped"; return 0; }
    pass=$(openssl rand -hex 32)
    rm -rf "$D_DIR/run" "$D_DIR/logs"
    mkdir -p "$D_DIR/run" "$D_DIR/logs"
    # The workers (nobody when started as root) read the CA when they fetch
    # the provider's keys and call its token endpoint.
    install -m 0644 "$STATE_DIR/certs/root.pem" "$D_DIR/root.pem"
    # The config holds the client secret: the owner and the workers' group only.
    (umask 027 && sed -e "s|@DIR@|$D_DIR|g" -e "s|@MODS@|$D_MODS|g" -e "s|@PORT@|$D_PORT|g" \
        -e "s|@CERT@|$CERT|g" -e "s|@KEY@|$KEY|g" -e "s|@WORKERS@|$WORKERS|g" \
        -e "s|@ISSUER@|$GW_ORIGIN|g" -e "s|@SECRET@|$(cat "$D_DIR/bench-rp.secret")|g" \
        -e "s|@PASS@|$pass|g" -e "s|@USER@|$([ "$(id -u)" = 0 ] && echo 'User nobody')|" \
        -e "s|@GROUP@|$([ "$(id -u)" = 0 ] && echo 'Group nogroup')|" \
        "$HERE/apache.conf" >"$D_DIR/httpd.conf")
    if [ "$(id -u)" = 0 ]; then
        chgrp -R nogroup "$D_DIR"
        chmod -R g+rX "$D_DIR"
    fi
    apache2 -f "$D_DIR/httpd.conf" -k start >"$D_DIR/start.log" 2>&1 ||
        { log "(d) apache2 did not start: $(tail -n 5 "$D_DIR/start.log" "$D_DIR/logs/error.log" 2>/dev/null)"; return 0; }
    wait_until 10 test -s "$D_DIR/run/apache2.pid" || { log "(d) apache2 wrote no pid"; return 0; }
    OWN_PIDS+=("$(cat "$D_DIR/run/apache2.pid")")
    D=1
}

# The browser's part of the code flow, by curl: the protected URL sends it to
# darvaza's /authorize (mod_auth_openidc's state cookie in the jar), darvaza
# (the person's session cookie) sends it back with a code, mod_auth_openidc
# trades the code at darvaza's token endpoint and sets its session cookie.
apache_login() {
    local jar="$D_DIR/cookies" authz back
    D_COOKIE=
    rm -f "$jar"
    authz=$(curl -sk -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' --max-time 10 "$D_URL/api/static/ping")
    case $authz in "$GW_ORIGIN/authorize?"*) ;; *) log "(d) did not send to darvaza's /authorize: '$authz'"; return 0 ;; esac
    back=$(curl -s --cacert "$STATE_DIR/certs/root.pem" -o /dev/null -w '%{redirect_url}' --max-time 10 \
        -H "cookie: __Host-darvaza=$1" "$authz")
    case $back in "$D_URL/redirect_uri?"*code=*) ;; *) log "(d) darvaza's /authorize gave no code: '$back'"; return 0 ;; esac
    curl -sk -c "$jar" -b "$jar" -o /dev/null --max-time 10 "$back"
    D_COOKIE=$(awk '$6 == "mod_auth_openidc_session" { print $7 }' "$jar")
    [ -n "$D_COOKIE" ] || log "(d) mod_auth_openidc set no session cookie: $(tail -n 3 "$D_DIR/logs/error.log")"
}
