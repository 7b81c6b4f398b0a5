/*
 * keyfloor.c - the key size and signature algorithm floor; see keyfloor.h.
 * OpenSSL's security level does most of it, but not exactly (level 2
 * passes P-224, secp256k1 and brainpool curves, and says nothing about
 * OCSP answers or CMS signer infos), so the rules are written out here and
 * applied to every certificate of a path as well.
 */
#include "pki/keyfloor.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "base/err.h"

const struct dz_keyfloor dz_keyfloor_default = {DZ_KEYFLOOR_RSA_BITS, DZ_KEYFLOOR_EC_BITS, false};

static unsigned rsa_min(const struct dz_keyfloor *f)
{
    return f->rsa_bits > DZ_KEYFLOOR_RSA_BITS ? f->rsa_bits : DZ_KEYFLOOR_RSA_BITS;
}

static unsigned ec_min(const struct dz_keyfloor *f)
{
    return f->ec_bits > DZ_KEYFLOOR_EC_BITS ? f->ec_bits : DZ_KEYFLOOR_EC_BITS;
}

bool dz_keyfloor_key_ok(const struct dz_keyfloor *f, const EVP_PKEY *k, char *why, size_t why_len)
{
    char group[64];
    size_t glen = 0;
    int bits;
    int nid;

    if (f == NULL)
        f = &dz_keyfloor_default;
    if (f->off)
        return true;
    if (k == NULL) {
        dz_why(why, why_len, "the public key does not decode");
        return false;
    }
    bits = EVP_PKEY_get_bits(k);
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        if (bits <= 0 || (unsigned)bits < rsa_min(f)) {
            dz_why(why, why_len, "RSA key of %d bits (at least %u required)", bits, rsa_min(f));
            return false;
        }
        return true;
    case EVP_PKEY_EC:
        /* Named curves only: a key with explicit parameters has no group
         * name, and the curve must be one of the three NIST prime curves
         * (secp256k1 or brainpoolP256r1 have 256 bits too, but are not
         * what a card or SIM carries and are not allowed here). */
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1) {
            ERR_clear_error();
            dz_why(why, why_len, "EC key without a named curve");
            return false;
        }
        nid = OBJ_sn2nid(group);
        if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1 && nid != NID_secp521r1) {
            dz_why(why, why_len, "EC curve %s not allowed (P-256, P-384, P-521 only)", group);
            return false;
        }
        if (bits <= 0 || (unsigned)bits < ec_min(f)) {
            dz_why(why, why_len, "EC key on a %d-bit curve (at least %u required)", bits,
                   ec_min(f));
            return false;
        }
        return true;
    default:
        dz_why(why, why_len, "key type %s not allowed (RSA or EC only)",
               OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
        return false;
    }
}

bool dz_keyfloor_md_ok(const struct dz_keyfloor *f, int md_nid)
{
    if (f == NULL)
        f = &dz_keyfloor_default;
    if (f->off)
        return true;
    switch (md_nid) {
    case NID_sha224:
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha512_224:
    case NID_sha512_256:
    case NID_sha3_224:
    case NID_sha3_256:
    case NID_sha3_384:
    case NID_sha3_512:
        return true;
    default:
        return false; /* MD5, SHA-1 and anything unknown */
    }
}

/* The hash of an RSASSA-PSS AlgorithmIdentifier; NID_sha1 when the
 * parameters are absent (RFC 4055 default), NID_undef when unreadable. */
static int pss_md(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj;
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF;
    RSA_PSS_PARAMS *pss;
    int nid;

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE)
        return ptype == V_ASN1_UNDEF ? NID_sha1 : NID_undef;
    pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
    if (pss == NULL) {
        ERR_clear_error();
        return NID_undef;
    }
    nid = pss->hashAlgorithm != NULL ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1;
    RSA_PSS_PARAMS_free(pss);
    return nid;
}

bool dz_keyfloor_sigalg_ok(const struct dz_keyfloor *f, const X509_ALGOR *alg, bool bare_key_ok,
                           char *why, size_t why_len)
{
    const ASN1_OBJECT *obj = NULL;
    int nid;
    int md_nid = NID_undef;
    int pk_nid = NID_undef;

    if (f == NULL)
        f = &dz_keyfloor_default;
    if (f->off)
        return true;
    if (alg == NULL) {
        dz_why(why, why_len, "no signature algorithm");
        return false;
    }
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    nid = OBJ_obj2nid(obj);
    if (bare_key_ok && (nid == NID_rsaEncryption || nid == NID_X9_62_id_ecPublicKey))
        return true;
    if (nid == NID_rsassaPss) {
        md_nid = pss_md(alg);
    } else if (OBJ_find_sigid_algs(nid, &md_nid, &pk_nid) != 1) {
        dz_why(why, why_len, "unknown signature algorithm %s",
               nid != NID_undef ? OBJ_nid2sn(nid) : "(unregistered OID)");
        return false;
    }
    if (!dz_keyfloor_md_ok(f, md_nid)) {
        dz_why(why, why_len, "signature algorithm %s uses %s (SHA-224 or stronger required)",
               nid != NID_undef ? OBJ_nid2sn(nid) : "?",
               md_nid != NID_undef ? OBJ_nid2sn(md_nid) : "no hash");
        return false;
    }
    return true;
}

const char *dz_keyfloor_chain(const struct dz_keyfloor *f, STACK_OF(X509) * chain, int *depth,
                              char *why, size_t why_len)
{
    int n = sk_X509_num(chain);
    char w[160];

    *depth = 0;
    if (f == NULL)
        f = &dz_keyfloor_default;
    if (f->off)
        return NULL;
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        const X509_ALGOR *alg = NULL;
        bool anchor = i == n - 1 && X509_self_signed(x, 0) == 1;

        ERR_clear_error();
        *depth = i;
        if (!dz_keyfloor_key_ok(f, X509_get0_pubkey(x), w, sizeof(w))) {
            dz_why(why, why_len, "%s %s",
                   i == 0       ? "certificate:"
                   : i == n - 1 ? "anchor:"
                                : "CA:",
                   w);
            ERR_clear_error();
            return "weak_key";
        }
        /* The anchor's self-signature is never checked by path
         * validation (RFC 5280 6.1: the anchor is an input), so an old
         * root signed with SHA-1 is not a weakness of the path. */
        if (anchor)
            continue;
        X509_get0_signature(NULL, &alg, x);
        if (!dz_keyfloor_sigalg_ok(f, alg, false, w, sizeof(w))) {
            dz_why(why, why_len, "%s %s", i == 0 ? "certificate:" : "CA:", w);
            return "weak_signature";
        }
    }
    ERR_clear_error();
    return NULL;
}

void dz_keyfloor_param(const struct dz_keyfloor *f, X509_VERIFY_PARAM *p)
{
    if (f == NULL)
        f = &dz_keyfloor_default;
    X509_VERIFY_PARAM_set_auth_level(p, f->off ? 0 : DZ_KEYFLOOR_AUTH_LEVEL);
}

/* ---- ESS signing-certificate-v2 ---- */

/* The header of the DER element at *p (before end): a universal tag of
 * the given type (constructed for SEQUENCE); *p then points at its
 * contents and *clen is their length.  false when anything else. */
static bool der_header(const unsigned char **p, const unsigned char *end, int type, long *clen)
{
    int tag = 0, cls = 0;
    int r;

    if (*p >= end)
        return false;
    r = ASN1_get_object(p, clen, &tag, &cls, end - *p);
    ERR_clear_error();
    return !(r & 0x80) && r == (type == V_ASN1_SEQUENCE ? V_ASN1_CONSTRUCTED : 0) &&
           cls == V_ASN1_UNIVERSAL && tag == type;
}

bool dz_keyfloor_ess_v2_ok(const struct dz_keyfloor *f, const unsigned char *der, size_t len,
                           char *why, size_t why_len)
{
    const unsigned char *p = der, *end = der + len, *ids_end;
    long clen = 0;
    unsigned n = 0;

    if (f == NULL)
        f = &dz_keyfloor_default;
    if (f->off)
        return true;
    /* SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... } */
    if (!der || len == 0 || len > 65536 || !der_header(&p, end, V_ASN1_SEQUENCE, &clen) ||
        !der_header(&p, end, V_ASN1_SEQUENCE, &clen))
        goto malformed;
    ids_end = p + clen;
    while (p < ids_end) {
        const unsigned char *id_end, *q;
        X509_ALGOR *alg;
        int nid;

        /* ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier
         *   DEFAULT {algorithm id-sha256}, certHash OCTET STRING, ... } */
        if (!der_header(&p, ids_end, V_ASN1_SEQUENCE, &clen))
            goto malformed;
        id_end = p + clen;
        n++;
        if (p < id_end && *p == (V_ASN1_CONSTRUCTED | V_ASN1_SEQUENCE)) {
            q = p;
            alg = d2i_X509_ALGOR(NULL, &q, id_end - p);
            nid = alg ? OBJ_obj2nid(alg->algorithm) : NID_undef;
            X509_ALGOR_free(alg);
            ERR_clear_error();
            if (!dz_keyfloor_md_ok(f, nid)) {
                dz_why(why, why_len, "ESSCertIDv2 %u hashed with %s", n,
                       nid == NID_undef ? "an unknown algorithm" : OBJ_nid2sn(nid));
                return false;
            }
        }
        p = id_end;
    }
    if (n > 0 && p == ids_end)
        return true;
malformed:
    dz_why(why, why_len, "ESS signing-certificate-v2 does not decode");
    return false;
}

/* ---- the floor of a store (ex_data) ---- */

static pthread_once_t idx_once = PTHREAD_ONCE_INIT;
static int floor_idx = -1;

static void floor_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void idx_init(void)
{
    floor_idx = X509_STORE_get_ex_new_index(0, NULL, NULL, NULL, floor_free);
}

int dz_keyfloor_store_set(X509_STORE *st, const struct dz_keyfloor *f)
{
    struct dz_keyfloor *copy;
    void *old;

    if (st == NULL || f == NULL || f->rsa_bits > DZ_KEYFLOOR_RSA_MAX ||
        f->ec_bits > DZ_KEYFLOOR_EC_MAX)
        return DZ_ERR_INVAL;
    pthread_once(&idx_once, idx_init);
    if (floor_idx < 0)
        return DZ_ERR_NOMEM;
    copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return DZ_ERR_NOMEM;
    *copy = *f;
    old = X509_STORE_get_ex_data(st, floor_idx);
    if (X509_STORE_set_ex_data(st, floor_idx, copy) != 1) {
        ERR_clear_error();
        free(copy);
        return DZ_ERR_NOMEM;
    }
    free(old);
    dz_keyfloor_param(copy, X509_STORE_get0_param(st));
    return 0;
}

const struct dz_keyfloor *dz_keyfloor_store_get(const X509_STORE *st)
{
    const struct dz_keyfloor *f = NULL;

    pthread_once(&idx_once, idx_init);
    if (st != NULL && floor_idx >= 0)
        f = X509_STORE_get_ex_data(st, floor_idx);
    return f != NULL ? f : &dz_keyfloor_default;
}
