/*
 * oidc_offloop.h - how the provider makes its store calls (oidc_state.h,
 * the expiry index, sessions) without waiting on a worker loop: with a
 * store that may wait on I/O (Redis) the calls run on the blocking pool
 * and the answer follows on the loop; with the in-process store they run
 * inline (it never waits, a thread hop would only cost).
 *
 * Unlike core/gwasync.h's dz_gw_state, a full pool answers nothing here:
 * the caller picks the answer its protocol has for "busy" (an OAuth
 * temporarily_unavailable on /token, a problem+json elsewhere), and a
 * background step (a logout hook, the revocation of a token nobody
 * received) can go on without answering at all.  Loop thread.
 */
#ifndef DZ_OIDC_OFFLOOP_H
#define DZ_OIDC_OFFLOOP_H

#include "core/rctx.h"

/* Run work(arg) (which may make synchronous store calls; it must not touch
 * c) off c's loop when the store may wait, inline otherwise; then
 * done(c, arg) on c's loop, possibly before this returns.  c is held
 * meanwhile (done still runs, with c->closed true, if the client left).
 * 0, or DZ_ERR_UNAVAILABLE when the pool is full: nothing was called,
 * nothing answered, the caller still owns arg. */
int dz_oidc_offloop(struct dz_rctx *c, void (*work)(void *arg),
                    void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Revoke the access token (its text) without waiting for the answer:
 * used when an exchange fails after the token was stored, or its client
 * left before receiving it.  A full pool deletes it at once (waiting on
 * the loop, rarely, rather than leaving a token nobody should hold). */
void dz_oidc_revoke_token(struct dz_rctx *c, const char *access_token);

#endif
