/*
 * api_access.h - who accessed my data (docs/transparency.md, docs/api.md):
 *   GET /api/my/access[?before=ID][&limit=N]  a signed-in person's access
 *       list, newest first, each entry with its inclusion proof;
 *   GET /.well-known/audit-head               this instance's latest signed
 *       tree head.
 * Worker loop thread; the index and the tree are read on the blocking pool.
 */
#ifndef DZ_API_ACCESS_H
#define DZ_API_ACCESS_H

#include "core/rctx.h"

#define DZ_ACCESS_LIMIT_DEFAULT 20

void dz_ep_my_access(struct dz_rctx *c);
void dz_ep_audit_head(struct dz_rctx *c);

#endif
