#!/usr/bin/env bash
# run.sh - what `make demo` runs: the demo stack in build/demo (demo/stack.sh),
# a copy-paste walk-through with a registered demo person, then waits in the
# foreground until Ctrl-C or SIGTERM, and stops everything cleanly.
# A start killed half-way (kill -9, a closed terminal) is detected by the
# next one, which starts afresh (demo/stack.sh, SETUP_MARK); a port already
# taken stops it before anything starts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${DEMO_STATE:-build/demo} # DEMO_STATE: another directory (tests)
export BUILD_DIR=${BUILD_DIR:-build}

stopping=0
stop() {
    [ $stopping -eq 0 ] || return 0
    stopping=1
    echo
    demo/stack_rp.sh stop "$STATE" || true
    demo/stack.sh stop "$STATE" || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

demo/stack.sh start "$STATE"
# The demo e-service at another origin, signing people in through the
# gateway's OpenID Connect provider (docs/oidc.md).
demo/stack_rp.sh start "$STATE"

CA=$STATE/certs/root.pem
P=$(jq -c 'map(select(.registered == true))[0]' "$STATE/people.json")
FIN=$(jq -r .fin <<<"$P")
PASSWORD=$(jq -r .password <<<"$P")
SECRET=$(jq -r .totp_secret <<<"$P")
NAME="$(jq -r '.name + " " + .surname' <<<"$P")"
U=$(jq -c 'map(select(.registered != true))[0]' "$STATE/people.json")
# A mobile-signature holder whose demo phone is on (approves by itself).
M=$(jq -c 'map(select(.sim == true and .phone_on == true and .sim_revoked == false))[0]' "$STATE/people.json")
# A judge with a demo card (a SoftHSM2 token), and the registered person as the party.
J=$(jq -c 'map(select(.role == "judge" and .card_label != null))[0]' "$STATE/people.json")
# A judge with a judge's SIM (the same person as a judge card) and a phone that approves.
JM=$(jq -c 'map(select(.sim_judge == true and .phone_on == true))[0] // {}' "$STATE/people.json")

cat <<EOF

================================================================================
 darvaza demo is up                                    (Ctrl-C stops everything)
================================================================================
 gateway   https://localhost:8443   (HTTP/2, TLS; trust anchor $CA)
 registry  https://127.0.0.1:9101   (peer; only the gateway's client cert gets in)
 MSSP      https://127.0.0.1:9103   (peer; demo phones' control http://127.0.0.1:9111..9116)
 court     https://127.0.0.1:9102   (peer; judges' signed notices)   TSA http://127.0.0.1:9104
 management http://127.0.0.1:9180  (HTTP/1.1: /metrics, /healthz, /readyz; loopback only)
 portal    https://localhost:8443/  (open it in a browser that trusts $CA)
 state     $STATE  (logs/, people.json, audit.log)

 A registered demo person: $NAME, FIN $FIN
 (all demo people, with passwords and TOTP secrets: $STATE/people.json)

# 0. shell variables for the steps below
CA=$CA FIN=$FIN PASSWORD='$PASSWORD' SECRET=$SECRET
GW=https://localhost:8443

# 1. log in: FIN + password + one-time code (TOTP from oathtool)
TOKEN=\$(curl -s --cacert \$CA -H "Origin: \$GW" -H 'content-type: application/json' \\
  -d "{\"fin\":\"\$FIN\",\"password\":\"\$PASSWORD\",\"otp\":\"\$(oathtool --totp -b \$SECRET)\"}" \\
  \$GW/auth/password | jq -r .token); echo "\$TOKEN"

# 2. your own registry record, through the gateway (fields released by policies/registry.yaml)
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/registry/me | jq

# 3. the session
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/auth/session | jq

# 4. what the registry received: the signed Darvaza-Assertion and its verdict
curl -s --cacert \$CA --cert $STATE/certs/gateway-client.pem --key $STATE/certs/gateway-client.key \\
  https://127.0.0.1:9101/_peer/requests | jq '.[-1] | {path, verified, reason, claims}'

# 5. the same over HTTP/2 with nghttp (-v shows the frames; nghttp does not check
#    the certificate, it only warns)
nghttp -v -H "authorization: Bearer \$TOKEN" \$GW/api/registry/me

# 6. the gateway's published keys, and log out
curl -s --cacert \$CA \$GW/.well-known/jwks.json | jq
curl -s --cacert \$CA -X POST -H "Origin: \$GW" -H "Authorization: Bearer \$TOKEN" \\
  -o /dev/null -w '%{http_code}\n' \$GW/auth/logout        # 204
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/auth/session | jq   # 401

# 7. mobile-signature login ($(jq -r '.name + " " + .surname' <<<"$M"): the demo phone approves by
#    itself after 1.5 s; compare the verification code with what the phone shows; the
#    cookie jar is the browser: only the one that started the login may collect it)
MJAR=\$(mktemp); MOB=\$(curl -s --cacert \$CA -c \$MJAR -H "Origin: \$GW" -H 'content-type: application/json' \\
  -d '{"phone":"$(jq -r .phone <<<"$M")","fin":"$(jq -r .fin <<<"$M")"}' \$GW/auth/mobile); echo "\$MOB"
curl -s --http2-prior-knowledge http://127.0.0.1:$(jq -r .phone_control <<<"$M")/shown | jq .verification_code
curl -s --cacert \$CA -b \$MJAR "\$GW\$(jq -r .poll <<<"\$MOB")?wait=20" | jq 'del(.token)'

# 8. QR login: a browser (cookie jar) opens it and shows the code; the phone scans it
#    (the payload changes every second and is stale after 5 s; the code as an image:
#    curl ... /code | jq -r .svg >qr.svg)
JAR=\$(mktemp); Q=\$(curl -s --cacert \$CA -c \$JAR -H "Origin: \$GW" -X POST \$GW/auth/qr | jq -r .id)
$BUILD_DIR/darvaza-peer phone scan "\$(curl -s --cacert \$CA -b \$JAR \$GW/auth/qr/\$Q/code | jq -r .payload)" \\
  --gateway \$GW --cacert \$CA --key $(jq -r .sim_key <<<"$M") \\
  --cert $(jq -r .sim_cert <<<"$M") --pin-file $STATE/sim/$(jq -r .fin <<<"$M").pin
curl -s --cacert \$CA -b \$JAR "\$GW/auth/qr/\$Q?wait=10" | jq 'del(.token)'

# 9. a judge logs in with an e-signature card ($(jq -r '.name + " " + .surname' <<<"$J"), card
#    $(jq -r .card_label <<<"$J"), PIN in people.json) and looks up a party's record for a case
export SOFTHSM2_CONF=$STATE/cards/softhsm2.conf
PIN=\$(mktemp); echo '$(jq -r .card_pin <<<"$J")' >\$PIN
$BUILD_DIR/darvaza-card list
JTOKEN=\$($BUILD_DIR/darvaza-card login --gateway \$GW --cacert \$CA --token $(jq -r .card_label <<<"$J") \
  --pin-file \$PIN | tail -n 1); echo "\$JTOKEN"
curl -s --cacert \$CA -H "Authorization: Bearer \$JTOKEN" -H 'Darvaza-Purpose: case 2-101/2026' \
  \$GW/api/registry/persons/\$FIN | jq
tail -n 3 $STATE/audit.log | jq -c '{type, fin, tgt, pur, decision, status}'

# 10. the judge signs a court notice with the card (CAdES, non-repudiation key) and files it;
#     the gateway checks and timestamps it, the court delivers it, the party reads it
jq -nc --arg p "\$FIN" '{case:"2-101/2026", party:\$p, court:"Baku Administrative Court",
  hearing:"2026-12-15T10:00:00+04:00", place:"room 4", text:"You are summoned."}' >$STATE/notice.json
$BUILD_DIR/darvaza-card sign $STATE/notice.json --token $(jq -r .card_label <<<"$J") --pin-file \$PIN -o $STATE/notice.p7s
$BUILD_DIR/darvaza-card verify $STATE/notice.json $STATE/notice.p7s --ca $STATE/certs/esign-chain.pem | jq .indication
jq -nc --arg d "\$(base64 -w0 <$STATE/notice.json)" --arg s "\$(base64 -w0 <$STATE/notice.p7s)" --arg p "\$FIN" \
  '{document:\$d, signature:\$s, party:\$p}' | curl -s --cacert \$CA -H "Origin: \$GW" \
  -H "Authorization: Bearer \$JTOKEN" -H 'Darvaza-Purpose: 2-101/2026' -H 'content-type: application/json' \
  --data-binary @- \$GW/api/court/notices | jq
TOKEN=\$(curl -s --cacert \$CA -H 'content-type: application/json' \
  -d "{\"fin\":\"\$FIN\",\"password\":\"\$PASSWORD\",\"otp\":\"\$(oathtool --totp -b -N @\$((\$(date +%s) + 30)) \$SECRET)\"}" \
  \$GW/auth/password | jq -r .token)    # the next step's code: each code counts once
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/court/my-notices |
  jq '.notices[] | {id, case, hearing: (.document | @base64d | fromjson | {court, hearing, place}),
                    signer: .report.signer.name, level: .report.level, read_at}'
#     the downloads check on their own, then "I have read it" reaches the court and the judge sees it
N=\$(curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/court/my-notices | jq '.notices[0]')
jq -r .document <<<"\$N" | base64 -d >$STATE/dl.json; jq -r .signature <<<"\$N" | base64 -d >$STATE/dl.p7s
openssl cms -verify -binary -inform DER -in $STATE/dl.p7s -content $STATE/dl.json -CAfile $STATE/certs/esign-chain.pem -purpose any -out /dev/null
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" -X POST \$GW/api/court/notices/\$(jq .id <<<"\$N")/read | jq
curl -s --cacert \$CA -H "Authorization: Bearer \$JTOKEN" \$GW/api/court/filed | jq '.notices[0]'
#     the party's own account: sessions, and what each e-service receives
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/account/sessions | jq
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/account/services | jq -c '.services[] | {service, routes: [.routes[] | {path, releases}]}'

# 10b. the card in a browser: only the card listener (8444) asks for a certificate;
#      register the judge's card in Chromium's NSS database (or Firefox's Security Devices),
#      open the portal, card tab, "sign in with the card in this browser", type the PIN
#      (s_client's own exit status does not matter here, only what it prints)
(openssl s_client -connect 127.0.0.1:8443 -servername localhost </dev/null 2>/dev/null || true) | awk '/Acceptable client certificate CA names/ {n++} END {print n + 0}'   # 0
(openssl s_client -connect 127.0.0.1:8444 -servername localhost </dev/null 2>/dev/null || true) | grep -A1 'Acceptable client certificate CA names'
mkdir -p ~/.pki/nssdb && certutil -N -d sql:\$HOME/.pki/nssdb --empty-password 2>/dev/null
modutil -dbdir sql:\$HOME/.pki/nssdb -add darvaza-demo-cards -libfile /usr/lib/softhsm/libsofthsm2.so -force </dev/null
SOFTHSM2_CONF=\$SOFTHSM2_CONF chromium --ignore-certificate-errors-spki-list=\$(openssl x509 -in $STATE/certs/gateway-tls.pem \
  -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64) https://localhost:8443/

# 10d. the judge's workspace in the portal (docs/portal.md): sign in on the mobile tab as the judge
#      $(jq -r '.name + " " + .surname' <<<"$JM"): phone $(jq -r .phone <<<"$JM"), FIN $(jq -r .fin <<<"$JM") (a judge's SIM: role judge;
#      the phone approves by itself); "Judge's workspace": look up \$FIN for a case, compose a notice,
#      "Sign on my phone" (the code on the page is the phone's), "File with the court"; the party's
#      account page shows it and "I have read it" turns the judge's list to read.  The card's way:
#      download the document, run the command the page shows, choose the .p7s, file.
curl -s --http2-prior-knowledge http://127.0.0.1:$(jq -r .phone_control <<<"$JM")/shown | jq   # what the judge's phone showed

# 10c. who accessed my data: the judge's lookup of step 9 in the party's list, with its purpose
#      and a proof from the audit log's Merkle tree, checked with the gateway's published keys
#      and by the 41-line tools/check_audit_proof.py (hashlib + openssl), as an auditor would
curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/my/access | tee $STATE/access.json |
  jq -c '.entries[] | {time, actor, fields, purpose, decision, proof_status}'
# (a proof shown "pending" is signed within a second of the first look: ask again, up to 10 times)
for i in \$(seq 10); do curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" \$GW/api/my/access |
  jq -e '[.entries[] | select(.proof != null)][0].proof' >$STATE/proof.json && break; sleep 1; done
curl -s --cacert \$CA \$GW/.well-known/jwks.json >$STATE/jwks.json
$BUILD_DIR/darvaza audit check-proof $STATE/proof.json --jwks $STATE/jwks.json
openssl pkey -in $STATE/keys/assertion-k2.pem -pubout -out $STATE/k2.pub.pem
python3 tools/check_audit_proof.py $STATE/proof.json $STATE/k2.pub.pem

# 11. as the operator: metrics, the access log (rid = a problem's "instance"), a new
#     audit segment (SIGUSR1) and the whole audit history verified with the gateway's keys
curl -s http://127.0.0.1:9180/metrics | grep -E '^darvaza_(build_info|requests_total\\{service="registry")'
tail -n 3 $STATE/logs/access.log | jq -c '{rid, method, route, status, dur_ms}'
kill -USR1 \$(cat $STATE/pids/darvazad.pid)
curl -s --cacert \$CA \$GW/.well-known/jwks.json >$STATE/jwks.json
$BUILD_DIR/darvaza audit verify $STATE --jwks $STATE/jwks.json

# 12. an e-service at another origin signs people in through darvaza (OpenID Connect, docs/oidc.md):
#     Apache httpd + mod_auth_openidc at https://127.0.0.1:9150/ is client demo-eservice
#     (client_secret_basic, consent pre-approved).  In a browser that trusts \$CA, sign in at
#     \$GW first, then open https://127.0.0.1:9150/: no further step, the page shows sub, acr
#     and amr; /high/ asks for "high" (a step-up with mobile, QR or card); logging out at
#     \$GW ends the e-service's session too (back-channel logout).  The provider's metadata:
curl -s --cacert \$CA \$GW/.well-known/openid-configuration | jq '{issuer, authorization_endpoint, token_endpoint}'
curl -s --cacert \$CA -o /dev/null -w '%{http_code} %{redirect_url}\n' -H "cookie: __Host-darvaza=\$TOKEN" \
  "\$GW/authorize?client_id=demo-eservice&response_type=code&scope=openid&redirect_uri=https%3A%2F%2F127.0.0.1%3A9150%2Fredirect_uri&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"

# Register a person yourself (an unregistered demo person).  FIN + document only start it:
# the answer is 401 code_required with the masked number the code went to by SMS; read the
# SMS from the stand-in SMS gateway, then send the same body with "code" (answers the TOTP secret):
REG='{"fin":"$(jq -r .fin <<<"$U")","document":"$(jq -r .document <<<"$U")","password":"choose-a-long-one"}'
curl -s --cacert \$CA -H "Origin: \$GW" -H 'content-type: application/json' -d "\$REG" \$GW/auth/register | jq '{code, phone}'
CODE=\$(curl -s --cacert \$CA --cert $STATE/certs/gateway-client.pem --key $STATE/certs/gateway-client.key \\
  "https://localhost:9106/_sms/messages?to=$(jq -r .phone <<<"$U" | tr -d +)" | jq -r 'last.text' | grep -o 'code [0-9]*' | head -n 1 | cut -d' ' -f2)
curl -s --cacert \$CA -H "Origin: \$GW" -H 'content-type: application/json' \\
  -d "\$(jq -c --arg c "\$CODE" '. + {code:\$c}' <<<"\$REG")" \$GW/auth/register | jq 'del(.totp.qr_svg)'
# ...and the SMS the person got: the code, then "An account was registered in your name".
curl -s --cacert \$CA --cert $STATE/certs/gateway-client.pem --key $STATE/certs/gateway-client.key \\
  "https://localhost:9106/_sms/messages?to=$(jq -r .phone <<<"$U" | tr -d +)" | jq -r '.[].text'
================================================================================
EOF

# Wait in the foreground; leave (and stop the rest) if a process dies.
while demo/stack.sh status "$STATE" >/dev/null 2>&1; do
    sleep 2 &
    wait $! || true
done
echo "run.sh: a process of the stack exited; see $STATE/logs/" >&2
demo/stack.sh status "$STATE" >&2 || true
exit 1
