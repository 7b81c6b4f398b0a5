/*
 * mssp_call.c - one HTTP call to the MSSP for a login or a signature: the
 * relying-party credentials, the request's lifetime across the call, and
 * cancellation when the client goes away (see mssp.h).  Never logs the
 * relying-party secret.
 */
#include "mssp/mssp.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/metrics.h"

#include "base/compat.h"

static void cancel(struct dz_rctx *c)
{
    struct dz_mssp_call *call = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (call && call->xfer) {
        dz_httpc_cancel(call->xfer);
        call->xfer = NULL;
        dz_secret_wipe(call->auth, sizeof(call->auth));
        call->drop(c, call->owner);
        dz_rctx_release(c); /* the hold taken for the call */
    }
}

int dz_mssp_call_start(struct dz_rctx *c, struct dz_mssp_call *call, void *owner,
                       void (*drop)(struct dz_rctx *c, void *owner), const char *method,
                       const char *url, const char *body, uint32_t timeout_ms, dz_httpc_fetch_cb cb)
{
    struct dz_httpc_request r;
    struct dz_hdr h[3];
    struct dz_httpc_tls tls;
    int rc;

    call->owner = owner;
    call->drop = drop;
    dz_mssp_request_init(c, &r, h, call->auth, sizeof(call->auth), &tls);
    r.method = method;
    r.url = url;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    if (timeout_ms)
        r.timeout_ms = timeout_ms;
    c->op = call;
    c->cancel = cancel;
    dz_rctx_hold(c);
    rc = dz_httpc_fetch(c->gw_worker->httpc, &r, cb, c, &call->xfer);
    /* The request copied the header; the secret need not stay here. */
    dz_secret_wipe(call->auth, sizeof(call->auth));
    if (rc != 0) {
        c->op = NULL;
        c->cancel = NULL;
        dz_rctx_release(c);
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

int dz_mssp_call_poll(struct dz_rctx *c, struct dz_mssp_call *call, void *owner,
                      void (*drop)(struct dz_rctx *c, void *owner), const char *mssp_id,
                      dz_httpc_fetch_cb cb)
{
    uint32_t wait = dz_mssp_wait_ms(c);
    char url[1200];

    snprintf(url, sizeof(url), "%s/mid/session/%s?timeoutMs=%u", c->gen->config->mobile.mssp_url,
             mssp_id, wait);
    /* The MSSP holds the poll up to wait: give the transfer room beyond. */
    return dz_mssp_call_start(c, call, owner, drop, "GET", url, NULL, wait + 10000, cb);
}

void *dz_mssp_call_owner(const struct dz_rctx *c)
{
    const struct dz_mssp_call *call = c->op;

    return call ? call->owner : NULL;
}

void dz_mssp_call_over(struct dz_rctx *c, struct dz_mssp_call *call)
{
    call->xfer = NULL;
    c->op = NULL;
    c->cancel = NULL;
}

bool dz_mssp_call_end(struct dz_rctx *c, struct dz_mssp_call *call, int result, int status)
{
    dz_mssp_call_over(c, call);
    if (result == 0 && status == 200)
        return true;
    dz_metrics_upstream_error(c->gw->metrics, "mssp",
                              result == DZ_ERR_TIMEOUT ? "timeout" : "unavailable");
    dz_rctx_logj(c, DZ_LOG_WARN, "mssp",
                 json_pack("{s:s, s:i, s:s, s:s}", "msg", "the MSSP call failed", "up_status",
                           status, "reason", result ? dz_httpc_reason_of(result) : "bad_status",
                           "error", dz_err_str(result)));
    return false;
}

bool dz_mssp_call_done(struct dz_rctx *c, struct dz_mssp_call *call, int result, int status)
{
    if (dz_mssp_call_end(c, call, result, status))
        return true;
    if (!c->closed)
        dz_rctx_problem(c, result == DZ_ERR_TIMEOUT ? "upstream_timeout" : "upstream_unavailable",
                        "the mobile signature service is not available");
    return false;
}
