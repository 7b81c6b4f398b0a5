/*
 * signer.c - the backend-neutral half of the signer: picks a backend from the
 * spec, hashes the data, turns DER signatures into JOSE r || s, and reads PIN
 * files.  It never touches a private key: only the backends do, and only
 * through their sign_digest hook.
 */
#include "keys/signer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

#define SECRET_MAX 255

struct dz_signer {
    const struct dz_signer_ops *ops;
    void *impl;
    EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs ~0.3 us */
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
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!s->sha256) {
        dz_log_openssl("signer_digest");
        rc = DZ_ERR_CRYPTO;
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
    unsigned char digest[32];
    unsigned int dlen = sizeof(digest);
    int rc;

    memset(sig, 0, 64);
    if (!EVP_Digest(data, len, digest, &dlen, s->sha256, NULL) || dlen != 32) {
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
    EVP_MD_free(s->sha256);
    free(s);
}

int dz_signer_sig_from_der(const unsigned char *der, size_t der_len, unsigned char sig[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r = NULL;
    const BIGNUM *sv = NULL;
    int rc = DZ_ERR_CRYPTO;

    memset(sig, 0, 64);
    if (der_len > 128)
        goto out;
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    /* Trailing bytes after the SEQUENCE mean the token or library returned
     * something we do not understand: refuse rather than guess. */
    if (!es || p != der + der_len)
        goto out;
    ECDSA_SIG_get0(es, &r, &sv);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(sv, sig + 32, 32) != 32)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(sig, 0, 64);
    ECDSA_SIG_free(es);
    return rc;
}

int dz_signer_read_secret(const char *path, char **out)
{
    char buf[SECRET_MAX + 2];
    size_t len = 0;
    int fd = -1;
    int rc;

    *out = NULL;
    if (!path)
        return DZ_ERR_INVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dz_log(DZ_LOG_ERROR, "secret_file", "%s: %s", path, strerror(errno));
        return DZ_ERR_IO;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dz_log(DZ_LOG_ERROR, "secret_file", "%s: %s", path, strerror(errno));
            rc = DZ_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len > SECRET_MAX) {
        dz_log(DZ_LOG_ERROR, "secret_file", "%s: longer than %d bytes", path, SECRET_MAX);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    if (len == 0 || memchr(buf, '\0', len)) {
        dz_log(DZ_LOG_ERROR, "secret_file", "%s: empty or contains a NUL byte", path);
        rc = DZ_ERR_INVAL;
        goto out;
    }
    *out = malloc(len + 1);
    if (!*out) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    memcpy(*out, buf, len);
    (*out)[len] = '\0';
    rc = 0;
out:
    dz_secret_wipe(buf, sizeof(buf));
    close(fd);
    return rc;
}
