/* test_totp.c - TOTP/HOTP helpers (gateway/state/totp.c) against the RFC 4226 and
 * RFC 6238 SHA-1 vectors in shared/testdata/otp-vectors.md and oathtool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "state/totp.h"

static const unsigned char rfc_key[20] = "12345678901234567890";

static void test_hotp_rfc4226(void **state)
{
    static const char *const want[10] = {"755224", "287082", "359152", "969429", "338314",
                                         "254676", "287922", "162583", "399871", "520489"};
    char out[DZ_TOTP_CODE_MAX + 1];
    uint64_t c;

    (void)state;
    for (c = 0; c < 10; c++) {
        assert_int_equal(dz_totp_hotp(rfc_key, sizeof(rfc_key), c, 6, out), 0);
        assert_string_equal(out, want[c]);
    }
    assert_int_equal(dz_totp_hotp(rfc_key, sizeof(rfc_key), 0, 5, out), DZ_ERR_INVAL);
    assert_int_equal(dz_totp_hotp(rfc_key, sizeof(rfc_key), 0, 9, out), DZ_ERR_INVAL);
    assert_int_equal(dz_totp_hotp(rfc_key, 0, 0, 6, out), DZ_ERR_INVAL);
}

static void test_totp_rfc6238(void **state)
{
    static const struct {
        int64_t t;
        const char *code;
        uint64_t step;
    } v[] = {
        {59, "94287082", 1},
        {1111111109, "07081804", 0x23523EC},
        {1111111111, "14050471", 0x23523ED},
        {1234567890, "89005924", 0x273EF07},
        {2000000000, "69279037", 0x3F940AA},
        {20000000000LL, "65353130", 0x27BC86AA},
    };
    char out[DZ_TOTP_CODE_MAX + 1];
    uint64_t step;
    bool ok;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(dz_totp_step(v[i].t), v[i].step);
        assert_int_equal(dz_totp_generate(rfc_key, sizeof(rfc_key), v[i].t, 8, out), 0);
        assert_string_equal(out, v[i].code);
        assert_int_equal(
            dz_totp_validate(rfc_key, sizeof(rfc_key), v[i].code, v[i].t, 0, 8, &ok, &step), 0);
        assert_true(ok);
        assert_int_equal(step, v[i].step);
    }
}

static void test_validate_window(void **state)
{
    const int64_t now = 1700000000; /* step 56666666 */
    char code[DZ_TOTP_CODE_MAX + 1];
    uint64_t step;
    bool ok;
    int d;

    (void)state;
    for (d = -3; d <= 3; d++) {
        assert_int_equal(dz_totp_generate(rfc_key, sizeof(rfc_key), now + d * 30, 6, code), 0);
        assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), code, now, 1, 6, &ok, &step),
                         0);
        if (d >= -1 && d <= 1) {
            assert_true(ok);
            assert_int_equal(step, dz_totp_step(now) + d);
        } else {
            assert_false(ok);
            assert_int_equal(step, 0);
        }
        /* window 0: only the current step */
        assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), code, now, 0, 6, &ok, NULL), 0);
        assert_int_equal(ok, d == 0);
    }
}

static void test_validate_bad_codes(void **state)
{
    static const char *const bad[] = {"",        "12345",  "1234567", "12345a",  " 123456",
                                      "123456 ", "+12345", "-12345",  "１23456", "12 456"};
    char code[DZ_TOTP_CODE_MAX + 1];
    char wrong[DZ_TOTP_CODE_MAX + 1];
    bool ok = true;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok = true;
        assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), bad[i], 100, 1, 6, &ok, NULL),
                         0);
        assert_false(ok);
    }
    ok = true;
    assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), NULL, 100, 1, 6, &ok, NULL), 0);
    assert_false(ok);
    /* a right code with one digit changed */
    assert_int_equal(dz_totp_generate(rfc_key, sizeof(rfc_key), 1700000000, 6, code), 0);
    memcpy(wrong, code, sizeof(code));
    wrong[5] = (char)(wrong[5] == '9' ? '0' : wrong[5] + 1);
    assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), wrong, 1700000000, 1, 6, &ok, NULL),
                     0);
    assert_false(ok);
    /* the 8-digit code is not a 6-digit code */
    assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), "94287082", 59, 1, 6, &ok, NULL),
                     0);
    assert_false(ok);
    /* bad arguments are errors, and still a deny */
    ok = true;
    assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), code, 1700000000,
                                      DZ_TOTP_WINDOW_MAX + 1, 6, &ok, NULL),
                     DZ_ERR_INVAL);
    assert_false(ok);
    assert_int_equal(dz_totp_validate(rfc_key, sizeof(rfc_key), code, -1, 1, 6, &ok, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_totp_validate(NULL, 20, code, 1, 1, 6, &ok, NULL), DZ_ERR_INVAL);
}

static void test_base32(void **state)
{
    char b32[DZ_TOTP_B32_MAX];
    unsigned char back[DZ_TOTP_SECRET_MAX];
    unsigned char secret[DZ_TOTP_SECRET_LEN];
    size_t n;

    (void)state;
    assert_int_equal(dz_totp_base32(rfc_key, sizeof(rfc_key), b32, sizeof(b32)), 0);
    assert_string_equal(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    /* RFC 4648 §10 vectors, padding removed */
    assert_int_equal(dz_totp_base32((const unsigned char *)"f", 1, b32, sizeof(b32)), 0);
    assert_string_equal(b32, "MY");
    assert_int_equal(dz_totp_base32((const unsigned char *)"foob", 4, b32, sizeof(b32)), 0);
    assert_string_equal(b32, "MZXW6YQ");
    assert_int_equal(dz_totp_base32((const unsigned char *)"foobar", 6, b32, sizeof(b32)), 0);
    assert_string_equal(b32, "MZXW6YTBOI");
    assert_int_equal(dz_totp_base32(rfc_key, sizeof(rfc_key), b32, 32), DZ_ERR_TOOBIG);
    assert_int_equal(dz_totp_base32(rfc_key, 0, b32, sizeof(b32)), DZ_ERR_INVAL);

    assert_int_equal(
        dz_totp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", back, sizeof(back), &n),
        0);
    assert_int_equal(n, 20);
    assert_memory_equal(back, rfc_key, 20);
    assert_int_equal(dz_totp_base32_decode("MZXW6YQ=", back, sizeof(back), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(back, "foob", 4);
    assert_int_equal(dz_totp_base32_decode("MZXW6YQ1", back, sizeof(back), &n), DZ_ERR_PARSE);
    assert_int_equal(dz_totp_base32_decode("M", back, sizeof(back), &n), DZ_ERR_PARSE);
    assert_int_equal(dz_totp_base32_decode("", back, sizeof(back), &n), DZ_ERR_PARSE);
    assert_int_equal(dz_totp_base32_decode("MZXW6YTBOI", back, 5, &n), DZ_ERR_TOOBIG);

    /* fresh secrets round-trip and differ */
    assert_int_equal(dz_totp_secret_new(secret), 0);
    assert_int_equal(dz_totp_base32(secret, sizeof(secret), b32, sizeof(b32)), 0);
    assert_int_equal(strlen(b32), 32);
    assert_int_equal(dz_totp_base32_decode(b32, back, sizeof(back), &n), 0);
    assert_int_equal(n, sizeof(secret));
    assert_memory_equal(back, secret, sizeof(secret));
    memcpy(back, secret, sizeof(secret));
    assert_int_equal(dz_totp_secret_new(secret), 0);
    assert_memory_not_equal(back, secret, sizeof(secret));
}

static void test_uri(void **state)
{
    struct dz_buf b;

    (void)state;
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_totp_uri("ABC1234", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", &b), 0);
    assert_string_equal(dz_buf_cstr(&b),
                        "otpauth://totp/Darvaza:ABC1234?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                        "&issuer=Darvaza&algorithm=SHA1&digits=6&period=30");
    dz_buf_reset(&b);
    assert_int_equal(dz_totp_uri("a b:c/é", "AB", &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "otpauth://totp/Darvaza:a%20b%3Ac%2F%C3%A9?secret=AB"
                                         "&issuer=Darvaza&algorithm=SHA1&digits=6&period=30");
    dz_buf_reset(&b);
    assert_int_equal(dz_totp_uri("", "AB", &b), DZ_ERR_INVAL);
    dz_buf_cleanup(&b);
    {
        /* a label that would make the URI too long is refused, not cut */
        char label[400];

        memset(label, ' ', sizeof(label) - 1); /* each becomes %20 */
        label[sizeof(label) - 1] = '\0';
        dz_buf_init(&b, 4096);
        assert_int_equal(dz_totp_uri(label, "AB", &b), DZ_ERR_TOOBIG);
        assert_int_equal(b.len, 0);
        dz_buf_cleanup(&b);
    }
    dz_buf_init(&b, 16);
    assert_int_equal(dz_totp_uri("ABC1234", "AB", &b), DZ_ERR_TOOBIG);
    dz_buf_cleanup(&b);
}

/* oathtool (the reference implementation's CLI) makes a code for a fresh
 * secret at the current time; we must accept it, at the current time. */
static void test_oathtool_interop(void **state)
{
    unsigned char secret[DZ_TOTP_SECRET_LEN];
    char b32[DZ_TOTP_B32_MAX];
    char cmd[256];
    char line[64] = "";
    FILE *p;
    time_t before;
    bool ok = false;
    int attempt;

    (void)state;
    assert_int_equal(dz_totp_secret_new(secret), 0);
    assert_int_equal(dz_totp_base32(secret, sizeof(secret), b32, sizeof(b32)), 0);
    snprintf(cmd, sizeof(cmd), "oathtool --totp -b -d 6 %s", b32);
    /* Retry once if a step boundary falls between oathtool and us. */
    for (attempt = 0; attempt < 2 && !ok; attempt++) {
        before = time(NULL);
        p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof(line), p));
        assert_int_equal(pclose(p), 0);
        line[strcspn(line, "\r\n")] = '\0';
        assert_int_equal(strlen(line), 6);
        assert_int_equal(
            dz_totp_validate(secret, sizeof(secret), line, (int64_t)before, 0, 6, &ok, NULL), 0);
    }
    assert_true(ok);
    /* and the other way round: oathtool validates our code */
    {
        char code[DZ_TOTP_CODE_MAX + 1];

        assert_int_equal(dz_totp_generate(secret, sizeof(secret), time(NULL), 6, code), 0);
        snprintf(cmd, sizeof(cmd), "oathtool --totp -b -w 1 %s %s >/dev/null", b32, code);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hotp_rfc4226),     cmocka_unit_test(test_totp_rfc6238),
        cmocka_unit_test(test_validate_window),  cmocka_unit_test(test_validate_bad_codes),
        cmocka_unit_test(test_base32),           cmocka_unit_test(test_uri),
        cmocka_unit_test(test_oathtool_interop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
