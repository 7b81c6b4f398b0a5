/*
 * auth.h - the four ways in, as endpoints (DESIGN §4.2-4.6).  Each handler
 * gets a request context on the worker loop thread and answers it, now or
 * after asynchronous work (holding a reference on the request).
 */
#ifndef DZ_AUTH_H
#define DZ_AUTH_H

#include "core/rctx.h"

/* api_auth.c: §4.2-4.3 */
void dz_ep_register(struct dz_rctx *c);
void dz_ep_password(struct dz_rctx *c);
void dz_ep_session(struct dz_rctx *c);
/* POST /auth/logout: ends the request's session, then tells its OpenID
 * Connect clients (session_end.h), then answers 204; a session the store
 * could not delete is 503 state_unavailable and nobody is told. */
void dz_ep_logout(struct dz_rctx *c);

/* api_account.c: the person's own account; rest is the path after
 * /api/account/ (with its query) */
void dz_ep_account(struct dz_rctx *c, const char *rest);

/* auth_card.c: §4.4 */
void dz_ep_card_challenge(struct dz_rctx *c);
void dz_ep_card(struct dz_rctx *c);
void dz_ep_card_tls(struct dz_rctx *c);

/* auth_cardtls.c: the card login of a browser through the card listener
 * (docs/cards.md): start and exchange on the portal's origin, login on the
 * card listener only. */
void dz_ep_card_tls_start(struct dz_rctx *c);
void dz_ep_card_tls_login(struct dz_rctx *c);
void dz_ep_card_tls_exchange(struct dz_rctx *c);

/* auth_mobile.c: §4.5 (id: the rest of the path after /auth/mobile/) */
void dz_ep_mobile_start(struct dz_rctx *c);
void dz_ep_mobile_poll(struct dz_rctx *c, const char *id);

/* auth_qr.c: §4.6 (rest: the path after /auth/qr/) */
void dz_ep_qr_start(struct dz_rctx *c);
void dz_ep_qr_sub(struct dz_rctx *c, const char *rest);

#endif
