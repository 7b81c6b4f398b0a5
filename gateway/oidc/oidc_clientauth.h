/*
 * oidc_clientauth.h - who is calling /token: a registered client proving
 * itself the one way its policy names (private_key_jwt: an ES256 client
 * assertion signed with a key of its registered set, each jti once;
 * client_secret_basic: HTTP Basic with the secret whose SHA-256 the policy
 * holds).  A client may not pick another method than the one registered.
 * Verifying is on the loop; recording the jti is a store call the caller
 * makes off the loop (oidc_offloop.h) with dz_oidc_jti_record.
 */
#ifndef DZ_OIDC_CLIENTAUTH_H
#define DZ_OIDC_CLIENTAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rctx.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_params.h"
#include "policy/policy.h"
#include "policy/policy_oidc.h"

#define DZ_OIDC_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* An assertion's jti to remember (key "" for client_secret_basic). */
struct dz_oidc_jti_mark {
    char key[DZ_OIDC_CLIENT_ID_MAX + DZ_OIDC_JTI_MAX + 2];
    uint64_t ttl_ms;
};

/* On success *out is the client's service (owned by c's generation) and
 * *mark the assertion's jti, which the caller must record with
 * dz_oidc_jti_record before it spends anything.  Returns 0; DZ_ERR_DENIED
 * with *why a static sentence (no client, wrong method, bad secret, bad
 * assertion); DZ_ERR_STATE (only when may_fetch) when the key set of
 * *out's jwks_uri must be fetched first (oidc_jwks_uri.h): fetch, then
 * call again with may_fetch false.  Loop thread; no store call. */
int dz_oidc_client_authenticate(struct dz_rctx *c, const struct dz_oidc_params *p, bool may_fetch,
                                const struct dz_policy_service **out, struct dz_oidc_jti_mark *mark,
                                const char **why);

/* Remember mark's jti (nothing for an empty key): 0; DZ_ERR_EXISTS when
 * the assertion was already used (a replay: deny); another store error
 * (refuse, fail closed).  Any thread; may wait on the store. */
struct dz_store;
int dz_oidc_jti_record(struct dz_store *st, const struct dz_oidc_jti_mark *mark);

#endif
