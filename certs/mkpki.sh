#!/usr/bin/env bash
# mkpki.sh - makes the darvaza demo PKI with the openssl CLI only.
#
#   certs/mkpki.sh [--force] OUTDIR [KEYSDIR]
#
# OUTDIR gets the certificates and their TLS keys; KEYSDIR (default
# OUTDIR/../keys) gets the gateway's assertion signing keys and seed.
# Idempotent: when OUTDIR/root.pem and every component's CA exist nothing is
# done unless --force; a missing component (a CA added by a later version of
# this script) is made under the existing root.  Everything is built in a
# temporary directory and moved into place with root.pem last, so an
# interrupted run never leaves a half PKI that a later run takes as complete.  Keys in KEYSDIR are created only when missing
# (also with --force): regenerating them would orphan what was made with
# them (signed tokens, encrypted TOTP seeds); delete them to start over.
#
# Layout (see docs/pki.md):
#   root.pem/.key          Darvaza Demo Root CA (EC P-384, 10 years): the trust anchor
#   gateway-ca.pem/.key    Gateway CA under the root (TLS servers, gateway client cert)
#   gateway-tls.pem/.key   gateway TLS server cert (leaf + gateway CA)
#   registry-tls.pem/.key  registry peer TLS server cert (leaf + gateway CA)
#   peer-tls.pem/.key      TLS server cert for the other peers (echo, court, ...)
#   gateway-client.pem/.key  the gateway's TLS client cert (clientAuth, CN darvaza-gateway)
#   esign-ca.pem/.key      E-Signature CA under the root (smart cards)
#   mobile-ca.pem/.key     Mobile Signature CA under the root
#   esign-ocsp.pem/.key    the E-Signature CA's delegated OCSP responder (EKU
#                          OCSPSigning; leaf + CA), for `openssl ocsp -rsigner`
#   mobile-ocsp.pem/.key   the Mobile Signature CA's delegated OCSP responder (same
#                          profile), for the SIM certificates (port 9107)
#   tsa.pem/.key           the demo time-stamping authority (EKU timeStamping,
#                          critical; leaf + gateway CA), `darvaza-peer tsa`
#   court-client.pem/.key  the e-court peer's TLS client cert towards the
#                          registry (clientAuth, CN darvaza-court)
#   KEYSDIR/assertion-k1.pem, assertion-k2.pem  EC P-256 assertion signing keys (0600)
#   KEYSDIR/seed.key       64 hex characters (0600)
#
# A later part (card and mobile certificates, OCSP, TSA) is one function
# here, a line in COMPONENTS and its profiles in pki.cnf.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CNF="$here/pki.cnf"

ROOT_DAYS=3650
CA_DAYS=1825
LEAF_DAYS=397
ORG="/C=AZ/O=Darvaza Demo"

die() { echo "mkpki: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 [--force] OUTDIR [KEYSDIR]" >&2
    exit 2
}

# new_key FILE CURVE: an EC private key (PKCS#8 PEM), mode 0600.
new_key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" \
        -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null) || die "cannot make key $1"
    chmod 600 "$1"
}

# serial: 128 random bits, as hex with the top bit clear (positive INTEGER).
serial() {
    local s
    s=$(openssl rand -hex 16)
    printf '0x%x%s' $(( 0x${s:0:1} & 7 )) "${s:1}"
}

# make_root NAME CN: self-signed root NAME.pem / NAME.key in $work.
make_root() {
    local name=$1 cn=$2
    new_key "$work/$name.key" secp384r1
    openssl req -new -x509 -config "$CNF" -extensions v3_root -sha384 \
        -key "$work/$name.key" -subj "$ORG/CN=$cn" -days "$ROOT_DAYS" \
        -set_serial "$(serial)" -out "$work/$name.pem" || die "cannot make $name"
}

# sign NAME ISSUER PROFILE DAYS SUBJECT: certify $work/NAME.key by ISSUER.
sign() {
    local name=$1 issuer=$2 profile=$3 days=$4 subj=$5
    openssl req -new -config "$CNF" -key "$work/$name.key" -subj "$subj" \
        -out "$work/$name.csr" || die "cannot make request for $name"
    openssl x509 -req -in "$work/$name.csr" -CA "$work/$issuer.pem" \
        -CAkey "$work/$issuer.key" -set_serial "$(serial)" -days "$days" -sha256 \
        -extfile "$CNF" -extensions "$profile" -out "$work/$name.cert" 2>/dev/null \
        || die "cannot sign $name by $issuer"
    rm -f "$work/$name.csr"
}

# make_ca NAME ISSUER CN: an intermediate CA (EC P-256, pathlen 0).
make_ca() {
    local name=$1 issuer=$2 cn=$3
    new_key "$work/$name.key" prime256v1
    sign "$name" "$issuer" v3_ca "$CA_DAYS" "$ORG/CN=$cn"
    mv "$work/$name.cert" "$work/$name.pem"
}

# issue_leaf NAME CA PROFILE SUBJECT: NAME.pem is leaf + CA chain (no root),
# NAME.key its key.
issue_leaf() {
    local name=$1 ca=$2 profile=$3 subj=$4
    new_key "$work/$name.key" prime256v1
    sign "$name" "$ca" "$profile" "$LEAF_DAYS" "$subj"
    cat "$work/$name.cert" "$work/$ca.pem" >"$work/$name.pem"
    rm -f "$work/$name.cert"
    openssl verify -CAfile "$work/root.pem" -untrusted "$work/$ca.pem" \
        "$work/$name.pem" >/dev/null || die "$name does not verify"
}

# make_gateway_pki: the gateway CA and everything it issues.
make_gateway_pki() {
    make_ca gateway-ca root "Darvaza Demo Gateway CA"
    issue_leaf gateway-tls gateway-ca v3_tls_server "$ORG/CN=localhost"
    issue_leaf registry-tls gateway-ca v3_tls_server "$ORG/OU=Population Registry/CN=localhost"
    issue_leaf peer-tls gateway-ca v3_tls_server "$ORG/OU=Demo Peers/CN=localhost"
    issue_leaf gateway-client gateway-ca v3_tls_client "$ORG/CN=darvaza-gateway"
}

# make_esign_pki: the e-signature CA (smart cards).  Card holders' and
# judges' certificates (policy 1.3.6.1.4.1.55555.1.1.1 / .1.2.1, FIN in
# serialNumber "PNOAZ-<FIN>") and its CRL are made by certs/mkcards.sh with
# the cards; here the CA and its OCSP responder.
make_esign_pki() {
    make_ca esign-ca root "Darvaza Demo E-Signature CA"
    make_esign_ocsp # a new CA needs a new responder
}

# make_esign_ocsp: the e-signature CA's delegated OCSP responder certificate
# (demo/stack.sh runs `openssl ocsp` with it on 127.0.0.1:9105; the card
# certificates themselves come from certs/mkcards.sh).  The CA may come from
# an earlier run: use it from OUTDIR then.
make_esign_ocsp() {
    local f
    for f in esign-ca.pem esign-ca.key; do
        [ -f "$work/$f" ] || cp -p "$out/$f" "$work/$f" || die "no $f to issue the OCSP responder"
    done
    issue_leaf esign-ocsp esign-ca v3_ocsp "$ORG/OU=E-Signature CA/CN=Darvaza Demo E-Signature OCSP Responder"
}

# make_mobile_pki: the mobile-signature CA (SIM-held keys, policy
# 1.3.6.1.4.1.55555.1.1.2) and its OCSP responder; the SIM certificates
# come from certs/mksim.sh.
make_mobile_pki() {
    make_ca mobile-ca root "Darvaza Demo Mobile Signature CA"
    make_mobile_ocsp # a new CA needs a new responder
}

# make_mobile_ocsp: the mobile CA's delegated OCSP responder certificate
# (demo/stack.sh runs `openssl ocsp` with it on 127.0.0.1:9107, the AIA of
# the SIM certificates).  The CA may come from an earlier run.
make_mobile_ocsp() {
    local f
    for f in mobile-ca.pem mobile-ca.key; do
        [ -f "$work/$f" ] || cp -p "$out/$f" "$work/$f" || die "no $f to issue the OCSP responder"
    done
    issue_leaf mobile-ocsp mobile-ca v3_ocsp "$ORG/OU=Mobile Signature CA/CN=Darvaza Demo Mobile Signature OCSP Responder"
}

# make_tsa: the time-stamping authority and the e-court's client
# certificate, both from the gateway CA (which may come from an earlier run).
make_tsa() {
    local f
    for f in gateway-ca.pem gateway-ca.key; do
        [ -f "$work/$f" ] || cp -p "$out/$f" "$work/$f" || die "no $f to issue the TSA"
    done
    issue_leaf tsa gateway-ca v3_tsa "$ORG/OU=Time-Stamping Authority/CN=Darvaza Demo TSA"
    issue_leaf court-client gateway-ca v3_tls_client "$ORG/OU=E-Court/CN=darvaza-court"
}

# make_chains: PEM bundles (issuing CA + root) that the gateway's cards: and
# mobile: sections trust for client certificates.
made_or_old() { if [ -f "$work/$1" ]; then echo "$work/$1"; else echo "$out/$1"; fi; }
make_chains() {
    cat "$(made_or_old esign-ca.pem)" "$work/root.pem" >"$work/esign-chain.pem"
    cat "$(made_or_old mobile-ca.pem)" "$work/root.pem" >"$work/mobile-chain.pem"
}

# Components: "MARKER FUNCTION".  A component is made when OUTDIR/MARKER is
# missing (or with --force, or when the root is new), so a PKI made before a
# component existed gains it on the next run, signed by the same root.
COMPONENTS=(
    "gateway-ca.pem make_gateway_pki"
    "esign-ca.pem make_esign_pki"
    "mobile-ca.pem make_mobile_pki"
    "esign-chain.pem make_chains"
    "esign-ocsp.pem make_esign_ocsp"
    "tsa.pem make_tsa"
    "mobile-ocsp.pem make_mobile_ocsp"
)

# make_keys DIR: the gateway's own secrets, each only when missing.
make_keys() {
    local dir=$1 k
    mkdir -p "$dir"
    chmod 700 "$dir"
    for k in assertion-k1 assertion-k2; do
        [ -f "$dir/$k.pem" ] || new_key "$dir/$k.pem" prime256v1
    done
    if [ ! -f "$dir/mssp-rp.secret" ]; then
        # The gateway's bearer secret at the demo MSSP (relying party).
        (umask 077 && openssl rand -hex 24 >"$dir/mssp-rp.secret") || die "cannot make secret"
    fi
    if [ ! -f "$dir/seed.key" ]; then
        (umask 077 && openssl rand -hex 32 >"$dir/seed.key.tmp") || die "cannot make seed"
        chmod 600 "$dir/seed.key.tmp"
        mv "$dir/seed.key.tmp" "$dir/seed.key"
    fi
}

main() {
    local force=0 out="" keys="" new_root=0 made=0 c marker fn f
    while [ $# -gt 0 ]; do
        case $1 in
        --force) force=1 ;;
        -h|--help) usage ;;
        -*) echo "mkpki: unknown option $1" >&2; usage ;;
        *) if [ -z "$out" ]; then out=$1; elif [ -z "$keys" ]; then keys=$1; else usage; fi ;;
        esac
        shift
    done
    [ -n "$out" ] || usage
    command -v openssl >/dev/null || die "openssl is not installed"
    [ -f "$CNF" ] || die "missing $CNF"
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    [ -n "$keys" ] || keys=$(dirname "$out")/keys

    make_keys "$keys"
    if [ $force -eq 1 ] || [ ! -f "$out/root.pem" ] || [ ! -f "$out/root.key" ]; then
        new_root=1
    fi

    work=$(mktemp -d "$out/.mkpki.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if [ $new_root -eq 1 ]; then
        make_root root "Darvaza Demo Root CA"
    else
        cp "$out/root.pem" "$out/root.key" "$work/"
    fi
    for c in "${COMPONENTS[@]}"; do
        marker=${c%% *}
        fn=${c#* }
        if [ $new_root -eq 1 ] || [ ! -f "$out/$marker" ]; then
            "$fn"
            made=1
        fi
    done
    if [ $new_root -eq 0 ] && [ $made -eq 0 ]; then
        echo "mkpki: $out is complete, nothing to do (--force to remake)"
        return 0
    fi

    # Private keys stay 0600; certificates are public.
    chmod 644 "$work"/*.pem
    if [ $new_root -eq 1 ]; then
        rm -f "$out/root.pem"
    else
        rm -f "$work/root.pem" "$work/root.key"
    fi
    for f in "$work"/*; do
        [ "$(basename "$f")" = root.pem ] || mv -f "$f" "$out/"
    done
    [ $new_root -eq 0 ] || mv "$work/root.pem" "$out/root.pem"
    echo "mkpki: demo PKI in $out, keys in $keys"
}

main "$@"
