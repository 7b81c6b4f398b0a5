/*
 * consent.h - the hook through which the account page lists and withdraws a
 * person's OIDC consents (docs/portal.md "Consents").  The OIDC provider,
 * when built in, registers its ops once at start-up, before the workers
 * start; until then there is no provider: the list is empty
 * ("provider": false) and a withdrawal is 404 not_found.
 *
 * The ops are called on a loop thread and must not block (the provider keeps
 * consents in the store, or answers from memory); they return 0,
 * DZ_ERR_NOTFOUND (withdraw: no such consent) or an error (answered 503
 * state_unavailable: fail closed).
 */
#ifndef DZ_CONSENT_H
#define DZ_CONSENT_H

#include <jansson.h>

struct dz_consent_ops {
    void *impl;
    /* *out: a new JSON array of {"client_id","client_name","scopes":[...],
     * "granted_at"} for fin. */
    int (*list)(void *impl, const char *fin, json_t **out);
    /* Forget fin's consent for client_id and revoke the tokens issued
     * under it. */
    int (*withdraw)(void *impl, const char *fin, const char *client_id);
};

/* Register (or, with NULL, remove) the provider.  Start-up thread only. */
void dz_consent_set_provider(const struct dz_consent_ops *ops);

/* The provider, or NULL.  Any thread (set before the workers start). */
const struct dz_consent_ops *dz_consent_provider(void);

#endif
