/*
 * inflight.c - the caps on requests in flight (inflight.h).
 */
#include "forward/inflight.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#include "base/compat.h"

/* Chained: a bucket holds the callers whose key hashes to it.  256 heads
 * keep the chains short for thousands of callers in flight on a worker,
 * in 2 KiB of each worker's thread storage. */
#define BUCKETS 256

struct dz_inflight_caller {
    struct dz_inflight_caller *next;
    const struct dz_policy_service *svc;
    unsigned count;
    size_t len;
    unsigned char key[DZ_INFLIGHT_KEY_MAX];
};

/* Per worker thread: each loop counts its own callers (inflight.h). */
static _Thread_local struct dz_inflight_caller *buckets[BUCKETS];
static _Thread_local size_t ncallers;

/* FNV-1a over the key and the service's address: one table serves every
 * service of every policy generation still in flight. */
static size_t bucket_of(const struct dz_policy_service *svc, const unsigned char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)svc;

    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

static struct dz_inflight_caller *caller_find(const struct dz_policy_service *svc,
                                              const unsigned char *key, size_t len, size_t b)
{
    for (struct dz_inflight_caller *e = buckets[b]; e; e = e->next)
        if (e->svc == svc && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void caller_drop(struct dz_inflight_caller *gone)
{
    struct dz_inflight_caller **p = &buckets[bucket_of(gone->svc, gone->key, gone->len)];

    while (*p != gone)
        p = &(*p)->next;
    *p = gone->next;
    ncallers--;
    free(gone);
}

enum dz_inflight_take dz_inflight_take(const struct dz_policy_service *svc, const void *key,
                                       size_t key_len, struct dz_inflight_slot *slot)
{
    size_t len = key_len < DZ_INFLIGHT_KEY_MAX ? key_len : DZ_INFLIGHT_KEY_MAX;
    size_t b = bucket_of(svc, key, len);
    struct dz_inflight_caller *e = caller_find(svc, key, len, b);
    unsigned before;

    memset(slot, 0, sizeof(*slot));
    if (e && e->count >= svc->in_flight_per_caller)
        return DZ_INFLIGHT_CALLER_FULL;
    /* Taken first, then checked: two workers racing for the last slot
     * cannot both see room; the loser gives its increment back. */
    before = atomic_fetch_add_explicit(svc->in_flight_now, 1, memory_order_relaxed);
    if (before >= svc->in_flight) {
        atomic_fetch_sub_explicit(svc->in_flight_now, 1, memory_order_relaxed);
        return DZ_INFLIGHT_SERVICE_FULL;
    }
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            atomic_fetch_sub_explicit(svc->in_flight_now, 1, memory_order_relaxed);
            return DZ_INFLIGHT_NOMEM;
        }
        e->svc = svc;
        e->len = len;
        memcpy(e->key, key, len);
        e->next = buckets[b];
        buckets[b] = e;
        ncallers++;
    }
    e->count++;
    slot->svc = svc;
    slot->caller = e;
    slot->table = buckets;
    return DZ_INFLIGHT_TAKEN;
}

/* A give on another thread than the take: the caller's entry belongs to
 * the taking thread's table, and unlinking it here would race that thread
 * (or walk this thread's table for it and crash).  Only the service's
 * count, an atomic, is given back. */
static void give_elsewhere(struct dz_inflight_slot *slot)
{
    atomic_fetch_sub_explicit(slot->svc->in_flight_now, 1, memory_order_relaxed);
    dz_log(DZ_LOG_ERROR, "inflight_wrong_thread",
           "a request-in-flight slot of service %s was given back on another thread than the one "
           "that took it; its caller's count stays until restart",
           slot->svc->name ? slot->svc->name : "?");
    if (DZ_INFLIGHT_WRONG_THREAD_ABORTS) {
        fprintf(stderr, "inflight: slot given on the wrong thread\n");
        abort();
    }
    memset(slot, 0, sizeof(*slot));
}

void dz_inflight_give(struct dz_inflight_slot *slot)
{
    if (!slot->svc)
        return;
    /* One compare of two addresses (this thread's table is at a fixed
     * offset from its thread pointer): nothing the hot path notices. */
    if (slot->table != buckets) {
        give_elsewhere(slot);
        return;
    }
    atomic_fetch_sub_explicit(slot->svc->in_flight_now, 1, memory_order_relaxed);
    if (--slot->caller->count == 0)
        caller_drop(slot->caller);
    memset(slot, 0, sizeof(*slot));
}

unsigned dz_inflight_count(const struct dz_policy_service *svc)
{
    /* A service that is only an OpenID Connect client has no back end and
     * no count. */
    if (!svc->in_flight_now)
        return 0;
    return atomic_load_explicit(svc->in_flight_now, memory_order_relaxed);
}

size_t dz_inflight_callers(void)
{
    return ncallers;
}
