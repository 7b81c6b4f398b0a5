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
 * The index itself is oidc_expiry_index.h.
 */
#ifndef DZ_OIDC_EXPIRY_H
#define DZ_OIDC_EXPIRY_H

struct dz_gw_worker;

/* Start (stop) the sweeper on worker w's loop.  Loop thread of w. */
int dz_oidc_expiry_start(struct dz_gw_worker *w);
void dz_oidc_expiry_stop(struct dz_gw_worker *w);

#endif
