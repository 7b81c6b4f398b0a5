/*
 * merkle.c - RFC 9162 Merkle tree hashing, proofs and their verification
 * (see merkle.h).  Proof building reads complete nodes through the caller's
 * storage; verification touches nothing but its arguments.
 */
#include "audit/merkle.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/sha256.h"

#include "base/compat.h"

void dz_merkle_leaf_hash(const void *data, size_t len, unsigned char out[32])
{
    static const unsigned char zero = 0x00;
    const struct dz_sha256_part parts[2] = {{&zero, 1}, {data, len}};

    /* A failure leaves a zeroed hash that matches nothing (fail closed). */
    (void)dz_sha256_parts(parts, 2, out);
}

void dz_merkle_node_hash(const unsigned char l[32], const unsigned char r[32],
                         unsigned char out[32])
{
    static const unsigned char one = 0x01;
    const struct dz_sha256_part parts[3] = {{&one, 1}, {l, 32}, {r, 32}};

    (void)dz_sha256_parts(parts, 3, out);
}

/* The largest power of two strictly below n (n >= 2). */
static uint64_t split_of(uint64_t n)
{
    return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static bool is_pow2(uint64_t n)
{
    return n && (n & (n - 1)) == 0;
}

int dz_merkle_append(const struct dz_merkle_levels *t, const unsigned char leaf[32])
{
    unsigned char l[32];
    unsigned char r[32];
    unsigned char h[32];
    int rc = t->append(t->arg, 0, leaf);

    for (unsigned level = 0; rc == 0 && level + 1 < DZ_MERKLE_LEVELS; level++) {
        uint64_t c = 0;
        if ((rc = t->count(t->arg, level, &c)) != 0 || c % 2 == 1)
            break;
        if ((rc = t->get(t->arg, level, c - 2, l)) != 0 ||
            (rc = t->get(t->arg, level, c - 1, r)) != 0)
            break;
        dz_merkle_node_hash(l, r, h);
        rc = t->append(t->arg, level + 1, h);
    }
    return rc;
}

int dz_merkle_repair(const struct dz_merkle_levels *t)
{
    unsigned char l[32];
    unsigned char r[32];
    unsigned char h[32];
    int rc = 0;

    for (unsigned level = 1; rc == 0 && level < DZ_MERKLE_LEVELS; level++) {
        uint64_t below = 0;
        uint64_t have = 0;
        if ((rc = t->count(t->arg, level - 1, &below)) != 0 ||
            (rc = t->count(t->arg, level, &have)) != 0)
            break;
        if (have > below / 2)
            return DZ_ERR_STATE;
        for (uint64_t i = have; rc == 0 && i < below / 2; i++) {
            if ((rc = t->get(t->arg, level - 1, 2 * i, l)) == 0 &&
                (rc = t->get(t->arg, level - 1, 2 * i + 1, r)) == 0) {
                dz_merkle_node_hash(l, r, h);
                rc = t->append(t->arg, level, h);
            }
        }
        if (below < 2)
            break;
    }
    return rc;
}

/* MTH(D[lo:hi]) for a range the RFC's recursion produces: a perfect range
 * there is always aligned to its size, so it is one stored node. */
static int range_hash(const struct dz_merkle_levels *t, uint64_t lo, uint64_t hi,
                      unsigned char out[32])
{
    uint64_t size = hi - lo;
    unsigned char l[32];
    unsigned char r[32];
    uint64_t k;
    int rc;

    if (size == 0 || hi < lo)
        return DZ_ERR_INVAL;
    if (is_pow2(size) && lo % size == 0) {
        unsigned level = (unsigned)__builtin_ctzll(size);
        return t->get(t->arg, level, lo >> level, out);
    }
    k = split_of(size);
    if ((rc = range_hash(t, lo, lo + k, l)) != 0 || (rc = range_hash(t, lo + k, hi, r)) != 0)
        return rc;
    dz_merkle_node_hash(l, r, out);
    return 0;
}

static int stored_leaves(const struct dz_merkle_levels *t, uint64_t n)
{
    uint64_t have = 0;
    int rc = t->count(t->arg, 0, &have);

    if (rc != 0)
        return rc;
    return n >= 1 && n <= have ? 0 : DZ_ERR_INVAL;
}

int dz_merkle_root(const struct dz_merkle_levels *t, uint64_t n, unsigned char out[32])
{
    int rc = stored_leaves(t, n);

    return rc != 0 ? rc : range_hash(t, 0, n, out);
}

static int push(unsigned char path[][32], size_t *len, const unsigned char h[32])
{
    if (*len >= DZ_MERKLE_PATH_MAX)
        return DZ_ERR_TOOBIG;
    memcpy(path[(*len)++], h, 32);
    return 0;
}

/* PATH(m, D[lo:hi]), RFC 9162 2.1.3.1. */
static int path_rec(const struct dz_merkle_levels *t, uint64_t m, uint64_t lo, uint64_t hi,
                    unsigned char path[][32], size_t *len)
{
    unsigned char h[32];
    uint64_t k;
    int rc;

    if (hi - lo == 1)
        return 0;
    k = split_of(hi - lo);
    if (m < k)
        rc = path_rec(t, m, lo, lo + k, path, len);
    else
        rc = path_rec(t, m - k, lo + k, hi, path, len);
    if (rc == 0)
        rc = m < k ? range_hash(t, lo + k, hi, h) : range_hash(t, lo, lo + k, h);
    return rc != 0 ? rc : push(path, len, h);
}

int dz_merkle_inclusion(const struct dz_merkle_levels *t, uint64_t index, uint64_t n,
                        unsigned char path[][32], size_t *path_len)
{
    int rc;

    *path_len = 0;
    if (index >= n)
        return DZ_ERR_INVAL;
    if ((rc = stored_leaves(t, n)) != 0)
        return rc;
    rc = path_rec(t, index, 0, n, path, path_len);
    if (rc != 0)
        *path_len = 0;
    return rc;
}

/* SUBPROOF(m, D[lo:hi], b), RFC 9162 2.1.4.1. */
static int sub_rec(const struct dz_merkle_levels *t, uint64_t m, uint64_t lo, uint64_t hi, bool b,
                   unsigned char path[][32], size_t *len)
{
    unsigned char h[32];
    uint64_t k;
    int rc;

    if (m == hi - lo) {
        if (b)
            return 0;
        rc = range_hash(t, lo, hi, h);
        return rc != 0 ? rc : push(path, len, h);
    }
    k = split_of(hi - lo);
    if (m <= k) {
        rc = sub_rec(t, m, lo, lo + k, b, path, len);
        if (rc == 0)
            rc = range_hash(t, lo + k, hi, h);
    } else {
        rc = sub_rec(t, m - k, lo + k, hi, false, path, len);
        if (rc == 0)
            rc = range_hash(t, lo, lo + k, h);
    }
    return rc != 0 ? rc : push(path, len, h);
}

int dz_merkle_consistency(const struct dz_merkle_levels *t, uint64_t m, uint64_t n,
                          unsigned char path[][32], size_t *path_len)
{
    int rc;

    *path_len = 0;
    if (m < 1 || m > n)
        return DZ_ERR_INVAL;
    if ((rc = stored_leaves(t, n)) != 0)
        return rc;
    rc = sub_rec(t, m, 0, n, true, path, path_len);
    if (rc != 0)
        *path_len = 0;
    return rc;
}

bool dz_merkle_verify_inclusion(const unsigned char leaf[32], uint64_t index, uint64_t n,
                                const unsigned char path[][32], size_t path_len,
                                const unsigned char root[32])
{
    uint64_t fn = index;
    uint64_t sn;
    unsigned char r[32];

    if (index >= n || path_len > DZ_MERKLE_PATH_MAX)
        return false;
    sn = n - 1;
    memcpy(r, leaf, 32);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            dz_merkle_node_hash(path[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            dz_merkle_node_hash(r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, 32) == 0;
}

bool dz_merkle_verify_consistency(uint64_t m, uint64_t n, const unsigned char old_root[32],
                                  const unsigned char new_root[32], const unsigned char path[][32],
                                  size_t path_len)
{
    uint64_t fn;
    uint64_t sn;
    unsigned char fr[32];
    unsigned char sr[32];
    size_t i = 0;

    if (m < 1 || m > n || path_len > DZ_MERKLE_PATH_MAX)
        return false;
    if (m == n)
        return path_len == 0 && memcmp(old_root, new_root, 32) == 0;
    if (path_len == 0)
        return false;
    fn = m - 1;
    sn = n - 1;
    /* A power-of-two old tree is itself a node of the new one: its root is
     * the path's implicit first element. */
    if (is_pow2(m)) {
        memcpy(fr, old_root, 32);
    } else {
        memcpy(fr, path[0], 32);
        i = 1;
    }
    memcpy(sr, fr, 32);
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < path_len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            dz_merkle_node_hash(path[i], fr, fr);
            dz_merkle_node_hash(path[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            dz_merkle_node_hash(sr, path[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, 32) == 0 && memcmp(sr, new_root, 32) == 0;
}

/* ------------------------------------------------------------ in memory */

static int mem_count(void *arg, unsigned level, uint64_t *out)
{
    struct dz_merkle_mem *m = arg;

    *out = level < DZ_MERKLE_LEVELS ? m->n[level] : 0;
    return 0;
}

static int mem_get(void *arg, unsigned level, uint64_t index, unsigned char out[32])
{
    struct dz_merkle_mem *m = arg;

    if (level >= DZ_MERKLE_LEVELS || index >= m->n[level])
        return DZ_ERR_NOTFOUND;
    memcpy(out, m->lv[level] + index * 32, 32);
    return 0;
}

static int mem_append(void *arg, unsigned level, const unsigned char h[32])
{
    struct dz_merkle_mem *m = arg;

    if (level >= DZ_MERKLE_LEVELS)
        return DZ_ERR_TOOBIG;
    if (m->n[level] == m->cap[level]) {
        uint64_t cap = m->cap[level] ? m->cap[level] * 2 : 64;
        unsigned char *p = realloc(m->lv[level], cap * 32);
        if (!p)
            return DZ_ERR_NOMEM;
        m->lv[level] = p;
        m->cap[level] = cap;
    }
    memcpy(m->lv[level] + m->n[level]++ * 32, h, 32);
    return 0;
}

struct dz_merkle_levels dz_merkle_mem_levels(struct dz_merkle_mem *m)
{
    return (struct dz_merkle_levels){mem_count, mem_get, mem_append, m};
}

void dz_merkle_mem_cleanup(struct dz_merkle_mem *m)
{
    for (unsigned i = 0; i < DZ_MERKLE_LEVELS; i++)
        free(m->lv[i]);
    memset(m, 0, sizeof(*m));
}
