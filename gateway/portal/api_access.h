/*
 * api_access.h - who accessed my data (docs/transparency.md, docs/api.md):
 *   GET /api/my/access[?before=ID][&limit=N]  a signed-in person's access
 *       list, newest first, each entry with its inclusion proof;
 *   GET /.well-known/audit-head               this instance's latest signed
 *       tree head;
 *   GET /api/transparency/consistency?first=M&second=N  the consistency
 *       proof between two published heads (api_consistency.c).
 * Worker loop thread; the index and the tree are read on the blocking pool.
 */
#ifndef DZ_API_ACCESS_H
#define DZ_API_ACCESS_H

#include "core/rctx.h"

#define DZ_ACCESS_LIMIT_DEFAULT 20
#define DZ_CONSISTENCY_RATE 60 /* consistency proofs a minute per address (/64) */

void dz_ep_my_access(struct dz_rctx *c);
void dz_ep_audit_head(struct dz_rctx *c);
void dz_ep_audit_consistency(struct dz_rctx *c);

#endif
