/*
 * accessidx_sqlite.c - the access index in the SQLite accounts file (see
 * accessidx.h): its own connection (WAL, synchronous=FULL, a busy timeout),
 * guarded by a mutex; rows and watermark in one IMMEDIATE transaction.  It
 * never touches the accounts table.
 */
#include "state/accessidx.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

#define BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS access_index ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tgt TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts TEXT NOT NULL, line TEXT NOT NULL, actor_name TEXT, UNIQUE (instance, seq));"
    "CREATE INDEX IF NOT EXISTS access_index_by_tgt ON access_index (tgt, ts, id);"
    "CREATE TABLE IF NOT EXISTS access_watermark ("
    " instance TEXT PRIMARY KEY, seq INTEGER NOT NULL);";

enum { ST_WM, ST_INS, ST_SETWM, ST_LIST, ST_LIST_AFTER, ST_COUNT };
static const char *const stmt_sql[ST_COUNT] = {
    "SELECT seq FROM access_watermark WHERE instance = ?1",
    "INSERT OR IGNORE INTO access_index (tgt, instance, seq, ts, line, actor_name)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT INTO access_watermark (instance, seq) VALUES (?1, ?2)"
    " ON CONFLICT (instance) DO UPDATE SET seq = max(seq, excluded.seq)",
    /* Newest first: the first page, then the pages after a cursor, whose
     * (ts, id) bounds the index range (a row value, which SQLite seeks to:
     * written as "?2 = 0 OR ts < ... OR ...", every page scanned the
     * person's rows from the newest: 39 ms for a page 250,000 rows deep,
     * 0.15 ms now; tests/bench/accessidx_page.py, docs/performance.md).
     * The cursor must be one of the person's own rows: another person's
     * row id is no cursor, and tells nothing of that row's time. */
    "SELECT id, instance, seq, ts, line, actor_name FROM access_index WHERE tgt = ?1"
    " ORDER BY ts DESC, id DESC LIMIT ?3",
    "SELECT id, instance, seq, ts, line, actor_name FROM access_index WHERE tgt = ?1 AND"
    " (ts, id) < (SELECT ts, id FROM access_index WHERE id = ?2 AND tgt = ?1)"
    " ORDER BY ts DESC, id DESC LIMIT ?3",
};

struct sq {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

static int db_fail(struct sq *s, const char *what)
{
    dz_log(DZ_LOG_ERROR, "accessidx", "sqlite %s: %s", what,
           s->db ? sqlite3_errmsg(s->db) : "no connection");
    return DZ_ERR_DB;
}

/* Tables made before the actor's name was indexed get the column.  0 or
 * DZ_ERR_DB. */
static int migrate(struct sq *s)
{
    sqlite3_stmt *st = NULL;
    bool has = false;
    int step;

    if (sqlite3_prepare_v2(s->db, "PRAGMA table_info(access_index)", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "table_info");
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 1);
        has |= col && strcmp(col, "actor_name") == 0;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(s, "table_info");
    /* Once, in one transaction: the column, filled from each row's own
     * line (the lines written before names were recorded have none). */
    if (!has && sqlite3_exec(s->db,
                             "BEGIN IMMEDIATE;"
                             "ALTER TABLE access_index ADD COLUMN actor_name TEXT;"
                             "UPDATE access_index SET actor_name = json_extract(line, '$.name')"
                             " WHERE json_type(line, '$.name') = 'text';"
                             "COMMIT;",
                             NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(s, "add column actor_name");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

static void sq_free(void *impl)
{
    struct sq *s = impl;

    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int dz_accessidx_sqlite_open(const char *path, void **impl)
{
    struct sq *s = calloc(1, sizeof(*s));
    int rc = DZ_ERR_DB;

    *impl = NULL;
    if (!s)
        return DZ_ERR_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, "open");
        goto out;
    }
    if (sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "schema");
        goto out;
    }
    if (migrate(s) != 0)
        goto out;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            rc = db_fail(s, "prepare");
            goto out;
        }
    }
    *impl = s;
    s = NULL;
    rc = 0;
out:
    sq_free(s);
    return rc;
}

/* End the transaction: COMMIT when rc is 0, else ROLLBACK.  rc, or the
 * commit's failure.  s->lock held. */
static int tx_end(struct sq *s, int rc)
{
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s, "commit");
    if (rc != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int sq_watermark(void *impl, const char *instance, uint64_t *seq)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_WM];
    int step;
    int rc = 0;

    *seq = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE)
        rc = db_fail(s, "watermark");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_add(void *impl, const char *instance, const struct dz_accessidx_add *rows, size_t n,
                  uint64_t upto)
{
    struct sq *s = impl;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    /* IMMEDIATE: the write lock is taken (or the busy timeout spent) before
     * anything is done, so the transaction cannot fail half-way on a lock. */
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "begin");
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_stmt *st = s->st[ST_INS];
        sqlite3_bind_text(st, 1, rows[i].tgt, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)rows[i].seq);
        sqlite3_bind_text(st, 4, rows[i].time, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rows[i].line, (int)rows[i].line_len, SQLITE_STATIC);
        if (rows[i].actor_name)
            sqlite3_bind_text(st, 6, rows[i].actor_name, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "insert");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (rc == 0) {
        sqlite3_stmt *st = s->st[ST_SETWM];
        sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)upto);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "watermark");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    rc = tx_end(s, rc);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_list(void *impl, const char *tgt, int64_t before, size_t limit,
                   struct dz_accessidx_row *out, size_t *n)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[before ? ST_LIST_AFTER : ST_LIST];
    int step;
    int rc = 0;

    *n = 0;
    if (limit > DZ_ACCESSIDX_PAGE_MAX)
        limit = DZ_ACCESSIDX_PAGE_MAX;
    pthread_mutex_lock(&s->lock);
    sqlite3_bind_text(st, 1, tgt, -1, SQLITE_STATIC);
    if (before)
        sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        struct dz_accessidx_row *r = &out[*n];
        const char *inst = (const char *)sqlite3_column_text(st, 1);
        const char *ts = (const char *)sqlite3_column_text(st, 3);
        const char *line = (const char *)sqlite3_column_text(st, 4);
        int line_len = sqlite3_column_bytes(st, 4);
        const char *name = (const char *)sqlite3_column_text(st, 5);
        memset(r, 0, sizeof(*r));
        r->id = sqlite3_column_int64(st, 0);
        r->seq = (uint64_t)sqlite3_column_int64(st, 2);
        if (!inst || !ts || !line || strlen(inst) > DZ_ACCESSIDX_INSTANCE_MAX ||
            strlen(ts) > DZ_ACCESSIDX_TIME_MAX) {
            rc = DZ_ERR_DB;
            break;
        }
        memcpy(r->instance, inst, strlen(inst));
        memcpy(r->time, ts, strlen(ts));
        if (name && strlen(name) < sizeof(r->actor_name)) {
            memcpy(r->actor_name, name, strlen(name));
            r->has_actor_name = true;
        }
        r->line = malloc((size_t)line_len + 1);
        if (!r->line) {
            rc = DZ_ERR_NOMEM;
            break;
        }
        memcpy(r->line, line, (size_t)line_len);
        r->line[line_len] = '\0';
        r->line_len = (size_t)line_len;
        (*n)++;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_fail(s, "list");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        dz_accessidx_rows_free(out, *n);
        *n = 0;
    }
    return rc;
}

void dz_accessidx_rows_free(struct dz_accessidx_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].line);
        rows[i].line = NULL;
    }
}

static int sq_rewind(void *impl, const char *instance, uint64_t seq)
{
    static const char *const sql[2] = {
        "DELETE FROM access_index WHERE instance = ?1 AND seq > ?2",
        "UPDATE access_watermark SET seq = ?2 WHERE instance = ?1 AND seq > ?2"};
    struct sq *s = impl;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "begin");
        goto out;
    }
    for (int i = 0; i < 2 && rc == 0; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            rc = db_fail(s, "rewind");
            break;
        }
        sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "rewind");
        sqlite3_finalize(st);
    }
    rc = tx_end(s, rc);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const struct dz_accessidx_ops dz_accessidx_sqlite_ops = {"sqlite", sq_watermark, sq_add,
                                                         sq_list,  sq_rewind,    sq_free};
