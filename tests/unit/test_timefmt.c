/* test_timefmt.c - lib/base/timefmt: RFC 3339 UTC with milliseconds, the
 * per-thread cache of the second (a new second, a second gone back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/timefmt.h"

static void test_known_moments(void **state)
{
    char out[DZ_RFC3339_MS_MAX];

    (void)state;
    dz_rfc3339_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    dz_rfc3339_ms(1796647307123, out);
    assert_string_equal(out, "2026-12-07T12:41:47.123Z");
    /* the same second again: the cached part, new milliseconds */
    dz_rfc3339_ms(1796647307009, out);
    assert_string_equal(out, "2026-12-07T12:41:47.009Z");
    /* the next second, then back: the cache follows */
    dz_rfc3339_ms(1796647308999, out);
    assert_string_equal(out, "2026-12-07T12:41:48.999Z");
    dz_rfc3339_ms(1796647307050, out);
    assert_string_equal(out, "2026-12-07T12:41:47.050Z");
    /* a leap day, and before the epoch taken as the epoch */
    dz_rfc3339_ms(951782400000, out);
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
    dz_rfc3339_ms(-1, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
}

static void test_now_has_the_form(void **state)
{
    char out[DZ_RFC3339_MS_MAX];

    (void)state;
    dz_rfc3339_now(out);
    assert_int_equal(strlen(out), 24);
    assert_true(out[4] == '-' && out[10] == 'T' && out[19] == '.' && out[23] == 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_moments),
        cmocka_unit_test(test_now_has_the_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
