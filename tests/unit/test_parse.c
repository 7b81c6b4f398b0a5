/* test_parse.c - strict value parsers (lib/base/parse.c): good, bad, overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/parse.h"

static void test_int(void **state)
{
    long long v = 99;

    (void)state;
    assert_int_equal(dz_parse_int("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(dz_parse_int("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(dz_parse_int("-7", -10, 10, &v), 0);
    assert_int_equal(v, -7);
    assert_int_equal(dz_parse_int("9223372036854775807", 0, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);

    static const char *const bad[] = {"",     "+1", " 1",  "1 ",  "01",  "-0", "1a",
                                      "0x10", "-",  "1.0", "1e3", "--1", "٣",  "1_000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 5;
        assert_int_equal(dz_parse_int(bad[i], -1000, 1000, &v), DZ_ERR_PARSE);
        assert_int_equal(v, 0); /* cleared on entry */
    }
    assert_int_equal(dz_parse_int(NULL, 0, 1, &v), DZ_ERR_PARSE);
    /* Range and overflow are "well-formed but out of range". */
    assert_int_equal(dz_parse_int("11", 0, 10, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_int("-1", 0, 10, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_int("65536", 1, 65535, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_int("9223372036854775808", 0, INT64_MAX, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_int("-99999999999999999999", INT64_MIN, 0, &v), DZ_ERR_INVAL);
    assert_int_equal(v, 0);
}

static void test_size(void **state)
{
    uint64_t v = 0;
    const uint64_t max = UINT64_MAX;

    (void)state;
    assert_int_equal(dz_parse_size("512", 0, max, &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(dz_parse_size("512B", 0, max, &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(dz_parse_size("16KiB", 0, max, &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(dz_parse_size("1MiB", 0, max, &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(dz_parse_size("1GiB", 0, max, &v), 0);
    assert_int_equal(v, 1073741824ULL);
    assert_int_equal(dz_parse_size("0", 0, max, &v), 0);
    assert_int_equal(v, 0);

    static const char *const bad[] = {"10KB",  "1M",    "1k",    "1KIB",  "1.5MiB",
                                      "KiB",   "-1KiB", " 1KiB", "1 KiB", "01KiB",
                                      "1KiB ", "",      "1MiBB", "0x1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 1;
        assert_int_equal(dz_parse_size(bad[i], 0, max, &v), DZ_ERR_PARSE);
        assert_int_equal(v, 0);
    }
    assert_int_equal(dz_parse_size("2MiB", 1024, 1048576, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_size("1023", 1024, 1048576, &v), DZ_ERR_INVAL);
    /* 2^64 / 2^30 = 2^34: one more GiB overflows, and must not wrap. */
    assert_int_equal(dz_parse_size("17179869184GiB", 0, max, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_size("17179869183GiB", 0, max, &v), 0);
    assert_int_equal(dz_parse_size("18446744073709551616", 0, max, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_size("999999999999999999999999KiB", 0, max, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_size("18446744073709551615", 0, max, &v), 0);
    assert_true(v == UINT64_MAX);
}

static void test_duration(void **state)
{
    uint64_t v = 0;
    const uint64_t max = UINT64_MAX;

    (void)state;
    assert_int_equal(dz_parse_duration("250ms", 0, max, &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(dz_parse_duration("10s", 0, max, &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(dz_parse_duration("5m", 0, max, &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(dz_parse_duration("12h", 0, max, &v), 0);
    assert_int_equal(v, 43200000);
    assert_int_equal(dz_parse_duration("0s", 0, max, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(dz_parse_duration("1d", 0, max, &v), 0);
    assert_int_equal(v, 86400000);

    static const char *const bad[] = {"10", "10S", "1D",  "ms",   "1.5s", "10 s", "-1s",
                                      "s",  "",    "1sm", "10s ", "1M",   "1hr"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 1;
        assert_int_equal(dz_parse_duration(bad[i], 0, max, &v), DZ_ERR_PARSE);
        assert_int_equal(v, 0);
    }
    assert_int_equal(dz_parse_duration("61s", 1000, 60000, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_duration("999ms", 1000, 60000, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_duration("60s", 1000, 60000, &v), 0);
    assert_int_equal(dz_parse_duration("1m", 1000, 60000, &v), 0);
    assert_int_equal(dz_parse_duration("5124095576030432h", 0, max, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_duration("99999999999999999999999ms", 0, max, &v), DZ_ERR_INVAL);
}

static void test_rate(void **state)
{
    struct dz_rate r;

    (void)state;
    assert_int_equal(dz_parse_rate("20/s", &r), 0);
    assert_int_equal(r.count, 20);
    assert_int_equal(r.period_ms, 1000);
    assert_int_equal(dz_parse_rate("100/m", &r), 0);
    assert_int_equal(r.count, 100);
    assert_int_equal(r.period_ms, 60000);
    assert_int_equal(dz_parse_rate("5/h", &r), 0);
    assert_int_equal(r.period_ms, 3600000);
    assert_int_equal(dz_parse_rate("1000000/s", &r), 0);

    static const char *const bad[] = {"20/d", "20",   "/s",   "20/s ", "20 /s", "20/",
                                      "a/s",  "20/S", "-1/s", "020/s", "",      "20/ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dz_parse_rate(bad[i], &r), DZ_ERR_PARSE);
        assert_int_equal(r.count, 0);
    }
    assert_int_equal(dz_parse_rate("0/s", &r), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_rate("1000001/s", &r), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_rate("99999999999999999999999/s", &r), DZ_ERR_INVAL);
}

static void test_bool(void **state)
{
    bool b = true;

    (void)state;
    assert_int_equal(dz_parse_bool("true", &b), 0);
    assert_true(b);
    assert_int_equal(dz_parse_bool("false", &b), 0);
    assert_false(b);
    static const char *const bad[] = {"yes", "no", "True", "FALSE", "1", "0", "on", "", " true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = true;
        assert_int_equal(dz_parse_bool(bad[i], &b), DZ_ERR_PARSE);
        assert_false(b);
    }
}

static void test_url(void **state)
{
    struct dz_url u;
    const char *s;

    (void)state;
    assert_int_equal(dz_parse_url("https://127.0.0.1:9101", &u), 0);
    assert_true(u.is_https && u.is_ip && u.is_loopback && u.has_port);
    assert_int_equal(u.port, 9101);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.path_off, strlen("https://127.0.0.1:9101"));

    s = "http://localhost:8080/base/x";
    assert_int_equal(dz_parse_url(s, &u), 0);
    assert_false(u.is_https);
    assert_true(u.is_loopback);
    assert_false(u.is_ip);
    assert_string_equal(s + u.path_off, "/base/x");

    assert_int_equal(dz_parse_url("https://[::1]:8443", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_true(u.is_loopback && u.is_ip);
    assert_int_equal(u.port, 8443);

    assert_int_equal(dz_parse_url("https://registry.example.az", &u), 0);
    assert_int_equal(u.port, 443);
    assert_false(u.has_port || u.is_loopback || u.is_ip);
    assert_int_equal(dz_parse_url("http://10.0.0.1", &u), 0);
    assert_int_equal(u.port, 80);
    assert_false(u.is_loopback);
    assert_int_equal(dz_parse_url("http://127.200.0.1/", &u), 0);
    assert_true(u.is_loopback);

    static const char *const bad[] = {
        "ftp://x",
        "https://",
        "https://user@host",
        "https://u:p@h/",
        "https://h:x",
        "https://h?q=1",
        "https://h/#f",
        "https://exa mple.com",
        "https://-a.com",
        "https://a-.com",
        "https://1.2.3",
        "HTTPS://x",
        "https://[::1",
        "https://[fe80::1%25eth0]",
        "https://h:",
        "https://h:99999",
        "https://a..b",
        "https://h/\x01",
        "https://ü.az",
        "//h",
        "https://[::1]x",
        "http:/h",
        "",
        "https://010.0.0.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = dz_parse_url(bad[i], &u);
        if (rc == 0)
            fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(dz_parse_url("https://h:0", &u), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_url("https://h:65536", &u), DZ_ERR_INVAL);
    assert_int_equal(dz_parse_url(NULL, &u), DZ_ERR_PARSE);
}

static void test_format(void **state)
{
    static const uint64_t sizes[] = {
        0, 1, 512, 1000, 1024, 16384, 1048576, 1073741824ULL, 3 * 1073741824ULL, 1536, 1048577};
    static const uint64_t durations[] = {0,     1,     250,     1000,     1500,
                                         60000, 90000, 3600000, 43200000, 61000};
    char buf[32];
    uint64_t back;

    (void)state;
    assert_int_equal(dz_format_size(16384, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "16KiB");
    assert_int_equal(dz_format_size(1000, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1000B");
    assert_int_equal(dz_format_duration(60000, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1m");
    assert_int_equal(dz_format_duration(1500, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1500ms");
    assert_int_equal(dz_format_duration(90000, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "90s");
    assert_int_equal(dz_format_size(1024, buf, 3), DZ_ERR_TOOBIG);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(dz_format_size(sizes[i], buf, sizeof(buf)), 0);
        assert_int_equal(dz_parse_size(buf, 0, UINT64_MAX, &back), 0);
        assert_true(back == sizes[i]);
    }
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        assert_int_equal(dz_format_duration(durations[i], buf, sizeof(buf)), 0);
        assert_int_equal(dz_parse_duration(buf, 0, UINT64_MAX, &back), 0);
        assert_true(back == durations[i]);
    }
    struct dz_rate r = {20, 60000};
    assert_int_equal(dz_format_rate(&r, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "20/m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),    cmocka_unit_test(test_size), cmocka_unit_test(test_duration),
        cmocka_unit_test(test_rate),   cmocka_unit_test(test_bool), cmocka_unit_test(test_url),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
