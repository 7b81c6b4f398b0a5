/*
 * h2raw_client.c - see h2raw_client.h.
 */
#include "h2raw_client.h"

#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2raw *r = ud;

    if (f->hd.type == NGHTTP2_GOAWAY) {
        r->goaway = true;
        r->goaway_code = f->goaway.error_code;
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        r->n_rst_recv++;
        r->last_rst_code = f->rst_stream.error_code;
    } else if (f->hd.type == NGHTTP2_HEADERS) {
        r->n_status++;
    } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        r->ping_acks++;
    }
    return r->opts.on_frame ? r->opts.on_frame(s, f, r->opts.user) : 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2raw *r = ud;

    (void)s;
    (void)id;
    (void)code;
    r->n_closed++;
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
                         void *ud)
{
    struct h2raw *r = ud;

    return r->opts.on_data(s, flags, id, p, n, r->opts.user);
}

void h2raw_open_opts(struct h2raw *r, uint16_t port, const struct h2raw_opts *o)
{
    struct sockaddr_in a;
    nghttp2_session_callbacks *cb;

    memset(r, 0, sizeof(*r));
    if (o)
        r->opts = *o;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    if (r->opts.rcvbuf > 0)
        assert_int_equal(
            setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &r->opts.rcvbuf, sizeof(r->opts.rcvbuf)), 0);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (r->opts.on_data)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    assert_int_equal(nghttp2_session_client_new(&r->s, cb, r), 0);
    nghttp2_session_callbacks_del(cb);
    if (r->opts.is_preface_sent) {
        assert_int_equal(nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
        h2raw_flush(r);
    }
}

void h2raw_open(struct h2raw *r, uint16_t port, bool is_preface_sent)
{
    struct h2raw_opts o = {.is_preface_sent = is_preface_sent};

    h2raw_open_opts(r, port, &o);
}

void h2raw_flush(struct h2raw *r)
{
    const uint8_t *data;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(r->s, &data)) > 0) {
        ssize_t off = 0;

        while (off < n) {
            ssize_t k = send(r->fd, data + off, (size_t)(n - off), MSG_NOSIGNAL);

            if (k <= 0)
                return;
            off += k;
            r->bytes_sent += (size_t)k;
        }
    }
}

bool h2raw_read(struct h2raw *r, int ms)
{
    struct pollfd p = {r->fd, POLLIN, 0};
    uint8_t buf[65536];
    ssize_t n;

    if (r->eof || poll(&p, 1, ms) <= 0)
        return false;
    n = recv(r->fd, buf, sizeof(buf), 0);
    if (n <= 0) {
        r->eof = true;
        return false;
    }
    if (r->is_silent)
        return true;
    assert_int_equal(nghttp2_session_mem_recv(r->s, buf, (size_t)n), n);
    if (!r->is_mute)
        h2raw_flush(r);
    return true;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

void h2raw_pump(struct h2raw *r, int ms, bool (*stop)(const struct h2raw *))
{
    struct timespec t0;
    long el;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((el = ms_since(&t0)) < ms && !r->eof && !(stop && stop(r)))
        (void)h2raw_read(r, (int)(ms - el));
}

static bool ping_answered(const struct h2raw *r)
{
    return r->ping_acks == r->pings_sent;
}

bool h2raw_ping(struct h2raw *r, int ms)
{
    assert_false(r->is_silent); /* its ACK would never be seen */
    /* Nothing sent yet: the preface's SETTINGS must come first. */
    if (r->bytes_sent == 0)
        assert_int_equal(nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    assert_int_equal(nghttp2_submit_ping(r->s, NGHTTP2_FLAG_NONE, NULL), 0);
    r->pings_sent++;
    h2raw_flush(r);
    h2raw_pump(r, ms, ping_answered);
    return ping_answered(r);
}

bool h2raw_is_kept(struct h2raw *r, int ms)
{
    return h2raw_ping(r, ms) && h2raw_ping(r, ms) && !r->eof;
}

void h2raw_close(struct h2raw *r)
{
    nghttp2_session_del(r->s);
    close(r->fd);
}
