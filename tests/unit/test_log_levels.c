/* test_log_levels.c - per-subsystem log levels (lib/base/log.c): the
 * subsystem is the folder of the logging file, its level overrides the
 * global one, clearing falls back to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"

static void test_sub_of(void **state)
{
    char sub[32];

    dz_log_sub_of("gateway/forward/forward.c", sub);
    assert_string_equal(sub, "forward");
    dz_log_sub_of("lib/http/httpc.c", sub);
    assert_string_equal(sub, "http");
    dz_log_sub_of("/abs/path/gateway/auth/login.c", sub);
    assert_string_equal(sub, "auth");
    dz_log_sub_of("main.c", sub);
    assert_string_equal(sub, "");
    dz_log_sub_of(NULL, sub);
    assert_string_equal(sub, "");
}

static void test_levels(void **state)
{
    dz_log_set_level(DZ_LOG_INFO);
    dz_log_clear_sub_levels();
    assert_false(dz_log_enabled_at("gateway/forward/forward.c", DZ_LOG_DEBUG));
    assert_true(dz_log_enabled_at("gateway/forward/forward.c", DZ_LOG_INFO));

    /* forward at debug: its debug lines pass, auth's do not. */
    assert_int_equal(dz_log_set_sub_level("forward", DZ_LOG_DEBUG), 0);
    assert_true(dz_log_enabled_at("gateway/forward/forward.c", DZ_LOG_DEBUG));
    assert_false(dz_log_enabled_at("gateway/auth/login.c", DZ_LOG_DEBUG));

    /* http at warn: quieter than the global level. */
    assert_int_equal(dz_log_set_sub_level("http", DZ_LOG_WARN), 0);
    assert_false(dz_log_enabled_at("lib/http/httpc.c", DZ_LOG_INFO));
    assert_true(dz_log_enabled_at("lib/http/httpc.c", DZ_LOG_WARN));
    assert_true(dz_log_enabled_at("gateway/auth/login.c", DZ_LOG_INFO));

    /* A reload clears them: the global level again. */
    dz_log_clear_sub_levels();
    assert_false(dz_log_enabled_at("gateway/forward/forward.c", DZ_LOG_DEBUG));
    assert_true(dz_log_enabled_at("lib/http/httpc.c", DZ_LOG_INFO));

    /* Bad names and levels are refused. */
    assert_int_equal(dz_log_set_sub_level("", DZ_LOG_DEBUG), DZ_ERR_INVAL);
    assert_int_equal(dz_log_set_sub_level(NULL, DZ_LOG_DEBUG), DZ_ERR_INVAL);
    assert_int_equal(dz_log_set_sub_level("forward", 7), DZ_ERR_INVAL);
}

static void test_table_bound(void **state)
{
    char name[16];
    int rc = 0;

    for (int i = 0; i < DZ_LOG_MAX_SUBS + 2 && rc == 0; i++) {
        snprintf(name, sizeof(name), "sub%d", i);
        rc = dz_log_set_sub_level(name, DZ_LOG_ERROR);
    }
    assert_int_equal(rc, DZ_ERR_FULL);
    dz_log_clear_sub_levels();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sub_of),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_table_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
