/*
 * b64.h - strict base64 (RFC 4648 §4, padded) and base64url (§5, unpadded).
 *
 * Decoding is strict: characters outside the alphabet, wrong padding, or
 * non-zero trailing bits are DZ_ERR_PARSE, so one value has one encoding.
 * Pure functions over bounded buffers; thread-safe.
 */
#ifndef DZ_B64_H
#define DZ_B64_H

#include <stdbool.h>
#include <stddef.h>

/* Encode n bytes; *out is malloc'd and NUL-terminated (caller frees).
 * Returns 0 or DZ_ERR_NOMEM / DZ_ERR_TOOBIG. */
int dz_b64_encode(const void *p, size_t n, bool url, char **out);

/* Encode into a caller buffer of at least dz_b64_encoded_len(n, url)+1 bytes. */
size_t dz_b64_encoded_len(size_t n, bool url);
void dz_b64_encode_to(const void *p, size_t n, bool url, char *out);

/* Decode len characters; *out is malloc'd (caller frees, length *out_len;
 * a NUL is appended but not counted).  Returns 0, DZ_ERR_PARSE, DZ_ERR_NOMEM. */
int dz_b64_decode(const char *in, size_t len, bool url, unsigned char **out, size_t *out_len);

#endif
