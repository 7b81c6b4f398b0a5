/* test_metrics.c - the Prometheus metrics through their public interface:
 * the rendered text parses as exposition format 0.0.4 (every line a HELP or
 * TYPE comment or `name{labels} value`, label values escaped), counts from
 * several threads add up exactly, histograms are cumulative and agree with
 * their count, and label sets stay bounded (overflow into "other"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "core/metrics.h"

/* ---------------------------------------------- a small format parser --- */

struct sample {
    char name[128];
    char labels[512]; /* unescaped, "k=v," joined, in order */
    char value[64];
};

#define MAXS 4096
struct parsed {
    struct sample s[MAXS];
    size_t n;
    size_t help;
    size_t type;
};

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Parse one sample line strictly; false if it is not valid. */
static bool parse_sample(const char *p, struct sample *s)
{
    size_t n = 0;
    size_t ln = 0;

    memset(s, 0, sizeof(*s));
    if (!name_char(*p, true))
        return false;
    while (name_char(*p, n == 0) && n < sizeof(s->name) - 1)
        s->name[n++] = *p++;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            /* label name */
            if (!name_char(*p, true))
                return false;
            while (name_char(*p, false)) {
                if (ln >= sizeof(s->labels) - 4)
                    return false;
                s->labels[ln++] = *p++;
            }
            if (*p++ != '=' || *p++ != '"')
                return false;
            s->labels[ln++] = '=';
            while (*p != '"') {
                char c = *p++;
                if (c == '\0' || c == '\n')
                    return false;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        return false;
                }
                if (ln >= sizeof(s->labels) - 4)
                    return false;
                s->labels[ln++] = c;
            }
            p++;
            s->labels[ln++] = ',';
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p++ != ' ')
        return false;
    n = 0;
    while (*p && *p != '\n' && n < sizeof(s->value) - 1)
        s->value[n++] = *p++;
    if (n == 0 || *p)
        return false;
    if (strcmp(s->value, "+Inf") != 0) {
        char *end;
        strtod(s->value, &end);
        if (*end)
            return false;
    }
    return true;
}

static void parse_all(const char *text, struct parsed *out)
{
    const char *p = text;
    char line[1024];

    memset(out, 0, sizeof(*out));
    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);

        assert_non_null(nl);
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            out->help++;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *t = strrchr(line, ' ') + 1;
            assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0 ||
                        strcmp(t, "histogram") == 0);
            out->type++;
        } else {
            if (!parse_sample(line, &out->s[out->n]))
                fail_msg("not a sample line: %s", line);
            out->n++;
            assert_true(out->n < MAXS);
        }
        p = nl + 1;
    }
    assert_int_equal(out->help, out->type);
}

static const struct sample *find(const struct parsed *p, const char *name, const char *labels)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->s[i].name, name) == 0 && strcmp(p->s[i].labels, labels) == 0)
            return &p->s[i];
    }
    return NULL;
}

static uint64_t value_of(const struct parsed *p, const char *name, const char *labels)
{
    const struct sample *s = find(p, name, labels);

    if (!s)
        fail_msg("missing %s{%s}", name, labels);
    return strtoull(s->value, NULL, 10);
}

static uint64_t sum_of(const struct parsed *p, const char *name)
{
    uint64_t n = 0;

    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->s[i].name, name) == 0)
            n += strtoull(p->s[i].value, NULL, 10);
    }
    return n;
}

static struct parsed *render(const struct dz_metrics *m)
{
    struct dz_buf b;
    struct parsed *p = malloc(sizeof(*p));

    assert_non_null(p);
    dz_buf_init(&b, 4 << 20);
    assert_int_equal(dz_metrics_render(m, &b), 0);
    parse_all(dz_buf_cstr(&b), p);
    dz_buf_cleanup(&b);
    return p;
}

/* -------------------------------------------------------------- tests --- */

static uint64_t answer_42(void *arg)
{
    return (uint64_t)(uintptr_t)arg;
}

static int put_two_counters(void *arg, struct dz_buf *out)
{
    int rc = dz_metrics_put_family(out, "x_collected_total", "counter", "From a collector.");

    if (rc == 0)
        rc = dz_buf_appendf(out, "x_collected_total{who=\"");
    if (rc == 0)
        rc = dz_metrics_put_label(out, (const char *)arg);
    if (rc == 0)
        rc = dz_buf_appendf(out, "\"} 5\n");
    return rc;
}

static void test_format_and_values(void **state)
{
    struct dz_metrics *m = NULL;
    struct parsed *p;

    (void)state;
    assert_int_equal(dz_metrics_new(&m), 0);
    dz_metrics_request(m, "darvaza", "/healthz", "GET", 200, 500);      /* 0.0005 s */
    dz_metrics_request(m, "darvaza", "/healthz", "GET", 204, 1000);     /* exactly 0.001 */
    dz_metrics_request(m, "darvaza", "/healthz", "GET", 503, 20000000); /* over 10 s */
    dz_metrics_request(m, "court", "/notices/{fin}", "POST", 403, 30000);
    dz_metrics_request(m, "court", "odd\"route\\x", "GET", 200, 1); /* escaped */
    dz_metrics_upstream(m, "court", 300);
    dz_metrics_upstream(m, "court", 2000000);
    dz_metrics_login(m, "password", "ok");
    dz_metrics_login(m, "password", "ok");
    dz_metrics_login(m, "card", "certificate_revoked");
    dz_metrics_upstream_error(m, "registry", "timeout");
    dz_metrics_forward_refused(m, "registry", "in_flight");
    dz_metrics_forward_refused(m, "registry", "in_flight");
    dz_metrics_forward_refused(m, "court", "in_flight_caller");
    /* A kind not in the list counts as "other"; both kinds always show. */
    dz_metrics_audit_lost(m, "outcome");
    dz_metrics_audit_lost(m, "outcome");
    dz_metrics_audit_lost(m, "no such kind");
    assert_int_equal(dz_metrics_gauge_fn(m, "darvaza_open_connections", "Open connections.",
                                         answer_42, (void *)(uintptr_t)42),
                     0);
    assert_int_equal(
        dz_metrics_counter_fn(m, "darvaza_x_total", "A counter.", answer_42, (void *)(uintptr_t)7),
        0);
    assert_int_equal(dz_metrics_collector(m, put_two_counters, "a\"b"), 0);

    p = render(m);
    assert_int_equal(value_of(p, "darvaza_requests_total",
                              "service=darvaza,route=/healthz,method=GET,status=2xx,"),
                     2);
    assert_int_equal(value_of(p, "darvaza_requests_total",
                              "service=darvaza,route=/healthz,method=GET,status=5xx,"),
                     1);
    assert_int_equal(value_of(p, "darvaza_requests_total",
                              "service=court,route=/notices/{fin},method=POST,status=4xx,"),
                     1);
    assert_int_equal(value_of(p, "darvaza_requests_total",
                              "service=court,route=odd\"route\\x,method=GET,status=2xx,"),
                     1);
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_bucket",
                              "service=darvaza,route=/healthz,method=GET,le=0.001,"),
                     2);
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_bucket",
                              "service=darvaza,route=/healthz,method=GET,le=10,"),
                     2);
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_bucket",
                              "service=darvaza,route=/healthz,method=GET,le=+Inf,"),
                     3);
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_count",
                              "service=darvaza,route=/healthz,method=GET,"),
                     3);
    assert_string_equal(find(p, "darvaza_request_duration_seconds_sum",
                             "service=darvaza,route=/healthz,method=GET,")
                            ->value,
                        "20.001500");
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_bucket",
                              "service=court,route=/notices/{fin},method=POST,le=0.025,"),
                     0);
    assert_int_equal(value_of(p, "darvaza_request_duration_seconds_bucket",
                              "service=court,route=/notices/{fin},method=POST,le=0.05,"),
                     1);
    assert_int_equal(value_of(p, "darvaza_upstream_request_duration_seconds_bucket",
                              "service=court,le=0.00025,"),
                     0);
    assert_int_equal(
        value_of(p, "darvaza_upstream_request_duration_seconds_bucket", "service=court,le=0.0005,"),
        1);
    assert_int_equal(
        value_of(p, "darvaza_upstream_request_duration_seconds_bucket", "service=court,le=2.5,"),
        2);
    assert_int_equal(
        value_of(p, "darvaza_upstream_request_duration_seconds_count", "service=court,"), 2);
    assert_int_equal(value_of(p, "darvaza_logins_total", "means=password,result=ok,"), 2);
    assert_int_equal(value_of(p, "darvaza_logins_total", "means=card,result=certificate_revoked,"),
                     1);
    assert_int_equal(value_of(p, "darvaza_upstream_errors_total", "service=registry,kind=timeout,"),
                     1);
    assert_int_equal(
        value_of(p, "darvaza_forward_refused_total", "service=registry,reason=in_flight,"), 2);
    assert_int_equal(
        value_of(p, "darvaza_forward_refused_total", "service=court,reason=in_flight_caller,"), 1);
    assert_int_equal(value_of(p, "darvaza_audit_lost_total", "kind=outcome,"), 2);
    assert_int_equal(value_of(p, "darvaza_audit_lost_total", "kind=other,"), 1);
    assert_int_equal(value_of(p, "darvaza_open_connections", ""), 42);
    assert_int_equal(value_of(p, "darvaza_x_total", ""), 7);
    assert_int_equal(value_of(p, "x_collected_total", "who=a\"b,"), 5);
    assert_int_equal(p->type, 10);
    free(p);
    dz_metrics_free(m);
    dz_metrics_free(NULL);
}

/* Exact text for one small set: families in order, sorted labels, and the
 * type of each family (a counter registered as such is typed counter). */
static void test_exact_text(void **state)
{
    struct dz_metrics *m = NULL;
    struct dz_buf b;
    const char *t;

    (void)state;
    assert_int_equal(dz_metrics_new(&m), 0);
    dz_metrics_request(m, "s", "/b", "GET", 404, 2000);
    dz_metrics_request(m, "s", "/a", "GET", 200, 2000);
    dz_metrics_request(m, "s", "/b", "GET", 200, 2000);
    dz_metrics_request(m, "s", "/b", "BREW", 0, 2000); /* unknown method, nothing sent */
    assert_int_equal(dz_metrics_counter_fn(m, "darvaza_y_total", "Y.", answer_42, NULL), 0);
    dz_buf_init(&b, 1 << 20);
    assert_int_equal(dz_metrics_render(m, &b), 0);
    t = dz_buf_cstr(&b);
    assert_non_null(strstr(t, "# HELP darvaza_requests_total Requests answered, by service"));
    assert_non_null(strstr(
        t, "# TYPE darvaza_requests_total counter\n"
           "darvaza_requests_total{service=\"s\",route=\"/a\",method=\"GET\",status=\"2xx\"} 1\n"
           "darvaza_requests_total{service=\"s\",route=\"/b\",method=\"GET\",status=\"2xx\"} 1\n"
           "darvaza_requests_total{service=\"s\",route=\"/b\",method=\"GET\",status=\"4xx\"} 1\n"
           "darvaza_requests_total{service=\"s\",route=\"/b\",method=\"other\",status=\"other\"} "
           "1\n"));
    assert_non_null(strstr(t, "# TYPE darvaza_request_duration_seconds histogram\n"
                              "darvaza_request_duration_seconds_bucket{service=\"s\",route=\"/"
                              "a\",method=\"GET\",le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(t, "darvaza_request_duration_seconds_bucket{service=\"s\",route=\"/"
                              "a\",method=\"GET\",le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(
        t,
        "darvaza_request_duration_seconds_sum{service=\"s\",route=\"/b\",method=\"GET\"} "
        "0.004000\n"
        "darvaza_request_duration_seconds_count{service=\"s\",route=\"/b\",method=\"GET\"} 2\n"));
    assert_non_null(strstr(t, "# TYPE darvaza_upstream_request_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE darvaza_logins_total counter\n"));
    assert_non_null(strstr(t, "# TYPE darvaza_upstream_errors_total counter\n"));
    assert_non_null(strstr(t, "# TYPE darvaza_y_total counter\ndarvaza_y_total 0\n"));
    dz_buf_cleanup(&b);

    /* A buffer too small is an error, not a truncated scrape. */
    dz_buf_init(&b, 100);
    assert_int_equal(dz_metrics_render(m, &b), DZ_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    dz_buf_cleanup(&b);
    dz_metrics_free(m);
}

/* Label sets are bounded; overflow keeps totals. */
static void test_bounds(void **state)
{
    struct dz_metrics *m = NULL;
    struct parsed *p;
    char name[64];
    size_t routes = 0;
    size_t services = 0;
    char big[200];

    (void)state;
    assert_int_equal(dz_metrics_new(&m), 0);
    for (int i = 0; i < DZ_METRICS_ROUTES_MAX + 50; i++) {
        snprintf(name, sizeof(name), "/route-%d", i);
        dz_metrics_request(m, "svc", name, "GET", 200, 10);
    }
    /* Bad labels count as "other", never as themselves. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dz_metrics_request(m, "svc", big, "GET", 200, 10);
    dz_metrics_request(m, "svc", "new\nline", "GET", 200, 10);
    dz_metrics_request(m, NULL, NULL, NULL, 200, 10);
    dz_metrics_request(m, "", "", "", 200, 10);
    dz_metrics_request(m, "other", "other", "other", 200, 10);
    dz_metrics_request(m, "svc", "/route-0", "GET", -5, 10);
    dz_metrics_request(m, "svc", "/route-0", "GET", 1000, 10);
    /* Status classes, not statuses: 100 statuses make one series. */
    for (int s = 100; s < 200; s++)
        dz_metrics_request(m, "svc", "/route-1", "GET", s, 10);
    for (int i = 0; i < DZ_METRICS_SERVICES_MAX + 10; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        dz_metrics_upstream(m, name, 10);
    }
    dz_metrics_upstream(m, big, 10);
    for (int i = 0; i < DZ_METRICS_PAIRS_MAX + 20; i++) {
        snprintf(name, sizeof(name), "means-%d", i);
        dz_metrics_login(m, name, i % 2 ? "ok" : "denied");
    }
    dz_metrics_login(m, "\x01", "\xff");
    /* Fill the reserve too: distinct second labels after the cap. */
    for (int i = 0; i < 3 * DZ_METRICS_PAIRS_MAX; i++) {
        snprintf(name, sizeof(name), "kind-%d", i);
        dz_metrics_upstream_error(m, "svc", name);
    }

    p = render(m);
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->s[i].name, "darvaza_request_duration_seconds_count") == 0)
            routes++;
        if (strcmp(p->s[i].name, "darvaza_upstream_request_duration_seconds_count") == 0)
            services++;
    }
    assert_int_equal(routes, DZ_METRICS_ROUTES_MAX + 1); /* + the "other" series */
    assert_int_equal(services, DZ_METRICS_SERVICES_MAX + 1);
    assert_int_equal(
        value_of(p, "darvaza_upstream_request_duration_seconds_count", "service=other,"), 10 + 1);
    assert_int_equal(sum_of(p, "darvaza_requests_total"), DZ_METRICS_ROUTES_MAX + 50 + 7 + 100);
    assert_int_equal(
        value_of(p, "darvaza_requests_total", "service=other,route=other,method=other,status=2xx,"),
        50 + 5);
    assert_int_equal(value_of(p, "darvaza_requests_total",
                              "service=svc,route=/route-0,method=GET,status=other,"),
                     2);
    assert_int_equal(
        value_of(p, "darvaza_requests_total", "service=svc,route=/route-1,method=GET,status=1xx,"),
        100);
    assert_int_equal(sum_of(p, "darvaza_logins_total"), DZ_METRICS_PAIRS_MAX + 21);
    assert_int_equal(value_of(p, "darvaza_logins_total", "means=other,result=other,"), 1);
    assert_int_equal(sum_of(p, "darvaza_upstream_errors_total"), 3 * DZ_METRICS_PAIRS_MAX);
    assert_true(value_of(p, "darvaza_upstream_errors_total", "service=other,kind=other,") > 0);
    free(p);

    /* Gauges: bad names, duplicates, the cap. */
    assert_int_equal(dz_metrics_gauge_fn(m, "9bad", "h", answer_42, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_metrics_gauge_fn(m, "bad name", "h", answer_42, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_metrics_gauge_fn(m, "ok", "two\nlines", answer_42, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_metrics_gauge_fn(m, "ok", "h", NULL, NULL), DZ_ERR_INVAL);
    for (int i = 0; i < DZ_METRICS_GAUGES_MAX; i++) {
        snprintf(name, sizeof(name), "g_%d", i);
        assert_int_equal(dz_metrics_gauge_fn(m, name, "h\\elp", answer_42, NULL), 0);
    }
    assert_int_equal(dz_metrics_gauge_fn(m, "g_0", "h", answer_42, NULL), DZ_ERR_EXISTS);
    assert_int_equal(dz_metrics_counter_fn(m, "g_x", "h", answer_42, NULL), DZ_ERR_TOOBIG);
    for (int i = 0; i < DZ_METRICS_COLLECTORS_MAX; i++)
        assert_int_equal(dz_metrics_collector(m, put_two_counters, "c"), 0);
    assert_int_equal(dz_metrics_collector(m, put_two_counters, "c"), DZ_ERR_TOOBIG);
    assert_int_equal(dz_metrics_collector(m, NULL, NULL), DZ_ERR_INVAL);
    free(render(m));
    dz_metrics_free(m);
}

/* Several threads at once, also rendering meanwhile: totals are exact. */
struct targ {
    struct dz_metrics *m;
    int id;
};

enum { THREADS = 4, PER = 20000 };

static void *hammer(void *p)
{
    struct targ *t = p;
    static const char *const routes[] = {"/a", "/b", "/c", "/d", "/e"};
    static const int statuses[] = {200, 201, 302, 403, 404, 502};

    for (int i = 0; i < PER; i++) {
        dz_metrics_request(t->m, "svc", routes[(i + t->id) % 5], "GET", statuses[i % 6],
                           (uint64_t)(i % 7) * 3000);
        if (i % 4 == 0)
            dz_metrics_login(t->m, i % 8 ? "password" : "card", i % 3 ? "ok" : "denied");
        if (i % 10 == 0)
            dz_metrics_upstream_error(t->m, "registry", "timeout");
    }
    return NULL;
}

static void *scraper(void *p)
{
    struct dz_metrics *m = p;

    for (int i = 0; i < 20; i++) {
        struct parsed *x = render(m);
        free(x);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct dz_metrics *m = NULL;
    pthread_t th[THREADS + 1];
    struct targ ta[THREADS];
    struct parsed *p;
    uint64_t inf = 0;
    uint64_t count = 0;

    (void)state;
    assert_int_equal(dz_metrics_new(&m), 0);
    for (int i = 0; i < THREADS; i++) {
        ta[i] = (struct targ){m, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &ta[i]), 0);
    }
    assert_int_equal(pthread_create(&th[THREADS], NULL, scraper, m), 0);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(th[i], NULL);

    p = render(m);
    assert_int_equal(sum_of(p, "darvaza_requests_total"), THREADS * PER);
    assert_int_equal(sum_of(p, "darvaza_logins_total"), THREADS * (PER / 4));
    assert_int_equal(value_of(p, "darvaza_upstream_errors_total", "service=registry,kind=timeout,"),
                     THREADS * (PER / 10));
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->s[i].name, "darvaza_request_duration_seconds_bucket") == 0 &&
            strstr(p->s[i].labels, "le=+Inf"))
            inf += strtoull(p->s[i].value, NULL, 10);
        if (strcmp(p->s[i].name, "darvaza_request_duration_seconds_count") == 0)
            count += strtoull(p->s[i].value, NULL, 10);
    }
    assert_int_equal(inf, THREADS * PER);
    assert_int_equal(count, THREADS * PER);
    /* Each route: buckets never decrease. */
    for (size_t i = 1; i < p->n; i++) {
        const struct sample *a = &p->s[i - 1];
        const struct sample *b = &p->s[i];
        if (strcmp(a->name, "darvaza_request_duration_seconds_bucket") == 0 &&
            strcmp(b->name, a->name) == 0 && strncmp(a->labels, b->labels, 22) == 0)
            assert_true(strtoull(b->value, NULL, 10) >= strtoull(a->value, NULL, 10));
    }
    free(p);
    dz_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_values),
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
