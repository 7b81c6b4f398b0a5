/*
 * audit_proof.c - signed tree heads and proof documents (see
 * audit_proof.h).  Pure over the bytes it is given: it never reads a file,
 * never trusts a member before checking its type and bounds, and holds no
 * private key (heads are signed by the audit writer's callback).
 */
#include "audit/audit_proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "keys/signer.h"
#include "keys/sigverify.h"

#include "base/compat.h"

static int hex32(const char *s, size_t len, unsigned char out[32])
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
            return DZ_ERR_PARSE; /* one spelling per hash */
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

static bool printable(const char *s, size_t len, bool spaces)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < (spaces ? 0x20 : 0x21) || s[i] > 0x7e)
            return false;
    }
    return true;
}

/* A string member of 1..max bytes of printable ASCII (no '|': it separates
 * the fields of the signed string) copied into out (max+1 bytes). */
static int str_member(const json_t *obj, const char *key, size_t max, bool spaces, char *out)
{
    const json_t *v = json_object_get(obj, key);
    size_t n;

    if (!json_is_string(v))
        return DZ_ERR_PARSE;
    n = json_string_length(v);
    if (n == 0 || n > max || !printable(json_string_value(v), n, spaces) ||
        memchr(json_string_value(v), '|', n))
        return DZ_ERR_PARSE;
    memcpy(out, json_string_value(v), n);
    out[n] = '\0';
    return 0;
}

static int u64_member(const json_t *obj, const char *key, uint64_t min, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min)
        return DZ_ERR_PARSE;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static bool type_is(const json_t *obj, const char *type)
{
    const json_t *t = json_object_get(obj, "type");
    const json_t *v = json_object_get(obj, "v");

    return json_is_string(t) && strcmp(json_string_value(t), type) == 0 && json_is_integer(v) &&
           json_integer_value(v) == 1;
}

size_t dz_audit_sth_message(const struct dz_audit_sth *h, char *buf)
{
    char hex[65];
    int n;

    dz_hex(h->root, 32, hex);
    /* A prefix of its own: heads of the chain ("darvaza-audit-head|") and
     * JWS inputs ("eyJ") are signed with the same key, and none of the
     * three can pass for another. */
    n = snprintf(buf, DZ_AUDIT_STH_MSG_MAX, "darvaza-audit-tree|v1|%s|%" PRIu64 "|%s|%s",
                 h->instance, h->tree_size, hex, h->time);
    return n < 0 || (size_t)n >= DZ_AUDIT_STH_MSG_MAX ? 0 : (size_t)n;
}

json_t *dz_audit_sth_json(const struct dz_audit_sth *h)
{
    char hex[65];
    char sig[96];

    dz_hex(h->root, 32, hex);
    dz_b64_encode_to(h->sig, 64, true, sig);
    return json_pack("{s:s, s:i, s:s, s:I, s:s, s:s, s:s, s:s}", "type", "darvaza-audit-tree-head",
                     "v", 1, "instance", h->instance, "tree_size", (json_int_t)h->tree_size, "root",
                     hex, "time", h->time, "kid", h->kid, "sig", sig);
}

int dz_audit_sth_parse(const json_t *obj, struct dz_audit_sth *out)
{
    struct dz_audit_sth h;
    const json_t *root;
    const json_t *sig;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc = DZ_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    memset(&h, 0, sizeof(h));
    if (!json_is_object(obj) || !type_is(obj, "darvaza-audit-tree-head"))
        goto out;
    root = json_object_get(obj, "root");
    sig = json_object_get(obj, "sig");
    if (str_member(obj, "instance", DZ_AUDIT_INSTANCE_MAX, false, h.instance) != 0 ||
        u64_member(obj, "tree_size", 1, &h.tree_size) != 0 ||
        str_member(obj, "time", DZ_AUDIT_TIME_MAX, false, h.time) != 0 ||
        str_member(obj, "kid", sizeof(h.kid) - 1, false, h.kid) != 0 || !json_is_string(root) ||
        hex32(json_string_value(root), json_string_length(root), h.root) != 0 ||
        !json_is_string(sig) ||
        dz_b64_decode(json_string_value(sig), json_string_length(sig), true, &raw, &raw_len) != 0 ||
        raw_len != 64)
        goto out;
    memcpy(h.sig, raw, 64);
    *out = h;
    rc = 0;
out:
    free(raw);
    return rc;
}

int dz_audit_sth_verify(const struct dz_audit_sth *h, const struct dz_audit_keys *keys)
{
    char msg[DZ_AUDIT_STH_MSG_MAX];
    size_t n = dz_audit_sth_message(h, msg);
    EVP_PKEY *pub = keys && keys->find ? keys->find(keys->arg, h->kid) : NULL;

    if (!pub)
        return DZ_ERR_NOTFOUND;
    /* ES256 is P-256 only: a key of another curve found under the kid is
     * refused, not tried. */
    if (n == 0 || !dz_signer_key_is_p256(pub) ||
        dz_sig_verify(pub, "ES256", msg, n, h->sig, 64) != 0)
        return DZ_ERR_DENIED;
    return 0;
}

static json_t *path_json(const unsigned char path[][32], size_t path_len)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < path_len; i++) {
        char hex[65];
        dz_hex(path[i], 32, hex);
        if (json_array_append_new(a, json_string(hex)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *dz_audit_inclusion_json(uint64_t seq, const char *line, size_t line_len,
                                const unsigned char path[][32], size_t path_len,
                                const struct dz_audit_sth *head)
{
    json_t *o = json_pack("{s:s, s:i, s:I, s:s%, s:o*, s:o*}", "type", "darvaza-audit-inclusion",
                          "v", 1, "seq", (json_int_t)seq, "line", line, line_len, "path",
                          path_json(path, path_len), "head", dz_audit_sth_json(head));

    /* json_pack drops the whole object when a member is missing. */
    if (o && (!json_object_get(o, "path") || !json_object_get(o, "head"))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *dz_audit_consistency_json(const struct dz_audit_sth *old, const struct dz_audit_sth *new_,
                                  const unsigned char path[][32], size_t path_len)
{
    json_t *o = json_pack("{s:s, s:i, s:o*, s:o*, s:o*}", "type", "darvaza-audit-consistency", "v",
                          1, "old", dz_audit_sth_json(old), "new", dz_audit_sth_json(new_), "path",
                          path_json(path, path_len));

    if (o &&
        (!json_object_get(o, "old") || !json_object_get(o, "new") || !json_object_get(o, "path"))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static int path_parse(const json_t *a, struct dz_audit_proof *p)
{
    size_t n = json_array_size(a);

    if (!json_is_array(a) || n > DZ_MERKLE_PATH_MAX)
        return DZ_ERR_PARSE;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_string(v) ||
            hex32(json_string_value(v), json_string_length(v), p->path[i]) != 0)
            return DZ_ERR_PARSE;
    }
    p->path_len = n;
    return 0;
}

int dz_audit_proof_parse(const char *buf, size_t len, struct dz_audit_proof *out)
{
    json_error_t jerr;
    json_t *o = NULL;
    int rc = DZ_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > DZ_AUDIT_PROOF_MAX)
        goto out;
    o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o))
        goto out;
    if (type_is(o, "darvaza-audit-inclusion")) {
        const json_t *line = json_object_get(o, "line");
        out->kind = DZ_AUDIT_PROOF_INCLUSION;
        if (u64_member(o, "seq", 1, &out->seq) != 0 || !json_is_string(line) ||
            json_string_length(line) == 0 || json_string_length(line) > DZ_AUDIT_VERIFY_LINE_MAX ||
            dz_audit_sth_parse(json_object_get(o, "head"), &out->head) != 0 ||
            path_parse(json_object_get(o, "path"), out) != 0)
            goto out;
        out->line_len = json_string_length(line);
        out->line = malloc(out->line_len + 1);
        if (!out->line) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        memcpy(out->line, json_string_value(line), out->line_len + 1);
    } else if (type_is(o, "darvaza-audit-consistency")) {
        out->kind = DZ_AUDIT_PROOF_CONSISTENCY;
        if (dz_audit_sth_parse(json_object_get(o, "old"), &out->old) != 0 ||
            dz_audit_sth_parse(json_object_get(o, "new"), &out->head) != 0 ||
            path_parse(json_object_get(o, "path"), out) != 0)
            goto out;
    } else {
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    if (rc != 0)
        dz_audit_proof_cleanup(out);
    return rc;
}

void dz_audit_proof_cleanup(struct dz_audit_proof *p)
{
    if (!p)
        return;
    free(p->line);
    memset(p, 0, sizeof(*p));
}

static int sig_check(const struct dz_audit_sth *h, const struct dz_audit_keys *keys,
                     const char **reason)
{
    int rc;

    if (!keys)
        return 0;
    rc = dz_audit_sth_verify(h, keys);
    if (rc != 0)
        *reason = rc == DZ_ERR_NOTFOUND ? "unknown_kid" : "bad_signature";
    return rc == 0 ? 0 : DZ_ERR_DENIED;
}

int dz_audit_proof_check(const struct dz_audit_proof *p, const struct dz_audit_keys *keys,
                         const char **reason)
{
    *reason = NULL;
    if (p->kind == DZ_AUDIT_PROOF_INCLUSION) {
        struct dz_audit_line l;
        unsigned char leaf[32];
        /* The seq inside the line, not only the proof's word for it: the
         * leaf index must be the line's own place in the history. */
        if (dz_audit_parse_line(p->line, p->line_len, &l) != 0 || l.seq != p->seq) {
            *reason = "seq_mismatch";
            return DZ_ERR_DENIED;
        }
        dz_merkle_leaf_hash(p->line, p->line_len, leaf);
        if (!dz_merkle_verify_inclusion(leaf, p->seq - 1, p->head.tree_size,
                                        (const unsigned char(*)[32])p->path, p->path_len,
                                        p->head.root)) {
            *reason = "bad_path";
            return DZ_ERR_DENIED;
        }
        return sig_check(&p->head, keys, reason);
    }
    if (p->kind == DZ_AUDIT_PROOF_CONSISTENCY) {
        if (strcmp(p->old.instance, p->head.instance) != 0) {
            *reason = "instance_mismatch";
            return DZ_ERR_DENIED;
        }
        if (p->old.tree_size > p->head.tree_size) {
            *reason = "size_order";
            return DZ_ERR_DENIED;
        }
        if (!dz_merkle_verify_consistency(p->old.tree_size, p->head.tree_size, p->old.root,
                                          p->head.root, (const unsigned char(*)[32])p->path,
                                          p->path_len)) {
            *reason = "bad_path";
            return DZ_ERR_DENIED;
        }
        if (sig_check(&p->old, keys, reason) != 0)
            return DZ_ERR_DENIED;
        return sig_check(&p->head, keys, reason);
    }
    *reason = "bad_path";
    return DZ_ERR_DENIED;
}
