/*
 * assertion.h - the Darvaza-Assertion (DESIGN.md §4.8): a short-lived ES256
 * JWS, typ "darvaza-assertion+jwt", that the gateway adds to every request it
 * forwards, naming the person (FIN) and binding the token to that one
 * request (method, path and query, body digest).
 *
 * The gateway side builds and signs it (dz_assertion_sign); the back-end side
 * verifies it (dz_assertion_verify), which is what `darvaza verify-assertion`
 * and the registry peer call.  Replay: every token carries a fresh 128-bit
 * "jti"; remembering jti values until "exp" (plus leeway) and refusing one
 * seen before is the back end's job - this library keeps no state.  Key the
 * replay cache on jti, never on the token text: ECDSA signatures are
 * malleable, so one token can be re-encoded with another valid signature.
 *
 * Claims, in this order:
 *   iss sub aud iat exp jti sid acr amr auth_time [prf] htm htu [bdy] [tgt] [pur] [rel]
 *   amr  array of method names in the fixed order pwd, otp, sc, pin, mob, qr
 *        (the bit order of enum dz_amr), so one set has one encoding.
 *   bdy  base64url SHA-256 of the request body; absent when the body is empty.
 *   rel  the registry fields the route releases (policy "release"), as an
 *        array of strings; absent when the route releases nothing in particular.
 *
 * All functions are thread-safe; dz_assertion_sign blocks when the signer
 * does (dz_signer_is_blocking).
 */
#ifndef DZ_ASSERTION_H
#define DZ_ASSERTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "keys/jws_batch.h"

struct dz_signer;
struct dz_jwks;

#define DZ_ASSERTION_TYP "darvaza-assertion+jwt"
#define DZ_ASSERTION_TTL_MAX 60     /* seconds from iat to exp, at most */
#define DZ_ASSERTION_LEEWAY_MAX 300 /* clock skew a verifier may allow */
#define DZ_ASSERTION_RELEASE_MAX 64 /* fields in "rel" */

/* Authentication methods (RFC 8176 names), as a bitmask: the one
 * definition, used by sessions, policies and assertions alike. */
#define DZ_AMR_DEFINED
enum dz_amr {
    DZ_AMR_PWD = 1,
    DZ_AMR_OTP = 2,
    DZ_AMR_SC = 4,
    DZ_AMR_PIN = 8,
    DZ_AMR_MOB = 16,
    DZ_AMR_QR = 32,
};
#define DZ_AMR_ALL 63u

/* "pwd", "otp", "sc", "pin", "mob" or "qr" for one bit; NULL for anything
 * else (0, several bits, unknown bits). */
const char *dz_amr_name(unsigned bit);

/* The set as a JSON array of names in bit order (*out new reference).
 * Returns 0, DZ_ERR_INVAL (unknown bits), DZ_ERR_NOMEM. */
int dz_amr_to_json(unsigned amr, json_t **out);

struct dz_assertion_in {
    const char *iss;           /* gateway id */
    const char *sub;           /* FIN, normalised (7 of [0-9A-Z]) */
    const char *aud;           /* service name */
    const char *sid_b64;       /* base64url hash of the session */
    const char *acr;           /* "low" | "substantial" | "high" */
    unsigned amr;              /* enum dz_amr bits, at least one */
    int64_t iat;               /* now, seconds since the epoch */
    int64_t auth_time;         /* login time, <= iat */
    int ttl_s;                 /* 1..DZ_ASSERTION_TTL_MAX; exp = iat + ttl_s */
    const unsigned char *prf;  /* 32-byte digest of the login evidence, or NULL */
    const char *htm;           /* request method */
    const char *htu;           /* request path and query */
    const unsigned char *body; /* request body; "bdy" only if body_len > 0 */
    size_t body_len;
    const char *tgt;     /* FIN looked up (cross-person lookups), or NULL */
    const char *pur;     /* Darvaza-Purpose, or NULL */
    const char *release; /* "fin,name,..." -> claim "rel", or NULL */
    /* The jti, from dz_assertion_new_jti, when the caller must know it (the
     * gateway links its audit lines with it); NULL: a fresh one. */
    const char *jti;
};

#define DZ_ASSERTION_JTI_LEN 22 /* base64url of 16 random bytes */

/* A fresh jti (NUL-terminated) into out.  0 or the CSPRNG's error.  Any
 * thread. */
int dz_assertion_new_jti(char out[DZ_ASSERTION_JTI_LEN + 1]);

/* Build the claims (with in->jti or a fresh random jti) and sign them with
 * header {"alg":"ES256","kid":kid,"typ":"darvaza-assertion+jwt"}.
 * Strings must be valid UTF-8; sub and tgt normalised FINs; release items
 * [a-z0-9_]{1,64}.  *out_token malloc'd, caller frees; NULL on error.
 * Returns 0, DZ_ERR_INVAL (a field out of its domain), DZ_ERR_TOOBIG (token
 * over DZ_JWS_TOKEN_MAX, e.g. a huge htu), DZ_ERR_NOMEM, DZ_ERR_CRYPTO,
 * DZ_ERR_PKCS11.  Any thread; blocks when the signer blocks. */
int dz_assertion_sign(struct dz_signer *s, const char *kid, const struct dz_assertion_in *in,
                      char **out_token);

/* The batch form (docs/assertions.md): one signature over the root of a
 * Merkle tree of many assertions' claims (keys/jws_batch.h), each request
 * carrying "<root JWS>~<its claims>~<its inclusion path>".  The root JWS
 * has this typ and the claims iss, aud, iat, exp (shared by every leaf of
 * the batch) and mrk (the root hash). */
#define DZ_ASSERTION_BATCH_TYP "darvaza-assertion-batch+jwt"

/* Sign ins[0..n) (1 <= n <= DZ_JWS_BATCH_MAX) with one signature, in the
 * batch form.  The batch shares iss, aud, iat and ttl_s: an entry that
 * differs from ins[0] in one of them gets DZ_ERR_INVAL.  On return rcs[i]
 * is 0 with tokens[i] malloc'd (caller frees), or that entry's own error
 * (DZ_ERR_INVAL, DZ_ERR_TOOBIG as for dz_assertion_sign) with tokens[i]
 * NULL: one bad request does not spoil the others.  Returns 0 when the
 * batch was handled so, or an error that every rcs[i] repeats
 * (DZ_ERR_INVAL for bad arguments, DZ_ERR_NOMEM, the signer's error).
 * Any thread; blocks when the signer blocks. */
int dz_assertion_sign_batch(struct dz_signer *s, const char *kid,
                            const struct dz_assertion_in *const *ins, size_t n, char **tokens,
                            int *rcs);

/* What a back end expects of the request it received. */
struct dz_assertion_expect {
    const char *iss;  /* required issuer, or NULL to skip (tools only) */
    const char *aud;  /* this service's name, or NULL to skip (tools only) */
    const char *htm;  /* method received, or NULL to skip (tools only) */
    const char *htu;  /* path and query received, or NULL to skip (tools only) */
    const void *body; /* body received (NULL with body_len 0 = empty) */
    size_t body_len;
    bool skip_body; /* do not check "bdy" at all (tools without the body) */
    int64_t now;    /* seconds since the epoch; 0 = time(NULL) */
    int leeway_s;   /* clock skew allowed, clamped to 0..DZ_ASSERTION_LEEWAY_MAX */
};

/* Verify token (NUL-terminated) against jwks and e: signature, typ, then the
 * claims (dz_assertion_check_claims).  Both forms are accepted: a token
 * signed alone (typ DZ_ASSERTION_TYP), and the batch form (typ
 * DZ_ASSERTION_BATCH_TYP on the root, the inclusion path checked, the
 * leaf's iss, aud, iat, exp equal to the root's; a path that does not lead
 * to the signed root is "bad_signature"); *out_claims are the request's
 * own claims either way.  On success *out_claims (may be NULL if
 * not wanted) is a new reference the caller json_decref()s.  *out_reason is
 * always set to a static, stable string: "ok", or one of
 *   malformed bad_algorithm unsupported_header wrong_type unknown_key
 *   bad_signature wrong_issuer wrong_audience bad_lifetime not_yet_valid
 *   expired invalid_subject invalid_target method_mismatch path_mismatch
 *   body_mismatch internal_error
 * Returns 0 when valid, DZ_ERR_DENIED when refused (reason says why),
 * DZ_ERR_PARSE / DZ_ERR_TOOBIG for malformed tokens, DZ_ERR_NOMEM,
 * DZ_ERR_INVAL (NULL arguments).  Any non-zero return is "invalid".
 * The jti replay check is the caller's (see above).  Any thread. */
int dz_assertion_verify(const char *token, const struct dz_jwks *jwks,
                        const struct dz_assertion_expect *e, json_t **out_claims,
                        const char **out_reason);

/* The claim checks alone, for claims whose signature was already verified.
 * Returns 0 or DZ_ERR_DENIED with *out_reason as above.  Pure; any thread. */
int dz_assertion_check_claims(const json_t *claims, const struct dz_assertion_expect *e,
                              const char **out_reason);

#endif
