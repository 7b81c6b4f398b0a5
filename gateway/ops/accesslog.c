/*
 * accesslog.c - the access log (accesslog.h): lines built on the loop
 * thread, written by one writer thread.
 *
 * Why a thread and not a write(2) per line on the loop: a write to a
 * regular file is usually a copy into the page cache, but it can sleep
 * (dirty-page throttling, a slow or full disk, a stalled network file
 * system) and one sleeping loop stalls every connection it serves.  The
 * queue is bounded; lines that do not fit are dropped and counted, never
 * waited for.  The writer is the only one that closes a file descriptor
 * of the log, so a reopen (SIGUSR1, reload) hands it the new one and it
 * switches between two lines.
 *
 * Never logs the query string, a header value, a token or a cookie; a path
 * only as accesslog.h says.
 */
#include "ops/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/deadline.h"
#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

#define QUEUE_MAX 16384     /* lines waiting for the writer (a few MiB at most) */
#define BATCH_MAX 256       /* lines the writer takes per round */
#define NO_FD (-2)          /* no new descriptor waiting */
#define WARN_EVERY_MS 10000 /* drops and write errors: one ops line per 10 s */
#define GATHER_MS 100       /* after a write, lines gather this long before the next */
#define GATHER_MAX 64       /* ... unless this many are waiting */

/* ---- the line: accessline.c ------------------------------------------------- */

const char *dz_accesslog_route(const char *label, char *buf, size_t buf_len)
{
    const char *sp;
    const char *slash;

    buf[0] = '\0';
    if (!label)
        return buf;
    /* A policy rule reads "FILE:LINE METHOD TEMPLATE": the template is
     * what survives an edit of the file. */
    sp = strchr(label, ' ');
    slash = sp ? strchr(sp, '/') : NULL;
    snprintf(buf, buf_len, "%s", slash ? slash : label);
    return buf;
}

/* ---- the writer ---------------------------------------------------------- */

struct qline {
    char *p;
    size_t len;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct qline q[QUEUE_MAX];
    size_t head;
    size_t count;
    bool started;
    bool stop;
    bool gathering; /* the writer waits out GATHER_MS: no wake-up per line */
    int fd;         /* the writer's; -1 none */
    int new_fd;     /* handed over, NO_FD none */
    uint64_t dropped;
    pthread_t thread;
} W = {PTHREAD_MUTEX_INITIALIZER,
       PTHREAD_COND_INITIALIZER,
       {{0}},
       0,
       0,
       false,
       false,
       false,
       -1,
       NO_FD,
       0,
       0};

/* Read by every loop thread per request: 0 off, else lines are queued.
 * log_fin is read from the request's own generation. */
static _Atomic int enabled;
/* The output in force and its path (main thread only). */
static enum dz_access_output cur_output = DZ_ACCESS_OFF;
static char cur_path[PATH_MAX];
/* The machine's name, set once before the workers start. */
static char host_name[256];

static void close_fd(int fd)
{
    if (fd > STDERR_FILENO)
        close(fd);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The batch's lines with as few system calls as the kernel allows (one
 * writev for up to IOV_BATCH lines; a line per write(2) before, a system
 * call per request).  Returns the number of lines not written whole. */
#define IOV_BATCH 64 /* well under IOV_MAX (1024) */
static size_t write_batch(int fd, const struct qline *b, size_t n)
{
    size_t failed = 0;

    for (size_t i = 0; i < n;) {
        struct iovec iov[IOV_BATCH];
        size_t k = 0;
        ssize_t w;

        while (k < IOV_BATCH && i + k < n) {
            iov[k].iov_base = b[i + k].p;
            iov[k].iov_len = b[i + k].len;
            k++;
        }
        w = writev(fd, iov, (int)k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            failed += k;
            i += k;
            continue;
        }
        /* Whole lines written: skip them; a cut line is finished with
         * write_all, as a line alone would have been. */
        for (size_t j = 0; j < k; j++, i++) {
            if ((size_t)w >= iov[j].iov_len) {
                w -= (ssize_t)iov[j].iov_len;
                continue;
            }
            if (write_all(fd, (const char *)iov[j].iov_base + w, iov[j].iov_len - (size_t)w) != 0)
                failed++;
            w = 0;
        }
    }
    return failed;
}

/* One write(2) per line: on a pipe or a socket (stderr under a container
 * runtime or journald) a write over PIPE_BUF, or over the socket's buffer,
 * goes in pieces, and another thread's line (the ops log writes each of
 * its own with one write) could land between them. */
static size_t write_each(int fd, const struct qline *b, size_t n)
{
    size_t failed = 0;

    for (size_t i = 0; i < n; i++)
        if (write_all(fd, b[i].p, b[i].len) != 0)
            failed++;
    return failed;
}

/* A regular file opened O_APPEND takes a writev whole (the kernel holds
 * the file's lock for the call): batches of lines there. */
static bool is_regular_file(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After a write, the lines of the next GATHER_MS come together: one
 * wake-up of this thread (and no futex call on a loop) for all of them,
 * where each line that found the queue empty woke it - when requests come
 * one at a time, as logins do, that was every line.  Cut short by a stop, a
 * new descriptor, or GATHER_MAX lines waiting, so the queue never fills
 * because of it; a line reaches the file at most GATHER_MS later (the log
 * is not synced to disk either way).  mu held. */
static void gather(void)
{
    struct timespec until;

    dz_deadline_ms(CLOCK_MONOTONIC, GATHER_MS, &until);
    W.gathering = true;
    while (!W.stop && W.new_fd == NO_FD && W.count < GATHER_MAX &&
           pthread_cond_clockwait(&W.cv, &W.mu, CLOCK_MONOTONIC, &until) != ETIMEDOUT)
        ;
    W.gathering = false;
}

static void *writer_main(void *arg)
{
    struct qline batch[BATCH_MAX];
    int64_t last_warn = 0;
    uint64_t failed = 0;
    uint64_t told_dropped = 0;
    uint64_t told_failed = 0;
    int known_fd = NO_FD; /* the descriptor whose kind is in regular */
    bool regular = false;

    pthread_mutex_lock(&W.mu);
    for (;;) {
        size_t n = 0;
        uint64_t dropped;
        int fd;

        while (!W.count && !W.stop && W.new_fd == NO_FD)
            pthread_cond_wait(&W.cv, &W.mu);
        if (W.new_fd != NO_FD) {
            close_fd(W.fd);
            W.fd = W.new_fd;
            W.new_fd = NO_FD;
            known_fd = NO_FD; /* a number can come back for another kind */
        }
        while (W.count && n < BATCH_MAX) {
            batch[n++] = W.q[W.head];
            W.head = (W.head + 1) % QUEUE_MAX;
            W.count--;
        }
        if (!n && W.stop)
            break;
        dropped = W.dropped;
        fd = W.fd;
        pthread_mutex_unlock(&W.mu);
        if (fd >= 0 && fd != known_fd) {
            regular = is_regular_file(fd);
            known_fd = fd;
        }
        if (fd >= 0 && regular)
            failed += write_batch(fd, batch, n);
        else if (fd >= 0)
            failed += write_each(fd, batch, n);
        for (size_t i = 0; i < n; i++)
            free(batch[i].p);
        /* Only news: the counts since the last warning. */
        if ((dropped > told_dropped || failed > told_failed) &&
            mono_ms() - last_warn >= WARN_EVERY_MS) {
            last_warn = mono_ms();
            dz_logj(DZ_LOG_WARN, "access_log_lost",
                    json_pack("{s:I, s:I, s:s}", "dropped", (json_int_t)(dropped - told_dropped),
                              "write_failed", (json_int_t)(failed - told_failed), "msg",
                              "access log lines lost (queue full or write failed)"));
            told_dropped = dropped;
            told_failed = failed;
        }
        pthread_mutex_lock(&W.mu);
        if (n)
            gather();
    }
    close_fd(W.fd);
    W.fd = -1;
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

static int open_file(const char *path, int *out, char *err, size_t err_len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

    *out = -1;
    if (fd < 0) {
        snprintf(err, err_len, "access_log.file: %s: %s", path, strerror(errno));
        return DZ_ERR_IO;
    }
    *out = fd;
    return 0;
}

/* Give the writer fd (it closes the one it had). */
static void hand_over(int fd)
{
    pthread_mutex_lock(&W.mu);
    if (W.new_fd != NO_FD)
        close_fd(W.new_fd); /* never taken: the newer one wins */
    W.new_fd = fd;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

int dz_accesslog_configure(const struct dz_config_access_log *cf, char *err, size_t err_len)
{
    int fd = -1;
    int rc;

    if (cf->output == cur_output &&
        (cf->output != DZ_ACCESS_FILE || strcmp(cf->file, cur_path) == 0))
        return 0;
    switch (cf->output) {
    case DZ_ACCESS_FILE:
        rc = open_file(cf->file, &fd, err, err_len);
        if (rc != 0)
            return rc;
        snprintf(cur_path, sizeof(cur_path), "%s", cf->file);
        hand_over(fd);
        break;
    case DZ_ACCESS_STDERR:
        cur_path[0] = '\0';
        hand_over(STDERR_FILENO);
        break;
    default:
        cur_path[0] = '\0';
        hand_over(-1);
        break;
    }
    cur_output = cf->output;
    atomic_store(&enabled, cf->output != DZ_ACCESS_OFF);
    return 0;
}

int dz_accesslog_open(const struct dz_config_access_log *cf, char *err, size_t err_len)
{
    int rc;

    if (gethostname(host_name, sizeof(host_name) - 1) != 0)
        host_name[0] = '\0';
    rc = dz_accesslog_configure(cf, err, err_len);
    if (rc != 0)
        return rc;
    if (pthread_create(&W.thread, NULL, writer_main, NULL) != 0) {
        snprintf(err, err_len, "access_log: cannot start the writer thread");
        atomic_store(&enabled, 0);
        return DZ_ERR_NOMEM;
    }
    W.started = true;
    return 0;
}

int dz_accesslog_reopen(char *err, size_t err_len)
{
    int fd = -1;
    int rc;

    if (cur_output != DZ_ACCESS_FILE)
        return 0;
    rc = open_file(cur_path, &fd, err, err_len);
    if (rc != 0)
        return rc;
    hand_over(fd);
    return 0;
}

void dz_accesslog_close(void)
{
    atomic_store(&enabled, 0);
    if (!W.started)
        return;
    pthread_mutex_lock(&W.mu);
    W.stop = true;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(W.thread, NULL);
    W.started = false;
    if (W.new_fd != NO_FD)
        close_fd(W.new_fd);
    W.new_fd = NO_FD;
}

static void enqueue(char *line, size_t len)
{
    pthread_mutex_lock(&W.mu);
    if (W.count == QUEUE_MAX || W.stop) {
        W.dropped++;
        pthread_mutex_unlock(&W.mu);
        free(line);
        return;
    }
    W.q[(W.head + W.count) % QUEUE_MAX] = (struct qline){line, len};
    /* The writer waits only on an empty queue, and takes everything queued
     * before it waits again: one wake-up when the queue stops being empty
     * is enough; one per line woke it (and had it fight the loops for
     * W.mu) on nearly every request. */
    if (W.gathering ? ++W.count == GATHER_MAX : W.count++ == 0)
        pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

/* ---- from a request ------------------------------------------------------ */

/* What the path may show.  Every request the router or a policy matched
 * has a template; a placeholder in it ("{fin}", "/auth/mobile/{id}") stands
 * for a value the client put in the path — a FIN or a login's capability
 * id — so the template is logged instead.  A wildcard, or no match at all,
 * leaves the path to the FIN-looking-segment check. */
static enum dz_access_path path_kind(const char *tpl)
{
    if (!tpl || strchr(tpl, '*'))
        return DZ_ACCESS_PATH_UNKNOWN;
    return strchr(tpl, '{') ? DZ_ACCESS_PATH_FIN : DZ_ACCESS_PATH_SAFE;
}

void dz_accesslog_request(const struct dz_rctx *c)
{
    struct dz_access_entry e;
    char route[512];
    char sid[16];
    const char *tpl = c->route_tpl;
    char *line = NULL;
    size_t len = 0;

    if (!atomic_load(&enabled))
        return;
    memset(&e, 0, sizeof(e));
    /* A policy route's label is "FILE:LINE METHOD TEMPLATE": without a
     * template set by the forwarder, the template is taken from it. */
    if (!tpl && c->route && strchr(c->route, ' '))
        tpl = dz_accesslog_route(c->route, route, sizeof(route));
    e.time_ms = dz_unix_ms();
    e.rid = c->rid;
    e.gw = c->gen->config->gateway.id;
    e.host = host_name[0] ? host_name : NULL;
    e.client = dz_req_peer_ip(c->req);
    e.method = dz_req_method(c->req);
    e.route = tpl ? tpl : (c->route ? c->route : "other");
    e.service = c->service;
    e.path = dz_req_path(c->req);
    e.path_kind = path_kind(tpl);
    e.status = c->answered ? c->status : 499;
    e.bytes = c->bytes_out;
    e.dur_us = dz_now_us() - c->start_us;
    e.upstream_status = c->upstream_status;
    e.upstream_us = c->upstream_us;
    if (c->has_session) {
        /* 9 bytes of the session id (itself SHA-256 of the token) in
         * base64url: the first 12 characters of the audit log's "sid". */
        unsigned char part[9];
        memcpy(part, c->session.sid, sizeof(part));
        dz_b64_encode_to(part, sizeof(part), true, sid);
        e.sid = sid;
        e.means = c->session.method[0] ? c->session.method : NULL;
        e.acr = c->session.acr[0] ? c->session.acr : NULL;
    }
    if (dz_accesslog_format(&e, c->gen->config->access_log.log_fin, &line, &len) != 0)
        return;
    enqueue(line, len);
}
