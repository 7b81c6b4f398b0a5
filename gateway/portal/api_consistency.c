/*
 * api_consistency.c - GET /api/transparency/consistency?first=M&second=N:
 * the RFC 9162 (2.1.4) consistency proof between two tree heads this
 * gateway published (docs/transparency.md), so anyone who kept an earlier
 * head - a citizen with a downloaded inclusion proof - can check that a
 * later head extends it, without the operator's CLI.  Public, like
 * /.well-known/audit-head; the heads are looked up in heads.jsonl and the
 * proof read from the tree on the blocking pool (file I/O), and the calls
 * are counted per client address (IPv6: per /64), DZ_CONSISTENCY_RATE a
 * minute.
 */
#include "portal/api_access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_proof.h"
#include "audit/audit_tree.h"
#include "audit/merkle.h"
#include "base/err.h"
#include "core/addrrate.h"
#include "core/gwasync.h"

#include "base/compat.h"

struct cons_op {
    struct dz_audit_tree *tree;
    uint64_t first;
    uint64_t second;
    struct dz_audit_sth old;
    struct dz_audit_sth new_;
    unsigned char path[DZ_MERKLE_PATH_MAX][32];
    size_t path_len;
    const char *unknown; /* which size no published head has */
    int rc;
};

/* One size: 1..18 digits, nothing else (no sign, no space, no leading +). */
static int parse_size(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0 || n > 18 || strspn(v, "0123456789") < n)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint64_t)(v[i] - '0');
    *out = x;
    return x >= 1 ? 0 : DZ_ERR_INVAL;
}

/* first and second, each exactly once; other parameters are refused too,
 * so a typo is not read as a default. */
static int parse_query(const char *path, uint64_t *first, uint64_t *second)
{
    const char *q = strchr(path, '?');
    bool have_first = false;
    bool have_second = false;

    while (q && *q) {
        const char *name = q + 1;
        const char *end = name + strcspn(name, "&");
        const char *eq = memchr(name, '=', (size_t)(end - name));
        size_t nlen = eq ? (size_t)(eq - name) : 0;
        bool *have = NULL;
        uint64_t *into = NULL;

        if (nlen == 5 && strncmp(name, "first", 5) == 0) {
            have = &have_first;
            into = first;
        } else if (nlen == 6 && strncmp(name, "second", 6) == 0) {
            have = &have_second;
            into = second;
        }
        if (!have || *have || parse_size(eq + 1, (size_t)(end - eq - 1), into) != 0)
            return DZ_ERR_INVAL;
        *have = true;
        q = *end ? end : NULL;
    }
    return have_first && have_second && *first <= *second ? 0 : DZ_ERR_INVAL;
}

static void work(void *arg)
{
    struct cons_op *op = arg;

    op->rc = dz_audit_tree_published(op->tree, op->first, &op->old);
    if (op->rc == DZ_ERR_NOTFOUND)
        op->unknown = "first";
    if (op->rc == 0) {
        op->rc = dz_audit_tree_published(op->tree, op->second, &op->new_);
        if (op->rc == DZ_ERR_NOTFOUND)
            op->unknown = "second";
    }
    if (op->rc == 0)
        op->rc =
            dz_audit_tree_consistency(op->tree, op->first, op->second, op->path, &op->path_len);
}

static void done(struct dz_rctx *c, void *arg)
{
    struct cons_op *op = arg;
    json_t *doc;

    if (c->closed)
        goto out;
    if (op->unknown) {
        char detail[96];
        snprintf(detail, sizeof(detail), "no tree head of that size was published (%s)",
                 op->unknown);
        dz_rctx_problem(c, "not_found", detail);
        goto out;
    }
    doc = op->rc == 0
              ? dz_audit_consistency_json(&op->old, &op->new_, (const void *)op->path, op->path_len)
              : NULL;
    if (!doc) {
        dz_rctx_problem(c, "service_unavailable", "the proof could not be read");
        goto out;
    }
    dz_rctx_json(c, 200, doc, NULL, 0);
out:
    free(op);
}

static void cons_go(struct dz_rctx *c)
{
    struct cons_op *op = calloc(1, sizeof(*op));

    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->tree = c->gw->audit_tree;
    if (parse_query(dz_req_path(c->req), &op->first, &op->second) != 0) {
        dz_rctx_problem(c, "invalid_request",
                        "give first=M&second=N, the tree sizes of two published heads, "
                        "1 <= M <= N");
        free(op);
        return;
    }
    if (dz_gw_blocking(c, work, done, op) != 0)
        free(op); /* answered 503 */
}

static int64_t cons_rate(const struct dz_rctx *c)
{
    (void)c;
    return DZ_CONSISTENCY_RATE;
}

void dz_ep_audit_consistency(struct dz_rctx *c)
{
    static const struct dz_addr_rate rate = {"cons_rate", 60000, cons_rate,
                                             "too many consistency proofs asked from this address",
                                             cons_go};

    if (!c->gw->audit_tree) {
        dz_rctx_problem(c, "service_unavailable", "no audit tree");
        return;
    }
    dz_rctx_limit_address(c, &rate);
}
