/*
 * signer.c - the backend-neutral half of the signer: picks a backend from the
 * spec, hashes the data, and holds what both backends share: DER signatures
 * into JOSE r || s, the public-only copy of a key, the PIN file read.  It
 * never touches a private key: only the backends do, and only through their
 * sign_digest hook.
 */
#include "keys/signer.h"
#include "keys/signer_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secretfile.h"
#include "base/sha256.h"
#include "keys/ecdsa_sig.h"

#include "base/compat.h"

#define SECRET_MAX 255

struct dz_signer {
    const struct dz_signer_ops *ops;
    void *impl;
};

bool dz_signer_key_is_p256(const EVP_PKEY *pkey)
{
    char group[32];
    size_t len = 0;

    if (!pkey || !EVP_PKEY_is_a(pkey, "EC"))
        return false;
    if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

int dz_signer_new(const struct dz_signer_ops *ops, void *impl, struct dz_signer **out)
{
    struct dz_signer *s = NULL;
    int rc;

    *out = NULL;
    if (!dz_signer_key_is_p256(ops->public_key(impl))) {
        dz_log(DZ_LOG_ERROR, "signer_key", "%s signer: the key is not EC P-256", ops->kind);
        rc = DZ_ERR_INVAL;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    s->ops = ops;
    s->impl = impl;
    impl = NULL;
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (impl)
        ops->free(impl);
    free(s);
    return rc;
}

int dz_signer_open(const char *spec, const char *pin_file, struct dz_signer **out)
{
    *out = NULL;
    if (!spec || !*spec)
        return DZ_ERR_INVAL;
    if (strncmp(spec, "pkcs11:", 7) == 0)
        return dz_signer_pkcs11_open(spec, pin_file, out);
    return dz_signer_file_open(spec, pin_file, out);
}

int dz_signer_sign_es256(struct dz_signer *s, const void *data, size_t len, unsigned char sig[64])
{
    const struct dz_sha256_part part = {data, len};
    unsigned char digest[32];
    int rc;

    memset(sig, 0, 64);
    /* Fetched once for the process, a context per thread (sha256.h). */
    if (dz_sha256_parts(&part, 1, digest) != 0) {
        dz_log_openssl("signer_digest");
        return DZ_ERR_CRYPTO;
    }
    rc = s->ops->sign_digest(s->impl, digest, sig);
    if (rc != 0)
        memset(sig, 0, 64);
    return rc;
}

EVP_PKEY *dz_signer_public_key(const struct dz_signer *s)
{
    return s->ops->public_key(s->impl);
}

bool dz_signer_is_blocking(const struct dz_signer *s)
{
    return s->ops->is_blocking;
}

const char *dz_signer_kind(const struct dz_signer *s)
{
    return s->ops->kind;
}

void dz_signer_free(struct dz_signer *s)
{
    if (!s)
        return;
    s->ops->free(s->impl);
    free(s);
}

int dz_signer_sig_from_der(const unsigned char *der, size_t der_len, unsigned char sig[64])
{
    /* P-256 only (dz_signer_new refuses other keys); any malformed value a
     * token or library returns is a crypto failure, never a signature. */
    return dz_ecdsa_sig_der_to_raw(der, der_len, 32, sig) == 0 ? 0 : DZ_ERR_CRYPTO;
}

EVP_PKEY *dz_signer_public_copy(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len = i2d_PUBKEY(k, &der);

    if (len <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    return pub;
}

int dz_signer_read_secret(const char *path, char **out)
{
    char why[512];
    int rc = dz_secret_file_read(path, SECRET_MAX, out, why, sizeof(why));

    if (rc != 0)
        dz_log(DZ_LOG_ERROR, "secret_file", "%s", why[0] ? why : dz_err_str(rc));
    return rc;
}
