/*
 * accesswatch.h - fills the access index (state/accessidx.h) from the audit
 * log, as the lines are written (docs/transparency.md).
 *
 * The audit writer hands every durable batch to dz_accesswatch_offer (a
 * copy of the bytes; no parsing on the writer thread).  The indexer's own
 * thread picks the lines in which someone reached for another person's
 * record ("type":"forward" with a "tgt" other than the actor's "fin") and
 * writes them with the index watermark in one transaction.  Nothing is
 * trusted to memory alone: when a transaction fails (retried with backoff,
 * 100 ms to 5 s), the queue overflows, or the gateway restarts (even after
 * kill -9 between the audit write and the index write), the indexer reads
 * the log back from its watermark (audit_tree.h, dz_audit_read_history), so
 * no audited access is missing from the index for longer than the database
 * is unavailable.
 */
#ifndef DZ_ACCESSWATCH_H
#define DZ_ACCESSWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "state/accessidx.h"

struct dz_accesswatch;

#define DZ_ACCESSWATCH_QUEUE_BYTES (16u << 20) /* copied batches waiting */

/*
 * Start the indexer for the history of the log at audit_path (instance:
 * its id, as in the segment headers) over the index ops/impl (owned from
 * here on, freed at stop, also on failure).  It catches up from the
 * watermark at once.  0, DZ_ERR_NOMEM.  Main thread.
 */
int dz_accesswatch_start(const struct dz_accessidx_ops *ops, void *impl, const char *audit_path,
                         const char *instance, struct dz_accesswatch **out);

/* Hand over a durable batch (the audit observer; copied, never blocks on
 * I/O).  Writer thread. */
void dz_accesswatch_offer(struct dz_accesswatch *w, const struct dz_audit_batch *b);

/* The index's rows for fin (see dz_accessidx_ops.list).  Blocking: pool
 * threads. */
int dz_accesswatch_list(struct dz_accesswatch *w, const char *fin, int64_t before, size_t limit,
                        struct dz_accessidx_row *out, size_t *n);

/* The instance whose history this indexer follows. */
const char *dz_accesswatch_instance(const struct dz_accesswatch *w);

/* Index what is queued (one last try), stop the thread, free.  After the
 * audit writer has stopped.  NULL is a no-op. */
void dz_accesswatch_stop(struct dz_accesswatch *w);

#endif
