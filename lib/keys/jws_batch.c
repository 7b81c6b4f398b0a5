/*
 * jws_batch.c - the Merkle-batched form of a JWS (see jws_batch.h).
 *
 * The root JWS is made and checked by jws.c; this file owns only the tree,
 * the path and the "~" framing.  A verifier trusts nothing outside the JWS
 * before the path has led from the payload to the signed root: the payload
 * is hashed and the path walked first, the payload parsed by the caller
 * afterwards.
 */
#include "keys/jws_batch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/sha256.h"
#include "keys/jws.h"

#include "base/compat.h"

#define HASH_LEN 32
#define MRK_B64_LEN 43 /* unpadded base64url of 32 bytes */

/* SHA-256(prefix || a || b); b may be NULL.  0 or DZ_ERR_CRYPTO. */
static int hash_parts(unsigned char prefix, const void *a, size_t a_len, const void *b,
                      size_t b_len, unsigned char out[HASH_LEN])
{
    const struct dz_sha256_part parts[3] = {{&prefix, 1}, {a, a_len}, {b, b ? b_len : 0}};

    return dz_sha256_parts(parts, b ? 3 : 2, out);
}

static int node_hash(const unsigned char left[HASH_LEN], const unsigned char right[HASH_LEN],
                     unsigned char out[HASH_LEN])
{
    return hash_parts(0x01, left, HASH_LEN, right, HASH_LEN, out);
}

/* ---- signing ---------------------------------------------------------- */

/* The tree, level by level in one array: level 0 is the n leaf hashes, each
 * next level ceil(count / 2) nodes, lifted ones copied.  Each level has at
 * most half the one below plus one: fewer than 2n + levels hashes. */
struct tree {
    unsigned char (*h)[HASH_LEN];
    size_t start[DZ_JWS_BATCH_DEPTH_MAX + 1]; /* index of each level's first hash */
    size_t count[DZ_JWS_BATCH_DEPTH_MAX + 1];
    unsigned levels; /* including the root's */
};

static int tree_build(const struct dz_jws_batch_item *items, size_t n, struct tree *t)
{
    size_t at = 0;
    int rc;

    t->h = malloc((2 * n + DZ_JWS_BATCH_DEPTH_MAX + 1) * sizeof(*t->h));
    if (!t->h)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((rc = hash_parts(0x00, items[i].payload, items[i].payload_len, NULL, 0, t->h[i])) != 0)
            return rc;
    }
    t->start[0] = 0;
    t->count[0] = n;
    t->levels = 1;
    at = n;
    while (t->count[t->levels - 1] > 1) {
        unsigned l = t->levels - 1;
        size_t cnt = t->count[l];
        const unsigned char(*below)[HASH_LEN] = t->h + t->start[l];

        t->start[l + 1] = at;
        t->count[l + 1] = (cnt + 1) / 2;
        for (size_t k = 0; k + 1 < cnt; k += 2) {
            if ((rc = node_hash(below[k], below[k + 1], t->h[at++])) != 0)
                return rc;
        }
        if (cnt % 2) /* the odd one out goes up as it is */
            memcpy(t->h[at++], below[cnt - 1], HASH_LEN);
        t->levels++;
    }
    return 0;
}

/* The path of leaf i: its siblings from the bottom, 33 bytes each. */
static size_t tree_path(const struct tree *t, size_t i, unsigned char *out)
{
    size_t len = 0;

    for (unsigned l = 0; l + 1 < t->levels; l++, i /= 2) {
        size_t sib = i ^ 1;
        if (sib >= t->count[l])
            continue; /* lifted: no sibling on this level */
        out[len] = (i & 1) ? 0x00 : 0x01;
        memcpy(out + len + 1, t->h[t->start[l] + sib], HASH_LEN);
        len += DZ_JWS_BATCH_STEP;
    }
    return len;
}

int dz_jws_batch_sign(struct dz_signer *s, const char *kid, const char *typ,
                      const char *root_members, const struct dz_jws_batch_item *items, size_t n,
                      char **tokens, int *rcs)
{
    struct tree t = {0};
    struct dz_buf root = {0};
    char mrk[MRK_B64_LEN + 1];
    char *jws = NULL;
    size_t jws_len;
    int rc;

    for (size_t i = 0; i < n && tokens && rcs; i++) {
        tokens[i] = NULL;
        rcs[i] = DZ_ERR_INVAL;
    }
    dz_buf_init(&root, DZ_JWS_TOKEN_MAX);
    if (!s || !root_members || !items || !tokens || !rcs || n == 0 || n > DZ_JWS_BATCH_MAX)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        rc = !items[i].payload || items[i].payload_len == 0 ? DZ_ERR_INVAL
             : items[i].payload_len > DZ_JWS_TOKEN_MAX      ? DZ_ERR_TOOBIG
                                                            : 0;
        if (rc != 0)
            goto out;
    }
    if ((rc = tree_build(items, n, &t)) != 0)
        goto out;
    dz_b64_encode_to(t.h[t.start[t.levels - 1]], HASH_LEN, true, mrk);
    if ((rc = dz_buf_append(&root, "{", 1)) != 0 || (rc = dz_buf_append_str(&root, root_members)) ||
        (rc = dz_buf_append_str(&root, *root_members ? ",\"mrk\":\"" : "\"mrk\":\"")) != 0 ||
        (rc = dz_buf_append(&root, mrk, MRK_B64_LEN)) != 0 ||
        (rc = dz_buf_append(&root, "\"}", 2)) != 0)
        goto out;
    if ((rc = dz_jws_sign_payload(s, kid, typ, root.data, root.len, &jws)) != 0)
        goto out;
    jws_len = strlen(jws);
    for (size_t i = 0; i < n; i++) {
        unsigned char path[DZ_JWS_BATCH_DEPTH_MAX * DZ_JWS_BATCH_STEP];
        size_t path_len = tree_path(&t, i, path);
        size_t pb = dz_b64_encoded_len(items[i].payload_len, true);
        size_t qb = dz_b64_encoded_len(path_len, true);
        size_t total = jws_len + 1 + pb + 1 + qb;
        char *tok;

        if (total > DZ_JWS_TOKEN_MAX) {
            rcs[i] = DZ_ERR_TOOBIG; /* this one only: the others are fine */
            continue;
        }
        tok = malloc(total + 1);
        if (!tok) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        memcpy(tok, jws, jws_len);
        tok[jws_len] = DZ_JWS_BATCH_SEP;
        dz_b64_encode_to(items[i].payload, items[i].payload_len, true, tok + jws_len + 1);
        tok[jws_len + 1 + pb] = DZ_JWS_BATCH_SEP;
        dz_b64_encode_to(path, path_len, true, tok + jws_len + 1 + pb + 1);
        tok[total] = '\0';
        tokens[i] = tok;
        rcs[i] = 0;
    }
    rc = 0;
out:
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            free(tokens[i]);
            tokens[i] = NULL;
            rcs[i] = rc;
        }
    }
    free(jws);
    free(t.h);
    dz_buf_cleanup(&root);
    return rc;
}

/* ---- verification ----------------------------------------------------- */

int dz_jws_batch_open(const char *token, size_t len, const struct dz_jwks *jwks, const char *typ,
                      json_t **out_root, unsigned char **out_payload, size_t *out_payload_len,
                      const char **out_reason)
{
    const char *reason = "malformed";
    const char *sep1 = NULL, *sep2 = NULL;
    json_t *root = NULL;
    unsigned char *payload = NULL, *path = NULL;
    size_t payload_len = 0, path_len = 0;
    unsigned char h[HASH_LEN];
    unsigned char want[HASH_LEN];
    const json_t *mrk;
    int rc;

    if (out_root)
        *out_root = NULL;
    if (out_payload)
        *out_payload = NULL;
    if (out_payload_len)
        *out_payload_len = 0;
    if (!token || !jwks || !out_payload || !out_payload_len) {
        rc = DZ_ERR_INVAL;
        reason = "internal_error";
        goto out;
    }
    if (len > DZ_JWS_TOKEN_MAX) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (token[i] != DZ_JWS_BATCH_SEP)
            continue;
        if (!sep1) {
            sep1 = token + i;
        } else if (!sep2) {
            sep2 = token + i;
        } else {
            rc = DZ_ERR_PARSE;
            goto out;
        }
    }
    /* An empty payload never is; an empty path is a batch of one. */
    if (!sep2 || sep2 == sep1 + 1) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    if ((rc = dz_jws_verify_detail(token, (size_t)(sep1 - token), jwks, typ, NULL, &root,
                                   &reason)) != 0)
        goto out;
    reason = "malformed";
    if ((rc = dz_b64_decode(sep1 + 1, (size_t)(sep2 - sep1 - 1), true, &payload, &payload_len)) !=
            0 ||
        (rc = dz_b64_decode(sep2 + 1, len - (size_t)(sep2 + 1 - token), true, &path, &path_len)) !=
            0)
        goto out;
    if (payload_len == 0 || path_len % DZ_JWS_BATCH_STEP != 0 ||
        path_len / DZ_JWS_BATCH_STEP > DZ_JWS_BATCH_DEPTH_MAX) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    if ((rc = hash_parts(0x00, payload, payload_len, NULL, 0, h)) != 0)
        goto out;
    for (size_t k = 0; k < path_len; k += DZ_JWS_BATCH_STEP) {
        const unsigned char *sib = path + k + 1;
        if (path[k] > 1) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
        if ((rc = path[k] == 0 ? node_hash(sib, h, h) : node_hash(h, sib, h)) != 0)
            goto out;
    }
    /* The root is public: a plain comparison leaks nothing. */
    rc = DZ_ERR_DENIED;
    reason = "bad_signature";
    mrk = json_object_get(root, "mrk");
    if (!json_is_string(mrk) || json_string_length(mrk) != MRK_B64_LEN)
        goto out;
    {
        unsigned char *d = NULL;
        size_t dn = 0;
        if (dz_b64_decode(json_string_value(mrk), MRK_B64_LEN, true, &d, &dn) != 0 ||
            dn != HASH_LEN) {
            free(d);
            goto out;
        }
        memcpy(want, d, HASH_LEN);
        free(d);
    }
    if (memcmp(want, h, HASH_LEN) != 0)
        goto out;
    /* dz_b64_decode leaves a NUL after the bytes: the caller may parse them. */
    if (out_root) {
        *out_root = root;
        root = NULL;
    }
    *out_payload = payload;
    *out_payload_len = payload_len;
    payload = NULL;
    reason = "ok";
    rc = 0;
out:
    if (rc == DZ_ERR_NOMEM || rc == DZ_ERR_CRYPTO)
        reason = "internal_error";
    if (out_reason)
        *out_reason = reason;
    free(payload);
    free(path);
    json_decref(root);
    return rc;
}
