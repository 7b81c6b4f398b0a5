/*
 * test_accessidx.c - the access index (state/accessidx_sqlite.c) and its
 * indexer (core/accesswatch.c) over a real audit writer: rows and watermark
 * move together or not at all (a locked database refuses the whole
 * transaction), paging newest first, duplicates kept once, only accesses
 * by someone else picked, and lines written while no indexer ran (or while
 * the database was locked) read back from the log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "base/err.h"
#include "core/accesswatch.h"
#include "state/accessidx.h"

static char dir[64];
static char db[128];
static char logpath[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dz_accessidx_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof(db), "%s/accounts.db", dir);
    snprintf(logpath, sizeof(logpath), "%s/audit.log", dir);
    /* The accounts module creates the file; the index only adds tables. */
    {
        sqlite3 *d = NULL;
        int rc = sqlite3_open(db, &d);
        sqlite3_close(d);
        if (rc != SQLITE_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[256];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct dz_accessidx_add row(const char *tgt, uint64_t seq, const char *ts, const char *line)
{
    return (struct dz_accessidx_add){tgt, seq, ts, line, strlen(line), NULL};
}

/* A database an older gateway made (no actor_name column): opening it adds
 * the column and fills it from each row's line; old lines without a name
 * stay NULL; new rows keep the name they are given. */
static void test_sqlite_actor_name_migration(void **state)
{
    void *impl = NULL;
    const struct dz_accessidx_ops *ops = &dz_accessidx_sqlite_ops;
    struct dz_accessidx_row out[DZ_ACCESSIDX_PAGE_MAX];
    size_t n = 0;
    sqlite3 *old = NULL;

    (void)state;
    assert_int_equal(sqlite3_open(db, &old), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(old,
                     "CREATE TABLE access_index (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " tgt TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL,"
                     " ts TEXT NOT NULL, line TEXT NOT NULL, UNIQUE (instance, seq));"
                     "INSERT INTO access_index (tgt, instance, seq, ts, line) VALUES"
                     " ('AAAAAAA', 'gw', 1, '2026-12-06T10:00:00.000Z', '{\"seq\":1}'),"
                     " ('AAAAAAA', 'gw', 2, '2026-12-06T10:00:01.000Z',"
                     "  '{\"seq\":2,\"name\":\"Aysel Məmmədova\"}');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(old);
    assert_int_equal(dz_accessidx_sqlite_open(db, &impl), 0);
    struct dz_accessidx_add a = row("AAAAAAA", 3, "2026-12-06T10:00:02.000Z", "{\"seq\":3}");
    a.actor_name = "Rəşad Əliyev";
    assert_int_equal(ops->add(impl, "gw", &a, 1, 3), 0);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 3);
    assert_true(out[0].has_actor_name);
    assert_string_equal(out[0].actor_name, "Rəşad Əliyev");
    assert_true(out[1].has_actor_name);
    assert_string_equal(out[1].actor_name, "Aysel Məmmədova");
    assert_false(out[2].has_actor_name);
    assert_string_equal(out[2].actor_name, "");
    dz_accessidx_rows_free(out, n);
    ops->free(impl);
    /* Opened again: the column is there, nothing is added twice. */
    assert_int_equal(dz_accessidx_sqlite_open(db, &impl), 0);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 3);
    dz_accessidx_rows_free(out, n);
    ops->free(impl);
}

static void test_sqlite_rows(void **state)
{
    void *impl = NULL;
    const struct dz_accessidx_ops *ops = &dz_accessidx_sqlite_ops;
    struct dz_accessidx_row out[DZ_ACCESSIDX_PAGE_MAX];
    size_t n = 0;
    uint64_t wm = 99;
    sqlite3 *locker = NULL;

    (void)state;
    assert_int_equal(dz_accessidx_sqlite_open(db, &impl), 0);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 0);
    struct dz_accessidx_add a[] = {
        row("AAAAAAA", 3, "2026-12-06T10:00:00.000Z", "{\"seq\":3}"),
        row("BBBBBBB", 4, "2026-12-06T10:00:01.000Z", "{\"seq\":4}"),
        row("AAAAAAA", 7, "2026-12-06T10:00:02.000Z", "{\"seq\":7}"),
    };
    assert_int_equal(ops->add(impl, "gw", a, 3, 9), 0);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 9);
    /* The same line again (a catch-up overlapping): kept once. */
    assert_int_equal(ops->add(impl, "gw", a + 2, 1, 9), 0);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].seq, 7); /* newest first */
    assert_int_equal(out[1].seq, 3);
    assert_string_equal(out[0].line, "{\"seq\":7}");
    int64_t cursor = out[0].id;
    dz_accessidx_rows_free(out, n);
    assert_int_equal(ops->list(impl, "AAAAAAA", cursor, 10, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].seq, 3);
    dz_accessidx_rows_free(out, n);
    assert_int_equal(ops->list(impl, "CCCCCCC", 0, 10, out, &n), 0);
    assert_int_equal(n, 0);
    /* Another person's row is no cursor: nothing, not the rows older than
     * it (which would date that person's row). */
    assert_int_equal(ops->list(impl, "BBBBBBB", 0, 10, out, &n), 0);
    assert_int_equal(n, 1);
    int64_t foreign = out[0].id;
    dz_accessidx_rows_free(out, n);
    assert_int_equal(ops->list(impl, "AAAAAAA", foreign, 10, out, &n), 0);
    assert_int_equal(n, 0);

    /* Another writer holds the database: nothing of the transaction lands,
     * neither the row nor the watermark.  (Busy timeout: 5 s.) */
    assert_int_equal(sqlite3_open(db, &locker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct dz_accessidx_add b = row("AAAAAAA", 12, "2026-12-06T10:00:03.000Z", "{\"seq\":12}");
    assert_int_equal(ops->add(impl, "gw", &b, 1, 12), DZ_ERR_DB);
    assert_int_equal(sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(locker);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 9);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 2);
    dz_accessidx_rows_free(out, n);
    /* The watermark never goes back. */
    assert_int_equal(ops->add(impl, "gw", NULL, 0, 5), 0);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 9);

    /* ... except when the audit log was restored to end at seq 5: this
     * instance's rows above it go (another instance's stay), the watermark
     * comes back to 5, and the new line at seq 7 is indexed with its own
     * bytes (it was kept out before: an existing (instance, seq) wins). */
    struct dz_accessidx_add other = row("AAAAAAA", 7, "2026-12-06T10:00:04.000Z", "{\"gw2\":7}");
    struct dz_accessidx_add again = row("AAAAAAA", 7, "2026-12-06T10:00:05.000Z", "{\"new\":7}");
    assert_int_equal(ops->add(impl, "gw2", &other, 1, 7), 0);
    assert_int_equal(ops->add(impl, "gw", &again, 1, 9), 0);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[1].line, "{\"seq\":7}");
    dz_accessidx_rows_free(out, n);
    assert_int_equal(ops->rewind(impl, "gw", 5), 0);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 5);
    assert_int_equal(ops->add(impl, "gw", &again, 1, 7), 0);
    assert_int_equal(ops->list(impl, "AAAAAAA", 0, 10, out, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].line, "{\"new\":7}");
    assert_string_equal(out[1].line, "{\"gw2\":7}");
    assert_int_equal(out[2].seq, 3);
    dz_accessidx_rows_free(out, n);
    /* A rewind past the watermark leaves it. */
    assert_int_equal(ops->rewind(impl, "gw", 50), 0);
    assert_int_equal(ops->watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 7);
    ops->free(impl);
}

static void on_done(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, 0);
}

static void offer(void *arg, const struct dz_audit_batch *b)
{
    dz_accesswatch_offer(arg, b);
}

/* Forward lines: seq 1 J reads P (access), 2 P reads P (own), 3 J refused
 * for P, 4 a system reads Q, 5 J's request naming nobody. */
static void write_lines(struct dz_accesswatch *w, struct dz_audit **out)
{
    struct dz_audit *a = NULL;

    assert_int_equal(dz_audit_open(logpath, &a), 0);
    if (w)
        dz_audit_set_observer(a, offer, w);
    assert_int_equal(
        dz_audit_append(a,
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "forward", "fin", "JJJJJJJ",
                                  "tgt", "PPPPPPP", "pur", "case 1", "decision", "allow"),
                        NULL, on_done, NULL),
        0);
    assert_int_equal(dz_audit_append(a,
                                     json_pack("{s:s,s:s,s:s}", "type", "forward", "fin", "PPPPPPP",
                                               "tgt", "PPPPPPP"),
                                     NULL, on_done, NULL),
                     0);
    assert_int_equal(dz_audit_append(a,
                                     json_pack("{s:s,s:s,s:s,s:s}", "type", "forward", "fin",
                                               "JJJJJJJ", "tgt", "PPPPPPP", "decision", "deny"),
                                     NULL, on_done, NULL),
                     0);
    assert_int_equal(dz_audit_append(a,
                                     json_pack("{s:s,s:s,s:s}", "type", "forward", "tgt", "QQQQQQQ",
                                               "service", "court"),
                                     NULL, on_done, NULL),
                     0);
    /* No target: looked at (the watermark passes it), never a row. */
    assert_int_equal(dz_audit_append(a,
                                     json_pack("{s:s,s:s,s:s}", "type", "forward", "fin", "JJJJJJJ",
                                               "service", "registry"),
                                     NULL, on_done, NULL),
                     0);
    *out = a;
}

static size_t rows_for(struct dz_accesswatch *w, const char *fin, size_t want)
{
    struct dz_accessidx_row out[DZ_ACCESSIDX_PAGE_MAX];
    size_t n = 0;

    /* The indexer is its own thread: wait for the state, bounded. */
    for (int i = 0; i < 500; i++) {
        assert_int_equal(dz_accesswatch_list(w, fin, 0, 100, out, &n), 0);
        dz_accessidx_rows_free(out, n);
        if (n >= want)
            break;
        usleep(10000);
    }
    return n;
}

static void test_watch_follows_and_catches_up(void **state)
{
    struct dz_accesswatch *w = NULL;
    struct dz_audit *a = NULL;
    void *impl = NULL;
    uint64_t wm = 0;

    (void)state;
    /* Lines written while no indexer runs (a crash before the index write). */
    write_lines(NULL, &a);
    dz_audit_close(a);
    assert_int_equal(dz_accessidx_sqlite_open(db, &impl), 0);
    assert_int_equal(dz_accesswatch_start(&dz_accessidx_sqlite_ops, impl, logpath, "gw", &w), 0);
    assert_int_equal(rows_for(w, "PPPPPPP", 2), 2); /* read back from the log */
    assert_int_equal(rows_for(w, "QQQQQQQ", 1), 1); /* a system's access */
    /* Then fed by the writer as lines are written. */
    write_lines(w, &a);
    dz_audit_close(a);
    assert_int_equal(rows_for(w, "PPPPPPP", 4), 4);
    assert_int_equal(rows_for(w, "JJJJJJJ", 1), 0); /* the actor is not the target */
    dz_accesswatch_stop(w);
    assert_int_equal(dz_accessidx_sqlite_open(db, &impl), 0);
    assert_int_equal(dz_accessidx_sqlite_ops.watermark(impl, "gw", &wm), 0);
    assert_int_equal(wm, 10); /* every line looked at, at the stop */
    dz_accessidx_sqlite_ops.free(impl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_actor_name_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_follows_and_catches_up, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
