/*
 * oidc_discovery.c - GET /.well-known/openid-configuration (OpenID Connect
 * Discovery 1.0, RFC 8414): what a client library needs to talk to the
 * provider, all of it derived from the gateway's origin, so it cannot
 * disagree with what the endpoints check.
 */
#include <stdio.h>

#include "oidc/oidc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_endpoints.h"

#include "base/compat.h"

static json_t *url(const char *iss, const char *path)
{
    char u[600];

    snprintf(u, sizeof(u), "%s%s", iss, path);
    return json_string(u);
}

void dz_oidc_ep_discovery(struct dz_rctx *c)
{
    const char *iss = dz_oidc_issuer(c);
    json_t *d = json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:o, s:[s], s:[s], s:[s], s:[s], s:[s], s:[s,s], s:[s], "
        "s:[s,s,s,s], s:[s,s,s], s:[s,s,s,s,s,s,s,s,s,s,s,s], s:[s,s], s:b, s:b, s:b, s:b, "
        "s:[s,s,s], s:[s]}",
        "issuer", iss, "authorization_endpoint", url(iss, "/authorize"), "token_endpoint",
        url(iss, "/token"), "userinfo_endpoint", url(iss, "/userinfo"), "jwks_uri",
        url(iss, "/.well-known/jwks.json"), "end_session_endpoint", url(iss, "/logout"),
        "response_types_supported", "code", "grant_types_supported", "authorization_code",
        "subject_types_supported", "public", "id_token_signing_alg_values_supported", "ES256",
        "code_challenge_methods_supported", "S256", "token_endpoint_auth_methods_supported",
        "private_key_jwt", "client_secret_basic",
        "token_endpoint_auth_signing_alg_values_supported", "ES256", "scopes_supported", "openid",
        "profile", "address", "phone", "acr_values_supported", "low", "substantial", "high",
        "claims_supported", "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
        "sid", "at_hash", "fin", "ui_locales_supported", "az", "en", "claims_parameter_supported",
        0, "request_parameter_supported", 0, "backchannel_logout_supported", 1,
        "backchannel_logout_session_supported", 1, "prompt_values_supported", "none", "login",
        "consent", "response_modes_supported", "query");
    if (!d) {
        dz_rctx_problem(c, "internal_error", NULL);
        return;
    }
    dz_rctx_json(c, 200, d, &(struct dz_hdr){"access-control-allow-origin", "*"}, 1);
}
