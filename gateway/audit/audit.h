/*
 * audit.h - the hash-chained, group-committed audit log and its verifier.
 *
 * One JSON object per line.  Each line carries "seq" (1, 2, 3, ... = its line
 * number in an unrotated log; it goes on across segments), "time" (RFC 3339 UTC, milliseconds) and
 * "prev" (lower-case hex SHA-256 of the previous line's bytes without its newline; 64 zeros on the
 * first line), so changing or deleting any line breaks the chain at the line
 * after it.  Lines are serialised compact with sorted keys and ASCII only,
 * so a line's bytes are a function of its content.
 *
 * The writer owns one dedicated thread.  Callers queue records; the thread
 * writes a batch of lines with one write(2), makes them durable with one
 * fdatasync(2) (group commit) and only then reports each record's result, on
 * the caller's worker loop, so the gateway answers after its line is on disk.
 * Periodically (and at close) it appends a signed chain head:
 *   {"type":"head","seq":S,"time":..,"prev":P,"head":P,"kid":K,"sig":B64URL}
 * where "head" equals "prev" (the hash of line S-1) and "sig" is a raw ES256
 * signature (r||s, base64url) over the ASCII string
 *   "darvaza-audit-head|<S>|<head hex>".
 * The writer knows nothing of keys: signing goes through a callback.
 *
 * Record fields (the caller's job; NEVER a password, PIN, OTP, token or key):
 *   "type"  login | logout | session | forward | forward_result | register |
 *           drain_cut (a request the stop's deadline cut, daemon/drain.h)
 *           (required; "head" is reserved for the writer)
 *   "rid"   request id            "fin"   the person's FIN
 *   "means" login means           "service", "route" (policy rule id)
 *   "tgt"   target FIN (cross-person lookups)   "pur" purpose
 *   "decision" allow | deny       "status" HTTP status
 *   "bdy"   base64url SHA-256 of the request body
 *   "prf"   base64url SHA-256 of the login evidence
 * "seq", "time" and "prev" are set by the writer and rejected from callers.
 *
 * Segments: the log may be rotated (dz_audit_set_rotation, dz_audit_rotate).
 * The live file keeps its name; a closed segment is renamed
 * STEM-YYYYmmddTHHMMSSZ-SEQ.log (SEQ: its first line's seq).  The chain and
 * seq go on across segments: every segment starts with a header line
 *   {"type":"segment","seq":S,"time":..,"prev":P,"instance":I,
 *    "prev_seq":S-1,"prev_file":NAME}
 * where P is the hash of the previous segment's last line (a signed head)
 * and NAME that segment's file name ("prev_file" absent and P 64 zeros on a
 * history's first segment, seq 1).  The header is an ordinary chained line,
 * covered by the next signed head.
 *
 * See docs/internals/audit.md for the guarantees and their limits.
 */
#ifndef DZ_AUDIT_H
#define DZ_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/auditrec.h"
#include "base/timefmt.h"

struct dz_audit;
struct dz_histo;
struct dz_worker;

/* Defaults used by dz_audit_open. */
#define DZ_AUDIT_QUEUE_MAX 8192 /* records waiting for the writer */
#define DZ_AUDIT_BATCH_MAX 256  /* lines per write(2) + fdatasync(2) */
/* How long a patient line (dz_audit_append_slot) may wait for a batch
 * that someone waits on before it is written alone. */
#define DZ_AUDIT_LINGER_MS 5
#define DZ_AUDIT_LINE_MAX 65536 /* bytes per line, newline excluded */

/* The ASCII string a head signature covers, at most this long with its NUL. */
#define DZ_AUDIT_HEAD_MSG_MAX 128

/*
 * Open (or create, mode 0600) the audit log at path and start the writer
 * thread.  An existing file is continued: its last line is read and checked
 * (complete, a JSON object with a positive "seq" and a 64-hex "prev"), and
 * the new lines chain from it.  The file is locked (flock) against a second
 * writer.  A damaged tail is refused with a log line naming FILE:LINE and
 * the reason; nothing is written then.
 * Returns 0; DZ_ERR_IO (open/lock/read failed, or not a regular file; the
 * log says which), DZ_ERR_PARSE (damaged tail), DZ_ERR_STATE (locked by
 * another writer), DZ_ERR_NOMEM.  Main thread.
 */
int dz_audit_open(const char *path, struct dz_audit **out);

/*
 * Bounds: queue_max records may wait (>= 1), a batch holds at most
 * batch_max lines (>= 1).  Any thread; takes effect for the next append /
 * batch.  Returns 0 or DZ_ERR_INVAL.
 */
int dz_audit_set_limits(struct dz_audit *a, size_t queue_max, size_t batch_max);

/*
 * How long patient records may wait, in ms (0: not at all, every batch is
 * written as soon as the writer takes it; at most 60000).  Default DZ_AUDIT_LINGER_MS.
 * Any thread.  Returns 0 or DZ_ERR_INVAL.
 */
int dz_audit_set_linger(struct dz_audit *a, uint32_t linger_ms);

/*
 * Sign the chain head every interval_ms (0: only at close) and at close,
 * whenever lines were added since the last head.  sign(arg, data, len, sig)
 * must write a raw ES256 signature (r||s) and return 0, or a negative
 * dz_err; it runs on the writer thread only (it may block, e.g. PKCS#11).
 * A failing signer is logged and retried at the next interval; it never
 * stops records.  kid (copied, at most 127 bytes) names the key.  sign NULL
 * turns signing off.  Any thread.  Returns 0 or DZ_ERR_INVAL.
 */
int dz_audit_set_head_signer(struct dz_audit *a,
                             int (*sign)(void *arg, const void *data, size_t len,
                                         unsigned char sig[64]),
                             void *arg, const char *kid, uint32_t interval_ms);

/*
 * Replace the head signer, keeping the interval (a key rollover on reload).
 * release(arg) (may be NULL) is called once, on the writer thread or at
 * close, when arg is no longer used; the previous argument is released with
 * the release function it was given with (none for dz_audit_set_head_signer).
 * Any thread.  Returns 0, DZ_ERR_INVAL (sign NULL, kid empty or over 127
 * bytes; nothing changed, arg not released), DZ_ERR_NOMEM.
 */
int dz_audit_swap_head_signer(struct dz_audit *a,
                              int (*sign)(void *arg, const void *data, size_t len,
                                          unsigned char sig[64]),
                              void *arg, void (*release)(void *arg), const char *kid);

#define DZ_AUDIT_INSTANCE_MAX 128 /* bytes of an instance id */

/* When to close the live segment and start the next (0: never by that). */
struct dz_audit_rotation {
    uint64_t size;        /* bytes of the live file */
    uint64_t every_ms;    /* age of the live segment (counted from open) */
    const char *instance; /* written in each segment header (copied): printable
                           * ASCII without spaces, 1..DZ_AUDIT_INSTANCE_MAX;
                           * NULL: no header at the start of a new history */
};

/*
 * Set the rotation policy and instance id; call once after dz_audit_open,
 * before the first append.  Main thread.  Returns 0 or DZ_ERR_INVAL.
 */
int dz_audit_set_rotation(struct dz_audit *a, const struct dz_audit_rotation *r);

/*
 * Ask the writer to close the live segment after the current batch (SIGUSR1).
 * Never blocks on I/O: the rotation happens on the writer thread, which logs
 * "audit_rotated" (or why it could not).  Any thread; NULL is a no-op.
 */
void dz_audit_rotate(struct dz_audit *a);

/* What the writer has just made durable (see dz_audit_set_observer). */
struct dz_audit_batch {
    uint64_t first_seq; /* seq of the first line in data */
    const char *data;   /* whole lines, each with its newline; NULL when none */
    size_t len;
    /* Set when the writer signs a chain head now: sign the tree's head with
     * it (on this thread, before returning; never keep it). */
    int (*sign)(void *arg, const void *data, size_t len, unsigned char sig[64]);
    void *sign_arg;
    const char *kid;
};

/*
 * Call fn(arg, batch) on the writer thread after every durable batch, once
 * its callers' results are on their way (and
 * after a rotation's segment header is live), in seq order, so a follower
 * (the Merkle tree, audit_tree.h) sees every line exactly as written.  fn
 * must not call back into the audit log and may block only briefly (it
 * delays the next batch).  Main thread, before the first append.
 */
void dz_audit_set_observer(struct dz_audit *a,
                           void (*fn)(void *arg, const struct dz_audit_batch *b), void *arg);

/* Ask the writer to sign a head soon (after the next batch, or now when
 * idle), e.g. when a proof is wanted for a line no head covers yet.  Any
 * thread; never blocks on I/O; NULL is a no-op. */
void dz_audit_request_head(struct dz_audit *a);

/*
 * Queue one record (consumed in every case).  It must be a JSON object with
 * a string "type" other than "head" and no "seq", "time" or "prev".
 * On 0, done(arg, result) is called exactly once after the batch holding the
 * line is durable (result 0) or failed (DZ_ERR_IO: the write or fdatasync
 * failed, the line is not in the log; DZ_ERR_TOOBIG: line over
 * DZ_AUDIT_LINE_MAX; DZ_ERR_INVAL: the record cannot be serialised).  done
 * runs on w's loop thread via dz_worker_post_node (allocating nothing), or on the writer thread
 * when w is NULL.  Called on w's own loop thread while that loop runs, the record joins the loop's
 * batch, handed to the writer once at the end of the loop turn (audit_handoff.c); w must then be
 * the calling thread's worker.  If w refuses the post (it is stopping) done is NOT called and an
 * error is logged; close the audit log after draining the workers. On error done is never called:
 * DZ_ERR_UNAVAILABLE (queue full, at once, never a wait), DZ_ERR_INVAL (bad record), DZ_ERR_STATE
 * (closing, or the log failed earlier and is read-only now: fail closed), DZ_ERR_NOMEM. Any thread;
 * never blocks on I/O.
 */
int dz_audit_append(struct dz_audit *a, json_t *record, struct dz_worker *w,
                    void (*done)(void *arg, int result), void *arg);

/*
 * The same for a record built without jansson (audit/auditrec.h), consumed
 * in every case; the writer adds the same chain members and writes the same
 * bytes as for the jansson object with the same members.  A record whose
 * builder met an error is refused with that error (done is not called).
 */
struct dz_audit_rec;
int dz_audit_append_rec(struct dz_audit *a, struct dz_audit_rec *record, struct dz_worker *w,
                        void (*done)(void *arg, int result), void *arg);

/* The members the writer adds to every record built without jansson
 * (instance, seq, time, prev) and their encoded values at most: the
 * instance (printable ASCII), a sequence number, an RFC 3339 time, a
 * SHA-256 in hex. */
#define DZ_AUDIT_CHAIN_MEMBERS 4
#define DZ_AUDIT_CHAIN_VALUES_MAX                                                                  \
    (DZ_AUDITREC_ASCII_STR_MAX(DZ_AUDIT_INSTANCE_MAX) + DZ_AUDITREC_INT_MAX +                      \
     DZ_AUDITREC_PLAIN_STR_MAX(DZ_RFC3339_MS_MAX - 1) + DZ_AUDITREC_PLAIN_STR_MAX(64))

/*
 * A line reserved ahead of the action it records the end of: the record
 * (dz_audit_rec_new_sized, with room for the caller's members and values
 * and the writer's chain members) and its queue entry are allocated by
 * dz_audit_slot_new, so that appending it later
 * allocates nothing and is not refused for back-pressure (its memory is
 * held already: the queue bound exists to bound that).  For the outcome of
 * a forwarded request, whose request line was durable before it left: the
 * outcome must not be lost for want of memory once the request is out.
 *
 *   dz_audit_slot_new:    members_max, values_max: what the caller's
 *                         members ("type" included) take at most (auditrec.h
 *                         bounds); the slot adds DZ_AUDIT_CHAIN_*.  NULL
 *                         when out of memory or out of range.
 *   dz_audit_slot_rec:    the record, to fill with the auditrec.h setters
 *                         (they allocate only past the reserved room; a
 *                         member past members_max makes the record bad).
 *   dz_audit_slot_free:   an unused slot and its record; NULL: no-op.
 *   dz_audit_append_slot: as dz_audit_append_rec, s consumed in every case;
 *                         the errors left are the log's (DZ_ERR_STATE:
 *                         closing or failed) and the record's own
 *                         (DZ_ERR_INVAL, or a setter's error).
 *                         The line is patient: nobody waits on it, so it
 *                         is written with the next batch that holds a line
 *                         someone waits on, or alone once it has waited the
 *                         linger (dz_audit_set_linger), whichever comes
 *                         first; a close, a rotation or a head request
 *                         writes it at once.  done() still runs only once
 *                         it is durable, and the chain keeps the order of
 *                         the calls.  A light load so pays one fdatasync
 *                         per forwarded request instead of two, and a
 *                         request line seldom waits behind the previous
 *                         request's outcome (only behind one that waited
 *                         out its linger and is being written).
 * A slot belongs to one thread at a time; append from any thread.
 */
struct dz_audit_slot;
struct dz_audit_slot *dz_audit_slot_new(const char *type, size_t members_max, size_t values_max);
struct dz_audit_rec *dz_audit_slot_rec(struct dz_audit_slot *s);
void dz_audit_slot_free(struct dz_audit_slot *s);
int dz_audit_append_slot(struct dz_audit *a, struct dz_audit_slot *s, struct dz_worker *w,
                         void (*done)(void *arg, int result), void *arg);

/* Records queued and not yet written (approximate); usable as a gauge
 * callback (arg is the struct dz_audit).  Any thread. */
uint64_t dz_audit_gauge_queued(void *audit);

/* How many times records were handed to the writer (one per record appended
 * outside a loop, one per loop turn's batch otherwise).  Any thread. */
uint64_t dz_audit_handoffs(struct dz_audit *a);

/* The seq of the log's last line as dz_audit_open found it (0: none), kept
 * apart from the writer's own count (which moves on its thread).  Any
 * thread. */
uint64_t dz_audit_seq_at_open(const struct dz_audit *a);

/* How many times the writer began to wait out a linger (only patient lines
 * queued, dz_audit_set_linger); once it is seen to have grown, the writer
 * is waiting, and only a wake-up (a line someone waits on, a full batch, a
 * close) or the linger's end moves it: what a test of those wake-ups
 * waits for.  Any thread. */
uint64_t dz_audit_lingers(struct dz_audit *a);

/* How long each fdatasync of a batch took, for the metrics (read-only; the
 * writer thread adds to it).  Valid until dz_audit_close.  Any thread. */
const struct dz_histo *dz_audit_fsync_histo(const struct dz_audit *a);

/*
 * Write what is queued, sign a final head (if a signer is set and lines were
 * added since the last head), stop the writer thread, close the file, free.
 * Blocks: main thread, after the workers are drained.  NULL is a no-op.
 */
void dz_audit_close(struct dz_audit *a);

/* ------------------------------------------------------------------------
 * Verification (audit_verify.c): pure over the bytes of a log; no writer.
 */

#define DZ_AUDIT_FILE_NAME_MAX 255 /* bytes of a header's prev_file */

/* A segment header (the first line of a segment), as parsed. */
struct dz_audit_segment_header {
    uint64_t seq;           /* the header's own seq */
    unsigned char prev[32]; /* hash of the previous segment's last line */
    char instance[DZ_AUDIT_INSTANCE_MAX + 1];
    char prev_file[DZ_AUDIT_FILE_NAME_MAX + 1]; /* "" on a history's first segment */
    uint64_t prev_seq;                          /* seq - 1 */
};

/* Key lookup for head signatures: return the borrowed public key for kid
 * (an EC P-256 key), or NULL if unknown. */
struct dz_audit_keys {
    EVP_PKEY *(*find)(void *arg, const char *kid);
    void *arg;
};

struct dz_audit_report {
    uint64_t lines;          /* complete lines read (up to the first bad one) */
    uint64_t first_bad_line; /* 1-based; 0 when every line is good */
    const char *reason;      /* static: NULL when good, else one of
                              * "malformed_json" (not an audit line: bad JSON,
                              *   missing/ill-typed seq, time, prev, or an
                              *   incomplete last line or an overlong line),
                              * "chain_broken" (prev is not the hash of the line
                              *   before: that line was changed, or lines were
                              *   deleted or inserted here),
                              * "seq_gap" (prev matches but seq is not the
                              *   previous seq + 1),
                              * "head_mismatch" (a head line whose "head" is not
                              *   the hash of the line before it),
                              * "unknown_kid" (keys given, head kid not found),
                              * "bad_head_signature" (signature does not verify) */
    char detail[256];        /* human wording of the failure, "" when good */
    uint64_t heads_seen;     /* head lines that passed the chain checks */
    uint64_t heads_verified; /* of which signatures verified (keys given) */
    uint64_t last_seq;       /* seq of the last good line (0: empty log) */
    uint64_t last_head_seq;  /* seq of the last head line seen (0: none) */
    uint64_t unsigned_tail;  /* good lines after the last head line: cutting
                              * them off cannot be seen in the file alone
                              * (`darvaza audit verify --head` can) */
    /* The forward pair (docs/internals/audit.md): a "forward" line with
     * "phase":"sent", written before the request left, and its
     * "forward_result" line with the same rid, written after. */
    uint64_t forwards_sent;     /* "sent" lines among the good lines */
    uint64_t forwards_open;     /* of which no outcome follows (in flight at the
                                 * end of the file, or cut short by a crash) */
    uint64_t results_unmatched; /* outcomes whose "sent" line is not in this
                                 * file (an earlier file held it) */
    /* Segments (dz_audit_verify_segment; also filled by the others). */
    uint64_t first_seq;                    /* seq of line 1 (0: empty file) */
    unsigned char last_hash[32];           /* hash of the last good line */
    bool has_header;                       /* line 1 is a segment header ... */
    struct dz_audit_segment_header header; /* ... this one */
};

#define DZ_AUDIT_VERIFY_LINE_MAX (1u << 20) /* longer lines are malformed */
/*
 * Parse a segment header line (no newline): an audit line (see
 * dz_audit_parse_line) with "type":"segment", an "instance" (printable ASCII,
 * no spaces, 1..DZ_AUDIT_INSTANCE_MAX bytes), an integer "prev_seq" equal to
 * seq - 1, and a "prev_file" (a plain file name: no '/', not "." or "..",
 * 1..DZ_AUDIT_FILE_NAME_MAX printable bytes) that is present exactly when
 * seq > 1; at seq 1, prev must be 64 zeros.  Pure; any thread.
 * Returns 0 (out filled) or DZ_ERR_PARSE (out cleared).
 */
int dz_audit_parse_segment_header(const char *line, size_t len,
                                  struct dz_audit_segment_header *out);

/* Where a segment's chain is expected to start: after the line with this
 * seq and hash (seq 0 and zeros: the start of a history). */
struct dz_audit_chain {
    uint64_t seq;
    unsigned char hash[32];
};

/*
 * Verify the whole log in path.  keys NULL: head signatures are not checked
 * (heads_verified stays 0).  The report is cleared on entry and filled in.
 * Returns 0 when the file was read: the verdict is in out (first_bad_line
 * 0 = intact); DZ_ERR_IO (cannot open or read; out->detail says why),
 * DZ_ERR_NOMEM.  Any thread (blocking file I/O: not on a loop thread).
 */
int dz_audit_verify_file(const char *path, const struct dz_audit_keys *keys,
                         struct dz_audit_report *out);

/*
 * Verify one segment of a history.  from: where its chain must start (the
 * previous segment's last seq and hash; {0, zeros} for a history's first
 * segment); NULL: take the first line's seq and prev as given (a history
 * checked from the middle: the caller must say so).  A segment header is
 * accepted only as line 1 (a "segment" line anywhere else is malformed).
 * Returns like dz_audit_verify_file.  Any thread (blocking file I/O).
 */
int dz_audit_verify_segment(const char *path, const struct dz_audit_keys *keys,
                            const struct dz_audit_chain *from, struct dz_audit_report *out);

/* Same over a buffer holding a whole log.  Pure; any thread.  Returns 0
 * (verdict in out) or DZ_ERR_NOMEM. */
int dz_audit_verify_buf(const void *data, size_t len, const struct dz_audit_keys *keys,
                        struct dz_audit_report *out);

/* One line's chain fields, as dz_audit_parse_line finds them. */
struct dz_audit_line {
    uint64_t seq;           /* >= 1 */
    unsigned char prev[32]; /* decoded "prev" */
    unsigned char hash[32]; /* SHA-256 of the line's bytes (no newline) */
    bool is_head;           /* "type" is "head" */
};

/*
 * Parse one line (no newline): a JSON object (no duplicate keys) with an
 * integer "seq" >= 1, a string "time" and a 64-lower-hex "prev".  Used by
 * the writer to continue a chain and by the verifier.  Pure; any thread.
 * Returns 0 (out filled) or DZ_ERR_PARSE (out cleared).
 */
int dz_audit_parse_line(const char *line, size_t len, struct dz_audit_line *out);

/* Write "darvaza-audit-head|<seq>|<head hex>" into buf (DZ_AUDIT_HEAD_MSG_MAX
 * bytes); returns its length. */
size_t dz_audit_head_message(uint64_t seq, const char *head_hex, char *buf);

#endif
