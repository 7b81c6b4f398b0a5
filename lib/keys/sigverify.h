/*
 * sigverify.h - checks a signature made by a card or a phone with the public
 * key of its certificate.  JOSE algorithm names; ECDSA signatures are the raw
 * r||s form (IEEE P1363) that cards, Web eID and JOSE return, RSA ones the
 * usual byte string.  Pure functions, any thread.
 */
#ifndef DZ_SIGVERIFY_H
#define DZ_SIGVERIFY_H

#include <stddef.h>

#include <openssl/evp.h>

/* Verify sig over msg (hashed here with the algorithm's hash).
 * alg: the JWA names Web eID allows: "ES256" | "ES384" | "ES512" (the curve
 * P-256, P-384, P-521 to match), "PS256" | "PS384" | "PS512", "RS256" |
 * "RS384" | "RS512" (RSA of 2048 bits or more).  The key type must fit the
 * algorithm (an EC key for ES*, RSA for PS/RS).  Returns 0 when valid,
 * DZ_ERR_DENIED when not, DZ_ERR_INVAL for an unknown algorithm, a key of the
 * wrong type or a malformed signature. */
int dz_sig_verify(EVP_PKEY *pub, const char *alg, const void *msg, size_t len,
                  const unsigned char *sig, size_t sig_len);

/* The same over a digest the signer was given (mobile signatures sign a
 * hash chosen by the relying party): digest_len must be the algorithm's. */
int dz_sig_verify_digest(EVP_PKEY *pub, const char *alg, const unsigned char *digest,
                         size_t digest_len, const unsigned char *sig, size_t sig_len);

/* The hash function of alg (SHA-256 for ES256, PS256, RS256, ...), or NULL
 * for an algorithm not listed above. */
const EVP_MD *dz_sig_alg_md(const char *alg);

#endif
