/*
 * startlimit.h - limits on what anyone may start without signing in: a QR
 * login, a mobile login, a card challenge, a registration.  Each creates
 * state (and a mobile start a billed MSSP session), so each is counted per
 * client address (core/addrkey.h: an IPv6 /64 counts as one) and for all
 * addresses together, per endpoint and minute, in the store's rate budget.
 * Loop thread only; the counts never wait on the loop (asynchronous store
 * calls).
 */
#ifndef DZ_STARTLIMIT_H
#define DZ_STARTLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rctx.h"

/* One limit of dz_start_check: endpoint (a short constant: "qr",
 * "mobile", "card_challenge", "register", ...), counted in fixed windows of
 * window_ms (aligned to its multiples; 0: a minute), at most per_address
 * starts per client address and global for all addresses together (0: no
 * global limit).  An address over its own limit is refused before it is
 * counted globally, so one address cannot use up the global budget. */
struct dz_start_limit {
    const char *endpoint;
    uint64_t window_ms;
    unsigned per_address;
    unsigned global;
};

#define DZ_START_LIMITS_MAX 4

/* The usual limit of endpoint: one minute, the config's
 * limits.starts_per_address and starts_global. */
struct dz_start_limit dz_start_limit_of(struct dz_rctx *c, const char *endpoint);

/* Count one start against each of n (<= DZ_START_LIMITS_MAX) limits in
 * turn, without waiting on the loop; then(c,
 * ok, arg) once, possibly before returning.  ok true: go on.  ok false: c
 * has been answered (429 rate_limited / 503 state_unavailable), or the
 * client went away meanwhile (c->closed): only free what arg owns.  c is
 * held until then runs. */
void dz_start_check(struct dz_rctx *c, const struct dz_start_limit *limits, size_t n,
                    void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg);

#endif
