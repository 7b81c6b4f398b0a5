/* signer_case.h - the gateway's signing key as the assertion tests want it
 * (test_assertion.c, test_assertion_batch.c): a file signer (keys/signer.h)
 * over a throwaway P-256 key, and a JWKS holding its public key as kid
 * "gw-1".  The key file lives only while the signer reads it: it and its
 * mkdtemp directory are gone when signer_case_open returns.  Static
 * inline: each test is one translation unit. */
#ifndef SIGNER_CASE_H
#define SIGNER_CASE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "keys/jws.h"
#include "keys/signer.h"

/* tmpl: a mkdtemp template under /tmp ("/tmp/dz_x_XXXXXX").  0, or -1 with
 * nothing left open (a cmocka setup returns it as it is). */
static inline int signer_case_open(const char *tmpl, struct dz_signer **signer,
                                   struct dz_jwks **jwks)
{
    char dir[64];
    char path[128];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f = NULL;
    bool has_dir = false;
    bool has_file = false;
    int rc = -1;

    *signer = NULL;
    *jwks = NULL;
    snprintf(dir, sizeof(dir), "%s", tmpl);
    if (!k || !mkdtemp(dir))
        goto out;
    has_dir = true;
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    f = fopen(path, "w");
    has_file = f != NULL;
    if (!f || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    if (dz_signer_open(path, NULL, signer) != 0)
        goto out;
    if (dz_jwks_new(jwks) != 0 || dz_jwks_add(*jwks, "gw-1", dz_signer_public_key(*signer)) != 0)
        goto out;
    rc = 0;
out:
    if (f)
        fclose(f);
    if (has_file && unlink(path) != 0)
        rc = -1;
    if (has_dir && rmdir(dir) != 0)
        rc = -1;
    EVP_PKEY_free(k);
    if (rc != 0) {
        dz_jwks_free(*jwks);
        dz_signer_free(*signer);
        *jwks = NULL;
        *signer = NULL;
    }
    return rc;
}

static inline void signer_case_close(struct dz_signer *signer, struct dz_jwks *jwks)
{
    dz_jwks_free(jwks);
    dz_signer_free(signer);
}

#endif
