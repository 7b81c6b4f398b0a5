/*
 * oidc_jwks_uri.h - the key sets of private_key_jwt clients registered with
 * a jwks_uri (docs/oidc.md "Registering a client"): fetched over https on
 * the worker's outbound client (never blocking the loop), at most
 * DZ_JWKS_JSON_MAX bytes, kept for the client's jwks_max_age and fetched
 * again sooner only when an assertion names a kid the set lacks, and then
 * at most once per jwks_min_interval (so assertions with random kids cannot
 * make the gateway hammer the URL).
 *
 * One cache for the process, shared by the workers (one fetch serves them
 * all), behind a mutex held only to look up, verify with, or swap a set.
 * A set that could not be fetched leaves the client unable to authenticate
 * (invalid_client): fail closed.
 */
#ifndef DZ_OIDC_JWKS_URI_H
#define DZ_OIDC_JWKS_URI_H

#include <stdbool.h>

#include <jansson.h>

#include "core/rctx.h"
#include "policy/policy_oidc.h"

/*
 * Verify the client assertion jwt of client o (o->jwks_uri set) with the
 * cached set.  *claims as for dz_jws_verify.  Returns 0, DZ_ERR_DENIED
 * (*reason as for dz_jws_verify_detail, or "no_key_set"), or, when may_fetch
 * and a fetch is due (no set yet, the set is older than jwks_max_age, or
 * the kid is unknown) and allowed (none running, none started within
 * jwks_min_interval), DZ_ERR_STATE: the caller starts dz_oidc_jwks_fetch and
 * verifies again when it is done.  Any thread.
 */
int dz_oidc_jwks_uri_verify(const struct dz_policy_oidc *o, const char *jwt, bool may_fetch,
                            json_t **claims, const char **reason);

/* Fetch o's set (after DZ_ERR_STATE from dz_oidc_jwks_uri_verify), replace
 * the cached one when the answer is a valid set, then call done(c, arg) on
 * c's loop, always exactly once (also when c's client went away: done must
 * check before answering).  Loop thread. */
void dz_oidc_jwks_fetch(struct dz_rctx *c, const struct dz_policy_oidc *o,
                        void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Drop every cached set (tests, shutdown; no fetch may be running). */
void dz_oidc_jwks_cache_clear(void);

#endif
