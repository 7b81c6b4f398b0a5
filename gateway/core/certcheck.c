/* certcheck.c - see certcheck.h.  Fails closed: any error is a refusal. */
#include "core/certcheck.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"

#include "base/compat.h"

struct check_op {
    /* Borrowed from c's generation: the hold dz_gw_blocking takes on c keeps
     * c->gen, and so the trust store, alive until done() has run. */
    const struct dz_x509_trust *trust;
    /* Own references: the caller's certificate objects may be freed while
     * the check runs on a pool thread. */
    X509 *leaf;
    STACK_OF(X509) * chain;
    /* opts.policies points here, so the array must live in op, not on the
     * stack of dz_certcheck_start. */
    const char *policies[1];
    struct dz_x509_opts opts;
    struct dz_x509_result res;
    int rc;
    dz_certcheck_cb cb;
    void *arg;
};

/* Checks decided on the worker loop, and sent to the pool (metrics). */
static atomic_uint_fast64_t on_loop, on_pool;

static void op_free(struct check_op *op)
{
    X509_free(op->leaf);
    sk_X509_pop_free(op->chain, X509_free);
    free(op);
}

/* Every verdict carries a reason: it is what the audit line records. */
static void name_verdict(struct check_op *op)
{
    if (op->rc == 0 && !op->res.reason)
        op->res.reason = op->res.valid ? "ok" : "invalid";
}

static void work(void *p)
{
    struct check_op *op = p;

    op->rc = dz_x509_validate(op->trust, op->leaf, op->chain, &op->opts, &op->res);
    name_verdict(op);
}

static void done(struct dz_rctx *c, void *p)
{
    struct check_op *op = p;

    if (op->rc != 0) {
        /* An internal error is never a pass, whatever res holds. */
        op->res.valid = false;
        op->res.reason = "internal_error";
    }
    op->cb(c, op->rc, &op->res, op->arg);
    op_free(op);
}

int dz_certcheck_start(struct dz_rctx *c, const struct dz_x509_trust *t, X509 *leaf,
                       STACK_OF(X509) * chain, enum dz_x509_purpose purpose, const char *policy,
                       enum dz_config_revocation revocation, uint64_t fetch_timeout_ms,
                       dz_certcheck_cb cb, void *arg)
{
    struct check_op *op = calloc(1, sizeof(*op));

    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return DZ_ERR_NOMEM;
    }
    op->trust = t;
    X509_up_ref(leaf);
    op->leaf = leaf;
    if (chain) {
        op->chain = sk_X509_new_null();
        /* The client sends this chain: only the first DZ_X509_MAX_UNTRUSTED
         * certificates are kept, the bound x509check enforces anyway.  A copy of
         * the leaf is skipped so it cannot pose as its own intermediate.  A
         * failed push only shortens the chain, which can refuse but never
         * admit more. */
        for (int i = 0; op->chain && i < sk_X509_num(chain) && i < DZ_X509_MAX_UNTRUSTED; i++) {
            X509 *x = sk_X509_value(chain, i);
            if (X509_cmp(x, leaf) == 0)
                continue;
            X509_up_ref(x);
            if (!sk_X509_push(op->chain, x))
                X509_free(x);
        }
    }
    op->policies[0] = policy;
    op->opts.purpose = purpose;
    op->opts.policies = op->policies;
    op->opts.npolicies = 1;
    op->opts.revocation = revocation == DZ_CONFIG_REV_NONE  ? DZ_X509_REV_NONE
                          : revocation == DZ_CONFIG_REV_CRL ? DZ_X509_REV_CRL_ONLY
                                                            : DZ_X509_REV_OCSP_CRL;
    op->opts.fetch_timeout_ms = (uint32_t)fetch_timeout_ms;
    op->opts.ocsp_cache = c->gw->ocsp_cache;
    /* A login certificate without a FIN names no account: refuse it here
     * rather than let a caller forget. */
    op->opts.require_fin = true;
    op->cb = cb;
    op->arg = arg;
    /* On the loop when everything the check needs is cached (the path's
     * signatures, a fresh OCSP answer): the same decision without the two
     * thread hand-offs.  The answer is still posted, not given from inside
     * this call, as callers were promised.  Anything else - not cached, an
     * error, a post that cannot be made - is the pool's, as before. */
    if (dz_x509_validate_cached(op->trust, op->leaf, op->chain, &op->opts, &op->res) == 0) {
        op->rc = 0;
        name_verdict(op);
        if (dz_gw_later(c, done, op) == 0) {
            atomic_fetch_add_explicit(&on_loop, 1, memory_order_relaxed);
            return 0;
        }
    }
    memset(&op->res, 0, sizeof(op->res));
    if (dz_gw_blocking(c, work, done, op) != 0) {
        op_free(op);
        return DZ_ERR_UNAVAILABLE;
    }
    atomic_fetch_add_explicit(&on_pool, 1, memory_order_relaxed);
    return 0;
}

void dz_certcheck_counts(uint64_t *loop, uint64_t *pool)
{
    *loop = atomic_load_explicit(&on_loop, memory_order_relaxed);
    *pool = atomic_load_explicit(&on_pool, memory_order_relaxed);
}

const char *dz_certcheck_code(const struct dz_x509_result *res)
{
    if (res->reason && strcmp(res->reason, "revoked") == 0)
        return "certificate_revoked";
    if (res->reason && strcmp(res->reason, "revocation_unknown") == 0)
        return "revocation_unavailable";
    return "certificate_invalid";
}

void dz_certcheck_prf(const struct dz_x509_result *res, const unsigned char *sig, size_t sig_len,
                      unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;

    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, res->sha256, sizeof(res->sha256)) != 1 ||
        (sig && EVP_DigestUpdate(md, sig, sig_len) != 1) ||
        (res->has_ocsp && EVP_DigestUpdate(md, res->ocsp_sha256, 32) != 1) ||
        EVP_DigestFinal_ex(md, out, &len) != 1)
        /* If the digest cannot run (out of memory), out still gets a defined
         * value tied to the certificate, never stack garbage. */
        dz_sha256(res->sha256, sizeof(res->sha256), out);
    EVP_MD_CTX_free(md);
}
