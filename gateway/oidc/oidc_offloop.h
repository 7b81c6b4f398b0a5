/*
 * oidc_offloop.h - the provider's store steps run off the worker loop with
 * core/gwasync.h's dz_gw_state_try (a full pool answers nothing there: the
 * provider picks its own answer for "busy", an OAuth temporarily_unavailable
 * on /token, a problem+json elsewhere, or none in a background step such as
 * a logout hook).  This file keeps what only the provider needs besides:
 * revoking a token nobody received.  Loop thread.
 */
#ifndef DZ_OIDC_OFFLOOP_H
#define DZ_OIDC_OFFLOOP_H

#include "core/gwasync.h"
#include "core/rctx.h"

/* Revoke the access token (its text) without waiting for the answer:
 * used when an exchange fails after the token was stored, or its client
 * left before receiving it.  A full pool deletes it at once (waiting on
 * the loop, rarely, rather than leaving a token nobody should hold). */
void dz_oidc_revoke_token(struct dz_rctx *c, const char *access_token);

#endif
