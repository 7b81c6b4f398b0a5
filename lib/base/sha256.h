/*
 * sha256.h - SHA-256 on the hot path: the implementation fetched once for
 * the process and one digest context kept per thread.
 *
 * OpenSSL 3's EVP_sha256()/SHA256()/EVP_Digest fetch the implementation
 * from the provider (a locked lookup) and allocate a context on every call
 * (three allocations): a 65-byte hash costs 0.5 us that way and 0.15 us
 * this way (tests/bench/sha256.c).
 * The audit writer hashes every line twice (chain, Merkle leaf) and the
 * tree a node per leaf, so that overhead was most of their hashing cost.
 *
 * Thread-safe: each thread uses its own context (freed when the thread
 * exits); nothing is shared but the fetched, immutable EVP_MD.
 */
#ifndef DZ_SHA256_H
#define DZ_SHA256_H

#include <stddef.h>

/* One piece of the message; parts are hashed in order, as one message. */
struct dz_sha256_part {
    const void *p;
    size_t len;
};

/* SHA-256 of the n parts concatenated, into out[32].  0, or DZ_ERR_CRYPTO
 * (allocation failure): out is then zeroed, a value no caller accepts as a
 * digest of its input by accident. */
int dz_sha256_parts(const struct dz_sha256_part *parts, size_t n, unsigned char out[32]);

#endif
