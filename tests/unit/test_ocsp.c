/* test_ocsp.c - OCSP requests, response checks and the answer cache
 * (lib/pki/ocsp.c): who may sign, nonce echo, freshness, the CertID asked,
 * malformed and oversized answers, the key and signature floor on answers
 * and responders; cache expiry at nextUpdate and its bound.
 * Responses are made here with OpenSSL's responder API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "harness/fake_pki.h"
#include "pki/ocsp.h"

static int64_t T0;          /* "now" of every check */
static const EVP_MD *mk_md; /* mk's signature hash; NULL: SHA-256 */

static EVP_PKEY *ca_key, *leaf_key, *resp_key, *other_key;
static X509 *ca, *leaf, *leaf2, *resp_ok, *resp_noeku, *resp_foreign, *resp_expired, *other_ca;

/* A certificate CN=cn for key, signed by (issuer, ikey) or self-signed,
 * with extensions as openssl.cnf text ("name=value" lines, NULL-terminated);
 * built by the harness's fake_pki_cert_at. */
static X509 *mk(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                int64_t nb, int64_t na, const char *const *exts)
{
    char subject[128];

    snprintf(subject, sizeof(subject), "CN=%s", cn);
    return fake_pki_cert_at(subject, serial, key, issuer, ikey, nb, na, mk_md, exts);
}

static int setup(void **state)
{
    static const char *const ca_ext[] = {"basicConstraints=critical,CA:true",
                                         "keyUsage=critical,keyCertSign,cRLSign",
                                         "subjectKeyIdentifier=hash", NULL};
    static const char *const leaf_ext[] = {
        "keyUsage=critical,digitalSignature",
        "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/ocsp,caIssuers;URI:http://x/ca", NULL};
    static const char *const ocsp_ext[] = {"keyUsage=critical,digitalSignature",
                                           "extendedKeyUsage=OCSPSigning", NULL};
    static const char *const noeku_ext[] = {"keyUsage=critical,digitalSignature", NULL};

    (void)state;
    T0 = (int64_t)time(NULL);
    ca_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    resp_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    if (!ca_key || !leaf_key || !resp_key || !other_key)
        return -1;
    ca = mk("Test CA", 1, ca_key, NULL, NULL, T0 - 86400, T0 + 86400 * 30, ca_ext);
    other_ca = mk("Test CA", 1, other_key, NULL, NULL, T0 - 86400, T0 + 86400 * 30, ca_ext);
    leaf = mk("Leaf", 100, leaf_key, ca, ca_key, T0 - 3600, T0 + 86400, leaf_ext);
    leaf2 = mk("Leaf2", 101, leaf_key, ca, ca_key, T0 - 3600, T0 + 86400, NULL);
    resp_ok = mk("Responder", 200, resp_key, ca, ca_key, T0 - 3600, T0 + 86400, ocsp_ext);
    resp_noeku = mk("Responder", 201, resp_key, ca, ca_key, T0 - 3600, T0 + 86400, noeku_ext);
    /* Same issuer name, other key: a look-alike CA's responder. */
    resp_foreign =
        mk("Responder", 202, resp_key, other_ca, other_key, T0 - 3600, T0 + 86400, ocsp_ext);
    resp_expired = mk("Responder", 203, resp_key, ca, ca_key, T0 - 86400 * 2, T0 - 86400, ocsp_ext);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(ca);
    X509_free(other_ca);
    X509_free(leaf);
    X509_free(leaf2);
    X509_free(resp_ok);
    X509_free(resp_noeku);
    X509_free(resp_foreign);
    X509_free(resp_expired);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(resp_key);
    EVP_PKEY_free(other_key);
    return 0;
}

struct rspec {
    X509 *about;                     /* the certificate answered for (default leaf) */
    int status;                      /* V_OCSP_CERTSTATUS_* */
    int64_t this_off;                /* thisUpdate - T0 */
    int64_t next_off;                /* nextUpdate - T0; 0: none */
    X509 *signer;                    /* default ca */
    EVP_PKEY *skey;                  /* default ca_key */
    OCSP_REQUEST *nonce;             /* copy this request's nonce; NULL: none */
    int resp_status;                 /* OCSPResponseStatus; default successful */
    bool nocerts;                    /* send no certificate even for a delegate */
    const EVP_MD *md;                /* the response's signature hash; default SHA-256 */
    const struct dz_keyfloor *floor; /* passed to the check; NULL: the fixed floor */
};

static unsigned char *mkresp(const struct rspec *s, size_t *len)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), s->about ? s->about : leaf, ca);
    ASN1_TIME *thisupd = ASN1_TIME_set(NULL, (time_t)(T0 + s->this_off));
    ASN1_TIME *nextupd = s->next_off ? ASN1_TIME_set(NULL, (time_t)(T0 + s->next_off)) : NULL;
    ASN1_TIME *rev = ASN1_TIME_set(NULL, (time_t)(T0 - 600));
    X509 *signer = s->signer ? s->signer : ca;
    STACK_OF(X509) *certs = sk_X509_new_null();
    OCSP_RESPONSE *resp;
    unsigned char *der = NULL;
    int n;

    assert_non_null(bs);
    assert_non_null(id);
    assert_non_null(OCSP_basic_add1_status(
        bs, id, s->status, s->status == V_OCSP_CERTSTATUS_REVOKED ? 1 : -1, rev, thisupd, nextupd));
    if (s->nonce)
        assert_int_equal(OCSP_copy_nonce(bs, s->nonce), 1);
    if (signer != ca && !s->nocerts)
        sk_X509_push(certs, signer); /* a delegated responder sends its certificate */
    assert_int_equal(OCSP_basic_sign(bs, signer, s->skey ? s->skey : ca_key,
                                     s->md ? s->md : EVP_sha256(), certs,
                                     (signer == ca || s->nocerts) ? OCSP_NOCERTS : 0),
                     1);
    resp = OCSP_response_create(s->resp_status ? s->resp_status : OCSP_RESPONSE_STATUS_SUCCESSFUL,
                                s->resp_status ? NULL : bs);
    assert_non_null(resp);
    n = i2d_OCSP_RESPONSE(resp, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    OCSP_RESPONSE_free(resp);
    sk_X509_free(certs);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    ASN1_TIME_free(rev);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    return der;
}

/* Make a request, an answer to spec (with the request's nonce unless
 * no_nonce), and check it at T0 + at_off. */
static int check(struct rspec *s, bool no_nonce, int64_t at_off, struct dz_ocsp_answer *a)
{
    OCSP_REQUEST *req = NULL;
    unsigned char *reqder = NULL;
    unsigned char *der;
    size_t reqlen = 0;
    size_t len = 0;
    int rc;

    assert_int_equal(dz_ocsp_request_new(leaf, ca, &req, &reqder, &reqlen), 0);
    s->nonce = no_nonce ? NULL : req;
    der = mkresp(s, &len);
    rc = dz_ocsp_response_check(der, len, req, leaf, ca, T0 + at_off, s->floor, a);
    if (rc == 0) {
        unsigned char h[32];
        dz_sha256(der, len, h);
        assert_memory_equal(h, a->sha256, 32);
    }
    OPENSSL_free(der);
    OPENSSL_free(reqder);
    OCSP_REQUEST_free(req);
    return rc;
}

static void test_good_by_issuer(void **state)
{
    struct rspec s = {.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;

    (void)state;
    assert_int_equal(check(&s, false, 0, &a), 0);
    assert_int_equal(a.status, DZ_OCSP_GOOD);
    assert_int_equal(a.this_update, T0 - 60);
    assert_int_equal(a.next_update, T0 + 3600);
    assert_int_equal(a.revocation_reason, -1);
}

static void test_revoked_by_delegate(void **state)
{
    struct rspec s = {.status = V_OCSP_CERTSTATUS_REVOKED,
                      .this_off = -60,
                      .next_off = 3600,
                      .signer = resp_ok,
                      .skey = resp_key};
    struct dz_ocsp_answer a;

    (void)state;
    assert_int_equal(check(&s, false, 0, &a), 0);
    assert_int_equal(a.status, DZ_OCSP_REVOKED);
    assert_int_equal(a.revoked_at, T0 - 600);
    assert_int_equal(a.revocation_reason, 1);

    s.status = V_OCSP_CERTSTATUS_UNKNOWN;
    assert_int_equal(check(&s, false, 0, &a), 0);
    assert_int_equal(a.status, DZ_OCSP_UNKNOWN);
}

static void test_unauthorised_signers(void **state)
{
    struct rspec s = {.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;

    (void)state;
    s.signer = resp_noeku; /* issued by the CA but not for OCSP */
    s.skey = resp_key;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    assert_int_equal(a.status, DZ_OCSP_UNKNOWN);
    s.signer = resp_foreign; /* OCSPSigning, but from a look-alike CA */
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.signer = resp_expired; /* the CA's responder, expired */
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.signer = other_ca; /* the look-alike CA itself (same name) */
    s.skey = other_key;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.nocerts = true; /* the CA's name as responder ID, the look-alike's key */
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    assert_int_equal(a.this_update, 0);
}

/* The key and signature floor (keyfloor.h) holds for answers: a response
 * signed with SHA-1, a delegated responder with an RSA-1024 key or with a
 * certificate signed with SHA-1 is no answer; a raised floor refuses what
 * the fixed one lets through.  Each has a passing control. */
static void test_weak_answers(void **state)
{
    static const char *const ocsp_ext[] = {"keyUsage=critical,digitalSignature",
                                           "extendedKeyUsage=OCSPSigning", NULL};
    const struct dz_keyfloor ec384 = {.ec_bits = 384};
    const struct dz_keyfloor rsa3072 = {.rsa_bits = 3072};
    struct rspec s = {.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;
    EVP_PKEY *k1024 = EVP_RSA_gen(1024);
    EVP_PKEY *k2048 = EVP_RSA_gen(2048);
    X509 *r1024, *r2048, *rsha1;

    (void)state;
    assert_non_null(k1024);
    assert_non_null(k2048);
    r1024 = mk("Responder", 210, k1024, ca, ca_key, T0 - 3600, T0 + 86400, ocsp_ext);
    r2048 = mk("Responder", 211, k2048, ca, ca_key, T0 - 3600, T0 + 86400, ocsp_ext);
    mk_md = EVP_sha1();
    rsha1 = mk("Responder", 212, resp_key, ca, ca_key, T0 - 3600, T0 + 86400, ocsp_ext);
    mk_md = NULL;

    /* The issuer's own answer: SHA-256 good, SHA-1 refused. */
    assert_int_equal(check(&s, false, 0, &a), 0);
    s.md = EVP_sha1();
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.md = NULL;

    /* Delegated responders. */
    s.signer = r2048;
    s.skey = k2048;
    assert_int_equal(check(&s, false, 0, &a), 0);
    s.signer = r1024;
    s.skey = k1024;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.signer = rsha1;
    s.skey = resp_key;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.signer = resp_ok;
    assert_int_equal(check(&s, false, 0, &a), 0);

    /* Raised floors: RSA-2048 under 3072, the P-256 CA under 384. */
    s.signer = r2048;
    s.skey = k2048;
    s.floor = &rsa3072;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.signer = NULL;
    s.skey = NULL;
    s.floor = &ec384;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_DENIED);
    s.floor = &rsa3072; /* the P-256 CA is not an RSA key: the RSA floor says nothing */
    assert_int_equal(check(&s, false, 0, &a), 0);

    X509_free(r1024);
    X509_free(r2048);
    X509_free(rsha1);
    EVP_PKEY_free(k1024);
    EVP_PKEY_free(k2048);
}

static void test_nonce(void **state)
{
    struct rspec s = {.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;
    OCSP_REQUEST *req1 = NULL, *req2 = NULL;
    unsigned char *d1 = NULL, *d2 = NULL, *der;
    size_t l1, l2, len;

    (void)state;
    assert_int_equal(check(&s, true, 0, &a), DZ_ERR_DENIED); /* nonce not echoed */

    /* An answer to another request (a replay) carries the wrong nonce. */
    assert_int_equal(dz_ocsp_request_new(leaf, ca, &req1, &d1, &l1), 0);
    assert_int_equal(dz_ocsp_request_new(leaf, ca, &req2, &d2, &l2), 0);
    assert_int_not_equal(l1, 0);
    s.nonce = req1;
    der = mkresp(&s, &len);
    assert_int_equal(dz_ocsp_response_check(der, len, req2, leaf, ca, T0, NULL, &a), DZ_ERR_DENIED);
    assert_int_equal(dz_ocsp_response_check(der, len, req1, leaf, ca, T0, NULL, &a), 0);
    /* Without a request (stored answers) no nonce is asked for. */
    assert_int_equal(dz_ocsp_response_check(der, len, NULL, leaf, ca, T0, NULL, &a), 0);
    OPENSSL_free(der);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    OCSP_REQUEST_free(req1);
    OCSP_REQUEST_free(req2);
}

static void test_freshness(void **state)
{
    struct rspec s = {.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;

    (void)state;
    /* nextUpdate passed (beyond the leeway) */
    assert_int_equal(check(&s, false, 3600 + DZ_OCSP_LEEWAY + 1, &a), DZ_ERR_STATE);
    assert_int_equal(check(&s, false, 3600 + DZ_OCSP_LEEWAY - 1, &a), 0);
    /* thisUpdate in the future */
    s.this_off = DZ_OCSP_LEEWAY + 60;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_STATE);
    s.this_off = DZ_OCSP_LEEWAY - 60; /* within the clock skew allowed */
    assert_int_equal(check(&s, false, 0, &a), 0);
    /* nextUpdate before thisUpdate */
    s.this_off = -60;
    s.next_off = -120;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_STATE);
    /* no nextUpdate: only a recent answer, and not cacheable */
    s.next_off = 0;
    assert_int_equal(check(&s, false, 0, &a), 0);
    assert_int_equal(a.next_update, 0);
    s.this_off = -(DZ_OCSP_MAX_AGE + DZ_OCSP_LEEWAY + 10);
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_STATE);
}

static void test_wrong_cert_and_garbage(void **state)
{
    struct rspec s = {
        .about = leaf2, .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    struct dz_ocsp_answer a;
    static const unsigned char try_later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
    static const unsigned char junk[] = {0x30, 0x80, 0x00, 0x00};
    unsigned char *der;
    unsigned char *big;
    size_t len;

    (void)state;
    assert_int_equal(check(&s, false, 0, &a), DZ_ERR_PARSE); /* answers about another serial */

    assert_int_equal(
        dz_ocsp_response_check(try_later, sizeof(try_later), NULL, leaf, ca, T0, NULL, &a),
        DZ_ERR_UNAVAILABLE);
    s.resp_status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
    s.about = leaf;
    s.nonce = NULL; /* check() freed its request */
    der = mkresp(&s, &len);
    assert_int_equal(dz_ocsp_response_check(der, len, NULL, leaf, ca, T0, NULL, &a),
                     DZ_ERR_UNAVAILABLE);
    OPENSSL_free(der);

    assert_int_equal(dz_ocsp_response_check(junk, sizeof(junk), NULL, leaf, ca, T0, NULL, &a),
                     DZ_ERR_PARSE);
    assert_int_equal(dz_ocsp_response_check(junk, 0, NULL, leaf, ca, T0, NULL, &a), DZ_ERR_PARSE);
    assert_int_equal(dz_ocsp_response_check(NULL, 0, NULL, leaf, ca, T0, NULL, &a), DZ_ERR_INVAL);
    big = calloc(1, DZ_OCSP_MAX_RESPONSE + 1);
    assert_non_null(big);
    assert_int_equal(
        dz_ocsp_response_check(big, DZ_OCSP_MAX_RESPONSE + 1, NULL, leaf, ca, T0, NULL, &a),
        DZ_ERR_TOOBIG);
    free(big);

    /* A good answer with a byte flipped in its signature, and with a
     * byte after its end. */
    s.resp_status = 0;
    s.nonce = NULL;
    der = mkresp(&s, &len);
    assert_int_equal(dz_ocsp_response_check(der, len, NULL, leaf, ca, T0, NULL, &a), 0);
    der[len - 3] ^= 0x01;
    assert_int_not_equal(dz_ocsp_response_check(der, len, NULL, leaf, ca, T0, NULL, &a), 0);
    der[len - 3] ^= 0x01;
    big = malloc(len + 1);
    assert_non_null(big);
    memcpy(big, der, len);
    big[len] = 0;
    assert_int_equal(dz_ocsp_response_check(big, len + 1, NULL, leaf, ca, T0, NULL, &a),
                     DZ_ERR_PARSE);
    free(big);
    OPENSSL_free(der);
}

static void test_key_and_url(void **state)
{
    unsigned char k1[32], k2[32], k3[32];
    char url[64];
    char tiny[8];

    (void)state;
    assert_int_equal(dz_ocsp_key(leaf, ca, k1), 0);
    assert_int_equal(dz_ocsp_key(leaf, ca, k2), 0);
    assert_int_equal(dz_ocsp_key(leaf2, ca, k3), 0);
    assert_memory_equal(k1, k2, 32);
    assert_memory_not_equal(k1, k3, 32);
    assert_int_equal(dz_ocsp_key(NULL, ca, k1), DZ_ERR_INVAL);

    assert_int_equal(dz_ocsp_url(leaf, url, sizeof(url)), 0);
    assert_string_equal(url, "http://127.0.0.1:1/ocsp");
    assert_int_equal(dz_ocsp_url(leaf, tiny, sizeof(tiny)), DZ_ERR_TOOBIG);
    assert_int_equal(dz_ocsp_url(leaf2, url, sizeof(url)), DZ_ERR_NOTFOUND);
    assert_string_equal(url, "");
}

static void test_query_unreachable(void **state)
{
    struct dz_ocsp_answer a;
    unsigned char *der = (unsigned char *)"x";
    size_t len = 1;

    (void)state;
    /* Port 1 on loopback: refused at once. */
    assert_int_equal(dz_ocsp_query("http://127.0.0.1:1/", leaf, ca, 2000, T0, NULL, &a, &der, &len),
                     DZ_ERR_UNAVAILABLE);
    assert_null(der);
    assert_int_equal(len, 0);
    assert_int_equal(a.status, DZ_OCSP_UNKNOWN);
    assert_int_equal(dz_ocsp_query("ftp://x/", leaf, ca, 2000, T0, NULL, &a, NULL, NULL),
                     DZ_ERR_INVAL);
}

static struct dz_ocsp_answer answer(enum dz_ocsp_status st, int64_t next)
{
    struct dz_ocsp_answer a;

    memset(&a, 0, sizeof(a));
    a.status = st;
    a.this_update = T0 - 10;
    a.next_update = next;
    a.revocation_reason = -1;
    a.sha256[0] = (unsigned char)st;
    return a;
}

static void test_cache_expiry(void **state)
{
    struct dz_ocsp_cache *c = NULL;
    struct dz_ocsp_answer a = answer(DZ_OCSP_GOOD, T0 + 100);
    struct dz_ocsp_answer got;
    unsigned char k[32] = {1};
    unsigned char k2[32] = {2};

    (void)state;
    assert_int_equal(dz_ocsp_cache_new(0, &c), 0);
    assert_int_equal(dz_ocsp_cache_put(c, k, &a, T0), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k, T0, &got), 0);
    assert_int_equal(got.status, DZ_OCSP_GOOD);
    assert_int_equal(got.next_update, T0 + 100);
    assert_int_equal(dz_ocsp_cache_get(c, k2, T0, &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_ocsp_cache_get(c, k, T0 + 99, &got), 0);
    /* At nextUpdate the answer is gone, and dropped. */
    assert_int_equal(dz_ocsp_cache_get(c, k, T0 + 100, &got), DZ_ERR_NOTFOUND);
    assert_int_equal(got.status, DZ_OCSP_UNKNOWN);
    assert_int_equal(dz_ocsp_cache_count(c), 0);

    /* Revoked answers are kept too; a newer answer replaces the old. */
    a = answer(DZ_OCSP_REVOKED, T0 + 50);
    assert_int_equal(dz_ocsp_cache_put(c, k, &a, T0), 0);
    a = answer(DZ_OCSP_GOOD, T0 + 500);
    assert_int_equal(dz_ocsp_cache_put(c, k, &a, T0), 0);
    assert_int_equal(dz_ocsp_cache_count(c), 1);
    assert_int_equal(dz_ocsp_cache_get(c, k, T0 + 60, &got), 0);
    assert_int_equal(got.status, DZ_OCSP_GOOD);

    /* Not cacheable: unknown, no nextUpdate, already past. */
    a = answer(DZ_OCSP_UNKNOWN, T0 + 100);
    assert_int_equal(dz_ocsp_cache_put(c, k2, &a, T0), DZ_ERR_INVAL);
    a = answer(DZ_OCSP_GOOD, 0);
    assert_int_equal(dz_ocsp_cache_put(c, k2, &a, T0), DZ_ERR_INVAL);
    a = answer(DZ_OCSP_GOOD, T0);
    assert_int_equal(dz_ocsp_cache_put(c, k2, &a, T0), DZ_ERR_INVAL);
    assert_int_equal(dz_ocsp_cache_get(c, k2, T0, &got), DZ_ERR_NOTFOUND);

    /* A far nextUpdate is clamped to DZ_OCSP_CACHE_MAX_TTL. */
    a = answer(DZ_OCSP_GOOD, T0 + 10LL * DZ_OCSP_CACHE_MAX_TTL);
    assert_int_equal(dz_ocsp_cache_put(c, k2, &a, T0), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k2, T0 + DZ_OCSP_CACHE_MAX_TTL - 1, &got), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k2, T0 + DZ_OCSP_CACHE_MAX_TTL, &got), DZ_ERR_NOTFOUND);
    dz_ocsp_cache_free(c);
    dz_ocsp_cache_free(NULL);
}

static void test_cache_bounded(void **state)
{
    struct dz_ocsp_cache *c = NULL;
    struct dz_ocsp_answer a;
    struct dz_ocsp_answer got;
    unsigned char k[5][32];
    int i;

    (void)state;
    memset(k, 0, sizeof(k));
    for (i = 0; i < 5; i++)
        k[i][0] = (unsigned char)(i + 1);
    assert_int_equal(dz_ocsp_cache_new(3, &c), 0);
    for (i = 0; i < 3; i++) {
        a = answer(DZ_OCSP_GOOD, T0 + 100 * (i + 1)); /* k0 expires first */
        assert_int_equal(dz_ocsp_cache_put(c, k[i], &a, T0), 0);
    }
    assert_int_equal(dz_ocsp_cache_count(c), 3);
    a = answer(DZ_OCSP_GOOD, T0 + 1000);
    assert_int_equal(dz_ocsp_cache_put(c, k[3], &a, T0), 0);
    assert_int_equal(dz_ocsp_cache_count(c), 3);                             /* bounded */
    assert_int_equal(dz_ocsp_cache_get(c, k[0], T0, &got), DZ_ERR_NOTFOUND); /* soonest out */
    assert_int_equal(dz_ocsp_cache_get(c, k[1], T0, &got), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k[3], T0, &got), 0);
    /* Later, k1 has expired: it goes before any live entry does. */
    a = answer(DZ_OCSP_GOOD, T0 + 2000);
    assert_int_equal(dz_ocsp_cache_put(c, k[4], &a, T0 + 250), 0);
    assert_int_equal(dz_ocsp_cache_count(c), 3);
    assert_int_equal(dz_ocsp_cache_get(c, k[2], T0 + 250, &got), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k[3], T0 + 250, &got), 0);
    assert_int_equal(dz_ocsp_cache_get(c, k[4], T0 + 250, &got), 0);
    dz_ocsp_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_by_issuer),
        cmocka_unit_test(test_revoked_by_delegate),
        cmocka_unit_test(test_unauthorised_signers),
        cmocka_unit_test(test_weak_answers),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_wrong_cert_and_garbage),
        cmocka_unit_test(test_key_and_url),
        cmocka_unit_test(test_query_unreachable),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
