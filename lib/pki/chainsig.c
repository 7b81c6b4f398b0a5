/* chainsig.c - see chainsig.h.  Mirrors OpenSSL 3's internal_verify()
 * (crypto/x509/x509_vfy.c) for the paths this project builds: no DANE bare
 * public-key anchors, no partial chains (x509check.c sets neither). */
#include "pki/chainsig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/compat.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Two ways per set: a card's own signature that lands on the set of its
 * CA's takes the other way instead of pushing the CA's out, so the CA's
 * (hit at every login, hence the recent way) stays remembered; direct
 * mapping lost it for one card in a thousand, at every login of that card. */
#define WAYS 2
#define SETS (DZ_CHAINSIG_SLOTS / WAYS)
static unsigned char memo[SETS][WAYS][32];
static bool used[SETS][WAYS];
static unsigned char recent[SETS]; /* the way hit or filled last */
static atomic_uint_fast64_t hits, verified, misses;

/* SHA-256 over the certificate's DER and the issuer key's SPKI DER (each
 * preceded by its length, so no two pairs share an input). */
static bool memo_key(X509 *x, X509 *issuer, unsigned char out[32])
{
    unsigned char *der = NULL, *spki = NULL;
    int n = i2d_X509(x, &der);
    int m = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint32_t ln = (uint32_t)n, lm = (uint32_t)m;
    unsigned int len = 32;
    bool ok = n > 0 && m > 0 && md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, &ln, sizeof(ln)) == 1 && EVP_DigestUpdate(md, der, ln) == 1 &&
              EVP_DigestUpdate(md, &lm, sizeof(lm)) == 1 && EVP_DigestUpdate(md, spki, lm) == 1 &&
              EVP_DigestFinal_ex(md, out, &len) == 1;

    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    OPENSSL_free(spki);
    return ok;
}

static size_t set_of(const unsigned char k[32])
{
    return (((size_t)k[0] << 8) | k[1]) % SETS;
}

/* Under mu.  Is k remembered?  A hit makes its way the recent one. */
static bool memo_find(const unsigned char k[32])
{
    size_t s = set_of(k);

    for (unsigned w = 0; w < WAYS; w++) {
        if (used[s][w] && memcmp(memo[s][w], k, 32) == 0) {
            recent[s] = (unsigned char)w;
            return true;
        }
    }
    return false;
}

/* Under mu.  Remember k: a free way, else the one not used last. */
static void memo_add(const unsigned char k[32])
{
    size_t s = set_of(k);
    unsigned w;

    if (memo_find(k))
        return; /* another thread verified the same pair meanwhile */
    for (w = 0; w < WAYS && used[s][w]; w++)
        ;
    if (w == WAYS)
        w = recent[s] == 0 ? 1 : 0;
    memcpy(memo[s][w], k, 32);
    used[s][w] = true;
    recent[s] = (unsigned char)w;
}

enum sig_verdict { SIG_OK, SIG_BAD, SIG_NOT_MEMO };

/* X509_verify(x, issuer's key) > 0, from the memo when this exact pair
 * verified before.  Without a key for the memo: verified, not kept.
 * memo_only: a pair not in the memo is SIG_NOT_MEMO, nothing verified. */
static enum sig_verdict signature_ok(X509 *x, X509 *issuer, EVP_PKEY *pkey, bool memo_only)
{
    unsigned char k[32];
    bool have = memo_key(x, issuer, k);
    bool hit = false;

    if (have) {
        pthread_mutex_lock(&mu);
        hit = memo_find(k);
        pthread_mutex_unlock(&mu);
    }
    if (hit) {
        atomic_fetch_add(&hits, 1);
        return SIG_OK;
    }
    if (memo_only) {
        atomic_fetch_add(&misses, 1);
        return SIG_NOT_MEMO;
    }
    if (X509_verify(x, pkey) <= 0)
        return SIG_BAD; /* never kept */
    atomic_fetch_add(&verified, 1);
    if (have) {
        pthread_mutex_lock(&mu);
        memo_add(k);
        pthread_mutex_unlock(&mu);
    }
    return SIG_OK;
}

/* OpenSSL's verify_cb_cert: report err at depth for x, let the callback
 * decide. */
static int fail(X509_STORE_CTX *ctx, X509 *x, int depth, int err)
{
    X509_STORE_CTX_set_error_depth(ctx, depth);
    X509_STORE_CTX_set_current_cert(ctx, x);
    X509_STORE_CTX_set_error(ctx, err);
    return X509_STORE_CTX_get_verify_cb(ctx)(0, ctx);
}

/* ossl_x509_signing_allowed: a proxy certificate needs digitalSignature
 * in its issuer, any other one keyCertSign (when the issuer has a key
 * usage at all). */
static int signing_allowed(X509 *issuer, X509 *x)
{
    uint32_t ku = X509_get_key_usage(issuer);
    bool has_ku = (X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0;

    if ((X509_get_extension_flags(x) & EXFLAG_PROXY) != 0) {
        if (has_ku && (ku & KU_DIGITAL_SIGNATURE) == 0)
            return X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE;
    } else if (has_ku && (ku & KU_KEY_CERT_SIGN) == 0) {
        return X509_V_ERR_KEYUSAGE_NO_CERTSIGN;
    }
    return X509_V_OK;
}

/* ossl_x509_check_cert_time at depth (>= 0). */
static int cert_time_ok(X509_STORE_CTX *ctx, X509 *x, int depth)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_VERIFY_PARAM_get_flags(param);
    time_t when, *ptime = NULL;
    int i;

    if ((flags & X509_V_FLAG_USE_CHECK_TIME) != 0) {
        when = X509_VERIFY_PARAM_get_time(param);
        ptime = &when;
    } else if ((flags & X509_V_FLAG_NO_CHECK_TIME) != 0) {
        return 1;
    }
    i = X509_cmp_time(X509_get0_notBefore(x), ptime);
    if (i == 0 && !fail(ctx, x, depth, X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD))
        return 0;
    if (i > 0 && !fail(ctx, x, depth, X509_V_ERR_CERT_NOT_YET_VALID))
        return 0;
    i = X509_cmp_time(X509_get0_notAfter(x), ptime);
    if (i == 0 && !fail(ctx, x, depth, X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD))
        return 0;
    if (i < 0 && !fail(ctx, x, depth, X509_V_ERR_CERT_HAS_EXPIRED))
        return 0;
    return 1;
}

static int verify(X509_STORE_CTX *ctx, bool memo_only)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    unsigned long flags = X509_VERIFY_PARAM_get_flags(X509_STORE_CTX_get0_param(ctx));
    int n = sk_X509_num(chain) - 1;
    X509 *xi, *xs;

    if (n < 0)
        return fail(ctx, NULL, 0, X509_V_ERR_UNSPECIFIED);
    xi = sk_X509_value(chain, n);
    xs = xi;
    X509_STORE_CTX_set_error_depth(ctx, n);
    /* The top not self-issued (EXFLAG_SS is OpenSSL's "likely issued by
     * itself"): start with the certificate below it, whose issuer it is. */
    if ((X509_get_extension_flags(xi) & EXFLAG_SS) == 0 &&
        (flags & X509_V_FLAG_PARTIAL_CHAIN) == 0) {
        if (n > 0) {
            n--;
            X509_STORE_CTX_set_error_depth(ctx, n);
            xs = sk_X509_value(chain, n);
        } else if (!fail(ctx, xi, 0, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)) {
            return 0;
        }
    }
    while (n >= 0) {
        /* A self-signed top's own signature adds nothing: only when asked. */
        if (xs != xi || ((flags & X509_V_FLAG_CHECK_SS_SIGNATURE) != 0 &&
                         (X509_get_extension_flags(xi) & EXFLAG_SS) != 0)) {
            EVP_PKEY *pkey;
            int issuer_depth = n + (xs == xi ? 0 : 1);
            /* RFC 6818 2: a self-issued end-entity certificate's own key
             * usage does not restrict its self-signature. */
            int ret = xs == xi && (X509_get_extension_flags(xi) & EXFLAG_CA) == 0
                          ? X509_V_OK
                          : signing_allowed(xi, xs);

            if (ret != X509_V_OK && !fail(ctx, xi, issuer_depth, ret))
                return 0;
            if ((pkey = X509_get0_pubkey(xi)) == NULL) {
                if (!fail(ctx, xi, issuer_depth, X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY))
                    return 0;
            } else {
                enum sig_verdict v = signature_ok(xs, xi, pkey, memo_only);

                if (v == SIG_NOT_MEMO) {
                    /* Not a verdict: stop without asking the callback. */
                    X509_STORE_CTX_set_error_depth(ctx, n);
                    X509_STORE_CTX_set_current_cert(ctx, xs);
                    X509_STORE_CTX_set_error(ctx, DZ_CHAINSIG_NOT_MEMO);
                    return 0;
                }
                if (v == SIG_BAD && !fail(ctx, xs, n, X509_V_ERR_CERT_SIGNATURE_FAILURE))
                    return 0;
            }
        }
        /* The anchor's validity too, as OpenSSL does. */
        if (!cert_time_ok(ctx, xs, n))
            return 0;
        X509_STORE_CTX_set_current_cert(ctx, xs);
        X509_STORE_CTX_set_error_depth(ctx, n);
        if (!X509_STORE_CTX_get_verify_cb(ctx)(1, ctx))
            return 0;
        if (--n >= 0) {
            xi = xs;
            xs = sk_X509_value(chain, n);
        }
    }
    return 1;
}

int dz_chainsig_verify(X509_STORE_CTX *ctx)
{
    return verify(ctx, false);
}

int dz_chainsig_verify_memo(X509_STORE_CTX *ctx)
{
    return verify(ctx, true);
}

uint64_t dz_chainsig_hits(void)
{
    return atomic_load(&hits);
}

uint64_t dz_chainsig_verified(void)
{
    return atomic_load(&verified);
}

uint64_t dz_chainsig_misses(void)
{
    return atomic_load(&misses);
}

void dz_chainsig_clear(void)
{
    pthread_mutex_lock(&mu);
    memset(used, 0, sizeof(used));
    memset(memo, 0, sizeof(memo));
    memset(recent, 0, sizeof(recent));
    pthread_mutex_unlock(&mu);
}
