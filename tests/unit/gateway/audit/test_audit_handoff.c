/* test_audit_handoff.c - records appended on running worker loops reach the
 * audit writer in one hand-off per loop turn, and their results come back on
 * the loop that appended them: every callback exactly once, in append order
 * per loop, each line already in the file when its callback runs, the chain
 * whole.  Real HTTP engine workers (no listener), a real audit log.  The
 * results' way home needs no memory: a request waiting for its line is
 * told even when the writer's thread could not allocate a byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "base/err.h"
#include "base/looptag.h"
#include "http/httpd.h"
#include "http/httpd_int.h"

#include "harness/fail_alloc.h"

enum { WORKERS = 2, BURSTS = 10, PER_BURST = 50, PER_WORKER = BURSTS * PER_BURST };

static char dir[64];
static char path[96];

/* What the callbacks saw, per worker; written on that worker's loop only,
 * read by the test thread after T.mu says everything arrived. */
struct seen {
    pthread_t loop_thread;
    bool thread_known;
    unsigned order[PER_WORKER]; /* record numbers in callback order */
    unsigned n;
    off_t size_at_done[PER_WORKER]; /* file size when record i's done ran */
    unsigned calls[PER_WORKER];
    unsigned wrong_thread;
    unsigned outside_loop; /* bursts that ran outside ev_run (a test error) */
    unsigned failed;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned done;
    unsigned refused;
    struct dz_audit *a;
    struct dz_httpd *h;
    struct seen seen[WORKERS];
} T = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_request(struct dz_req *r, void *w)
{
    dz_req_respond(r, 404, NULL, 0, "", 0);
}

static off_t file_size(void)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* arg: worker index * PER_WORKER + record number. */
static void on_done(void *arg, int result)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct seen *s = &T.seen[id / PER_WORKER];
    unsigned k = id % PER_WORKER;

    if (!s->thread_known || !pthread_equal(s->loop_thread, pthread_self()))
        s->wrong_thread++;
    if (result != 0)
        s->failed++;
    s->calls[k]++;
    s->size_at_done[k] = file_size();
    if (s->n < PER_WORKER)
        s->order[s->n++] = k;
    pthread_mutex_lock(&T.mu);
    T.done++;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static json_t *rec(unsigned id)
{
    char rid[32];

    snprintf(rid, sizeof(rid), "h%u", id);
    return json_pack("{s:s, s:s}", "type", "login", "rid", rid);
}

struct burst {
    unsigned worker;
    unsigned first;
};

/* On the worker's loop: PER_BURST records in one callback, one loop turn. */
static void burst(void *p)
{
    struct burst *b = p;
    struct dz_worker *w = dz_httpd_worker_at(T.h, b->worker);
    struct seen *s = &T.seen[b->worker];

    s->loop_thread = pthread_self();
    s->thread_known = true;
    if (ev_depth(dz_worker_loop(w)) == 0)
        s->outside_loop++;
    for (unsigned i = b->first; i < b->first + PER_BURST; i++) {
        unsigned id = b->worker * PER_WORKER + i;
        if (dz_audit_append(T.a, rec(id), w, on_done, (void *)(uintptr_t)id) != 0) {
            pthread_mutex_lock(&T.mu);
            T.refused++;
            pthread_mutex_unlock(&T.mu);
        }
    }
    free(b);
}

/* Run fn on w's loop while it runs (ev_run): posts made before a worker's
 * loop starts run once before it, where records go straight to the writer;
 * a post made from a post always runs inside the loop. */
struct hop {
    struct dz_worker *w;
    void (*fn)(void *);
    void *arg;
};

static void hop_cb(void *p)
{
    struct hop *h = p;

    assert_int_equal(dz_worker_post(h->w, h->fn, h->arg), 0);
    free(h);
}

static void post_in_loop(struct dz_worker *w, void (*fn)(void *), void *arg)
{
    struct hop *h = malloc(sizeof(*h));

    assert_non_null(h);
    *h = (struct hop){w, fn, arg};
    assert_int_equal(dz_worker_post(w, hop_cb, h), 0);
}

static bool wait_done(unsigned n)
{
    struct timespec ts;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&T.mu);
    while (T.done < n && pthread_cond_timedwait(&T.cv, &T.mu, &ts) == 0)
        ;
    ok = T.done >= n;
    pthread_mutex_unlock(&T.mu);
    return ok;
}

static int setup(void **state)
{
    struct dz_httpd_conf conf;

    memset(&T.seen, 0, sizeof(T.seen));
    T.done = T.refused = 0;
    snprintf(dir, sizeof(dir), "/tmp/dz_handoff_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    if (dz_audit_open(path, &T.a) != 0)
        return -1;
    memset(&conf, 0, sizeof(conf));
    conf.workers = WORKERS;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &T.h) != 0 || dz_httpd_start(T.h) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    dz_httpd_drain(T.h, 1000);
    dz_httpd_free(T.h);
    dz_audit_close(T.a);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* End offset of the line whose rid is "h<id>" in buf. */
static size_t line_end(const char *buf, unsigned id)
{
    char needle[32];
    const char *p;

    snprintf(needle, sizeof(needle), "\"rid\":\"h%u\"", id);
    p = strstr(buf, needle);
    assert_non_null(p);
    p = strchr(p, '\n');
    assert_non_null(p);
    return (size_t)(p - buf) + 1;
}

static char *read_all(size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* 1,000 records from two loops: each done() exactly once, on its own loop,
 * in append order, after its line is in the file; one hand-off per loop
 * turn, not one per record; the chain verifies. */
static void test_two_loops(void **state)
{
    struct dz_audit_report r;
    size_t len;
    char *buf;

    for (unsigned b = 0; b < BURSTS; b++)
        for (unsigned w = 0; w < WORKERS; w++) {
            struct burst *p = malloc(sizeof(*p));
            assert_non_null(p);
            *p = (struct burst){w, b * PER_BURST};
            post_in_loop(dz_httpd_worker_at(T.h, w), burst, p);
        }
    assert_true(wait_done(WORKERS * PER_WORKER));
    assert_int_equal(T.refused, 0);
    /* At most one hand-off per burst and per 64 records, whatever the
     * scheduling; per-record hand-offs would make it 1,000. */
    assert_in_range(dz_audit_handoffs(T.a), 1, WORKERS * BURSTS);

    buf = read_all(&len);
    for (unsigned w = 0; w < WORKERS; w++) {
        struct seen *s = &T.seen[w];
        assert_int_equal(s->wrong_thread, 0);
        assert_int_equal(s->outside_loop, 0);
        assert_int_equal(s->failed, 0);
        assert_int_equal(s->n, PER_WORKER);
        for (unsigned k = 0; k < PER_WORKER; k++) {
            assert_int_equal(s->calls[k], 1);
            assert_int_equal(s->order[k], k);
            /* Durable first: the line was whole in the file when done ran. */
            assert_true(s->size_at_done[k] >= (off_t)line_end(buf, w * PER_WORKER + k));
        }
    }
    free(buf);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 0);
    assert_int_equal(r.lines, WORKERS * PER_WORKER);
}

/* Appended from a prepare watcher, the phase right before the loop sleeps:
 * the batch still leaves in that turn (a batch left behind would wait for an
 * unrelated event, here forever: nothing else wakes this loop). */
static ev_prepare late;
static void late_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct dz_worker *w = p->data;
    struct seen *s = &T.seen[0];

    ev_prepare_stop(loop, p);
    s->loop_thread = pthread_self();
    s->thread_known = true;
    if (dz_audit_append(T.a, rec(0), w, on_done, (void *)(uintptr_t)0) != 0)
        T.refused++;
}

static void start_late(void *p)
{
    struct dz_worker *w = p;

    ev_prepare_init(&late, late_cb);
    late.data = w;
    ev_prepare_start(dz_worker_loop(w), &late);
}

static void test_prepare_phase(void **state)
{
    struct dz_worker *w = dz_httpd_worker_at(T.h, 0);

    post_in_loop(w, start_late, w);
    assert_true(wait_done(1));
    assert_int_equal(T.refused, 0);
    assert_int_equal(T.seen[0].failed, 0);
    assert_int_equal(T.seen[0].wrong_thread, 0);
    assert_int_equal(dz_audit_handoffs(T.a), 1);
}

/* A full queue still refuses at once, on the loop, while records wait in
 * the loop's batch: the bound counts them. */
static void fill(void *p)
{
    struct dz_worker *w = p;
    struct seen *s = &T.seen[0];

    s->loop_thread = pthread_self();
    s->thread_known = true;
    for (unsigned i = 0; i < 20; i++)
        if (dz_audit_append(T.a, rec(i), w, on_done, (void *)(uintptr_t)i) == DZ_ERR_UNAVAILABLE)
            T.refused++;
}

static void test_queue_bound(void **state)
{
    struct dz_worker *w = dz_httpd_worker_at(T.h, 0);

    assert_int_equal(dz_audit_set_limits(T.a, 8, 256), 0);
    post_in_loop(w, fill, w);
    assert_true(wait_done(8));
    /* The refusals were counted on the loop before the first result came. */
    assert_int_equal(T.refused, 12);
    assert_int_equal(T.seen[0].failed, 0);
    assert_int_equal(dz_audit_gauge_queued(T.a), 0);
}

/* A result delivered: on a loop thread, as a success. */
static void on_delivered(void *arg, int result)
{
    unsigned *bad = arg;

    if (result != 0 || !dz_thread_on_loop())
        (*bad)++;
    pthread_mutex_lock(&T.mu);
    T.done++;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

/* The writer hands a durable batch's results to their workers
 * (dz_audit_deliver) while malloc fails: every done() still runs, on its
 * loop, and the hand-off asked for no memory at all (the arming is left
 * untaken).  Here the test thread plays the writer's part, so the hook,
 * which fails only its arming thread's allocations, reaches it. */
static void test_results_need_no_memory(void **state)
{
    struct entry *batch = NULL, **tail = &batch;
    unsigned failures = fail_alloc_failures();
    unsigned bad = 0;

    for (unsigned i = 0; i < 4; i++) {
        struct entry *e = calloc(1, sizeof(*e)); /* calloc: not the hook's */

        assert_non_null(e);
        /* Two workers: one post each. */
        e->w = dz_httpd_worker_at(T.h, i % WORKERS);
        e->done = on_delivered;
        e->arg = &bad;
        *tail = e;
        tail = &e->next;
    }
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
    dz_audit_deliver(batch);
    assert_true(fail_alloc_armed());
    fail_alloc_disarm();
    assert_int_equal(fail_alloc_failures(), failures);
    assert_true(wait_done(4));
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_loops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_need_no_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
