/*
 * test_inflight_thread.c - a request-in-flight slot (gateway/forward/
 * inflight.h) given on another thread than the one that took it: the
 * caller's count lives in the taking thread's table, so the give must not
 * touch it from there.  A sanitizer build aborts on the spot; otherwise
 * the service's count comes back, the caller's stays (it keeps counting
 * against that caller: fail closed) and neither table is corrupted.  The
 * misuse runs in a child process, so an abort (or, before the check, a
 * crash) is seen as such.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forward/inflight.h"

static _Atomic unsigned now;
static struct dz_policy_service svc = {
    .name = "svc", .in_flight = 8, .in_flight_per_caller = 1, .in_flight_now = &now};

static void *give_there(void *arg)
{
    struct dz_inflight_slot *slot = arg;

    dz_inflight_give(slot);
    /* This thread's own table was not touched. */
    return (void *)(uintptr_t)dz_inflight_callers();
}

/* The child: take here, give on another thread; exit 0 when every count
 * is as documented, 1..5 naming the first that is not. */
static int misuse(void)
{
    struct dz_inflight_slot slot;
    struct dz_inflight_slot again;
    pthread_t t;
    void *their_callers = NULL;

    if (dz_inflight_take(&svc, "f5ABC123", 8, &slot) != DZ_INFLIGHT_TAKEN)
        return 1;
    if (pthread_create(&t, NULL, give_there, &slot) != 0 || pthread_join(t, &their_callers) != 0)
        return 2;
    if (dz_inflight_count(&svc) != 0 || slot.svc != NULL)
        return 3; /* the service's count given back, the slot spent */
    if ((uintptr_t)their_callers != 0 || dz_inflight_callers() != 1)
        return 4; /* the entry stays in the taking thread's table only */
    /* The caller's one slot still counts here: refused, not a second. */
    if (dz_inflight_take(&svc, "f5ABC123", 8, &again) != DZ_INFLIGHT_CALLER_FULL)
        return 5;
    return 0;
}

static void test_give_on_another_thread(void **state)
{
    pid_t pid;
    int st = 0;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(misuse());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (DZ_INFLIGHT_WRONG_THREAD_ABORTS) {
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGABRT);
    } else {
        if (WIFSIGNALED(st))
            fail_msg("the child died of signal %d", WTERMSIG(st));
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

/* The right way still works as before: taken and given on one thread. */
static void test_give_on_own_thread(void **state)
{
    struct dz_inflight_slot slot;

    (void)state;
    assert_int_equal(dz_inflight_take(&svc, "f5ABC123", 8, &slot), DZ_INFLIGHT_TAKEN);
    assert_int_equal(dz_inflight_count(&svc), 1);
    assert_int_equal(dz_inflight_callers(), 1);
    dz_inflight_give(&slot);
    assert_int_equal(dz_inflight_count(&svc), 0);
    assert_int_equal(dz_inflight_callers(), 0);
    dz_inflight_give(&slot); /* spent: a no-op */
    assert_int_equal(dz_inflight_count(&svc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_give_on_another_thread),
        cmocka_unit_test(test_give_on_own_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
