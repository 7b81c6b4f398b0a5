/* test_pool.c - the bounded blocking-work pool (lib/http/pool.c): work runs on a
 * pool thread, done() on the submitting worker's loop, a full queue is
 * DZ_ERR_UNAVAILABLE at once, dz_pool_free finishes what was queued, and a
 * drain of the HTTP engine waits for work in flight.  done()'s delivery is
 * taken at submit: out of memory then is an error the caller handles, and
 * a job once queued gets its done() whatever memory is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "base/err.h"
#include "http/httpd.h"
#include "http/pool.h"

#include "harness/fail_alloc.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct job {
    pthread_t work_thread;
    pthread_t done_thread;
    atomic_int state; /* 0 queued, 1 worked, 2 done */
    atomic_int started;
    int sleep_ms;
    sem_t *gate; /* work waits on it when set */
};

static void work_fn(void *arg)
{
    struct job *j = arg;

    j->work_thread = pthread_self();
    atomic_store(&j->started, 1);
    if (j->gate)
        sem_wait(j->gate);
    if (j->sleep_ms)
        sleep_ms(j->sleep_ms);
    atomic_store(&j->state, 1);
}

static void done_fn(void *arg)
{
    struct job *j = arg;

    j->done_thread = pthread_self();
    if (atomic_load(&j->state) == 1)
        atomic_store(&j->state, 2);
}

static void wait_state(struct job *j, int want)
{
    for (int i = 0; i < 500 && atomic_load(&j->state) != want; i++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&j->state), want);
}

/* ---------- an engine with no listener: just worker loops ---------- */

static pthread_t worker_thread;

static void *w_init(struct dz_worker *w, void *app)
{
    (void)app;
    worker_thread = pthread_self();
    return w;
}

static void never_request(struct dz_req *r, void *wdata)
{
    (void)r;
    (void)wdata;
    abort();
}

static struct dz_httpd *engine(void)
{
    struct dz_httpd_conf c;
    struct dz_httpd *h = NULL;

    memset(&c, 0, sizeof(c));
    c.workers = 1;
    dz_httpd_limits_default(&c.limits);
    c.handlers.worker_init = w_init;
    c.handlers.on_request = never_request;
    assert_int_equal(dz_httpd_new(&c, &h), 0);
    assert_int_equal(dz_httpd_start(h), 0);
    return h;
}

/* The only way to a worker without a request is worker_init's argument. */
static struct dz_worker *g_worker;

static void *w_init_keep(struct dz_worker *w, void *app)
{
    g_worker = w;
    return w_init(w, app);
}

static struct dz_worker *worker0(struct dz_httpd *h)
{
    (void)h;
    for (int i = 0; i < 500 && !g_worker; i++)
        sleep_ms(2);
    assert_non_null(g_worker);
    return g_worker;
}

static struct dz_httpd *engine_keep(void)
{
    struct dz_httpd_conf c;
    struct dz_httpd *h = NULL;

    g_worker = NULL;
    memset(&c, 0, sizeof(c));
    c.workers = 1;
    dz_httpd_limits_default(&c.limits);
    c.handlers.worker_init = w_init_keep;
    c.handlers.on_request = never_request;
    assert_int_equal(dz_httpd_new(&c, &h), 0);
    assert_int_equal(dz_httpd_start(h), 0);
    return h;
}

/* ---------- tests ---------- */

static void test_bad_args(void **state)
{
    struct dz_pool *p = (struct dz_pool *)&p;

    (void)state;
    assert_int_equal(dz_pool_new(0, 4, &p), DZ_ERR_INVAL);
    assert_null(p);
    assert_int_equal(dz_pool_new(1, 0, &p), DZ_ERR_INVAL);
    assert_int_equal(dz_pool_new(1, 4, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_pool_new(1, 4, &p), 0);
    assert_int_equal(dz_pool_submit(p, NULL, NULL, done_fn, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_pool_submit(NULL, NULL, work_fn, done_fn, NULL), DZ_ERR_INVAL);
    dz_pool_free(p);
    dz_pool_free(NULL);
}

static void test_no_loop(void **state)
{
    struct dz_pool *p = NULL;
    struct job j;

    (void)state;
    memset(&j, 0, sizeof(j));
    assert_int_equal(dz_pool_new(2, 8, &p), 0);
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &j), 0);
    wait_state(&j, 2);
    assert_false(pthread_equal(j.work_thread, pthread_self()));
    /* Without a worker, done runs on the pool thread right after work. */
    assert_true(pthread_equal(j.work_thread, j.done_thread));
    dz_pool_free(p);
}

static void test_done_on_loop(void **state)
{
    struct dz_httpd *h = engine_keep();
    struct dz_worker *w = worker0(h);
    struct dz_pool *p = NULL;
    struct job j[10];

    (void)state;
    memset(j, 0, sizeof(j));
    assert_int_equal(dz_pool_new(3, 16, &p), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(dz_pool_submit(p, w, work_fn, done_fn, &j[i]), 0);
    for (int i = 0; i < 10; i++) {
        wait_state(&j[i], 2);
        assert_false(pthread_equal(j[i].work_thread, worker_thread));
        assert_false(pthread_equal(j[i].work_thread, pthread_self()));
        assert_true(pthread_equal(j[i].done_thread, worker_thread));
    }
    dz_httpd_drain(h, 100);
    dz_pool_free(p);
    dz_httpd_free(h);
}

static void test_full_queue(void **state)
{
    struct dz_pool *p = NULL;
    struct job blocker, queued[2], extra;
    sem_t gate;

    (void)state;
    memset(&blocker, 0, sizeof(blocker));
    memset(queued, 0, sizeof(queued));
    memset(&extra, 0, sizeof(extra));
    sem_init(&gate, 0, 0);
    blocker.gate = &gate;
    assert_int_equal(dz_pool_new(1, 2, &p), 0);
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &blocker), 0);
    /* Wait until the only thread has taken the blocker off the queue. */
    for (int i = 0; i < 500 && !atomic_load(&blocker.started); i++)
        sleep_ms(2);
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &queued[0]), 0);
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &queued[1]), 0);
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &extra), DZ_ERR_UNAVAILABLE);
    sem_post(&gate);
    wait_state(&blocker, 2);
    wait_state(&queued[0], 2);
    wait_state(&queued[1], 2);
    assert_int_equal(atomic_load(&extra.state), 0); /* never ran */
    /* Room again. */
    assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &extra), 0);
    wait_state(&extra, 2);
    dz_pool_free(p);
    sem_destroy(&gate);
}

static void test_free_drains(void **state)
{
    struct dz_pool *p = NULL;
    struct job j[20];

    (void)state;
    memset(j, 0, sizeof(j));
    assert_int_equal(dz_pool_new(2, 32, &p), 0);
    for (int i = 0; i < 20; i++) {
        j[i].sleep_ms = 5;
        assert_int_equal(dz_pool_submit(p, NULL, work_fn, done_fn, &j[i]), 0);
    }
    dz_pool_free(p); /* returns only once every queued job has run */
    for (int i = 0; i < 20; i++)
        assert_int_equal(atomic_load(&j[i].state), 2);
}

static void test_drain_waits_for_work(void **state)
{
    struct dz_httpd *h = engine_keep();
    struct dz_worker *w = worker0(h);
    struct dz_pool *p = NULL;
    struct job j;

    (void)state;
    memset(&j, 0, sizeof(j));
    j.sleep_ms = 300;
    assert_int_equal(dz_pool_new(1, 4, &p), 0);
    assert_int_equal(dz_pool_submit(p, w, work_fn, done_fn, &j), 0);
    /* Deadline 0: no connection to wait for, but the job's done() must
     * still run on the loop before the worker stops. */
    dz_httpd_drain(h, 0);
    assert_int_equal(atomic_load(&j.state), 2);
    assert_true(pthread_equal(j.done_thread, worker_thread));
    dz_pool_free(p);
    dz_httpd_free(h);
}

static void test_free_order_is_safe(void **state)
{
    struct dz_httpd *h = engine_keep();
    struct dz_worker *w = worker0(h);
    struct dz_pool *p = NULL;
    struct job j;

    (void)state;
    memset(&j, 0, sizeof(j));
    j.sleep_ms = 2600; /* longer than the drain's grace (2 s) */
    assert_int_equal(dz_pool_new(1, 4, &p), 0);
    assert_int_equal(dz_pool_submit(p, w, work_fn, done_fn, &j), 0);
    dz_httpd_drain(h, 0); /* gives up on the job after the grace */
    assert_int_equal(atomic_load(&j.state), 0);
    /* The engine goes first (gateway/daemon/main.c's order): the job later posts
     * to a closed worker, which must not be freed memory (ASan). */
    dz_httpd_free(h);
    dz_pool_free(p);
    assert_int_equal(atomic_load(&j.state), 1); /* worked; done was dropped */
}

/* Out of memory at submit: refused there (the caller answers 503), nothing
 * queued, the worker not held (a drain does not wait for it). */
static void test_submit_out_of_memory(void **state)
{
    struct dz_httpd *h = engine_keep();
    struct dz_worker *w = worker0(h);
    struct dz_pool *p = NULL;
    struct job j;
    unsigned failures = fail_alloc_failures();
    size_t queued;
    uint64_t rejected;

    (void)state;
    memset(&j, 0, sizeof(j));
    assert_int_equal(dz_pool_new(1, 4, &p), 0);
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
    assert_int_equal(dz_pool_submit(p, w, work_fn, done_fn, &j), DZ_ERR_NOMEM);
    assert_int_equal(fail_alloc_failures(), failures + 1);
    dz_pool_stats(p, &queued, &rejected);
    assert_int_equal(queued, 0);
    assert_int_equal(atomic_load(&j.started), 0);
    dz_httpd_drain(h, 0);
    assert_int_equal(atomic_load(&j.state), 0);
    dz_pool_free(p);
    dz_httpd_free(h);
}

/* The pool thread runs out of memory once the work is done (the hook armed
 * from inside work, on that thread): done() still runs on the loop, and the
 * delivery allocated nothing there (the arming is still there for the next
 * job's work to find and take back). */
static void arm_work(void *arg)
{
    work_fn(arg);
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
}

static void disarm_work(void *arg)
{
    struct job *j = arg;

    /* state 1 (worked) only if the delivery before left the arming alone */
    if (fail_alloc_armed()) {
        fail_alloc_disarm();
        work_fn(arg);
    } else {
        j->work_thread = pthread_self();
    }
}

static void test_delivery_needs_no_memory(void **state)
{
    struct dz_httpd *h = engine_keep();
    struct dz_worker *w = worker0(h);
    struct dz_pool *p = NULL;
    struct job j[2];
    unsigned failures = fail_alloc_failures();

    (void)state;
    memset(j, 0, sizeof(j));
    /* One thread: the second job's work runs where the first armed. */
    assert_int_equal(dz_pool_new(1, 4, &p), 0);
    assert_int_equal(dz_pool_submit(p, w, arm_work, done_fn, &j[0]), 0);
    wait_state(&j[0], 2);
    assert_true(pthread_equal(j[0].done_thread, worker_thread));
    assert_int_equal(dz_pool_submit(p, w, disarm_work, done_fn, &j[1]), 0);
    wait_state(&j[1], 2);
    assert_int_equal(fail_alloc_failures(), failures);
    dz_httpd_drain(h, 100);
    dz_pool_free(p);
    dz_httpd_free(h);
}

static void test_engine_without_listeners(void **state)
{
    struct dz_httpd *h = engine();

    (void)state;
    assert_int_equal(dz_httpd_port(h, 0), 0);
    assert_int_equal(dz_httpd_open_connections(h), 0);
    dz_httpd_drain(h, 10);
    dz_httpd_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_no_loop),
        cmocka_unit_test(test_done_on_loop),
        cmocka_unit_test(test_full_queue),
        cmocka_unit_test(test_free_drains),
        cmocka_unit_test(test_drain_waits_for_work),
        cmocka_unit_test(test_free_order_is_safe),
        cmocka_unit_test(test_engine_without_listeners),
        cmocka_unit_test(test_submit_out_of_memory),
        cmocka_unit_test(test_delivery_needs_no_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
