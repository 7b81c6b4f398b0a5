/*
 * fail_alloc.c - the malloc hook of fail_alloc.h.  Linked only into tests
 * built with -Wl,--wrap=malloc (they include fail_alloc.h).
 */
#include "fail_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

/* The linker points every call to malloc at __wrap_malloc, and
 * __real_malloc at the real one; neither has a header. */
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

/* Per thread: only the arming thread's allocations are candidates.  In the
 * executable's static TLS block, so reading it never allocates. */
static _Thread_local struct {
    bool armed;
    size_t after; /* 0: the window is open */
    enum fail_alloc_match how;
    size_t size;
} arm;

static atomic_uint failures;

void fail_alloc_arm(size_t after, enum fail_alloc_match how, size_t size)
{
    arm.after = after;
    arm.how = how;
    arm.size = size;
    arm.armed = true;
}

void fail_alloc_disarm(void)
{
    arm.armed = false;
}

bool fail_alloc_armed(void)
{
    return arm.armed;
}

unsigned fail_alloc_failures(void)
{
    return atomic_load(&failures);
}

void *__wrap_malloc(size_t size)
{
    if (arm.armed) {
        if (arm.after) {
            if (size == arm.after)
                arm.after = 0; /* this one passes; the next candidates follow */
        } else if (arm.how == FAIL_ALLOC_EQUAL ? size == arm.size : size >= arm.size) {
            arm.armed = false;
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
    }
    return __real_malloc(size);
}
