/*
 * audit_restore.h - when the Merkle tree and the log disagree at start
 * (docs/transparency.md, "Derived, never trusted over the log"): what
 * differs, the operator's acknowledgement of a restore from a backup
 * (`darvaza audit accept-restore`), and the audit line that records the
 * restore in the history itself.
 *
 * The gateway never rebuilds a tree over a log that was cut or changed on
 * its own: that would sign fresh heads over an altered history.  It refuses
 * to start, naming the log, the seq and what differs.  An operator who
 * restored the log from a backup says so once with accept-restore, which
 * writes DIR/accept-restore.json bound to this very disagreement (the
 * tree's size and root, the log's last seq and the hash of its last line):
 * any later change to either makes it void.  The next start then moves the
 * tree aside (the acknowledgement with it, kept as evidence), rebuilds it
 * from the log and appends an "audit_restore" line naming the old tree and
 * the reason, which every later head covers.  Until that line is durable the
 * record waits in DIR/restore-pending.json, so a failure between the rebuild
 * and the append cannot lose it.
 */
#ifndef DZ_AUDIT_RESTORE_H
#define DZ_AUDIT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit/audit_proof.h"

#define DZ_AUDIT_ACCEPT_NAME "accept-restore.json"
#define DZ_AUDIT_PENDING_NAME "restore-pending.json"
#define DZ_AUDIT_REASON_MAX 512 /* bytes of an accept-restore reason */

/* How the tree and the log disagree. */
struct dz_audit_mismatch {
    uint64_t tree_size;         /* leaves in the tree */
    unsigned char root[32];     /* its root over them (zeros when empty) */
    uint64_t log_end;           /* the last seq the log holds (0: none) */
    unsigned char log_last[32]; /* SHA-256 of that line */
    uint64_t seq;               /* where they disagree (the first such seq) */
    bool readable;              /* the log reads from its first to its last line */
    char what[512];             /* what differs, for people */
};

/*
 * Compare a log with the tree_size leaves leaf(arg, index, out) gives: feed
 * dz_audit_scan_line every line of the history in order, from its first
 * line on (dz_audit_read_history from 0: seq 1, or the first seq of the
 * oldest segment left), then dz_audit_scan_finish with what the read
 * returned.  It fills m: the first seq whose line is not its leaf, or where
 * the log ends short of the tree, or where it cannot be read.  Returns 1
 * when they differ, 0 when they agree (m->what empty), <0 on an error
 * reading the tree.
 */
struct dz_audit_scan {
    uint64_t tree_size;
    int (*leaf)(void *arg, uint64_t index, unsigned char out[32]);
    void *arg;
    struct dz_audit_mismatch *m;
    uint64_t differ; /* the first seq whose line is not its leaf (0: none) */
    unsigned char tree_leaf[32];
    unsigned char line_leaf[32];
    int err;
};

void dz_audit_scan_init(struct dz_audit_scan *s, uint64_t tree_size,
                        int (*leaf)(void *arg, uint64_t index, unsigned char out[32]), void *arg,
                        struct dz_audit_mismatch *m);
int dz_audit_scan_line(void *scan, uint64_t seq, const char *line, size_t len);
int dz_audit_scan_finish(struct dz_audit_scan *s, int read_rc);

/* Write DIR/accept-restore.json for m with reason (1..DZ_AUDIT_REASON_MAX
 * printable bytes): written aside, fsync'ed, renamed.  0, DZ_ERR_INVAL
 * (reason), DZ_ERR_IO. */
int dz_audit_accept_write(const char *dir, const struct dz_audit_mismatch *m, const char *reason);

/* The acknowledgement in DIR for exactly m: 0 (*reason: a copy, free it),
 * DZ_ERR_NOTFOUND (none), DZ_ERR_STATE (one made for another state, or
 * unreadable: void), DZ_ERR_NOMEM. */
int dz_audit_accept_read(const char *dir, const struct dz_audit_mismatch *m, char **reason);

/* The "audit_restore" record: the old tree (size, root), its last signed
 * head (old_head NULL: none), where the log ended and where it differed,
 * the directory the old tree was kept in and the reason.  NULL: no memory. */
json_t *dz_audit_restore_record(const struct dz_audit_mismatch *m,
                                const struct dz_audit_sth *old_head, const char *kept_at,
                                const char *reason);

/* DIR/restore-pending.json: write (aside, fsync'ed, renamed; 0 or
 * DZ_ERR_IO), read (a new reference; NULL with *rc DZ_ERR_NOTFOUND when
 * there is none, DZ_ERR_STATE when it is not a restore record) and remove
 * once the line is durable. */
int dz_audit_pending_write(const char *dir, json_t *record);
json_t *dz_audit_pending_read(const char *dir, int *rc);
int dz_audit_pending_done(const char *dir);

#endif
