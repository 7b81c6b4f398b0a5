/*
 * history_check.h - before the audit tree is built anew from the log, the
 * log's own signed heads are checked (docs/transparency.md, "Derived, never
 * trusted over the log").  A tree that is missing (deleted with its
 * heads.jsonl) or about to be rebuilt after an accept-restore vouches for
 * nothing: an insider who changed a line, rebuilt the chain and removed the
 * tree would otherwise get fresh heads signed over the change.  The heads
 * in the log are signed over the chain up to them, so the rebuilt history
 * must verify as `darvaza audit verify --jwks` would, with the keys of this
 * gateway: every head signed (retired keys from the key archive allowed),
 * the last one by a key the gateway publishes now (the archive is writable
 * by whoever can write the log).  Main thread, before the tree is opened.
 */
#ifndef DZ_HISTORY_CHECK_H
#define DZ_HISTORY_CHECK_H

struct dz_gen;

/* 0: the tree is not built anew, or the history verifies.  DZ_ERR_STATE:
 * it does not (printed to stderr, logged as audit_history_refused; nothing
 * written); DZ_ERR_IO, DZ_ERR_NOMEM, DZ_ERR_PARSE (the key archive). */
int dz_history_check(const struct dz_gen *g);

#endif
