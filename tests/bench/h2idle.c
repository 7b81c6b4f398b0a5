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
 *   build/h2idle 2000
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
    dz_req_respond(r, 200, NULL, 0, "{}", 2);
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
int main(int argc, char **argv)
{
    static const struct dz_listener lst = {.host = "b", .tag = 1};
    struct dz_httpd_conf conf;
    struct dz_httpd *h;
    struct dz_worker *w;
    int N = argc > 1 ? atoi(argv[1]) : 1000;
    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &h))
        return 1;
    w = dz_httpd_worker_at(h, 0);
    static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                 "\x00\x00\x00\x04\x01\x00\x00\x00\x00";
    struct dz_h2conn **cs = calloc(N, sizeof(*cs));
    /* Warm-up: the allocator's first blocks are not the connections'. */
    for (int i = 0; i < 50; i++) {
        struct dz_h2conn *c;
        dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &c);
        dz_h2conn_feed(c, pre, sizeof(pre) - 1);
        dz_worker_flush_dirty(w);
        dz_h2conn_close(c);
        dz_worker_flush_dirty(w);
    }
    struct mallinfo2 m0 = mallinfo2();
    long r0 = rss_kb();
    for (int i = 0; i < N; i++) {
        if (dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &cs[i]))
            return 1;
        if (dz_h2conn_feed(cs[i], pre, sizeof(pre) - 1))
            return 2;
        dz_worker_flush_dirty(w);
    }
    struct mallinfo2 m1 = mallinfo2();
    long r1 = rss_kb();
    printf("per idle connection (no TLS): malloc'd %.0f B, mmapped %.0f B, RSS %.0f B\n",
           (double)(m1.uordblks - m0.uordblks) / N, (double)(m1.hblkhd - m0.hblkhd) / N,
           (double)(r1 - r0) * 1024 / N);
    return 0;
}
