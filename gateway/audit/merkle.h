/*
 * merkle.h - the Merkle tree of RFC 9162 (Certificate Transparency 2.0)
 * over a sequence of leaves: leaf hash SHA-256(0x00 || data), node hash
 * SHA-256(0x01 || left || right), inclusion and consistency proofs and
 * their verification (RFC 9162 2.1.3, 2.1.4).
 *
 * The tree is kept as its complete nodes, level by level: level 0 holds the
 * leaf hashes, level k+1 node j the hash of level k nodes 2j and 2j+1.  A
 * tree of n leaves then has every node a proof needs (the root and the
 * right edge are recomputed from O(log n) complete nodes), and appending a
 * leaf writes at most one node per level.  Where the levels live (memory,
 * files) is the caller's: struct dz_merkle_levels.
 *
 * Verification is pure over its arguments (no I/O, no globals), so the
 * fuzz target and an outside checker can run it.  Any thread.
 */
#ifndef DZ_MERKLE_H
#define DZ_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DZ_MERKLE_HASH 32
/* Hashes in a proof: an inclusion path has at most ceil(log2 n) <= 64,
 * a consistency path at most 2 per level; anything longer is refused. */
#define DZ_MERKLE_PATH_MAX 128
#define DZ_MERKLE_LEVELS 64

/* SHA-256(0x00 || data) */
void dz_merkle_leaf_hash(const void *data, size_t len, unsigned char out[32]);
/* SHA-256(0x01 || l || r) */
void dz_merkle_node_hash(const unsigned char l[32], const unsigned char r[32],
                         unsigned char out[32]);

/*
 * Storage of the complete nodes.  Each returns 0 or a negative dz_err.
 *   count:  how many complete nodes level holds.
 *   get:    node index of level (index < count).
 *   append: add the next node of level.
 */
struct dz_merkle_levels {
    int (*count)(void *arg, unsigned level, uint64_t *out);
    int (*get)(void *arg, unsigned level, uint64_t index, unsigned char out[32]);
    int (*append)(void *arg, unsigned level, const unsigned char h[32]);
    void *arg;
};

/* Append one leaf hash and every node it completes.  0 or the storage's
 * error (the levels may then hold a leaf whose parents are missing: the
 * owner rebuilds them, see dz_merkle_repair). */
int dz_merkle_append(const struct dz_merkle_levels *t, const unsigned char leaf[32]);

/* Make each level k > 0 hold exactly count(k-1)/2 nodes, computing the
 * missing ones from the level below (after a crash between a leaf and its
 * parents).  Levels holding more nodes than that are an error the caller
 * must handle (DZ_ERR_STATE; their storage is cut by the owner). */
int dz_merkle_repair(const struct dz_merkle_levels *t);

/* The root of the first n leaves (n >= 1, n <= leaves stored).  0,
 * DZ_ERR_INVAL, or the storage's error. */
int dz_merkle_root(const struct dz_merkle_levels *t, uint64_t n, unsigned char out[32]);

/* Inclusion path of leaf index in the tree of the first n leaves (RFC 9162
 * 2.1.3.1), deepest first; path holds DZ_MERKLE_PATH_MAX hashes.  0,
 * DZ_ERR_INVAL (index >= n), or the storage's error. */
int dz_merkle_inclusion(const struct dz_merkle_levels *t, uint64_t index, uint64_t n,
                        unsigned char path[][32], size_t *path_len);

/* Consistency proof from the tree of m leaves to the tree of n (RFC 9162
 * 2.1.4.1), 1 <= m <= n.  0, DZ_ERR_INVAL, or the storage's error. */
int dz_merkle_consistency(const struct dz_merkle_levels *t, uint64_t m, uint64_t n,
                          unsigned char path[][32], size_t *path_len);

/* RFC 9162 2.1.3.2: true when leaf (a leaf hash) at index is in the tree of
 * size n with that root. */
bool dz_merkle_verify_inclusion(const unsigned char leaf[32], uint64_t index, uint64_t n,
                                const unsigned char path[][32], size_t path_len,
                                const unsigned char root[32]);

/* RFC 9162 2.1.4.2: true when the tree of size n with root new_root extends
 * the tree of size m with root old_root (1 <= m <= n; m == n needs an empty
 * path and equal roots). */
bool dz_merkle_verify_consistency(uint64_t m, uint64_t n, const unsigned char old_root[32],
                                  const unsigned char new_root[32], const unsigned char path[][32],
                                  size_t path_len);

/* Levels in memory (the CLI and the tests): a growing array per level. */
struct dz_merkle_mem {
    unsigned char *lv[DZ_MERKLE_LEVELS];
    uint64_t n[DZ_MERKLE_LEVELS];
    uint64_t cap[DZ_MERKLE_LEVELS];
};
/* The ops over m (zeroed by the caller, freed with dz_merkle_mem_cleanup). */
struct dz_merkle_levels dz_merkle_mem_levels(struct dz_merkle_mem *m);
void dz_merkle_mem_cleanup(struct dz_merkle_mem *m);

#endif
