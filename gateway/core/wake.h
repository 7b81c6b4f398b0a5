/*
 * wake.h - long polls woken by the store's wake-ups.  A browser's long poll
 * waits on its worker loop for an entry (a QR answer) that may be written on
 * another worker or another instance.  The writer publishes (ns,key) through
 * the store; the subscriber this module installs runs on whatever thread the
 * store delivers on and only posts the key to every worker loop
 * (dz_worker_post, an ev_async); each loop then calls its own waiters of
 * that key.  No waiter is ever touched from another thread.
 */
#ifndef DZ_WAKE_H
#define DZ_WAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/gen.h"

#define DZ_WAKE_NS_MAX 15
#define DZ_WAKE_KEY_MAX 64

/* One waiter, embedded in the caller's long-poll state (owned by it). */
struct dz_wake_waiter {
    struct dz_wake_waiter *next;
    struct dz_wake_waiter *prev;
    unsigned slot; /* the worker's index: the list it is on */
    char ns[DZ_WAKE_NS_MAX + 1];
    unsigned char key[DZ_WAKE_KEY_MAX];
    size_t key_len;
    void (*fn)(struct dz_wake_waiter *w); /* on the waiter's loop */
    void *arg;
    bool on_list;
};

/* Subscribe to gw->store's wake-ups and count them in gw->metrics
 * (darvaza_long_poll_wakeups_total).  Main thread, once, after the store
 * and the metrics are made and before requests run.  0 or an error. */
int dz_wake_setup(struct dz_gw *gw);

/* Wait for (ns,key) on gww's loop: fn(w) is called on that loop for each
 * wake-up of the key until dz_wake_cancel.  Loop thread of gww.  0, or
 * DZ_ERR_INVAL (ns or key too long: the caller falls back to looking). */
int dz_wake_wait(struct dz_gw_worker *gww, struct dz_wake_waiter *w, const char *ns,
                 const void *key, size_t key_len, void (*fn)(struct dz_wake_waiter *w), void *arg);

/* Stop waiting (no-op if not waiting).  Same loop thread; may be called
 * from inside fn. */
void dz_wake_cancel(struct dz_wake_waiter *w);

/* How often, in seconds, a waiting long poll also looks at the store, in
 * case a wake-up was lost: 1, or DARVAZA_DEBUG_POLL_LOOK_MS when set (read
 * by dz_wake_setup).  A test lengthens it so that only a wake-up can end a
 * wait early (docs/testing.md). */
double dz_wake_look_interval(void);

/* Wake-ups handed to a loop since start (for tests and metrics). */
unsigned long dz_wake_delivered(void);

#endif
