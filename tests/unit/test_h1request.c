/* test_h1request.c - the strict HTTP/1.1 request-head parser of the
 * management listener: what Prometheus, curl and haproxy send parses; every
 * leniency a smuggler or a broken client relies on is refused; incomplete
 * heads ask for more; over-size heads are TOOBIG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/h1request.h"

static enum dz_h1_rc parse(const char *s, struct dz_h1_request *r, size_t *hl)
{
    return dz_h1_parse_request(s, strlen(s), 8192, r, hl);
}

static void test_good(void **state)
{
    static const char prom[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9180\r\n"
                               "User-Agent: Prometheus/2.45.0\r\nAccept: text/plain;q=0.5\r\n"
                               "Content-Length: 0\r\n\r\ntrailing bytes";
    struct dz_h1_request r;
    size_t hl;

    (void)state;
    assert_int_equal(parse(prom, &r, &hl), DZ_H1_OK);
    assert_int_equal(hl, strlen(prom) - strlen("trailing bytes"));
    assert_int_equal(r.method_len, 3);
    assert_memory_equal(r.method, "GET", 3);
    assert_int_equal(r.target_len, 8);
    assert_memory_equal(r.target, "/metrics", 8);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.nfields, 4);
    assert_true(r.has_host);
    assert_int_equal(r.host_len, 14);
    assert_memory_equal(r.host, "127.0.0.1:9180", 14);

    /* HTTP/1.0 needs no Host (haproxy's default health check). */
    assert_int_equal(parse("OPTIONS / HTTP/1.0\r\n\r\n", &r, &hl), DZ_H1_OK);
    assert_int_equal(r.minor, 0);
    assert_null(r.host);
    assert_int_equal(parse("GET /readyz?x=1 HTTP/1.1\r\nhOsT:\ta \t\r\n\r\n", &r, &hl), DZ_H1_OK);
    assert_int_equal(r.target_len, 11);
    /* The Host's value, without the white space around it. */
    assert_int_equal(r.host_len, 1);
    assert_memory_equal(r.host, "a", 1);
}

static void test_bad(void **state)
{
    static const char *const bad[] = {
        "GET /metrics\r\n\r\n",                                      /* no version */
        "GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n",                 /* two spaces */
        "GET metrics HTTP/1.1\r\nHost: a\r\n\r\n",                   /* not origin-form */
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",                          /* the h2c preface */
        "GET / HTTP/1.2\r\nHost: a\r\n\r\n",                         /* unknown minor */
        "GET / HTTP/1.1\r\n\r\n",                                    /* HTTP/1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",              /* two Hosts */
        "GET / HTTP/1.1\nHost: a\n\n",                               /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",                   /* bare CR */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",                        /* space before the colon */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",              /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",            /* control byte in a value */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", /* a body */
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", /* not a token */
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\n",
    };
    struct dz_h1_request r;
    size_t hl = 99;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &r, &hl) != DZ_H1_ERROR)
            fail_msg("accepted bad request %zu: %s", i, bad[i]);
        assert_int_equal(hl, 0);
    }
}

static void test_incremental_and_bounds(void **state)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char big[9000];
    struct dz_h1_request r;
    size_t hl;
    int n;

    (void)state;
    for (size_t cut = 0; cut < sizeof(req) - 1; cut++)
        assert_int_equal(dz_h1_parse_request(req, cut, 8192, &r, &hl), DZ_H1_MORE);
    assert_int_equal(dz_h1_parse_request(req, sizeof(req) - 1, 8192, &r, &hl), DZ_H1_OK);
    /* A head longer than max_head: more while it may still fit, then TOOBIG. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(dz_h1_parse_request(big, 100, 100, &r, &hl), DZ_H1_MORE);
    assert_int_equal(dz_h1_parse_request(big, 101, 100, &r, &hl), DZ_H1_TOOBIG);
    /* The complete head just inside the bound parses. */
    assert_int_equal(dz_h1_parse_request(req, sizeof(req) - 1, sizeof(req) - 1, &r, &hl), DZ_H1_OK);
    /* Too many fields. */
    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < DZ_H1_REQUEST_FIELDS_MAX; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "X%d: y\r\n", i);
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
    assert_int_equal(dz_h1_parse_request(big, (size_t)n, sizeof(big), &r, &hl), DZ_H1_TOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_incremental_and_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
