/* test_tsp.c - dz_tsp_response_check (lib/pki/tsp.c), the check
 * dz_tsp_stamp runs on a TSA's TimeStampResp, against an in-process TSA
 * (TS_RESP_CTX) answering the real request of dz_tsp_request_der: a granted
 * answer gives the token and its info; another nonce, another digest, an
 * untrusted TSA, a rejection, a granted answer without a token, truncated,
 * trailing and oversized bytes, a genTime off our clock are refused with
 * the right code, no token, a cleared info and a reason.  (Level-T use of the token: test_cades.c;
 * arbitrary answers: tests/fuzz/fuzz_tsp_response.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "harness/fake_pki.h"
#include "pki/tsp.h"

static int64_t T0;         /* our clock in the checks */
static int64_t gen_offset; /* a token's genTime is T0 + gen_offset */
static EVP_PKEY *ca_key, *tsa_key;
static X509 *ca, *tsa;
static X509_STORE *trust, *other_trust;

/* A certificate CN=cn for key, valid around T0, signed by (issuer, ikey) or
 * self-signed, with extensions as openssl.cnf text ("name=value",
 * NULL-terminated); built by the harness's fake_pki_cert_at. */
static X509 *mk(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                const char *const *exts)
{
    char subject[128];

    snprintf(subject, sizeof(subject), "CN=%s", cn);
    return fake_pki_cert_at(subject, serial, key, issuer, ikey, T0 - 86400, T0 + 86400 * 30, NULL,
                            exts);
}

static int setup(void **state)
{
    static const char *const ca_ext[] = {"basicConstraints=critical,CA:true",
                                         "keyUsage=critical,keyCertSign,cRLSign",
                                         "subjectKeyIdentifier=hash", NULL};
    static const char *const tsa_ext[] = {
        "basicConstraints=critical,CA:false",     "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=critical,timeStamping", "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid:always",    NULL};
    EVP_PKEY *other_key;
    X509 *other_ca;

    (void)state;
    T0 = (int64_t)time(NULL);
    ca_key = EVP_EC_gen("P-256");
    tsa_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    assert_non_null(tsa_key);
    assert_non_null(other_key);
    ca = mk("Test TSA CA", 1, ca_key, NULL, NULL, ca_ext);
    tsa = mk("Test TSA", 2, tsa_key, ca, ca_key, tsa_ext);
    other_ca = mk("Test TSA CA", 3, other_key, NULL, NULL, ca_ext); /* same name */
    trust = X509_STORE_new();
    other_trust = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(trust, ca), 1);
    assert_int_equal(X509_STORE_add_cert(other_trust, other_ca), 1);
    X509_free(other_ca);
    EVP_PKEY_free(other_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_STORE_free(trust);
    X509_STORE_free(other_trust);
    X509_free(tsa);
    X509_free(ca);
    EVP_PKEY_free(tsa_key);
    EVP_PKEY_free(ca_key);
    return 0;
}

static int time_cb(TS_RESP_CTX *ctx, void *data, long *sec, long *usec)
{
    (void)ctx;
    (void)data;
    *sec = (long)(T0 + gen_offset);
    *usec = 0;
    return 1;
}

static ASN1_INTEGER *serial_cb(TS_RESP_CTX *ctx, void *data)
{
    ASN1_INTEGER *s = ASN1_INTEGER_new();

    (void)ctx;
    (void)data;
    ASN1_INTEGER_set(s, 0x64);
    return s;
}

/* The in-process TSA's TimeStampResp (DER) to the request req[0..len). */
static unsigned char *tsa_answer(const unsigned char *req, size_t req_len, size_t *len)
{
    TS_RESP_CTX *ctx = TS_RESP_CTX_new();
    ASN1_OBJECT *pol = OBJ_txt2obj("1.3.6.1.4.1.55555.3.1", 1);
    BIO *in = BIO_new_mem_buf(req, (int)req_len);
    TS_RESP *resp;
    unsigned char *der = NULL;
    int n;

    assert_non_null(ctx);
    assert_int_equal(TS_RESP_CTX_set_signer_cert(ctx, tsa), 1);
    assert_int_equal(TS_RESP_CTX_set_signer_key(ctx, tsa_key), 1);
    TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256());
    TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256());
    TS_RESP_CTX_set_def_policy(ctx, pol);
    TS_RESP_CTX_add_md(ctx, EVP_sha256());
    TS_RESP_CTX_set_serial_cb(ctx, serial_cb, NULL);
    TS_RESP_CTX_set_time_cb(ctx, time_cb, NULL);
    resp = TS_RESP_create_response(ctx, in);
    assert_non_null(resp);
    n = i2d_TS_RESP(resp, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    TS_RESP_free(resp);
    BIO_free(in);
    ASN1_OBJECT_free(pol);
    TS_RESP_CTX_free(ctx);
    return der;
}

/* A granted answer to our request over d; nonce[8] is the request's. */
static unsigned char *granted(const unsigned char d[32], unsigned char nonce[8], size_t *len)
{
    unsigned char *req = NULL;
    size_t req_len = 0;
    unsigned char *der;

    assert_int_equal(dz_tsp_request_der(d, nonce, &req, &req_len), 0);
    der = tsa_answer(req, req_len, len);
    OPENSSL_free(req);
    return der;
}

/* dz_tsp_response_check expecting the refusal want: no token, info
 * cleared, a reason containing why. */
static void refused(const unsigned char *resp, size_t len, const unsigned char d[32],
                    const unsigned char nonce[8], X509_STORE *st, int want, const char *why)
{
    unsigned char *tok = (unsigned char *)"x";
    size_t tok_len = 1;
    struct dz_tsp_info info, zero;
    char detail[160];

    memset(&info, 0xa5, sizeof(info));
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(dz_tsp_response_check(resp, len, d, nonce, st, T0, &tok, &tok_len, &info,
                                           detail, sizeof(detail)),
                     want);
    assert_null(tok);
    assert_int_equal(tok_len, 0);
    assert_memory_equal(&info, &zero, sizeof(info));
    if (!strstr(detail, why))
        fail_msg("detail \"%s\" does not say \"%s\"", detail, why);
}

static void test_granted(void **state)
{
    unsigned char d[32], nonce[8];
    unsigned char *resp, *tok = NULL, *tok2 = NULL;
    size_t len = 0, tok_len = 0;
    const unsigned char *p;
    struct dz_tsp_info info, again;
    char detail[160];
    TS_RESP *r;
    int n;

    (void)state;
    memset(d, 0x42, sizeof(d));
    resp = granted(d, nonce, &len);
    assert_int_equal(dz_tsp_response_check(resp, len, d, nonce, trust, T0, &tok, &tok_len, &info,
                                           detail, sizeof(detail)),
                     0);
    assert_string_equal(detail, "");
    assert_int_equal(info.gen_time, T0);
    assert_string_equal(info.tsa_name, "Test TSA");
    assert_string_equal(info.serial, "64");
    /* The token handed back is the answer's token. */
    p = resp;
    r = d2i_TS_RESP(NULL, &p, (long)len);
    assert_non_null(r);
    n = i2d_PKCS7(TS_RESP_get_token(r), &tok2);
    assert_int_equal((size_t)n, tok_len);
    assert_memory_equal(tok, tok2, tok_len);
    /* And it checks as a stored token (what level T does with it). */
    assert_int_equal(dz_tsp_verify_token(tok, tok_len, d, NULL, trust, &again, NULL, 0), 0);
    assert_memory_equal(&again, &info, sizeof(info));
    OPENSSL_free(tok2);
    TS_RESP_free(r);
    OPENSSL_free(tok);
    OPENSSL_free(resp);
}

static void test_not_ours(void **state)
{
    unsigned char d[32], other_d[32], nonce[8], other_nonce[8];
    unsigned char *resp;
    size_t len = 0;

    (void)state;
    memset(d, 0x42, sizeof(d));
    memset(other_d, 0x43, sizeof(other_d));
    resp = granted(d, nonce, &len);
    /* An answer to another request (a replay): the nonce differs. */
    memcpy(other_nonce, nonce, sizeof(nonce));
    other_nonce[7] ^= 1;
    refused(resp, len, d, other_nonce, trust, DZ_ERR_DENIED, "nonce");
    /* Over another document. */
    refused(resp, len, other_d, nonce, trust, DZ_ERR_DENIED, "imprint");
    /* Signed by a TSA nobody trusts (a CA of the same name, another key). */
    refused(resp, len, d, nonce, other_trust, DZ_ERR_DENIED, "refused");
    OPENSSL_free(resp);
}

/* The nonce proves the answer is for this request, not that its time is
 * right: a genTime off our clock by more than DZ_TSP_FRESH_SKEW_S either
 * way (a TSA clock set back would make a proof of existence from before
 * the signature was made) is refused; within it, accepted; now 0 (the fuzz
 * target's stored answers) checks no clock. */
static void test_gen_time(void **state)
{
    static const int64_t off[] = {-3600, -(DZ_TSP_FRESH_SKEW_S + 1), DZ_TSP_FRESH_SKEW_S + 1,
                                  86400};
    unsigned char d[32], nonce[8];
    unsigned char *resp, *tok = NULL;
    size_t len = 0, tok_len = 0;
    struct dz_tsp_info info;

    (void)state;
    memset(d, 0x44, sizeof(d));
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
        gen_offset = off[i];
        resp = granted(d, nonce, &len);
        refused(resp, len, d, nonce, trust, DZ_ERR_DENIED, "genTime");
        /* The same answer without a clock: everything else about it holds. */
        assert_int_equal(
            dz_tsp_response_check(resp, len, d, nonce, trust, 0, &tok, &tok_len, &info, NULL, 0),
            0);
        assert_int_equal(info.gen_time, T0 + off[i]);
        OPENSSL_free(tok);
        tok = NULL;
        OPENSSL_free(resp);
    }
    gen_offset = -(DZ_TSP_FRESH_SKEW_S - 10);
    resp = granted(d, nonce, &len);
    assert_int_equal(
        dz_tsp_response_check(resp, len, d, nonce, trust, T0, &tok, &tok_len, &info, NULL, 0), 0);
    OPENSSL_free(tok);
    OPENSSL_free(resp);
    gen_offset = 0;
}

static void test_not_granted(void **state)
{
    static const unsigned char garbage[] = "not a TimeStampReq";
    /* TimeStampResp { status { status granted } } and no token. */
    static const unsigned char no_token[] = {0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00};
    unsigned char d[32], nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    unsigned char *resp;
    size_t len = 0;

    (void)state;
    memset(d, 0x42, sizeof(d));
    /* What a TSA answers to a request it cannot use: status rejection. */
    resp = tsa_answer(garbage, sizeof(garbage) - 1, &len);
    refused(resp, len, d, nonce, trust, DZ_ERR_UNAVAILABLE, "status 2");
    OPENSSL_free(resp);
    /* (OpenSSL's decoder already refuses "granted" without a token.) */
    refused(no_token, sizeof(no_token), d, nonce, trust, DZ_ERR_PARSE, "not a TimeStampResp");
}

static void test_malformed(void **state)
{
    unsigned char d[32], nonce[8];
    unsigned char *resp, *longer, *big;
    unsigned char *tok = NULL;
    size_t len = 0, tok_len = 0;
    struct dz_tsp_info info;

    (void)state;
    memset(d, 0x42, sizeof(d));
    resp = granted(d, nonce, &len);
    refused(resp, len / 2, d, nonce, trust, DZ_ERR_PARSE, "not a TimeStampResp");
    refused(resp, 0, d, nonce, trust, DZ_ERR_PARSE, "not a TimeStampResp");
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, resp, len);
    longer[len] = 0;
    refused(longer, len + 1, d, nonce, trust, DZ_ERR_PARSE, "not a TimeStampResp");
    big = calloc(1, DZ_TSP_MAX_RESPONSE + 1);
    assert_non_null(big);
    memcpy(big, resp, len);
    refused(big, DZ_TSP_MAX_RESPONSE + 1, d, nonce, trust, DZ_ERR_TOOBIG, "too big");
    assert_int_equal(
        dz_tsp_response_check(NULL, len, d, nonce, trust, T0, &tok, &tok_len, &info, NULL, 0),
        DZ_ERR_INVAL);
    assert_int_equal(
        dz_tsp_response_check(resp, len, d, NULL, trust, T0, &tok, &tok_len, &info, NULL, 0),
        DZ_ERR_INVAL);
    assert_null(tok);
    free(big);
    free(longer);
    OPENSSL_free(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_granted),   cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_gen_time),  cmocka_unit_test(test_not_granted),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
