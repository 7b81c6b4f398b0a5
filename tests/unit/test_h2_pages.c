/* test_h2_pages.c - a worker's kept mapped blocks (lib/http/h2pages.c): a
 * block given back comes back zeroed (it held HPACK state and answers in
 * clear), only for its exact length, at most DZ_H2_PAGES_KEPT are kept, and
 * release gives them all back to the kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/httpd_int.h"

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Whether the page at p is mapped in this process. */
static bool is_mapped(void *p)
{
    unsigned char v;
    return mincore(p, (size_t)sysconf(_SC_PAGESIZE), &v) == 0;
}

static void test_given_back_comes_back_zeroed(void **state)
{
    unsigned char *a = dz_h2_pages_get(DZ_H2_REGION);
    unsigned char *b;

    (void)state;
    assert_non_null(a);
    assert_true(all_zero(a, DZ_H2_REGION));
    memset(a, 'S', DZ_H2_REGION); /* a session's secrets */
    dz_h2_pages_put(a, DZ_H2_REGION);
    b = dz_h2_pages_get(DZ_H2_REGION);
    assert_ptr_equal(b, a); /* kept, not mapped again */
    assert_true(all_zero(b, DZ_H2_REGION));
    dz_h2_pages_put(b, DZ_H2_REGION);
    dz_h2_pages_release();
    assert_false(is_mapped(b));
}

static void test_exact_length_only(void **state)
{
    unsigned char *a = dz_h2_pages_get(16384 + 4096);
    unsigned char *b;

    (void)state;
    assert_non_null(a);
    dz_h2_pages_put(a, 16384 + 4096);
    b = dz_h2_pages_get(4096); /* another length: a mapping of its own */
    assert_non_null(b);
    assert_ptr_not_equal(b, a);
    assert_true(all_zero(b, 4096));
    dz_h2_pages_put(b, 4096);
    dz_h2_pages_release();
    assert_false(is_mapped(a));
    assert_false(is_mapped(b));
}

static void test_bounded(void **state)
{
    void *p[DZ_H2_PAGES_KEPT + 2];
    size_t n = sizeof(p) / sizeof(p[0]);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        p[i] = dz_h2_pages_get(4096);
        assert_non_null(p[i]);
    }
    for (size_t i = 0; i < n; i++)
        dz_h2_pages_put(p[i], 4096);
    /* The first DZ_H2_PAGES_KEPT are kept; the rest went to the kernel. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(is_mapped(p[i]), i < DZ_H2_PAGES_KEPT);
    dz_h2_pages_release();
    for (size_t i = 0; i < n; i++)
        assert_false(is_mapped(p[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_given_back_comes_back_zeroed),
        cmocka_unit_test(test_exact_length_only),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
