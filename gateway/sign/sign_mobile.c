/*
 * sign_mobile.c - document signing with a mobile signature (DESIGN §4.7,
 * docs/signatures.md).  POST /sign/mobile asks the MSSP for the holder's
 * certificate, checks its FIN, builds the CAdES signed attributes over the
 * document with it (lib/pki/cades.c prepare), and has the phone sign their
 * digest through the MSSP like a login (§4.5: same verification code, same
 * per-phone rate limit and one-at-a-time lock).  GET /sign/mobile/{id}
 * long-polls; on the phone's answer the gateway checks the raw signature
 * over that digest with the certificate it committed to, assembles the CMS,
 * validates the certificate (mobile trust, chain, revocation), raises the
 * signature to level T at the TSA and verifies the result on the blocking
 * pool, and answers the signature with its validation report.  The
 * document itself is never kept: the store holds its SHA-256 and the
 * prepared (unsigned) SignedData.  The MSSP is not trusted with anything.
 * A request completes once (store take).
 */
#include "sign/sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/gwasync.h"
#include "keys/ecdsa_sig.h"
#include "keys/midcode.h"
#include "keys/sigverify.h"
#include "mssp/mssp.h"
#include "pki/cades.h"
#include "pki/certid.h"
#include "pki/tsp.h"
#include "sign/signed_body.h"
#include "state/store.h"

#include "base/compat.h"

#define SIGN_NS "mobsign"
#define ID_BYTES 16
#define ID_LEN 22                    /* base64url of 16 bytes */
#define SIGN_DOC_MAX (1024 * 1024)   /* one document, decoded */
#define SIGN_PARTIAL_MAX (48 * 1024) /* the prepared SignedData in the store */

/* The fixed head of a stored request; the prepared SignedData follows. */
struct sign_rec {
    char fin[8];
    char phone[20];
    unsigned char tbs[32]; /* SHA-256 of the signed attributes: what the phone signs */
    unsigned char doc_sha256[32];
    unsigned char cert_sha256[32]; /* the certificate the attributes name */
    char mssp_id[64];
    char lock[DZ_MSSP_LOCK_LEN + 1]; /* the phone's lock value while this request holds it */
    uint32_t partial_len;
};

/* One MSSP call in flight for c (cancelled when the client goes). */
struct sign_call {
    struct dz_mssp_call call; /* c->op while it runs */
    struct sign_rec rec;
    unsigned char *doc; /* POST: until prepared */
    size_t doc_len;
    unsigned char *partial; /* OPENSSL_malloc'd */
    char id[ID_LEN + 1];
    char code[DZ_MID_CODE_LEN + 1];
    bool holds_phone;
    struct dz_rctx *c; /* the poll's first read */
};

static void call_free(struct dz_rctx *c, struct sign_call *op, bool failed)
{
    if (!op)
        return;
    if (failed && op->holds_phone)
        dz_mssp_phone_release(c, op->rec.phone, op->rec.lock);
    free(op->doc);
    OPENSSL_free(op->partial);
    free(op);
}

static void call_drop(struct dz_rctx *c, void *owner)
{
    call_free(c, owner, true);
}

/* ---------------------------------------------------------------- start */

/* The MSSP took the request: its record is written off the loop. */
struct start_op {
    struct sign_call *op;
    struct dz_store *store;
    unsigned char *val;
    size_t val_len;
    uint64_t ttl;
    int rc;
};

static void start_work(void *arg)
{
    struct start_op *so = arg;

    /* The id is 128 random bits and the only handle a poller has: NX means
     * a collision fails the request instead of replacing someone's. */
    so->rc = dz_store_put(so->store, SIGN_NS, so->op->id, ID_LEN, so->val, so->val_len, so->ttl,
                          DZ_STORE_NX);
    /* A later start for the phone may ask the MSSP whether this ended. */
    if (so->rc == 0)
        (void)dz_mssp_phone_started_in(so->store, so->op->rec.phone, so->op->rec.lock,
                                       so->op->rec.mssp_id, so->ttl);
}

static void start_done(struct dz_rctx *c, void *arg)
{
    struct start_op *so = arg;
    struct sign_call *op = so->op;
    char poll[64];

    if (so->rc != 0) {
        if (!c->closed)
            dz_rctx_problem(c, "service_unavailable", NULL);
    } else if (!c->closed) {
        snprintf(poll, sizeof(poll), "/sign/mobile/%s", op->id);
        dz_rctx_json(
            c, 202,
            json_pack("{s:s, s:s, s:s}", "id", op->id, "verification_code", op->code, "poll", poll),
            NULL, 0);
    }
    call_free(c, op, so->rc != 0);
    free(so->val);
    free(so);
}

static void started(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                    const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct sign_call *op = dz_mssp_call_owner(c);
    struct start_op *so = NULL;
    json_t *j = NULL;
    const char *sid;

    if (!dz_mssp_call_done(c, &op->call, result, status))
        goto out;
    j = json_loadb((const char *)body, len, 0, NULL);
    sid = dz_mssp_session_id(j, sizeof(op->rec.mssp_id) - 1);
    if (!sid) {
        dz_rctx_problem(c, "upstream_unavailable", "the mobile signature service answered badly");
        goto out;
    }
    snprintf(op->rec.mssp_id, sizeof(op->rec.mssp_id), "%s", sid);
    so = calloc(1, sizeof(*so));
    if (so) {
        so->val_len = sizeof(op->rec) + op->rec.partial_len;
        so->val = malloc(so->val_len);
    }
    if (!so || !so->val) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    memcpy(so->val, &op->rec, sizeof(op->rec));
    memcpy(so->val + sizeof(op->rec), op->partial, op->rec.partial_len);
    so->op = op;
    so->store = c->gw->store;
    /* The record outlives the MSSP's own request by 30 s, so a poll that
     * comes just after the phone answered still finds it to finish. */
    so->ttl = c->gen->config->mobile.request_ttl_ms + 30000;
    if (dz_gw_state(c, start_work, start_done, so) == 0) {
        op = NULL; /* start_done's */
        so = NULL;
    }
out:
    if (so)
        free(so->val);
    free(so);
    json_decref(j);
    call_free(c, op, true);
    dz_rctx_release(c); /* the MSSP call's hold (dz_gw_state holds its own) */
}

/* The holder's certificate: check it, prepare the signature, ask the phone. */
static void got_cert(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                     const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct sign_call *op = dz_mssp_call_owner(c);
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    json_t *j = NULL;
    json_t *req = NULL;
    const char *res;
    const char *cert_b64;
    unsigned char *der = NULL;
    size_t der_len = 0;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    struct dz_certid id;
    size_t partial_len = 0;
    char hash_b64[64];
    char url[1100];
    char *text = NULL;

    if (!dz_mssp_call_done(c, &op->call, result, status))
        goto fail;
    if (c->closed)
        goto fail;
    j = json_loadb((const char *)body, len, 0, NULL);
    res = dz_json_str(j, "result", 32);
    if (res && strcmp(res, "NOT_FOUND") == 0) {
        /* The phone is unknown or its SIM is not this FIN's. */
        dz_rctx_problem(c, "not_mobile_client", NULL);
        goto fail;
    }
    cert_b64 = dz_json_str(j, "cert", 24 * 1024);
    if (!res || strcmp(res, "OK") != 0 || !cert_b64 ||
        dz_b64_decode(cert_b64, strlen(cert_b64), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &cert) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", "the mobile signature service answered badly");
        goto fail;
    }
    /* Only the FIN is checked here: the certificate is about to be named in
     * the signed attributes.  Chain and revocation are checked once the
     * phone has signed (cert_checked), when it matters and may fetch. */
    if (dz_certid_extract(cert, &id) != 0 || !id.has_fin || strcmp(id.fin, op->rec.fin) != 0) {
        /* The MSSP named another person's certificate: never sign with it. */
        dz_rctx_problem(c, "signer_mismatch",
                        "the mobile signature certificate is not the FIN's given");
        goto fail;
    }
    dz_sha256(der, der_len, op->rec.cert_sha256);
    /* The signature carries the mobile CA too: a verifier then needs only
     * the root.  The code shown to the client and on the phone comes from
     * the digest the phone signs, so matching codes tie the prompt to this
     * document. */
    if (dz_x509_trust_issuer_chain(c->gen->mobile_trust, cert, &chain) != 0 ||
        dz_cades_prepare(op->doc, op->doc_len, cert, chain, 0, &op->partial, &partial_len,
                         op->rec.tbs) != 0 ||
        partial_len > SIGN_PARTIAL_MAX ||
        dz_mid_verification_code_str(op->rec.tbs, sizeof(op->rec.tbs), op->code) != 0) {
        dz_rctx_problem(c, "service_unavailable", "could not prepare the signature");
        goto fail;
    }
    op->rec.partial_len = (uint32_t)partial_len;
    /* The document is not kept (file comment): from here on only its hash
     * and the prepared SignedData are needed. */
    free(op->doc);
    op->doc = NULL;
    dz_b64_encode_to(op->rec.tbs, sizeof(op->rec.tbs), false, hash_b64);
    req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "relying_party", mc->relying_party,
                    "phone", op->rec.phone, "fin", op->rec.fin, "hash", hash_b64, "hash_type",
                    "SHA256", "display_text", mc->service_name, "verification_code", op->code);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    snprintf(url, sizeof(url), "%s/mid/signature", mc->mssp_url);
    if (!text ||
        dz_mssp_call_start(c, &op->call, op, call_drop, "POST", url, text, 0, started) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        goto fail;
    }
    op = NULL; /* started() owns it */
fail:
    call_free(c, op, true);
    free(text);
    json_decref(req);
    json_decref(j);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    free(der);
    dz_rctx_release(c);
}

/* The phone is ours for this request: ask the MSSP for its certificate. */
static void phone_claimed(struct dz_rctx *c, bool ok, void *arg)
{
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    struct sign_call *op = arg;
    json_t *req = NULL;
    unsigned char rnd[ID_BYTES];
    char url[1100];
    char *text = NULL;

    if (!ok) {
        call_free(c, op, false); /* answered (or gone); no lock held */
        return;
    }
    op->holds_phone = true;
    if (dz_random(rnd, sizeof(rnd)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, op->id);
    req = json_pack("{s:s, s:s, s:s}", "relying_party", mc->relying_party, "phone", op->rec.phone,
                    "fin", op->rec.fin);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    snprintf(url, sizeof(url), "%s/mid/certificate", mc->mssp_url);
    if (!text ||
        dz_mssp_call_start(c, &op->call, op, call_drop, "POST", url, text, 0, got_cert) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        goto out;
    }
    op = NULL;
out:
    call_free(c, op, true);
    free(text);
    json_decref(req);
}

void dz_ep_sign_mobile_start(struct dz_rctx *c)
{
    const struct dz_config_documents *dc = &c->gen->config->documents;
    json_t *body = NULL;
    struct sign_call *op = NULL;
    const char *phone;
    const char *fin;
    const char *doc;

    if (!dz_mssp_enabled(c) || !dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    if (!dc->tsa_url || !c->gen->tsa_trust) {
        dz_rctx_problem(c, "timestamp_unavailable", "no time-stamping authority is configured");
        goto out;
    }
    phone = dz_json_str(body, "phone", 20);
    fin = dz_json_str(body, "fin", 64);
    doc = dz_json_str(body, "document", SIGN_DOC_MAX / 3 * 4 + 4);
    if (!phone || !fin || !json_is_string(json_object_get(body, "document"))) {
        dz_rctx_problem(c, "invalid_request", "phone, fin and document are required strings");
        goto out;
    }
    if (!doc) {
        dz_rctx_problem(c, "payload_too_large", "the document is larger than 1 MiB");
        goto out;
    }
    if (!dz_mssp_az_phone_valid(phone)) {
        dz_rctx_problem(c, "invalid_phone", NULL);
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    if (dz_fin_normalize(fin, strlen(fin), op->rec.fin) != 0) {
        dz_rctx_problem(c, "invalid_fin", NULL);
        goto out;
    }
    if (dz_b64_decode(doc, strlen(doc), false, &op->doc, &op->doc_len) != 0) {
        dz_rctx_problem(c, "invalid_request", "document must be base64");
        goto out;
    }
    if (op->doc_len > SIGN_DOC_MAX) {
        dz_rctx_problem(c, "payload_too_large", "the document is larger than 1 MiB");
        goto out;
    }
    dz_sha256(op->doc, op->doc_len, op->rec.doc_sha256);
    snprintf(op->rec.phone, sizeof(op->rec.phone), "%s", phone);
    dz_mssp_phone_claim(c, op->rec.phone, op->rec.lock, phone_claimed, op);
    op = NULL; /* phone_claimed's */
out:
    call_free(c, op, false);
    json_decref(body);
}

/* ----------------------------------------------------------------- poll */

/* From the phone's answer to the answer to the client. */
struct finish_op {
    struct sign_rec rec;
    unsigned char *sig_raw;
    size_t sig_raw_len;
    unsigned char *cms_b; /* level B, OPENSSL_free */
    size_t cms_b_len;
    unsigned char *cms_t; /* level T, OPENSSL_free */
    size_t cms_t_len;
    X509 *cert;
    /* pool */
    struct dz_cades_verify_opts opts;
    struct dz_cades_report rep;
    const char *tsa_url;
    const char *tsa_ca;
    uint32_t tsa_timeout_ms;
    int rc; /* 0, or the failed result below */
    const char *result;
    json_t *answer; /* the complete answer, until audited */
    char rid[32];   /* the request's id, for the pool's log lines */
};

static void finish_free(struct finish_op *f)
{
    if (!f)
        return;
    free(f->sig_raw);
    OPENSSL_free(f->cms_b);
    OPENSSL_free(f->cms_t);
    X509_free(f->cert);
    json_decref(f->answer);
    free(f);
}

static void audited(struct dz_rctx *c, int rc, void *arg)
{
    struct finish_op *f = arg;

    /* The answer goes out only once the audit line is durable; a signature
     * whose making was not recorded is not handed out. */
    if (!c->closed) {
        if (rc != 0) {
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        } else if (f->result) {
            dz_rctx_json(c, 200, json_pack("{s:s, s:s}", "state", "failed", "result", f->result),
                         NULL, 0);
        } else {
            dz_rctx_json(c, 200, f->answer, NULL, 0);
            f->answer = NULL;
        }
    }
    finish_free(f);
}

/* Record the end (audit type "sign"), then answer. f is consumed. */
static void sign_end(struct dz_rctx *c, struct finish_op *f, const char *result)
{
    char hex[65];
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "sign", "means", "mobile",
                            "fin", f->rec.fin, "result", result ? result : "complete", "decision",
                            result ? "deny" : "allow", "status", 200);

    f->result = result;
    if (rec) {
        dz_hex(f->rec.doc_sha256, sizeof(f->rec.doc_sha256), hex);
        json_object_set_new(rec, "document_sha256", json_string(hex));
        dz_hex(f->rec.cert_sha256, sizeof(f->rec.cert_sha256), hex);
        json_object_set_new(rec, "certificate_sha256", json_string(hex));
        if (f->rep.indication && !result) {
            json_object_set_new(rec, "indication", json_string(f->rep.indication));
            json_object_set_new(rec, "level", json_stringn(&f->rep.level, 1));
        }
    }
    dz_gw_audit(c, rec, audited, f);
}

/* Pool: the time-stamp (the TSA is a blocking fetch), then the report. */
static void finish_work(void *arg)
{
    struct finish_op *f = arg;
    unsigned char digest[32];
    unsigned char *tok = NULL;
    size_t tok_len = 0;
    struct dz_tsp_info info;
    struct dz_httpc_tls tls = {f->tsa_ca, NULL, NULL};
    bool https = strncmp(f->tsa_url, "https:", 6) == 0;
    char detail[160];

    f->result = "timestamp_unavailable";
    if (dz_cades_signature_digest(f->cms_b, f->cms_b_len, digest) != 0)
        return;
    if (dz_tsp_stamp(f->tsa_url, https ? &tls : NULL, https ? DZ_HTTPC_H2 : DZ_HTTPC_H2C,
                     f->tsa_timeout_ms, f->opts.tsa_trust, digest, &tok, &tok_len, &info, detail,
                     sizeof(detail)) != 0) {
        dz_logj(DZ_LOG_WARN, "tsa",
                json_pack("{s:s, s:s, s:s}", "msg", "no time-stamp for a mobile signature",
                          "detail", detail, "rid", f->rid));
        return;
    }
    f->rc = dz_cades_add_timestamp(f->cms_b, f->cms_b_len, tok, tok_len, &f->cms_t, &f->cms_t_len);
    OPENSSL_free(tok);
    if (f->rc)
        return;
    f->result = "signature_invalid";
    /* The finished, stamped signature goes through the same verifier as a
     * signed body: what we hand out must pass what a relying party checks. */
    if (dz_cades_verify_sha256(f->rec.doc_sha256, f->cms_t, f->cms_t_len, &f->opts, &f->rep) != 0)
        return;
    if (strcmp(f->rep.indication, "TOTAL_PASSED") != 0) {
        dz_logj(DZ_LOG_WARN, "sign_mobile",
                json_pack("{s:s, s:s, s:s}", "msg", "the assembled signature did not verify",
                          "sub_indication", f->rep.sub_indication ? f->rep.sub_indication : "",
                          "rid", f->rid));
        f->result = strcmp(f->rep.sub_indication ? f->rep.sub_indication : "", "REVOKED") == 0
                        ? "certificate_revoked"
                        : "signature_invalid";
        return;
    }
    f->result = NULL;
}

static void finish_done(struct dz_rctx *c, void *arg)
{
    struct finish_op *f = arg;
    json_t *report;
    char *b64 = NULL;

    if (f->result) {
        sign_end(c, f, f->result);
        return;
    }
    report = dz_cades_report_json(&f->rep);
    if (!report || dz_b64_encode(f->cms_t, f->cms_t_len, false, &b64) != 0) {
        json_decref(report);
        sign_end(c, f, "signature_invalid");
        return;
    }
    f->answer =
        json_pack("{s:s, s:s, s:o}", "state", "complete", "signature", b64, "report", report);
    free(b64);
    sign_end(c, f, f->answer ? NULL : "signature_invalid");
}

static void cert_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct finish_op *f = arg;
    const struct dz_config_documents *dc = &c->gen->config->documents;

    if (rc != 0 || !res->valid) {
        const char *code = rc != 0 ? "certificate_invalid" : dz_certcheck_code(res);
        dz_rctx_logj(c, DZ_LOG_INFO, "sign_mobile_refused",
                     json_pack("{s:s, s:s}", "reason", rc ? "error" : res->reason, "detail",
                               rc ? "" : res->detail));
        sign_end(c, f,
                 strcmp(code, "certificate_revoked") == 0      ? "certificate_revoked"
                 : strcmp(code, "revocation_unavailable") == 0 ? "revocation_unavailable"
                                                               : "signature_invalid");
        return;
    }
    /* Checked again on the validated certificate: the FIN the request
     * named is the only person this signature may be made for. */
    if (strcmp(res->fin, f->rec.fin) != 0) {
        sign_end(c, f, "signature_invalid");
        return;
    }
    if (!dc->tsa_url || !c->gen->tsa_trust) {
        sign_end(c, f, "timestamp_unavailable");
        return;
    }
    dz_documents_opts(c, &f->opts);
    f->tsa_url = dc->tsa_url;
    f->tsa_ca = dc->tsa_ca;
    f->tsa_timeout_ms = (uint32_t)dc->tsa_timeout_ms;
    snprintf(f->rid, sizeof(f->rid), "%s", c->rid);
    if (dz_gw_blocking(c, finish_work, finish_done, f) != 0)
        finish_free(f); /* answered 503 */
}

/* The phone answered: the record is taken off the loop. */
struct take_op {
    struct sign_call *op;
    struct dz_store *store;
    json_t *j; /* the MSSP's answer */
    struct dz_buf taken;
    int rc;
};

static void take_work(void *arg)
{
    struct take_op *t = arg;

    /* Complete: exactly one poll takes the record and finishes.  The
     * request is over for the phone whatever the outcome: the one-at-a-time
     * lock is released as soon as the record is taken. */
    t->rc = dz_store_take(t->store, SIGN_NS, t->op->id, ID_LEN, &t->taken);
    if (t->rc == 0 && t->taken.len >= sizeof(struct sign_rec)) {
        const struct sign_rec *rec = (const struct sign_rec *)(const void *)t->taken.data;
        char phone[sizeof(rec->phone) + 1];

        memcpy(phone, rec->phone, sizeof(rec->phone));
        phone[sizeof(rec->phone)] = '\0';
        dz_mssp_phone_release_in(t->store, phone, rec->lock);
    }
}

static void take_done(struct dz_rctx *c, void *arg)
{
    struct take_op *t = arg;
    struct finish_op *f = NULL;
    const char *res;
    const char *sig;
    const char *cert;
    unsigned char *der = NULL;
    unsigned char sig_der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 0, sig_der_len = 0;
    unsigned char cert_hash[32];

    if (dz_store_failed(t->rc)) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, t->rc);
        goto out;
    }
    if (t->rc != 0 || t->taken.len < sizeof(struct sign_rec)) {
        dz_rctx_problem(c, "not_found", "this request is finished");
        goto out;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    memcpy(&f->rec, t->taken.data, sizeof(f->rec));
    /* partial_len is read from the store: it must agree with what was
     * actually stored before it is used as a length. */
    if (t->taken.len != sizeof(struct sign_rec) + f->rec.partial_len) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    res = dz_json_str(t->j, "result", 32);
    if (!res || strcmp(res, "OK") != 0) {
        sign_end(c, f, dz_mssp_result_code(res));
        f = NULL;
        goto out;
    }
    sig = dz_json_str(t->j, "signature", 1024);
    cert = dz_json_str(t->j, "cert", 24 * 1024);
    if (!sig || !cert ||
        dz_b64_decode(sig, strlen(sig), false, &f->sig_raw, &f->sig_raw_len) != 0 ||
        dz_b64_decode(cert, strlen(cert), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &f->cert) != 0) {
        sign_end(c, f, "signature_invalid");
        f = NULL;
        goto out;
    }
    /* The phone must have signed with the certificate the signed
     * attributes name, over their digest as is (ECDSA P-256, raw r||s). */
    dz_sha256(der, der_len, cert_hash);
    if (CRYPTO_memcmp(cert_hash, f->rec.cert_sha256, sizeof(cert_hash)) != 0 ||
        dz_sig_verify_digest(X509_get0_pubkey(f->cert), "ES256", f->rec.tbs, sizeof(f->rec.tbs),
                             f->sig_raw, f->sig_raw_len) != 0 ||
        dz_ecdsa_sig_raw_to_der(f->sig_raw, f->sig_raw_len, 32, sig_der, sizeof(sig_der),
                                &sig_der_len) != 0 ||
        dz_cades_finish((const unsigned char *)t->taken.data + sizeof(struct sign_rec),
                        f->rec.partial_len, sig_der, sig_der_len, &f->cms_b, &f->cms_b_len) != 0) {
        sign_end(c, f, "signature_invalid");
        f = NULL;
        goto out;
    }
    /* Cheap local checks (hash, signature, assembly) above run first; the
     * chain and revocation check goes to the pool as it may fetch. */
    if (dz_certcheck_start(c, c->gen->mobile_trust, f->cert, NULL, DZ_X509_PURPOSE_SIGN,
                           c->gen->config->mobile.policy, c->gen->config->mobile.revocation,
                           c->gen->config->mobile.fetch_timeout_ms, cert_checked, f) == 0)
        f = NULL;
out:
    finish_free(f);
    free(der);
    json_decref(t->j);
    dz_buf_cleanup(&t->taken);
    call_free(c, t->op, false);
    free(t);
}

static void polled(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                   const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct sign_call *op = dz_mssp_call_owner(c);
    struct take_op *t = NULL;
    json_t *j = NULL;
    const char *state;

    if (!dz_mssp_call_done(c, &op->call, result, status))
        goto out;
    j = json_loadb((const char *)body, len, 0, NULL);
    state = dz_json_str(j, "state", 16);
    /* Anything but COMPLETE is "pending" to the client: the MSSP's own
     * states are not part of our API, and the next poll asks again. */
    if (!state || strcmp(state, "COMPLETE") != 0) {
        if (!c->closed)
            dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    t->op = op;
    t->store = c->gw->store;
    t->j = j;
    dz_buf_init(&t->taken, sizeof(struct sign_rec) + SIGN_PARTIAL_MAX);
    if (dz_gw_state(c, take_work, take_done, t) == 0) {
        op = NULL; /* take_done's */
        j = NULL;
    } else {
        dz_buf_cleanup(&t->taken);
        free(t); /* answered 503 */
    }
out:
    json_decref(j);
    call_free(c, op, false);
    dz_rctx_release(c); /* the MSSP call's hold (dz_gw_state holds its own) */
}

/* The poll's first read: the request's record. */
static void poll_read(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct sign_call *op = arg;
    struct dz_rctx *c = op->c;

    if (c->closed)
        goto out;
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    if (rc != 0 || len < sizeof(struct sign_rec)) {
        dz_rctx_problem(c, "not_found",
                        "no such signing request (it may have finished or expired)");
        goto out;
    }
    memcpy(&op->rec, data, sizeof(op->rec));
    if (dz_mssp_call_poll(c, &op->call, op, call_drop, op->rec.mssp_id, polled) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        goto out;
    }
    op = NULL; /* polled's */
out:
    call_free(c, op, false);
    dz_rctx_release(c); /* the read's hold */
}

void dz_ep_sign_mobile_poll(struct dz_rctx *c, const char *id)
{
    struct sign_call *op;

    if (!dz_mssp_enabled(c))
        return;
    if (strlen(id) != ID_LEN) {
        dz_rctx_problem(c, "not_found",
                        "no such signing request (it may have finished or expired)");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->c = c;
    memcpy(op->id, id, ID_LEN + 1);
    dz_rctx_hold(c);
    dz_store_get_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), SIGN_NS, op->id, ID_LEN,
                       poll_read, op);
}
