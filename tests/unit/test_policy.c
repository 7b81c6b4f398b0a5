/*
 * test_policy.c - the policy engine (gateway/policy/policy.c, policy_load.c):
 * loading good directories and the demo policy, one bad file per error
 * class with its exact file:line: key, cross-file rules, a bad reload
 * leaving the current set alone, matching, decisions and release.
 */
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

#include "base/err.h"
#include "policy/policy.h"

/* ---- helpers ------------------------------------------------------------------ */

static char tmp[64];

static void write_file(const char *d, const char *name, const char *text)
{
    char p[256];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", d, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *d, const char *name)
{
    char p[256];

    snprintf(p, sizeof(p), "%s/%s", d, name);
    unlink(p);
}

static void make_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp, name);
    assert_int_equal(mkdir(buf, 0700), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/dz_policy_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    /* Only our own mkdtemp directory. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static struct dz_policy_set *load_text(const char *name, const char *text)
{
    struct dz_policy_set *s = NULL;
    char err[512] = "";

    if (dz_policy_load_buf(name, text, strlen(text), &s, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return s;
}

static void expect_prefix(const char *err, const char *prefix, const char *why)
{
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, why))
        fail_msg("got \"%s\"\n  wanted \"%s...%s\"", err, prefix, why);
}

/* ---- the demo policy -------------------------------------------------------- */

static void test_demo_policy(void **state)
{
    struct dz_policy_set *s = NULL;
    const struct dz_policy_service *svc;
    const struct dz_policy_route *r;
    char err[512] = "";

    (void)state;
    if (dz_policy_load_dir("policies", &s, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    /* Every connected system has its file; the registry is one of them. */
    assert_true(dz_policy_service_count(s) >= 1);
    assert_null(dz_policy_service_at(s, dz_policy_service_count(s)));
    assert_null(dz_policy_service_find(s, "no-such-service"));
    svc = dz_policy_service_find(s, "registry");
    assert_non_null(svc);
    assert_string_equal(svc->registered_as, "DIS-0001");
    assert_string_equal(svc->upstream, "https://127.0.0.1:9101");
    assert_string_equal(svc->upstream_host, "127.0.0.1");
    assert_int_equal(svc->upstream_port, 9101);
    assert_true(svc->upstream_is_https);
    assert_int_equal(svc->upstream_http, DZ_UPSTREAM_H2);
    assert_string_equal(svc->file, "policies/registry.yaml");
    assert_int_equal(svc->n_routes, 3);
    assert_int_equal(svc->limits.body, 1048576);
    assert_int_equal(svc->limits.timeout_ms, 10000);
    assert_int_equal(svc->limits.rate.count, 20);
    assert_int_equal(svc->limits.rate.period_ms, 1000);
    assert_int_equal(svc->limits.rate_scope, DZ_RATE_PER_SUBJECT);

    r = &svc->routes[0];
    assert_string_equal(r->rule, "registry.yaml:9 GET /api/registry/me");
    assert_int_equal(r->acr, DZ_ACR_LOW);
    assert_int_equal(r->release, DZ_RELEASE_FIN | DZ_RELEASE_NAME | DZ_RELEASE_SURNAME |
                                     DZ_RELEASE_PATRONYMIC | DZ_RELEASE_BIRTH_DATE |
                                     DZ_RELEASE_BIRTH_PLACE | DZ_RELEASE_GENDER |
                                     DZ_RELEASE_DOCUMENT | DZ_RELEASE_ADDRESS);
    assert_false(r->has_fin || r->self_only || r->is_public || r->require_signed_body);
    assert_int_equal(r->limits.body, 1048576); /* inherited */

    r = &svc->routes[1];
    assert_string_equal(r->path, "/api/registry/me/phones");
    assert_int_equal(r->acr, DZ_ACR_SUBSTANTIAL);
    assert_int_equal(r->release, DZ_RELEASE_FIN | DZ_RELEASE_PHONES);

    r = &svc->routes[2];
    assert_string_equal(r->rule, "registry.yaml:17 GET /api/registry/persons/{fin}");
    assert_int_equal(r->line, 17);
    assert_int_equal(r->methods, DZ_METHOD_GET);
    assert_int_equal(r->means, DZ_AMR_SC | DZ_AMR_MOB); /* a card or a judge's SIM */
    assert_string_equal(r->role, "judge");
    assert_int_equal(r->purpose, DZ_PURPOSE_REQUIRED);
    assert_true(r->has_fin);
    assert_false(r->self_only); /* a role is granted cross-person access */
    assert_ptr_equal(r->service, svc);
    assert_true(dz_policy_release_allows(r, "phones"));
    assert_true(dz_policy_release_allows(r, "address"));
    assert_false(dz_policy_release_allows(r, "document"));
    assert_false(dz_policy_release_allows(r, "birth_date"));
    assert_false(dz_policy_release_allows(r, "salary"));
    assert_false(dz_policy_release_allows(r, NULL));
    assert_false(dz_policy_release_allows(NULL, "fin"));
    assert_true(dz_policy_release_allows(&svc->routes[0], "document"));
    assert_false(dz_policy_release_allows(&svc->routes[0], "phones"));
    dz_policy_set_free(s);
    dz_policy_set_free(NULL);
}

/* ---- bad files -------------------------------------------------------------- */

static const char *const base_lines[] = {
    /*  1 */ "service: court",
    /*  2 */ "registered_as: \"DIS-0002\"",
    /*  3 */ "upstream: https://127.0.0.1:9102",
    /*  4 */ "routes:",
    /*  5 */ "  - path: /api/court/notices",
    /*  6 */ "    methods: [GET, POST]",
    /*  7 */ "    acr: substantial",
    /*  8 */ "  - path: /api/court/notices/{fin}",
    /*  9 */ "    methods: [GET]",
    /* 10 */ "    role: judge",
    /* 11 */ "    purpose: required",
    /* 12 */ "limits: { body: 64KiB, timeout: 5s, rate: 100/m per address }",
};
#define BASE_N (sizeof(base_lines) / sizeof(base_lines[0]))

/* The base policy with lines [from, to] replaced by repl (NULL: removed). */
static char *variant(size_t from, size_t to, const char *repl)
{
    static char text[4096];
    size_t used = 0;

    text[0] = '\0';
    for (size_t i = 1; i <= BASE_N; i++) {
        const char *line = base_lines[i - 1];
        if (from && i >= from && i <= to) {
            if (i != from || !repl)
                continue;
            line = repl;
        }
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s\n", line);
        assert_true(used < sizeof(text));
    }
    return text;
}

struct bad_case {
    size_t from, to;
    const char *repl;
    unsigned line;
    const char *key; /* "" when the message has no key */
    const char *why;
};

static const struct bad_case bad_cases[] = {
    /* unknown keys */
    {12, 12, "limits: { body: 64KiB }\ncolour: red", 13, "colour", "unknown key"},
    {7, 7, "    acr: substantial\n    verb: GET", 8, "routes[0].verb", "unknown key"},
    {12, 12, "limits: { burst: 5 }", 12, "limits.burst", "unknown key"},
    /* acr, means, role, purpose, release, methods */
    {7, 7, "    acr: ultra-high", 7, "routes[0].acr", "expected low|substantial|high"},
    {7, 7, "    acr: [low]", 7, "routes[0].acr", "expected a value, got a list"},
    {7, 7, "    acr: substantial\n    means: [sms]", 8, "routes[0].means", "\"sms\" is not one of"},
    {7, 7, "    acr: substantial\n    means: []", 8, "routes[0].means", "admit no session"},
    {7, 7, "    acr: substantial\n    means: [sc, sc]", 8, "routes[0].means", "listed twice"},
    {7, 7, "    acr: substantial\n    release: [salary]", 8, "routes[0].release",
     "\"salary\" is not one of"},
    {10, 10, "    role: Judge!", 10, "routes[1].role", "expected a role name"},
    {11, 11, "    purpose: maybe", 11, "routes[1].purpose", "expected required|optional|none"},
    {6, 6, "    methods: [GET, FETCH]", 6, "routes[0].methods", "\"FETCH\" is not one of"},
    {6, 6, "    methods: [GET, GET]", 6, "routes[0].methods", "listed twice"},
    {6, 6, "    methods: GET", 6, "routes[0].methods", "expected a list"},
    {6, 6, "    methods: []", 6, "routes[0].methods", "at least one method"},
    {6, 6, NULL, 5, "routes[0].methods", "required key is missing"},
    {5, 6, "  - methods: [GET, POST]\n    pathh: /x", 6, "routes[0].pathh", "unknown key"},
    /* {fin} and path templates */
    {8, 8, "  - path: /api/court/notices/{fin}.json", 8, "routes[1].path",
     "must be a whole segment"},
    {8, 8, "  - path: /api/court/notices/x{fin}", 8, "routes[1].path", "whole segment"},
    {8, 8, "  - path: /api/court/notices/{id}", 8, "routes[1].path", "only placeholder"},
    {8, 8, "  - path: /api/court/{fin}/notices/{fin}", 8, "routes[1].path", "only one {fin}"},
    {8, 8, "  - path: /api/court/notices/a*", 8, "routes[1].path", "* must be a whole segment"},
    {8, 8, "  - path: api/court/notices", 8, "routes[1].path", "must start with /"},
    {8, 8, "  - path: /api//court", 8, "routes[1].path", "empty segment"},
    {8, 8, "  - path: /api/court/", 8, "routes[1].path", "empty segment"},
    {8, 8, "  - path: /api/court/../registry/me", 8, "routes[1].path", "\"..\" segments"},
    {8, 8, "  - path: /api/court/%41", 8, "routes[1].path", "'%' is not allowed"},
    /* self_only, public, require_signed_body */
    {8, 11, "  - path: /api/court/x/{fin}\n    methods: [GET]\n    self_only: false", 10,
     "routes[1].self_only", "needs a role"},
    {7, 7, "    acr: substantial\n    self_only: true", 8, "routes[0].self_only",
     "only for a path with {fin}"},
    {7, 7, "    acr: substantial\n    public: true", 7, "routes[0].public",
     "a public route has no acr"},
    {10, 11, "    public: true", 10, "routes[1].public", "cannot name a person"},
    {10, 10, "    role: judge\n    require_signed_body: true", 11, "routes[1].require_signed_body",
     "needs a method with a body"},
    {10, 10, "    role: judge\n    require_signed_body: maybe", 11, "routes[1].require_signed_body",
     "expected true or false"},
    /* upstream */
    {3, 3, "upstream: ftp://127.0.0.1", 3, "upstream", "expected an http(s)://host[:port]"},
    {3, 3, "upstream: http://10.0.0.5:80", 3, "upstream", "http only for a loopback host"},
    {3, 3, "upstream: https://127.0.0.1:9102/base", 3, "upstream", "no path"},
    {3, 3, "upstream: https://user@127.0.0.1", 3, "upstream", "without user info"},
    {3, 3, "upstream: https://127.0.0.1:9102\nupstream_http: h2c", 4, "upstream_http",
     "expected h2|http1 for an https upstream"},
    {3, 3, "upstream: http://127.0.0.1:9102\nupstream_http: h2", 4, "upstream_http",
     "expected h2c|http1 for an http upstream"},
    {3, 3, NULL, 1, "upstream", "required key is missing"},
    /* service identity */
    {1, 1, "service: Court", 1, "service", "expected a name of [a-z0-9-]"},
    {1, 1, "service:", 1, "service", "empty value"},
    {2, 2, NULL, 1, "registered_as", "required key is missing"},
    {2, 2, "registered_as: \"DIS 0002\"", 2, "registered_as", "register entry"},
    /* routes and limits */
    {4, 11, NULL, 1, "routes", "required key is missing"},
    {4, 11, "routes: []", 4, "routes", "must have 1 to 256 routes"},
    {4, 11, "routes: {a: 1}", 4, "routes", "expected a list"},
    {8, 11, "  - /api/court/x", 8, "routes[1]", "expected a mapping"},
    {12, 12, "limits: { rate: 20/d }", 12, "limits.rate", "expected a rate"},
    {12, 12, "limits: { rate: 0/s }", 12, "limits.rate", "between 1 and 1000000"},
    {12, 12, "limits: { rate: 20/s per planet }", 12, "limits.rate", "per subject"},
    {12, 12, "limits: { body: 10KB }", 12, "limits.body", "expected a size"},
    {12, 12, "limits: { body: 2GiB }", 12, "limits.body", "expected a size"},
    {12, 12, "limits: 5", 12, "limits", "expected a mapping"},
    /* assertion signing */
    {12, 12, "limits: { body: 64KiB }\nassertion: { signing: sometimes }", 13, "assertion.signing",
     "expected request|batch"},
    {12, 12, "limits: { body: 64KiB }\nassertion: { window: 1ms }", 13, "assertion.window",
     "unknown key"},
    {12, 12, "limits: { body: 64KiB }\nassertion: batch", 13, "assertion", "expected a mapping"},
    {7, 7, "    acr: substantial\n    limits: {timeout: 1h}", 8, "routes[0].limits.timeout",
     "from 100ms to 10m"},
    /* the caps on requests in flight: a count, at service level, share <= cap */
    {12, 12, "limits: { in_flight: 0 }", 12, "limits.in_flight",
     "expected a count from 1 to 100000"},
    {12, 12, "limits: { in_flight: many }", 12, "limits.in_flight", "expected a count"},
    {12, 12, "limits: { in_flight: 100001 }", 12, "limits.in_flight", "expected a count"},
    {12, 12, "limits: { in_flight: -3 }", 12, "limits.in_flight", "expected a count"},
    {12, 12, "limits:\n  in_flight: 8\n  in_flight_per_caller: 9", 14,
     "limits.in_flight_per_caller", "9 is more than the service's in_flight (8)"},
    {12, 12, "limits: { in_flight_per_caller: 513 }", 12, "limits.in_flight_per_caller",
     "513 is more than the service's in_flight (512)"},
    {7, 7, "    acr: substantial\n    limits: { in_flight: 4 }", 8, "routes[0].limits.in_flight",
     "a service limit"},
    /* ambiguity */
    {8, 8, "  - path: /api/court/notices", 8, "routes[1].path", "already routed by bad.yaml:5"},
    /* YAML itself: duplicate keys, anchors, wrong indentation, syntax */
    {7, 7, "    acr: substantial\n    acr: high", 8, "", "duplicate key \"acr\""},
    {1, 1, "service: &s court", 1, "", "anchors"},
    {6, 6, "   methods: [GET, POST]", 6, "", "syntax error"},
    {6, 6, "    methods: [GET, POST", 7, "", "syntax error"},
    {10, 10, "\trole: judge", 10, "", "syntax error"},
};

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        const char *text = variant(b->from, b->to, b->repl);
        struct dz_policy_set *s = NULL;
        char err[512] = "";
        char want[160];

        if (dz_policy_load_buf("bad.yaml", text, strlen(text), &s, err, sizeof(err)) == 0)
            fail_msg("case %zu (%s): accepted\n%s", i, b->why, text);
        assert_null(s);
        if (b->key[0])
            snprintf(want, sizeof(want), "bad.yaml:%u: %s: ", b->line, b->key);
        else
            snprintf(want, sizeof(want), "bad.yaml:%u: ", b->line);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, b->why))
            fail_msg("case %zu: got \"%s\"\n  wanted \"%s...%s\"", i, err, want, b->why);
    }
}

static void test_bad_documents(void **state)
{
    struct dz_policy_set *s = NULL;
    char err[512];

    (void)state;
    assert_int_equal(dz_policy_load_buf("e.yaml", "", 0, &s, err, sizeof(err)), DZ_ERR_INVAL);
    assert_string_equal(err, "e.yaml: empty policy");
    assert_int_equal(dz_policy_load_buf("l.yaml", "- a\n", 4, &s, err, sizeof(err)), DZ_ERR_INVAL);
    expect_prefix(err, "l.yaml:1: ", "expected a mapping");
    assert_int_equal(dz_policy_load_buf("n.yaml", "a: \"\\0\"", 7, &s, err, sizeof(err)),
                     DZ_ERR_PARSE);
    expect_prefix(err, "n.yaml:1: ", "NUL byte");
    assert_null(s);
}

/* A good base policy loads, with the details the bad cases vary. */
static void test_assertion_signing(void **state)
{
    struct dz_policy_set *s = load_text(
        "court.yaml", variant(12, 12, "limits: { body: 64KiB }\nassertion: { signing: batch }"));

    (void)state;
    assert_int_equal(dz_policy_service_at(s, 0)->assertion_signing, DZ_SIGNING_BATCH);
    dz_policy_set_free(s);
    s = load_text("court.yaml", variant(12, 12, "assertion: { signing: request }"));
    assert_int_equal(dz_policy_service_at(s, 0)->assertion_signing, DZ_SIGNING_REQUEST);
    dz_policy_set_free(s);
}

static void test_base_good(void **state)
{
    const char *text = variant(0, 0, NULL);
    struct dz_policy_set *s = load_text("dir/court.yaml", text);
    const struct dz_policy_service *svc = dz_policy_service_at(s, 0);
    const struct dz_policy_route *r;

    (void)state;
    assert_string_equal(svc->name, "court");
    assert_string_equal(svc->file, "dir/court.yaml");
    assert_int_equal(svc->assertion_signing, DZ_SIGNING_REQUEST); /* the default */
    r = &svc->routes[0];
    assert_string_equal(r->rule, "court.yaml:5 GET,POST /api/court/notices");
    assert_int_equal(r->methods, DZ_METHOD_GET | DZ_METHOD_POST);
    assert_int_equal(r->limits.body, 64 * 1024);
    assert_int_equal(r->limits.timeout_ms, 5000);
    assert_int_equal(r->limits.rate.count, 100);
    assert_int_equal(r->limits.rate.period_ms, 60000);
    assert_int_equal(r->limits.rate_scope, DZ_RATE_PER_ADDRESS);
    /* No in_flight written: the default cap, a quarter of it per caller. */
    assert_int_equal(svc->in_flight, DZ_POLICY_IN_FLIGHT_DEFAULT);
    assert_int_equal(svc->in_flight_per_caller, DZ_POLICY_IN_FLIGHT_DEFAULT / 4);
    dz_policy_set_free(s);

    s = load_text("f.yaml", variant(12, 12, "limits: { in_flight: 10 }"));
    svc = dz_policy_service_at(s, 0);
    assert_int_equal(svc->in_flight, 10);
    assert_int_equal(svc->in_flight_per_caller, 3); /* a quarter, rounded up */
    dz_policy_set_free(s);
    s = load_text("g.yaml", variant(12, 12, "limits: { in_flight: 1, in_flight_per_caller: 1 }"));
    svc = dz_policy_service_at(s, 0);
    assert_int_equal(svc->in_flight, 1);
    assert_int_equal(svc->in_flight_per_caller, 1);
    dz_policy_set_free(s);

    /* Route limits override the service's field by field; trailing '/' on
     * the upstream is dropped; http upstreams default to h2c. */
    s = load_text("x.yaml", variant(3, 7,
                                    "upstream: http://localhost:9102/\n"
                                    "routes:\n"
                                    "  - path: /api/court/notices\n"
                                    "    methods: [POST]\n"
                                    "    require_signed_body: true\n"
                                    "    limits: { body: 1KiB, rate: 2/h }"));
    svc = dz_policy_service_at(s, 0);
    assert_string_equal(svc->upstream, "http://localhost:9102");
    assert_int_equal(svc->upstream_http, DZ_UPSTREAM_H2C);
    assert_false(svc->upstream_is_https);
    r = &svc->routes[0];
    assert_true(r->require_signed_body);
    assert_int_equal(r->limits.body, 1024);
    assert_int_equal(r->limits.timeout_ms, 5000);
    assert_int_equal(r->limits.rate.count, 2);
    assert_int_equal(r->limits.rate_scope, DZ_RATE_PER_SUBJECT);
    assert_int_equal(r->acr, DZ_ACR_LOW); /* default for a non-public route */
    dz_policy_set_free(s);

    s = load_text("y.yaml", variant(3, 3, "upstream: https://h.example.az\nupstream_http: http1"));
    assert_int_equal(dz_policy_service_at(s, 0)->upstream_http, DZ_UPSTREAM_HTTP1);
    assert_int_equal(dz_policy_service_at(s, 0)->upstream_port, 443);
    dz_policy_set_free(s);
}

/* ---- directories ---------------------------------------------------------------- */

static const char court_policy[] = "service: court\n"
                                   "registered_as: DIS-0002\n"
                                   "upstream: https://127.0.0.1:9102\n"
                                   "routes:\n"
                                   "  - path: /api/court/notices\n"
                                   "    methods: [GET]\n";

static const char registry_policy[] = "service: registry\n"
                                      "registered_as: DIS-0001\n"
                                      "upstream: https://127.0.0.1:9101\n"
                                      "routes:\n"
                                      "  - path: /api/registry/me\n"
                                      "    methods: [GET]\n";

static void test_dir_good(void **state)
{
    struct dz_policy_set *s = NULL;
    struct dz_policy_match m;
    char d[128];
    char err[512] = "";

    (void)state;
    make_dir(d, sizeof(d), "good");
    write_file(d, "registry.yaml", registry_policy);
    write_file(d, "court.yaml", court_policy);
    write_file(d, ".hidden.yaml", "junk: [");
    write_file(d, "README.md", "not a policy");
    write_file(d, "notes.yaml.bak", "junk: [");
    if (dz_policy_load_dir(d, &s, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(dz_policy_service_count(s), 2);
    /* Sorted by file name. */
    assert_string_equal(dz_policy_service_at(s, 0)->name, "court");
    assert_string_equal(dz_policy_service_at(s, 1)->name, "registry");
    assert_int_equal(s->n_routes, 2);
    assert_int_equal(dz_policy_match(s, "GET", "/api/registry/me", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_FOUND);
    assert_string_equal(m.service->name, "registry");
    assert_string_equal(m.route->rule, "registry.yaml:5 GET /api/registry/me");
    dz_policy_set_free(s);

    /* A trailing slash on the directory is fine. */
    char d2[160];
    snprintf(d2, sizeof(d2), "%s/", d);
    s = NULL;
    assert_int_equal(dz_policy_load_dir(d2, &s, err, sizeof(err)), 0);
    assert_string_equal(dz_policy_service_at(s, 0)->file + strlen(d2), "court.yaml");
    dz_policy_set_free(s);
}

static void test_dir_errors(void **state)
{
    struct dz_policy_set *cur = NULL;
    struct dz_policy_set *keep;
    struct dz_policy_match m;
    char good[128];
    char bad[128];
    char err[512] = "";
    char want[256];

    (void)state;
    make_dir(good, sizeof(good), "cur");
    write_file(good, "registry.yaml", registry_policy);
    assert_int_equal(dz_policy_load_dir(good, &cur, err, sizeof(err)), 0);
    keep = cur;

    /* Duplicate service across files: named at the second file's line. */
    make_dir(bad, sizeof(bad), "dup");
    write_file(bad, "a.yaml", registry_policy);
    write_file(bad, "b.yaml",
               "service: registry\nregistered_as: DIS-0009\nupstream: https://127.0.0.1:1\n"
               "routes:\n  - path: /api/other\n    methods: [GET]\n");
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_INVAL);
    snprintf(want, sizeof(want), "%s/b.yaml:1: service: ", bad);
    expect_prefix(err, want, "\"registry\" is already defined in");
    /* The caller's set is untouched and still answers. */
    assert_ptr_equal(cur, keep);
    assert_int_equal(dz_policy_match(cur, "GET", "/api/registry/me", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_FOUND);

    /* Duplicate register entry. */
    write_file(bad, "b.yaml",
               "service: other\nregistered_as: DIS-0001\nupstream: https://127.0.0.1:1\n"
               "routes:\n  - path: /api/other\n    methods: [GET]\n");
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_INVAL);
    snprintf(want, sizeof(want), "%s/b.yaml:2: registered_as: ", bad);
    expect_prefix(err, want, "\"DIS-0001\" is already used by");

    /* The same path and method in two services. */
    write_file(bad, "b.yaml",
               "service: other\nregistered_as: DIS-0003\nupstream: https://127.0.0.1:1\n"
               "routes:\n  - path: /api/x\n    methods: [POST]\n"
               "  - path: /api/registry/me\n    methods: [HEAD, GET]\n");
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_INVAL);
    snprintf(want, sizeof(want), "%s/b.yaml:7: routes[1].path: ", bad);
    expect_prefix(err, want, "already routed by");
    assert_non_null(strstr(err, "a.yaml:5"));

    /* A broken file among good ones: its own file:line. */
    write_file(bad, "b.yaml",
               "service: other\nregistered_as: DIS-0003\n"
               "upstream: https://127.0.0.1:1\nroutes:\n"
               "  - path: /api/x\n    methods: [GET]\n    acr: ultra-high\n");
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_INVAL);
    snprintf(want, sizeof(want), "%s/b.yaml:7: routes[0].acr: ", bad);
    expect_prefix(err, want, "expected low|substantial|high");
    remove_file(bad, "b.yaml");

    /* Empty and missing directories. */
    remove_file(bad, "a.yaml");
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_INVAL);
    expect_prefix(err, bad, ": no *.yaml policy files");
    assert_int_equal(dz_policy_load_dir("/nonexistent/policies", &cur, err, sizeof(err)),
                     DZ_ERR_IO);
    expect_prefix(err, "/nonexistent/policies: ", "cannot open directory");
    /* A directory named like a policy is not a file. */
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/x.yaml", bad);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(dz_policy_load_dir(bad, &cur, err, sizeof(err)), DZ_ERR_IO);
    expect_prefix(err, sub, "not a regular file");

    assert_ptr_equal(cur, keep);
    dz_policy_set_free(cur);
}

/* ---- matching ---------------------------------------------------------------------- */

static const char match_policy[] = "service: t\n"
                                   "registered_as: T-1\n"
                                   "upstream: http://127.0.0.1:9000\n"
                                   "routes:\n"
                                   "  - path: /a/me\n" /* 5 */
                                   "    methods: [GET]\n"
                                   "  - path: /a/persons/{fin}\n" /* 7 */
                                   "    methods: [GET]\n"
                                   "  - path: /a/persons/lookups\n" /* 9: 7 letters, FIN-shaped */
                                   "    methods: [GET, POST]\n"
                                   "  - path: /a/files/*\n" /* 11 */
                                   "    methods: [GET]\n"
                                   "  - path: /a/files/{fin}\n" /* 13 */
                                   "    methods: [PUT]\n"
                                   "  - path: /\n" /* 15 */
                                   "    methods: [GET]\n"
                                   "    public: true\n"
                                   "  - path: /a/self/{fin}/notes\n" /* 18 */
                                   "    methods: [GET]\n";

static const struct dz_policy_route *expect_found(const struct dz_policy_set *s, const char *method,
                                                  const char *path, unsigned line, const char *fin)
{
    struct dz_policy_match m;

    assert_int_equal(dz_policy_match(s, method, path, &m), 0);
    if (m.status != DZ_MATCH_FOUND)
        fail_msg("%s %s: status %d", method, path, m.status);
    assert_int_equal(m.route->line, line);
    assert_ptr_equal(m.service, m.route->service);
    assert_string_equal(m.fin, fin);
    return m.route;
}

static void expect_status(const struct dz_policy_set *s, const char *method, const char *path,
                          enum dz_policy_match_status status)
{
    struct dz_policy_match m;

    assert_int_equal(dz_policy_match(s, method, path, &m), 0);
    if (m.status != status)
        fail_msg("%s %s: status %d, wanted %d", method, path, m.status, status);
    assert_null(m.route);
    assert_string_equal(m.fin, "");
}

static void test_match(void **state)
{
    struct dz_policy_set *s = load_text("t.yaml", match_policy);
    struct dz_policy_match m;
    char longpath[512];

    (void)state;
    expect_found(s, "GET", "/a/me", 5, "");
    expect_found(s, "GET", "/a/persons/ab12cd3", 7, "AB12CD3");
    expect_found(s, "GET", "/a/persons/AB12CD3", 7, "AB12CD3");
    /* A literal segment beats {fin}, even when it looks like a FIN. */
    expect_found(s, "GET", "/a/persons/lookups", 9, "");
    expect_found(s, "POST", "/a/persons/lookups", 9, "");
    /* {fin} beats *, and the method decides between equal paths. */
    expect_found(s, "GET", "/a/files/report.pdf", 11, "");
    expect_found(s, "GET", "/a/files/AB12CD3", 11, "");
    expect_found(s, "PUT", "/a/files/ab12cd3", 13, "AB12CD3");
    expect_found(s, "GET", "/", 15, "");
    expect_found(s, "GET", "/a/self/5zj3k7p/notes", 18, "5ZJ3K7P");

    /* An invalid FIN where only {fin} fits: 400 invalid_fin. */
    expect_status(s, "GET", "/a/persons/AB12", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/persons/AB12CD34", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/persons/AB%31CD3", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/persons/AB-12CD", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/self/x/notes", DZ_MATCH_INVALID_FIN);
    /* "*" takes unreserved characters only; where it does not fit, the
     * (PUT-only) {fin} route at that place still makes it a bad FIN. */
    expect_status(s, "GET", "/a/files/a%2Fb", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/files/a b", DZ_MATCH_INVALID_FIN);
    expect_status(s, "GET", "/a/files/r\xc3\xa9sum\xc3\xa9", DZ_MATCH_INVALID_FIN);

    /* A known path with another method: 405 with the allowed set. */
    assert_int_equal(dz_policy_match(s, "DELETE", "/a/persons/AB12CD3", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_METHOD);
    assert_int_equal(m.allowed, DZ_METHOD_GET);
    assert_null(m.route);
    assert_int_equal(dz_policy_match(s, "DELETE", "/a/persons/lookups", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_METHOD);
    assert_int_equal(m.allowed, DZ_METHOD_GET | DZ_METHOD_POST);
    assert_int_equal(dz_policy_match(s, "BREW", "/a/me", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_METHOD);
    assert_int_equal(dz_policy_match(s, "get", "/a/me", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_METHOD); /* methods are case-sensitive */
    assert_int_equal(dz_policy_match(s, "POST", "/a/files/x.txt", &m), 0);
    assert_int_equal(m.status, DZ_MATCH_METHOD);
    assert_int_equal(m.allowed, DZ_METHOD_GET);

    /* Paths that a back end might normalise are never matched. */
    static const char *const none[] = {
        "/a/me/",       "//a/me",       "/a//me",  "a/me",       "",
        "/a/me?x=1",    "/a/ME",        "/a/./me", "/a/x/../me", "/a/files/..",
        "/a/files/.",   "/a/me/%2e%2e", "/a/m%65", "/a/files/",  "/a",
        "/a/me/phones", "/a/persons",   "/b/me",   "/a/me#x",    "/a/%2e%2e/me",
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        expect_status(s, "GET", none[i], DZ_MATCH_NONE);
    /* Too many segments. */
    for (int i = 0; i < 40; i++)
        memcpy(longpath + 2 * i, "/a", 3);
    expect_status(s, "GET", longpath, DZ_MATCH_NONE);

    assert_int_equal(dz_policy_match(NULL, "GET", "/a/me", &m), DZ_ERR_INVAL);
    assert_int_equal(m.status, DZ_MATCH_NONE);
    assert_int_equal(dz_policy_match(s, NULL, "/a/me", &m), DZ_ERR_INVAL);
    assert_int_equal(dz_policy_match(s, "GET", NULL, &m), DZ_ERR_INVAL);
    assert_int_equal(dz_policy_match(s, "GET", "/a/me", NULL), DZ_ERR_INVAL);
    dz_policy_set_free(s);
}

/* ---- decisions ------------------------------------------------------------------------ */

struct decision {
    enum dz_decision d;
    const char *reason;
    const char *rule;
    int rc;
};

static struct decision eval(const struct dz_policy_route *r, const struct dz_policy_subject *subj,
                            const char *purpose, const char *target)
{
    struct decision x;

    x.d = DZ_ALLOW; /* must be reset to deny on entry */
    x.reason = "junk";
    x.rule = "junk";
    x.rc = dz_policy_eval(r, subj, purpose, target, &x.d, &x.reason, &x.rule);
    return x;
}

static void expect_deny(struct decision x, const char *reason)
{
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.d, DZ_DENY);
    assert_string_equal(x.reason, reason);
}

static void expect_allow(struct decision x)
{
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.d, DZ_ALLOW);
    assert_string_equal(x.reason, "allowed");
}

static const struct dz_policy_route *demo_route(const struct dz_policy_set *s, const char *path)
{
    struct dz_policy_match m;

    assert_int_equal(dz_policy_match(s, "GET", path, &m), 0);
    assert_int_equal(m.status, DZ_MATCH_FOUND);
    return m.route;
}

static void test_eval_demo(void **state)
{
    struct dz_policy_set *s = NULL;
    const struct dz_policy_route *me;
    const struct dz_policy_route *phones;
    const struct dz_policy_route *persons;
    char err[512];
    char purpose[DZ_POLICY_PURPOSE_MAX + 2];
    struct decision x;

    const struct dz_policy_subject pwd = {"AB12CD3", DZ_ACR_LOW, DZ_AMR_PWD, NULL};
    const struct dz_policy_subject otp = {"AB12CD3", DZ_ACR_SUBSTANTIAL, DZ_AMR_PWD | DZ_AMR_OTP,
                                          NULL};
    const struct dz_policy_subject judge = {"JUDGE01", DZ_ACR_HIGH, DZ_AMR_SC | DZ_AMR_PIN,
                                            "judge"};
    const struct dz_policy_subject mob_judge = {"JUDGE01", DZ_ACR_HIGH, DZ_AMR_MOB | DZ_AMR_PIN,
                                                "judge"};
    const struct dz_policy_subject mob_citizen = {"AB12CD3", DZ_ACR_HIGH, DZ_AMR_MOB | DZ_AMR_PIN,
                                                  "citizen"};
    const struct dz_policy_subject card = {"AB12CD3", DZ_ACR_HIGH, DZ_AMR_SC | DZ_AMR_PIN, NULL};
    const struct dz_policy_subject citizen = {"AB12CD3", DZ_ACR_HIGH, DZ_AMR_SC | DZ_AMR_PIN,
                                              "citizen"};
    const struct dz_policy_subject nobody = {"", DZ_ACR_HIGH, DZ_AMR_SC, "judge"};
    const struct dz_policy_subject no_acr = {"AB12CD3", DZ_ACR_NONE, DZ_AMR_PWD, NULL};
    const struct dz_policy_subject bad_acr = {"AB12CD3", (enum dz_acr)7, DZ_AMR_PWD, NULL};

    (void)state;
    assert_int_equal(dz_policy_load_dir("policies", &s, err, sizeof(err)), 0);
    me = demo_route(s, "/api/registry/me");
    phones = demo_route(s, "/api/registry/me/phones");
    persons = demo_route(s, "/api/registry/persons/ZZ99YY8");

    /* /me: any session, no session is 401. */
    expect_deny(eval(me, NULL, NULL, NULL), "unauthenticated");
    expect_deny(eval(me, &nobody, NULL, NULL), "unauthenticated");
    expect_deny(eval(me, &no_acr, NULL, NULL), "insufficient_assurance");
    expect_deny(eval(me, &bad_acr, NULL, NULL), "insufficient_assurance");
    x = eval(me, &pwd, NULL, NULL);
    expect_allow(x);
    assert_string_equal(x.rule, "registry.yaml:9 GET /api/registry/me");

    /* /me/phones: acr substantial; a password-only session cannot. */
    x = eval(phones, &pwd, NULL, NULL);
    expect_deny(x, "insufficient_assurance");
    assert_string_equal(x.rule, "registry.yaml:13 GET /api/registry/me/phones");
    expect_allow(eval(phones, &otp, NULL, NULL));
    expect_allow(eval(phones, &card, NULL, NULL));

    /* persons/{fin}: smart card or mobile signature, judge, purpose required. */
    x = eval(persons, &judge, "case 2-101/2026", "ZZ99YY8");
    expect_allow(x);
    assert_string_equal(x.rule, "registry.yaml:17 GET /api/registry/persons/{fin}");
    expect_allow(eval(persons, &judge, "x", "zz99yy8"));
    expect_allow(eval(persons, &mob_judge, "case 1", "ZZ99YY8")); /* a judge's SIM */
    expect_deny(eval(persons, &mob_citizen, "case 1", "ZZ99YY8"), "forbidden");
    expect_deny(eval(persons, &otp, "case 1", "ZZ99YY8"), "insufficient_assurance");
    expect_deny(eval(persons, &card, "case 1", "ZZ99YY8"), "forbidden");
    expect_deny(eval(persons, &citizen, "case 1", "ZZ99YY8"), "forbidden");
    expect_deny(eval(persons, NULL, "case 1", "ZZ99YY8"), "unauthenticated");
    expect_deny(eval(persons, &judge, NULL, "ZZ99YY8"), "purpose_required");
    expect_deny(eval(persons, &judge, "", "ZZ99YY8"), "purpose_required");
    expect_deny(eval(persons, &judge, "case\n1", "ZZ99YY8"), "invalid_purpose");
    expect_deny(eval(persons, &judge, "d\xc3\xa9l\xc3\xa9gu\xc3\xa9", "ZZ99YY8"),
                "invalid_purpose");
    memset(purpose, 'p', DZ_POLICY_PURPOSE_MAX);
    purpose[DZ_POLICY_PURPOSE_MAX] = '\0';
    expect_allow(eval(persons, &judge, purpose, "ZZ99YY8"));
    purpose[DZ_POLICY_PURPOSE_MAX] = 'p';
    purpose[DZ_POLICY_PURPOSE_MAX + 1] = '\0';
    expect_deny(eval(persons, &judge, purpose, "ZZ99YY8"), "invalid_purpose");
    /* A {fin} route without a target to decide on fails closed. */
    x = eval(persons, &judge, "case 1", NULL);
    assert_int_equal(x.rc, DZ_ERR_INVAL);
    assert_int_equal(x.d, DZ_DENY);
    x = eval(persons, &judge, "case 1", "AB12");
    assert_int_equal(x.rc, DZ_ERR_INVAL);
    assert_int_equal(x.d, DZ_DENY);

    /* No route, no out-parameters: deny and an error. */
    x = eval(NULL, &judge, NULL, NULL);
    assert_int_equal(x.rc, DZ_ERR_INVAL);
    assert_int_equal(x.d, DZ_DENY);
    assert_string_equal(x.rule, "default deny");
    enum dz_decision d = DZ_ALLOW;
    assert_int_equal(dz_policy_eval(me, &pwd, NULL, NULL, &d, NULL, NULL), DZ_ERR_INVAL);
    assert_int_equal(d, DZ_DENY);
    dz_policy_set_free(s);
}

static void test_eval_self_and_public(void **state)
{
    struct dz_policy_set *s = load_text("t.yaml", match_policy);
    struct dz_policy_match m;
    const struct dz_policy_route *self;
    const struct dz_policy_route *pub;
    const struct dz_policy_subject a = {"AB12CD3", DZ_ACR_LOW, DZ_AMR_PWD, NULL};
    const struct dz_policy_subject judge = {"JUDGE01", DZ_ACR_HIGH, DZ_AMR_SC, "judge"};

    (void)state;
    assert_int_equal(dz_policy_match(s, "GET", "/a/persons/ab12cd3", &m), 0);
    self = m.route;
    /* {fin} without a role: a self-only lookup. */
    assert_true(self->self_only);
    expect_allow(eval(self, &a, NULL, m.fin));
    expect_allow(eval(self, &a, NULL, "ab12cd3"));
    expect_deny(eval(self, &a, NULL, "ZZ99YY8"), "forbidden");
    expect_deny(eval(self, &judge, NULL, "AB12CD3"), "forbidden"); /* a role does not widen it */
    expect_deny(eval(self, NULL, NULL, "AB12CD3"), "unauthenticated");

    assert_int_equal(dz_policy_match(s, "GET", "/", &m), 0);
    pub = m.route;
    assert_true(pub->is_public);
    assert_int_equal(pub->acr, DZ_ACR_NONE);
    expect_allow(eval(pub, NULL, NULL, NULL));
    expect_allow(eval(pub, &a, "ignored\n", NULL));
    dz_policy_set_free(s);

    /* self_only: true together with a role needs both. */
    s = load_text("u.yaml", "service: u\nregistered_as: U-1\nupstream: https://h.example\n"
                            "routes:\n  - path: /u/{fin}\n    methods: [GET]\n"
                            "    role: judge\n    self_only: true\n    purpose: optional\n");
    self = &dz_policy_service_at(s, 0)->routes[0];
    assert_true(self->self_only);
    expect_allow(eval(self, &judge, NULL, "JUDGE01"));
    expect_allow(eval(self, &judge, "fine", "JUDGE01"));
    expect_deny(eval(self, &judge, "\x7f", "JUDGE01"), "invalid_purpose");
    expect_deny(eval(self, &judge, NULL, "AB12CD3"), "forbidden");
    dz_policy_set_free(s);
}

static void test_names(void **state)
{
    enum dz_acr acr;

    (void)state;
    for (int i = 0; i < DZ_RELEASE_COUNT; i++)
        assert_int_equal(dz_policy_release_bit(dz_policy_release_names[i]), 1u << i);
    assert_int_equal(dz_policy_release_bit("phones"), DZ_RELEASE_PHONES);
    assert_int_equal(dz_policy_release_bit("Phones"), 0);
    assert_int_equal(dz_policy_release_bit(NULL), 0);
    assert_int_equal(dz_policy_method_bit("PATCH"), DZ_METHOD_PATCH);
    assert_int_equal(dz_policy_method_bit("CONNECT"), 0);
    assert_int_equal(dz_policy_amr_bit("qr"), DZ_AMR_QR);
    assert_int_equal(dz_policy_amr_bit("otp"), DZ_AMR_OTP);
    assert_int_equal(dz_policy_amr_bit("sms"), 0);
    assert_string_equal(dz_policy_amr_name(DZ_AMR_MOB), "mob");
    assert_null(dz_policy_amr_name(DZ_AMR_MOB | DZ_AMR_PIN));
    assert_int_equal(dz_policy_acr_parse("substantial", &acr), 0);
    assert_int_equal(acr, DZ_ACR_SUBSTANTIAL);
    assert_int_equal(dz_policy_acr_parse("none", &acr), DZ_ERR_INVAL);
    assert_int_equal(acr, DZ_ACR_NONE);
    assert_int_equal(dz_policy_acr_parse("High", &acr), DZ_ERR_INVAL);
    assert_string_equal(dz_policy_acr_name(DZ_ACR_HIGH), "high");
    assert_string_equal(dz_policy_acr_name((enum dz_acr)9), "none");
    assert_true(dz_policy_purpose_valid("case 2-101/2026"));
    assert_false(dz_policy_purpose_valid(""));
    assert_false(dz_policy_purpose_valid(NULL));
    assert_false(dz_policy_purpose_valid("tab\there"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_policy),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_base_good),
        cmocka_unit_test(test_assertion_signing),
        cmocka_unit_test(test_dir_good),
        cmocka_unit_test(test_dir_errors),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_eval_demo),
        cmocka_unit_test(test_eval_self_and_public),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
