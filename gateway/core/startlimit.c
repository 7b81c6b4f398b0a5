/*
 * startlimit.c - per-address and global limits on unauthenticated starts
 * (see startlimit.h).
 */
#include "core/startlimit.h"

#include <stdio.h>
#include <string.h>

#include "base/b64.h"
#include "core/addrkey.h"
#include "core/config.h"
#include "state/store.h"

#include "base/compat.h"

#define NS "lim_start"

/* Count one start under key (endpoint, window number, who); 0 allowed, 1
 * over limit, < 0 the store's error. */
static int count(struct dz_rctx *c, const char *endpoint, int64_t window, uint64_t window_ms,
                 const char *who, size_t who_len, unsigned limit)
{
    char key[160];
    int64_t n = 0;
    int len;
    int rc;

    len = snprintf(key, sizeof(key), "%s|%lld|", endpoint, (long long)window);
    if (len < 0 || (size_t)len + who_len > sizeof(key))
        return -1;
    memcpy(key + len, who, who_len);
    rc = dz_store_incr(c->gw->store, NS, key, (size_t)len + who_len, window_ms, &n);
    if (rc < 0)
        return rc;
    return n > (int64_t)limit ? 1 : 0;
}

bool dz_start_allowed_in(struct dz_rctx *c, const char *endpoint, uint64_t window_ms,
                         unsigned per_address, unsigned global)
{
    int64_t now = dz_unix_ms();
    int64_t window = now / (int64_t)window_ms;
    struct dz_addr_key ak;
    char retry[24];
    int rc;

    rc = dz_addr_key(dz_req_peer_ip(c->req), &ak);
    if (rc == 0)
        rc = count(c, endpoint, window, window_ms, (const char *)ak.b, ak.len, per_address);
    if (rc == 0 && global)
        rc = count(c, endpoint, window, window_ms, "*", 1, global);
    if (rc < 0) {
        dz_rctx_state_unavailable(c, rc);
        return false;
    }
    if (rc > 0) {
        snprintf(retry, sizeof(retry), "%lld",
                 (long long)(((int64_t)window_ms - now % (int64_t)window_ms + 999) / 1000));
        dz_rctx_problem_h(c, "rate_limited", "too many starts; wait for the window to end",
                          &(struct dz_hdr){"retry-after", retry}, 1);
        return false;
    }
    return true;
}

bool dz_start_allowed(struct dz_rctx *c, const char *endpoint)
{
    const struct dz_config_limits *l = &c->gen->config->limits;

    return dz_start_allowed_in(c, endpoint, 60000, l->starts_per_address, l->starts_global);
}
