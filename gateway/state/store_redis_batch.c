/*
 * store_redis_batch.c - rate counters counted in batches (store_redis_int.h),
 * when store.redis.rate_batch k > 1.
 *
 * An exact per-subject rate limit costs one Redis round trip per
 * rate-limited request.  With batches, each instance counts a rate counter
 * locally and adds to Redis (INCRBY) every k-th request, answering in
 * between with the last value Redis gave plus what it counted since.  The
 * bound, per counter and window: each instance holds back fewer than k
 * counts, and one batch may be on the wire, so a subject can exceed its
 * rate by at most instances x k requests per window.  Counts held back when
 * a window ends are dropped with it (a rate counter's key names its window).
 * Only counters of the rates kind are batched: failure counters and
 * everything else stay exact.
 */
#include "state/store_redis_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#include "base/compat.h"

#define SHARDS 16u
#define BUCKETS 1024u     /* per shard */
#define ENTRIES_MAX 8192u /* per shard; beyond it counters go exact */

struct bentry {
    struct bentry *next;
    uint64_t hash;
    uint64_t expires_ms; /* local monotonic: the counter's window */
    int64_t base;        /* the value Redis gave at the last flush */
    int64_t pending;     /* counted here since, not yet sent */
    size_t key_len;
    char key[];
};

struct bshard {
    pthread_mutex_t lock;
    struct bentry *b[BUCKETS];
    size_t n;
    size_t cursor;
} __attribute__((aligned(64)));

struct rs_batch {
    unsigned k;
    struct bshard shards[SHARDS];
};

static uint64_t fnv(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ULL;
    return h;
}

int rs_batch_new(unsigned k, struct rs_batch **out)
{
    struct rs_batch *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (!b)
        return DZ_ERR_NOMEM;
    b->k = k;
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_init(&b->shards[i].lock, NULL);
    *out = b;
    return 0;
}

void rs_batch_free(struct rs_batch *b)
{
    if (!b)
        return;
    for (unsigned i = 0; i < SHARDS; i++) {
        for (unsigned j = 0; j < BUCKETS; j++) {
            struct bentry *e = b->shards[i].b[j];

            while (e) {
                struct bentry *n = e->next;
                free(e);
                e = n;
            }
        }
        pthread_mutex_destroy(&b->shards[i].lock);
    }
    free(b);
}

static struct bentry **find(struct bshard *s, uint64_t h, const char *key, size_t n)
{
    struct bentry **p = &s->b[(h >> 4) % BUCKETS];

    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->key_len == n && memcmp((*p)->key, key, n) == 0)
            return p;
    return p;
}

/* Drop a few buckets' counters whose window has ended. */
static void sweep(struct bshard *s, uint64_t now)
{
    for (unsigned i = 0; i < 2; i++) {
        struct bentry **p = &s->b[s->cursor];

        s->cursor = (s->cursor + 1) % BUCKETS;
        while (*p) {
            struct bentry *e = *p;

            if (now >= e->expires_ms) {
                *p = e->next;
                free(e);
                s->n--;
            } else {
                p = &e->next;
            }
        }
    }
}

int rs_batch_take(struct rs_batch *b, const char *rkey, size_t rkey_len, int64_t *out_value,
                  int64_t *incr_by)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct bshard *s = &b->shards[h % SHARDS];
    uint64_t now = rs_now_ms();
    struct bentry *e;
    int local = 0;

    *incr_by = 1;
    pthread_mutex_lock(&s->lock);
    sweep(s, now);
    e = *find(s, h, rkey, rkey_len);
    if (e && now < e->expires_ms) {
        e->pending++;
        if (e->pending < (int64_t)b->k) {
            *out_value = e->base + e->pending;
            local = 1;
        } else {
            /* This caller sends the batch; others count on meanwhile. */
            *incr_by = e->pending;
            e->base += e->pending;
            e->pending = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return local;
}

void rs_batch_seen(struct rs_batch *b, const char *rkey, size_t rkey_len, uint64_t ttl_ms,
                   int64_t value)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct bshard *s = &b->shards[h % SHARDS];
    struct bentry **p;
    struct bentry *e;

    uint64_t now = rs_now_ms();

    pthread_mutex_lock(&s->lock);
    p = find(s, h, rkey, rkey_len);
    e = *p;
    if (!e && s->n < ENTRIES_MAX && (e = calloc(1, sizeof(*e) + rkey_len)) != NULL) {
        e->hash = h;
        e->key_len = rkey_len;
        memcpy(e->key, rkey, rkey_len);
        *p = e;
        s->n++;
    }
    if (e && now >= e->expires_ms) {
        /* New, or its window ended here: start again from what Redis says.
         * The counter was made with this TTL or has less left, so a local
         * window ending late only counts more, never less. */
        e->base = value;
        e->pending = 0;
        e->expires_ms = now + ttl_ms;
    } else if (e && value > e->base) {
        e->base = value; /* what every instance counted, as Redis has it */
    }
    pthread_mutex_unlock(&s->lock);
}

void rs_batch_drop(struct rs_batch *b, const char *rkey, size_t rkey_len)
{
    uint64_t h = fnv(rkey, rkey_len);
    struct bshard *s = &b->shards[h % SHARDS];
    struct bentry **p;

    pthread_mutex_lock(&s->lock);
    p = find(s, h, rkey, rkey_len);
    if (*p) {
        struct bentry *e = *p;

        *p = e->next;
        free(e);
        s->n--;
    }
    pthread_mutex_unlock(&s->lock);
}
