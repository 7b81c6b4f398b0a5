/*
 * accesswatch.c - the indexer thread behind /api/my/access (see
 * accesswatch.h).  It owns the index's write side: it never writes the
 * audit log, never blocks the audit writer (offer only copies), and never
 * moves the watermark past a line it has not looked at.
 */
#include "core/accesswatch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit_tree.h"
#include "base/deadline.h"
#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

#define FLUSH_ROWS 256          /* rows per transaction while catching up */
#define WATERMARK_EVERY_MS 1000 /* a watermark without rows, at most this often */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define GATHER_MS 100               /* after a batch, the next ones gather this long */
#define GATHER_BYTES (256u * 1024u) /* ... unless this much waits */

struct chunk {
    struct chunk *next;
    uint64_t first_seq;
    size_t len;
    char data[];
};

struct row {
    char tgt[16];
    char time[DZ_ACCESSIDX_TIME_MAX + 1];
    char name[DZ_ACCESSIDX_NAME_MAX];
    bool has_name;
    uint64_t seq;
    char *line;
    size_t line_len;
};

struct dz_accesswatch {
    const struct dz_accessidx_ops *ops;
    void *impl;
    char *audit_path;
    char instance[DZ_ACCESSIDX_INSTANCE_MAX + 1];
    pthread_t thread;
    bool has_thread;

    pthread_mutex_t mu; /* the queue and stop */
    pthread_cond_t cv;
    struct chunk *qhead;
    struct chunk **qtail;
    size_t qbytes;
    bool overflow; /* batches were dropped: read them back from the log */
    bool stopping;
    bool gathering; /* the indexer waits out GATHER_MS: offers do not wake it */

    /* Indexer thread only. */
    uint64_t committed; /* the watermark in the database */
    uint64_t seen;      /* lines looked at (>= committed) */
    struct row *rows;   /* picked since the last commit */
    size_t nrows;
    size_t caprows;
    struct timespec last_wm;
};

/* Whether the line can hold a "tgt" member at all.  Every forwarded
 * request writes two lines and most name no target; parsing each one
 * cost this thread about a tenth of the gateway's CPU under load
 * (docs/performance.md).  Exact, not a guess: a JSON key spelled tgt
 * shows as "tgt" in the text unless some character of it is written as a
 * \u escape, so a line with neither cannot name a target. */
static bool may_name_target(const char *line, size_t len)
{
    return memmem(line, len, "\"tgt\"", 5) || memmem(line, len, "\\u", 2);
}

/* Someone reached for another person's record: a forward line whose
 * target is not the actor (or that has no actor: a system). */
static bool pick_parsed(const char *line, size_t len, struct row *r)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *tgt = json_string_value(json_object_get(o, "tgt"));
    const char *fin = json_string_value(json_object_get(o, "fin"));
    const char *when = json_string_value(json_object_get(o, "time"));
    const char *name = json_string_value(json_object_get(o, "name"));
    bool ok = type && strcmp(type, "forward") == 0 && tgt && strlen(tgt) < sizeof(r->tgt) &&
              tgt[0] && (!fin || strcmp(fin, tgt) != 0) && when &&
              strlen(when) <= DZ_ACCESSIDX_TIME_MAX;

    if (ok) {
        memset(r, 0, sizeof(*r));
        memcpy(r->tgt, tgt, strlen(tgt));
        memcpy(r->time, when, strlen(when));
        /* A name too long for the column is left out of the row (the line,
         * which the proof covers, still holds it). */
        if (name && strlen(name) < sizeof(r->name)) {
            memcpy(r->name, name, strlen(name));
            r->has_name = true;
        }
    }
    json_decref(o);
    return ok;
}

static bool pick(const char *line, size_t len, struct row *r)
{
    return may_name_target(line, len) && pick_parsed(line, len, r);
}

static void rows_clear(struct dz_accesswatch *w)
{
    for (size_t i = 0; i < w->nrows; i++)
        free(w->rows[i].line);
    w->nrows = 0;
}

/* Look at line seq: keep it when it is an access.  0 or DZ_ERR_NOMEM. */
static int look(struct dz_accesswatch *w, uint64_t seq, const char *line, size_t len)
{
    struct row r;

    if (pick(line, len, &r)) {
        if (w->nrows == w->caprows) {
            size_t cap = w->caprows ? w->caprows * 2 : 64;
            struct row *p = realloc(w->rows, cap * sizeof(*p));
            if (!p)
                return DZ_ERR_NOMEM;
            w->rows = p;
            w->caprows = cap;
        }
        r.seq = seq;
        r.line = strndup(line, len);
        if (!r.line)
            return DZ_ERR_NOMEM;
        r.line_len = len;
        w->rows[w->nrows++] = r;
    }
    w->seen = seq;
    return 0;
}

/* Write the picked rows and the watermark (all or nothing). */
static int commit(struct dz_accesswatch *w)
{
    struct dz_accessidx_add *add = NULL;
    int rc;

    if (w->seen == w->committed && w->nrows == 0)
        return 0;
    if (w->nrows) {
        add = calloc(w->nrows, sizeof(*add));
        if (!add)
            return DZ_ERR_NOMEM;
        for (size_t i = 0; i < w->nrows; i++)
            add[i] = (struct dz_accessidx_add){
                w->rows[i].tgt,  w->rows[i].seq,      w->rows[i].time,
                w->rows[i].line, w->rows[i].line_len, w->rows[i].has_name ? w->rows[i].name : NULL};
    }
    rc = w->ops->add(w->impl, w->instance, add, w->nrows, w->seen);
    free(add);
    if (rc == 0) {
        w->committed = w->seen;
        rows_clear(w);
        clock_gettime(CLOCK_MONOTONIC, &w->last_wm);
    }
    return rc;
}

static int catch_up_line(void *arg, uint64_t seq, const char *line, size_t len)
{
    struct dz_accesswatch *w = arg;
    int rc = look(w, seq, line, len);

    if (rc == 0 && w->nrows >= FLUSH_ROWS)
        rc = commit(w);
    return rc;
}

/* Read the log back from the watermark.  0 or an error (retried). */
static int catch_up(struct dz_accesswatch *w)
{
    int rc;

    rows_clear(w);
    w->seen = w->committed;
    rc = dz_audit_read_history(w->audit_path, w->committed + 1, catch_up_line, w);
    if (rc == DZ_ERR_NOTFOUND)
        rc = 0; /* nothing after the watermark */
    if (rc == 0)
        rc = commit(w);
    if (rc == 0)
        dz_log(DZ_LOG_INFO, "access_index", "indexed up to seq %" PRIu64, w->committed);
    return rc;
}

/* After a batch, let the audit writer's next batches come together for
 * GATHER_MS: one wake-up of this thread for all of them, where each batch
 * (each login, when they come one at a time) woke it.  Cut short by a stop,
 * an overflow or GATHER_BYTES waiting; the index lags the log by at most
 * that much more (it already lags: the watermark is written once a
 * second).  mu held. */
static void gather(struct dz_accesswatch *w)
{
    struct timespec until;

    dz_deadline_ms(CLOCK_MONOTONIC, GATHER_MS, &until);
    w->gathering = true;
    while (!w->stopping && !w->overflow && w->qbytes < GATHER_BYTES &&
           pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
        ;
    w->gathering = false;
}

/* Wait up to ms unless stopping.  mu held. */
static void wait_ms(struct dz_accesswatch *w, uint64_t ms)
{
    struct timespec until;

    dz_deadline_ms(CLOCK_MONOTONIC, ms, &until);
    if (!w->stopping)
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
}

static void free_chunks(struct chunk *c)
{
    while (c) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
}

/* Look at the lines of the queued batches.  false: a gap (lines dropped or
 * not seen): read them back from the log. */
static bool take_chunks(struct dz_accesswatch *w, struct chunk *c, int *rc)
{
    for (; c && *rc == 0; c = c->next) {
        uint64_t seq = c->first_seq;
        for (const char *p = c->data, *end = c->data + c->len; p < end && *rc == 0; seq++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                break;
            if (seq > w->seen + 1)
                return false;
            if (seq == w->seen + 1)
                *rc = look(w, seq, p, (size_t)(nl - p));
            p = nl + 1;
        }
    }
    return true;
}

static void *indexer_main(void *arg)
{
    struct dz_accesswatch *w = arg;
    uint64_t backoff = BACKOFF_MIN_MS;
    bool need_catch_up = true;
    bool worked = false; /* the last round took batches */
    int rc;

    /* The watermark first: without it nothing can be written safely. */
    for (;;) {
        rc = w->ops->watermark(w->impl, w->instance, &w->committed);
        pthread_mutex_lock(&w->mu);
        if (rc == 0 || w->stopping) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        wait_ms(w, backoff);
        pthread_mutex_unlock(&w->mu);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    w->seen = w->committed;
    for (;;) {
        struct chunk *batch;
        bool stopping;
        bool overflow;

        if (need_catch_up && rc == 0) {
            rc = catch_up(w);
            need_catch_up = rc != 0;
        }
        pthread_mutex_lock(&w->mu);
        if (rc != 0) {
            /* The database refused: what was picked is dropped and read back
             * from the log after the backoff (transaction-or-retry). */
            dz_log(DZ_LOG_ERROR, "access_index",
                   "cannot index audit lines after seq %" PRIu64 " (%s); retrying in %" PRIu64
                   " ms",
                   w->committed, dz_err_str(rc), backoff);
            rows_clear(w);
            w->seen = w->committed;
            need_catch_up = true;
            if (!w->stopping)
                wait_ms(w, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            rc = 0;
            /* Queued batches are in the log: the catch-up reads them. */
            free_chunks(w->qhead);
            w->qhead = NULL;
            w->qtail = &w->qhead;
            w->qbytes = 0;
            w->overflow = false;
            stopping = w->stopping;
            pthread_mutex_unlock(&w->mu);
            if (stopping)
                break;
            continue;
        }
        if (worked && !w->stopping)
            gather(w);
        while (!w->qhead && !w->stopping && !w->overflow)
            wait_ms(w, WATERMARK_EVERY_MS);
        batch = w->qhead;
        w->qhead = NULL;
        w->qtail = &w->qhead;
        w->qbytes = 0;
        overflow = w->overflow;
        w->overflow = false;
        stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);

        worked = batch != NULL;
        if (overflow) {
            free_chunks(batch);
            need_catch_up = true;
            continue;
        }
        if (!take_chunks(w, batch, &rc))
            need_catch_up = true;
        free_chunks(batch);
        if (rc == 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            uint64_t since = (uint64_t)(now.tv_sec - w->last_wm.tv_sec) * 1000u +
                             (uint64_t)((now.tv_nsec - w->last_wm.tv_nsec) / 1000000L);
            /* Rows at once; a bare watermark at most once a second. */
            if (w->nrows > 0 || stopping || since >= WATERMARK_EVERY_MS)
                rc = commit(w);
            if (rc == 0)
                backoff = BACKOFF_MIN_MS;
        }
        if (stopping && !need_catch_up)
            break;
        if (stopping) {
            /* One last read of the log, then stop either way. */
            if (catch_up(w) != 0)
                dz_log(DZ_LOG_WARN, "access_index",
                       "stopping with lines after seq %" PRIu64
                       " not indexed; the next start reads them from the audit log",
                       w->committed);
            break;
        }
    }
    rows_clear(w);
    return NULL;
}

int dz_accesswatch_start(const struct dz_accessidx_ops *ops, void *impl, const char *audit_path,
                         const char *instance, struct dz_accesswatch **out)
{
    struct dz_accesswatch *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;

    *out = NULL;
    if (!w || strlen(instance) > DZ_ACCESSIDX_INSTANCE_MAX ||
        !(w->audit_path = strdup(audit_path))) {
        if (w)
            free(w->audit_path);
        free(w);
        ops->free(impl);
        return DZ_ERR_NOMEM;
    }
    w->ops = ops;
    w->impl = impl;
    memcpy(w->instance, instance, strlen(instance));
    w->qtail = &w->qhead;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &w->last_wm);
    if (pthread_create(&w->thread, NULL, indexer_main, w) != 0) {
        dz_accesswatch_stop(w);
        return DZ_ERR_NOMEM;
    }
    w->has_thread = true;
    *out = w;
    return 0;
}

void dz_accesswatch_offer(struct dz_accesswatch *w, const struct dz_audit_batch *b)
{
    struct chunk *c;

    if (!w || !b->data || b->len == 0)
        return;
    pthread_mutex_lock(&w->mu);
    /* Over the bound the batch is not copied: the indexer reads it back
     * from the log instead. */
    if (w->overflow || w->qbytes + b->len > DZ_ACCESSWATCH_QUEUE_BYTES ||
        !(c = malloc(sizeof(*c) + b->len))) {
        w->overflow = true;
        free_chunks(w->qhead);
        w->qhead = NULL;
        w->qtail = &w->qhead;
        w->qbytes = 0;
    } else {
        c->next = NULL;
        c->first_seq = b->first_seq;
        c->len = b->len;
        memcpy(c->data, b->data, b->len);
        *w->qtail = c;
        w->qtail = &c->next;
        w->qbytes += b->len;
    }
    /* While the indexer gathers, only what must not wait wakes it. */
    if (!w->gathering || w->overflow || w->qbytes >= GATHER_BYTES)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int dz_accesswatch_list(struct dz_accesswatch *w, const char *fin, int64_t before, size_t limit,
                        struct dz_accessidx_row *out, size_t *n)
{
    return w->ops->list(w->impl, fin, before, limit, out, n);
}

const char *dz_accesswatch_instance(const struct dz_accesswatch *w)
{
    return w->instance;
}

void dz_accesswatch_stop(struct dz_accesswatch *w)
{
    if (!w)
        return;
    if (w->has_thread) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    free_chunks(w->qhead);
    free(w->rows);
    w->ops->free(w->impl);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->audit_path);
    free(w);
}
