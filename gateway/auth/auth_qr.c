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
#include "core/gwasync.h"
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
 * the store itself every dz_wake_look_interval(), in case a wake-up was
 * lost. */

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

/* Read QR login id's record; off the loop or with the in-process store
 * (it may wait for a shared one). */
static int load(struct dz_store *store, const char *id, struct qr_rec *out)
{
    struct dz_buf b;
    int rc;

    dz_buf_init(&b, sizeof(*out));
    rc = dz_store_get(store, REC_NS, id, ID_LEN, &b);
    if (rc == 0 && b.len == sizeof(*out))
        memcpy(out, b.data, sizeof(*out));
    else if (rc == 0)
        rc = DZ_ERR_NOTFOUND;
    dz_buf_wipe(&b);
    return rc;
}

/* The same on the loop, without waiting: then(c, rc, rec, id, arg) once,
 * also when the client went meanwhile (c->closed: only free arg).  rec is
 * the caller's to wipe only for the call's length. */
typedef void (*load_then)(struct dz_rctx *c, int rc, struct qr_rec *rec, const char *id, void *arg);

struct load_op {
    struct dz_rctx *c;
    char id[ID_LEN + 1];
    load_then then;
    void *arg;
};

static void loaded(void *p, int rc, int64_t value, const void *data, size_t len)
{
    struct load_op *op = p;
    struct dz_rctx *c = op->c;
    struct qr_rec r;

    memset(&r, 0, sizeof(r));
    if (rc == 0 && len == sizeof(r))
        memcpy(&r, data, sizeof(r));
    else if (rc == 0)
        rc = DZ_ERR_NOTFOUND;
    op->then(c, rc, &r, op->id, op->arg);
    dz_secret_wipe(&r, sizeof(r));
    free(op);
    dz_rctx_release(c);
}

static void load_async(struct dz_rctx *c, const char *id, load_then then, void *arg)
{
    struct load_op *op = calloc(1, sizeof(*op));
    struct qr_rec none;

    if (!op) {
        memset(&none, 0, sizeof(none));
        then(c, DZ_ERR_NOMEM, &none, id, arg);
        return;
    }
    op->c = c;
    memcpy(op->id, id, ID_LEN + 1);
    op->then = then;
    op->arg = arg;
    dz_rctx_hold(c);
    dz_store_get_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), REC_NS, op->id, ID_LEN,
                       loaded, op);
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

/* The hash of the browser's pre-login cookie; false without one. */
static bool cookie_hash(struct dz_rctx *c, unsigned char h[32])
{
    char buf[128];
    size_t len;

    if (!dz_rctx_cookie(c, DZ_COOKIE_QR, buf, sizeof(buf), &len))
        return false;
    dz_sha256(buf, len, h);
    dz_secret_wipe(buf, sizeof(buf));
    return true;
}

/* Only the browser that opened the session (its pre-login cookie). */
static bool bound(struct dz_rctx *c, const struct qr_rec *r)
{
    unsigned char h[32];

    return cookie_hash(c, h) && dz_secret_equal(h, sizeof(h), r->binding, sizeof(r->binding));
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

/* A QR login being opened: its record is written off the loop. */
struct start_op {
    struct dz_store *store;
    struct qr_rec r;
    char id[ID_LEN + 1];
    char bind_b64[48];
    uint64_t ttl;
    int rc;
};

static void start_work(void *arg)
{
    struct start_op *op = arg;

    op->rc = dz_store_put(op->store, REC_NS, op->id, ID_LEN, &op->r, sizeof(op->r), op->ttl,
                          DZ_STORE_NX);
}

static void start_done(struct dz_rctx *c, void *arg)
{
    struct start_op *op = arg;
    char cookie[160];
    char poll[64];

    if (c->closed) {
        /* Nobody can collect it: it expires with its TTL. */
    } else if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
    } else {
        snprintf(cookie, sizeof(cookie), DZ_COOKIE_QR "=%s" DZ_COOKIE_QR_ATTRS, op->bind_b64);
        snprintf(poll, sizeof(poll), "/auth/qr/%s", op->id);
        dz_rctx_json(c, 201, json_pack("{s:s, s:s}", "id", op->id, "poll", poll),
                     &(struct dz_hdr){"set-cookie", cookie}, 1);
        dz_secret_wipe(cookie, sizeof(cookie));
    }
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void start_counted(struct dz_rctx *c, bool ok, void *arg)
{
    struct start_op *op;
    unsigned char rnd[ID_BYTES];
    unsigned char bind[32];

    if (!ok)
        return; /* answered 429 / 503, or the client went */
    op = calloc(1, sizeof(*op));
    if (!op || dz_random(rnd, sizeof(rnd)) != 0 ||
        dz_random(op->r.secret, sizeof(op->r.secret)) != 0 || dz_random(bind, sizeof(bind)) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto fail;
    }
    op->store = c->gw->store;
    op->ttl = c->gen->config->mobile.qr_ttl_ms;
    dz_b64_encode_to(rnd, sizeof(rnd), true, op->id);
    dz_b64_encode_to(bind, sizeof(bind), true, op->bind_b64);
    /* Only the hash of the cookie value is stored (as for session tokens):
     * the record cannot be turned back into the browser's cookie. */
    dz_sha256(op->bind_b64, strlen(op->bind_b64), op->r.binding);
    op->r.start_ms = dz_unix_ms();
    op->r.state = QR_PENDING;
    snprintf(op->r.browser_ip, sizeof(op->r.browser_ip), "%s", dz_req_peer_ip(c->req));
    dz_secret_wipe(bind, sizeof(bind));
    if (dz_gw_state(c, start_work, start_done, op) == 0)
        return;
fail:
    dz_secret_wipe(bind, sizeof(bind));
    if (op)
        dz_secret_wipe(op, sizeof(*op));
    free(op);
}

void dz_ep_qr_start(struct dz_rctx *c)
{
    const struct dz_config_mobile *mc;
    struct dz_start_limit lim[2];

    if (!dz_mssp_enabled(c) || !dz_rctx_origin_ok(c))
        return;
    mc = &c->gen->config->mobile;
    /* Per minute, and per QR lifetime: the minute alone would let an
     * address hold many minutes' worth of pending logins. */
    lim[0] = dz_start_limit_of(c, "qr");
    lim[1] = (struct dz_start_limit){"qr_pending", mc->qr_ttl_ms, mc->qr_pending_per_address, 0};
    dz_start_check(c, lim, 2, start_counted, NULL);
}

/* ----------------------------------------------------------------- code */

static void code_loaded(struct dz_rctx *c, int rc, struct qr_rec *rp, const char *id, void *arg)
{
    const struct qr_rec *r = rp;
    int64_t now = dz_unix_ms();
    int64_t t;
    char hex[65];
    char payload[160];
    char *svg = NULL;

    if (c->closed || store_failed(c, rc))
        return;
    if (rc != 0) {
        dz_rctx_problem(c, "not_found", "no such QR login (it may have finished or expired)");
        return;
    }
    if (!bound(c, r)) {
        dz_rctx_problem(c, "forbidden", "this QR login belongs to another browser");
        return;
    }
    /* t counts seconds since the session started, not wall-clock time: the
     * gateway alone makes and checks codes, so no clock needs to agree. */
    t = (now - r->start_ms) / 1000;
    if (!code_for(r, id, t, hex)) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    snprintf(payload, sizeof(payload), "darvaza-qr:1:%s:%" PRId64 ":%s", id, t, hex);
    if (dz_qrsvg_render(payload, &svg) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    /* refresh_ms: until the next whole second, when t and the code change. */
    dz_rctx_json(c, 200,
                 json_pack("{s:s, s:s, s:I}", "payload", payload, "svg", svg, "refresh_ms",
                           (json_int_t)(1000 - (now - r->start_ms) % 1000)),
                 NULL, 0);
    free(svg);
}

static void code(struct dz_rctx *c, const char *id)
{
    load_async(c, id, code_loaded, NULL);
}

/* --------------------------------------------------------------- answer */

struct answer_op {
    char id[ID_LEN + 1];
    json_t *body;   /* the phone's request, until its checks are done */
    long long t;    /* the payload's second */
    char pcode[70]; /* the payload's code */
    int64_t now;    /* when the answer came */
    unsigned char *sig;
    size_t sig_len;
    X509 *cert;
    /* The single-use mark, off the loop (mark_work). */
    struct dz_store *store;
    uint64_t ttl;
    char fin[8];
    unsigned char prf[32];
    int rc;     /* the record's read, then the NX mark's */
    int put_rc; /* the answered record's write */
    char browser_ip[48];
};

static void answer_free(struct answer_op *a)
{
    if (!a)
        return;
    json_decref(a->body);
    free(a->sig);
    X509_free(a->cert);
    dz_secret_wipe(a->prf, sizeof(a->prf));
    free(a);
}

static void refuse(struct dz_rctx *c, const char *code_name, const char *detail)
{
    dz_login_refuse(c, "qr", json_pack("{s:s, s:s}", "type", "login", "means", "qr"), code_name,
                    detail);
}

/* Off the loop: single use, decided here, after every check: of two
 * answers to one code only the first that gets this far counts.  The
 * record is loaded again: the certificate check ran on the pool, and it
 * may have expired or been collected meanwhile.  After the write the
 * browser's poll, on whichever instance holds it, is woken and finds the
 * answer. */
static void mark_work(void *arg)
{
    struct answer_op *a = arg;
    struct qr_rec r;

    memset(&r, 0, sizeof(r));
    a->put_rc = DZ_ERR_INVAL;
    a->rc = load(a->store, a->id, &r);
    if (a->rc == 0)
        a->rc = dz_store_put(a->store, USED_NS, a->id, ID_LEN, "1", 1, a->ttl, DZ_STORE_NX);
    if (a->rc == 0) {
        r.state = QR_ANSWERED;
        memcpy(r.fin, a->fin, sizeof(r.fin));
        memcpy(r.prf, a->prf, sizeof(r.prf));
        memcpy(a->browser_ip, r.browser_ip, sizeof(a->browser_ip));
        a->put_rc = dz_store_put(a->store, REC_NS, a->id, ID_LEN, &r, sizeof(r), a->ttl, 0);
        if (a->put_rc == 0)
            dz_store_publish(a->store, REC_NS, a->id, ID_LEN);
    }
    dz_secret_wipe(&r, sizeof(r));
}

static void mark_done(struct dz_rctx *c, void *arg)
{
    struct answer_op *a = arg;

    if (store_failed(c, a->rc) || c->closed)
        goto out;
    if (a->rc != 0) {
        refuse(c, "qr_used", "this QR login has already been answered");
        goto out;
    }
    if (a->put_rc != 0) {
        dz_rctx_state_unavailable(c, a->put_rc);
        goto out;
    }
    a->browser_ip[sizeof(a->browser_ip) - 1] = '\0';
    dz_rctx_json(c, 200,
                 json_pack("{s:s, s:s, s:s}", "state", "accepted", "service",
                           c->gen->config->mobile.service_name, "browser", a->browser_ip),
                 NULL, 0);
out:
    answer_free(a);
}

static void answer_checked(struct dz_rctx *c, int rc, const struct dz_x509_result *res, void *arg)
{
    struct answer_op *a = arg;

    if (!res->valid) {
        refuse(c, dz_certcheck_code(res), res->reason);
        answer_free(a);
        return;
    }
    memcpy(a->fin, res->fin, sizeof(a->fin));
    dz_certcheck_prf(res, a->sig, a->sig_len, a->prf);
    a->store = c->gw->store;
    a->ttl = c->gen->config->mobile.qr_ttl_ms;
    if (dz_gw_state(c, mark_work, mark_done, a) != 0)
        answer_free(a); /* answered 503 */
}

/* The record of the QR login the phone answers: the code, its freshness,
 * the signature, then the certificate (on the pool). */
static void answer_loaded(struct dz_rctx *c, int rc, struct qr_rec *r, const char *id, void *arg)
{
    struct answer_op *a = arg;
    const char *payload;
    const char *alg;
    const char *cert;
    const char *sig;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char want[65];
    unsigned char msg[64];
    const char *origin = c->gen->config->gateway.origin;

    want[0] = '\0';
    if (c->closed || store_failed(c, rc))
        goto out;
    if (rc != 0) {
        refuse(c, "qr_invalid", "no such QR login (it may have finished or expired)");
        goto out;
    }
    if (!code_for(r, id, (int64_t)a->t, want)) {
        refuse(c, "qr_invalid", "the code cannot be checked now");
        goto out;
    }
    /* Constant time, since the code is a MAC.  A t more than a second in
     * the future was never on the screen, so it is refused like a bad code. */
    if (!dz_secret_equal(want, 64, a->pcode, 64) || r->start_ms + a->t * 1000 > a->now + 1000) {
        refuse(c, "qr_invalid", "the code does not match");
        goto out;
    }
    if (a->now - (r->start_ms + a->t * 1000) > (int64_t)c->gen->config->mobile.qr_freshness_ms) {
        refuse(c, "qr_expired", "the code is too old: scan the code on the screen again");
        goto out;
    }
    /* An early, cheap refusal only: the decisive single-use check is the
     * NX put in mark_work, after the certificate check. */
    if (r->state != QR_PENDING) {
        refuse(c, "qr_used", "this QR login has already been answered");
        goto out;
    }
    payload = dz_json_str(a->body, "payload", 150);
    alg = dz_json_str(a->body, "algorithm", 8);
    cert = dz_json_str(a->body, "certificate", 24 * 1024);
    sig = dz_json_str(a->body, "signature", 1024);
    if (dz_b64_decode(sig, strlen(sig), false, &a->sig, &a->sig_len) != 0 ||
        dz_b64_decode(cert, strlen(cert), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &a->cert) != 0) {
        dz_rctx_problem(c, "invalid_request", "certificate and signature must be base64 DER");
        goto out;
    }
    /* Bound to this payload and to this gateway's origin: an answer made
     * for a look-alike site does not verify here. */
    dz_sha256(payload, strlen(payload), msg);
    dz_sha256(origin, strlen(origin), msg + 32);
    if (dz_sig_verify(X509_get0_pubkey(a->cert), alg, msg, sizeof(msg), a->sig, a->sig_len) != 0) {
        refuse(c, "bad_signature", NULL);
        goto out;
    }
    json_decref(a->body);
    a->body = NULL;
    if (dz_certcheck_start(c, c->gen->mobile_trust, a->cert, NULL, DZ_X509_PURPOSE_AUTH,
                           c->gen->config->mobile.policy, c->gen->config->mobile.revocation,
                           c->gen->config->mobile.fetch_timeout_ms, answer_checked, a) == 0)
        a = NULL;
out:
    dz_secret_wipe(want, sizeof(want));
    answer_free(a);
    free(der);
}

static void answer(struct dz_rctx *c, const char *id)
{
    json_t *body = NULL;
    struct answer_op *a = NULL;
    const char *payload;
    char pid[ID_LEN + 2];
    char pcode[70];
    long long t = -1;
    int consumed = 0;

    if (!dz_mssp_enabled(c) || dz_rctx_body_json(c, &body) != 0)
        goto out;
    payload = dz_json_str(body, "payload", 150);
    if (!payload || !dz_json_str(body, "algorithm", 8) ||
        !dz_json_str(body, "certificate", 24 * 1024) || !dz_json_str(body, "signature", 1024)) {
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
    a = calloc(1, sizeof(*a));
    if (!a) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    memcpy(a->id, id, ID_LEN + 1);
    a->body = body;
    body = NULL;
    a->t = t;
    memcpy(a->pcode, pcode, sizeof(a->pcode));
    a->now = dz_unix_ms();
    load_async(c, id, answer_loaded, a);
out:
    json_decref(body);
}

/* ---------------------------------------------------------- browser poll */

/* A browser's poll: one look at the store (off the loop), then, while the
 * login is pending and the client's wait lasts, a look again when woken or
 * by the fallback timer. */
struct wait_op {
    struct dz_rctx *c;
    struct dz_store *store;
    char id[ID_LEN + 1];
    ev_timer timer;
    struct dz_wake_waiter waiter;
    ev_tstamp deadline;         /* ev_now at which the poll answers "pending" */
    bool is_waiting;            /* the waiter is registered */
    bool busy;                  /* a look's store steps are running */
    bool again;                 /* woken meanwhile: look once more */
    bool gone;                  /* the client went meanwhile: the look frees w */
    bool first;                 /* the next look is the poll's first: it checks the binding */
    bool has_cookie;            /* the browser sent its pre-login cookie */
    unsigned char cookie_h[32]; /* its hash, compared with the record's binding */
    /* What the look found (look_work). */
    int rc;      /* the record's read */
    bool bound;  /* the first look: the cookie is the record's */
    int take_rc; /* the answered record's take */
    struct qr_rec r;
};

/* Off the loop: the record, and if the phone has answered, its take —
 * complete once: the poll that takes the record opens the session. */
static void look_work(void *arg)
{
    struct wait_op *w = arg;

    w->take_rc = DZ_ERR_NOTFOUND;
    w->bound = false;
    w->rc = load(w->store, w->id, &w->r);
    if (w->rc != 0)
        return;
    if (w->first) {
        w->bound = w->has_cookie && dz_secret_equal(w->cookie_h, sizeof(w->cookie_h), w->r.binding,
                                                    sizeof(w->r.binding));
        if (!w->bound)
            return;
    }
    if (w->r.state == QR_ANSWERED) {
        struct dz_buf b;

        dz_buf_init(&b, sizeof(w->r));
        w->take_rc = dz_store_take(w->store, REC_NS, w->id, ID_LEN, &b);
        dz_buf_wipe(&b);
    }
}

static void wait_free(struct wait_op *w)
{
    dz_secret_wipe(w, sizeof(*w));
    free(w);
}

/* The poll is over: stop waiting, drop w and its hold on c. */
static void wait_end(struct wait_op *w)
{
    struct dz_rctx *c = w->c;

    ev_timer_stop(dz_worker_loop(c->gw_worker->worker), &w->timer);
    if (w->is_waiting)
        dz_wake_cancel(&w->waiter);
    if (c->op == w) {
        c->op = NULL;
        c->cancel = NULL;
    }
    wait_free(w);
    dz_rctx_release(c);
}

static void wait_cancel(struct dz_rctx *c)
{
    struct wait_op *w = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (!w)
        return;
    if (w->busy) {
        /* The look running still uses w: it frees w (look_done). */
        ev_timer_stop(dz_worker_loop(c->gw_worker->worker), &w->timer);
        if (w->is_waiting)
            dz_wake_cancel(&w->waiter);
        w->is_waiting = false;
        w->gone = true;
        return;
    }
    wait_end(w);
}

static void look(struct wait_op *w);

/* The session of the answered login w->r (taken by this poll). */
static void complete(struct dz_rctx *c, const struct qr_rec *r)
{
    struct dz_session s;

    memset(&s, 0, sizeof(s));
    memcpy(s.fin, r->fin, sizeof(s.fin));
    snprintf(s.method, sizeof(s.method), "qr");
    /* The phone signed with its mobile-signature key after its PIN: the
     * same factors as a mobile login, reached through the QR code. */
    s.amr = DZ_AMR_QR | DZ_AMR_MOB | DZ_AMR_PIN;
    snprintf(s.acr, sizeof(s.acr), "high");
    snprintf(s.role, sizeof(s.role), "citizen");
    s.auth_time = dz_unix_ms() / 1000;
    memcpy(s.prf, r->prf, sizeof(s.prf));
    s.has_prf = true;
    dz_login_complete_polled(c, &s, "qr",
                             json_pack("{s:s, s:s, s:s, s:s}", "type", "login", "means", "qr",
                                       "fin", r->fin, "browser", r->browser_ip));
    dz_secret_wipe(&s, sizeof(s));
}

/* What one look found: answer when the login is done or the wait is over,
 * else wait on (look again when woken, or by the fallback timer). */
static void look_done(struct dz_rctx *c, void *arg)
{
    struct wait_op *w = arg;
    struct ev_loop *loop = dz_worker_loop(c->gw_worker->worker);
    ev_tstamp left = w->deadline - ev_now(loop);
    bool first = w->first;

    w->busy = false;
    w->first = false;
    if (w->gone) {
        wait_free(w); /* wait_cancel has dropped the rest */
        dz_rctx_release(c);
        return;
    }
    if (store_failed(c, w->rc))
        goto end;
    if (w->rc != 0) {
        dz_rctx_problem(c, "not_found", "no such QR login (it may have finished or expired)");
        goto end;
    }
    if (first && !w->bound) {
        dz_rctx_problem(c, "forbidden", "this QR login belongs to another browser");
        goto end;
    }
    if (w->r.state == QR_ANSWERED) {
        if (w->take_rc != 0) {
            if (!store_failed(c, w->take_rc))
                dz_rctx_problem(c, "not_found", "this QR login is finished");
            goto end;
        }
        /* Detached first: the login answers once its audit line is durable,
         * and c->op is no longer this poll's. */
        if (c->op == w) {
            c->op = NULL;
            c->cancel = NULL;
        }
        complete(c, &w->r);
        goto end;
    }
    dz_secret_wipe(&w->r, sizeof(w->r));
    if (left > 0 && w->again) {
        look(w); /* woken while the look ran: the answer may be newer */
        return;
    }
    if (left > 0) {
        ev_timer_stop(loop, &w->timer);
        ev_timer_set(&w->timer, left < dz_wake_look_interval() ? left : dz_wake_look_interval(), 0);
        ev_timer_start(loop, &w->timer);
        return;
    }
    if (!c->answered)
        dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
end:
    wait_end(w);
}

/* One look (at the start, woken, or by the fallback timer); a look asked
 * for while one runs is made after it. */
static void look(struct wait_op *w)
{
    if (w->busy) {
        w->again = true;
        return;
    }
    w->busy = true;
    w->again = false;
    if (dz_gw_state(w->c, look_work, look_done, w) != 0) {
        w->busy = false; /* answered 503 service_unavailable */
        wait_end(w);
    }
}

static void wait_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    look(t->data);
}

static void wait_woken(struct dz_wake_waiter *ww)
{
    look(ww->arg);
}

static void browser_poll(struct dz_rctx *c, const char *id)
{
    struct wait_op *w;
    const char *q = strchr(dz_req_path(c->req), '?');
    const char *wp = q ? strstr(q, "wait=") : NULL;
    double wait = 0;

    if (wp && (wp == q + 1 || wp[-1] == '&')) {
        /* Digits only, stopped before it can grow large; capped just below by
         * mobile.poll_max_ms, so a client cannot hold a stream open longer. */
        for (wp += 5; *wp >= '0' && *wp <= '9' && wait < 1000; wp++)
            wait = wait * 10 + (*wp - '0');
    }
    if (wait * 1000 > (double)c->gen->config->mobile.poll_max_ms)
        wait = (double)c->gen->config->mobile.poll_max_ms / 1000;
    w = calloc(1, sizeof(*w));
    if (!w) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    w->c = c;
    w->store = c->gw->store;
    memcpy(w->id, id, ID_LEN + 1);
    w->first = true;
    w->has_cookie = cookie_hash(c, w->cookie_h);
    w->deadline = ev_now(dz_worker_loop(c->gw_worker->worker)) + (wait > 0 ? wait : 0);
    ev_timer_init(&w->timer, wait_tick, dz_wake_look_interval(), 0);
    w->timer.data = w;
    /* Waiting before the first look: an answer written between the look and
     * the wait would otherwise be seen only by the fallback timer.  Not
     * waiting (it cannot fail for our short ns and id) only makes the
     * fallback the answer's way. */
    if (wait > 0)
        w->is_waiting =
            dz_wake_wait(c->gw_worker, &w->waiter, REC_NS, id, ID_LEN, wait_woken, w) == 0;
    c->op = w;
    c->cancel = wait_cancel;
    dz_rctx_hold(c);
    look(w);
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
