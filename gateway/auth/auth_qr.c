/*
 * auth_qr.c - QR smartphone login (§4.6).  The browser opens a QR session
 * and gets a pre-login cookie that binds the session to it; the code it
 * shows changes every second: darvaza-qr:1:<id>:<t>:<code>, where code is
 * HMAC-SHA256 (keyed with a per-session secret that never leaves the
 * gateway) of darvaza-qr|1|<id>|<t>, so a photo of the code is useless a few
 * seconds later.  The phone signs SHA-256(payload) || SHA-256(origin) with
 * its mobile-signature key and posts the answer; the gateway checks
 * freshness, the code, the signature, the certificate, and single use; only
 * the browser holding the binding cookie can then collect the session.
 */
#include "auth/auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/login.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/qrsvg.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/cookies.h"
#include "core/metrics.h"
#include "keys/sigverify.h"
#include "mssp/mssp.h"
#include "state/store.h"

#include "core/startlimit.h"
#include "core/wake.h"

#include "base/compat.h"

#define REC_NS "qr"
#define USED_NS "qrused"
#define ID_BYTES 16
#define ID_LEN 22
/* A waiting browser is woken by the store's wake-up when the phone's answer
 * is written, on this instance or another (core/wake.h); it also looks at
 * the store itself this often, in case a wake-up was lost. */
#define POLL_FALLBACK 1.0

enum qr_state { QR_PENDING = 0, QR_ANSWERED = 1 };

/* The store's record of a QR session (internal, fixed layout). */
struct qr_rec {
    unsigned char secret[32];
    unsigned char binding[32]; /* SHA-256 of the browser's cookie value */
    int64_t start_ms;
    int32_t state;
    char fin[8];
    unsigned char prf[32];
    char browser_ip[48];
};

static int load(struct dz_rctx *c, const char *id, struct qr_rec *out)
{
    struct dz_buf b;
    int rc;

    dz_buf_init(&b, sizeof(*out));
    rc = dz_store_get(c->gw->store, REC_NS, id, ID_LEN, &b);
    if (rc == 0 && b.len == sizeof(*out))
        memcpy(out, b.data, sizeof(*out));
    else if (rc == 0)
        rc = DZ_ERR_NOTFOUND;
    dz_buf_wipe(&b);
    return rc;
}

/* The store could not answer (not "no such login"): 503 state_unavailable
 * answered here, true returned. */
static bool store_failed(struct dz_rctx *c, int rc)
{
    if (!dz_store_failed(rc))
        return false;
    if (!c->closed)
        dz_rctx_state_unavailable(c, rc);
    return true;
}

/* Only the browser that opened the session (its pre-login cookie). */
static bool bound(struct dz_rctx *c, const struct qr_rec *r)
{
    char buf[128];
    size_t len;
    unsigned char h[32];
    bool ok;

    if (!dz_rctx_cookie(c, DZ_COOKIE_QR, buf, sizeof(buf), &len))
        return false;
    dz_sha256(buf, len, h);
    ok = dz_secret_equal(h, sizeof(h), r->binding, sizeof(r->binding));
    dz_secret_wipe(buf, sizeof(buf));
    return ok;
}

/* The code of second t of QR login id; false when it cannot be made (then
 * the caller refuses: a placeholder code would be one a client could send). */
static bool code_for(const struct qr_rec *r, const char *id, int64_t t, char hex[65])
{
    char msg[96];
    unsigned char mac[32];
    unsigned int mac_len = sizeof(mac);
    int n = snprintf(msg, sizeof(msg), "darvaza-qr|1|%s|%" PRId64, id, t);
    bool ok = n > 0 && (size_t)n < sizeof(msg) &&
              HMAC(EVP_sha256(), r->secret, sizeof(r->secret), (unsigned char *)msg, (size_t)n, mac,
                   &mac_len) != NULL &&
              mac_len == sizeof(mac);

    if (ok)
        dz_hex(mac, sizeof(mac), hex);
    else
        hex[0] = '\0';
    dz_secret_wipe(mac, sizeof(mac));
    return ok;
}

/* ---------------------------------------------------------------- start */

void dz_ep_qr_start(struct dz_rctx *c)
{
    struct qr_rec r;
    int rc;
    unsigned char rnd[ID_BYTES];
    unsigned char bind[32];
    char id[ID_LEN + 1];
    char bind_b64[48];
    char cookie[160];
    char poll[64];

    /* Per minute, and per QR lifetime: the minute alone would let an
     * address hold many minutes' worth of pending logins. */
    if (!dz_mssp_enabled(c) || !dz_rctx_origin_ok(c) || !dz_start_allowed(c, "qr") ||
        !dz_start_allowed_in(c, "qr_pending", c->gen->config->mobile.qr_ttl_ms,
                             c->gen->config->mobile.qr_pending_per_address, 0))
        return;
    memset(&r, 0, sizeof(r));
    if (dz_random(rnd, sizeof(rnd)) != 0 || dz_random(r.secret, sizeof(r.secret)) != 0 ||
        dz_random(bind, sizeof(bind)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_b64_encode_to(rnd, sizeof(rnd), true, id);
    dz_b64_encode_to(bind, sizeof(bind), true, bind_b64);
    /* Only the hash of the cookie value is stored (as for session tokens):
     * the record cannot be turned back into the browser's cookie. */
    dz_sha256(bind_b64, strlen(bind_b64), r.binding);
    r.start_ms = dz_unix_ms();
    r.state = QR_PENDING;
    snprintf(r.browser_ip, sizeof(r.browser_ip), "%s", dz_req_peer_ip(c->req));
    rc = dz_store_put(c->gw->store, REC_NS, id, ID_LEN, &r, sizeof(r),
                      c->gen->config->mobile.qr_ttl_ms, DZ_STORE_NX);
    if (rc != 0) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    snprintf(cookie, sizeof(cookie), DZ_COOKIE_QR "=%s" DZ_COOKIE_QR_ATTRS, bind_b64);
    snprintf(poll, sizeof(poll), "/auth/qr/%s", id);
    dz_rctx_json(c, 201, json_pack("{s:s, s:s}", "id", id, "poll", poll),
                 &(struct dz_hdr){"set-cookie", cookie}, 1);
out:
    dz_secret_wipe(&r, sizeof(r));
    dz_secret_wipe(bind_b64, sizeof(bind_b64));
    dz_secret_wipe(cookie, sizeof(cookie));
}

/* ----------------------------------------------------------------- code */

static void code(struct dz_rctx *c, const char *id)
{
    int rc;
    struct qr_rec r;
    int64_t now = dz_unix_ms();
    int64_t t;
    char hex[65];
    char payload[160];
    char *svg = NULL;

    rc = load(c, id, &r);
    if (store_failed(c, rc))
        return;
    if (rc != 0) {
        dz_rctx_problem(c, "not_found", "no such QR login (it may have finished or expired)");
        return;
    }
    if (!bound(c, &r)) {
        dz_rctx_problem(c, "forbidden", "this QR login belongs to another browser");
        goto out;
    }
    /* t counts seconds since the session started, not wall-clock time: the
     * gateway alone makes and checks codes, so no clock needs to agree. */
    t = (now - r.start_ms) / 1000;
    if (!code_for(&r, id, t, hex)) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    snprintf(payload, sizeof(payload), "darvaza-qr:1:%s:%" PRId64 ":%s", id, t, hex);
    if (dz_qrsvg_render(payload, &svg) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    /* refresh_ms: until the next whole second, when t and the code change. */
    dz_rctx_json(c, 200,
                 json_pack("{s:s, s:s, s:I}", "payload", payload, "svg", svg, "refresh_ms",
                           (json_int_t)(1000 - (now - r.start_ms) % 1000)),
                 NULL, 0);
    free(svg);
out:
    dz_secret_wipe(&r, sizeof(r));
}

/* --------------------------------------------------------------- answer */

struct answer_op {
    char id[ID_LEN + 1];
    unsigned char *sig;
    size_t sig_len;
    X509 *cert;
};

static void answer_free(struct answer_op *a)
{
    if (!a)
        return;
    free(a->sig);
    X509_free(a->cert);
    free(a);
}

static void refuse(struct dz_rctx *c, const char *code_name, const char *detail)
{
    dz_login_refuse(c, "qr", json_pack("{s:s, s:s}", "type", "login", "means", "qr"), code_name,
                    detail);
}

static void answer_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct answer_op *a = arg;
    struct qr_rec r;
    char hex[65];

    if (!res->valid) {
        refuse(c, dz_certcheck_code(res), res->reason);
        goto out;
    }
    /* Single use, decided here, after every check: of two answers to one
     * code only the first that gets this far counts. */
    /* Loaded again: the certificate check ran on the pool, and the record
     * may have expired or been collected meanwhile. */
    rc = load(c, a->id, &r);
    if (rc == 0)
        rc = dz_store_put(c->gw->store, USED_NS, a->id, ID_LEN, "1", 1,
                          c->gen->config->mobile.qr_ttl_ms, DZ_STORE_NX);
    if (store_failed(c, rc))
        goto out;
    if (rc != 0) {
        refuse(c, "qr_used", "this QR login has already been answered");
        goto out;
    }
    r.state = QR_ANSWERED;
    memcpy(r.fin, res->fin, sizeof(r.fin));
    dz_certcheck_prf(res, a->sig, a->sig_len, r.prf);
    rc = dz_store_put(c->gw->store, REC_NS, a->id, ID_LEN, &r, sizeof(r),
                      c->gen->config->mobile.qr_ttl_ms, 0);
    if (rc != 0) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    /* After the write: the browser's poll, on whichever instance holds it,
     * wakes and finds the answer. */
    dz_store_publish(c->gw->store, REC_NS, a->id, ID_LEN);
    dz_hex(res->sha256, sizeof(res->sha256), hex);
    dz_rctx_json(c, 200,
                 json_pack("{s:s, s:s, s:s}", "state", "accepted", "service",
                           c->gen->config->mobile.service_name, "browser", r.browser_ip),
                 NULL, 0);
out:
    dz_secret_wipe(&r, sizeof(r));
    answer_free(a);
}

static void answer(struct dz_rctx *c, const char *id)
{
    int rc;
    json_t *body = NULL;
    struct answer_op *a = NULL;
    struct qr_rec r;
    const char *payload;
    const char *alg;
    const char *cert;
    const char *sig;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char pid[ID_LEN + 2];
    char pcode[70];
    char want[65];
    long long t = -1;
    int consumed = 0;
    int64_t now = dz_unix_ms();
    unsigned char msg[64];
    const char *origin = c->gen->config->gateway.origin;

    memset(&r, 0, sizeof(r));
    if (!dz_mssp_enabled(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    payload = dz_json_str(body, "payload", 150);
    alg = dz_json_str(body, "algorithm", 8);
    cert = dz_json_str(body, "certificate", 24 * 1024);
    sig = dz_json_str(body, "signature", 1024);
    if (!payload || !alg || !cert || !sig) {
        dz_rctx_problem(c, "invalid_request",
                        "payload, certificate, algorithm and signature are required strings");
        goto out;
    }
    /* darvaza-qr:1:<id>:<t>:<code>, exactly. */
    if (sscanf(payload, "darvaza-qr:1:%22[A-Za-z0-9_-]:%lld:%64[0-9a-f]%n", pid, &t, pcode,
               &consumed) != 3 ||
        (size_t)consumed != strlen(payload) || strlen(pcode) != 64 || t < 0) {
        refuse(c, "qr_invalid", "the payload is not a darvaza QR code");
        goto out;
    }
    if (strcmp(pid, id) != 0) {
        refuse(c, "qr_invalid", "the payload belongs to another QR login");
        goto out;
    }
    rc = load(c, id, &r);
    if (store_failed(c, rc))
        goto out;
    if (rc != 0) {
        refuse(c, "qr_invalid", "no such QR login (it may have finished or expired)");
        goto out;
    }
    if (!code_for(&r, id, (int64_t)t, want)) {
        refuse(c, "qr_invalid", "the code cannot be checked now");
        goto out;
    }
    /* Constant time, since the code is a MAC.  A t more than a second in
     * the future was never on the screen, so it is refused like a bad code. */
    if (!dz_secret_equal(want, 64, pcode, 64) || r.start_ms + t * 1000 > now + 1000) {
        refuse(c, "qr_invalid", "the code does not match");
        goto out;
    }
    if (now - (r.start_ms + t * 1000) > (int64_t)c->gen->config->mobile.qr_freshness_ms) {
        refuse(c, "qr_expired", "the code is too old: scan the code on the screen again");
        goto out;
    }
    /* An early, cheap refusal only: the decisive single-use check is the
     * NX put in answer_checked, after the certificate check. */
    if (r.state != QR_PENDING) {
        refuse(c, "qr_used", "this QR login has already been answered");
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (!a || dz_b64_decode(sig, strlen(sig), false, &a->sig, &a->sig_len) != 0 ||
        dz_b64_decode(cert, strlen(cert), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &a->cert) != 0) {
        dz_rctx_problem(c, "invalid_request", "certificate and signature must be base64 DER");
        goto out;
    }
    memcpy(a->id, id, ID_LEN + 1);
    /* Bound to this payload and to this gateway's origin: an answer made
     * for a look-alike site does not verify here. */
    dz_sha256(payload, strlen(payload), msg);
    dz_sha256(origin, strlen(origin), msg + 32);
    if (dz_sig_verify(X509_get0_pubkey(a->cert), alg, msg, sizeof(msg), a->sig, a->sig_len) != 0) {
        refuse(c, "bad_signature", NULL);
        goto out;
    }
    if (dz_certcheck_start(c, c->gen->mobile_trust, a->cert, NULL, DZ_X509_PURPOSE_AUTH,
                           c->gen->config->mobile.policy, c->gen->config->mobile.revocation,
                           c->gen->config->mobile.fetch_timeout_ms, answer_checked, a) == 0)
        a = NULL;
out:
    dz_secret_wipe(&r, sizeof(r));
    dz_secret_wipe(want, sizeof(want));
    answer_free(a);
    free(der);
    json_decref(body);
}

/* ---------------------------------------------------------- browser poll */

struct wait_op {
    struct dz_rctx *c;
    char id[ID_LEN + 1];
    ev_timer timer;
    struct dz_wake_waiter waiter;
    ev_tstamp deadline; /* ev_now at which the poll answers "pending" */
};

static bool try_complete(struct dz_rctx *c, const char *id)
{
    int rc;
    struct qr_rec r;
    struct dz_buf b;
    struct dz_session s;
    bool done = false;

    rc = load(c, id, &r);
    if (store_failed(c, rc))
        return true;
    if (rc != 0) {
        dz_rctx_problem(c, "not_found", "no such QR login (it may have finished or expired)");
        return true;
    }
    if (r.state != QR_ANSWERED)
        goto out;
    /* Complete once: the poll that takes the record opens the session. */
    dz_buf_init(&b, sizeof(r));
    rc = dz_store_take(c->gw->store, REC_NS, id, ID_LEN, &b);
    if (rc != 0) {
        dz_buf_wipe(&b);
        if (!store_failed(c, rc))
            dz_rctx_problem(c, "not_found", "this QR login is finished");
        done = true;
        goto out;
    }
    dz_buf_wipe(&b);
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, r.fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "qr");
    /* The phone signed with its mobile-signature key after its PIN: the
     * same factors as a mobile login, reached through the QR code. */
    s.amr = DZ_AMR_QR | DZ_AMR_MOB | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "citizen");
    s.auth_time = dz_unix_ms() / 1000;
    memcpy(s.prf, r.prf, sizeof(s.prf));
    s.has_prf = true;
    dz_login_complete_polled(c, &s, "qr",
                             json_pack("{s:s, s:s, s:s, s:s}", "type", "login", "means", "qr",
                                       "fin", r.fin, "browser", r.browser_ip));
    done = true;
out:
    dz_secret_wipe(&r, sizeof(r));
    return done;
}

static void wait_cancel(struct dz_rctx *c)
{
    struct wait_op *w = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (w) {
        ev_timer_stop(dz_worker_loop(c->gw_worker->worker), &w->timer);
        dz_wake_cancel(&w->waiter);
        free(w);
        dz_rctx_release(c);
    }
}

/* Look once (woken, or the fallback timer): answer when the login is
 * done or the wait is over, else arm the fallback again. */
static void wait_look(struct wait_op *w)
{
    struct dz_rctx *c = w->c;
    struct ev_loop *loop = dz_worker_loop(c->gw_worker->worker);
    ev_tstamp left;
    bool done;

    done = try_complete(c, w->id);
    left = w->deadline - ev_now(loop);
    ev_timer_stop(loop, &w->timer);
    if (!done && left > 0) {
        ev_timer_set(&w->timer, left < POLL_FALLBACK ? left : POLL_FALLBACK, 0);
        ev_timer_start(loop, &w->timer);
        return;
    }
    /* done: try_complete answered, or will once the login's audit line is
     * durable (c->answered is still false then: no "pending" over it). */
    if (!done && !c->answered)
        dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
    dz_wake_cancel(&w->waiter);
    c->op = NULL;
    c->cancel = NULL;
    free(w);
    dz_rctx_release(c);
}

static void wait_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    wait_look(t->data);
}

static void wait_woken(struct dz_wake_waiter *ww)
{
    wait_look(ww->arg);
}

static void browser_poll(struct dz_rctx *c, const char *id)
{
    int rc;
    struct qr_rec r;
    struct wait_op *w;
    const char *q = strchr(dz_req_path(c->req), '?');
    const char *wp = q ? strstr(q, "wait=") : NULL;
    double wait = 0;

    rc = load(c, id, &r);
    if (store_failed(c, rc))
        return;
    if (rc != 0) {
        dz_rctx_problem(c, "not_found", "no such QR login (it may have finished or expired)");
        return;
    }
    if (!bound(c, &r)) {
        dz_secret_wipe(&r, sizeof(r));
        dz_rctx_problem(c, "forbidden", "this QR login belongs to another browser");
        return;
    }
    dz_secret_wipe(&r, sizeof(r));
    if (try_complete(c, id))
        return;
    if (wp && (wp == q + 1 || wp[-1] == '&')) {
        /* Digits only, stopped before it can grow large; capped just below by
         * mobile.poll_max_ms, so a client cannot hold a stream open longer. */
        for (wp += 5; *wp >= '0' && *wp <= '9' && wait < 1000; wp++)
            wait = wait * 10 + (*wp - '0');
    }
    if (wait * 1000 > (double)c->gen->config->mobile.poll_max_ms)
        wait = (double)c->gen->config->mobile.poll_max_ms / 1000;
    if (wait <= 0 || !(w = calloc(1, sizeof(*w)))) {
        dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
        return;
    }
    w->c = c;
    memcpy(w->id, id, ID_LEN + 1);
    w->deadline = ev_now(dz_worker_loop(c->gw_worker->worker)) + wait;
    ev_timer_init(&w->timer, wait_tick, wait < POLL_FALLBACK ? wait : POLL_FALLBACK, 0);
    w->timer.data = w;
    /* Not waiting for wake-ups (it cannot fail for our short ns and id) only
     * makes the fallback the answer's way. */
    (void)dz_wake_wait(c->gw_worker, &w->waiter, REC_NS, id, ID_LEN, wait_woken, w);
    c->op = w;
    c->cancel = wait_cancel;
    dz_rctx_hold(c);
    ev_timer_start(dz_worker_loop(c->gw_worker->worker), &w->timer);
}

void dz_ep_qr_sub(struct dz_rctx *c, const char *rest)
{
    const char *method = dz_req_method(c->req);
    size_t idlen = strcspn(rest, "/?");
    char id[ID_LEN + 1];
    const char *tail = rest + idlen;

    if (!dz_mssp_enabled(c))
        return;
    if (idlen != ID_LEN) {
        dz_rctx_problem(c, "not_found", NULL);
        return;
    }
    memcpy(id, rest, ID_LEN);
    id[ID_LEN] = '\0';
    if ((*tail == '\0' || *tail == '?') && strcmp(method, "GET") == 0)
        browser_poll(c, id);
    else if ((strncmp(tail, "/code", 5) == 0 && (tail[5] == '\0' || tail[5] == '?')) &&
             strcmp(method, "GET") == 0)
        code(c, id);
    else if (strcmp(tail, "/answer") == 0 && strcmp(method, "POST") == 0)
        answer(c, id);
    else
        dz_rctx_problem(c, "not_found", NULL);
}
