/*
 * jws.h - ES256 JSON Web Signatures in compact form (RFC 7515, RFC 7518
 * §3.4) and the JSON Web Key Sets that publish their public keys (RFC 7517).
 *
 * Only ES256 exists here: the verifier has no algorithm switch that a token
 * could flip ("alg":"none", HS256 with the public key as secret, RS256...),
 * every other "alg" is refused.  Parsing is strict and bounded: exactly three
 * unpadded base64url parts, a token of at most DZ_JWS_TOKEN_MAX bytes, JSON
 * objects without duplicate names, a signature of exactly 64 bytes.  The
 * signature is checked before the payload is parsed.
 *
 * Signing borrows a struct dz_signer (signer.h) and never sees a key.
 * A struct dz_jwks is built on one thread and then immutable: any number of
 * threads may verify against it at once.  All other functions are pure and
 * thread-safe.
 */
#ifndef DZ_JWS_H
#define DZ_JWS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

struct dz_signer;

#define DZ_JWS_TOKEN_MAX (16 * 1024) /* bytes of a compact token, both ways */
#define DZ_JWS_KID_MAX 128           /* bytes of a key id */
#define DZ_JWKS_KEYS_MAX 32          /* keys in one set */
#define DZ_JWKS_JSON_MAX (64 * 1024) /* bytes of a JWKS document */

/* ---- signing ---------------------------------------------------------- */

/* Sign claims (a JSON object) as a compact JWS with the protected header
 * {"alg":"ES256","kid":kid,"typ":typ} (typ omitted when NULL).  kid and typ
 * are 1..DZ_JWS_KID_MAX printable ASCII characters without '"' or '\'.
 * *out_token is malloc'd, NUL-terminated, caller frees; NULL on error.
 * Returns 0, DZ_ERR_INVAL (bad kid/typ, claims not an object), DZ_ERR_TOOBIG
 * (token would exceed DZ_JWS_TOKEN_MAX), DZ_ERR_NOMEM, or the signer's error
 * (DZ_ERR_CRYPTO, DZ_ERR_PKCS11).  Any thread; blocks when the signer does. */
int dz_jws_sign_es256(struct dz_signer *s, const char *kid, const char *typ, const json_t *claims,
                      char **out_token);

/* The same for a payload the caller has already serialised (it must be a
 * JSON object in UTF-8; it is signed byte for byte).  Used by the assertion
 * builder, which writes its claims without building a jansson tree. */
int dz_jws_sign_payload(struct dz_signer *s, const char *kid, const char *typ, const void *payload,
                        size_t payload_len, char **out_token);

/* ---- key sets --------------------------------------------------------- */

struct dz_jwks;

/* An empty set (*out, free with dz_jwks_free).  0 or DZ_ERR_NOMEM. */
int dz_jwks_new(struct dz_jwks **out);

/* Parse an RFC 7517 key set {"keys":[...]} of at most DZ_JWKS_JSON_MAX bytes.
 * Keys that are not EC P-256 signature keys for ES256 (another kty or crv,
 * "use" other than "sig", "alg" other than "ES256") are skipped, as RFC 7517
 * §5 asks.  An EC P-256 key that is malformed (x or y not 32 bytes of strict
 * base64url, not a point on the curve, kid missing or bad, a kid twice) makes
 * the whole set DZ_ERR_PARSE; a key with a private part ("d") is DZ_ERR_INVAL;
 * a set with no usable key is DZ_ERR_NOTFOUND.  Also DZ_ERR_TOOBIG (more than
 * DZ_JWKS_KEYS_MAX keys, or too long), DZ_ERR_NOMEM.  *out NULL on error. */
int dz_jwks_parse(const char *json, size_t len, struct dz_jwks **out);

/* dz_jwks_parse of the file at path, read whole (a file over the parser's
 * bound is DZ_ERR_TOOBIG, never parsed cut short).  Also DZ_ERR_IO (cannot
 * be read; errno says why, ENOENT when there is none).  Blocks: not on an
 * event loop. */
int dz_jwks_load_file(const char *path, struct dz_jwks **out);

/* Add pub (an EC P-256 public or private key; only the public part is kept)
 * under kid.  The set takes its own reference: the caller keeps pub.
 * Returns 0, DZ_ERR_INVAL (bad kid, not P-256), DZ_ERR_EXISTS (kid taken),
 * DZ_ERR_TOOBIG (set full), DZ_ERR_NOMEM, DZ_ERR_CRYPTO.  Not thread-safe:
 * build the set before sharing it. */
int dz_jwks_add(struct dz_jwks *jwks, const char *kid, EVP_PKEY *pub);

/* The key for kid, borrowed (valid until dz_jwks_free), or NULL. */
EVP_PKEY *dz_jwks_find(const struct dz_jwks *jwks, const char *kid);

/* Number of keys in the set. */
size_t dz_jwks_count(const struct dz_jwks *jwks);

/* Serialise as {"keys":[{"kty":"EC","crv":"P-256","x","y","kid","use":"sig",
 * "alg":"ES256"},...]} in insertion order, compact.  *out malloc'd, caller
 * frees.  Returns 0, DZ_ERR_NOMEM, DZ_ERR_CRYPTO. */
int dz_jwks_to_json(const struct dz_jwks *jwks, char **out);

/* NULL is a no-op. */
void dz_jwks_free(struct dz_jwks *jwks);

/* ---- verification ----------------------------------------------------- */

/* Verify a compact ES256 JWS of len bytes against jwks.  The header must
 * carry "alg":"ES256" exactly, a "kid" present in jwks, no "crit", and, when
 * expected_typ is not NULL, "typ" equal to it (byte for byte).  The payload
 * must be a JSON object.  On success *out_header and *out_claims (either may
 * be NULL when not wanted) are new references the caller json_decref()s; on
 * error they are NULL.
 * Returns 0; DZ_ERR_TOOBIG (token over DZ_JWS_TOKEN_MAX); DZ_ERR_PARSE
 * (malformed: not three strict base64url parts, header or payload not a JSON
 * object); DZ_ERR_DENIED (alg not ES256, crit present, unknown kid, wrong typ,
 * signature not 64 bytes or not valid); DZ_ERR_NOMEM.  Any thread. */
int dz_jws_verify(const char *token, size_t len, const struct dz_jwks *jwks,
                  const char *expected_typ, json_t **out_header, json_t **out_claims);

/* The same, also naming why a token was refused: *out_reason is a static
 * string, "ok" on success, otherwise one of "malformed", "bad_algorithm",
 * "unsupported_header" (crit), "wrong_type", "unknown_key", "bad_signature",
 * "internal_error".  out_reason may be NULL. */
int dz_jws_verify_detail(const char *token, size_t len, const struct dz_jwks *jwks,
                         const char *expected_typ, json_t **out_header, json_t **out_claims,
                         const char **out_reason);

#endif
