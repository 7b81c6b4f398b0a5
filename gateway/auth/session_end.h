/*
 * session_end.h - the hook through which the portal's logout and the
 * account API tell the OpenID Connect provider that sessions ended (a
 * logout, "end this session", "sign out everywhere"), so that every client
 * those sessions signed in to gets its back-channel logout token
 * (docs/oidc.md "Logout").  Called only once the sessions are gone from
 * the store: a client told of an end that did not happen would drop its
 * own session while the person's still works, and a retry would not tell
 * it again (its entry is taken once).  auth/ may not call the provider (a
 * folder of the same rank), so the daemon registers it at start-up, before
 * the workers start (daemon/consent_hook.c).  Without one, nothing is sent.
 */
#ifndef DZ_SESSION_END_H
#define DZ_SESSION_END_H

#include <stddef.h>

#include "core/rctx.h"

/* The session sid_b64 of fin has ended: tell its clients, then call
 * done(c, arg) exactly once.  Loop thread (dz_oidc_session_ended). */
typedef void (*dz_session_end_fn)(struct dz_rctx *c, const char *sid_b64, const char *fin,
                                  void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Register (or, with NULL, remove) the hook.  Start-up thread only. */
void dz_session_end_set_hook(dz_session_end_fn fn);

/* Tell the hook about each of the n ended sessions sids (raw 32-byte
 * session ids, copied) of fin, one after the other, then call done(c, arg)
 * exactly once (at once without a hook or with n == 0).  Loop thread. */
void dz_session_end_notify(struct dz_rctx *c, const unsigned char (*sids)[32], size_t n,
                           const char *fin, void (*done)(struct dz_rctx *c, void *arg), void *arg);

#endif
