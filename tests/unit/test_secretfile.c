/* test_secretfile.c - base/secretfile.c, the one reader of secret files:
 * 0600 accepted, a file group or others can read, write or execute
 * refused, one trailing newline dropped, one line only, the size bound,
 * a missing file or a directory a clear error (with the reason in why). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/secret.h"
#include "base/secretfile.h"

static char dir[64];
static char path[128];

/* Write n bytes into path with mode (set after writing: umask-proof). */
static void put(const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* Read path with a bound of max; the secret (or NULL) in *out. */
static int get(size_t max, char **out, char *why, size_t why_cap)
{
    *out = (char *)1; /* must be overwritten */
    return dz_secret_file_read(path, max, out, why, why_cap);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_secretfile.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/secret", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_accepted(void **state)
{
    char *s = NULL;
    char why[256];

    (void)state;
    put("123456\n", 7, 0600);
    assert_int_equal(get(64, &s, why, sizeof(why)), 0);
    assert_string_equal(s, "123456");
    assert_string_equal(why, "");
    dz_secret_free_str(s);
    put("123456\r\n", 8, 0400);
    assert_int_equal(get(64, &s, why, sizeof(why)), 0);
    assert_string_equal(s, "123456");
    dz_secret_free_str(s);
    put("pass phrase", 11, 0600); /* no newline; spaces kept */
    assert_int_equal(get(11, &s, NULL, 0), 0);
    assert_string_equal(s, "pass phrase");
    dz_secret_free_str(s);
}

static void test_mode_refused(void **state)
{
    static const mode_t loose[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0666};
    char *s = NULL;
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        put("123456\n", 7, loose[i]);
        assert_int_equal(get(64, &s, why, sizeof(why)), DZ_ERR_DENIED);
        assert_null(s);
        assert_non_null(strstr(why, path));
        assert_non_null(strstr(why, "group or others"));
        assert_null(strstr(why, "123456")); /* never the content */
    }
}

static void test_size(void **state)
{
    char buf[DZ_SECRET_FILE_MAX + 8];
    char *s = NULL;
    char why[256];

    (void)state;
    memset(buf, '7', sizeof(buf));
    put(buf, 64, 0600);
    assert_int_equal(get(64, &s, why, sizeof(why)), 0);
    assert_int_equal(strlen(s), 64);
    dz_secret_free_str(s);
    put(buf, 65, 0600);
    assert_int_equal(get(64, &s, why, sizeof(why)), DZ_ERR_TOOBIG);
    assert_null(s);
    assert_non_null(strstr(why, "longer than 64 bytes"));
    put(buf, sizeof(buf), 0600); /* far too big: read stops at the bound */
    assert_int_equal(get(64, &s, why, sizeof(why)), DZ_ERR_TOOBIG);
    assert_int_equal(get(DZ_SECRET_FILE_MAX, &s, why, sizeof(why)), DZ_ERR_TOOBIG);
    /* The bound itself must be sane. */
    assert_int_equal(get(0, &s, why, sizeof(why)), DZ_ERR_INVAL);
    assert_int_equal(get(DZ_SECRET_FILE_MAX + 1, &s, why, sizeof(why)), DZ_ERR_INVAL);
    assert_null(s);
}

static void test_content_refused(void **state)
{
    static const struct {
        const char *what;
        const char *p;
        size_t n;
    } bad[] = {
        {"empty", "", 0},
        {"only a newline", "\n", 1},
        {"two trailing newlines", "1234\n\n", 6},
        {"two lines", "1234\n5678\n", 10},
        {"a CR inside", "12\r34", 5},
        {"a NUL inside",
         "12\0"
         "34",
         5},
    };
    char *s = NULL;
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(bad[i].p, bad[i].n, 0600);
        if (get(64, &s, why, sizeof(why)) != DZ_ERR_INVAL)
            fail_msg("accepted: %s", bad[i].what);
        assert_null(s);
        assert_non_null(strstr(why, "one non-empty line"));
    }
}

static void test_not_a_file(void **state)
{
    char *s = NULL;
    char why[256];
    char missing[160];

    (void)state;
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    s = (char *)1;
    assert_int_equal(dz_secret_file_read(missing, 64, &s, why, sizeof(why)), DZ_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(why, missing));
    assert_non_null(strstr(why, "No such file"));
    assert_int_equal(dz_secret_file_read(dir, 64, &s, why, sizeof(why)), DZ_ERR_IO);
    assert_non_null(strstr(why, "not a regular file"));
    /* A FIFO with no writer (swapped in for a key): refused at once, not a
     * reader blocked in open() forever. */
    {
        char fifo[160];
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        alarm(10); /* a reader blocked in open() ends the test (SIGALRM) */
        assert_int_equal(dz_secret_file_read(fifo, 64, &s, why, sizeof(why)), DZ_ERR_IO);
        alarm(0);
        assert_non_null(strstr(why, "not a regular file"));
        unlink(fifo);
    }
    assert_int_equal(dz_secret_file_read(NULL, 64, &s, why, sizeof(why)), DZ_ERR_INVAL);
    assert_int_equal(dz_secret_file_read(missing, 64, NULL, why, sizeof(why)), DZ_ERR_INVAL);
    /* A tiny why is cut, never overrun. */
    assert_int_equal(dz_secret_file_read(missing, 64, &s, why, 4), DZ_ERR_IO);
    assert_int_equal(strlen(why), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),   cmocka_unit_test(test_mode_refused),
        cmocka_unit_test(test_size),       cmocka_unit_test(test_content_refused),
        cmocka_unit_test(test_not_a_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
