/*
 * accounts_sqlite.c - the SQLite backend of accounts (see accounts.h).
 *
 * It owns one connection and its prepared statements, serialised by one
 * mutex: account operations are short (argon2id runs in accounts.c, outside
 * the lock), the pool is small, and a single connection means no per-thread
 * set-up and one place to close.  WAL lets the operator tool read the file
 * while the gateway writes; synchronous=FULL because a lost totp_last_step
 * update would reopen a replay window after a crash.  The file is created
 * 0600 (it holds password hashes).  It must never see a password or a
 * decrypted seed, and never build SQL from input (bound parameters only).
 */
#include "state/accounts.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS accounts("
                                 " fin TEXT PRIMARY KEY NOT NULL CHECK(length(fin) = 7),"
                                 " pwd_hash TEXT NOT NULL,"
                                 " totp_seed BLOB,"
                                 " totp_active INTEGER NOT NULL DEFAULT 0,"
                                 " totp_last_step INTEGER NOT NULL DEFAULT -1,"
                                 " created_at INTEGER NOT NULL,"
                                 " updated_at INTEGER NOT NULL"
                                 ") WITHOUT ROWID;"
                                 "PRAGMA user_version = 1;";

enum { ST_GET, ST_INSERT, ST_ADVANCE, ST_REMOVE, ST_SET_PWD, ST_SWAP_PWD, ST_SET_TOTP, ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = "SELECT pwd_hash, totp_seed, totp_active, totp_last_step, created_at, updated_at"
               " FROM accounts WHERE fin = ?1",
    [ST_INSERT] = "INSERT INTO accounts(fin, pwd_hash, totp_seed, totp_active, totp_last_step,"
                  " created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* A compare-and-set: the WHERE makes the step only move forward, so of
     * two logins racing with one code exactly one changes the row. */
    [ST_ADVANCE] = "UPDATE accounts SET totp_last_step = ?2, totp_active = 1, updated_at = ?3"
                   " WHERE fin = ?1 AND totp_last_step < ?2 AND totp_seed = ?4",
    [ST_REMOVE] = "DELETE FROM accounts WHERE fin = ?1",
    [ST_SET_PWD] = "UPDATE accounts SET pwd_hash = ?2, updated_at = ?3 WHERE fin = ?1",
    /* A rehash at login: a compare-and-set, so a password change made since
     * the login read the row is never overwritten. */
    [ST_SWAP_PWD] = "UPDATE accounts SET pwd_hash = ?2, updated_at = ?3"
                    " WHERE fin = ?1 AND pwd_hash = ?4",
    /* totp_active is kept: a reset must not leave the password alone
     * enough to sign in (an active account needs the new code at once). */
    [ST_SET_TOTP] = "UPDATE accounts SET totp_seed = ?2, totp_last_step = -1,"
                    " updated_at = ?3 WHERE fin = ?1",
};

struct sq {
    pthread_mutex_t lock; /* guards db and every statement */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

static int db_fail(struct sq *s, const char *what)
{
    dz_log(DZ_LOG_ERROR, "accounts_db", "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no db");
    return DZ_ERR_DB;
}

static void sq_free(void *impl)
{
    struct sq *s = impl;
    int i;

    if (!s)
        return;
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int schema(struct sq *s)
{
    sqlite3_stmt *v = NULL;
    int version = -1;
    int rc;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) != SQLITE_OK)
        return db_fail(s, "user_version");
    if (sqlite3_step(v) == SQLITE_ROW)
        version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (version == 0) {
        /* user_version 0 is a new, empty file.  IMMEDIATE takes the write lock
         * first, so the gateway and the operator tool creating the same new file
         * at once do not both run the schema. */
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT;", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            db_fail(s, "create schema");
            sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
            return DZ_ERR_DB;
        }
        return 0;
    }
    /* A file from a newer (or damaged) schema is refused rather than read
     * with statements that may mean something else there. */
    if (version != SCHEMA_VERSION) {
        dz_log(DZ_LOG_ERROR, "accounts_db", "unknown schema version %d (want %d)", version,
               SCHEMA_VERSION);
        return DZ_ERR_DB;
    }
    return 0;
}

int dz_accounts_sqlite_open(const char *path, void **impl)
{
    struct sq *s = NULL;
    int fd;
    int i;
    int rc;

    *impl = NULL;
    if (!path || !*path)
        return DZ_ERR_INVAL;
    /* Create the file ourselves so it starts 0600 whatever the umask; SQLite
     * gives the -wal and -shm files the same mode. */
    /* O_NOFOLLOW: a symlink planted at the path cannot redirect where the
     * hashes are written. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        dz_log(DZ_LOG_ERROR, "accounts_db", "open %s: %s", path, strerror(errno));
        return DZ_ERR_DB;
    }
    close(fd);
    s = calloc(1, sizeof(*s));
    if (!s)
        return DZ_ERR_NOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return DZ_ERR_NOMEM;
    }
    /* NOMUTEX: s->lock already serialises every use of the connection, so
     * SQLite's own mutex would only be a second lock to take. */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, "open");
        goto out;
    }
    /* Extended codes let sq_insert tell a duplicate FIN
     * (SQLITE_CONSTRAINT_PRIMARYKEY) from any other failure. */
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK ||
        /* secure_delete: a removed account's hash and sealed seed are zeroed
         * in the file, not left in free pages for a copy of it to reveal. */
        sqlite3_exec(s->db, "PRAGMA secure_delete=ON;", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "pragmas");
        goto out;
    }
    rc = schema(s);
    if (rc < 0)
        goto out;
    for (i = 0; i < ST_COUNT; i++) {
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

static int sq_get(void *impl, const char *fin, struct dz_account_rec *out)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_GET];
    const unsigned char *h;
    const void *blob;
    int hlen;
    int blen;
    int step;
    int rc;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->lock);
    /* SQLITE_STATIC: no copy of the caller's buffer is made; the bindings
     * are cleared at out: so the statement keeps no pointer into it. */
    if (sqlite3_bind_text(st, 1, fin, DZ_FIN_LEN, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_fail(s, "bind");
        goto out;
    }
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, "get");
        goto out;
    }
    h = sqlite3_column_text(st, 0);
    hlen = sqlite3_column_bytes(st, 0);
    blob = sqlite3_column_blob(st, 1);
    blen = sqlite3_column_bytes(st, 1);
    /* A row we could not have written is corruption: refuse it. */
    if (!h || hlen <= 0 || hlen >= DZ_PWD_HASH_MAX || blen < 0 || blen > DZ_SEED_BLOB_MAX ||
        (blen > 0 && !blob)) {
        dz_log(DZ_LOG_ERROR, "accounts_db", "malformed account row");
        rc = DZ_ERR_DB;
        goto out;
    }
    memcpy(out->fin, fin, DZ_FIN_LEN);
    out->fin[DZ_FIN_LEN] = '\0';
    memcpy(out->pwd_hash, h, (size_t)hlen);
    out->pwd_hash[hlen] = '\0';
    if (blen > 0)
        memcpy(out->totp_seed, blob, (size_t)blen);
    out->totp_seed_len = (size_t)blen;
    out->totp_active = sqlite3_column_int64(st, 2) != 0;
    out->totp_last_step = sqlite3_column_int64(st, 3);
    out->created_at = sqlite3_column_int64(st, 4);
    out->updated_at = sqlite3_column_int64(st, 5);
    rc = 0;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    /* The row holds the password hash and the sealed seed: a failed read
     * leaves none of it behind in the caller's buffer. */
    if (rc < 0)
        dz_secret_wipe(out, sizeof(*out));
    return rc;
}

static int sq_insert(void *impl, const struct dz_account_rec *r)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_INSERT];
    int step;
    int rc;

    pthread_mutex_lock(&s->lock);
    if (sqlite3_bind_text(st, 1, r->fin, DZ_FIN_LEN, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, r->pwd_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
        (r->totp_seed_len
             ? sqlite3_bind_blob(st, 3, r->totp_seed, (int)r->totp_seed_len, SQLITE_STATIC)
             : sqlite3_bind_null(st, 3)) != SQLITE_OK ||
        sqlite3_bind_int(st, 4, r->totp_active ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, r->totp_last_step) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, r->created_at) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, r->updated_at) != SQLITE_OK) {
        rc = db_fail(s, "bind");
        goto out;
    }
    step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = DZ_ERR_EXISTS;
    else
        rc = db_fail(s, "insert");
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Step the conditional UPDATE st, its parameters bound if bound: *changed
 * when it changed the row (the compare-and-sets: advance_totp,
 * swap_password).  Called with s->lock held; resets st and releases it. */
static int cas_step(struct sq *s, sqlite3_stmt *st, bool bound, const char *what, bool *changed)
{
    int rc = 0;

    if (!bound)
        rc = db_fail(s, "bind");
    else if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, what);
    else
        *changed = sqlite3_changes(s->db) == 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_advance(void *impl, const char *fin, int64_t step_no, const unsigned char *seed,
                      size_t seed_len, int64_t now, bool *advanced)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_ADVANCE];

    *advanced = false;
    pthread_mutex_lock(&s->lock);
    return cas_step(s, st,
                    sqlite3_bind_text(st, 1, fin, DZ_FIN_LEN, SQLITE_STATIC) == SQLITE_OK &&
                        sqlite3_bind_int64(st, 2, step_no) == SQLITE_OK &&
                        sqlite3_bind_int64(st, 3, now) == SQLITE_OK &&
                        sqlite3_bind_blob(st, 4, seed, (int)seed_len, SQLITE_STATIC) == SQLITE_OK,
                    "advance_totp", advanced);
}

/* One UPDATE of a row by FIN: bind (?2 text or blob, ?3 now), step, and
 * tell a missing row (no change) as DZ_ERR_NOTFOUND. */
static int sq_update(struct sq *s, int which, const char *fin, const void *v, size_t v_len,
                     bool is_blob, int64_t now, const char *what)
{
    sqlite3_stmt *st = s->st[which];
    int rc;

    pthread_mutex_lock(&s->lock);
    if (sqlite3_bind_text(st, 1, fin, DZ_FIN_LEN, SQLITE_STATIC) != SQLITE_OK ||
        (is_blob ? sqlite3_bind_blob(st, 2, v, (int)v_len, SQLITE_STATIC)
                 : sqlite3_bind_text(st, 2, v, (int)v_len, SQLITE_STATIC)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, now) != SQLITE_OK) {
        rc = db_fail(s, "bind");
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, what);
        goto out;
    }
    rc = sqlite3_changes(s->db) == 1 ? 0 : DZ_ERR_NOTFOUND;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_set_password(void *impl, const char *fin, const char *pwd_hash, int64_t now)
{
    return sq_update(impl, ST_SET_PWD, fin, pwd_hash, strlen(pwd_hash), false, now, "set_password");
}

static int sq_swap_password(void *impl, const char *fin, const char *old_hash, const char *new_hash,
                            int64_t now, bool *swapped)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_SWAP_PWD];

    *swapped = false;
    pthread_mutex_lock(&s->lock);
    return cas_step(s, st,
                    sqlite3_bind_text(st, 1, fin, DZ_FIN_LEN, SQLITE_STATIC) == SQLITE_OK &&
                        sqlite3_bind_text(st, 2, new_hash, -1, SQLITE_STATIC) == SQLITE_OK &&
                        sqlite3_bind_int64(st, 3, now) == SQLITE_OK &&
                        sqlite3_bind_text(st, 4, old_hash, -1, SQLITE_STATIC) == SQLITE_OK,
                    "swap_password", swapped);
}

static int sq_set_totp(void *impl, const char *fin, const unsigned char *seed, size_t seed_len,
                       int64_t now)
{
    return sq_update(impl, ST_SET_TOTP, fin, seed, seed_len, true, now, "set_totp");
}

static int sq_remove(void *impl, const char *fin)
{
    struct sq *s = impl;
    sqlite3_stmt *st = s->st[ST_REMOVE];
    int rc;

    pthread_mutex_lock(&s->lock);
    if (sqlite3_bind_text(st, 1, fin, DZ_FIN_LEN, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_fail(s, "bind");
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, "remove");
        goto out;
    }
    rc = sqlite3_changes(s->db) == 1 ? 0 : DZ_ERR_NOTFOUND;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const struct dz_accounts_ops dz_accounts_sqlite_ops = {
    .name = "sqlite",
    .get = sq_get,
    .insert = sq_insert,
    .advance_totp = sq_advance,
    .set_password = sq_set_password,
    .swap_password = sq_swap_password,
    .set_totp = sq_set_totp,
    .remove = sq_remove,
    .free = sq_free,
};
