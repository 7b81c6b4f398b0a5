/*
 * addrrate.h - a public endpoint's calls counted per client address (IPv6:
 * per /64, addrkey.h) in fixed windows, in the state store, without waiting
 * on the worker loop (the count answers at once for the in-process store).
 * Used by /api/documents/verify and /api/transparency/consistency.
 */
#ifndef DZ_ADDRRATE_H
#define DZ_ADDRRATE_H

#include <stdint.h>

#include "core/rctx.h"

struct dz_addr_rate {
    const char *ns;                            /* the store's namespace for the counts */
    int64_t window_ms;                         /* a fixed window; Retry-After is its length */
    int64_t (*limit)(const struct dz_rctx *c); /* calls allowed per window */
    const char *detail;                        /* of the 429 */
    void (*go)(struct dz_rctx *c);             /* under the limit: serve */
};

/* Count this call; then, on c's loop: go(c) under the limit, 429
 * rate_limited (Retry-After) over it, 503 when the store cannot count
 * (fail closed), nothing when the client went away.  r must outlive the
 * call (a static). */
void dz_rctx_limit_address(struct dz_rctx *c, const struct dz_addr_rate *r);

#endif
