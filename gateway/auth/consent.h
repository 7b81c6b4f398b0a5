/*
 * consent.h - the hook through which the account API lists and withdraws a
 * person's OIDC consents (docs/portal.md "Consents").  auth/ may not call
 * the OIDC provider (a folder of the same rank), so the daemon, which sees
 * both, registers the provider's functions once at start-up, before the
 * workers start (daemon/consent_hook.c).  Without a provider the list is
 * empty ("provider": false) and a withdrawal is 404 not_found.
 *
 * The ops are called on a loop thread and must not block (the provider keeps
 * consents in the store); they return 0, DZ_ERR_NOTFOUND (withdraw: no such
 * consent) or an error (answered 503 state_unavailable: fail closed).
 */
#ifndef DZ_CONSENT_H
#define DZ_CONSENT_H

#include <jansson.h>

struct dz_store;
struct dz_policy_set;

struct dz_consent_ops {
    /* *out: a new JSON array of fin's consents, each an object naming the
     * client and what it receives (the provider's format). */
    int (*list)(struct dz_store *st, const struct dz_policy_set *ps, const char *fin, json_t **out);
    /* Forget fin's consent for client_id: the next sign-in there asks again. */
    int (*withdraw)(struct dz_store *st, const char *fin, const char *client_id);
};

/* Register (or, with NULL, remove) the provider.  Start-up thread only. */
void dz_consent_set_provider(const struct dz_consent_ops *ops);

/* The provider, or NULL.  Any thread (set before the workers start). */
const struct dz_consent_ops *dz_consent_provider(void);

#endif
