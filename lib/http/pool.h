/*
 * pool.h - a small bounded thread pool for work that blocks (argon2id,
 * SQLite, PKCS#11 calls), so that no event loop ever waits.
 *
 * work(arg) runs on a pool thread; then done(arg) runs on the worker loop
 * that submitted it (through dz_worker_post).  The queue is bounded: a full
 * queue is DZ_ERR_UNAVAILABLE at once (the caller answers 503), never a wait.
 */
#ifndef DZ_POOL_H
#define DZ_POOL_H

#include <stddef.h>
#include <stdint.h>

struct dz_pool;
struct dz_worker;

/* nthreads >= 1, queue_max >= 1.  Main thread. */
int dz_pool_new(unsigned nthreads, size_t queue_max, struct dz_pool **out);

/* Queue work. w may be NULL: done then runs on the pool thread right after
 * work (for callers without a loop, e.g. tests).  Any thread.  done may be
 * NULL.  While the job is queued or running, w's drain waits for it
 * (dz_worker_hold), so done still runs during a graceful stop.
 * Returns 0, DZ_ERR_UNAVAILABLE (queue full or stopping), DZ_ERR_NOMEM
 * (with a worker: the delivery of done could not be taken), DZ_ERR_INVAL
 * (p or work NULL); on error nothing was queued and the caller keeps arg.
 * The queue is a fixed ring; with a worker, one small block for done's
 * delivery is taken here rather than when the work is over, so that a
 * queued job's done() is never lost for want of memory (only a worker
 * that has stopped loses it, see dz_pool_free). */
int dz_pool_submit(struct dz_pool *p, struct dz_worker *w, void (*work)(void *arg),
                   void (*done)(void *arg), void *arg);

/* Finish queued work, join the threads, free. NULL is a no-op.  Blocks.
 * Shutdown: dz_httpd_drain first (it waits, within its grace, for jobs
 * submitted with a worker); then dz_pool_free and dz_httpd_free in either
 * order.  A job whose worker has already stopped cannot run done: that is
 * logged as "pool_done_lost" and its arg stays with the caller. */
void dz_pool_free(struct dz_pool *p);

/* For the metrics: jobs waiting in the queue now, and submissions refused
 * since start (queue full or stopping).  Any thread (takes the pool's lock
 * briefly). */
void dz_pool_stats(struct dz_pool *p, size_t *queued, uint64_t *rejected);

#endif
