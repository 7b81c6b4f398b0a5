#!/usr/bin/env bash
# t_trust_floor.sh - the key and signature floor (lib/pki/keyfloor.h) and the
# end-entity rules (docs/internals/x509check.md, X1-X12) with the real
# programs.  Certificates are made here with the openssl CLI:
#   1. `darvaza cert check` in the production profile (purpose auth, card
#      policy, FIN required): RSA-512, RSA-1024, a chain under an RSA-1024
#      root, P-192, P-224, secp256k1, explicit P-256 parameters, SHA-1, MD5,
#      a SHA-1-signed CA, cA=TRUE
#      leaves, keyCertSign / cRLSign leaves, a v1 leaf, serial 0 are refused
#      with their reason; RSA-2048, P-256, P-384 and a SHA-1 self-signed
#      anchor above a good chain are valid; --min-rsa-bits / --min-ec-bits
#      raise the floor and cannot lower it.
#   2. `darvazad --check`: trust.min_rsa_bits / min_ec_bits under the floor
#      are refused naming file:line; above it accepted.
#   3. the running gateway, POST /auth/card (a card certificate and key from
#      files, issued by the stack's E-Signature CA, a P-256 CA: ECDSA has no
#      MD5, so MD5 is shown in 1. only): a good certificate logs in,
#      SHA-1-signed and cA=TRUE ones are 401 certificate_invalid
#      with the reason as detail; after trust.min_rsa_bits: 3072 and a
#      reload the good RSA-2048 certificate is refused as weak_key; and
#      POST /auth/card/tls with an RSA-1024 client certificate is 401
#      certificate_invalid (weak_key).
. "$(dirname "$0")/lib.sh"

plan 40

DZ="$BUILD_DIR/darvaza"
DZD="$BUILD_DIR/darvazad"
CARD_POLICY=1.3.6.1.4.1.55555.1.1.1
for t in openssl jq curl xxd; do command -v "$t" >/dev/null || bail "$t is not installed"; done
[ -x "$DZ" ] && [ -x "$DZD" ] || bail "build $DZ and $DZD first"

P="$WORK/pki"
mkdir -p "$P"
# The CLI must be able to write weak keys and weak signatures: its own
# security level would otherwise refuse to (that is what we test against).
cat >"$P/weak.cnf" <<'EOF'
openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
CipherString = DEFAULT:@SECLEVEL=0
EOF

# key NAME SPEC: a private key (SPEC: rsa:BITS, ec:CURVE, or ecx:CURVE with
# explicit curve parameters).
key() {
    case "$2" in
    rsa:*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa:}" -out "$P/$1.key" 2>/dev/null ;;
    ec:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2#ec:}" -out "$P/$1.key" 2>/dev/null ;;
    ecx:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2#ecx:}" \
        -pkeyopt ec_param_enc:explicit -out "$P/$1.key" 2>/dev/null ;;
    esac
}
# root NAME SPEC MD: a self-signed CA.
root() {
    key "$1" "$2"
    openssl req -x509 -new -key "$P/$1.key" -"$3" -days 30 -subj "/CN=Floor $1" -out "$P/$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
}
# issue NAME SPEC MD ISSUER EXTFILE [openssl x509 args...]: NAME's key and certificate.
issue() {
    local name=$1 spec=$2 md=$3 issuer=$4 ext=$5
    shift 5
    [ "$spec" = reuse ] || key "$name" "$spec"
    openssl req -new -key "$P/$name.key" -subj "/CN=Floor $name/serialNumber=PNOAZ-FLR$(printf '%04d' $((RANDOM % 10000)))" \
        -out "$P/$name.csr" 2>/dev/null
    OPENSSL_CONF="$P/weak.cnf" openssl x509 -req -in "$P/$name.csr" -CA "$P/$issuer.pem" \
        -CAkey "$P/$issuer.key" -set_serial "${SERIAL:-0x$(openssl rand -hex 12)}" -days 10 -"$md" \
        -extfile "$P/$ext" "$@" -out "$P/$name.pem" 2>"$P/$name.err"
}
ext() { printf '%s\n' "${@:2}" >"$P/$1"; }
ext leaf.ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "certificatePolicies=$CARD_POLICY" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
ext ca.ext "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
ext leaf-ca.ext "basicConstraints=critical,CA:TRUE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "certificatePolicies=$CARD_POLICY" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
ext leaf-ca-kcs.ext "basicConstraints=critical,CA:TRUE" \
    "keyUsage=critical,digitalSignature,keyCertSign" "extendedKeyUsage=clientAuth" \
    "certificatePolicies=$CARD_POLICY" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
ext leaf-crlsign.ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,cRLSign" \
    "extendedKeyUsage=clientAuth" "certificatePolicies=$CARD_POLICY" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
: >"$P/none.ext"

# ---- 1. darvaza cert check -------------------------------------------------------
root root rsa:2048 sha256
root root1k rsa:1024 sha256
root rootsha1 rsa:2048 sha1
issue ca rsa:2048 sha256 root ca.ext
issue casha1 rsa:2048 sha1 root ca.ext
issue ca1 rsa:2048 sha256 rootsha1 ca.ext
issue good-rsa rsa:2048 sha256 ca leaf.ext
issue good-p256 ec:P-256 sha256 ca leaf.ext
issue good-p384 ec:P-384 sha384 ca leaf.ext
issue rsa512 rsa:512 sha256 ca leaf.ext
issue rsa1024 rsa:1024 sha256 ca leaf.ext
issue under1k rsa:2048 sha256 root1k leaf.ext
issue p192 ec:P-192 sha256 ca leaf.ext
issue p224 ec:P-224 sha256 ca leaf.ext
issue k256 ec:secp256k1 sha256 ca leaf.ext
issue p256x ecx:P-256 sha256 ca leaf.ext
issue sha1 rsa:2048 sha1 ca leaf.ext
issue md5 rsa:2048 md5 ca leaf.ext
issue undercasha1 rsa:2048 sha256 casha1 leaf.ext
issue underrootsha1 rsa:2048 sha256 ca1 leaf.ext
issue leafca rsa:2048 sha256 ca leaf-ca.ext
issue leafcakcs rsa:2048 sha256 ca leaf-ca-kcs.ext
issue crlsign rsa:2048 sha256 ca leaf-crlsign.ext
issue v1 rsa:2048 sha256 ca none.ext
SERIAL=0 issue serial0 rsa:2048 sha256 ca leaf.ext
for f in good-rsa good-p256 good-p384 rsa512 rsa1024 under1k p192 p224 k256 p256x sha1 md5 undercasha1 \
    underrootsha1 leafca leafcakcs crlsign v1 serial0; do
    [ -s "$P/$f.pem" ] || bail "openssl could not make the $f certificate: $(cat "$P/$f.err")"
done

# check LEAF [extra options]: the production profile; sets RC and OUT.
check() {
    local leaf=$1 anchor=root inter=ca
    shift
    case "$leaf" in
    under1k) anchor=root1k inter= ;;
    undercasha1) inter=casha1 ;;
    underrootsha1) anchor=rootsha1 inter=ca1 ;;
    esac
    OUT=$("$DZ" cert check "$P/$leaf.pem" --ca "$P/$anchor.pem" ${inter:+--untrusted "$P/$inter.pem"} \
        --purpose auth --policy "$CARD_POLICY" --require-fin --no-revocation "$@" 2>&1)
    RC=$?
}
refused() { # refused LEAF REASON DESC [options]
    local leaf=$1 reason=$2 desc=$3
    shift 3
    check "$leaf" "$@"
    like "$RC $OUT" "^1 invalid: $reason: " "cert check refuses $desc: $reason ($OUT)"
}
valid() { # valid LEAF DESC [options]
    local leaf=$1 desc=$2
    shift 2
    check "$leaf" "$@"
    like "$RC $OUT" "^0 valid: FIN=FLR" "cert check accepts $desc ($OUT)"
}

valid good-rsa "an RSA-2048 leaf (control)"
valid good-p256 "a P-256 leaf (control)"
valid good-p384 "a P-384 leaf"
valid underrootsha1 "a good chain under a root whose own self-signature is SHA-1"
refused rsa512 weak_key "an RSA-512 leaf"
refused rsa1024 weak_key "an RSA-1024 leaf"
refused under1k weak_key "a leaf under an RSA-1024 root"
refused p192 weak_key "a P-192 leaf"
refused p224 weak_key "a P-224 leaf (OpenSSL's security level 2 would pass it)"
refused k256 weak_key "a secp256k1 leaf (not a NIST curve)"
refused p256x weak_key "a P-256 key with explicit curve parameters"
refused sha1 weak_signature "a leaf signed with SHA-1"
refused md5 weak_signature "a leaf signed with MD5"
refused undercasha1 weak_signature "a leaf under a CA certificate signed with SHA-1"
refused leafca not_end_entity "a leaf with basicConstraints cA=TRUE (no keyCertSign)"
refused leafcakcs not_end_entity "a leaf with cA=TRUE and keyCertSign"
refused crlsign not_end_entity "a non-CA leaf with keyUsage cRLSign"
refused v1 not_end_entity "a v1 certificate as a leaf"
refused serial0 malformed "a leaf with serial number 0"
check sha1 --purpose sign
like "$RC $OUT" "^1 invalid: weak_signature: " "cert check refuses the SHA-1 leaf for signing too ($OUT)"
check leafca --purpose sign
like "$RC $OUT" "^1 invalid: not_end_entity: " "cert check refuses the cA=TRUE leaf for signing too ($OUT)"
refused good-rsa weak_key "RSA-2048 with --min-rsa-bits 3072" --min-rsa-bits 3072
refused good-p256 weak_key "P-256 with --min-ec-bits 384" --min-ec-bits 384
valid good-p384 "P-384 with --min-ec-bits 384" --min-ec-bits 384
check rsa1024 --min-rsa-bits 1024
OUT=$(head -n 1 <<<"$OUT")
like "$RC $OUT" "^2 .*--min-rsa-bits 1024: 2048\.\.16384" "--min-rsa-bits cannot lower the floor ($OUT)"
check rsa1024 --legacy-algorithms --purpose any
like "$RC $OUT" "^0 valid" "--legacy-algorithms (PKITS only) turns the floor off, so the refusals above are the floor's ($OUT)"

# ---- 2. the config check -----------------------------------------------------------
stack_start
CONF="$STATE_DIR/darvaza.yaml"
[ -f "$CONF" ] || bail "no $CONF"
RL=$(grep -n '^  min_rsa_bits:' "$CONF" | cut -d: -f1)
EL=$(grep -n '^  min_ec_bits:' "$CONF" | cut -d: -f1)
[ -n "$RL" ] && [ -n "$EL" ] || bail "the stack's config has no trust.min_rsa_bits / min_ec_bits"
sed "${RL}s/min_rsa_bits:.*/min_rsa_bits: 1024/" "$CONF" >"$WORK/rsa1024.yaml"
OUT=$("$DZD" -c "$WORK/rsa1024.yaml" --check 2>&1)
like "$? $OUT" "^[1-9][0-9]* .*rsa1024\\.yaml:$RL([^0-9]|\$)" "--check refuses trust.min_rsa_bits: 1024 naming rsa1024.yaml:$RL ($OUT)"
sed "${EL}s/min_ec_bits:.*/min_ec_bits: 192/" "$CONF" >"$WORK/ec192.yaml"
OUT=$("$DZD" -c "$WORK/ec192.yaml" --check 2>&1)
like "$? $OUT" "^[1-9][0-9]* .*ec192\\.yaml:$EL([^0-9]|\$)" "--check refuses trust.min_ec_bits: 192 naming ec192.yaml:$EL ($OUT)"
sed -e "${RL}s/min_rsa_bits:.*/min_rsa_bits: 3072/" -e "${EL}s/min_ec_bits:.*/min_ec_bits: 384/" "$CONF" >"$WORK/raised.yaml"
OUT=$("$DZD" -c "$WORK/raised.yaml" --check 2>&1)
is "$?" 0 "--check accepts a raised floor (3072 / 384)${OUT:+ ($OUT)}"

# ---- 3. the running gateway -----------------------------------------------------------
C="$STATE_DIR/certs"
[ -f "$C/esign-ca.key" ] && [ -f "$C/esign-index.txt" ] || bail "the stack made no E-Signature CA"
cp "$C/esign-ca.pem" "$P/esign.pem"
cp "$C/esign-ca.key" "$P/esign.key"
# OCSP from the stack's responder, as for the demo cards.
ext card.ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "certificatePolicies=$CARD_POLICY" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" \
    "authorityInfoAccess=OCSP;URI:http://127.0.0.1:9105/"
ext card-ca.ext "basicConstraints=critical,CA:TRUE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "certificatePolicies=$CARD_POLICY" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" \
    "authorityInfoAccess=OCSP;URI:http://127.0.0.1:9105/"
issue gw-good rsa:2048 sha256 esign card.ext
issue gw-sha1 rsa:2048 sha1 esign card.ext
issue gw-ca rsa:2048 sha256 esign card-ca.ext
issue gw-1k rsa:1024 sha256 esign card.ext
for f in gw-good gw-sha1 gw-ca gw-1k; do
    [ -s "$P/$f.pem" ] || bail "openssl could not make $f: $(cat "$P/$f.err")"
    # Known to the CA's OCSP responder as good (so only the floor can refuse).
    printf 'V\t%s\t\t%s\tunknown\t/CN=Floor %s\n' \
        "$(date -u -d "$(openssl x509 -in "$P/$f.pem" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)" \
        "$(openssl x509 -in "$P/$f.pem" -noout -serial | cut -d= -f2)" "$f" >>"$C/esign-index.txt"
done
card_ocsp_stop
card_ocsp_start || bail "the E-Signature OCSP responder did not come back"

# card_post NAME: challenge, RS256 over SHA-256(origin) || SHA-256(nonce), POST /auth/card.
card_post() {
    local name=$1 nonce sig cert
    gw POST /auth/card/challenge
    nonce=$(jb '.nonce // empty')
    [ -n "$nonce" ] || { STATUS=000; return; }
    { printf '%s' "$GW_ORIGIN" | openssl dgst -sha256 -binary
        printf '%s' "$nonce" | openssl dgst -sha256 -binary; } >"$WORK/msg"
    sig=$(openssl dgst -sha256 -sign "$P/$name.key" -binary "$WORK/msg" | base64 -w0)
    cert=$(openssl x509 -in "$P/$name.pem" -outform DER | base64 -w0)
    gw_json POST /auth/card "$(jq -nc --arg c "$cert" --arg n "$nonce" --arg s "$sig" \
        '{certificate:$c, algorithm:"RS256", nonce:$n, signature:$s}')" -H "origin: $GW_ORIGIN"
}

card_post gw-good
is "$STATUS $(jb '.method // empty')" "200 card" "/auth/card logs in with a good RSA-2048 card certificate (control) ($BODY)"
card_post gw-sha1
problem 401 certificate_invalid "/auth/card refuses a SHA-1-signed card certificate"
is "$(jb .detail)" weak_signature "and says weak_signature"
card_post gw-ca
problem 401 certificate_invalid "/auth/card refuses a card certificate with cA=TRUE"
is "$(jb .detail)" not_end_entity "and says not_end_entity"

# The TLS path, on the card listener (the portal's asks for no certificate):
# curl presents an RSA-1024 client certificate (its own security level
# lowered so that it can).
CARD_URL=${CARD_URL:-https://localhost:8444}
OPENSSL_CONF="$P/weak.cnf" GW_URL=$CARD_URL gw POST /auth/card/tls -H "origin: $GW_ORIGIN" \
    --cert "$P/gw-1k.pem" --key "$P/gw-1k.key"
problem 401 certificate_invalid "/auth/card/tls refuses an RSA-1024 client certificate"
is "$(jb .detail)" weak_key "and says weak_key"
OPENSSL_CONF="$P/weak.cnf" GW_URL=$CARD_URL gw POST /auth/card/tls -H "origin: $GW_ORIGIN" \
    --cert "$P/gw-good.pem" --key "$P/gw-good.key"
is "$STATUS $(jb '.method // empty')" "200 card" "/auth/card/tls logs in with the good RSA-2048 certificate (control) ($BODY)"

# Raise the floor in the gateway's config: the same good certificate is now too weak.
GEN=$(curl -s --cacert "$C/root.pem" "$GW_URL/readyz" | jq -r '.generation // 0')
sed -i "s/^  min_rsa_bits:.*/  min_rsa_bits: 3072/" "$CONF"
stack_reload || diag "stack reload said: $(tail -n 5 "$WORK/stack-reload.log")"
wait_until 30 bash -c "[ \"\$(curl -s --cacert '$C/root.pem' '$GW_URL/readyz' | jq -r '.generation // 0')\" -gt $GEN ]" ||
    diag "the gateway did not load a new generation"
card_post gw-good
problem 401 certificate_invalid "after trust.min_rsa_bits: 3072 and a reload, /auth/card refuses the RSA-2048 certificate"
is "$(jb .detail)" weak_key "and says weak_key"

finish
