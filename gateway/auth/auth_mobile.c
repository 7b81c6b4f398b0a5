/*
 * auth_mobile.c - mobile-signature login (§4.5).  The gateway picks a fresh
 * random hash, asks the MSSP to have the phone sign it, shows the
 * verification code derived from it, and long-polls the MSSP on behalf of
 * the browser.  The MSSP is not trusted with the outcome: the gateway checks
 * the returned signature over its own hash with the returned certificate,
 * the certificate (mobile policy, chain, revocation) and that the
 * certificate's FIN is the FIN given.  A request completes once: the record
 * is taken from the store by whichever poll sees the end first.
 */
#include "auth/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/login.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "keys/midcode.h"
#include "keys/sigverify.h"
#include "mssp/mssp.h"
#include "state/store.h"

#include "core/startlimit.h"

#include "base/compat.h"

#define REC_NS "mob"
#define ID_BYTES 16
#define ID_LEN 22 /* base64url of 16 bytes */

/* What the store keeps about a pending request (internal, fixed layout). */
struct mob_rec {
    char fin[8];
    char phone[20];
    unsigned char hash[32];
    char mssp_id[64];
};

/* An MSSP call in flight for request c: cancelled if the client goes. */
struct mssp_call {
    struct dz_mssp_call call; /* c->op while it runs */
    struct mob_rec rec;
    char id[ID_LEN + 1];
    char code[DZ_MID_CODE_LEN + 1];
    bool holds_phone; /* release the per-phone lock when this call fails */
};

static void call_free(struct dz_rctx *c, struct mssp_call *op, bool failed)
{
    if (failed && op->holds_phone)
        dz_mssp_phone_release(c, op->rec.phone);
    free(op);
}

static void call_drop(struct dz_rctx *c, void *owner)
{
    call_free(c, owner, true);
}

/* ---------------------------------------------------------------- start */

static void started(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                    const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct mssp_call *op = dz_mssp_call_owner(c);
    /* The record outlives the MSSP's own request by 30 s, so a poll that
     * comes just after the phone answered still finds it to finish. */
    uint64_t ttl = c->gen->config->mobile.request_ttl_ms + 30000;
    json_t *j;
    const char *sid;
    char poll[64];

    if (!dz_mssp_call_done(c, &op->call, result, status)) {
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    j = json_loadb((const char *)body, len, 0, NULL);
    sid = dz_json_str(j, "session_id", sizeof(op->rec.mssp_id) - 1);
    if (!sid) {
        json_decref(j);
        dz_rctx_problem(c, "upstream_unavailable", "the mobile signature service answered badly");
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    snprintf(op->rec.mssp_id, sizeof(op->rec.mssp_id), "%s", sid);
    json_decref(j);
    if (dz_store_put(c->gw->store, REC_NS, op->id, ID_LEN, &op->rec, sizeof(op->rec), ttl,
                     DZ_STORE_NX) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    snprintf(poll, sizeof(poll), "/auth/mobile/%s", op->id);
    dz_rctx_json(
        c, 202,
        json_pack("{s:s, s:s, s:s}", "id", op->id, "verification_code", op->code, "poll", poll),
        NULL, 0);
    call_free(c, op, false);
    dz_rctx_release(c);
}

void dz_ep_mobile_start(struct dz_rctx *c)
{
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    json_t *body = NULL;
    json_t *req = NULL;
    struct mssp_call *op = NULL;
    const char *phone;
    const char *fin;
    unsigned char rnd[ID_BYTES];
    char hash_b64[64];
    char url[1100];
    char *text = NULL;

    /* Each start is a billed MSSP session: limited per address as well as
     * per phone (dz_mssp_phone_claim). */
    if (!dz_mssp_enabled(c) || !dz_rctx_origin_ok(c) || !dz_start_allowed(c, "mobile") ||
        dz_rctx_body_json(c, &body) != 0)
        goto out;
    phone = dz_json_str(body, "phone", 20);
    fin = dz_json_str(body, "fin", 64);
    if (!phone || !fin) {
        dz_rctx_problem(c, "invalid_request", "phone and fin are required strings");
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
    snprintf(op->rec.phone, sizeof(op->rec.phone), "%s", phone);
    if (!dz_mssp_phone_claim(c, phone))
        goto out;
    op->holds_phone = true;
    /* The hash is ours and random: the phone's signature is then good for
     * this one login only, and the MSSP cannot choose what gets signed. */
    if (dz_random(op->rec.hash, sizeof(op->rec.hash)) != 0 || dz_random(rnd, sizeof(rnd)) != 0 ||
        dz_mid_verification_code_str(op->rec.hash, sizeof(op->rec.hash), op->code) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, op->id);
    dz_b64_encode_to(op->rec.hash, sizeof(op->rec.hash), false, hash_b64);
    req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "relying_party", mc->relying_party,
                    "phone", op->rec.phone, "fin", op->rec.fin, "hash", hash_b64, "hash_type",
                    "SHA256", "display_text", mc->service_name, "verification_code", op->code);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    snprintf(url, sizeof(url), "%s/mid/authentication", mc->mssp_url);
    if (!text ||
        dz_mssp_call_start(c, &op->call, op, call_drop, "POST", url, text, 0, started) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        goto out;
    }
    op = NULL;
out:
    if (op)
        call_free(c, op, true);
    free(text);
    json_decref(req);
    json_decref(body);
}

/* ----------------------------------------------------------------- poll */

struct verify_op {
    struct mob_rec rec;
    unsigned char *sig;
    size_t sig_len;
    X509 *cert;
};

static void verify_free(struct verify_op *v)
{
    if (!v)
        return;
    free(v->sig);
    X509_free(v->cert);
    free(v);
}

struct fail_op {
    const char *result;
};

static void failed_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct fail_op *f = arg;

    /* Answered only after the audit line is durable.  A failed login is
     * still a 200 with state "failed": the poll itself worked, and the
     * browser's poll loop ends on that state. */
    if (!c->closed) {
        if (rc != 0)
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        else
            dz_rctx_json(c, 200, json_pack("{s:s, s:s}", "state", "failed", "result", f->result),
                         NULL, 0);
    }
    free(f);
}

/* End a request as failed: record it, answer {"state":"failed"}. */
static void mobile_failed(struct dz_rctx *c, const struct mob_rec *rec, const char *result)
{
    struct fail_op *f = malloc(sizeof(*f));
    json_t *audit = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "login", "means", "mobile",
                              "fin", rec->fin, "result", result, "decision", "deny", "status", 200);

    dz_metrics_login(c->gw->metrics, "mobile", result);
    if (!f) {
        json_decref(audit);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    f->result = result;
    dz_gw_audit(c, audit, failed_answer, f);
}

static void mobile_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct verify_op *v = arg;
    struct dz_session s;
    char hex[65];
    json_t *rec;

    if (!res->valid) {
        const char *code = dz_certcheck_code(res);
        dz_rctx_logj(c, DZ_LOG_INFO, "mobile_refused",
                     json_pack("{s:s, s:s}", "reason", res->reason, "detail", res->detail));
        mobile_failed(c, &v->rec,
                      strcmp(code, "certificate_revoked") == 0      ? "certificate_revoked"
                      : strcmp(code, "revocation_unavailable") == 0 ? "revocation_unavailable"
                                                                    : "signature_invalid");
        verify_free(v);
        return;
    }
    if (strcmp(res->fin, v->rec.fin) != 0) {
        /* Another person's certificate: the MSSP cannot log anyone in as
         * the FIN that was typed. */
        dz_rctx_logj(c, DZ_LOG_WARN, "mobile_refused",
                     json_pack("{s:s, s:s}", "reason", "fin_mismatch", "msg",
                               "the signature is good but the certificate's FIN is not the FIN "
                               "given"));
        mobile_failed(c, &v->rec, "signature_invalid");
        verify_free(v);
        return;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, res->fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "mobile");
    s.amr = DZ_AMR_MOB | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "citizen");
    s.auth_time = dz_unix_ms() / 1000;
    dz_certcheck_prf(res, v->sig, v->sig_len, s.prf);
    s.has_prf = true;
    dz_hex(res->sha256, sizeof(res->sha256), hex);
    rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "login", "means", "mobile",
                    "certificate_sha256", hex, "phone", v->rec.phone);
    verify_free(v);
    dz_login_complete_polled(c, &s, "mobile", rec);
}

static void polled(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                   const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct mssp_call *op = dz_mssp_call_owner(c);
    struct dz_buf taken;
    struct verify_op *v = NULL;
    json_t *j = NULL;
    const char *state;
    const char *res;
    const char *sig;
    const char *cert;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc;

    dz_buf_init(&taken, sizeof(struct mob_rec));
    if (!dz_mssp_call_done(c, &op->call, result, status))
        goto out;
    j = json_loadb((const char *)body, len, 0, NULL);
    state = dz_json_str(j, "state", 16);
    if (!state || strcmp(state, "COMPLETE") != 0) {
        if (!c->closed)
            dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
        goto out;
    }
    /* Complete: exactly one poll takes the record and finishes the login. */
    rc = dz_store_take(c->gw->store, REC_NS, op->id, ID_LEN, &taken);
    if (dz_store_failed(rc)) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    if (rc != 0 || taken.len != sizeof(struct mob_rec)) {
        dz_rctx_problem(c, "not_found", "this request is finished");
        goto out;
    }
    /* The request is over for the phone whatever the outcome: the
     * one-at-a-time lock is released as soon as the record is taken. */
    dz_mssp_phone_release(c, op->rec.phone);
    res = dz_json_str(j, "result", 32);
    if (!res || strcmp(res, "OK") != 0) {
        mobile_failed(c, &op->rec, dz_mssp_result_code(res));
        goto out;
    }
    v = calloc(1, sizeof(*v));
    sig = dz_json_str(j, "signature", 1024);
    cert = dz_json_str(j, "cert", 24 * 1024);
    if (!v || !sig || !cert || dz_b64_decode(sig, strlen(sig), false, &v->sig, &v->sig_len) != 0 ||
        dz_b64_decode(cert, strlen(cert), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &v->cert) != 0) {
        mobile_failed(c, &op->rec, "signature_invalid");
        goto out;
    }
    v->rec = op->rec;
    /* The phone signed our hash as is (ECDSA P-256, raw r||s). */
    if (dz_sig_verify_digest(X509_get0_pubkey(v->cert), "ES256", v->rec.hash, sizeof(v->rec.hash),
                             v->sig, v->sig_len) != 0) {
        mobile_failed(c, &op->rec, "signature_invalid");
        goto out;
    }
    /* The cheap signature check above runs first; the chain and revocation
     * check goes to the pool as it may fetch. */
    if (dz_certcheck_start(c, c->gen->mobile_trust, v->cert, NULL, DZ_X509_PURPOSE_AUTH,
                           c->gen->config->mobile.policy, c->gen->config->mobile.revocation,
                           c->gen->config->mobile.fetch_timeout_ms, mobile_checked, v) == 0)
        v = NULL;
out:
    verify_free(v);
    free(der);
    json_decref(j);
    dz_buf_cleanup(&taken);
    call_free(c, op, false);
    dz_rctx_release(c);
}

void dz_ep_mobile_poll(struct dz_rctx *c, const char *id)
{
    struct mssp_call *op;
    struct dz_buf got;
    int rc;

    if (!dz_mssp_enabled(c))
        return;
    dz_buf_init(&got, sizeof(struct mob_rec));
    rc = strlen(id) != ID_LEN ? DZ_ERR_NOTFOUND
                              : dz_store_get(c->gw->store, REC_NS, id, ID_LEN, &got);
    if (dz_store_failed(rc)) {
        dz_buf_cleanup(&got);
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    if (rc != 0 || got.len != sizeof(struct mob_rec)) {
        dz_buf_cleanup(&got);
        dz_rctx_problem(c, "not_found", "no such mobile login (it may have finished or expired)");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_buf_cleanup(&got);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    memcpy(&op->rec, got.data, sizeof(op->rec));
    dz_buf_cleanup(&got);
    memcpy(op->id, id, ID_LEN + 1);
    if (dz_mssp_call_poll(c, &op->call, op, call_drop, op->rec.mssp_id, polled) != 0) {
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        call_free(c, op, false);
    }
}
