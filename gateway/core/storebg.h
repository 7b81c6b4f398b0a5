/*
 * storebg.h - a store deletion that nobody waits for: a lock, a lease or a
 * served value dropped at the end of a flow, often where the request is
 * already gone (a cancel hook).  It must not wait on the loop for a shared
 * store, and nothing after it depends on its answer.
 */
#ifndef DZ_STOREBG_H
#define DZ_STOREBG_H

#include <stddef.h>

#include "core/rctx.h"

/* Delete (ns,key) from c's store: at once for the in-process store, on the
 * blocking pool for a store that may wait (Redis).  c is not held: the key
 * is copied and the deletion outlives the request.  When the pool refuses
 * the job (full or stopping), the deletion is made here, waiting: a lock
 * left behind would refuse the phone's next request until it expires.
 * Loop thread only; ns a constant string; key at most 128 bytes (longer
 * keys are deleted here, waiting). */
void dz_gw_store_del(struct dz_rctx *c, const char *ns, const void *key, size_t key_len);

#endif
