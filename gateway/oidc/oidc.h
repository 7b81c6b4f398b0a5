/*
 * oidc.h - the OpenID Connect provider (docs/oidc.md): registered
 * information systems at other origins sign people in through the gateway.
 * Endpoints, each called on the worker loop thread with a request context
 * and answering it (now or after asynchronous work):
 *
 *   GET  /.well-known/openid-configuration   oidc_discovery.c
 *   GET, POST /authorize; GET /authorize/resume oidc_authorize.c
 *   GET, POST /authorize/consent             oidc_consent.c
 *   POST /token                              oidc_token.c
 *   GET, POST /userinfo                      oidc_userinfo.c
 *   GET  /logout                             oidc_logout.c
 *
 * The clients are the policies' "oidc:" blocks (policy/policy_oidc.h); with
 * none, every endpoint but discovery answers as if the provider were off.
 */
#ifndef DZ_OIDC_H
#define DZ_OIDC_H

#include <stdbool.h>

#include "core/rctx.h"

/* Answer the request if its path is one of the provider's; false (nothing
 * done) otherwise.  Loop thread. */
bool dz_oidc_route(struct dz_rctx *c);

/* The session sid_b64 of fin ends (logout at the gateway, RP-initiated
 * logout): sign a logout token for the back-channel URI of every client it
 * signed in to, start the POSTs (not waited for), audit them, then call
 * done(c, arg), always exactly once, before c is answered (the caller
 * answers in done).  Loop thread (oidc_backchannel.c); the clients are
 * taken off the loop (oidc_offloop.h), so done may come later, from the
 * loop, with c->closed true if the client left meanwhile. */
void dz_oidc_session_ended(struct dz_rctx *c, const char *sid_b64, const char *fin,
                           void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* The issuer: the gateway's origin. */
const char *dz_oidc_issuer(const struct dz_rctx *c);

#endif
