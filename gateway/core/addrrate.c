/*
 * addrrate.c - calls counted per client address (see addrrate.h).
 */
#include "core/addrrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/addrkey.h"
#include "state/store.h"

#include "base/compat.h"

struct counting {
    struct dz_rctx *c;
    const struct dz_addr_rate *r;
};

/* The count is known (or the store could not keep it: 503, fail closed). */
static void counted(void *arg, int rc, int64_t count, const void *data, size_t len)
{
    struct counting *k = arg;
    struct dz_rctx *c = k->c;
    char retry[24];

    (void)data;
    (void)len;
    snprintf(retry, sizeof(retry), "%lld", (long long)(k->r->window_ms / 1000));
    if (c->closed)
        ; /* nobody to answer */
    else if (rc != 0)
        dz_rctx_state_unavailable(c, rc);
    else if (count > k->r->limit(c))
        dz_rctx_problem_h(c, "rate_limited", k->r->detail, &(struct dz_hdr){"retry-after", retry},
                          1);
    else
        k->r->go(c);
    dz_rctx_release(c);
    free(k);
}

void dz_rctx_limit_address(struct dz_rctx *c, const struct dz_addr_rate *r)
{
    struct dz_addr_key ak;
    char key[32 + sizeof(ak.b)];
    struct counting *k;
    int n;

    /* An IPv6 client counts by its /64 (addrkey.h): one host holds a whole
     * /64, and a budget per single address would be 2^64 budgets. */
    if (dz_addr_key(dz_req_peer_ip(c->req), &ak) != 0) {
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        return;
    }
    n = snprintf(key, sizeof(key), "%lld|", (long long)(dz_unix_ms() / r->window_ms));
    if (n < 0 || (size_t)n + ak.len > sizeof(key) || !(k = malloc(sizeof(*k)))) {
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        return;
    }
    memcpy(key + n, ak.b, ak.len);
    k->c = c;
    k->r = r;
    dz_rctx_hold(c);
    dz_store_incr_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), r->ns, key,
                        (size_t)n + ak.len, (uint64_t)r->window_ms, counted, k);
}
