/*
 * cli_accounts.c - `darvaza accounts backup|restore`: a consistent copy of
 * the accounts database while the gateway runs, and its way back.
 *
 * Both go through SQLite's online backup API (sqlite3_backup_*), which
 * copies page by page under SQLite's own locks: a backup taken while the
 * gateway writes is one consistent snapshot (WAL mode: the gateway is not
 * blocked), which a plain `cp` of the file (without its -wal) is not.
 * Restore refuses to run under a live gateway (the audit log's lock tells)
 * unless --force, and checks integrity before and after.  Neither ever sees
 * the seed key: TOTP seeds stay encrypted in the copy, so seed.key must be
 * backed up on its own (docs/operations.md, "Back up and restore").
 * With accounts.backend postgresql both refuse and point to pg_dump.
 *
 * `darvaza accounts migrate -c CONFIG` creates or migrates the schema of the
 * configured backend (SQLite file or PostgreSQL) and exits: what the gateway
 * does at start, ahead of a roll-out or with a role that may create tables.
 * It never prints the conninfo (it holds the password).
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/err.h"
#include "core/accounts_setup.h"
#include "core/config.h"

#include "base/compat.h"

static int usage(FILE *to)
{
    fputs("usage: darvaza accounts backup -c CONFIG OUT [--force]\n"
          "       darvaza accounts restore -c CONFIG IN [--force]\n"
          "  backup   a consistent copy of accounts.database, safe while darvazad runs\n"
          "           (OUT must not exist unless --force; written 0600, then renamed)\n"
          "  restore  IN over accounts.database, after an integrity check; refused while\n"
          "           darvazad runs (its audit log is locked) unless --force\n"
          "       darvaza accounts migrate -c CONFIG\n"
          "  migrate  create the accounts schema in an empty database, or migrate an older\n"
          "           one (accounts.backend: sqlite or postgresql); a newer one is refused.\n"
          "           Idempotent.\n"
          "  Exit 0 done, 1 failed, 2 usage.\n",
          to);
    return 2;
}

/* "ok" from PRAGMA integrity_check, and the accounts table present. */
static bool db_sound(sqlite3 *db, char *why, size_t why_len)
{
    sqlite3_stmt *st = NULL;
    bool ok = false;

    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, why_len, "%s", sqlite3_errmsg(db));
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        snprintf(why, why_len, "integrity check failed: %s",
                 sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM accounts", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(why, why_len, "not an accounts database (%s)", sqlite3_errmsg(db));
        goto out;
    }
    ok = true;
out:
    sqlite3_finalize(st);
    return ok;
}

static long long account_count(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM accounts", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Copy every page of from into to (the whole database in one step: one
 * snapshot).  0 or the SQLite code. */
static int copy_db(sqlite3 *from, sqlite3 *to)
{
    sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
    int rc;

    if (!b)
        return sqlite3_errcode(to);
    /* Busy: the gateway is in a write transaction; try again shortly. */
    for (int tries = 0; tries < 200; tries++) {
        rc = sqlite3_backup_step(b, -1);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        sqlite3_sleep(50);
    }
    sqlite3_backup_finish(b);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* Is a gateway using this config running?  It holds an exclusive flock on
 * its audit log for its whole life (audit.c). */
static bool gateway_runs(const struct dz_config *cf)
{
    return dz_cli_log_in_use(cf->audit.file);
}

static int do_backup(const struct dz_config *cf, const char *out, bool force)
{
    char tmp[4096];
    char why[512] = "";
    sqlite3 *src = NULL;
    sqlite3 *dst = NULL;
    int fd = -1;
    int rc = 1;

    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr, "darvaza accounts backup: %s exists (--force to replace it)\n", out);
        return 1;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", out, (long)getpid()) >= sizeof(tmp))
        return 1;
    /* The copy holds password hashes and encrypted seeds: owner only, from
     * its first byte. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "darvaza accounts backup: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    close(fd);
    if (sqlite3_open_v2(cf->accounts.database, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "darvaza accounts backup: cannot open %s: %s\n", cf->accounts.database,
                src ? sqlite3_errmsg(src) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    if (copy_db(src, dst) != 0) {
        fprintf(stderr, "darvaza accounts backup: copy failed: %s\n", sqlite3_errmsg(dst));
        goto out;
    }
    /* The copy is a plain rollback-journal database: one self-contained file. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK ||
        !db_sound(dst, why, sizeof(why))) {
        fprintf(stderr, "darvaza accounts backup: the copy is not sound: %s\n",
                why[0] ? why : sqlite3_errmsg(dst));
        goto out;
    }
    printf("backed up %lld account(s) from %s to %s\n", account_count(dst), cf->accounts.database,
           out);
    sqlite3_close(dst);
    dst = NULL;
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0 || rename(tmp, out) != 0) {
        fprintf(stderr, "darvaza accounts backup: cannot write %s: %s\n", out, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    sqlite3_close(src);
    sqlite3_close(dst);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int do_restore(const struct dz_config *cf, const char *in, bool force)
{
    char why[512] = "";
    sqlite3 *src = NULL;
    sqlite3 *dst = NULL;
    int rc = 1;

    if (gateway_runs(cf) && !force) {
        fprintf(stderr,
                "darvaza accounts restore: a darvazad runs with this configuration (%s is "
                "locked); stop it first, or --force\n",
                cf->audit.file);
        return 1;
    }
    if (sqlite3_open_v2(in, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        !db_sound(src, why, sizeof(why))) {
        fprintf(stderr, "darvaza accounts restore: %s: %s\n", in,
                why[0] ? why : (src ? sqlite3_errmsg(src) : "out of memory"));
        goto out;
    }
    if (sqlite3_open_v2(cf->accounts.database, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        fprintf(stderr, "darvaza accounts restore: cannot open %s: %s\n", cf->accounts.database,
                dst ? sqlite3_errmsg(dst) : "out of memory");
        goto out;
    }
    (void)chmod(cf->accounts.database, 0600);
    sqlite3_busy_timeout(dst, 5000);
    if (copy_db(src, dst) != 0 || !db_sound(dst, why, sizeof(why))) {
        fprintf(stderr, "darvaza accounts restore: %s: %s\n", cf->accounts.database,
                why[0] ? why : sqlite3_errmsg(dst));
        goto out;
    }
    printf("restored %lld account(s) from %s into %s\n", account_count(dst), in,
           cf->accounts.database);
    rc = 0;
out:
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

static int do_migrate(const struct dz_config *cf)
{
    const char *what = "";
    int from = 0;
    int to = 0;
    int rc = dz_accounts_setup_migrate(&cf->accounts, &from, &to, &what);

    if (rc != 0) {
        fprintf(stderr, "darvaza: accounts: %s: cannot create or migrate the schema (%s)\n", what,
                dz_err_str(rc));
        return 1;
    }
    if (from == 0)
        printf("accounts: schema version %d created\n", to);
    else if (from == to)
        printf("accounts: schema version %d, up to date\n", to);
    else
        printf("accounts: schema migrated from version %d to %d\n", from, to);
    return 0;
}

int dz_cli_accounts(int argc, char **argv)
{
    const char *config = NULL;
    const char *file = NULL;
    const char *verb = argc > 1 ? argv[1] : "";
    bool force = false;
    struct dz_config *cf = NULL;
    char err[1024] = "";
    int rc;

    if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(verb, "backup") != 0 && strcmp(verb, "restore") != 0 && strcmp(verb, "migrate") != 0)
        return usage(stderr);
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return usage(stderr);
    }
    if (!config || (strcmp(verb, "migrate") == 0) == (file != NULL) ||
        (strcmp(verb, "migrate") == 0 && force))
        return usage(stderr);
    rc = dz_config_load(config, &cf, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "darvaza accounts: %s\n", err);
        return 1;
    }
    if (strcmp(verb, "migrate") == 0) {
        rc = do_migrate(cf);
    } else if (cf->accounts.backend == DZ_ACCOUNTS_POSTGRESQL) {
        /* The SQLite backup API has nothing to copy there; PostgreSQL's own
         * tools make the consistent copy. */
        fprintf(stderr,
                "darvaza accounts %s: accounts.backend is postgresql: use pg_dump / "
                "pg_restore (docs/operations.md, \"Accounts on PostgreSQL\")\n",
                verb);
        rc = 1;
    } else {
        rc = strcmp(verb, "backup") == 0 ? do_backup(cf, file, force) : do_restore(cf, file, force);
    }
    dz_config_free(cf);
    return rc;
}
