/*
 * pool.c - the bounded pool for blocking work; see pool.h.  Owns a fixed set
 * of threads and a fixed ring of queued jobs (allocated once: a full ring is
 * DZ_ERR_UNAVAILABLE, never a wait and never a growth).  It never runs
 * done() anywhere but on the submitting worker's loop (through
 * dz_worker_post_node), except for w == NULL, and never calls into a loop itself.
 */
#include "http/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/log.h"
#include "http/httpd.h"

#include "base/compat.h"

/* What travels to the worker loop once the work is done.  Taken at submit,
 * with its post inside: once the job is queued its answer cannot be lost
 * for want of memory (a request, and the worker's hold, wait for it). */
struct pool_delivery {
    struct dz_post post;
    void (*done)(void *arg);
    void *arg;
    struct dz_worker *w;
};

struct pool_job {
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct pool_delivery *d; /* NULL: no worker, done runs on the pool thread */
};

struct dz_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pool_job *ring;
    size_t cap;
    size_t head;
    size_t count;
    bool is_stopping;
    uint64_t rejected; /* submissions refused, under lock */
    pthread_t *threads;
    unsigned nthreads; /* started */
};

static void deliver_cb(void *p)
{
    struct pool_delivery *d = p;
    struct dz_worker *w = d->w;

    if (d->done)
        d->done(d->arg);
    free(d);
    dz_worker_release(w);
}

static void deliver(struct pool_delivery *d)
{
    int rc = dz_worker_post_node(d->w, &d->post, deliver_cb, d);

    if (rc == 0)
        return;
    /* A stopped worker cannot run done() any more: arg stays with its
     * owner, logged. */
    dz_log(DZ_LOG_ERROR, "pool_done_lost", "cannot deliver a finished job to worker %u: %s",
           dz_worker_index(d->w), dz_err_str(rc));
    dz_worker_release(d->w);
    free(d);
}

static void *pool_main(void *arg)
{
    struct dz_pool *p = arg;
    struct pool_job j;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->count == 0 && !p->is_stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->count == 0) { /* stopping and drained */
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        pthread_mutex_unlock(&p->lock);

        j.work(j.arg);
        if (j.d)
            deliver(j.d);
        else if (j.done)
            j.done(j.arg);
    }
}

int dz_pool_new(unsigned nthreads, size_t queue_max, struct dz_pool **out)
{
    struct dz_pool *p = NULL;
    int rc = DZ_ERR_INVAL;

    if (out)
        *out = NULL;
    if (!out || nthreads < 1 || nthreads > 1024 || queue_max < 1 || queue_max > (1u << 24))
        return DZ_ERR_INVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return DZ_ERR_NOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->cap = queue_max;
    p->ring = calloc(queue_max, sizeof(*p->ring));
    p->threads = calloc(nthreads, sizeof(*p->threads));
    if (!p->ring || !p->threads) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
            dz_log(DZ_LOG_ERROR, "pool_start", "cannot start pool thread %u", i);
            rc = DZ_ERR_IO;
            goto out;
        }
        p->nthreads++;
    }
    *out = p;
    p = NULL;
    rc = 0;
out:
    dz_pool_free(p);
    return rc;
}

void dz_pool_stats(struct dz_pool *p, size_t *queued, uint64_t *rejected)
{
    *queued = 0;
    *rejected = 0;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    *queued = p->count;
    *rejected = p->rejected;
    pthread_mutex_unlock(&p->lock);
}

int dz_pool_submit(struct dz_pool *p, struct dz_worker *w, void (*work)(void *arg),
                   void (*done)(void *arg), void *arg)
{
    struct pool_delivery *d = NULL;
    int rc = DZ_ERR_UNAVAILABLE;

    if (!p || !work)
        return DZ_ERR_INVAL;
    if (w) {
        d = malloc(sizeof(*d));
        if (!d)
            return DZ_ERR_NOMEM;
        *d = (struct pool_delivery){.done = done, .arg = arg, .w = w};
        dz_worker_hold(w); /* before it is visible to a pool thread */
    }
    pthread_mutex_lock(&p->lock);
    if (!p->is_stopping && p->count < p->cap) {
        struct pool_job *j = &p->ring[(p->head + p->count) % p->cap];
        j->work = work;
        j->done = done;
        j->arg = arg;
        j->d = d;
        p->count++;
        pthread_cond_signal(&p->cond);
        rc = 0;
    } else {
        p->rejected++;
    }
    pthread_mutex_unlock(&p->lock);
    if (rc != 0 && w) {
        dz_worker_release(w);
        free(d);
    }
    return rc;
}

void dz_pool_free(struct dz_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->is_stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->ring);
    free(p->threads);
    free(p);
}
