/*
 * store.c - the dz_store_* entry points: argument checks shared by every
 * backend, then one call through the backend's ops table.  It owns the
 * struct dz_store wrapper (ops + backend state) and nothing else; it never
 * looks inside keys or values, never logs them, and holds no lock itself
 * (each backend is responsible for its own thread safety).
 */
#include "state/store.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

/* Bounds every backend shares (store.h: "key or value over 64 KiB"). */
#define KEY_MAX (64u * 1024u)
#define VAL_MAX DZ_STORE_VAL_MAX
#define NS_MAX 64u

/* A refusal for lack of room is logged at most once per kind in this many
 * seconds (a flood must not become a log flood); every one is counted. */
#define FULL_LOG_INTERVAL_S 10

struct dz_store {
    const struct dz_store_ops *ops;
    void *impl;
    atomic_uint_fast64_t refusals[DZ_STORE_KINDS];
    atomic_int_fast64_t last_log_s[DZ_STORE_KINDS];
    struct {
        dz_store_wake_fn fn;
        void *arg;
    } subs[DZ_STORE_SUBSCRIBERS_MAX];
    atomic_uint nsubs; /* published after the slot is filled */
};

static const char *const kind_names[DZ_STORE_KINDS] = {
    [DZ_STORE_SESSIONS] = "sessions",
    [DZ_STORE_PENDING_QR] = "pending_qr",
    [DZ_STORE_PENDING_MOBILE] = "pending_mobile",
    [DZ_STORE_CHALLENGES] = "challenges",
    [DZ_STORE_FAILURES] = "failures",
    [DZ_STORE_RATES] = "rates",
    [DZ_STORE_OTHER] = "other",
};

/* Which budget each namespace of the gateway draws on.  A prefix ends in
 * '_' or '*' matches every namespace that starts with it. */
static const struct {
    const char *ns;
    enum dz_store_kind kind;
} ns_kinds[] = {
    {"sess", DZ_STORE_SESSIONS},
    {"sessidx", DZ_STORE_SESSIONS},
    {"qr", DZ_STORE_PENDING_QR},
    {"mob", DZ_STORE_PENDING_MOBILE},
    {"mobsign", DZ_STORE_PENDING_MOBILE},
    {"mobphone", DZ_STORE_PENDING_MOBILE},
    {"mobphsess", DZ_STORE_PENDING_MOBILE},
    {"mobres", DZ_STORE_PENDING_MOBILE},
    {"mobwatch", DZ_STORE_PENDING_MOBILE},
    {"cardnonce", DZ_STORE_CHALLENGES},
    {"qrused", DZ_STORE_CHALLENGES},
    {"cardtls", DZ_STORE_CHALLENGES},
    {"cardcode", DZ_STORE_CHALLENGES},
    {"regcode", DZ_STORE_CHALLENGES},
    {"fail_*", DZ_STORE_FAILURES},
    {"lock_*", DZ_STORE_FAILURES},
    {"rate", DZ_STORE_RATES},
    {"mobrate", DZ_STORE_RATES},
    {"verify_rate", DZ_STORE_RATES},
    {"lim_*", DZ_STORE_RATES},
    /* The OpenID Connect provider (gateway/oidc): short-lived single-use
     * items, and what lives as long as a session or a person's decision. */
    {"oidcreq", DZ_STORE_CHALLENGES},
    {"oidccode", DZ_STORE_CHALLENGES},
    {"oidcused", DZ_STORE_CHALLENGES},
    {"oidcat", DZ_STORE_CHALLENGES},
    {"oidcjti", DZ_STORE_CHALLENGES},
    {"oidcsid", DZ_STORE_SESSIONS},
    {"oidcconsent", DZ_STORE_SESSIONS},
    {"oidcexp*", DZ_STORE_SESSIONS}, /* the expiry sweeper's index (oidc_expiry.h) */
};

enum dz_store_kind dz_store_kind_of(const char *ns)
{
    for (size_t i = 0; ns && i < sizeof(ns_kinds) / sizeof(ns_kinds[0]); i++) {
        const char *k = ns_kinds[i].ns;
        size_t n = strlen(k);

        if (k[n - 1] == '*' ? strncmp(ns, k, n - 1) == 0 : strcmp(ns, k) == 0)
            return ns_kinds[i].kind;
    }
    return DZ_STORE_OTHER;
}

const char *dz_store_kind_name(enum dz_store_kind k)
{
    return (unsigned)k < DZ_STORE_KINDS ? kind_names[k] : "?";
}

void dz_store_quotas_default(struct dz_store_quotas *q)
{
    /* Sized for one instance of a national portal on the in-process store:
     * about 0.5 KiB an entry, so the whole budget stays under 1 GiB. */
    q->max[DZ_STORE_SESSIONS] = 500000;
    q->max[DZ_STORE_PENDING_QR] = 50000;
    q->max[DZ_STORE_PENDING_MOBILE] = 20000;
    q->max[DZ_STORE_CHALLENGES] = 100000;
    q->max[DZ_STORE_FAILURES] = 200000;
    q->max[DZ_STORE_RATES] = 200000;
    q->max[DZ_STORE_OTHER] = 10000;
}

uint64_t dz_store_refusals(const struct dz_store *s, enum dz_store_kind k)
{
    if (!s || (unsigned)k >= DZ_STORE_KINDS)
        return 0;
    return atomic_load_explicit(&s->refusals[k], memory_order_relaxed);
}

/* Count (always) and log (rate-limited) a creation refused for lack of room:
 * an operator must see that a budget ran out, and which. */
static int note_full(struct dz_store *s, enum dz_store_kind k, const char *ns, int rc)
{
    int_fast64_t now = (int_fast64_t)time(NULL);
    int_fast64_t last;

    if (rc != DZ_ERR_FULL)
        return rc;
    atomic_fetch_add_explicit(&s->refusals[k], 1, memory_order_relaxed);
    last = atomic_load_explicit(&s->last_log_s[k], memory_order_relaxed);
    if (now - last >= FULL_LOG_INTERVAL_S &&
        atomic_compare_exchange_strong(&s->last_log_s[k], &last, now))
        dz_log(DZ_LOG_WARN, "store_full",
               "the %s budget is used up (namespace %s); new entries are refused, %llu so far",
               kind_names[k], ns,
               (unsigned long long)atomic_load_explicit(&s->refusals[k], memory_order_relaxed));
    return rc;
}

/* Wrap a backend: ownership of impl moves to the store (ops->free releases
 * it, also here on failure). */
int dz_store_new(const struct dz_store_ops *ops, void *impl, struct dz_store **out)
{
    struct dz_store *s = NULL;

    *out = NULL;
    if (!ops || !ops->put || !ops->get || !ops->take || !ops->del || !ops->del_if || !ops->incr ||
        !ops->ttl || !ops->touch || !ops->count || !ops->free) {
        if (ops && ops->free && impl)
            ops->free(impl);
        return DZ_ERR_INVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        ops->free(impl);
        return DZ_ERR_NOMEM;
    }
    s->ops = ops;
    s->impl = impl;
    if (ops->bind)
        ops->bind(impl, s);
    *out = s;
    return 0;
}

/* Namespace: a short non-empty constant such as "sess"; key: 1..64 KiB. */
static int check_key(const struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    size_t n;

    if (!s || !ns)
        return DZ_ERR_INVAL;
    n = strnlen(ns, NS_MAX + 1);
    if (n == 0 || n > NS_MAX)
        return DZ_ERR_INVAL;
    if (key_len > KEY_MAX)
        return DZ_ERR_TOOBIG;
    if (key_len == 0 || !key)
        return DZ_ERR_INVAL;
    return 0;
}

int dz_store_put(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 const void *val, size_t val_len, uint64_t ttl_ms, int flags)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (val_len > VAL_MAX)
        return DZ_ERR_TOOBIG;
    if ((val_len && !val) || ttl_ms == 0 || (flags & ~DZ_STORE_NX))
        return DZ_ERR_INVAL;
    enum dz_store_kind k = dz_store_kind_of(ns);
    return note_full(s, k, ns,
                     s->ops->put(s->impl, k, ns, key, key_len, val, val_len, ttl_ms, flags));
}

int dz_store_get(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 struct dz_buf *out)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (!out)
        return DZ_ERR_INVAL;
    return s->ops->get(s->impl, ns, key, key_len, out);
}

int dz_store_take(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  struct dz_buf *out)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (!out)
        return DZ_ERR_INVAL;
    return s->ops->take(s->impl, ns, key, key_len, out);
}

int dz_store_del(struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    return s->ops->del(s->impl, ns, key, key_len);
}

int dz_store_del_durable(struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    return s->ops->del_durable ? s->ops->del_durable(s->impl, ns, key, key_len)
                               : s->ops->del(s->impl, ns, key, key_len);
}

int dz_store_del_if(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                    const void *val, size_t val_len)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (val_len > VAL_MAX)
        return DZ_ERR_TOOBIG;
    if (val_len && !val)
        return DZ_ERR_INVAL;
    return s->ops->del_if(s->impl, ns, key, key_len, val, val_len);
}

int dz_store_incr(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  uint64_t ttl_ms, int64_t *out_value)
{
    int rc;

    if (out_value)
        *out_value = 0;
    rc = check_key(s, ns, key, key_len);
    if (rc)
        return rc;
    if (!out_value || ttl_ms == 0)
        return DZ_ERR_INVAL;
    enum dz_store_kind k = dz_store_kind_of(ns);
    return note_full(s, k, ns, s->ops->incr(s->impl, k, ns, key, key_len, ttl_ms, out_value));
}

int dz_store_ttl(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 uint64_t *out_ms)
{
    int rc;

    if (out_ms)
        *out_ms = 0;
    rc = check_key(s, ns, key, key_len);
    if (rc)
        return rc;
    if (!out_ms)
        return DZ_ERR_INVAL;
    return s->ops->ttl(s->impl, ns, key, key_len, out_ms);
}

int dz_store_touch(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                   uint64_t ttl_ms)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (ttl_ms == 0)
        return DZ_ERR_INVAL;
    return s->ops->touch(s->impl, ns, key, key_len, ttl_ms);
}

/* ---- asynchronous forms */

void dz_store_get_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc || !loop) {
        cb(arg, rc ? rc : DZ_ERR_INVAL, 0, NULL, 0);
        return;
    }
    if (s->ops->get_async) {
        s->ops->get_async(s->impl, loop, ns, key, key_len, cb, arg);
        return;
    }
    {
        struct dz_buf b;

        dz_buf_init(&b, VAL_MAX);
        rc = s->ops->get(s->impl, ns, key, key_len, &b);
        cb(arg, rc, 0, rc == 0 ? b.data : NULL, rc == 0 ? b.len : 0);
        dz_buf_wipe(&b);
    }
}

/* What an asynchronous incr or put needs after the backend answered: the
 * refusal count and log of a full budget (note_full). */
struct incr_wait {
    struct dz_store *s;
    enum dz_store_kind kind;
    const char *ns;
    dz_store_cb cb;
    void *arg;
};

static void incr_done(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct incr_wait w = *(struct incr_wait *)arg;

    (void)data;
    (void)len;
    free(arg);
    rc = note_full(w.s, w.kind, w.ns, rc);
    w.cb(w.arg, rc, rc == 0 ? value : 0, NULL, 0);
}

void dz_store_incr_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                         size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg)
{
    int rc = check_key(s, ns, key, key_len);
    struct incr_wait *w;
    enum dz_store_kind k;

    if (!rc && (ttl_ms == 0 || !loop))
        rc = DZ_ERR_INVAL;
    if (rc) {
        cb(arg, rc, 0, NULL, 0);
        return;
    }
    k = dz_store_kind_of(ns);
    if (!s->ops->incr_async) {
        int64_t v = 0;

        rc = note_full(s, k, ns, s->ops->incr(s->impl, k, ns, key, key_len, ttl_ms, &v));
        cb(arg, rc, rc == 0 ? v : 0, NULL, 0);
        return;
    }
    w = malloc(sizeof(*w));
    if (!w) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *w = (struct incr_wait){s, k, ns, cb, arg};
    s->ops->incr_async(s->impl, loop, k, ns, key, key_len, ttl_ms, incr_done, w);
}

void dz_store_touch_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                          size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg)
{
    int rc = check_key(s, ns, key, key_len);

    if (!rc && (ttl_ms == 0 || !loop))
        rc = DZ_ERR_INVAL;
    if (rc) {
        cb(arg, rc, 0, NULL, 0);
        return;
    }
    if (s->ops->touch_async) {
        s->ops->touch_async(s->impl, loop, ns, key, key_len, ttl_ms, cb, arg);
        return;
    }
    cb(arg, s->ops->touch(s->impl, ns, key, key_len, ttl_ms), 0, NULL, 0);
}

/* A put's answer after the backend: as incr_done (note_full). */
static void put_done(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct incr_wait w = *(struct incr_wait *)arg;

    (void)value;
    (void)data;
    (void)len;
    free(arg);
    w.cb(w.arg, note_full(w.s, w.kind, w.ns, rc), 0, NULL, 0);
}

void dz_store_put_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, const void *val, size_t val_len, uint64_t ttl_ms, int flags,
                        dz_store_cb cb, void *arg)
{
    int rc = check_key(s, ns, key, key_len);
    struct incr_wait *w;
    enum dz_store_kind k;

    if (!rc && val_len > VAL_MAX)
        rc = DZ_ERR_TOOBIG;
    if (!rc && ((val_len && !val) || ttl_ms == 0 || (flags & ~DZ_STORE_NX) || !loop))
        rc = DZ_ERR_INVAL;
    if (rc) {
        cb(arg, rc, 0, NULL, 0);
        return;
    }
    k = dz_store_kind_of(ns);
    if (!s->ops->put_async) {
        rc = s->ops->put(s->impl, k, ns, key, key_len, val, val_len, ttl_ms, flags);
        cb(arg, note_full(s, k, ns, rc), 0, NULL, 0);
        return;
    }
    w = malloc(sizeof(*w));
    if (!w) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *w = (struct incr_wait){s, k, ns, cb, arg};
    s->ops->put_async(s->impl, loop, k, ns, key, key_len, val, val_len, ttl_ms, flags, put_done, w);
}

void dz_store_del_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg)
{
    int rc = check_key(s, ns, key, key_len);

    if (!rc && !loop)
        rc = DZ_ERR_INVAL;
    if (rc) {
        cb(arg, rc, 0, NULL, 0);
        return;
    }
    if (s->ops->del_async) {
        s->ops->del_async(s->impl, loop, ns, key, key_len, cb, arg);
        return;
    }
    cb(arg, s->ops->del(s->impl, ns, key, key_len), 0, NULL, 0);
}

size_t dz_store_kind_count(const struct dz_store *s, enum dz_store_kind k)
{
    if (!s || (unsigned)k >= DZ_STORE_KINDS || !s->ops->kind_count)
        return 0;
    return s->ops->kind_count(s->impl, k);
}

size_t dz_store_count(struct dz_store *s, const char *ns)
{
    size_t n;

    if (!s || !ns)
        return 0;
    n = strnlen(ns, NS_MAX + 1);
    if (n == 0 || n > NS_MAX)
        return 0;
    return s->ops->count(s->impl, ns);
}

int dz_store_subscribe(struct dz_store *s, dz_store_wake_fn fn, void *arg)
{
    unsigned n;

    if (!s || !fn)
        return DZ_ERR_INVAL;
    n = atomic_load_explicit(&s->nsubs, memory_order_relaxed);
    if (n >= DZ_STORE_SUBSCRIBERS_MAX)
        return DZ_ERR_TOOBIG;
    s->subs[n].fn = fn;
    s->subs[n].arg = arg;
    atomic_store_explicit(&s->nsubs, n + 1, memory_order_release);
    return 0;
}

void dz_store_deliver(struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    unsigned n;

    if (check_key(s, ns, key, key_len))
        return;
    n = atomic_load_explicit(&s->nsubs, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        s->subs[i].fn(s->subs[i].arg, ns, key, key_len);
}

void dz_store_publish(struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    if (check_key(s, ns, key, key_len))
        return;
    if (s->ops->publish)
        s->ops->publish(s->impl, ns, key, key_len);
    else
        dz_store_deliver(s, ns, key, key_len);
}

bool dz_store_failed(int rc)
{
    return rc == DZ_ERR_UNAVAILABLE || rc == DZ_ERR_NOMEM;
}

void dz_store_health(struct dz_store *s, struct dz_store_health *out)
{
    memset(out, 0, sizeof(*out));
    out->up = true;
    if (s && s->ops->health)
        s->ops->health(s->impl, out);
}

bool dz_store_waits(const struct dz_store *s)
{
    /* Only a shared backend has health to report, and only it does I/O. */
    return s && s->ops->health != NULL;
}

void dz_store_free(struct dz_store *s)
{
    if (!s)
        return;
    s->ops->free(s->impl);
    free(s);
}
