/*
 * audit_verify.c - checks an audit log's hash chain and signed heads (see
 * audit.h).  Shared by `darvaza audit verify`, the writer's tail check, the
 * tests and the fuzz target.  Everything here is pure over the bytes of the
 * log (dz_audit_verify_file only reads the file): it never writes, never
 * trusts a line before it has been parsed within bounds, and never holds a
 * private key - head signatures are checked against public keys the caller
 * looks up.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "keys/ecdsa_sig.h"

#include "base/compat.h"

static const unsigned char zero_hash[32];

size_t dz_audit_head_message(uint64_t seq, const char *head_hex, char *buf)
{
    /* A fixed prefix (domain separation): the gateway signs heads with its
     * assertion key (daemon/main.c), and a JWS signing input always starts
     * "eyJ", so a head signature can never pass for an assertion or the
     * other way round.  seq is signed too, so a head cannot be moved. */
    int n =
        snprintf(buf, DZ_AUDIT_HEAD_MSG_MAX, "darvaza-audit-head|%" PRIu64 "|%.64s", seq, head_hex);

    return n < 0 ? 0 : (size_t)n;
}

/* Exactly 64 lower-case hex digits: one hash has one spelling, so a line's
 * bytes (and hence the chain) cannot be varied by changing case. */
static int hex32_decode(const char *s, size_t len, unsigned char out[32])
{
    if (len != 64)
        return DZ_ERR_PARSE;
    for (size_t i = 0; i < 64; i++) {
        int c = (unsigned char)s[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return DZ_ERR_PARSE;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

static int parse_obj(json_t *obj, struct dz_audit_line *out)
{
    json_t *seq = json_object_get(obj, "seq");
    json_t *prev = json_object_get(obj, "prev");
    json_t *when = json_object_get(obj, "time");
    json_t *type = json_object_get(obj, "type");

    /* Only the chain fields are checked here; what the record says is the
     * caller's business, so an old line with fields we no longer write still
     * verifies. */
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        return DZ_ERR_PARSE;
    if (!json_is_string(when) || json_string_length(when) == 0 || json_string_length(when) > 64)
        return DZ_ERR_PARSE;
    if (!json_is_string(prev) ||
        hex32_decode(json_string_value(prev), json_string_length(prev), out->prev) != 0)
        return DZ_ERR_PARSE;
    out->seq = (uint64_t)json_integer_value(seq);
    out->is_head = json_is_string(type) && strcmp(json_string_value(type), "head") == 0;
    return 0;
}

static json_t *load_line(const char *line, size_t len)
{
    json_error_t jerr;
    json_t *obj;

    if (len == 0 || len > DZ_AUDIT_VERIFY_LINE_MAX)
        return NULL;
    /* Duplicate keys refused: a line with two "seq" members could be read
     * one way here and another way by a different JSON tool. */
    obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

int dz_audit_parse_line(const char *line, size_t len, struct dz_audit_line *out)
{
    struct dz_audit_line l;
    json_t *obj = NULL;
    int rc = DZ_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    memset(&l, 0, sizeof(l));
    obj = load_line(line, len);
    if (!obj)
        goto out;
    rc = parse_obj(obj, &l);
    if (rc != 0)
        goto out;
    dz_sha256(line, len, l.hash);
    *out = l;
out:
    json_decref(obj);
    return rc;
}

static bool printable_no_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    }
    return true;
}

static int parse_header_obj(json_t *obj, const struct dz_audit_line *l,
                            struct dz_audit_segment_header *h)
{
    json_t *type = json_object_get(obj, "type");
    json_t *inst = json_object_get(obj, "instance");
    json_t *pseq = json_object_get(obj, "prev_seq");
    json_t *pfile = json_object_get(obj, "prev_file");
    size_t n;

    if (!json_is_string(type) || strcmp(json_string_value(type), "segment") != 0)
        return DZ_ERR_PARSE;
    n = json_is_string(inst) ? json_string_length(inst) : 0;
    if (n == 0 || n > DZ_AUDIT_INSTANCE_MAX || !printable_no_space(json_string_value(inst), n))
        return DZ_ERR_PARSE;
    memcpy(h->instance, json_string_value(inst), n);
    /* prev_seq repeats seq - 1 so the header reads on its own; a header
     * whose two numbers disagree was not written by the gateway. */
    if (!json_is_integer(pseq) || json_integer_value(pseq) < 0 ||
        (uint64_t)json_integer_value(pseq) != l->seq - 1)
        return DZ_ERR_PARSE;
    h->prev_seq = l->seq - 1;
    if (l->seq == 1) {
        /* The start of a history: nothing before it to name or hash. */
        if (pfile || memcmp(l->prev, zero_hash, 32) != 0)
            return DZ_ERR_PARSE;
    } else {
        n = json_is_string(pfile) ? json_string_length(pfile) : 0;
        /* A plain name, never a path: verify looks it up next to the
         * segment, and a name must not lead it elsewhere. */
        if (n == 0 || n > DZ_AUDIT_FILE_NAME_MAX ||
            !printable_no_space(json_string_value(pfile), n) ||
            memchr(json_string_value(pfile), '/', n) ||
            strcmp(json_string_value(pfile), ".") == 0 ||
            strcmp(json_string_value(pfile), "..") == 0)
            return DZ_ERR_PARSE;
        memcpy(h->prev_file, json_string_value(pfile), n);
    }
    h->seq = l->seq;
    memcpy(h->prev, l->prev, 32);
    return 0;
}

int dz_audit_parse_segment_header(const char *line, size_t len, struct dz_audit_segment_header *out)
{
    struct dz_audit_segment_header h;
    struct dz_audit_line l;
    json_t *obj = NULL;
    int rc = DZ_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    memset(&h, 0, sizeof(h));
    memset(&l, 0, sizeof(l));
    obj = load_line(line, len);
    if (!obj || parse_obj(obj, &l) != 0)
        goto out;
    rc = parse_header_obj(obj, &l, &h);
    if (rc == 0)
        *out = h;
out:
    json_decref(obj);
    return rc;
}

/* ES256 over msg with a raw r||s signature.  0, DZ_ERR_DENIED (does not
 * verify, or the key is not P-256), DZ_ERR_CRYPTO. */
static int es256_verify(EVP_PKEY *pkey, const char *msg, size_t msg_len, const unsigned char *sig,
                        size_t sig_len)
{
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 0;
    EVP_MD_CTX *ctx = NULL;
    char group[64];
    size_t group_len = 0;
    int rc = DZ_ERR_DENIED;

    /* ES256 is P-256 only (RFC 7518 §3.4): a key of another type or curve
     * found under the kid is refused, not tried. */
    if (sig_len != 64 || !EVP_PKEY_is_a(pkey, "EC"))
        goto out;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &group_len) ||
        strcmp(group, "prime256v1") != 0)
        goto out;
    /* r or s zero or not below the order: it cannot verify. */
    rc = dz_ecdsa_sig_raw_to_der(sig, sig_len, 32, der, sizeof(der), &der_len);
    if (rc != 0) {
        rc = rc == DZ_ERR_NOMEM ? DZ_ERR_CRYPTO : DZ_ERR_DENIED;
        goto out;
    }
    rc = DZ_ERR_CRYPTO;
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1)
        goto out;
    rc = EVP_DigestVerify(ctx, der, der_len, (const unsigned char *)msg, msg_len) == 1
             ? 0
             : DZ_ERR_DENIED;
out:
    /* A bad signature leaves errors on the queue; they are not ours to log. */
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

struct vstate {
    const struct dz_audit_keys *keys;
    struct dz_audit_report *r;
    json_t *open_forwards; /* rid -> true: "sent" lines still without an outcome */
    uint64_t prev_seq;
    unsigned char prev_hash[32];
    bool trust_first; /* take line 1's seq and prev as given */
    bool stopped;
};

__attribute__((format(printf, 4, 5))) static void fail(struct vstate *v, uint64_t lineno,
                                                       const char *reason, const char *fmt, ...)
{
    va_list ap;

    v->stopped = true;
    v->r->first_bad_line = lineno;
    v->r->reason = reason;
    va_start(ap, fmt);
    vsnprintf(v->r->detail, sizeof(v->r->detail), fmt, ap);
    va_end(ap);
}

/* Why a prev did not match, in words an operator can act on.  The seq
 * numbers are only a hint (an attacker may edit them), the chain is proof. */
static void fail_chain(struct vstate *v, uint64_t lineno, uint64_t seq)
{
    if (lineno == 1 && v->r->has_header && v->prev_seq == 0 && seq > 1) {
        fail(v, 1, "chain_broken",
             "this segment starts at seq %" PRIu64 " and continues \"%.255s\": give the earlier "
             "segments too (darvaza audit verify DIR) or --from-header",
             seq, v->r->header.prev_file);
    } else if (lineno == 1 && v->prev_seq > 0) {
        fail(v, 1, "chain_broken",
             "the segment does not continue the previous one (which ends at seq %" PRIu64
             "): that one was changed or cut at its end, or this one was replaced",
             v->prev_seq);
    } else if (lineno == 1) {
        if (seq > 1)
            fail(v, 1, "chain_broken",
                 "the log starts at seq %" PRIu64 ": its first %" PRIu64 " line(s) were deleted",
                 seq, seq - 1);
        else
            fail(v, 1, "chain_broken", "the first line's prev is not 64 zeros");
    } else if (seq == v->prev_seq + 1) {
        fail(v, lineno, "chain_broken",
             "prev does not match the hash of line %" PRIu64 ": line %" PRIu64
             " was changed (or this line's prev was)",
             lineno - 1, lineno - 1);
    } else if (seq > v->prev_seq + 1) {
        fail(v, lineno, "chain_broken",
             "prev does not match the hash of line %" PRIu64 " and seq jumps from %" PRIu64
             " to %" PRIu64 ": %" PRIu64 " line(s) were deleted before this line",
             lineno - 1, v->prev_seq, seq, seq - v->prev_seq - 1);
    } else {
        fail(v, lineno, "chain_broken",
             "prev does not match the hash of line %" PRIu64 " and seq goes back from %" PRIu64
             " to %" PRIu64 ": lines were inserted, duplicated or reordered",
             lineno - 1, v->prev_seq, seq);
    }
}

static void check_head(struct vstate *v, uint64_t lineno, json_t *obj,
                       const struct dz_audit_line *l)
{
    json_t *head = json_object_get(obj, "head");
    json_t *kid = json_object_get(obj, "kid");
    json_t *sig = json_object_get(obj, "sig");
    unsigned char h[32];
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    char msg[DZ_AUDIT_HEAD_MSG_MAX];
    size_t msg_len;
    EVP_PKEY *pkey;
    int rc;

    if (!json_is_string(head) ||
        hex32_decode(json_string_value(head), json_string_length(head), h) != 0 ||
        memcmp(h, v->prev_hash, 32) != 0) {
        fail(v, lineno, "head_mismatch", "signed head is not the hash of line %" PRIu64,
             lineno - 1);
        return;
    }
    if (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > 127 ||
        !json_is_string(sig) ||
        dz_b64_decode(json_string_value(sig), json_string_length(sig), true, &raw, &raw_len) != 0 ||
        raw_len != 64) {
        fail(v, lineno, "bad_head_signature", "head line has no well-formed kid and sig");
        goto out;
    }
    /* Without keys only the shape is checked and heads_verified stays 0,
     * so a report never claims signatures it did not check. */
    if (v->keys && v->keys->find) {
        pkey = v->keys->find(v->keys->arg, json_string_value(kid));
        if (!pkey) {
            fail(v, lineno, "unknown_kid", "no public key for kid \"%.127s\"",
                 json_string_value(kid));
            goto out;
        }
        msg_len = dz_audit_head_message(l->seq, json_string_value(head), msg);
        rc = es256_verify(pkey, msg, msg_len, raw, raw_len);
        if (rc != 0) {
            fail(v, lineno, "bad_head_signature",
                 rc == DZ_ERR_DENIED ? "head signature does not verify with kid \"%.127s\""
                                     : "cannot check the head signature of kid \"%.127s\"",
                 json_string_value(kid));
            goto out;
        }
        v->r->heads_verified++;
    }
    v->r->heads_seen++;
    v->r->last_head_seq = l->seq;
out:
    free(raw);
}

/* Match each forward's "sent" line with its outcome by rid.  An unmatched
 * pair is not a broken log (the chain says that): it is what was in flight
 * when the file ended, or what a crash cut short, and is reported as such. */
static void pair_forward(struct vstate *v, json_t *obj)
{
    const char *type = json_string_value(json_object_get(obj, "type"));
    const char *rid = json_string_value(json_object_get(obj, "rid"));
    const char *phase = json_string_value(json_object_get(obj, "phase"));

    if (!type || !rid || !v->open_forwards)
        return;
    if (strcmp(type, "forward") == 0 && phase && strcmp(phase, "sent") == 0) {
        v->r->forwards_sent++;
        json_object_set_new(v->open_forwards, rid, json_true());
    } else if (strcmp(type, "forward_result") == 0) {
        if (json_object_del(v->open_forwards, rid) != 0)
            v->r->results_unmatched++;
    }
}

static bool is_type(json_t *obj, const char *type)
{
    json_t *t = json_object_get(obj, "type");

    return json_is_string(t) && strcmp(json_string_value(t), type) == 0;
}

/* One complete line (without its newline).  Stops at the first bad line. */
static void feed(struct vstate *v, const char *line, size_t len)
{
    uint64_t lineno = v->r->lines + 1;
    struct dz_audit_line l;
    json_t *obj = NULL;

    memset(&l, 0, sizeof(l));
    if (len > DZ_AUDIT_VERIFY_LINE_MAX) {
        fail(v, lineno, "malformed_json", "line longer than %u bytes", DZ_AUDIT_VERIFY_LINE_MAX);
        return;
    }
    obj = load_line(line, len);
    if (!obj) {
        fail(v, lineno, "malformed_json", len == 0 ? "empty line" : "not a JSON object");
        return;
    }
    if (parse_obj(obj, &l) != 0) {
        fail(v, lineno, "malformed_json",
             "missing or ill-formed seq (integer >= 1), time or prev (64 lower-case hex)");
        goto out;
    }
    if (is_type(obj, "segment")) {
        /* Only line 1 may be a header: one inside a file would let a spliced
         * history pass as one. */
        if (lineno != 1 || parse_header_obj(obj, &l, &v->r->header) != 0) {
            fail(v, lineno, "malformed_json",
                 lineno != 1 ? "a segment header inside a segment"
                             : "ill-formed segment header (instance, prev_seq, prev_file)");
            goto out;
        }
        v->r->has_header = true;
    } else if (v->r->has_header && json_is_string(json_object_get(obj, "instance")) &&
               strcmp(json_string_value(json_object_get(obj, "instance")), v->r->header.instance) !=
                   0) {
        /* A line of another gateway spliced into this one's chain. */
        fail(v, lineno, "wrong_instance", "the line names instance %s, its segment %s",
             json_string_value(json_object_get(obj, "instance")), v->r->header.instance);
        goto out;
    }
    if (lineno == 1) {
        v->r->first_seq = l.seq;
        if (v->trust_first) {
            v->prev_seq = l.seq - 1;
            memcpy(v->prev_hash, l.prev, 32);
        }
    }
    if (memcmp(l.prev, v->prev_hash, 32) != 0) {
        fail_chain(v, lineno, l.seq);
        goto out;
    }
    /* Reached only when prev matched: seq was then edited on its own (it
     * is inside the hashed line, so this also breaks the next line's prev). */
    if (l.seq != v->prev_seq + 1) {
        fail(v, lineno, "seq_gap", "seq %" PRIu64 " follows seq %" PRIu64, l.seq, v->prev_seq);
        goto out;
    }
    /* The line's exact bytes, newline excluded: the same bytes audit.c
     * hashed, so no re-serialisation can change the result. */
    dz_sha256(line, len, l.hash);
    if (l.is_head) {
        check_head(v, lineno, obj, &l);
        if (v->stopped)
            goto out;
    }
    pair_forward(v, obj);
    v->r->lines = lineno;
    v->r->last_seq = l.seq;
    v->r->unsigned_tail = l.is_head ? 0 : v->r->unsigned_tail + 1;
    v->prev_seq = l.seq;
    memcpy(v->prev_hash, l.hash, 32);
    memcpy(v->r->last_hash, l.hash, 32);
out:
    json_decref(obj);
}

static void vstate_init(struct vstate *v, const struct dz_audit_keys *keys,
                        const struct dz_audit_chain *from, struct dz_audit_report *out)
{
    memset(out, 0, sizeof(*out));
    memset(v, 0, sizeof(*v));
    if (from) {
        v->prev_seq = from->seq;
        memcpy(v->prev_hash, from->hash, 32);
    } else {
        v->trust_first = true;
    }
    v->keys = keys;
    v->r = out;
    v->open_forwards = json_object(); /* NULL: pairs are not counted */
}

static void vstate_done(struct vstate *v)
{
    v->r->forwards_open = v->open_forwards ? json_object_size(v->open_forwards) : 0;
    json_decref(v->open_forwards);
    v->open_forwards = NULL;
}

static void incomplete(struct vstate *v)
{
    fail(v, v->r->lines + 1, "malformed_json",
         "incomplete last line (no newline): a write was cut short or the file was truncated");
}

int dz_audit_verify_buf(const void *data, size_t len, const struct dz_audit_keys *keys,
                        struct dz_audit_report *out)
{
    const char *p = data;
    const char *end = p + len;
    struct vstate v;

    vstate_init(&v, keys, &(struct dz_audit_chain){0, {0}}, out);
    while (p < end && !v.stopped) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            incomplete(&v);
            break;
        }
        feed(&v, p, (size_t)(nl - p));
        p = nl + 1;
    }
    vstate_done(&v);
    return 0;
}

int dz_audit_verify_file(const char *path, const struct dz_audit_keys *keys,
                         struct dz_audit_report *out)
{
    return dz_audit_verify_segment(path, keys, &(struct dz_audit_chain){0, {0}}, out);
}

int dz_audit_verify_segment(const char *path, const struct dz_audit_keys *keys,
                            const struct dz_audit_chain *from, struct dz_audit_report *out)
{
    struct vstate v;
    struct dz_buf line;
    char chunk[65536];
    int fd = -1;
    int rc = 0;

    vstate_init(&v, keys, from, out);
    dz_buf_init(&line, DZ_AUDIT_VERIFY_LINE_MAX);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(out->detail, sizeof(out->detail), "cannot open: %s", strerror(errno));
        rc = DZ_ERR_IO;
        goto out;
    }
    while (!v.stopped) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        const char *p = chunk;
        const char *end;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(out->detail, sizeof(out->detail), "read failed: %s", strerror(errno));
            rc = DZ_ERR_IO;
            goto out;
        }
        if (n == 0) {
            if (line.len > 0)
                incomplete(&v);
            break;
        }
        end = chunk + n;
        while (p < end && !v.stopped) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t piece = nl ? (size_t)(nl - p) : (size_t)(end - p);
            int arc = dz_buf_append(&line, p, piece);

            if (arc == DZ_ERR_TOOBIG) {
                /* The buffer is freed on error; report the line as overlong. */
                fail(&v, v.r->lines + 1, "malformed_json", "line longer than %u bytes",
                     DZ_AUDIT_VERIFY_LINE_MAX);
                break;
            }
            if (arc != 0) {
                rc = arc;
                goto out;
            }
            if (!nl)
                break;
            feed(&v, line.data ? line.data : "", line.len);
            dz_buf_reset(&line);
            p = nl + 1;
        }
    }
out:
    vstate_done(&v);
    dz_buf_cleanup(&line);
    if (fd >= 0)
        close(fd);
    return rc;
}
