#!/usr/bin/env bash
# mkpki.sh - makes the darvaza demo PKI with the openssl CLI only.
#
#   certs/mkpki.sh [--force] OUTDIR [KEYSDIR]
#
# OUTDIR gets the certificates and their TLS keys; KEYSDIR (default
# OUTDIR/../keys) gets the gateway's assertion signing keys and seed.
# Idempotent: when OUTDIR/root.pem exists nothing is done unless --force.
# Everything is built in a temporary directory and moved into place with
# root.pem last, so an interrupted run never leaves a half PKI that a later
# run would take as complete.  Keys in KEYSDIR are created only when missing
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
#   KEYSDIR/assertion-k1.pem, assertion-k2.pem  EC P-256 assertion signing keys (0600)
#   KEYSDIR/seed.key       64 hex characters (0600)
#
# Later CAs (e-signature cards, mobile signatures, OCSP, TSA) are one
# make_ca call plus leaf issuers in main() and a profile in pki.cnf.
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

# make_keys DIR: the gateway's own secrets, each only when missing.
make_keys() {
    local dir=$1 k
    mkdir -p "$dir"
    chmod 700 "$dir"
    for k in assertion-k1 assertion-k2; do
        [ -f "$dir/$k.pem" ] || new_key "$dir/$k.pem" prime256v1
    done
    if [ ! -f "$dir/seed.key" ]; then
        (umask 077 && openssl rand -hex 32 >"$dir/seed.key.tmp") || die "cannot make seed"
        chmod 600 "$dir/seed.key.tmp"
        mv "$dir/seed.key.tmp" "$dir/seed.key"
    fi
}

main() {
    local force=0 out="" keys=""
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
    if [ -f "$out/root.pem" ] && [ $force -eq 0 ]; then
        echo "mkpki: $out/root.pem exists, nothing to do (--force to remake)"
        return 0
    fi

    work=$(mktemp -d "$out/.mkpki.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    make_root root "Darvaza Demo Root CA"
    make_gateway_pki

    # Private keys stay 0600; certificates are public.
    chmod 644 "$work"/*.pem
    rm -f "$out/root.pem"
    local f
    for f in "$work"/*; do
        [ "$(basename "$f")" = root.pem ] || mv -f "$f" "$out/"
    done
    mv "$work/root.pem" "$out/root.pem"
    echo "mkpki: demo PKI in $out, keys in $keys"
}

main "$@"
