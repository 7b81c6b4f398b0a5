/*
 * portal.h - the endpoint that serves the portal's pages (docs/portal.md)
 * from the generation's file set (core/web.h): GET / and GET /static/<name>
 * with a strict Content-Security-Policy and ETags.  Worker loop thread.
 */
#ifndef DZ_PORTAL_H
#define DZ_PORTAL_H

#include "core/rctx.h"

/* GET or HEAD / (index.html) and /static/<name>; other methods 405, other
 * names 404.  The router calls it only when the generation has pages
 * (gateway.web_root), so without them these paths go where they went
 * before (the forwarder, default deny). */
void dz_ep_web(struct dz_rctx *c);

#endif
