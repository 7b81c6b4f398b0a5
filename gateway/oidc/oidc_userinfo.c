/*
 * oidc_userinfo.c - GET/POST /userinfo (OpenID Connect Core 5.3): the
 * claims about the person for an access token from /token.  The token is
 * accepted only here and only in the Authorization header (RFC 6750 2.1;
 * never in a query, where logs and Referer would carry it); a session
 * token is no access token and is refused like any unknown one.
 *
 * Registry fields the client's policy releases beyond the FIN (names,
 * birth date, address...) are read from the population registry as a
 * forwarded request would: GET /api/registry/me with a Darvaza-Assertion
 * for the person (its "rel" naming the fields) over the gateway's mutual
 * TLS, and only the released members are passed on.  When the registry
 * cannot answer, nothing is answered (no partial claims).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "http/httpc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_offloop.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"
#include "state/store.h"

#include "base/compat.h"

#define REGISTRY_PATH "/api/registry/me"

struct ui_op {
    json_t *body;     /* the answer being built */
    json_t *released; /* field names, for the audit line */
    unsigned release; /* DZ_RELEASE_* still to fetch from the registry */
    const char *client_id;
    const char *service;
    char fin[8];
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char acr[16];
    char rel[256]; /* "fin,name,..." for the assertion's rel */
    struct dz_assertion_in in;
    char *assertion;
    struct dz_hdr hdrs[2];
    struct dz_httpc_xfer *xfer;
};

static void op_free(struct ui_op *op)
{
    json_decref(op->body);
    json_decref(op->released);
    if (op->assertion) {
        dz_secret_wipe(op->assertion, strlen(op->assertion));
        free(op->assertion);
    }
    free(op);
}

static void answered(struct dz_rctx *c, int rc, void *arg)
{
    struct ui_op *op = arg;

    if (dz_oidc_can_answer(c)) {
        if (rc != 0) {
            dz_oidc_error(c, 500, "server_error", "audit log unavailable", NULL);
        } else {
            dz_rctx_json(c, 200, op->body, NULL, 0);
            op->body = NULL;
        }
    }
    op_free(op);
}

static void finish(struct dz_rctx *c, struct ui_op *op)
{
    json_t *audit =
        json_pack("{s:s, s:s, s:s, s:s, s:O}", "type", "oidc_userinfo", "client", op->client_id,
                  "service", op->service, "fin", op->fin, "released", op->released);

    dz_gw_audit(c, audit, answered, op);
}

static void unavailable(struct dz_rctx *c, struct ui_op *op, const char *why)
{
    dz_rctx_log(c, DZ_LOG_WARN, "oidc_userinfo_registry", "%s", why);
    if (dz_oidc_can_answer(c))
        dz_oidc_error(c, 503, "temporarily_unavailable",
                      "the population registry cannot be read now", NULL);
    op_free(op);
}

static void op_drop(void *op)
{
    op_free(op);
}

static void cancel(struct dz_rctx *c)
{
    struct ui_op *op = c->op;

    dz_gw_cancel_transfer(c, op ? &op->xfer : NULL, op_drop);
}

static void fetched(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                    const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct ui_op *op = c->op;
    json_t *rec = NULL;

    c->op = NULL;
    c->cancel = NULL;
    op->xfer = NULL;
    if (result != 0 || status != 200) {
        unavailable(c, op, result != 0 ? dz_httpc_reason_of(result) : "the registry refused");
        dz_rctx_release(c);
        return;
    }
    rec = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        unavailable(c, op, "the registry's answer is not a JSON object");
        dz_rctx_release(c);
        return;
    }
    /* The answer carries the record; only what the client may have passes
     * (the registry was told the same in "rel"). */
    for (unsigned i = 1; i < DZ_RELEASE_COUNT; i++) {
        json_t *v;
        if (!(op->release & (1u << i)))
            continue;
        v = json_object_get(rec, dz_policy_release_names[i]);
        if (v) {
            json_object_set(op->body, dz_policy_release_names[i], v);
            json_array_append_new(op->released, json_string(dz_policy_release_names[i]));
        }
    }
    json_decref(rec);
    finish(c, op);
    dz_rctx_release(c);
}

static void signed_cb(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct ui_op *op = arg;
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_tls tls = {cf->upstream_tls.ca, cf->upstream_tls.certificate,
                               cf->upstream_tls.key};
    struct dz_httpc_request r;
    char url[600];

    op->assertion = token;
    if (rc != 0 || !token || c->closed) {
        if (dz_oidc_can_answer(c))
            dz_oidc_error(c, 500, "server_error", "could not sign", NULL);
        op_free(op);
        return;
    }
    snprintf(url, sizeof(url), "%s%s", cf->registry.url, REGISTRY_PATH);
    op->hdrs[0] = (struct dz_hdr){"darvaza-assertion", op->assertion};
    op->hdrs[1] = (struct dz_hdr){"darvaza-request-id", c->rid};
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.url = url;
    r.headers = op->hdrs;
    r.nheaders = 2;
    r.version = DZ_HTTPC_H2;
    r.timeout_ms = (uint32_t)cf->registry.timeout_ms;
    r.connect_timeout_ms = (uint32_t)cf->registry.timeout_ms;
    r.tls = &tls;
    r.max_response_bytes = 64 * 1024;
    c->op = op;
    c->cancel = cancel;
    dz_rctx_hold(c);
    if (dz_httpc_fetch(c->gw_worker->httpc, &r, fetched, c, &op->xfer) != 0) {
        c->op = NULL;
        c->cancel = NULL;
        dz_rctx_release(c);
        unavailable(c, op, "the request could not start");
    }
}

static unsigned amr_bits(const json_t *names)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;

    json_array_foreach(names, i, v)
    {
        if (json_is_string(v))
            bits |= dz_policy_amr_bit(json_string_value(v));
    }
    return bits;
}

static void from_registry(struct dz_rctx *c, struct ui_op *op, const json_t *at)
{
    size_t k = 0;

    for (unsigned i = 0; i < DZ_RELEASE_COUNT; i++) {
        if (!(op->release & (1u << i)) && i != 0)
            continue;
        k += (size_t)snprintf(op->rel + k, sizeof(op->rel) - k, "%s%s", k ? "," : "",
                              dz_policy_release_names[i]);
        if (k >= sizeof(op->rel)) {
            unavailable(c, op, "release list too long");
            return;
        }
    }
    op->in = (struct dz_assertion_in){
        .iss = c->gen->config->gateway.id,
        .sub = op->fin,
        .aud = "registry",
        .sid_b64 = op->sid,
        .acr = op->acr,
        .amr = amr_bits(json_object_get(at, "amr")),
        .iat = dz_unix_ms() / 1000,
        .auth_time = json_integer_value(json_object_get(at, "auth_time")),
        .ttl_s = 60,
        .htm = "GET",
        .htu = REGISTRY_PATH,
        .release = op->rel,
    };
    if (op->in.auth_time <= 0 || op->in.auth_time > op->in.iat)
        op->in.auth_time = op->in.iat;
    dz_gw_sign(c, &op->in, signed_cb, op);
}

/* The access token's record, read off the loop (oidc_offloop.h). */
struct at_lookup {
    struct dz_store *st;
    char token[DZ_OIDC_SECRET_LEN + 1];
    json_t *at;
    int rc;
};

static void lookup_work(void *arg)
{
    struct at_lookup *l = arg;

    l->rc = dz_oidc_state_get(l->st, DZ_OIDC_NS_TOKEN, l->token, false, &l->at);
    if (l->rc != 0)
        return;
    /* A token outlives no logout: once the session that signed the person
     * in has ended, what it bought reads nothing more about them. */
    l->rc = dz_oidc_session_alive(l->st, json_string_value(json_object_get(l->at, "sid")));
    if (l->rc == DZ_ERR_NOTFOUND)
        dz_oidc_state_del(l->st, DZ_OIDC_NS_TOKEN, l->token);
}

static void with_token(struct dz_rctx *c, json_t *at);

static void looked_up(struct dz_rctx *c, void *arg)
{
    struct at_lookup *l = arg;

    if (!dz_oidc_can_answer(c)) {
        /* nothing to answer */
    } else if (dz_store_failed(l->rc)) {
        /* Not "revoked": the store could not say. */
        dz_oidc_error(c, 503, "temporarily_unavailable", "state cannot be read now", NULL);
    } else if (l->rc != 0) {
        dz_oidc_error(c, 401, "invalid_token", "unknown, expired or revoked access token",
                      "Bearer");
    } else {
        with_token(c, l->at);
    }
    json_decref(l->at);
    dz_secret_wipe(l->token, sizeof(l->token));
    free(l);
}

void dz_oidc_ep_userinfo(struct dz_rctx *c)
{
    const char *authz = dz_req_header(c->req, "authorization");
    struct at_lookup *l;
    const char *tok;

    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
        dz_oidc_error(c, 401, "invalid_request", "an access token is required", "Bearer");
        return;
    }
    tok = authz + 7;
    while (*tok == ' ')
        tok++;
    if (strlen(tok) != DZ_OIDC_SECRET_LEN) {
        dz_oidc_error(c, 401, "invalid_token", "unknown, expired or revoked access token",
                      "Bearer");
        return;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        return;
    }
    l->st = c->gw->store;
    memcpy(l->token, tok, sizeof(l->token));
    if (dz_gw_state_try(c, lookup_work, looked_up, l) != 0) {
        free(l);
        dz_oidc_error(c, 503, "temporarily_unavailable", "the gateway is busy", NULL);
    }
}

static void with_token(struct dz_rctx *c, json_t *at)
{
    const struct dz_policy_service *svc;
    struct ui_op *op = NULL;

    /* The client's registration as it is now: a field a reload stopped
     * releasing is not released on a token issued before. */
    svc = dz_policy_oidc_client(c->gen->policies, json_string_value(json_object_get(at, "client")));
    op = calloc(1, sizeof(*op));
    if (!svc || !op || !json_is_string(json_object_get(at, "fin"))) {
        free(op);
        dz_oidc_error(c, 401, "invalid_token", "the client is no longer registered", "Bearer");
        return;
    }
    op->client_id = svc->oidc->client_id;
    op->service = svc->name;
    op->release = svc->oidc->release;
    snprintf(op->fin, sizeof(op->fin), "%s", json_string_value(json_object_get(at, "fin")));
    snprintf(op->sid, sizeof(op->sid), "%s", json_string_value(json_object_get(at, "sid")) ?: "");
    snprintf(op->acr, sizeof(op->acr), "%s", json_string_value(json_object_get(at, "acr")) ?: "");
    op->body = json_pack("{s:s, s:O, s:O}", "sub", op->fin, "acr", json_object_get(at, "acr"),
                         "amr", json_object_get(at, "amr"));
    op->released = json_array();
    if (!op->body || !op->released) {
        op_free(op);
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        return;
    }
    if (op->release & DZ_RELEASE_FIN) {
        json_object_set_new(op->body, "fin", json_string(op->fin));
        json_array_append_new(op->released, json_string("fin"));
    }
    if (op->release & ~(unsigned)DZ_RELEASE_FIN)
        from_registry(c, op, at);
    else
        finish(c, op);
}
