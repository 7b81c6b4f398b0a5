/*
 * signer_int.h - what the signer's backends (signer_file.c, signer_pkcs11.c)
 * and signer.c share; not for the signer's users, who include signer.h.
 */
#ifndef DZ_SIGNER_INT_H
#define DZ_SIGNER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "keys/signer.h"

/* A backend signs a SHA-256 digest and writes r || s; impl is its own state. */
struct dz_signer_ops {
    const char *kind;
    bool is_blocking;
    int (*sign_digest)(void *impl, const unsigned char digest[32], unsigned char sig[64]);
    EVP_PKEY *(*public_key)(const void *impl); /* borrowed, provider-native */
    void (*free)(void *impl);
};

/* Wrap a backend.  On success the signer owns impl; on error impl is freed
 * through ops->free.  Returns 0, DZ_ERR_INVAL (public key not P-256),
 * DZ_ERR_NOMEM, DZ_ERR_CRYPTO. */
int dz_signer_new(const struct dz_signer_ops *ops, void *impl, struct dz_signer **out);

/* The two backends, called by dz_signer_open; same contract as it. */
int dz_signer_file_open(const char *path, const char *pass_file, struct dz_signer **out);
int dz_signer_pkcs11_open(const char *uri, const char *pin_file, struct dz_signer **out);

/* Convert a DER ECDSA-Sig-Value (as OpenSSL and tokens via libp11 produce)
 * into the 64-byte JOSE r || s form with dz_ecdsa_sig_der_to_raw (P-256).
 * 0 or DZ_ERR_CRYPTO (anything it refuses). */
int dz_signer_sig_from_der(const unsigned char *der, size_t der_len, unsigned char sig[64]);

/* A public-only copy of k (a private key, possibly a token handle), so that
 * what a backend hands out can never sign and is an ordinary provider key.
 * The caller frees it; NULL on error. */
EVP_PKEY *dz_signer_public_copy(EVP_PKEY *k);

#endif
