/*
 * auth_card.c - e-signature card login (§4.4): a challenge signed by the
 * card's authentication key, or the card certificate presented in the TLS
 * handshake.  The gateway never sees the card PIN or key: it checks a
 * signature and a certificate.
 *
 * Order of checks, cheapest and most final first: single-use nonce (taken
 * from the store, so a replay finds nothing), signature over
 * SHA-256(origin) || SHA-256(nonce) with the certificate's key (a signature
 * made for another origin fails here), then the certificate on the blocking
 * pool: chain to the configured e-signature CAs, validity, key usage for
 * authentication, the card policy (a mobile certificate never passes),
 * revocation by OCSP then CRL, fail closed, the FIN.  Only then a session.
 */
#include "endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "gwasync.h"
#include "log.h"
#include "login.h"
#include "secret.h"
#include "sigverify.h"
#include "store.h"
#include "x509check.h"

#include "compat.h"

#define NONCE_NS "cardnonce"
#define NONCE_BYTES 32
#define MAX_CERT_B64 ((DZ_X509_MAX_CERT_DER / 3 + 1) * 4)
#define MAX_SIG_B64 2048

static bool cards_on(struct dz_rctx *c)
{
    if (c->gen->card_trust)
        return true;
    dz_rctx_problem(c, "not_found", "card login is not configured");
    return false;
}

void dz_ep_card_challenge(struct dz_rctx *c)
{
    unsigned char nonce[NONCE_BYTES];
    char b64[64];
    unsigned char key[32];
    uint64_t ttl = c->gen->config->cards.challenge_ttl_ms;

    if (!cards_on(c) || !dz_rctx_origin_ok(c))
        return;
    if (dz_random(nonce, sizeof(nonce)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_b64_encode_to(nonce, sizeof(nonce), false, b64);
    dz_sha256(b64, strlen(b64), key);
    if (dz_store_put(c->gw->store, NONCE_NS, key, sizeof(key), "1", 1, ttl, DZ_STORE_NX) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_rctx_json(c, 200, json_pack("{s:s, s:I}", "nonce", b64, "expires_in", (json_int_t)(ttl / 1000)),
                 NULL, 0);
}

/* ---------------------------------------------------- certificate check */

struct card_op {
    X509 *leaf;
    STACK_OF(X509) *chain;     /* untrusted intermediates from TLS, or NULL */
    unsigned char *sig;
    size_t sig_len;
    const char *means;         /* "card" or "card_tls" */
    struct dz_x509_opts opts;
    const char *policies[1];
    struct dz_x509_result res;
    int rc;
    const struct dz_x509_trust *trust;
};

static void card_op_free(struct card_op *op)
{
    if (!op)
        return;
    X509_free(op->leaf);
    sk_X509_pop_free(op->chain, X509_free);
    free(op->sig);
    free(op);
}

static void card_validate(void *arg)
{
    struct card_op *op = arg;

    op->rc = dz_x509_validate(op->trust, op->leaf, op->chain, &op->opts, &op->res);
}

static json_t *card_record(struct card_op *op)
{
    char hex[65];
    json_t *rec;

    dz_hex(op->res.sha256, sizeof(op->res.sha256), hex);
    rec = json_pack("{s:s, s:s, s:s}", "type", "login", "means", op->means, "certificate_sha256",
                    hex);
    if (rec && op->res.fin[0])
        json_object_set_new(rec, "fin", json_string(op->res.fin));
    if (rec && op->res.revocation_source)
        json_object_set_new(rec, "revocation", json_string(op->res.revocation_source));
    return rec;
}

static void card_validated(struct dz_rctx *c, void *arg)
{
    struct card_op *op = arg;
    json_t *rec = card_record(op);
    struct dz_session s;
    unsigned char evidence[32 + 512 + 32];
    size_t ev_len = 0;

    if (op->rc != 0 || !op->res.valid) {
        const char *reason = op->rc != 0 ? "internal_error" : op->res.reason;
        const char *code = "certificate_invalid";
        if (strcmp(reason, "revoked") == 0)
            code = "certificate_revoked";
        else if (strcmp(reason, "revocation_unknown") == 0)
            code = "revocation_unavailable";
        if (rec)
            json_object_set_new(rec, "reason", json_string(reason));
        dz_log(DZ_LOG_INFO, "card_refused", "%s: %s", reason, op->res.detail);
        dz_login_refuse(c, op->means, rec, code, reason);
        card_op_free(op);
        return;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, op->res.fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "card");
    s.amr = DZ_AMR_SC | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "%s", op->res.role[0] ? op->res.role : "citizen");
    s.auth_time = dz_unix_ms() / 1000;
    /* prf: the login evidence the audit log names - certificate, signature
     * (challenge path), OCSP answer. */
    memcpy(evidence, op->res.sha256, 32);
    ev_len = 32;
    if (op->sig && op->sig_len <= 512) {
        memcpy(evidence + ev_len, op->sig, op->sig_len);
        ev_len += op->sig_len;
    }
    if (op->res.has_ocsp) {
        memcpy(evidence + ev_len, op->res.ocsp_sha256, 32);
        ev_len += 32;
    }
    dz_sha256(evidence, ev_len, s.prf);
    s.has_prf = true;
    if (rec)
        json_object_set_new(rec, "role", json_string(s.role));
    card_op_free(op);
    dz_login_complete(c, &s, "card", rec);
}

static void start_validation(struct dz_rctx *c, struct card_op *op)
{
    const struct dz_config_cards *cc = &c->gen->config->cards;

    op->trust = c->gen->card_trust;
    op->policies[0] = cc->policy;
    op->opts.purpose = DZ_X509_PURPOSE_AUTH;
    op->opts.policies = op->policies;
    op->opts.npolicies = 1;
    op->opts.revocation = cc->revocation == DZ_CONFIG_REV_NONE  ? DZ_X509_REV_NONE
                          : cc->revocation == DZ_CONFIG_REV_CRL ? DZ_X509_REV_CRL_ONLY
                                                                : DZ_X509_REV_OCSP_CRL;
    op->opts.fetch_timeout_ms = (uint32_t)cc->fetch_timeout_ms;
    op->opts.ocsp_cache = c->gw->ocsp_cache;
    op->opts.require_fin = true;
    if (dz_gw_blocking(c, card_validate, card_validated, op) != 0)
        card_op_free(op);
}

/* ------------------------------------------------------- challenge path */

static int decode_field(struct dz_rctx *c, const json_t *body, const char *name, size_t max,
                        unsigned char **out, size_t *out_len)
{
    const char *v = dz_json_str(body, name, max);
    char detail[96];

    if (!v || dz_b64_decode(v, strlen(v), false, out, out_len) != 0 || *out_len == 0) {
        snprintf(detail, sizeof(detail), "%s must be base64", name);
        dz_rctx_problem(c, "invalid_request", detail);
        return DZ_ERR_INVAL;
    }
    return 0;
}

void dz_ep_card(struct dz_rctx *c)
{
    json_t *body = NULL;
    struct card_op *op = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    unsigned char nonce_key[32];
    unsigned char msg[64];
    const char *nonce;
    const char *alg;
    struct dz_buf taken;
    EVP_PKEY *pub;
    int rc;

    dz_buf_init(&taken, 16);
    if (!cards_on(c) || !dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    nonce = dz_json_str(body, "nonce", 64);
    alg = dz_json_str(body, "algorithm", 8);
    if (!nonce || !alg) {
        dz_rctx_problem(c, "invalid_request", "nonce and algorithm are required strings");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    op->means = "card";
    if (decode_field(c, body, "certificate", MAX_CERT_B64, &der, &der_len) != 0 ||
        decode_field(c, body, "signature", MAX_SIG_B64, &op->sig, &op->sig_len) != 0)
        goto out;
    if (dz_x509_from_der(der, der_len, &op->leaf) != 0) {
        dz_rctx_problem(c, "invalid_request", "certificate is not a DER X.509 certificate");
        goto out;
    }
    /* Single use: whoever takes the nonce first owns it; a replay, an
     * expired or an invented nonce finds nothing. */
    dz_sha256(nonce, strlen(nonce), nonce_key);
    if (dz_store_take(c->gw->store, NONCE_NS, nonce_key, sizeof(nonce_key), &taken) != 0) {
        dz_login_refuse(c, "card",
                        json_pack("{s:s, s:s, s:s}", "type", "login", "means", "card", "reason",
                                  "invalid_nonce"),
                        "invalid_nonce", NULL);
        goto out;
    }
    /* Web eID: the card signs hash(origin) || hash(nonce), so a signature
     * collected by a look-alike site (another origin) is useless here. */
    dz_sha256(c->gen->config->gateway.origin, strlen(c->gen->config->gateway.origin), msg);
    dz_sha256(nonce, strlen(nonce), msg + 32);
    pub = X509_get0_pubkey(op->leaf);
    rc = dz_sig_verify(pub, alg, msg, sizeof(msg), op->sig, op->sig_len);
    if (rc != 0) {
        dz_login_refuse(c, "card",
                        json_pack("{s:s, s:s, s:s}", "type", "login", "means", "card", "reason",
                                  rc == DZ_ERR_INVAL ? "bad_algorithm" : "bad_signature"),
                        "bad_signature",
                        rc == DZ_ERR_INVAL ? "algorithm does not fit the key" : NULL);
        goto out;
    }
    start_validation(c, op);
    op = NULL;
out:
    dz_buf_cleanup(&taken);
    free(der);
    card_op_free(op);
    json_decref(body);
}

/* ------------------------------------------------------------- TLS path */

void dz_ep_card_tls(struct dz_rctx *c)
{
    X509 *peer = dz_req_peer_cert(c->req);
    STACK_OF(X509) *chain = dz_req_peer_chain(c->req);
    struct card_op *op;

    if (!cards_on(c) || !dz_rctx_origin_ok(c))
        return;
    if (!peer) {
        dz_rctx_problem(c, "certificate_required",
                        "present the card certificate in the TLS handshake");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->means = "card_tls";
    X509_up_ref(peer);
    op->leaf = peer;
    if (chain) {
        /* The peer chain starts with the leaf on a server: keep the rest as
         * untrusted intermediates (bounded). */
        op->chain = sk_X509_new_null();
        for (int i = 0; op->chain && i < sk_X509_num(chain) && i < DZ_X509_MAX_UNTRUSTED; i++) {
            X509 *x = sk_X509_value(chain, i);
            if (X509_cmp(x, peer) == 0)
                continue;
            X509_up_ref(x);
            if (!sk_X509_push(op->chain, x))
                X509_free(x);
        }
    }
    start_validation(c, op);
}
