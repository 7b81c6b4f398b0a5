/* test_accesslog.c - the access log's line builder (gateway/ops/accessline.c):
 * fields, escaping, the FIN rule with log_fin off and on, no query string, and
 * the line byte for byte what jansson wrote before the builder skipped it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "ops/accesslog.h"

static struct dz_access_entry base_entry(void)
{
    struct dz_access_entry e;

    memset(&e, 0, sizeof(e));
    e.time_ms = 1764950400123; /* 2025-12-05T16:00:00.123Z */
    e.rid = "abcdef123456000000000001";
    e.gw = "darvaza-test";
    e.host = "gw1";
    e.client = "192.0.2.7";
    e.method = "GET";
    e.route = "/api/registry/me";
    e.path = "/api/registry/me";
    e.path_kind = DZ_ACCESS_PATH_SAFE;
    e.status = 200;
    e.bytes = 321;
    e.dur_us = 1500;
    return e;
}

/* Format e and parse the line back; checks it is one line ending in \n. */
static json_t *line_of(const struct dz_access_entry *e, bool log_fin, char **text)
{
    char *line = NULL;
    size_t len = 0;
    json_t *j;

    assert_int_equal(dz_accesslog_format(e, log_fin, &line, &len), 0);
    assert_non_null(line);
    assert_int_equal(len, strlen(line));
    assert_true(len > 2 && line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1));
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)line[i] < 0x80); /* ASCII only */
    j = json_loadb(line, len, 0, NULL);
    assert_non_null(j);
    if (text)
        *text = line;
    else
        free(line);
    return j;
}

static void test_fields(void **state)
{
    struct dz_access_entry e = base_entry();
    json_t *j;

    e.upstream_status = 200;
    e.upstream_us = 1000;
    e.sid = "AbCdEfGhIjKl";
    e.means = "password";
    e.acr = "substantial";
    e.service = "registry";
    j = line_of(&e, false, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-12-05T16:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "rid")), e.rid);
    assert_string_equal(json_string_value(json_object_get(j, "gw")), "darvaza-test");
    assert_string_equal(json_string_value(json_object_get(j, "host")), "gw1");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "192.0.2.7");
    assert_string_equal(json_string_value(json_object_get(j, "route")), "/api/registry/me");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/registry/me");
    assert_string_equal(json_string_value(json_object_get(j, "service")), "registry");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 321);
    assert_true(json_real_value(json_object_get(j, "dur_ms")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(j, "up_status")), 200);
    assert_true(json_real_value(json_object_get(j, "up_ms")) == 1.0);
    assert_string_equal(json_string_value(json_object_get(j, "sid")), "AbCdEfGhIjKl");
    assert_string_equal(json_string_value(json_object_get(j, "means")), "password");
    assert_string_equal(json_string_value(json_object_get(j, "acr")), "substantial");
    json_decref(j);

    /* No back end asked, no session: those fields are left out. */
    e = base_entry();
    j = line_of(&e, false, NULL);
    assert_null(json_object_get(j, "up_status"));
    assert_null(json_object_get(j, "up_ms"));
    assert_null(json_object_get(j, "sid"));
    assert_null(json_object_get(j, "means"));
    json_decref(j);
}

static void test_fin_paths(void **state)
{
    struct dz_access_entry e = base_entry();
    char *text = NULL;
    json_t *j;

    e.route = "/api/registry/persons/{fin}";
    e.path = "/api/registry/persons/C5K27WT";
    e.path_kind = DZ_ACCESS_PATH_FIN;
    j = line_of(&e, false, &text);
    assert_null(json_object_get(j, "path"));
    assert_null(strstr(text, "C5K27WT"));
    assert_string_equal(json_string_value(json_object_get(j, "route")),
                        "/api/registry/persons/{fin}");
    json_decref(j);
    free(text);

    j = line_of(&e, true, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/api/registry/persons/C5K27WT");
    json_decref(j);

    /* No route matched: a FIN-shaped segment keeps the path out, in any
     * case and position; a path without one is logged. */
    e.path_kind = DZ_ACCESS_PATH_UNKNOWN;
    e.route = "not_found";
    e.path = "/api/nowhere/c5k27wt/x";
    j = line_of(&e, false, &text);
    assert_null(json_object_get(j, "path"));
    assert_null(strstr(text, "c5k27wt"));
    json_decref(j);
    free(text);
    e.path = "/api/no-such/thing";
    j = line_of(&e, false, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/no-such/thing");
    json_decref(j);
}

static void test_no_query_no_token(void **state)
{
    struct dz_access_entry e = base_entry();
    char *text = NULL;
    json_t *j;

    /* The query string may carry anything (a token, a code): never logged. */
    e.path = "/api/registry/me?access_token=SECRETTOKENVALUE&otp=424242";
    j = line_of(&e, true, &text);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/registry/me");
    assert_null(strstr(text, "SECRETTOKENVALUE"));
    assert_null(strstr(text, "424242"));
    json_decref(j);
    free(text);
}

static void test_escaping(void **state)
{
    struct dz_access_entry e = base_entry();
    json_t *j;
    static char longpath[5000];

    /* Control bytes, quotes, backslashes and non-ASCII bytes in the path
     * come out percent-encoded or JSON-escaped, the line stays one line. */
    e.path = "/a\"b\\c\nd\x01\xc3\xa9\xff";
    e.path_kind = DZ_ACCESS_PATH_SAFE;
    j = line_of(&e, false, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/a\"b\\c%0Ad%01%C3%A9%FF");
    json_decref(j);

    /* A method that is not UTF-8 is left out, not a broken line. */
    e = base_entry();
    e.method = "G\xffT";
    j = line_of(&e, false, NULL);
    assert_null(json_object_get(j, "method"));
    json_decref(j);

    /* A very long path is cut at a bound and said so. */
    e = base_entry();
    longpath[0] = '/';
    memset(longpath + 1, 'a', sizeof(longpath) - 2);
    e.path = longpath;
    j = line_of(&e, false, NULL);
    assert_true(json_string_length(json_object_get(j, "path")) == 2048);
    assert_true(json_is_true(json_object_get(j, "path_cut")));
    json_decref(j);
}

static void test_route_of_rule(void **state)
{
    char buf[128];

    assert_string_equal(
        dz_accesslog_route("registry.yaml:9 GET /api/registry/me", buf, sizeof(buf)),
        "/api/registry/me");
    assert_string_equal(dz_accesslog_route("r.yaml:17 GET,POST /api/x/{fin}", buf, sizeof(buf)),
                        "/api/x/{fin}");
    assert_string_equal(dz_accesslog_route("auth_password", buf, sizeof(buf)), "auth_password");
    assert_string_equal(dz_accesslog_route(NULL, buf, sizeof(buf)), "");
}

/* ---- the line as jansson wrote it (the builder before accessline.c) ------------ */

static void ref_str(json_t *o, const char *key, const char *v)
{
    json_t *s = v ? json_string(v) : NULL;

    if (s)
        json_object_set_new(o, key, s);
}

static char *ref_line(const struct dz_access_entry *e)
{
    static const char hex[] = "0123456789ABCDEF";
    json_t *o = json_object();
    char when[64];
    time_t secs = (time_t)(e->time_ms / 1000);
    struct tm tm;
    char *text, *line;
    size_t plen = e->path ? strcspn(e->path, "?") : 0;

    gmtime_r(&secs, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(e->time_ms % 1000));
    ref_str(o, "time", when);
    ref_str(o, "rid", e->rid);
    ref_str(o, "gw", e->gw);
    ref_str(o, "host", e->host);
    ref_str(o, "client", e->client);
    ref_str(o, "method", e->method);
    ref_str(o, "route", e->route);
    ref_str(o, "service", e->service);
    if (e->path) { /* callers here use DZ_ACCESS_PATH_SAFE */
        char out[2048 * 3 + 1];
        size_t n = 0;
        size_t len = plen > 2048 ? 2048 : plen;
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)e->path[i];
            if (ch > 0x20 && ch < 0x7f) {
                out[n++] = (char)ch;
            } else {
                out[n++] = '%';
                out[n++] = hex[ch >> 4];
                out[n++] = hex[ch & 15];
            }
        }
        json_object_set_new(o, "path", json_stringn(out, n));
        if (plen > 2048)
            json_object_set_new(o, "path_cut", json_true());
    }
    json_object_set_new(o, "status", json_integer(e->status));
    json_object_set_new(o, "bytes", json_integer((json_int_t)e->bytes));
    json_object_set_new(o, "dur_ms", json_real((double)e->dur_us / 1000.0));
    if (e->upstream_status) {
        json_object_set_new(o, "up_status", json_integer(e->upstream_status));
        json_object_set_new(o, "up_ms", json_real((double)e->upstream_us / 1000.0));
    }
    ref_str(o, "sid", e->sid);
    ref_str(o, "means", e->means);
    ref_str(o, "acr", e->acr);
    text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    json_decref(o);
    assert_non_null(text);
    assert_true(asprintf(&line, "%s\n", text) > 0);
    free(text);
    return line;
}

static void test_same_as_jansson(void **state)
{
    static const uint64_t durs[] = {0,      1,        999,       1000,       1500,
                                    123456, 999999,   1000000,   1234567890, 999999999999,
                                    7,      12345678, 100000000, 5e12,       31};
    static const char *const texts[] = {
        "plain",
        "quote\"back\\slash",
        "ctl\b\f\n\r\t\x01\x1f\x7f",
        "caf\xc3\xa9",
        "\xe2\x82\xac euro",
        "\xf0\x9f\x98\x80 emoji",
        "bad\xff",
        "over\xc0\xaf",
        "sur\xed\xa0\x80",
        "",
        "a/b",
        "\xf4\x8f\xbf\xbf max",
    };
    char longpath[3000];

    (void)state;
    longpath[0] = '/';
    memset(longpath + 1, 'x', sizeof(longpath) - 2);
    longpath[sizeof(longpath) - 1] = '\0';
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
            struct dz_access_entry e = base_entry();
            char *want, *got = NULL;
            size_t len = 0;

            e.dur_us = durs[i];
            e.upstream_status = (i % 3) ? 0 : 502;
            e.upstream_us = durs[(i + 5) % (sizeof(durs) / sizeof(durs[0]))];
            e.bytes = durs[i] * 7;
            e.status = (int)(i * 37 % 600);
            e.client = texts[t];
            e.host = texts[(t + 1) % (sizeof(texts) / sizeof(texts[0]))];
            e.method = (t % 2) ? texts[t] : "POST";
            e.sid = (i % 2) ? texts[(t + 2) % (sizeof(texts) / sizeof(texts[0]))] : NULL;
            e.means = (i % 4) ? "password" : NULL;
            e.acr = texts[(t + 3) % (sizeof(texts) / sizeof(texts[0]))];
            e.service = (t % 3) ? "registry" : NULL;
            e.path = (t == 4) ? longpath : (t % 2) ? "/a\"b\\c\nd\x01\xc3\xa9\xff?q=1" : "/api/x";
            want = ref_line(&e);
            assert_int_equal(dz_accesslog_format(&e, false, &got, &len), 0);
            assert_int_equal(len, strlen(got));
            if (strcmp(got, want) != 0)
                fail_msg("entry %zu/%zu:\n got %s want %s", i, t, got, want);
            free(got);
            free(want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_fin_paths),
        cmocka_unit_test(test_no_query_no_token),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_route_of_rule),
        cmocka_unit_test(test_same_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
