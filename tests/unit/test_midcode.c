/*
 * test_midcode.c - the Mobile-ID verification code (lib/keys/midcode.c) against
 * the vectors SK ID Solutions publishes with its reference client:
 *   SK-EID/mid-rest-java-client, src/test/java/ee/sk/mid/
 *   VerificationCodeCalculatorTest.java (commit 52f9c816):
 *   - the worked example of the MID REST API documentation, the 20-byte hash
 *     2f665f6a6999e0ef0752e00ec9f453adf59d8cb6 -> "1462";
 *   - SHA-256("HACKERMAN_SHA256") -> "6008", SHA-384("HACKERMAN_SHA384") ->
 *     "7230", SHA-512("HACKERMAN_SHA512") -> "3843";
 *   - a 4-byte hash and a null hash give "0000" there; here they are errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "base/err.h"
#include "keys/midcode.h"

static size_t digest(const char *md, const char *text, unsigned char out[64])
{
    unsigned int n = 0;

    assert_int_equal(EVP_Digest(text, strlen(text), out, &n, EVP_get_digestbyname(md), NULL), 1);
    return n;
}

static void test_documentation_example(void **state)
{
    static const unsigned char h[20] = {0x2f, 0x66, 0x5f, 0x6a, 0x69, 0x99, 0xe0, 0xef, 0x07, 0x52,
                                        0xe0, 0x0e, 0xc9, 0xf4, 0x53, 0xad, 0xf5, 0x9d, 0x8c, 0xb6};
    char s[DZ_MID_CODE_LEN + 1];

    (void)state;
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), 1462);
    assert_int_equal(dz_mid_verification_code_str(h, sizeof(h), s), 0);
    assert_string_equal(s, "1462");
}

static void test_sha2_vectors(void **state)
{
    static const struct {
        const char *md, *text, *code;
    } v[] = {
        {"SHA256", "HACKERMAN_SHA256", "6008"},
        {"SHA384", "HACKERMAN_SHA384", "7230"},
        {"SHA512", "HACKERMAN_SHA512", "3843"},
    };
    unsigned char h[64];
    char s[DZ_MID_CODE_LEN + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = digest(v[i].md, v[i].text, h);

        assert_int_equal(dz_mid_verification_code_str(h, n, s), 0);
        assert_string_equal(s, v[i].code);
    }
}

/* Which bits count: only the top 6 of the first byte and the low 7 of the
 * last; everything in between is ignored. */
static void test_bits(void **state)
{
    unsigned char h[32];
    char s[DZ_MID_CODE_LEN + 1];

    (void)state;
    memset(h, 0, sizeof(h));
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), 0);
    assert_int_equal(dz_mid_verification_code_str(h, sizeof(h), s), 0);
    assert_string_equal(s, "0000"); /* zero-padded to 4 digits */
    memset(h, 0xFF, sizeof(h));
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), DZ_MID_CODE_MAX);
    memset(h, 0, sizeof(h));
    h[0] = 0x03;  /* low 2 bits of the first byte: ignored */
    h[31] = 0x80; /* top bit of the last byte: ignored */
    memset(h + 1, 0xFF, 30);
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), 0);
    h[0] = 0x04;  /* lowest counted bit of the first byte */
    h[31] = 0x01; /* lowest bit of the last byte */
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), (1 << 7) | 1);
    assert_int_equal(dz_mid_verification_code_str(h, sizeof(h), s), 0);
    assert_string_equal(s, "0129");
    /* The last byte is h[len - 1], not a fixed h[31] (an early version of
     * the Java client read h[len / 2 - 1]). */
    h[15] = 0x7F;
    assert_int_equal(dz_mid_verification_code(h, sizeof(h)), 129);
    h[31] = 0x00;
    h[19] = 0x05;
    assert_int_equal(dz_mid_verification_code(h, 20), (1 << 7) | 5);
}

static void test_bad_input(void **state)
{
    unsigned char h[DZ_MID_HASH_MAX + 1];
    char s[DZ_MID_CODE_LEN + 1] = "xxxx";

    (void)state;
    memset(h, 0xAB, sizeof(h));
    assert_int_equal(dz_mid_verification_code(NULL, 32), DZ_ERR_INVAL);
    assert_int_equal(dz_mid_verification_code(h, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_mid_verification_code(h, 4), DZ_ERR_INVAL);
    assert_int_equal(dz_mid_verification_code(h, DZ_MID_HASH_MIN - 1), DZ_ERR_INVAL);
    assert_int_equal(dz_mid_verification_code(h, DZ_MID_HASH_MAX + 1), DZ_ERR_INVAL);
    assert_true(dz_mid_verification_code(h, DZ_MID_HASH_MIN) >= 0);
    assert_true(dz_mid_verification_code(h, DZ_MID_HASH_MAX) >= 0);
    assert_int_equal(dz_mid_verification_code_str(h, 4, s), DZ_ERR_INVAL);
    assert_string_equal(s, "");
    assert_int_equal(dz_mid_verification_code_str(NULL, 0, s), DZ_ERR_INVAL);
    assert_string_equal(s, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documentation_example),
        cmocka_unit_test(test_sha2_vectors),
        cmocka_unit_test(test_bits),
        cmocka_unit_test(test_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
