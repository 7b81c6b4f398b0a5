/*
 * oidc_endpoints.h - the provider's endpoint handlers, dispatched by
 * oidc_route.c (see oidc.h for the paths).  Loop thread; each answers c.
 */
#ifndef DZ_OIDC_ENDPOINTS_H
#define DZ_OIDC_ENDPOINTS_H

#include "core/rctx.h"

void dz_oidc_ep_discovery(struct dz_rctx *c);
void dz_oidc_ep_authorize(struct dz_rctx *c);
void dz_oidc_ep_authorize_post(struct dz_rctx *c);
void dz_oidc_ep_resume(struct dz_rctx *c);
void dz_oidc_ep_consent_get(struct dz_rctx *c);
void dz_oidc_ep_consent_post(struct dz_rctx *c);
void dz_oidc_ep_consents(struct dz_rctx *c);
void dz_oidc_ep_token(struct dz_rctx *c);
void dz_oidc_ep_userinfo(struct dz_rctx *c);
void dz_oidc_ep_logout(struct dz_rctx *c);

#endif
