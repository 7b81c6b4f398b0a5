/*
 * batchsign.c - see batchsign.h.  Each pending request holds a reference on
 * its context until its callback has run, as every step of gwasync.c does.
 */
#include "core/batchsign.h"

#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "base/err.h"
#include "core/gen.h"
#include "http/httpd.h"
#include "http/pool.h"
#include "keys/signer.h"

#include "base/compat.h"

struct entry {
    struct dz_rctx *c;
    struct dz_assertion_in in;
    void (*then)(struct dz_rctx *c, int rc, char *token, void *arg);
    void *arg;
    int rc;
    char *token;
};

struct dz_batchsign {
    ev_prepare prepare; /* first: the watcher's data is the batcher */
    struct ev_loop *loop;
    struct entry *pending[DZ_BATCHSIGN_MAX];
    size_t n;
    uint64_t first_us; /* when pending[0] came */
};

/* One signature's worth: entries of one generation and audience. */
struct job {
    struct dz_gen *gen; /* borrowed: every entry's c holds it */
    size_t n;
    struct entry *e[DZ_BATCHSIGN_MAX];
};

static void job_sign(void *p)
{
    struct job *j = p;
    struct dz_gen *g = j->gen;
    const struct dz_assertion_in *ins[DZ_BATCHSIGN_MAX];
    char *tokens[DZ_BATCHSIGN_MAX];
    int rcs[DZ_BATCHSIGN_MAX];

    for (size_t i = 0; i < j->n; i++)
        ins[i] = &j->e[i]->in;
    dz_assertion_sign_batch(g->signers[g->active], g->kids[g->active], ins, j->n, tokens, rcs);
    for (size_t i = 0; i < j->n; i++) {
        j->e[i]->rc = rcs[i];
        j->e[i]->token = tokens[i];
    }
}

/* then() first, release last: the release may free c (gwasync.c). */
static void deliver(struct entry *e)
{
    struct dz_rctx *c = e->c;

    e->then(c, e->rc, e->token, e->arg);
    free(e);
    dz_rctx_release(c);
}

static void job_done(void *p)
{
    struct job *j = p;

    for (size_t i = 0; i < j->n; i++)
        deliver(j->e[i]);
    free(j);
}

static void job_fail(struct job *j, int rc)
{
    for (size_t i = 0; i < j->n; i++)
        j->e[i]->rc = rc;
    job_done(j);
}

static void job_run(struct job *j)
{
    struct dz_gen *g = j->gen;
    struct dz_rctx *c = j->e[0]->c;

    if (!dz_signer_is_blocking(g->signers[g->active])) {
        /* A file key signs in tens of microseconds, once for the batch. */
        job_sign(j);
        job_done(j);
        return;
    }
    if (dz_pool_submit(c->gw->pool, c->gw_worker->worker, job_sign, job_done, j) != 0)
        job_fail(j, DZ_ERR_UNAVAILABLE);
}

static bool same_batch(const struct entry *a, const struct entry *b)
{
    return a->c->gen == b->c->gen && a->in.ttl_s == b->in.ttl_s &&
           strcmp(a->in.aud, b->in.aud) == 0 && strcmp(a->in.iss, b->in.iss) == 0;
}

/* Sign everything pending, one job per generation and audience.  The list
 * is taken first: a callback may queue the next batch. */
static void flush(struct dz_batchsign *b)
{
    struct entry *all[DZ_BATCHSIGN_MAX];
    bool taken[DZ_BATCHSIGN_MAX] = {false};
    size_t n = b->n;
    /* One iat for the batch (the root states it for all): now, which is
     * not before any request's own iat or login time. */
    int64_t iat = dz_unix_ms() / 1000;

    memcpy(all, b->pending, n * sizeof(all[0]));
    b->n = 0;
    ev_prepare_stop(b->loop, &b->prepare);
    for (size_t i = 0; i < n; i++) {
        struct job *j;
        if (taken[i])
            continue;
        j = malloc(sizeof(*j));
        if (!j) {
            all[i]->rc = DZ_ERR_NOMEM;
            deliver(all[i]);
            continue;
        }
        j->gen = all[i]->c->gen;
        j->n = 0;
        for (size_t k = i; k < n; k++) {
            if (taken[k] || !same_batch(all[i], all[k]))
                continue;
            taken[k] = true;
            if (all[k]->in.iat < iat)
                all[k]->in.iat = iat;
            j->e[j->n++] = all[k];
        }
        job_run(j);
    }
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    flush((struct dz_batchsign *)w);
}

static struct dz_batchsign *batcher_of(struct dz_rctx *c)
{
    struct dz_gw_worker *w = c->gw_worker;
    struct dz_batchsign *b = w->batch;

    if (b)
        return b;
    b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->loop = dz_worker_loop(w->worker);
    ev_prepare_init(&b->prepare, prepare_cb);
    /* Before the engine's own prepare watcher, which flushes the
     * connections: an answer a callback writes then still goes out in
     * this turn. */
    ev_set_priority(&b->prepare, EV_MAXPRI);
    w->batch = b;
    return b;
}

void dz_gw_sign_batched(struct dz_rctx *c, const struct dz_assertion_in *in,
                        void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg)
{
    struct dz_batchsign *b = batcher_of(c);
    struct entry *e = malloc(sizeof(*e));
    uint64_t now = dz_now_us();

    if (!b || !e) {
        free(e);
        then(c, DZ_ERR_NOMEM, NULL, arg);
        return;
    }
    *e = (struct entry){.c = c, .in = *in, .then = then, .arg = arg};
    dz_rctx_hold(c);
    if (b->n == 0) {
        b->first_us = now;
        ev_prepare_start(b->loop, &b->prepare);
    }
    b->pending[b->n++] = e;
    if (b->n == DZ_BATCHSIGN_MAX || now - b->first_us >= DZ_BATCHSIGN_WINDOW_US)
        flush(b);
}

void dz_batchsign_free(struct dz_batchsign *b)
{
    if (!b)
        return;
    /* The loop has ended: nothing can be signed and answered any more. */
    ev_prepare_stop(b->loop, &b->prepare);
    for (size_t i = 0; i < b->n; i++) {
        b->pending[i]->rc = DZ_ERR_UNAVAILABLE;
        deliver(b->pending[i]);
    }
    free(b);
}
