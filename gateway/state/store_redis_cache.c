/*
 * store_redis_cache.c - the near cache of session reads (store_redis_int.h).
 *
 * A forwarded request reads its session (GET) and slides its expiry
 * (PEXPIRE) on every request; on Redis that is two round trips, and the
 * PEXPIRE, a write, would invalidate every other instance's copy each time.
 * So each instance keeps the session records it read, and:
 *   - drops one when Redis says it changed: the subscriber connection
 *     (store_redis_sub.c) has server-assisted client caching on in BCAST
 *     mode for P "sess:", so any write to a session by any instance (a
 *     logout, an expiry, a touch) reaches every instance's subscriber;
 *   - drops them all, and stops answering from the cache, while that
 *     connection is down (an invalidation may have been missed);
 *   - answers a touch of a session touched on Redis less than
 *     min(ttl / 20, 5 s) ago without sending it: the idle expiry runs at
 *     most that much early, never late.
 * A read races an invalidation sent while its GET was on the wire: a
 * sequence number, bumped by each invalidation, is read before the GET and
 * the answer is cached only if it did not move.  Values are wiped when they
 * leave the cache (they hold a FIN).
 */
#include "state/store_redis_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

#define SHARDS 16u
#define BUCKETS 4096u          /* per shard */
#define ENTRIES_MAX 8192u      /* per shard: 128 Ki sessions per instance */
#define VALUE_MAX_AGE_MS 5000u /* a bound even if an invalidation were lost */
#define TOUCH_SLACK_MAX_MS 5000u

struct centry {
    struct centry *next;
    uint64_t hash;
    uint64_t stored_ms;  /* when the value was cached (0: no value) */
    uint64_t touched_ms; /* when a touch was last sent to Redis */
    unsigned char *val;
    size_t val_len;
    size_t key_len;
    char key[];
};

struct cshard {
    pthread_mutex_t lock;
    struct centry *b[BUCKETS];
    size_t n;
    size_t cursor; /* next bucket of the incremental sweep */
} __attribute__((aligned(64)));

struct rs_cache {
    struct cshard shards[SHARDS];
    atomic_uint_fast64_t seq;
    atomic_bool usable; /* the subscriber is connected and subscribed */
};

static uint64_t fnv(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    /* The keys are keyed hashes or SHA-256 of tokens: nobody chooses them to
     * collide, so a plain hash spreads them. */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ULL;
    return h;
}

int rs_cache_new(struct rs_store *st, struct rs_cache **out)
{
    struct rs_cache *c = calloc(1, sizeof(*c));

    (void)st;
    *out = NULL;
    if (!c)
        return DZ_ERR_NOMEM;
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_init(&c->shards[i].lock, NULL);
    *out = c;
    return 0;
}

static void value_drop(struct centry *e)
{
    if (e->val) {
        dz_secret_wipe(e->val, e->val_len);
        free(e->val);
    }
    e->val = NULL;
    e->val_len = 0;
    e->stored_ms = 0;
}

static void entry_free(struct centry *e)
{
    value_drop(e);
    free(e);
}

static void shard_clear(struct cshard *s)
{
    for (unsigned i = 0; i < BUCKETS; i++) {
        struct centry *e = s->b[i];

        while (e) {
            struct centry *n = e->next;
            entry_free(e);
            e = n;
        }
        s->b[i] = NULL;
    }
    s->n = 0;
}

void rs_cache_free(struct rs_cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < SHARDS; i++) {
        shard_clear(&c->shards[i]);
        pthread_mutex_destroy(&c->shards[i].lock);
    }
    free(c);
}

/* The entry of key in its shard (locked by the caller), or NULL. */
static struct centry **find(struct cshard *s, uint64_t h, const char *key, size_t n)
{
    struct centry **p = &s->b[(h >> 4) % BUCKETS];

    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->key_len == n && memcmp((*p)->key, key, n) == 0)
            return p;
    return p;
}

static struct cshard *shard_of(struct rs_cache *c, uint64_t h)
{
    return &c->shards[h % SHARDS];
}

int rs_cache_get(struct rs_cache *c, const char *rkey, size_t rkey_len, struct dz_buf *out)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct cshard *s = shard_of(c, h);
    struct centry *e;
    int rc = DZ_ERR_NOTFOUND;

    if (!atomic_load_explicit(&c->usable, memory_order_acquire))
        return rc;
    pthread_mutex_lock(&s->lock);
    e = *find(s, h, rkey, rkey_len);
    if (e && e->val && rs_now_ms() - e->stored_ms < VALUE_MAX_AGE_MS)
        rc = dz_buf_append(out, e->val, e->val_len);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t rs_cache_seq(struct rs_cache *c)
{
    return atomic_load_explicit(&c->seq, memory_order_acquire);
}

/* Drop the entries of a few buckets that can serve nothing any more (no
 * fresh value, no recent touch), so sessions that ended leave no trace. */
static void sweep(struct cshard *s, uint64_t now)
{
    for (unsigned i = 0; i < 2; i++) {
        struct centry **p = &s->b[s->cursor];

        s->cursor = (s->cursor + 1) % BUCKETS;
        while (*p) {
            struct centry *e = *p;
            uint64_t last = e->stored_ms > e->touched_ms ? e->stored_ms : e->touched_ms;

            if (now - last >= VALUE_MAX_AGE_MS + TOUCH_SLACK_MAX_MS) {
                *p = e->next;
                entry_free(e);
                s->n--;
            } else {
                p = &e->next;
            }
        }
    }
}

/* The entry of rkey, made when absent (NULL when the shard is full). */
static struct centry *upsert(struct cshard *s, uint64_t h, const char *rkey, size_t rkey_len)
{
    struct centry **p = find(s, h, rkey, rkey_len);
    struct centry *e = *p;

    if (e)
        return e;
    sweep(s, rs_now_ms());
    p = find(s, h, rkey, rkey_len);
    if (s->n >= ENTRIES_MAX)
        return NULL;
    e = calloc(1, sizeof(*e) + rkey_len);
    if (!e)
        return NULL;
    e->hash = h;
    e->key_len = rkey_len;
    memcpy(e->key, rkey, rkey_len);
    *p = e;
    s->n++;
    return e;
}

void rs_cache_put(struct rs_cache *c, uint64_t seq, const char *rkey, size_t rkey_len,
                  const void *val, size_t val_len, uint64_t ttl_ms)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct cshard *s = shard_of(c, h);
    struct centry *e;
    unsigned char *copy;

    (void)ttl_ms;
    if (!atomic_load_explicit(&c->usable, memory_order_acquire))
        return;
    copy = malloc(val_len ? val_len : 1);
    if (!copy)
        return;
    memcpy(copy, val, val_len);
    pthread_mutex_lock(&s->lock);
    /* Checked under the lock the invalidation also takes: an invalidation
     * that arrived since the GET went out leaves the entry uncached. */
    if (atomic_load_explicit(&c->seq, memory_order_acquire) == seq &&
        (e = upsert(s, h, rkey, rkey_len)) != NULL) {
        value_drop(e);
        e->val = copy;
        e->val_len = val_len;
        e->stored_ms = rs_now_ms();
        copy = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (copy) {
        dz_secret_wipe(copy, val_len);
        free(copy);
    }
}

static void remove_entry(struct rs_cache *c, const char *rkey, size_t rkey_len)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct cshard *s = shard_of(c, h);
    struct centry **p;

    pthread_mutex_lock(&s->lock);
    p = find(s, h, rkey, rkey_len);
    if (*p) {
        struct centry *e = *p;

        *p = e->next;
        entry_free(e);
        s->n--;
    }
    pthread_mutex_unlock(&s->lock);
}

void rs_cache_drop(struct rs_cache *c, const char *rkey, size_t rkey_len)
{
    atomic_fetch_add(&c->seq, 1);
    remove_entry(c, rkey, rkey_len);
}

/* From the subscriber: Redis says rkey changed.  The value goes; when the
 * last touch is remembered so that our own touch's invalidation does not
 * make the next request touch again. */
void rs_cache_invalidate(struct rs_cache *c, const char *rkey, size_t rkey_len)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct cshard *s = shard_of(c, h);
    struct centry *e;

    atomic_fetch_add(&c->seq, 1);
    pthread_mutex_lock(&s->lock);
    e = *find(s, h, rkey, rkey_len);
    if (e)
        value_drop(e);
    pthread_mutex_unlock(&s->lock);
}

void rs_cache_flush(struct rs_cache *c)
{
    atomic_fetch_add(&c->seq, 1);
    for (unsigned i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        shard_clear(&c->shards[i]);
        pthread_mutex_unlock(&c->shards[i].lock);
    }
}

bool rs_cache_usable(struct rs_cache *c)
{
    return atomic_load_explicit(&c->usable, memory_order_acquire);
}

void rs_cache_set_usable(struct rs_cache *c, bool usable)
{
    if (!usable) {
        atomic_store(&c->usable, false);
        rs_cache_flush(c);
    } else {
        rs_cache_flush(c);
        atomic_store(&c->usable, true);
    }
}

bool rs_cache_touch_recent(struct rs_cache *c, const char *rkey, size_t rkey_len, uint64_t ttl_ms)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct cshard *s = shard_of(c, h);
    uint64_t slack = ttl_ms / 20 < TOUCH_SLACK_MAX_MS ? ttl_ms / 20 : TOUCH_SLACK_MAX_MS;
    uint64_t now = rs_now_ms();
    struct centry *e;
    bool recent = false;

    if (!atomic_load_explicit(&c->usable, memory_order_acquire))
        return false;
    pthread_mutex_lock(&s->lock);
    e = upsert(s, h, rkey, rkey_len);
    if (e) {
        /* Only a session whose value is cached now (so it was live a moment
         * ago and no invalidation came since) skips its touch. */
        if (e->touched_ms && now - e->touched_ms < slack && e->val)
            recent = true;
        else
            e->touched_ms = now; /* the caller sends this touch */
    }
    pthread_mutex_unlock(&s->lock);
    return recent;
}
