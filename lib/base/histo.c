/*
 * histo.c - the shared latency histogram (see histo.h).  One bucket per
 * observation: the cumulative "le" counts are summed when rendered, off the
 * path being measured.
 */
#include "base/histo.h"

#include "base/compat.h"

const uint64_t dz_histo_bound_us[DZ_HISTO_BUCKETS - 1] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
const char *const dz_histo_le[DZ_HISTO_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "+Inf"};

void dz_histo_observe(struct dz_histo *h, uint64_t us)
{
    unsigned b = 0;

    while (b < DZ_HISTO_BUCKETS - 1 && us > dz_histo_bound_us[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

uint64_t dz_histo_count(const struct dz_histo *h)
{
    uint64_t n = 0;

    for (unsigned b = 0; b < DZ_HISTO_BUCKETS; b++)
        n += atomic_load_explicit((atomic_uint_fast64_t *)&h->bucket[b], memory_order_relaxed);
    return n;
}
