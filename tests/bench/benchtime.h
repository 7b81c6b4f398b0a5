/*
 * benchtime.h - the clock and the sort order the micro-benchmarks in
 * tests/bench/ C files share (each is built by hand with the cc line at its top;
 * header-only so that line needs nothing more).
 */
#ifndef DZ_BENCHTIME_H
#define DZ_BENCHTIME_H

#include <time.h>

/* Monotonic wall time in seconds. */
static inline double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* qsort order of doubles, for medians. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

#endif
