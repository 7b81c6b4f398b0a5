/*
 * batchsign.h - assertions of services set to `assertion: { signing: batch }`
 * signed together: the requests a worker sees in one turn of its loop share
 * one ES256 signature over a Merkle root (keys/jws_batch.h,
 * docs/assertions.md).
 *
 * Bounds (a request is never held for a timer): a batch is signed when the
 * loop is about to wait for more events (an ev_prepare watcher, so a lone
 * request waits only for the rest of the current loop turn), when it holds
 * DZ_BATCHSIGN_MAX requests, or when its oldest request has waited
 * DZ_BATCHSIGN_WINDOW_US; whichever comes first.  Requests of different
 * audiences or configuration generations go into different batches of the
 * same flush.  With a key on a token (dz_signer_is_blocking) the batch is
 * signed on the blocking pool, one token operation for the whole batch.
 *
 * Loop thread only.  One struct dz_batchsign per worker, made on first use.
 */
#ifndef DZ_BATCHSIGN_H
#define DZ_BATCHSIGN_H

#include "core/rctx.h"
#include "keys/assertion.h"

#define DZ_BATCHSIGN_MAX 64          /* requests in one signature, at most */
#define DZ_BATCHSIGN_WINDOW_US 1000u /* the oldest request's wait, at most */

struct dz_batchsign;

/* As dz_gw_sign (core/gwasync.h), in the batch form: then(c, rc, token,
 * arg) runs on c's loop once the batch is signed (token malloc'd, the
 * callee frees), before the loop next waits.  in is copied; its strings must
 * stay valid until then runs (they point into c, which is held meanwhile). */
void dz_gw_sign_batched(struct dz_rctx *c, const struct dz_assertion_in *in,
                        void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg);

/* Free a worker's batcher once its loop has ended; requests still pending
 * (none, normally: the loop signs before it waits) get DZ_ERR_UNAVAILABLE.
 * NULL is a no-op. */
void dz_batchsign_free(struct dz_batchsign *b);

#endif
