#!/usr/bin/env bash
# make_pki_corpus.sh - regenerates the seed corpora of fuzz_ocsp_response and
# fuzz_tsp_response, and the fixture both targets check them against
# (tests/fuzz/pki_fixture.h), from real answers of the demo's responders.
#
#   unshare --net bash -c 'ip link set lo up && tests/fuzz/make_pki_corpus.sh'
#
# (in a private network namespace: it listens on loopback ports that a
# running demo or another test may hold; without unshare pick free ones with
# OCSP_PORT / TSA_PORT.)  BUILD_DIR (default build) has darvaza-peer.
#
# What it does:
#  1. a fresh demo PKI with certs/mkpki.sh (root, E-Signature CA and its
#     delegated OCSP responder, Mobile CA responder, gateway CA, TSA);
#  2. three card-like certificates from the E-Signature CA with `openssl ca`
#     (the database `openssl ocsp -index` serves, as certs/mkcards.sh does):
#     one good, one revoked (keyCompromise), one never entered (unknown);
#     plus a rogue CA and rogue OCSP responder / TSA certificates with the
#     same names as the real ones but other keys;
#  3. OCSP: one OCSPRequest per certificate (`openssl ocsp -reqout`, with a
#     nonce) sent to `openssl ocsp` run as demo/stack_cards.sh runs it, and
#     the same good request to responders that must not be believed;
#  4. TSP: TimeStampReqs (`openssl ts -query`) posted to `darvaza-peer tsa`
#     (h2c), the real one and one holding the rogue certificate;
#  5. malformed ones cut or altered from the real answers (python3);
#  6. pki_fixture.h: the certificates (and two signing keys), the fixed
#     requests (OCSP request DER, TSP digest and nonce), the time "now" of
#     the checks, and every seed's
#     SHA-256 with the verdict it must get - the targets assert it when they
#     meet a seed, so the replay fails if a verdict changes.
#
# The working directory is thrown away at the end; the fixture keeps the
# certificates and, so that the targets can re-sign mutated answers, the keys
# of the delegated OCSP responder and of the TSA (of this throwaway PKI
# only: nothing trusts it).  Rerunning replaces the corpora's seed files
# (named ocsp-* / tsp-*) and the fixture together; inputs libFuzzer found
# and that were committed (named by their SHA-1) stay: they were mutated
# from the old seeds, and are still valid inputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
PEER="$ROOT/$BUILD_DIR/darvaza-peer"
OCSP_PORT=${OCSP_PORT:-9105}
TSA_PORT=${TSA_PORT:-9104}
OCSP_CORPUS="$ROOT/tests/fuzz/corpus/ocsp_response"
TSP_CORPUS="$ROOT/tests/fuzz/corpus/tsp_response"
FIXTURE="$ROOT/tests/fuzz/pki_fixture.h"

die() { echo "make_pki_corpus: $*" >&2; exit 1; }
for t in openssl curl python3; do command -v $t >/dev/null || die "$t is not installed"; done
[ -x "$PEER" ] || die "no $PEER (make $BUILD_DIR/darvaza-peer)"

W=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
C="$W/certs"
mkdir -p "$W/issued" "$W/ocsp" "$W/tsp"

# ---- 1. the demo PKI ----------------------------------------------------------
"$ROOT/certs/mkpki.sh" "$C" "$W/keys" >/dev/null

# ---- 2. card-like certificates, rogue look-alikes -----------------------------
cat >"$W/ca.cnf" <<EOF
[ca]
default_ca = esign
[esign]
database        = $C/esign-index.txt
new_certs_dir   = $W/issued
certificate     = $C/esign-ca.pem
private_key     = $C/esign-ca.key
serial          = $W/serial
default_md      = sha256
default_days    = 397
policy          = any
unique_subject  = no
[any]
commonName      = supplied
# The card signing profile of certs/mkcards.sh (what matters to OCSP:
# issuer, serial, the AIA naming the responder).
[card_sign]
basicConstraints       = critical, CA:false
keyUsage               = critical, nonRepudiation
certificatePolicies    = 1.3.6.1.4.1.55555.1.1.1
authorityInfoAccess    = OCSP;URI:http://127.0.0.1:9105/
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
: >"$C/esign-index.txt"
echo "unique_subject = no" >"$C/esign-index.txt.attr"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
serial() { local s; s=$(openssl rand -hex 16); printf '%x%s' $(( (0x${s:0:1} & 7) | 1 )) "${s:1}"; }
csr() { openssl req -new -config "$ROOT/certs/pki.cnf" -key "$1" -subj "$2" -out "$3"; }

# card NAME CN: issued through `openssl ca` (so it is in the index).
card() {
    key "$W/$1.key"
    csr "$W/$1.key" "/C=AZ/O=Darvaza Demo/CN=$2" "$W/$1.csr"
    serial >"$W/serial"
    openssl ca -batch -notext -config "$W/ca.cnf" -extensions card_sign \
        -in "$W/$1.csr" -out "$W/$1.pem" 2>/dev/null || die "cannot issue $1"
}
card good "Fuzz Good Holder"
card revoked "Fuzz Revoked Holder"
openssl ca -config "$W/ca.cnf" -revoke "$W/revoked.pem" -crl_reason keyCompromise 2>/dev/null \
    || die "cannot revoke"
# unknown: signed by the CA but never entered into its database.
key "$W/unknown.key"
csr "$W/unknown.key" "/C=AZ/O=Darvaza Demo/CN=Fuzz Unknown Holder" "$W/unknown.csr"
openssl x509 -req -in "$W/unknown.csr" -CA "$C/esign-ca.pem" -CAkey "$C/esign-ca.key" \
    -set_serial "0x$(serial)" -days 397 -sha256 -extfile "$W/ca.cnf" -extensions card_sign \
    -out "$W/unknown.pem" 2>/dev/null

# rogue NAME ISSUER_PEM ISSUER_KEY PROFILE SUBJECT: a certificate whose names
# copy a real one, with a key of its own.
rogue() {
    key "$W/$1.key"
    csr "$W/$1.key" "$5" "$W/$1.csr"
    openssl x509 -req -in "$W/$1.csr" -CA "$2" -CAkey "$3" -set_serial "0x$(serial)" -days 397 \
        -sha256 -extfile "$ROOT/certs/pki.cnf" -extensions "$4" -out "$W/$1.pem" 2>/dev/null
}
subj() { openssl x509 -in "$1" -noout -subject -nameopt compat | sed 's/^subject=//'; }
# A self-signed CA named like the E-Signature CA, and like the gateway CA.
key "$W/rogue-esign-ca.key"
openssl req -new -x509 -config "$ROOT/certs/pki.cnf" -extensions v3_ca -key "$W/rogue-esign-ca.key" \
    -subj "$(subj "$C/esign-ca.pem")" -days 397 -out "$W/rogue-esign-ca.pem"
key "$W/rogue-gw-ca.key"
openssl req -new -x509 -config "$ROOT/certs/pki.cnf" -extensions v3_ca -key "$W/rogue-gw-ca.key" \
    -subj "$(subj "$C/gateway-ca.pem")" -days 397 -out "$W/rogue-gw-ca.pem"
rogue rogue-ocsp "$W/rogue-esign-ca.pem" "$W/rogue-esign-ca.key" v3_ocsp "$(subj "$C/esign-ocsp.pem")"
rogue rogue-tsa "$W/rogue-gw-ca.pem" "$W/rogue-gw-ca.key" v3_tsa "$(subj "$C/tsa.pem")"
cat "$W/rogue-tsa.pem" "$W/rogue-gw-ca.pem" >"$W/rogue-tsa-chain.pem"

# ---- 3. OCSP --------------------------------------------------------------------
# responder LOG ARGS...: `openssl ocsp` as demo/stack_cards.sh starts it
# (the index, -CA, -timeout, -ignore_err; -ndays 1 unless ARGS has
# -no_next_update), waiting for its banner.
responder() {
    local log=$1 i validity=(-ndays 1)
    shift
    if [ "${1:-}" = -no_next_update ]; then
        validity=()
        shift
    fi
    openssl ocsp -index "$C/esign-index.txt" -port "$OCSP_PORT" -CA "$C/esign-ca.pem" \
        "${validity[@]}" -timeout 5 -ignore_err "$@" >"$W/$log" 2>&1 &
    RESPONDER=$!
    PIDS+=("$RESPONDER")
    for i in $(seq 100); do
        grep -qs 'waiting for OCSP client connections' "$W/$log" && return 0
        sleep 0.1
    done
    die "openssl ocsp did not start ($log)"
}
stop_responder() { kill "$RESPONDER" 2>/dev/null || true; wait "$RESPONDER" 2>/dev/null || true; }
# ask OUT ARGS...: one exchange with the responder (the answer is not
# verified here: judging it is the target's job).
ask() {
    local out=$1
    shift
    openssl ocsp -issuer "$C/esign-ca.pem" -url "http://127.0.0.1:$OCSP_PORT/" -noverify \
        -respout "$W/ocsp/$out" "$@" >/dev/null 2>&1 || die "OCSP exchange $out failed"
}

# The fixed requests (each with its nonce) the target checks answers against.
for c in good revoked unknown; do
    openssl ocsp -issuer "$C/esign-ca.pem" -cert "$W/$c.pem" -reqout "$W/req-$c.der" >/dev/null 2>&1
done
NOW=$(date -u +%s)

responder ocsp-delegated.log -rsigner "$C/esign-ocsp.pem" -rkey "$C/esign-ocsp.key"
ask ocsp-good.der -reqin "$W/req-good.der"
ask ocsp-revoked.der -reqin "$W/req-revoked.der"
ask ocsp-unknown.der -reqin "$W/req-unknown.der"
ask ocsp-good-other-nonce.der -cert "$W/good.pem"      # a fresh nonce: a replayed answer
ask ocsp-good-no-nonce.der -cert "$W/good.pem" -no_nonce
stop_responder
# Without -ndays the answer has no nextUpdate (believed only while recent).
responder ocsp-no-next.log -no_next_update -rsigner "$C/esign-ocsp.pem" -rkey "$C/esign-ocsp.key"
ask ocsp-good-no-next-update.der -reqin "$W/req-good.der"
stop_responder
responder ocsp-keyid.log -rsigner "$C/esign-ocsp.pem" -rkey "$C/esign-ocsp.key" -resp_key_id
ask ocsp-good-by-keyid.der -reqin "$W/req-good.der"
stop_responder
responder ocsp-nocerts.log -rsigner "$C/esign-ocsp.pem" -rkey "$C/esign-ocsp.key" -resp_no_certs
ask ocsp-good-no-certs.der -reqin "$W/req-good.der"
stop_responder
responder ocsp-issuer.log -rsigner "$C/esign-ca.pem" -rkey "$C/esign-ca.key"
ask ocsp-good-by-issuer.der -reqin "$W/req-good.der"
ask ocsp-revoked-by-issuer.der -reqin "$W/req-revoked.der"
stop_responder
# Wrong signers: the Mobile CA's responder (delegated by another CA), and a
# look-alike of the E-Signature responder under a look-alike CA.
responder ocsp-mobile.log -rsigner "$C/mobile-ocsp.pem" -rkey "$C/mobile-ocsp.key"
ask ocsp-good-wrong-responder.der -reqin "$W/req-good.der"
stop_responder
responder ocsp-rogue.log -rsigner "$W/rogue-ocsp.pem" -rkey "$W/rogue-ocsp.key" \
    -rother "$W/rogue-esign-ca.pem"
ask ocsp-good-rogue-signer.der -reqin "$W/req-good.der"
stop_responder

# ---- 4. TSP ---------------------------------------------------------------------
DOC_DIGEST=$(printf 'darvaza fuzz: the document the signature covers\n' | sha256sum | cut -c1-64)
OTHER_DIGEST=$(printf 'darvaza fuzz: another document\n' | sha256sum | cut -c1-64)
tsq() { openssl ts -query "$@" 2>/dev/null; }
tsq -digest "$DOC_DIGEST" -sha256 -cert -out "$W/tsp/req.tsq"
NONCE=$(tsq -in "$W/tsp/req.tsq" -text | sed -n 's/^Nonce: 0x//p')
[ -n "$NONCE" ] || die "no nonce in the TimeStampReq"
NONCE=$(printf '%016s' "$NONCE" | tr ' ' 0)
tsq -digest "$DOC_DIGEST" -sha256 -cert -out "$W/tsp/req-other-nonce.tsq"
tsq -digest "$OTHER_DIGEST" -sha256 -cert -out "$W/tsp/req-other-digest.tsq"
tsq -digest "$DOC_DIGEST" -sha256 -out "$W/tsp/req-no-cert.tsq"
tsq -digest "$(printf x | sha384sum | cut -c1-96)" -sha384 -cert -out "$W/tsp/req-sha384.tsq"
tsq -digest "$(printf x | sha1sum | cut -c1-40)" -sha1 -cert -out "$W/tsp/req-sha1.tsq"
printf 'not a TimeStampReq' >"$W/tsp/req-garbage.tsq"

# tsa LOG CERT KEY: `darvaza-peer tsa` as demo/stack_documents.sh starts it.
tsa() {
    local i
    "$PEER" tsa --listen "127.0.0.1:$TSA_PORT" --cert "$2" --key "$3" >"$W/$1" 2>&1 &
    TSA=$!
    PIDS+=("$TSA")
    for i in $(seq 100); do
        curl -sf --http2-prior-knowledge --max-time 2 "http://127.0.0.1:$TSA_PORT/_peer/requests" \
            >/dev/null && return 0
        sleep 0.1
    done
    die "darvaza-peer tsa did not start ($1)"
}
stop_tsa() { kill "$TSA" 2>/dev/null || true; wait "$TSA" 2>/dev/null || true; }
stamp() {
    curl -sf --http2-prior-knowledge --max-time 5 -H 'content-type: application/timestamp-query' \
        --data-binary "@$W/tsp/$2" -o "$W/tsp/$1" "http://127.0.0.1:$TSA_PORT/" \
        || die "TSA exchange $1 failed"
}
tsa tsa.log "$C/tsa.pem" "$C/tsa.key"
stamp tsp-granted.der req.tsq
stamp tsp-granted-other-nonce.der req-other-nonce.tsq
stamp tsp-granted-other-digest.der req-other-digest.tsq
stamp tsp-granted-no-cert.der req-no-cert.tsq
stamp tsp-granted-sha384.der req-sha384.tsq
stamp tsp-rejection-sha1.der req-sha1.tsq
stamp tsp-rejection-garbage.der req-garbage.tsq
stop_tsa
tsa tsa-rogue.log "$W/rogue-tsa-chain.pem" "$W/rogue-tsa.key"
stamp tsp-granted-rogue-tsa.der req.tsq
stop_tsa

# ---- 5 and 6. malformed seeds, the corpora, the fixture ---------------------------
rm -f "$OCSP_CORPUS"/ocsp-* "$TSP_CORPUS"/tsp-*
mkdir -p "$OCSP_CORPUS" "$TSP_CORPUS"
python3 - "$W" "$OCSP_CORPUS" "$TSP_CORPUS" "$FIXTURE" "$NOW" "$DOC_DIGEST" "$NONCE" <<'PY'
import hashlib, os, re, subprocess, sys

w, ocorp, tcorp, fixture, now, digest, nonce = sys.argv[1:]
C = os.path.join(w, "certs")

def rd(p):
    with open(p, "rb") as f:
        return f.read()

def pem1(path):
    """The first certificate of a PEM file."""
    t = rd(path).decode()
    return t[: t.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"

def der_serial(pem_path):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-noout", "-serial"],
                         check=True, capture_output=True, text=True).stdout
    return bytes.fromhex(out.strip().split("=")[1])

def flip_in(data, needle):
    """data with the last byte of the first copy of needle flipped."""
    i = data.index(needle) + len(needle) - 1
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]

# (file, bytes, case, rc with the request, rc with no request, status)
# case: 0 good, 1 revoked, 2 unknown certificate; status for rc 0 only.
O = []
def ocsp(name, data, case, rc_req, rc_noreq, status="GOOD"):
    O.append((name, data, case, rc_req, rc_noreq, status))

g = rd(f"{w}/ocsp/ocsp-good.der")
ocsp("ocsp-good.der", g, 0, "0", "0")
ocsp("ocsp-revoked.der", rd(f"{w}/ocsp/ocsp-revoked.der"), 1, "0", "0", "REVOKED")
ocsp("ocsp-unknown.der", rd(f"{w}/ocsp/ocsp-unknown.der"), 2, "0", "0", "UNKNOWN")
ocsp("ocsp-good-no-next-update.der", rd(f"{w}/ocsp/ocsp-good-no-next-update.der"), 0, "0", "0")
ocsp("ocsp-good-by-keyid.der", rd(f"{w}/ocsp/ocsp-good-by-keyid.der"), 0, "0", "0")
ocsp("ocsp-good-by-issuer.der", rd(f"{w}/ocsp/ocsp-good-by-issuer.der"), 0, "0", "0")
ocsp("ocsp-revoked-by-issuer.der", rd(f"{w}/ocsp/ocsp-revoked-by-issuer.der"), 1, "0", "0",
     "REVOKED")
ocsp("ocsp-good-other-nonce.der", rd(f"{w}/ocsp/ocsp-good-other-nonce.der"), 0,
     "DZ_ERR_DENIED", "0")
ocsp("ocsp-good-no-nonce.der", rd(f"{w}/ocsp/ocsp-good-no-nonce.der"), 0, "DZ_ERR_DENIED", "0")
ocsp("ocsp-good-no-certs.der", rd(f"{w}/ocsp/ocsp-good-no-certs.der"), 0,
     "DZ_ERR_DENIED", "DZ_ERR_DENIED")
ocsp("ocsp-good-wrong-responder.der", rd(f"{w}/ocsp/ocsp-good-wrong-responder.der"), 0,
     "DZ_ERR_DENIED", "DZ_ERR_DENIED")
ocsp("ocsp-good-rogue-signer.der", rd(f"{w}/ocsp/ocsp-good-rogue-signer.der"), 0,
     "DZ_ERR_DENIED", "DZ_ERR_DENIED")
# The revoked answer relabelled with the good certificate's serial (same
# length: the DER stays well formed): the signature no longer holds.
rv = rd(f"{w}/ocsp/ocsp-revoked.der")
gs, rs = der_serial(f"{w}/good.pem"), der_serial(f"{w}/revoked.pem")
if len(gs) == len(rs):
    ocsp("ocsp-revoked-relabelled.der", rv.replace(rs, gs, 1), 0, "DZ_ERR_DENIED", "DZ_ERR_DENIED")
ocsp("ocsp-good-serial-flipped.der", flip_in(g, gs), 0, "DZ_ERR_DENIED", "DZ_ERR_DENIED")
ocsp("ocsp-good-truncated.der", g[: len(g) // 2], 0, "DZ_ERR_PARSE", "DZ_ERR_PARSE")
ocsp("ocsp-good-trailing.der", g + b"\x00", 0, "DZ_ERR_PARSE", "DZ_ERR_PARSE")
ocsp("ocsp-trylater.der", bytes.fromhex("30030a0103"), 0, "DZ_ERR_UNAVAILABLE",
     "DZ_ERR_UNAVAILABLE")
ocsp("ocsp-empty.der", b"", 0, "DZ_ERR_PARSE", "DZ_ERR_PARSE")

T = []
def tsp(name, data, rc):
    T.append((name, data, rc))

tg = rd(f"{w}/tsp/tsp-granted.der")
tsp("tsp-granted.der", tg, "0")
tsp("tsp-granted-other-nonce.der", rd(f"{w}/tsp/tsp-granted-other-nonce.der"), "DZ_ERR_DENIED")
tsp("tsp-granted-other-digest.der", rd(f"{w}/tsp/tsp-granted-other-digest.der"), "DZ_ERR_DENIED")
tsp("tsp-granted-no-cert.der", rd(f"{w}/tsp/tsp-granted-no-cert.der"), "DZ_ERR_DENIED")
tsp("tsp-granted-sha384.der", rd(f"{w}/tsp/tsp-granted-sha384.der"), "DZ_ERR_DENIED")
tsp("tsp-granted-rogue-tsa.der", rd(f"{w}/tsp/tsp-granted-rogue-tsa.der"), "DZ_ERR_DENIED")
tsp("tsp-rejection-sha1.der", rd(f"{w}/tsp/tsp-rejection-sha1.der"), "DZ_ERR_UNAVAILABLE")
tsp("tsp-rejection-garbage.der", rd(f"{w}/tsp/tsp-rejection-garbage.der"), "DZ_ERR_UNAVAILABLE")
tsp("tsp-granted-imprint-flipped.der", flip_in(tg, bytes.fromhex(digest)), "DZ_ERR_DENIED")
tsp("tsp-granted-truncated.der", tg[: len(tg) // 2], "DZ_ERR_PARSE")
tsp("tsp-granted-trailing.der", tg + b"\x00", "DZ_ERR_PARSE")
tsp("tsp-empty.der", b"", "DZ_ERR_PARSE")

for d, items in ((ocorp, O), (tcorp, T)):
    for it in items:
        with open(os.path.join(d, it[0]), "wb") as f:
            f.write(it[1])

def cstr(name, text):
    lines = "".join(f'    "{l}\\n"\n' for l in text.rstrip("\n").split("\n"))
    return f"static const char {name}[] =\n{lines[:-1]};\n"

def carr(name, data):
    body = ", ".join(f"0x{b:02x}" for b in data)
    return f"static const unsigned char {name}[] = {{{body}}};\n"

out = []
out.append("""/*
 * pki_fixture.h - GENERATED by tests/fuzz/make_pki_corpus.sh: do not edit.
 * The demo-PKI material that fuzz_ocsp_response and fuzz_tsp_response check
 * answers against, the time of the checks, and the verdict each committed
 * seed must get.  The responder's and the TSA's keys are here so that the
 * targets can re-sign a mutated answer (and reach the checks behind the
 * signature); they belong to a throwaway PKI made for this fixture, which
 * nothing else trusts.
 */
#ifndef DZ_PKI_FIXTURE_H
#define DZ_PKI_FIXTURE_H

#include <stdint.h>

#include "base/err.h"

""")
out.append(f"#define FX_NOW INT64_C({now}) /* unix seconds the seeds were made at */\n\n")
out.append("/* A target defines FX_OCSP or FX_TSP for the half it uses. */\n")
out.append('#ifdef FX_OCSP\n#include "pki/ocsp.h"\n\n')
out.append(cstr("FX_ESIGN_CA_PEM", pem1(f"{C}/esign-ca.pem")))
out.append(cstr("FX_ESIGN_OCSP_PEM", pem1(f"{C}/esign-ocsp.pem")))
out.append(cstr("FX_ESIGN_OCSP_KEY_PEM", rd(f"{C}/esign-ocsp.key").decode()))
for c in ("good", "revoked", "unknown"):
    out.append(cstr(f"FX_LEAF_{c.upper()}_PEM", pem1(f"{w}/{c}.pem")))
    out.append(carr(f"FX_REQ_{c.upper()}", rd(f"{w}/req-{c}.der")))
out.append("""
struct fx_ocsp_seed {
    const char *name;
    const char *sha256; /* hex, of the file */
    int ocase;          /* 0 good, 1 revoked, 2 unknown certificate */
    int rc_req;         /* dz_ocsp_response_check with that case's request */
    int rc_noreq;       /* ... with no request (no nonce required) */
    enum dz_ocsp_status status; /* when rc is 0 */
};

static const struct fx_ocsp_seed FX_OCSP_SEEDS[] = {
""")
for n, d, case, rq, nr, st in O:
    out.append(f'    {{"{n}", "{hashlib.sha256(d).hexdigest()}", {case}, {rq}, {nr}, DZ_OCSP_{st}}},\n')
out.append("};\n#endif /* FX_OCSP */\n\n#ifdef FX_TSP\n")
out.append(cstr("FX_ROOT_PEM", pem1(f"{C}/root.pem")))
out.append(cstr("FX_TSA_PEM", pem1(f"{C}/tsa.pem")))
out.append(cstr("FX_TSA_KEY_PEM", rd(f"{C}/tsa.key").decode()))
out.append(carr("FX_TSP_DIGEST", bytes.fromhex(digest)))
out.append(carr("FX_TSP_NONCE", bytes.fromhex(nonce)))
out.append("""
struct fx_tsp_seed {
    const char *name;
    const char *sha256;
    int rc; /* dz_tsp_response_check with the fixed digest and nonce */
};

static const struct fx_tsp_seed FX_TSP_SEEDS[] = {
""")
for n, d, rc in T:
    out.append(f'    {{"{n}", "{hashlib.sha256(d).hexdigest()}", {rc}}},\n')
out.append("};\n#endif /* FX_TSP */\n\n#endif\n")
with open(fixture, "w") as f:
    f.write("".join(out))
PY
command -v clang-format >/dev/null && clang-format -i "$FIXTURE"
echo "make_pki_corpus: $(ls "$OCSP_CORPUS"/ocsp-* | wc -l) OCSP and $(ls "$TSP_CORPUS"/tsp-* | wc -l) TSP seeds, fixture $FIXTURE (now $NOW)"
