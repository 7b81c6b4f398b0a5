/*
 * policy_oidc.c - compiles a service's "oidc:" block; see policy_oidc.h.
 * Everything a client may claim is fixed here, at load: the exact URIs a
 * code or a logout may be sent to, how it proves who it is, what it may
 * ask for.  It never keeps a client secret, only its hash.
 */
#include "policy/policy_oidc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"
#include "base/secretfile.h"
#include "keys/jws.h"

#include "base/compat.h"

struct octx {
    const char *file;
    char *err;
    size_t err_len;
};

static int oerr(struct octx *c, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int oerr(struct octx *c, unsigned line, const char *key, const char *fmt, ...)
{
    char reason[400];
    char k[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(k, sizeof(k), "oidc.%s", key);
    dz_yaml_error(c->err, c->err_len, c->file, line, k, "%s", reason);
    return DZ_ERR_INVAL;
}

static int scalar(struct octx *c, const struct dz_yaml_node *n, const char *key, const char **out)
{
    *out = NULL;
    if (n->kind != DZ_YAML_SCALAR || dz_yaml_is_null(n))
        return oerr(c, n->key_line, key, "expected a value");
    *out = n->str;
    return 0;
}

static bool is_client_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DZ_OIDC_CLIENT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_'))
            return false;
    }
    return true;
}

/* A URI the gateway sends a browser (with a code) or a logout token to:
 * https, or http to a loopback host only (RFC 8252 7.3, for native and
 * test clients); no fragment, no user info, nothing that a browser or a
 * client library would read differently from us (blanks, controls,
 * backslashes).  The query is allowed and compared exactly. */
static const char *uri_problem(const char *s)
{
    char base[DZ_OIDC_URI_MAX + 1];
    struct dz_url u;
    size_t n = strlen(s);
    size_t q;

    if (n == 0 || n > DZ_OIDC_URI_MAX)
        return "expected a URI of at most 512 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#' || ch == '\\' || ch == '"' || ch == '<' ||
            ch == '>')
            return "no blanks, fragments, backslashes or non-ASCII characters";
    }
    q = strcspn(s, "?");
    memcpy(base, s, q);
    base[q] = '\0';
    if (dz_parse_url(base, &u) != 0)
        return "expected an absolute https URI";
    if (!u.is_https && !u.is_loopback)
        return "https, or http only to a loopback host";
    if (s[u.path_off] != '/')
        return "expected a path after the host";
    return NULL;
}

static int uri_list(struct octx *c, const struct dz_yaml_node *n, const char *key, const char **out,
                    size_t *count)
{
    *count = 0;
    if (n->kind != DZ_YAML_SEQ || n->count < 1 || n->count > DZ_OIDC_URIS_MAX)
        return oerr(c, n->key_line, key, "expected a list of 1 to %d URIs", DZ_OIDC_URIS_MAX);
    for (const struct dz_yaml_node *i = n->first; i; i = i->next) {
        const char *why;
        if (i->kind != DZ_YAML_SCALAR || dz_yaml_is_null(i))
            return oerr(c, i->line, key, "expected a URI");
        why = uri_problem(i->str);
        if (why)
            return oerr(c, i->line, key, "%s, got \"%.80s\"", why, i->str);
        for (size_t k = 0; k < *count; k++)
            if (strcmp(out[k], i->str) == 0)
                return oerr(c, i->line, key, "\"%.80s\" is listed twice", i->str);
        out[*count] = strdup(i->str);
        if (!out[*count])
            return oerr(c, i->line, key, "out of memory");
        (*count)++;
    }
    return 0;
}

static const char *const scope_names[] = {"openid", "profile", "address", "phone"};

unsigned dz_oidc_scope_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *dz_oidc_scope_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
        if (bit == 1u << i)
            return scope_names[i];
    return NULL;
}

static unsigned scope_lookup(const char *s)
{
    return dz_oidc_scope_bit(s, strlen(s));
}

static unsigned acr_lookup(const char *s)
{
    enum dz_acr a;

    return dz_policy_acr_parse(s, &a) == 0 && a != DZ_ACR_NONE ? 1u << a : 0;
}

static int bits(struct octx *c, const struct dz_yaml_node *n, const char *key,
                unsigned (*lookup)(const char *), const char *choices, unsigned *out)
{
    *out = 0;
    if (n->kind != DZ_YAML_SEQ || n->count < 1)
        return oerr(c, n->key_line, key, "expected a list such as [%s]", choices);
    for (const struct dz_yaml_node *i = n->first; i; i = i->next) {
        unsigned b = (i->kind == DZ_YAML_SCALAR && !dz_yaml_is_null(i)) ? lookup(i->str) : 0;
        if (!b)
            return oerr(c, i->line, key, "expected one of %s", choices);
        if (*out & b)
            return oerr(c, i->line, key, "\"%.40s\" is listed twice", i->str);
        *out |= b;
    }
    return 0;
}

static int load_secret(struct octx *c, const struct dz_yaml_node *n, struct dz_policy_oidc *o)
{
    const char *path = NULL;
    char *secret = NULL;
    char why[256];
    int rc = scalar(c, n, "secret_file", &path);

    if (rc != 0)
        return rc;
    rc = dz_secret_file_read(path, 1024, &secret, why, sizeof(why));
    if (rc != 0)
        return oerr(c, n->key_line, "secret_file", "%s", why);
    if (strlen(secret) < DZ_OIDC_SECRET_MIN) {
        dz_secret_free_str(secret);
        return oerr(c, n->key_line, "secret_file", "the secret must have at least %d characters",
                    DZ_OIDC_SECRET_MIN);
    }
    /* Only the hash is kept: a dump of the gateway's memory yields nothing a
     * client could present.  The secret is long and random, so one SHA-256
     * is as good as a slow hash here and keeps /token off the pool. */
    dz_sha256(secret, strlen(secret), o->secret_hash);
    dz_secret_free_str(secret);
    return 0;
}

static int load_jwks(struct octx *c, const struct dz_yaml_node *n, struct dz_policy_oidc *o)
{
    const char *s = NULL;
    int rc = scalar(c, n, "jwks", &s);

    if (rc != 0)
        return rc;
    rc = dz_jwks_parse(s, strlen(s), &o->jwks);
    if (rc != 0)
        return oerr(c, n->key_line, "jwks",
                    "expected a JSON Web Key Set with at least one EC P-256 public key (%s)",
                    dz_err_str(rc));
    return 0;
}

/* The client's key set by URL: https only (the keys that prove who a
 * client is must not be open to a path attacker), fetched when first
 * needed (oidc/oidc_jwks_uri.c), with its refresh bounds. */
static int load_jwks_uri(struct octx *c, const struct dz_yaml_node *map,
                         const struct dz_yaml_node *u, struct dz_policy_oidc *o)
{
    const struct dz_yaml_node *n;
    const char *s = NULL;
    const char *why;
    int rc = scalar(c, u, "jwks_uri", &s);

    if (rc != 0)
        return rc;
    why = uri_problem(s);
    if (!why && strncmp(s, "https://", 8) != 0)
        why = "https only";
    if (why)
        return oerr(c, u->key_line, "jwks_uri", "%s, got \"%.80s\"", why, s);
    o->jwks_uri = strdup(s);
    if (!o->jwks_uri)
        return oerr(c, u->key_line, "jwks_uri", "out of memory");
    o->jwks_max_age_ms = 3600000;
    n = dz_yaml_get(map, "jwks_max_age");
    if (n) {
        if ((rc = scalar(c, n, "jwks_max_age", &s)) != 0)
            return rc;
        if (dz_parse_duration(s, 60000, 86400000, &o->jwks_max_age_ms) != 0)
            return oerr(c, n->key_line, "jwks_max_age", "expected a duration from 1m to 24h");
    }
    o->jwks_min_interval_ms = 60000;
    n = dz_yaml_get(map, "jwks_min_interval");
    if (n) {
        if ((rc = scalar(c, n, "jwks_min_interval", &s)) != 0)
            return rc;
        if (dz_parse_duration(s, 1000, 3600000, &o->jwks_min_interval_ms) != 0)
            return oerr(c, n->key_line, "jwks_min_interval", "expected a duration from 1s to 1h");
    }
    return 0;
}

static int load_body(struct octx *c, const char *svc_name, const struct dz_yaml_node *map,
                     struct dz_policy_oidc *o)
{
    static const char *const known[] = {"client_id",
                                        "name",
                                        "purpose",
                                        "redirect_uris",
                                        "post_logout_redirect_uris",
                                        "token_endpoint_auth_method",
                                        "secret_file",
                                        "jwks",
                                        "jwks_uri",
                                        "jwks_max_age",
                                        "jwks_min_interval",
                                        "scopes",
                                        "release",
                                        "acr_default",
                                        "acr_allowed",
                                        "backchannel_logout_uri",
                                        "consent",
                                        "code_lifetime",
                                        NULL};
    const struct dz_yaml_node *n;
    const char *s = NULL;
    int rc;

    if (map->kind != DZ_YAML_MAP)
        return oerr(c, map->key_line, "", "expected a mapping (client_id, redirect_uris, ...)");
    for (const struct dz_yaml_node *m = map->first; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], m->key) == 0;
        if (!ok)
            return oerr(c, m->key_line, m->key, "unknown key");
    }

    n = dz_yaml_get(map, "client_id");
    if (!n)
        return oerr(c, map->key_line, "client_id", "required key is missing");
    if ((rc = scalar(c, n, "client_id", &s)) != 0)
        return rc;
    if (!is_client_id(s))
        return oerr(c, n->key_line, "client_id", "expected [A-Za-z0-9._-], 1..64 long");
    o->client_id = strdup(s);

    n = dz_yaml_get(map, "name");
    s = svc_name;
    if (n && (rc = scalar(c, n, "name", &s)) != 0)
        return rc;
    o->display_name = strdup(s);
    n = dz_yaml_get(map, "purpose");
    if (n) {
        if ((rc = scalar(c, n, "purpose", &s)) != 0)
            return rc;
        o->purpose = strdup(s);
        if (!o->purpose)
            return oerr(c, n->key_line, "purpose", "out of memory");
    }
    if (!o->client_id || !o->display_name)
        return oerr(c, map->key_line, "client_id", "out of memory");

    n = dz_yaml_get(map, "redirect_uris");
    if (!n)
        return oerr(c, map->key_line, "redirect_uris", "required key is missing");
    if ((rc = uri_list(c, n, "redirect_uris", o->redirect_uris, &o->n_redirect_uris)) != 0)
        return rc;
    n = dz_yaml_get(map, "post_logout_redirect_uris");
    if (n && (rc = uri_list(c, n, "post_logout_redirect_uris", o->post_logout_uris,
                            &o->n_post_logout_uris)) != 0)
        return rc;

    n = dz_yaml_get(map, "token_endpoint_auth_method");
    if (!n)
        return oerr(c, map->key_line, "token_endpoint_auth_method", "required key is missing");
    if ((rc = scalar(c, n, "token_endpoint_auth_method", &s)) != 0)
        return rc;
    if (strcmp(s, "private_key_jwt") == 0)
        o->auth = DZ_OIDC_AUTH_PRIVATE_KEY_JWT;
    else if (strcmp(s, "client_secret_basic") == 0)
        o->auth = DZ_OIDC_AUTH_SECRET_BASIC;
    else
        return oerr(c, n->key_line, "token_endpoint_auth_method",
                    "expected private_key_jwt or client_secret_basic");
    /* Exactly the credential of the method: a client with both would be
     * one whose weaker proof is enough. */
    n = dz_yaml_get(map, o->auth == DZ_OIDC_AUTH_SECRET_BASIC ? "jwks" : "secret_file");
    if (!n && o->auth == DZ_OIDC_AUTH_SECRET_BASIC)
        n = dz_yaml_get(map, "jwks_uri");
    if (n)
        return oerr(c, n->key_line, n->key, "does not go with %s", s);
    if (o->auth == DZ_OIDC_AUTH_SECRET_BASIC) {
        n = dz_yaml_get(map, "secret_file");
        if (!n)
            return oerr(c, map->key_line, "secret_file", "required with client_secret_basic");
        if ((rc = load_secret(c, n, o)) != 0)
            return rc;
    } else {
        const struct dz_yaml_node *u = dz_yaml_get(map, "jwks_uri");
        n = dz_yaml_get(map, "jwks");
        if (n && u)
            return oerr(c, u->key_line, "jwks_uri", "give jwks or jwks_uri, not both");
        if (!n && !u)
            return oerr(c, map->key_line, "jwks", "required with private_key_jwt (or jwks_uri)");
        if (n && (rc = load_jwks(c, n, o)) != 0)
            return rc;
        if (u && (rc = load_jwks_uri(c, map, u, o)) != 0)
            return rc;
    }
    if (!o->jwks_uri) {
        n = dz_yaml_get(map, "jwks_max_age");
        if (!n)
            n = dz_yaml_get(map, "jwks_min_interval");
        if (n)
            return oerr(c, n->key_line, n->key, "goes only with jwks_uri");
    }

    o->scopes = DZ_OIDC_SCOPE_OPENID;
    n = dz_yaml_get(map, "scopes");
    if (n) {
        if ((rc = bits(c, n, "scopes", scope_lookup, "openid, profile, address, phone",
                       &o->scopes)) != 0)
            return rc;
        if (!(o->scopes & DZ_OIDC_SCOPE_OPENID))
            return oerr(c, n->key_line, "scopes", "must include openid");
    }
    n = dz_yaml_get(map, "release");
    if (n && (rc = bits(c, n, "release", dz_policy_release_bit,
                        "fin, name, surname, patronymic, birth_date, ...", &o->release)) != 0)
        return rc;

    o->acr_allowed = (1u << DZ_ACR_LOW) | (1u << DZ_ACR_SUBSTANTIAL) | (1u << DZ_ACR_HIGH);
    n = dz_yaml_get(map, "acr_allowed");
    if (n && (rc = bits(c, n, "acr_allowed", acr_lookup, "low, substantial, high",
                        &o->acr_allowed)) != 0)
        return rc;
    o->acr_default = DZ_ACR_SUBSTANTIAL;
    n = dz_yaml_get(map, "acr_default");
    if (n) {
        if ((rc = scalar(c, n, "acr_default", &s)) != 0)
            return rc;
        if (dz_policy_acr_parse(s, &o->acr_default) != 0 || o->acr_default == DZ_ACR_NONE)
            return oerr(c, n->key_line, "acr_default", "expected low, substantial or high");
    }
    if (!(o->acr_allowed & (1u << o->acr_default)))
        return oerr(c, n ? n->key_line : map->key_line, "acr_default",
                    "\"%s\" is not in acr_allowed", dz_policy_acr_name(o->acr_default));

    n = dz_yaml_get(map, "backchannel_logout_uri");
    if (n) {
        const char *why;
        if ((rc = scalar(c, n, "backchannel_logout_uri", &s)) != 0)
            return rc;
        why = uri_problem(s);
        if (why)
            return oerr(c, n->key_line, "backchannel_logout_uri", "%s, got \"%.80s\"", why, s);
        o->backchannel_logout_uri = strdup(s);
        if (!o->backchannel_logout_uri)
            return oerr(c, n->key_line, "backchannel_logout_uri", "out of memory");
    }

    o->code_lifetime_ms = 30000;
    n = dz_yaml_get(map, "code_lifetime");
    if (n) {
        if ((rc = scalar(c, n, "code_lifetime", &s)) != 0)
            return rc;
        if (dz_parse_duration(s, 1000, 30000, &o->code_lifetime_ms) != 0)
            return oerr(c, n->key_line, "code_lifetime", "expected a duration from 1s to 30s");
    }

    n = dz_yaml_get(map, "consent");
    if (!n)
        return oerr(c, map->key_line, "consent", "required key is missing (pre-approved|ask)");
    if ((rc = scalar(c, n, "consent", &s)) != 0)
        return rc;
    if (strcmp(s, "pre-approved") == 0)
        o->consent_preapproved = true;
    else if (strcmp(s, "ask") != 0)
        return oerr(c, n->key_line, "consent", "expected pre-approved or ask");
    return 0;
}

int dz_policy_oidc_load(const char *file, const char *svc_name, const struct dz_yaml_node *n,
                        struct dz_policy_oidc **out, char *err, size_t err_len)
{
    struct octx c = {file, err, err_len};
    struct dz_policy_oidc *o = calloc(1, sizeof(*o));
    int rc;

    *out = NULL;
    if (!o)
        return oerr(&c, n->key_line, "", "out of memory");
    rc = load_body(&c, svc_name, n, o);
    if (rc != 0) {
        dz_policy_oidc_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void dz_policy_oidc_free(struct dz_policy_oidc *o)
{
    if (!o)
        return;
    free((void *)o->client_id);
    free((void *)o->display_name);
    free((void *)o->purpose);
    for (size_t i = 0; i < o->n_redirect_uris; i++)
        free((void *)o->redirect_uris[i]);
    for (size_t i = 0; i < o->n_post_logout_uris; i++)
        free((void *)o->post_logout_uris[i]);
    free((void *)o->backchannel_logout_uri);
    free((void *)o->jwks_uri);
    dz_jwks_free(o->jwks);
    dz_secret_wipe(o->secret_hash, sizeof(o->secret_hash));
    free(o);
}

const struct dz_policy_service *dz_policy_oidc_client(const struct dz_policy_set *s, const char *id)
{
    for (size_t i = 0; s && id && i < s->n_services; i++) {
        const struct dz_policy_oidc *o = s->services[i].oidc;
        if (o && strcmp(o->client_id, id) == 0)
            return &s->services[i];
    }
    return NULL;
}

bool dz_policy_oidc_uri_listed(const char *const *list, size_t n, const char *uri)
{
    for (size_t i = 0; uri && i < n; i++)
        if (strcmp(list[i], uri) == 0)
            return true;
    return false;
}
