/*
 * test_audit_instance.c - every audit line carries the instance id of the
 * gateway that wrote it (several gateways, one chain each), and the
 * verifier refuses a line whose instance is not its segment's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"

static char tmpdir[64];
static char path[128];
static atomic_uint done_count;

static void on_done(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, 0);
    atomic_fetch_add(&done_count, 1);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Write n records as instance inst, close, and read the file back. */
static char *write_log(const char *inst, unsigned n, size_t *len)
{
    struct dz_audit *a = NULL;
    struct dz_audit_rotation rot;
    FILE *f;
    char *data;
    long sz;

    atomic_store(&done_count, 0);
    assert_int_equal(dz_audit_open(path, &a), 0);
    memset(&rot, 0, sizeof(rot));
    rot.instance = inst;
    assert_int_equal(dz_audit_set_rotation(a, &rot), 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(dz_audit_append(a, json_pack("{s:s, s:I}", "type", "forward", "n", i),
                                         NULL, on_done, NULL),
                         0);
    for (int i = 0; i < 5000 && atomic_load(&done_count) < n; i++)
        sleep_ms(2);
    assert_int_equal(atomic_load(&done_count), n);
    dz_audit_close(a);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    sz = ftell(f);
    assert_true(sz > 0);
    rewind(f);
    data = malloc((size_t)sz + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)sz, f), (size_t)sz);
    data[sz] = '\0';
    fclose(f);
    unlink(path);
    *len = (size_t)sz;
    return data;
}

static void every_line_names_its_instance(void **state)
{
    size_t len = 0;
    char *log = write_log("gw-a", 5, &len);
    struct dz_audit_report r;
    unsigned lines = 0;

    (void)state;
    for (char *l = log; *l; lines++) {
        char *nl = strchr(l, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_non_null(strstr(l, "\"instance\":\"gw-a\""));
        *nl = '\n';
        l = nl + 1;
    }
    /* The segment header and the five records. */
    assert_int_equal(lines, 6);
    assert_int_equal(dz_audit_verify_buf(log, len, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 0);
    assert_string_equal(r.header.instance, "gw-a");
    free(log);
}

/* A record that already names an instance keeps it, and the verifier finds
 * that it is not the segment's: the line is named, not the next one. */
static void a_line_of_another_instance_is_refused(void **state)
{
    size_t len = 0;
    char *log = write_log("gw-a", 4, &len);
    struct dz_audit_report r;
    char *third;

    (void)state;
    third = strchr(strchr(log, '\n') + 1, '\n') + 1;
    third = strstr(third, "\"instance\":\"gw-a\"");
    assert_non_null(third);
    third[strlen("\"instance\":\"gw-")] = 'b';
    assert_int_equal(dz_audit_verify_buf(log, len, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 3);
    assert_string_equal(r.reason, "wrong_instance");
    free(log);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_auditinst_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(path, sizeof(path), "%s/audit.log", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    char p[160];

    (void)state;
    snprintf(p, sizeof(p), "%s/audit-keys.jwks", tmpdir);
    unlink(p);
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_line_names_its_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(a_line_of_another_instance_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
