/*
 * mssp_phone.c - the per-phone limits every mobile flow shares (login,
 * document signing): a few requests a minute, and one request waiting on a
 * phone at a time.  The lock's value is random per request; once the MSSP
 * has taken the request its session is recorded beside the lock, so that a
 * start finding the phone taken can ask the MSSP whether that request has
 * ended (nobody may ever poll it) and free the phone if so.  Loop thread
 * only; the store's steps run off the loop (core/gwasync.h).
 */
#include "mssp/mssp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/config.h"
#include "core/gen.h"
#include "core/gwasync.h"
#include "state/store.h"

#include "base/compat.h"

/* Store namespaces: the per-phone request rate, the one-at-a-time lock
 * and the MSSP session of the request holding it ("LOCK MSSP-ID"). */
#define PHONE_NS "mobphone"
#define SESS_NS "mobphsess"
#define RATE_NS "mobrate"

/* A claim on its way: counted and locked off the loop (gwasync.h); when
 * the lock is taken, the MSSP is asked whether its request has ended. */
struct claim_op {
    struct dz_mssp_call call; /* the status call (c->op while it runs) */
    struct dz_store *store;
    char phone[24];
    char token[DZ_MSSP_LOCK_LEN + 1]; /* this claim's lock value */
    char held[DZ_MSSP_LOCK_LEN + 1];  /* the value of the lock found taken */
    char mssp_id[64];                 /* its request's MSSP session, if recorded */
    unsigned rate;
    uint64_t lock_ms;
    int rc;        /* the count's, then the lock's */
    int64_t count; /* this minute's requests, this one included */
    bool locked;
    char *lock; /* the caller's copy of token */
    void (*then)(struct dz_rctx *c, bool ok, void *arg);
    void *arg;
};

/* Off the loop, a lock found taken: its value and, when its request's
 * start has recorded it, that request's MSSP session.  False when the lock
 * is gone meanwhile. */
static bool claim_find(struct claim_op *op)
{
    struct dz_buf v;
    const char *sp;
    bool found = false;

    memset(op->mssp_id, 0, sizeof(op->mssp_id));
    dz_buf_init(&v, 128);
    if (dz_store_get(op->store, PHONE_NS, op->phone, strlen(op->phone), &v) == 0 &&
        v.len == DZ_MSSP_LOCK_LEN) {
        found = true;
        memcpy(op->held, v.data, DZ_MSSP_LOCK_LEN);
        v.len = 0;
        /* "LOCK MSSP-ID": the session belongs to this lock, not an older one. */
        if (dz_store_get(op->store, SESS_NS, op->phone, strlen(op->phone), &v) == 0 &&
            v.len > DZ_MSSP_LOCK_LEN + 1 && v.len < DZ_MSSP_LOCK_LEN + 1 + sizeof(op->mssp_id) &&
            memcmp(v.data, op->held, DZ_MSSP_LOCK_LEN) == 0 && v.data[DZ_MSSP_LOCK_LEN] == ' ') {
            sp = (const char *)v.data + DZ_MSSP_LOCK_LEN + 1;
            memcpy(op->mssp_id, sp, v.len - DZ_MSSP_LOCK_LEN - 1);
        }
    }
    dz_buf_cleanup(&v);
    return found;
}

static void claim_lock(struct claim_op *op)
{
    /* Twice: a lock that ends between the put and its read is taken now. */
    for (int i = 0; i < 2; i++) {
        op->rc = dz_store_put(op->store, PHONE_NS, op->phone, strlen(op->phone), op->token,
                              DZ_MSSP_LOCK_LEN, op->lock_ms, DZ_STORE_NX);
        op->locked = op->rc == 0;
        if (op->rc != DZ_ERR_EXISTS || claim_find(op))
            return;
    }
}

static void claim_work(void *arg)
{
    struct claim_op *op = arg;

    /* No push-bombing: a few requests per phone per minute, and one at a
     * time (the lock lives as long as the request may wait). */
    op->rc = dz_store_incr(op->store, RATE_NS, op->phone, strlen(op->phone), 60000, &op->count);
    if (op->rc != 0 || op->count > (int64_t)op->rate)
        return;
    claim_lock(op);
}

/* Off the loop, the MSSP said the request holding the lock has ended: free
 * that lock only (a compare-and-delete: of two starts racing here one
 * takes the phone, and a newer request's lock is never freed), and claim. */
static void reclaim_work(void *arg)
{
    struct claim_op *op = arg;

    op->rc = dz_store_del_if(op->store, PHONE_NS, op->phone, strlen(op->phone), op->held,
                             DZ_MSSP_LOCK_LEN);
    if (op->rc == 0 || op->rc == DZ_ERR_NOTFOUND || op->rc == DZ_ERR_EXISTS)
        claim_lock(op);
}

/* c has been answered (503) and nothing is held: tell the caller. */
static void claim_abandon(struct dz_rctx *c, struct claim_op *op)
{
    void (*then)(struct dz_rctx *, bool, void *) = op->then;
    void *then_arg = op->arg;

    free(op);
    then(c, false, then_arg);
}

static void claim_answer(struct dz_rctx *c, struct claim_op *op)
{
    void (*then)(struct dz_rctx *, bool, void *) = op->then;
    void *then_arg = op->arg;
    bool ok = false;

    if (c->closed) {
        /* Nobody will use the lock: free the phone for its next request. */
        if (op->locked)
            dz_mssp_phone_release(c, op->phone, op->token);
    } else if (op->rc != 0 && op->count == 0) {
        dz_rctx_state_unavailable(c, op->rc); /* the count could not be kept */
    } else if (op->count > (int64_t)op->rate) {
        dz_rctx_problem_h(c, "rate_limited", "too many requests for this phone",
                          &(struct dz_hdr){"retry-after", "60"}, 1);
    } else if (op->rc == DZ_ERR_EXISTS) {
        dz_rctx_problem(c, "request_pending", "a request is already waiting on this phone");
    } else if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
    } else {
        memcpy(op->lock, op->token, sizeof(op->token));
        ok = true;
    }
    free(op);
    then(c, ok, then_arg);
}

static void reclaim_done(struct dz_rctx *c, void *arg)
{
    claim_answer(c, arg);
}

/* The client went while the MSSP was asked (mssp_call.c's cancel). */
static void status_drop(struct dz_rctx *c, void *owner)
{
    claim_answer(c, owner);
}

/* The MSSP's 200 on the request that holds the lock: ended only when it
 * says COMPLETE (whatever its result: an approved request waiting to be
 * collected no longer needs the phone either, and its own poll still
 * finishes it).  Anything else (RUNNING, no state, an unknown one, not
 * JSON) is not an end. */
static bool status_complete(const unsigned char *body, size_t len)
{
    json_t *j = json_loadb((const char *)body, len, 0, NULL);
    const char *state = dz_json_str(j, "state", 16);
    bool ended = state && strcmp(state, "COMPLETE") == 0;

    json_decref(j);
    return ended;
}

/* The MSSP's word on the request that holds the lock frees the phone when
 * that request has ended (status_complete), or when the MSSP answers 404:
 * it no longer has the session (expired there, or forgotten by a restart),
 * so nothing of it waits on the phone, and the MSSP is the one trusted to
 * say so.  Anything else, an error or a timeout included, leaves the lock
 * and the answer request_pending (fail closed). */
static void status_answered(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                            const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct claim_op *op = dz_mssp_call_owner(c);
    bool ended = false;

    if (result == 0 && status == 404) {
        dz_mssp_call_over(c, &op->call); /* an answer, not a failure of the MSSP */
        ended = !c->closed;
    } else if (dz_mssp_call_end(c, &op->call, result, status) && !c->closed) {
        ended = status_complete(body, len);
    }
    if (ended) {
        /* A full pool answered 503 and called nothing. */
        if (dz_gw_state(c, reclaim_work, reclaim_done, op) != 0)
            claim_abandon(c, op);
        op = NULL;
    }
    if (op)
        claim_answer(c, op);
    dz_rctx_release(c); /* the MSSP call's hold */
}

static void claim_done(struct dz_rctx *c, void *arg)
{
    struct claim_op *op = arg;
    char url[1200];

    /* Taken by a request the MSSP has: has it ended on the phone meanwhile
     * (refused, cancelled, timed out, approved) with nobody polling since? */
    if (op->rc == DZ_ERR_EXISTS && op->mssp_id[0] && !c->closed) {
        snprintf(url, sizeof(url), "%s/mid/session/%s?timeoutMs=0", c->gen->config->mobile.mssp_url,
                 op->mssp_id);
        if (dz_mssp_call_start(c, &op->call, op, status_drop, "GET", url, NULL, 0,
                               status_answered) == 0)
            return;
    }
    claim_answer(c, op);
}

void dz_mssp_phone_claim(struct dz_rctx *c, const char *phone, char *lock,
                         void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg)
{
    const struct dz_config_mobile *mc = &c->gen->config->mobile;
    struct claim_op *op = calloc(1, sizeof(*op));
    unsigned char rnd[16];

    if (!op || strlen(phone) >= sizeof(op->phone) || dz_random(rnd, sizeof(rnd)) != 0) {
        free(op);
        dz_rctx_state_unavailable(c, DZ_ERR_NOMEM);
        then(c, false, arg);
        return;
    }
    op->store = c->gw->store;
    snprintf(op->phone, sizeof(op->phone), "%s", phone);
    dz_b64_encode_to(rnd, sizeof(rnd), true, op->token);
    op->rate = mc->phone_rate;
    op->lock_ms = mc->request_ttl_ms;
    op->lock = lock;
    op->then = then;
    op->arg = arg;
    /* A full pool answered 503 and called nothing: then() still must run. */
    if (dz_gw_state(c, claim_work, claim_done, op) != 0)
        claim_abandon(c, op);
}

int dz_mssp_phone_started_in(struct dz_store *s, const char *phone, const char *lock,
                             const char *mssp_id, uint64_t ttl_ms)
{
    char v[DZ_MSSP_LOCK_LEN + 1 + 64];
    int n = snprintf(v, sizeof(v), "%.*s %s", DZ_MSSP_LOCK_LEN, lock, mssp_id);

    if (n < 0 || (size_t)n >= sizeof(v))
        return DZ_ERR_TOOBIG;
    return dz_store_put(s, SESS_NS, phone, strlen(phone), v, (size_t)n, ttl_ms, 0);
}

/* A failed start's own lock, dropped off the loop. */
struct release_op {
    struct dz_store *store;
    char phone[24];
    char lock[DZ_MSSP_LOCK_LEN + 1];
};

static void release_work(void *arg)
{
    struct release_op *op = arg;

    dz_mssp_phone_release_in(op->store, op->phone, op->lock);
}

static void release_done(struct dz_rctx *c, void *arg)
{
    free(arg);
}

void dz_mssp_phone_release(struct dz_rctx *c, const char *phone, const char *lock)
{
    struct release_op *op = calloc(1, sizeof(*op));

    /* A compare-and-delete, never a plain delete: the lock may have
     * expired during this start and another request taken the phone, and
     * that request's lock must stay.  Out of memory or a full pool: the
     * lock simply lasts its time (the phone stays held, never freed for
     * another). */
    if (!op || strlen(phone) >= sizeof(op->phone)) {
        free(op);
        return;
    }
    op->store = c->gw->store;
    snprintf(op->phone, sizeof(op->phone), "%s", phone);
    snprintf(op->lock, sizeof(op->lock), "%.*s", DZ_MSSP_LOCK_LEN, lock);
    if (dz_gw_state_try(c, release_work, release_done, op) != 0)
        free(op);
}

void dz_mssp_phone_release_in(struct dz_store *s, const char *phone, const char *lock)
{
    (void)dz_store_del_if(s, PHONE_NS, phone, strlen(phone), lock, DZ_MSSP_LOCK_LEN);
}
