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

/* Members a record may have at most (dz_audit_rec_new_sized). */
#define DZ_AUDITREC_MEMBERS_MAX 64

/* A record of the given "type" (required, like every audit record); NULL
 * when out of memory.  Room for 32 members and 1 KiB of values: over the
 * members the record is bad (DZ_ERR_TOOBIG), over the values the setters
 * allocate. */
struct dz_audit_rec *dz_audit_rec_new(const char *type);

/* The same with room for members_max members (1..DZ_AUDITREC_MEMBERS_MAX,
 * "type" and the members the writer adds included: a member more makes
 * the record bad) and values_max bytes of encoded values (at most
 * DZ_AUDITREC_VALUES_MAX; past it a setter allocates).  For a record
 * reserved ahead whose members are known: the room it holds is what they
 * take at most, computed with the bounds below.  NULL when out of memory
 * or a bound is out of range. */
struct dz_audit_rec *dz_audit_rec_new_sized(const char *type, size_t members_max,
                                            size_t values_max);

/* What an encoded value takes at most, for values_max: a string of n bytes
 * known to be printable ASCII other than '"' and '\\' (as written, in
 * quotes); a string of n bytes of printable ASCII (each byte may need a
 * backslash); an integer (a long long, sign included); a boolean. */
#define DZ_AUDITREC_PLAIN_STR_MAX(n) ((n) + 2)
#define DZ_AUDITREC_ASCII_STR_MAX(n) (2 * (n) + 2)
#define DZ_AUDITREC_INT_MAX 20
#define DZ_AUDITREC_BOOL_MAX 5
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
