/*
 * store_mem.c - the in-process backend of the ephemeral store (store.h).
 *
 * It owns a set of power-of-two shards, each a chained hash table behind one
 * pthread mutex, and a process-wide bound on entries.  Keys are hashed with
 * SipHash-2-4 under a random key drawn at creation, so a client who chooses
 * keys (say, FINs for failure counters) cannot aim them all at one bucket.
 * Time to live runs on CLOCK_MONOTONIC: expired entries are dropped when an
 * operation meets them, a few buckets are swept on every operation, and the
 * whole store is swept when the entry bound is reached.  Values are wiped
 * before their memory is freed (they may be session records).  It must never
 * do I/O, sleep, or hold a shard lock while calling out of this file other
 * than into malloc and dz_buf (callers run on event-loop threads).
 */
#include "state/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

/* From store.c (see the note there). */

#define MEM_MAX_SHARDS 4096u
#define MEM_INITIAL_BUCKETS 64u
#define MEM_SWEEP_STEP 2u /* buckets examined per operation */
#define COUNTER_CAP 24u   /* "-9223372036854775808" plus room */

struct entry {
    struct entry *next;
    uint64_t hash;
    uint64_t expires_ms; /* monotonic; live while now < expires_ms */
    unsigned char *val;  /* own allocation so a put can swap it in place */
    size_t val_len;
    enum dz_store_kind kind; /* whose budget it counts against */
    size_t ns_len;
    size_t key_len;
    unsigned char k[]; /* ns bytes, then key bytes */
};

struct shard {
    pthread_mutex_t lock;
    struct entry **b;
    size_t nb;     /* power of two */
    size_t n;      /* entries held, live or not yet reaped */
    size_t cursor; /* next bucket for the incremental sweep */
} __attribute__((aligned(64)));

struct mem {
    struct shard *shards;
    unsigned nshards; /* power of two */
    unsigned shard_shift;
    size_t max[DZ_STORE_KINDS];          /* live entries allowed per kind */
    atomic_size_t count[DZ_STORE_KINDS]; /* entries held per kind, live or not yet reaped */
    uint64_t sk0, sk1;                   /* SipHash key */
};

/* ---- SipHash-2-4 (Aumasson & Bernstein), streaming so that the namespace
 * and key hash without being copied together.  Written here because OpenSSL
 * only offers it through EVP_MAC, whose per-call setup costs more than a
 * whole lookup. */

struct sip {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;
    size_t len;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static void sip_init(struct sip *s, uint64_t k0, uint64_t k1)
{
    s->v0 = k0 ^ 0x736f6d6570736575ULL;
    s->v1 = k1 ^ 0x646f72616e646f6dULL;
    s->v2 = k0 ^ 0x6c7967656e657261ULL;
    s->v3 = k1 ^ 0x7465646279746573ULL;
    s->tail = 0;
    s->len = 0;
}

static inline void sip_word(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

static void sip_update(struct sip *s, const void *p, size_t n)
{
    const unsigned char *c = p;
    size_t i;

    /* Fill a partial word first, then whole little-endian words. */
    while (n && (s->len & 7)) {
        s->tail |= (uint64_t)*c++ << (8 * (s->len & 7));
        s->len++;
        n--;
        if ((s->len & 7) == 0) {
            sip_word(s, s->tail);
            s->tail = 0;
        }
    }
    while (n >= 8) {
        uint64_t m = 0;

        for (i = 0; i < 8; i++)
            m |= (uint64_t)c[i] << (8 * i);
        sip_word(s, m);
        c += 8;
        n -= 8;
        s->len += 8;
    }
    while (n) {
        s->tail |= (uint64_t)*c++ << (8 * (s->len & 7));
        s->len++;
        n--;
    }
}

static uint64_t sip_final(struct sip *s)
{
    uint64_t b = ((uint64_t)s->len << 56) | s->tail;

    sip_word(s, b);
    s->v2 ^= 0xff;
    sip_round(s);
    sip_round(s);
    sip_round(s);
    sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint64_t key_hash(const struct mem *m, const char *ns, size_t ns_len, const void *key,
                         size_t key_len)
{
    static const unsigned char sep = 0;
    struct sip s;

    /* ns never contains NUL, so ns || 0 || key is unambiguous. */
    sip_init(&s, m->sk0, m->sk1);
    sip_update(&s, ns, ns_len);
    sip_update(&s, &sep, 1);
    sip_update(&s, key, key_len);
    return sip_final(&s);
}

/* ---- time */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t deadline(uint64_t now, uint64_t ttl_ms)
{
    return ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
}

/* ---- entries */

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    dz_secret_wipe(e->val, e->val_len);
    free(e->val);
    dz_secret_wipe(e->k, e->ns_len + e->key_len);
    free(e);
}

/* Allocated before the shard lock is taken so that the lock is held for
 * pointer work only. */
static struct entry *entry_new(uint64_t hash, const char *ns, size_t ns_len, const void *key,
                               size_t key_len)
{
    struct entry *e = malloc(sizeof(*e) + ns_len + key_len);

    if (!e)
        return NULL;
    e->next = NULL;
    e->hash = hash;
    e->expires_ms = 0;
    e->val = NULL;
    e->val_len = 0;
    e->ns_len = ns_len;
    e->key_len = key_len;
    memcpy(e->k, ns, ns_len);
    memcpy(e->k + ns_len, key, key_len);
    return e;
}

static unsigned char *val_dup(const void *val, size_t val_len, size_t cap)
{
    unsigned char *v = malloc(cap > val_len ? cap : (val_len ? val_len : 1));

    if (v && val_len)
        memcpy(v, val, val_len);
    return v;
}

static bool entry_matches(const struct entry *e, uint64_t hash, const char *ns, size_t ns_len,
                          const void *key, size_t key_len)
{
    return e->hash == hash && e->ns_len == ns_len && e->key_len == key_len &&
           memcmp(e->k, ns, ns_len) == 0 && memcmp(e->k + ns_len, key, key_len) == 0;
}

/* ---- shards (all below: shard lock held) */

static struct shard *shard_of(struct mem *m, uint64_t hash)
{
    return &m->shards[m->shard_shift >= 64 ? 0 : hash >> m->shard_shift];
}

static void unlink_free(struct mem *m, struct shard *sh, struct entry **pp)
{
    struct entry *e = *pp;

    *pp = e->next;
    sh->n--;
    atomic_fetch_sub_explicit(&m->count[e->kind], 1, memory_order_relaxed);
    entry_free(e);
}

static void sweep_bucket(struct mem *m, struct shard *sh, size_t i, uint64_t now)
{
    struct entry **pp = &sh->b[i];

    while (*pp) {
        if ((*pp)->expires_ms <= now)
            unlink_free(m, sh, pp);
        else
            pp = &(*pp)->next;
    }
}

static void sweep_some(struct mem *m, struct shard *sh, uint64_t now)
{
    unsigned i;

    for (i = 0; i < MEM_SWEEP_STEP; i++) {
        sweep_bucket(m, sh, sh->cursor, now);
        sh->cursor = (sh->cursor + 1) & (sh->nb - 1);
    }
}

static void sweep_shard(struct mem *m, struct shard *sh, uint64_t now)
{
    size_t i;

    for (i = 0; i < sh->nb; i++)
        sweep_bucket(m, sh, i, now);
}

/* Find the live entry for a key; expired ones met on the way are reaped.
 * Returns the link that points at it (for unlinking) or NULL. */
static struct entry **find(struct mem *m, struct shard *sh, uint64_t hash, const char *ns,
                           size_t ns_len, const void *key, size_t key_len, uint64_t now)
{
    struct entry **pp = &sh->b[hash & (sh->nb - 1)];

    sweep_some(m, sh, now);
    while (*pp) {
        if ((*pp)->expires_ms <= now) {
            unlink_free(m, sh, pp);
            continue;
        }
        if (entry_matches(*pp, hash, ns, ns_len, key, key_len))
            return pp;
        pp = &(*pp)->next;
    }
    return NULL;
}

/* Double the bucket array when chains grow past two on average.  Failure to
 * grow is not an error: chains just get longer. */
static void maybe_grow(struct shard *sh)
{
    struct entry **nb;
    size_t size;
    size_t i;

    if (sh->n <= sh->nb * 2 || sh->nb > SIZE_MAX / (2 * sizeof(*nb)))
        return;
    size = sh->nb * 2;
    nb = calloc(size, sizeof(*nb));
    if (!nb)
        return;
    for (i = 0; i < sh->nb; i++) {
        struct entry *e = sh->b[i];

        while (e) {
            struct entry *next = e->next;
            size_t j = e->hash & (size - 1);

            e->next = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(sh->b);
    sh->b = nb;
    sh->nb = size;
    sh->cursor &= size - 1;
}

/* Count a new entry against its kind's quota.  When full, sweep this shard
 * (its lock is held) before giving up; the caller may then sweep the
 * others.  Only the kind's own count is looked at: another kind's flood
 * cannot make this one full. */
static bool reserve(struct mem *m, struct shard *sh, enum dz_store_kind kind, uint64_t now)
{
    atomic_size_t *count = &m->count[kind];
    size_t t = atomic_load_explicit(count, memory_order_relaxed);

    for (int pass = 0; pass < 2; pass++) {
        while (t < m->max[kind]) {
            if (atomic_compare_exchange_weak_explicit(count, &t, t + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                return true;
        }
        if (pass == 0) {
            sweep_shard(m, sh, now);
            t = atomic_load_explicit(count, memory_order_relaxed);
        }
    }
    return false;
}

static void insert(struct shard *sh, struct entry *e)
{
    size_t i = e->hash & (sh->nb - 1);

    e->next = sh->b[i];
    sh->b[i] = e;
    sh->n++;
    maybe_grow(sh);
}

static void sweep_all(struct mem *m)
{
    unsigned i;

    for (i = 0; i < m->nshards; i++) {
        struct shard *sh = &m->shards[i];

        pthread_mutex_lock(&sh->lock);
        sweep_shard(m, sh, now_ms());
        pthread_mutex_unlock(&sh->lock);
    }
}

/* ---- ops */

/* Internal result of an insert attempt that found the store full. */
#define MEM_FULL 1

static int put_once(struct mem *m, enum dz_store_kind kind, const char *ns, size_t ns_len,
                    const void *key, size_t key_len, const void *val, size_t val_len,
                    uint64_t ttl_ms, int flags)
{
    uint64_t hash = key_hash(m, ns, ns_len, key, key_len);
    struct shard *sh = shard_of(m, hash);
    struct entry *fresh = entry_new(hash, ns, ns_len, key, key_len);
    unsigned char *v = val_dup(val, val_len, 0);
    struct entry **pp;
    uint64_t now;
    int rc = 0;

    if (!fresh || !v) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&sh->lock);
    now = now_ms();
    pp = find(m, sh, hash, ns, ns_len, key, key_len, now);
    if (pp) {
        if (flags & DZ_STORE_NX) {
            rc = DZ_ERR_EXISTS;
        } else {
            struct entry *e = *pp;
            unsigned char *old = e->val;
            size_t old_len = e->val_len;

            e->val = v;
            e->val_len = val_len;
            e->expires_ms = deadline(now, ttl_ms);
            v = old; /* wiped and freed below, outside the lock */
            val_len = old_len;
        }
    } else if (!reserve(m, sh, kind, now)) {
        rc = MEM_FULL;
    } else {
        fresh->kind = kind;
        fresh->val = v;
        fresh->val_len = val_len;
        fresh->expires_ms = deadline(now, ttl_ms);
        insert(sh, fresh);
        fresh = NULL;
        v = NULL;
    }
    pthread_mutex_unlock(&sh->lock);
out:
    entry_free(fresh);
    if (v)
        dz_secret_wipe(v, val_len);
    free(v);
    return rc;
}

static int mem_put(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                   size_t key_len, const void *val, size_t val_len, uint64_t ttl_ms, int flags)
{
    struct mem *m = impl;
    size_t ns_len = strlen(ns);
    int rc = put_once(m, kind, ns, ns_len, key, key_len, val, val_len, ttl_ms, flags);

    if (rc == MEM_FULL) {
        sweep_all(m);
        rc = put_once(m, kind, ns, ns_len, key, key_len, val, val_len, ttl_ms, flags);
    }
    return rc == MEM_FULL ? DZ_ERR_FULL : rc;
}

static int get_or_take(struct mem *m, const char *ns, const void *key, size_t key_len,
                       struct dz_buf *out, bool take)
{
    size_t ns_len = strlen(ns);
    uint64_t hash = key_hash(m, ns, ns_len, key, key_len);
    struct shard *sh = shard_of(m, hash);
    struct entry **pp;
    int rc;

    pthread_mutex_lock(&sh->lock);
    pp = find(m, sh, hash, ns, ns_len, key, key_len, now_ms());
    if (!pp) {
        rc = DZ_ERR_NOTFOUND;
    } else {
        /* Copy under the lock; take deletes only once the copy succeeded,
         * so a failed take leaves the value for a retry. */
        rc = dz_buf_append(out, (*pp)->val, (*pp)->val_len);
        if (rc == 0 && take)
            unlink_free(m, sh, pp);
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static int mem_get(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out)
{
    return get_or_take(impl, ns, key, key_len, out, false);
}

static int mem_take(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out)
{
    return get_or_take(impl, ns, key, key_len, out, true);
}

/* Delete the live entry; with want, only if its value is exactly want
 * (DZ_ERR_EXISTS otherwise), compared under the shard lock. */
static int del_entry(struct mem *m, const char *ns, const void *key, size_t key_len,
                     const void *want, size_t want_len)
{
    size_t ns_len = strlen(ns);
    uint64_t hash = key_hash(m, ns, ns_len, key, key_len);
    struct shard *sh = shard_of(m, hash);
    struct entry **pp;
    int rc = DZ_ERR_NOTFOUND;

    pthread_mutex_lock(&sh->lock);
    pp = find(m, sh, hash, ns, ns_len, key, key_len, now_ms());
    if (pp && want &&
        ((*pp)->val_len != want_len || (want_len && memcmp((*pp)->val, want, want_len) != 0))) {
        rc = DZ_ERR_EXISTS;
    } else if (pp) {
        unlink_free(m, sh, pp);
        rc = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static int mem_del(void *impl, const char *ns, const void *key, size_t key_len)
{
    return del_entry(impl, ns, key, key_len, NULL, 0);
}

static int mem_del_if(void *impl, const char *ns, const void *key, size_t key_len, const void *val,
                      size_t val_len)
{
    /* An empty value compares with "" (want must not be NULL). */
    return del_entry(impl, ns, key, key_len, val_len ? val : "", val_len);
}

/* Counters are decimal text, as in Redis, so get shows them plainly.
 * Strict: optional '-', 1..19 digits, no leading junk or trailing bytes. */
static int parse_counter(const unsigned char *p, size_t n, int64_t *out)
{
    char tmp[COUNTER_CAP];
    char *end = NULL;
    long long v;

    if (n == 0 || n >= sizeof(tmp))
        return DZ_ERR_INVAL;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (!(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9')))
        return DZ_ERR_INVAL;
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno || end != tmp + n)
        return DZ_ERR_INVAL;
    *out = v;
    return 0;
}

static int incr_once(struct mem *m, enum dz_store_kind kind, const char *ns, size_t ns_len,
                     const void *key, size_t key_len, uint64_t ttl_ms, int64_t *out_value)
{
    uint64_t hash = key_hash(m, ns, ns_len, key, key_len);
    struct shard *sh = shard_of(m, hash);
    struct entry *fresh = entry_new(hash, ns, ns_len, key, key_len);
    unsigned char *v = malloc(COUNTER_CAP);
    struct entry **pp;
    int64_t value = 0;
    uint64_t now;
    int rc = 0;
    int len;

    if (!fresh || !v) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&sh->lock);
    now = now_ms();
    pp = find(m, sh, hash, ns, ns_len, key, key_len, now);
    if (pp) {
        struct entry *e = *pp;
        unsigned char *old = e->val;

        rc = parse_counter(e->val, e->val_len, &value);
        if (rc == 0 && value == INT64_MAX)
            rc = DZ_ERR_TOOBIG;
        if (rc == 0) {
            value++;
            len = snprintf((char *)v, COUNTER_CAP, "%" PRId64, value);
            dz_secret_wipe(old, e->val_len);
            e->val = v;
            e->val_len = (size_t)len;
            v = old;
        }
    } else if (!reserve(m, sh, kind, now)) {
        rc = MEM_FULL;
    } else {
        fresh->kind = kind;
        value = 1;
        v[0] = '1';
        fresh->val = v;
        fresh->val_len = 1;
        fresh->expires_ms = deadline(now, ttl_ms);
        insert(sh, fresh);
        fresh = NULL;
        v = NULL;
    }
    pthread_mutex_unlock(&sh->lock);
    if (rc == 0)
        *out_value = value;
out:
    entry_free(fresh);
    free(v);
    return rc;
}

static int mem_incr(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                    size_t key_len, uint64_t ttl_ms, int64_t *out_value)
{
    struct mem *m = impl;
    size_t ns_len = strlen(ns);
    int rc = incr_once(m, kind, ns, ns_len, key, key_len, ttl_ms, out_value);

    if (rc == MEM_FULL) {
        sweep_all(m);
        rc = incr_once(m, kind, ns, ns_len, key, key_len, ttl_ms, out_value);
    }
    return rc == MEM_FULL ? DZ_ERR_FULL : rc;
}

static int ttl_or_touch(struct mem *m, const char *ns, const void *key, size_t key_len,
                        uint64_t *out_ms, uint64_t new_ttl)
{
    size_t ns_len = strlen(ns);
    uint64_t hash = key_hash(m, ns, ns_len, key, key_len);
    struct shard *sh = shard_of(m, hash);
    struct entry **pp;
    uint64_t now;
    int rc = DZ_ERR_NOTFOUND;

    pthread_mutex_lock(&sh->lock);
    now = now_ms();
    pp = find(m, sh, hash, ns, ns_len, key, key_len, now);
    if (pp) {
        if (new_ttl)
            (*pp)->expires_ms = deadline(now, new_ttl);
        if (out_ms)
            *out_ms = (*pp)->expires_ms - now;
        rc = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static int mem_ttl(void *impl, const char *ns, const void *key, size_t key_len, uint64_t *out_ms)
{
    return ttl_or_touch(impl, ns, key, key_len, out_ms, 0);
}

static int mem_touch(void *impl, const char *ns, const void *key, size_t key_len, uint64_t ttl_ms)
{
    return ttl_or_touch(impl, ns, key, key_len, NULL, ttl_ms);
}

static size_t mem_kind_count(const void *impl, enum dz_store_kind kind)
{
    const struct mem *m = impl;

    return atomic_load_explicit((atomic_size_t *)&m->count[kind], memory_order_relaxed);
}

/* A full scan, one shard lock at a time: meant for a metrics gauge, not the
 * request path. */
static size_t mem_count(void *impl, const char *ns)
{
    struct mem *m = impl;
    size_t ns_len = strlen(ns);
    size_t n = 0;
    unsigned s;
    size_t i;

    for (s = 0; s < m->nshards; s++) {
        struct shard *sh = &m->shards[s];
        uint64_t now;

        pthread_mutex_lock(&sh->lock);
        now = now_ms();
        for (i = 0; i < sh->nb; i++) {
            const struct entry *e;

            for (e = sh->b[i]; e; e = e->next)
                if (e->expires_ms > now && e->ns_len == ns_len && memcmp(e->k, ns, ns_len) == 0)
                    n++;
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return n;
}

static void mem_free(void *impl)
{
    struct mem *m = impl;
    unsigned s;
    size_t i;

    if (!m)
        return;
    for (s = 0; m->shards && s < m->nshards; s++) {
        struct shard *sh = &m->shards[s];

        for (i = 0; sh->b && i < sh->nb; i++) {
            while (sh->b[i]) {
                struct entry *e = sh->b[i];

                sh->b[i] = e->next;
                entry_free(e);
            }
        }
        free(sh->b);
        pthread_mutex_destroy(&sh->lock);
    }
    free(m->shards);
    dz_secret_wipe(&m->sk0, sizeof(m->sk0));
    dz_secret_wipe(&m->sk1, sizeof(m->sk1));
    free(m);
}

static const struct dz_store_ops mem_ops = {
    .put = mem_put,
    .get = mem_get,
    .take = mem_take,
    .del = mem_del,
    .del_if = mem_del_if,
    .incr = mem_incr,
    .ttl = mem_ttl,
    .touch = mem_touch,
    .count = mem_count,
    .kind_count = mem_kind_count,
    .free = mem_free,
};

/* The constructor with every knob; dz_store_mem_new uses the defaults.
 * Unit tests reach it by including this file. */
static int mem_new(unsigned shards, const struct dz_store_quotas *quotas, struct dz_store **out)
{
    struct mem *m = NULL;
    unsigned char sk[16];
    unsigned n = 1;
    unsigned bits = 0;
    unsigned i;
    int rc = 0;

    *out = NULL;
    if (shards == 0 || shards > MEM_MAX_SHARDS || !quotas)
        return DZ_ERR_INVAL;
    for (i = 0; i < DZ_STORE_KINDS; i++) {
        if (quotas->max[i] == 0)
            return DZ_ERR_INVAL;
    }
    while (n < shards) {
        n <<= 1;
        bits++;
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        return DZ_ERR_NOMEM;
    m->shards = aligned_alloc(64, sizeof(*m->shards) * n);
    if (!m->shards) {
        free(m);
        return DZ_ERR_NOMEM;
    }
    memset(m->shards, 0, sizeof(*m->shards) * n);
    for (i = 0; i < n; i++) {
        m->shards[i].b = calloc(MEM_INITIAL_BUCKETS, sizeof(struct entry *));
        m->shards[i].nb = MEM_INITIAL_BUCKETS;
        pthread_mutex_init(&m->shards[i].lock, NULL);
        m->nshards = i + 1;
        if (!m->shards[i].b) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
    }
    m->shard_shift = bits ? 64 - bits : 64;
    for (i = 0; i < DZ_STORE_KINDS; i++) {
        m->max[i] = quotas->max[i];
        atomic_init(&m->count[i], 0);
    }
    rc = dz_random(sk, sizeof(sk));
    if (rc)
        goto out;
    memcpy(&m->sk0, sk, 8);
    memcpy(&m->sk1, sk + 8, 8);
    rc = dz_store_new(&mem_ops, m, out); /* frees m on failure */
    m = NULL;
out:
    dz_secret_wipe(sk, sizeof(sk));
    mem_free(m);
    return rc;
}

int dz_store_mem_new(unsigned shards, const struct dz_store_quotas *quotas, struct dz_store **out)
{
    struct dz_store_quotas q;

    if (!quotas) {
        dz_store_quotas_default(&q);
        quotas = &q;
    }
    return mem_new(shards, quotas, out);
}
