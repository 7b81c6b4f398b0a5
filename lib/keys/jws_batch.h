/*
 * jws_batch.h - one ES256 signature for many payloads: a compact JWS over
 * the root of a Merkle tree of the payloads, and for each payload a token
 *
 *     <compact JWS over the root>~<base64url payload>~<base64url path>
 *
 * The JWS is an ordinary one (any JWT library checks it); its payload is a
 * JSON object the caller describes plus "mrk", the base64url root hash.
 * The tree is RFC 9162's hashing with an explicit path:
 *     leaf = SHA-256(0x00 || payload)
 *     node = SHA-256(0x01 || left || right)
 * A level with an odd count lifts its last node up unchanged (never paired
 * with itself, so no two trees of different leaves share a root).  The path
 * is the list of siblings from the leaf up, 33 bytes each: one side byte
 * (0x00: the sibling is on the left, 0x01: on the right) and its hash.  A
 * batch of one has an empty path: the root is the leaf hash.
 *
 * Bounds: at most DZ_JWS_BATCH_MAX payloads per batch, paths of at most
 * DZ_JWS_BATCH_DEPTH_MAX steps, tokens of at most DZ_JWS_TOKEN_MAX bytes
 * (the whole form, both ways).  Pure and thread-safe; signing blocks when
 * the signer does (dz_signer_is_blocking).
 */
#ifndef DZ_JWS_BATCH_H
#define DZ_JWS_BATCH_H

#include <stddef.h>

#include <jansson.h>

struct dz_signer;
struct dz_jwks;

#define DZ_JWS_BATCH_MAX 256      /* payloads signed together, at most */
#define DZ_JWS_BATCH_DEPTH_MAX 16 /* steps in a path a verifier accepts */
#define DZ_JWS_BATCH_STEP 33      /* side byte + SHA-256 */
#define DZ_JWS_BATCH_SEP '~'

struct dz_jws_batch_item {
    const void *payload; /* the bytes a token carries (here: a JSON object) */
    size_t payload_len;
};

/* Sign items[0..n) (1 <= n <= DZ_JWS_BATCH_MAX) with one signature.  The
 * root JWS has the header {"alg":"ES256","kid":kid,"typ":typ} and the payload
 * {<root_members>,"mrk":"<root>"}: root_members is the caller's part of a
 * JSON object body without braces ('"iss":"x","iat":1'), written as given.
 * On success (0) rcs[i] is 0 with tokens[i] malloc'd (caller frees), or
 * DZ_ERR_TOOBIG with tokens[i] NULL when that one token would exceed
 * DZ_JWS_TOKEN_MAX (the others are unaffected).  On error every tokens[i]
 * is NULL and every rcs[i] the error.  Returns 0, DZ_ERR_INVAL (n out of
 * range, an empty payload, bad kid/typ), DZ_ERR_TOOBIG (a payload alone
 * over DZ_JWS_TOKEN_MAX), DZ_ERR_NOMEM, or the signer's error. */
int dz_jws_batch_sign(struct dz_signer *s, const char *kid, const char *typ,
                      const char *root_members, const struct dz_jws_batch_item *items, size_t n,
                      char **tokens, int *rcs);

/* Check a batch token of len bytes: the root JWS against jwks and typ
 * (dz_jws_verify_detail), then that the payload's path leads to the root's
 * "mrk".  On success *out_root is the root JWS's claims (new reference) and
 * *out_payload / *out_payload_len the payload's bytes (malloc'd, NUL added,
 * caller frees).  *out_reason (may be NULL) is "ok" or one of dz_jws_verify's
 * reasons; a path that does not lead to the root, or a root without a valid
 * "mrk", is "bad_signature" (the payload is not what was signed).
 * Returns 0, DZ_ERR_PARSE (not three '~' parts, bad base64url, a path not a
 * whole number of steps or too deep, a side byte other than 0 or 1),
 * DZ_ERR_TOOBIG, DZ_ERR_DENIED, DZ_ERR_NOMEM, DZ_ERR_CRYPTO. */
int dz_jws_batch_open(const char *token, size_t len, const struct dz_jwks *jwks, const char *typ,
                      json_t **out_root, unsigned char **out_payload, size_t *out_payload_len,
                      const char **out_reason);

#endif
