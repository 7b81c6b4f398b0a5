/*
 * sms_out.c - messages to a person's phone; see sms_out.h.
 */
#include "auth/sms_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "http/httpc.h"

#include "base/compat.h"

#define SMS_TEXT_MAX 480
#define PHONES_MAX 4

struct sms_op {
    dz_sms_then then;
    void (*drop)(void *arg);
    void *arg;
    struct dz_httpc_xfer *xfer;
    char fin[DZ_FIN_LEN + 1];
    char text[SMS_TEXT_MAX + 1];
    char *body;
    char *assertion;
    struct dz_hdr hdrs[3];
    struct dz_assertion_in in;
    /* notify: the numbers still to send to, and how many took it */
    char phones[PHONES_MAX][16];
    size_t nphones, next;
    char also[16]; /* a number told even when the registry does not list it */
    int sent;
};

static void op_free(struct sms_op *op)
{
    if (!op)
        return;
    if (op->body) {
        dz_secret_wipe(op->body, strlen(op->body));
        free(op->body);
    }
    free(op->assertion);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

/* A notice cancelled with its request: its owner is told (drop) first. */
static void op_cancelled(void *arg)
{
    struct sms_op *op = arg;

    if (op->drop)
        op->drop(op->arg);
    op_free(op);
}

static void op_cancel(struct dz_rctx *c)
{
    struct sms_op *op = c->op;

    dz_gw_cancel_transfer(c, op ? &op->xfer : NULL, op_cancelled);
}

static void finish(struct dz_rctx *c, struct sms_op *op, int rc)
{
    dz_sms_then then = op->then;
    void *arg = op->arg;

    op_free(op);
    then(c, rc, arg);
}

/* Start one transfer as c's operation; false when it could not start. */
static bool start(struct dz_rctx *c, struct sms_op *op, const struct dz_httpc_request *r,
                  dz_httpc_fetch_cb done)
{
    c->op = op;
    c->cancel = op_cancel;
    dz_rctx_hold(c);
    if (dz_httpc_fetch(c->gw_worker->httpc, r, done, c, &op->xfer) != 0) {
        c->op = NULL;
        c->cancel = NULL;
        dz_rctx_release(c);
        return false;
    }
    return true;
}

static void fill_request(struct dz_rctx *c, struct dz_httpc_request *r, struct dz_httpc_tls *tls,
                         uint64_t timeout_ms)
{
    const struct dz_config *cf = c->gen->config;

    *tls = (struct dz_httpc_tls){cf->upstream_tls.ca, cf->upstream_tls.certificate,
                                 cf->upstream_tls.key};
    memset(r, 0, sizeof(*r));
    r->version = DZ_HTTPC_H2;
    r->timeout_ms = (uint32_t)timeout_ms;
    r->connect_timeout_ms = (uint32_t)timeout_ms;
    r->tls = tls;
    r->max_response_bytes = 16 * 1024;
}

/* ---- one message ---- */

static void send_next(struct dz_rctx *c, struct sms_op *op);

static void sent(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                 const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct sms_op *op = c->op;
    bool ok = result == 0 && status >= 200 && status < 300;

    op->xfer = NULL;
    c->op = NULL;
    c->cancel = NULL;
    if (!ok) {
        dz_metrics_upstream_error(c->gw->metrics, "sms",
                                  result == DZ_ERR_TIMEOUT ? "timeout" : "unavailable");
        dz_rctx_logj(c, DZ_LOG_WARN, "sms_failed",
                     json_pack("{s:s, s:i}", "msg", "the SMS gateway did not take a message",
                               "up_status", result == 0 ? status : 0));
    } else {
        op->sent++;
    }
    if (op->nphones && op->next < op->nphones)
        send_next(c, op);
    else
        finish(c, op,
               op->sent ? 0 : (result == DZ_ERR_TIMEOUT ? DZ_ERR_TIMEOUT : DZ_ERR_UNAVAILABLE));
    dz_rctx_release(c);
}

static int post_one(struct dz_rctx *c, struct sms_op *op, const char *to)
{
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_request r;
    struct dz_httpc_tls tls;
    char url[1100];
    json_t *j;

    if (!cf->sms.url)
        return DZ_ERR_UNAVAILABLE;
    if (op->body) {
        dz_secret_wipe(op->body, strlen(op->body));
        free(op->body);
    }
    j = json_pack("{s:s, s:s}", "to", to, "text", op->text);
    op->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!op->body)
        return DZ_ERR_NOMEM;
    snprintf(url, sizeof(url), "%s%sapi/sms", cf->sms.url,
             cf->sms.url[strlen(cf->sms.url) - 1] == '/' ? "" : "/");
    fill_request(c, &r, &tls, cf->sms.timeout_ms);
    op->hdrs[0] = (struct dz_hdr){"content-type", "application/json"};
    op->hdrs[1] = (struct dz_hdr){"darvaza-request-id", c->rid};
    r.method = "POST";
    r.url = url;
    r.headers = op->hdrs;
    r.nheaders = 2;
    r.body = op->body;
    r.body_len = strlen(op->body);
    return start(c, op, &r, sent) ? 0 : DZ_ERR_UNAVAILABLE;
}

static void send_next(struct dz_rctx *c, struct sms_op *op)
{
    while (op->next < op->nphones) {
        if (post_one(c, op, op->phones[op->next++]) == 0)
            return;
    }
    finish(c, op, op->sent ? 0 : DZ_ERR_UNAVAILABLE);
}

static struct sms_op *op_new(const char *text, dz_sms_then then, void (*drop)(void *), void *arg)
{
    struct sms_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    op->then = then;
    op->drop = drop;
    op->arg = arg;
    snprintf(op->text, sizeof(op->text), "%s", text);
    return op;
}

void dz_sms_send(struct dz_rctx *c, const char *to, const char *text, dz_sms_then then,
                 void (*drop)(void *arg), void *arg)
{
    struct sms_op *op = op_new(text, then, drop, arg);
    int rc;

    if (!op) {
        then(c, DZ_ERR_NOMEM, arg);
        return;
    }
    rc = post_one(c, op, to);
    if (rc != 0)
        finish(c, op, rc);
}

/* ---- to every number the registry holds ---- */

static void phones_got(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                       const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct sms_op *op = c->op;
    json_t *j = NULL, *a;
    size_t i;

    op->xfer = NULL;
    c->op = NULL;
    c->cancel = NULL;
    if (result == 0 && status == 200)
        j = json_loadb((const char *)body, len, 0, NULL);
    a = json_object_get(j, "phones");
    for (i = 0; json_is_array(a) && i < json_array_size(a) && op->nphones < PHONES_MAX; i++) {
        const char *p = json_string_value(json_array_get(a, i));

        if (p && strlen(p) < sizeof(op->phones[0]))
            snprintf(op->phones[op->nphones++], sizeof(op->phones[0]), "%s", p);
    }
    json_decref(j);
    if (op->also[0]) {
        /* The number the code went to a minute ago is told whatever the
         * registry says now (or if it did not answer). */
        bool listed = false;
        for (i = 0; i < op->nphones; i++)
            listed |= strcmp(op->phones[i], op->also) == 0;
        if (!listed && op->nphones < PHONES_MAX)
            memcpy(op->phones[op->nphones++], op->also, sizeof(op->also));
    }
    if (op->nphones == 0) {
        dz_rctx_logj(c, DZ_LOG_WARN, "sms_no_phone",
                     json_pack("{s:s, s:i}", "msg",
                               "no mobile number from the registry: the person was not told",
                               "up_status", result == 0 ? status : 0));
        finish(c, op, DZ_ERR_UNAVAILABLE);
    } else {
        send_next(c, op);
    }
    dz_rctx_release(c);
}

static void phones_signed(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct sms_op *op = arg;
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_request r;
    struct dz_httpc_tls tls;
    char url[1100];

    op->assertion = token;
    if (rc != 0 || c->closed) {
        if (c->closed) {
            if (op->drop)
                op->drop(op->arg);
            op_free(op);
            return;
        }
        finish(c, op, rc ? rc : DZ_ERR_UNAVAILABLE);
        return;
    }
    snprintf(url, sizeof(url), "%s/api/registry/me/phones", cf->registry.url);
    fill_request(c, &r, &tls, cf->registry.timeout_ms);
    op->hdrs[0] = (struct dz_hdr){"darvaza-assertion", op->assertion};
    op->hdrs[1] = (struct dz_hdr){"darvaza-request-id", c->rid};
    r.method = "GET";
    r.url = url;
    r.headers = op->hdrs;
    r.nheaders = 2;
    if (!start(c, op, &r, phones_got))
        finish(c, op, DZ_ERR_UNAVAILABLE);
}

void dz_sms_notify(struct dz_rctx *c, const char *fin, const char *text, dz_sms_then then,
                   void (*drop)(void *arg), void *arg)
{
    dz_sms_notify_also(c, fin, NULL, text, then, drop, arg);
}

void dz_sms_notify_also(struct dz_rctx *c, const char *fin, const char *also, const char *text,
                        dz_sms_then then, void (*drop)(void *arg), void *arg)
{
    struct sms_op *op;

    if (!c->gen->config->sms.url || !dz_fin_is_normal(fin) ||
        (also && strlen(also) >= sizeof(op->also))) {
        then(c, DZ_ERR_UNAVAILABLE, arg);
        return;
    }
    op = op_new(text, then, drop, arg);
    if (!op) {
        then(c, DZ_ERR_NOMEM, arg);
        return;
    }
    memcpy(op->fin, fin, sizeof(op->fin));
    if (also)
        memcpy(op->also, also, strlen(also) + 1);
    /* A service assertion: the subject is the person told, the purpose
     * says why the gateway reads their numbers (DESIGN §2 linking). */
    op->in.iss = c->gen->config->gateway.id;
    op->in.sub = op->fin;
    op->in.aud = "registry";
    op->in.acr = "none";
    op->in.iat = dz_unix_ms() / 1000;
    op->in.auth_time = op->in.iat;
    op->in.ttl_s = 60;
    op->in.htm = "GET";
    op->in.htu = "/api/registry/me/phones";
    op->in.pur = "notification";
    op->in.sid_b64 = c->rid;
    dz_gw_sign(c, &op->in, phones_signed, op);
}
