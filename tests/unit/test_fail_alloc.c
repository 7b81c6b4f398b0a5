/*
 * test_fail_alloc.c - the malloc hook of tests/unit/harness/fail_alloc.h:
 * unarmed it is malloc; armed it fails the one allocation it names, once,
 * on the arming thread only; the blocks it hands out come from the real
 * allocator (ASan's in the sanitizer build, so its checks still apply).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define UNDER_ASAN 1
#endif

#include "harness/fail_alloc.h"

static void test_passes_through(void **state)
{
    char *a = malloc(4000);

    (void)state;
    assert_non_null(a);
    assert_false(fail_alloc_armed());
#ifdef UNDER_ASAN
    /* A block from ASan's allocator has a poisoned red zone after it: the
     * hook's __real_malloc is ASan's interceptor, not a way around it. */
    assert_true(__asan_address_is_poisoned(a + 4000));
    assert_false(__asan_address_is_poisoned(a + 3999));
#endif
    free(a);
}

static void test_equal_once(void **state)
{
    unsigned failures = fail_alloc_failures();
    char *b;

    (void)state;
    fail_alloc_arm(0, FAIL_ALLOC_EQUAL, 4001);
    b = malloc(4000); /* not the size: passes */
    assert_non_null(b);
    free(b);
    b = malloc(4002);
    assert_non_null(b);
    free(b);
    assert_true(fail_alloc_armed());
    assert_null(malloc(4001));
    assert_false(fail_alloc_armed());
    b = malloc(4001); /* once only */
    assert_non_null(b);
    free(b);
    assert_int_equal(fail_alloc_failures(), failures + 1);
}

static void test_window(void **state)
{
    unsigned failures = fail_alloc_failures();
    char *b;
    char *opener;

    (void)state;
    /* Nothing fails before a block of the opening size. */
    fail_alloc_arm(333, FAIL_ALLOC_AT_LEAST, 1000);
    b = malloc(5000);
    assert_non_null(b);
    free(b);
    opener = malloc(333);
    assert_non_null(opener);
    b = malloc(999); /* under the bound */
    assert_non_null(b);
    free(b);
    assert_null(malloc(1000));
    assert_false(fail_alloc_armed());
    free(opener);
    /* Disarmed before it was taken: nothing fails. */
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
    fail_alloc_disarm();
    b = malloc(10);
    assert_non_null(b);
    free(b);
    assert_int_equal(fail_alloc_failures(), failures + 1);
}

static void *other_thread(void *arg)
{
    (void)arg;
    return malloc(777);
}

/* Another thread's allocation of the armed size is not the one meant. */
static void test_other_thread(void **state)
{
    pthread_t t;
    void *p = NULL;

    (void)state;
    fail_alloc_arm(0, FAIL_ALLOC_EQUAL, 777);
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &p), 0);
    assert_non_null(p);
    free(p);
    assert_true(fail_alloc_armed());
    fail_alloc_disarm();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes_through),
        cmocka_unit_test(test_equal_once),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_other_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
