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
#include "core/gwasync.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#include "base/compat.h"

static void person_key(const char *fin, char out[32])
{
    snprintf(out, 32, "consent|%s", fin);
}

static json_t *load(struct dz_store *st, const char *fin)
{
    char key[32];
    json_t *rec = NULL;

    person_key(fin, key);
    if (dz_oidc_state_get(st, DZ_OIDC_NS_CONSENT, key, false, &rec) != 0)
        return NULL;
    return rec;
}

bool dz_oidc_consent_given(struct dz_store *st, const char *fin, const struct dz_oidc_authreq *ar)
{
    json_t *rec = load(st, fin);
    json_t *e = json_object_get(json_object_get(rec, "clients"), ar->client->client_id);
    bool ok = false;

    if (json_is_object(e)) {
        unsigned rel = (unsigned)json_integer_value(json_object_get(e, "release"));
        unsigned sc = (unsigned)json_integer_value(json_object_get(e, "scopes"));
        ok = (rel & ar->client->release) == ar->client->release && (sc & ar->scopes) == ar->scopes;
    }
    json_decref(rec);
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

/* The parked request of id, checked again against the clients now. */
static int pending(struct dz_rctx *c, const char *id, struct dz_oidc_authreq *ar)
{
    struct dz_oidc_params p;
    json_t *pend = NULL;
    const char *q;
    const char *code;
    const char *detail;
    int rc = DZ_ERR_NOTFOUND;

    if (!id || strlen(id) != DZ_OIDC_SECRET_LEN ||
        dz_oidc_state_get(c->gw->store, DZ_OIDC_NS_REQUEST, id, false, &pend) != 0)
        return DZ_ERR_NOTFOUND;
    q = json_string_value(json_object_get(pend, "q"));
    if (q && dz_oidc_params_parse(q, strlen(q), &p) == 0) {
        if (dz_oidc_authreq_check(c->gen->policies, &p, ar, &code, &detail) == DZ_OIDC_AUTHREQ_OK)
            rc = 0;
        dz_oidc_params_cleanup(&p);
    }
    json_decref(pend);
    return rc;
}

static bool signed_in(struct dz_rctx *c)
{
    int rc = dz_rctx_authenticate(c);

    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, rc);
        return false;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        return false;
    }
    return true;
}

void dz_oidc_ep_consent_get(struct dz_rctx *c)
{
    struct dz_oidc_params p;
    struct dz_oidc_authreq ar;
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);
    char id[DZ_OIDC_SECRET_LEN + 1] = "";
    json_t *scopes;
    json_t *body;

    if (!signed_in(c))
        return;
    if (dz_oidc_params_parse(q, qlen, &p) == 0) {
        const char *v = dz_oidc_params_get(&p, "id", NULL);
        if (v && strlen(v) == DZ_OIDC_SECRET_LEN)
            memcpy(id, v, sizeof(id));
        dz_oidc_params_cleanup(&p);
    }
    if (pending(c, id, &ar) != 0) {
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
        return;
    }
    scopes = json_array();
    for (unsigned b = 1; scopes && b <= DZ_OIDC_SCOPE_PHONE; b <<= 1)
        if (ar.scopes & b)
            json_array_append_new(scopes, json_string(dz_oidc_scope_name(b)));
    body = json_pack("{s:s, s:s, s:s, s:o, s:o}", "client", ar.client->client_id, "name",
                     ar.client->display_name, "registered_as", ar.svc->registered_as, "fields",
                     field_names(ar.client->release), "scopes", scopes);
    if (body && ar.client->purpose)
        json_object_set_new(body, "purpose", json_string(ar.client->purpose));
    dz_rctx_json(c, 200, body, NULL, 0);
}

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

static int remember(struct dz_rctx *c, const struct dz_oidc_authreq *ar)
{
    char key[32];
    json_t *rec = load(c->gw->store, c->session.fin);
    json_t *clients;
    int rc;

    if (!rec)
        rec = json_object();
    clients = json_object_get(rec, "clients");
    if (!json_is_object(clients)) {
        clients = json_object();
        json_object_set_new(rec, "clients", clients);
    }
    if (json_object_size(clients) >= 64 && !json_object_get(clients, ar->client->client_id)) {
        json_decref(rec);
        return DZ_ERR_FULL;
    }
    json_object_set_new(clients, ar->client->client_id,
                        json_pack("{s:i, s:i, s:I}", "release", (int)ar->client->release, "scopes",
                                  (int)ar->scopes, "at", (json_int_t)(dz_unix_ms() / 1000)));
    person_key(c->session.fin, key);
    rc = dz_oidc_state_put(c->gw->store, DZ_OIDC_NS_CONSENT, key, rec, DZ_OIDC_CONSENT_TTL_MS, 0);
    json_decref(rec);
    return rc;
}

void dz_oidc_ep_consent_post(struct dz_rctx *c)
{
    struct dz_oidc_authreq ar;
    struct decide_op *op;
    json_t *req = NULL;
    json_t *rec;
    const char *id;
    bool approve;
    int rc;

    if (!signed_in(c) || !dz_rctx_origin_ok(c))
        return;
    if (dz_rctx_body_json(c, &req) != 0)
        return;
    id = dz_json_str(req, "id", DZ_OIDC_SECRET_LEN);
    if (!json_is_boolean(json_object_get(req, "approve")) || !id) {
        json_decref(req);
        dz_rctx_problem(c, "invalid_request", "expected {\"id\", \"approve\": true|false}");
        return;
    }
    approve = json_is_true(json_object_get(req, "approve"));
    rc = pending(c, id, &ar);
    if (rc != 0) {
        json_decref(req);
        dz_rctx_problem(c, "not_found", "unknown or expired authorization request");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (op && approve) {
        char url[80];
        snprintf(url, sizeof(url), "/authorize/resume?id=%s", id);
        op->next = strdup(url);
    } else if (op) {
        const char *names[] = {"error", "state", "iss"};
        const char *values[] = {"access_denied", ar.has_state ? ar.state : NULL,
                                c->gen->config->gateway.origin};
        op->next = dz_oidc_build_url(ar.redirect_uri, names, values, 3);
        dz_oidc_state_del(c->gw->store, DZ_OIDC_NS_REQUEST, id);
    }
    json_decref(req);
    if (!op || !op->next) {
        if (op)
            free(op);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    if (approve && (rc = remember(c, &ar)) != 0) {
        free(op->next);
        free(op);
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    rec =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "oidc_consent", "client",
                  ar.client->client_id, "service", ar.svc->name, "fin", c->session.fin, "decision",
                  approve ? "approve" : "deny", "fields", field_names(ar.client->release));
    dz_gw_audit(c, rec, decided, op);
}

int dz_oidc_consents_list(struct dz_store *st, const struct dz_policy_set *ps, const char *fin,
                          json_t **out)
{
    json_t *rec = load(st, fin);
    json_t *clients = json_object_get(rec, "clients");
    json_t *a = json_array();
    const char *k;
    json_t *v;

    *out = NULL;
    if (!a) {
        json_decref(rec);
        return DZ_ERR_NOMEM;
    }
    json_object_foreach(clients, k, v)
    {
        const struct dz_policy_service *svc = dz_policy_oidc_client(ps, k);
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:o, s:O}", "client", k, "name",
                         svc ? svc->oidc->display_name : k, "fields",
                         field_names((unsigned)json_integer_value(json_object_get(v, "release"))),
                         "at", json_object_get(v, "at")));
    }
    json_decref(rec);
    *out = a;
    return 0;
}

int dz_oidc_consent_withdraw(struct dz_store *st, const char *fin, const char *client)
{
    json_t *rec = load(st, fin);
    char key[32];
    int rc;

    if (!rec || json_object_del(json_object_get(rec, "clients"), client) != 0) {
        json_decref(rec);
        return DZ_ERR_NOTFOUND;
    }
    person_key(fin, key);
    rc = dz_oidc_state_put(st, DZ_OIDC_NS_CONSENT, key, rec, DZ_OIDC_CONSENT_TTL_MS, 0);
    json_decref(rec);
    return rc;
}

void dz_oidc_ep_consents(struct dz_rctx *c)
{
    json_t *rec;
    json_t *req = NULL;
    const char *client;
    int rc;

    if (!signed_in(c))
        return;
    if (strcmp(dz_req_method(c->req), "GET") == 0) {
        json_t *out = NULL;

        rc = dz_oidc_consents_list(c->gw->store, c->gen->policies, c->session.fin, &out);
        if (rc != 0) {
            dz_rctx_state_unavailable(c, rc);
            return;
        }
        dz_rctx_json(c, 200, json_pack("{s:o}", "consents", out), NULL, 0);
        return;
    }
    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &req) != 0)
        return;
    client = dz_json_str(req, "withdraw", DZ_OIDC_CLIENT_ID_MAX);
    rc = client ? dz_oidc_consent_withdraw(c->gw->store, c->session.fin, client) : DZ_ERR_NOTFOUND;
    if (rc == DZ_ERR_NOTFOUND) {
        json_decref(req);
        dz_rctx_problem(c, "not_found", "no consent for this client");
        return;
    }
    if (rc != 0) {
        json_decref(req);
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "oidc_consent", "client", client, "fin",
                    c->session.fin, "decision", "withdraw");
    json_decref(req);
    {
        struct decide_op *op = calloc(1, sizeof(*op));
        if (!op || !(op->next = strdup("/#/account"))) {
            free(op);
            json_decref(rec);
            dz_rctx_problem(c, "service_unavailable", NULL);
            return;
        }
        dz_gw_audit(c, rec, decided, op);
    }
}
