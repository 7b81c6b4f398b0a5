/*
 * test_accounts_pg.c - the PostgreSQL accounts backend without a server:
 * bad parameters are refused, and an unreachable or malformed conninfo fails
 * closed (DZ_ERR_DB, no backend) within the connect timeout.  The backend
 * against a real server is tests/integration/t_accounts_pg.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "state/accounts.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* stderr (where dz_log writes) goes to a file while fn runs; returns what
 * was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/dz_pg_log_XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    char *text = calloc(1, 65536);
    FILE *f;

    assert_true(fd >= 0 && saved >= 0 && text);
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    f = fopen(path, "r");
    assert_non_null(f);
    (void)!fread(text, 1, 65535, f);
    fclose(f);
    unlink(path);
    return text;
}

static void test_bad_params(void **state)
{
    struct dz_accounts_pg_params p = {"host=127.0.0.1", 0, 1000, 1000};
    void *impl = (void *)&p;
    int from = -1, to = -1;

    (void)state;
    assert_int_equal(dz_accounts_pg_open(NULL, &impl), DZ_ERR_INVAL);
    assert_null(impl);
    impl = (void *)&p;
    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_INVAL); /* pool 0 */
    assert_null(impl);
    p.pool = 2;
    p.conninfo = NULL;
    assert_int_equal(dz_accounts_pg_migrate(&p, &from, &to), DZ_ERR_INVAL);
    p.conninfo = "host=127.0.0.1";
    p.statement_timeout_ms = 0;
    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_INVAL);
    assert_null(impl);
}

static void test_unreachable_fails_closed(void **state)
{
    /* Port 1 on loopback: nothing listens, the connect is refused at once. */
    struct dz_accounts_pg_params p = {"host=127.0.0.1 port=1 dbname=x user=x password=not-logged",
                                      2, 2000, 500};
    void *impl = (void *)&p;
    int from = -1, to = -1;
    int64_t t0 = now_ms();

    (void)state;
    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_DB);
    assert_null(impl);
    assert_int_equal(dz_accounts_pg_migrate(&p, &from, &to), DZ_ERR_DB);
    assert_int_equal(from, 0);
    /* Bounded by connect_timeout (2 s each), not by the kernel's minutes. */
    assert_true(now_ms() - t0 < 5000);
}

static void open_malformed(void)
{
    struct dz_accounts_pg_params p = {"password=secret-one no-such-keyword=1", 1, 1000, 500};
    void *impl = (void *)&p;
    int from, to;

    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_DB);
    assert_null(impl);
    p.conninfo = "postgresql://u:secret-two@[bad";
    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_DB);
    assert_null(impl);
    assert_int_equal(dz_accounts_pg_migrate(&p, &from, &to), DZ_ERR_DB);
    /* A wrong password is the server's answer; here nobody listens. */
    p.conninfo = "host=127.0.0.1 port=1 user=u password=secret-three";
    assert_int_equal(dz_accounts_pg_open(&p, &impl), DZ_ERR_DB);
}

/* Refused, and the log says why without quoting the password. */
static void test_malformed_conninfo(void **state)
{
    char *log = capture_stderr(open_malformed);

    (void)state;
    assert_non_null(strstr(log, "not a libpq connection string"));
    assert_null(strstr(log, "secret-one"));
    assert_null(strstr(log, "secret-two"));
    assert_null(strstr(log, "secret-three"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_unreachable_fails_closed),
        cmocka_unit_test(test_malformed_conninfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
