/*
 * accessidx_pg.c - the access index in the PostgreSQL accounts database
 * (see accessidx.h): one connection under a mutex, made again after a
 * failure; the server's statement_timeout bounds every statement; rows and
 * watermark in one transaction.  The conninfo may hold a password: it is
 * never logged and wiped at free.
 */
#include "state/accessidx.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

/* One transaction under an advisory lock: two gateways starting on one
 * database must not race on CREATE ... IF NOT EXISTS. */
static const char schema_sql[] =
    "BEGIN; SELECT pg_advisory_xact_lock(7243410);"
    "CREATE TABLE IF NOT EXISTS access_index ("
    " id BIGSERIAL PRIMARY KEY, tgt TEXT NOT NULL, instance TEXT NOT NULL,"
    " seq BIGINT NOT NULL, ts TEXT NOT NULL, line TEXT NOT NULL, UNIQUE (instance, seq));"
    "CREATE INDEX IF NOT EXISTS access_index_by_tgt ON access_index (tgt, ts, id);"
    "CREATE TABLE IF NOT EXISTS access_watermark ("
    " instance TEXT PRIMARY KEY, seq BIGINT NOT NULL);"
    /* Tables made before the actor's name was indexed get the column, filled
     * once from each row's own line (lines written before names were
     * recorded have none: NULL). */
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = 'access_index'"
    " AND column_name = 'actor_name') THEN"
    " ALTER TABLE access_index ADD COLUMN actor_name TEXT;"
    " UPDATE access_index SET actor_name = line::jsonb ->> 'name'"
    " WHERE jsonb_typeof(line::jsonb -> 'name') = 'string';"
    " END IF; END $$;"
    "COMMIT;";

struct pg {
    pthread_mutex_t lock;
    PGconn *conn;
    char *conninfo;
    char connect_timeout_s[16];
    char options[64];
};

static int pg_fail(const char *what, PGconn *c, PGresult *r)
{
    char line[256];
    const char *m = r ? PQresultErrorMessage(r) : c ? PQerrorMessage(c) : "";

    snprintf(line, sizeof(line), "%s", m && *m ? m : "no detail");
    for (char *q = line; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    dz_log(DZ_LOG_ERROR, "accessidx", "postgresql %s: %s", what, line);
    PQclear(r);
    return DZ_ERR_DB;
}

/* The connection, made (again) if needed.  Lock held. */
static PGconn *conn_of(struct pg *p)
{
    const char *const keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *const vals[] = {p->conninfo, p->connect_timeout_s, p->options, "darvaza-access",
                                NULL};

    if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
        return p->conn;
    PQfinish(p->conn);
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        pg_fail("connect", p->conn, NULL);
        PQfinish(p->conn);
        p->conn = NULL;
    }
    return p->conn;
}

/* Run one statement; the result (caller clears) when its status is want. */
static PGresult *run(struct pg *p, const char *sql, int n, const char *const *vals,
                     ExecStatusType want, const char *what)
{
    PGconn *c = conn_of(p);
    PGresult *r;

    if (!c)
        return NULL;
    /* Without parameters: PQexec, which also takes several statements. */
    r = n == 0 ? PQexec(c, sql) : PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != want) {
        pg_fail(what, c, r);
        /* A broken connection or one left inside a transaction is dropped. */
        if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
            PQfinish(c);
            p->conn = NULL;
        }
        return NULL;
    }
    return r;
}

static void pg_free(void *impl)
{
    struct pg *p = impl;

    if (!p)
        return;
    PQfinish(p->conn);
    if (p->conninfo)
        dz_secret_free_str(p->conninfo);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int dz_accessidx_pg_open(const char *conninfo, unsigned connect_timeout_ms,
                         unsigned statement_timeout_ms, void **impl)
{
    struct pg *p = calloc(1, sizeof(*p));
    PGresult *r;
    int rc = DZ_ERR_DB;

    *impl = NULL;
    if (!p)
        return DZ_ERR_NOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->conninfo = strdup(conninfo);
    if (!p->conninfo) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    snprintf(p->connect_timeout_s, sizeof(p->connect_timeout_s), "%u",
             (connect_timeout_ms + 999) / 1000);
    snprintf(p->options, sizeof(p->options), "-c statement_timeout=%u", statement_timeout_ms);
    pthread_mutex_lock(&p->lock);
    r = run(p, schema_sql, 0, NULL, PGRES_COMMAND_OK, "schema");
    pthread_mutex_unlock(&p->lock);
    if (!r)
        goto out;
    PQclear(r);
    *impl = p;
    p = NULL;
    rc = 0;
out:
    pg_free(p);
    return rc;
}

static int pg_watermark(void *impl, const char *instance, uint64_t *seq)
{
    struct pg *p = impl;
    const char *v[1] = {instance};
    PGresult *r;
    int rc = DZ_ERR_DB;

    *seq = 0;
    pthread_mutex_lock(&p->lock);
    r = run(p, "SELECT seq FROM access_watermark WHERE instance = $1", 1, v, PGRES_TUPLES_OK,
            "watermark");
    if (r) {
        if (PQntuples(r) == 1)
            *seq = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* COMMIT: 0 or DZ_ERR_DB.  p->lock held. */
static int tx_commit(struct pg *p)
{
    PGresult *r = run(p, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit");

    PQclear(r);
    return r ? 0 : DZ_ERR_DB;
}

/* ROLLBACK what a failed statement left open (run may have dropped the
 * connection already).  p->lock held. */
static void tx_rollback(struct pg *p)
{
    if (p->conn)
        PQclear(PQexec(p->conn, "ROLLBACK"));
}

static int pg_add(void *impl, const char *instance, const struct dz_accessidx_add *rows, size_t n,
                  uint64_t upto)
{
    struct pg *p = impl;
    PGresult *r;
    char seq[24];
    int rc = DZ_ERR_DB;

    pthread_mutex_lock(&p->lock);
    r = run(p, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "begin");
    if (!r)
        goto out;
    PQclear(r);
    for (size_t i = 0; i < n; i++) {
        char *line = strndup(rows[i].line, rows[i].line_len);
        const char *v[6] = {rows[i].tgt, instance, seq, rows[i].time, line, rows[i].actor_name};
        snprintf(seq, sizeof(seq), "%" PRIu64, rows[i].seq);
        r = line ? run(p,
                       "INSERT INTO access_index (tgt, instance, seq, ts, line, actor_name)"
                       " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance, seq) DO NOTHING",
                       6, v, PGRES_COMMAND_OK, "insert")
                 : NULL;
        free(line);
        if (!r)
            goto rollback;
        PQclear(r);
    }
    snprintf(seq, sizeof(seq), "%" PRIu64, upto);
    {
        const char *v[2] = {instance, seq};
        r = run(p,
                "INSERT INTO access_watermark (instance, seq) VALUES ($1, $2) ON CONFLICT"
                " (instance) DO UPDATE SET seq = GREATEST(access_watermark.seq, excluded.seq)",
                2, v, PGRES_COMMAND_OK, "watermark");
    }
    if (!r)
        goto rollback;
    PQclear(r);
    rc = tx_commit(p);
    goto out;
rollback:
    tx_rollback(p);
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int pg_list(void *impl, const char *tgt, int64_t before, size_t limit,
                   struct dz_accessidx_row *out, size_t *n)
{
    struct pg *p = impl;
    char b[24];
    char l[24];
    const char *v[3] = {tgt, b, l};
    PGresult *r;
    int rc = DZ_ERR_DB;

    *n = 0;
    if (limit > DZ_ACCESSIDX_PAGE_MAX)
        limit = DZ_ACCESSIDX_PAGE_MAX;
    snprintf(b, sizeof(b), "%" PRId64, before);
    snprintf(l, sizeof(l), "%zu", limit);
    pthread_mutex_lock(&p->lock);
    /* The cursor must be one of the person's own rows (another person's
     * row id is no cursor); the row comparison is an index bound. */
    r = run(p,
            "SELECT id, instance, seq, ts, line, actor_name FROM access_index WHERE tgt = $1 AND"
            " ($2::bigint = 0 OR"
            "  (ts, id) < (SELECT ts, id FROM access_index WHERE id = $2 AND tgt = $1))"
            " ORDER BY ts DESC, id DESC LIMIT $3",
            3, v, PGRES_TUPLES_OK, "list");
    pthread_mutex_unlock(&p->lock);
    if (!r)
        return rc;
    rc = 0;
    for (int i = 0; i < PQntuples(r) && *n < limit; i++) {
        struct dz_accessidx_row *row = &out[*n];
        const char *inst = PQgetvalue(r, i, 1);
        const char *ts = PQgetvalue(r, i, 3);
        memset(row, 0, sizeof(*row));
        if (strlen(inst) > DZ_ACCESSIDX_INSTANCE_MAX || strlen(ts) > DZ_ACCESSIDX_TIME_MAX) {
            rc = DZ_ERR_DB;
            break;
        }
        row->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        row->seq = strtoull(PQgetvalue(r, i, 2), NULL, 10);
        memcpy(row->instance, inst, strlen(inst));
        memcpy(row->time, ts, strlen(ts));
        if (!PQgetisnull(r, i, 5) && strlen(PQgetvalue(r, i, 5)) < sizeof(row->actor_name)) {
            memcpy(row->actor_name, PQgetvalue(r, i, 5), strlen(PQgetvalue(r, i, 5)));
            row->has_actor_name = true;
        }
        row->line_len = (size_t)PQgetlength(r, i, 4);
        row->line = strndup(PQgetvalue(r, i, 4), row->line_len);
        if (!row->line) {
            rc = DZ_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    PQclear(r);
    if (rc != 0) {
        dz_accessidx_rows_free(out, *n);
        *n = 0;
    }
    return rc;
}

static int pg_rewind(void *impl, const char *instance, uint64_t seq)
{
    static const char *const sql[2] = {
        "DELETE FROM access_index WHERE instance = $1 AND seq > $2",
        "UPDATE access_watermark SET seq = $2 WHERE instance = $1 AND seq > $2"};
    struct pg *p = impl;
    PGresult *r;
    char s[24];
    const char *v[2] = {instance, s};
    int rc = DZ_ERR_DB;

    snprintf(s, sizeof(s), "%" PRIu64, seq);
    pthread_mutex_lock(&p->lock);
    r = run(p, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "begin");
    if (!r)
        goto out;
    PQclear(r);
    for (int i = 0; i < 2; i++) {
        r = run(p, sql[i], 2, v, PGRES_COMMAND_OK, "rewind");
        if (!r)
            goto rollback;
        PQclear(r);
    }
    rc = tx_commit(p);
    goto out;
rollback:
    tx_rollback(p);
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

const struct dz_accessidx_ops dz_accessidx_pg_ops = {"postgresql", pg_watermark, pg_add,
                                                     pg_list,      pg_rewind,    pg_free};
