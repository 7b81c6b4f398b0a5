/*
 * secret.h - handling of secrets: random bytes, wiping, constant-time compare.
 *
 * Passwords, PINs, OTP codes, tokens and keys pass through these helpers so
 * that they are compared without timing leaks and wiped on every path.
 * All functions are thread-safe.
 */
#ifndef DZ_SECRET_H
#define DZ_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrite n bytes in a way the optimiser keeps (OPENSSL_cleanse). */
void dz_secret_wipe(void *p, size_t n);

/* Wipe a NUL-terminated string in place and free it; NULL is a no-op. */
void dz_secret_free_str(char *s);

/* Constant-time equality.  Values of different lengths are compared through
 * their SHA-256 digests so that neither the length nor the content leaks. */
bool dz_secret_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Fill p with n bytes from the CSPRNG (RAND_bytes). 0 or DZ_ERR_CRYPTO. */
int dz_random(void *p, size_t n);

/* SHA-256 of a buffer into out[32]. */
void dz_sha256(const void *p, size_t n, unsigned char out[32]);

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). */
void dz_hex(const unsigned char *p, size_t n, char *out);

#endif
