/*
 * accessidx.h - the index of accesses to a person's record (GET
 * /api/my/access): one row per audit line in which someone other than the
 * person (another person, or a system) reached for that person's record,
 * keyed by the person's FIN, in the accounts database (SQLite or
 * PostgreSQL, beside the accounts).
 *
 * A row holds the audit line itself (its exact bytes), its instance and
 * seq, its time and the actor's name (NULL for the rows of lines written
 * before audit lines carried one, and for systems); the watermark says up to which seq of an
 * instance's history the index is complete.  Rows and the watermark move in ONE transaction, so
 * after any crash the index is complete up to its watermark and whatever follows is read back from
 * the audit log (core/accesswatch.h).  The index is not trusted: each row is checked against the
 * signed Merkle tree before a proof is handed out.
 *
 * THREADS: every call BLOCKS (database I/O) and must run off the event
 * loops (the indexer thread, pool threads); calls are thread-safe (one
 * connection under a mutex per backend).  Return 0 or a negative dz_err
 * (DZ_ERR_DB for the database's own failures).
 */
#ifndef DZ_ACCESSIDX_H
#define DZ_ACCESSIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DZ_ACCESSIDX_INSTANCE_MAX 128
#define DZ_ACCESSIDX_TIME_MAX 40
#define DZ_ACCESSIDX_PAGE_MAX 100 /* rows per list call */
#define DZ_ACCESSIDX_NAME_MAX 96  /* the actor's name, with its NUL */

/* One row to add: tgt is the FIN whose record was reached. */
struct dz_accessidx_add {
    const char *tgt;
    uint64_t seq;
    const char *time; /* the line's "time" (RFC 3339 UTC, ms: sorts as text) */
    const char *line; /* the audit line, no newline */
    size_t line_len;
    const char *actor_name; /* the line's "name"; NULL: the line has none */
};

/* One row listed (line malloc'd; free with dz_accessidx_rows_free). */
struct dz_accessidx_row {
    int64_t id; /* the paging cursor: ?before=id */
    char instance[DZ_ACCESSIDX_INSTANCE_MAX + 1];
    uint64_t seq;
    char time[DZ_ACCESSIDX_TIME_MAX + 1];
    char actor_name[DZ_ACCESSIDX_NAME_MAX]; /* "" with has_actor_name false: NULL */
    bool has_actor_name;
    char *line;
    size_t line_len;
};

struct dz_accessidx;

struct dz_accessidx_ops {
    const char *name;
    /* The seq up to which instance's lines are indexed (0: none yet). */
    int (*watermark)(void *impl, const char *instance, uint64_t *seq);
    /* Add rows (an existing (instance, seq) is kept as it is) and set the
     * watermark to upto, in one transaction: all or nothing. */
    int (*add)(void *impl, const char *instance, const struct dz_accessidx_add *rows, size_t n,
               uint64_t upto);
    /* Rows for tgt, newest first (time, then id), older than the row
     * before (0: from the newest), at most limit (<= DZ_ACCESSIDX_PAGE_MAX);
     * *n set to how many were written to out. */
    int (*list)(void *impl, const char *tgt, int64_t before, size_t limit,
                struct dz_accessidx_row *out, size_t *n);
    /* The audit log was restored to end at seq: instance's rows above it
     * (lines the log no longer holds) go, and its watermark comes back to
     * it, in one transaction, so the lines written at those seqs from now on
     * are indexed.  Start-up, before the indexer runs. */
    int (*rewind)(void *impl, const char *instance, uint64_t seq);
    void (*free)(void *impl);
};

extern const struct dz_accessidx_ops dz_accessidx_sqlite_ops;
extern const struct dz_accessidx_ops dz_accessidx_pg_ops;

/* Open the index in the SQLite accounts file at path (its own connection;
 * the tables are created if absent).  0, DZ_ERR_DB, DZ_ERR_NOMEM.
 * Start-up thread. */
int dz_accessidx_sqlite_open(const char *path, void **impl);

/* Open the index in the PostgreSQL accounts database (one connection;
 * conninfo copied and wiped at free; every statement bounded by
 * statement_timeout_ms; the connection is re-made after a failure).
 * 0, DZ_ERR_DB, DZ_ERR_NOMEM.  Start-up thread. */
int dz_accessidx_pg_open(const char *conninfo, unsigned connect_timeout_ms,
                         unsigned statement_timeout_ms, void **impl);

void dz_accessidx_rows_free(struct dz_accessidx_row *rows, size_t n);

#endif
