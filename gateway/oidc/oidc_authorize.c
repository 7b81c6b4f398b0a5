/*
 * oidc_authorize.c - GET /authorize and GET /authorize/resume: an
 * authorization request is checked (oidc_authreq.c), then answered with a
 * code when the person's session is enough for it (level, freshness, the
 * person the client hinted, consent), otherwise it waits in the store while
 * the portal's page signs the person in with the ways that reach the level
 * (step-up, never a silent downgrade), and resumes from there.
 *
 * Never redirects anywhere but a URI the client registered, never issues
 * a code for a session below the level asked, never keeps a code but its
 * hash.  Every outcome that reaches a client is on the audit record first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "oidc/oidc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_consent.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_expiry_index.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#include "base/compat.h"

#define PENDING_TTL_MS (10 * 60 * 1000) /* a login may take this long */

const char *dz_oidc_issuer(const struct dz_rctx *c)
{
    return c->gen->config->gateway.origin;
}

struct authz_op {
    char redirect_uri[DZ_OIDC_URI_MAX + 1];
    char state[DZ_OIDC_STATE_MAX + 1];
    bool has_state;
    char code[DZ_OIDC_SECRET_LEN + 1]; /* "" when the answer is an error */
    const char *error;                 /* OAuth error, or NULL */
    char *location;                    /* a portal redirect instead, or NULL */
};

static void op_free(struct authz_op *op)
{
    dz_secret_wipe(op->code, sizeof(op->code));
    free(op->location);
    free(op);
}

static void answer(struct dz_rctx *c, int rc, void *arg)
{
    struct authz_op *op = arg;

    if (!dz_oidc_can_answer(c)) {
        op_free(op);
        return;
    }
    if (rc != 0) {
        /* Not on record: no code leaves (fail closed). */
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
    } else if (op->location) {
        dz_rctx_respond(c, 302, NULL, NULL, 0, &(struct dz_hdr){"location", op->location}, 1);
    } else {
        const char *names[] = {"code", "error", "state", "iss"};
        const char *values[] = {op->code[0] ? op->code : NULL, op->error,
                                op->has_state ? op->state : NULL, dz_oidc_issuer(c)};
        dz_oidc_redirect(c, op->redirect_uri, names, values, 4);
    }
    op_free(op);
}

static json_t *record(const struct dz_rctx *c, const struct dz_oidc_authreq *ar,
                      const char *outcome)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "oidc_authorize", "client",
                          ar->client->client_id, "service", ar->svc->name, "acr_requested",
                          dz_policy_acr_name(ar->acr), "outcome", outcome);
    if (r && c->has_session)
        json_object_set_new(r, "fin", json_string(c->session.fin));
    return r;
}

static struct authz_op *op_new(const struct dz_oidc_authreq *ar)
{
    struct authz_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    snprintf(op->redirect_uri, sizeof(op->redirect_uri), "%s", ar->redirect_uri);
    memcpy(op->state, ar->state, sizeof(op->state));
    op->has_state = ar->has_state;
    return op;
}

/* An error the client should hear of (after the client and its URI are
 * established). */
static void client_error(struct dz_rctx *c, const struct dz_oidc_authreq *ar, const char *error)
{
    struct authz_op *op = op_new(ar);
    json_t *r = record(c, ar, error);

    if (!op) {
        json_decref(r);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->error = error;
    dz_gw_audit(c, r, answer, op);
}

/* Off to the portal's sign-in with the request parked under a new id (or
 * the one it already has). */
static void to_portal(struct dz_rctx *c, const struct dz_oidc_authreq *ar, const char *query,
                      int64_t t_req, const char *pending_id, bool consent)
{
    char id[DZ_OIDC_SECRET_LEN + 1];
    struct authz_op *op = NULL;
    json_t *pend = NULL;
    int rc;

    if (pending_id) {
        snprintf(id, sizeof(id), "%s", pending_id);
    } else {
        if (dz_oidc_secret_new(id) != 0) {
            dz_rctx_problem(c, "service_unavailable", NULL);
            return;
        }
        pend = json_pack("{s:s, s:I}", "q", query, "t", (json_int_t)t_req);
        rc = pend ? dz_oidc_state_put(c->gw->store, DZ_OIDC_NS_REQUEST, id, pend, PENDING_TTL_MS,
                                      DZ_STORE_NX)
                  : DZ_ERR_NOMEM;
        json_decref(pend);
        if (rc != 0) {
            dz_rctx_state_unavailable(c, rc);
            return;
        }
    }
    op = op_new(ar);
    if (op) {
        /* Hints for the page (what to show), not decisions: resume checks
         * everything again against the parked request. */
        const char *names[] = {"oidc", "acr", "consent", "hint", "lang", "client"};
        const char *values[] = {id,
                                dz_policy_acr_name(ar->acr),
                                consent ? "1" : NULL,
                                ar->login_hint[0] ? ar->login_hint : NULL,
                                ar->lang[0] ? ar->lang : NULL,
                                ar->client->display_name};
        op->location = dz_oidc_build_url("/", names, values, 6);
    }
    if (!op || !op->location) {
        if (op)
            op_free(op);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_gw_audit(c, record(c, ar, consent ? "consent" : "login"), answer, op);
}

static void issue_code(struct dz_rctx *c, const struct dz_oidc_authreq *ar, const char *pending_id)
{
    struct authz_op *op = op_new(ar);
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    json_t *amr = NULL;
    json_t *rec = NULL;
    json_t *audit = NULL;
    int rc = DZ_ERR_NOMEM;

    if (!op || dz_oidc_secret_new(op->code) != 0)
        goto fail;
    dz_session_sid_b64(&c->session, sid);
    if (dz_amr_to_json(c->session.amr, &amr) != 0)
        goto fail;
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:i, s:I}", "client",
                    ar->client->client_id, "redirect_uri", ar->redirect_uri, "challenge",
                    ar->challenge, "sid", sid, "fin", c->session.fin, "acr", c->session.acr, "amr",
                    amr, "auth_time", (json_int_t)c->session.auth_time, "scopes", (int)ar->scopes,
                    "iat", (json_int_t)(dz_unix_ms() / 1000));
    amr = NULL;
    if (!rec)
        goto fail;
    if (ar->has_nonce)
        json_object_set_new(rec, "nonce", json_string(ar->nonce));
    rc = dz_oidc_state_put(c->gw->store, DZ_OIDC_NS_CODE, op->code, rec,
                           ar->client->code_lifetime_ms, DZ_STORE_NX);
    json_decref(rec);
    if (rc != 0)
        goto fail;
    /* For back-channel logout: this session has signed in to the client. */
    if (ar->client->backchannel_logout_uri) {
        dz_oidc_sid_add(c->gw->store, sid, ar->client->client_id,
                        (uint64_t)(c->session.expires_abs_ms - dz_unix_ms()) + 60000);
        /* ... and its clients hear of it when it expires, too. */
        if (dz_oidc_expiry_watch(c->gw->store, c->session.sid, c->session.fin,
                                 c->session.expires_abs_ms) != 0)
            dz_rctx_log(c, DZ_LOG_WARN, "oidc_expiry",
                        "the session's expiry is not watched: only a logout will tell its clients");
    }
    if (pending_id)
        dz_oidc_state_del(c->gw->store, DZ_OIDC_NS_REQUEST, pending_id);
    audit = record(c, ar, "code");
    if (audit)
        json_object_set_new(audit, "acr", json_string(c->session.acr));
    dz_gw_audit(c, audit, answer, op);
    return;
fail:
    json_decref(amr);
    if (op)
        op_free(op);
    dz_rctx_state_unavailable(c, rc);
}

/* The whole decision, from the request's own query (first visit, or the
 * parked copy on resume). */
static void authorize(struct dz_rctx *c, const char *query, size_t qlen, int64_t t_req,
                      const char *pending_id)
{
    struct dz_oidc_params p;
    struct dz_oidc_authreq *ar = calloc(1, sizeof(*ar));
    const char *code = NULL;
    const char *detail = NULL;
    enum dz_oidc_authreq_error kind;
    int64_t now = dz_unix_ms() / 1000;
    bool fresh;
    bool weak;
    int rc;

    if (!ar) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    rc = dz_oidc_params_parse(query, qlen, &p);
    if (rc != 0) {
        dz_rctx_problem(c, "invalid_request",
                        rc == DZ_ERR_TOOBIG   ? "the authorization request is too large"
                        : rc == DZ_ERR_EXISTS ? "a parameter is given twice"
                                              : "the query is not well formed");
        free(ar);
        return;
    }
    kind = dz_oidc_authreq_check(c->gen->policies, &p, ar, &code, &detail);
    dz_oidc_params_cleanup(&p);
    if (kind == DZ_OIDC_AUTHREQ_SHOW) {
        dz_rctx_problem(c, code, detail);
        goto out;
    }
    if (kind == DZ_OIDC_AUTHREQ_REDIRECT) {
        client_error(c, ar, code);
        goto out;
    }
    if (dz_rctx_authenticate(c) == DZ_ERR_UNAVAILABLE) {
        /* Never "not signed in" because the store could not say. */
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        goto out;
    }
    /* Enough for this request: the level asked (step-up otherwise), a
     * login after the request when it said prompt=login, within max_age,
     * and the person the client named. */
    fresh = c->has_session;
    weak = false;
    if (fresh) {
        enum dz_acr have = DZ_ACR_NONE;
        dz_policy_acr_parse(c->session.acr, &have);
        if (ar->prompt_login && c->session.auth_time < t_req)
            fresh = false;
        if (ar->max_age >= 0 && now - c->session.auth_time > ar->max_age)
            fresh = false;
        if (ar->login_hint[0] && strcmp(ar->login_hint, c->session.fin) != 0)
            fresh = false;
        weak = have < ar->acr;
    }
    if (!fresh || weak) {
        /* prompt=none: a new login is login_required, a step-up of a
         * session that is otherwise good is interaction_required. */
        if (ar->prompt_none)
            client_error(c, ar, fresh ? "interaction_required" : "login_required");
        else
            to_portal(c, ar, query, t_req, pending_id, false);
        goto out;
    }
    if (!ar->client->consent_preapproved &&
        (ar->prompt_consent || !dz_oidc_consent_given(c->gw->store, c->session.fin, ar))) {
        if (ar->prompt_none)
            client_error(c, ar, "consent_required");
        else
            to_portal(c, ar, query, t_req, pending_id, true);
        goto out;
    }
    issue_code(c, ar, pending_id);
out:
    free(ar);
}

void dz_oidc_ep_authorize(struct dz_rctx *c)
{
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);

    authorize(c, q, qlen, dz_unix_ms() / 1000, NULL);
}

/* The same request as a form POST (Core 3.1.2.1: GET and POST).  A
 * cross-site POST carries no SameSite=Lax cookie, so such a request
 * normally passes through the portal's page, which finds the session. */
void dz_oidc_ep_authorize_post(struct dz_rctx *c)
{
    const char *ctype = dz_req_header(c->req, "content-type");
    const unsigned char *body;
    size_t len = 0;

    if (!ctype || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
        dz_rctx_problem(c, "unsupported_media_type",
                        "the body must be application/x-www-form-urlencoded");
        return;
    }
    body = dz_req_body(c->req, &len);
    authorize(c, (const char *)body, len, dz_unix_ms() / 1000, NULL);
}

/* Back from the portal (the page navigates here after a login or a
 * consent): the same decision on the parked request, with the session the
 * browser has now. */
void dz_oidc_ep_resume(struct dz_rctx *c)
{
    struct dz_oidc_params p;
    const char *id;
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);
    json_t *pend = NULL;
    const char *pq;
    char idbuf[DZ_OIDC_SECRET_LEN + 1];

    if (dz_oidc_params_parse(q, qlen, &p) != 0) {
        dz_rctx_problem(c, "invalid_request", NULL);
        return;
    }
    id = dz_oidc_params_get(&p, "id", NULL);
    if (!id || strlen(id) != DZ_OIDC_SECRET_LEN) {
        dz_oidc_params_cleanup(&p);
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
        return;
    }
    snprintf(idbuf, sizeof(idbuf), "%s", id);
    dz_oidc_params_cleanup(&p);
    if (dz_oidc_state_get(c->gw->store, DZ_OIDC_NS_REQUEST, idbuf, false, &pend) != 0 ||
        !(pq = json_string_value(json_object_get(pend, "q")))) {
        json_decref(pend);
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
        return;
    }
    authorize(c, pq, strlen(pq), json_integer_value(json_object_get(pend, "t")), idbuf);
    json_decref(pend);
}
