/*
 * audit_tree.h - the Merkle tree of one audit history, kept on disk beside
 * the log, and its signed tree heads (docs/transparency.md).
 *
 * One tree per instance (per audit history): leaf i is the line with seq
 * i+1, whichever segment holds it, so rotation does not start a new tree
 * and a restart continues the old one.  The store is a directory
 * (AUDIT_FILE.tree by default, mode 0700):
 *   L00 .. L63     the complete nodes of each level (merkle.h), 32 bytes each
 *   heads.jsonl    every signed tree head, one JSON object a line
 * Everything in it can be rebuilt from the log: at open, files are cut to
 * whole hashes, missing parents recomputed, and lines the tree lacks are read
 * back from the log (the live file, then closed segments STEM-*-SEQ.log in
 * its directory).  A tree that disagrees with the log (a leaf that is not
 * the hash of its line, more leaves than lines, or a signed head it no
 * longer reproduces: the log was cut or changed) is not rebuilt: the open
 * fails, and only an operator's accept-restore (audit_restore.h) lets the
 * next open move it aside to DIR.bad-TIME, kept as evidence, rebuild it
 * and hand back the audit_restore record to append.
 *
 * THREADS: lines are added and heads signed by the audit writer thread (the
 * observer, dz_audit_tree_observe) or, before it runs, the main thread;
 * proofs are read by any thread (pool threads for /api/my/access): reads
 * never see a node before it was written.
 */
#ifndef DZ_AUDIT_TREE_H
#define DZ_AUDIT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "audit/audit_proof.h"
#include "audit/audit_restore.h"

struct dz_audit_tree;

/*
 * Open (create) the tree of the log at audit_path for instance, in dir
 * (NULL: audit_path + ".tree"), repair it and catch up with the log.
 * 0, DZ_ERR_STATE (the tree disagrees with the log and no valid
 * accept-restore is on file: *mismatch, when not NULL, says where and how;
 * logged as audit_tree_mismatch; nothing moved, nothing signed), DZ_ERR_IO
 * (cannot create or read; logged), DZ_ERR_NOMEM.  Main thread, before the
 * writer writes (or it catches up again at the next batch).  After an
 * accepted restore, dz_audit_tree_restore_pending holds the record to append.
 */
int dz_audit_tree_open(const char *audit_path, const char *dir, const char *instance,
                       struct dz_audit_tree **out, struct dz_audit_mismatch *mismatch);

/*
 * `darvaza audit accept-restore`: with the gateway stopped, hold the tree
 * against the log as an open would and, when they disagree, write the
 * acknowledgement for exactly this disagreement with reason.  0 (written; m
 * says what was accepted), DZ_ERR_NOTFOUND (no tree, or it agrees: nothing
 * to accept), DZ_ERR_PARSE (the log does not read through: m says where; a
 * rebuild could not use it), DZ_ERR_INVAL (reason), DZ_ERR_IO, DZ_ERR_NOMEM.
 */
int dz_audit_tree_accept_restore(const char *audit_path, const char *dir, const char *reason,
                                 struct dz_audit_mismatch *m);

/* The audit_restore record an accepted restore (at this open, or at an
 * earlier one whose line never reached the log) still has to append, or
 * NULL (borrowed).  Once its line is durable, dz_audit_tree_restore_done
 * forgets it (0 or DZ_ERR_IO).  Main thread. */
json_t *dz_audit_tree_restore_pending(struct dz_audit_tree *t);
int dz_audit_tree_restore_done(struct dz_audit_tree *t);

/* The observer to give dz_audit_set_observer (arg: the tree): adds the
 * batch's lines (catching up from the log first if lines are missing) and
 * signs a tree head when the batch carries a signer and the tree grew since
 * its last head.  A failure is logged; the tree then stops growing and its
 * head stays where it was (proofs keep working up to it) until a restart
 * catches up.  Writer thread. */
void dz_audit_tree_observe(void *tree, const struct dz_audit_batch *b);

/* Leaves in the tree now.  Any thread. */
uint64_t dz_audit_tree_size(struct dz_audit_tree *t);

/* The latest signed tree head.  0 or DZ_ERR_NOTFOUND (none signed yet).
 * Any thread. */
int dz_audit_tree_head(struct dz_audit_tree *t, struct dz_audit_sth *out);

/* The inclusion path of the line seq in the tree of size tree_size (a
 * head's size).  0, DZ_ERR_INVAL (seq 0 or > tree_size, or tree_size over
 * the stored leaves), DZ_ERR_IO.  Any thread. */
int dz_audit_tree_inclusion(struct dz_audit_tree *t, uint64_t seq, uint64_t tree_size,
                            unsigned char path[][32], size_t *path_len);

/* The last head in DIR/heads.jsonl of instance (NULL: of any), whether or
 * not the tree reproduces it (at open, what was signed is what the tree
 * must still be).  false: none, or no such file.  Blocking file I/O. */
bool dz_audit_tree_last_head(const char *dir, const char *instance, struct dz_audit_sth *out);

/* The head of size size this tree published (heads.jsonl), of its
 * instance and whose root it reproduces.  0, DZ_ERR_NOTFOUND (none),
 * DZ_ERR_PARSE (heads.jsonl damaged where it was looked), DZ_ERR_IO.
 * Blocking file I/O, O(log) reads; any thread. */
int dz_audit_tree_published(struct dz_audit_tree *t, uint64_t size, struct dz_audit_sth *out);

/* The RFC 9162 consistency proof from the tree of m leaves to that of n.
 * 0, DZ_ERR_INVAL (not 1 <= m <= n <= the stored leaves), DZ_ERR_IO.
 * Any thread. */
int dz_audit_tree_consistency(struct dz_audit_tree *t, uint64_t m, uint64_t n,
                              unsigned char path[][32], size_t *path_len);

/* Close and free.  NULL is a no-op.  After the writer has stopped. */
void dz_audit_tree_close(struct dz_audit_tree *t);

/*
 * Read the history of the log at audit_path from seq from on, calling
 * fn(arg, seq, line, len) for each line (no newline) in order: the closed
 * segments in its directory (by the first seq in their names), then the
 * live file; from 0: from the first line there is.  Stops at the first
 * non-zero fn return (returned), a seq that does not follow (DZ_ERR_STATE),
 * or the end (0).  DZ_ERR_NOTFOUND when no
 * file holds seq from; DZ_ERR_IO.  Blocking file I/O, any thread.
 */
int dz_audit_read_history(const char *audit_path, uint64_t from,
                          int (*fn)(void *arg, uint64_t seq, const char *line, size_t len),
                          void *arg);

/*
 * The leaves the next dz_audit_tree_open of the log at audit_path (dir
 * NULL: audit_path + ".tree") holds the log against: the whole hashes in
 * its L00.  Up to them the tree vouches for the log (the open refuses a log
 * whose line at that seq is not the leaf, and the chain ties every line
 * before it to that line); lines after them are added from the log as they
 * are, vouched for only by the log's own signed heads
 * (dz_audit_verify_history).  0 when L00 is missing or empty, or an
 * accept-restore is on file (the tree is then rebuilt from nothing).
 * Blocking file I/O.
 */
uint64_t dz_audit_tree_vouched(const char *audit_path, const char *dir);

/* What dz_audit_verify_history found. */
struct dz_audit_history_check {
    char path[4096];    /* the file holding the first bad line ("": none) */
    uint64_t line;      /* its line number in that file (1-based; 0: none) */
    const char *reason; /* as struct dz_audit_report; NULL when good */
    char detail[256];
    uint64_t lines;          /* good lines read */
    uint64_t heads_verified; /* head lines whose signatures verified */
    uint64_t unsigned_tail;  /* good lines after the last head */
    char head_path[4096];    /* the file holding the last head ("": none) */
    uint64_t head_line;      /* its line number in that file */
    uint64_t head_seq;       /* its seq */
};

/*
 * Verify the history of the log at audit_path as `darvaza audit verify`
 * does, from the file that holds seq from on (0: all of it): the closed
 * segments in seq order, then the live file, each continuing the chain of
 * the one before (the first file read is taken from its first line on,
 * from zeros when that is seq 1), every head line the
 * hash of the line before it and signed by keys->find(kid) (keys must not
 * be NULL: it is called for each head in chain order, so after a good
 * history its last call was for the last head).  0: read through, verdict
 * in out (reason NULL: intact); DZ_ERR_IO (out->path, out->detail say
 * where), DZ_ERR_NOMEM.  Blocking file I/O.
 */
int dz_audit_verify_history(const char *audit_path, uint64_t from, const struct dz_audit_keys *keys,
                            struct dz_audit_history_check *out);

#endif
