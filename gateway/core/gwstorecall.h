/*
 * gwstorecall.h - one single-use store call (put, take) made for a request
 * without waiting on its worker loop: the call runs through dz_gw_state
 * (core/gwasync.h), on the blocking pool when the store may wait on I/O
 * (Redis), inline for the in-process store.  For the login steps that
 * create or spend a nonce, a state or a code: the store's own atomicity
 * (SET NX, take = GET + DEL in one script) is unchanged, only the waiting
 * moves off the loop.
 */
#ifndef DZ_GWSTORECALL_H
#define DZ_GWSTORECALL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "core/rctx.h"

/* The answer, on c's loop: rc as dz_store_put / dz_store_take gave it;
 * value holds what take took (empty for put; wiped and freed after then
 * returns: copy what must live on).  If the client went away meanwhile,
 * then still runs with c->closed true and must only free what arg owns. */
typedef void (*dz_gw_store_then)(struct dz_rctx *c, int rc, const struct dz_buf *value, void *arg);

/* dz_store_put(ns, key, val, ttl_ms, flags), key (<= 64 bytes) and val
 * (<= 64 KiB) copied.  0: then runs (possibly before this returns).
 * Otherwise c has been answered (503: pool full, or out of memory) and
 * then is not called: the caller frees arg. */
int dz_gw_store_put(struct dz_rctx *c, const char *ns, const void *key, size_t key_len,
                    const void *val, size_t val_len, uint64_t ttl_ms, int flags,
                    dz_gw_store_then then, void *arg);

/* dz_store_take(ns, key) into a buffer of at most max bytes; as put. */
int dz_gw_store_take(struct dz_rctx *c, const char *ns, const void *key, size_t key_len, size_t max,
                     dz_gw_store_then then, void *arg);

/* Delete (ns,key) and wait for nothing: a lock, a lease or a served value
 * dropped at the end of a flow, often where the request is already gone (a
 * cancel hook).  Asynchronous on c's loop (dz_store_del_async: at once in
 * process, on the loop's Redis connection otherwise); c is not held, the
 * key is copied.  An absent key is gone already; a failure is counted by
 * the store and ends with the key's TTL.  Loop thread; ns a constant. */
void dz_gw_store_del(struct dz_rctx *c, const char *ns, const void *key, size_t key_len);

#endif
