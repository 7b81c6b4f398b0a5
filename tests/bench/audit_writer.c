/*
 * audit_writer.c - CPU the audit writer spends per line with the Merkle
 * tree attached, as in the gateway with transparency on: the chain (line,
 * hash), the tree (leaf hash, nodes, their files) and the batch's write.
 * One thread queues BURST records shaped like a forwarded request's two
 * lines and waits for their results, again until RECORDS; the log and the
 * tree on the directory given (tmpfs: fdatasync costs nothing there, so
 * what is measured is the writer's own work).  Prints process CPU time
 * (user + system, all threads) and wall time per line.  Not part of
 * `make bench`; build it against a build tree (the same command against
 * another revision's build tree gives the before of a before/after):
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -Igateway -o build/audit_writer \
 *      tests/bench/audit_writer.c build/libgateway.a build/libdarvaza.a \
 *      $(pkg-config --libs jansson openssl libnghttp2) -lev -lm -pthread
 *   build/audit_writer /dev/shm/x 200000 16
 */
#include "audit/audit.h"
#include "audit/audit_tree.h"
#include "audit/auditrec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long done_n;

static void on_done(void *arg, int result)
{
    if (result != 0) {
        fprintf(stderr, "audit result %d\n", result);
        exit(1);
    }
    pthread_mutex_lock(&mu);
    done_n++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* The two lines of a forwarded request (forward.c), with typical values. */
static struct dz_audit_rec *record(unsigned long i)
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

static int rm_tree(const char *path)
{
    char cmd[1100];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s.tree'", path);
    return system(cmd);
}

int main(int argc, char **argv)
{
    struct dz_audit_rotation rot;
    struct dz_audit_tree *tree = NULL;
    struct dz_audit *audit = NULL;
    unsigned long total, burst, sent = 0;
    char path[512];
    double c0, t0;

    if (argc < 4) {
        fprintf(stderr, "usage: %s DIR RECORDS BURST\n", argv[0]);
        return 2;
    }
    total = strtoul(argv[2], NULL, 10);
    burst = strtoul(argv[3], NULL, 10);
    snprintf(path, sizeof(path), "%s/bench-audit.log", argv[1]);
    unlink(path);
    (void)rm_tree(path);
    memset(&rot, 0, sizeof(rot));
    rot.instance = "bench";
    if (dz_audit_open(path, &audit) != 0 || dz_audit_set_rotation(audit, &rot) != 0 ||
        dz_audit_tree_open(path, NULL, "bench", &tree) != 0)
        return 1;
    dz_audit_set_observer(audit, dz_audit_tree_observe, tree);
    c0 = cpu_s();
    t0 = wall_s();
    while (sent < total) {
        unsigned long want = sent + burst < total ? sent + burst : total;
        for (; sent < want; sent++) {
            if (dz_audit_append_rec(audit, record(sent), NULL, on_done, NULL) != 0) {
                fprintf(stderr, "append refused\n");
                return 1;
            }
        }
        pthread_mutex_lock(&mu);
        while (done_n < sent)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    printf("%lu lines, bursts of %lu: %.2f us CPU and %.2f us wall per line; tree %llu leaves\n",
           total, burst, (cpu_s() - c0) * 1e6 / (double)total,
           (wall_s() - t0) * 1e6 / (double)total, (unsigned long long)dz_audit_tree_size(tree));
    dz_audit_close(audit);
    dz_audit_tree_close(tree);
    unlink(path);
    (void)rm_tree(path);
    return 0;
}
