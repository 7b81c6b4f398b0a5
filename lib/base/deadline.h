/*
 * deadline.h - a point in time some milliseconds ahead on a given clock, in
 * the struct timespec form that pthread_cond_timedwait and
 * pthread_cond_clockwait take.  Header-only: a handful of lines that four
 * files (the audit writer, the access log, the access index, the
 * PostgreSQL pool) each had a copy of.
 */
#ifndef DZ_BASE_DEADLINE_H
#define DZ_BASE_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* ts + ms, carried into seconds. */
static inline void dz_ts_add_ms(struct timespec *ts, uint64_t ms)
{
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Now on clk, plus ms. */
static inline void dz_deadline_ms(clockid_t clk, uint64_t ms, struct timespec *out)
{
    clock_gettime(clk, out);
    dz_ts_add_ms(out, ms);
}

#endif
