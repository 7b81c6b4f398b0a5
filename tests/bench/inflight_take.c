/*
 * inflight_take.c - the cost of a forward's slot (gateway/forward/inflight.h):
 * one take and one give, as each forwarded request does, for a caller with
 * nothing else in flight (its entry made and freed: the common case) and
 * for one that already has a request in flight (found in the table).
 * Not built by make; by hand:
 *   cc -std=c17 -D_GNU_SOURCE -O2 -Ilib -Igateway -Itests/bench \
 *      tests/bench/inflight_take.c build/libgateway.a build/libdarvaza.a \
 *      -lcrypto -ljansson -lpthread -o build/inflight_take &&
 *   build/inflight_take
 * Prints ns per take+give, the median of 7 rounds of 2,000,000.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchtime.h"
#include "forward/inflight.h"

#define ROUNDS 7
#define N 2000000

/* ns per take+give; with_other: the caller already has one in flight. */
static double round_ns(struct dz_policy_service *svc, bool with_other)
{
    static const char fin[] = "f5ABC123";
    struct dz_inflight_slot other;
    struct dz_inflight_slot s;
    double t0;
    double t1;

    if (with_other && dz_inflight_take(svc, fin, sizeof(fin) - 1, &other) != DZ_INFLIGHT_TAKEN)
        exit(1);
    t0 = wall_s();
    for (int i = 0; i < N; i++) {
        if (dz_inflight_take(svc, fin, sizeof(fin) - 1, &s) != DZ_INFLIGHT_TAKEN)
            exit(1);
        dz_inflight_give(&s);
    }
    t1 = wall_s();
    if (with_other)
        dz_inflight_give(&other);
    return (t1 - t0) * 1e9 / N;
}

int main(void)
{
    _Atomic unsigned count = 0;
    struct dz_policy_service svc = {.name = "bench", .in_flight = 512, .in_flight_per_caller = 128};
    double first[ROUNDS];
    double found[ROUNDS];

    svc.in_flight_now = &count;
    for (int r = 0; r < ROUNDS; r++) {
        first[r] = round_ns(&svc, false);
        found[r] = round_ns(&svc, true);
    }
    qsort(first, ROUNDS, sizeof(double), cmp_double);
    qsort(found, ROUNDS, sizeof(double), cmp_double);
    printf("take+give, the caller's first request: %.1f ns (median of %d rounds of %d)\n",
           first[ROUNDS / 2], ROUNDS, N);
    printf("take+give, the caller has one in flight: %.1f ns\n", found[ROUNDS / 2]);
    return 0;
}
