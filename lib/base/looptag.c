/*
 * looptag.c - see looptag.h.  A thread-local flag: asking costs a load.
 */
#include "base/looptag.h"

#include "base/compat.h"

static _Thread_local bool on_loop;

void dz_thread_set_loop(bool on)
{
    on_loop = on;
}

bool dz_thread_on_loop(void)
{
    return on_loop;
}
