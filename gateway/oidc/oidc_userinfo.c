/*
 * oidc_userinfo.c - GET/POST /userinfo (OpenID Connect Core 5.3): the
 * claims about the person for an access token from /token.  The token is
 * accepted only here and only in the Authorization header (RFC 6750 2.1;
 * never in a query, where logs and Referer would carry it); a session
 * token is no access token and is refused like any unknown one.
 */
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "core/gwasync.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"

#include "base/compat.h"

static void answered(struct dz_rctx *c, int rc, void *arg)
{
    json_t *body = arg;

    if (!dz_oidc_can_answer(c)) {
        json_decref(body);
        return;
    }
    if (rc != 0) {
        json_decref(body);
        dz_oidc_error(c, 500, "server_error", "audit log unavailable", NULL);
        return;
    }
    dz_rctx_json(c, 200, body, NULL, 0);
}

void dz_oidc_ep_userinfo(struct dz_rctx *c)
{
    const char *authz = dz_req_header(c->req, "authorization");
    const struct dz_policy_service *svc;
    json_t *at = NULL;
    json_t *body = NULL;
    json_t *released = NULL;
    json_t *audit = NULL;
    const char *tok;

    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
        dz_oidc_error(c, 401, "invalid_request", "an access token is required", "Bearer");
        return;
    }
    tok = authz + 7;
    while (*tok == ' ')
        tok++;
    if (strlen(tok) != DZ_OIDC_SECRET_LEN ||
        dz_oidc_state_get(c->gw->store, DZ_OIDC_NS_TOKEN, tok, false, &at) != 0) {
        dz_oidc_error(c, 401, "invalid_token", "unknown, expired or revoked access token",
                      "Bearer");
        return;
    }
    /* The client's registration as it is now: a field a reload stopped
     * releasing is not released on a token issued before. */
    svc = dz_policy_oidc_client(c->gen->policies, json_string_value(json_object_get(at, "client")));
    if (!svc) {
        json_decref(at);
        dz_oidc_error(c, 401, "invalid_token", "the client is no longer registered", "Bearer");
        return;
    }
    body = json_pack("{s:O}", "sub", json_object_get(at, "fin"));
    released = json_array();
    if (body && released && (svc->oidc->release & DZ_RELEASE_FIN)) {
        json_object_set(body, "fin", json_object_get(at, "fin"));
        json_array_append_new(released, json_string("fin"));
    }
    if (body) {
        json_object_set(body, "acr", json_object_get(at, "acr"));
        json_object_set(body, "amr", json_object_get(at, "amr"));
    }
    audit = json_pack("{s:s, s:s, s:s, s:O, s:O}", "type", "oidc_userinfo", "client",
                      svc->oidc->client_id, "service", svc->name, "fin", json_object_get(at, "fin"),
                      "released", released);
    json_decref(released);
    json_decref(at);
    if (!body || !audit) {
        json_decref(body);
        json_decref(audit);
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        return;
    }
    dz_gw_audit(c, audit, answered, body);
}
