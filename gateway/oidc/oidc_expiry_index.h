/*
 * oidc_expiry_index.h - the store index of when sessions that signed in to
 * a client with a back-channel URI would expire, which the expiry sweeper
 * (oidc_expiry.h) reads: time buckets DZ_OIDC_EXPIRY_BUCKET_MS wide, each
 * a counter (dz_store_incr hands every writer its own slot, so concurrent
 * writers on several instances never overwrite each other) and one slot per
 * session holding its id and FIN.  Thread-safe; synchronous store calls
 * (off the loop: oidc_offloop.h, the sweeper's pool job).
 */
#ifndef DZ_OIDC_EXPIRY_INDEX_H
#define DZ_OIDC_EXPIRY_INDEX_H

#include <stdint.h>

struct dz_store;

#define DZ_OIDC_NS_EXPIRY "oidcexp"             /* bucket -> counter; bucket||slot -> sid||fin */
#define DZ_OIDC_EXPIRY_BUCKET_MS 5000           /* width of a time bucket */
#define DZ_OIDC_EXPIRY_TICK_MS 2500             /* how often a sweeper looks */
#define DZ_OIDC_EXPIRY_SLOTS_MAX 4096           /* sessions swept from one bucket */
#define DZ_OIDC_EXPIRY_KEEP_MS (10 * 60 * 1000) /* entries outlive their bucket by this */

/* Watch the session sid (raw, the "sess" key) of fin, which may end at
 * the latest abs_ms (unix ms): once per session, put it in the bucket of
 * its current expiry.  0 or the store's error.  Any thread. */
int dz_oidc_expiry_watch(struct dz_store *st, const unsigned char sid[32], const char *fin,
                         int64_t abs_ms);

/* Put sid of fin into the bucket of due_ms (never one at or before now's:
 * those may be swept already).  0 or the store's error. */
int dz_oidc_expiry_enqueue(struct dz_store *st, const unsigned char sid[32], const char *fin,
                           int64_t due_ms, int64_t now);

/* The 8-byte key of bucket b (big-endian). */
void dz_oidc_expiry_bucket_key(int64_t b, unsigned char out[8]);

#endif
