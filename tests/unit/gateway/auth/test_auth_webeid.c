/*
 * test_auth_webeid.c - Web eID authentication tokens at POST /auth/card
 * (gateway/auth/card_answer.c, auth_card.c).  The token is built the way
 * the Web eID native app builds it: the card's authentication key signs
 * H(origin) || H(nonce) with the algorithm's hash H (SHA-384 for ES384),
 * ECDSA as raw r||s, everything standard base64, format "web-eid:1.0".
 * The gateway side (nonce store, signature, certificate check, session,
 * audit) is real, through the router on the request-layer harness.  The
 * parser's refusals are checked directly as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "auth/card_answer.h"
#include "base/b64.h"
#include "base/err.h"
#include "card_case.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "pki/certid.h"

#define FIN "5WEB123"
#define APP "https://web-eid.eu/web-eid-app/releases/2.5.0+0"

struct fx {
    struct fake_gw *g;
    struct fake_pki_ca cards;
    EVP_PKEY *p256;
    EVP_PKEY *p384;
    char *cert256_b64;
    char *cert384_b64;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct fake_gw_opts o = {
        .config_extra = "cards:\n"
                        "  ca: @DIR@/esign-chain.pem\n"
                        "  revocation: none\n",
    };

    assert_non_null(f);
    fake_trust_new(&f->cards, "Test E-Signature", "esign-chain.pem", &o, &f->g);
    f->p256 = fake_pki_key();
    f->p384 = EVP_EC_gen("P-384");
    assert_non_null(f->p384);
    f->cert256_b64 =
        fake_pki_person_b64(&f->cards, f->p256, FIN, DZ_CERTID_POLICY_CARD, false, 200);
    f->cert384_b64 =
        fake_pki_person_b64(&f->cards, f->p384, FIN, DZ_CERTID_POLICY_CARD, false, 201);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool idle = fake_trust_free(f->g, &f->cards);

    EVP_PKEY_free(f->p256);
    EVP_PKEY_free(f->p384);
    free(f->cert256_b64);
    free(f->cert384_b64);
    free(f);
    assert_true(idle);
    return 0;
}

/* What the Web eID app does: sign H(origin) || H(nonce) with md (the
 * algorithm's hash) and hand out r||s, base64.  free() the result. */
static char *webeid_sign(EVP_PKEY *key, const EVP_MD *md, const char *origin, const char *nonce)
{
    unsigned char msg[128];
    unsigned n1 = 0;
    unsigned n2 = 0;
    unsigned char der[160];
    size_t dlen = sizeof(der);
    const unsigned char *p = der;
    unsigned char raw[132];
    int half = (EVP_PKEY_get_bits(key) + 7) / 8;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *sig;
    const BIGNUM *r;
    const BIGNUM *s;
    char *out = NULL;

    assert_int_equal(EVP_Digest(origin, strlen(origin), msg, &n1, md, NULL), 1);
    assert_int_equal(EVP_Digest(nonce, strlen(nonce), msg + n1, &n2, md, NULL), 1);
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &dlen, msg, n1 + n2), 1);
    EVP_MD_CTX_free(ctx);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &s);
    assert_int_equal(BN_bn2binpad(r, raw, half), half);
    assert_int_equal(BN_bn2binpad(s, raw + half, half), half);
    ECDSA_SIG_free(sig);
    assert_int_equal(dz_b64_encode(raw, (size_t)half * 2, false, &out), 0);
    return out;
}

/* The token as webeid.authenticate() resolves it. */
static json_t *token(const char *cert_b64, const char *alg, const char *sig_b64)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "unverifiedCertificate", cert_b64, "algorithm",
                     alg, "signature", sig_b64, "format", "web-eid:1.0", "appVersion", APP);
}

static void assert_logged_in(struct fx *f, struct dz_req *r)
{
    json_t *j = fake_req_json(r);
    json_t *line;

    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    assert_string_equal(json_string_value(json_object_get(j, "acr")), "high");
    json_decref(j);
    line = fake_gw_audit_find(f->g, fake_req_resp_header(r, "darvaza-request-id"), "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "means")), "card");
    assert_string_equal(json_string_value(json_object_get(line, "token_format")), "web-eid:1.0");
    assert_string_equal(json_string_value(json_object_get(line, "app_version")), APP);
    json_decref(line);
}

static void test_webeid_es256(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;

    /* {nonce, authToken}: what a page posts after webeid.authenticate(). */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p256, EVP_sha256(), FAKE_GW_ORIGIN, nonce);
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert256_b64, "ES256", sig)));
    assert_logged_in(f, r);
    fake_req_free(r);
    /* The same token again: the nonce is spent. */
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert256_b64, "ES256", sig)));
    assert_problem(r, 401, "invalid_nonce");
    fake_req_free(r);
    free(sig);

    /* The token's fields beside the nonce, unwrapped. */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p256, EVP_sha256(), FAKE_GW_ORIGIN, nonce);
    json_t *flat = token(f->cert256_b64, "ES256", sig);
    json_object_set_new(flat, "nonce", json_string(nonce));
    r = card_post(f->g, flat);
    assert_logged_in(f, r);
    fake_req_free(r);
    free(sig);
}

static void test_webeid_es384_hashes_with_sha384(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;

    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p384, EVP_sha384(), FAKE_GW_ORIGIN, nonce);
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert384_b64, "ES384", sig)));
    assert_logged_in(f, r);
    fake_req_free(r);
    free(sig);

    /* The same card answering in darvaza-card's form signs SHA-256 hashes:
     * a Web eID signature (SHA-384 hashes) does not pass as one, nor the
     * other way round - the two formats cannot be swapped. */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p384, EVP_sha384(), FAKE_GW_ORIGIN, nonce);
    r = card_post(f->g, json_pack("{s:s, s:s, s:s, s:s}", "nonce", nonce, "certificate",
                                  f->cert384_b64, "algorithm", "ES384", "signature", sig));
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);
    card_challenge(f->g, nonce);
    {
        /* darvaza-card's data: SHA-256(origin) || SHA-256(nonce), ES384. */
        unsigned char msg[64];
        unsigned char der[160];
        size_t dlen = sizeof(der);
        const unsigned char *p = der;
        unsigned char raw[96];
        const BIGNUM *rr;
        const BIGNUM *ss;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ECDSA_SIG *es;

        SHA256((const unsigned char *)FAKE_GW_ORIGIN, strlen(FAKE_GW_ORIGIN), msg);
        SHA256((const unsigned char *)nonce, strlen(nonce), msg + 32);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, f->p384), 1);
        assert_int_equal(EVP_DigestSign(ctx, der, &dlen, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(ctx);
        es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
        ECDSA_SIG_get0(es, &rr, &ss);
        BN_bn2binpad(rr, raw, 48);
        BN_bn2binpad(ss, raw + 48, 48);
        ECDSA_SIG_free(es);
        assert_int_equal(dz_b64_encode(raw, sizeof(raw), false, &sig), 0);
    }
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert384_b64, "ES384", sig)));
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);
}

static void test_webeid_refusals(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;
    json_t *t;

    /* Made for another origin (a look-alike site collected it). */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p256, EVP_sha256(), "https://gw.test.evil", nonce);
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert256_b64, "ES256", sig)));
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);

    /* A later major version, a missing format, a bad appVersion, a
     * certificate that is not base64: 400 before any nonce is spent. */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p256, EVP_sha256(), FAKE_GW_ORIGIN, nonce);
    t = token(f->cert256_b64, "ES256", sig);
    json_object_set_new(t, "format", json_string("web-eid:2.0"));
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken", t));
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    t = token(f->cert256_b64, "ES256", sig);
    json_object_del(t, "format");
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken", t));
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    t = token(f->cert256_b64, "ES256", sig);
    json_object_set_new(t, "appVersion", json_string("app\n{\"forged\":1}"));
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken", t));
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    t = token("%%%", "ES256", sig);
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken", t));
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    r = card_post(f->g, json_pack("{s:s, s:s}", "nonce", nonce, "authToken", "x"));
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    /* After all that the nonce is unused: the good token logs in. */
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert256_b64, "ES256", sig)));
    assert_logged_in(f, r);
    fake_req_free(r);
    free(sig);

    /* An algorithm that does not fit the key. */
    card_challenge(f->g, nonce);
    sig = webeid_sign(f->p256, EVP_sha256(), FAKE_GW_ORIGIN, nonce);
    r = card_post(f->g, json_pack("{s:s, s:o}", "nonce", nonce, "authToken",
                                  token(f->cert256_b64, "RS256", sig)));
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);
}

/* The parser alone, over inputs no test above builds. */
static void test_parse(void **state)
{
    static const struct {
        const char *json;
        int rc;
        int format;
    } cases[] = {
        {"{\"nonce\":\"n\",\"certificate\":\"AAAA\",\"algorithm\":\"ES256\",\"signature\":"
         "\"AAAA\"}",
         0, DZ_CARD_ANSWER_DARVAZA},
        {"{\"nonce\":\"n\",\"authToken\":{\"unverifiedCertificate\":\"AAAA\",\"algorithm\":"
         "\"ES256\",\"signature\":\"AA-_\",\"format\":\"web-eid:1\"}}",
         0, DZ_CARD_ANSWER_WEBEID},
        {"{\"nonce\":\"n\",\"authToken\":{\"unverifiedCertificate\":\"AAAA\",\"algorithm\":"
         "\"ES256\",\"signature\":\"AAAA\",\"format\":\"web-eid:1.12\"}}",
         0, DZ_CARD_ANSWER_WEBEID},
        {"{\"nonce\":\"n\",\"authToken\":{\"unverifiedCertificate\":\"AAAA\",\"algorithm\":"
         "\"ES256\",\"signature\":\"AAAA\",\"format\":\"web-eid:1.\"}}",
         DZ_ERR_INVAL, 0},
        {"{\"nonce\":\"n\",\"authToken\":{\"unverifiedCertificate\":\"AAAA\",\"algorithm\":"
         "\"ES256\",\"signature\":\"AAAA\",\"format\":\"web-eid:10\"}}",
         DZ_ERR_INVAL, 0},
        {"{\"nonce\":\"n\",\"authToken\":{\"unverifiedCertificate\":\"AAAA\",\"algorithm\":"
         "\"ES256\",\"signature\":\"AAAA\",\"format\":\"web-eid:1.0\",\"appVersion\":7}}",
         DZ_ERR_INVAL, 0},
        {"{\"nonce\":\"n\",\"certificate\":\"AA-_\",\"algorithm\":\"ES256\",\"signature\":"
         "\"AAAA\"}",
         DZ_ERR_INVAL, 0}, /* ours is strict standard base64 */
        {"{\"nonce\":\"n\",\"unverifiedCertificate\":\"AAAA\",\"algorithm\":\"ES256\","
         "\"signature\":\"AAAA\"}",
         DZ_ERR_INVAL, 0}, /* Web eID fields without a format */
        {"{\"nonce\":\"\",\"certificate\":\"AAAA\",\"algorithm\":\"ES256\",\"signature\":\"AAAA\"}",
         DZ_ERR_INVAL, 0},
        {"{\"nonce\":\"n\",\"certificate\":\"AAAA\",\"algorithm\":\"ES256ES256\","
         "\"signature\":\"AAAA\"}",
         DZ_ERR_INVAL, 0},
        {"{\"nonce\":\"n\\u0000x\",\"certificate\":\"AAAA\",\"algorithm\":\"ES256\","
         "\"signature\":\"AAAA\"}",
         DZ_ERR_INVAL, 0}, /* a NUL inside a string */
        {"{\"nonce\":\"n\",\"certificate\":\"AAAA\",\"algorithm\":\"\",\"signature\":\"AAAA\"}",
         DZ_ERR_INVAL, 0}, /* found by fuzz_card_answer */
        {"[]", DZ_ERR_INVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, NULL);
        struct dz_card_answer a;
        const char *why = NULL;
        int rc;

        assert_non_null(j);
        rc = dz_card_answer_parse(j, &a, &why);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, why ? why : "");
        if (rc == 0) {
            assert_int_equal(a.format, cases[i].format);
            assert_null(why);
            assert_int_equal(a.cert_len, 3);
        } else {
            assert_non_null(why);
            assert_null(a.cert_der);
            assert_null(a.sig);
        }
        dz_card_answer_cleanup(&a);
        json_decref(j);
    }
}

/* H(origin) || H(nonce): SHA-256 for ours, the algorithm's hash for Web eID. */
static void test_message(void **state)
{
    struct dz_card_answer a;
    unsigned char msg[DZ_CARD_ANSWER_MSG_MAX];
    unsigned char want[64];
    size_t len = 0;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.nonce = "abc";
    snprintf(a.algorithm, sizeof(a.algorithm), "ES512");
    assert_int_equal(dz_card_answer_message(&a, "https://o", msg, &len), 0);
    assert_int_equal(len, 64);
    SHA256((const unsigned char *)"https://o", 9, want);
    SHA256((const unsigned char *)"abc", 3, want + 32);
    assert_memory_equal(msg, want, 64);
    a.format = DZ_CARD_ANSWER_WEBEID;
    assert_int_equal(dz_card_answer_message(&a, "https://o", msg, &len), 0);
    assert_int_equal(len, 128);
    SHA512((const unsigned char *)"abc", 3, want);
    assert_memory_equal(msg + 64, want, 64);
    snprintf(a.algorithm, sizeof(a.algorithm), "HS256");
    assert_int_equal(dz_card_answer_message(&a, "https://o", msg, &len), DZ_ERR_INVAL);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webeid_es256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webeid_es384_hashes_with_sha384, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webeid_refusals, setup, teardown),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
