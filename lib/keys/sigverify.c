/* sigverify.c - see sigverify.h.  Never accepts a signature on an error. */
#include "keys/sigverify.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "base/err.h"
#include "keys/ecdsa_sig.h"

#include "base/compat.h"

struct alg_info {
    const char *name;
    int key_type; /* EVP_PKEY_EC or EVP_PKEY_RSA */
    const EVP_MD *(*md)(void);
    int pad;        /* RSA padding; 0 for EC */
    size_t ec_half; /* bytes of r (and s) for EC */
};

static const struct alg_info algs[] = {
    {"ES256", EVP_PKEY_EC, EVP_sha256, 0, 32},
    {"ES384", EVP_PKEY_EC, EVP_sha384, 0, 48},
    {"ES512", EVP_PKEY_EC, EVP_sha512, 0, 66},
    {"PS256", EVP_PKEY_RSA, EVP_sha256, RSA_PKCS1_PSS_PADDING, 0},
    {"PS384", EVP_PKEY_RSA, EVP_sha384, RSA_PKCS1_PSS_PADDING, 0},
    {"PS512", EVP_PKEY_RSA, EVP_sha512, RSA_PKCS1_PSS_PADDING, 0},
    {"RS256", EVP_PKEY_RSA, EVP_sha256, RSA_PKCS1_PADDING, 0},
    {"RS384", EVP_PKEY_RSA, EVP_sha384, RSA_PKCS1_PADDING, 0},
    {"RS512", EVP_PKEY_RSA, EVP_sha512, RSA_PKCS1_PADDING, 0},
};

static const struct alg_info *find_alg(const char *name)
{
    for (size_t i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    }
    return NULL;
}

const EVP_MD *dz_sig_alg_md(const char *alg)
{
    const struct alg_info *a = find_alg(alg);

    return a ? a->md() : NULL;
}

/* RSA padding for PS* / RS*; nothing for EC. 1 on success. */
static int set_padding(EVP_PKEY_CTX *ctx, const struct alg_info *a)
{
    if (!a->pad)
        return 1;
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, a->pad) != 1)
        return 0;
    return a->pad != RSA_PKCS1_PSS_PADDING ||
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
}

/* The key fits the algorithm; for EC, sig (r || s) is turned into DER in der. */
static int check(EVP_PKEY *pub, const struct alg_info *a, const unsigned char *sig, size_t sig_len,
                 unsigned char der[DZ_ECDSA_SIG_DER_MAX], size_t *der_len)
{
    int rc;

    if (!a || !pub || EVP_PKEY_get_base_id(pub) != a->key_type)
        return DZ_ERR_INVAL;
    if (a->key_type == EVP_PKEY_EC) {
        /* The curve must fit the hash: P-256 with ES256, P-384 with
         * ES384, P-521 with ES512. */
        if ((size_t)(EVP_PKEY_get_bits(pub) + 7) / 8 != a->ec_half)
            return DZ_ERR_INVAL;
        rc = dz_ecdsa_sig_raw_to_der(sig, sig_len, a->ec_half, der, DZ_ECDSA_SIG_DER_MAX, der_len);
        /* r or s zero or not below the order: it cannot verify. */
        return rc == DZ_ERR_PARSE ? DZ_ERR_DENIED : rc;
    }
    if (EVP_PKEY_get_bits(pub) < 2048)
        return DZ_ERR_INVAL;
    return 0;
}

int dz_sig_verify(EVP_PKEY *pub, const char *alg, const void *msg, size_t len,
                  const unsigned char *sig, size_t sig_len)
{
    const struct alg_info *a = find_alg(alg);
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 0;
    int rc = check(pub, a, sig, sig_len, der, &der_len);

    if (rc != 0)
        return rc;
    rc = DZ_ERR_DENIED;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, &pctx, a->md(), NULL, pub) != 1 || !set_padding(pctx, a))
        goto out;
    if (der_len)
        rc = EVP_DigestVerify(md, der, der_len, msg, len) == 1 ? 0 : DZ_ERR_DENIED;
    else
        rc = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1 ? 0 : DZ_ERR_DENIED;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

int dz_sig_verify_digest(EVP_PKEY *pub, const char *alg, const unsigned char *digest,
                         size_t digest_len, const unsigned char *sig, size_t sig_len)
{
    const struct alg_info *a = find_alg(alg);
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 0;
    int rc = check(pub, a, sig, sig_len, der, &der_len);

    if (rc != 0)
        return rc;
    if (digest_len != (size_t)EVP_MD_get_size(a->md()))
        return DZ_ERR_INVAL;
    rc = DZ_ERR_DENIED;
    ctx = EVP_PKEY_CTX_new(pub, NULL);
    if (!ctx || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, a->md()) != 1 || !set_padding(ctx, a))
        goto out;
    if (der_len)
        rc = EVP_PKEY_verify(ctx, der, der_len, digest, digest_len) == 1 ? 0 : DZ_ERR_DENIED;
    else
        rc = EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1 ? 0 : DZ_ERR_DENIED;
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}
