/* test_buf.c - lib/base/buf.c's dz_buf_reserve: room made once, contents and
 * the trailing NUL kept, a size over the buffer's maximum refused (and the
 * buffer freed, as a refused append frees it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"

static void test_reserve(void **state)
{
    struct dz_buf b;
    char *data;

    (void)state;
    dz_buf_init(&b, 4096);
    assert_int_equal(dz_buf_reserve(&b, 1000), 0);
    assert_non_null(b.data);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    assert_string_equal(dz_buf_cstr(&b), "");
    data = b.data;
    /* Appends within the reserve do not move the block. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(dz_buf_append(&b, "0123456789", 10), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 1000);
    /* Smaller than what is there: nothing changes. */
    assert_int_equal(dz_buf_reserve(&b, 10), 0);
    assert_ptr_equal(b.data, data);
    /* Growing keeps the contents and the NUL. */
    assert_int_equal(dz_buf_reserve(&b, 3000), 0);
    assert_true(b.cap >= 3001);
    assert_int_equal(b.len, 1000);
    assert_memory_equal(b.data + 990, "0123456789", 10);
    assert_int_equal(b.data[1000], '\0');
    /* Over the maximum: refused, and the buffer is freed. */
    assert_int_equal(dz_buf_reserve(&b, 4097), DZ_ERR_TOOBIG);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(dz_buf_reserve(&b, 4096), 0);
    assert_int_equal(dz_buf_append(&b, "x", 1), 0);
    assert_string_equal(dz_buf_cstr(&b), "x");
    dz_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
