/*
 * test_h2_resume.c - a connection whose reading was paused for back-pressure
 * (lib/http/h2conn.c resume_read) and is resumed by the flush that runs
 * before the loop sleeps: what the client sent meanwhile is read and
 * answered without waiting for another wake-up of the worker.
 *
 * Before the fix the resumed read ran after that flush, its answers were
 * only marked for writing, and the loop slept: a client that reads fine got
 * nothing until a timer or other traffic woke its worker.  Plain h2c (the
 * same path as TLS, which may also hold decrypted bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/sockios.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "base/err.h"
#include "harness/h2raw_client.h"
#include "harness/h2raw_server.h"
#include "http/httpd.h"
#include "http/httpd_int.h"

/* Generous (the answer comes within a loop turn), and far below the
 * engine's timers (60 s here), the only other wake-up left: without the
 * fix the answer waits for one of them. */
#define ANSWER_WITHIN_MS 5000
/* Bound on the waits for a state (each comes within a few loop turns). */
#define STATE_WITHIN_MS 20000

static struct dz_req *held;

static void on_request(struct dz_req *r, void *wdata)
{
    const char *path = dz_req_path(r);

    (void)wdata;
    if (strcmp(path, "/hold") == 0) {
        dz_req_ref(r);
        held = r;
    } else if (strcmp(path, "/big") == 0) {
        size_t n = (size_t)8 << 20;
        unsigned char *b = malloc(n);

        assert_non_null(b);
        memset(b, 'a', n);
        assert_int_equal(dz_req_respond(r, 200, NULL, 0, b, n), 0);
        free(b);
    } else {
        dz_req_respond(r, 200, NULL, 0, "hello", 5);
    }
}

static void *winit(struct dz_worker *w, void *app)
{
    (void)app;
    return w;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The connection's state, read on its worker's thread. */
struct probe {
    atomic_int done;
    struct dz_httpd *h;
    int fd;
    size_t backlog;
    bool paused;
    int32_t window;
};

static void probe_fn(void *arg)
{
    struct probe *p = arg;
    struct dz_h2conn *c = dz_httpd_worker_at(p->h, 0)->conns;

    if (c) {
        p->fd = c->fd;
        p->backlog = c->out_len - c->out_off;
        p->paused = c->is_read_paused;
        p->window = c->ngh ? nghttp2_session_get_remote_window_size(c->ngh) : -1;
    }
    atomic_store(&p->done, 1);
}

static void probe(struct dz_httpd *h, struct probe *p)
{
    struct timespec t0;

    memset(p, 0, sizeof(*p));
    p->h = h;
    p->fd = -1;
    assert_int_equal(dz_worker_post(dz_httpd_worker_at(h, 0), probe_fn, p), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&p->done) && ms_since(&t0) < STATE_WITHIN_MS)
        usleep(1000);
    assert_true(atomic_load(&p->done));
}

/* Posted: holds the worker (so it sees no socket event) until the client
 * has emptied the kernel's buffers, then answers the held request, which
 * leaves the connection for the flush before the loop sleeps: that flush
 * empties the backlog and resumes reading. */
static atomic_int trigger_running, client_drained;

static void trigger_fn(void *arg)
{
    (void)arg;
    atomic_store(&trigger_running, 1);
    while (!atomic_load(&client_drained))
        usleep(1000);
    dz_req_respond(held, 200, NULL, 0, "x", 1);
    dz_req_unref(held);
}

static bool answered7;

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == 7)
        answered7 = true;
    return 0;
}

static bool got_answer7(const struct h2raw *r)
{
    (void)r;
    return answered7;
}

static int32_t get(struct h2raw *r, const char *path)
{
    nghttp2_nv h[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
    };

    return nghttp2_submit_request(r->s, NULL, h, 4, NULL, NULL);
}

/* Bytes a socket holds: unread (SIOCINQ) or not yet taken by the peer
 * (SIOCOUTQ). */
static int queued(int fd, unsigned long what)
{
    int n = -1;

    assert_int_equal(ioctl(fd, what, &n), 0);
    return n;
}

static void test_resumed_by_the_flush_answers_at_once(void **state)
{
    struct dz_httpd_conf conf;
    struct h2raw_server srv;
    struct probe p;
    struct h2raw c;
    /* A small window from the kernel (set before connect). */
    struct h2raw_opts o = {.rcvbuf = 65536, .on_frame = on_frame};
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1};
    struct timespec t0;
    int server_fd;

    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.limits.request_timeout_ms = 60000;
    conf.limits.handshake_timeout_ms = 60000;
    conf.limits.idle_timeout_ms = 60000;
    conf.limits.max_buffered_per_connection = (size_t)64 << 20;
    conf.handlers.worker_init = winit;
    conf.handlers.on_request = on_request;
    h2raw_server_start(&srv, &conf, NULL);
    h2raw_open_opts(&c, srv.h2c_port, &o);
    /* Nothing sent back while reading (not even the automatic
     * WINDOW_UPDATEs): only the test opens the connection's window. */
    c.is_mute = true;

    /* Streams' windows wide open, the connection's granted a little at a
     * time: the server's unsent answer bytes grow until it stops reading. */
    nghttp2_submit_settings(c.s, NGHTTP2_FLAG_NONE, &iv, 1);
    assert_int_equal(get(&c, "/hold"), 1);
    assert_int_equal(get(&c, "/big"), 3);
    h2raw_flush(&c);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        probe(srv.h, &p);
        if (p.paused || ms_since(&t0) >= STATE_WITHIN_MS)
            break;
        if (p.window == 0) {
            nghttp2_submit_window_update(c.s, NGHTTP2_FLAG_NONE, 0,
                                         p.backlog < 32768 ? 32768 : 4096);
            h2raw_flush(&c);
        }
        usleep(1000);
    }
    assert_true(p.paused);
    server_fd = p.fd;
    assert_true(server_fd >= 0);

    /* While it does not read: a wide window and two requests, left in the
     * socket. */
    nghttp2_submit_window_update(c.s, NGHTTP2_FLAG_NONE, 0, 1 << 20);
    assert_int_equal(get(&c, "/hello"), 5);
    assert_int_equal(get(&c, "/hello"), 7);
    h2raw_flush(&c);
    probe(srv.h, &p);
    assert_true(p.paused);

    /* The worker held; the client reads everything the kernel holds for
     * it, so the worker will find its socket writable without an event:
     * until the server's socket has nothing the client has not taken, and
     * the client's nothing it has not read (the held worker adds none). */
    assert_int_equal(dz_worker_post(dz_httpd_worker_at(srv.h, 0), trigger_fn, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&trigger_running) && ms_since(&t0) < STATE_WITHIN_MS)
        usleep(1000);
    assert_true(atomic_load(&trigger_running));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((queued(server_fd, SIOCOUTQ) > 0 || queued(c.fd, SIOCINQ) > 0) &&
           ms_since(&t0) < STATE_WITHIN_MS)
        (void)h2raw_read(&c, 10);
    assert_int_equal(queued(server_fd, SIOCOUTQ), 0);
    assert_int_equal(queued(c.fd, SIOCINQ), 0);
    assert_false(c.eof);
    atomic_store(&client_drained, 1);

    /* Nothing else wakes the worker now: stream 7's answer must come from
     * the turn that resumed reading. */
    h2raw_pump(&c, ANSWER_WITHIN_MS, got_answer7);
    assert_true(answered7);

    h2raw_close(&c);
    dz_httpd_drain(srv.h, 1000);
    dz_httpd_free(srv.h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumed_by_the_flush_answers_at_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
