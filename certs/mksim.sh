#!/usr/bin/env bash
# mksim.sh - makes the SIM keys and certificates of demo mobile-signature
# holders under the demo PKI's Mobile Signature CA (certs/mkpki.sh), with the
# openssl CLI only.
#
#   certs/mksim.sh [--revoked HOLDER]... [--judge HOLDER]... CERTDIR OUTDIR HOLDER...
#
#   HOLDER   FIN:PHONE:PIN[:Given Surname]   e.g. 1AB2C3D:+994501234567:1234:Aysel Məmmədova
#   CERTDIR  holds mobile-ca.pem and mobile-ca.key (certs/mkpki.sh OUTDIR)
#   --revoked HOLDER   one more holder whose certificate is issued and then
#                      marked revoked (keyCompromise) in the index and the CRL
#   --judge HOLDER     one more holder whose certificate also carries the judge
#                      marks (subject title=Judge and policy 1.3.6.1.4.1.55555.1.2.1
#                      besides the mobile policy): a judge's SIM, which signs
#                      them in with the role judge (docs/cards.md "Judges' SIMs")
#
# For each holder, in OUTDIR:
#   sim-<FIN>.key  EC P-256 private key, PKCS#8 encrypted PEM (AES-256-CBC,
#                  PBKDF2) with the PIN as passphrase: only the PIN opens it
#   sim-<FIN>.pem  the certificate (leaf only; the chain is mobile-ca.pem):
#                  subject C=AZ, GN/SN (when the name has two words), CN=name,
#                  serialNumber=PNOAZ-<FIN>; policy 1.3.6.1.4.1.55555.1.1.2;
#                  keyUsage critical digitalSignature, nonRepudiation;
#                  AIA OCSP http://127.0.0.1:9107/;
#                  CRL DP http://127.0.0.1:9107/mobile.crl
# and, for all of them together:
#   phones.json        the MSSP's --phones file [{"phone","fin","cert_file"}],
#                      every holder (the revoked one too: the MSSP does not
#                      know about revocation, the relying party must find out)
#   holders.json       [{"fin","phone","name","key","cert","serial","revoked"}]
#                      (no PINs), for scripts
#   mobile-index.txt   openssl `ca` index (V/R lines) for `openssl ocsp -index`
#   mobile-index.txt.attr
#   mobile.crl         CRL of the Mobile Signature CA (PEM), next update in 30 days
#
# Idempotent: a holder whose key and certificate exist, verify under the
# current mobile CA and belong together is kept (its key is not remade: the
# PIN would change under the user); the index, CRL and JSON files are
# rebuilt from the arguments on every run.  PINs never appear in argv of
# the openssl processes (they go through a file descriptor).
set -euo pipefail

POLICY_MOBILE=1.3.6.1.4.1.55555.1.1.2
POLICY_JUDGE=1.3.6.1.4.1.55555.1.2.1
OCSP_URL=http://127.0.0.1:9107/
CRL_URL=http://127.0.0.1:9107/mobile.crl
LEAF_DAYS=397
CRL_DAYS=30

die() { echo "mksim: $*" >&2; exit 1; }
usage() {
    echo "usage: $0 [--revoked FIN:PHONE:PIN[:NAME]]... [--judge FIN:PHONE:PIN[:NAME]]... CERTDIR OUTDIR FIN:PHONE:PIN[:NAME]..." >&2
    exit 2
}

# serial: 128 random bits, positive (top bit clear), as upper-case hex.
serial() {
    local s
    s=$(openssl rand -hex 16)
    printf '%X%s' $(( 0x${s:0:1} & 7 )) "${s:1}" | tr 'a-f' 'A-F'
}

# parse_holder SPEC: sets H_FIN H_PHONE H_PIN H_NAME or dies.
parse_holder() {
    local spec=$1 rest
    H_FIN=${spec%%:*}; rest=${spec#*:}
    [ "$rest" != "$spec" ] || die "holder '$spec' is not FIN:PHONE:PIN[:NAME]"
    H_PHONE=${rest%%:*}; rest=${rest#*:}
    H_PIN=${rest%%:*}
    if [ "$rest" = "$H_PIN" ]; then H_NAME=""; else H_NAME=${rest#*:}; fi
    [[ "$H_FIN" =~ ^[0-9A-Za-z]{7}$ ]] || die "bad FIN '$H_FIN' (7 letters or digits)"
    H_FIN=$(printf '%s' "$H_FIN" | tr 'a-z' 'A-Z')
    [[ "$H_PHONE" =~ ^\+[1-9][0-9]{6,14}$ ]] || die "bad phone '$H_PHONE' for $H_FIN (+ and 7..15 digits)"
    [[ "$H_PIN" =~ ^[0-9]{4,8}$ ]] || die "bad PIN for $H_FIN (4..8 digits)"
    # Any UTF-8 name (Azerbaijani letters included), but nothing that means
    # something in an openssl -subj string, and no control characters.
    [ "$(printf '%s' "$H_NAME" | wc -c)" -le 64 ] && [[ "$H_NAME" != *[/=+\\,:\"]* ]] &&
        ! printf '%s' "$H_NAME" | LC_ALL=C grep -q '[[:cntrl:]]' ||
        die "bad name for $H_FIN (at most 64 bytes, none of / = + \\ , : \" or control characters)"
    [ -n "$H_NAME" ] || H_NAME="Mobile Holder $H_FIN"
}

# subject NAME FIN JUDGE: the holder's DN for openssl -subj (JUDGE 1: with
# title=Judge).
subject() {
    local name=$1 fin=$2 judge=$3 given surname title=""
    [ "$judge" = 1 ] && title="/title=Judge"
    if [[ "$name" =~ ^([^ ]+)\ ([^ ]+)$ ]]; then
        given=${BASH_REMATCH[1]}
        surname=${BASH_REMATCH[2]}
        printf '/C=AZ/GN=%s/SN=%s/CN=%s/serialNumber=PNOAZ-%s%s' "$given" "$surname" "$name" "$fin" "$title"
    else
        printf '/C=AZ/CN=%s/serialNumber=PNOAZ-%s%s' "$name" "$fin" "$title"
    fi
}

# is_judge_cert CERT: 1 when it carries the judge policy, else 0.
is_judge_cert() {
    if openssl x509 -in "$1" -noout -text 2>/dev/null | grep -q "$POLICY_JUDGE"; then echo 1; else echo 0; fi
}

# valid_pair KEY CERT PIN JUDGE: the certificate verifies under the mobile
# CA, is the key's and carries the judge marks exactly when JUDGE is 1.
valid_pair() {
    local key=$1 cert=$2 pin=$3 judge=$4 a b
    [ -s "$key" ] && [ -s "$cert" ] || return 1
    [ "$(is_judge_cert "$cert")" = "$judge" ] || return 1
    openssl verify -CAfile "$CAS" "$cert" >/dev/null 2>&1 || return 1
    a=$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null | openssl sha256 -r) || return 1
    b=$(openssl pkey -in "$key" -passin fd:3 -pubout 2>/dev/null 3<<<"$pin" | openssl sha256 -r) || return 1
    [ "$a" = "$b" ]
}

# issue FIN PIN NAME JUDGE: makes OUTDIR/sim-FIN.key and .pem (in $work first).
issue() {
    local fin=$1 pin=$2 name=$3 judge=$4 k c ext=v3_mobile_sim
    [ "$judge" = 1 ] && ext=v3_mobile_judge
    k="$work/sim-$fin.key"
    c="$work/sim-$fin.pem"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
        -pkeyopt ec_param_enc:named_curve -aes-256-cbc -pass fd:3 -out "$k" 3<<<"$pin" \
        2>/dev/null) || die "cannot make the key of $fin"
    openssl req -new -config "$work/req.cnf" -key "$k" -passin fd:3 -utf8 \
        -subj "$(subject "$name" "$fin" "$judge")" -out "$work/$fin.csr" 3<<<"$pin" 2>/dev/null ||
        die "cannot make the request of $fin"
    openssl x509 -req -in "$work/$fin.csr" -CA "$CERTDIR/mobile-ca.pem" \
        -CAkey "$CERTDIR/mobile-ca.key" -set_serial "0x$(serial)" -days "$LEAF_DAYS" -sha256 \
        -extfile "$work/ext.cnf" -extensions "$ext" -out "$c" 2>/dev/null ||
        die "cannot sign the certificate of $fin"
    rm -f "$work/$fin.csr"
    openssl verify -CAfile "$CAS" "$c" >/dev/null || die "the certificate of $fin does not verify"
    chmod 600 "$k"
    chmod 644 "$c"
    mv -f "$k" "$OUTDIR/sim-$fin.key"
    mv -f "$c" "$OUTDIR/sim-$fin.pem"
}

# index_line V|R CERT: one line of an openssl ca index.txt.
index_line() {
    local st=$1 cert=$2 end exp ser dn rev=""
    end=$(openssl x509 -in "$cert" -noout -enddate | cut -d= -f2)
    exp=$(date -u -d "$end" +%y%m%d%H%M%SZ)
    ser=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
    dn=$(openssl x509 -in "$cert" -noout -subject -nameopt compat | sed 's/^subject=//')
    [ "$st" = R ] && rev="$(date -u +%y%m%d%H%M%SZ),keyCompromise"
    printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$st" "$exp" "$rev" "$ser" "$dn"
}

main() {
    local specs=() revoked=() judges=() args=() all=() s st judge
    while [ $# -gt 0 ]; do
        case $1 in
        --revoked) [ $# -ge 2 ] || usage; revoked+=("$2"); shift ;;
        --judge) [ $# -ge 2 ] || usage; judges+=("$2"); shift ;;
        -h|--help) usage ;;
        -*) echo "mksim: unknown option $1" >&2; usage ;;
        *) args+=("$1") ;;
        esac
        shift
    done
    [ ${#args[@]} -ge 2 ] || usage
    [ ${#args[@]} -ge 3 ] || [ ${#revoked[@]} -gt 0 ] || [ ${#judges[@]} -gt 0 ] || usage
    CERTDIR=${args[0]}
    OUTDIR=${args[1]}
    specs=("${args[@]:2}")
    command -v openssl >/dev/null || die "openssl is not installed"
    command -v jq >/dev/null || die "jq is not installed"
    [ -f "$CERTDIR/mobile-ca.pem" ] && [ -f "$CERTDIR/mobile-ca.key" ] ||
        die "no mobile-ca.pem/.key in $CERTDIR (run certs/mkpki.sh $CERTDIR first)"
    [ -f "$CERTDIR/root.pem" ] || die "no root.pem in $CERTDIR"
    mkdir -p "$OUTDIR"
    OUTDIR=$(cd "$OUTDIR" && pwd)
    CERTDIR=$(cd "$CERTDIR" && pwd)

    work=$(mktemp -d "$OUTDIR/.mksim.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    CAS="$work/cas.pem"
    cat "$CERTDIR/root.pem" "$CERTDIR/mobile-ca.pem" >"$CAS"
    cat >"$work/req.cnf" <<'EOF'
[req]
distinguished_name = req_dn
prompt             = no
[req_dn]
CN = unused
EOF
    cat >"$work/ext.cnf" <<EOF
[v3_mobile_sim]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = $POLICY_MOBILE
authorityInfoAccess    = OCSP;URI:$OCSP_URL
crlDistributionPoints  = URI:$CRL_URL
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[v3_mobile_judge]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = $POLICY_MOBILE, $POLICY_JUDGE
authorityInfoAccess    = OCSP;URI:$OCSP_URL
crlDistributionPoints  = URI:$CRL_URL
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF

    : >"$work/index.txt"
    echo '[]' >"$work/phones.json"
    echo '[]' >"$work/holders.json"
    declare -A seen_fin=() seen_phone=()
    for s in "${specs[@]}"; do all+=("V|$s"); done
    for s in "${revoked[@]}"; do all+=("R|$s"); done
    for s in "${judges[@]}"; do all+=("J|$s"); done
    for s in "${all[@]}"; do
        st=${s%%|*}
        judge=0
        [ "$st" = J ] && judge=1 && st=V
        parse_holder "${s#*|}"
        [ -z "${seen_fin[$H_FIN]:-}" ] || die "FIN $H_FIN given twice"
        [ -z "${seen_phone[$H_PHONE]:-}" ] || die "phone $H_PHONE given twice"
        seen_fin[$H_FIN]=1
        seen_phone[$H_PHONE]=1
        if valid_pair "$OUTDIR/sim-$H_FIN.key" "$OUTDIR/sim-$H_FIN.pem" "$H_PIN" "$judge"; then
            :
        else
            issue "$H_FIN" "$H_PIN" "$H_NAME" "$judge"
        fi
        index_line "$st" "$OUTDIR/sim-$H_FIN.pem" >>"$work/index.txt"
        jq --arg p "$H_PHONE" --arg f "$H_FIN" --arg c "sim-$H_FIN.pem" \
            '. + [{phone:$p, fin:$f, cert_file:$c}]' "$work/phones.json" >"$work/j" &&
            mv "$work/j" "$work/phones.json"
        jq --arg p "$H_PHONE" --arg f "$H_FIN" --arg n "$H_NAME" \
            --arg k "sim-$H_FIN.key" --arg c "sim-$H_FIN.pem" \
            --arg s "$(openssl x509 -in "$OUTDIR/sim-$H_FIN.pem" -noout -serial | cut -d= -f2)" \
            --argjson r "$([ "$st" = R ] && echo true || echo false)" \
            --argjson j "$([ "$judge" = 1 ] && echo true || echo false)" \
            '. + [{fin:$f, phone:$p, name:$n, key:$k, cert:$c, serial:$s, revoked:$r, judge:$j}]' \
            "$work/holders.json" >"$work/j" && mv "$work/j" "$work/holders.json"
    done

    # The CRL, with openssl ca over the index just written.
    echo 'unique_subject = no' >"$work/index.txt.attr"
    echo 01 >"$work/crlnumber"
    cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = mobile
[mobile]
database         = $work/index.txt
crlnumber        = $work/crlnumber
certificate      = $CERTDIR/mobile-ca.pem
private_key      = $CERTDIR/mobile-ca.key
default_md       = sha256
default_crl_days = $CRL_DAYS
crl_extensions   = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
    openssl ca -config "$work/ca.cnf" -gencrl -out "$work/mobile.crl" 2>/dev/null ||
        die "cannot make the CRL"

    mv -f "$work/index.txt" "$OUTDIR/mobile-index.txt"
    mv -f "$work/index.txt.attr" "$OUTDIR/mobile-index.txt.attr"
    mv -f "$work/mobile.crl" "$OUTDIR/mobile.crl"
    mv -f "$work/phones.json" "$OUTDIR/phones.json"
    mv -f "$work/holders.json" "$OUTDIR/holders.json"
    chmod 644 "$OUTDIR/phones.json" "$OUTDIR/holders.json" "$OUTDIR/mobile-index.txt" \
        "$OUTDIR/mobile-index.txt.attr" "$OUTDIR/mobile.crl"
    echo "mksim: ${#all[@]} SIM holders in $OUTDIR (${#revoked[@]} revoked)"
}

main "$@"
