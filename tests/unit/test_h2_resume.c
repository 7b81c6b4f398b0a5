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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "base/err.h"
#include "http/httpd.h"
#include "http/httpd_int.h"

/* Generous (the answer comes within a loop turn), and far below the
 * engine's timers (60 s here), the only other wake-up left: without the
 * fix the answer waits for one of them. */
#define ANSWER_WITHIN_MS 5000

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

/* The connection's state, read on its worker's thread. */
struct probe {
    atomic_int done;
    struct dz_httpd *h;
    size_t backlog;
    bool paused;
    int32_t window;
};

static void probe_fn(void *arg)
{
    struct probe *p = arg;
    struct dz_h2conn *c = dz_httpd_worker_at(p->h, 0)->conns;

    if (c) {
        p->backlog = c->out_len - c->out_off;
        p->paused = c->is_read_paused;
        p->window = c->ngh ? nghttp2_session_get_remote_window_size(c->ngh) : -1;
    }
    atomic_store(&p->done, 1);
}

static void probe(struct dz_httpd *h, struct probe *p)
{
    memset(p, 0, sizeof(*p));
    p->h = h;
    assert_int_equal(dz_worker_post(dz_httpd_worker_at(h, 0), probe_fn, p), 0);
    while (!atomic_load(&p->done))
        usleep(1000);
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

static int cfd;
static nghttp2_session *cs;
static bool answered7;

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == 7)
        answered7 = true;
    return 0;
}

static void client_send(void)
{
    const uint8_t *d;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(cs, &d)) > 0)
        assert_int_equal(send(cfd, d, (size_t)n, MSG_NOSIGNAL), n);
}

/* Read what is there within wait_ms; false when nothing came. */
static bool client_read(int wait_ms)
{
    struct pollfd pf = {cfd, POLLIN, 0};
    uint8_t buf[65536];
    ssize_t n;

    if (poll(&pf, 1, wait_ms) <= 0)
        return false;
    n = recv(cfd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    assert_int_equal(nghttp2_session_mem_recv(cs, buf, (size_t)n), n);
    return true;
}

static int32_t get(const char *path)
{
    nghttp2_nv h[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
    };

    return nghttp2_submit_request(cs, NULL, h, 4, NULL, NULL);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_resumed_by_the_flush_answers_at_once(void **state)
{
    struct dz_listener_conf l[1] = {{"127.0.0.1", 0, NULL, 7}};
    struct dz_httpd_conf conf;
    struct dz_httpd *h;
    struct probe p;
    struct sockaddr_in a;
    nghttp2_session_callbacks *cb;
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1};
    int rcv = 65536;
    struct timespec t0;

    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.listeners = l;
    conf.nlisteners = 1;
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.limits.request_timeout_ms = 60000;
    conf.limits.handshake_timeout_ms = 60000;
    conf.limits.idle_timeout_ms = 60000;
    conf.limits.max_buffered_per_connection = (size_t)64 << 20;
    conf.handlers.worker_init = winit;
    conf.handlers.on_request = on_request;
    assert_int_equal(dz_httpd_new(&conf, &h), 0);
    assert_int_equal(dz_httpd_start(h), 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(dz_httpd_port(h, 0));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cfd >= 0);
    assert_int_equal(setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    assert_int_equal(nghttp2_session_client_new(&cs, cb, NULL), 0);
    nghttp2_session_callbacks_del(cb);

    /* Streams' windows wide open, the connection's granted a little at a
     * time: the server's unsent answer bytes grow until it stops reading. */
    nghttp2_submit_settings(cs, NGHTTP2_FLAG_NONE, &iv, 1);
    assert_int_equal(get("/hold"), 1);
    assert_int_equal(get("/big"), 3);
    client_send();
    for (int i = 0; i < 20000; i++) {
        probe(h, &p);
        if (p.paused)
            break;
        if (p.window == 0) {
            nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, 0,
                                         p.backlog < 32768 ? 32768 : 4096);
            client_send();
        }
        usleep(1000);
    }
    assert_true(p.paused);

    /* While it does not read: a wide window and two requests, left in the
     * socket. */
    nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, 0, 1 << 20);
    assert_int_equal(get("/hello"), 5);
    assert_int_equal(get("/hello"), 7);
    client_send();
    probe(h, &p);
    assert_true(p.paused);

    /* The worker held; the client reads everything the kernel holds for
     * it, so the worker will find its socket writable without an event. */
    assert_int_equal(dz_worker_post(dz_httpd_worker_at(h, 0), trigger_fn, NULL), 0);
    while (!atomic_load(&trigger_running))
        usleep(1000);
    while (client_read(300))
        ;
    atomic_store(&client_drained, 1);

    /* Nothing else wakes the worker now: stream 7's answer must come from
     * the turn that resumed reading. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!answered7 && ms_since(&t0) < ANSWER_WITHIN_MS)
        client_read(100);
    assert_true(answered7);

    nghttp2_session_del(cs);
    close(cfd);
    dz_httpd_drain(h, 1000);
    dz_httpd_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumed_by_the_flush_answers_at_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
