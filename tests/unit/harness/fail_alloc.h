/*
 * fail_alloc.h - make one malloc fail, to test what the code does when it
 * is out of memory.  Unit tests only.
 *
 * A unit test that includes this header is linked with -Wl,--wrap=malloc
 * (the Makefile finds it by the include, as it finds the harness's users):
 * every call to malloc made from the test, the harness, libgateway.a and
 * libdarvaza.a then reaches __wrap_malloc here, which hands it to
 * __real_malloc - glibc's malloc, or ASan's interceptor in the sanitizer
 * build (the interceptor is the malloc the dynamic linker finds first, so
 * ASan and valgrind still see every block) - unless armed.  Allocations
 * made inside shared libraries (jansson, libcurl, OpenSSL, glibc's own
 * strdup) and calloc/realloc are not wrapped: the hook reaches our code
 * only.
 *
 * Armed, it fails exactly one allocation, then disarms itself: the next
 * malloc made by the arming thread whose size equals (or is at least) size.
 * With after non-zero the hook first waits for a malloc of exactly `after`
 * bytes on that thread (let through), and only the allocations after it
 * are candidates: "the next buffer after the header block" stays exact
 * when the buffer's size alone is a common one.  Only the arming thread
 * counts, so the audit writer and the blocking pool never take a failure
 * meant for the loop; the loop of the request-layer harness is the test's
 * own thread.
 *
 * Deterministic arming: compute the size the code under test will ask for
 * (from the fields and bodies the test itself sends) and check afterwards
 * with fail_alloc_failures() that the failure was taken - a test whose
 * arming missed must fail, not pass without having tested anything.
 */
#ifndef DZ_TEST_FAIL_ALLOC_H
#define DZ_TEST_FAIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

enum fail_alloc_match {
    FAIL_ALLOC_EQUAL,    /* size == the armed size */
    FAIL_ALLOC_AT_LEAST, /* size >= the armed size */
};

/* Arm for the calling thread (replaces an earlier arming). */
void fail_alloc_arm(size_t after, enum fail_alloc_match how, size_t size);
/* Disarm the calling thread (no-op when not armed). */
void fail_alloc_disarm(void);
/* true while the calling thread's arming has not been taken. */
bool fail_alloc_armed(void);
/* Allocations failed by the hook since the program started (any thread). */
unsigned fail_alloc_failures(void);

#endif
