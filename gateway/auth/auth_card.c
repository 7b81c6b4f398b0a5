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
#include "core/gwstorecall.h"
#include "keys/sigverify.h"
#include "pki/x509cache.h"
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

/* A challenge on its way: the nonce's text, until the store has it. */
struct challenge {
    char b64[64];
};

static void challenge_stored(struct dz_rctx *c, int rc, const struct dz_buf *v, void *arg)
{
    struct challenge *ch = arg;
    uint64_t ttl = c->gen->config->cards.challenge_ttl_ms;

    (void)v;
    if (c->closed)
        ; /* nobody to answer: the nonce expires unused */
    else if (rc != 0)
        dz_rctx_state_unavailable(c, rc);
    else
        dz_rctx_json(
            c, 200,
            json_pack("{s:s, s:I}", "nonce", ch->b64, "expires_in", (json_int_t)(ttl / 1000)), NULL,
            0);
    free(ch);
}

static void challenge_allowed(struct dz_rctx *c, bool ok, void *arg)
{
    unsigned char nonce[NONCE_BYTES];
    unsigned char key[32];
    struct challenge *ch;

    (void)arg;
    if (!ok)
        return; /* answered (429 / 503) or the client went away */
    ch = calloc(1, sizeof(*ch));
    if (!ch || dz_random(nonce, sizeof(nonce)) != 0) {
        free(ch);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_b64_encode_to(nonce, sizeof(nonce), false, ch->b64);
    /* Stored under the hash of the nonce text, like session tokens: the
     * store keys are fixed-size and a dump of them cannot be replayed. */
    dz_sha256(ch->b64, strlen(ch->b64), key);
    /* Off the loop for a shared store (core/gwstorecall.h). */
    if (dz_gw_store_put(c, NONCE_NS, key, sizeof(key), "1", 1,
                        c->gen->config->cards.challenge_ttl_ms, DZ_STORE_NX, challenge_stored,
                        ch) != 0)
        free(ch); /* answered 503 */
}

void dz_ep_card_challenge(struct dz_rctx *c)
{
    struct dz_start_limit lim;

    if (!cards_on(c) || !dz_rctx_origin_ok(c))
        return;
    /* Counted without waiting on the loop (core/startlimit.h). */
    lim = dz_start_limit_of(c, "card_challenge");
    dz_start_check(c, &lim, 1, challenge_allowed, NULL);
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

/* A challenge answer while its nonce is being taken.  ans.nonce points
 * into body, so the body lives as long as the answer. */
struct answer_op {
    json_t *body;
    struct dz_card_answer ans;
    struct card_op *op;
};

static void answer_op_free(struct answer_op *a)
{
    if (!a)
        return;
    dz_card_answer_cleanup(&a->ans);
    card_op_free(a->op);
    json_decref(a->body);
    free(a);
}

/* The nonce's fate is known: spent (ours now), unknown, or the store could
 * not say.  Then the signature, then the certificate. */
static void nonce_taken(struct dz_rctx *c, int rc, const struct dz_buf *v, void *arg)
{
    struct answer_op *a = arg;
    struct card_op *op = a->op;
    unsigned char msg[DZ_CARD_ANSWER_MSG_MAX];
    size_t msg_len = 0;
    EVP_PKEY *pub;

    (void)v;
    if (c->closed)
        goto out; /* the nonce is spent all the same: single use holds */
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
    rc = dz_card_answer_message(&a->ans, c->gen->config->gateway.origin, msg, &msg_len);
    if (rc == 0)
        rc = dz_sig_verify(pub, a->ans.algorithm, msg, msg_len, op->sig, op->sig_len);
    if (rc != 0) {
        dz_login_refuse(c, "card",
                        json_pack("{s:s, s:s, s:s}", "type", "login", "means", "card", "reason",
                                  rc == DZ_ERR_INVAL ? "bad_algorithm" : "bad_signature"),
                        "bad_signature",
                        rc == DZ_ERR_INVAL ? "algorithm does not fit the key" : NULL);
        goto out;
    }
    a->op = NULL;
    start_validation(c, op, NULL);
out:
    answer_op_free(a);
}

void dz_ep_card(struct dz_rctx *c)
{
    struct answer_op *a;
    struct card_op *op;
    const char *why = NULL;
    unsigned char nonce_key[32];
    int rc;

    if (!cards_on(c) || !dz_rctx_origin_ok(c))
        return;
    a = calloc(1, sizeof(*a));
    if (!a) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    if (dz_rctx_body_json(c, &a->body) != 0)
        goto out;
    /* Ours or a Web eID authentication token (card_answer.h). */
    rc = dz_card_answer_parse(a->body, &a->ans, &why);
    if (rc != 0) {
        dz_rctx_problem(c, rc == DZ_ERR_INVAL ? "invalid_request" : "service_unavailable",
                        rc == DZ_ERR_INVAL ? why : NULL);
        goto out;
    }
    op = a->op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    op->means = "card";
    if (a->ans.format == DZ_CARD_ANSWER_WEBEID) {
        snprintf(op->token_format, sizeof(op->token_format), "%s", a->ans.token_format);
        snprintf(op->app_version, sizeof(op->app_version), "%s", a->ans.app_version);
    }
    /* The same card comes back with the same certificate: its parse is
     * kept (pki/x509cache.h); every check still runs on it. */
    if (dz_x509_from_der_cached(a->ans.cert_der, a->ans.cert_len, &op->leaf) != 0) {
        dz_rctx_problem(c, "invalid_request", "certificate is not a DER X.509 certificate");
        goto out;
    }
    op->sig = a->ans.sig;
    op->sig_len = a->ans.sig_len;
    a->ans.sig = NULL;
    /* Single use: whoever takes the nonce first owns it; a replay, an
     * expired or an invented nonce finds nothing.  Taken before the
     * signature is checked: a nonce is spent by any attempt, so one
     * challenge cannot be used to try many signatures.  The take runs off
     * the loop for a shared store (core/gwstorecall.h). */
    dz_sha256(a->ans.nonce, strlen(a->ans.nonce), nonce_key);
    if (dz_gw_store_take(c, NONCE_NS, nonce_key, sizeof(nonce_key), 16, nonce_taken, a) != 0)
        goto out; /* answered 503 */
    return;
out:
    answer_op_free(a);
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
