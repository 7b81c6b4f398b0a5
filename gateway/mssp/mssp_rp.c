/*
 * mssp_rp.c - darvaza as a relying party of the MSSP, the part every mobile
 * flow shares (login, document signing, QR's mobile fallback): whether the
 * MSSP is configured, the phone number's form, the request every call
 * carries, the per-phone rate and one-request-at-a-time lock, the long-poll
 * wait and the mapping of the MSSP's end results to the API's codes.
 * Loop thread only.
 */
#include "mssp/mssp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/config.h"
#include "core/gen.h"
#include "core/gwasync.h"
#include "core/gwstorecall.h"
#include "state/store.h"

#include "base/compat.h"

/* Store namespaces: the per-phone request rate and the one-at-a-time lock. */
#define PHONE_NS "mobphone"
#define RATE_NS "mobrate"

bool dz_mssp_enabled(struct dz_rctx *c)
{
    if (c->gen->mobile_trust && c->gen->config->mobile.mssp_url && c->gen->mssp_secret)
        return true;
    dz_rctx_problem(c, "not_found", "mobile signature login is not configured");
    return false;
}

bool dz_mssp_az_phone_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;

    /* Azerbaijani mobile numbers in E.164: +994 and nine digits. */
    if (n != 13 || strncmp(p, "+994", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
    }
    return true;
}

void dz_mssp_request_init(struct dz_rctx *c, struct dz_httpc_request *r, struct dz_hdr *h,
                          char *auth, size_t auth_len, struct dz_httpc_tls *tls)
{
    const struct dz_config *cf = c->gen->config;

    snprintf(auth, auth_len, "Bearer %s", c->gen->mssp_secret);
    h[0] = (struct dz_hdr){"authorization", auth};
    h[1] = (struct dz_hdr){"content-type", "application/json"};
    h[2] = (struct dz_hdr){"darvaza-request-id", c->rid};
    *tls = (struct dz_httpc_tls){cf->upstream_tls.ca, cf->upstream_tls.certificate,
                                 cf->upstream_tls.key};
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->nheaders = 3;
    r->version = DZ_HTTPC_H2;
    r->tls = strncmp(cf->mobile.mssp_url, "https:", 6) == 0 ? tls : NULL;
    r->max_response_bytes = 64 * 1024;
    r->connect_timeout_ms = 5000;
    r->timeout_ms = 10000;
}

/* A claim on its way: counted and locked off the loop (gwasync.h). */
struct claim_op {
    struct dz_store *store;
    char phone[24];
    unsigned rate;
    uint64_t lock_ms;
    int rc;        /* the count's, then the lock's */
    int64_t count; /* this minute's requests, this one included */
    bool locked;
    void (*then)(struct dz_rctx *c, bool ok, void *arg);
    void *arg;
};

static void claim_work(void *arg)
{
    struct claim_op *op = arg;

    /* No push-bombing: a few requests per phone per minute, and one at a
     * time (the lock lives as long as the request may wait). */
    op->rc = dz_store_incr(op->store, RATE_NS, op->phone, strlen(op->phone), 60000, &op->count);
    if (op->rc != 0 || op->count > (int64_t)op->rate)
        return;
    op->rc = dz_store_put(op->store, PHONE_NS, op->phone, strlen(op->phone), "1", 1, op->lock_ms,
                          DZ_STORE_NX);
    op->locked = op->rc == 0;
}

static void claim_done(struct dz_rctx *c, void *arg)
{
    struct claim_op *op = arg;
    void (*then)(struct dz_rctx *, bool, void *) = op->then;
    void *then_arg = op->arg;
    bool ok = false;

    if (c->closed) {
        /* Nobody will use the lock: free the phone for its next request. */
        if (op->locked)
            dz_mssp_phone_release(c, op->phone);
    } else if (op->rc != 0 && op->count == 0) {
        dz_rctx_state_unavailable(c, op->rc); /* the count could not be kept */
    } else if (op->count > (int64_t)op->rate) {
        dz_rctx_problem_h(c, "rate_limited", "too many requests for this phone",
                          &(struct dz_hdr){"retry-after", "60"}, 1);
    } else if (op->rc == DZ_ERR_EXISTS) {
        dz_rctx_problem(c, "request_pending", "a request is already waiting on this phone");
    } else if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
    } else {
        ok = true;
    }
    free(op);
    then(c, ok, then_arg);
}

void dz_mssp_phone_claim(struct dz_rctx *c, const char *phone,
                         void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg)
{
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    struct claim_op *op = calloc(1, sizeof(*op));

    if (!op || strlen(phone) >= sizeof(op->phone)) {
        free(op);
        dz_rctx_state_unavailable(c, DZ_ERR_NOMEM);
        then(c, false, arg);
        return;
    }
    op->store = c->gw->store;
    snprintf(op->phone, sizeof(op->phone), "%s", phone);
    op->rate = mc->phone_rate;
    op->lock_ms = mc->request_ttl_ms;
    op->then = then;
    op->arg = arg;
    /* A full pool answered 503 and called nothing: then() still must run. */
    if (dz_gw_state(c, claim_work, claim_done, op) != 0) {
        free(op);
        then(c, false, arg);
    }
}

void dz_mssp_phone_release(struct dz_rctx *c, const char *phone)
{
    dz_gw_store_del(c, PHONE_NS, phone, strlen(phone));
}

void dz_mssp_phone_release_in(struct dz_store *s, const char *phone)
{
    (void)dz_store_del(s, PHONE_NS, phone, strlen(phone));
}

const char *dz_mssp_result_code(const char *r)
{
    static const char *const map[][2] = {
        {"USER_CANCELLED", "user_cancelled"},    {"TIMEOUT", "timeout"},
        {"NOT_MID_CLIENT", "not_mobile_client"}, {"PHONE_ABSENT", "phone_absent"},
        {"DELIVERY_ERROR", "phone_absent"},
    };
    for (size_t i = 0; r && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i][0], r) == 0)
            return map[i][1];
    }
    return "phone_absent";
}

uint32_t dz_mssp_wait_ms(struct dz_rctx *c)
{
    const char *q = strchr(dz_req_path(c->req), '?');
    const char *w = q ? strstr(q, "wait=") : NULL;
    uint64_t max = c->gen->config->mobile.poll_max_ms;
    uint64_t v = 0;

    if (!w || (w != q + 1 && w[-1] != '&'))
        return 0;
    for (w += 5; *w >= '0' && *w <= '9' && v < 1000000; w++)
        v = v * 10 + (uint64_t)(*w - '0');
    v *= 1000;
    return (uint32_t)(v > max ? max : v);
}
