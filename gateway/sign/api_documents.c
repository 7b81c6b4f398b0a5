/*
 * api_documents.c - POST /api/documents/verify (DESIGN §4.7): anyone may
 * ask whether a detached CAdES signature over a document holds; the answer
 * is the validation report of lib/pki/cades.c (indication, sub-indication,
 * signer, signing and time-stamp times, level, checks).  Verification runs
 * on the blocking pool (it may fetch OCSP answers or CRLs).  It stores
 * nothing and never signs or time-stamps anything.  Being public and
 * costly (a chain and revocation check per call), it is rate limited per
 * client address: documents.verify_rate calls a minute.
 */
#include "sign/sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "core/addrrate.h"
#include "core/gwasync.h"
#include "pki/cades.h"
#include "sign/signed_body.h"

#include "base/compat.h"

struct verify_op {
    json_t *in;
    unsigned char *doc;
    size_t doc_len;
    unsigned char *sig;
    size_t sig_len;
    struct dz_cades_verify_opts opts;
    struct dz_cades_report rep;
    int rc;
};

static void op_free(struct verify_op *op)
{
    json_decref(op->in);
    free(op->doc);
    free(op->sig);
    free(op);
}

static void work(void *arg)
{
    struct verify_op *op = arg;

    op->rc = dz_cades_verify(op->doc, op->doc_len, op->sig, op->sig_len, &op->opts, &op->rep);
}

static void done(struct dz_rctx *c, void *arg)
{
    struct verify_op *op = arg;
    json_t *body;

    if (c->closed)
        goto out;
    if (op->rc == DZ_ERR_PARSE) {
        dz_rctx_problem(c, "malformed_signature",
                        "signature is not a DER CMS SignedData (CAdES, detached)");
        goto out;
    }
    if (op->rc == DZ_ERR_TOOBIG) {
        dz_rctx_problem(c, "payload_too_large", "the signature is too large");
        goto out;
    }
    body = op->rc == 0 ? dz_cades_report_json(&op->rep) : NULL;
    if (!body) {
        dz_rctx_problem(c, "service_unavailable", "could not verify the signature");
        goto out;
    }
    dz_rctx_json(c, 200, body, NULL, 0);
out:
    op_free(op);
}

static void verify_go(struct dz_rctx *c);

static int64_t verify_rate(const struct dz_rctx *c)
{
    return (int64_t)c->gen->config->documents.verify_rate;
}

void dz_ep_documents_verify(struct dz_rctx *c)
{
    static const struct dz_addr_rate rate = {"verify_rate", 60000, verify_rate,
                                             "too many verification requests from this address",
                                             verify_go};

    dz_rctx_limit_address(c, &rate);
}

static void verify_go(struct dz_rctx *c)
{
    struct verify_op *op;
    const char *doc, *sig;

    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    if (dz_rctx_body_json(c, &op->in) != 0)
        goto fail; /* answered */
    doc = dz_json_str(op->in, "document", DZ_CADES_MAX_DOC / 3 * 4 + 4);
    sig = dz_json_str(op->in, "signature", DZ_CADES_MAX_SIG / 3 * 4 + 4);
    if (!doc || !sig) {
        dz_rctx_problem(c, "invalid_request",
                        "give \"document\" and \"signature\" as base64 strings");
        goto fail;
    }
    if (dz_b64_decode(doc, strlen(doc), false, &op->doc, &op->doc_len) != 0 ||
        dz_b64_decode(sig, strlen(sig), false, &op->sig, &op->sig_len) != 0) {
        dz_rctx_problem(c, "invalid_request", "document and signature must be base64");
        goto fail;
    }
    dz_documents_opts(c, &op->opts);
    if (dz_gw_blocking(c, work, done, op) != 0)
        goto fail; /* answered 503 */
    return;
fail:
    op_free(op);
}
