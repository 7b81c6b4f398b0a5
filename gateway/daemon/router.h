/*
 * router.h - the engine's callbacks for darvazad: makes the request context,
 * dispatches to the gateway's own endpoints or to the forwarder, and records
 * metrics when the stream closes.
 */
#ifndef DZ_ROUTER_H
#define DZ_ROUTER_H

#include "http/httpd.h"

struct dz_gen;
struct dz_gw_worker;

/* struct dz_httpd_handlers callbacks; app is the struct dz_gw. */
void *dz_router_worker_init(struct dz_worker *w, void *app);
void dz_router_worker_fini(struct dz_worker *w, void *wdata);
void dz_router_on_headers(struct dz_req *req, void *wdata);
void dz_router_on_request(struct dz_req *req, void *wdata);

/* Give a worker a new generation (posted from the main thread on reload). */
void dz_router_set_gen(struct dz_gw_worker *gw, struct dz_gen *gen);

#endif
