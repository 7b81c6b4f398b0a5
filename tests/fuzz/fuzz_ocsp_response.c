/*
 * fuzz_ocsp_response.c - arbitrary bytes as the DER OCSPResponse a
 * responder sends back, judged by dz_ocsp_response_check: the function the
 * certificate validator (lib/pki/x509check.c, through dz_ocsp_query) runs
 * on every answer before it believes or caches it.
 *
 * Fixed material (pki_fixture.h, made by make_pki_corpus.sh from the demo
 * PKI): the E-Signature CA, its delegated responder, three card
 * certificates (good, revoked, unknown to the responder) and the
 * OCSPRequest, with its nonce, that was sent for each; the checks run at
 * the time the seeds were answered (FX_NOW).  Each input is checked for
 * each of the three certificates, with its request and without one (the
 * stored-answer path), and three days later.  An input that parses as a
 * successful basic response is then re-signed with the responder's key
 * (its answers, extensions and certificates as mutated, in a new basic
 * response; the responder ID by name or by key) and checked again the same
 * way: without that the fuzzer would never get past the signature to the
 * nonce, CertID, status and time checks behind it.
 *
 * Promises checked besides "no crash, no leak":
 *  - an answer the checker accepts parses as a successful basic response,
 *    is signed by the trusted responder or the CA itself (verified here with
 *    only that certificate), carries the nonce of the request, answers for
 *    exactly that certificate's CertID with the status reported (and the
 *    revocation reason), is fresh at the time of the check, and *out's
 *    digest is of the input;
 *  - a refused answer leaves *out cleared;
 *  - requiring the nonce only ever refuses more, and does not change an
 *    accepted answer;
 *  - every committed seed gets the verdict recorded for it (so a change of
 *    verdict fails the replay in `make test`).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include "base/err.h"
#include "base/secret.h"
#include "pki/ocsp.h"

#define FX_OCSP /* the OCSP half of the fixture */
#include "pki_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCASES 3
#define LATER (3 * 86400) /* past the seeds' nextUpdate (-ndays 1) */

static struct {
    X509 *issuer;
    X509 *responder;
    EVP_PKEY *responder_key;
    X509 *leaf[NCASES];
    OCSP_REQUEST *req[NCASES];
    OCSP_CERTID *id[NCASES];
} fx;

static void fail(const char *what, int c)
{
    fprintf(stderr, "fuzz_ocsp_response: %s (case %d)\n", what, c);
    abort();
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (!x)
        fail("fixture certificate does not parse", -1);
    return x;
}

static OCSP_REQUEST *der_req(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_REQUEST *r = d2i_OCSP_REQUEST(NULL, &p, (long)len);

    if (!r || p != der + len)
        fail("fixture request does not parse", -1);
    return r;
}

static void init(void)
{
    static const char *leaves[NCASES] = {FX_LEAF_GOOD_PEM, FX_LEAF_REVOKED_PEM,
                                         FX_LEAF_UNKNOWN_PEM};

    fx.issuer = pem_cert(FX_ESIGN_CA_PEM);
    fx.responder = pem_cert(FX_ESIGN_OCSP_PEM);
    {
        BIO *b = BIO_new_mem_buf(FX_ESIGN_OCSP_KEY_PEM, -1);
        fx.responder_key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!fx.responder_key)
            fail("fixture key does not parse", -1);
    }
    fx.req[0] = der_req(FX_REQ_GOOD, sizeof(FX_REQ_GOOD));
    fx.req[1] = der_req(FX_REQ_REVOKED, sizeof(FX_REQ_REVOKED));
    fx.req[2] = der_req(FX_REQ_UNKNOWN, sizeof(FX_REQ_UNKNOWN));
    for (int c = 0; c < NCASES; c++) {
        fx.leaf[c] = pem_cert(leaves[c]);
        fx.id[c] = OCSP_cert_to_id(EVP_sha1(), fx.leaf[c], fx.issuer);
        if (!fx.id[c])
            fail("no CertID", c);
    }
}

/* Signed by exactly cert (found nowhere else, chain not considered)? */
static bool signed_by(OCSP_BASICRESP *bs, X509 *cert)
{
    STACK_OF(X509) *st = sk_X509_new_null();
    bool ok = st && sk_X509_push(st, cert) &&
              OCSP_basic_verify(bs, st, NULL, OCSP_NOINTERN | OCSP_NOVERIFY) == 1;

    sk_X509_free(st);
    ERR_clear_error();
    return ok;
}

/* What an accepted answer must be, checked apart from the checker. */
static void check_accepted(const uint8_t *data, size_t size, int c, OCSP_REQUEST *req, int64_t now,
                           const struct dz_ocsp_answer *a)
{
    const unsigned char *p = data;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)size);
    OCSP_BASICRESP *bs = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    unsigned char sha[32];
    int status = -1, reason = -1;

    if (!resp || p != data + size)
        fail("accepted answer does not parse as a whole", c);
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        fail("accepted answer is not successful", c);
    bs = OCSP_response_get1_basic(resp);
    if (!bs)
        fail("accepted answer has no basic response", c);
    if (req && OCSP_check_nonce(req, bs) != 1)
        fail("accepted answer does not echo the request's nonce", c);
    if (!signed_by(bs, fx.responder) && !signed_by(bs, fx.issuer))
        fail("accepted answer is not signed by the responder or the CA", c);
    if (OCSP_resp_find_status(bs, fx.id[c], &status, &reason, &rev, &thisupd, &nextupd) != 1)
        fail("accepted answer has no status for the certificate", c);
    switch (a->status) {
    case DZ_OCSP_GOOD:
        if (status != V_OCSP_CERTSTATUS_GOOD)
            fail("GOOD reported, the answer says otherwise", c);
        break;
    case DZ_OCSP_REVOKED:
        if (status != V_OCSP_CERTSTATUS_REVOKED || a->revocation_reason != reason)
            fail("REVOKED reported, the answer says otherwise", c);
        break;
    case DZ_OCSP_UNKNOWN:
        if (status != V_OCSP_CERTSTATUS_UNKNOWN)
            fail("UNKNOWN reported, the answer says otherwise", c);
        break;
    default:
        fail("status out of range", c);
    }
    if (a->this_update > now + DZ_OCSP_LEEWAY)
        fail("accepted an answer from the future", c);
    if (a->next_update != 0 ? a->next_update < now - DZ_OCSP_LEEWAY
                            : a->this_update < now - DZ_OCSP_MAX_AGE - DZ_OCSP_LEEWAY)
        fail("accepted a stale answer", c);
    if ((nextupd != NULL) != (a->next_update != 0))
        fail("nextUpdate reported wrong", c);
    dz_sha256(data, size, sha);
    if (memcmp(sha, a->sha256, 32) != 0)
        fail("answer digest is not of the input", c);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
}

static void check_refused(int c, const struct dz_ocsp_answer *a)
{
    struct dz_ocsp_answer z;

    memset(&z, 0, sizeof(z));
    z.status = DZ_OCSP_UNKNOWN;
    z.revocation_reason = -1;
    if (memcmp(a, &z, sizeof(z)) != 0)
        fail("refused answer left something in *out", c);
}

static int judge(const uint8_t *data, size_t size, int c, OCSP_REQUEST *req, int64_t now,
                 struct dz_ocsp_answer *a)
{
    int rc = dz_ocsp_response_check(data, size, req, fx.leaf[c], fx.issuer, now, NULL, a);

    if (rc == 0)
        check_accepted(data, size, c, req, now, a);
    else
        check_refused(c, a);
    return rc;
}

static const struct fx_ocsp_seed *seed_of(const uint8_t *data, size_t size)
{
    unsigned char sha[32];
    char hex[65];

    dz_sha256(data, size, sha);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha[i]);
    for (size_t i = 0; i < sizeof(FX_OCSP_SEEDS) / sizeof(FX_OCSP_SEEDS[0]); i++)
        if (strcmp(FX_OCSP_SEEDS[i].sha256, hex) == 0)
            return &FX_OCSP_SEEDS[i];
    return NULL;
}

/* A copy of bs's answers (CertID, status, times, reason, their
 * extensions), its extensions (the nonce) and certificates in a new basic
 * response.  Re-signing bs itself is not safe: OCSP_basic_sign overwrites
 * the responder ID in place, leaking or (byKey -> byName) freeing the old
 * one as the wrong type. */
static OCSP_BASICRESP *copy_basic(OCSP_BASICRESP *bs)
{
    OCSP_BASICRESP *n = OCSP_BASICRESP_new();
    const STACK_OF(X509) *certs = OCSP_resp_get0_certs(bs);

    if (!n)
        return NULL;
    for (int i = 0; i < OCSP_resp_count(bs); i++) {
        OCSP_SINGLERESP *s = OCSP_resp_get0(bs, i);
        ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
        int reason = -1;
        int st = OCSP_single_get0_status(s, &reason, &rev, &thisupd, &nextupd);
        OCSP_SINGLERESP *t;

        t = OCSP_basic_add1_status(n, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(s), st, reason, rev,
                                   thisupd, nextupd);
        if (!t)
            goto bad;
        for (int e = 0; e < OCSP_SINGLERESP_get_ext_count(s); e++)
            if (!OCSP_SINGLERESP_add_ext(t, OCSP_SINGLERESP_get_ext(s, e), -1))
                goto bad;
    }
    for (int e = 0; e < OCSP_BASICRESP_get_ext_count(bs); e++)
        if (!OCSP_BASICRESP_add_ext(n, OCSP_BASICRESP_get_ext(bs, e), -1))
            goto bad;
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (!OCSP_basic_add1_cert(n, sk_X509_value(certs, i)))
            goto bad;
    return n;
bad:
    OCSP_BASICRESP_free(n);
    return NULL;
}

/* The input's basic response re-signed by the trusted responder (DER,
 * OPENSSL_free), or NULL when the input is no successful basic response. */
static unsigned char *resign(const uint8_t *data, size_t size, size_t *out_len)
{
    const unsigned char *p = data;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)size);
    OCSP_BASICRESP *bs = NULL;
    OCSP_BASICRESP *copy = NULL;
    OCSP_RESPONSE *again = NULL;
    unsigned char *der = NULL;
    unsigned long flags = OCSP_NOCERTS; /* the certificates as they came */
    int n = 0;

    if (resp && OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL)
        bs = OCSP_response_get1_basic(resp);
    if (bs)
        copy = copy_basic(bs);
    if (size > 0 && (data[size - 1] & 1))
        flags |= OCSP_RESPID_KEY;
    if (copy &&
        OCSP_basic_sign(copy, fx.responder, fx.responder_key, EVP_sha256(), NULL, flags) == 1)
        again = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, copy);
    if (again)
        n = i2d_OCSP_RESPONSE(again, &der);
    OCSP_RESPONSE_free(again);
    OCSP_BASICRESP_free(copy);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    if (n <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    *out_len = (size_t)n;
    return der;
}

/* Every case, with and without the request, now and later. */
static void judge_all(const uint8_t *data, size_t size, const struct fx_ocsp_seed *seed)
{
    for (int c = 0; c < NCASES; c++) {
        struct dz_ocsp_answer with, without, later;
        int rc_with = judge(data, size, c, fx.req[c], FX_NOW, &with);
        int rc_without = judge(data, size, c, NULL, FX_NOW, &without);
        int rc_later = judge(data, size, c, fx.req[c], FX_NOW + LATER, &later);

        if (rc_with == 0 && (rc_without != 0 || memcmp(&with, &without, sizeof(with)) != 0))
            fail("the nonce check changed an accepted answer", c);
        if (seed && seed->ocase == c) {
            if (rc_with != seed->rc_req || rc_without != seed->rc_noreq) {
                fprintf(stderr, "%s: %d/%d, recorded %d/%d\n", seed->name, rc_with, rc_without,
                        seed->rc_req, seed->rc_noreq);
                fail("a seed's verdict changed", c);
            }
            if (rc_with == 0 && with.status != seed->status)
                fail("a seed's status changed", c);
            /* Three days on, every answer of the seeds is stale (nextUpdate
             * one day on, or none and thisUpdate far too old). */
            if (rc_with == 0 && rc_later != DZ_ERR_STATE)
                fail("a seed is still believed after its nextUpdate", c);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    unsigned char *again;
    size_t again_len = 0;

    if (!ready) {
        init();
        ready = true;
    }
    judge_all(data, size, seed_of(data, size));
    again = resign(data, size, &again_len);
    if (again) {
        judge_all(again, again_len, NULL);
        OPENSSL_free(again);
    }
    return 0;
}
