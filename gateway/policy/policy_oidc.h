/*
 * policy_oidc.h - a service's "oidc:" block: the registered information
 * system as an OpenID Connect client of the gateway (docs/oidc.md).
 *
 * Compiled by the policy loader with the rest of the file, immutable once
 * loaded and freed with the set.  Only a service with registered_as exists
 * at all (the loader requires it), so only registered systems are clients.
 * A client_secret_basic secret is read from its file at load, kept only as
 * SHA-256 and wiped; the file must be 0600.  Any thread may read a loaded
 * block.
 */
#ifndef DZ_POLICY_OIDC_H
#define DZ_POLICY_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/yamltree.h"
#include "policy/policy.h"

struct dz_jwks;

#define DZ_OIDC_CLIENT_ID_MAX 64 /* [A-Za-z0-9._-] */
#define DZ_OIDC_URIS_MAX 8       /* redirect or post-logout URIs of one client */
#define DZ_OIDC_URI_MAX 512      /* bytes of one registered URI */
#define DZ_OIDC_SECRET_MIN 32    /* characters of a client secret */

enum dz_oidc_auth {
    DZ_OIDC_AUTH_PRIVATE_KEY_JWT = 1, /* RFC 7523 client assertion, ES256, JWKS inline or by URL */
    DZ_OIDC_AUTH_SECRET_BASIC = 2     /* RFC 6749 2.3.1 HTTP Basic */
};

/* Scopes a client may ask for; "openid" is always required. */
enum dz_oidc_scope {
    DZ_OIDC_SCOPE_OPENID = 1 << 0,
    DZ_OIDC_SCOPE_PROFILE = 1 << 1, /* name, surname, patronymic, birth_date, gender */
    DZ_OIDC_SCOPE_ADDRESS = 1 << 2,
    DZ_OIDC_SCOPE_PHONE = 1 << 3
};

struct dz_policy_oidc {
    const char *client_id;
    const char *display_name; /* shown on the consent page; default the service name */
    const char *purpose;      /* why it asks, shown on the consent page; may be NULL */
    const char *redirect_uris[DZ_OIDC_URIS_MAX];
    size_t n_redirect_uris;
    const char *post_logout_uris[DZ_OIDC_URIS_MAX];
    size_t n_post_logout_uris;
    enum dz_oidc_auth auth;
    struct dz_jwks *jwks;               /* private_key_jwt: the client's keys (inline) */
    const char *jwks_uri;               /* private_key_jwt: ... or by https URL (NULL: inline) */
    uint64_t jwks_max_age_ms;           /* a fetched set is refreshed after this, 1m..24h */
    uint64_t jwks_min_interval_ms;      /* at most one fetch per interval, 1s..1h */
    unsigned char secret_hash[32];      /* client_secret_basic: SHA-256 of the secret */
    unsigned scopes;                    /* DZ_OIDC_SCOPE_* allowed */
    unsigned release;                   /* DZ_RELEASE_* the client may receive */
    enum dz_acr acr_default;            /* when the request names none */
    unsigned acr_allowed;               /* bit (1 << enum dz_acr) per level the client may ask */
    const char *backchannel_logout_uri; /* NULL: none */
    bool consent_preapproved;           /* a state system by law: no consent page */
    uint64_t code_lifetime_ms;          /* 1s..30s, default 30s */
};

/*
 * Compile the "oidc:" mapping n of service svc_name from file into *out
 * (a new block; free with dz_policy_oidc_free).  err gets
 * "file:line: oidc.key: reason".  Reads the secret file (blocking).
 * Returns 0, DZ_ERR_INVAL, DZ_ERR_NOMEM.
 */
int dz_policy_oidc_load(const char *file, const char *svc_name, const struct dz_yaml_node *n,
                        struct dz_policy_oidc **out, char *err, size_t err_len);

/* NULL is a no-op. */
void dz_policy_oidc_free(struct dz_policy_oidc *o);

/* The client whose client_id is id, or NULL.  Any thread, no allocation. */
const struct dz_policy_service *dz_policy_oidc_client(const struct dz_policy_set *s,
                                                      const char *id);

/* Whether uri is exactly one of list (byte for byte: no prefix, no
 * normalisation, RFC 9700 4.1.3). */
bool dz_policy_oidc_uri_listed(const char *const *list, size_t n, const char *uri);

/* Scope names: bit for "openid"..., 0 when unknown; name of one bit. */
unsigned dz_oidc_scope_bit(const char *name, size_t len);
const char *dz_oidc_scope_name(unsigned bit);

#endif
