/*
 * auth_card.c - e-signature card login (§4.4): a challenge signed by the
 * card's authentication key (darvaza-card's answer or a Web eID
 * authentication token, card_answer.h), or the card certificate presented
 * in the TLS handshake.  The gateway never sees the card PIN or key: it checks a
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
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "auth/card_answer.h"
#include "auth/login.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/gwasync.h"
#include "keys/sigverify.h"
#include "state/store.h"

#include "core/startlimit.h"

#include "base/compat.h"

#define NONCE_NS "cardnonce"
#define NONCE_BYTES 32

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
    int rc;

    if (!cards_on(c) || !dz_rctx_origin_ok(c) || !dz_start_allowed(c, "card_challenge"))
        return;
    if (dz_random(nonce, sizeof(nonce)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_b64_encode_to(nonce, sizeof(nonce), false, b64);
    /* Stored under the hash of the nonce text, like session tokens: the
     * store keys are fixed-size and a dump of them cannot be replayed. */
    dz_sha256(b64, strlen(b64), key);
    rc = dz_store_put(c->gw->store, NONCE_NS, key, sizeof(key), "1", 1, ttl, DZ_STORE_NX);
    if (rc != 0) {
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    dz_rctx_json(c, 200,
                 json_pack("{s:s, s:I}", "nonce", b64, "expires_in", (json_int_t)(ttl / 1000)),
                 NULL, 0);
}

/* ---------------------------------------------------- certificate check */

struct card_op {
    X509 *leaf;
    unsigned char *sig;
    size_t sig_len;
    const char *means;     /* "card" or "card_tls" */
    char token_format[16]; /* a Web eID token's format, else "" */
    char app_version[128]; /* and the app that made it (informative) */
};

static void card_op_free(struct card_op *op)
{
    if (!op)
        return;
    X509_free(op->leaf);
    free(op->sig);
    free(op);
}

static void card_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct card_op *op = arg;
    struct dz_session s;
    char hex[65];
    json_t *rec;

    dz_hex(res->sha256, sizeof(res->sha256), hex);
    rec = json_pack("{s:s, s:s, s:s}", "type", "login", "means", op->means, "certificate_sha256",
                    hex);
    if (rec && res->fin[0])
        json_object_set_new(rec, "fin", json_string(res->fin));
    if (rec && res->revocation_source)
        json_object_set_new(rec, "revocation", json_string(res->revocation_source));
    if (rec && op->token_format[0])
        json_object_set_new(rec, "token_format", json_string(op->token_format));
    if (rec && op->app_version[0])
        json_object_set_new(rec, "app_version", json_string(op->app_version));
    if (!res->valid) {
        if (rec)
            json_object_set_new(rec, "reason", json_string(res->reason));
        dz_rctx_logj(c, DZ_LOG_INFO, "card_refused",
                     json_pack("{s:s, s:s}", "reason", res->reason, "detail", res->detail));
        dz_login_refuse(c, op->means, rec, dz_certcheck_code(res), res->reason);
        card_op_free(op);
        return;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, res->fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "card");
    /* The card signed with its key (possession) after its PIN was entered
     * (knowledge): two factors, hence acr high. */
    s.amr = DZ_AMR_SC | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "%s", res->role[0] ? res->role : "citizen");
    /* The holder's name as the certificate states it: what the people whose
     * records this session reaches read in their access lists. */
    dz_session_set_name(&s, res->name);
    s.auth_time = dz_unix_ms() / 1000;
    /* prf: the login evidence the audit line names - certificate, the
     * challenge signature, the OCSP answer. */
    dz_certcheck_prf(res, op->sig, op->sig_len, s.prf);
    s.has_prf = true;
    if (rec)
        json_object_set_new(rec, "role", json_string(s.role));
    card_op_free(op);
    dz_login_complete(c, &s, "card", rec);
}

static void start_validation(struct dz_rctx *c, struct card_op *op, STACK_OF(X509) * chain)
{
    const struct dz_config_cards *cc = &c->gen->config->cards;

    if (dz_certcheck_start(c, c->gen->card_trust, op->leaf, chain, DZ_X509_PURPOSE_AUTH, cc->policy,
                           cc->revocation, cc->fetch_timeout_ms, card_checked, op) != 0)
        card_op_free(op);
}

/* ------------------------------------------------------- challenge path */

void dz_ep_card(struct dz_rctx *c)
{
    json_t *body = NULL;
    struct card_op *op = NULL;
    struct dz_card_answer ans;
    const char *why = NULL;
    unsigned char nonce_key[32];
    unsigned char msg[DZ_CARD_ANSWER_MSG_MAX];
    size_t msg_len = 0;
    struct dz_buf taken;
    EVP_PKEY *pub;
    int rc;

    memset(&ans, 0, sizeof(ans));
    dz_buf_init(&taken, 16);
    if (!cards_on(c) || !dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    /* Ours or a Web eID authentication token (card_answer.h). */
    rc = dz_card_answer_parse(body, &ans, &why);
    if (rc != 0) {
        dz_rctx_problem(c, rc == DZ_ERR_INVAL ? "invalid_request" : "service_unavailable",
                        rc == DZ_ERR_INVAL ? why : NULL);
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    op->means = "card";
    if (ans.format == DZ_CARD_ANSWER_WEBEID) {
        snprintf(op->token_format, sizeof(op->token_format), "%s", ans.token_format);
        snprintf(op->app_version, sizeof(op->app_version), "%s", ans.app_version);
    }
    if (dz_x509_from_der(ans.cert_der, ans.cert_len, &op->leaf) != 0) {
        dz_rctx_problem(c, "invalid_request", "certificate is not a DER X.509 certificate");
        goto out;
    }
    op->sig = ans.sig;
    op->sig_len = ans.sig_len;
    ans.sig = NULL;
    /* Single use: whoever takes the nonce first owns it; a replay, an
     * expired or an invented nonce finds nothing. */
    dz_sha256(ans.nonce, strlen(ans.nonce), nonce_key);
    /* Taken before the signature is checked: a nonce is spent by any
     * attempt, so one challenge cannot be used to try many signatures. */
    rc = dz_store_take(c->gw->store, NONCE_NS, nonce_key, sizeof(nonce_key), &taken);
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    if (rc != 0) {
        dz_login_refuse(c, "card",
                        json_pack("{s:s, s:s, s:s}", "type", "login", "means", "card", "reason",
                                  "invalid_nonce"),
                        "invalid_nonce", NULL);
        goto out;
    }
    /* Web eID: the card signs hash(origin) || hash(nonce), so a signature
     * collected by a look-alike site (another origin) is useless here. */
    pub = X509_get0_pubkey(op->leaf);
    rc = dz_card_answer_message(&ans, c->gen->config->gateway.origin, msg, &msg_len);
    if (rc == 0)
        rc = dz_sig_verify(pub, ans.algorithm, msg, msg_len, op->sig, op->sig_len);
    if (rc != 0) {
        dz_login_refuse(c, "card",
                        json_pack("{s:s, s:s, s:s}", "type", "login", "means", "card", "reason",
                                  rc == DZ_ERR_INVAL ? "bad_algorithm" : "bad_signature"),
                        "bad_signature",
                        rc == DZ_ERR_INVAL ? "algorithm does not fit the key" : NULL);
        goto out;
    }
    start_validation(c, op, NULL);
    op = NULL;
out:
    dz_buf_cleanup(&taken);
    dz_card_answer_cleanup(&ans);
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
    /* No nonce on this path: the TLS handshake's CertificateVerify already
     * proved the client holds the card key for this very connection.  The
     * handshake's chain is only offered as untrusted intermediates. */
    X509_up_ref(peer);
    op->leaf = peer;
    start_validation(c, op, chain);
}
