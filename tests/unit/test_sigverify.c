/* test_sigverify.c - card and phone signatures: every algorithm, right and
 * wrong keys, tampered messages, malformed signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "base/err.h"
#include "keys/sigverify.h"

static const unsigned char msg[64] =
    "hash(origin) || hash(nonce) stands in here: 64 bytes of it....";

static EVP_PKEY *ec_key(const char *curve)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static EVP_PKEY *rsa_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

/* Sign msg like a card does; ECDSA returned as raw r||s. */
static size_t sign(EVP_PKEY *k, const EVP_MD *md, int pad, const unsigned char *m, size_t mlen,
                   unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[600];
    size_t len = sizeof(der);

    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k), 1);
    if (pad) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
        if (pad == RSA_PKCS1_PSS_PADDING)
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(ctx, der, &len, m, mlen), 1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        const unsigned char *p = der;
        ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
        int half = (EVP_PKEY_get_bits(k) + 7) / 8;
        assert_non_null(s);
        BN_bn2binpad(ECDSA_SIG_get0_r(s), out, half);
        BN_bn2binpad(ECDSA_SIG_get0_s(s), out + half, half);
        ECDSA_SIG_free(s);
        return (size_t)(2 * half);
    }
    memcpy(out, der, len);
    return len;
}

static void test_es256(void **state)
{
    EVP_PKEY *k = ec_key("P-256");
    EVP_PKEY *other = ec_key("P-256");
    unsigned char sig[600];
    size_t n = sign(k, EVP_sha256(), 0, msg, sizeof(msg), sig);
    unsigned char bad[64];

    (void)state;
    assert_int_equal(n, 64);
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), sig, n), 0);
    /* another key, another message, a flipped bit: refused */
    assert_int_equal(dz_sig_verify(other, "ES256", msg, sizeof(msg), sig, n), DZ_ERR_DENIED);
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg) - 1, sig, n), DZ_ERR_DENIED);
    memcpy(bad, sig, 64);
    bad[10] ^= 1;
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), bad, 64), DZ_ERR_DENIED);
    /* malformed: wrong length, zero r, wrong algorithm for the key */
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), sig, 63), DZ_ERR_INVAL);
    memset(bad, 0, 32);
    assert_int_not_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), bad, 64), 0);
    assert_int_equal(dz_sig_verify(k, "ES384", msg, sizeof(msg), sig, n), DZ_ERR_INVAL);
    assert_int_equal(dz_sig_verify(k, "RS256", msg, sizeof(msg), sig, n), DZ_ERR_INVAL);
    assert_int_equal(dz_sig_verify(k, "none", msg, sizeof(msg), sig, n), DZ_ERR_INVAL);
    assert_int_equal(dz_sig_verify(k, NULL, msg, sizeof(msg), sig, n), DZ_ERR_INVAL);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_es384(void **state)
{
    EVP_PKEY *k = ec_key("P-384");
    unsigned char sig[600];
    size_t n = sign(k, EVP_sha384(), 0, msg, sizeof(msg), sig);

    (void)state;
    assert_int_equal(n, 96);
    assert_int_equal(dz_sig_verify(k, "ES384", msg, sizeof(msg), sig, n), 0);
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), sig, n), DZ_ERR_INVAL);
    EVP_PKEY_free(k);
}

static void test_rsa(void **state)
{
    EVP_PKEY *k = rsa_key();
    unsigned char sig[600];
    size_t n;

    (void)state;
    n = sign(k, EVP_sha256(), RSA_PKCS1_PADDING, msg, sizeof(msg), sig);
    assert_int_equal(dz_sig_verify(k, "RS256", msg, sizeof(msg), sig, n), 0);
    /* a PKCS#1 v1.5 signature is not a PSS one */
    assert_int_equal(dz_sig_verify(k, "PS256", msg, sizeof(msg), sig, n), DZ_ERR_DENIED);
    n = sign(k, EVP_sha256(), RSA_PKCS1_PSS_PADDING, msg, sizeof(msg), sig);
    assert_int_equal(dz_sig_verify(k, "PS256", msg, sizeof(msg), sig, n), 0);
    sig[5] ^= 0x40;
    assert_int_equal(dz_sig_verify(k, "PS256", msg, sizeof(msg), sig, n), DZ_ERR_DENIED);
    assert_int_equal(dz_sig_verify(k, "ES256", msg, sizeof(msg), sig, 64), DZ_ERR_INVAL);
    EVP_PKEY_free(k);
}

static void test_digest(void **state)
{
    EVP_PKEY *k = ec_key("P-256");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
    unsigned char digest[32];
    unsigned char der[128];
    unsigned char raw[64];
    size_t len = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *s;

    (void)state;
    memset(digest, 0x5a, sizeof(digest));
    /* A phone signs the relying party's hash as is. */
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, der, &len, digest, sizeof(digest)), 1);
    s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + 32, 32);
    ECDSA_SIG_free(s);
    assert_int_equal(dz_sig_verify_digest(k, "ES256", digest, 32, raw, 64), 0);
    digest[0] ^= 1;
    assert_int_equal(dz_sig_verify_digest(k, "ES256", digest, 32, raw, 64), DZ_ERR_DENIED);
    assert_int_equal(dz_sig_verify_digest(k, "ES256", digest, 31, raw, 64), DZ_ERR_INVAL);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_es384),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
