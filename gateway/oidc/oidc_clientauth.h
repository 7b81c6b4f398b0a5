/*
 * oidc_clientauth.h - who is calling /token: a registered client proving
 * itself the one way its policy names (private_key_jwt: an ES256 client
 * assertion signed with a key of its registered set, each jti once;
 * client_secret_basic: HTTP Basic with the secret whose SHA-256 the policy
 * holds).  A client may not pick another method than the one registered.
 * Loop thread (the store is non-blocking).
 */
#ifndef DZ_OIDC_CLIENTAUTH_H
#define DZ_OIDC_CLIENTAUTH_H

#include <stdbool.h>

#include "core/rctx.h"
#include "oidc/oidc_params.h"
#include "policy/policy.h"

#define DZ_OIDC_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* On success *out is the client's service (owned by c's generation).
 * Returns 0; DZ_ERR_DENIED with *why a static sentence (no client, wrong
 * method, bad secret, bad assertion, replayed jti); DZ_ERR_FULL /
 * DZ_ERR_NOMEM when the jti cannot be recorded (refuse: fail closed);
 * DZ_ERR_STATE (only when may_fetch) when the key set of *out's jwks_uri
 * must be fetched first (oidc_jwks_uri.h): fetch, then call again with
 * may_fetch false. */
int dz_oidc_client_authenticate(struct dz_rctx *c, const struct dz_oidc_params *p, bool may_fetch,
                                const struct dz_policy_service **out, const char **why);

#endif
