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

void dz_ep_card_tls_start(struct dz_rctx *c)
{
    const struct dz_config_cards *cc = &c->gen->config->cards;
    struct start_rec r;
    unsigned char rnd[STATE_BYTES];
    unsigned char bind[32];
    unsigned char key[32];
    char state[STATE_LEN + 1];
    char bind_b64[48];
    char cookie[192];
    char url[512];
    int rc;

    if (!browser_cards_on(c) || !dz_rctx_origin_ok(c) || !dz_start_allowed(c, "card_tls"))
        return;
    memset(&r, 0, sizeof(r));
    if (dz_random(rnd, sizeof(rnd)) != 0 || dz_random(bind, sizeof(bind)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, state);
    dz_b64_encode_to(bind, sizeof(bind), true, bind_b64);
    dz_sha256(bind_b64, strlen(bind_b64), r.binding);
    dz_sha256(state, STATE_LEN, key);
    rc = dz_store_put(c->gw->store, START_NS, key, sizeof(key), &r, sizeof(r), cc->tls_login_ttl_ms,
                      DZ_STORE_NX);
    if (rc != 0) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    snprintf(cookie, sizeof(cookie), DZ_COOKIE_CARD "=%s" DZ_COOKIE_CARD_ATTRS "%llu", bind_b64,
             (unsigned long long)(cc->tls_login_ttl_ms / 1000));
    snprintf(url, sizeof(url), "%s/auth/card/tls/login?state=%s", cc->tls_origin, state);
    dz_rctx_json(c, 201,
                 json_pack("{s:s, s:I}", "url", url, "expires_in",
                           (json_int_t)(cc->tls_login_ttl_ms / 1000)),
                 &(struct dz_hdr){"set-cookie", cookie}, 1);
out:
    dz_secret_wipe(bind, sizeof(bind));
    dz_secret_wipe(bind_b64, sizeof(bind_b64));
    dz_secret_wipe(cookie, sizeof(cookie));
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
};

static void login_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct login_op *op = arg;
    const struct dz_config_cards *cc = &c->gen->config->cards;
    struct code_rec r;
    unsigned char rnd[CODE_BYTES];
    unsigned char key[32];
    char code[CODE_LEN + 1];
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
    dz_b64_encode_to(rnd, sizeof(rnd), true, code);
    dz_sha256(code, CODE_LEN, key);
    rc = dz_store_put(c->gw->store, CODE_NS, key, sizeof(key), &r, sizeof(r), cc->tls_code_ttl_ms,
                      DZ_STORE_NX);
    if (rc != 0) {
        refuse(c, rec, "state_unavailable", "store");
        goto out;
    }
    json_decref(rec);
    dz_rctx_logj(c, DZ_LOG_DEBUG, "card_tls_code", json_pack("{s:s}", "certificate_sha256", hex));
    redirect(c, "card-code", code);
out:
    dz_secret_wipe(&r, sizeof(r));
    dz_secret_wipe(rnd, sizeof(rnd));
    dz_secret_wipe(code, sizeof(code));
    dz_secret_wipe(op, sizeof(*op));
    free(op);
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

void dz_ep_card_tls_login(struct dz_rctx *c)
{
    int rc;
    const struct dz_config_cards *cc = &c->gen->config->cards;
    X509 *peer = dz_req_peer_cert(c->req);
    struct login_op *op = NULL;
    char state[STATE_LEN + 1];
    unsigned char key[32];
    struct dz_buf taken;

    dz_buf_init(&taken, sizeof(struct start_rec));
    /* No Origin check: a top-level navigation sends none, and a link to
     * here from anywhere is harmless - the state only counts with the
     * cookie of the browser that started it. */
    if (!browser_cards_on(c))
        goto out;
    if (!query_state(dz_req_path(c->req), state)) {
        refuse(c, NULL, "card_login_invalid", "no_state");
        goto out;
    }
    /* Single use, taken before anything else: a state is spent by any
     * attempt, so one start cannot be used to try several certificates. */
    dz_sha256(state, STATE_LEN, key);
    rc = dz_store_take(c->gw->store, START_NS, key, sizeof(key), &taken);
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc); /* not "unknown": the store could not say */
        goto out;
    }
    if (rc != 0 || taken.len != sizeof(struct start_rec)) {
        refuse(c, NULL, "card_login_invalid", "unknown_state");
        goto out;
    }
    if (!peer) {
        refuse(c, NULL, "certificate_required", "no_certificate");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        redirect(c, "card-refused", "service_unavailable");
        goto out;
    }
    memcpy(op->binding, ((const struct start_rec *)(const void *)taken.data)->binding,
           sizeof(op->binding));
    /* The handshake's chain is only offered as untrusted intermediates;
     * the check is the one POST /auth/card/tls runs. */
    if (dz_certcheck_start(c, c->gen->card_trust, peer, dz_req_peer_chain(c->req),
                           DZ_X509_PURPOSE_AUTH, cc->policy, cc->revocation, cc->fetch_timeout_ms,
                           login_checked, op) == 0)
        op = NULL;
out:
    dz_buf_wipe(&taken);
    free(op);
}

/* ----------------------------------------------- portal origin: exchange */

/* Only the browser that started the login (its pre-login cookie). */
static bool bound(struct dz_rctx *c, const unsigned char binding[32])
{
    char buf[128];
    size_t len;
    unsigned char h[32];
    bool ok;

    if (!dz_rctx_cookie(c, DZ_COOKIE_CARD, buf, sizeof(buf), &len))
        return false;
    dz_sha256(buf, len, h);
    ok = dz_secret_equal(h, sizeof(h), binding, 32);
    dz_secret_wipe(buf, sizeof(buf));
    return ok;
}

void dz_ep_card_tls_exchange(struct dz_rctx *c)
{
    int rc;
    json_t *body = NULL;
    const char *code;
    unsigned char key[32];
    struct dz_buf taken;
    struct code_rec r;
    struct dz_session s;
    char hex[65];
    json_t *rec;

    memset(&r, 0, sizeof(r));
    dz_buf_init(&taken, sizeof(r));
    if (!browser_cards_on(c) || !dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    code = dz_json_str(body, "code", 64);
    if (!code || !code[0]) {
        dz_rctx_problem(c, "invalid_request", "code is a required string");
        goto out;
    }
    /* Taken before the binding is compared: a code shown to the wrong
     * browser is spent, never tried twice. */
    dz_sha256(code, strlen(code), key);
    rc = dz_store_take(c->gw->store, CODE_NS, key, sizeof(key), &taken);
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    if (rc != 0 || taken.len != sizeof(r)) {
        dz_login_refuse(
            c, MEANS,
            json_pack("{s:s, s:s, s:s}", "type", "login", "means", MEANS, "reason", "unknown_code"),
            "card_login_invalid", "the code is unknown, expired or already used");
        goto out;
    }
    memcpy(&r, taken.data, sizeof(r));
    if (!bound(c, r.binding)) {
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
    dz_buf_wipe(&taken);
    json_decref(body);
}
