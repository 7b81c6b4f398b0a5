/*
 * oidc_route.c - the provider's paths and methods (oidc.h); the daemon's
 * router asks here before it hands a request to the forwarder.
 */
#include <string.h>

#include "oidc/oidc.h"
#include "oidc/oidc_endpoints.h"

#include "base/compat.h"

struct oidc_endpoint {
    const char *path;
    const char *methods; /* "GET", "POST" or "GET, POST" (the Allow value) */
    const char *name;    /* metrics label */
    void (*get)(struct dz_rctx *c);
    void (*post)(struct dz_rctx *c);
};

static const struct oidc_endpoint endpoints[] = {
    {"/.well-known/openid-configuration", "GET", "oidc_discovery", dz_oidc_ep_discovery, NULL},
    {"/authorize", "GET, POST", "oidc_authorize", dz_oidc_ep_authorize, dz_oidc_ep_authorize_post},
    {"/authorize/resume", "GET", "oidc_authorize_resume", dz_oidc_ep_resume, NULL},
    {"/authorize/consent", "GET, POST", "oidc_consent", dz_oidc_ep_consent_get,
     dz_oidc_ep_consent_post},
    {"/oidc/consents", "GET, POST", "oidc_consents", dz_oidc_ep_consents, dz_oidc_ep_consents},
    {"/token", "POST", "oidc_token", NULL, dz_oidc_ep_token},
    {"/userinfo", "GET, POST", "oidc_userinfo", dz_oidc_ep_userinfo, dz_oidc_ep_userinfo},
    {"/logout", "GET", "oidc_logout", dz_oidc_ep_logout, NULL},
};

bool dz_oidc_route(struct dz_rctx *c)
{
    const char *path = dz_req_path(c->req);
    const char *method = dz_req_method(c->req);
    size_t plen = strcspn(path, "?");

    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        const struct oidc_endpoint *e = &endpoints[i];
        void (*h)(struct dz_rctx *) = NULL;
        if (strlen(e->path) != plen || strncmp(e->path, path, plen) != 0)
            continue;
        c->route = e->name;
        c->route_tpl = e->path;
        if (strcmp(method, "GET") == 0)
            h = e->get;
        else if (strcmp(method, "POST") == 0)
            h = e->post;
        if (!h) {
            dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", e->methods},
                              1);
            return true;
        }
        h(c);
        return true;
    }
    return false;
}
