/*
 * api_ops.c - what operators and back ends poll: liveness, readiness,
 * Prometheus metrics, and the published assertion keys (JWKS).
 */
#include "ops/ops.h"

#include <string.h>

#include "base/buf.h"
#include "core/metrics.h"
#include "state/store.h"

#include "base/compat.h"

void dz_ep_healthz(struct dz_rctx *c)
{
    dz_rctx_json(c, 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
}

/* A shared state store that does not answer (state/store.h health): an
 * instance that can log nobody in is not ready. */
static bool store_down(struct dz_gw *gw)
{
    struct dz_store_health h;

    dz_store_health(gw->store, &h);
    return !h.up;
}

void dz_ep_readyz(struct dz_rctx *c)
{
    /* Draining first: a load balancer polling here must see the stop at
     * once, while the listeners still serve (drain.grace). */
    if (atomic_load(&c->gw->draining)) {
        dz_rctx_problem(c, "draining", "stopping: send new requests elsewhere");
        return;
    }
    if (atomic_load(&c->gw->ready) && !store_down(c->gw)) {
        dz_rctx_json(
            c, 200,
            json_pack("{s:s, s:I}", "status", "ready", "generation", (json_int_t)c->gen->number),
            NULL, 0);
        return;
    }
    if (atomic_load(&c->gw->ready)) {
        /* The reason in full is on the management listener: the public one
         * does not name the store's address. */
        dz_rctx_problem_h(c, "state_unavailable", "the state store does not answer",
                          &(struct dz_hdr){"retry-after", "5"}, 1);
        return;
    }
    dz_rctx_problem(c, "service_unavailable", "not ready");
}

void dz_ep_metrics(struct dz_rctx *c)
{
    struct dz_buf b;

    /* Metrics tell an outsider the traffic, the routes and the versions:
     * on the public listeners only when the operator says so; otherwise
     * they are on the management listener (docs/metrics.md). */
    if (!c->gen->config->management.public_metrics) {
        dz_rctx_problem(c, "not_found", "metrics are served on the management listener");
        return;
    }
    dz_buf_init(&b, 4u << 20);
    if (dz_metrics_render(c->gw->metrics, &b) != 0) {
        dz_buf_cleanup(&b);
        dz_rctx_problem(c, "internal_error", "metrics");
        return;
    }
    dz_rctx_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL, 0);
    dz_buf_cleanup(&b);
}

void dz_ep_jwks(struct dz_rctx *c)
{
    const char *j = c->gen->jwks_json;

    dz_rctx_respond(c, 200, "application/jwk-set+json", j, strlen(j), NULL, 0);
}
