/*
 * ops.h - the operator's endpoints: health, readiness, metrics and the
 * published keys.  Handlers run on the worker loop thread.
 */
#ifndef DZ_OPS_H
#define DZ_OPS_H

#include "core/rctx.h"

void dz_ep_healthz(struct dz_rctx *c);
void dz_ep_readyz(struct dz_rctx *c);
void dz_ep_metrics(struct dz_rctx *c);
void dz_ep_jwks(struct dz_rctx *c);

#endif
