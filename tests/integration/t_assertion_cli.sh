#!/usr/bin/env bash
# t_assertion_cli.sh - `darvaza jwks` and `darvaza verify-assertion` against
# the openssl command line tool only, no gateway: the JWKS we print must carry
# the very coordinates openssl sees in the key (PEM file and SoftHSM2 token);
# a token whose signature openssl made (DER turned into r || s here, in
# shell) must verify, and each thing a back end must refuse (other audience,
# stale, other body, other path, changed payload, alg none, wrong typ) must
# print its reason with exit 1.  The JWKS is also fetched over HTTPS from
# nginx with --cacert, and refused without it.
. "$(dirname "$0")/lib.sh"

plan 22
DZ="$BUILD_DIR/darvaza"
W="$WORK"
NOW=$(date +%s)

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# ---- keys and JWKS -------------------------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/k1.pem" 2>/dev/null
chmod 600 "$W/k1.pem"
"$DZ" jwks --key "$W/k1.pem" --kid gw-1 >"$W/jwks.json" 2>"$W/jwks.err"
# openssl's view of the public point: 04 || x || y.
PUB=$(openssl pkey -in "$W/k1.pem" -pubout -outform DER 2>/dev/null | tail -c 65 | xxd -p -c 256)
JX=$(jq -r '.keys[0].x' "$W/jwks.json" | b64url_decode | xxd -p -c 256)
JY=$(jq -r '.keys[0].y' "$W/jwks.json" | b64url_decode | xxd -p -c 256)
is "04$JX$JY" "$PUB" "darvaza jwks: x and y are the key's point as openssl reads it"
is "$(jq -c '.keys[0] | [.kty, .crv, .kid, .use, .alg, has("d")]' "$W/jwks.json")" \
    '["EC","P-256","gw-1","sig","ES256",false]' "darvaza jwks: kty, crv, kid, use, alg; no private part"

# A SoftHSM2 token next to the file: both keys in one set, in the order given.
export SOFTHSM2_CONF="$W/softhsm2.conf"
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$SOFTHSM2_CONF"
(umask 077 && echo 123456 >"$W/pin")
softhsm2-util --init-token --free --label dz-cli --pin 123456 --so-pin 12345678 >/dev/null 2>&1
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --login --pin 123456 --token-label dz-cli \
    --keypairgen --key-type EC:prime256v1 --label assert-key --id 01 >/dev/null 2>&1
HSM_PUB=$(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label dz-cli \
    --read-object --type pubkey --label assert-key 2>/dev/null | tail -c 65 | xxd -p -c 256)
"$DZ" jwks --key "pkcs11:token=dz-cli;object=assert-key" --kid hsm-1 --key "$W/k1.pem" --kid gw-1 \
    --pin-file "$W/pin" >"$W/jwks2.json" 2>"$W/jwks2.err"
is "$(jq -c '[.keys[].kid]' "$W/jwks2.json" 2>/dev/null)" '["hsm-1","gw-1"]' \
    "darvaza jwks: a pkcs11: URI and a PEM file in one set"
HX=$(jq -r '.keys[0].x' "$W/jwks2.json" | b64url_decode | xxd -p -c 256)
HY=$(jq -r '.keys[0].y' "$W/jwks2.json" | b64url_decode | xxd -p -c 256)
is "04$HX$HY" "$HSM_PUB" "darvaza jwks: the token key's JWK is the public object pkcs11-tool reads"
(umask 077 && echo 000000 >"$W/badpin")
"$DZ" jwks --key "pkcs11:token=dz-cli;object=assert-key" --kid hsm-1 --pin-file "$W/badpin" \
    >/dev/null 2>"$W/badpin.err"
rc=$?
is "$rc" 1 "darvaza jwks: a wrong PIN fails (exit 1)"
unlike "$(cat "$W/badpin.err")" '000000' "the wrong PIN is not printed"

# ---- tokens made by openssl ----------------------------------------------------------------
# sign_token HEADER_JSON CLAIMS_JSON: a compact JWS signed by `openssl dgst`.
sign_token() {
    local input r s
    input="$(printf '%s' "$1" | b64url).$(printf '%s' "$2" | b64url)"
    printf '%s' "$input" | openssl dgst -sha256 -sign "$W/k1.pem" -out "$W/sig.der"
    # DER SEQUENCE { INTEGER r, INTEGER s } -> r || s, 32 bytes each.
    read -r r s < <(openssl asn1parse -inform DER -in "$W/sig.der" |
        awk -F: '/INTEGER/ { printf "%s ", $NF } END { print "" }')
    r=$(printf '%064s' "${r#00}" | tr ' ' 0)
    s=$(printf '%064s' "${s#00}" | tr ' ' 0)
    printf '%s.%s' "$input" "$(printf '%s%s' "${r: -64}" "${s: -64}" | xxd -r -p | b64url)"
}
BODY_FILE="$W/body.json"
printf '{"notice":"hello"}' >"$BODY_FILE"
BDY=$(b64url_sha256 <"$BODY_FILE")
HDR='{"alg":"ES256","kid":"gw-1","typ":"darvaza-assertion+jwt"}'
claims() { # claims [jq assignments]: a valid claim set, changed by the filter
    jq -nc --argjson now "$NOW" --arg bdy "$BDY" \
        '{iss:"darvaza-test",sub:"AB12CD3",aud:"registry",iat:$now,exp:($now+30),
          jti:"q1w2e3r4t5y6u7i8o9p0aa",sid:"c2lk",acr:"high",amr:["sc","pin"],
          auth_time:($now-60),htm:"POST",htu:"/api/court/notices?x=1",bdy:$bdy}' | jq -c "${1:-.}"
}
TOK=$(sign_token "$HDR" "$(claims)")
# verify [args]: what the back end of this route checks; AUD, HTU, BODYF change one thing.
verify() {
    "$DZ" verify-assertion --jwks "$W/jwks.json" --iss darvaza-test --aud "${AUD:-registry}" \
        --htm POST --htu "${HTU:-/api/court/notices?x=1}" --body "${BODYF:-$BODY_FILE}" "$@"
}
# check DESC WANT_OUTPUT_ERE TOKEN [extra args]: runs verify; wants exit 1 and the
# ERE, or exit 0 when the ERE is the claims' opening brace.
check() {
    local desc=$1 want=$2 tok=$3 out rc wantrc=1
    shift 3
    out=$(verify "$@" "$tok" 2>"$W/verify.err")
    rc=$?
    [ "$want" = '^\{' ] && wantrc=0
    if [ "$rc" = "$wantrc" ] && [[ "$out" =~ $want ]]; then pass "$desc"; else
        fail "$desc" "exit $rc, output: $(printf '%s' "$out" | head -c 400) $(head -c 400 "$W/verify.err")"
    fi
}
check "a token signed by openssl verifies; claims printed" '^\{' "$TOK"
is "$(verify "$TOK" 2>/dev/null | jq -r '.sub + " " + .aud')" "AB12CD3 registry" \
    "the printed claims are the token's"
is "$(printf '%s\n' "$TOK" | verify - 2>/dev/null | jq -r .jti)" "q1w2e3r4t5y6u7i8o9p0aa" \
    "the token can come on stdin ('-')"
AUD=court check "another audience: wrong_audience" '^invalid: wrong_audience$' "$TOK"
check "stale token: expired" '^invalid: expired$' "$TOK" --now $((NOW + 100))
HTU=/api/court/notices check "another path: path_mismatch" '^invalid: path_mismatch$' "$TOK"
printf '{"notice":"hellO"}' >"$W/other.json"
BODYF="$W/other.json" check "another body: body_mismatch" '^invalid: body_mismatch$' "$TOK"
TAMPERED="$(printf '%s' "$HDR" | b64url).$(claims '.sub = "ZZ99ZZ9"' | b64url).${TOK##*.}"
check "changed payload: bad_signature" '^invalid: bad_signature$' "$TAMPERED"
NONE="$(printf '{"alg":"none","kid":"gw-1","typ":"darvaza-assertion+jwt"}' | b64url).$(claims | b64url).${TOK##*.}"
check "alg none: bad_algorithm" '^invalid: bad_algorithm$' "$NONE"
check "typ JWT: wrong_type" '^invalid: wrong_type$' \
    "$(sign_token '{"alg":"ES256","kid":"gw-1","typ":"JWT"}' "$(claims)")"
check "lifetime over 60 s: bad_lifetime" '^invalid: bad_lifetime$' \
    "$(sign_token "$HDR" "$(claims '.exp = .iat + 61')")"

# ---- JWKS over HTTPS ------------------------------------------------------------------------
PORT=$((20000 + $$ % 20000))
mkdir -p "$W/www/.well-known" "$W/nginx-tmp"
cp "$W/jwks.json" "$W/www/.well-known/jwks.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$W/tls.key" -out "$W/tls.pem" 2>/dev/null
cat >"$W/nginx.conf" <<EOF
daemon off;
master_process off;
pid $W/nginx.pid;
error_log $W/nginx.err;
events {}
http {
    access_log off;
    client_body_temp_path $W/nginx-tmp; proxy_temp_path $W/nginx-tmp;
    fastcgi_temp_path $W/nginx-tmp; uwsgi_temp_path $W/nginx-tmp; scgi_temp_path $W/nginx-tmp;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $W/tls.pem;
        ssl_certificate_key $W/tls.key;
        root $W/www;
    }
}
EOF
nginx -p "$W" -c "$W/nginx.conf" -e "$W/nginx.err" >/dev/null 2>&1 &
OWN_PIDS+=("$!")
if wait_until 10 curl -sf --cacert "$W/tls.pem" "https://127.0.0.1:$PORT/.well-known/jwks.json"; then
    pass "nginx serves the JWKS over HTTPS"
else
    fail "nginx serves the JWKS over HTTPS" "$(tail -n 5 "$W/nginx.err" 2>/dev/null)"
fi
URL="https://127.0.0.1:$PORT/.well-known/jwks.json"
out=$("$DZ" verify-assertion --jwks "$URL" --cacert "$W/tls.pem" --aud registry "$TOK" 2>"$W/url.err")
is "$?:$(jq -r .sub <<<"$out" 2>/dev/null)" "0:AB12CD3" "--jwks URL with --cacert verifies"
"$DZ" verify-assertion --jwks "$URL" "$TOK" >"$W/url2.out" 2>"$W/url2.err"
rc=$?
is "$rc:$(grep -c '^{' "$W/url2.out")" "1:0" "--jwks URL of an untrusted server is refused"
"$DZ" verify-assertion "$TOK" >/dev/null 2>&1
is "$?" 2 "verify-assertion without --jwks is a usage error (exit 2)"
finish
