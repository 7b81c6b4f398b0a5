/* test_ecdsa_sig.c - keys/ecdsa_sig.c, the one r||s <-> DER converter,
 * against OpenSSL's own output: real EVP signatures (DER) on P-256 and
 * P-384 go to raw and back byte for byte, the raw form verifies with the
 * gateway's verifier, the DER made from raw is what an ECDSA_SIG built by
 * hand encodes to; the group orders agree with OpenSSL's; and every
 * refusal: wrong lengths, trailing bytes, non-DER encodings, r or s zero,
 * at or above the order, or wider than the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "base/err.h"
#include "keys/ecdsa_sig.h"
#include "keys/sigverify.h"

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    return k;
}

/* The DER OpenSSL makes from r||s split by hand: the reference. */
static size_t der_by_hand(const unsigned char *raw, size_t field, unsigned char *out)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)field, NULL);
    BIGNUM *s = BN_bin2bn(raw + field, (int)field, NULL);
    unsigned char *p = out;
    int n;

    assert_non_null(es);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    n = i2d_ECDSA_SIG(es, &p);
    assert_true(n > 0 && n <= DZ_ECDSA_SIG_DER_MAX);
    ECDSA_SIG_free(es);
    return (size_t)n;
}

/* Many real signatures, until some with a short r or s (about 1 in 128)
 * were seen: DER -> raw -> DER is the identity, the DER verifies with EVP,
 * the raw form with dz_sig_verify, and a flipped bit no longer does. */
static void roundtrip(const char *curve, const char *alg, size_t field, const EVP_MD *md)
{
    EVP_PKEY *k = ec_key(curve);
    unsigned char msg[64];
    unsigned char der[DZ_ECDSA_SIG_DER_MAX + 16];
    unsigned char again[DZ_ECDSA_SIG_DER_MAX];
    unsigned char hand[DZ_ECDSA_SIG_DER_MAX];
    unsigned char raw[DZ_ECDSA_SIG_RAW_MAX];
    size_t der_len, again_len, hand_len;
    int short_seen = 0;

    assert_int_equal(dz_ecdsa_sig_field_len(k), field);
    for (int i = 0; i < 20000 && (i < 200 || short_seen < 3); i++) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        memset(msg, 0, sizeof(msg));
        memcpy(msg, &i, sizeof(i));
        der_len = sizeof(der);
        assert_non_null(c);
        assert_int_equal(EVP_DigestSignInit(c, NULL, md, NULL, k), 1);
        assert_int_equal(EVP_DigestSign(c, der, &der_len, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(c);

        assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, raw), 0);
        if (raw[0] == 0 || raw[field] == 0)
            short_seen++;
        assert_int_equal(
            dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, again, sizeof(again), &again_len), 0);
        assert_int_equal(again_len, der_len);
        assert_memory_equal(again, der, der_len);
        hand_len = der_by_hand(raw, field, hand);
        assert_int_equal(hand_len, again_len);
        assert_memory_equal(hand, again, hand_len);

        c = EVP_MD_CTX_new();
        assert_non_null(c);
        assert_int_equal(EVP_DigestVerifyInit(c, NULL, md, NULL, k), 1);
        assert_int_equal(EVP_DigestVerify(c, again, again_len, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(c);
        assert_int_equal(dz_sig_verify(k, alg, msg, sizeof(msg), raw, 2 * field), 0);
        raw[field - 1] ^= 1;
        assert_int_not_equal(dz_sig_verify(k, alg, msg, sizeof(msg), raw, 2 * field), 0);
    }
    assert_true(short_seen >= 3);
    EVP_PKEY_free(k);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip("P-256", "ES256", 32, EVP_sha256());
    roundtrip("P-384", "ES384", 48, EVP_sha384());
}

/* The order of curve as big-endian bytes at the field size. */
static void order_of(int nid, size_t field, unsigned char *out)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);

    assert_non_null(g);
    assert_int_equal(BN_bn2binpad(EC_GROUP_get0_order(g), out, (int)field), (int)field);
    EC_GROUP_free(g);
}

/* The range is [1, n-1] for OpenSSL's n: n - 1 passes both ways, n and
 * 0 are refused both ways. */
static void check_range(int nid, size_t field)
{
    unsigned char raw[DZ_ECDSA_SIG_RAW_MAX];
    unsigned char back[DZ_ECDSA_SIG_RAW_MAX];
    unsigned char n[DZ_ECDSA_SIG_FIELD_MAX];
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len;

    order_of(nid, field, n);
    memcpy(raw, n, field);
    raw[field - 1]--; /* n - 1: no order here ends in a 00 byte */
    memset(raw + field, 0, field);
    raw[2 * field - 1] = 1; /* s = 1 */
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, der, sizeof(der), &der_len), 0);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, back), 0);
    assert_memory_equal(back, raw, 2 * field);

    /* r = n */
    memcpy(raw, n, field);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, der, sizeof(der), &der_len),
                     DZ_ERR_PARSE);
    assert_int_equal(der_len, 0);
    der_len = der_by_hand(raw, field, der);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, back), DZ_ERR_PARSE);
    /* s = n */
    memcpy(raw + field, n, field);
    raw[field - 1]--;
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, der, sizeof(der), &der_len),
                     DZ_ERR_PARSE);
    der_len = der_by_hand(raw, field, der);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, back), DZ_ERR_PARSE);
    /* s = 0 */
    memset(raw + field, 0, field);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, der, sizeof(der), &der_len),
                     DZ_ERR_PARSE);
    der_len = der_by_hand(raw, field, der);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, back), DZ_ERR_PARSE);
    /* all ones: above the order, still field_len bytes */
    memset(raw, 0xff, 2 * field);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 2 * field, field, der, sizeof(der), &der_len),
                     DZ_ERR_PARSE);
    der_len = der_by_hand(raw, field, der);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(der, der_len, field, back), DZ_ERR_PARSE);
    for (size_t i = 0; i < 2 * field; i++)
        assert_int_equal(back[i], 0); /* raw is cleared on error */
}

static void test_range(void **state)
{
    (void)state;
    check_range(NID_X9_62_prime256v1, 32);
    check_range(NID_secp384r1, 48);
    check_range(NID_secp521r1, 66);
}

static void test_der_refused(void **state)
{
    /* r = 1, s = 2, field 32: the smallest well-formed SEQUENCE. */
    static const unsigned char good[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
    static const struct {
        const char *why;
        unsigned char der[16];
        size_t len;
    } bad[] = {
        {"not a SEQUENCE", {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 8},
        {"SEQUENCE too short", {0x30, 0x05, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 8},
        {"SEQUENCE too long", {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 8},
        {"trailing byte", {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00}, 9},
        {"trailing garbage", {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0xde, 0xad}, 10},
        {"third INTEGER", {0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03}, 11},
        {"r not an INTEGER", {0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x02}, 8},
        {"negative r", {0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x02}, 8},
        {"zero r", {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x02}, 8},
        {"zero s (two bytes)", {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x00}, 9},
        {"needless 00", {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02}, 9},
        {"empty r", {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x02, 0x00}, 8},
        {"long form for a short length", {0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 9},
        {"long form INTEGER length", {0x30, 0x07, 0x02, 0x81, 0x01, 0x01, 0x02, 0x01, 0x02}, 9},
        {"indefinite length", {0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0, 0}, 10},
        {"s runs past the end", {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x05, 0x02}, 8},
        {"too short", {0x30, 0x00}, 2},
        {"empty", {0}, 0},
    };
    unsigned char raw[DZ_ECDSA_SIG_RAW_MAX];
    unsigned char big[200];

    (void)state;
    assert_int_equal(dz_ecdsa_sig_der_to_raw(good, sizeof(good), 32, raw), 0);
    assert_int_equal(raw[31], 1);
    assert_int_equal(raw[63], 2);
    for (size_t i = 0; i < 31; i++)
        assert_int_equal(raw[i], 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(raw, 0x5a, sizeof(raw));
        if (dz_ecdsa_sig_der_to_raw(bad[i].der, bad[i].len, 32, raw) != DZ_ERR_PARSE)
            fail_msg("accepted: %s", bad[i].why);
        for (size_t j = 0; j < 64; j++)
            if (raw[j] != 0)
                fail_msg("raw not cleared: %s", bad[i].why);
    }
    /* Field sizes other than P-256/384/521, and NULLs: the caller's bug. */
    assert_int_equal(dz_ecdsa_sig_der_to_raw(good, sizeof(good), 31, raw), DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(good, sizeof(good), 0, raw), DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(NULL, 8, 32, raw), DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(good, sizeof(good), 32, NULL), DZ_ERR_INVAL);

    /* r of 33 significant bytes does not fit P-256, fits P-384. */
    memset(big, 0, sizeof(big));
    big[0] = 0x30;
    big[1] = 2 + 33 + 3;
    big[2] = 0x02;
    big[3] = 33;
    memset(big + 4, 0x11, 33);
    big[37] = 0x02;
    big[38] = 1;
    big[39] = 1;
    assert_int_equal(dz_ecdsa_sig_der_to_raw(big, 40, 32, raw), DZ_ERR_PARSE);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(big, 40, 48, raw), 0);
    /* r with its sign byte: 00 then 32 bytes with the top bit set fits. */
    big[4] = 0x00;
    big[5] = 0x80;
    assert_int_equal(dz_ecdsa_sig_der_to_raw(big, 40, 32, raw), 0);
    assert_int_equal(raw[0], 0x80);
    /* Longer than any P-256 signature can be (73 bytes): refused before
     * parsing, whatever follows. */
    assert_int_equal(dz_ecdsa_sig_der_to_raw(big, 3 + 2 * (32 + 3) + 1, 32, raw), DZ_ERR_PARSE);
    assert_int_equal(dz_ecdsa_sig_der_to_raw(big, sizeof(big), 66, raw), DZ_ERR_PARSE);
}

static void test_raw_refused(void **state)
{
    unsigned char raw[DZ_ECDSA_SIG_RAW_MAX + 1];
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 99;

    (void)state;
    memset(raw, 0x42, sizeof(raw));
    /* raw must be exactly twice the field size. */
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 63, 32, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(der_len, 0);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 65, 32, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 0, 32, der, sizeof(der), &der_len), DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 96, 32, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 64, 48, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 62, 31, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(NULL, 64, 32, der, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 64, 32, NULL, sizeof(der), &der_len),
                     DZ_ERR_INVAL);
    /* zero r */
    memset(raw, 0, 32);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 64, 32, der, sizeof(der), &der_len),
                     DZ_ERR_PARSE);
    /* a buffer too small for the DER */
    memset(raw, 0x42, 64);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 64, 32, der, 10, &der_len), DZ_ERR_TOOBIG);
    assert_int_equal(der_len, 0);
    assert_int_equal(dz_ecdsa_sig_raw_to_der(raw, 64, 32, der, sizeof(der), &der_len), 0);
    assert_int_equal(der_len, 2 + 2 * (2 + 32));
}

static void test_field_len(void **state)
{
    EVP_PKEY *k;

    (void)state;
    assert_int_equal(dz_ecdsa_sig_field_len(NULL), 0);
    k = ec_key("P-521");
    assert_int_equal(dz_ecdsa_sig_field_len(k), 66);
    EVP_PKEY_free(k);
    k = ec_key("secp256k1");
    assert_int_equal(dz_ecdsa_sig_field_len(k), 0);
    EVP_PKEY_free(k);
    k = EVP_RSA_gen(2048);
    assert_non_null(k);
    assert_int_equal(dz_ecdsa_sig_field_len(k), 0);
    EVP_PKEY_free(k);
}

/* What OpenSSL's decoder accepts as the one DER form of a positive (r, s)
 * in range, the reference for the parser written by hand: d2i with no
 * bytes left over, both values positive, below the order and not zero,
 * no wider than the field, and the re-encoding the same bytes. */
static bool der_ok_by_openssl(const unsigned char *der, size_t len, size_t field,
                              const BIGNUM *order, unsigned char *raw)
{
    const unsigned char *p = der;
    unsigned char *q;
    unsigned char again[DZ_ECDSA_SIG_DER_MAX + 16];
    ECDSA_SIG *es;
    const BIGNUM *r, *s;
    bool ok = false;

    if (len > 3 + 2 * (2 + field + 1))
        return false;
    es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!es || p != der + len)
        goto out;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_is_negative(r) || BN_is_negative(s) || BN_is_zero(r) || BN_is_zero(s) ||
        BN_cmp(r, order) >= 0 || BN_cmp(s, order) >= 0)
        goto out;
    if (BN_bn2binpad(r, raw, (int)field) != (int)field ||
        BN_bn2binpad(s, raw + field, (int)field) != (int)field)
        goto out;
    q = again;
    ok = i2d_ECDSA_SIG(es, NULL) == (int)len && i2d_ECDSA_SIG(es, &q) == (int)len &&
         memcmp(again, der, len) == 0;
out:
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return ok;
}

/* Real signatures and thousands of mutations of them (a byte changed, cut,
 * added, a length or sign byte moved): the parser accepts exactly what the
 * reference accepts, with the same r || s. */
static void same_as_openssl(const char *curve, size_t field, int nid)
{
    EVP_PKEY *k = ec_key(curve);
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
    const BIGNUM *order = EC_GROUP_get0_order(g);
    unsigned seed = 12345;
    unsigned long accepted = 0, refused = 0;

    for (int i = 0; i < 200; i++) {
        unsigned char msg[32];
        unsigned char der[DZ_ECDSA_SIG_DER_MAX + 16];
        size_t der_len = sizeof(der);
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);

        memset(msg, i, sizeof(msg));
        assert_true(EVP_PKEY_sign_init(c) == 1 &&
                    EVP_PKEY_sign(c, der, &der_len, msg, sizeof(msg)) == 1);
        EVP_PKEY_CTX_free(c);
        for (int m = 0; m < 40; m++) {
            unsigned char t[DZ_ECDSA_SIG_DER_MAX + 16];
            unsigned char want[132], got[132];
            size_t len = der_len;
            bool ok;
            memcpy(t, der, der_len);
            seed = seed * 1103515245u + 12345u;
            switch (m % 5) {
            case 0: /* unchanged */
                break;
            case 1: /* one byte anywhere */
                t[(seed >> 8) % len] = (unsigned char)(seed >> 16);
                break;
            case 2: /* one of the header bytes (tags, lengths, signs) a little */
                t[(seed >> 8) % 6] += (unsigned char)((seed >> 16) % 3) - 1;
                break;
            case 3: /* cut */
                len = (seed >> 8) % len;
                break;
            default: /* a byte added */
                t[len++] = (unsigned char)(seed >> 16);
                break;
            }
            ok = der_ok_by_openssl(t, len, field, order, want);
            assert_int_equal(dz_ecdsa_sig_der_to_raw(t, len, field, got), ok ? 0 : DZ_ERR_PARSE);
            if (ok) {
                assert_memory_equal(got, want, 2 * field);
                accepted++;
            } else {
                refused++;
            }
        }
    }
    /* Both sides were exercised. */
    assert_true(accepted >= 200 && refused >= 1000);
    EC_GROUP_free(g);
    EVP_PKEY_free(k);
}

static void test_der_same_as_openssl(void **state)
{
    (void)state;
    same_as_openssl("P-256", 32, NID_X9_62_prime256v1);
    same_as_openssl("P-384", 48, NID_secp384r1);
    same_as_openssl("P-521", 66, NID_secp521r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_range),
        cmocka_unit_test(test_der_refused), cmocka_unit_test(test_raw_refused),
        cmocka_unit_test(test_field_len),   cmocka_unit_test(test_der_same_as_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
