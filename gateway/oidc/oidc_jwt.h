/*
 * oidc_jwt.h - the JWTs of the provider: checking a client's assertion
 * (RFC 7523 3, OpenID Connect Core 9 private_key_jwt), the at_hash of an
 * access token, and signing the gateway's own tokens (ID tokens, logout
 * tokens) with its active key.
 *
 * Client assertions are verified by dz_jws_verify (ES256 only: "alg":"none"
 * and HS256 never reach the claim check) against the client's registered
 * key set; the checks below are pure and take the time as an argument.
 */
#ifndef DZ_OIDC_JWT_H
#define DZ_OIDC_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/rctx.h"

#define DZ_OIDC_ID_TOKEN_TYP "JWT"            /* not the assertion's typ */
#define DZ_OIDC_LOGOUT_TOKEN_TYP "logout+jwt" /* Back-Channel Logout 1.0, 2.4 */
#define DZ_OIDC_ASSERTION_LIFETIME_MAX 300    /* seconds from now to exp, at most */
#define DZ_OIDC_JTI_MAX 128

/*
 * The claims of a verified client assertion: iss and sub both client_id,
 * aud the token endpoint URL or the issuer (a string or an array holding
 * one of them), exp in the future and at most
 * DZ_OIDC_ASSERTION_LIFETIME_MAX seconds away, iat (when present) not in
 * the future, jti 1..DZ_OIDC_JTI_MAX printable characters.  leeway_s
 * seconds of clock skew.  On success *jti points into claims and *exp is
 * its exp.  Returns 0, or DZ_ERR_DENIED with *reason a static word:
 * wrong_issuer, wrong_subject, wrong_audience, expired, bad_lifetime,
 * not_yet_valid, missing_jti.
 */
int dz_oidc_assertion_check(const json_t *claims, const char *client_id, const char *token_url,
                            const char *issuer, int64_t now, int leeway_s, const char **jti,
                            int64_t *exp, const char **reason);

/* at_hash (Core 3.1.3.6): base64url of the left half of SHA-256 of the
 * token text, 22 characters + NUL. */
void dz_oidc_at_hash(const char *token, char out[23]);

/* Sign claims (not consumed; must stay alive until then runs) with the
 * generation's active key as a compact JWS of type typ; on the pool when
 * the key is on a token.  then(c, rc, token, arg) gets a malloc'd token
 * (then frees it) or NULL with rc != 0.  Loop thread. */
void dz_oidc_sign(struct dz_rctx *c, json_t *claims, const char *typ,
                  void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg);

#endif
