/* test_h2_idle.c - an idle connection that never opened a stream gives its
 * nghttp2 session back, and gets it rebuilt, equal, when the client speaks
 * again: the client's settings and connection window survive; a connection
 * that opened a stream, or whose client sent too much before one, keeps its
 * session; GOAWAY on a given-back connection still goes out.  Memory-sink
 * connections (fd -1) of a real engine worker, bytes made by an nghttp2
 * client session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "http/httpd.h"
#include "http/httpd_int.h"

static struct {
    struct dz_httpd *h;
    struct dz_worker *w;
    nghttp2_session *client;
    unsigned requests;
} T;

static const struct dz_listener lst = {.host = "b", .tag = 1};

static void on_request(struct dz_req *r, void *w)
{
    T.requests++;
    dz_req_respond(r, 200, NULL, 0, "{}", 2);
}

static int setup(void **state)
{
    struct dz_httpd_conf conf;
    nghttp2_session_callbacks *cb;

    memset(&T, 0, sizeof(T));
    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &T.h) != 0)
        return -1;
    T.w = dz_httpd_worker_at(T.h, 0);
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    if (nghttp2_session_client_new(&T.client, cb, NULL) != 0)
        return -1;
    nghttp2_session_callbacks_del(cb);
    return 0;
}

static int teardown(void **state)
{
    nghttp2_session_del(T.client);
    dz_httpd_free(T.h); /* closes what is left (never started) */
    return 0;
}

/* Everything the client has queued, into c. */
static void send_client(struct dz_h2conn *c)
{
    const uint8_t *data;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(T.client, &data)) > 0)
        assert_int_equal(dz_h2conn_feed(c, data, (size_t)n), 0);
    assert_int_equal(n, 0);
    dz_worker_flush_dirty(T.w);
}

static struct dz_h2conn *open_conn(uint32_t initial_window)
{
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window};
    struct dz_h2conn *c;

    assert_int_equal(dz_h2conn_new(T.w, &lst, -1, NULL, "192.0.2.1", &c), 0);
    dz_worker_flush_dirty(T.w); /* our SETTINGS */
    assert_int_equal(nghttp2_submit_settings(T.client, NGHTTP2_FLAG_NONE, &iv, 1), 0);
    assert_int_equal(nghttp2_submit_window_update(T.client, NGHTTP2_FLAG_NONE, 0, 100000), 0);
    send_client(c);
    return c;
}

static void test_given_back_and_rebuilt(void **state)
{
    struct dz_h2conn *c = open_conn(1000);

    /* Idle, never a stream: the session is gone, the client's bytes kept. */
    assert_null(c->ngh);
    assert_non_null(c->replay);
    assert_true(c->replay_len > NGHTTP2_CLIENT_MAGIC_LEN);

    /* The client speaks again (a PING): the session comes back as it was. */
    assert_int_equal(nghttp2_submit_ping(T.client, NGHTTP2_FLAG_NONE, NULL), 0);
    {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(T.client, &data);
        assert_true(n > 0);
        assert_int_equal(dz_h2conn_feed(c, data, (size_t)n), 0);
    }
    assert_non_null(c->ngh);
    assert_int_equal(
        nghttp2_session_get_remote_settings(c->ngh, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 1000);
    assert_int_equal(nghttp2_session_get_remote_window_size(c->ngh), 65535 + 100000);
    assert_int_equal(nghttp2_session_get_last_proc_stream_id(c->ngh), 0);
    dz_worker_flush_dirty(T.w);
    assert_null(c->ngh); /* idle again */

    /* Then a request: served, and the session stays for good. */
    {
        const nghttp2_nv nv[] = {
            {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
            {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
            {(uint8_t *)":authority", (uint8_t *)"b", 10, 1, 0},
            {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
        };
        assert_true(nghttp2_submit_request(T.client, NULL, nv, 4, NULL, NULL) > 0);
    }
    send_client(c);
    assert_int_equal(T.requests, 1);
    assert_non_null(c->ngh);
    assert_null(c->replay);
    assert_true(c->replay_off);
    dz_worker_flush_dirty(T.w);
    assert_non_null(c->ngh);
    assert_int_equal(c->nstreams, 0);
}

/* A client that sends more than the bound before any stream: kept. */
static void test_replay_bound(void **state)
{
    struct dz_h2conn *c = open_conn(65535);

    assert_null(c->ngh);
    for (int i = 0; i < 40; i++) /* 40 PINGs of 17 bytes: over 512 */
        assert_int_equal(nghttp2_submit_ping(T.client, NGHTTP2_FLAG_NONE, NULL), 0);
    send_client(c);
    assert_true(c->replay_off);
    assert_null(c->replay);
    assert_non_null(c->ngh);
}

/* Draining a given-back connection: rebuilt, GOAWAY sent, then closed. */
static void test_goaway(void **state)
{
    struct dz_h2conn *c = open_conn(65535);

    assert_null(c->ngh);
    assert_int_equal(T.w->nconns, 1);
    dz_h2conn_goaway(c);
    assert_true(c->is_draining);
    dz_worker_flush_dirty(T.w);
    assert_int_equal(T.w->nconns, 0); /* GOAWAY out, nothing open: closed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_given_back_and_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
