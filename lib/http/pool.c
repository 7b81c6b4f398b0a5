/*
 * pool.c - the bounded pool for blocking work; see pool.h.  Owns a fixed set
 * of threads and a fixed ring of queued jobs (allocated once: a full ring is
 * DZ_ERR_UNAVAILABLE, never a wait and never a growth).  It never runs
 * done() anywhere but on the submitting worker's loop (through
 * dz_worker_post), except for w == NULL, and never calls into a loop itself.
 */
#include "http/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "http/httpd.h"

#include "base/compat.h"

struct pool_job {
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct dz_worker *w;
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

/* What travels to the worker loop once the work is done. */
struct pool_delivery {
    void (*done)(void *arg);
    void *arg;
    struct dz_worker *w;
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

static void deliver(const struct pool_job *j)
{
    struct pool_delivery *d = NULL;
    struct timespec pause = {0, 10 * 1000 * 1000};
    int rc = DZ_ERR_NOMEM;

    /* Out of memory is retried for about a second (this thread may block;
     * the work is done and only its answer is left).  A stopped worker
     * cannot run done() any more: arg stays with its owner, logged. */
    for (int tries = 0; tries < 100; tries++) {
        if (!d)
            d = malloc(sizeof(*d));
        if (d) {
            d->done = j->done;
            d->arg = j->arg;
            d->w = j->w;
            rc = dz_worker_post(j->w, deliver_cb, d);
            if (rc == 0)
                return;
            if (rc != DZ_ERR_NOMEM)
                break;
        }
        nanosleep(&pause, NULL);
    }
    free(d);
    dz_log(DZ_LOG_ERROR, "pool_done_lost", "cannot deliver a finished job to worker %u: %s",
           dz_worker_index(j->w), dz_err_str(rc));
    dz_worker_release(j->w);
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
        if (j.w)
            deliver(&j);
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
    int rc = DZ_ERR_UNAVAILABLE;

    if (!p || !work)
        return DZ_ERR_INVAL;
    if (w)
        dz_worker_hold(w); /* before it is visible to a pool thread */
    pthread_mutex_lock(&p->lock);
    if (!p->is_stopping && p->count < p->cap) {
        struct pool_job *j = &p->ring[(p->head + p->count) % p->cap];
        j->work = work;
        j->done = done;
        j->arg = arg;
        j->w = w;
        p->count++;
        pthread_cond_signal(&p->cond);
        rc = 0;
    } else {
        p->rejected++;
    }
    pthread_mutex_unlock(&p->lock);
    if (rc != 0 && w)
        dz_worker_release(w);
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
