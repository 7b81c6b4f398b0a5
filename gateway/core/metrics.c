/*
 * metrics.c - counters, histograms and gauges for GET /metrics (see
 * metrics.h).  It owns the numbers and their bounded label tables, and the
 * text exposition.  It must never take a lock or allocate on the request
 * path once a label has been seen, never let label values from outside
 * grow without bound, and never fail a request: a metric that cannot be
 * counted under its own label is counted under "other".
 *
 * Label tables are insert-only open-addressing hash tables whose slots are
 * published with one compare-and-swap each, so readers need no lock and a
 * slot's index stays valid for the life of the set.  Counters are relaxed
 * atomics: one cache-line bounce per request among the workers, which is
 * far below the cost of the request itself (per-worker shards would remove
 * it if profiles ever show it).
 */
#include "core/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/histo.h"

#include "base/compat.h"

/* Twice the cap: the load factor stays at most 1/2, so linear probes stay
 * short, and a forced "other" key still finds a free slot at the cap. */
#define ROUTE_SLOTS (2 * DZ_METRICS_ROUTES_MAX)
#define PAIR_SLOTS (2 * DZ_METRICS_PAIRS_MAX)
#define SERVICE_SLOTS (2 * DZ_METRICS_SERVICES_MAX)
#define NCLASSES 6 /* "other" (no status sent), 1xx .. 5xx */
#define KEY_MAX (3 * DZ_METRICS_LABEL_MAX + 3)

static const char *const class_name[NCLASSES] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

typedef atomic_uint_fast64_t counter;

/* Insert-only string set; a key's slot index never changes. */
struct table {
    size_t nslots; /* a power of two */
    size_t cap;    /* keys accepted before lookups start failing */
    atomic_size_t count;
    _Atomic(char *) *keys;
};

/* One (service, route, method) series: answers by status class and their
 * durations. */
struct route {
    counter cls[NCLASSES];
    struct dz_histo h;
};

/* darvaza_audit_lost_total's kinds, a fixed list: every kind is rendered
 * from the start (at 0), so an alert on its increase needs no sample to
 * appear first.  Index 0 takes the kinds not listed. */
static const char *const audit_lost_kinds[] = {"other", "outcome"};
#define AUDIT_LOST_KINDS (sizeof(audit_lost_kinds) / sizeof(audit_lost_kinds[0]))

/* A counter with two labels; keys are "first\x01second". */
struct pairs {
    struct table t;
    counter *n;
    counter full; /* ("other","other") when even the reserve is used up */
};

struct gauge {
    const char *type; /* "gauge" or "counter" */
    char name[64];
    char help[128];
    uint64_t (*fn)(void *arg);
    void *arg;
};

struct collector {
    int (*fn)(void *arg, struct dz_buf *out);
    void *arg;
};

struct dz_metrics {
    struct table routes; /* keys "service\x01route\x01method" */
    struct route *route; /* one per routes slot */
    struct route other;
    struct table services;       /* upstream durations, keys service names */
    struct dz_histo *upstream_h; /* one per services slot */
    struct dz_histo upstream_other;
    struct pairs logins;
    struct pairs upstream;
    struct pairs refused; /* forwards refused for room, by service and reason */
    counter audit_lost[AUDIT_LOST_KINDS];
    pthread_mutex_t gauge_mu; /* serialises registration only */
    struct gauge gauges[DZ_METRICS_GAUGES_MAX];
    atomic_size_t ngauges; /* entries below are complete (release/acquire) */
    struct collector collectors[DZ_METRICS_COLLECTORS_MAX];
    atomic_size_t ncollectors; /* as ngauges */
};

/* ------------------------------------------------------------- tables --- */

/* Unkeyed hash: keys are route, service and outcome names from the
 * config and the code, not free text from clients, and the caps bound
 * what a run of collisions could cost anyway. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int table_init(struct table *t, size_t nslots, size_t cap)
{
    t->nslots = nslots;
    t->cap = cap;
    atomic_init(&t->count, 0);
    t->keys = calloc(nslots, sizeof(*t->keys));
    return t->keys ? 0 : DZ_ERR_NOMEM;
}

static void table_cleanup(struct table *t)
{
    if (!t->keys)
        return;
    for (size_t i = 0; i < t->nslots; i++)
        free(atomic_load_explicit(&t->keys[i], memory_order_relaxed));
    free(t->keys);
    t->keys = NULL;
}

/* Slot of key, inserting it when new and (force or) below the cap.
 * -1 when the table is full or at its cap, or out of memory. */
static long table_find(struct table *t, const char *key, bool force)
{
    size_t mask = t->nslots - 1;
    size_t h = (size_t)fnv1a(key);

    for (size_t i = 0; i < t->nslots; i++) {
        size_t idx = (h + i) & mask;
        char *k = atomic_load_explicit(&t->keys[idx], memory_order_acquire);

        if (!k) {
            char *mine;
            if (!force && atomic_load_explicit(&t->count, memory_order_relaxed) >= t->cap)
                return -1;
            mine = strdup(key);
            if (!mine)
                return -1;
            if (atomic_compare_exchange_strong_explicit(
                    &t->keys[idx], &k, mine, memory_order_acq_rel, memory_order_acquire)) {
                atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
                return (long)idx;
            }
            free(mine); /* another thread took the slot: k is its key now */
        }
        /* Keys are never removed, so a probe sequence has no holes: the first
         * empty slot ends the search, and a key found once stays at idx. */
        if (strcmp(k, key) == 0)
            return (long)idx;
    }
    return -1;
}

/* 1..DZ_METRICS_LABEL_MAX printable ASCII bytes. */
static bool label_ok(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        if (n >= DZ_METRICS_LABEL_MAX || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return false;
    }
    return n > 0;
}

/* ---------------------------------------------------------- lifecycle --- */

static int pairs_init(struct pairs *p)
{
    int rc = table_init(&p->t, PAIR_SLOTS, DZ_METRICS_PAIRS_MAX);

    if (rc != 0)
        return rc;
    p->n = calloc(PAIR_SLOTS, sizeof(*p->n));
    atomic_init(&p->full, 0);
    return p->n ? 0 : DZ_ERR_NOMEM;
}

static void pairs_cleanup(struct pairs *p)
{
    table_cleanup(&p->t);
    free(p->n);
    p->n = NULL;
}

int dz_metrics_new(struct dz_metrics **out)
{
    struct dz_metrics *m = NULL;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    /* calloc gives every atomic its zero value (all-zero representation). */
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    if (pthread_mutex_init(&m->gauge_mu, NULL) != 0) {
        free(m);
        m = NULL;
        goto out;
    }
    if (table_init(&m->routes, ROUTE_SLOTS, DZ_METRICS_ROUTES_MAX) != 0)
        goto out;
    m->route = calloc(ROUTE_SLOTS, sizeof(*m->route));
    if (!m->route)
        goto out;
    if (table_init(&m->services, SERVICE_SLOTS, DZ_METRICS_SERVICES_MAX) != 0)
        goto out;
    m->upstream_h = calloc(SERVICE_SLOTS, sizeof(*m->upstream_h));
    if (!m->upstream_h)
        goto out;
    if (pairs_init(&m->logins) != 0 || pairs_init(&m->upstream) != 0 ||
        pairs_init(&m->refused) != 0)
        goto out;
    *out = m;
    m = NULL;
    rc = 0;
out:
    dz_metrics_free(m);
    return rc;
}

void dz_metrics_free(struct dz_metrics *m)
{
    if (!m)
        return;
    table_cleanup(&m->routes);
    free(m->route);
    table_cleanup(&m->services);
    free(m->upstream_h);
    pairs_cleanup(&m->logins);
    pairs_cleanup(&m->upstream);
    pairs_cleanup(&m->refused);
    pthread_mutex_destroy(&m->gauge_mu);
    free(m);
}

/* ------------------------------------------------------------ counting --- */

static void add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Methods are a fixed list: a client may send any token as a method, and
 * each would otherwise be a new series. */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

    for (size_t i = 0; method && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(method, known[i]) == 0)
            return known[i];
    }
    return "other";
}

void dz_metrics_request(struct dz_metrics *m, const char *service, const char *route,
                        const char *method, int status, uint64_t duration_us)
{
    struct route *r = &m->other;
    char key[KEY_MAX];

    if (!label_ok(service))
        service = "other";
    if (!label_ok(route))
        route = "other";
    snprintf(key, sizeof(key), "%s\x01%s\x01%s", service, route, method_label(method));
    /* Past the cap everything lands in one ("other","other","other") series:
     * a scrape's size stays bounded whatever the policies hold.  Twice the
     * cap in slots, so the forced key always finds one. */
    long idx = table_find(&m->routes, key, false);
    if (idx < 0)
        idx = table_find(&m->routes, "other\x01other\x01other", true);
    if (idx >= 0) /* else out of memory: m->other, rendered as that series */
        r = &m->route[idx];
    add(&r->cls[status >= 100 && status <= 599 ? status / 100 : 0], 1);
    dz_histo_observe(&r->h, duration_us);
}

void dz_metrics_upstream(struct dz_metrics *m, const char *service, uint64_t duration_us)
{
    struct dz_histo *h = &m->upstream_other;
    long idx = label_ok(service) && strcmp(service, "other") != 0
                   ? table_find(&m->services, service, false)
                   : -1;

    if (idx >= 0)
        h = &m->upstream_h[idx];
    dz_histo_observe(h, duration_us);
}

static void pairs_inc(struct pairs *p, const char *a, const char *b)
{
    char key[2 * DZ_METRICS_LABEL_MAX + 2];
    long idx;

    if (!label_ok(a))
        a = "other";
    if (!label_ok(b))
        b = "other";
    snprintf(key, sizeof(key), "%s\x01%s", a, b);
    idx = table_find(&p->t, key, false);
    if (idx < 0) {
        /* Over the cap: keep the second label, fold the first. */
        snprintf(key, sizeof(key), "other\x01%s", b);
        idx = table_find(&p->t, key, true);
    }
    if (idx < 0)
        add(&p->full, 1);
    else
        add(&p->n[idx], 1);
}

void dz_metrics_login(struct dz_metrics *m, const char *means, const char *result)
{
    pairs_inc(&m->logins, means, result);
}

void dz_metrics_upstream_error(struct dz_metrics *m, const char *service, const char *kind)
{
    pairs_inc(&m->upstream, service, kind);
}

void dz_metrics_forward_refused(struct dz_metrics *m, const char *service, const char *reason)
{
    pairs_inc(&m->refused, service, reason);
}

void dz_metrics_audit_lost(struct dz_metrics *m, const char *kind)
{
    size_t i = 0;

    for (size_t k = 1; k < AUDIT_LOST_KINDS; k++)
        if (kind && strcmp(kind, audit_lost_kinds[k]) == 0)
            i = k;
    add(&m->audit_lost[i], 1);
}

/* ------------------------------------------------------------- gauges --- */

static bool metric_name_ok(const char *s)
{
    size_t n;

    if (!s || !*s || strlen(s) > 63)
        return false;
    for (n = 0; s[n]; n++) {
        char c = s[n];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(n > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static int register_fn(struct dz_metrics *m, const char *type, const char *name, const char *help,
                       uint64_t (*fn)(void *arg), void *arg)
{
    size_t n;
    int rc = 0;

    if (!m || !fn || !metric_name_ok(name) || !help || strlen(help) > 127 || strchr(help, '\n'))
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&m->gauge_mu);
    n = atomic_load_explicit(&m->ngauges, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->gauges[i].name, name) == 0)
            rc = DZ_ERR_EXISTS;
    }
    if (rc == 0 && n == DZ_METRICS_GAUGES_MAX)
        rc = DZ_ERR_TOOBIG;
    if (rc == 0) {
        struct gauge *g = &m->gauges[n];
        snprintf(g->name, sizeof(g->name), "%s", name);
        snprintf(g->help, sizeof(g->help), "%s", help);
        g->type = type;
        g->fn = fn;
        g->arg = arg;
        /* Publish only a complete entry to concurrent renders. */
        atomic_store_explicit(&m->ngauges, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&m->gauge_mu);
    return rc;
}

int dz_metrics_gauge_fn(struct dz_metrics *m, const char *name, const char *help,
                        uint64_t (*fn)(void *arg), void *arg)
{
    return register_fn(m, "gauge", name, help, fn, arg);
}

int dz_metrics_counter_fn(struct dz_metrics *m, const char *name, const char *help,
                          uint64_t (*fn)(void *arg), void *arg)
{
    return register_fn(m, "counter", name, help, fn, arg);
}

int dz_metrics_collector(struct dz_metrics *m, int (*fn)(void *arg, struct dz_buf *out), void *arg)
{
    size_t n;
    int rc = 0;

    if (!m || !fn)
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&m->gauge_mu);
    n = atomic_load_explicit(&m->ncollectors, memory_order_relaxed);
    if (n == DZ_METRICS_COLLECTORS_MAX) {
        rc = DZ_ERR_TOOBIG;
    } else {
        m->collectors[n] = (struct collector){fn, arg};
        atomic_store_explicit(&m->ncollectors, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&m->gauge_mu);
    return rc;
}

/* ------------------------------------------------------------- render --- */

/* The Prometheus text format escapes \ and newline in HELP, and also "
 * inside label values; anything else goes out as is (label_ok already
 * kept labels to printable ASCII). */
static int put_escaped(struct dz_buf *out, const char *s, bool quote)
{
    int rc = 0;

    for (; *s && rc == 0; s++) {
        if (*s == '\\')
            rc = dz_buf_append(out, "\\\\", 2);
        else if (*s == '\n')
            rc = dz_buf_append(out, "\\n", 2);
        else if (*s == '"' && quote)
            rc = dz_buf_append(out, "\\\"", 2);
        else
            rc = dz_buf_append(out, s, 1);
    }
    return rc;
}

int dz_metrics_put_family(struct dz_buf *out, const char *name, const char *type, const char *help)
{
    int rc = dz_buf_appendf(out, "# HELP %s ", name);

    if (rc == 0)
        rc = put_escaped(out, help, false);
    if (rc == 0)
        rc = dz_buf_appendf(out, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* name{l1="v1"[,l2="v2"][,extra]} value\n ; l2 NULL for one label. */
static int put_sample(struct dz_buf *out, const char *name, const char *l1, const char *v1,
                      const char *l2, const char *v2, const char *extra, uint64_t value)
{
    int rc = dz_buf_appendf(out, "%s{%s=\"", name, l1);

    if (rc == 0)
        rc = put_escaped(out, v1, true);
    if (rc == 0 && l2) {
        rc = dz_buf_appendf(out, "\",%s=\"", l2);
        if (rc == 0)
            rc = put_escaped(out, v2, true);
    }
    if (rc == 0)
        rc = dz_buf_appendf(out, "\"%s} %" PRIu64 "\n", extra ? extra : "", value);
    return rc;
}

int dz_metrics_put_label(struct dz_buf *out, const char *value)
{
    return put_escaped(out, value, true);
}

int dz_metrics_put_histo(struct dz_buf *out, const char *name, const char *labels,
                         const struct dz_histo *h)
{
    const char *sep = labels && labels[0] ? "," : "";
    uint64_t cum = 0;
    uint64_t sum_us;
    int rc = 0;

    if (!labels)
        labels = "";
    for (unsigned b = 0; b < DZ_HISTO_BUCKETS && rc == 0; b++) {
        cum += atomic_load_explicit((atomic_uint_fast64_t *)&h->bucket[b], memory_order_relaxed);
        rc = dz_buf_appendf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
                            dz_histo_le[b], cum);
    }
    sum_us = atomic_load_explicit((atomic_uint_fast64_t *)&h->sum_us, memory_order_relaxed);
    /* Seconds from integer microseconds, without a double: a large sum keeps
     * every digit.  _count is the +Inf bucket as read above, so the two
     * always agree. */
    if (rc == 0)
        rc = dz_buf_appendf(out, "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n", name,
                            labels[0] ? "{" : "", labels, labels[0] ? "}" : "", sum_us / 1000000,
                            sum_us % 1000000);
    if (rc == 0)
        rc = dz_buf_appendf(out, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
                            labels[0] ? "}" : "", cum);
    return rc;
}

struct named {
    const char *name;
    const struct route *r;
    uint64_t n;
    const char *second; /* pairs: after the separator */
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a;
    const struct named *y = b;
    int c = strcmp(x->name, y->name);

    if (c == 0 && x->second && y->second)
        c = strcmp(x->second, y->second);
    return c;
}

static uint64_t load(const counter *c)
{
    return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

static uint64_t route_total(const struct route *r)
{
    uint64_t n = 0;

    for (unsigned k = 0; k < NCLASSES; k++)
        n += load(&r->cls[k]);
    return n;
}

/* A route series with its key split into its three labels. */
struct route_row {
    char key[KEY_MAX]; /* "service\0route\0method\0" */
    size_t route_off;  /* offsets, not pointers: qsort moves the rows */
    size_t method_off;
    const struct route *r;
};

#define ROW_SERVICE(row) ((row)->key)
#define ROW_ROUTE(row) ((row)->key + (row)->route_off)
#define ROW_METHOD(row) ((row)->key + (row)->method_off)

static int cmp_row(const void *a, const void *b)
{
    const struct route_row *x = a;
    const struct route_row *y = b;
    int c = strcmp(ROW_SERVICE(x), ROW_SERVICE(y));

    if (c == 0)
        c = strcmp(ROW_ROUTE(x), ROW_ROUTE(y));
    return c ? c : strcmp(ROW_METHOD(x), ROW_METHOD(y));
}

/* Series in label order.  *out malloc'd. */
static int sorted_routes(const struct dz_metrics *m, struct route_row **out, size_t *n_out)
{
    struct route_row *v = calloc(ROUTE_SLOTS + 1, sizeof(*v));
    bool has_other = false;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (!v)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < ROUTE_SLOTS; i++) {
        const char *k = atomic_load_explicit(&m->routes.keys[i], memory_order_acquire);
        char *a;
        char *b;
        if (!k)
            continue;
        snprintf(v[n].key, sizeof(v[n].key), "%s", k);
        a = strchr(v[n].key, '\x01');
        b = a ? strchr(a + 1, '\x01') : NULL;
        if (!b)
            continue;
        *a = *b = '\0';
        v[n].route_off = (size_t)(a + 1 - v[n].key);
        v[n].method_off = (size_t)(b + 1 - v[n].key);
        v[n].r = &m->route[i];
        has_other |= strcmp(k, "other\x01other\x01other") == 0;
        n++;
    }
    if (!has_other && route_total(&m->other) > 0)
        v[n++] = (struct route_row){"other\0other\0other", 6, 12, &m->other};
    qsort(v, n, sizeof(*v), cmp_row);
    *out = v;
    *n_out = n;
    return 0;
}

/* service="a",route="b",method="c" escaped into buf (bounded: labels are
 * at most DZ_METRICS_LABEL_MAX bytes, each doubling at worst). */
static void row_labels(const struct route_row *row, char *buf, size_t len)
{
    struct dz_buf b;

    dz_buf_init(&b, len - 1);
    if (dz_buf_appendf(&b, "service=\"") == 0 && dz_metrics_put_label(&b, ROW_SERVICE(row)) == 0 &&
        dz_buf_appendf(&b, "\",route=\"") == 0 && dz_metrics_put_label(&b, ROW_ROUTE(row)) == 0 &&
        dz_buf_appendf(&b, "\",method=\"") == 0 && dz_metrics_put_label(&b, ROW_METHOD(row)) == 0 &&
        dz_buf_appendf(&b, "\"") == 0 && b.len < len) {
        memcpy(buf, b.data, b.len);
        buf[b.len] = '\0';
    } else {
        snprintf(buf, len, "service=\"other\",route=\"other\",method=\"other\"");
    }
    dz_buf_cleanup(&b);
}

#define ROW_LABELS_MAX (6 * DZ_METRICS_LABEL_MAX + 40)

static int render_requests(const struct route_row *v, size_t n, struct dz_buf *out)
{
    static const char name[] = "darvaza_requests_total";
    int rc = dz_metrics_put_family(out, name, "counter",
                                   "Requests answered, by service, route template, method and "
                                   "status class.");

    for (size_t i = 0; i < n && rc == 0; i++) {
        char labels[ROW_LABELS_MAX];

        row_labels(&v[i], labels, sizeof(labels));
        for (unsigned k = 0; k < NCLASSES && rc == 0; k++) {
            uint64_t c = load(&v[i].r->cls[k]);
            if (c > 0)
                rc = dz_buf_appendf(out, "%s{%s,status=\"%s\"} %" PRIu64 "\n", name, labels,
                                    class_name[k], c);
        }
    }
    return rc;
}

static int render_durations(const struct route_row *v, size_t n, struct dz_buf *out)
{
    static const char name[] = "darvaza_request_duration_seconds";
    int rc = dz_metrics_put_family(out, name, "histogram",
                                   "Time from a request's arrival to its answer, by service, "
                                   "route template and method.");

    for (size_t i = 0; i < n && rc == 0; i++) {
        char labels[ROW_LABELS_MAX];

        row_labels(&v[i], labels, sizeof(labels));
        rc = dz_metrics_put_histo(out, name, labels, &v[i].r->h);
    }
    return rc;
}

static int render_upstream(const struct dz_metrics *m, struct dz_buf *out)
{
    static const char name[] = "darvaza_upstream_request_duration_seconds";
    struct named *v = calloc(SERVICE_SLOTS + 1, sizeof(*v));
    size_t n = 0;
    int rc;

    if (!v)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < SERVICE_SLOTS; i++) {
        const char *k = atomic_load_explicit(&m->services.keys[i], memory_order_acquire);
        if (k)
            v[n++] = (struct named){k, NULL, i, NULL};
    }
    if (dz_histo_count(&m->upstream_other) > 0)
        v[n++] = (struct named){"other", NULL, SERVICE_SLOTS, NULL};
    qsort(v, n, sizeof(*v), cmp_named);
    rc = dz_metrics_put_family(out, name, "histogram",
                               "Time a back end took, from the request sent to its answer's "
                               "head, by policy service.");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char labels[2 * DZ_METRICS_LABEL_MAX + 16];
        struct dz_buf b;

        dz_buf_init(&b, sizeof(labels) - 1);
        if (dz_buf_appendf(&b, "service=\"") != 0 || dz_metrics_put_label(&b, v[i].name) != 0 ||
            dz_buf_appendf(&b, "\"") != 0) {
            dz_buf_cleanup(&b);
            continue;
        }
        memcpy(labels, b.data, b.len);
        labels[b.len] = '\0';
        dz_buf_cleanup(&b);
        rc = dz_metrics_put_histo(out, name, labels,
                                  v[i].n == SERVICE_SLOTS ? &m->upstream_other
                                                          : &m->upstream_h[v[i].n]);
    }
    free(v);
    return rc;
}

static int render_pairs(const struct pairs *p, const char *name, const char *help, const char *l1,
                        const char *l2, struct dz_buf *out)
{
    struct named *v = calloc(PAIR_SLOTS + 1, sizeof(*v));
    char(*split)[2 * DZ_METRICS_LABEL_MAX + 2] = NULL;
    uint64_t full = load(&p->full);
    size_t n = 0;
    int rc = DZ_ERR_NOMEM;

    split = calloc(PAIR_SLOTS, sizeof(*split));
    if (!v || !split)
        goto out;
    for (size_t i = 0; i < PAIR_SLOTS; i++) {
        const char *k = atomic_load_explicit(&p->t.keys[i], memory_order_acquire);
        char *sep;
        if (!k)
            continue;
        snprintf(split[n], sizeof(split[n]), "%s", k);
        sep = strchr(split[n], '\x01');
        if (!sep)
            continue;
        *sep = '\0';
        v[n] = (struct named){split[n], NULL, load(&p->n[i]), sep + 1};
        if (full > 0 && strcmp(v[n].name, "other") == 0 && strcmp(v[n].second, "other") == 0) {
            v[n].n += full;
            full = 0;
        }
        n++;
    }
    if (full > 0)
        v[n++] = (struct named){"other", NULL, full, "other"};
    qsort(v, n, sizeof(*v), cmp_named);
    rc = dz_metrics_put_family(out, name, "counter", help);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = put_sample(out, name, l1, v[i].name, l2, v[i].second, NULL, v[i].n);
out:
    free(split);
    free(v);
    return rc;
}

static int render_audit_lost(const struct dz_metrics *m, struct dz_buf *out)
{
    int rc = dz_metrics_put_family(out, "darvaza_audit_lost_total", "counter",
                                   "Audit lines lost after their action had happened, by kind.");

    for (size_t k = 0; k < AUDIT_LOST_KINDS && rc == 0; k++)
        rc = dz_buf_appendf(out, "darvaza_audit_lost_total{kind=\"%s\"} %" PRIu64 "\n",
                            audit_lost_kinds[k], load(&m->audit_lost[k]));
    return rc;
}

int dz_metrics_render(const struct dz_metrics *m, struct dz_buf *out)
{
    struct route_row *routes = NULL;
    size_t nroutes = 0;
    size_t ngauges;
    size_t ncollectors;
    int rc;

    rc = sorted_routes(m, &routes, &nroutes);
    if (rc != 0)
        goto out;
    rc = render_requests(routes, nroutes, out);
    if (rc == 0)
        rc = render_durations(routes, nroutes, out);
    if (rc == 0)
        rc = render_upstream(m, out);
    if (rc == 0)
        rc = render_pairs(&m->logins, "darvaza_logins_total",
                          "Login attempts, by means and result.", "means", "result", out);
    if (rc == 0)
        rc = render_pairs(&m->upstream, "darvaza_upstream_errors_total",
                          "Failed exchanges with back ends, by service and kind.", "service",
                          "kind", out);
    if (rc == 0)
        rc = render_pairs(&m->refused, "darvaza_forward_refused_total",
                          "Forwards refused before the back end for want of room, by service and "
                          "reason.",
                          "service", "reason", out);
    if (rc == 0)
        rc = render_audit_lost(m, out);
    ngauges = atomic_load_explicit((atomic_size_t *)&m->ngauges, memory_order_acquire);
    for (size_t i = 0; i < ngauges && rc == 0; i++) {
        const struct gauge *g = &m->gauges[i];
        rc = dz_metrics_put_family(out, g->name, g->type, g->help);
        if (rc == 0)
            rc = dz_buf_appendf(out, "%s %" PRIu64 "\n", g->name, g->fn(g->arg));
    }
    ncollectors = atomic_load_explicit((atomic_size_t *)&m->ncollectors, memory_order_acquire);
    for (size_t i = 0; i < ncollectors && rc == 0; i++)
        rc = m->collectors[i].fn(m->collectors[i].arg, out);
out:
    free(routes);
    return rc;
}
