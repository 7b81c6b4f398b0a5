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

#define WINDOW_MS 60000
#define NS "lim_start"

/* Count one start under key (endpoint, who, minute); 0 allowed, 1 over
 * limit, < 0 the store's error. */
static int count(struct dz_rctx *c, const char *endpoint, const char *who, size_t who_len,
                 int64_t minute, unsigned limit)
{
    char key[160];
    int64_t n = 0;
    int len;
    int rc;

    len = snprintf(key, sizeof(key), "%s|%lld|", endpoint, (long long)minute);
    if (len < 0 || (size_t)len + who_len > sizeof(key))
        return -1;
    memcpy(key + len, who, who_len);
    rc = dz_store_incr(c->gw->store, NS, key, (size_t)len + who_len, WINDOW_MS, &n);
    if (rc < 0)
        return rc;
    return n > (int64_t)limit ? 1 : 0;
}

bool dz_start_allowed(struct dz_rctx *c, const char *endpoint)
{
    const struct dz_config_limits *l = &c->gen->config->limits;
    int64_t now = dz_unix_ms();
    int64_t minute = now / WINDOW_MS;
    struct dz_addr_key ak;
    char retry[16];
    int rc;

    rc = dz_addr_key(dz_req_peer_ip(c->req), &ak);
    if (rc == 0)
        rc = count(c, endpoint, (const char *)ak.b, ak.len, minute, l->starts_per_address);
    if (rc == 0)
        rc = count(c, endpoint, "*", 1, minute, l->starts_global);
    if (rc < 0) {
        dz_rctx_state_unavailable(c, rc);
        return false;
    }
    if (rc > 0) {
        snprintf(retry, sizeof(retry), "%lld",
                 (long long)((WINDOW_MS - now % WINDOW_MS + 999) / 1000));
        dz_rctx_problem_h(c, "rate_limited", "too many starts; wait for the next minute",
                          &(struct dz_hdr){"retry-after", retry}, 1);
        return false;
    }
    return true;
}
