/*
 * auth_cardtls.c - the e-signature card login of a browser (docs/cards.md
 * "In the browser"): the portal's origin never asks for a client
 * certificate; the card listener (a listener with client_auth: required, at
 * cards.tls_origin) does, and only for this.
 *
 *   1. POST /auth/card/tls/start (portal origin): a login record keyed on
 *      the hash of a random state, holding the hash of a pre-login cookie
 *      set on the browser (as the QR login binds its browser); answers the
 *      card listener's URL with the state.
 *   2. GET /auth/card/tls/login?state=S (card listener): the state is taken
 *      (single use), the certificate of the handshake is validated exactly
 *      as POST /auth/card/tls validates it (chain, policy, revocation, key
 *      floor), then a fresh code is stored under its hash with the binding
 *      and the result, and the browser is sent back to the portal with the
 *      code in the URL's fragment (never sent to a server, nor in Referer).
 *      A refusal sends it back with the problem code instead.
 *   3. POST /auth/card/tls/exchange (portal origin): the code is taken
 *      (single use, short-lived) and counts only with the cookie that
 *      started the login: a code carried to another browser, or one pressed
 *      on a victim (login CSRF), opens nothing.  Then the session cookie.
 *
 * It never sees the card's key or PIN (the handshake's CertificateVerify
 * proved possession to OpenSSL) and keeps no code, state or cookie in the
 * clear: store keys and the binding are SHA-256 hashes.
 */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "auth/login.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "core/gwstorecall.h"
#include "core/metrics.h"
#include "core/problem.h"
#include "core/startlimit.h"
#include "state/store.h"

#include "base/compat.h"

#define START_NS "cardtls"
#define CODE_NS "cardcode"
#define STATE_BYTES 16
#define STATE_LEN 22 /* base64url of 16 bytes, no padding */
#define CODE_BYTES 32
#define CODE_LEN 43
#define MEANS "card_tls"

/* The store's record of a started login (internal, fixed layout). */
struct start_rec {
    unsigned char binding[32]; /* SHA-256 of the browser's cookie value */
};

/* The store's record behind a code: what the exchange needs to open the
 * session, decided on the card listener (internal, fixed layout). */
struct code_rec {
    unsigned char binding[32];
    char fin[8];
    char role[16];
    unsigned char prf[32];
    unsigned char cert_sha256[32];
    char revocation[16];
    char name[128]; /* the certificate's CN (dz_x509_result.name) */
};

static bool browser_cards_on(struct dz_rctx *c)
{
    if (c->gen->card_trust && c->gen->config->cards.tls_origin)
        return true;
    dz_rctx_problem(c, "not_found", "card login in the browser is not configured");
    return false;
}

/* ---------------------------------------------------------------- start */

/* A start on its way: the answer to give once the store has the record. */
struct start_op {
    char cookie[192];
    char url[512];
};

static void start_op_free(struct start_op *op)
{
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void start_stored(struct dz_rctx *c, int rc, const struct dz_buf *v, void *arg)
{
    struct start_op *op = arg;
    uint64_t ttl = c->gen->config->cards.tls_login_ttl_ms;

    (void)v;
    if (c->closed)
        ; /* nobody to answer: the record expires unused */
    else if (rc != 0)
        dz_rctx_state_unavailable(c, rc);
    else
        dz_rctx_json(
            c, 201, json_pack("{s:s, s:I}", "url", op->url, "expires_in", (json_int_t)(ttl / 1000)),
            &(struct dz_hdr){"set-cookie", op->cookie}, 1);
    start_op_free(op);
}

static void start_allowed(struct dz_rctx *c, bool ok, void *arg)
{
    const struct dz_config_cards *cc = &c->gen->config->cards;
    struct start_op *op;
    struct start_rec r;
    unsigned char rnd[STATE_BYTES];
    unsigned char bind[32];
    unsigned char key[32];
    char state[STATE_LEN + 1];
    char bind_b64[48];

    (void)arg;
    if (!ok)
        return; /* answered (429 / 503) or the client went away */
    memset(&r, 0, sizeof(r));
    op = calloc(1, sizeof(*op));
    if (!op || dz_random(rnd, sizeof(rnd)) != 0 || dz_random(bind, sizeof(bind)) != 0) {
        free(op);
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, state);
    dz_b64_encode_to(bind, sizeof(bind), true, bind_b64);
    dz_sha256(bind_b64, strlen(bind_b64), r.binding);
    dz_sha256(state, STATE_LEN, key);
    snprintf(op->cookie, sizeof(op->cookie), DZ_COOKIE_CARD "=%s" DZ_COOKIE_CARD_ATTRS "%llu",
             bind_b64, (unsigned long long)(cc->tls_login_ttl_ms / 1000));
    snprintf(op->url, sizeof(op->url), "%s/auth/card/tls/login?state=%s", cc->tls_origin, state);
    /* Off the loop for a shared store (core/gwstorecall.h). */
    if (dz_gw_store_put(c, START_NS, key, sizeof(key), &r, sizeof(r), cc->tls_login_ttl_ms,
                        DZ_STORE_NX, start_stored, op) != 0)
        start_op_free(op); /* answered 503 */
out:
    dz_secret_wipe(bind, sizeof(bind));
    dz_secret_wipe(bind_b64, sizeof(bind_b64));
}

void dz_ep_card_tls_start(struct dz_rctx *c)
{
    struct dz_start_limit lim;

    if (!browser_cards_on(c) || !dz_rctx_origin_ok(c))
        return;
    /* Counted without waiting on the loop (core/startlimit.h). */
    lim = dz_start_limit_of(c, "card_tls");
    dz_start_check(c, &lim, 1, start_allowed, NULL);
}

/* ----------------------------------------------- card listener: the login */

/* Back to the portal.  The code or the refusal travels in the fragment: the
 * portal's script reads it and the browser sends it to no server. */
static void redirect(struct dz_rctx *c, const char *frag_key, const char *frag_value)
{
    char loc[512]; /* origin (at most 300) + fragment (at most 150) */
    static const char body[] = "See the portal.\n";

    snprintf(loc, sizeof(loc), "%s/#%s=%s&ref=%s", c->gen->config->gateway.origin, frag_key,
             frag_value, c->rid);
    const struct dz_hdr h[] = {{"location", loc}, {"referrer-policy", "no-referrer"}};
    dz_rctx_respond(c, 303, "text/plain; charset=utf-8", body, sizeof(body) - 1, h, 2);
    dz_secret_wipe(loc, sizeof(loc));
}

struct refusal {
    const char *code; /* a static problem code */
};

static void refused_recorded(struct dz_rctx *c, int rc, void *arg)
{
    struct refusal *r = arg;

    if (!c->closed)
        redirect(c, "card-refused", rc == 0 ? r->code : "service_unavailable");
    free(r);
}

/* Record the refusal (record consumed, may be NULL), then send the browser
 * back to the portal with code: the portal explains it in the person's
 * language.  The status a program would have seen is in the audit line. */
static void refuse(struct dz_rctx *c, json_t *record, const char *code, const char *reason)
{
    struct refusal *r = calloc(1, sizeof(*r));

    dz_metrics_login(c->gw->metrics, MEANS, code);
    if (!record)
        record = json_pack("{s:s, s:s}", "type", "login", "means", MEANS);
    if (!r || !record) {
        free(r);
        json_decref(record);
        redirect(c, "card-refused", "service_unavailable");
        return;
    }
    r->code = code;
    if (reason)
        json_object_set_new(record, "reason", json_string(reason));
    json_object_set_new(record, "result", json_string(code));
    json_object_set_new(record, "decision", json_string("deny"));
    json_object_set_new(record, "status", json_integer(dz_problem_status(code)));
    dz_gw_audit(c, record, refused_recorded, r);
}

struct login_op {
    unsigned char binding[32];
    /* once the certificate passed: the code, until the store has it */
    char code[CODE_LEN + 1];
    char cert_hex[65];
    json_t *rec; /* the login's audit record, for a refusal */
};

static void login_op_free(struct login_op *op)
{
    if (!op)
        return;
    json_decref(op->rec);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

/* The code is stored (the browser goes back to the portal with it) or the
 * store could not keep it (a refusal, fail closed). */
static void code_stored(struct dz_rctx *c, int rc, const struct dz_buf *v, void *arg)
{
    struct login_op *op = arg;

    (void)v;
    if (c->closed)
        ; /* nobody to send back: the code expires unused */
    else if (rc != 0) {
        refuse(c, op->rec, "state_unavailable", "store");
        op->rec = NULL;
    } else {
        dz_rctx_logj(c, DZ_LOG_DEBUG, "card_tls_code",
                     json_pack("{s:s}", "certificate_sha256", op->cert_hex));
        redirect(c, "card-code", op->code);
    }
    login_op_free(op);
}

static void login_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct login_op *op = arg;
    const struct dz_config_cards *cc = &c->gen->config->cards;
    struct code_rec r;
    unsigned char rnd[CODE_BYTES];
    unsigned char key[32];
    char hex[65];
    json_t *rec;

    memset(&r, 0, sizeof(r));
    dz_hex(res->sha256, sizeof(res->sha256), hex);
    rec = json_pack("{s:s, s:s, s:s}", "type", "login", "means", MEANS, "certificate_sha256", hex);
    if (rec && res->fin[0])
        json_object_set_new(rec, "fin", json_string(res->fin));
    if (rec && res->revocation_source)
        json_object_set_new(rec, "revocation", json_string(res->revocation_source));
    if (rc != 0 || !res->valid) {
        dz_rctx_logj(c, DZ_LOG_INFO, "card_refused",
                     json_pack("{s:s, s:s}", "reason", rc != 0 ? "internal" : res->reason, "detail",
                               rc != 0 ? dz_err_str(rc) : res->detail));
        refuse(c, rec, rc != 0 ? "service_unavailable" : dz_certcheck_code(res),
               rc != 0 ? "internal" : res->reason);
        goto out;
    }
    memcpy(r.binding, op->binding, sizeof(r.binding));
    memcpy(r.fin, res->fin, sizeof(r.fin));
    snprintf(r.role, sizeof(r.role), "%s", res->role[0] ? res->role : "citizen");
    _Static_assert(sizeof(r.name) == sizeof(res->name), "the CN as the check gave it");
    memcpy(r.name, res->name, sizeof(r.name));
    /* No signature of ours on this path: the prf covers the certificate
     * and the revocation answer, as POST /auth/card/tls does. */
    dz_certcheck_prf(res, NULL, 0, r.prf);
    memcpy(r.cert_sha256, res->sha256, sizeof(r.cert_sha256));
    snprintf(r.revocation, sizeof(r.revocation), "%s",
             res->revocation_source ? res->revocation_source : "");
    if (dz_random(rnd, sizeof(rnd)) != 0) {
        refuse(c, rec, "service_unavailable", "random");
        goto out;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, op->code);
    dz_sha256(op->code, CODE_LEN, key);
    memcpy(op->cert_hex, hex, sizeof(op->cert_hex));
    op->rec = rec;
    /* Off the loop for a shared store (core/gwstorecall.h); op goes on to
     * code_stored. */
    if (dz_gw_store_put(c, CODE_NS, key, sizeof(key), &r, sizeof(r), cc->tls_code_ttl_ms,
                        DZ_STORE_NX, code_stored, op) == 0)
        op = NULL;
out:
    dz_secret_wipe(&r, sizeof(r));
    dz_secret_wipe(rnd, sizeof(rnd));
    login_op_free(op);
}

/* The state parameter: exactly ?state=<22 base64url characters>. */
static bool query_state(const char *path, char out[STATE_LEN + 1])
{
    const char *q = strchr(path, '?');
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    if (!q || strncmp(q + 1, "state=", 6) != 0)
        return false;
    q += 7;
    if (strlen(q) != STATE_LEN || strspn(q, b64url) != STATE_LEN)
        return false;
    memcpy(out, q, STATE_LEN + 1);
    return true;
}

/* The state's fate is known: spent (ours now), unknown, or the store
 * could not say.  Then the certificate of the handshake. */
static void state_taken(struct dz_rctx *c, int rc, const struct dz_buf *taken, void *arg)
{
    const struct dz_config_cards *cc = &c->gen->config->cards;
    X509 *peer;
    struct login_op *op = NULL;

    (void)arg;
    if (c->closed)
        return; /* the state is spent all the same: single use holds */
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc); /* not "unknown": the store could not say */
        return;
    }
    if (rc != 0 || taken->len != sizeof(struct start_rec)) {
        refuse(c, NULL, "card_login_invalid", "unknown_state");
        return;
    }
    peer = dz_req_peer_cert(c->req);
    if (!peer) {
        refuse(c, NULL, "certificate_required", "no_certificate");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        redirect(c, "card-refused", "service_unavailable");
        return;
    }
    memcpy(op->binding, ((const struct start_rec *)(const void *)taken->data)->binding,
           sizeof(op->binding));
    /* The handshake's chain is only offered as untrusted intermediates;
     * the check is the one POST /auth/card/tls runs. */
    if (dz_certcheck_start(c, c->gen->card_trust, peer, dz_req_peer_chain(c->req),
                           DZ_X509_PURPOSE_AUTH, cc->policy, cc->revocation, cc->fetch_timeout_ms,
                           login_checked, op) != 0)
        login_op_free(op);
}

void dz_ep_card_tls_login(struct dz_rctx *c)
{
    char state[STATE_LEN + 1];
    unsigned char key[32];

    /* No Origin check: a top-level navigation sends none, and a link to
     * here from anywhere is harmless - the state only counts with the
     * cookie of the browser that started it. */
    if (!browser_cards_on(c))
        return;
    if (!query_state(dz_req_path(c->req), state)) {
        refuse(c, NULL, "card_login_invalid", "no_state");
        return;
    }
    /* Single use, taken before anything else: a state is spent by any
     * attempt, so one start cannot be used to try several certificates.
     * The take runs off the loop for a shared store (core/gwstorecall.h). */
    dz_sha256(state, STATE_LEN, key);
    dz_gw_store_take(c, START_NS, key, sizeof(key), sizeof(struct start_rec), state_taken, NULL);
}

/* ----------------------------------------------- portal origin: exchange */

/* The code's fate is known: spent (ours now), unknown, or the store could
 * not say.  Then the binding, then the session. */
static void code_taken(struct dz_rctx *c, int rc, const struct dz_buf *taken, void *arg)
{
    struct code_rec r;
    struct dz_session s;
    char hex[65];
    json_t *rec;

    (void)arg;
    memset(&r, 0, sizeof(r));
    if (c->closed)
        return; /* the code is spent all the same: single use holds */
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    if (rc != 0 || taken->len != sizeof(r)) {
        dz_login_refuse(
            c, MEANS,
            json_pack("{s:s, s:s, s:s}", "type", "login", "means", MEANS, "reason", "unknown_code"),
            "card_login_invalid", "the code is unknown, expired or already used");
        return;
    }
    memcpy(&r, taken->data, sizeof(r));
    /* Only the browser that started the login (its pre-login cookie). */
    if (!dz_rctx_cookie_bound(c, DZ_COOKIE_CARD, r.binding)) {
        dz_login_refuse(c, MEANS,
                        json_pack("{s:s, s:s, s:s, s:s%}", "type", "login", "means", MEANS,
                                  "reason", "other_browser", "fin", r.fin,
                                  strnlen(r.fin, sizeof(r.fin))),
                        "card_login_invalid", "this card login was started in another browser");
        goto out;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, r.fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "card");
    /* The card's key answered the handshake after its PIN was entered:
     * possession and knowledge, as every card login. */
    s.amr = DZ_AMR_SC | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "%s", r.role);
    r.name[sizeof(r.name) - 1] = '\0';
    dz_session_set_name(&s, r.name);
    s.auth_time = dz_unix_ms() / 1000;
    memcpy(s.prf, r.prf, sizeof(s.prf));
    s.has_prf = true;
    dz_hex(r.cert_sha256, sizeof(r.cert_sha256), hex);
    rec = json_pack("{s:s, s:s, s:s, s:s%, s:s}", "type", "login", "means", MEANS,
                    "certificate_sha256", hex, "fin", r.fin, strnlen(r.fin, sizeof(r.fin)), "role",
                    s.role);
    if (rec && r.revocation[0])
        json_object_set_new(rec, "revocation", json_string(r.revocation));
    dz_login_complete(c, &s, MEANS, rec);
out:
    dz_secret_wipe(&r, sizeof(r));
}

void dz_ep_card_tls_exchange(struct dz_rctx *c)
{
    json_t *body = NULL;
    const char *code;
    unsigned char key[32];

    if (!browser_cards_on(c) || !dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    code = dz_json_str(body, "code", 64);
    if (!code || !code[0]) {
        dz_rctx_problem(c, "invalid_request", "code is a required string");
        goto out;
    }
    /* Taken before the binding is compared: a code shown to the wrong
     * browser is spent, never tried twice.  Off the loop for a shared store
     * (core/gwstorecall.h). */
    dz_sha256(code, strlen(code), key);
    dz_gw_store_take(c, CODE_NS, key, sizeof(key), sizeof(struct code_rec), code_taken, NULL);
out:
    json_decref(body);
}
