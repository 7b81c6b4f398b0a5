/*
 * test_mssp.c - the parsers of the mobile-signature messages
 * (peers/mssp_msg.c): what a relying party starts, what a phone is handed
 * and answers, the MSSP's phones file and the QR payload; good input and
 * every class of bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../peers/mssp_msg.c"

/* base64 of 32 bytes 0x00..0x1f, of 48 and 64 bytes of 0xAB. */
#define H32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define H48 "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur"
#define H64                                                                                        \
    "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw=="
#define SID "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

static int start(const char *json, struct dz_mssp_start *out, const char **why)
{
    return dz_mssp_parse_start(json, strlen(json), out, why);
}

static void test_start_ok(void **state)
{
    struct dz_mssp_start s;
    const char *why = "x";
    unsigned char h[32];
    char body[512];

    (void)state;
    for (int i = 0; i < 32; i++)
        h[i] = (unsigned char)i;
    assert_int_equal(start("{\"relying_party\":\"darvaza gw\",\"phone\":\"+994501234567\","
                           "\"fin\":\"1ab2c3d\",\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\"}",
                           &s, &why),
                     0);
    assert_null(why);
    assert_string_equal(s.relying_party, "darvaza gw");
    assert_string_equal(s.phone, "+994501234567");
    assert_string_equal(s.fin, "1AB2C3D");
    assert_int_equal(s.hash_len, 32);
    assert_memory_equal(s.hash, h, 32);
    assert_int_equal(s.hash_type, DZ_MSSP_SHA256);
    assert_string_equal(s.display_text, "");
    assert_int_equal(s.verification_code, -1);

    /* With display text (UTF-8) and the right code. */
    snprintf(body, sizeof(body),
             "{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\","
             "\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":\"Giri\xc5\x9f\","
             "\"verification_code\":\"%04d\"}",
             dz_mid_verification_code(h, 32));
    assert_int_equal(start(body, &s, &why), 0);
    assert_string_equal(s.display_text, "Giri\xc5\x9f");
    assert_int_equal(s.verification_code, dz_mid_verification_code(h, 32));

    assert_int_equal(start("{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":"
                           "\"1AB2C3D\",\"hash\":\"" H48 "\",\"hash_type\":\"SHA384\"}",
                           &s, NULL),
                     0);
    assert_int_equal(s.hash_len, 48);
    assert_int_equal(start("{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":"
                           "\"1AB2C3D\",\"hash\":\"" H64 "\",\"hash_type\":\"SHA512\"}",
                           &s, NULL),
                     0);
    assert_int_equal(s.hash_len, 64);
    assert_int_equal(s.hash_type, DZ_MSSP_SHA512);
}

static void test_start_bad(void **state)
{
    static const struct {
        const char *json;
        int rc;
    } bad[] = {
        {"", DZ_ERR_PARSE},
        {"[]", DZ_ERR_PARSE},
        {"{", DZ_ERR_PARSE},
        {"{\"phone\":\"+994501234567\",\"phone\":\"+994501234567\"}", DZ_ERR_PARSE},
        /* unknown member */
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"language\":\"AZE\"}",
         DZ_ERR_INVAL},
        /* missing members, one at a time */
        {"{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":\"" H32
         "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"fin\":\"1AB2C3D\",\"hash\":\"" H32
         "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"hash\":\"" H32
         "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\","
         "\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\"}",
         DZ_ERR_INVAL},
        /* wrong types and values */
        {"{\"relying_party\":1,\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":\"" H32
         "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"g/w\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+0994501234\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+123456\",\"fin\":\"1AB2C3D\",\"hash\":\"" H32
         "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+9945012345678901\",\"fin\":\"1AB2C3D\","
         "\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+99450 234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA1\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"sha256\"}",
         DZ_ERR_INVAL},
        /* hash length not that of its type; not base64; base64url */
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA384\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H48 "\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6_-\",\"hash_type\":\"SHA256\"}",
         DZ_ERR_INVAL},
        /* display text: control character, too long */
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":\"a\\nb\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":\"a\\u0000b\"}",
         DZ_ERR_PARSE}, /* jansson refuses \u0000 itself */
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":null}",
         DZ_ERR_INVAL},
        /* verification code: not this hash's, malformed, out of range */
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"verification_code\":\"0000\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"verification_code\":\"31\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"verification_code\":\"8192\"}",
         DZ_ERR_INVAL},
        {"{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"hash\":"
         "\"" H32 "\",\"hash_type\":\"SHA256\",\"verification_code\":31}",
         DZ_ERR_INVAL},
    };
    struct dz_mssp_start s;
    const char *why;
    char big[DZ_MSSP_BODY_MAX + 2];
    char longtext[600];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (start(bad[i].json, &s, &why) != bad[i].rc)
            fail_msg("case %zu: %s", i, bad[i].json);
        assert_non_null(why);
        /* A failure leaves nothing half-filled behind. */
        assert_string_equal(s.phone, "");
        assert_int_equal(s.hash_len, 0);
        assert_int_equal(s.verification_code, -1);
    }
    /* The hash's code is 31 = (0x00 & 0xFC) << 5 | 0x1f: "0031" passes. */
    assert_int_equal(start("{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":"
                           "\"1AB2C3D\",\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\","
                           "\"verification_code\":\"0031\"}",
                           &s, NULL),
                     0);
    memset(longtext, 'x', sizeof(longtext));
    snprintf(big, sizeof(big),
             "{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\","
             "\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":\"%.*s\"}",
             DZ_MSSP_TEXT_MAX + 1, longtext);
    assert_int_equal(start(big, &s, &why), DZ_ERR_INVAL);
    snprintf(big, sizeof(big),
             "{\"relying_party\":\"gw\",\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\","
             "\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\",\"display_text\":\"%.*s\"}",
             DZ_MSSP_TEXT_MAX, longtext);
    assert_int_equal(start(big, &s, &why), 0);
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[DZ_MSSP_BODY_MAX] = '}';
    assert_int_equal(dz_mssp_parse_start(big, DZ_MSSP_BODY_MAX + 1, &s, &why), DZ_ERR_PARSE);
    assert_int_equal(dz_mssp_parse_start(NULL, 0, &s, &why), DZ_ERR_PARSE);
}

static void test_job(void **state)
{
    struct dz_mssp_job j;
    const char *why = NULL;
    static const char ok[] = "{\"session_id\":\"" SID "\",\"kind\":\"signature\","
                             "\"relying_party\":\"gw\",\"display_text\":\"Sign\","
                             "\"verification_code\":\"0031\",\"hash\":\"" H32 "\","
                             "\"hash_type\":\"SHA256\"}";
    static const char *const bad[] = {
        "{\"session_id\":\"" SID "\",\"kind\":\"login\",\"relying_party\":\"gw\","
        "\"display_text\":\"\",\"verification_code\":\"0031\",\"hash\":\"" H32
        "\",\"hash_type\":\"SHA256\"}",
        "{\"session_id\":\"0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0\",\"kind\":\"signature\","
        "\"relying_party\":\"gw\",\"display_text\":\"\",\"verification_code\":\"0031\","
        "\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\"}",
        "{\"session_id\":\"" SID "\",\"kind\":\"signature\",\"relying_party\":\"gw\","
        "\"display_text\":\"\",\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\"}",
        "{\"session_id\":\"" SID "\",\"kind\":\"signature\",\"relying_party\":\"gw\","
        "\"display_text\":\"\",\"verification_code\":\"12a4\",\"hash\":\"" H32
        "\",\"hash_type\":\"SHA256\"}",
        "{\"session_id\":\"" SID "\",\"kind\":\"signature\",\"relying_party\":\"gw\","
        "\"verification_code\":\"0031\",\"hash\":\"" H32 "\",\"hash_type\":\"SHA256\"}",
        "{\"session_id\":\"" SID "\",\"kind\":\"signature\",\"relying_party\":\"gw\","
        "\"display_text\":\"\",\"verification_code\":\"0031\",\"hash\":\"" H48
        "\",\"hash_type\":\"SHA256\"}",
    };

    (void)state;
    assert_int_equal(dz_mssp_parse_job(ok, strlen(ok), &j, &why), 0);
    assert_string_equal(j.session_id, SID);
    assert_int_equal(j.kind, DZ_MSSP_SIGNATURE);
    assert_string_equal(j.verification_code, "0031");
    assert_string_equal(j.display_text, "Sign");
    assert_int_equal(j.hash_len, 32);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (dz_mssp_parse_job(bad[i], strlen(bad[i]), &j, &why) == 0)
            fail_msg("case %zu accepted", i);
        assert_non_null(why);
        assert_string_equal(j.session_id, "");
    }
}

static void test_answer(void **state)
{
    struct dz_mssp_answer a;
    const char *why = NULL;
    char big[1200];
    char *sig = NULL;
    unsigned char raw[DZ_MSSP_SIG_MAX + 1];
    static const char *const bad[] = {
        "{\"session_id\":\"" SID "\",\"result\":\"OK\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"USER_CANCELLED\",\"signature\":\"AAAA\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"TIMEOUT\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"ok\",\"signature\":\"AAAA\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"OK\",\"signature\":\"AAA\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"OK\",\"signature\":\"\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"OK\",\"signature\":[\"AAAA\"]}",
        "{\"session_id\":\"nope\",\"result\":\"USER_CANCELLED\"}",
        "{\"result\":\"USER_CANCELLED\"}",
        "{\"session_id\":\"" SID "\",\"result\":\"USER_CANCELLED\",\"pin\":\"1234\"}",
    };

    (void)state;
    snprintf(big, sizeof(big), "{\"session_id\":\"%s\",\"result\":\"OK\",\"signature\":\"AAEC\"}",
             SID);
    assert_int_equal(dz_mssp_parse_answer(big, strlen(big), &a, &why), 0);
    assert_int_equal(a.result, DZ_MSSP_OK);
    assert_int_equal(a.signature_len, 3);
    assert_int_equal(a.signature[2], 2);
    assert_int_equal(
        dz_mssp_parse_answer("{\"session_id\":\"" SID "\",\"result\":\"USER_CANCELLED\"}",
                             strlen("{\"session_id\":\"" SID "\",\"result\":\"USER_CANCELLED\"}"),
                             &a, &why),
        0);
    assert_int_equal(a.result, DZ_MSSP_USER_CANCELLED);
    assert_int_equal(a.signature_len, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (dz_mssp_parse_answer(bad[i], strlen(bad[i]), &a, &why) == 0)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_non_null(why);
        assert_int_equal(a.signature_len, 0);
    }
    /* 512 bytes pass, 513 do not. */
    memset(raw, 7, sizeof(raw));
    for (size_t n = DZ_MSSP_SIG_MAX; n <= DZ_MSSP_SIG_MAX + 1; n++) {
        assert_int_equal(dz_b64_encode(raw, n, false, &sig), 0);
        snprintf(big, sizeof(big),
                 "{\"session_id\":\"" SID "\",\"result\":\"OK\",\"signature\":\"%s\"}", sig);
        free(sig);
        sig = NULL;
        assert_int_equal(dz_mssp_parse_answer(big, strlen(big), &a, &why),
                         n == DZ_MSSP_SIG_MAX ? 0 : DZ_ERR_INVAL);
    }
}

static void test_holders(void **state)
{
    struct dz_mssp_holder *h = NULL;
    size_t n = 0;
    long bad_index = 0;
    const char *why = NULL;
    static const char ok[] = "[{\"phone\":\"+994501234567\",\"fin\":\"1ab2c3d\",\"cert_file\":"
                             "\"sim-1AB2C3D.pem\"},{\"phone\":\"+994551112233\",\"fin\":"
                             "\"1AB2C3D\",\"cert_file\":\"/abs/x.pem\"}]";
    static const struct {
        const char *json;
        long index;
    } bad[] = {
        {"{}", -1},
        {"[]", -1},
        {"[1]", 0},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\"}]", 0},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"cert_file\":\"\"}]", 0},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"cert_file\":\"a\"},"
         "{\"phone\":\"+994501234567\",\"fin\":\"2AB2C3D\",\"cert_file\":\"b\"}]",
         1},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"cert_file\":\"a\"},"
         "{\"phone\":\"+99450\",\"fin\":\"2AB2C3D\",\"cert_file\":\"b\"}]",
         1},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3D\",\"cert_file\":\"a\",\"pin\":\"1\"}]",
         0},
        {"[{\"phone\":\"+994501234567\",\"fin\":\"1AB2C3\",\"cert_file\":\"a\"}]", 0},
    };

    (void)state;
    assert_int_equal(dz_mssp_parse_holders(ok, strlen(ok), &h, &n, &bad_index, &why), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bad_index, -1);
    assert_string_equal(h[0].fin, "1AB2C3D");
    assert_string_equal(h[1].cert_file, "/abs/x.pem");
    free(h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = (struct dz_mssp_holder *)1;
        why = NULL;
        if (dz_mssp_parse_holders(bad[i].json, strlen(bad[i].json), &h, &n, &bad_index, &why) == 0)
            fail_msg("case %zu accepted", i);
        assert_null(h);
        assert_int_equal(n, 0);
        assert_int_equal(bad_index, bad[i].index);
        assert_non_null(why);
    }
}

static void test_qr(void **state)
{
    struct dz_qr_payload q;
    static const char ok[] =
        "darvaza-qr:1:AbC_-9:17:0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
    static const char *const bad[] = {
        "darvaza-qr:2:abc:1:0123456789abcdef",
        "darvaza-qr:1::1:0123456789abcdef",
        "darvaza-qr:1:a/b:1:0123456789abcdef",
        "darvaza-qr:1:abc:01:0123456789abcdef",
        "darvaza-qr:1:abc:-1:0123456789abcdef",
        "darvaza-qr:1:abc:86401:0123456789abcdef",
        "darvaza-qr:1:abc::0123456789abcdef",
        "darvaza-qr:1:abc:1:0123456789abcde",
        "darvaza-qr:1:abc:1:0123456789abcdeg",
        "darvaza-qr:1:abc:1:0123456789abcdef:x",
        "darvaza-qr:1:abc:1",
        "darvaza-qr:1:abc",
        "darvaza-qr:1:",
        "DARVAZA-QR:1:abc:1:0123456789abcdef",
        "",
    };
    char longid[128];

    (void)state;
    assert_int_equal(dz_qr_payload_parse(ok, strlen(ok), &q), 0);
    assert_string_equal(q.id, "AbC_-9");
    assert_int_equal(q.t, 17);
    assert_int_equal(strlen(q.code), 64);
    assert_int_equal(dz_qr_payload_parse("darvaza-qr:1:x:0:0123456789abcdef", 33, &q), 0);
    assert_int_equal(q.t, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dz_qr_payload_parse(bad[i], strlen(bad[i]), &q) == 0)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_string_equal(q.id, "");
    }
    /* An embedded NUL, and a length that stops inside the code. */
    assert_int_equal(dz_qr_payload_parse("darvaza-qr:1:x:0:0123456789ab\0def", 33, &q),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_qr_payload_parse(ok, 30, &q), DZ_ERR_INVAL);
    snprintf(longid, sizeof(longid), "darvaza-qr:1:%065d:1:0123456789abcdef", 0);
    assert_int_equal(dz_qr_payload_parse(longid, strlen(longid), &q), DZ_ERR_INVAL);
    snprintf(longid, sizeof(longid), "darvaza-qr:1:%064d:1:0123456789abcdef", 0);
    assert_int_equal(dz_qr_payload_parse(longid, strlen(longid), &q), 0);
}

static void test_names(void **state)
{
    enum dz_mssp_result r;

    (void)state;
    for (int i = DZ_MSSP_OK; i <= DZ_MSSP_DELIVERY_ERROR; i++) {
        assert_int_equal(dz_mssp_result_parse(dz_mssp_result_name((enum dz_mssp_result)i), &r), 0);
        assert_int_equal((int)r, i);
    }
    assert_int_equal(dz_mssp_result_parse("RUNNING", &r), DZ_ERR_INVAL);
    assert_int_equal(dz_mssp_result_parse(NULL, &r), DZ_ERR_INVAL);
    assert_true(dz_mssp_phone_valid("+9945012"));
    assert_true(dz_mssp_phone_valid("+994501234567890"));
    assert_false(dz_mssp_phone_valid("+9945012345678901"));
    assert_false(dz_mssp_phone_valid("+994501"));
    assert_false(dz_mssp_phone_valid(NULL));
    assert_false(dz_mssp_phone_valid("+"));
    assert_true(dz_mssp_sid_valid(SID));
    assert_false(dz_mssp_sid_valid(SID "0"));
    assert_false(dz_mssp_sid_valid("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f"));
    assert_false(dz_mssp_sid_valid("0f1e2d3c04b5a-4968-8776-a5b4c3d2e1f0"));
    assert_false(dz_mssp_sid_valid(NULL));
    assert_int_equal(dz_mssp_hash_len(DZ_MSSP_SHA384), 48);
    assert_string_equal(dz_mssp_hash_name(DZ_MSSP_SHA512), "SHA512");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_ok), cmocka_unit_test(test_start_bad),
        cmocka_unit_test(test_job),      cmocka_unit_test(test_answer),
        cmocka_unit_test(test_holders),  cmocka_unit_test(test_qr),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
