/*
 * store_redis_flight.c - one GET in flight per cached key per loop
 * (store_redis_int.h rs_flight_*).
 *
 * A session used by many requests at once (a client with many streams,
 * a service fanning out with one token) misses the near cache for all of
 * them at the same moment: when its cached value ages out, or when a touch
 * (a write) invalidated it.  Without coalescing each of those requests
 * sends its own GET for the same key.  Here the first miss sends the GET
 * and later misses on the same loop wait for its answer.
 *
 * A late joiner must not get a value older than what it could have read
 * itself: it joins only if no invalidation (rs_cache_seq, bumped by every
 * invalidation, local write and flush) came since the GET it would join
 * was sent.  Otherwise it sends its own GET, which becomes the one later
 * misses join.  Only while the near cache is usable (the subscriber
 * connected): without it invalidations are not heard, and the sequence
 * says nothing.
 *
 * The table is per loop (it hangs on the loop's asynchronous connection,
 * store_redis_aconn.c rs_aconn_flights; store_redis.c passes it, and only
 * while the near cache is usable): a loop runs on one thread, so no lock.
 */
#include "state/store_redis_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/compat.h"

struct waiter {
    struct waiter *next;
    dz_store_cb cb;
    void *arg;
};

struct rs_flight {
    struct rs_flight **bucket; /* the list it is in (NULL: out of the table) */
    struct rs_flight *next;
    uint64_t seq;
    struct waiter *first, *last;
    size_t key_len;
    char key[];
};

static size_t bucket_of(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ULL;
    return (size_t)(h % RS_FLIGHT_BUCKETS);
}

static void unlink_flight(struct rs_flight *f)
{
    struct rs_flight **p;

    if (!f->bucket)
        return;
    for (p = f->bucket; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    f->bucket = NULL;
}

static struct rs_flight *find(struct rs_flight **b, const char *rkey, size_t n)
{
    for (struct rs_flight *f = *b; f; f = f->next)
        if (f->key_len == n && memcmp(f->key, rkey, n) == 0)
            return f;
    return NULL;
}

bool rs_flight_join(struct rs_flight **table, const char *rkey, size_t n, uint64_t seq,
                    dz_store_cb cb, void *arg)
{
    struct rs_flight *f;
    struct waiter *w;

    if (!table)
        return false;
    f = find(&table[bucket_of(rkey, n)], rkey, n);
    if (!f || f->seq != seq)
        return false;
    w = malloc(sizeof(*w));
    if (!w)
        return false;
    *w = (struct waiter){NULL, cb, arg};
    if (f->last)
        f->last->next = w;
    else
        f->first = w;
    f->last = w;
    return true;
}

struct rs_flight *rs_flight_start(struct rs_flight **table, const char *rkey, size_t n,
                                  uint64_t seq)
{
    struct rs_flight **b;
    struct rs_flight *old;
    struct rs_flight *f;

    if (!table)
        return NULL;
    f = calloc(1, sizeof(*f) + n);
    if (!f)
        return NULL;
    b = &table[bucket_of(rkey, n)];
    /* A flight of an older sequence (an invalidation came since it was
     * sent) is no longer joined: this one takes its place. */
    old = find(b, rkey, n);
    if (old)
        unlink_flight(old);
    f->seq = seq;
    f->key_len = n;
    memcpy(f->key, rkey, n);
    f->next = *b;
    *b = f;
    f->bucket = b;
    return f;
}

void rs_flight_end(struct rs_flight *f, int rc, const void *data, size_t len)
{
    struct waiter *w;

    if (!f)
        return;
    /* Out of the table first: a waiter's callback may read the same key
     * again, and must then send a GET of its own. */
    unlink_flight(f);
    w = f->first;
    while (w) {
        struct waiter *n = w->next;

        w->cb(w->arg, rc, 0, rc == 0 ? data : NULL, rc == 0 ? len : 0);
        free(w);
        w = n;
    }
    free(f);
}

void rs_flight_drop_all(struct rs_flight **table)
{
    for (size_t i = 0; i < RS_FLIGHT_BUCKETS; i++) {
        while (table[i]) {
            struct rs_flight *f = table[i];

            table[i] = f->next;
            while (f->first) {
                struct waiter *w = f->first;

                f->first = w->next;
                free(w);
            }
            free(f);
        }
    }
}
