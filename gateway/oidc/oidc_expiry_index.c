/*
 * oidc_expiry_index.c - see oidc_expiry_index.h.
 */
#include "oidc/oidc_expiry_index.h"

#include <string.h>

#include "base/err.h"
#include "core/rctx.h"
#include "state/session.h"
#include "state/store.h"

#include "base/compat.h"

#define NS_SLOT DZ_OIDC_NS_EXPIRY
#define NS_WATCH "oidcexpw" /* sid -> already in the index */
#define KEEP_MS DZ_OIDC_EXPIRY_KEEP_MS

void dz_oidc_expiry_bucket_key(int64_t b, unsigned char out[8])
{
    for (int i = 7; i >= 0; i--, b >>= 8)
        out[i] = (unsigned char)(b & 0xff);
}

int dz_oidc_expiry_enqueue(struct dz_store *st, const unsigned char sid[32], const char *fin,
                           int64_t due_ms, int64_t now)
{
    int64_t b = due_ms / DZ_OIDC_EXPIRY_BUCKET_MS;
    unsigned char key[12];
    unsigned char val[32 + 8];
    size_t flen = strnlen(fin, 8);
    uint64_t ttl = (uint64_t)(due_ms > now ? due_ms - now : 0) + KEEP_MS;
    int64_t slot = 0;
    int rc;

    if (b <= now / DZ_OIDC_EXPIRY_BUCKET_MS)
        b = now / DZ_OIDC_EXPIRY_BUCKET_MS + 1;
    dz_oidc_expiry_bucket_key(b, key);
    rc = dz_store_incr(st, NS_SLOT, key, 8, ttl, &slot);
    if (rc != 0)
        return rc;
    key[8] = (unsigned char)(slot >> 24);
    key[9] = (unsigned char)(slot >> 16);
    key[10] = (unsigned char)(slot >> 8);
    key[11] = (unsigned char)slot;
    memcpy(val, sid, 32);
    memcpy(val + 32, fin, flen);
    return dz_store_put(st, NS_SLOT, key, sizeof(key), val, 32 + flen, ttl, 0);
}

int dz_oidc_expiry_watch(struct dz_store *st, const unsigned char sid[32], const char *fin,
                         int64_t abs_ms)
{
    int64_t now = dz_unix_ms();
    uint64_t left = 0;
    int rc;

    if (abs_ms <= now)
        return 0;
    /* Once per session: later codes of the same session change nothing
     * (the sweeper follows the session's idle expiry itself). */
    rc = dz_store_put(st, NS_WATCH, sid, 32, "1", 1, (uint64_t)(abs_ms - now) + KEEP_MS,
                      DZ_STORE_NX);
    if (rc == DZ_ERR_EXISTS)
        return 0;
    if (rc != 0)
        return rc;
    rc = dz_store_ttl(st, DZ_SESSION_NS, sid, 32, &left);
    if (rc == 0)
        rc = dz_oidc_expiry_enqueue(st, sid, fin, now + (int64_t)left, now);
    if (rc != 0)
        dz_store_del(st, NS_WATCH, sid, 32); /* a later code tries again */
    return rc;
}
