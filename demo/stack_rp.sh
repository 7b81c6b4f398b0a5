#!/usr/bin/env bash
# stack_rp.sh - the demo relying party: Apache httpd with mod_auth_openidc at
# https://127.0.0.1:9150/, an "e-service" at another origin that signs people
# in through the gateway's OpenID Connect provider as client demo-eservice
# (demo/policies/demo-eservice.yaml, client_secret_basic) and shows the claims
# it received.  docs/oidc.md.
#
#   demo/stack_rp.sh start STATE_DIR   config under STATE_DIR/rp/, then apache2
#   demo/stack_rp.sh stop  STATE_DIR
#
# Never the system's apache2 service: its own ServerRoot, pid file and logs
# under STATE_DIR/rp, the workers as nobody:nogroup.  Needs the stack's
# certificates (STATE_DIR/certs) and the client secret demo/stack.sh made
# (STATE_DIR/oidc/demo-eservice.secret).  RP_PORT (9150), GW_ORIGIN
# (https://localhost:8443).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD=${1:-}
STATE=${2:-}
[ -n "$CMD" ] && [ -n "$STATE" ] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac
RP="$STATE/rp"
RP_PORT=${RP_PORT:-9150}
GW_ORIGIN=${GW_ORIGIN:-https://localhost:8443}
MODS=/usr/lib/apache2/modules

start() {
    local secret pass
    command -v apache2 >/dev/null && [ -f "$MODS/mod_auth_openidc.so" ] ||
        { echo "stack_rp: apache2 and libapache2-mod-auth-openidc are needed" >&2; exit 1; }
    secret=$(cat "$STATE/oidc/demo-eservice.secret")
    pass=$(openssl rand -hex 32)
    stop # what an interrupted demo may have left running
    rm -rf "$RP"
    mkdir -p "$RP/htdocs" "$RP/logs" "$RP/run"
    cp -r "$ROOT"/demo/rp/. "$RP/htdocs/"
    # The config holds the client secret: root and the workers' group only.
    (umask 027 && cat >"$RP/httpd.conf" <<CONF
ServerRoot "$RP"
ServerName 127.0.0.1
PidFile "$RP/run/apache2.pid"
DefaultRuntimeDir "$RP/run"
Mutex file:$RP/run default
Listen 127.0.0.1:$RP_PORT
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authn_core_module $MODS/mod_authn_core.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule authz_user_module $MODS/mod_authz_user.so
LoadModule socache_shmcb_module $MODS/mod_socache_shmcb.so
LoadModule ssl_module $MODS/mod_ssl.so
LoadModule mime_module $MODS/mod_mime.so
LoadModule dir_module $MODS/mod_dir.so
LoadModule include_module $MODS/mod_include.so
LoadModule auth_openidc_module $MODS/mod_auth_openidc.so
$( [ "$(id -u)" = 0 ] && printf 'User nobody\nGroup nogroup\n' )
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
ErrorLog "$RP/logs/error.log"
LogLevel warn auth_openidc:info
LogFormat "%h %t \"%r\" %>s" short
CustomLog "$RP/logs/access.log" short
TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DirectoryIndex index.shtml index.html
DocumentRoot "$RP/htdocs"
<Directory "$RP/htdocs">
    Options +Includes
    Require all granted
</Directory>
SSLEngine on
SSLCertificateFile "$STATE/certs/peer-tls.pem"
SSLCertificateKeyFile "$STATE/certs/peer-tls.key"
SSLSessionCache none

OIDCProviderMetadataURL $GW_ORIGIN/.well-known/openid-configuration
OIDCCABundlePath "$STATE/certs/root.pem"
OIDCSSLValidateServer On
OIDCClientID demo-eservice
OIDCClientSecret $secret
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCRedirectURI https://127.0.0.1:$RP_PORT/redirect_uri
OIDCCryptoPassphrase $pass
OIDCScope "openid"
OIDCPKCEMethod S256
OIDCResponseType code
OIDCDefaultLoggedOutURL https://127.0.0.1:$RP_PORT/bye.html
OIDCPassClaimsAs environment
OIDCInfoHook userinfo
<Location />
    AuthType openid-connect
    Require valid-user
</Location>
<Location /bye.html>
    AuthType None
    Require all granted
</Location>
# A page for assurance "high": a session below it is sent back to darvaza
# with acr_values=high (step-up) instead of being refused.
<Location /high/>
    AuthType openid-connect
    Require claim acr:high
    OIDCUnAutzAction auth
    OIDCPathAuthRequestParams acr_values=high
</Location>
CONF
    )
    if [ "$(id -u)" = 0 ]; then
        chgrp -R nogroup "$RP"
        chmod -R g+rX "$RP"
    fi
    apache2 -f "$RP/httpd.conf" -k start
    for _ in $(seq 1 100); do
        [ -s "$RP/run/apache2.pid" ] && return 0
        sleep 0.1
    done
    echo "stack_rp: apache2 did not start: $(tail -n 5 "$RP/logs/error.log" 2>/dev/null)" >&2
    exit 1
}

stop() {
    local pid
    [ -f "$RP/httpd.conf" ] || return 0
    pid=$(cat "$RP/run/apache2.pid" 2>/dev/null || true)
    apache2 -f "$RP/httpd.conf" -k stop 2>/dev/null || true
    if [ -n "$pid" ]; then
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

case "$CMD" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
