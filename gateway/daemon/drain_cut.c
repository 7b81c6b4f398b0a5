/*
 * drain_cut.c - the audit line of a request the drain deadline cut (see
 * drain.h).  Apart from drain.c so that the router, which calls it on every
 * stream close, does not pull the engine's drain into what links it.
 */
#include "daemon/drain.h"

#include "core/gwasync.h"

#include "base/compat.h"

static void cut_written(struct dz_rctx *c, int rc, void *arg)
{
    /* Nothing waits for it; a failed write is logged by the audit writer. */
}

void dz_drain_audit_cut(struct dz_rctx *c)
{
    json_t *rec = json_pack("{s:s, s:s, s:s, s:b}", "type", "drain_cut", "route",
                            c->route ? c->route : "other", "method", dz_req_method(c->req),
                            "answered", c->answered);

    if (rec && c->answered)
        json_object_set_new(rec, "status", json_integer(c->status));
    if (rec && c->has_session) {
        json_object_set_new(rec, "fin", json_string(c->session.fin));
        json_object_set_new(rec, "means", json_string(c->session.method));
    }
    dz_gw_audit(c, rec, cut_written, NULL);
}
