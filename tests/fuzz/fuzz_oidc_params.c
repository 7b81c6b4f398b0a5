/*
 * fuzz_oidc_params.c - the provider's parsers of outside input
 * (gateway/oidc): the first byte picks
 *   0  dz_oidc_params_parse (a query or a form body) and dz_oidc_params_get
 *   1  dz_oidc_basic_parse (an Authorization field value)
 *   2  dz_oidc_authreq_check over a parsed query, against a fixed client
 *   3  a client assertion: dz_jws_verify_detail with the client's fixed key
 *      set, then dz_oidc_assertion_check on what verified
 * Promises checked besides no crash, no leak: parsed names are [a-z0-9_],
 * unique, and values lie within the input's length; failures leave nothing
 * behind; Basic credentials are NUL-terminated within their buffers and
 * empty on failure; an accepted request names a registered redirect URI, a
 * 43-character challenge and openid; a refusal shown to the person never
 * names a redirect URI; no assertion is ever accepted (nobody holds the
 * fixed key's private half).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "keys/jws.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_params.h"
#include "policy/policy_oidc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define JWKS                                                                                       \
    "{\"keys\":[{\"crv\":\"P-256\",\"x\":\"8cLFzRJ4qhP_G3qPkO1Ob6f6nUBO6GwYChxL5xDNOkQ\","         \
    "\"y\":\"2QQt8c6XbLgvzoLk5avqnp0giT-fuAg4q-8W0Y3MtKA\",\"kty\":\"EC\",\"kid\":\"k1\","         \
    "\"use\":\"sig\",\"alg\":\"ES256\"}]}"

static const char policy[] = "service: rp\nregistered_as: DIS-0009\noidc:\n  client_id: rp-1\n"
                             "  token_endpoint_auth_method: private_key_jwt\n  jwks: '" JWKS "'\n"
                             "  redirect_uris: [https://rp.example/cb, http://127.0.0.1:8000/cb]\n"
                             "  scopes: [openid, profile]\n  acr_allowed: [low, substantial]\n"
                             "  acr_default: low\n  consent: ask\n";

static struct dz_policy_set *set;
static struct dz_jwks *jwks;

static void init(void)
{
    char err[256];

    if (set)
        return;
    if (dz_policy_load_buf("rp.yaml", policy, sizeof(policy) - 1, &set, err, sizeof(err)) != 0 ||
        dz_jwks_parse(JWKS, strlen(JWKS), &jwks) != 0)
        abort();
}

static void params(const char *s, size_t n)
{
    struct dz_oidc_params p;
    int rc = dz_oidc_params_parse(s, n, &p);

    if (rc != 0) {
        if (p.n != 0 || p.arena)
            abort();
        return;
    }
    for (size_t i = 0; i < p.n; i++) {
        size_t len = 0;
        if (!p.p[i].name[0] ||
            strspn(p.p[i].name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(p.p[i].name))
            abort();
        if (p.p[i].value_len > n || strlen(p.p[i].value) != p.p[i].value_len)
            abort();
        if (dz_oidc_params_get(&p, p.p[i].name, &len) != p.p[i].value || len != p.p[i].value_len)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(p.p[i].name, p.p[j].name) == 0)
                abort();
    }
    dz_oidc_params_cleanup(&p);
}

static void basic(const char *s)
{
    char id[65];
    char secret[129];
    int rc = dz_oidc_basic_parse(s, id, sizeof(id), secret, sizeof(secret));

    if (memchr(id, '\0', sizeof(id)) == NULL || memchr(secret, '\0', sizeof(secret)) == NULL)
        abort();
    if (rc != 0 && (id[0] || secret[0]))
        abort();
    if (rc == 0 && !id[0])
        abort();
}

static void authreq(const char *s, size_t n)
{
    struct dz_oidc_params p;
    struct dz_oidc_authreq ar;
    const char *code = NULL;
    const char *detail = NULL;
    enum dz_oidc_authreq_error e;

    if (dz_oidc_params_parse(s, n, &p) != 0)
        return;
    e = dz_oidc_authreq_check(set, &p, &ar, &code, &detail);
    dz_oidc_params_cleanup(&p);
    if (e == DZ_OIDC_AUTHREQ_OK) {
        if (!ar.redirect_uri ||
            !dz_policy_oidc_uri_listed(ar.client->redirect_uris, ar.client->n_redirect_uris,
                                       ar.redirect_uri) ||
            strlen(ar.challenge) != DZ_OIDC_CHALLENGE_LEN || !(ar.scopes & DZ_OIDC_SCOPE_OPENID) ||
            ar.acr == DZ_ACR_NONE || code)
            abort();
    } else if (e == DZ_OIDC_AUTHREQ_SHOW) {
        if (!code || (strcmp(code, "invalid_request") != 0 && strcmp(code, "unknown_client") != 0 &&
                      strcmp(code, "invalid_redirect_uri") != 0))
            abort();
    } else if (!code || !ar.redirect_uri || strlen(ar.state) > DZ_OIDC_STATE_MAX) {
        abort();
    }
}

static void assertion(const char *s, size_t n)
{
    json_t *claims = NULL;
    const char *why = NULL;
    const char *jti = NULL;
    int64_t exp = 0;

    if (dz_jws_verify_detail(s, n, jwks, NULL, NULL, &claims, &why) == 0) {
        /* Nobody has the private key: a forgery got through. */
        abort();
    }
    if (claims || !why)
        abort();
    claims = json_loadb(s, n, 0, NULL);
    if (claims &&
        dz_oidc_assertion_check(claims, "rp-1", "https://gw/token", "https://gw", 1000, 30, &jti,
                                &exp, &why) == 0 &&
        (!jti || exp <= 970))
        abort();
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    init();
    if (size < 1)
        return 0;
    s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] & 3) {
    case 0:
        params(s, size - 1);
        break;
    case 1:
        basic(s);
        break;
    case 2:
        authreq(s, strlen(s));
        break;
    default:
        assertion(s, strlen(s));
        break;
    }
    free(s);
    return 0;
}
