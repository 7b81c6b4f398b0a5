/*
 * test_mgmthost.c - which Host the management listener answers
 * (gateway/ops/mgmthost.c, docs/metrics.md "The management listener"): a
 * browser led to the listener by a name the attacker rebinds to its
 * address sends that name and is refused; a scraper, curl or a health
 * check sends an IP address, localhost or a listed name and is answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "ops/mgmthost.h"

static char *names[] = {"metrics.internal", "gw-01.example.az."};

static bool allowed(const char *host)
{
    return dz_mgmt_host_allowed(host, strlen(host), names, 2);
}

static void test_answered(void **state)
{
    static const char *const good[] = {
        "127.0.0.1",          "127.0.0.1:9180",
        "10.1.2.3:80",        "[::1]",
        "[::1]:9180",         "[fe80::1]:1",
        "[::ffff:127.0.0.1]", "localhost",
        "LocalHost:9180",     "localhost.",
        "localhost.:9180",    "metrics.internal",
        "METRICS.internal",   "metrics.internal.:9180",
        "gw-01.example.az",   "gw-01.example.az.",
        "127.0.0.1:",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!allowed(good[i]))
            fail_msg("Host \"%s\" refused", good[i]);
    }
    /* No Host at all: an HTTP/1.0 health check; no browser sends that. */
    assert_true(dz_mgmt_host_allowed(NULL, 0, names, 2));
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        "evil.example", /* the rebinding attack */
        "evil.example:9180",
        "localhost.evil.example",
        "x.localhost",
        "metrics.internal.evil.example",
        "metrics.internaL2",
        "evilmetrics.internal",
        "metrics",
        "",
        ":9180",
        ".",
        "..",
        "localhost..",
        "127.0.0.1:9180x",
        "127.0.0.1:1234567",
        "127.0.0.1:80:80",
        "127.1", /* not a dotted quad: a name */
        "2130706433",
        "0x7f.0.0.1",
        "::1", /* IPv6 without brackets */
        "[::1",
        "[::1]x",
        "[::1]:80x",
        "[evil.example]",
        "[fe80::1%25eth0]",
        "[127.0.0.1]",
        "localhost evil.example",
        "localhost,evil.example",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (allowed(bad[i]))
            fail_msg("Host \"%s\" answered", bad[i]);
    }
    /* Without names listed, a listed name is just another name. */
    assert_false(dz_mgmt_host_allowed("metrics.internal", 16, NULL, 0));
    assert_true(dz_mgmt_host_allowed("localhost", 9, NULL, 0));
    /* Bytes past len are not read: "localhost" then more. */
    assert_true(dz_mgmt_host_allowed("localhostX", 9, NULL, 0));
    assert_false(dz_mgmt_host_allowed("localhostX", 10, NULL, 0));
}

/* A value longer than any name is refused without being read past. */
static void test_long(void **state)
{
    char host[600];

    (void)state;
    memset(host, 'a', sizeof(host));
    assert_false(dz_mgmt_host_allowed(host, sizeof(host), names, 2));
    memcpy(host, "localhost:", 10);
    assert_false(dz_mgmt_host_allowed(host, sizeof(host), names, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answered),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
