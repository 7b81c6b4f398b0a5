/*
 * h2engine.c - CPU cost of the HTTP/2 engine per request, without sockets,
 * TLS or application work: 90 requests (bearer token, cookie, half of them a
 * POST with a login body, a 120-byte JSON answer) made once by an nghttp2
 * client session, then fed through a memory-sink connection (fd -1, as in
 * fuzz_h2frames) 200 times per round, 41 rounds; prints the median round in
 * nanoseconds of thread CPU time per request (time given to other processes
 * does not count, so it is usable on a shared machine).  Not part of
 * `make bench`; build it against a normal build:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -o build/h2engine tests/bench/h2engine.c \
 *      build/libdarvaza.a -lssl -lcrypto -lnghttp2 -ljansson -lev -lm -pthread
 *
 * `h2engine seq`: the connection is counted as accept_one counts it (the
 * process and address counts, and the worker's quiet connections where the
 * engine has them), and the requests come one at a time, each answered
 * before the next: a browser's sequential requests, where every request
 * opens the connection's first stream and closes its last.
 */
#include "base/buf.h"
#include "http/httpd.h"
#include "http/httpd_int.h"
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static const char ANSWER[] = "{\"token\":\"0123456789abcdef0123456789abcdef0123456789abcdef\","
                             "\"expires\":1234567890,\"fin\":\"AB12CD3\",\"x\":1}";
static const char BODY[] =
    "{\"fin\":\"AB12CD3\",\"password\":\"correct horse battery staple\",\"otp\":\"123456\"}";
static void on_request(struct dz_req *r, void *w)
{
    dz_req_respond(r, 200, NULL, 0, ANSWER, sizeof(ANSWER) - 1);
}
static ssize_t rd(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                  nghttp2_data_source *src, void *u)
{
    memcpy(buf, BODY, sizeof(BODY) - 1);
    *fl |= NGHTTP2_DATA_FLAG_EOF;
    return sizeof(BODY) - 1;
}
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static int cmp(const void *a, const void *b)
{
    double x = *(double *)a, y = *(double *)b;
    return x < y ? -1 : x > y;
}
int main(int argc, char **argv)
{
    int seq = argc > 1 && strcmp(argv[1], "seq") == 0;
    static const struct dz_listener lst = {.host = "b", .tag = 1};
    struct dz_httpd_conf conf;
    struct dz_httpd *h;
    struct dz_worker *w;
    enum { N = 90, ROUNDS = 41, REPS = 200 };
    size_t cut[N]; /* where each request's bytes end in `in` */
    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &h))
        return 1;
    w = dz_httpd_worker_at(h, 0);
    /* client bytes: N requests on one connection (under the 100 stream limit) */
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    struct dz_buf in;
    const uint8_t *d;
    ssize_t n;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_client_new(&s, cb, NULL);
    nghttp2_submit_settings(s, 0, NULL, 0);
    dz_buf_init(&in, 1 << 24);
    for (int i = 0; i < N; i++) {
        int post = i & 1;
        nghttp2_nv nv[] = {
            {(uint8_t *)":method", (uint8_t *)(post ? "POST" : "GET"), 7, post ? 4 : 3, 0},
            {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
            {(uint8_t *)":authority", (uint8_t *)"localhost:8443", 10, 14, 0},
            {(uint8_t *)":path", (uint8_t *)(post ? "/auth/password" : "/api/registry/me"), 5,
             post ? 14 : 16, 0},
            {(uint8_t *)"authorization",
             (uint8_t *)"Bearer 0123456789abcdef0123456789abcdef0123456789abcdef", 13, 55, 0},
            {(uint8_t *)"cookie", (uint8_t *)"__Host-darvaza=0123456789abcdef0123456789abcdef", 6,
             47, 0},
            {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, 0},
            {(uint8_t *)"user-agent", (uint8_t *)"Mozilla/5.0 (X11; Linux x86_64) bench", 10, 37,
             0}};
        nghttp2_data_provider prd = {.read_callback = rd};
        nghttp2_submit_request(s, NULL, nv, 8, post ? &prd : NULL, NULL);
        while ((n = nghttp2_session_mem_send(s, &d)) > 0)
            if (dz_buf_append(&in, d, n))
                return 1;
        cut[i] = in.len;
    }
    double t[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (int k = 0; k < REPS; k++) {
            struct dz_h2conn *c;
            if (dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &c))
                return 1;
            if (seq) {
                size_t off = 0;
                atomic_fetch_add(&h->nconns, 1);
                atomic_fetch_add(&h->addr_conns[0], 1);
                c->is_counted = true;
#ifdef DZ_H2_SHED_LENT
                dz_worker_quiet_move(w, 1);
#endif
                for (int i = 0; i < N; i++) {
                    if (dz_h2conn_feed(c, (const uint8_t *)in.data + off, cut[i] - off))
                        return 2;
                    dz_worker_flush_dirty(w);
                    off = cut[i];
                }
            } else if (dz_h2conn_feed(c, (const uint8_t *)in.data, in.len)) {
                return 2;
            }
            dz_worker_flush_dirty(w);
            dz_h2conn_close(c);
            dz_worker_flush_dirty(w);
        }
        t[r] = (now() - t0) / (REPS * N) * 1e9;
    }
    qsort(t, ROUNDS, sizeof(t[0]), cmp);
    printf("ns/request%s: median %.0f  (min %.0f, max %.0f), %d requests x %d connections x %d "
           "rounds\n",
           seq ? " (seq)" : "", t[ROUNDS / 2], t[0], t[ROUNDS - 1], N, REPS, ROUNDS);
    return 0;
}
