/*
 * history_check.h - before the audit tree takes lines from the log that it
 * does not hold yet, the log's own signed heads are checked
 * (docs/transparency.md, "Derived, never trusted over the log").  A tree
 * vouches for the log up to its last leaf; a tree that is missing (deleted
 * with its heads.jsonl), cut short, or rebuilt after an accept-restore
 * vouches for less or nothing, and an insider who changed a line, rebuilt
 * the chain and removed the tree would otherwise get fresh heads signed
 * over the change.  The heads in the log are signed over the chain up to
 * them, so the lines after the tree's last leaf must verify as `darvaza
 * audit verify --jwks` would, with the keys of this gateway: every head
 * signed (retired keys from the key archive allowed), the last one after
 * that leaf by a key the gateway publishes now (the archive is writable by
 * whoever can write the log).  Main thread, before the tree is opened.
 */
#ifndef DZ_HISTORY_CHECK_H
#define DZ_HISTORY_CHECK_H

struct dz_audit;
struct dz_gen;

/* a: the audit log just opened (nothing appended yet).  0: the tree holds
 * every line, or the lines it lacks verify.  DZ_ERR_STATE: they do not
 * (printed to stderr, logged as audit_history_refused; nothing written);
 * DZ_ERR_IO, DZ_ERR_NOMEM, DZ_ERR_PARSE (the key archive). */
int dz_history_check(const struct dz_gen *g, const struct dz_audit *a);

#endif
