/*
 * oidc_backchannel.c - OpenID Connect Back-Channel Logout 1.0: when a
 * session ends at the gateway, every client it signed in to (oidc_state.h
 * keeps the list per session) gets a signed logout token POSTed to its
 * registered backchannel_logout_uri, so it can end its own session too.
 *
 * The tokens are signed and the sending recorded in the audit log before
 * the caller goes on; the POSTs themselves run on the worker's outbound
 * client and are not waited for (a client that does not answer must not
 * hold up the person's logout).  Their outcome goes to the ops log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "http/httpc.h"
#include "keys/assertion.h"
#include "oidc/oidc.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_offloop.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"

#include "base/compat.h"

#define LOGOUT_TOKEN_TTL_S 120

struct bc_op {
    json_t *clients; /* array of client ids still to do */
    size_t next;
    json_t *sent;   /* client ids a token went to */
    json_t *claims; /* of the token being signed */
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char fin[8];
    void (*done)(struct dz_rctx *c, void *arg);
    void *arg;
    /* the store step's (oidc_offloop.h) */
    struct dz_store *st;
    const struct dz_policy_set *ps; /* of the generation c holds */
    int rc;
};

struct post_ctx {
    char client[DZ_OIDC_CLIENT_ID_MAX + 1];
    struct dz_gw_worker *w;
};

static void posted(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                   const unsigned char *body, size_t len)
{
    struct post_ctx *p = arg;

    dz_logj(result == 0 && status >= 200 && status < 300 ? DZ_LOG_INFO : DZ_LOG_WARN,
            "oidc_backchannel_sent",
            json_pack("{s:s, s:i, s:s}", "client", p->client, "status", status, "result",
                      result == 0 ? "ok" : dz_httpc_reason_of(result)));
    free(p);
}

static void op_drop(struct bc_op *op)
{
    json_decref(op->clients);
    json_decref(op->sent);
    free(op);
}

static void step(struct dz_rctx *c, struct bc_op *op);

static void finish(struct dz_rctx *c, int rc, void *arg)
{
    struct bc_op *op = arg;

    if (rc != 0)
        dz_rctx_log(c, DZ_LOG_ERROR, "oidc_audit", "the back-channel logout was not recorded");
    op->done(c, op->arg);
    op_drop(op);
}

static void signed_cb(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct bc_op *op = arg;
    const struct dz_policy_service *svc = dz_policy_oidc_client(
        c->gen->policies, json_string_value(json_array_get(op->clients, op->next)));

    json_decref(op->claims);
    op->claims = NULL;
    if (rc == 0 && token && svc && svc->oidc->backchannel_logout_uri) {
        const struct dz_config *cf = c->gen->config;
        struct dz_httpc_tls tls = {cf->upstream_tls.ca, NULL, NULL};
        struct post_ctx *p = calloc(1, sizeof(*p));
        size_t blen = strlen(token) + 16;
        char *body = malloc(blen);
        struct dz_hdr hdr = {"content-type", "application/x-www-form-urlencoded"};
        struct dz_httpc_request r = {.method = "POST",
                                     .url = svc->oidc->backchannel_logout_uri,
                                     .headers = &hdr,
                                     .nheaders = 1,
                                     .version = DZ_HTTPC_HTTP1,
                                     .timeout_ms = 10000,
                                     .tls = &tls,
                                     .max_response_bytes = 64 * 1024};
        if (p && body) {
            /* A JWS is base64url and dots: nothing to encode. */
            snprintf(body, blen, "logout_token=%s", token);
            r.body = body;
            r.body_len = strlen(body);
            snprintf(p->client, sizeof(p->client), "%s", svc->oidc->client_id);
            if (dz_httpc_fetch(c->gw_worker->httpc, &r, posted, p, NULL) == 0) {
                p = NULL;
                json_array_append_new(op->sent, json_string(svc->oidc->client_id));
            }
        }
        free(p);
        if (body) {
            dz_secret_wipe(body, blen);
            free(body);
        }
    } else if (rc != 0) {
        dz_rctx_log(c, DZ_LOG_ERROR, "oidc_backchannel", "a logout token could not be signed");
    }
    free(token);
    op->next++;
    step(c, op);
}

static void step(struct dz_rctx *c, struct bc_op *op)
{
    while (op->next < json_array_size(op->clients)) {
        const char *id = json_string_value(json_array_get(op->clients, op->next));
        const struct dz_policy_service *svc = dz_policy_oidc_client(c->gen->policies, id);
        char jti[DZ_ASSERTION_JTI_LEN + 1];
        int64_t now = dz_unix_ms() / 1000;

        if (!svc || !svc->oidc->backchannel_logout_uri || dz_assertion_new_jti(jti) != 0) {
            op->next++;
            continue;
        }
        op->claims =
            json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:{s:{}}}", "iss", dz_oidc_issuer(c),
                      "aud", id, "iat", (json_int_t)now, "exp",
                      (json_int_t)(now + LOGOUT_TOKEN_TTL_S), "jti", jti, "sid", op->sid, "sub",
                      op->fin, "events", "http://schemas.openid.net/event/backchannel-logout");
        if (!op->claims) {
            op->next++;
            continue;
        }
        dz_oidc_sign(c, op->claims, DZ_OIDC_LOGOUT_TOKEN_TYP, signed_cb, op);
        return;
    }
    if (json_array_size(op->sent) == 0) {
        finish(c, 0, op);
        return;
    }
    dz_gw_audit(c,
                json_pack("{s:s, s:s, s:s, s:O}", "type", "oidc_logout_sent", "fin", op->fin, "sid",
                          op->sid, "clients", op->sent),
                finish, op);
}

/* Store step: take the session's clients (each handed out once). */
static void take_work(void *arg)
{
    struct bc_op *op = arg;

    op->rc = dz_oidc_sid_take(op->st, op->ps, op->sid, &op->clients);
}

static void taken(struct dz_rctx *c, void *arg)
{
    struct bc_op *op = arg;

    /* A store that failed part way: the clients taken so far still get
     * their tokens (they are no longer recorded anywhere else). */
    if (op->rc != 0)
        dz_rctx_log(c, DZ_LOG_WARN, "oidc_backchannel",
                    "the clients of an ended session could not all be read");
    if (!op->clients) {
        op->done(c, op->arg);
        op_drop(op);
        return;
    }
    step(c, op);
}

void dz_oidc_session_ended(struct dz_rctx *c, const char *sid_b64, const char *fin,
                           void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    struct bc_op *op = calloc(1, sizeof(*op));

    if (!op || !(op->sent = json_array())) {
        free(op);
        dz_rctx_log(c, DZ_LOG_WARN, "oidc_backchannel",
                    "the clients of an ended session could not all be read");
        done(c, arg);
        return;
    }
    snprintf(op->sid, sizeof(op->sid), "%s", sid_b64);
    snprintf(op->fin, sizeof(op->fin), "%s", fin);
    op->done = done;
    op->arg = arg;
    op->st = c->gw->store;
    op->ps = c->gen->policies;
    if (dz_gw_state_try(c, take_work, taken, op) != 0) {
        /* No room on the pool: as a store that could not answer (the
         * clients stay recorded, and the expiry sweeper finds the session
         * gone once its bucket is due). */
        dz_rctx_log(c, DZ_LOG_WARN, "oidc_backchannel",
                    "the clients of an ended session could not all be read");
        op_drop(op);
        done(c, arg);
    }
}
