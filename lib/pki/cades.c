/*
 * cades.c - CAdES-B signing through a callback, level T by adding a
 * time-stamp token, and verification into an EN 319 102-1 style report
 * (see cades.h).  OpenSSL's CMS code parses and encodes; the checks that
 * decide (digest, signature, signing certificate, time-stamp, chain) are
 * made here one by one so that the report can say which failed.  It never
 * holds a private key and never trusts a certificate the validator
 * (x509check) has not accepted.
 */
#include "pki/cades.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "pki/certid.h"
#include "pki/keyfloor.h"
#include "pki/tsp.h"

#include "base/compat.h"

/* ------------------------------------------------------------ helpers */

struct der_item {
    unsigned char *p;
    size_t n;
};

static int der_cmp(const void *a, const void *b)
{
    const struct der_item *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);

    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* DER of the signed attributes as the SET OF that is signed (RFC 5652
 * 5.4: the EXPLICIT SET OF tag, not the [0] IMPLICIT one), elements sorted
 * as DER requires so that our bytes equal what OpenSSL re-encodes. */
static int signed_attrs_der(CMS_SignerInfo *si, unsigned char **out, size_t *out_len)
{
    int n = CMS_signed_get_attr_count(si);
    struct der_item items[16];
    size_t total = 0, hdr, off;
    int count = 0;
    unsigned char *buf = NULL;
    int rc = DZ_ERR_CRYPTO;

    *out = NULL;
    if (n <= 0 || n > 16)
        return DZ_ERR_INVAL;
    for (int i = 0; i < n; i++) {
        int len = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), NULL);
        unsigned char *p;

        if (len <= 0)
            goto out;
        items[count].p = OPENSSL_malloc((size_t)len);
        if (!items[count].p) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        p = items[count].p;
        items[count].n = (size_t)i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &p);
        total += items[count].n;
        count++;
    }
    qsort(items, (size_t)count, sizeof(items[0]), der_cmp);
    hdr = total < 128 ? 2 : total < 256 ? 3 : total < 65536 ? 4 : 5;
    buf = OPENSSL_malloc(hdr + total);
    if (!buf) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    buf[0] = 0x31;
    if (hdr == 2) {
        buf[1] = (unsigned char)total;
    } else {
        size_t k = hdr - 2;
        buf[1] = (unsigned char)(0x80 | k);
        for (size_t j = 0; j < k; j++)
            buf[2 + j] = (unsigned char)(total >> (8 * (k - 1 - j)));
    }
    off = hdr;
    for (int i = 0; i < count; i++) {
        memcpy(buf + off, items[i].p, items[i].n);
        off += items[i].n;
    }
    *out = buf;
    *out_len = off;
    buf = NULL;
    rc = 0;
out:
    for (int i = 0; i < count; i++)
        OPENSSL_free(items[i].p);
    OPENSSL_free(buf);
    return rc;
}

/* --------------------------------------------------------------- sign */

int dz_cades_sign_with_pkey(void *arg, const unsigned char *tbs, size_t tbs_len,
                            unsigned char **sig, size_t *sig_len)
{
    EVP_PKEY *key = arg;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *s = NULL;
    size_t n = 0;
    int rc = DZ_ERR_CRYPTO;

    *sig = NULL;
    *sig_len = 0;
    if (!md)
        return DZ_ERR_NOMEM;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &n, tbs, tbs_len) != 1)
        goto out;
    s = malloc(n); /* the caller frees with free() */
    if (!s || EVP_DigestSign(md, s, &n, tbs, tbs_len) != 1)
        goto out;
    *sig = s;
    *sig_len = n;
    s = NULL;
    rc = 0;
out:
    free(s);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

/* The SignedData with one SignerInfo carrying the signed attributes and an
 * empty signature value (CMS_PARTIAL); the caller frees *cms_out. */
static int build_partial(const void *doc, size_t doc_len, X509 *cert, STACK_OF(X509) * chain,
                         int64_t signing_time, CMS_ContentInfo **cms_out, CMS_SignerInfo **si_out)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    ASN1_TIME *t = NULL;
    unsigned char digest[32];
    time_t when = signing_time > 0 ? (time_t)signing_time : time(NULL);
    int rc = DZ_ERR_CRYPTO;

    *cms_out = NULL;
    *si_out = NULL;
    if (!doc || !cert || !X509_get0_pubkey(cert))
        return DZ_ERR_INVAL;
    if (doc_len > DZ_CADES_MAX_DOC)
        return DZ_ERR_TOOBIG;
    dz_sha256(doc, doc_len, digest);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_DETACHED | CMS_BINARY);
    if (!cms)
        goto out;
    /* The public key stands in for the private one: OpenSSL only compares
     * it with the certificate; with CMS_PARTIAL nothing is signed here. */
    si = CMS_add1_signer(cms, cert, X509_get0_pubkey(cert), EVP_sha256(),
                         CMS_PARTIAL | CMS_CADES | CMS_NOSMIMECAP | CMS_BINARY);
    if (!si)
        goto out;
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_cmp(x, cert) != 0 && CMS_add1_cert(cms, x) != 1)
            goto out;
    }
    t = X509_time_adj_ex(NULL, 0, 0, &when);
    if (!t ||
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                    OBJ_nid2obj(NID_pkcs7_data), -1) != 1 ||
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type, t, -1) != 1 ||
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, digest,
                                    sizeof(digest)) != 1)
        goto out;
    *cms_out = cms;
    *si_out = si;
    cms = NULL;
    rc = 0;
out:
    ASN1_TIME_free(t);
    CMS_ContentInfo_free(cms);
    return rc;
}

/* Put sig as the signature value of si and encode cms. */
static int set_signature(CMS_ContentInfo *cms, CMS_SignerInfo *si, const unsigned char *sig,
                         size_t sig_len, unsigned char **out, size_t *out_len)
{
    unsigned char *der = NULL;
    int n;

    if (!sig || sig_len == 0 || sig_len > DZ_CADES_MAX_SIG ||
        ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)sig_len) != 1)
        return DZ_ERR_CRYPTO;
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0)
        return DZ_ERR_CRYPTO;
    *out = der;
    *out_len = (size_t)n;
    return 0;
}

int dz_cades_sign(const void *doc, size_t doc_len, X509 *cert, STACK_OF(X509) * chain,
                  int64_t signing_time, dz_cades_sign_fn fn, void *arg, unsigned char **out,
                  size_t *out_len)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    unsigned char *tbs = NULL, *sig = NULL;
    size_t tbs_len = 0, sig_len = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!fn)
        return DZ_ERR_INVAL;
    rc = build_partial(doc, doc_len, cert, chain, signing_time, &cms, &si);
    if (rc)
        goto out;
    rc = signed_attrs_der(si, &tbs, &tbs_len);
    if (rc)
        goto out;
    rc = fn(arg, tbs, tbs_len, &sig, &sig_len);
    if (rc)
        goto out;
    rc = set_signature(cms, si, sig, sig_len, out, out_len);
out:
    OPENSSL_free(tbs);
    free(sig);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

int dz_cades_prepare(const void *doc, size_t doc_len, X509 *cert, STACK_OF(X509) * chain,
                     int64_t signing_time, unsigned char **partial, size_t *partial_len,
                     unsigned char tbs_digest[32])
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    unsigned char *tbs = NULL, *der = NULL;
    size_t tbs_len = 0;
    int n;
    int rc;

    *partial = NULL;
    *partial_len = 0;
    rc = build_partial(doc, doc_len, cert, chain, signing_time, &cms, &si);
    if (rc)
        goto out;
    rc = signed_attrs_der(si, &tbs, &tbs_len);
    if (rc)
        goto out;
    rc = DZ_ERR_CRYPTO;
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0)
        goto out;
    if ((size_t)n > DZ_CADES_MAX_SIG) {
        OPENSSL_free(der);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    dz_sha256(tbs, tbs_len, tbs_digest);
    *partial = der;
    *partial_len = (size_t)n;
    rc = 0;
out:
    OPENSSL_free(tbs);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* Parse exactly one detached SignedData with exactly one SignerInfo. */
static int parse_cms(const unsigned char *der, size_t len, CMS_ContentInfo **cms_out,
                     CMS_SignerInfo **si_out);
static int parse_one_signer(const unsigned char *der, size_t len, CMS_ContentInfo **cms_out,
                            CMS_SignerInfo **si_out);

int dz_cades_finish(const unsigned char *partial, size_t partial_len, const unsigned char *sig,
                    size_t sig_len, unsigned char **out, size_t *out_len)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    ASN1_OCTET_STRING *sv;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!sig || sig_len == 0 || sig_len > DZ_CADES_MAX_SIG)
        return DZ_ERR_INVAL;
    rc = parse_one_signer(partial, partial_len, &cms, &si);
    if (rc)
        goto out;
    sv = CMS_SignerInfo_get0_signature(si);
    if (!sv || ASN1_STRING_length(sv) != 0) {
        rc = DZ_ERR_PARSE; /* not a prepared (unsigned) SignedData */
        goto out;
    }
    rc = set_signature(cms, si, sig, sig_len, out, out_len);
out:
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------ level T */

/* Parse exactly one detached SignedData with exactly one SignerInfo. */
static int parse_cms(const unsigned char *der, size_t len, CMS_ContentInfo **cms_out,
                     CMS_SignerInfo **si_out)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms;
    STACK_OF(CMS_SignerInfo) * sis;

    *cms_out = NULL;
    *si_out = NULL;
    if (!der || len == 0)
        return DZ_ERR_PARSE;
    if (len > DZ_CADES_MAX_SIG)
        return DZ_ERR_TOOBIG;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (!cms || p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        CMS_ContentInfo_free(cms);
        ERR_clear_error();
        return DZ_ERR_PARSE;
    }
    sis = CMS_get0_SignerInfos(cms);
    *cms_out = cms;
    if (sis && sk_CMS_SignerInfo_num(sis) == 1)
        *si_out = sk_CMS_SignerInfo_value(sis, 0);
    return 0;
}

/* parse_cms for the steps that need the signer: a SignedData without
 * exactly one SignerInfo is malformed input here (only the validator
 * reports it as a finding instead). */
static int parse_one_signer(const unsigned char *der, size_t len, CMS_ContentInfo **cms_out,
                            CMS_SignerInfo **si_out)
{
    int rc = parse_cms(der, len, cms_out, si_out);

    return rc == 0 && !*si_out ? DZ_ERR_PARSE : rc;
}

int dz_cades_signature_digest(const unsigned char *cms_der, size_t len, unsigned char digest[32])
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    ASN1_OCTET_STRING *sv;
    int rc = parse_one_signer(cms_der, len, &cms, &si);

    if (rc == 0) {
        sv = CMS_SignerInfo_get0_signature(si);
        if (!sv || ASN1_STRING_length(sv) <= 0)
            rc = DZ_ERR_PARSE;
        else
            dz_sha256(ASN1_STRING_get0_data(sv), (size_t)ASN1_STRING_length(sv), digest);
    }
    CMS_ContentInfo_free(cms);
    return rc;
}

int dz_cades_add_timestamp(const unsigned char *cms_der, size_t len, const unsigned char *token,
                           size_t token_len, unsigned char **out, size_t *out_len)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    unsigned char *der = NULL;
    int n;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!token || token_len == 0 || token_len > DZ_TSP_MAX_TOKEN)
        return DZ_ERR_INVAL;
    rc = parse_one_signer(cms_der, len, &cms, &si);
    if (rc)
        goto out;
    if (CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1) >= 0) {
        rc = DZ_ERR_EXISTS;
        goto out;
    }
    rc = DZ_ERR_CRYPTO;
    if (CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE, token,
                                      (int)token_len) != 1)
        goto out;
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0)
        goto out;
    *out = der;
    *out_len = (size_t)n;
    rc = 0;
out:
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* The length of the DER header at p (within n bytes) and of its contents;
 * false when it is not a definite-length element that fits. */
static bool der_elem(const unsigned char *p, size_t n, size_t *hdr, size_t *clen)
{
    const unsigned char *q = p;
    long l = 0;
    int tag, cls;
    int r = ASN1_get_object(&q, &l, &tag, &cls, (long)n);

    ERR_clear_error();
    if ((r & 0x80) || (r & 0x01) || l < 0)
        return false;
    *hdr = (size_t)(q - p);
    *clen = (size_t)l;
    return *hdr + *clen <= n;
}

/*
 * OpenSSL encodes a SignerInfo whose unsigned attributes were all deleted
 * with an empty [1] SET, which RFC 5652 forbids (SIZE (1..MAX)) and which
 * is not the signature as the signer made it.  It is the last element of
 * the SignerInfo, itself the last of the SignerInfos SET, the last of the
 * SignedData, inside the last of the ContentInfo: drop its two bytes and
 * shorten the five headers around it.  0, DZ_ERR_PARSE, DZ_ERR_NOMEM.
 */
static int drop_empty_unsigned(unsigned char *der, size_t len, unsigned char **out, size_t *out_len)
{
    enum { LEVELS = 5 }; /* ContentInfo, [0], SignedData, SignerInfos, SignerInfo */
    size_t start[LEVELS], hdr[LEVELS], clen[LEVELS];
    size_t pos = 0, end = len, o = 0;
    unsigned char *buf;

    for (int i = 0; i < LEVELS; i++) {
        size_t child = pos, h, c;
        if (i > 0) { /* the last child of the element above */
            for (size_t q = pos; q < end; q += h + c) {
                if (!der_elem(der + q, end - q, &h, &c))
                    return DZ_ERR_PARSE;
                child = q;
            }
        }
        if (!der_elem(der + child, end - child, &hdr[i], &clen[i]) ||
            child + hdr[i] + clen[i] != end)
            return DZ_ERR_PARSE;
        start[i] = child;
        pos = child + hdr[i];
        end = pos + clen[i];
    }
    if (clen[LEVELS - 1] < 2 || der[end - 2] != 0xa1 || der[end - 1] != 0x00)
        return DZ_ERR_PARSE;
    buf = OPENSSL_malloc(len);
    if (!buf)
        return DZ_ERR_NOMEM;
    for (int i = 0; i < LEVELS; i++) {
        size_t from = start[i] + hdr[i];
        size_t upto = i + 1 < LEVELS ? start[i + 1] : end - 2;
        unsigned char *p = buf + o;

        /* The tag byte as it was, then the shorter length. */
        ASN1_put_object(&p, der[start[i]] & V_ASN1_CONSTRUCTED ? 1 : 0, (int)(clen[i] - 2),
                        der[start[i]] & 0x1f, der[start[i]] & 0xc0);
        o = (size_t)(p - buf);
        memcpy(buf + o, der + from, upto - from);
        o += upto - from;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* The one time-stamp token at unsigned attribute idx of si, checked as
 * the gateway checks its own (see dz_cades_clean_unsigned). */
static bool fresh_timestamp(CMS_SignerInfo *si, int idx, X509_STORE *tsa_trust, int64_t now)
{
    X509_ATTRIBUTE *at = CMS_unsigned_get_attr(si, idx);
    ASN1_TYPE *ts = at && X509_ATTRIBUTE_count(at) == 1 ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;
    ASN1_OCTET_STRING *sv = CMS_SignerInfo_get0_signature(si);
    struct dz_tsp_info info;
    unsigned char d[32];

    if (!tsa_trust || !ts || ts->type != V_ASN1_SEQUENCE || !sv)
        return false;
    dz_sha256(ASN1_STRING_get0_data(sv), (size_t)ASN1_STRING_length(sv), d);
    if (dz_tsp_verify_token(ASN1_STRING_get0_data(ts->value.sequence),
                            (size_t)ASN1_STRING_length(ts->value.sequence), d, NULL, tsa_trust,
                            &info, NULL, 0) != 0)
        return false;
    return info.gen_time <= now + DZ_TSP_FRESH_SKEW_S && info.gen_time >= now - DZ_TSP_FRESH_SKEW_S;
}

int dz_cades_clean_unsigned(const unsigned char *cms_der, size_t len, X509_STORE *tsa_trust,
                            int64_t now, unsigned char **out, size_t *out_len, bool *kept_ts,
                            unsigned *removed)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    int n, ts_count = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    *kept_ts = false;
    *removed = 0;
    rc = parse_one_signer(cms_der, len, &cms, &si);
    if (rc)
        goto out;
    n = CMS_unsigned_get_attr_count(si);
    for (int i = 0; i < n; i++) {
        if (OBJ_obj2nid(X509_ATTRIBUTE_get0_object(CMS_unsigned_get_attr(si, i))) ==
            NID_id_smime_aa_timeStampToken)
            ts_count++;
    }
    /* From the end, so that the indexes still to visit do not move. */
    for (int i = n - 1; i >= 0; i--) {
        X509_ATTRIBUTE *at = CMS_unsigned_get_attr(si, i);
        if (ts_count == 1 &&
            OBJ_obj2nid(X509_ATTRIBUTE_get0_object(at)) == NID_id_smime_aa_timeStampToken &&
            fresh_timestamp(si, i, tsa_trust, now)) {
            *kept_ts = true;
            continue;
        }
        X509_ATTRIBUTE_free(CMS_unsigned_delete_attr(si, i));
        (*removed)++;
    }
    if (*removed == 0) {
        *out = OPENSSL_memdup(cms_der, len);
        *out_len = len;
        rc = *out ? 0 : DZ_ERR_NOMEM;
        goto out;
    }
    n = i2d_CMS_ContentInfo(cms, out);
    if (n <= 0) {
        *out = NULL;
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    *out_len = (size_t)n;
    if (CMS_unsigned_get_attr_count(si) <= 0) {
        unsigned char *full = *out;
        rc = drop_empty_unsigned(full, *out_len, out, out_len);
        OPENSSL_free(full);
        if (rc)
            *out = NULL;
    }
out:
    if (rc) {
        *kept_ts = false;
        *removed = 0;
    }
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------- verify */

static void add_check(struct dz_cades_report *r, const char *name, const char *result,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_check(struct dz_cades_report *r, const char *name, const char *result,
                      const char *fmt, ...)
{
    struct dz_cades_check *c;
    va_list ap;

    if (r->nchecks >= DZ_CADES_MAX_CHECKS)
        return;
    c = &r->checks[r->nchecks++];
    c->name = name;
    c->result = result;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

/* The one value of a signed (or unsigned) attribute; NULL when absent,
 * repeated or multi-valued (each is a format error for the caller). */
static ASN1_TYPE *attr_value(CMS_SignerInfo *si, int nid, bool is_signed, bool *repeated)
{
    int idx = is_signed ? CMS_signed_get_attr_by_NID(si, nid, -1)
                        : CMS_unsigned_get_attr_by_NID(si, nid, -1);
    X509_ATTRIBUTE *at;

    *repeated = false;
    if (idx < 0)
        return NULL;
    if ((is_signed ? CMS_signed_get_attr_by_NID(si, nid, idx)
                   : CMS_unsigned_get_attr_by_NID(si, nid, idx)) >= 0) {
        *repeated = true;
        return NULL;
    }
    at = is_signed ? CMS_signed_get_attr(si, idx) : CMS_unsigned_get_attr(si, idx);
    if (!at || X509_ATTRIBUTE_count(at) != 1) {
        *repeated = true;
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(at, 0);
}

static const char *x509_sub_indication(const char *reason, bool *total_failed)
{
    *total_failed = false;
    if (strcmp(reason, "unknown_ca") == 0)
        return "NO_CERTIFICATE_CHAIN_FOUND";
    if (strcmp(reason, "revoked") == 0) {
        *total_failed = true;
        return "REVOKED";
    }
    if (strcmp(reason, "expired") == 0)
        return "OUT_OF_BOUNDS_NO_POE";
    if (strcmp(reason, "not_yet_valid") == 0)
        return "NOT_YET_VALID";
    if (strcmp(reason, "revocation_unknown") == 0)
        return "TRY_LATER";
    if (strcmp(reason, "bad_key_usage") == 0 || strcmp(reason, "wrong_policy") == 0 ||
        strcmp(reason, "not_end_entity") == 0)
        return "CHAIN_CONSTRAINTS_FAILURE";
    /* EN 319 102-1: an algorithm or key size no longer trusted, and no
     * proof of existence from before it was broken. */
    if (strcmp(reason, "weak_key") == 0 || strcmp(reason, "weak_signature") == 0)
        return "CRYPTO_CONSTRAINTS_FAILURE_NO_POE";
    return "CERTIFICATE_CHAIN_GENERAL_FAILURE";
}

static X509 *find_signer(CMS_ContentInfo *cms, CMS_SignerInfo *si, STACK_OF(X509) * *others)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    X509 *signer = NULL;

    *others = sk_X509_new_null();
    for (int i = 0; certs && i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (!signer && CMS_SignerInfo_cert_cmp(si, x) == 0) {
            X509_up_ref(x);
            signer = x;
        } else if (*others && sk_X509_num(*others) < DZ_X509_MAX_UNTRUSTED) {
            X509_up_ref(x);
            if (!sk_X509_push(*others, x))
                X509_free(x);
        }
    }
    sk_X509_pop_free(certs, X509_free);
    return signer;
}

/* The verdict: the most serious finding wins (TOTAL_FAILED over
 * INDETERMINATE); within a class, the first one found. */
struct verdict {
    const char *failed;        /* TOTAL_FAILED sub-indication */
    const char *indeterminate; /* INDETERMINATE sub-indication */
};

static void fail(struct verdict *v, const char *sub)
{
    if (!v->failed)
        v->failed = sub;
}

static void indet(struct verdict *v, const char *sub)
{
    if (!v->indeterminate)
        v->indeterminate = sub;
}

static void check_signed_attrs(CMS_SignerInfo *si, const void *doc, size_t doc_len,
                               const unsigned char *doc_sha256, struct dz_cades_report *out,
                               struct verdict *v)
{
    bool rep = false;
    ASN1_TYPE *ct, *md, *st, *ess;
    const EVP_MD *dig;
    X509_ALGOR *dalg = NULL;
    const ASN1_OBJECT *doid = NULL;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;

    ct = attr_value(si, NID_pkcs9_contentType, true, &rep);
    if (!ct || ct->type != V_ASN1_OBJECT || OBJ_obj2nid(ct->value.object) != NID_pkcs7_data) {
        add_check(out, "signed_attributes", "failed", "content-type %s",
                  rep ? "repeated" : "missing or not id-data");
        fail(v, "FORMAT_FAILURE");
    }
    st = attr_value(si, NID_pkcs9_signingTime, true, &rep);
    if (st && (st->type == V_ASN1_UTCTIME || st->type == V_ASN1_GENERALIZEDTIME))
        out->signing_time = dz_tsp_time_unix(st->value.utctime);
    if (!out->signing_time) {
        add_check(out, "signed_attributes", "failed", "signing-time %s",
                  rep ? "repeated" : "missing or unreadable");
        fail(v, "FORMAT_FAILURE");
    }
    ess = attr_value(si, NID_id_smime_aa_signingCertificateV2, true, &rep);
    if (!ess || ess->type != V_ASN1_SEQUENCE) {
        add_check(out, "signed_attributes", "failed", "ESS signing-certificate-v2 %s",
                  rep ? "repeated" : "missing");
        fail(v, "FORMAT_FAILURE");
    }
    if (!v->failed)
        add_check(out, "signed_attributes", "passed",
                  "content-type, signing-time, ESS signing-certificate-v2 present");

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dalg, NULL);
    if (dalg)
        X509_ALGOR_get0(&doid, NULL, NULL, dalg);
    dig = doid ? EVP_get_digestbyobj(doid) : NULL;
    if (!dig || (EVP_MD_get_type(dig) != NID_sha256 && EVP_MD_get_type(dig) != NID_sha384 &&
                 EVP_MD_get_type(dig) != NID_sha512)) {
        add_check(out, "message_digest", "failed", "digest algorithm not SHA-256/384/512");
        fail(v, "FORMAT_FAILURE");
        return;
    }
    md = attr_value(si, NID_pkcs9_messageDigest, true, &rep);
    if (!md || md->type != V_ASN1_OCTET_STRING) {
        add_check(out, "message_digest", "failed", "message-digest attribute %s",
                  rep ? "repeated" : "missing");
        fail(v, "FORMAT_FAILURE");
        return;
    }
    if (doc_sha256 && EVP_MD_get_type(dig) == NID_sha256) {
        memcpy(h, doc_sha256, 32); /* the caller hashed the document */
        hlen = 32;
    } else if (doc_sha256 || EVP_Digest(doc, doc_len, h, &hlen, dig, NULL) != 1) {
        add_check(out, "message_digest", "failed", "cannot hash the document");
        fail(v, "FORMAT_FAILURE");
        return;
    }
    if ((size_t)ASN1_STRING_length(md->value.octet_string) != hlen ||
        CRYPTO_memcmp(ASN1_STRING_get0_data(md->value.octet_string), h, hlen) != 0) {
        add_check(out, "message_digest", "failed",
                  "the document's %s digest differs from the signed message-digest",
                  EVP_MD_get0_name(dig));
        fail(v, "HASH_FAILURE");
        return;
    }
    add_check(out, "message_digest", "passed", "%s of the document matches", EVP_MD_get0_name(dig));
}

static void check_ess(CMS_SignerInfo *si, X509 *signer, struct dz_cades_report *out,
                      struct verdict *v)
{
    bool rep = false, rep1 = false;
    ASN1_TYPE *ess = attr_value(si, NID_id_smime_aa_signingCertificateV2, true, &rep);
    ASN1_TYPE *ess1 = attr_value(si, NID_id_smime_aa_signingCertificate, true, &rep1);
    ESS_SIGNING_CERT_V2 *sc = NULL;
    ESS_SIGNING_CERT *sc1 = NULL;
    STACK_OF(X509) *one = sk_X509_new_null();
    const unsigned char *p;
    char why[128];
    int ok = -1;

    if (!ess || ess->type != V_ASN1_SEQUENCE)
        goto out; /* reported by check_signed_attrs */
    p = ASN1_STRING_get0_data(ess->value.sequence);
    sc = d2i_ESS_SIGNING_CERT_V2(NULL, &p, ASN1_STRING_length(ess->value.sequence));
    /* A signing-certificate (v1) beside it is signed too and names a
     * certificate as well: it must name the same one.  OpenSSL's own CMS
     * verification (and so `openssl cms -verify`) checks both; passing one
     * that it refuses would let a signer later disown the signature. */
    if (ess1) {
        p = ess1->type == V_ASN1_SEQUENCE ? ASN1_STRING_get0_data(ess1->value.sequence) : NULL;
        sc1 = p ? d2i_ESS_SIGNING_CERT(NULL, &p, ASN1_STRING_length(ess1->value.sequence)) : NULL;
    }
    if (sc && one && sk_X509_push(one, signer) && !rep1 && (!ess1 || sc1))
        ok = OSSL_ESS_check_signing_certs(sc1, sc, one, 1);
    /* The hash that binds the signature to its certificate is held to the
     * floor: ESSCertIDv2 defaults to SHA-256, and an explicit SHA-1 or MD5
     * is a downgrade (a certificate made to collide would be named too). */
    if (ok > 0 &&
        !dz_keyfloor_ess_v2_ok(NULL, ASN1_STRING_get0_data(ess->value.sequence),
                               (size_t)ASN1_STRING_length(ess->value.sequence), why, sizeof(why))) {
        add_check(out, "signing_certificate", "failed", "weak_signature: %s", why);
        indet(v, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE");
    } else if (ok > 0) {
        add_check(out, "signing_certificate", "passed",
                  "ESS signing-certificate-v2 names the signer's certificate");
    } else {
        add_check(out, "signing_certificate", "failed",
                  "ESS signing-certificate%s does not name the certificate that signed",
                  ess1 || rep1 ? "(-v2)" : "-v2");
        indet(v, "NO_SIGNING_CERTIFICATE_FOUND");
    }
out:
    sk_X509_free(one); /* signer is borrowed */
    ESS_SIGNING_CERT_V2_free(sc);
    ESS_SIGNING_CERT_free(sc1);
    ERR_clear_error();
}

static void check_timestamp(CMS_SignerInfo *si, const struct dz_cades_verify_opts *o,
                            struct dz_cades_report *out, struct verdict *v)
{
    bool rep = false;
    ASN1_TYPE *ts = attr_value(si, NID_id_smime_aa_timeStampToken, false, &rep);
    ASN1_OCTET_STRING *sv = CMS_SignerInfo_get0_signature(si);
    unsigned char d[32];
    struct dz_tsp_info info;
    char detail[160];
    int rc;

    if (!ts && !rep) {
        add_check(out, "timestamp", "absent", "no signature time-stamp (level B)");
        if (o->require_t)
            indet(v, "SIG_CONSTRAINTS_FAILURE");
        return;
    }
    if (!ts || ts->type != V_ASN1_SEQUENCE) {
        add_check(out, "timestamp", "failed", "signature time-stamp attribute malformed");
        indet(v, "SIG_CONSTRAINTS_FAILURE");
        return;
    }
    if (!o->tsa_trust) {
        add_check(out, "timestamp", "indeterminate", "no TSA trust configured");
        indet(v, "SIG_CONSTRAINTS_FAILURE");
        return;
    }
    dz_sha256(ASN1_STRING_get0_data(sv), (size_t)ASN1_STRING_length(sv), d);
    rc = dz_tsp_verify_token(ASN1_STRING_get0_data(ts->value.sequence),
                             (size_t)ASN1_STRING_length(ts->value.sequence), d, NULL, o->tsa_trust,
                             &info, detail, sizeof(detail));
    if (rc) {
        add_check(out, "timestamp", "failed", "%s", detail[0] ? detail : dz_err_str(rc));
        indet(v, "SIG_CONSTRAINTS_FAILURE");
        return;
    }
    if (out->signing_time && out->signing_time > info.gen_time + DZ_CADES_TS_SKEW_S) {
        add_check(out, "timestamp", "failed", "signing-time is after the time-stamp");
        indet(v, "TIMESTAMP_ORDER_FAILURE");
        return;
    }
    out->timestamp_time = info.gen_time;
    out->level = 'T';
    add_check(out, "timestamp", "passed", "RFC 3161 token by %s over the signature value",
              info.tsa_name[0] ? info.tsa_name : "the TSA");
}

/*
 * A revoked signing certificate whose revocation time is known (EN 319
 * 102-1, validation with time): a good time-stamp before the revocation is
 * proof that the signature existed while the certificate was good, so it
 * passes; a signing time the signer claims at or after the revocation fails
 * (REVOKED); in between, nothing proves which came first (REVOKED_NO_POE).
 * The chain, key usage and policy were checked before revocation, so the
 * certificate is otherwise good.
 */
static void revoked_with_time(const struct dz_x509_result *res, struct dz_cades_report *out,
                              struct verdict *v)
{
    char when[32];
    struct tm tm;
    time_t t = (time_t)res->revoked_at;

    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof(when), "%lld", (long long)res->revoked_at);
    if (out->level == 'T' && out->timestamp_time > 0 && out->timestamp_time < res->revoked_at) {
        add_check(out, "certificate", "passed",
                  "revoked at %s, after the time-stamp proves the signature existed (%s)", when,
                  res->revocation_source ? res->revocation_source : "revocation");
        return;
    }
    if (out->signing_time > 0 && out->signing_time >= res->revoked_at) {
        add_check(out, "certificate", "failed", "revoked at %s, before the signing time", when);
        fail(v, "REVOKED");
        return;
    }
    add_check(out, "certificate", "indeterminate",
              "revoked at %s; no time-stamp proves the signature is older", when);
    indet(v, "REVOKED_NO_POE");
}

static void check_certificate(X509 *signer, STACK_OF(X509) * others,
                              const struct dz_cades_verify_opts *o, struct dz_cades_report *out,
                              struct verdict *v)
{
    const struct dz_cades_anchor *a = NULL;
    const char *pol[1];
    struct dz_x509_opts xo;
    struct dz_x509_result res;
    bool total = false;
    const char *sub;
    int rc;

    for (size_t i = 0; i < o->nanchors && !a; i++) {
        if (o->anchors[i].trust && o->anchors[i].policy &&
            dz_certid_has_policy(signer, o->anchors[i].policy))
            a = &o->anchors[i];
    }
    if (!a && o->nanchors)
        a = &o->anchors[0];
    if (!a || !a->trust) {
        add_check(out, "certificate", "indeterminate", "no trust anchors configured");
        indet(v, "NO_CERTIFICATE_CHAIN_FOUND");
        return;
    }
    memset(&xo, 0, sizeof(xo));
    xo.purpose = DZ_X509_PURPOSE_SIGN;
    if (a->policy) {
        pol[0] = a->policy;
        xo.policies = pol;
        xo.npolicies = 1;
    }
    xo.revocation = o->revocation;
    xo.at = o->at;
    xo.fetch_timeout_ms = o->fetch_timeout_ms;
    xo.ocsp_cache = o->ocsp_cache;
    rc = dz_x509_validate(a->trust, signer, others, &xo, &res);
    if (res.fin[0])
        memcpy(out->fin, res.fin, sizeof(out->fin));
    if (res.name[0])
        snprintf(out->name, sizeof(out->name), "%s", res.name);
    if (res.role[0])
        snprintf(out->role, sizeof(out->role), "%s", res.role);
    if (rc == 0 && !res.valid && res.reason && strcmp(res.reason, "revoked") == 0 &&
        res.revoked_at > 0) {
        revoked_with_time(&res, out, v);
        return;
    }
    if (rc != 0 || !res.valid) {
        const char *reason = rc ? "internal" : res.reason ? res.reason : "internal";
        sub = x509_sub_indication(reason, &total);
        add_check(out, "certificate", total ? "failed" : "indeterminate", "%s%s%s", reason,
                  res.detail[0] ? ": " : "", res.detail);
        if (total)
            fail(v, sub);
        else
            indet(v, sub);
        return;
    }
    add_check(out, "certificate", "passed",
              "chain to a trusted CA, keyUsage nonRepudiation, policy, revocation (%s)",
              res.revocation_source ? res.revocation_source : "none");
}

/* doc_sha256 non-NULL: the document is known only by its SHA-256. */
static int verify_impl(const void *doc, size_t doc_len, const unsigned char *doc_sha256,
                       const unsigned char *cms_der, size_t cms_len,
                       const struct dz_cades_verify_opts *o, struct dz_cades_report *out)
{
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    X509 *signer = NULL;
    STACK_OF(X509) *others = NULL;
    struct verdict v = {NULL, NULL};
    struct dz_certid id;
    ASN1_OCTET_STRING **pos;
    X509_ALGOR *psig = NULL;
    char why[160];
    int rc;

    memset(out, 0, sizeof(*out));
    out->indication = "TOTAL_FAILED";
    out->sub_indication = "FORMAT_FAILURE";
    out->level = 'B';
    if (!o || (!doc && doc_len) || !out)
        return DZ_ERR_INVAL;
    if (doc_len > DZ_CADES_MAX_DOC)
        return DZ_ERR_TOOBIG;
    rc = parse_cms(cms_der, cms_len, &cms, &si);
    if (rc)
        return rc;
    pos = CMS_get0_content(cms);
    if (!si) {
        add_check(out, "format", "failed", "a CAdES signature has exactly one signer");
        goto done;
    }
    if (pos && *pos) {
        add_check(out, "format", "failed", "the signature must be detached");
        goto done;
    }
    if (CMS_signed_get_attr_count(si) <= 0) {
        add_check(out, "format", "failed", "no signed attributes");
        goto done;
    }
    add_check(out, "format", "passed", "CMS SignedData, detached, one signer");
    signer = find_signer(cms, si, &others);
    if (!signer) {
        add_check(out, "signing_certificate", "failed",
                  "the signer's certificate is not in the signature");
        out->indication = "INDETERMINATE";
        out->sub_indication = "NO_SIGNING_CERTIFICATE_FOUND";
        goto done;
    }
    out->has_signer = true;
    {
        unsigned char *der = NULL;
        int n = i2d_X509(signer, &der);
        if (n > 0)
            dz_sha256(der, (size_t)n, out->certificate_sha256);
        OPENSSL_free(der);
    }
    if (dz_certid_extract(signer, &id) == 0) {
        memcpy(out->fin, id.fin, sizeof(out->fin));
        snprintf(out->name, sizeof(out->name), "%s", id.name);
        snprintf(out->role, sizeof(out->role), "%s", id.role);
    }
    check_signed_attrs(si, doc, doc_len, doc_sha256, out, &v);
    /* The signer writes signing-time: one after the validation time is a
     * claim no signature made so far can truly make.  Shown as it is, it
     * would stand in the report as when the document was signed, and the
     * gateway would time-stamp it into a level T whose time-stamp comes
     * before its signing (TIMESTAMP_ORDER_FAILURE for every later reader). */
    if (out->signing_time > (o->at ? o->at : (int64_t)time(NULL)) + DZ_CADES_TS_SKEW_S) {
        add_check(out, "signed_attributes", "failed", "signing-time is in the future");
        indet(&v, "SIG_CONSTRAINTS_FAILURE");
    }
    /* RFC 5652 11.1: the content-type attribute must equal eContentType.
     * The attribute is signed and must be id-data; eContentType is not
     * under the signature, so it is compared here, or an altered one (a
     * flipped bit in its OID) would pass unseen. */
    if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
        add_check(out, "signed_attributes", "failed",
                  "eContentType is not id-data, the signed content-type");
        fail(&v, "FORMAT_FAILURE");
    }
    check_ess(si, signer, out, &v);
    CMS_SignerInfo_set1_signer_cert(si, signer);
    /* The digest is held to SHA-256/384/512 above; the signature algorithm
     * may name a hash of its own (sha1WithRSAEncryption, ecdsa-with-SHA1,
     * PSS parameters): the floor (keyfloor.h) holds for it too. */
    CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &psig);
    if (!dz_keyfloor_sigalg_ok(NULL, psig, true, why, sizeof(why))) {
        add_check(out, "signature", "failed", "weak_signature: %s", why);
        indet(&v, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE");
    } else if (CMS_SignerInfo_verify(si) == 1) {
        add_check(out, "signature", "passed", "the signature over the signed attributes verifies");
    } else {
        add_check(out, "signature", "failed",
                  "the signature does not verify with the certificate's key");
        fail(&v, "SIG_CRYPTO_FAILURE");
    }
    ERR_clear_error();
    check_timestamp(si, o, out, &v);
    check_certificate(signer, others, o, out, &v);
    if (v.failed) {
        out->indication = "TOTAL_FAILED";
        out->sub_indication = v.failed;
    } else if (v.indeterminate) {
        out->indication = "INDETERMINATE";
        out->sub_indication = v.indeterminate;
    } else {
        out->indication = "TOTAL_PASSED";
        out->sub_indication = NULL;
    }
done:
    X509_free(signer);
    sk_X509_pop_free(others, X509_free);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return 0;
}

int dz_cades_verify(const void *doc, size_t doc_len, const unsigned char *cms_der, size_t cms_len,
                    const struct dz_cades_verify_opts *o, struct dz_cades_report *out)
{
    return verify_impl(doc, doc_len, NULL, cms_der, cms_len, o, out);
}

int dz_cades_verify_sha256(const unsigned char doc_sha256[32], const unsigned char *cms_der,
                           size_t cms_len, const struct dz_cades_verify_opts *o,
                           struct dz_cades_report *out)
{
    if (!doc_sha256) {
        memset(out, 0, sizeof(*out));
        out->indication = "TOTAL_FAILED";
        out->sub_indication = "FORMAT_FAILURE";
        out->level = 'B';
        return DZ_ERR_INVAL;
    }
    return verify_impl("", 0, doc_sha256, cms_der, cms_len, o, out);
}

static json_t *time_json(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];

    if (t <= 0 || !gmtime_r(&tt, &tm))
        return json_null();
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *dz_cades_report_json(const struct dz_cades_report *r)
{
    json_t *o = json_object();
    json_t *checks = json_array();
    json_t *signer = json_null();
    char hex[65];
    char lv[2] = {r->level, '\0'};

    if (!o || !checks)
        goto fail;
    if (r->has_signer) {
        dz_hex(r->certificate_sha256, 32, hex);
        json_decref(signer);
        signer = json_pack("{s:s?, s:s, s:s, s:s}", "fin", r->fin[0] ? r->fin : NULL, "name",
                           r->name, "role", r->role, "certificate_sha256", hex);
        if (!signer)
            goto fail;
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        if (json_array_append_new(checks, json_pack("{s:s, s:s, s:s}", "name", r->checks[i].name,
                                                    "result", r->checks[i].result, "detail",
                                                    r->checks[i].detail)) != 0)
            goto fail;
    }
    if (json_object_set_new(o, "indication", json_string(r->indication)) ||
        json_object_set_new(o, "sub_indication",
                            r->sub_indication ? json_string(r->sub_indication) : json_null()) ||
        json_object_set_new(o, "signer", signer) ||
        json_object_set_new(o, "signing_time", time_json(r->signing_time)) ||
        json_object_set_new(o, "timestamp_time", time_json(r->timestamp_time)) ||
        json_object_set_new(o, "level", json_string(lv)) ||
        json_object_set_new(o, "checks", checks)) {
        signer = NULL;
        checks = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(signer);
    json_decref(checks);
    json_decref(o);
    return NULL;
}
