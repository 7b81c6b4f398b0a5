/*
 * audit_proof.h - the transparency documents of the audit log
 * (docs/transparency.md): signed tree heads, inclusion proofs and
 * consistency proofs, as JSON; building, parsing and checking them.
 *
 * A signed tree head (STH) says "the audit history of INSTANCE has SIZE
 * lines and this Merkle root (merkle.h; leaf i = line seq i+1, the bytes
 * without the newline)":
 *   {"type":"darvaza-audit-tree-head","v":1,"instance":I,"tree_size":N,
 *    "root":HEX,"time":RFC3339,"kid":K,"sig":B64URL}
 * "sig" is a raw ES256 signature (r||s) by the gateway's key over the ASCII
 * string  "darvaza-audit-tree|v1|I|N|HEX|TIME"  (dz_audit_sth_message).
 *
 * An inclusion proof:
 *   {"type":"darvaza-audit-inclusion","v":1,"seq":S,"line":LINE,
 *    "path":[HEX,...],"head":STH}
 * A consistency proof between two heads of one instance:
 *   {"type":"darvaza-audit-consistency","v":1,"old":STH,"new":STH,
 *    "path":[HEX,...]}
 *
 * Parsing and checking are pure over the bytes (no I/O, no globals) and
 * bounded; the public key comes from the caller.  Any thread.
 */
#ifndef DZ_AUDIT_PROOF_H
#define DZ_AUDIT_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/merkle.h"

#define DZ_AUDIT_PROOF_MAX (1u << 20) /* bytes of a proof document */
#define DZ_AUDIT_STH_MSG_MAX 400      /* bytes of the signed string, NUL included */
#define DZ_AUDIT_TIME_MAX 40          /* bytes of an STH time */

struct dz_audit_sth {
    char instance[DZ_AUDIT_INSTANCE_MAX + 1];
    uint64_t tree_size; /* >= 1 */
    unsigned char root[32];
    char time[DZ_AUDIT_TIME_MAX + 1]; /* RFC 3339 UTC */
    char kid[128];
    unsigned char sig[64]; /* raw r||s */
};

enum dz_audit_proof_kind { DZ_AUDIT_PROOF_INCLUSION = 1, DZ_AUDIT_PROOF_CONSISTENCY = 2 };

/* A parsed proof document.  line points into the parse's own copy and is
 * valid until dz_audit_proof_cleanup. */
struct dz_audit_proof {
    enum dz_audit_proof_kind kind;
    struct dz_audit_sth head; /* inclusion: the head; consistency: the new head */
    struct dz_audit_sth old;  /* consistency only */
    uint64_t seq;             /* inclusion: the line's seq (leaf index + 1) */
    char *line;               /* inclusion: the audit line (malloc'd) */
    size_t line_len;
    size_t path_len;
    unsigned char path[DZ_MERKLE_PATH_MAX][32];
};

/* The string an STH signature covers, written into buf
 * (DZ_AUDIT_STH_MSG_MAX bytes); returns its length, 0 when it does not fit. */
size_t dz_audit_sth_message(const struct dz_audit_sth *h, char *buf);

/* The STH as a JSON object (new reference), or NULL (no memory). */
json_t *dz_audit_sth_json(const struct dz_audit_sth *h);

/* Parse an STH object: every member present, typed and in range (instance
 * as for segment headers, 64 lower-case hex root, tree_size >= 1, time
 * 1..DZ_AUDIT_TIME_MAX printable bytes, kid 1..127 printable, sig 64 bytes
 * base64url).  0 (out filled) or DZ_ERR_PARSE (out cleared). */
int dz_audit_sth_parse(const json_t *obj, struct dz_audit_sth *out);

/* Check an STH's signature with keys (the kid's key, P-256).  0,
 * DZ_ERR_NOTFOUND (unknown kid), DZ_ERR_DENIED (bad signature). */
int dz_audit_sth_verify(const struct dz_audit_sth *h, const struct dz_audit_keys *keys);

/* Proof documents as JSON (new references, NULL on no memory). */
json_t *dz_audit_inclusion_json(uint64_t seq, const char *line, size_t line_len,
                                const unsigned char path[][32], size_t path_len,
                                const struct dz_audit_sth *head);
json_t *dz_audit_consistency_json(const struct dz_audit_sth *old, const struct dz_audit_sth *new_,
                                  const unsigned char path[][32], size_t path_len);

/* Parse a proof document (either kind) from buf.  0 or DZ_ERR_PARSE
 * (out cleared), DZ_ERR_NOMEM.  Free with dz_audit_proof_cleanup. */
int dz_audit_proof_parse(const char *buf, size_t len, struct dz_audit_proof *out);
void dz_audit_proof_cleanup(struct dz_audit_proof *p);

/*
 * Check a parsed proof: the hashes (inclusion: the line's own "seq" equals
 * the proof's seq, the path leads from SHA-256(0x00||line) at index seq-1 to
 * the head's root; consistency: same instance, old size <= new size, the
 * path joins the two roots) and, when keys is not NULL, the heads'
 * signatures.  *reason is a static word when it fails: "seq_mismatch",
 * "bad_path" (the proof does not lead to the signed root: the line or the
 * path was changed), "instance_mismatch", "size_order", "unknown_kid",
 * "bad_signature".  0 (valid) or DZ_ERR_DENIED.
 */
int dz_audit_proof_check(const struct dz_audit_proof *p, const struct dz_audit_keys *keys,
                         const char **reason);

#endif
