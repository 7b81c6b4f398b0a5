/*
 * oidc_expiry.h - back-channel logout for sessions that end by expiring
 * (idle or absolute) rather than by a logout (docs/oidc.md "Logout").
 *
 * The store has no expiry callback and no way to list keys, so the provider
 * keeps its own index: when a session first gets a code for a client with a
 * back-channel URI, its id goes into the time bucket (DZ_OIDC_EXPIRY_BUCKET_MS
 * wide) of the moment it would expire.  A bucket is a counter (dz_store_incr
 * hands each writer its own slot, so concurrent writers on several instances
 * never overwrite each other) and one slot per session.  Each instance's
 * first worker sweeps the buckets that are over (one bucket of grace for
 * clocks): it claims a bucket with a put-if-absent, so exactly one instance
 * sweeps each bucket; for each session in it, a session still alive (used
 * since: its idle expiry moved) goes into the bucket of its new expiry, and
 * one that is gone has its clients sent their logout tokens (a session that
 * ended by logout has no clients left to take, so nothing is sent twice).
 *
 * Everything lives in the store (namespaces "oidcexp*", kind sessions), so
 * it works with the in-process store and across instances with Redis.
 */
#ifndef DZ_OIDC_EXPIRY_H
#define DZ_OIDC_EXPIRY_H

#include <stdint.h>

struct dz_gw_worker;
struct dz_store;

#define DZ_OIDC_EXPIRY_BUCKET_MS 5000 /* width of a time bucket */
#define DZ_OIDC_EXPIRY_TICK_MS 2500   /* how often a sweeper looks */
#define DZ_OIDC_EXPIRY_SLOTS_MAX 4096 /* sessions swept from one bucket */

/* Watch the session sid (raw, the "sess" key) of fin, which may end at
 * the latest abs_ms (unix ms): from the first call on, until it is gone.
 * 0 or the store's error (logged by the caller; the session's logout still
 * reaches its clients).  Any thread. */
int dz_oidc_expiry_watch(struct dz_store *st, const unsigned char sid[32], const char *fin,
                         int64_t abs_ms);

/* Start (stop) the sweeper on worker w's loop.  Loop thread of w. */
int dz_oidc_expiry_start(struct dz_gw_worker *w);
void dz_oidc_expiry_stop(struct dz_gw_worker *w);

#endif
