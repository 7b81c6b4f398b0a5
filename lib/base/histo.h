/*
 * histo.h - a latency histogram any layer may keep and the metrics render
 * (gateway/core/metrics.c): fixed bucket bounds, relaxed atomic counts, no
 * lock, no allocation.  Lower layers (the audit writer, the blocking pool)
 * own one and expose it read-only; they never format it.
 *
 * The bounds are Prometheus' defaults (5 ms .. 10 s) with 100 us, 250 us,
 * 500 us, 1 ms and 2.5 ms added below, so fast operations (an fsync on a
 * good disk, a back end on loopback) are still told apart.
 */
#ifndef DZ_HISTO_H
#define DZ_HISTO_H

#include <stdatomic.h>
#include <stdint.h>

#define DZ_HISTO_BUCKETS 17 /* 16 bounds and +Inf */

struct dz_histo {
    atomic_uint_fast64_t bucket[DZ_HISTO_BUCKETS]; /* per bucket, not cumulative */
    atomic_uint_fast64_t sum_us;
};

/* Upper bounds in microseconds (DZ_HISTO_BUCKETS - 1 of them) and their
 * "le" label texts in seconds (DZ_HISTO_BUCKETS, the last "+Inf"). */
extern const uint64_t dz_histo_bound_us[DZ_HISTO_BUCKETS - 1];
extern const char *const dz_histo_le[DZ_HISTO_BUCKETS];

/* Count one observation of us microseconds.  Any thread; lock-free.  A
 * zero-filled struct (static, calloc) is an empty histogram. */
void dz_histo_observe(struct dz_histo *h, uint64_t us);

/* Observations so far (the sum of the buckets).  Any thread. */
uint64_t dz_histo_count(const struct dz_histo *h);

#endif
