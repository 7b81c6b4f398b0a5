/*
 * inflight.h - the caps on a service's requests in flight to its back end
 * (policy limits in_flight and in_flight_per_caller; docs/policies.md).
 *
 * The service's count is one atomic for the whole process (policy.h
 * in_flight_now): a take is an increment, a give a decrement, no lock.  The
 * per-caller count is kept per worker (a thread-local table: no lock, no
 * sharing), so a caller whose requests land on several workers may have up
 * to in_flight_per_caller on each; the service's cap still holds for the
 * sum.  A slot is taken before anything is signed or audited as sent and
 * given back when the forward ends, whichever way: the forwarder gives it
 * in fwd_free, which every path runs exactly once.  Loop thread: a slot is
 * given on the thread that took it (the slot remembers which; see
 * dz_inflight_give).
 */
#ifndef DZ_FORWARD_INFLIGHT_H
#define DZ_FORWARD_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

struct dz_inflight_caller;

/* A held slot; zeroed: none. */
struct dz_inflight_slot {
    const struct dz_policy_service *svc;
    struct dz_inflight_caller *caller;
    const void *table; /* the taking thread's caller table */
};

/* A give on another thread than the take aborts in a sanitizer build (the
 * tests find the bug at once); elsewhere it is refused as below. */
#if defined(__SANITIZE_ADDRESS__)
#define DZ_INFLIGHT_WRONG_THREAD_ABORTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DZ_INFLIGHT_WRONG_THREAD_ABORTS 1
#endif
#endif
#ifndef DZ_INFLIGHT_WRONG_THREAD_ABORTS
#define DZ_INFLIGHT_WRONG_THREAD_ABORTS 0
#endif

enum dz_inflight_take {
    DZ_INFLIGHT_TAKEN = 0,
    DZ_INFLIGHT_SERVICE_FULL, /* the service has in_flight requests in flight */
    DZ_INFLIGHT_CALLER_FULL,  /* this caller has its share in flight (on this worker) */
    DZ_INFLIGHT_NOMEM         /* the caller's count could not be kept: refuse (fail closed) */
};

/* Take a slot of svc for the caller named by key (bytes, at most
 * DZ_INFLIGHT_KEY_MAX: a tag and a FIN, or a core/addrkey.h key).  On
 * DZ_INFLIGHT_TAKEN *slot holds it; otherwise *slot is zeroed. */
#define DZ_INFLIGHT_KEY_MAX 80 /* >= sizeof(struct dz_addr_key.b) */
enum dz_inflight_take dz_inflight_take(const struct dz_policy_service *svc, const void *key,
                                       size_t key_len, struct dz_inflight_slot *slot);

/* Give the slot back and zero it; a zeroed slot is a no-op (so a second
 * give cannot count twice).  On the thread that took it: the caller's
 * count lives in that thread's table, which no other thread may touch.
 * Given on another thread (a bug), the service's count is given back (an
 * atomic), the caller's is left in its table (it counts against that
 * caller until restart: fail closed, never a corrupt table), and it is
 * logged as an error "inflight_wrong_thread"; a sanitizer build aborts. */
void dz_inflight_give(struct dz_inflight_slot *slot);

/* The service's requests in flight now, process-wide (0 for a service
 * without routes). */
unsigned dz_inflight_count(const struct dz_policy_service *svc);

/* Callers with a request in flight on this worker (entries of its table). */
size_t dz_inflight_callers(void);

#endif
