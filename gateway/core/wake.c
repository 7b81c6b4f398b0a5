/*
 * wake.c - the store's wake-ups handed to the worker loops.  The subscriber
 * runs on a foreign thread (the publisher's, or the store backend's own): it
 * copies (ns,key) and posts it to every worker; nothing else.  Each loop
 * owns the list of its waiters (one list per worker index, touched only by
 * that loop), so waiting and cancelling need no lock.
 */
#include "core/wake.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "core/metrics.h"
#include "http/httpd.h"
#include "state/store.h"

#include "base/compat.h"

#define SLOTS 64 /* as struct dz_gw's workers[] */

struct note {
    struct dz_gw_worker *gww;
    char ns[DZ_WAKE_NS_MAX + 1];
    unsigned char key[DZ_WAKE_KEY_MAX];
    size_t key_len;
};

/* heads[i]: waiters of worker i, touched by worker i's loop only. */
static struct dz_wake_waiter *heads[SLOTS];
static atomic_ulong delivered;
static double look_interval = 1.0; /* set once by dz_wake_setup, before requests */
static atomic_long waiting;

/* On a worker's loop. */
static void on_loop(void *arg)
{
    struct note *n = arg;
    unsigned slot = dz_worker_index(n->gww->worker);
    struct dz_wake_waiter *w = slot < SLOTS ? heads[slot] : NULL;

    while (w) {
        /* fn may cancel w itself: take the next one first. */
        struct dz_wake_waiter *next = w->next;
        if (w->key_len == n->key_len && strcmp(w->ns, n->ns) == 0 &&
            memcmp(w->key, n->key, n->key_len) == 0) {
            atomic_fetch_add(&delivered, 1);
            w->fn(w);
        }
        w = next;
    }
    free(n);
}

/* Any thread: only copies and posts. */
static void on_publish(void *arg, const char *ns, const void *key, size_t key_len)
{
    struct dz_gw *gw = arg;
    size_t ns_len = strlen(ns);

    if (ns_len > DZ_WAKE_NS_MAX || key_len > DZ_WAKE_KEY_MAX)
        return; /* nobody can be waiting for it */
    for (unsigned i = 0; i < gw->nworkers && i < SLOTS; i++) {
        struct dz_gw_worker *gww = gw->workers[i];
        struct note *n;

        if (!gww)
            continue;
        n = malloc(sizeof(*n));
        if (!n)
            return; /* best effort: the waiters' own look finds it */
        n->gww = gww;
        memcpy(n->ns, ns, ns_len + 1);
        memcpy(n->key, key, key_len);
        n->key_len = key_len;
        if (dz_worker_post(gww->worker, on_loop, n) != 0)
            free(n); /* the worker is stopping */
    }
}

static uint64_t delivered_fn(void *arg)
{
    return dz_wake_delivered();
}

static uint64_t waiting_fn(void *arg)
{
    long n = atomic_load(&waiting);
    return n > 0 ? (uint64_t)n : 0;
}

/* DARVAZA_DEBUG_POLL_LOOK_MS: a whole number of milliseconds, 1 .. 3600000;
 * anything else keeps the default (a test hook, not a setting). */
static void read_look_interval(void)
{
    const char *v = getenv("DARVAZA_DEBUG_POLL_LOOK_MS");
    char *end;
    long ms;

    if (!v || !*v)
        return;
    errno = 0;
    ms = strtol(v, &end, 10);
    if (errno == 0 && *end == '\0' && ms >= 1 && ms <= 3600000) {
        look_interval = (double)ms / 1000;
        /* A test hook: said, so that one left in a unit file is seen. */
        dz_log(DZ_LOG_WARN, "debug_hook",
               "DARVAZA_DEBUG_POLL_LOOK_MS: waiting long polls look at the store every %ld ms", ms);
    }
}

double dz_wake_look_interval(void)
{
    return look_interval;
}

int dz_wake_setup(struct dz_gw *gw)
{
    int rc;

    read_look_interval();
    rc = dz_store_subscribe(gw->store, on_publish, gw);

    if (rc == 0 && gw->metrics)
        rc = dz_metrics_counter_fn(gw->metrics, "darvaza_long_poll_wakeups_total",
                                   "Waiting long polls woken by a wake-up of the store (an answer "
                                   "written on this or another instance)",
                                   delivered_fn, NULL);
    if (rc == 0 && gw->metrics)
        rc = dz_metrics_gauge_fn(gw->metrics, "darvaza_long_polls_waiting",
                                 "Long polls waiting for a wake-up now", waiting_fn, NULL);
    return rc;
}

int dz_wake_wait(struct dz_gw_worker *gww, struct dz_wake_waiter *w, const char *ns,
                 const void *key, size_t key_len, void (*fn)(struct dz_wake_waiter *w), void *arg)
{
    unsigned slot = dz_worker_index(gww->worker);
    size_t ns_len = strlen(ns);

    memset(w, 0, sizeof(*w));
    if (slot >= SLOTS || ns_len > DZ_WAKE_NS_MAX || key_len > DZ_WAKE_KEY_MAX)
        return DZ_ERR_INVAL;
    w->slot = slot;
    memcpy(w->ns, ns, ns_len + 1);
    memcpy(w->key, key, key_len);
    w->key_len = key_len;
    w->fn = fn;
    w->arg = arg;
    w->next = heads[slot];
    if (w->next)
        w->next->prev = w;
    heads[slot] = w;
    w->on_list = true;
    atomic_fetch_add(&waiting, 1);
    return 0;
}

void dz_wake_cancel(struct dz_wake_waiter *w)
{
    if (!w || !w->on_list)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        heads[w->slot] = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->on_list = false;
    atomic_fetch_sub(&waiting, 1);
}

unsigned long dz_wake_delivered(void)
{
    return atomic_load(&delivered);
}
