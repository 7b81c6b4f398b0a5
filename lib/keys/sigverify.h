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
 * alg: "ES256" | "ES384" | "PS256" | "RS256".  The key type must fit the
 * algorithm (an EC key for ES*, RSA for PS/RS).  Returns 0 when valid,
 * DZ_ERR_DENIED when not, DZ_ERR_INVAL for an unknown algorithm, a key of the
 * wrong type or a malformed signature. */
int dz_sig_verify(EVP_PKEY *pub, const char *alg, const void *msg, size_t len,
                  const unsigned char *sig, size_t sig_len);

/* The same over a digest the signer was given (mobile signatures sign a
 * hash chosen by the relying party): digest_len must be the algorithm's. */
int dz_sig_verify_digest(EVP_PKEY *pub, const char *alg, const unsigned char *digest,
                         size_t digest_len, const unsigned char *sig, size_t sig_len);

#endif
