/*
 * gwasync.c - see gwasync.h.  The request reference taken here is what keeps
 * c alive while work runs elsewhere; it is dropped after the callback.
 */
#include "core/gwasync.h"

#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/auditrec.h"
#include "base/err.h"
#include "base/log.h"
#include "core/metrics.h"
#include "http/httpc.h"
#include "http/pool.h"
#include "keys/signer.h"
#include "state/store.h"

#include "base/compat.h"

struct blocking_op {
    struct dz_rctx *c;
    void (*work)(void *arg);
    void (*done)(struct dz_rctx *c, void *arg);
    void *arg;
};

static void blocking_work(void *p)
{
    struct blocking_op *op = p;
    op->work(op->arg);
}

static void blocking_done(void *p)
{
    struct blocking_op *op = p;
    struct dz_rctx *c = op->c;

    /* done first, release last: the release may be the final one and free c
     * (the stream closed meanwhile), so nothing may touch c after it. */
    op->done(c, op->arg);
    free(op);
    dz_rctx_release(c);
}

static int submit(struct dz_rctx *c, void (*work)(void *arg),
                  void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    struct blocking_op *op = malloc(sizeof(*op));

    if (!op)
        return DZ_ERR_UNAVAILABLE;
    *op = (struct blocking_op){c, work, done, arg};
    /* refs is loop-thread only (rctx.h), so the hold is taken here, on the
     * loop, before the job exists; blocking_done releases it on the loop. */
    dz_rctx_hold(c);
    if (dz_pool_submit(c->gw->pool, c->gw_worker->worker, blocking_work, blocking_done, op) != 0) {
        dz_rctx_release(c);
        free(op);
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

int dz_gw_blocking(struct dz_rctx *c, void (*work)(void *arg),
                   void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    if (submit(c, work, done, arg) != 0) {
        /* A full pool is load shedding, not a fault: the client gets a 503 it
         * may retry, and the caller only has to free arg (gwasync.h). */
        dz_rctx_problem(c, "service_unavailable", "the gateway is busy");
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

static void later_cb(void *p)
{
    struct blocking_op *op = p;
    struct dz_rctx *c = op->c;
    struct dz_worker *w = c->gw_worker->worker;

    /* As blocking_done: done first, the releases last (c may go with them). */
    op->done(c, op->arg);
    free(op);
    dz_rctx_release(c);
    dz_worker_release(w);
}

int dz_gw_later(struct dz_rctx *c, void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    struct dz_worker *w = c->gw_worker->worker;
    struct blocking_op *op = malloc(sizeof(*op));

    if (!op)
        return DZ_ERR_UNAVAILABLE;
    *op = (struct blocking_op){c, NULL, done, arg};
    dz_rctx_hold(c);
    /* A drain waits for the post as it waits for a pool job's answer. */
    dz_worker_hold(w);
    if (dz_worker_post(w, later_cb, op) != 0) {
        dz_worker_release(w);
        dz_rctx_release(c);
        free(op);
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

int dz_gw_state_try(struct dz_rctx *c, void (*work)(void *arg),
                    void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    if (dz_store_waits(c->gw->store))
        return submit(c, work, done, arg);
    work(arg);
    done(c, arg);
    return 0;
}

int dz_gw_state(struct dz_rctx *c, void (*work)(void *arg),
                void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    if (dz_store_waits(c->gw->store))
        return dz_gw_blocking(c, work, done, arg);
    work(arg);
    done(c, arg);
    return 0;
}

struct audit_op {
    struct dz_rctx *c;
    void (*then)(struct dz_rctx *c, int rc, void *arg);
    void *arg;
    /* A line whose action has happened (a slot's): its loss is told as
     * such, under this kind (darvaza_audit_lost_total). */
    const char *lost_kind;
    const char *type;
};

/* Nothing can refuse the action any more, so the loss itself must show:
 * an error naming the line (its type, the request by its id, never the
 * line's content) and a count an alert can watch. */
static void audit_lost(struct audit_op *op, int result)
{
    struct dz_rctx *c = op->c;

    dz_rctx_logj(c, DZ_LOG_ERROR, "audit_lost",
                 json_pack("{s:s, s:s, s:s, s:s}", "msg", "audit line lost after its action",
                           "kind", op->lost_kind, "type", op->type ? op->type : "", "error",
                           dz_err_str(result)));
    dz_metrics_audit_lost(c->gw->metrics, op->lost_kind);
}

static void audit_done(void *p, int result)
{
    struct audit_op *op = p;
    struct dz_rctx *c = op->c;

    /* Logged here, once, for every caller; then() still gets the error and
     * must refuse: an action whose audit line is not durable did not happen. */
    if (result != 0 && op->lost_kind)
        audit_lost(op, result);
    else if (result != 0)
        dz_rctx_logj(
            c, DZ_LOG_ERROR, "audit_failed",
            json_pack("{s:s, s:s}", "msg", "audit line not written", "error", dz_err_str(result)));
    op->then(c, result, op->arg);
    free(op);
    dz_rctx_release(c);
}

void dz_gw_audit(struct dz_rctx *c, json_t *record,
                 void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg)
{
    struct audit_op *op = malloc(sizeof(*op));
    int rc;

    if (!record || !op) {
        json_decref(record);
        free(op);
        /* then() may run before dz_gw_audit returns (here and below): a
         * caller must not use what then() frees once the call is made. */
        then(c, DZ_ERR_NOMEM, arg);
        return;
    }
    json_object_set_new(record, "rid", json_string(c->rid));
    *op = (struct audit_op){c, then, arg, NULL, NULL};
    dz_rctx_hold(c);
    rc = dz_audit_append(c->gw->audit, record, c->gw_worker->worker, audit_done, op);
    if (rc != 0) {
        dz_rctx_release(c);
        free(op);
        then(c, rc, arg);
    }
}

void dz_gw_audit_rec(struct dz_rctx *c, struct dz_audit_rec *record,
                     void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg)
{
    struct audit_op *op = malloc(sizeof(*op));
    int rc;

    if (!record || !op) {
        dz_audit_rec_free(record);
        free(op);
        then(c, DZ_ERR_NOMEM, arg);
        return;
    }
    dz_audit_rec_opt_str(record, "rid", c->rid);
    *op = (struct audit_op){c, then, arg, NULL, NULL};
    dz_rctx_hold(c);
    rc = dz_audit_append_rec(c->gw->audit, record, c->gw_worker->worker, audit_done, op);
    if (rc != 0) {
        dz_rctx_release(c);
        free(op);
        then(c, rc, arg);
    }
}

/* The op comes first: audit_done frees it, and with it the slot. */
struct dz_gw_audit_slot {
    struct audit_op op;
    struct dz_audit_slot *s;
};

struct dz_gw_audit_slot *dz_gw_audit_slot_new(const char *type, const char *lost_kind,
                                              size_t members_max, size_t values_max)
{
    struct dz_gw_audit_slot *gs = malloc(sizeof(*gs));

    if (!gs)
        return NULL;
    /* And the request id dz_gw_audit_slot_append adds (rctx.c: hex and a
     * code constant). */
    gs->s = dz_audit_slot_new(type, members_max + 1,
                              values_max + DZ_AUDITREC_PLAIN_STR_MAX(DZ_RCTX_RID_MAX));
    if (!gs->s) {
        free(gs);
        return NULL;
    }
    gs->op = (struct audit_op){NULL, NULL, NULL, lost_kind, type};
    return gs;
}

struct dz_audit_rec *dz_gw_audit_slot_rec(struct dz_gw_audit_slot *gs)
{
    return gs ? dz_audit_slot_rec(gs->s) : NULL;
}

void dz_gw_audit_slot_free(struct dz_gw_audit_slot *gs)
{
    if (!gs)
        return;
    dz_audit_slot_free(gs->s);
    free(gs);
}

void dz_gw_audit_slot_append(struct dz_rctx *c, struct dz_gw_audit_slot *gs,
                             void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg)
{
    struct dz_audit_slot *s;
    int rc;

    if (!gs) {
        /* Not reserved: nothing to write, and the loss is said all the same. */
        struct audit_op op = {c, then, arg, "other", NULL};
        audit_lost(&op, DZ_ERR_NOMEM);
        then(c, DZ_ERR_NOMEM, arg);
        return;
    }
    s = gs->s;
    gs->s = NULL;
    /* Within the room reserved by dz_gw_audit_slot_new. */
    dz_audit_rec_opt_str(dz_audit_slot_rec(s), "rid", c->rid);
    gs->op.c = c;
    gs->op.then = then;
    gs->op.arg = arg;
    dz_rctx_hold(c);
    rc = dz_audit_append_slot(c->gw->audit, s, c->gw_worker->worker, audit_done, &gs->op);
    if (rc != 0) {
        audit_lost(&gs->op, rc);
        dz_rctx_release(c);
        free(gs);
        then(c, rc, arg);
    }
}

struct sign_op {
    struct dz_rctx *c;
    struct dz_assertion_in in;
    void (*then)(struct dz_rctx *c, int rc, char *token, void *arg);
    void *arg;
    int rc;
    char *token;
};

static void sign_work(void *p)
{
    struct sign_op *op = p;
    /* Read on a pool thread: safe because a generation is immutable and c
     * holds a reference on it until c itself is freed. */
    struct dz_gen *g = op->c->gen;

    op->rc = dz_assertion_sign(g->signers[g->active], g->kids[g->active], &op->in, &op->token);
}

static void sign_done(struct dz_rctx *c, void *p)
{
    struct sign_op *op = p;

    /* The token passes to then(); c is released by blocking_done after
     * this returns. */
    op->then(c, op->rc, op->token, op->arg);
    free(op);
}

void dz_gw_sign(struct dz_rctx *c, const struct dz_assertion_in *in,
                void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg)
{
    struct dz_gen *g = c->gen;
    struct dz_signer *s = g->signers[g->active];
    struct sign_op *op;
    char *token = NULL;
    int rc;

    if (!dz_signer_is_blocking(s)) {
        /* A file key signs in tens of microseconds: cheaper than a trip
         * through the pool. */
        rc = dz_assertion_sign(s, g->kids[g->active], in, &token);
        then(c, rc, token, arg);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        then(c, DZ_ERR_NOMEM, NULL, arg);
        return;
    }
    op->c = c;
    /* A shallow copy: the strings in in still point into c, which the
     * hold taken by submit keeps alive (gwasync.h). */
    op->in = *in;
    op->then = then;
    op->arg = arg;
    if (submit(c, sign_work, sign_done, op) != 0) {
        free(op);
        then(c, DZ_ERR_UNAVAILABLE, NULL, arg);
    }
}

void dz_gw_cancel_transfer(struct dz_rctx *c, struct dz_httpc_xfer **xfer,
                           void (*free_op)(void *op))
{
    void *op = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (!op || !xfer || !*xfer)
        return;
    dz_httpc_cancel(*xfer);
    *xfer = NULL;
    free_op(op);
    dz_rctx_release(c); /* the hold taken for the transfer */
}
