/*
 * benchtime.h - the clock, the sort order and the "ITERATIONS THREADS"
 * arguments the micro-benchmarks in tests/bench/ C files share (each is built by hand with the cc
 * line at its top; header-only so that line needs nothing more).
 */
#ifndef DZ_BENCHTIME_H
#define DZ_BENCHTIME_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* "PROG ITERATIONS THREADS": both whole numbers, at least one iteration
 * and 1 to max_threads threads.  false (the usage said) otherwise. */
static inline bool bench_iters_threads(int argc, char **argv, unsigned long *iters,
                                       unsigned *threads, unsigned max_threads)
{
    char *end1 = NULL, *end2 = NULL;
    unsigned long t = 0;

    if (argc >= 3) {
        *iters = strtoul(argv[1], &end1, 10);
        t = strtoul(argv[2], &end2, 10);
    }
    if (argc < 3 || *end1 || *end2 || *iters == 0 || t < 1 || t > max_threads) {
        fprintf(stderr, "usage: %s ITERATIONS THREADS (1 to %u)\n", argv[0], max_threads);
        return false;
    }
    *threads = (unsigned)t;
    return true;
}

#endif
