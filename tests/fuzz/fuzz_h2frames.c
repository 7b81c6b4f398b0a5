/*
 * fuzz_h2frames.c - arbitrary bytes as the client side of one cleartext
 * HTTP/2 connection of the engine (lib/http/h2conn.c, lib/http/h2req.c): the real
 * nghttp2 server session and callbacks, the real request objects and
 * answering API, with no socket (fd -1: what the server writes is dropped).
 * The handler answers in every way the engine offers: at once, in
 * on_headers, streamed, and later through dz_worker_post with a held
 * reference.  Properties checked besides "no crash, no leak": after the
 * connection is closed and posted work has run, no request is left alive.
 * The input is fed in pieces whose sizes come from its last byte, so frame
 * boundaries fall anywhere.  FUZZ_H2_VERBOSE=1 prints what each input
 * reached (to check that the seeds do what their names say).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dz_httpd *h;
static struct dz_worker *w;
static const struct dz_listener fuzz_listener = {.host = "fuzz", .tag = 1};
static unsigned n_requests, n_overflows, n_closes;

static void count_close(struct dz_req *r, void *arg)
{
    (void)r;
    (void)arg;
    n_closes++;
}

static void answer_later(void *arg)
{
    struct dz_req *r = arg;

    (void)dz_req_respond(r, 200, NULL, 0, "later", 5);
    dz_req_unref(r);
}

static void on_headers(struct dz_req *r, void *wdata)
{
    (void)wdata;
    if (strcmp(dz_req_path(r), "/early") == 0)
        (void)dz_req_respond(r, 401, NULL, 0, "no", 2);
    else if (strcmp(dz_req_path(r), "/small") == 0)
        dz_req_set_body_limit(r, 8);
}

static void on_request(struct dz_req *r, void *wdata)
{
    const char *path = dz_req_path(r);
    struct dz_hdr hdr[] = {{"content-type", "text/plain"}, {"x-method", dz_req_method(r)}};
    const unsigned char *body;
    size_t len;

    if (wdata != w)
        abort();
    n_requests++;
    dz_req_on_close(r, count_close, NULL);
    (void)dz_req_authority(r);
    (void)dz_req_scheme(r);
    for (size_t i = 0; i < dz_req_header_count(r); i++) {
        const char *n, *v;
        dz_req_header_at(r, i, &n, &v);
        if (!n || !v || dz_req_header(r, n) == NULL)
            abort();
    }
    if (dz_req_body_overflow(r)) {
        n_overflows++;
        (void)dz_req_respond(r, 413, hdr, 1, NULL, 0);
        return;
    }
    body = dz_req_body(r, &len);
    if (strcmp(path, "/later") == 0) {
        dz_req_ref(r);
        if (dz_worker_post(dz_req_worker(r), answer_later, r) != 0)
            dz_req_unref(r);
    } else if (strcmp(path, "/stream") == 0) {
        if (dz_req_start(r, 200, hdr, 1) == 0) {
            (void)dz_req_write(r, body, len);
            (void)dz_req_write(r, "tail", 4);
            (void)dz_req_end(r);
        }
    } else if (strcmp(path, "/reset") == 0) {
        /* Broken off after its first bytes: RST_STREAM, and what follows
         * is a no-op (httpd.h), never an END_STREAM. */
        if (dz_req_start(r, 200, hdr, 1) == 0) {
            (void)dz_req_write(r, body, len);
            if (dz_req_reset(r) == 0 &&
                (dz_req_write(r, "tail", 4) != 0 || dz_req_end(r) != 0 || dz_req_pending(r) != 0))
                abort();
        }
    } else if (strcmp(path, "/open") == 0) {
        /* Started and never ended: the connection's close must clean up. */
        (void)dz_req_start(r, 200, NULL, 0);
        (void)dz_req_write(r, body, len);
    } else {
        /* The x-method value is whatever the client sent: it may be
         * refused (DZ_ERR_INVAL), then answer without it. */
        if (dz_req_respond(r, 200, hdr, 2, body, len) != 0)
            (void)dz_req_respond(r, 200, hdr, 1, body, len);
    }
}

static void setup(void)
{
    if (!h)
        w = fuzz_h2_engine(&h, on_headers, on_request);
}

static void settle(void)
{
    dz_worker_flush_dirty(w);
    ev_run(w->loop, EVRUN_NOWAIT); /* posts (async answers) */
    dz_worker_flush_dirty(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_h2conn *c = NULL;
    size_t piece;
    size_t off = 0;

    setup();
    if (dz_h2conn_new(w, &fuzz_listener, -1, NULL, "192.0.2.1", &c) != 0)
        return 0;
    c->refs++; /* keep it inspectable after a close */
    n_requests = n_overflows = n_closes = 0;
    piece = size > 0 ? (size_t)data[size - 1] * 16 + 1 : 1;
    while (off < size && c->is_open) {
        size_t n = size - off < piece ? size - off : piece;
        if (dz_h2conn_feed(c, data + off, n) != 0)
            dz_h2conn_close(c);
        off += n;
        settle();
    }
    dz_h2conn_close(c);
    settle();
    dz_h2conn_unref(c);
    if (w->live_reqs != 0 || w->conns != NULL || w->dirty != NULL || n_closes != n_requests)
        abort();
    if (getenv("FUZZ_H2_VERBOSE"))
        fprintf(stderr, "size %zu: %u request(s), %u overflow(s), %u close(s)\n", size, n_requests,
                n_overflows, n_closes);
    return 0;
}
