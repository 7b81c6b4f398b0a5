/*
 * h2idle.c - memory the HTTP/2 engine holds per idle connection, without TLS
 * or sockets: COUNT memory-sink connections (fd -1, as in h2engine.c), each
 * given the client preface, an empty SETTINGS and the ACK of ours, then left
 * open; prints the growth of malloc'd bytes (mallinfo2) and of the process's
 * RSS per connection.  What tests/bench/idle_h2.sh measures over TLS, less
 * OpenSSL's share.  Not part of `make bench`; build it against a normal build:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -o build/h2idle tests/bench/h2idle.c \
 *      build/libdarvaza.a -lssl -lcrypto -lnghttp2 -ljansson -lev -lm -pthread
 *   build/h2idle 2000 [MODE]
 *
 * MODE: none (default: no stream), bare (one GET of pseudo-header fields
 * only, answered, then idle), get (one GET with a browser's header fields,
 * HPACK-indexed as browsers do), settled (get, then what the connection
 * timer does after DZ_H2_SETTLE_MS: the client's two SETTINGS ACKs are
 * given as a client would send them), late (every connection served
 * first, then each settled: freed memory the process keeps).
 */
#include "base/buf.h"
#include "http/httpd.h"
#include "http/httpd_int.h"
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void on_request(struct dz_req *r, void *w)
{
    (void)w;
    static const struct dz_hdr h[] = {{"content-type", "application/json"},
                                      {"cache-control", "no-store"}};
    dz_req_respond(r, 200, h, 2, "{\"status\":\"ok\"}", 15);
}
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}
#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }
/* The client's opening bytes and one request, encoded once by an nghttp2
 * client session (its encoder indexes every field, as browsers do). */
static size_t client_bytes(int browser, uint8_t *out, size_t cap)
{
    static const nghttp2_nv nv[] = {
        NV(":method", "GET"),
        NV(":scheme", "https"),
        NV(":authority", "localhost:8443"),
        NV(":path", "/healthz"),
        NV("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        NV("accept", "application/json, text/plain, */*"),
        NV("accept-language", "en-US,en;q=0.5"),
        NV("accept-encoding", "gzip, deflate, br"),
        NV("referer", "https://localhost/portal/"),
        NV("cookie", "__Host-darvaza=qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
        NV("sec-fetch-dest", "empty"),
        NV("sec-fetch-mode", "cors"),
        NV("sec-fetch-site", "same-origin"),
        NV("te", "trailers"),
    };
    static const uint8_t ack[] = {0, 0, 0, 4, 1, 0, 0, 0, 0};
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    const uint8_t *data;
    ssize_t n;
    size_t len = 0;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_client_new(&s, cb, NULL);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    while ((n = nghttp2_session_mem_send(s, &data)) > 0) {
        memcpy(out + len, data, (size_t)n);
        len += (size_t)n;
    }
    memcpy(out + len, ack, sizeof(ack)); /* of our SETTINGS */
    len += sizeof(ack);
    nghttp2_submit_request(s, NULL, nv, browser ? 14 : 4, NULL, NULL);
    while ((n = nghttp2_session_mem_send(s, &data)) > 0 && len + (size_t)n <= cap) {
        memcpy(out + len, data, (size_t)n);
        len += (size_t)n;
    }
    nghttp2_session_del(s);
    nghttp2_session_callbacks_del(cb);
    return len;
}
int main(int argc, char **argv)
{
    static const struct dz_listener lst = {.host = "b", .tag = 1};
    static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                 "\x00\x00\x00\x04\x01\x00\x00\x00\x00";
    static const uint8_t acks[] = {0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0};
    struct dz_httpd_conf conf;
    struct dz_httpd *h;
    struct dz_worker *w;
    int N = argc > 1 ? atoi(argv[1]) : 1000;
    const char *mode = argc > 2 ? argv[2] : "none";
    int get = strcmp(mode, "none") != 0, browser = get && strcmp(mode, "bare") != 0;
    int settle = strcmp(mode, "settled") == 0, late = strcmp(mode, "late") == 0;
    uint8_t in[4096];
    size_t in_len = get ? client_bytes(browser, in, sizeof(in)) : sizeof(pre) - 1;
    if (!get)
        memcpy(in, pre, in_len);
    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &h))
        return 1;
    w = dz_httpd_worker_at(h, 0);
    struct dz_h2conn **cs = calloc(N, sizeof(*cs));
    /* One connection through the whole cycle, then a warm-up: the
     * allocator's first blocks are not the connections'. */
    for (int i = 0; i < 50; i++) {
        struct dz_h2conn *c;
        dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &c);
        dz_h2conn_feed(c, in, in_len);
        dz_worker_flush_dirty(w);
        dz_h2conn_close(c);
        dz_worker_flush_dirty(w);
    }
    struct mallinfo2 m0 = mallinfo2();
    long r0 = rss_kb();
    size_t inflate = 0, deflate = 0;
    for (int i = 0; i < N; i++) {
        struct dz_h2conn *c;
        if (dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &cs[i]))
            return 1;
        c = cs[i];
        if (dz_h2conn_feed(c, in, in_len))
            return 2;
        dz_worker_flush_dirty(w);
        if (i == 0 && c->ngh) {
            inflate = nghttp2_session_get_hd_inflate_dynamic_table_size(c->ngh);
            deflate = nghttp2_session_get_hd_deflate_dynamic_table_size(c->ngh);
        }
        if (settle) {
            dz_h2conn_settle(c);
            dz_worker_flush_dirty(w);
            if (dz_h2conn_feed(c, acks, sizeof(acks)))
                return 3;
            dz_worker_flush_dirty(w);
            if (c->ngh || !c->is_open)
                return 4; /* not given back, or closed */
        }
    }
    /* late: every connection served before any settles, as when a burst
     * of connections is opened faster than DZ_H2_SETTLE_MS. */
    for (int i = 0; late && i < N; i++) {
        dz_h2conn_settle(cs[i]);
        dz_worker_flush_dirty(w);
        if (dz_h2conn_feed(cs[i], acks, sizeof(acks)))
            return 3;
        dz_worker_flush_dirty(w);
        if (cs[i]->ngh || !cs[i]->is_open)
            return 4;
    }
    struct mallinfo2 m1 = mallinfo2();
    long r1 = rss_kb();
    printf("%s: per idle connection (no TLS): malloc'd %.0f B, mmapped %.0f B, RSS %.0f B; "
           "HPACK tables (RFC 7541 sizes) decoder %zu B, encoder %zu B; struct dz_h2conn %zu B\n",
           mode, (double)(m1.uordblks - m0.uordblks) / N, (double)(m1.hblkhd - m0.hblkhd) / N,
           (double)(r1 - r0) * 1024 / N, inflate, deflate, sizeof(struct dz_h2conn));
    return 0;
}
