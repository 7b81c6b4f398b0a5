/*
 * sign.h - the signature endpoints (DESIGN §4.7): documents signed with a
 * mobile signature and the validation report.  Handlers run on the worker
 * loop thread, like every endpoint.
 */
#ifndef DZ_SIGN_H
#define DZ_SIGN_H

#include "core/rctx.h"

/* sign_mobile.c: §4.7 document signing with a mobile signature (id: the
 * rest of the path after /sign/mobile/) */
void dz_ep_sign_mobile_start(struct dz_rctx *c);
void dz_ep_sign_mobile_poll(struct dz_rctx *c, const char *id);

/* api_documents.c: §4.7 validation report */
void dz_ep_documents_verify(struct dz_rctx *c);

#endif
