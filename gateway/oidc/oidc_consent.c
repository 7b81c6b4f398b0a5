/*
 * oidc_consent.c - see oidc_consent.h.  The consent page is the portal's
 * (gateway/web): this file answers what it shows and records what the
 * person decides.  A decision is accepted only from the portal's own origin
 * with the session cookie (dz_rctx_origin_ok), as JSON: a form posted by
 * another site can do neither (CSRF).
 */
#include "oidc/oidc_consent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_offloop.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#include "base/compat.h"

#define CONSENT_KEY_MAX (sizeof("consent|") + 8 + DZ_OIDC_CLIENT_ID_MAX + 1)

/* The key of fin's decision for one client: one store entry per (person,
 * client), so that an approval of one client and a withdrawal of another
 * (two instances, the same moment) each write only their own entry and
 * neither can undo the other (a whole record read, changed and written
 * back could).  A FIN is 7 letters and digits: the prefix is unambiguous. */
static int pair_key(const char *fin, const char *client_id, char out[CONSENT_KEY_MAX])
{
    int n = snprintf(out, CONSENT_KEY_MAX, "consent|%s|%s", fin, client_id);

    return n > 0 && (size_t)n < CONSENT_KEY_MAX ? 0 : DZ_ERR_TOOBIG;
}

/* fin's decision for client_id: 0 with *out, DZ_ERR_NOTFOUND, or the
 * store's error. */
static int load(struct dz_store *st, const char *fin, const char *client_id, json_t **out)
{
    char key[CONSENT_KEY_MAX];
    int rc = pair_key(fin, client_id, key);

    *out = NULL;
    return rc ? rc : dz_oidc_state_get(st, DZ_OIDC_NS_CONSENT, key, false, out);
}

bool dz_oidc_consent_given(struct dz_store *st, const char *fin, const struct dz_oidc_authreq *ar,
                           int64_t since_ms)
{
    json_t *e = NULL;
    bool ok = false;

    if (load(st, fin, ar->client->client_id, &e) == 0) {
        unsigned rel = (unsigned)json_integer_value(json_object_get(e, "release"));
        unsigned sc = (unsigned)json_integer_value(json_object_get(e, "scopes"));
        ok = (rel & ar->client->release) == ar->client->release &&
             (sc & ar->scopes) == ar->scopes &&
             json_integer_value(json_object_get(e, "at_ms")) >= since_ms;
    }
    json_decref(e);
    return ok;
}

static json_t *field_names(unsigned release)
{
    json_t *a = json_array();

    for (unsigned i = 0; a && i < DZ_RELEASE_COUNT; i++)
        if (release & (1u << i))
            json_array_append_new(a, json_string(dz_policy_release_names[i]));
    return a;
}

/* One consent request between the loop and its store step (oidc_offloop.h):
 * what the step reads is copied here, so it touches nothing of c. */
struct consent_flow {
    void (*signed_in)(struct dz_rctx *c, struct consent_flow *f); /* loop */
    void (*finish)(struct dz_rctx *c, struct consent_flow *f);    /* loop */
    struct dz_store *st;
    const struct dz_policy_set *ps; /* of the generation c holds */
    char fin[8];
    char id[DZ_OIDC_SECRET_LEN + 1];
    struct dz_oidc_authreq ar;
    bool approve;
    char client[DZ_OIDC_CLIENT_ID_MAX + 1];
    int rc;       /* the parked request's lookup (or the list, the withdrawal) */
    int rc_write; /* remembering an approval */
    json_t *list;
};

static void flow_free(struct consent_flow *f)
{
    json_decref(f->list);
    dz_secret_wipe(f->id, sizeof(f->id));
    free(f);
}

/* The parked request of f->id, checked again against the clients now: 0,
 * DZ_ERR_NOTFOUND, or the store's failure.  Store step. */
static int pending(struct consent_flow *f)
{
    struct dz_oidc_params p;
    json_t *pend = NULL;
    const char *q;
    const char *code;
    const char *detail;
    int rc;

    if (strlen(f->id) != DZ_OIDC_SECRET_LEN)
        return DZ_ERR_NOTFOUND;
    rc = dz_oidc_state_get(f->st, DZ_OIDC_NS_REQUEST, f->id, false, &pend);
    if (rc != 0)
        return dz_store_failed(rc) ? rc : DZ_ERR_NOTFOUND;
    rc = DZ_ERR_NOTFOUND;
    q = json_string_value(json_object_get(pend, "q"));
    if (q && dz_oidc_params_parse(q, strlen(q), &p) == 0) {
        if (dz_oidc_authreq_check(f->ps, &p, &f->ar, &code, &detail) == DZ_OIDC_AUTHREQ_OK)
            rc = 0;
        dz_oidc_params_cleanup(&p);
    }
    json_decref(pend);
    return rc;
}

/* The parked request could not be found: not_found, or 503 when the store
 * could not say. */
static bool pending_refused(struct dz_rctx *c, int rc)
{
    if (rc == 0)
        return false;
    if (dz_store_failed(rc))
        dz_rctx_state_unavailable(c, rc);
    else
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
    return true;
}

static void authenticated(struct dz_rctx *c, int rc, void *arg)
{
    struct consent_flow *f = arg;

    if (!dz_oidc_can_answer(c)) {
        flow_free(f);
        return;
    }
    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, rc);
        flow_free(f);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        flow_free(f);
        return;
    }
    f->st = c->gw->store;
    f->ps = c->gen->policies;
    memcpy(f->fin, c->session.fin, sizeof(f->fin));
    f->signed_in(c, f);
}

/* Sign in (the session), then f->signed_in on the loop. */
static void start(struct dz_rctx *c, void (*signed_in)(struct dz_rctx *c, struct consent_flow *f))
{
    struct consent_flow *f = calloc(1, sizeof(*f));

    if (!f) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    f->signed_in = signed_in;
    dz_rctx_authenticate_async(c, authenticated, f);
}

static void step_done(struct dz_rctx *c, void *arg)
{
    struct consent_flow *f = arg;

    if (dz_oidc_can_answer(c))
        f->finish(c, f);
    flow_free(f);
}

/* work(f) off the loop, then finish(c, f) on it (unless the client left). */
static void run(struct dz_rctx *c, struct consent_flow *f, void (*work)(void *arg),
                void (*finish)(struct dz_rctx *c, struct consent_flow *f))
{
    f->finish = finish;
    if (dz_gw_state_try(c, work, step_done, f) != 0) {
        flow_free(f);
        dz_rctx_problem(c, "service_unavailable", "the gateway is busy");
    }
}

/* ------------------------------------------------ GET /oidc/consent */

static void get_work(void *arg)
{
    struct consent_flow *f = arg;

    f->rc = pending(f);
}

static void get_finish(struct dz_rctx *c, struct consent_flow *f)
{
    const struct dz_oidc_authreq *ar = &f->ar;
    json_t *scopes;
    json_t *body;

    if (pending_refused(c, f->rc))
        return;
    scopes = json_array();
    for (unsigned b = 1; scopes && b <= DZ_OIDC_SCOPE_PHONE; b <<= 1)
        if (ar->scopes & b)
            json_array_append_new(scopes, json_string(dz_oidc_scope_name(b)));
    body = json_pack("{s:s, s:s, s:s, s:o, s:o}", "client", ar->client->client_id, "name",
                     ar->client->display_name, "registered_as", ar->svc->registered_as, "fields",
                     field_names(ar->client->release), "scopes", scopes);
    if (body && ar->client->purpose)
        json_object_set_new(body, "purpose", json_string(ar->client->purpose));
    dz_rctx_json(c, 200, body, NULL, 0);
}

static void get_signed_in(struct dz_rctx *c, struct consent_flow *f)
{
    struct dz_oidc_params p;
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);

    if (dz_oidc_params_parse(q, qlen, &p) == 0) {
        const char *v = dz_oidc_params_get(&p, "id", NULL);
        if (v && strlen(v) == DZ_OIDC_SECRET_LEN)
            memcpy(f->id, v, sizeof(f->id));
        dz_oidc_params_cleanup(&p);
    }
    run(c, f, get_work, get_finish);
}

void dz_oidc_ep_consent_get(struct dz_rctx *c)
{
    start(c, get_signed_in);
}

/* ----------------------------------------------- POST /oidc/consent */

struct decide_op {
    char *next;
};

static void decided(struct dz_rctx *c, int rc, void *arg)
{
    struct decide_op *op = arg;

    if (dz_oidc_can_answer(c)) {
        if (rc != 0)
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        else
            dz_rctx_json(c, 200, json_pack("{s:s}", "next", op->next), NULL, 0);
    }
    free(op->next);
    free(op);
}

int dz_oidc_consent_remember(struct dz_store *st, const char *fin, const struct dz_oidc_authreq *ar)
{
    char key[CONSENT_KEY_MAX];
    int64_t now_ms = dz_unix_ms();
    json_t *e;
    int rc = pair_key(fin, ar->client->client_id, key);

    if (rc != 0)
        return rc;
    e = json_pack("{s:i, s:i, s:I, s:I}", "release", (int)ar->client->release, "scopes",
                  (int)ar->scopes, "at", (json_int_t)(now_ms / 1000), "at_ms", (json_int_t)now_ms);
    if (!e)
        return DZ_ERR_NOMEM;
    rc = dz_oidc_state_put(st, DZ_OIDC_NS_CONSENT, key, e, DZ_OIDC_CONSENT_TTL_MS, 0);
    json_decref(e);
    return rc;
}

static void post_work(void *arg)
{
    struct consent_flow *f = arg;

    f->rc = pending(f);
    if (f->rc != 0)
        return;
    if (f->approve)
        f->rc_write = dz_oidc_consent_remember(f->st, f->fin, &f->ar);
    else
        dz_oidc_state_del(f->st, DZ_OIDC_NS_REQUEST, f->id);
}

static void post_finish(struct dz_rctx *c, struct consent_flow *f)
{
    const struct dz_oidc_authreq *ar = &f->ar;
    struct decide_op *op;
    json_t *rec;

    if (pending_refused(c, f->rc))
        return;
    if (f->approve && f->rc_write != 0) {
        dz_rctx_state_unavailable(c, f->rc_write);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (op && f->approve) {
        char url[80];
        snprintf(url, sizeof(url), "/authorize/resume?id=%s", f->id);
        op->next = strdup(url);
    } else if (op) {
        const char *names[] = {"error", "state", "iss"};
        const char *values[] = {"access_denied", ar->has_state ? ar->state : NULL,
                                c->gen->config->gateway.origin};
        op->next = dz_oidc_build_url(ar->redirect_uri, names, values, 3);
    }
    if (!op || !op->next) {
        free(op);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "oidc_consent", "client",
                    ar->client->client_id, "service", ar->svc->name, "fin", f->fin, "decision",
                    f->approve ? "approve" : "deny", "fields", field_names(ar->client->release));
    dz_gw_audit(c, rec, decided, op);
}

static void post_signed_in(struct dz_rctx *c, struct consent_flow *f)
{
    json_t *req = NULL;
    const char *id;

    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &req) != 0) {
        flow_free(f);
        return;
    }
    id = dz_json_str(req, "id", DZ_OIDC_SECRET_LEN);
    if (!json_is_boolean(json_object_get(req, "approve")) || !id) {
        json_decref(req);
        flow_free(f);
        dz_rctx_problem(c, "invalid_request", "expected {\"id\", \"approve\": true|false}");
        return;
    }
    f->approve = json_is_true(json_object_get(req, "approve"));
    snprintf(f->id, sizeof(f->id), "%s", id);
    json_decref(req);
    run(c, f, post_work, post_finish);
}

void dz_oidc_ep_consent_post(struct dz_rctx *c)
{
    start(c, post_signed_in);
}

int dz_oidc_consents_list(struct dz_store *st, const struct dz_policy_set *ps, const char *fin,
                          json_t **out)
{
    json_t *a = json_array();
    int rc = 0;

    *out = NULL;
    if (!a)
        return DZ_ERR_NOMEM;
    /* The candidates are the clients the policies register: a decision is
     * only ever recorded for one, and one the policies no longer hold
     * cannot be signed in to. */
    for (size_t i = 0; ps && i < ps->n_services && rc == 0; i++) {
        const struct dz_policy_oidc *o = ps->services[i].oidc;
        json_t *e = NULL;
        int r;

        if (!o)
            continue;
        r = load(st, fin, o->client_id, &e);
        if (r == 0)
            json_array_append_new(
                a,
                json_pack("{s:s, s:s, s:o, s:O}", "client", o->client_id, "name", o->display_name,
                          "fields",
                          field_names((unsigned)json_integer_value(json_object_get(e, "release"))),
                          "at", json_object_get(e, "at")));
        else if (dz_store_failed(r))
            rc = r; /* an incomplete list would hide a consent: fail closed */
        json_decref(e);
    }
    if (rc != 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

int dz_oidc_consent_withdraw(struct dz_store *st, const char *fin, const char *client)
{
    char key[CONSENT_KEY_MAX];
    int rc = pair_key(fin, client, key);

    /* One delete of the client's own entry: nothing else is rewritten, so
     * an approval of another client meanwhile stays, and this withdrawal
     * cannot be undone by one.  Durable: a withdrawal lost in a failover
     * would let the client sign the person in again without asking, after
     * the person was told it was withdrawn. */
    return rc ? DZ_ERR_NOTFOUND : dz_oidc_state_del_durable(st, DZ_OIDC_NS_CONSENT, key);
}

/* ------------------------------------------- GET/POST /oidc/consents */

static void list_work(void *arg)
{
    struct consent_flow *f = arg;

    f->rc = dz_oidc_consents_list(f->st, f->ps, f->fin, &f->list);
}

static void list_finish(struct dz_rctx *c, struct consent_flow *f)
{
    if (f->rc != 0) {
        dz_rctx_state_unavailable(c, f->rc);
        return;
    }
    dz_rctx_json(c, 200, json_pack("{s:O}", "consents", f->list), NULL, 0);
}

static void withdraw_work(void *arg)
{
    struct consent_flow *f = arg;

    f->rc = dz_oidc_consent_withdraw(f->st, f->fin, f->client);
}

static void withdraw_finish(struct dz_rctx *c, struct consent_flow *f)
{
    struct decide_op *op;
    json_t *rec;

    if (f->rc == DZ_ERR_NOTFOUND) {
        dz_rctx_problem(c, "not_found", "no consent for this client");
        return;
    }
    if (f->rc != 0) {
        dz_rctx_state_unavailable(c, f->rc);
        return;
    }
    rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "oidc_consent", "client", f->client, "fin",
                    f->fin, "decision", "withdraw");
    op = calloc(1, sizeof(*op));
    if (!op || !(op->next = strdup("/#/account"))) {
        free(op);
        json_decref(rec);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_gw_audit(c, rec, decided, op);
}

static void consents_signed_in(struct dz_rctx *c, struct consent_flow *f)
{
    json_t *req = NULL;
    const char *client;

    if (strcmp(dz_req_method(c->req), "GET") == 0) {
        run(c, f, list_work, list_finish);
        return;
    }
    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &req) != 0) {
        flow_free(f);
        return;
    }
    client = dz_json_str(req, "withdraw", DZ_OIDC_CLIENT_ID_MAX);
    if (!client) {
        json_decref(req);
        flow_free(f);
        dz_rctx_problem(c, "not_found", "no consent for this client");
        return;
    }
    snprintf(f->client, sizeof(f->client), "%s", client);
    json_decref(req);
    run(c, f, withdraw_work, withdraw_finish);
}

void dz_oidc_ep_consents(struct dz_rctx *c)
{
    start(c, consents_signed_in);
}
