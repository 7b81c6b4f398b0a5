/* test_accesslog.c - the access log's line builder (gateway/ops/accesslog.c):
 * fields, escaping, the FIN rule with log_fin off and on, no query string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_fin_paths),
        cmocka_unit_test(test_no_query_no_token),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_route_of_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
