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
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "http/httpd.h"
#include "http/httpd_int.h"

static struct {
    struct dz_httpd *h;
    struct dz_worker *w;
    nghttp2_session *client;
    unsigned requests;
    unsigned answers; /* complete answers the client received */
    char token[64];   /* the last request's x-token */
    int sv[2];        /* socketpair: [0] the connection's, [1] the client's */
} T;

static const struct dz_listener lst = {.host = "b", .tag = 1};

static void on_request(struct dz_req *r, void *w)
{
    const char *tok = dz_req_header(r, "x-token");

    T.requests++;
    snprintf(T.token, sizeof(T.token), "%s", tok ? tok : "");
    dz_req_respond(r, 200, NULL, 0, "{}", 2);
}

static int client_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.stream_id > 0 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS))
        T.answers++;
    return 0;
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
    T.sv[0] = T.sv[1] = -1;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, client_frame_recv);
    if (nghttp2_session_client_new(&T.client, cb, NULL) != 0)
        return -1;
    nghttp2_session_callbacks_del(cb);
    return 0;
}

static int teardown(void **state)
{
    nghttp2_session_del(T.client);
    dz_httpd_free(T.h); /* closes what is left (never started) */
    if (T.sv[1] >= 0)
        close(T.sv[1]); /* sv[0] was the connection's */
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

/* ---------- after streams: settled, given back, rebuilt ---------- */

/* A connection with a real socket (so that the client reads our frames and
 * acknowledges our SETTINGS), its SETTINGS exchanged. */
static struct dz_h2conn *open_sock_conn_with(bool window_update)
{
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000};
    struct dz_h2conn *c;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, T.sv), 0);
    assert_int_equal(dz_h2conn_new(T.w, &lst, T.sv[0], NULL, "192.0.2.1", &c), 0);
    if (!window_update) { /* a client that leaves every window as it is */
        assert_int_equal(nghttp2_submit_settings(T.client, NGHTTP2_FLAG_NONE, NULL, 0), 0);
        return c;
    }
    assert_int_equal(nghttp2_submit_settings(T.client, NGHTTP2_FLAG_NONE, &iv, 1), 0);
    assert_int_equal(nghttp2_submit_window_update(T.client, NGHTTP2_FLAG_NONE, 0, 100000), 0);
    return c;
}

static struct dz_h2conn *open_sock_conn(void)
{
    return open_sock_conn_with(true);
}

/* Client to server and back until neither has anything to say. */
static void pump(struct dz_h2conn *c)
{
    for (int round = 0; round < 16; round++) {
        uint8_t buf[16384];
        const uint8_t *data;
        ssize_t n;
        bool moved = false;

        while ((n = nghttp2_session_mem_send(T.client, &data)) > 0) {
            assert_int_equal(dz_h2conn_feed(c, data, (size_t)n), 0);
            moved = true;
        }
        dz_worker_flush_dirty(T.w);
        while ((n = read(T.sv[1], buf, sizeof(buf))) > 0) {
            assert_int_equal(nghttp2_session_mem_recv(T.client, buf, (size_t)n), n);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the two sides did not go quiet");
}

static void get(const char *token)
{
    const nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"b", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)"/x", 5, 2, 0},
        {(uint8_t *)"x-token", (uint8_t *)token, 7, strlen(token), 0}, /* indexed */
    };
    assert_true(nghttp2_submit_request(T.client, NULL, nv, 5, NULL, NULL) > 0);
}

/* A connection that served one request (token) and was settled: its
 * session given back. */
static struct dz_h2conn *settled_conn(const char *token)
{
    struct dz_h2conn *c = open_sock_conn();

    get(token);
    pump(c);
    dz_h2conn_settle(c);
    pump(c);
    assert_null(c->ngh);
    return c;
}

static void test_settled_given_back_and_rebuilt(void **state)
{
    struct dz_h2conn *c = open_sock_conn();
    int32_t window;

    get("first-token-value");
    pump(c);
    assert_int_equal(T.requests, 1);
    assert_int_equal(T.answers, 1);
    assert_string_equal(T.token, "first-token-value");
    /* Served: the session stays, the client's fields in its HPACK table. */
    assert_non_null(c->ngh);
    assert_true(nghttp2_session_get_hd_inflate_dynamic_table_size(c->ngh) > 0);
    assert_int_equal(nghttp2_session_get_hd_deflate_dynamic_table_size(c->ngh), 0);
    window = nghttp2_session_get_remote_window_size(c->ngh);

    /* Idle long enough (the timer's call): the client is asked to empty its
     * table; until it acknowledges, the session stays. */
    dz_h2conn_settle(c);
    dz_worker_flush_dirty(T.w);
    assert_non_null(c->ngh);
    pump(c);
    assert_null(c->ngh);
    assert_true(c->is_given_back);

    /* A PING rebuilds it: the client's settings, our window and the last
     * stream are what they were; no request reached the application. */
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
    assert_int_equal(nghttp2_session_get_remote_window_size(c->ngh), window);
    assert_int_equal(nghttp2_session_get_last_proc_stream_id(c->ngh), 1);
    assert_int_equal(T.requests, 1);
    assert_int_equal(c->nstreams, 0);
    pump(c); /* the PONG; then idle and settled: given back at once */
    assert_null(c->ngh);

    /* A second request on the connection: served, with the field the client
     * had indexed (its encoder's table was emptied with ours). */
    get("first-token-value");
    pump(c);
    assert_int_equal(T.requests, 2);
    assert_int_equal(T.answers, 2);
    assert_string_equal(T.token, "first-token-value");
    assert_non_null(c->ngh);
    assert_int_equal(nghttp2_session_get_last_proc_stream_id(c->ngh), 3);

    /* And again, after another settle: a third request, new field value. */
    dz_h2conn_settle(c);
    pump(c);
    assert_null(c->ngh);
    get("third");
    pump(c);
    assert_int_equal(T.requests, 3);
    assert_int_equal(T.answers, 3);
    assert_string_equal(T.token, "third");
    assert_int_equal(T.w->nconns, 1);
}

/* A client that never opens its connection window: after an answer our
 * send window is below the initial one, and the rebuilt session's is too
 * (it spends the difference on the last stream, into the void). */
static void test_settled_window_below_initial(void **state)
{
    struct dz_h2conn *c = open_sock_conn_with(false);

    get("t");
    pump(c);
    assert_int_equal(nghttp2_session_get_remote_window_size(c->ngh), 65535 - 2);
    dz_h2conn_settle(c);
    pump(c);
    assert_null(c->ngh);
    assert_int_equal(nghttp2_submit_ping(T.client, NGHTTP2_FLAG_NONE, NULL), 0);
    pump(c); /* rebuilt for the PING, given back again after its PONG */
    get("u");
    pump(c);
    assert_int_equal(T.requests, 2);
    assert_int_equal(T.answers, 2);
    assert_string_equal(T.token, "u");
    assert_int_equal(nghttp2_session_get_remote_window_size(c->ngh), 65535 - 4);
    /* Both sides agree on what the client may still receive. */
    assert_int_equal(nghttp2_session_get_local_window_size(T.client), 65535 - 4);
}

/* Stream ids go on after a rebuild: a request on a stream already used is
 * a connection error, as it was before the session was given back. */
static void test_settled_stream_reuse_refused(void **state)
{
    static const uint8_t reuse[] = {
        0, 0, 6, NGHTTP2_HEADERS, 0x05, 0, 0, 0, 1, 0x82, 0x87, 0x84, 0x01, 0x01, 'x'};
    struct dz_h2conn *c = settled_conn("t");

    (void)dz_h2conn_feed(c, reuse, sizeof(reuse));
    dz_worker_flush_dirty(T.w);
    assert_int_equal(T.requests, 1);
    assert_int_equal(T.w->nconns, 0); /* GOAWAY(PROTOCOL_ERROR) sent, closed */
}

/* Drain while given back after streams: GOAWAY names the last stream. */
static void test_settled_goaway(void **state)
{
    struct dz_h2conn *c = settled_conn("t");

    dz_h2conn_goaway(c);
    assert_non_null(c->ngh);
    assert_int_equal(nghttp2_session_get_last_proc_stream_id(c->ngh), 1);
    pump(c);
    assert_int_equal(T.w->nconns, 0);
    assert_int_equal(
        nghttp2_session_get_remote_settings(T.client, NGHTTP2_SETTINGS_HEADER_TABLE_SIZE), 4096);
}

/* A stream refused before our SETTINGS were acknowledged (over the
 * advertised MAX_CONCURRENT_STREAMS: REFUSED_STREAM) is above the last
 * processed stream.  A session rebuilt from the last processed stream alone
 * would take a new request on the refused stream's id, which the freed one
 * ignored (stream ids never go back, RFC 9113 5.1.1): such a session is
 * kept while no later stream was processed. */
static void feed_frame(struct dz_h2conn *c, uint8_t type, uint8_t flags, uint32_t sid)
{
    static const uint8_t get[] = {0x82, 0x87, 0x84, 0x01, 0x01, 'x'}; /* GET / */
    uint8_t f[9 + sizeof(get)];
    size_t len = type == NGHTTP2_HEADERS ? sizeof(get) : 0;

    (void)dz_h2_put_frame_head(f, len, type, flags, (int32_t)sid);
    memcpy(f + 9, get, len);
    assert_int_equal(dz_h2conn_feed(c, f, 9 + len), 0);
    dz_worker_flush_dirty(T.w);
}

static void test_settled_refused_stream_kept(void **state)
{
    uint32_t max = T.h->limits.max_concurrent_streams;
    uint32_t refused = 2 * max + 1;
    struct dz_h2conn *c;

    assert_int_equal(dz_h2conn_new(T.w, &lst, -1, NULL, "192.0.2.1", &c), 0);
    dz_worker_flush_dirty(T.w);
    assert_int_equal(
        dz_h2conn_feed(c, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN), 0);
    feed_frame(c, NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
    /* max streams open, one more refused, before the client has read our
     * SETTINGS */
    for (uint32_t sid = 1; sid <= refused; sid += 2)
        feed_frame(c, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, sid);
    assert_int_equal(c->nstreams, max);
    feed_frame(c, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    for (uint32_t sid = 1; sid < refused; sid += 2)
        feed_frame(c, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid);
    assert_int_equal(T.requests, max);
    assert_int_equal(c->nstreams, 0);
    assert_int_equal(nghttp2_session_get_last_proc_stream_id(c->ngh), (int32_t)refused - 2);

    /* Idle (nothing indexed: no SETTINGS to wait for): kept. */
    dz_h2conn_settle(c);
    dz_worker_flush_dirty(T.w);
    assert_non_null(c->ngh);
    /* The refused stream's id again: ignored, as before. */
    feed_frame(c, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, refused);
    assert_int_equal(T.requests, max);
    assert_int_equal(T.w->nconns, 1);

    /* A later stream served: now the session can go. */
    feed_frame(c, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, refused + 2);
    assert_int_equal(T.requests, max + 1);
    dz_h2conn_settle(c);
    dz_worker_flush_dirty(T.w);
    assert_null(c->ngh);
    assert_true(c->is_given_back);
}

/* nghttp2 keeps a frame received in part inside its session: a settled
 * session is not given back while the client's last bytes end inside a
 * frame, and the frame completes in the same session. */
static void test_settled_split_frame_kept(void **state)
{
    struct dz_h2conn *c = open_sock_conn();
    uint8_t in[16384];
    uint8_t out[1024];
    size_t out_len = 0;
    const uint8_t *data;
    ssize_t n;

    get("token");
    pump(c);
    assert_int_equal(T.requests, 1);
    dz_h2conn_settle(c);
    dz_worker_flush_dirty(T.w);
    /* The client reads our two SETTINGS; its ACKs and a PING, in one run. */
    while ((n = read(T.sv[1], in, sizeof(in))) > 0)
        assert_int_equal(nghttp2_session_mem_recv(T.client, in, (size_t)n), n);
    assert_int_equal(nghttp2_submit_ping(T.client, NGHTTP2_FLAG_NONE, NULL), 0);
    while ((n = nghttp2_session_mem_send(T.client, &data)) > 0) {
        assert_true(out_len + (size_t)n <= sizeof(out));
        memcpy(out + out_len, data, (size_t)n);
        out_len += (size_t)n;
    }
    assert_true(out_len > 17); /* the PING frame is the last 17 bytes */
    /* The ACKs and the PING's first 5 bytes: the session stays. */
    assert_int_equal(dz_h2conn_feed(c, out, out_len - 12), 0);
    dz_worker_flush_dirty(T.w);
    assert_non_null(c->ngh);
    assert_int_equal(c->settings_unacked, 0);
    /* The rest of the PING: answered, then given back. */
    assert_int_equal(dz_h2conn_feed(c, out + out_len - 12, 12), 0);
    pump(c);
    assert_null(c->ngh);
    assert_true(c->is_given_back);
    /* The connection still serves. */
    get("token");
    pump(c);
    assert_int_equal(T.requests, 2);
    assert_int_equal(T.answers, 2);
    assert_int_equal(T.w->nconns, 1);
}

/* The error code of the GOAWAY among the bytes the connection wrote to
 * the client since the last read; -1 when there is none. */
static long goaway_code(void)
{
    uint8_t buf[16384];
    size_t len = 0;
    ssize_t n;

    while (len < sizeof(buf) && (n = read(T.sv[1], buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)n;
    for (size_t off = 0; off + 9 <= len;) {
        size_t flen = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];

        if (buf[off + 3] == NGHTTP2_GOAWAY && flen >= 8 && off + 9 + flen <= len)
            return (long)((uint32_t)buf[off + 13] << 24 | (uint32_t)buf[off + 14] << 16 |
                          (uint32_t)buf[off + 15] << 8 | buf[off + 16]);
        off += 9 + flen;
    }
    return -1;
}

/* RFC 7541 4.2: once our SETTINGS_HEADER_TABLE_SIZE 0 is acknowledged, the
 * client's next header block must begin with a size update to 0.  A session
 * given back and rebuilt holds the client to it as the freed one did:
 * without the update, COMPRESSION_ERROR; with it, the request is served. */
static void settled_next_block(bool with_update)
{
    static const uint8_t block[] = {0x20, 0x82, 0x87, 0x84, 0x01, 0x01, 'x'}; /* [0]: update */
    uint8_t f[9 + sizeof(block)];
    size_t skip = with_update ? 0 : 1;
    struct dz_h2conn *c = settled_conn("indexed-value");

    assert_true(c->is_given_back);
    assert_true(c->size_update_owed);
    (void)dz_h2_put_frame_head(f, sizeof(block) - skip, NGHTTP2_HEADERS,
                               NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3);
    memcpy(f + 9, block + skip, sizeof(block) - skip);
    (void)dz_h2conn_feed(c, f, 9 + sizeof(block) - skip);
    dz_worker_flush_dirty(T.w);
    if (with_update) {
        assert_int_equal(T.requests, 2);
        assert_int_equal(T.w->nconns, 1);
        assert_false(c->size_update_owed);
        assert_int_equal(goaway_code(), -1);
    } else {
        assert_int_equal(T.requests, 1);
        assert_int_equal(goaway_code(), NGHTTP2_COMPRESSION_ERROR);
        assert_int_equal(T.w->nconns, 0);
    }
}

static void test_settled_size_update_required(void **state)
{
    settled_next_block(false);
}

static void test_settled_size_update_accepted(void **state)
{
    settled_next_block(true);
}

/* A PING rebuilds the session and it is given back again: the client still
 * owes the update, and a block without it is still refused. */
static void test_settled_size_update_survives_rebuilds(void **state)
{
    static const uint8_t bare[] = {
        0, 0, 6, NGHTTP2_HEADERS, 0x05, 0, 0, 0, 3, 0x82, 0x87, 0x84, 0x01, 0x01, 'x'};
    uint8_t ping[17] = {0, 0, 8, NGHTTP2_PING};
    struct dz_h2conn *c = settled_conn("indexed-value");

    for (int i = 0; i < 2; i++) {
        assert_int_equal(dz_h2conn_feed(c, ping, sizeof(ping)), 0);
        dz_worker_flush_dirty(T.w);
        assert_int_equal(goaway_code(), -1); /* the PONG only */
        assert_null(c->ngh);                 /* given back again after it */
    }
    assert_true(c->size_update_owed);
    (void)dz_h2conn_feed(c, bare, sizeof(bare));
    dz_worker_flush_dirty(T.w);
    assert_int_equal(T.requests, 1);
    assert_int_equal(goaway_code(), NGHTTP2_COMPRESSION_ERROR);
    assert_int_equal(T.w->nconns, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_given_back_and_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_given_back_and_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_window_below_initial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_stream_reuse_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_refused_stream_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_split_frame_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_size_update_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_size_update_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_size_update_survives_rebuilds, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
