/*
 * signer_file.c - the signer backend whose EC P-256 private key is read from
 * a PEM file (optionally passphrase-protected).  It owns the only in-memory
 * copy of that key: the file's bytes and the passphrase are wiped as soon as
 * the key is decoded, the key is never written, logged or handed out (the
 * public key it gives away is a separate public-only object).
 *
 * Signing is lock-free apart from a tiny free-list of ready EVP_PKEY_CTXs:
 * making a context per signature costs ~15% of an ES256 signature in
 * OpenSSL 3.0 (provider fetch), so contexts are reused across requests.
 */
#include "keys/signer.h"
#include "keys/signer_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

#define PEM_MAX (64 * 1024)
#define CTX_POOL 16

struct file_impl {
    EVP_PKEY *priv;
    EVP_PKEY *pub;        /* public-only copy handed out */
    EVP_PKEY_CTX *proto;  /* initialised for signing; duplicated on demand */
    pthread_mutex_t lock; /* guards idle[] only, never held while signing */
    EVP_PKEY_CTX *idle[CTX_POOL];
    unsigned n_idle;
};

static EVP_PKEY_CTX *ctx_get(struct file_impl *f)
{
    EVP_PKEY_CTX *c = NULL;

    pthread_mutex_lock(&f->lock);
    if (f->n_idle > 0)
        c = f->idle[--f->n_idle];
    pthread_mutex_unlock(&f->lock);
    if (!c)
        c = EVP_PKEY_CTX_dup(f->proto);
    return c;
}

static void ctx_put(struct file_impl *f, EVP_PKEY_CTX *c)
{
    pthread_mutex_lock(&f->lock);
    if (f->n_idle < CTX_POOL) {
        f->idle[f->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&f->lock);
    EVP_PKEY_CTX_free(c);
}

static int file_sign(void *impl, const unsigned char digest[32], unsigned char sig[64])
{
    struct file_impl *f = impl;
    unsigned char der[80];
    size_t der_len = sizeof(der);
    EVP_PKEY_CTX *c = ctx_get(f);
    int rc;

    if (!c) {
        dz_log_openssl("signer_file_sign");
        return DZ_ERR_CRYPTO;
    }
    if (EVP_PKEY_sign(c, der, &der_len, digest, 32) != 1) {
        dz_log_openssl("signer_file_sign");
        /* A context that failed mid-operation is not trusted again. */
        EVP_PKEY_CTX_free(c);
        return DZ_ERR_CRYPTO;
    }
    ctx_put(f, c);
    rc = dz_signer_sig_from_der(der, der_len, sig);
    return rc;
}

static EVP_PKEY *file_public_key(const void *impl)
{
    const struct file_impl *f = impl;
    return f->pub;
}

static void file_free(void *impl)
{
    struct file_impl *f = impl;

    if (!f)
        return;
    for (unsigned i = 0; i < f->n_idle; i++)
        EVP_PKEY_CTX_free(f->idle[i]);
    EVP_PKEY_CTX_free(f->proto);
    EVP_PKEY_free(f->pub);
    EVP_PKEY_free(f->priv);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const struct dz_signer_ops file_ops = {
    .kind = "file",
    .is_blocking = false,
    .sign_digest = file_sign,
    .public_key = file_public_key,
    .free = file_free,
};

/* PEM passphrase callback.  Without a passphrase we answer -1 at once, so
 * OpenSSL never falls back to prompting on a terminal. */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    size_t len;

    if (!pass || size <= 0)
        return -1;
    len = strlen(pass);
    if (len > (size_t)size)
        return -1;
    memcpy(buf, pass, len);
    return (int)len;
}

/* Read the whole file into a buffer the caller wipes. */
static int read_pem(const char *path, unsigned char **out, size_t *out_len)
{
    struct stat st;
    unsigned char *p = NULL;
    size_t len = 0;
    int fd;
    int rc;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dz_log(DZ_LOG_ERROR, "signer_file", "%s: %s", path, strerror(errno));
        return DZ_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dz_log(DZ_LOG_ERROR, "signer_file", "%s: not a regular file", path);
        rc = DZ_ERR_IO;
        goto out;
    }
    if (st.st_size > PEM_MAX) {
        dz_log(DZ_LOG_ERROR, "signer_file", "%s: larger than %d bytes", path, PEM_MAX);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        dz_log(DZ_LOG_WARN, "signer_file", "%s: private key is readable by group or others", path);
    p = malloc(PEM_MAX + 1);
    if (!p) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, p + len, PEM_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dz_log(DZ_LOG_ERROR, "signer_file", "%s: %s", path, strerror(errno));
            rc = DZ_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > PEM_MAX) {
            dz_log(DZ_LOG_ERROR, "signer_file", "%s: larger than %d bytes", path, PEM_MAX);
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
    }
    *out = p;
    *out_len = len;
    p = NULL;
    rc = 0;
out:
    if (p) {
        dz_secret_wipe(p, PEM_MAX + 1);
        free(p);
    }
    close(fd);
    return rc;
}

int dz_signer_file_open(const char *path, const char *pass_file, struct dz_signer **out)
{
    struct file_impl *f = NULL;
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    char *pass = NULL;
    BIO *bio = NULL;
    int rc;

    *out = NULL;
    if (pass_file && (rc = dz_signer_read_secret(pass_file, &pass)) != 0)
        goto out;
    if ((rc = read_pem(path, &pem, &pem_len)) != 0)
        goto out;
    f = calloc(1, sizeof(*f));
    if (!f) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_init(&f->lock, NULL);
    bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (!bio) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    f->priv = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, pass);
    if (!f->priv) {
        dz_log_openssl("signer_file_decode");
        dz_log(DZ_LOG_ERROR, "signer_file", "%s: no usable PEM private key%s", path,
               pass ? " (or wrong passphrase)" : "");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (!dz_signer_key_is_p256(f->priv)) {
        dz_log(DZ_LOG_ERROR, "signer_file", "%s: the key is not EC P-256", path);
        rc = DZ_ERR_INVAL;
        goto out;
    }
    f->pub = dz_signer_public_copy(f->priv);
    f->proto = EVP_PKEY_CTX_new_from_pkey(NULL, f->priv, NULL);
    if (!f->pub || !f->proto || EVP_PKEY_sign_init(f->proto) != 1) {
        dz_log_openssl("signer_file_init");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    rc = dz_signer_new(&file_ops, f, out);
    f = NULL; /* dz_signer_new owns it now, even on error */
out:
    BIO_free(bio);
    if (pem) {
        dz_secret_wipe(pem, PEM_MAX + 1);
        free(pem);
    }
    dz_secret_free_str(pass);
    file_free(f);
    return rc;
}
