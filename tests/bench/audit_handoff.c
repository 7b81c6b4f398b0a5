/*
 * audit_handoff.c - CPU the process spends per audit record on its way from
 * worker loops to the writer thread and back, without the rest of a request:
 * two engine workers (no listener), each running BURST records per loop turn
 * (a turn that served BURST requests), the next turn's burst started when the
 * last result of the previous one came back; the log on the directory given
 * (tmpfs: fdatasync costs nothing, so the hand-offs and wake-ups are what is
 * measured).  Prints process CPU time (user + system, all threads) and wall
 * time per record.  With "tree" after BURST, the records are a forwarded
 * request's two lines built without jansson (forward.c) and the Merkle tree
 * follows the log as in the gateway with transparency on; the audit writer
 * thread's own CPU time per line is printed too (chain, tree, write).  Not
 * part of `make bench`; build it against a build tree (the same command
 * against another revision's build tree gives the before of a before/after):
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -Igateway -o build/audit_handoff \
 *      tests/bench/audit_handoff.c build/libgateway.a build/libdarvaza.a \
 *      $(pkg-config --libs jansson openssl libnghttp2) -lp11 -lev -lm -pthread
 *   build/audit_handoff /dev/shm/x 200000 16 [tree]
 */
#include "audit/audit.h"
#include "audit/audit_tree.h"
#include "audit/auditrec.h"
#include "http/httpd.h"
#include "http/httpd_int.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "benchtime.h"

#define WORKERS 2

static struct dz_audit *audit;
static struct dz_httpd *httpd;
static unsigned burst_len;
static unsigned long per_worker;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned finished;
static bool with_tree;
static struct dz_audit_tree *tree;
static double writer_cpu;          /* the writer thread's CPU time at its last batch */
static atomic_ulong observed_last; /* seq of the last line the tree was given */

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

/* A forwarded request's two lines (forward.c), with typical values. */
static struct dz_audit_rec *forward_record(unsigned long i)
{
    struct dz_audit_rec *r = dz_audit_rec_new(i % 2 ? "forward_result" : "forward");

    dz_audit_rec_str(r, "rid", "7f3a9c2e41d0b5a6");
    dz_audit_rec_str(r, "service", "bench");
    if (i % 2) {
        dz_audit_rec_str(r, "result", "ok");
        dz_audit_rec_int(r, "status", 200);
        dz_audit_rec_int(r, "bytes", 1234);
        dz_audit_rec_bool(r, "sent", true);
    } else {
        dz_audit_rec_str(r, "phase", "sent");
        dz_audit_rec_str(r, "decision", "allow");
        dz_audit_rec_str(r, "route", "/api/");
        dz_audit_rec_str(r, "method", "GET");
        dz_audit_rec_str(r, "path", "/api/items/42");
        dz_audit_rec_opt_str(r, "fin", "EE38001085718");
        dz_audit_rec_opt_str(r, "means", "card");
        dz_audit_rec_opt_str(r, "sid", "b1946ac92492d2347c6235b4d2611184");
    }
    dz_audit_rec_opt_str(r, "jti", "6c1f2d0e9a8b7c6d5e4f3a2b1c0d9e8f");
    return r;
}

/* The observer, on the writer thread: the tree, then the thread's clock. */
static void observe(void *arg, const struct dz_audit_batch *b)
{
    struct timespec ts;

    unsigned long lines = 0;

    dz_audit_tree_observe(arg, b);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    writer_cpu = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    for (size_t i = 0; i < b->len; i++)
        lines += b->data[i] == '\n';
    if (lines > 0)
        atomic_store(&observed_last, (unsigned long)b->first_seq + lines - 1);
}

/* On the worker's loop: one turn's worth of records. */
static void run_burst(void *p)
{
    struct wstate *s = p;
    struct dz_worker *w = dz_httpd_worker_at(httpd, s->index);

    for (unsigned i = 0; i < burst_len && s->appended < per_worker; i++) {
        int rc;
        if (with_tree) {
            rc = dz_audit_append_rec(audit, forward_record(s->appended), w, on_done, s);
        } else {
            json_t *rec = json_pack("{s:s, s:s, s:s}", "type", "forward", "rid", "0123456789abcdef",
                                    "service", "bench");
            rc = dz_audit_append(audit, rec, w, on_done, s);
        }
        if (rc != 0) {
            fprintf(stderr, "append refused\n");
            exit(1);
        }
        s->appended++;
        s->pending++;
    }
}

/* The tree's files (L00..L63, heads.jsonl) and its directory. */
static void remove_tree(const char *dir)
{
    char p[700];

    for (unsigned l = 0; l < 64; l++) {
        snprintf(p, sizeof(p), "%s/L%02u", dir, l);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/heads.jsonl", dir);
    unlink(p);
    rmdir(dir);
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct dz_httpd_conf conf;
    char path[512];
    char dir[600] = "";
    double c0, t0;
    unsigned long total;

    if (argc < 4) {
        fprintf(stderr, "usage: %s DIR RECORDS BURST\n", argv[0]);
        return 2;
    }
    total = strtoul(argv[2], NULL, 10);
    burst_len = (unsigned)atoi(argv[3]);
    per_worker = total / WORKERS;
    with_tree = argc > 4 && strcmp(argv[4], "tree") == 0;
    snprintf(path, sizeof(path), "%s/bench-audit.log", argv[1]);
    unlink(path);
    if (dz_audit_open(path, &audit) != 0)
        return 1;
    if (with_tree) {
        struct dz_audit_rotation rot = {0, 0, "bench"};
        snprintf(dir, sizeof(dir), "%s/bench-audit.tree.%d", argv[1], (int)getpid());
        if (dz_audit_set_rotation(audit, &rot) != 0 ||
            dz_audit_tree_open(path, dir, "bench", &tree, NULL) != 0)
            return 1;
        dz_audit_set_observer(audit, observe, tree);
    }
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
    /* The tree hears of a batch after its callers: wait for the last. */
    while (with_tree && atomic_load(&observed_last) < per_worker * WORKERS + 1)
        sched_yield();
    if (with_tree)
        printf("audit writer thread: %.2f us CPU per line; tree %llu leaves\n",
               writer_cpu * 1e6 / (double)(per_worker * WORKERS),
               (unsigned long long)dz_audit_tree_size(tree));
    dz_httpd_drain(httpd, 1000);
    dz_httpd_free(httpd);
    dz_audit_close(audit);
    dz_audit_tree_close(tree);
    if (dir[0])
        remove_tree(dir);
    unlink(path);
    return 0;
}
