/*
 * audit_handoff.c - CPU the process spends per audit record on its way from
 * worker loops to the writer thread and back, without the rest of a request:
 * two engine workers (no listener), each running BURST records per loop turn
 * (a turn that served BURST requests), the next turn's burst started when the
 * last result of the previous one came back; the log on the directory given
 * (tmpfs: fdatasync costs nothing, so the hand-offs and wake-ups are what is
 * measured).  Prints process CPU time (user + system, all threads) and wall
 * time per record.  Not part of `make bench`; build it against a build tree:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -Igateway -o build/audit_handoff \
 *      tests/bench/audit_handoff.c build/libgateway.a build/libdarvaza.a \
 *      $(pkg-config --libs jansson openssl libnghttp2) -lev -lm -pthread
 *   build/audit_handoff /dev/shm/x 200000 16
 */
#include "audit/audit.h"
#include "http/httpd.h"
#include "http/httpd_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2

static struct dz_audit *audit;
static struct dz_httpd *httpd;
static unsigned burst_len;
static unsigned long per_worker;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned finished;

struct wstate {
    unsigned index;
    unsigned long appended, done;
    unsigned pending;
};
static struct wstate ws[WORKERS];

static void on_request(struct dz_req *r, void *w)
{
    dz_req_respond(r, 404, NULL, 0, "", 0);
}

static void run_burst(void *p);

static void on_done(void *arg, int result)
{
    struct wstate *s = arg;

    if (result != 0) {
        fprintf(stderr, "audit result %d\n", result);
        exit(1);
    }
    s->done++;
    if (--s->pending == 0) {
        if (s->appended < per_worker) {
            run_burst(s);
        } else {
            pthread_mutex_lock(&mu);
            finished++;
            pthread_cond_signal(&cv);
            pthread_mutex_unlock(&mu);
        }
    }
}

/* On the worker's loop: one turn's worth of records. */
static void run_burst(void *p)
{
    struct wstate *s = p;
    struct dz_worker *w = dz_httpd_worker_at(httpd, s->index);

    for (unsigned i = 0; i < burst_len && s->appended < per_worker; i++) {
        json_t *rec = json_pack("{s:s, s:s, s:s}", "type", "forward", "rid", "0123456789abcdef",
                                "service", "bench");
        while (dz_audit_append(audit, rec, w, on_done, s) != 0) {
            fprintf(stderr, "append refused\n");
            exit(1);
        }
        s->appended++;
        s->pending++;
    }
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct dz_httpd_conf conf;
    char path[512];
    double c0, t0;
    unsigned long total;

    if (argc < 4) {
        fprintf(stderr, "usage: %s DIR RECORDS BURST\n", argv[0]);
        return 2;
    }
    total = strtoul(argv[2], NULL, 10);
    burst_len = (unsigned)atoi(argv[3]);
    per_worker = total / WORKERS;
    snprintf(path, sizeof(path), "%s/bench-audit.log", argv[1]);
    unlink(path);
    if (dz_audit_open(path, &audit) != 0)
        return 1;
    memset(&conf, 0, sizeof(conf));
    conf.workers = WORKERS;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, &httpd) != 0 || dz_httpd_start(httpd) != 0)
        return 1;
    c0 = cpu_s();
    t0 = wall_s();
    for (unsigned i = 0; i < WORKERS; i++) {
        ws[i].index = i;
        dz_worker_post(dz_httpd_worker_at(httpd, i), run_burst, &ws[i]);
    }
    pthread_mutex_lock(&mu);
    while (finished < WORKERS)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("%lu records, bursts of %u: %.2f us CPU and %.2f us wall per record\n",
           per_worker * WORKERS, burst_len, (cpu_s() - c0) * 1e6 / (double)(per_worker * WORKERS),
           (wall_s() - t0) * 1e6 / (double)(per_worker * WORKERS));
    dz_httpd_drain(httpd, 1000);
    dz_httpd_free(httpd);
    dz_audit_close(audit);
    unlink(path);
    return 0;
}
