/*
 * x509check.c - certificate path validation, key usage, policy, FIN and
 * revocation for every login path and `darvaza cert check`; see
 * x509check.h.  Owns the trust (an X509_STORE of anchors, a list of
 * intermediates and one of CRLs), immutable once built.  It never returns
 * valid for a certificate whose status it could not establish (every error
 * is a refusal), never logs a subject, and never fetches anything except
 * the leaf's OCSP answer and, failing that, its CRL, each bounded in size
 * and time.
 */
#include "pki/x509check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "http/httpc.h"
#include "pki/certid.h"
#include "pki/chainsig.h"
#include "pki/keyfloor.h"
#include "pki/ocsp.h"

#include "base/compat.h"

#define MAX_CDP_TRIES 2 /* CRL URLs fetched per validation at most */

struct dz_x509_trust {
    X509_STORE *store;              /* anchors only */
    STACK_OF(X509) * intermediates; /* offered to every path build */
    STACK_OF(X509_CRL) * crls;      /* given to every context (X509_STORE_CTX_set0_crls) */
    size_t nanchors;
};

/* ---- files ---- */

/* Read at most max bytes of path into *data (free()).  DZ_ERR_IO,
 * DZ_ERR_TOOBIG, DZ_ERR_NOMEM. */
static int read_file(const char *path, size_t max, unsigned char **data, size_t *len)
{
    struct dz_buf b;
    unsigned char chunk[8192];
    FILE *f = NULL;
    size_t n;
    int rc = 0;

    *data = NULL;
    *len = 0;
    dz_buf_init(&b, max);
    f = fopen(path, "rb");
    if (f == NULL)
        return DZ_ERR_IO;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = dz_buf_append(&b, chunk, n);
        if (rc != 0)
            goto out;
    }
    if (ferror(f)) {
        rc = DZ_ERR_IO;
        goto out;
    }
    *data = (unsigned char *)dz_buf_steal(&b, len);
    if (*data == NULL) {
        rc = DZ_ERR_PARSE; /* empty file */
        goto out;
    }
out:
    fclose(f);
    dz_buf_cleanup(&b);
    return rc;
}

static bool looks_pem(const unsigned char *d, size_t n)
{
    return memmem(d, n, "-----BEGIN ", 11) != NULL;
}

/* Did the PEM reader stop at the end (no further BEGIN line) rather than
 * at garbage inside a block? */
static bool pem_clean_end(void)
{
    unsigned long e = ERR_peek_last_error();
    bool clean = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;

    ERR_clear_error();
    return clean;
}

static int cert_der_len(X509 *x)
{
    int n = i2d_X509(x, NULL);

    if (n <= 0)
        return DZ_ERR_PARSE;
    return n > DZ_X509_MAX_CERT_DER ? DZ_ERR_TOOBIG : 0;
}

static int parse_certs(const unsigned char *d, size_t n, STACK_OF(X509) * *out)
{
    STACK_OF(X509) *sk = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    sk = sk_X509_new_null();
    if (sk == NULL)
        goto out;
    if (looks_pem(d, n)) {
        bio = BIO_new_mem_buf(d, (int)n);
        if (bio == NULL)
            goto out;
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            rc = cert_der_len(x);
            if (rc == 0 && sk_X509_num(sk) >= DZ_X509_MAX_FILE_CERTS)
                rc = DZ_ERR_TOOBIG;
            if (rc != 0)
                goto out;
            if (!sk_X509_push(sk, x)) {
                rc = DZ_ERR_NOMEM;
                goto out;
            }
            x = NULL;
        }
        if (!pem_clean_end() || sk_X509_num(sk) == 0) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
    } else {
        rc = dz_x509_from_der(d, n, &x);
        if (rc != 0)
            goto out;
        if (!sk_X509_push(sk, x)) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        x = NULL;
    }
    *out = sk;
    sk = NULL;
    rc = 0;
out:
    if (rc != 0)
        ERR_clear_error();
    X509_free(x);
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

static int parse_crls(const unsigned char *d, size_t n, STACK_OF(X509_CRL) * *out)
{
    STACK_OF(X509_CRL) *sk = NULL;
    BIO *bio = NULL;
    X509_CRL *c = NULL;
    const unsigned char *p = d;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    sk = sk_X509_CRL_new_null();
    if (sk == NULL)
        goto out;
    if (looks_pem(d, n)) {
        bio = BIO_new_mem_buf(d, (int)n);
        if (bio == NULL)
            goto out;
        while ((c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
            if (sk_X509_CRL_num(sk) >= DZ_X509_MAX_FILE_CERTS) {
                rc = DZ_ERR_TOOBIG;
                goto out;
            }
            if (!sk_X509_CRL_push(sk, c))
                goto out;
            c = NULL;
        }
        if (!pem_clean_end() || sk_X509_CRL_num(sk) == 0) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
    } else {
        c = d2i_X509_CRL(NULL, &p, (long)n);
        if (c == NULL || p != d + n) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
        if (!sk_X509_CRL_push(sk, c))
            goto out;
        c = NULL;
    }
    *out = sk;
    sk = NULL;
    rc = 0;
out:
    if (rc != 0)
        ERR_clear_error();
    X509_CRL_free(c);
    BIO_free(bio);
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    return rc;
}

int dz_x509_from_der(const unsigned char *der, size_t len, X509 **out)
{
    const unsigned char *p = der;
    X509 *x = NULL;

    *out = NULL;
    if (der == NULL || len == 0)
        return DZ_ERR_PARSE;
    if (len > DZ_X509_MAX_CERT_DER)
        return DZ_ERR_TOOBIG;
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len) {
        ERR_clear_error();
        X509_free(x);
        return DZ_ERR_PARSE;
    }
    *out = x;
    return 0;
}

int dz_x509_load_file(const char *path, STACK_OF(X509) * *out)
{
    unsigned char *d = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (path == NULL)
        return DZ_ERR_INVAL;
    rc = read_file(path, (size_t)DZ_X509_MAX_FILE_CERTS * DZ_X509_MAX_CERT_DER * 2, &d, &n);
    if (rc == 0)
        rc = parse_certs(d, n, out);
    free(d);
    return rc;
}

/* ---- trust ---- */

int dz_x509_trust_new(struct dz_x509_trust **out)
{
    struct dz_x509_trust *t;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return DZ_ERR_NOMEM;
    t->store = X509_STORE_new();
    t->intermediates = sk_X509_new_null();
    t->crls = sk_X509_CRL_new_null();
    if (t->store == NULL || t->intermediates == NULL || t->crls == NULL ||
        dz_keyfloor_store_set(t->store, &dz_keyfloor_default) != 0) {
        dz_x509_trust_free(t);
        return DZ_ERR_NOMEM;
    }
    *out = t;
    return 0;
}

int dz_x509_trust_set_floor(struct dz_x509_trust *t, const struct dz_keyfloor *f)
{
    if (t == NULL || f == NULL)
        return DZ_ERR_INVAL;
    return dz_keyfloor_store_set(t->store, f);
}

const struct dz_keyfloor *dz_x509_trust_floor(const struct dz_x509_trust *t)
{
    return dz_keyfloor_store_get(t != NULL ? t->store : NULL);
}

void dz_x509_trust_free(struct dz_x509_trust *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    sk_X509_pop_free(t->intermediates, X509_free);
    sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
    free(t);
}

size_t dz_x509_trust_anchors(const struct dz_x509_trust *t)
{
    return t != NULL ? t->nanchors : 0;
}

int dz_x509_trust_issuer_chain(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * *out)
{
    STACK_OF(X509) * sk;
    X509 *cur = leaf;

    *out = NULL;
    if (t == NULL || leaf == NULL)
        return DZ_ERR_INVAL;
    if ((sk = sk_X509_new_null()) == NULL)
        return DZ_ERR_NOMEM;
    /* Bounded walk: a loop among intermediates cannot run forever. */
    for (int depth = 0; depth < DZ_X509_MAX_DEPTH; depth++) {
        X509 *issuer = NULL;

        for (int i = 0; i < sk_X509_num(t->intermediates); i++) {
            X509 *x = sk_X509_value(t->intermediates, i);
            if (x != cur && X509_check_issued(x, cur) == X509_V_OK) {
                issuer = x;
                break;
            }
        }
        if (issuer == NULL)
            break;
        if (!X509_up_ref(issuer) || !sk_X509_push(sk, issuer)) {
            X509_free(issuer);
            sk_X509_pop_free(sk, X509_free);
            return DZ_ERR_NOMEM;
        }
        cur = issuer;
    }
    ERR_clear_error();
    *out = sk;
    return 0;
}

int dz_x509_trust_add_ca_file(struct dz_x509_trust *t, const char *path)
{
    STACK_OF(X509) *sk = NULL;
    X509 *x;
    int rc;

    if (t == NULL || path == NULL)
        return DZ_ERR_INVAL;
    rc = dz_x509_load_file(path, &sk);
    if (rc != 0)
        goto out;
    while ((x = sk_X509_shift(sk)) != NULL) {
        /* Only a certificate that verifies under its own key is an anchor;
         * anything else merely helps build paths to one. */
        if (X509_self_signed(x, 1) == 1) {
            ERR_clear_error();
            if (X509_STORE_add_cert(t->store, x) != 1) {
                X509_free(x);
                rc = DZ_ERR_CRYPTO;
                goto out;
            }
            X509_free(x);
            t->nanchors++;
        } else {
            ERR_clear_error();
            if (!sk_X509_push(t->intermediates, x)) {
                X509_free(x);
                rc = DZ_ERR_NOMEM;
                goto out;
            }
        }
    }
out:
    if (rc != 0)
        ERR_clear_error();
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

int dz_x509_trust_add_crl_file(struct dz_x509_trust *t, const char *path)
{
    STACK_OF(X509_CRL) *sk = NULL;
    X509_CRL *c;
    unsigned char *d = NULL;
    size_t n = 0;
    int rc;

    if (t == NULL || path == NULL)
        return DZ_ERR_INVAL;
    rc = read_file(path, DZ_X509_MAX_CRL, &d, &n);
    if (rc == 0)
        rc = parse_crls(d, n, &sk);
    while (rc == 0 && (c = sk_X509_CRL_shift(sk)) != NULL) {
        if (!sk_X509_CRL_push(t->crls, c)) {
            X509_CRL_free(c);
            rc = DZ_ERR_NOMEM;
        }
    }
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    free(d);
    return rc;
}

/* ---- validation ---- */

static bool is_crl_error(int e)
{
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        return true;
    default:
        return false;
    }
}

static const char *reason_of(int e)
{
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "not_yet_valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return "unknown_ca";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        return "bad_signature";
    case X509_V_ERR_CERT_REVOKED:
        return "revoked";
    case X509_V_ERR_NO_EXPLICIT_POLICY:
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
        return "wrong_policy";
    case X509_V_ERR_INVALID_PURPOSE:
        return "bad_key_usage";
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return "malformed";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
        return "weak_key"; /* the security level (keyfloor.h) or strict mode */
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return "weak_signature";
    case X509_V_ERR_OUT_OF_MEM:
        return "internal";
    default:
        return is_crl_error(e) ? "revocation_unknown" : "chain_invalid";
    }
}

enum crl_tolerance {
    TOLERATE_NONE,
    /* OCSP_CRL mode, first pass: a CA without a CRL in the trust is not
     * refused (its status is the operator's CRL files' business), and any
     * CRL trouble about the leaf is left to the OCSP / CRL step that
     * follows.  A CRL that says "revoked" is never tolerated. */
    TOLERATE_LEAF_AND_MISSING
};

struct vstate {
    enum crl_tolerance tol;
    bool note_leaf_revoked; /* a CRL revoking the leaf is noted, not fatal */
    bool leaf_revoked;
};

static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    struct vstate *st;
    int e;

    if (ok)
        return ok;
    e = X509_STORE_CTX_get_error(ctx);
    /* X509_STRICT also enforces an issuance rule that RFC 5280's path
     * validation (6.1.4 k: present, cA true) does not: basicConstraints
     * marked critical.  PKITS 4.6.4 requires accepting such a CA, and
     * nothing about trust depends on the flag, so this one strict-mode
     * complaint is waived; every other strict check stands. */
    if (e == X509_V_ERR_CA_BCONS_NOT_CRITICAL)
        return 1;
    st = X509_STORE_CTX_get_app_data(ctx);
    /* OpenSSL checks revocation before signatures, dates and policies: a
     * revoked leaf is noted and the path is checked to its end, so that
     * "revoked" (and its date) is only ever said of an otherwise good
     * certificate. */
    if (st != NULL && st->note_leaf_revoked && e == X509_V_ERR_CERT_REVOKED &&
        X509_STORE_CTX_get_error_depth(ctx) == 0) {
        st->leaf_revoked = true;
        return 1;
    }
    if (st == NULL || st->tol == TOLERATE_NONE)
        return 0;
    if (e == X509_V_ERR_UNABLE_TO_GET_CRL)
        return 1;
    if (X509_STORE_CTX_get_error_depth(ctx) == 0 && is_crl_error(e))
        return 1;
    return 0;
}

static void refuse(struct dz_x509_result *out, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct dz_x509_result *out, const char *reason, const char *fmt, ...)
{
    va_list ap;

    out->valid = false;
    out->reason = reason;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

struct run {
    const struct dz_x509_trust *t;
    const struct dz_x509_opts *o;
    X509 *leaf;
    STACK_OF(X509) * untrusted; /* trust intermediates + caller's; shallow */
    STACK_OF(ASN1_OBJECT) * initial;
    int64_t now;
    int64_t at;
    bool cached_only; /* dz_x509_validate_cached: never verify, fetch or read */
};

/* dz_x509_validate_cached's "not cached": the check needs something it may
 * not do on a worker loop.  No other step of the validation returns it. */
#define NOT_CACHED DZ_ERR_NOTFOUND

/*
 * One X509_verify_cert.  crl_flags: 0, or X509_V_FLAG_CRL_CHECK[_ALL];
 * crls: what the context may use.  On return *err is the X509_V_ERR (0 on
 * success), *depth its depth, *chain (if wanted) the validated chain.
 * leaf_revoked non-NULL: a CRL that revokes the leaf does not stop the
 * validation but sets *leaf_revoked (the caller refuses after its own
 * checks).  Returns 0 or DZ_ERR_NOMEM / DZ_ERR_CRYPTO (could not run).
 */
static int run_verify(const struct run *r, unsigned long crl_flags, STACK_OF(X509_CRL) * crls,
                      enum crl_tolerance tol, int *err, int *depth, STACK_OF(X509) * *chain,
                      bool *leaf_revoked)
{
    X509_STORE_CTX *ctx = NULL;
    X509_VERIFY_PARAM *param;
    struct vstate st = {.tol = tol, .note_leaf_revoked = leaf_revoked != NULL};
    unsigned long flags;
    int rc = DZ_ERR_NOMEM;
    int ok;

    *err = X509_V_ERR_UNSPECIFIED;
    *depth = 0;
    if (chain != NULL)
        *chain = NULL;
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL)
        goto out;
    if (X509_STORE_CTX_init(ctx, r->t->store, r->leaf, r->untrusted) != 1) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    param = X509_STORE_CTX_get0_param(ctx);
    /* Strict DER/RFC 5280 rules; policy processing always on (RFC 5280
     * 6.1), with the caller's 6.1.1 inputs; indirect CRLs, IDPs and delta
     * CRLs understood (without them 15 PKITS CRL cases go wrong). */
    flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_POLICY_CHECK | X509_V_FLAG_EXTENDED_CRL_SUPPORT |
            X509_V_FLAG_USE_DELTAS | crl_flags;
    if (r->o->explicit_policy)
        flags |= X509_V_FLAG_EXPLICIT_POLICY;
    if (r->o->inhibit_policy_mapping)
        flags |= X509_V_FLAG_INHIBIT_MAP;
    if (r->o->inhibit_any_policy)
        flags |= X509_V_FLAG_INHIBIT_ANY;
    X509_VERIFY_PARAM_set_flags(param, flags);
    X509_VERIFY_PARAM_set_time(param, (time_t)r->at);
    X509_VERIFY_PARAM_set_depth(param, DZ_X509_MAX_DEPTH);
    /* OpenSSL's part of the key and signature floor (security level 2);
     * dz_keyfloor_chain does the exact rest once the path is built. */
    dz_keyfloor_param(dz_keyfloor_store_get(r->t->store), param);
    if (r->initial != NULL && X509_VERIFY_PARAM_set1_policies(param, r->initial) != 1) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (crls != NULL)
        X509_STORE_CTX_set0_crls(ctx, crls);
    X509_STORE_CTX_set_app_data(ctx, &st);
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    /* OpenSSL's signature-and-validity step, with verified signatures
     * remembered (pki/chainsig.h): the same CA certificates at every login.
     * Cached only: from the memo alone (a miss is DZ_CHAINSIG_NOT_MEMO). */
    X509_STORE_CTX_set_verify(ctx, r->cached_only ? dz_chainsig_verify_memo : dz_chainsig_verify);

    ok = X509_verify_cert(ctx);
    if (ok == 1) {
        *err = 0;
        if (chain != NULL) {
            *chain = X509_STORE_CTX_get1_chain(ctx);
            if (*chain == NULL)
                goto out;
        }
    } else {
        *err = X509_STORE_CTX_get_error(ctx);
        if (*err == X509_V_OK)
            *err = X509_V_ERR_UNSPECIFIED; /* failed before any check ran */
        *depth = X509_STORE_CTX_get_error_depth(ctx);
    }
    if (leaf_revoked != NULL)
        *leaf_revoked = st.leaf_revoked;
    rc = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rc;
}

static void refuse_verify(struct dz_x509_result *out, int err, int depth)
{
    refuse(out, reason_of(err), "%s (depth %d)", X509_verify_cert_error_string(err), depth);
}

/*
 * RFC 5280 rules for a person's (end-entity) certificate that OpenSSL's
 * path validation leaves open or only checks in part (docs/internals/
 * x509check.md, rules X3, X7, X9, X10): it must be a v3 certificate, must
 * not be a CA in any form (basicConstraints cA, keyCertSign or cRLSign,
 * anything X509_check_ca calls a CA), must carry a positive serial number
 * of at most 20 octets, and no extension twice.  OpenSSL accepts a leaf
 * with cA=TRUE but no keyCertSign, a v1 leaf, serial 0 or a negative one.
 */
static bool end_entity_ok(X509 *leaf, struct dz_x509_result *out)
{
    const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(leaf);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    uint32_t flags = X509_get_extension_flags(leaf);
    uint32_t ku = X509_get_key_usage(leaf);
    BIGNUM *bn = NULL;
    bool positive;
    int octets;

    if (X509_get_version(leaf) != X509_VERSION_3) {
        refuse(out, "not_end_entity",
               "a v%ld certificate cannot be a person's (no basicConstraints or keyUsage)",
               X509_get_version(leaf) + 1);
        return false;
    }
    if ((flags & EXFLAG_CA) != 0 || X509_check_ca(leaf) != 0) {
        refuse(out, "not_end_entity",
               "a CA certificate (basicConstraints cA) cannot be a person's");
        return false;
    }
    if ((flags & EXFLAG_KUSAGE) != 0 && (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0) {
        refuse(out, "not_end_entity", "keyUsage keyCertSign or cRLSign: a CA key, not a person's");
        return false;
    }
    bn = serial != NULL ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    positive = bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn);
    octets = bn != NULL ? BN_num_bytes(bn) + ((BN_num_bits(bn) % 8) == 0 ? 1 : 0) : 0;
    BN_free(bn);
    ERR_clear_error();
    /* DER of a positive INTEGER whose top bit is set takes a leading zero
     * octet: that octet counts towards the 20 (RFC 5280 4.1.2.2). */
    if (!positive || octets > 20) {
        refuse(out, "malformed", "serial number not a positive integer of at most 20 octets");
        return false;
    }
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        const ASN1_OBJECT *a = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
        for (int j = i + 1; j < sk_X509_EXTENSION_num(exts); j++) {
            if (OBJ_cmp(a, X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j))) == 0) {
                refuse(out, "malformed", "an extension appears twice (RFC 5280 4.2)");
                return false;
            }
        }
    }
    return true;
}

static bool key_usage_ok(X509 *leaf, enum dz_x509_purpose p, struct dz_x509_result *out)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    uint32_t ku = X509_get_key_usage(leaf);

    if (p == DZ_X509_PURPOSE_ANY)
        return true;
    if (!end_entity_ok(leaf, out))
        return false;
    /* A person's certificate always states its key usage; one that does
     * not is not accepted for login or signing (fail closed). */
    if ((flags & EXFLAG_KUSAGE) == 0) {
        refuse(out, "bad_key_usage", "no keyUsage extension");
        return false;
    }
    if (p == DZ_X509_PURPOSE_AUTH) {
        if ((ku & KU_DIGITAL_SIGNATURE) == 0) {
            refuse(out, "bad_key_usage", "keyUsage lacks digitalSignature (authentication)");
            return false;
        }
        if ((flags & EXFLAG_XKUSAGE) != 0 &&
            (X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) == 0) {
            refuse(out, "bad_key_usage", "extendedKeyUsage lacks clientAuth");
            return false;
        }
        return true;
    }
    if ((ku & KU_NON_REPUDIATION) == 0) {
        refuse(out, "bad_key_usage", "keyUsage lacks nonRepudiation (signing)");
        return false;
    }
    return true;
}

/* The first http(s) URI of the leaf's CRL distribution points, skipping
 * `skip` earlier ones.  false when there is none. */
static bool cdp_url(X509 *leaf, int skip, char *url, size_t url_size)
{
    STACK_OF(DIST_POINT) *dps = NULL;
    bool found = false;
    int i;
    int j;

    url[0] = '\0';
    dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
    for (i = 0; i < sk_DIST_POINT_num(dps) && !found; i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
        if (dp->distpoint == NULL || dp->distpoint->type != 0)
            continue;
        for (j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname) && !found; j++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
            const char *u;
            int n;
            if (gn->type != GEN_URI)
                continue;
            u = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
            n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
            if (n <= 0 || (size_t)n >= url_size || memchr(u, '\0', (size_t)n) != NULL)
                continue;
            if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                continue;
            if (skip-- > 0)
                continue;
            memcpy(url, u, (size_t)n);
            url[n] = '\0';
            found = true;
        }
    }
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    ERR_clear_error();
    return found;
}

/* Fetch CRLs from the leaf's CDP into extra (the signature and dates are
 * checked by OpenSSL when used).  Failures only mean fewer CRLs. */
static void fetch_cdp(X509 *leaf, uint32_t timeout_ms, STACK_OF(X509_CRL) * extra)
{
    char url[1024];
    int k;

    for (k = 0; k < MAX_CDP_TRIES && cdp_url(leaf, k, url, sizeof(url)); k++) {
        struct dz_httpc_request r;
        struct dz_buf body;
        STACK_OF(X509_CRL) *got = NULL;
        X509_CRL *c;
        int status = 0;
        int rc;

        memset(&r, 0, sizeof(r));
        r.method = "GET";
        r.url = url;
        r.version = DZ_HTTPC_HTTP1;
        r.timeout_ms = timeout_ms;
        r.connect_timeout_ms = timeout_ms;
        r.max_response_bytes = DZ_X509_MAX_CRL;
        dz_buf_init(&body, DZ_X509_MAX_CRL);
        rc = dz_http_fetch_blocking(&r, &status, &body);
        if (rc == 0 && status == 200 && body.len > 0)
            rc = parse_crls((const unsigned char *)body.data, body.len, &got);
        else
            rc = DZ_ERR_UNAVAILABLE;
        dz_buf_cleanup(&body);
        while (rc == 0 && (c = sk_X509_CRL_shift(got)) != NULL) {
            if (!sk_X509_CRL_push(extra, c))
                X509_CRL_free(c);
        }
        sk_X509_CRL_pop_free(got, X509_CRL_free);
        if (rc == 0)
            return;
    }
}

/* lastUpdate of the newest CRL in crls issued (and signed) by issuer for
 * the leaf's issuer name: the evidence time of a CRL decision. */
static int64_t crl_time(STACK_OF(X509_CRL) * crls, X509 *leaf, X509 *issuer)
{
    int64_t best = 0;
    int i;

    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *c = sk_X509_CRL_value(crls, i);
        int64_t lu;
        if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_issuer_name(leaf)) != 0)
            continue;
        if (issuer == NULL || X509_CRL_verify(c, X509_get0_pubkey(issuer)) != 1)
            continue;
        lu = asn1_unix(X509_CRL_get0_lastUpdate(c));
        if (lu > best)
            best = lu;
    }
    ERR_clear_error();
    return best;
}

/* The earliest revocationDate of leaf in the CRLs signed by issuer; 0 when
 * none lists it. */
static int64_t crl_revoked_at(STACK_OF(X509_CRL) * crls, X509 *leaf, X509 *issuer)
{
    int64_t best = 0;

    for (int i = 0; issuer != NULL && i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *c = sk_X509_CRL_value(crls, i);
        X509_REVOKED *rev = NULL;
        int64_t at;

        if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_issuer_name(leaf)) != 0 ||
            X509_CRL_verify(c, X509_get0_pubkey(issuer)) != 1 ||
            X509_CRL_get0_by_cert(c, &rev, leaf) != 1 || rev == NULL)
            continue;
        at = asn1_unix(X509_REVOKED_get0_revocationDate(rev));
        if (at > 0 && (best == 0 || at < best))
            best = at;
    }
    ERR_clear_error();
    return best;
}

/*
 * Revocation of the leaf in OCSP_CRL mode, after the path is valid: sets
 * *good when the status is GOOD, else refuses in out (the caller sets
 * valid).  Returns 0, or DZ_ERR_NOMEM / DZ_ERR_CRYPTO (a refusal too).
 */
static int leaf_revocation(const struct run *r, STACK_OF(X509) * chain, struct dz_x509_result *out,
                           bool *good)
{
    const struct dz_x509_opts *o = r->o;
    uint32_t timeout = o->fetch_timeout_ms ? o->fetch_timeout_ms : DZ_X509_FETCH_TIMEOUT_MS;
    struct dz_ocsp_answer a;
    STACK_OF(X509_CRL) *crls = NULL;
    X509 *issuer;
    unsigned char key[32];
    char url[1024];
    char ocsp_why[96] = "no OCSP URL in the certificate";
    bool have_key = false;
    bool fetched;
    int n;
    int err;
    int depth;
    int rc;
    int i;

    *good = false;
    if (sk_X509_num(chain) < 2) {
        /* The leaf is itself an anchor: trusted by configuration, nothing
         * could revoke it. */
        out->revocation_source = "none";
        *good = true;
        return 0;
    }
    issuer = sk_X509_value(chain, 1);

    if (o->ocsp_cache != NULL && dz_ocsp_key(r->leaf, issuer, key) == 0) {
        have_key = true;
        /* Cached only: a miss is not counted here, the full check that
         * follows counts it. */
        if ((r->cached_only ? dz_ocsp_cache_try : dz_ocsp_cache_get)(o->ocsp_cache, key, r->now,
                                                                     &a) == 0) {
            out->revocation_source = "ocsp_cache";
            goto answered;
        }
    }
    /* Everything below asks a responder or reads CRLs: not on a loop.  A
     * cached answer past its nextUpdate was dropped by the lookup, so it
     * lands here too. */
    if (r->cached_only) {
        snprintf(out->detail, sizeof(out->detail), "no fresh OCSP answer cached");
        return NOT_CACHED;
    }
    rc = dz_ocsp_url(r->leaf, url, sizeof(url));
    if (rc == 0) {
        rc = dz_ocsp_query(url, r->leaf, issuer, timeout, r->now,
                           dz_keyfloor_store_get(r->t->store), &a, NULL, NULL);
        if (rc == 0 && a.status != DZ_OCSP_UNKNOWN) {
            out->revocation_source = "ocsp";
            if (have_key)
                (void)dz_ocsp_cache_put(o->ocsp_cache, key, &a, r->now);
            goto answered;
        }
        dz_ocsp_cache_note_failure(o->ocsp_cache);
        snprintf(ocsp_why, sizeof(ocsp_why), "OCSP: %s",
                 rc == 0 ? "responder does not know the certificate" : dz_err_str(rc));
    } else if (rc == DZ_ERR_TOOBIG) {
        snprintf(ocsp_why, sizeof(ocsp_why), "OCSP URL too long");
    }

    /* CRL fallback: the trust's CRL files; the leaf's CDP when they hold
     * none for its issuer, or when theirs did not settle it (stale). */
    crls = sk_X509_CRL_dup(r->t->crls);
    if (crls == NULL)
        return DZ_ERR_NOMEM;
    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        if (X509_NAME_cmp(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)),
                          X509_get_issuer_name(r->leaf)) == 0)
            break;
    }
    fetched = i == sk_X509_CRL_num(crls);
    if (fetched)
        fetch_cdp(r->leaf, timeout, crls);
    /* A second, strict pass: the leaf's CRL must exist, verify, be current
     * at the validation time and not list it. */
    for (;;) {
        rc = run_verify(r, X509_V_FLAG_CRL_CHECK, crls, TOLERATE_NONE, &err, &depth, NULL, NULL);
        if (rc != 0 || fetched || err == 0 || !is_crl_error(err))
            break;
        fetched = true;
        n = sk_X509_CRL_num(crls);
        fetch_cdp(r->leaf, timeout, crls);
        if (sk_X509_CRL_num(crls) == n)
            break; /* nothing new: the first answer stands */
    }
    if (rc == 0) {
        if (err == 0) {
            out->revocation_source = "crl";
            out->revocation_checked_at = crl_time(crls, r->leaf, issuer);
            *good = true;
        } else if (err == X509_V_ERR_CERT_REVOKED) {
            out->revocation_source = "crl";
            out->revocation_checked_at = crl_time(crls, r->leaf, issuer);
            out->revoked_at = crl_revoked_at(crls, r->leaf, issuer);
            refuse(out, "revoked", "the CRL lists the certificate");
        } else {
            refuse(out, "revocation_unknown", "%s; CRL: %s (depth %d)", ocsp_why,
                   X509_verify_cert_error_string(err), depth);
        }
    }
    /* Free only the CRLs this call fetched, not the trust's shared ones. */
    for (i = sk_X509_CRL_num(r->t->crls); i < sk_X509_CRL_num(crls); i++)
        X509_CRL_free(sk_X509_CRL_value(crls, i));
    sk_X509_CRL_free(crls);
    return rc;

answered:
    out->has_ocsp = true;
    memcpy(out->ocsp_sha256, a.sha256, sizeof(out->ocsp_sha256));
    out->revocation_checked_at = a.this_update;
    if (a.status == DZ_OCSP_GOOD) {
        *good = true;
    } else {
        out->revoked_at = a.revoked_at;
        refuse(out, "revoked", "OCSP: revoked (reason %d)", a.revocation_reason);
    }
    return 0;
}

static int build_initial(const struct dz_x509_opts *o, STACK_OF(ASN1_OBJECT) * *out)
{
    STACK_OF(ASN1_OBJECT) *sk = NULL;
    size_t i;

    *out = NULL;
    if (o->ninitial == 0 || o->initial_policies == NULL)
        return 0;
    sk = sk_ASN1_OBJECT_new_null();
    if (sk == NULL)
        return DZ_ERR_NOMEM;
    for (i = 0; i < o->ninitial; i++) {
        ASN1_OBJECT *obj = o->initial_policies[i] ? OBJ_txt2obj(o->initial_policies[i], 1) : NULL;
        if (obj == NULL || !sk_ASN1_OBJECT_push(sk, obj)) {
            ASN1_OBJECT_free(obj);
            sk_ASN1_OBJECT_pop_free(sk, ASN1_OBJECT_free);
            ERR_clear_error();
            return DZ_ERR_INVAL;
        }
    }
    *out = sk;
    return 0;
}

static int validate(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                    const struct dz_x509_opts *o, bool cached_only, struct dz_x509_result *out)
{
    static const struct dz_x509_opts defaults = {.purpose = DZ_X509_PURPOSE_ANY};
    struct run r;
    struct dz_certid id;
    STACK_OF(X509) *chain = NULL;
    unsigned char *der = NULL;
    unsigned long crl_flags = 0;
    enum crl_tolerance tol = TOLERATE_NONE;
    bool good = false;
    bool leaf_revoked = false;
    int n;
    int err;
    int depth;
    int rc = 0;
    size_t i;

    if (out == NULL)
        return DZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->reason = "internal";
    out->revocation_source = "none";
    memset(&r, 0, sizeof(r));
    if (t == NULL || leaf == NULL)
        return DZ_ERR_INVAL;
    if (o == NULL)
        o = &defaults;

    /* Bounds first: nothing bigger than we promise reaches OpenSSL's path
     * code. */
    n = i2d_X509(leaf, &der);
    if (n <= 0) {
        ERR_clear_error();
        refuse(out, "malformed", "the certificate does not encode");
        goto out;
    }
    dz_sha256(der, (size_t)n, out->sha256);
    if (n > DZ_X509_MAX_CERT_DER) {
        refuse(out, "malformed", "certificate of %d bytes (limit %d)", n, DZ_X509_MAX_CERT_DER);
        goto out;
    }
    if (untrusted != NULL && sk_X509_num(untrusted) > DZ_X509_MAX_UNTRUSTED) {
        refuse(out, "malformed", "%d chain certificates (limit %d)", sk_X509_num(untrusted),
               DZ_X509_MAX_UNTRUSTED);
        goto out;
    }
    for (i = 0; untrusted != NULL && i < (size_t)sk_X509_num(untrusted); i++) {
        int m = i2d_X509(sk_X509_value(untrusted, (int)i), NULL);
        if (m <= 0 || m > DZ_X509_MAX_CERT_DER) {
            ERR_clear_error();
            refuse(out, "malformed", "chain certificate %zu malformed or over the limit", i);
            goto out;
        }
    }
    if (o->npolicies > 0 && o->policies == NULL) {
        rc = DZ_ERR_INVAL;
        goto out;
    }

    r.t = t;
    r.o = o;
    r.leaf = leaf;
    r.cached_only = cached_only;
    r.now = (int64_t)time(NULL);
    r.at = o->at != 0 ? o->at : r.now;
    rc = build_initial(o, &r.initial);
    if (rc == DZ_ERR_INVAL) {
        refuse(out, "malformed", "an initial policy is not an OID");
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    r.untrusted = sk_X509_dup(t->intermediates);
    if (r.untrusted == NULL) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (i = 0; untrusted != NULL && i < (size_t)sk_X509_num(untrusted); i++) {
        if (!sk_X509_push(r.untrusted, sk_X509_value(untrusted, (int)i))) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
    }

    /* 1. The path (and, in CRL modes, the CRLs of every CA). */
    if (o->revocation == DZ_X509_REV_CRL_ONLY) {
        crl_flags = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    } else if (o->revocation == DZ_X509_REV_OCSP_CRL) {
        crl_flags = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
        tol = TOLERATE_LEAF_AND_MISSING;
    }
    /* A CRL's signature is verified at every use, nothing remembers it:
     * with CRL files in play the check is the pool's. */
    if (cached_only && crl_flags != 0 && sk_X509_CRL_num(t->crls) > 0) {
        snprintf(out->detail, sizeof(out->detail), "the trust has CRL files");
        rc = NOT_CACHED;
        goto out;
    }
    rc = run_verify(&r, crl_flags, crl_flags ? t->crls : NULL, tol, &err, &depth, &chain,
                    crl_flags ? &leaf_revoked : NULL);
    if (rc != 0)
        goto out;
    if (cached_only && err == DZ_CHAINSIG_NOT_MEMO) {
        snprintf(out->detail, sizeof(out->detail),
                 "a signature of the path not remembered (depth %d)", depth);
        rc = NOT_CACHED;
        goto out;
    }
    if (err != 0) {
        refuse_verify(out, err, depth);
        goto out;
    }

    /* 2. The floor: every key of the path, every signature but the
     * anchor's own (keyfloor.h). */
    {
        const char *weak = dz_keyfloor_chain(dz_keyfloor_store_get(t->store), chain, &depth,
                                             out->detail, sizeof(out->detail));
        if (weak != NULL) {
            char why[sizeof(out->detail)];

            memcpy(why, out->detail, sizeof(why));
            refuse(out, weak, "%s (depth %d)", why, depth);
            goto out;
        }
    }

    /* 3. What the leaf is for, and who it names. */
    if (!key_usage_ok(leaf, o->purpose, out))
        goto out;
    if (o->npolicies > 0) {
        bool found = false;
        for (i = 0; i < o->npolicies && !found; i++)
            found = o->policies[i] != NULL && dz_certid_has_policy(leaf, o->policies[i]);
        if (!found) {
            refuse(out, "wrong_policy", "the certificate carries none of the required policies");
            goto out;
        }
    }
    rc = dz_certid_extract(leaf, &id);
    if (rc == DZ_ERR_NOMEM)
        goto out;
    rc = 0;
    memcpy(out->role, id.role, sizeof(out->role));
    memcpy(out->name, id.name, sizeof(out->name));
    if (id.has_fin)
        memcpy(out->fin, id.fin, sizeof(out->fin));
    if (o->require_fin && !id.has_fin) {
        if (X509_NAME_get_index_by_NID(X509_get_subject_name(leaf), NID_serialNumber, -1) >= 0)
            refuse(out, "bad_fin", "the subject serialNumber is not PNOAZ-<FIN> or a FIN");
        else
            refuse(out, "no_fin", "the subject has no serialNumber");
        goto out;
    }

    /* 4. Revocation of the leaf: first what the trust's CRL files say
     * (noted in step 1; the rest of the path is good by now). */
    if (leaf_revoked) {
        X509 *issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;

        out->revocation_source = "crl";
        out->revocation_checked_at = crl_time(t->crls, leaf, issuer);
        out->revoked_at = crl_revoked_at(t->crls, leaf, issuer);
        refuse(out, "revoked", "the CRL lists the certificate");
        goto out;
    }
    switch (o->revocation) {
    case DZ_X509_REV_NONE:
        good = true;
        break;
    case DZ_X509_REV_CRL_ONLY:
        out->revocation_source = "crl";
        out->revocation_checked_at =
            crl_time(t->crls, leaf, sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL);
        good = true;
        break;
    case DZ_X509_REV_OCSP_CRL:
        rc = leaf_revocation(&r, chain, out, &good);
        if (rc != 0)
            goto out;
        break;
    default:
        rc = DZ_ERR_INVAL;
        goto out;
    }
    if (!good)
        goto out;

    out->valid = true;
    out->reason = "ok";
    out->detail[0] = '\0';
out:
    if (rc != 0) {
        out->valid = false;
        if (cached_only && rc == NOT_CACHED) {
            out->reason = "not_cached"; /* detail: what was missing */
        } else {
            out->reason = "internal";
            snprintf(out->detail, sizeof(out->detail), "%s", dz_err_str(rc));
        }
    }
    OPENSSL_free(der);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_free(r.untrusted);
    sk_ASN1_OBJECT_pop_free(r.initial, ASN1_OBJECT_free);
    return rc;
}

int dz_x509_validate(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                     const struct dz_x509_opts *o, struct dz_x509_result *out)
{
    return validate(t, leaf, untrusted, o, false, out);
}

int dz_x509_validate_cached(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                            const struct dz_x509_opts *o, struct dz_x509_result *out)
{
    return validate(t, leaf, untrusted, o, true, out);
}
