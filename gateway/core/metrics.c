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

#include "base/compat.h"

/* Twice the cap: the load factor stays at most 1/2, so linear probes stay
 * short, and a forced "other" key still finds a free slot at the cap. */
#define ROUTE_SLOTS (2 * DZ_METRICS_ROUTES_MAX)
#define STATUS_SLOTS 32
#define PAIR_SLOTS (2 * DZ_METRICS_PAIRS_MAX)
#define NBUCKETS 14 /* 13 bounds and +Inf */

/* Prometheus' default buckets (5 ms .. 10 s) with 1 ms and 2.5 ms added
 * below, so answers faster than the default's first bound (static files,
 * refusals) are still told apart. */
static const uint64_t bucket_us[NBUCKETS - 1] = {1000,    2500,    5000,    10000,  25000,
                                                 50000,   100000,  250000,  500000, 1000000,
                                                 2500000, 5000000, 10000000};
static const char *const bucket_le[NBUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                "2.5",   "5",      "10",    "+Inf"};

typedef atomic_uint_fast64_t counter;

/* Insert-only string set; a key's slot index never changes. */
struct table {
    size_t nslots; /* a power of two */
    size_t cap;    /* keys accepted before lookups start failing */
    atomic_size_t count;
    _Atomic(char *) *keys;
};

struct route {
    atomic_uint st_key[STATUS_SLOTS]; /* status + 1; 0 = empty slot */
    counter st_n[STATUS_SLOTS];
    atomic_uint st_count;
    counter st_other;
    counter bucket[NBUCKETS]; /* not cumulative; summed at render */
    counter sum_us;
};

/* A counter with two labels; keys are "first\x01second". */
struct pairs {
    struct table t;
    counter *n;
    counter full; /* ("other","other") when even the reserve is used up */
};

struct gauge {
    char name[64];
    char help[128];
    uint64_t (*fn)(void *arg);
    void *arg;
};

struct dz_metrics {
    struct table routes;
    struct route *route; /* one per routes slot */
    struct route other;
    struct pairs logins;
    struct pairs upstream;
    pthread_mutex_t gauge_mu; /* serialises registration only */
    struct gauge gauges[DZ_METRICS_GAUGES_MAX];
    atomic_size_t ngauges; /* entries below are complete (release/acquire) */
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
    if (pairs_init(&m->logins) != 0 || pairs_init(&m->upstream) != 0)
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
    pairs_cleanup(&m->logins);
    pairs_cleanup(&m->upstream);
    pthread_mutex_destroy(&m->gauge_mu);
    free(m);
}

/* ------------------------------------------------------------ counting --- */

static void add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void status_inc(struct route *r, int status)
{
    /* +1 because 0 marks an empty slot; STATUS_SLOTS is larger than
     * DZ_METRICS_STATUS_MAX so probing never wraps a full table. */
    unsigned key = (unsigned)status + 1;

    for (unsigned i = 0; i < STATUS_SLOTS; i++) {
        unsigned idx = ((unsigned)status + i) % STATUS_SLOTS;
        unsigned k = atomic_load_explicit(&r->st_key[idx], memory_order_acquire);

        if (k == 0) {
            if (atomic_load_explicit(&r->st_count, memory_order_relaxed) >= DZ_METRICS_STATUS_MAX)
                break;
            if (atomic_compare_exchange_strong_explicit(
                    &r->st_key[idx], &k, key, memory_order_acq_rel, memory_order_acquire)) {
                atomic_fetch_add_explicit(&r->st_count, 1, memory_order_relaxed);
                k = key;
            }
        }
        if (k == key) {
            add(&r->st_n[idx], 1);
            return;
        }
    }
    add(&r->st_other, 1);
}

void dz_metrics_request(struct dz_metrics *m, const char *route, int status, uint64_t duration_us)
{
    struct route *r = &m->other;
    unsigned b = 0;

    /* A caller's literal "other" must not become a second "other" series. */
    if (label_ok(route) && strcmp(route, "other") != 0) {
        long idx = table_find(&m->routes, route, false);
        if (idx >= 0)
            r = &m->route[idx];
    }
    /* -1 would make status + 1 the empty-slot marker 0 in status_inc, and a
     * huge value a bogus series: anything not an HTTP status is 0. */
    if (status < 0 || status > 999)
        status = 0;
    status_inc(r, status);
    while (b < NBUCKETS - 1 && duration_us > bucket_us[b])
        b++;
    /* One bucket per request, not every bucket above it: the cumulative
     * "le" counts are summed at render, off the request path. */
    add(&r->bucket[b], 1);
    add(&r->sum_us, duration_us);
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

int dz_metrics_gauge_fn(struct dz_metrics *m, const char *name, const char *help,
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
        g->fn = fn;
        g->arg = arg;
        /* Publish only a complete entry to concurrent renders. */
        atomic_store_explicit(&m->ngauges, n + 1, memory_order_release);
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

static int put_family(struct dz_buf *out, const char *name, const char *type, const char *help)
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

    for (unsigned b = 0; b < NBUCKETS; b++)
        n += load(&r->bucket[b]);
    return n;
}

/* Routes in name order, "other" included when used.  *out malloc'd. */
static int sorted_routes(const struct dz_metrics *m, struct named **out, size_t *n_out)
{
    struct named *v = calloc(ROUTE_SLOTS + 1, sizeof(*v));
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (!v)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < ROUTE_SLOTS; i++) {
        const char *k = atomic_load_explicit(&m->routes.keys[i], memory_order_acquire);
        if (k)
            v[n++] = (struct named){k, &m->route[i], 0, NULL};
    }
    if (route_total(&m->other) > 0 || load(&m->other.st_other) > 0)
        v[n++] = (struct named){"other", &m->other, 0, NULL};
    qsort(v, n, sizeof(*v), cmp_named);
    *out = v;
    *n_out = n;
    return 0;
}

struct status_n {
    unsigned status;
    uint64_t n;
};

static int cmp_status(const void *a, const void *b)
{
    const struct status_n *x = a;
    const struct status_n *y = b;

    return (x->status > y->status) - (x->status < y->status);
}

static int render_requests(const struct named *v, size_t n, struct dz_buf *out)
{
    static const char name[] = "darvaza_requests_total";
    int rc = put_family(out, name, "counter",
                        "Requests answered, by route (policy rule or builtin endpoint) and "
                        "HTTP status.");

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct status_n st[STATUS_SLOTS];
        size_t ns = 0;
        uint64_t other;

        for (unsigned s = 0; s < STATUS_SLOTS; s++) {
            unsigned k =
                atomic_load_explicit((atomic_uint *)&v[i].r->st_key[s], memory_order_acquire);
            if (k)
                st[ns++] = (struct status_n){k - 1, load(&v[i].r->st_n[s])};
        }
        qsort(st, ns, sizeof(st[0]), cmp_status);
        for (size_t s = 0; s < ns && rc == 0; s++) {
            char code[8];
            snprintf(code, sizeof(code), "%u", st[s].status);
            rc = put_sample(out, name, "route", v[i].name, "status", code, NULL, st[s].n);
        }
        other = load(&v[i].r->st_other);
        if (rc == 0 && other > 0)
            rc = put_sample(out, name, "route", v[i].name, "status", "other", NULL, other);
    }
    return rc;
}

static int render_durations(const struct named *v, size_t n, struct dz_buf *out)
{
    static const char name[] = "darvaza_request_duration_seconds";
    int rc = put_family(out, name, "histogram",
                        "Time from a request's arrival to its answer, by route.");

    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t cum = 0;
        uint64_t sum_us = load(&v[i].r->sum_us);
        char extra[32];

        for (unsigned b = 0; b < NBUCKETS && rc == 0; b++) {
            cum += load(&v[i].r->bucket[b]);
            snprintf(extra, sizeof(extra), ",le=\"%s\"", bucket_le[b]);
            rc = put_sample(out, "darvaza_request_duration_seconds_bucket", "route", v[i].name,
                            NULL, NULL, extra, cum);
        }
        if (rc == 0)
            rc = dz_buf_appendf(out, "darvaza_request_duration_seconds_sum{route=\"");
        if (rc == 0)
            rc = put_escaped(out, v[i].name, true);
        if (rc == 0)
            /* Seconds from integer microseconds, without a double: a large sum
             * keeps every digit. */
            rc = dz_buf_appendf(out, "\"} %" PRIu64 ".%06" PRIu64 "\n", sum_us / 1000000,
                                sum_us % 1000000);
        /* _count is the +Inf bucket as read above, so the two always agree. */
        if (rc == 0)
            rc = put_sample(out, "darvaza_request_duration_seconds_count", "route", v[i].name, NULL,
                            NULL, NULL, cum);
    }
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
    rc = put_family(out, name, "counter", help);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = put_sample(out, name, l1, v[i].name, l2, v[i].second, NULL, v[i].n);
out:
    free(split);
    free(v);
    return rc;
}

int dz_metrics_render(const struct dz_metrics *m, struct dz_buf *out)
{
    struct named *routes = NULL;
    size_t nroutes = 0;
    size_t ngauges;
    int rc;

    rc = sorted_routes(m, &routes, &nroutes);
    if (rc != 0)
        goto out;
    rc = render_requests(routes, nroutes, out);
    if (rc == 0)
        rc = render_durations(routes, nroutes, out);
    if (rc == 0)
        rc = render_pairs(&m->logins, "darvaza_logins_total",
                          "Login attempts, by means and result.", "means", "result", out);
    if (rc == 0)
        rc = render_pairs(&m->upstream, "darvaza_upstream_errors_total",
                          "Failed exchanges with back ends, by service and kind.", "service",
                          "kind", out);
    ngauges = atomic_load_explicit((atomic_size_t *)&m->ngauges, memory_order_acquire);
    for (size_t i = 0; i < ngauges && rc == 0; i++) {
        const struct gauge *g = &m->gauges[i];
        rc = put_family(out, g->name, "gauge", g->help);
        if (rc == 0)
            rc = dz_buf_appendf(out, "%s %" PRIu64 "\n", g->name, g->fn(g->arg));
    }
out:
    free(routes);
    return rc;
}
