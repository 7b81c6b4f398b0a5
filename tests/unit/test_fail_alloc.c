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
#include <string.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define UNDER_ASAN 1
#endif

#include <jansson.h>

#include "core/rctx.h"
#include "harness/fail_alloc.h"
#include "http/httpd_int.h"

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

/* jansson's blocks reach the hook once dz_json_wipe_frees() has run: rctx.c
 * hands jansson the address of malloc from a wrapped object, so of
 * __wrap_malloc.  (Before it, jansson calls libc's malloc from its own
 * library: not reached.)  A failed allocation inside a parse returns with
 * no error code set, never json_error_out_of_memory (jansson 2.14). */
static void test_jansson_reached(void **state)
{
    static const char text[] = "{\"fin\":\"5ABC123\"}";
    unsigned failures = fail_alloc_failures();
    json_error_t err;
    json_t *j;

    (void)state;
    dz_json_wipe_frees();
    /* jansson does not clear the code byte of err itself: zeroed here, as
     * filter_release (forward.c) does. */
    memset(&err, 0, sizeof(err));
    /* The lexer's first block: its 16-byte token buffer. */
    fail_alloc_arm(0, FAIL_ALLOC_EQUAL, 16);
    j = json_loadb(text, strlen(text), 0, &err);
    assert_null(j);
    assert_false(fail_alloc_armed());
    assert_int_equal(fail_alloc_failures(), failures + 1);
    assert_int_equal(json_error_code(&err), json_error_unknown);
    j = json_loadb(text, strlen(text), 0, &err); /* disarmed: parses */
    assert_non_null(j);
    json_decref(j);
}

/* nghttp2's blocks reach it too: the allocator h2session.c gives every
 * session calls malloc from a wrapped object. */
static void test_nghttp2_reached(void **state)
{
    nghttp2_mem *mem = dz_h2_mem();
    unsigned failures = fail_alloc_failures();
    void *p;

    (void)state;
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
    assert_null(mem->malloc(100, mem->mem_user_data));
    assert_int_equal(fail_alloc_failures(), failures + 1);
    p = mem->malloc(100, mem->mem_user_data);
    assert_non_null(p);
    mem->free(p, mem->mem_user_data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes_through),  cmocka_unit_test(test_equal_once),
        cmocka_unit_test(test_window),          cmocka_unit_test(test_other_thread),
        cmocka_unit_test(test_jansson_reached), cmocka_unit_test(test_nghttp2_reached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
