/*
 * startlimit.h - limits on what anyone may start without signing in: a QR
 * login, a mobile login, a card challenge, a registration.  Each creates
 * state (and a mobile start a billed MSSP session), so each is counted per
 * client address (core/addrkey.h: an IPv6 /64 counts as one) and for all
 * addresses together, per endpoint and minute, in the store's rate budget.
 * Loop thread only.  The synchronous forms wait on the loop for a shared
 * store; dz_start_check does not.
 */
#ifndef DZ_STARTLIMIT_H
#define DZ_STARTLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rctx.h"

/*
 * May request c start one more `endpoint` (a short constant: "qr",
 * "mobile", "card_challenge", "register")?  true: go on.  false: c has
 * been answered — 429 rate_limited with Retry-After (the seconds left in
 * the minute) when the address (limits.starts_per_address) or everyone
 * (limits.starts_global) is over the limit, or 503 state_unavailable when
 * the count cannot be kept (fail closed).  An address over its own limit
 * is refused before it is counted globally, so one address cannot use up
 * the global budget.
 */
bool dz_start_allowed(struct dz_rctx *c, const char *endpoint);

/* The same with its own window (fixed, aligned to multiples of window_ms)
 * and limits; global 0: no global limit.  (QR logins pending per address
 * are counted so, over one QR lifetime.) */
bool dz_start_allowed_in(struct dz_rctx *c, const char *endpoint, uint64_t window_ms,
                         unsigned per_address, unsigned global);

/* One limit of dz_start_check: endpoint (a short constant), its window
 * and limits as dz_start_allowed_in's. */
struct dz_start_limit {
    const char *endpoint;
    uint64_t window_ms;
    unsigned per_address;
    unsigned global;
};

#define DZ_START_LIMITS_MAX 4

/* The limit dz_start_allowed applies to endpoint (one minute, the config's
 * limits.starts_per_address and starts_global). */
struct dz_start_limit dz_start_limit_of(struct dz_rctx *c, const char *endpoint);

/* Count one start against each of n (<= DZ_START_LIMITS_MAX) limits in
 * turn, as dz_start_allowed_in does, without waiting on the loop; then(c,
 * ok, arg) once, possibly before returning.  ok true: go on.  ok false: c
 * has been answered (429 rate_limited / 503 state_unavailable), or the
 * client went away meanwhile (c->closed): only free what arg owns.  c is
 * held until then runs. */
void dz_start_check(struct dz_rctx *c, const struct dz_start_limit *limits, size_t n,
                    void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg);

#endif
