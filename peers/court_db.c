/*
 * court_db.c - SQLite behind court_db.h.  Prepared statements only (no
 * string-built SQL); a notice and its outbox rows in one transaction.  It
 * never verifies anything (court.c does, before storing).
 */
#include "court_db.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

struct dz_courtdb {
    sqlite3 *db;
};

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS notice ("
    " id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, judge_fin TEXT NOT NULL,"
    " party_fin TEXT NOT NULL, case_no TEXT NOT NULL, document BLOB NOT NULL,"
    " signature BLOB NOT NULL, report TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS notice_party ON notice(party_fin);"
    "CREATE TABLE IF NOT EXISTS outbox ("
    " id INTEGER PRIMARY KEY, notice_id INTEGER NOT NULL REFERENCES notice(id),"
    " party_fin TEXT NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'queued', created_at INTEGER NOT NULL);"
    /* A table of its own, so that a court database made before read
     * receipts existed gains it with CREATE IF NOT EXISTS. */
    "CREATE TABLE IF NOT EXISTS receipt ("
    " notice_id INTEGER PRIMARY KEY REFERENCES notice(id), party_fin TEXT NOT NULL,"
    " read_at INTEGER NOT NULL);"
    /* One row per signature value filed (a table of its own, for the same
     * reason): the same signature filed again is refused, not served twice. */
    "CREATE TABLE IF NOT EXISTS filed ("
    " signature_sha256 BLOB PRIMARY KEY, notice_id INTEGER NOT NULL REFERENCES notice(id));";

int dz_courtdb_open(const char *path, struct dz_courtdb **out)
{
    struct dz_courtdb *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return DZ_ERR_NOMEM;
    if (sqlite3_open_v2(path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(c->db, 2000) != SQLITE_OK ||
        sqlite3_exec(c->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        dz_log(DZ_LOG_ERROR, "court_db", "%s: %s", path,
               c->db ? sqlite3_errmsg(c->db) : "cannot open");
        sqlite3_close(c->db);
        free(c);
        return DZ_ERR_DB;
    }
    *out = c;
    return 0;
}

void dz_courtdb_close(struct dz_courtdb *db)
{
    if (!db)
        return;
    sqlite3_close(db->db);
    free(db);
}

static int outbox_row(sqlite3 *db, int64_t id, const char *party, const char *channel,
                      const char *addr, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = DZ_ERR_DB;

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO outbox(notice_id, party_fin, channel, address, created_at)"
                           " VALUES(?,?,?,?,?)",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, id) == SQLITE_OK &&
        sqlite3_bind_text(st, 2, party, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(st, 3, channel, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(st, 4, addr, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 5, now) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

/* The signature value's row: DZ_ERR_EXISTS when it was filed before. */
static int filed_row(sqlite3 *db, const unsigned char sha256[32], int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = DZ_ERR_DB;
    int step;

    if (sqlite3_prepare_v2(db, "INSERT INTO filed(signature_sha256, notice_id) VALUES(?,?)", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_bind_blob(st, 1, sha256, 32, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, id) == SQLITE_OK) {
        step = sqlite3_step(st);
        rc = step == SQLITE_DONE ? 0 : step == SQLITE_CONSTRAINT ? DZ_ERR_EXISTS : DZ_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int dz_courtdb_store(struct dz_courtdb *db, const struct dz_court_notice *n,
                     const char *const *phones, size_t nphones, const char *email, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = DZ_ERR_DB;

    *id = 0;
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return DZ_ERR_DB;
    if (sqlite3_prepare_v2(
            db->db,
            "INSERT INTO notice(received_at, judge_fin, party_fin, case_no, document,"
            " signature, report) VALUES(?,?,?,?,?,?,?)",
            -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, n->judge_fin, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, n->party_fin, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, n->case_no, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 5, n->document, (int)n->document_len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 6, n->signature, (int)n->signature_len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 7, n->report_json, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        goto out;
    *id = sqlite3_last_insert_rowid(db->db);
    rc = filed_row(db->db, n->signature_value_sha256, *id);
    if (rc != 0)
        goto out;
    rc = DZ_ERR_DB;
    for (size_t i = 0; i < nphones; i++) {
        if (outbox_row(db->db, *id, n->party_fin, "sms", phones[i], now) != 0)
            goto out;
    }
    if (email && outbox_row(db->db, *id, n->party_fin, "email", email, now) != 0)
        goto out;
    if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(st);
    if (rc) {
        if (rc != DZ_ERR_EXISTS)
            dz_log(DZ_LOG_ERROR, "court_db", "store: %s", sqlite3_errmsg(db->db));
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
        *id = 0;
    }
    return rc;
}

static json_t *blob_b64(sqlite3_stmt *st, int col)
{
    char *s = NULL;
    json_t *v;

    if (dz_b64_encode(sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col), false,
                      &s) != 0)
        return NULL;
    v = json_string(s);
    free(s);
    return v;
}

static json_t *deliveries(sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    json_t *a = json_array();

    if (!a ||
        sqlite3_prepare_v2(db,
                           "SELECT channel, address, state FROM outbox WHERE notice_id = ?"
                           " ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "channel",
                                               (const char *)sqlite3_column_text(st, 0), "address",
                                               (const char *)sqlite3_column_text(st, 1), "state",
                                               (const char *)sqlite3_column_text(st, 2))) != 0)
            goto fail;
    }
    sqlite3_finalize(st);
    return a;
fail:
    sqlite3_finalize(st);
    json_decref(a);
    return NULL;
}

/* One notice as both lists show it (the party's and the judge's): the same
 * columns, in NOTICE_COLUMNS' order, become the same JSON object. */
#define NOTICE_COLUMNS                                                                             \
    "SELECT id, case_no, judge_fin, party_fin, received_at, document, signature, report,"          \
    " (SELECT read_at FROM receipt WHERE notice_id = notice.id) FROM notice"

static json_t *notice_json(sqlite3 *db, sqlite3_stmt *st)
{
    int64_t id = sqlite3_column_int64(st, 0);
    json_t *report = json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);

    return json_pack("{s:I, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)id,
                     "case", (const char *)sqlite3_column_text(st, 1), "judge_fin",
                     (const char *)sqlite3_column_text(st, 2), "party_fin",
                     (const char *)sqlite3_column_text(st, 3), "received_at",
                     (json_int_t)sqlite3_column_int64(st, 4), "document", blob_b64(st, 5),
                     "signature", blob_b64(st, 6), "report", report ? report : json_null(),
                     "deliveries", deliveries(db, id), "read_at",
                     sqlite3_column_type(st, 8) == SQLITE_NULL
                         ? json_null()
                         : json_integer(sqlite3_column_int64(st, 8)));
}

/* The newest notices whose `sql` column (party_fin or judge_fin) is fin. */
static int list_notices(struct dz_courtdb *db, const char *sql, const char *fin, json_t **out)
{
    sqlite3_stmt *st = NULL;
    json_t *a = json_array();
    int rc = DZ_ERR_DB;
    int step;

    *out = NULL;
    if (!a)
        return DZ_ERR_NOMEM;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, fin, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, DZ_COURT_LIST_MAX) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = notice_json(db->db, st);
        if (!o || json_array_append_new(a, o) != 0) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        goto out;
    *out = a;
    a = NULL;
    rc = 0;
out:
    sqlite3_finalize(st);
    json_decref(a);
    return rc;
}

int dz_courtdb_list(struct dz_courtdb *db, const char *party_fin, json_t **out)
{
    return list_notices(db, NOTICE_COLUMNS " WHERE party_fin = ? ORDER BY id DESC LIMIT ?",
                        party_fin, out);
}

int dz_courtdb_mark_read(struct dz_courtdb *db, int64_t notice_id, const char *party_fin,
                         int64_t now, int64_t *read_at)
{
    sqlite3_stmt *st = NULL;
    int rc = DZ_ERR_DB;

    *read_at = 0;
    /* Only the party's own notice; the first reading is the one kept. */
    if (sqlite3_prepare_v2(db->db,
                           "INSERT OR IGNORE INTO receipt(notice_id, party_fin, read_at)"
                           " SELECT id, party_fin, ? FROM notice WHERE id = ? AND party_fin = ?",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, notice_id) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, party_fin, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT read_at FROM receipt WHERE notice_id = ? AND party_fin = ?", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, notice_id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, party_fin, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *read_at = sqlite3_column_int64(st, 0);
        rc = 0;
        break;
    case SQLITE_DONE:
        rc = DZ_ERR_NOTFOUND;
        break;
    default:
        break;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

int dz_courtdb_list_filed(struct dz_courtdb *db, const char *judge_fin, json_t **out)
{
    return list_notices(db, NOTICE_COLUMNS " WHERE judge_fin = ? ORDER BY id DESC LIMIT ?",
                        judge_fin, out);
}

int dz_courtdb_outbox_count(struct dz_courtdb *db, int64_t notice_id, size_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = DZ_ERR_DB;

    *out = 0;
    if (sqlite3_prepare_v2(db->db,
                           notice_id ? "SELECT count(*) FROM outbox WHERE notice_id = ?"
                                     : "SELECT count(*) FROM outbox WHERE ? = 0",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, notice_id) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = (size_t)sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}
