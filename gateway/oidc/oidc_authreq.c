/*
 * oidc_authreq.c - see oidc_authreq.h.
 */
#include "oidc/oidc_authreq.h"

#include <string.h>

#include "base/fin.h"
#include "base/parse.h"

#include "base/compat.h"

static enum dz_oidc_authreq_error show(const char **code, const char **detail, const char *c,
                                       const char *d)
{
    *code = c;
    *detail = d;
    return DZ_OIDC_AUTHREQ_SHOW;
}

static enum dz_oidc_authreq_error back(const char **code, const char **detail, const char *c,
                                       const char *d)
{
    *code = c;
    *detail = d;
    return DZ_OIDC_AUTHREQ_REDIRECT;
}

static bool is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* Space-separated words of v, each through lookup; unknown words are
 * DZ_ERR_PARSE when strict, else skipped. */
static int words(const char *v, unsigned (*lookup)(const char *, size_t), bool strict,
                 unsigned *out)
{
    *out = 0;
    while (*v) {
        size_t n;
        unsigned b;
        while (*v == ' ')
            v++;
        n = strcspn(v, " ");
        if (n == 0)
            break;
        b = lookup(v, n);
        if (!b && strict)
            return -1;
        *out |= b;
        v += n;
    }
    return 0;
}

static unsigned prompt_bit(const char *s, size_t n)
{
    static const char *const names[] = {"none", "login", "consent"};
    for (size_t i = 0; i < 3; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return 1u << i;
    return 0;
}

static unsigned acr_bit(const char *s, size_t n)
{
    char w[16];
    enum dz_acr a;

    if (n >= sizeof(w))
        return 0;
    memcpy(w, s, n);
    w[n] = '\0';
    return dz_policy_acr_parse(w, &a) == 0 && a != DZ_ACR_NONE ? 1u << a : 0;
}

enum dz_oidc_authreq_error dz_oidc_authreq_check(const struct dz_policy_set *set,
                                                 const struct dz_oidc_params *p,
                                                 struct dz_oidc_authreq *out, const char **code,
                                                 const char **detail)
{
    const char *v;
    size_t n;
    unsigned bits;

    memset(out, 0, sizeof(*out));
    out->max_age = -1;
    *code = NULL;
    *detail = NULL;

    /* 1. Who asks, and where the answer may go. */
    v = dz_oidc_params_get(p, "client_id", &n);
    if (!v || n == 0)
        return show(code, detail, "invalid_request", "client_id is missing");
    out->svc = dz_policy_oidc_client(set, v);
    if (!out->svc)
        return show(code, detail, "unknown_client", "no registered client has this client_id");
    out->client = out->svc->oidc;
    v = dz_oidc_params_get(p, "redirect_uri", &n);
    if (!v)
        return show(code, detail, "invalid_redirect_uri", "redirect_uri is missing");
    for (size_t i = 0; i < out->client->n_redirect_uris; i++)
        if (strcmp(out->client->redirect_uris[i], v) == 0)
            out->redirect_uri = out->client->redirect_uris[i];
    if (!out->redirect_uri)
        return show(code, detail, "invalid_redirect_uri",
                    "redirect_uri is not one the client registered");
    v = dz_oidc_params_get(p, "state", &n);
    if (v && n > DZ_OIDC_STATE_MAX)
        return show(code, detail, "invalid_request", "state is longer than 512 bytes");
    if (v) {
        memcpy(out->state, v, n + 1);
        out->has_state = true;
    }
    v = dz_oidc_params_get(p, "nonce", &n);
    if (v && n > DZ_OIDC_STATE_MAX)
        return show(code, detail, "invalid_request", "nonce is longer than 512 bytes");
    if (v) {
        memcpy(out->nonce, v, n + 1);
        out->has_nonce = true;
    }
    if (dz_oidc_params_get(p, "request", NULL) || dz_oidc_params_get(p, "request_uri", NULL))
        return back(code, detail, "request_not_supported", "request objects are not supported");

    /* 2. What it asks for: errors go back to the client. */
    v = dz_oidc_params_get(p, "response_type", NULL);
    if (!v || strcmp(v, "code") != 0)
        return back(code, detail, "unsupported_response_type", "only response_type=code");
    v = dz_oidc_params_get(p, "scope", NULL);
    if (!v || words(v, dz_oidc_scope_bit, true, &out->scopes) != 0 ||
        !(out->scopes & DZ_OIDC_SCOPE_OPENID))
        return back(code, detail, "invalid_scope", "scope must include openid and known scopes");
    if (out->scopes & ~out->client->scopes)
        return back(code, detail, "invalid_scope", "a scope the client is not registered for");
    v = dz_oidc_params_get(p, "code_challenge_method", NULL);
    if (!v || strcmp(v, "S256") != 0)
        return back(code, detail, "invalid_request",
                    "PKCE with code_challenge_method=S256 is required");
    v = dz_oidc_params_get(p, "code_challenge", &n);
    if (!v || n != DZ_OIDC_CHALLENGE_LEN || !is_b64url(v, n))
        return back(code, detail, "invalid_request",
                    "code_challenge must be 43 base64url characters");
    memcpy(out->challenge, v, n + 1);

    v = dz_oidc_params_get(p, "prompt", NULL);
    if (v) {
        if (words(v, prompt_bit, true, &bits) != 0)
            return back(code, detail, "invalid_request", "prompt is none, login or consent");
        out->prompt_none = bits & 1;
        out->prompt_login = bits & 2;
        out->prompt_consent = bits & 4;
        if (out->prompt_none && (out->prompt_login || out->prompt_consent))
            return back(code, detail, "invalid_request", "prompt=none goes with nothing else");
    }
    v = dz_oidc_params_get(p, "max_age", NULL);
    if (v) {
        long long ma;
        if (dz_parse_int(v, 0, 400LL * 24 * 3600, &ma) != 0)
            return back(code, detail, "invalid_request", "max_age is a number of seconds");
        out->max_age = ma;
    }

    /* acr_values is a list of preferences (Core 3.1.2.1): the first the
     * client may ask is the level the session must reach.  Levels it may
     * not ask are skipped, never honoured. */
    out->acr = out->client->acr_default;
    v = dz_oidc_params_get(p, "acr_values", NULL);
    if (v) {
        const char *w = v;
        bool found = false;
        while (*w && !found) {
            size_t k;
            unsigned b;
            while (*w == ' ')
                w++;
            k = strcspn(w, " ");
            if (k == 0)
                break;
            b = acr_bit(w, k);
            if (b & out->client->acr_allowed) {
                found = true;
                out->acr = (enum dz_acr)(b == 2 ? 1 : b == 4 ? 2 : 3);
            }
            w += k;
        }
        if (!found)
            return back(code, detail, "invalid_request",
                        "none of acr_values is a level this client may ask");
    }

    v = dz_oidc_params_get(p, "login_hint", &n);
    if (v && n > 0 && dz_fin_normalize(v, n, out->login_hint) != 0)
        return back(code, detail, "invalid_request", "login_hint is a FIN");
    v = dz_oidc_params_get(p, "ui_locales", NULL);
    if (v) {
        const char *w = v;
        while (*w && !out->lang[0]) {
            size_t k;
            while (*w == ' ')
                w++;
            k = strcspn(w, " ");
            if ((k == 2 || (k > 2 && w[2] == '-')) &&
                (strncmp(w, "az", 2) == 0 || strncmp(w, "en", 2) == 0))
                memcpy(out->lang, w, 2);
            w += k;
        }
    }
    return DZ_OIDC_AUTHREQ_OK;
}
