/* test_card.c - darvaza-card's pure parts (pkcs11/card_util.c) and its PIN
 * file reader (pkcs11/card_pin.c): the origin a gateway URL names, the
 * challenge message, the gateway's answers, the request body; every one
 * with bad input.  (ECDSA DER -> r||s is tested in test_ecdsa_sig.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "../../pkcs11/card_pin.c"
#include "../../pkcs11/card_util.c"

/* ------------------------------------------------------------------ origin */

static void test_origin_good(void **state)
{
    static const char *const cases[][2] = {
        {"https://localhost:8443", "https://localhost:8443"},
        {"https://localhost:8443/", "https://localhost:8443"},
        {"HTTPS://LocalHost:8443/auth?x=1#frag", "https://localhost:8443"},
        {"https://portal.gov.az", "https://portal.gov.az"},
        {"https://portal.gov.az:443/", "https://portal.gov.az"},
        {"http://127.0.0.1:80", "http://127.0.0.1"},
        {"http://127.0.0.1:8080/x", "http://127.0.0.1:8080"},
        {"https://[::1]:8443/", "https://[::1]:8443"},
        {"https://[::1]", "https://[::1]"},
        {"https://a-b.c-d.az:00443", "https://a-b.c-d.az"},
        {"https://x:1", "https://x:1"},
        {"https://x:65535", "https://x:65535"},
        {"https://h?q", "https://h"},
        {"https://h#f", "https://h"},
    };
    char out[DZ_CARD_ORIGIN_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(dz_card_origin_from_url(cases[i][0], out, sizeof(out)), 0);
        assert_string_equal(out, cases[i][1]);
    }
}

static void test_origin_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "localhost:8443",
        "ftp://localhost",
        "https:/localhost",
        "https://",
        "https:///path",
        "https://:8443",
        "https://user@localhost:8443",
        "https://user:pw@localhost",
        "https://localhost@evil.example",
        "https://host:",
        "https://host:0",
        "https://host:65536",
        "https://host:123456",
        "https://host:-1",
        "https://host:+443",
        "https://host:8a",
        "https://ho st",
        "https://ex_ample.az",
        "https://h\xc3\xa9.az",
        "https://[]",
        "https://[zz::1]",
        "https://[::1]x",
        "https://[::1",
        "https://host\r\n:1",
        "https://host:1:2",
        "javascript://x",
    };
    char out[DZ_CARD_ORIGIN_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 'x', sizeof(out));
        if (dz_card_origin_from_url(bad[i], out, sizeof(out)) != DZ_ERR_INVAL)
            fail_msg("accepted '%s' as '%s'", bad[i], out);
        assert_string_equal(out, "");
    }
    assert_int_equal(dz_card_origin_from_url(NULL, out, sizeof(out)), DZ_ERR_INVAL);
    assert_int_equal(dz_card_origin_from_url("https://x", NULL, 10), DZ_ERR_INVAL);
}

static void test_origin_bounds(void **state)
{
    char small[13]; /* "https://a.az" and its NUL, exactly */
    char out[DZ_CARD_ORIGIN_MAX + 1];
    char *url = malloc(DZ_CARD_URL_MAX + 2);
    char *host;

    (void)state;
    assert_int_equal(dz_card_origin_from_url("https://localhost:8443", small, sizeof(small)),
                     DZ_ERR_TOOBIG);
    assert_string_equal(small, "");
    assert_int_equal(dz_card_origin_from_url("https://a.az", small, sizeof(small)), 0);
    assert_string_equal(small, "https://a.az");
    /* A URL over the bound, and a host longer than an origin may be. */
    assert_non_null(url);
    memcpy(url, "https://", 8);
    memset(url + 8, 'a', DZ_CARD_URL_MAX - 7);
    url[DZ_CARD_URL_MAX + 1] = '\0';
    assert_int_equal(dz_card_origin_from_url(url, out, sizeof(out)), DZ_ERR_INVAL);
    host = url + 8;
    host[DZ_CARD_ORIGIN_MAX] = '\0';
    assert_int_equal(dz_card_origin_from_url(url, out, sizeof(out)), DZ_ERR_INVAL);
    host[100] = '\0';
    assert_int_equal(dz_card_origin_from_url(url, out, sizeof(out)), 0);
    free(url);
}

/* --------------------------------------------------------------- message */

static void test_challenge_message(void **state)
{
    /* SHA-256("abc") and SHA-256(""), FIPS 180-2 / well known. */
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                          0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                          0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                          0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const unsigned char empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                            0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                            0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                            0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    unsigned char msg[64];
    unsigned char other[64];

    (void)state;
    dz_card_challenge_message("abc", "", msg);
    assert_memory_equal(msg, abc, 32);
    assert_memory_equal(msg + 32, empty, 32);
    /* Origin first, nonce second: swapping them changes the message. */
    dz_card_challenge_message("", "abc", other);
    assert_memory_equal(other, empty, 32);
    assert_memory_equal(other + 32, abc, 32);
    /* Another origin, another message (what defeats a look-alike site). */
    dz_card_challenge_message("https://localhost:8443", "n", msg);
    dz_card_challenge_message("https://localhost:8444", "n", other);
    assert_memory_not_equal(msg, other, 32);
    assert_memory_equal(msg + 32, other + 32, 32);
}

/* -------------------------------------------------------------- answers */

static int chal(const char *body, char nonce[DZ_CARD_NONCE_MAX + 1], long *exp)
{
    return dz_card_parse_challenge(body, strlen(body), nonce, exp);
}

static void test_parse_challenge(void **state)
{
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "\"nonce\"",
        "{}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
        "{\"expires_in\":300}",
        "{\"nonce\":1,\"expires_in\":300}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":\"300\"}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":0}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":-5}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":86401}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":1.5}",
        /* 16 bytes, not 32 */
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"expires_in\":300}",
        /* base64url, unpadded, spaces, non-base64 */
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_\",\"expires_in\":300}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"expires_in\":300}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":300}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\u0000=\",\"expires_in\":300}",
        /* duplicate key, trailing garbage, unterminated */
        "{\"nonce\":\"x\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_"
        "in\":300}",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":300}x",
        "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"expires_in\":300",
    };
    char nonce[DZ_CARD_NONCE_MAX + 1];
    long exp = 7;
    char *huge;

    (void)state;
    assert_int_equal(
        chal("{\"nonce\":\"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\",\"expires_in\":300}",
             nonce, &exp),
        0);
    assert_string_equal(nonce, "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=");
    assert_int_equal(exp, 300);
    /* Unknown members are fine (a newer gateway may add some). */
    assert_int_equal(chal("{\"expires_in\":10,\"x\":[1,{}],\"nonce\":"
                          "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
                          nonce, &exp),
                     0);
    assert_int_equal(exp, 10);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        exp = 7;
        if (chal(bad[i], nonce, &exp) != DZ_ERR_PARSE)
            fail_msg("accepted challenge %s", bad[i]);
        assert_string_equal(nonce, "");
        assert_int_equal(exp, 0);
    }
    huge = malloc(DZ_CARD_BODY_MAX + 2);
    assert_non_null(huge);
    memset(huge, ' ', DZ_CARD_BODY_MAX + 1);
    huge[DZ_CARD_BODY_MAX + 1] = '\0';
    assert_int_equal(dz_card_parse_challenge(huge, DZ_CARD_BODY_MAX + 1, nonce, &exp),
                     DZ_ERR_TOOBIG);
    free(huge);
}

static void test_parse_problem(void **state)
{
    struct dz_card_problem p;
    char body[1200];

    (void)state;
    snprintf(body, sizeof(body), "%s",
             "{\"title\":\"The certificate is revoked\",\"status\":401,\"detail\":\"revoked\","
             "\"code\":\"certificate_revoked\"}");
    assert_int_equal(dz_card_parse_problem(body, strlen(body), &p), 0);
    assert_string_equal(p.code, "certificate_revoked");
    assert_string_equal(p.title, "The certificate is revoked");
    assert_string_equal(p.detail, "revoked");
    /* Only code is required. */
    assert_int_equal(dz_card_parse_problem("{\"code\":\"x\"}", 12, &p), 0);
    assert_string_equal(p.title, "");
    assert_string_equal(p.detail, "");
    /* Terminal controls from a hostile server are neutralised. */
    snprintf(body, sizeof(body), "{\"code\":\"a\\u001b[2Jb\",\"title\":\"t\\nu\\u007f\"}");
    assert_int_equal(dz_card_parse_problem(body, strlen(body), &p), 0);
    assert_string_equal(p.code, "a?[2Jb");
    assert_string_equal(p.title, "t?u?");
    /* Truncation never splits a UTF-8 character: 100 x "ə" (2 bytes). */
    {
        size_t n = (size_t)snprintf(body, sizeof(body), "{\"code\":\"c\",\"title\":\"");
        for (int i = 0; i < 100; i++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "\xc9\x99");
        snprintf(body + n, sizeof(body) - n, "\"}");
        assert_int_equal(dz_card_parse_problem(body, strlen(body), &p), 0);
        assert_int_equal(strlen(p.title) % 2, 0);
        assert_true(strlen(p.title) <= sizeof(p.title) - 1);
    }
    /* Not a problem. */
    assert_int_equal(dz_card_parse_problem("{}", 2, &p), DZ_ERR_PARSE);
    assert_int_equal(dz_card_parse_problem("{\"code\":\"\"}", 11, &p), DZ_ERR_PARSE);
    assert_int_equal(dz_card_parse_problem("{\"code\":5}", 10, &p), DZ_ERR_PARSE);
    assert_int_equal(dz_card_parse_problem("<html>", 6, &p), DZ_ERR_PARSE);
    assert_int_equal(dz_card_parse_problem(NULL, 0, &p), DZ_ERR_PARSE);
    assert_string_equal(p.code, "");
}

static void test_parse_session(void **state)
{
    char tok[257];
    char body[700];
    static const char *const bad[] = {
        "{}",
        "{\"token\":\"\"}",
        "{\"token\":5}",
        "{\"token\":\"a b\"}",
        "{\"token\":\"a\\nb\"}",
        "{\"token\":\"\xc3\xa9\"}",
        "[\"token\"]",
        "{\"token\":\"a\\u0000b\"}",
    };

    (void)state;
    snprintf(body, sizeof(body),
             "{\"token\":\"abcDEF-_123\",\"fin\":\"1AB2C3D\",\"acr\":\"high\"}");
    assert_int_equal(dz_card_parse_session(body, strlen(body), tok), 0);
    assert_string_equal(tok, "abcDEF-_123");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dz_card_parse_session(bad[i], strlen(bad[i]), tok) != DZ_ERR_PARSE)
            fail_msg("accepted session %s", bad[i]);
        assert_string_equal(tok, "");
    }
    /* 256 characters is the most. */
    memcpy(body, "{\"token\":\"", 10);
    memset(body + 10, 'a', 257);
    memcpy(body + 10 + 257, "\"}", 3);
    assert_int_equal(dz_card_parse_session(body, strlen(body), tok), DZ_ERR_PARSE);
    memcpy(body + 10 + 256, "\"}", 3);
    assert_int_equal(dz_card_parse_session(body, strlen(body), tok), 0);
    assert_int_equal(strlen(tok), 256);
}

static void test_request_json(void **state)
{
    static const unsigned char cert[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    static const unsigned char sig[] = {1, 2, 3, 4, 5};
    char *out = NULL;
    json_t *j;

    (void)state;
    assert_int_equal(
        dz_card_request_json(cert, sizeof(cert), "ES256", "bm9uY2U=", sig, sizeof(sig), &out), 0);
    j = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "certificate")), "MAMCAQU=");
    assert_string_equal(json_string_value(json_object_get(j, "algorithm")), "ES256");
    assert_string_equal(json_string_value(json_object_get(j, "nonce")), "bm9uY2U=");
    assert_string_equal(json_string_value(json_object_get(j, "signature")), "AQIDBAU=");
    assert_int_equal(json_object_size(j), 4);
    json_decref(j);
    free(out);
    /* Nothing half-made on bad input. */
    out = (char *)1;
    assert_int_equal(dz_card_request_json(cert, 0, "ES256", "n", sig, 5, &out), DZ_ERR_INVAL);
    assert_null(out);
    assert_int_equal(dz_card_request_json(cert, 5, NULL, "n", sig, 5, &out), DZ_ERR_INVAL);
    assert_int_equal(dz_card_request_json(cert, 5, "ES256", NULL, sig, 5, &out), DZ_ERR_INVAL);
    assert_int_equal(dz_card_request_json(cert, 5, "ES256", "n", sig, 0, &out), DZ_ERR_INVAL);
    assert_int_equal(dz_card_request_json(cert, 5, "ES256", "n", sig, DZ_CARD_SIG_MAX + 1, &out),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_card_request_json(cert, 5, "ES256", "\xff\xfe", sig, 5, &out),
                     DZ_ERR_INVAL);
    assert_null(out);
}

/* ---------------------------------------------------------------- PIN file */

static char pin_path[64];

static int pin_file(const void *p, size_t n, mode_t mode)
{
    int fd;

    snprintf(pin_path, sizeof(pin_path), "/tmp/test_card_pin.XXXXXX");
    fd = mkstemp(pin_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    fchmod(fd, mode);
    close(fd);
    return 0;
}

static int read_pin(const void *p, size_t n, char **out)
{
    int rc;

    pin_file(p, n, 0600);
    rc = dz_card_pin_from_file(pin_path, out);
    unlink(pin_path);
    return rc;
}

static void test_pin_file(void **state)
{
    char *pin = NULL;
    char longpin[DZ_CARD_PIN_MAX + 2];

    (void)state;
    assert_int_equal(read_pin("123456\n", 7, &pin), 0);
    assert_string_equal(pin, "123456");
    dz_card_pin_free(pin);
    assert_int_equal(read_pin("123456\r\n", 8, &pin), 0);
    assert_string_equal(pin, "123456");
    dz_card_pin_free(pin);
    assert_int_equal(read_pin("12 34", 5, &pin), 0); /* no newline, spaces kept */
    assert_string_equal(pin, "12 34");
    dz_card_pin_free(pin);
    memset(longpin, '7', sizeof(longpin));
    assert_int_equal(read_pin(longpin, DZ_CARD_PIN_MAX, &pin), 0);
    assert_int_equal(strlen(pin), DZ_CARD_PIN_MAX);
    dz_card_pin_free(pin);
    dz_card_pin_free(NULL);

    pin = (char *)1;
    assert_int_equal(read_pin("", 0, &pin), DZ_ERR_INVAL);
    assert_null(pin);
    assert_int_equal(read_pin("\n", 1, &pin), DZ_ERR_INVAL);
    assert_int_equal(read_pin("1234\n5678\n", 10, &pin), DZ_ERR_INVAL);
    assert_int_equal(read_pin("12\r34", 5, &pin), DZ_ERR_INVAL);
    assert_int_equal(read_pin("12\0"
                              "34",
                              5, &pin),
                     DZ_ERR_INVAL);
    assert_int_equal(read_pin(longpin, DZ_CARD_PIN_MAX + 1, &pin), DZ_ERR_TOOBIG);
    assert_int_equal(read_pin(longpin, sizeof(longpin), &pin), DZ_ERR_TOOBIG);
    assert_null(pin);
    assert_int_equal(dz_card_pin_from_file("/nonexistent/pin", &pin), DZ_ERR_IO);
    assert_int_equal(dz_card_pin_from_file("/tmp", &pin), DZ_ERR_IO);
    assert_null(pin);
    /* A PIN file others can read is refused (base/secretfile.h), 0600 is not. */
    pin_file("4321\n", 5, 0644);
    assert_int_equal(dz_card_pin_from_file(pin_path, &pin), DZ_ERR_DENIED);
    assert_null(pin);
    chmod(pin_path, 0600);
    assert_int_equal(dz_card_pin_from_file(pin_path, &pin), 0);
    assert_string_equal(pin, "4321");
    dz_card_pin_free(pin);
    unlink(pin_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_good),     cmocka_unit_test(test_origin_bad),
        cmocka_unit_test(test_origin_bounds),   cmocka_unit_test(test_challenge_message),
        cmocka_unit_test(test_parse_challenge), cmocka_unit_test(test_parse_problem),
        cmocka_unit_test(test_parse_session),   cmocka_unit_test(test_request_json),
        cmocka_unit_test(test_pin_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
