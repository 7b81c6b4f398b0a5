/*
 * endpoints.h - the gateway's own endpoints and the forwarder.  Each handler
 * gets a request context on the worker loop thread and answers it, now or
 * after asynchronous work (holding a reference on the request).
 */
#ifndef DZ_ENDPOINTS_H
#define DZ_ENDPOINTS_H

#include "rctx.h"

/* api_auth.c: §4.2-4.3 */
void dz_ep_register(struct dz_rctx *c);
void dz_ep_password(struct dz_rctx *c);
void dz_ep_session(struct dz_rctx *c);
void dz_ep_logout(struct dz_rctx *c);

/* auth_card.c: §4.4 */
void dz_ep_card_challenge(struct dz_rctx *c);
void dz_ep_card(struct dz_rctx *c);
void dz_ep_card_tls(struct dz_rctx *c);

/* auth_mobile.c: §4.5 (id: the rest of the path after /auth/mobile/) */
void dz_ep_mobile_start(struct dz_rctx *c);
void dz_ep_mobile_poll(struct dz_rctx *c, const char *id);

/* auth_qr.c: §4.6 (rest: the path after /auth/qr/) */
void dz_ep_qr_start(struct dz_rctx *c);
void dz_ep_qr_sub(struct dz_rctx *c, const char *rest);

/* sign_mobile.c: §4.7 document signing with a mobile signature (id: the
 * rest of the path after /sign/mobile/) */
void dz_ep_sign_mobile_start(struct dz_rctx *c);
void dz_ep_sign_mobile_poll(struct dz_rctx *c, const char *id);

/* api_documents.c: §4.7 validation report */
void dz_ep_documents_verify(struct dz_rctx *c);

/* api_ops.c: health, readiness, metrics, published keys */
void dz_ep_healthz(struct dz_rctx *c);
void dz_ep_readyz(struct dz_rctx *c);
void dz_ep_metrics(struct dz_rctx *c);
void dz_ep_jwks(struct dz_rctx *c);

/* forward.c: §4.8, every path the policies route */
void dz_forward(struct dz_rctx *c);

/* Session answer body (without the token) shared by every login path. */
json_t *dz_session_answer(const struct dz_session *s, const char *token);

#endif
