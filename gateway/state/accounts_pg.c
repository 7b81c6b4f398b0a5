/*
 * accounts_pg.c - the PostgreSQL backend of accounts (see accounts.h), for
 * several gateways sharing one account database.
 *
 * A bounded pool of connections (accounts.postgresql.pool), each with its
 * statements prepared once when it connects.  A pool thread takes a
 * free connection (waiting at most the statement timeout for one), runs one
 * statement, and gives it back.  Every wait is bounded: libpq's
 * connect_timeout for connecting, and our own deadline (poll on the socket)
 * for each statement, so a hung server costs a login at most the statement
 * timeout and never a pool thread forever.  A connection that fails or
 * times out is dropped; the next use reconnects, with a pool-wide backoff
 * (100 ms doubling to 5 s) so a down server is not hammered and requests
 * fail fast (DZ_ERR_DB, answered 503 state_unavailable) while it is down.
 *
 * TOTP replay: the conditional UPDATE ... WHERE totp_last_step < $2 takes
 * the row lock, and under READ COMMITTED a second UPDATE waiting on that lock
 * re-checks its WHERE against the committed row, so of two gateways
 * accepting the same code exactly one changes the row.
 *
 * SECRETS: the conninfo (it holds the password) is copied in and wiped at
 * free; it is never logged (libpq's messages name host and port only).
 * Bound parameters only, never SQL built from input.
 */
#include "state/accounts.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "base/deadline.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

#define SCHEMA_VERSION 1
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Any constant (0x64617276, "darv"): serialises schema creation between
 * instances starting at once (an advisory lock released at COMMIT). */
#define SCHEMA_LOCK_SQL "SELECT pg_advisory_xact_lock(1684107894)"

enum { ST_GET, ST_INSERT, ST_ADVANCE, ST_REMOVE, ST_SET_PWD, ST_SWAP_PWD, ST_SET_TOTP, ST_COUNT };

static const char *const stmt_name[ST_COUNT] = {
    "dz_get", "dz_insert", "dz_advance", "dz_remove", "dz_set_pwd", "dz_swap_pwd", "dz_set_totp"};
static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = "SELECT pwd_hash, totp_seed, totp_active, totp_last_step, created_at, updated_at"
               " FROM accounts WHERE fin = $1",
    [ST_INSERT] = "INSERT INTO accounts(fin, pwd_hash, totp_seed, totp_active, totp_last_step,"
                  " created_at, updated_at) VALUES($1, $2, $3, $4, $5, $6, $7)",
    /* The compare-and-set of the header comment. */
    [ST_ADVANCE] = "UPDATE accounts SET totp_last_step = $2, totp_active = true, updated_at = $3"
                   " WHERE fin = $1 AND totp_last_step < $2 AND totp_seed = $4",
    [ST_REMOVE] = "DELETE FROM accounts WHERE fin = $1",
    [ST_SET_PWD] = "UPDATE accounts SET pwd_hash = $2, updated_at = $3 WHERE fin = $1",
    /* A rehash at login, a compare-and-set like ST_ADVANCE: under READ
     * COMMITTED an UPDATE waiting on a password change's row lock re-checks
     * its WHERE against the committed row, so the change is never
     * overwritten. */
    [ST_SWAP_PWD] = "UPDATE accounts SET pwd_hash = $2, updated_at = $3"
                    " WHERE fin = $1 AND pwd_hash = $4",
    /* totp_active is kept: see accounts_sqlite.c. */
    [ST_SET_TOTP] = "UPDATE accounts SET totp_seed = $2, totp_last_step = -1,"
                    " updated_at = $3 WHERE fin = $1",
};
static const int stmt_nparams[ST_COUNT] = {1, 7, 4, 1, 3, 4, 3};

static const char schema_sql[] = "CREATE TABLE accounts("
                                 " fin text PRIMARY KEY CHECK (length(fin) = 7),"
                                 " pwd_hash text NOT NULL,"
                                 " totp_seed bytea,"
                                 " totp_active boolean NOT NULL DEFAULT false,"
                                 " totp_last_step bigint NOT NULL DEFAULT -1,"
                                 " created_at bigint NOT NULL,"
                                 " updated_at bigint NOT NULL);"
                                 "INSERT INTO darvaza_schema(version) VALUES(1);";

struct pg_slot {
    PGconn *conn; /* NULL: not connected (reconnected on next use) */
    bool busy;
};

struct pg {
    pthread_mutex_t lock; /* guards slots[].busy, backoff fields */
    pthread_cond_t freed;
    char *conninfo;
    char connect_timeout_s[16];
    char options[64];
    unsigned statement_timeout_ms;
    unsigned n;
    int64_t retry_at_ms; /* no connection attempt before this (backoff) */
    unsigned backoff_ms;
    struct pg_slot *slots;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_pg(const char *what, PGconn *conn, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : conn ? PQerrorMessage(conn) : "";
    char line[256];
    size_t n;

    snprintf(line, sizeof(line), "%s", m && *m ? m : "no detail");
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* libpq adds hint lines; one log line reads better. */
    for (char *q = line; *q; q++)
        if (*q == '\n' || *q == '\t' || *q == '\r')
            *q = ' ';
    dz_log(DZ_LOG_ERROR, "accounts_pg", "%s: %s", what, line);
}

/* Connect with a bounded wait and our session settings (later keywords
 * override the conninfo's own). */
static PGconn *pg_connect(struct pg *p)
{
    const char *const keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *const vals[] = {p->conninfo, p->connect_timeout_s, p->options, "darvaza", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (!c)
        return NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        log_pg("connect", c, NULL);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Wait for the result of the query sent on c, at most timeout_ms.  Returns
 * the last result (caller clears) or NULL on timeout / connection loss. */
static PGresult *wait_result(PGconn *c, unsigned timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    PGresult *last = NULL;
    PGresult *r;

    for (;;) {
        while (!PQisBusy(c)) {
            r = PQgetResult(c);
            if (!r)
                return last;
            PQclear(last);
            last = r;
        }
        int64_t left = deadline - mono_ms();
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        if (left <= 0 || pfd.fd < 0) {
            dz_log(DZ_LOG_ERROR, "accounts_pg", "statement timed out after %u ms", timeout_ms);
            break;
        }
        int prc = poll(&pfd, 1, (int)left);
        if (prc < 0 && errno == EINTR)
            continue;
        if (prc < 0 || !PQconsumeInput(c)) {
            log_pg("read", c, NULL);
            break;
        }
    }
    PQclear(last);
    return NULL;
}

/* Prepare every statement on a new connection.  0 or DZ_ERR_DB. */
static int prepare_all(struct pg *p, PGconn *c)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (!PQsendPrepare(c, stmt_name[i], stmt_sql[i], stmt_nparams[i], NULL)) {
            log_pg("prepare", c, NULL);
            return DZ_ERR_DB;
        }
        PGresult *r = wait_result(c, p->statement_timeout_ms);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            log_pg("prepare", c, r);
            PQclear(r);
            return DZ_ERR_DB;
        }
        PQclear(r);
    }
    return 0;
}

/* Take a connection, connecting it if needed (*fresh then); want_new: an
 * unconnected slot if one is free.  *slot on 0; DZ_ERR_DB when
 * none is free within the statement timeout or the server is unreachable. */
static int acquire(struct pg *p, struct pg_slot **slot, bool want_new, bool *fresh)
{
    struct timespec until;
    struct pg_slot *s = NULL;
    int rc = 0;

    *slot = NULL;
    dz_deadline_ms(CLOCK_REALTIME, (uint64_t)p->statement_timeout_ms, &until);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        /* Connected slots first: they need no round trip to set up; but after
         * a lost connection the other idle ones are likely stale too, so
         * then an unconnected slot first. */
        for (int pass = 0; pass < 2 && !s; pass++) {
            bool want_conn = (pass == 0) != want_new;
            for (unsigned i = 0; i < p->n && !s; i++)
                if (!p->slots[i].busy && (p->slots[i].conn != NULL) == want_conn)
                    s = &p->slots[i];
        }
        if (s)
            break;
        if (pthread_cond_timedwait(&p->freed, &p->lock, &until) != 0) {
            pthread_mutex_unlock(&p->lock);
            dz_log(DZ_LOG_ERROR, "accounts_pg", "no free connection within the statement timeout");
            return DZ_ERR_DB;
        }
    }
    if (!s->conn && mono_ms() < p->retry_at_ms) {
        /* Backing off: fail fast rather than queue logins behind a dead server. */
        pthread_mutex_unlock(&p->lock);
        return DZ_ERR_DB;
    }
    s->busy = true;
    pthread_mutex_unlock(&p->lock);
    if (!s->conn) {
        PGconn *c = pg_connect(p);
        if (c && prepare_all(p, c) < 0) {
            PQfinish(c);
            c = NULL;
        }
        pthread_mutex_lock(&p->lock);
        if (c) {
            s->conn = c;
            *fresh = true;
            p->backoff_ms = 0;
            p->retry_at_ms = 0;
        } else {
            p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
            if (p->backoff_ms > BACKOFF_MAX_MS)
                p->backoff_ms = BACKOFF_MAX_MS;
            p->retry_at_ms = mono_ms() + p->backoff_ms;
            s->busy = false;
            pthread_cond_signal(&p->freed);
            rc = DZ_ERR_DB;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (rc == 0)
        *slot = s;
    return rc;
}

/* Give a connection back; broken ones are dropped (reconnected on next use). */
static void release(struct pg *p, struct pg_slot *s, bool broken)
{
    if (broken || PQstatus(s->conn) != CONNECTION_OK ||
        PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    pthread_mutex_lock(&p->lock);
    s->busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* Run prepared statement st; *res on 0 (caller clears).  A timeout or a
 * lost connection drops the connection. */
static int run(struct pg *p, int st, const char *const *vals, const int *lens, const int *fmts,
               int result_format, PGresult **res)
{
    *res = NULL;
    for (int attempt = 0;; attempt++) {
        struct pg_slot *s;
        PGresult *r = NULL;
        bool fresh = false;
        bool lost;
        int rc = acquire(p, &s, attempt > 0, &fresh);

        if (rc < 0)
            return rc;
        if (PQsendQueryPrepared(s->conn, stmt_name[st], stmt_nparams[st], vals, lens, fmts,
                                result_format))
            r = wait_result(s->conn, p->statement_timeout_ms);
        else
            log_pg("send", s->conn, NULL);
        lost = PQstatus(s->conn) == CONNECTION_BAD;
        if (r && !lost) {
            release(p, s, false);
            *res = r;
            return 0;
        }
        PQclear(r);
        release(p, s, true);
        /* A pooled connection the server closed while it sat idle (a
         * restart, an idle timeout) fails on its first use: try once more on a
         * new one.  Never after a timeout (the connection is not lost then),
         * so a slow server costs one statement_timeout, not two.  A retried
         * advance_totp that had in fact committed finds its step used and
         * denies: fail closed. */
        if (!lost || fresh || attempt > 0)
            return DZ_ERR_DB;
    }
}

static bool is_unique_violation(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return state && strcmp(state, "23505") == 0;
}

static int64_t be64(const char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)b[i];
    return (int64_t)v;
}

static int pg_get(void *impl, const char *fin, struct dz_account_rec *out)
{
    struct pg *p = impl;
    const char *vals[1] = {fin};
    PGresult *r = NULL;
    int hlen, blen;
    int rc;

    memset(out, 0, sizeof(*out));
    /* Binary results: the seed comes back as raw bytes, integers as
     * network-order int8, booleans as one byte. */
    rc = run(p, ST_GET, vals, NULL, NULL, 1, &r);
    if (rc < 0)
        return rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_pg("get", NULL, r);
        rc = DZ_ERR_DB;
        goto out;
    }
    if (PQntuples(r) == 0) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    hlen = PQgetlength(r, 0, 0);
    blen = PQgetisnull(r, 0, 1) ? 0 : PQgetlength(r, 0, 1);
    /* A row we could not have written is corruption: refuse it. */
    if (PQntuples(r) != 1 || PQnfields(r) != 6 || hlen <= 0 || hlen >= DZ_PWD_HASH_MAX ||
        blen < 0 || blen > DZ_SEED_BLOB_MAX || PQgetlength(r, 0, 2) != 1 ||
        PQgetlength(r, 0, 3) != 8 || PQgetlength(r, 0, 4) != 8 || PQgetlength(r, 0, 5) != 8) {
        dz_log(DZ_LOG_ERROR, "accounts_pg", "malformed account row");
        rc = DZ_ERR_DB;
        goto out;
    }
    memcpy(out->fin, fin, DZ_FIN_LEN);
    out->fin[DZ_FIN_LEN] = '\0';
    memcpy(out->pwd_hash, PQgetvalue(r, 0, 0), (size_t)hlen);
    out->pwd_hash[hlen] = '\0';
    if (blen > 0)
        memcpy(out->totp_seed, PQgetvalue(r, 0, 1), (size_t)blen);
    out->totp_seed_len = (size_t)blen;
    out->totp_active = PQgetvalue(r, 0, 2)[0] != 0;
    out->totp_last_step = be64(PQgetvalue(r, 0, 3));
    out->created_at = be64(PQgetvalue(r, 0, 4));
    out->updated_at = be64(PQgetvalue(r, 0, 5));
    rc = 0;
out:
    /* The result buffer held the hash and the sealed seed. */
    if (PQntuples(r) == 1 && PQnfields(r) >= 2) {
        dz_secret_wipe(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
        dz_secret_wipe(PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    }
    PQclear(r);
    if (rc < 0)
        dz_secret_wipe(out, sizeof(*out));
    return rc;
}

static int pg_insert(void *impl, const struct dz_account_rec *rec)
{
    struct pg *p = impl;
    char step[24], created[24], updated[24];
    const char *vals[7];
    int lens[7] = {0};
    int fmts[7] = {0};
    PGresult *r = NULL;
    int rc;

    snprintf(step, sizeof(step), "%lld", (long long)rec->totp_last_step);
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    snprintf(updated, sizeof(updated), "%lld", (long long)rec->updated_at);
    vals[0] = rec->fin;
    vals[1] = rec->pwd_hash;
    vals[2] = rec->totp_seed_len ? (const char *)rec->totp_seed : NULL; /* NULL: SQL NULL */
    lens[2] = (int)rec->totp_seed_len;
    fmts[2] = 1; /* bytea as raw bytes */
    vals[3] = rec->totp_active ? "true" : "false";
    vals[4] = step;
    vals[5] = created;
    vals[6] = updated;
    rc = run(p, ST_INSERT, vals, lens, fmts, 0, &r);
    if (rc < 0)
        return rc;
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
        rc = 0;
    else if (is_unique_violation(r))
        rc = DZ_ERR_EXISTS;
    else {
        log_pg("insert", NULL, r);
        rc = DZ_ERR_DB;
    }
    PQclear(r);
    return rc;
}

/* Run the conditional UPDATE which (the compare-and-sets: advance_totp,
 * swap_password): *changed when it changed the row. */
static int pg_cas(struct pg *p, int which, const char *const *vals, const int *lens,
                  const int *fmts, const char *what, bool *changed)
{
    PGresult *r = NULL;
    int rc = run(p, which, vals, lens, fmts, 0, &r);

    if (rc < 0)
        return rc;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_pg(what, NULL, r);
        rc = DZ_ERR_DB;
    } else {
        *changed = strcmp(PQcmdTuples(r), "1") == 0;
    }
    PQclear(r);
    return rc;
}

static int pg_advance(void *impl, const char *fin, int64_t step_no, const unsigned char *seed,
                      size_t seed_len, int64_t now, bool *advanced)
{
    char step[24], at[24];
    const char *vals[4] = {fin, step, at, (const char *)seed};
    int lens[4] = {0, 0, 0, (int)seed_len};
    int fmts[4] = {0, 0, 0, 1};

    *advanced = false;
    snprintf(step, sizeof(step), "%lld", (long long)step_no);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    return pg_cas(impl, ST_ADVANCE, vals, lens, fmts, "advance_totp", advanced);
}

/* One UPDATE of a row by FIN ($2 text or bytea, $3 now); no row changed is
 * DZ_ERR_NOTFOUND. */
static int pg_update(struct pg *p, int which, const char *fin, const void *v, size_t v_len,
                     bool is_blob, int64_t now, const char *what)
{
    char at[24];
    const char *vals[3] = {fin, v, at};
    int lens[3] = {0, (int)v_len, 0};
    int fmts[3] = {0, is_blob ? 1 : 0, 0};
    PGresult *r = NULL;
    int rc;

    snprintf(at, sizeof(at), "%lld", (long long)now);
    rc = run(p, which, vals, lens, fmts, 0, &r);
    if (rc < 0)
        return rc;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_pg(what, NULL, r);
        rc = DZ_ERR_DB;
    } else {
        rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : DZ_ERR_NOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int pg_set_password(void *impl, const char *fin, const char *pwd_hash, int64_t now)
{
    return pg_update(impl, ST_SET_PWD, fin, pwd_hash, strlen(pwd_hash), false, now, "set_password");
}

static int pg_swap_password(void *impl, const char *fin, const char *old_hash, const char *new_hash,
                            int64_t now, bool *swapped)
{
    char at[24];
    const char *vals[4] = {fin, new_hash, at, old_hash};

    *swapped = false;
    snprintf(at, sizeof(at), "%lld", (long long)now);
    return pg_cas(impl, ST_SWAP_PWD, vals, NULL, NULL, "swap_password", swapped);
}

static int pg_set_totp(void *impl, const char *fin, const unsigned char *seed, size_t seed_len,
                       int64_t now)
{
    return pg_update(impl, ST_SET_TOTP, fin, seed, seed_len, true, now, "set_totp");
}

static int pg_remove(void *impl, const char *fin)
{
    struct pg *p = impl;
    const char *vals[1] = {fin};
    PGresult *r = NULL;
    int rc;

    rc = run(p, ST_REMOVE, vals, NULL, NULL, 0, &r);
    if (rc < 0)
        return rc;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_pg("remove", NULL, r);
        rc = DZ_ERR_DB;
    } else {
        rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : DZ_ERR_NOTFOUND;
    }
    PQclear(r);
    return rc;
}

static void pg_free(void *impl)
{
    struct pg *p = impl;

    if (!p)
        return;
    for (unsigned i = 0; p->slots && i < p->n; i++)
        if (p->slots[i].conn)
            PQfinish(p->slots[i].conn);
    free(p->slots);
    if (p->conninfo)
        dz_secret_free_str(p->conninfo);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Run one utility statement (no parameters) on c.  0 or DZ_ERR_DB; *res
 * kept when res is not NULL. */
static int exec1(struct pg *p, PGconn *c, const char *sql, ExecStatusType want, PGresult **res)
{
    PGresult *r;

    if (res)
        *res = NULL;
    if (!PQsendQuery(c, sql)) {
        log_pg("schema", c, NULL);
        return DZ_ERR_DB;
    }
    r = wait_result(c, p->statement_timeout_ms);
    if (!r || PQresultStatus(r) != want) {
        log_pg("schema", c, r);
        PQclear(r);
        return DZ_ERR_DB;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

/* Create the schema in an empty database, refuse a newer one.  The
 * existence checks come before any CREATE so a role without CREATE rights
 * can run against a database an administrator migrated. */
static int schema(struct pg *p, PGconn *c, int *from)
{
    PGresult *r = NULL;
    int version = 0;
    int rc;

    *from = 0;
    rc = exec1(p, c, "BEGIN", PGRES_COMMAND_OK, NULL);
    if (rc == 0)
        rc = exec1(p, c, SCHEMA_LOCK_SQL, PGRES_TUPLES_OK, NULL);
    if (rc == 0)
        rc = exec1(p, c, "SELECT to_regclass('darvaza_schema') IS NOT NULL", PGRES_TUPLES_OK, &r);
    if (rc == 0 && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        PQclear(r);
        r = NULL;
        rc = exec1(p, c, "SELECT coalesce(max(version), 0) FROM darvaza_schema", PGRES_TUPLES_OK,
                   &r);
        if (rc == 0)
            version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    } else if (rc == 0) {
        rc = exec1(p, c, "CREATE TABLE darvaza_schema(version integer NOT NULL)", PGRES_COMMAND_OK,
                   NULL);
    }
    PQclear(r);
    *from = version;
    if (rc == 0 && version == 0)
        rc = exec1(p, c, schema_sql, PGRES_COMMAND_OK, NULL);
    /* A database from a newer (or foreign) schema is refused rather than
     * used with statements that may mean something else there. */
    if (rc == 0 && version != 0 && version != SCHEMA_VERSION) {
        dz_log(DZ_LOG_ERROR, "accounts_pg", "unknown schema version %d (want %d)", version,
               SCHEMA_VERSION);
        rc = DZ_ERR_DB;
    }
    if (rc == 0)
        rc = exec1(p, c, "COMMIT", PGRES_COMMAND_OK, NULL);
    if (rc < 0 && PQstatus(c) == CONNECTION_OK)
        exec1(p, c, "ROLLBACK", PGRES_COMMAND_OK, NULL);
    return rc;
}

/* libpq's parse errors quote the string, password included: parse it
 * ourselves first and say only that it does not parse. */
static int conninfo_ok(const char *conninfo)
{
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &perr);

    if (perr)
        PQfreemem(perr);
    if (!o) {
        dz_log(DZ_LOG_ERROR, "accounts_pg",
               "the conninfo is not a libpq connection string or URI (not shown: it may hold a "
               "password)");
        return DZ_ERR_DB;
    }
    for (PQconninfoOption *i = o; i->keyword; i++)
        if (i->val)
            dz_secret_wipe(i->val, strlen(i->val));
    PQconninfoFree(o);
    return 0;
}

static int pg_new(const struct dz_accounts_pg_params *prm, struct pg **out)
{
    struct pg *p;

    *out = NULL;
    if (!prm || !prm->conninfo || prm->pool < 1 || prm->statement_timeout_ms < 1)
        return DZ_ERR_INVAL;
    if (conninfo_ok(prm->conninfo) < 0)
        return DZ_ERR_DB;
    p = calloc(1, sizeof(*p));
    if (!p)
        return DZ_ERR_NOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return DZ_ERR_NOMEM;
    }
    if (pthread_cond_init(&p->freed, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return DZ_ERR_NOMEM;
    }
    p->n = prm->pool;
    p->statement_timeout_ms = prm->statement_timeout_ms;
    /* libpq takes whole seconds (and treats 1 as 2). */
    snprintf(p->connect_timeout_s, sizeof(p->connect_timeout_s), "%u",
             (prm->connect_timeout_ms + 999) / 1000);
    /* The server's own limit too, so a statement we stopped waiting for
     * does not keep its locks running on the server. */
    snprintf(p->options, sizeof(p->options), "-c statement_timeout=%u", prm->statement_timeout_ms);
    p->slots = calloc(p->n, sizeof(*p->slots));
    p->conninfo = strdup(prm->conninfo);
    if (!p->slots || !p->conninfo) {
        pg_free(p);
        return DZ_ERR_NOMEM;
    }
    *out = p;
    return 0;
}

int dz_accounts_pg_migrate(const struct dz_accounts_pg_params *prm, int *from, int *to)
{
    struct pg *p = NULL;
    PGconn *c;
    int rc;

    *from = 0;
    *to = SCHEMA_VERSION;
    rc = pg_new(prm, &p);
    if (rc < 0)
        return rc;
    c = pg_connect(p);
    rc = c ? schema(p, c, from) : DZ_ERR_DB;
    if (c)
        PQfinish(c);
    pg_free(p);
    return rc;
}

int dz_accounts_pg_open(const struct dz_accounts_pg_params *prm, void **impl)
{
    struct pg *p = NULL;
    PGconn *c;
    int from = 0;
    int rc;

    *impl = NULL;
    rc = pg_new(prm, &p);
    if (rc < 0)
        return rc;
    /* The first connection checks (or creates) the schema and stays in the
     * pool; the others connect on first use. */
    c = pg_connect(p);
    rc = c ? schema(p, c, &from) : DZ_ERR_DB;
    if (rc == 0)
        rc = prepare_all(p, c);
    if (rc < 0) {
        if (c)
            PQfinish(c);
        pg_free(p);
        return rc;
    }
    p->slots[0].conn = c;
    *impl = p;
    return 0;
}

const struct dz_accounts_ops dz_accounts_pg_ops = {
    .name = "postgresql",
    .get = pg_get,
    .insert = pg_insert,
    .advance_totp = pg_advance,
    .set_password = pg_set_password,
    .swap_password = pg_swap_password,
    .set_totp = pg_set_totp,
    .remove = pg_remove,
    .free = pg_free,
};
