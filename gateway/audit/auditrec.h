/*
 * auditrec.h - an audit record built without jansson, for the lines written
 * for every forwarded request (gateway/forward).  A jansson object built on
 * the loop thread, then completed and dumped with sorted keys by the writer,
 * cost about a fifth of a forwarded request's CPU (docs/performance.md);
 * this record holds its members already encoded and is written by merging
 * them in key order.
 *
 * The line is byte for byte the one json_dumps(JSON_COMPACT | JSON_SORT_KEYS
 * | JSON_ENSURE_ASCII) writes for the same object (test_auditrec checks it
 * against jansson), so the hash chain, the Merkle leaves and
 * `darvaza audit verify` see no difference between the two kinds of record.
 *
 * Setters never fail on the spot: the first error is kept and the record is
 * refused when appended (dz_audit_append_rec), as a record jansson could not
 * build was.  A record belongs to one thread at a time.
 */
#ifndef DZ_AUDITREC_H
#define DZ_AUDITREC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

struct dz_audit_rec;

/* Bytes of a record's encoded values: what one line may hold
 * (DZ_AUDIT_LINE_MAX); over it the record is bad (DZ_ERR_TOOBIG). */
#define DZ_AUDITREC_VALUES_MAX 65536

/* A record of the given "type" (required, like every audit record); NULL
 * when out of memory. */
struct dz_audit_rec *dz_audit_rec_new(const char *type);
void dz_audit_rec_free(struct dz_audit_rec *r);

/*
 * Members.  key: a code constant of printable ASCII without '"' or '\\'
 * (another key makes the record bad).  Setting a key again replaces its
 * value, as json_object_set does.
 *   dz_audit_rec_str:     a required string (json_pack's "s"): NULL or a
 *                         value that is not UTF-8 makes the record bad.
 *   dz_audit_rec_opt_str: an optional one (json_object_set_new with
 *                         json_string): NULL or not UTF-8 leaves it out.
 */
void dz_audit_rec_str(struct dz_audit_rec *r, const char *key, const char *v);
void dz_audit_rec_opt_str(struct dz_audit_rec *r, const char *key, const char *v);
void dz_audit_rec_int(struct dz_audit_rec *r, const char *key, long long v);
void dz_audit_rec_bool(struct dz_audit_rec *r, const char *key, bool v);

/* true when the record has a member named key. */
bool dz_audit_rec_has(const struct dz_audit_rec *r, const char *key);

/* 0, or the first error a setter met (DZ_ERR_INVAL, DZ_ERR_NOMEM,
 * DZ_ERR_TOOBIG). */
int dz_audit_rec_error(const struct dz_audit_rec *r);

/* The "type" member's value as given to dz_audit_rec_new. */
const char *dz_audit_rec_type(const struct dz_audit_rec *r);

/* Append the record as one compact JSON object, members sorted by key (no
 * newline).  Returns 0, the record's error, or dz_buf_append's. */
int dz_audit_rec_write(struct dz_audit_rec *r, struct dz_buf *out);

#endif
