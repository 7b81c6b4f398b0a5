/*
 * auth_mobile.c - mobile-signature login (§4.5).  The gateway picks a fresh
 * random hash, asks the MSSP to have the phone sign it, shows the
 * verification code derived from it, and long-polls the MSSP on behalf of
 * the browser.  The MSSP is not trusted with the outcome: the gateway checks
 * the returned signature over its own hash with the returned certificate,
 * the certificate (mobile policy, chain, revocation) and that the
 * certificate's FIN is the FIN given.  A request completes once: the record
 * is taken from the store by whichever poll sees the end first.  With
 * several instances, one poll of the cluster asks the MSSP at a time and
 * shares its final answer through the store's wake-ups (see "the MSSP's
 * final answer" below).
 */
#include "auth/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "auth/login.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/certcheck.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "keys/midcode.h"
#include "keys/sigverify.h"
#include "mssp/mssp.h"
#include "state/store.h"

#include "core/gwstorecall.h"
#include "core/startlimit.h"
#include "core/wake.h"

#include "base/compat.h"

#define REC_NS "mob"
#define RES_NS "mobres"     /* the MSSP's final answer, for every instance */
#define RES_MAX (32 * 1024) /* its largest value (result_share) */
#define WATCH_NS "mobwatch" /* the lease of the one poll asking the MSSP */
/* A poll waiting on the store is woken at once by the answer's wake-up; it
 * also looks every dz_wake_look_interval() in case a wake-up was lost. */
#define ID_BYTES 16
#define ID_LEN 22 /* base64url of 16 bytes */

/* What the store keeps about a pending request (internal, fixed layout). */
struct mob_rec {
    char fin[8];
    char phone[20];
    unsigned char hash[32];
    char mssp_id[64];
    unsigned char binding[32];       /* SHA-256 of the starting browser's cookie value */
    char lock[DZ_MSSP_LOCK_LEN + 1]; /* the phone's lock value while this request holds it */
};

/* An MSSP call in flight for request c: cancelled if the client goes. */
struct mssp_call {
    struct dz_mssp_call call; /* c->op while it runs */
    struct mob_rec rec;
    char id[ID_LEN + 1];
    char code[DZ_MID_CODE_LEN + 1];
    char bind_b64[48]; /* the start: the binding cookie's value, until answered */
    bool holds_phone;  /* release the per-phone lock when this call fails */
};

static void call_free(struct dz_rctx *c, struct mssp_call *op, bool failed)
{
    if (failed && op->holds_phone)
        dz_mssp_phone_release(c, op->rec.phone, op->rec.lock);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void call_drop(struct dz_rctx *c, void *owner)
{
    call_free(c, owner, true);
}

/* ---------------------------------------------------------------- start */

/* The MSSP took the request: its record is written off the loop. */
struct start_op {
    struct mssp_call *op;
    struct dz_store *store;
    uint64_t ttl;
    int rc;
};

static void start_work(void *arg)
{
    struct start_op *so = arg;

    so->rc = dz_store_put(so->store, REC_NS, so->op->id, ID_LEN, &so->op->rec, sizeof(so->op->rec),
                          so->ttl, DZ_STORE_NX);
    /* A later start for the phone may ask the MSSP whether this ended. */
    if (so->rc == 0)
        (void)dz_mssp_phone_started_in(so->store, so->op->rec.phone, so->op->rec.lock,
                                       so->op->rec.mssp_id, so->ttl);
}

static void start_done(struct dz_rctx *c, void *arg)
{
    struct start_op *so = arg;
    struct mssp_call *op = so->op;
    char poll[64];
    char cookie[160];

    if (so->rc != 0) {
        if (!c->closed)
            dz_rctx_problem(c, "service_unavailable", NULL);
        call_free(c, op, true);
        free(so);
        return;
    }
    snprintf(poll, sizeof(poll), "/auth/mobile/%s", op->id);
    snprintf(cookie, sizeof(cookie), DZ_COOKIE_MOBILE "=%s" DZ_COOKIE_MOBILE_ATTRS "%llu",
             op->bind_b64, (unsigned long long)(so->ttl / 1000));
    if (!c->closed)
        dz_rctx_json(
            c, 202,
            json_pack("{s:s, s:s, s:s}", "id", op->id, "verification_code", op->code, "poll", poll),
            &(struct dz_hdr){"set-cookie", cookie}, 1);
    dz_secret_wipe(cookie, sizeof(cookie));
    call_free(c, op, false);
    free(so);
}

static void started(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                    const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct mssp_call *op = dz_mssp_call_owner(c);
    struct start_op *so;
    json_t *j;
    const char *sid;

    if (!dz_mssp_call_done(c, &op->call, result, status)) {
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    j = json_loadb((const char *)body, len, 0, NULL);
    sid = dz_mssp_session_id(j, sizeof(op->rec.mssp_id) - 1);
    if (!sid) {
        json_decref(j);
        dz_rctx_problem(c, "upstream_unavailable", "the mobile signature service answered badly");
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    snprintf(op->rec.mssp_id, sizeof(op->rec.mssp_id), "%s", sid);
    json_decref(j);
    so = calloc(1, sizeof(*so));
    if (!so) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        call_free(c, op, true);
        dz_rctx_release(c);
        return;
    }
    so->op = op;
    so->store = c->gw->store;
    /* The record outlives the MSSP's own request by 30 s, so a poll that
     * comes just after the phone answered still finds it to finish. */
    so->ttl = c->gen->config->mobile.request_ttl_ms + 30000;
    if (dz_gw_state(c, start_work, start_done, so) != 0) {
        call_free(c, op, true); /* answered 503 */
        free(so);
    }
    dz_rctx_release(c); /* the MSSP call's hold (dz_gw_state holds its own) */
}

/* The phone is ours for this request: ask the MSSP. */
static void phone_claimed(struct dz_rctx *c, bool ok, void *arg)
{
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    struct mssp_call *op = arg;
    json_t *req = NULL;
    unsigned char rnd[ID_BYTES];
    unsigned char bind[32];
    char hash_b64[64];
    char url[1100];
    char *text = NULL;

    if (!ok)
        goto out; /* answered (or gone); no lock held */
    op->holds_phone = true;
    /* The hash is ours and random: the phone's signature is then good for
     * this one login only, and the MSSP cannot choose what gets signed. */
    if (dz_random(op->rec.hash, sizeof(op->rec.hash)) != 0 || dz_random(rnd, sizeof(rnd)) != 0 ||
        dz_random(bind, sizeof(bind)) != 0 ||
        dz_mid_verification_code_str(op->rec.hash, sizeof(op->rec.hash), op->code) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    /* The browser that starts is the one that collects (as the QR login):
     * an id handed to another browser, or a victim's browser sent to the
     * poll of a login the sender approved on their own phone (login CSRF),
     * opens nothing.  The store keeps the hash of the cookie's value. */
    dz_b64_encode_to(bind, sizeof(bind), true, op->bind_b64);
    dz_sha256(op->bind_b64, strlen(op->bind_b64), op->rec.binding);
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
    dz_secret_wipe(bind, sizeof(bind));
    free(text);
    json_decref(req);
}

/* The start is within the limits: read the request, claim the phone. */
static void start_counted(struct dz_rctx *c, bool ok, void *arg)
{
    json_t *body = NULL;
    struct mssp_call *op = NULL;
    const char *phone;
    const char *fin;

    if (!ok || dz_rctx_body_json(c, &body) != 0)
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
    dz_mssp_phone_claim(c, op->rec.phone, op->rec.lock, phone_claimed, op);
    op = NULL; /* phone_claimed's */
out:
    if (op)
        call_free(c, op, false);
    json_decref(body);
}

void dz_ep_mobile_start(struct dz_rctx *c)
{
    struct dz_start_limit lim;

    /* Each start is a billed MSSP session: limited per address as well as
     * per phone (dz_mssp_phone_claim). */
    if (!dz_mssp_enabled(c) || !dz_rctx_origin_ok(c))
        return;
    lim = dz_start_limit_of(c, "mobile");
    dz_start_check(c, &lim, 1, start_counted, NULL);
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
    /* The role comes from the SIM certificate alone, by the cards' rule
     * (judge policy AND title=Judge, lib/pki/certid.h): a judge's SIM signs
     * them in as a judge, whatever the client sent. */
    snprintf(s.role, sizeof(s.role), "%s", res->role[0] ? res->role : "citizen");
    dz_session_set_name(&s, res->name);
    s.auth_time = dz_unix_ms() / 1000;
    dz_certcheck_prf(res, v->sig, v->sig_len, s.prf);
    s.has_prf = true;
    dz_hex(res->sha256, sizeof(res->sha256), hex);
    rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "login", "means", "mobile",
                    "certificate_sha256", hex, "phone", v->rec.phone);
    verify_free(v);
    dz_login_complete_polled(c, &s, "mobile", rec);
}

/* ------------------------------------------------- the MSSP's final answer */

/*
 * Across instances.  The browser's poll may reach any instance, and so may
 * a second poll of the same login (another tab, a retry through the load
 * balancer).  One poll of the cluster at a time asks the MSSP (it holds the
 * WATCH_NS lease); the MSSP's final answer, once one instance has it, is
 * written to the store (RES_NS) and published, and every other poll, on any
 * instance, waits for that wake-up (looking at the store itself once a
 * second in case one is lost).  Whichever poll then takes the record
 * finishes the login: one session, as with a single instance.
 */

/* A poll of request c: waiting on the store, or asking the MSSP.  Its
 * store steps run off the loop (dz_gw_state); what they found is kept here
 * for the loop to act on. */
struct poll_op {
    struct mssp_call m; /* first: m.call's owner is the poll_op */
    struct dz_rctx *c;
    struct dz_store *store;
    ev_timer timer;
    struct dz_wake_waiter waiter;
    ev_tstamp deadline; /* ev_now at which the poll answers "pending" */
    uint64_t lease_ms;  /* the lease a look asks for */
    uint64_t res_ttl;   /* how long a shared answer is kept */
    bool is_waiting;    /* timer and waiter armed, c held for them */
    bool is_watching;   /* holds the lease: its MSSP call is the cluster's */
    bool busy;          /* a look's store steps are running */
    bool again;         /* woken meanwhile: look once more */
    bool gone;          /* the client went meanwhile: the look frees p */
    /* What the store steps found (look_work, answer_work). */
    int res_rc;   /* the shared answer's read */
    int lease_rc; /* the lease's NX put */
    int take_rc;  /* the record's take */
    int share_rc; /* the shared answer's write */
    json_t *j;    /* the MSSP's final answer (shared or this poll's) */
};

static struct ev_loop *loop_of(struct dz_rctx *c)
{
    return dz_worker_loop(c->gw_worker->worker);
}

static void lease_release(struct dz_rctx *c, struct poll_op *p)
{
    if (p->is_watching)
        dz_gw_store_del(c, WATCH_NS, p->m.id, ID_LEN);
    p->is_watching = false;
}

static void poll_free(struct dz_rctx *c, struct poll_op *p)
{
    if (!p)
        return;
    lease_release(c, p);
    if (p->is_waiting) {
        ev_timer_stop(loop_of(c), &p->timer);
        dz_wake_cancel(&p->waiter);
        p->is_waiting = false;
        dz_rctx_release(c);
    }
    json_decref(p->j);
    free(p);
}

/* The client went while the MSSP call ran (mssp_call.c's cancel). */
static void poll_drop(struct dz_rctx *c, void *owner)
{
    poll_free(c, owner);
}

/* The client went while the poll waited on the store.  A look running
 * then still uses p: it frees p when it returns (look_done). */
static void wait_cancel(struct dz_rctx *c)
{
    struct poll_op *p = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (p && p->busy) {
        ev_timer_stop(loop_of(c), &p->timer);
        dz_wake_cancel(&p->waiter);
        if (p->is_waiting)
            dz_rctx_release(c);
        p->is_waiting = false;
        p->gone = true;
        return;
    }
    poll_free(c, p);
}

/* Stop waiting on the store (the poll goes on: it answers, or asks the
 * MSSP).  c stays held by the caller's own hold until it is done. */
static void wait_stop(struct dz_rctx *c, struct poll_op *p)
{
    if (!p->is_waiting)
        return;
    ev_timer_stop(loop_of(c), &p->timer);
    dz_wake_cancel(&p->waiter);
    p->is_waiting = false;
    if (c->op == p) {
        c->op = NULL;
        c->cancel = NULL;
    }
}

/* The MSSP's final answer, kept for the polls of other instances: only
 * what finishing needs (state, result, signature, certificate).  Off the
 * loop; 0 or the store's error. */
static int result_share(struct poll_op *p)
{
    json_t *o = json_pack("{s:s}", "state", "COMPLETE");
    /* The bounds complete() reads them with: the shared value stays under
     * RES_MAX; a longer field is left out and fails there as it would here. */
    static const struct {
        const char *key;
        size_t max;
    } fields[] = {{"result", 32}, {"signature", 1024}, {"cert", 24 * 1024}};
    char *text = NULL;
    int rc = DZ_ERR_NOMEM;

    for (size_t i = 0; o && i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = dz_json_str(p->j, fields[i].key, fields[i].max);
        if (v)
            json_object_set_new(o, fields[i].key, json_string(v));
    }
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text)
        rc = dz_store_put(p->store, RES_NS, p->m.id, ID_LEN, text, strlen(text), p->res_ttl, 0);
    if (rc == 0)
        dz_store_publish(p->store, REC_NS, p->m.id, ID_LEN);
    free(text);
    json_decref(o);
    return rc;
}

/* Off the loop: exactly one poll of the cluster takes the record; the one
 * that does drops the shared answer (it names a certificate: not kept)
 * and the phone's one-at-a-time lock (the request is over for the phone
 * whatever the outcome). */
static void take_work(struct poll_op *p)
{
    struct dz_buf taken;

    dz_buf_init(&taken, sizeof(struct mob_rec));
    p->take_rc = dz_store_take(p->store, REC_NS, p->m.id, ID_LEN, &taken);
    if (p->take_rc == 0 && taken.len != sizeof(struct mob_rec))
        p->take_rc = DZ_ERR_NOTFOUND;
    dz_buf_cleanup(&taken);
    if (p->take_rc != 0)
        return;
    (void)dz_store_del(p->store, RES_NS, p->m.id, ID_LEN);
    dz_mssp_phone_release_in(p->store, p->m.rec.phone, p->m.rec.lock);
}

/* On the loop, after take_work: the final answer p->j of the MSSP
 * finishes the login (or its take found it finished). */
static void complete(struct dz_rctx *c, struct poll_op *p)
{
    const struct mob_rec *rec = &p->m.rec;
    struct verify_op *v = NULL;
    const char *res;
    const char *sig;
    const char *cert;
    unsigned char *der = NULL;
    size_t der_len = 0;

    if (dz_store_failed(p->take_rc)) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, p->take_rc);
        goto out;
    }
    if (p->take_rc != 0) {
        dz_rctx_problem(c, "not_found", "this request is finished");
        goto out;
    }
    res = dz_json_str(p->j, "result", 32);
    if (!res || strcmp(res, "OK") != 0) {
        mobile_failed(c, rec, dz_mssp_result_code(res));
        goto out;
    }
    v = calloc(1, sizeof(*v));
    sig = dz_json_str(p->j, "signature", 1024);
    cert = dz_json_str(p->j, "cert", 24 * 1024);
    if (!v || !sig || !cert || dz_b64_decode(sig, strlen(sig), false, &v->sig, &v->sig_len) != 0 ||
        dz_b64_decode(cert, strlen(cert), false, &der, &der_len) != 0 ||
        dz_x509_from_der(der, der_len, &v->cert) != 0) {
        mobile_failed(c, rec, "signature_invalid");
        goto out;
    }
    v->rec = *rec;
    /* The phone signed our hash as is (ECDSA P-256, raw r||s). */
    if (dz_sig_verify_digest(X509_get0_pubkey(v->cert), "ES256", v->rec.hash, sizeof(v->rec.hash),
                             v->sig, v->sig_len) != 0) {
        mobile_failed(c, rec, "signature_invalid");
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
}

/* Off the loop, the lease holder's final answer: the lease goes first
 * (this poll no longer asks), the answer is shared before the record is
 * taken (a poll waiting on another instance learns at once that the login
 * is over), then the take. */
static void answer_work(void *arg)
{
    struct poll_op *p = arg;

    (void)dz_store_del(p->store, WATCH_NS, p->m.id, ID_LEN);
    p->share_rc = result_share(p);
    take_work(p);
}

static void answer_done(struct dz_rctx *c, void *arg)
{
    struct poll_op *p = arg;

    if (p->share_rc != 0)
        /* This poll still finishes the login itself; a poll of the same
         * login on another instance then answers "finished" when its wait
         * ends instead of at once. */
        dz_rctx_logj(c, DZ_LOG_WARN, "mobile_share",
                     json_pack("{s:s, s:s}", "msg", "the MSSP's answer could not be shared",
                               "error", dz_err_str(p->share_rc)));
    complete(c, p);
    poll_free(c, p);
}

/* The lease holder's MSSP call answered. */
static void polled(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                   const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct poll_op *p = dz_mssp_call_owner(c);
    const char *state;

    if (!dz_mssp_call_done(c, &p->m.call, result, status))
        goto out;
    p->j = json_loadb((const char *)body, len, 0, NULL);
    state = dz_json_str(p->j, "state", 16);
    if (!state || strcmp(state, "COMPLETE") != 0) {
        if (!c->closed)
            dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
        goto out;
    }
    /* The lease is released by answer_work, in its order. */
    p->is_watching = false;
    if (dz_gw_state(c, answer_work, answer_done, p) == 0)
        p = NULL; /* answer_done's */
    else
        p->is_watching = true; /* answered 503; poll_free releases it */
out:
    /* Whatever came back, this poll no longer asks: another may. */
    poll_free(c, p);
    dz_rctx_release(c); /* the MSSP call's hold */
}

/* Ask the MSSP, as the cluster's one poll of this login, for up to wait_ms.
 * False when the call could not start (c answered, p freed). */
static bool watch(struct dz_rctx *c, struct poll_op *p, uint32_t wait_ms)
{
    char url[1200];

    snprintf(url, sizeof(url), "%s/mid/session/%s?timeoutMs=%u", c->gen->config->mobile.mssp_url,
             p->m.rec.mssp_id, wait_ms);
    /* The MSSP holds the poll up to wait_ms: give the transfer room beyond. */
    if (dz_mssp_call_start(c, &p->m.call, p, poll_drop, "GET", url, NULL, wait_ms + 10000,
                           polled) == 0)
        return true;
    dz_rctx_problem(c, "upstream_unavailable", NULL);
    poll_free(c, p);
    return false;
}

/* Off the loop, one look: the shared answer (then the take), or else the
 * lease. */
static void look_work(void *arg)
{
    struct poll_op *p = arg;
    struct dz_buf got;

    p->lease_rc = DZ_ERR_NOTFOUND;
    dz_buf_init(&got, RES_MAX);
    p->res_rc = dz_store_get(p->store, RES_NS, p->m.id, ID_LEN, &got);
    if (p->res_rc == 0) {
        p->j = json_loadb((const char *)got.data, got.len, 0, NULL);
        if (p->j)
            take_work(p);
    } else if (!dz_store_failed(p->res_rc)) {
        p->lease_rc =
            dz_store_put(p->store, WATCH_NS, p->m.id, ID_LEN, "1", 1, p->lease_ms, DZ_STORE_NX);
    }
    dz_buf_cleanup(&got);
}

static void look(struct poll_op *p);

/* What one look found: the answer is there (finish), or nobody asks the
 * MSSP (ask it), or the wait is over ("pending"), else wait on. */
static void look_done(struct dz_rctx *c, void *arg)
{
    struct poll_op *p = arg;
    ev_tstamp left = p->deadline - ev_now(loop_of(c));
    int rc = p->res_rc;

    p->busy = false;
    if (p->gone) {
        /* wait_cancel dropped the wait's hold; a lease taken meanwhile goes. */
        if (p->lease_rc == 0)
            p->is_watching = true;
        poll_free(c, p);
        return;
    }
    if (rc == 0) {
        wait_stop(c, p);
        if (p->j)
            complete(c, p);
        else
            dz_rctx_problem(c, "service_unavailable", NULL);
        goto done;
    }
    if (dz_store_failed(rc))
        goto failed;
    rc = p->lease_rc;
    if (rc == 0) {
        wait_stop(c, p);
        p->is_watching = true;
        /* p is the call's now (or freed by watch() if it could not start). */
        (void)watch(c, p, left > 0 ? (uint32_t)(left * 1000) : 0);
        dz_rctx_release(c); /* the wait's hold (the call took its own) */
        return;
    }
    if (rc != DZ_ERR_EXISTS)
        goto failed;
    if (left <= 0) {
        wait_stop(c, p);
        if (!c->answered)
            dz_rctx_json(c, 200, json_pack("{s:s}", "state", "pending"), NULL, 0);
        goto done;
    }
    if (p->again) {
        look(p); /* woken while the look ran: the answer may be newer */
        return;
    }
    ev_timer_stop(loop_of(c), &p->timer);
    ev_timer_set(&p->timer, left < dz_wake_look_interval() ? left : dz_wake_look_interval(), 0);
    ev_timer_start(loop_of(c), &p->timer);
    return;
failed:
    wait_stop(c, p);
    if (!c->closed)
        dz_rctx_state_unavailable(c, rc);
done:
    poll_free(c, p);
    dz_rctx_release(c); /* the wait's hold */
}

/* One look at the store (at the start, woken, or by the fallback timer),
 * its steps off the loop; a look asked for while one runs is made after
 * it. */
static void look(struct poll_op *p)
{
    struct dz_rctx *c = p->c;
    ev_tstamp left = p->deadline - ev_now(loop_of(c));

    if (p->busy) {
        p->again = true;
        return;
    }
    p->busy = true;
    p->again = false;
    json_decref(p->j);
    p->j = NULL;
    /* The lease outlives the MSSP call it covers (its wait plus the
     * transfer's margin), so it ends with the call, or after a crashed
     * holder's call would have ended: then another poll takes over. */
    p->lease_ms = (left > 0 ? (uint64_t)(left * 1000) : 0) + 15000;
    if (dz_gw_state(c, look_work, look_done, p) != 0) {
        /* answered 503 service_unavailable */
        p->busy = false;
        wait_stop(c, p);
        poll_free(c, p);
        dz_rctx_release(c); /* the wait's hold */
    }
}

static void look_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    look(t->data);
}

static void look_woken(struct dz_wake_waiter *w)
{
    look(w->arg);
}

/* The poll's first read: the request's record. */
struct first_op {
    struct dz_rctx *c;
    char id[ID_LEN + 1];
};

static void poll_read(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct first_op *f = arg;
    struct dz_rctx *c = f->c;
    struct poll_op *p;

    if (c->closed)
        goto out;
    if (dz_store_failed(rc)) {
        dz_rctx_state_unavailable(c, rc);
        goto out;
    }
    if (rc != 0 || len != sizeof(struct mob_rec)) {
        dz_rctx_problem(c, "not_found", "no such mobile login (it may have finished or expired)");
        goto out;
    }
    /* Checked before anything is asked or taken: a poll from another
     * browser neither finishes nor spends the login. */
    if (!dz_rctx_cookie_bound(c, DZ_COOKIE_MOBILE, ((const struct mob_rec *)data)->binding)) {
        dz_rctx_problem(c, "forbidden", "this mobile login belongs to another browser");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    memcpy(&p->m.rec, data, sizeof(p->m.rec));
    memcpy(p->m.id, f->id, ID_LEN + 1);
    p->c = c;
    p->store = c->gw->store;
    p->res_ttl = c->gen->config->mobile.request_ttl_ms + 30000;
    p->deadline = ev_now(loop_of(c)) + (ev_tstamp)dz_mssp_wait_ms(c) / 1000;
    ev_timer_init(&p->timer, look_tick, dz_wake_look_interval(), 0);
    p->timer.data = p;
    /* Waiting before the first look: an answer shared between the look and
     * the wait would otherwise be seen only by the fallback timer.  Not
     * waiting (it cannot fail for our short ns and id) only makes the
     * fallback the answer's way. */
    (void)dz_wake_wait(c->gw_worker, &p->waiter, REC_NS, f->id, ID_LEN, look_woken, p);
    p->is_waiting = true;
    c->op = p;
    c->cancel = wait_cancel;
    dz_rctx_hold(c);
    look(p);
out:
    free(f);
    dz_rctx_release(c); /* the read's hold */
}

void dz_ep_mobile_poll(struct dz_rctx *c, const char *id)
{
    struct first_op *f;

    if (!dz_mssp_enabled(c))
        return;
    if (strlen(id) != ID_LEN) {
        dz_rctx_problem(c, "not_found", "no such mobile login (it may have finished or expired)");
        return;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    f->c = c;
    memcpy(f->id, id, ID_LEN + 1);
    dz_rctx_hold(c);
    dz_store_get_async(c->gw->store, loop_of(c), REC_NS, f->id, ID_LEN, poll_read, f);
}
