/*
 * h1client_cost.c - CPU the loop thread spends per HTTP/1.1 transfer of the
 * upstream client (lib/http/h1client.c through dz_httpc), without the rest
 * of a forwarded request: CONC transfers at a time over kept-alive loopback
 * connections to a trivial server (threads of this process answering what
 * the benchmark's nginx answers); each finished transfer starts the next
 * one from a zero timer, in a later loop turn, as the gateway does after
 * the audit hand-off.  Prints the loop thread's CPU time (user + system,
 * RUSAGE_THREAD: the server threads are not counted) per transfer.  Not part
 * of `make bench`; build it against a build tree:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -o build/h1client_cost tests/bench/h1client_cost.c \
 *      build/libdarvaza.a $(pkg-config --libs libcurl openssl libnghttp2 jansson) -lev -lm -pthread
 *   build/h1client_cost 100000 8
 *
 * To compare revisions of the client alone, compile `git show REV:lib/http/h1client.c`
 * to an object and put it before build/libdarvaza.a on the same command line
 * (the archive's copy is then not linked).
 */
#include "http/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define CONC_MAX 64

/* What nginx answered in the benchmark (tests/bench/upstream.conf). */
static const char answer[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
                             "Date: Mon, 07 Dec 2026 12:00:00 GMT\r\n"
                             "Content-Type: application/json\r\nContent-Length: 11\r\n"
                             "Connection: keep-alive\r\n\r\n{\"ok\":true}";

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b[16384];
    size_t n = 0;

    for (;;) {
        ssize_t k = recv(fd, b + n, sizeof(b) - 1 - n, 0);
        char *end;

        if (k <= 0)
            break;
        n += (size_t)k;
        b[n] = '\0';
        while ((end = strstr(b, "\r\n\r\n"))) {
            size_t used = (size_t)(end + 4 - b);

            if (send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0)
                goto out;
            memmove(b, b + used, n - used);
            n -= used;
            b[n] = '\0';
        }
    }
out:
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        int one = 1;
        pthread_t t;

        if (fd < 0)
            return NULL;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(t);
    }
}

struct slot {
    ev_timer next;
};

static struct ev_loop *loop;
static struct dz_httpc *cli;
static char url[64];
static unsigned long started, done, total;
static int failed;
static struct slot slots[CONC_MAX];
static const struct dz_hdr hdrs[] = {
    {"accept", "application/json"},
    {"user-agent", "h2load nghttp2/1.52.0"},
    {"forwarded", "for=\"127.0.0.1\";proto=https;host=\"localhost:8443\""},
    {"darvaza-request-id", "c195f9ea7fbc000000000007"},
    {"darvaza-assertion", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3In0.c2lnbmF0dXJl"},
};

static void on_head(void *arg, int status, const struct dz_hdr *h, size_t n)
{
    (void)arg;
    (void)h;
    (void)n;
    if (status != 200)
        failed = 1;
}

static void on_data(void *arg, const void *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
}

static void on_done(void *arg, int result)
{
    struct slot *s = arg;

    if (result != 0)
        failed = 1;
    done++;
    if (failed || done == total) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (started < total)
        ev_timer_start(loop, &s->next); /* a later loop turn, as in the gateway */
}

static void start_one(struct ev_loop *l, ev_timer *w, int revents)
{
    static const struct dz_httpc_callbacks cbs = {on_head, on_data, on_done};
    struct slot *s = w->data;
    struct dz_httpc_request r = {
        .method = "GET",
        .url = url,
        .headers = hdrs,
        .nheaders = sizeof(hdrs) / sizeof(hdrs[0]),
        .version = DZ_HTTPC_HTTP1,
        .timeout_ms = 10000,
    };

    (void)l;
    (void)revents;
    if (started == total)
        return;
    started++;
    if (dz_httpc_start(cli, &r, &cbs, s, NULL) != 0) {
        failed = 1;
        ev_break(loop, EVBREAK_ALL);
    }
}

static double thread_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int conc = argc > 2 ? atoi(argv[2]) : 8;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t st;
    double cpu0;
    struct timespec t0, t1;

    if (conc < 1 || conc > CONC_MAX || lfd < 0 || bind(lfd, (struct sockaddr *)&a, al) != 0 ||
        listen(lfd, 128) != 0 || getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
        return 2;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/static/ping", ntohs(a.sin_port));
    pthread_create(&st, NULL, serve, (void *)(intptr_t)lfd);
    loop = ev_default_loop(0);
    if (dz_httpc_new(loop, &cli) != 0)
        return 2;
    /* Warm-up: the connections opened, the buffers allocated. */
    for (int pass = 0; pass < 2; pass++) {
        started = done = 0;
        total = pass == 0 ? (unsigned long)conc * 100 : n;
        cpu0 = thread_cpu_us();
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < conc; i++) {
            ev_timer_init(&slots[i].next, start_one, 0., 0.);
            slots[i].next.data = &slots[i];
            ev_timer_start(loop, &slots[i].next);
        }
        ev_run(loop, 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (failed) {
            fprintf(stderr, "a transfer failed\n");
            return 1;
        }
        if (pass == 1)
            printf("%lu transfers, %d at a time: %.2f us CPU of the loop thread per transfer, "
                   "%.2f us wall\n",
                   done, conc, (thread_cpu_us() - cpu0) / (double)done,
                   ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) /
                       (double)done);
    }
    dz_httpc_free(cli);
    return 0;
}
