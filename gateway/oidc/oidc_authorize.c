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
#include "core/startlimit.h"
#include "oidc/oidc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_consent.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_expiry_index.h"
#include "oidc/oidc_offloop.h"
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

/* What an authorization request leads to once its session is known. */
enum authz_action {
    A_PORTAL,        /* to the portal's sign-in (or consent), the request parked */
    A_CONSENT_CHECK, /* look up the consent first: then A_ISSUE, A_PORTAL or A_REFUSE */
    A_ISSUE,         /* a code */
    A_REFUSE,        /* consent_required (prompt=none) */
};

/* One authorization request between the loop and its store step: what the
 * step reads is copied here, so it touches nothing of c. */
struct authz_flow {
    struct dz_oidc_authreq ar;
    int64_t t_req;                           /* when the request came: unix seconds */
    int64_t t_req_ms;                        /* ... and milliseconds */
    char pending_id[DZ_OIDC_SECRET_LEN + 1]; /* "" on a first visit */
    struct dz_store *st;
    struct dz_session sess;
    enum authz_action action;
    bool consent;                      /* the portal asks for consent, not a login */
    char id[DZ_OIDC_SECRET_LEN + 1];   /* the parked request's id */
    char code[DZ_OIDC_SECRET_LEN + 1]; /* the code issued */
    int rc;                            /* of the store step */
    bool no_secret;                    /* no randomness for a new id */
    bool unwatched;                    /* the session's expiry could not be watched */
};

static void flow_free(struct authz_flow *f)
{
    dz_secret_wipe(f->code, sizeof(f->code));
    dz_secret_wipe(f->id, sizeof(f->id));
    dz_secret_wipe(f->pending_id, sizeof(f->pending_id));
    free(f);
}

/* Store step: park the request under a new id (or the one it has). */
static void park(struct authz_flow *f)
{
    char *q;
    json_t *pend = NULL;

    if (f->pending_id[0]) {
        memcpy(f->id, f->pending_id, sizeof(f->id));
        return;
    }
    if (dz_oidc_secret_new(f->id) != 0) {
        f->no_secret = true;
        return;
    }
    /* Only what the check read, written back as a query (at most
     * DZ_OIDC_PARKED_QUERY_MAX bytes): never the client's own query, whose
     * padding would sit in the store for minutes on anyone's behalf. */
    q = malloc(DZ_OIDC_PARKED_QUERY_MAX + 1);
    if (q && dz_oidc_authreq_compact(&f->ar, q, DZ_OIDC_PARKED_QUERY_MAX + 1) > 0)
        pend = json_pack("{s:s, s:I, s:I}", "q", q, "t", (json_int_t)f->t_req, "tm",
                         (json_int_t)f->t_req_ms);
    free(q);
    f->rc = pend ? dz_oidc_state_put(f->st, DZ_OIDC_NS_REQUEST, f->id, pend, PENDING_TTL_MS,
                                     DZ_STORE_NX)
                 : DZ_ERR_NOMEM;
    json_decref(pend);
}

/* Store step: the code, and what back-channel logout needs of it. */
static void store_code(struct authz_flow *f)
{
    const struct dz_oidc_authreq *ar = &f->ar;
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    json_t *amr = NULL;
    json_t *rec;

    f->rc = DZ_ERR_NOMEM;
    if (dz_oidc_secret_new(f->code) != 0)
        return;
    dz_session_sid_b64(&f->sess, sid);
    if (dz_amr_to_json(f->sess.amr, &amr) != 0)
        return;
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:i, s:I}", "client",
                    ar->client->client_id, "redirect_uri", ar->redirect_uri, "challenge",
                    ar->challenge, "sid", sid, "fin", f->sess.fin, "acr", f->sess.acr, "amr", amr,
                    "auth_time", (json_int_t)f->sess.auth_time, "scopes", (int)ar->scopes, "iat",
                    (json_int_t)(dz_unix_ms() / 1000));
    if (!rec)
        return;
    if (ar->has_nonce)
        json_object_set_new(rec, "nonce", json_string(ar->nonce));
    f->rc = dz_oidc_state_put(f->st, DZ_OIDC_NS_CODE, f->code, rec, ar->client->code_lifetime_ms,
                              DZ_STORE_NX);
    json_decref(rec);
    if (f->rc != 0)
        return;
    /* For back-channel logout: this session has signed in to the client.
     * Without that record the client would never hear of the session's
     * end: no code then (fail closed), and the code nobody holds is
     * dropped. */
    if (ar->client->backchannel_logout_uri) {
        f->rc = dz_oidc_sid_add(f->st, sid, ar->client->client_id,
                                (uint64_t)(f->sess.expires_abs_ms - dz_unix_ms()) + 60000);
        if (f->rc != 0) {
            dz_oidc_state_del(f->st, DZ_OIDC_NS_CODE, f->code);
            return;
        }
        /* ... and its clients hear of it when it expires, too. */
        if (dz_oidc_expiry_watch(f->st, f->sess.sid, f->sess.fin, f->sess.expires_abs_ms) != 0)
            f->unwatched = true;
    }
    if (f->pending_id[0])
        dz_oidc_state_del(f->st, DZ_OIDC_NS_REQUEST, f->pending_id);
}

/* Every store call of the decision, off the loop (oidc_offloop.h). */
static void decide_work(void *arg)
{
    struct authz_flow *f = arg;

    if (f->action == A_CONSENT_CHECK) {
        /* prompt=consent: only a decision made for this request (the
         * consent page it was sent to) will do; before, its approval led
         * back to the consent page for ever. */
        if (dz_oidc_consent_given(f->st, f->sess.fin, &f->ar,
                                  f->ar.prompt_consent ? f->t_req_ms : 0))
            f->action = A_ISSUE;
        else if (f->ar.prompt_none)
            f->action = A_REFUSE;
        else
            f->action = A_PORTAL;
        f->consent = f->action == A_PORTAL;
    }
    if (f->action == A_PORTAL)
        park(f);
    else if (f->action == A_ISSUE)
        store_code(f);
}

/* Off to the portal's sign-in with the request parked under f->id. */
static void to_portal(struct dz_rctx *c, struct authz_flow *f)
{
    const struct dz_oidc_authreq *ar = &f->ar;
    struct authz_op *op;

    if (f->no_secret) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    if (f->rc != 0) {
        dz_rctx_state_unavailable(c, f->rc);
        return;
    }
    op = op_new(ar);
    if (op) {
        /* Hints for the page (what to show), not decisions: resume checks
         * everything again against the parked request. */
        const char *names[] = {"oidc", "acr", "consent", "hint", "lang", "client"};
        const char *values[] = {f->id,
                                dz_policy_acr_name(ar->acr),
                                f->consent ? "1" : NULL,
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
    dz_gw_audit(c, record(c, ar, f->consent ? "consent" : "login"), answer, op);
}

static void issue_code(struct dz_rctx *c, struct authz_flow *f)
{
    struct authz_op *op = f->rc == 0 ? op_new(&f->ar) : NULL;
    json_t *audit;

    if (!op) {
        dz_rctx_state_unavailable(c, f->rc != 0 ? f->rc : DZ_ERR_NOMEM);
        return;
    }
    memcpy(op->code, f->code, sizeof(op->code));
    if (f->unwatched)
        dz_rctx_log(c, DZ_LOG_WARN, "oidc_expiry",
                    "the session's expiry is not watched: only a logout will tell its clients");
    audit = record(c, &f->ar, "code");
    if (audit)
        json_object_set_new(audit, "acr", json_string(f->sess.acr));
    dz_gw_audit(c, audit, answer, op);
}

static void decided(struct dz_rctx *c, void *arg)
{
    struct authz_flow *f = arg;

    if (dz_oidc_can_answer(c)) {
        if (f->action == A_REFUSE)
            client_error(c, &f->ar, "consent_required");
        else if (f->action == A_PORTAL)
            to_portal(c, f);
        else
            issue_code(c, f);
    }
    flow_free(f);
}

/* The store step of the decision, then decided() on the loop. */
static void decide(struct dz_rctx *c, struct authz_flow *f)
{
    if (dz_gw_state_try(c, decide_work, decided, f) != 0) {
        flow_free(f);
        dz_rctx_problem(c, "service_unavailable", "the gateway is busy");
    }
}

/* Counted (dz_start_check has answered a refusal itself). */
static void start_counted(struct dz_rctx *c, bool ok, void *arg)
{
    struct authz_flow *f = arg;

    if (!ok || !dz_oidc_can_answer(c)) {
        flow_free(f);
        return;
    }
    decide(c, f);
}

/* The session is known (or the store could not say). */
static void authenticated(struct dz_rctx *c, int rc, void *arg)
{
    struct authz_flow *f = arg;
    const struct dz_oidc_authreq *ar = &f->ar;
    int64_t now = dz_unix_ms() / 1000;
    bool fresh;
    bool weak;

    if (!dz_oidc_can_answer(c)) {
        flow_free(f);
        return;
    }
    if (rc == DZ_ERR_UNAVAILABLE) {
        /* Never "not signed in" because the store could not say. */
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        flow_free(f);
        return;
    }
    /* Enough for this request: the level asked (step-up otherwise), a
     * login after the request when it said prompt=login, within max_age,
     * and the person the client named. */
    fresh = c->has_session;
    weak = false;
    if (fresh) {
        enum dz_acr have = DZ_ACR_NONE;
        dz_policy_acr_parse(c->session.acr, &have);
        if (ar->prompt_login && c->session.auth_time < f->t_req)
            fresh = false;
        /* A login made after the request is the re-authentication
         * max_age asks for, however long the page took to hand the
         * request back (max_age=0 would otherwise send the person to
         * sign in again for ever once a second has passed). */
        if (ar->max_age >= 0 && now - c->session.auth_time > ar->max_age &&
            c->session.auth_time < f->t_req)
            fresh = false;
        if (ar->login_hint[0] && strcmp(ar->login_hint, c->session.fin) != 0)
            fresh = false;
        weak = have < ar->acr;
    }
    if (!fresh || weak) {
        /* prompt=none: a new login is login_required, a step-up of a
         * session that is otherwise good is interaction_required. */
        if (ar->prompt_none) {
            client_error(c, ar, fresh ? "interaction_required" : "login_required");
            flow_free(f);
            return;
        }
        f->action = A_PORTAL;
    } else if (ar->client->consent_preapproved) {
        f->action = A_ISSUE;
    } else {
        f->action = A_CONSENT_CHECK;
    }
    f->st = c->gw->store;
    f->sess = c->session;
    /* A first visit that may be parked holds state for minutes on behalf
     * of anyone, signed in or not: it is a start like a QR or card login,
     * counted per address and for everyone together, so that a flood of
     * requests cannot fill the store's challenges (card challenges,
     * registration codes, every client's codes and tokens). */
    if (!f->pending_id[0] && (f->action == A_PORTAL || f->action == A_CONSENT_CHECK)) {
        struct dz_start_limit lim = dz_start_limit_of(c, "oidc_authorize");
        dz_start_check(c, &lim, 1, start_counted, f);
        return;
    }
    decide(c, f);
}

/* The whole decision, from the request's own query (first visit, or the
 * parked copy on resume). */
static void authorize(struct dz_rctx *c, const char *query, size_t qlen, int64_t t_req_ms,
                      const char *pending_id)
{
    struct dz_oidc_params p;
    struct authz_flow *f = calloc(1, sizeof(*f));
    const char *code = NULL;
    const char *detail = NULL;
    enum dz_oidc_authreq_error kind;
    int rc;

    if (!f) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    f->t_req = t_req_ms / 1000;
    f->t_req_ms = t_req_ms;
    if (pending_id)
        snprintf(f->pending_id, sizeof(f->pending_id), "%s", pending_id);
    rc = dz_oidc_params_parse(query, qlen, &p);
    if (rc != 0) {
        dz_rctx_problem(c, "invalid_request",
                        rc == DZ_ERR_TOOBIG   ? "the authorization request is too large"
                        : rc == DZ_ERR_EXISTS ? "a parameter is given twice"
                                              : "the query is not well formed");
        flow_free(f);
        return;
    }
    kind = dz_oidc_authreq_check(c->gen->policies, &p, &f->ar, &code, &detail);
    dz_oidc_params_cleanup(&p);
    if (kind == DZ_OIDC_AUTHREQ_SHOW) {
        dz_rctx_problem(c, code, detail);
        flow_free(f);
        return;
    }
    if (kind == DZ_OIDC_AUTHREQ_REDIRECT) {
        client_error(c, &f->ar, code);
        flow_free(f);
        return;
    }
    dz_rctx_authenticate_async(c, authenticated, f);
}

void dz_oidc_ep_authorize(struct dz_rctx *c)
{
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);

    authorize(c, q, qlen, dz_unix_ms(), NULL);
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
    authorize(c, (const char *)body, len, dz_unix_ms(), NULL);
}

/* Back from the portal (the page navigates here after a login or a
 * consent): the same decision on the parked request, with the session the
 * browser has now. */
struct resume_op {
    struct dz_store *st;
    char id[DZ_OIDC_SECRET_LEN + 1];
    json_t *pend;
    int rc;
};

static void resume_work(void *arg)
{
    struct resume_op *r = arg;

    r->rc = dz_oidc_state_get(r->st, DZ_OIDC_NS_REQUEST, r->id, false, &r->pend);
}

static void resume_found(struct dz_rctx *c, void *arg)
{
    struct resume_op *r = arg;
    const char *pq = json_string_value(json_object_get(r->pend, "q"));

    if (!dz_oidc_can_answer(c)) {
        /* nothing to answer */
    } else if (dz_store_failed(r->rc)) {
        /* Not "unknown": the store could not say. */
        dz_rctx_state_unavailable(c, r->rc);
    } else if (r->rc != 0 || !pq) {
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
    } else {
        /* "tm" (ms) may be missing from a request parked by an earlier
         * version: its second then. */
        json_int_t tm = json_integer_value(json_object_get(r->pend, "tm"));
        authorize(c, pq, strlen(pq),
                  tm ? tm : json_integer_value(json_object_get(r->pend, "t")) * 1000, r->id);
    }
    json_decref(r->pend);
    dz_secret_wipe(r->id, sizeof(r->id));
    free(r);
}

void dz_oidc_ep_resume(struct dz_rctx *c)
{
    struct dz_oidc_params p;
    struct resume_op *r;
    const char *id;
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);

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
    r = calloc(1, sizeof(*r));
    if (r) {
        r->st = c->gw->store;
        snprintf(r->id, sizeof(r->id), "%s", id);
    }
    dz_oidc_params_cleanup(&p);
    if (!r || dz_gw_state_try(c, resume_work, resume_found, r) != 0) {
        free(r);
        dz_rctx_problem(c, "service_unavailable", "the gateway is busy");
    }
}
