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
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditrec.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/deadline.h"
#include "base/err.h"
#include "base/histo.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/timefmt.h"
#include "http/httpd.h"

#include "base/compat.h"

typedef int (*head_sign_fn)(void *arg, const void *data, size_t len, unsigned char sig[64]);

/* A signer argument replaced while the writer may still be signing with it:
 * released by the writer between batches, when it holds no copy. */
struct retired {
    struct retired *next;
    void *arg;
    void (*release)(void *arg);
};

struct dz_audit {
    struct dz_histo fsync_h; /* fdatasync durations */
    char *path;
    int fd;
    pthread_t thread;
    bool has_thread;

    /* Shared with callers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct entry *qhead;
    struct entry *qtail;
    size_t qlen;            /* entries in the queue */
    size_t qwaited;         /* ... of which someone waits on (not patient) */
    struct timespec qsince; /* when the queue last went from empty to not */
    uint32_t linger_ms;     /* how long a queue of patient records may wait */
    size_t batch_max;
    bool closing;
    bool failed;       /* the chain state on disk is uncertain: accept nothing more */
    uint64_t handoffs; /* lists handed to the writer (dz_audit_handoffs) */
    uint64_t lingers;  /* waits for patient lines' company (dz_audit_lingers) */
    /* Read by callers without mu, so that a record waiting in a loop's batch
     * (audit_handoff.c) is admitted or refused at once, as before batching. */
    atomic_size_t inflight;  /* accepted and not yet taken by the writer */
    atomic_size_t queue_max; /* bound on inflight */
    atomic_bool refusing;    /* closing || failed */
    head_sign_fn sign;
    void *sign_arg;
    char kid[128];
    uint32_t interval_ms;
    void (*sign_release)(void *arg); /* NULL: the caller owns sign_arg */
    struct retired *retired;
    /* Segments (set once by dz_audit_set_rotation, before the first line). */
    uint64_t rotate_size;     /* 0: never by size */
    uint64_t rotate_every_ms; /* 0: never by age */
    char instance[DZ_AUDIT_INSTANCE_MAX + 1];
    bool rotate_requested;
    bool head_requested; /* dz_audit_request_head */
    /* What was written, for the Merkle tree (set once before the first line). */
    void (*observe)(void *arg, const struct dz_audit_batch *b);
    void *observe_arg;

    /* Writer thread only (and open/close, before/after it runs). */
    uint64_t seq;           /* seq of the last line in the file, 0 if none */
    uint64_t seq_at_open;   /* seq as the open found it: read by other threads */
    unsigned char prev[32]; /* hash of that line, zeros if none */
    off_t size;             /* bytes of whole lines in the file */
    bool dirty;             /* lines written since the last head */
    struct timespec next_head;
    uint64_t seg_first_seq;      /* seq of the live segment's first line (0: empty) */
    uint64_t seg_lines;          /* record lines written to the live segment */
    struct timespec seg_due;     /* when the live segment is old enough to rotate */
    struct timespec rotate_hold; /* after a failed rotation, no automatic retry before */
};

static void mono_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

static bool ts_reached(const struct timespec *now, const struct timespec *t)
{
    return now->tv_sec > t->tv_sec || (now->tv_sec == t->tv_sec && now->tv_nsec >= t->tv_nsec);
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

/* The seq of the file's first line names the segment when it is rotated;
 * 0 when it cannot be read (the name then carries 0, nothing else). */
static uint64_t read_first_seq(int fd)
{
    char *buf = malloc(DZ_AUDIT_LINE_MAX + 1);
    struct dz_audit_line l;
    uint64_t seq = 0;
    ssize_t r;
    const char *nl;

    if (!buf)
        return 0;
    do
        r = pread(fd, buf, DZ_AUDIT_LINE_MAX + 1, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0 && (nl = memchr(buf, '\n', (size_t)r)) != NULL &&
        dz_audit_parse_line(buf, (size_t)(nl - buf), &l) == 0)
        seq = l.seq;
    free(buf);
    return seq;
}

/* PATH.next: the next segment while a rotation builds it. */
static char *next_path(const char *path)
{
    size_t n = strlen(path) + sizeof(".next");
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s.next", path);
    return p;
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
    atomic_init(&a->queue_max, DZ_AUDIT_QUEUE_MAX);
    a->batch_max = DZ_AUDIT_BATCH_MAX;
    a->linger_ms = DZ_AUDIT_LINGER_MS;
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
    /* A rotation cut between its two renames (see rotate()): the complete
     * next segment is the live file; a fresh file here would fork the chain. */
    {
        char *np = next_path(path);
        struct stat nst;
        if (np && access(path, F_OK) != 0 && errno == ENOENT && stat(np, &nst) == 0 &&
            nst.st_size > 0 && rename(np, path) == 0)
            dz_log(DZ_LOG_WARN, "audit_open", "%s: finished an interrupted rotation", path);
        free(np);
    }
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
        a->seg_first_seq = read_first_seq(a->fd);
    }
    /* Only a rotation that stopped before its renames leaves a PATH.next
     * that never became live. */
    {
        char *np = next_path(path);
        if (np && unlink(np) == 0)
            dz_log(DZ_LOG_WARN, "audit_open", "%s: removed an unfinished next segment", np);
        free(np);
    }
    a->size = st.st_size;
    mono_now(&a->next_head);
    mono_now(&a->seg_due);

    /* Before the writer runs: from then on seq is the writer's alone. */
    a->seq_at_open = a->seq;
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
    atomic_store(&a->queue_max, queue_max);
    a->batch_max = batch_max;
    pthread_cond_signal(&a->cv); /* a smaller batch may be full already */
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int dz_audit_set_linger(struct dz_audit *a, uint32_t linger_ms)
{
    if (!a || linger_ms > 60000)
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&a->mu);
    a->linger_ms = linger_ms;
    pthread_cond_signal(&a->cv); /* a shorter linger may be due already */
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
    dz_ts_add_ms(&a->next_head, interval_ms);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int dz_audit_swap_head_signer(struct dz_audit *a, head_sign_fn sign, void *arg,
                              void (*release)(void *arg), const char *kid)
{
    size_t kid_len = kid ? strlen(kid) : 0;
    struct retired *r = NULL;

    if (!a || !sign || kid_len == 0 || kid_len >= sizeof(a->kid))
        return DZ_ERR_INVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return DZ_ERR_NOMEM;
    pthread_mutex_lock(&a->mu);
    /* The writer may be signing with the old argument right now (it copied it
     * and unlocked): it is released by the writer once that batch is done. */
    r->arg = a->sign_arg;
    r->release = a->sign_release;
    r->next = a->retired;
    a->retired = r;
    a->sign = sign;
    a->sign_arg = arg;
    a->sign_release = release;
    memset(a->kid, 0, sizeof(a->kid));
    memcpy(a->kid, kid, kid_len);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static bool instance_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > DZ_AUDIT_INSTANCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    }
    return true;
}

int dz_audit_set_rotation(struct dz_audit *a, const struct dz_audit_rotation *r)
{
    if (!a || !r || (r->instance && !instance_ok(r->instance)))
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&a->mu);
    a->rotate_size = r->size;
    a->rotate_every_ms = r->every_ms;
    memset(a->instance, 0, sizeof(a->instance));
    if (r->instance)
        memcpy(a->instance, r->instance, strlen(r->instance));
    /* The age of the live segment counts from now: the gateway does not know
     * when an older file was started, and rotating at once on every start
     * would make a segment per restart. */
    mono_now(&a->seg_due);
    dz_ts_add_ms(&a->seg_due, r->every_ms);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void dz_audit_rotate(struct dz_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->rotate_requested = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void dz_audit_set_observer(struct dz_audit *a,
                           void (*fn)(void *arg, const struct dz_audit_batch *b), void *arg)
{
    pthread_mutex_lock(&a->mu);
    a->observe = fn;
    a->observe_arg = arg;
    pthread_mutex_unlock(&a->mu);
}

void dz_audit_request_head(struct dz_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->head_requested = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
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

/* The record an entry carries is no longer needed. */
void dz_audit_entry_drop(struct entry *e)
{
    json_decref(e->rec);
    e->rec = NULL;
    dz_audit_rec_free(e->frec);
    e->frec = NULL;
}

/* Count one more record in flight, or say at once why it cannot be.
 * bounded false: a record whose memory is held already (a slot) is not
 * refused for back-pressure, whose purpose is to bound that memory. */
static int admit(struct dz_audit *a, bool bounded)
{
    if (atomic_load(&a->refusing))
        return DZ_ERR_STATE;
    if (!bounded) {
        atomic_fetch_add(&a->inflight, 1);
        return 0;
    }
    /* Back-pressure, not unbounded memory: when the disk is slower than
     * the requests, the caller gets DZ_ERR_UNAVAILABLE and must refuse the
     * action, since it could not be audited. */
    if (atomic_fetch_add(&a->inflight, 1) >= atomic_load(&a->queue_max)) {
        atomic_fetch_sub(&a->inflight, 1);
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

void dz_audit_uncount(struct dz_audit *a, size_t n)
{
    atomic_fetch_sub(&a->inflight, n);
}

int dz_audit_enqueue_list(struct dz_audit *a, struct entry *head, struct entry *tail)
{
    size_t n = 0;
    size_t waited = 0;
    int rc = 0;

    for (const struct entry *e = head; e; e = e->next) {
        n++;
        waited += !e->patient;
    }
    pthread_mutex_lock(&a->mu);
    /* Checked again under mu: the log may have failed or begun closing
     * since the records were admitted. */
    if (a->closing || a->failed) {
        rc = DZ_ERR_STATE;
    } else {
        bool was_empty = a->qhead == NULL;

        if (a->qtail)
            a->qtail->next = head;
        else
            a->qhead = head;
        a->qtail = tail;
        a->qlen += n;
        a->qwaited += waited;
        a->handoffs++;
        if (was_empty)
            mono_now(&a->qsince);
        /* Patient records behind others need no wake-up: the writer is
         * already busy, or lingering with its deadline set; unless they
         * fill a batch, which is written at once. */
        if (was_empty || waited > 0 || (a->qlen >= a->batch_max && a->qlen - n < a->batch_max))
            pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Admit e (allocated, its record set, owned from here on) and queue it:
 * into the calling loop's batch when there is one, else straight to the
 * writer.  On error e and its record are freed. */
static int enqueue(struct dz_audit *a, struct entry *e, bool bounded)
{
    int rc = admit(a, bounded);

    if (rc == 0) {
        if (dz_audit_loop_batch(a, e))
            return 0;
        rc = dz_audit_enqueue_list(a, e, e);
        if (rc == 0)
            return 0;
        dz_audit_uncount(a, 1);
    }
    dz_audit_entry_drop(e);
    free(e);
    return rc;
}

static int enqueue_new(struct dz_audit *a, struct entry tmpl)
{
    struct entry *e = calloc(1, sizeof(*e));

    if (!e) {
        dz_audit_entry_drop(&tmpl);
        return DZ_ERR_NOMEM;
    }
    *e = tmpl;
    return enqueue(a, e, true);
}

int dz_audit_append(struct dz_audit *a, json_t *record, struct dz_worker *w,
                    void (*done)(void *arg, int result), void *arg)
{
    if (!a || !done || !record || !record_ok(record)) {
        json_decref(record);
        return DZ_ERR_INVAL;
    }
    return enqueue_new(a, (struct entry){.rec = record, .w = w, .done = done, .arg = arg});
}

/* The same rule as record_ok's for jansson records: 0, or why not. */
static int rec_ok(const struct dz_audit_rec *record)
{
    const char *type = dz_audit_rec_type(record);

    if (!record || !type || strcmp(type, "head") == 0 || dz_audit_rec_has(record, "seq") ||
        dz_audit_rec_has(record, "time") || dz_audit_rec_has(record, "prev"))
        return DZ_ERR_INVAL;
    return dz_audit_rec_error(record);
}

int dz_audit_append_rec(struct dz_audit *a, struct dz_audit_rec *record, struct dz_worker *w,
                        void (*done)(void *arg, int result), void *arg)
{
    int rc = a && done ? rec_ok(record) : DZ_ERR_INVAL;

    if (rc != 0) {
        dz_audit_rec_free(record);
        return rc;
    }
    return enqueue_new(a, (struct entry){.frec = record, .w = w, .done = done, .arg = arg});
}

/* A slot is the queue entry itself, taken early with its record: the
 * writer and the delivery free it as any entry (free(e)). */
struct dz_audit_slot {
    struct entry e;
};

struct dz_audit_slot *dz_audit_slot_new(const char *type, size_t members_max, size_t values_max)
{
    struct dz_audit_slot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    /* The writer's members too (rec_line): setting the line's members
     * allocates nothing (the writer's batch buffer is its own). */
    s->e.frec = dz_audit_rec_new_sized(type, members_max + DZ_AUDIT_CHAIN_MEMBERS,
                                       values_max + DZ_AUDIT_CHAIN_VALUES_MAX);
    if (!s->e.frec) {
        free(s);
        return NULL;
    }
    return s;
}

struct dz_audit_rec *dz_audit_slot_rec(struct dz_audit_slot *s)
{
    return s ? s->e.frec : NULL;
}

void dz_audit_slot_free(struct dz_audit_slot *s)
{
    if (!s)
        return;
    dz_audit_entry_drop(&s->e);
    free(s);
}

int dz_audit_append_slot(struct dz_audit *a, struct dz_audit_slot *s, struct dz_worker *w,
                         void (*done)(void *arg, int result), void *arg)
{
    int rc = a && done && s ? rec_ok(s->e.frec) : DZ_ERR_INVAL;

    if (rc != 0) {
        dz_audit_slot_free(s);
        return rc;
    }
    s->e.w = w;
    s->e.done = done;
    s->e.arg = arg;
    s->e.patient = true; /* the end of an action already done: nobody waits on it */
    return enqueue(a, &s->e, false);
}

const struct dz_histo *dz_audit_fsync_histo(const struct dz_audit *a)
{
    return &a->fsync_h;
}

uint64_t dz_audit_gauge_queued(void *audit)
{
    struct dz_audit *a = audit;

    return atomic_load(&a->inflight);
}

/* A counter the writer keeps under mu, read from any thread. */
static uint64_t counter(struct dz_audit *a, const uint64_t *c)
{
    uint64_t n;

    pthread_mutex_lock(&a->mu);
    n = *c;
    pthread_mutex_unlock(&a->mu);
    return n;
}

uint64_t dz_audit_handoffs(struct dz_audit *a)
{
    return counter(a, &a->handoffs);
}

uint64_t dz_audit_seq_at_open(const struct dz_audit *a)
{
    return a->seq_at_open;
}

uint64_t dz_audit_lingers(struct dz_audit *a)
{
    return counter(a, &a->lingers);
}

/* ------------------------------------------------------------ writer --- */

/* The line of a jansson record with the chain members added: *line is
 * malloc'd (the caller frees it). */
static int json_line(struct dz_audit *a, json_t *rec, const char *when, const char *prev_hex,
                     char **line)
{
    /* Every line names its instance: lines of several gateways merged for a
     * search still say whose chain each belongs to (verify checks it). */
    if (a->instance[0] && !json_object_get(rec, "instance") &&
        json_object_set_new(rec, "instance", json_string(a->instance)) != 0)
        return DZ_ERR_NOMEM;
    if (json_object_set_new(rec, "seq", json_integer((json_int_t)(a->seq + 1))) != 0 ||
        json_object_set_new(rec, "time", json_string(when)) != 0 ||
        json_object_set_new(rec, "prev", json_string(prev_hex)) != 0)
        return DZ_ERR_NOMEM;
    /* Sorted keys, compact, ASCII: one content, one byte string, no raw
     * newline can split a line. */
    *line = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    return *line ? 0 : DZ_ERR_INVAL;
}

/* The same for a record built without jansson, written into scratch (whose
 * bound is DZ_AUDIT_LINE_MAX: a longer line is DZ_ERR_TOOBIG). */
static int rec_line(struct dz_audit *a, struct dz_audit_rec *rec, const char *when,
                    const char *prev_hex, struct dz_buf *scratch)
{
    if (a->instance[0] && !dz_audit_rec_has(rec, "instance"))
        dz_audit_rec_str(rec, "instance", a->instance);
    dz_audit_rec_int(rec, "seq", (long long)(a->seq + 1));
    dz_audit_rec_str(rec, "time", when);
    dz_audit_rec_str(rec, "prev", prev_hex);
    dz_buf_reset(scratch);
    return dz_audit_rec_write(rec, scratch);
}

/* Serialise one entry's record as the next line; advances seq/prev on
 * success.  scratch: the batch's buffer for lines built without jansson. */
static int add_line(struct dz_audit *a, struct entry *e, struct dz_buf *scratch, struct dz_buf *out)
{
    char when[96];
    char prev_hex[65];
    char *owned = NULL;
    const char *line;
    size_t len;
    int rc;

    dz_rfc3339_now(when);
    dz_hex(a->prev, 32, prev_hex);
    if (e->frec) {
        rc = rec_line(a, e->frec, when, prev_hex, scratch);
        line = scratch->data;
        len = scratch->len;
    } else {
        rc = json_line(a, e->rec, when, prev_hex, &owned);
        line = owned;
        len = owned ? strlen(owned) : 0;
    }
    if (rc != 0)
        goto out;
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
    free(owned);
    return rc;
}

/* add_line for the writer's own jansson records (the caller keeps rec). */
static int add_json_line(struct dz_audit *a, json_t *rec, struct dz_buf *out)
{
    struct entry e = {.rec = rec};

    return add_line(a, &e, NULL, out);
}

/* Append a segment header as the next line: the first line of every segment
 * (docs/internals/audit.md "Segments").  prev_file is the closed segment's
 * file name, NULL at the start of a history.  Advances seq/prev like any
 * line, so the header is chained and covered by the next signed head. */
static int add_segment_header(struct dz_audit *a, const char *prev_file, struct dz_buf *out)
{
    json_t *rec = json_pack("{s:s, s:s, s:I}", "type", "segment", "instance", a->instance,
                            "prev_seq", (json_int_t)a->seq);
    int rc = DZ_ERR_NOMEM;

    if (!rec)
        goto out;
    if (prev_file && json_object_set_new(rec, "prev_file", json_string(prev_file)) != 0)
        goto out;
    rc = add_json_line(a, rec, out);
out:
    json_decref(rec);
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
    rc = add_json_line(a, rec, out);
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
    atomic_store(&a->refusing, true);
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
    struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int synced = fdatasync(a->fd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dz_histo_observe(&a->fsync_h, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL +
                                             (t1.tv_nsec - t0.tv_nsec) / 1000));
    if (synced != 0) {
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

/* Tell the observer what is now durable (lines from first_seq) and, when
 * a head was due, hand it the signer for its own signed head. */
static void observe(struct dz_audit *a, uint64_t first_seq, const struct dz_buf *buf, size_t from,
                    head_sign_fn sign, void *sign_arg, const char *kid)
{
    struct dz_audit_batch b = {first_seq,
                               buf ? (const char *)buf->data + from : NULL,
                               buf ? buf->len - from : 0,
                               sign,
                               sign_arg,
                               kid};

    if (a->observe)
        a->observe(a->observe_arg, &b);
}

/* Write one batch (and a head when want_head) with one write(2) and one
 * fdatasync(2).  Sets every entry's result and delivers it.  Writer thread. */
static void commit(struct dz_audit *a, struct entry *batch, size_t n, bool want_head,
                   head_sign_fn sign, void *sign_arg, const char *kid)
{
    struct dz_buf buf;
    struct dz_buf scratch;
    uint64_t seq0 = a->seq;
    unsigned char prev0[32];
    size_t lines = 0;
    bool has_head = false;
    bool obs_data = false; /* tell the observer about the lines */
    bool obs_sign = false; /* ... and hand it the signer */
    char head_hex[65] = "";
    char sig_b64[96] = "";
    int rc = 0;

    memcpy(prev0, a->prev, 32);
    /* Room for every line of the batch and one head, so the buffer itself
     * never refuses; only a record over DZ_AUDIT_LINE_MAX is refused, alone,
     * and the chain goes on without it. */
    dz_buf_init(&buf, (n + 2) * ((size_t)DZ_AUDIT_LINE_MAX + 1));
    dz_buf_init(&scratch, DZ_AUDIT_LINE_MAX);
    /* A new history starts with a header naming its instance, so archived
     * segments of several gateways can be told apart from the first line. */
    if (a->seq == 0 && a->instance[0] && n > 0) {
        rc = add_segment_header(a, NULL, &buf);
    }
    for (struct entry *e = batch; e && rc == 0; e = e->next) {
        size_t mark = buf.len;
        e->result = add_line(a, e, &scratch, &buf);
        dz_audit_entry_drop(e);
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
            dz_audit_entry_drop(e);
            if (e->result == 0)
                e->result = rc;
        }
    } else if (has_head) {
        obs_data = obs_sign = true;
        a->dirty = false;
        /* Shipped off the host with the other logs, these lines are the
         * reference that shows a truncated tail (see audit.md). */
        dz_logj(DZ_LOG_INFO, "audit_head",
                json_pack("{s:s, s:I, s:s, s:s, s:s}", "file", a->path, "seq", (json_int_t)a->seq,
                          "head", head_hex, "kid", kid, "sig", sig_b64));
    } else if (lines > 0) {
        obs_data = true;
        obs_sign = want_head;
        a->dirty = true;
    } else if (want_head) {
        obs_sign = true; /* nothing new in the chain, but the tree's head may be behind */
    }
    if (rc == 0) {
        a->seg_lines += lines;
        if (a->seg_first_seq == 0 && a->seq > seq0)
            a->seg_first_seq = seq0 + 1;
    }
    /* The callers first: the observer (the Merkle tree, a tree head to sign)
     * must not hold back answers whose lines are already durable. */
    dz_audit_deliver(batch);
    if (obs_data || obs_sign)
        observe(a, seq0 + 1, obs_data ? &buf : NULL, 0, obs_sign ? sign : NULL, sign_arg, kid);
    dz_buf_cleanup(&buf);
    dz_buf_cleanup(&scratch);
}

/* ---------------------------------------------------------- rotation --- */

/* DIR/STEM-YYYYmmddTHHMMSSZ-SEQ.log for the live file DIR/STEM.log (or
 * DIR/NAME-...log when the live name has no .log suffix): the UTC time of
 * the rotation and the seq of the segment's first line, zero-padded so the
 * names of one history also sort by name.  *base points at the file name. */
static char *rotated_path(const char *path, uint64_t first_seq, const char **base)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t stem = strlen(path);
    size_t n;
    char *out;
    time_t now = time(NULL);
    struct tm tm;

    if (stem - (size_t)(name - path) > 4 && strcmp(path + stem - 4, ".log") == 0)
        stem -= 4;
    gmtime_r(&now, &tm);
    n = stem + 64;
    out = malloc(n);
    if (!out)
        return NULL;
    snprintf(out, n, "%.*s-%04d%02d%02dT%02d%02d%02dZ-%012" PRIu64 ".log", (int)stem, path,
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             first_seq);
    *base = out + (name - path);
    return out;
}

static void fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd;

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/*
 * Close the live segment and start the next one.  Writer thread, between
 * batches, so each line lands in exactly one segment.  The steps keep a
 * crash at any point recoverable without a fork in the chain:
 *   1. a signed head closes the old segment (when lines followed the last);
 *   2. PATH.next gets the header (seq S+1, prev = hash of line S, the name
 *      the old segment is about to get), written and fdatasync'ed, locked;
 *   3. rename(PATH, ROTATED): the old segment gets its final name;
 *   4. rename(PATH.next, PATH): the new segment becomes live.
 * A crash before 3 leaves the old file live (the stale PATH.next is removed
 * at the next open); between 3 and 4 PATH is missing and PATH.next complete,
 * and the next open finishes step 4 rather than start a new chain.  Renames,
 * not a hard link: after a privilege drop the live file may belong to root,
 * and protected_hardlinks refuses a link to it.  A failure leaves the old
 * segment live and the chain state unchanged; an automatic rotation is
 * retried a minute later.  0 or an error.
 */
static int rotate(struct dz_audit *a, head_sign_fn sign, void *sign_arg, const char *kid)
{
    char *rot = NULL;
    char *np = NULL;
    const char *rot_base = NULL;
    struct dz_buf buf;
    uint64_t seq0 = 0;
    unsigned char prev0[32];
    bool header_added = false;
    bool keep_next = false;
    bool failed;
    int fd = -1;
    int rc = DZ_ERR_NOMEM;

    dz_buf_init(&buf, (size_t)DZ_AUDIT_LINE_MAX + 1);
    /* A signer that fails now is logged by add_head: the segment then ends
     * unsigned, which the next header's link still covers, rather than
     * growing without bound until the token answers again. */
    if (sign && a->dirty)
        commit(a, NULL, 0, true, sign, sign_arg, kid);
    pthread_mutex_lock(&a->mu);
    failed = a->failed;
    pthread_mutex_unlock(&a->mu);
    if (failed) {
        rc = DZ_ERR_IO;
        goto out;
    }
    seq0 = a->seq;
    memcpy(prev0, a->prev, 32);
    rot = rotated_path(a->path, a->seg_first_seq ? a->seg_first_seq : a->seq, &rot_base);
    np = next_path(a->path);
    if (!rot || !np)
        goto out;
    rc = add_segment_header(a, rot_base, &buf);
    if (rc != 0)
        goto out;
    header_added = true;
    rc = DZ_ERR_IO;
    fd = open(np, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || write_all(fd, buf.data, buf.len) < 0 ||
        fdatasync(fd) != 0) {
        dz_log(DZ_LOG_ERROR, "audit_rotate", "%s: cannot write the next segment: %s", np,
               strerror(errno));
        goto out;
    }
    /* Never over an existing file: a closed segment is evidence. */
    if (access(rot, F_OK) == 0 || errno != ENOENT) {
        dz_log(DZ_LOG_ERROR, "audit_rotate", "%s: the closed segment's name %s is taken", a->path,
               rot);
        goto out;
    }
    if (rename(a->path, rot) != 0) {
        dz_log(DZ_LOG_ERROR, "audit_rotate", "%s: cannot name the closed segment %s: %s", a->path,
               rot, strerror(errno));
        goto out;
    }
    if (rename(np, a->path) != 0) {
        dz_log(DZ_LOG_ERROR, "audit_rotate", "%s: cannot make %s live: %s", a->path, np,
               strerror(errno));
        /* Put the old segment back; if even that fails, the name of the
         * live file is gone: accept nothing more (fail closed), and keep
         * PATH.next for the next open to finish the rotation. */
        if (rename(rot, a->path) != 0) {
            dz_log(DZ_LOG_ERROR, "audit_rotate",
                   "%s: cannot restore the live file from %s: %s; the audit log is now closed "
                   "to new lines",
                   a->path, rot, strerror(errno));
            set_failed(a);
            keep_next = true;
        }
        goto out;
    }
    fsync_dir(a->path);
    observe(a, seq0 + 1, &buf, 0, NULL, NULL, NULL);
    close(a->fd);
    a->fd = fd;
    fd = -1;
    a->size = (off_t)buf.len;
    a->seg_first_seq = a->seq;
    a->seg_lines = 0;
    a->dirty = true; /* the header waits for the next signed head */
    mono_now(&a->seg_due);
    dz_ts_add_ms(&a->seg_due, a->rotate_every_ms);
    dz_logj(DZ_LOG_INFO, "audit_rotated",
            json_pack("{s:s, s:I, s:s, s:I}", "segment", rot, "last_seq", (json_int_t)seq0, "file",
                      a->path, "seq", (json_int_t)a->seq));
    rc = 0;
out:
    if (rc != 0 && header_added) {
        a->seq = seq0;
        memcpy(a->prev, prev0, 32);
    }
    if (rc != 0 && np && !keep_next)
        unlink(np);
    if (fd >= 0)
        close(fd);
    dz_buf_cleanup(&buf);
    free(rot);
    free(np);
    return rc;
}

/* Whether the live segment is due for rotation after a batch.  Writer
 * thread, mu not held (the rotation fields are only set before the first
 * line and read here). */
static bool rotation_due(struct dz_audit *a, bool requested, const struct timespec *now)
{
    if (a->seq == 0)
        return false; /* nothing to close */
    if (requested)
        return true;
    if (!ts_reached(now, &a->rotate_hold))
        return false;
    if (a->rotate_size > 0 && (uint64_t)a->size >= a->rotate_size)
        return true;
    return a->rotate_every_ms > 0 && a->seg_lines > 0 && ts_reached(now, &a->seg_due);
}

static void release_retired(struct retired *r)
{
    while (r) {
        struct retired *next = r->next;
        if (r->release)
            r->release(r->arg);
        free(r);
        r = next;
    }
}

static void fail_batch(struct entry *batch)
{
    for (struct entry *e = batch; e; e = e->next) {
        dz_audit_entry_drop(e);
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

        bool rotate_now;
        struct retired *retired;

        for (;;) {
            const struct timespec *deadline = NULL;
            struct timespec linger_due;

            if (a->closing || a->rotate_requested || a->head_requested)
                break;
            if (a->qhead) {
                /* Only patient records: they wait for company (a record
                 * someone waits on), a full batch or their linger. */
                if (a->qwaited > 0 || a->qlen >= a->batch_max || a->linger_ms == 0)
                    break;
                linger_due = a->qsince;
                dz_ts_add_ms(&linger_due, a->linger_ms);
                mono_now(&now);
                if (ts_reached(&now, &linger_due))
                    break;
                a->lingers++;
                pthread_cond_timedwait(&a->cv, &a->mu, &linger_due);
                continue;
            }
            if (a->sign && a->interval_ms > 0 && a->dirty)
                deadline = &a->next_head;
            /* An old segment is rotated even when no new line comes. */
            if (a->rotate_every_ms > 0 && a->seg_lines > 0 &&
                (!deadline || !ts_reached(&a->seg_due, deadline)))
                deadline = ts_reached(&a->seg_due, &a->rotate_hold) ? &a->seg_due : &a->rotate_hold;
            if (deadline) {
                mono_now(&now);
                if (ts_reached(&now, deadline))
                    break;
                pthread_cond_timedwait(&a->cv, &a->mu, deadline);
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
            a->qwaited -= !e->patient;
        }
        a->qlen -= n;
        if (!a->qhead)
            a->qtail = NULL;
        atomic_fetch_sub(&a->inflight, n);
        final = a->closing && !a->qhead;
        failed = a->failed;
        rotate_now = a->rotate_requested;
        if (rotate_now)
            a->rotate_requested = false;
        /* Copied under mu, used after unlocking: signing may go to a token and
         * take a while, and callers must never wait on mu for that. */
        sign = a->sign;
        sign_arg = a->sign_arg;
        memcpy(kid, a->kid, sizeof(kid));
        mono_now(&now);
        want_head = sign && (final || a->head_requested ||
                             (a->interval_ms > 0 && ts_reached(&now, &a->next_head)));
        a->head_requested = false;
        if (want_head) {
            a->next_head = now;
            dz_ts_add_ms(&a->next_head, a->interval_ms);
        }
        pthread_mutex_unlock(&a->mu);

        /* After the unlock as well: completions post to worker loops, and a
         * caller's done() must not run while mu is held. */
        if (failed) {
            fail_batch(batch);
            dz_audit_deliver(batch);
        } else {
            commit(a, batch, n, want_head, sign, sign_arg, kid);
        }
        /* Between batches: every line already written is in the old segment,
         * every line still queued goes to the new one. */
        mono_now(&now);
        if (!failed && !final && rotation_due(a, rotate_now, &now) &&
            rotate(a, sign, sign_arg, kid) != 0) {
            a->rotate_hold = now;
            dz_ts_add_ms(&a->rotate_hold, 60 * 1000);
        }

        pthread_mutex_lock(&a->mu);
        /* No copy of a retired signer argument is held past this point. */
        retired = a->retired;
        a->retired = NULL;
        pthread_mutex_unlock(&a->mu);
        release_retired(retired);
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
        atomic_store(&a->refusing, true);
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    if (a->fd >= 0)
        close(a->fd);
    release_retired(a->retired);
    if (a->sign_release)
        a->sign_release(a->sign_arg);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->path);
    free(a);
}
