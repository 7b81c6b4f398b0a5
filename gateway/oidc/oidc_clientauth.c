/*
 * oidc_clientauth.c - see oidc_clientauth.h.
 */
#include "oidc/oidc_clientauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "keys/jws.h"
#include "oidc/oidc.h"
#include "oidc/oidc_jwks_uri.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"
#include "state/store.h"

#include "base/compat.h"

#define LEEWAY_S 30

static int deny(const char **why, const char *w)
{
    *why = w;
    return DZ_ERR_DENIED;
}

static int by_secret(struct dz_rctx *c, const char *authz, const struct dz_oidc_params *p,
                     const struct dz_policy_service **out, const char **why)
{
    char id[DZ_OIDC_CLIENT_ID_MAX + 1];
    char secret[1025];
    unsigned char h[32];
    const struct dz_policy_service *svc;
    const char *form_id = dz_oidc_params_get(p, "client_id", NULL);
    int rc;

    if (dz_oidc_params_get(p, "client_assertion", NULL) ||
        dz_oidc_params_get(p, "client_secret", NULL))
        return deny(why, "use exactly one client authentication method");
    rc = dz_oidc_basic_parse(authz, id, sizeof(id), secret, sizeof(secret));
    if (rc != 0)
        return deny(why, "malformed Basic credentials");
    svc = dz_policy_oidc_client(c->gen->policies, id);
    if (!svc || svc->oidc->auth != DZ_OIDC_AUTH_SECRET_BASIC || (form_id && strcmp(form_id, id))) {
        dz_secret_wipe(secret, sizeof(secret));
        return deny(why, "unknown client or not a client_secret_basic client");
    }
    dz_sha256(secret, strlen(secret), h);
    dz_secret_wipe(secret, sizeof(secret));
    if (!dz_secret_equal(h, sizeof(h), svc->oidc->secret_hash, sizeof(h)))
        return deny(why, "wrong client secret");
    *out = svc;
    return 0;
}

/* The client named in an assertion before it is verified: only to pick
 * the key set to verify it with. */
static int unverified_iss(const char *jwt, char *out, size_t cap)
{
    const char *a = strchr(jwt, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    unsigned char *raw = NULL;
    size_t n = 0;
    json_t *j;
    int rc = DZ_ERR_PARSE;

    out[0] = '\0';
    if (!b || dz_b64_decode(a + 1, (size_t)(b - a - 1), true, &raw, &n) != 0)
        return DZ_ERR_PARSE;
    j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (json_is_string(json_object_get(j, "iss")) &&
        strlen(json_string_value(json_object_get(j, "iss"))) < cap) {
        snprintf(out, cap, "%s", json_string_value(json_object_get(j, "iss")));
        rc = 0;
    }
    json_decref(j);
    return rc;
}

static int by_assertion(struct dz_rctx *c, const struct dz_oidc_params *p, bool may_fetch,
                        const struct dz_policy_service **out, struct dz_oidc_jti_mark *mark,
                        const char **why)
{
    const char *type = dz_oidc_params_get(p, "client_assertion_type", NULL);
    const char *jwt = dz_oidc_params_get(p, "client_assertion", NULL);
    const char *form_id = dz_oidc_params_get(p, "client_id", NULL);
    char id[DZ_OIDC_CLIENT_ID_MAX + 1];
    char token_url[512];
    const struct dz_policy_service *svc;
    json_t *claims = NULL;
    const char *jti = NULL;
    const char *reason = NULL;
    int64_t exp = 0;
    int64_t now = dz_unix_ms() / 1000;
    int rc;

    if (!type || !jwt)
        return deny(why, "client authentication is required");
    if (strcmp(type, DZ_OIDC_ASSERTION_TYPE) != 0)
        return deny(why, "unsupported client_assertion_type");
    if (dz_oidc_params_get(p, "client_secret", NULL))
        return deny(why, "use exactly one client authentication method");
    if (unverified_iss(jwt, id, sizeof(id)) != 0)
        return deny(why, "malformed client assertion");
    svc = dz_policy_oidc_client(c->gen->policies, id);
    if (!svc || svc->oidc->auth != DZ_OIDC_AUTH_PRIVATE_KEY_JWT ||
        (form_id && strcmp(form_id, id) != 0))
        return deny(why, "unknown client or not a private_key_jwt client");
    /* ES256 only, with a key of this client's set: "alg":"none", HS256 and
     * every other algorithm fail here, before any claim is read. */
    if (svc->oidc->jwks_uri) {
        rc = dz_oidc_jwks_uri_verify(svc->oidc, jwt, may_fetch, &claims, &reason);
        if (rc == DZ_ERR_STATE) {
            *out = svc;
            *why = "the client's key set is being fetched";
            return rc;
        }
    } else {
        rc = dz_jws_verify_detail(jwt, strlen(jwt), svc->oidc->jwks, NULL, NULL, &claims, &reason);
    }
    if (rc != 0)
        return deny(why, "the client assertion does not verify");
    snprintf(token_url, sizeof(token_url), "%s/token", dz_oidc_issuer(c));
    rc = dz_oidc_assertion_check(claims, id, token_url, dz_oidc_issuer(c), now, LEEWAY_S, &jti,
                                 &exp, &reason);
    if (rc != 0) {
        json_decref(claims);
        return deny(why, "the client assertion's claims are not acceptable");
    }
    /* Each assertion once (RFC 7523 3, item 7): remembered until it could
     * no longer be accepted anyway.  The caller records it off the loop
     * (dz_oidc_jti_record) before anything is spent. */
    snprintf(mark->key, sizeof(mark->key), "%s|%s", id, jti);
    mark->ttl_ms = (uint64_t)(exp - now + LEEWAY_S + 1) * 1000;
    json_decref(claims);
    *out = svc;
    return 0;
}

int dz_oidc_jti_record(struct dz_store *st, const struct dz_oidc_jti_mark *mark)
{
    json_t *v;
    int rc;

    if (!mark->key[0])
        return 0;
    v = json_object();
    rc = v ? dz_oidc_state_put(st, DZ_OIDC_NS_JTI, mark->key, v, mark->ttl_ms, DZ_STORE_NX)
           : DZ_ERR_NOMEM;
    json_decref(v);
    return rc;
}

int dz_oidc_client_authenticate(struct dz_rctx *c, const struct dz_oidc_params *p, bool may_fetch,
                                const struct dz_policy_service **out, struct dz_oidc_jti_mark *mark,
                                const char **why)
{
    const char *authz = dz_req_header(c->req, "authorization");

    *out = NULL;
    *why = "ok";
    mark->key[0] = '\0';
    mark->ttl_ms = 0;
    if (authz)
        return by_secret(c, authz, p, out, why);
    return by_assertion(c, p, may_fetch, out, mark, why);
}
