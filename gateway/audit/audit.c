/*
 * audit.c - the audit log writer (see audit.h): a bounded queue in front of
 * one dedicated thread that chains, batches, writes and fdatasyncs lines,
 * then reports each record's fate to the thread that asked.  It owns the
 * file descriptor and the chain state (seq, hash of the last line); nothing
 * else writes the file.  It must never block a caller on I/O, never report
 * success for a line that is not durable, never write after the chain state
 * became uncertain, and never see a private key (heads are signed through
 * the caller's callback).
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "http/httpd.h"

#include "base/compat.h"

struct entry {
    struct entry *next;
    json_t *rec;
    struct dz_worker *w;
    void (*done)(void *arg, int result);
    void *arg;
    int result;
};

typedef int (*head_sign_fn)(void *arg, const void *data, size_t len, unsigned char sig[64]);

struct dz_audit {
    char *path;
    int fd;
    pthread_t thread;
    bool has_thread;

    /* Shared with callers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct entry *qhead;
    struct entry *qtail;
    size_t qlen;
    size_t queue_max;
    size_t batch_max;
    bool closing;
    bool failed; /* the chain state on disk is uncertain: accept nothing more */
    head_sign_fn sign;
    void *sign_arg;
    char kid[128];
    uint32_t interval_ms;

    /* Writer thread only (and open/close, before/after it runs). */
    uint64_t seq;           /* seq of the last line in the file, 0 if none */
    unsigned char prev[32]; /* hash of that line, zeros if none */
    off_t size;             /* bytes of whole lines in the file */
    bool dirty;             /* lines written since the last head */
    struct timespec next_head;
};

static void mono_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

static void ts_add_ms(struct timespec *ts, uint32_t ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool ts_reached(const struct timespec *now, const struct timespec *t)
{
    return now->tv_sec > t->tv_sec || (now->tv_sec == t->tv_sec && now->tv_nsec >= t->tv_nsec);
}

static void rfc3339_now(char *out, size_t out_len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

/* ---------------------------------------------------------------- open --- */

static void log_open_error(const char *path, uint64_t line, const char *reason)
{
    json_t *f = json_pack("{s:s, s:s, s:s}", "file", path, "reason", reason, "msg",
                          "refusing to continue the audit chain; check it with "
                          "`darvaza audit verify FILE`, then repair it or move it aside");

    if (f && line)
        json_object_set_new(f, "line", json_integer((json_int_t)line));
    dz_logj(DZ_LOG_ERROR, "audit_open", f);
}

/* Number of newlines in the file: the line number of a damaged tail.  Only
 * on the error path, so reading the whole file once is acceptable. */
static uint64_t count_lines(int fd)
{
    char buf[65536];
    uint64_t n = 0;
    off_t off = 0;

    for (;;) {
        ssize_t r = pread(fd, buf, sizeof(buf), off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + r - p))) != NULL; p++)
            n++;
        off += r;
    }
    return n;
}

/* Read the last line of a non-empty file and take the chain state from it. */
static int read_tail(struct dz_audit *a, off_t size)
{
    size_t want = DZ_AUDIT_LINE_MAX + 2; /* the line, its newline, the one before */
    char *buf = NULL;
    size_t got = 0;
    const char *line;
    const char *nl;
    size_t line_len;
    struct dz_audit_line l;
    int rc = DZ_ERR_PARSE;

    if ((off_t)want > size)
        want = (size_t)size;
    buf = malloc(want);
    if (!buf) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    while (got < want) {
        ssize_t r = pread(a->fd, buf + got, want - got, size - (off_t)want + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            dz_log(DZ_LOG_ERROR, "audit_open", "%s: read failed: %s", a->path,
                   r < 0 ? strerror(errno) : "short read");
            rc = DZ_ERR_IO;
            goto out;
        }
        got += (size_t)r;
    }
    if (buf[want - 1] != '\n') {
        log_open_error(a->path, count_lines(a->fd) + 1,
                       "incomplete last line (no newline): a write was cut short");
        goto out;
    }
    nl = want > 1 ? memrchr(buf, '\n', want - 1) : NULL;
    if (nl) {
        line = nl + 1;
    } else if ((off_t)want == size) {
        line = buf;
    } else {
        log_open_error(a->path, count_lines(a->fd), "last line is longer than any audit line");
        goto out;
    }
    line_len = (size_t)(buf + want - 1 - line);
    if (dz_audit_parse_line(line, line_len, &l) != 0) {
        log_open_error(a->path, count_lines(a->fd),
                       "last line is not an audit line (JSON object with seq, time, prev)");
        goto out;
    }
    a->seq = l.seq;
    memcpy(a->prev, l.hash, 32);
    /* A file that ends on a record, not a head, has lines no signature
     * covers yet: the next periodic head is due even before new lines. */
    a->dirty = !l.is_head;
    rc = 0;
out:
    free(buf);
    return rc;
}

static void *writer_main(void *p);

int dz_audit_open(const char *path, struct dz_audit **out)
{
    struct dz_audit *a = NULL;
    struct stat st;
    bool mu_init = false;
    bool cv_init = false;
    pthread_condattr_t ca;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    a = calloc(1, sizeof(*a));
    if (!a)
        goto out;
    a->fd = -1;
    a->queue_max = DZ_AUDIT_QUEUE_MAX;
    a->batch_max = DZ_AUDIT_BATCH_MAX;
    a->path = strdup(path);
    if (!a->path)
        goto out;
    if (pthread_mutex_init(&a->mu, NULL) != 0)
        goto out;
    mu_init = true;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    /* Head deadlines are on the monotonic clock: wall-clock steps must not
     * delay or flood signing. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cv_init = pthread_cond_init(&a->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cv_init)
        goto out;

    rc = DZ_ERR_IO;
    /* O_APPEND: each batch lands at the end even if someone else extended
     * the file; the flock below keeps another gateway from doing that. */
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        dz_log(DZ_LOG_ERROR, "audit_open", "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dz_log(DZ_LOG_ERROR, "audit_open", "%s: not a regular file", path);
        goto out;
    }
    /* Two writers would each continue the chain from the same tail and fork
     * it; refuse to start rather than wait or share. */
    if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? DZ_ERR_STATE : DZ_ERR_IO;
        dz_log(DZ_LOG_ERROR, "audit_open", "%s: cannot lock: %s", path,
               errno == EWOULDBLOCK ? "another process writes this audit log" : strerror(errno));
        goto out;
    }
    /* Only a warning: an operator may grant a group of auditors read
     * access on purpose. */
    if (st.st_mode & 077)
        dz_log(DZ_LOG_WARN, "audit_open", "%s: readable by group or others (mode %03o)", path,
               (unsigned)(st.st_mode & 0777));
    if (st.st_size > 0) {
        rc = read_tail(a, st.st_size);
        if (rc != 0)
            goto out;
    }
    a->size = st.st_size;
    mono_now(&a->next_head);

    if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    a->has_thread = true;
    dz_log(DZ_LOG_INFO, "audit_open", "%s: continuing at seq %" PRIu64, path, a->seq + 1);
    *out = a;
    a = NULL;
    rc = 0;
out:
    if (a) {
        if (a->fd >= 0)
            close(a->fd);
        if (cv_init)
            pthread_cond_destroy(&a->cv);
        if (mu_init)
            pthread_mutex_destroy(&a->mu);
        free(a->path);
        free(a);
    }
    return rc;
}

/* ---------------------------------------------------------- callers --- */

int dz_audit_set_limits(struct dz_audit *a, size_t queue_max, size_t batch_max)
{
    if (!a || queue_max < 1 || batch_max < 1 || batch_max > 65536)
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&a->mu);
    a->queue_max = queue_max;
    a->batch_max = batch_max;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int dz_audit_set_head_signer(struct dz_audit *a, head_sign_fn sign, void *arg, const char *kid,
                             uint32_t interval_ms)
{
    size_t kid_len = kid ? strlen(kid) : 0;

    if (!a || (sign && (kid_len == 0 || kid_len >= sizeof(a->kid))))
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&a->mu);
    a->sign = sign;
    a->sign_arg = arg;
    memset(a->kid, 0, sizeof(a->kid));
    if (sign)
        memcpy(a->kid, kid, kid_len);
    a->interval_ms = interval_ms;
    /* The first periodic head comes one interval from now. */
    mono_now(&a->next_head);
    ts_add_ms(&a->next_head, interval_ms);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static bool record_ok(json_t *rec)
{
    json_t *type = json_object_get(rec, "type");

    /* The chain fields and head lines are written only by this file: a caller
     * that could set them could forge a head or a gap in the chain. */
    return json_is_object(rec) && json_is_string(type) &&
           strcmp(json_string_value(type), "head") != 0 && !json_object_get(rec, "seq") &&
           !json_object_get(rec, "time") && !json_object_get(rec, "prev");
}

int dz_audit_append(struct dz_audit *a, json_t *record, struct dz_worker *w,
                    void (*done)(void *arg, int result), void *arg)
{
    struct entry *e = NULL;
    int rc = DZ_ERR_INVAL;

    if (!a || !done || !record || !record_ok(record))
        goto out;
    rc = DZ_ERR_NOMEM;
    e = calloc(1, sizeof(*e));
    if (!e)
        goto out;
    e->w = w;
    e->done = done;
    e->arg = arg;

    pthread_mutex_lock(&a->mu);
    if (a->closing || a->failed)
        rc = DZ_ERR_STATE;
    /* Back-pressure, not unbounded memory: when the disk is slower than
     * the requests, the caller gets DZ_ERR_UNAVAILABLE and must refuse the
     * action, since it could not be audited. */
    else if (a->qlen >= a->queue_max)
        rc = DZ_ERR_UNAVAILABLE;
    else
        rc = 0;
    if (rc == 0) {
        e->rec = record;
        record = NULL;
        if (a->qtail)
            a->qtail->next = e;
        else
            a->qhead = e;
        a->qtail = e;
        a->qlen++;
        e = NULL;
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
out:
    free(e);
    json_decref(record);
    return rc;
}

uint64_t dz_audit_gauge_queued(void *audit)
{
    struct dz_audit *a = audit;
    uint64_t n;

    pthread_mutex_lock(&a->mu);
    n = a->qlen;
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* ------------------------------------------------------------ writer --- */

static void deliver_on_loop(void *p)
{
    struct entry *e = p;

    e->done(e->arg, e->result);
    free(e);
}

static void deliver(struct entry *batch)
{
    while (batch) {
        struct entry *e = batch;
        batch = e->next;
        e->next = NULL;
        if (!e->w) {
            deliver_on_loop(e);
            continue;
        }
        if (dz_worker_post(e->w, deliver_on_loop, e) != 0) {
            /* The worker is stopping: calling done here would run loop-thread
             * code on the wrong thread, so the completion is dropped. */
            dz_log(DZ_LOG_ERROR, "audit_done_lost",
                   "audit result %d could not be posted to its worker (stopping)", e->result);
            free(e);
        }
    }
}

/* Serialise one record as the next line; advances seq/prev on success. */
static int add_line(struct dz_audit *a, json_t *rec, struct dz_buf *out)
{
    char when[96];
    char prev_hex[65];
    char *line = NULL;
    size_t len;
    int rc = DZ_ERR_NOMEM;

    rfc3339_now(when, sizeof(when));
    dz_hex(a->prev, 32, prev_hex);
    if (json_object_set_new(rec, "seq", json_integer((json_int_t)(a->seq + 1))) != 0 ||
        json_object_set_new(rec, "time", json_string(when)) != 0 ||
        json_object_set_new(rec, "prev", json_string(prev_hex)) != 0)
        goto out;
    /* Sorted keys, compact, ASCII: one content, one byte string, no raw
     * newline can split a line. */
    line = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!line) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    len = strlen(line);
    if (len > DZ_AUDIT_LINE_MAX) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    rc = dz_buf_append(out, line, len);
    if (rc == 0)
        rc = dz_buf_append(out, "\n", 1);
    if (rc != 0)
        goto out;
    a->seq++;
    /* The hash covers the line's bytes without its newline, exactly what
     * audit_verify.c hashes; seq moves only once the line is in out. */
    dz_sha256(line, len, a->prev);
out:
    free(line);
    return rc;
}

/* Append a signed head line for the chain so far; prev_hex and sig_b64
 * receive what was signed.  0 or an error (logged; the caller just skips
 * the head). */
static int add_head(struct dz_audit *a, head_sign_fn sign, void *sign_arg, const char *kid,
                    struct dz_buf *out, char prev_hex[65], char sig_b64[96])
{
    char msg[DZ_AUDIT_HEAD_MSG_MAX];
    unsigned char sig[64];
    size_t msg_len;
    json_t *rec = NULL;
    int rc;

    dz_hex(a->prev, 32, prev_hex);
    msg_len = dz_audit_head_message(a->seq + 1, prev_hex, msg);
    rc = sign(sign_arg, msg, msg_len, sig);
    if (rc != 0) {
        dz_log(DZ_LOG_ERROR, "audit_head", "signing the audit head failed: %s", dz_err_str(rc));
        goto out;
    }
    dz_b64_encode_to(sig, sizeof(sig), true, sig_b64);
    rc = DZ_ERR_NOMEM;
    rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "head", "head", prev_hex, "kid", kid, "sig",
                    sig_b64);
    if (!rec)
        goto out;
    rc = add_line(a, rec, out);
out:
    json_decref(rec);
    return rc;
}

static ssize_t write_all(int fd, const char *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static void set_failed(struct dz_audit *a)
{
    pthread_mutex_lock(&a->mu);
    a->failed = true;
    pthread_mutex_unlock(&a->mu);
}

/* One write(2) and one fdatasync(2) for the whole buffer.  0 or DZ_ERR_IO;
 * marks the log failed when the state on disk is no longer known. */
static int flush(struct dz_audit *a, const struct dz_buf *buf)
{
    if (write_all(a->fd, buf->data, buf->len) < 0) {
        int err = errno;
        bool lost = false;
        /* Take back a partial batch so the file still ends on a whole
         * line of a valid chain; if that fails the tail is uncertain. */
        if (ftruncate(a->fd, a->size) != 0) {
            set_failed(a);
            lost = true;
        }
        dz_log(DZ_LOG_ERROR, "audit_write", "%s: write failed: %s%s", a->path, strerror(err),
               lost ? "; the audit log is now closed to new lines" : "");
        return DZ_ERR_IO;
    }
    if (fdatasync(a->fd) != 0) {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages: what is on disk is unknown, so accept nothing more. */
        dz_log(DZ_LOG_ERROR, "audit_write",
               "%s: fdatasync failed: %s; the audit log is now closed to new lines", a->path,
               strerror(errno));
        set_failed(a);
        return DZ_ERR_IO;
    }
    a->size += (off_t)buf->len;
    return 0;
}

/* Write one batch (and a head when want_head) with one write(2) and one
 * fdatasync(2).  Sets every entry's result.  Writer thread. */
static void commit(struct dz_audit *a, struct entry *batch, size_t n, bool want_head,
                   head_sign_fn sign, void *sign_arg, const char *kid)
{
    struct dz_buf buf;
    uint64_t seq0 = a->seq;
    unsigned char prev0[32];
    size_t lines = 0;
    bool has_head = false;
    char head_hex[65] = "";
    char sig_b64[96] = "";
    int rc = 0;

    memcpy(prev0, a->prev, 32);
    /* Room for every line of the batch and one head, so the buffer itself
     * never refuses; only a record over DZ_AUDIT_LINE_MAX is refused, alone,
     * and the chain goes on without it. */
    dz_buf_init(&buf, (n + 1) * ((size_t)DZ_AUDIT_LINE_MAX + 1));
    for (struct entry *e = batch; e && rc == 0; e = e->next) {
        size_t mark = buf.len;
        e->result = add_line(a, e->rec, &buf);
        json_decref(e->rec);
        e->rec = NULL;
        if (e->result != 0 && buf.len < mark)
            rc = e->result; /* dz_buf freed itself: earlier lines are lost too */
        else if (e->result == 0)
            lines++;
    }
    if (rc == 0 && want_head && sign && (a->dirty || lines > 0)) {
        size_t mark = buf.len;
        int hrc = add_head(a, sign, sign_arg, kid, &buf, head_hex, sig_b64);
        if (hrc == 0)
            has_head = true;
        else if (buf.len < mark)
            rc = hrc;
    }
    if (rc == 0 && buf.len > 0)
        rc = flush(a, &buf);

    if (rc != 0) {
        /* Nothing of this batch is in the file: the chain goes on from
         * the last durable line. */
        a->seq = seq0;
        memcpy(a->prev, prev0, 32);
        for (struct entry *e = batch; e; e = e->next) {
            json_decref(e->rec);
            e->rec = NULL;
            if (e->result == 0)
                e->result = rc;
        }
    } else if (has_head) {
        a->dirty = false;
        /* Shipped off the host with the other logs, these lines are the
         * reference that shows a truncated tail (see audit.md). */
        dz_logj(DZ_LOG_INFO, "audit_head",
                json_pack("{s:s, s:I, s:s, s:s, s:s}", "file", a->path, "seq", (json_int_t)a->seq,
                          "head", head_hex, "kid", kid, "sig", sig_b64));
    } else if (lines > 0) {
        a->dirty = true;
    }
    dz_buf_cleanup(&buf);
}

static void fail_batch(struct entry *batch)
{
    for (struct entry *e = batch; e; e = e->next) {
        json_decref(e->rec);
        e->rec = NULL;
        e->result = DZ_ERR_IO;
    }
}

static void *writer_main(void *p)
{
    struct dz_audit *a = p;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct entry *batch = NULL;
        struct entry **tail = &batch;
        size_t n = 0;
        struct timespec now;
        bool final;
        bool want_head;
        bool failed;
        head_sign_fn sign;
        void *sign_arg;
        char kid[sizeof(a->kid)];

        for (;;) {
            if (a->qhead || a->closing)
                break;
            if (a->sign && a->interval_ms > 0 && a->dirty) {
                mono_now(&now);
                if (ts_reached(&now, &a->next_head))
                    break;
                pthread_cond_timedwait(&a->cv, &a->mu, &a->next_head);
            } else {
                pthread_cond_wait(&a->cv, &a->mu);
            }
        }
        while (a->qhead && n < a->batch_max) {
            struct entry *e = a->qhead;
            a->qhead = e->next;
            e->next = NULL;
            *tail = e;
            tail = &e->next;
            n++;
        }
        if (!a->qhead)
            a->qtail = NULL;
        a->qlen -= n;
        final = a->closing && !a->qhead;
        failed = a->failed;
        /* Copied under mu, used after unlocking: signing may go to a token and
         * take a while, and callers must never wait on mu for that. */
        sign = a->sign;
        sign_arg = a->sign_arg;
        memcpy(kid, a->kid, sizeof(kid));
        mono_now(&now);
        want_head = sign && (final || (a->interval_ms > 0 && ts_reached(&now, &a->next_head)));
        if (want_head) {
            a->next_head = now;
            ts_add_ms(&a->next_head, a->interval_ms);
        }
        pthread_mutex_unlock(&a->mu);

        if (failed)
            fail_batch(batch);
        else
            commit(a, batch, n, want_head, sign, sign_arg, kid);
        /* After the unlock as well: completions post to worker loops, and a
         * caller's done() must not run while mu is held. */
        deliver(batch);

        pthread_mutex_lock(&a->mu);
        if (final)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

void dz_audit_close(struct dz_audit *a)
{
    if (!a)
        return;
    if (a->has_thread) {
        pthread_mutex_lock(&a->mu);
        a->closing = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    if (a->fd >= 0)
        close(a->fd);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->path);
    free(a);
}
