/*
 * cli_transparency.c - `darvaza audit prove|check-proof|consistency`: the
 * Merkle proofs of the audit log (docs/transparency.md).  prove and
 * consistency rebuild the tree from the log files themselves (never from
 * the gateway's own tree store), so a proof they print is evidence that the
 * log as it is now matches the signed head; check-proof needs nothing but
 * the proof and a public key.  It only reads: never a private key.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "audit/audit_proof.h"
#include "audit/audit_tree.h"
#include "audit/merkle.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"
#include "keys/jws.h"

#include "base/compat.h"

static int usage(void)
{
    fputs("usage: darvaza audit prove SEQ LOG [--head HEAD.json]\n"
          "       darvaza audit check-proof PROOF.json (--jwks JWKS.json | --key PUBKEY.pem)\n"
          "       darvaza audit consistency OLD.json NEW.json LOG [--jwks JWKS | --key PEM]\n"
          "  prove: the inclusion proof of the line SEQ of the audit history whose live\n"
          "  file is LOG, against HEAD (default: the latest signed tree head in\n"
          "  LOG.tree/heads.jsonl), rebuilt from the log files; printed as JSON.\n"
          "  check-proof: check an inclusion or consistency proof and the signatures of\n"
          "  its heads.  consistency: prove from LOG that the signed tree head NEW\n"
          "  extends OLD (both from /.well-known/audit-head or heads.jsonl); prints the\n"
          "  proof, and checks it (and, with keys, both signatures).\n"
          "  Exit 0 valid, 1 invalid or the log does not match, 2 usage.\n",
          stderr);
    return 2;
}

struct keys {
    struct dz_jwks *jwks;
    EVP_PKEY *pem;
};

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    struct keys *k = arg;

    return k->pem ? k->pem : (k->jwks ? dz_jwks_find(k->jwks, kid) : NULL);
}

/* Read a whole small file (at most max bytes). */
static char *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    *len = 0;
    if (!f) {
        fprintf(stderr, "darvaza audit: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf)
        n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (buf && n > max) {
        fprintf(stderr, "darvaza audit: %s: larger than %zu bytes\n", path, max);
        free(buf);
        return NULL;
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int load_keys(struct keys *k, const char *jwks, const char *pem)
{
    size_t n;
    char *buf;
    int rc;

    if (pem) {
        FILE *f = fopen(pem, "rb");
        k->pem = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        ERR_clear_error();
        if (!k->pem) {
            fprintf(stderr, "darvaza audit: %s: not a PEM public key\n", pem);
            return DZ_ERR_PARSE;
        }
        return 0;
    }
    if (!jwks)
        return 0;
    buf = slurp(jwks, DZ_JWKS_JSON_MAX, &n);
    if (!buf)
        return DZ_ERR_IO;
    rc = dz_jwks_parse(buf, n, &k->jwks);
    free(buf);
    if (rc != 0)
        fprintf(stderr, "darvaza audit: %s: not a usable JWK set (%s)\n", jwks, dz_err_str(rc));
    return rc;
}

static void keys_free(struct keys *k)
{
    dz_jwks_free(k->jwks);
    EVP_PKEY_free(k->pem);
}

/* A signed tree head from a file holding one JSON object. */
static int load_head(const char *path, struct dz_audit_sth *out)
{
    size_t n;
    char *buf = slurp(path, 64 * 1024, &n);
    json_t *o = buf ? json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int rc = buf ? dz_audit_sth_parse(o, out) : DZ_ERR_IO;

    if (buf && rc != 0)
        fprintf(stderr, "darvaza audit: %s: not a signed tree head\n", path);
    json_decref(o);
    free(buf);
    return rc;
}

/* The latest head of LOG.tree/heads.jsonl. */
static int latest_head(const char *log, struct dz_audit_sth *out)
{
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s.tree", log);
    if (!dz_audit_tree_last_head(dir, NULL, out)) {
        fprintf(stderr, "darvaza audit: %s/heads.jsonl: no signed tree head (give --head)\n", dir);
        return DZ_ERR_NOTFOUND;
    }
    return 0;
}

/* The tree of the first `upto` lines of the history, and one line's bytes. */
struct build {
    struct dz_merkle_mem mem;
    struct dz_merkle_levels t;
    uint64_t upto;
    uint64_t n;
    uint64_t want_seq;
    char *want_line;
    size_t want_len;
};

static int add_line(void *arg, uint64_t seq, const char *line, size_t len)
{
    struct build *b = arg;
    unsigned char leaf[32];

    if (seq > b->upto)
        return 1;
    if (seq == b->want_seq) {
        b->want_line = strndup(line, len);
        b->want_len = len;
        if (!b->want_line)
            return DZ_ERR_NOMEM;
    }
    dz_merkle_leaf_hash(line, len, leaf);
    b->n = seq;
    return dz_merkle_append(&b->t, leaf);
}

static int build_tree(const char *log, uint64_t upto, uint64_t want_seq, struct build *b)
{
    int rc;

    memset(b, 0, sizeof(*b));
    b->t = dz_merkle_mem_levels(&b->mem);
    b->upto = upto;
    b->want_seq = want_seq;
    rc = dz_audit_read_history(log, 1, add_line, b);
    if (rc < 0) {
        fprintf(stderr, "darvaza audit: %s: cannot read the history from seq 1 (%s)\n", log,
                rc == DZ_ERR_STATE ? "a line is not an audit line, or seq does not follow"
                                   : dz_err_str(rc));
        return rc;
    }
    if (b->n < upto) {
        fprintf(stderr,
                "darvaza audit: %s: the history has %" PRIu64 " lines, the head %" PRIu64
                ": lines were cut off\n",
                log, b->n, upto);
        return DZ_ERR_STATE;
    }
    return 0;
}

static void build_free(struct build *b)
{
    free(b->want_line);
    dz_merkle_mem_cleanup(&b->mem);
}

static int root_matches(struct build *b, const struct dz_audit_sth *h, const char *which)
{
    unsigned char root[32];

    if (dz_merkle_root(&b->t, h->tree_size, root) != 0 || memcmp(root, h->root, 32) != 0) {
        fprintf(stderr,
                "darvaza audit: the log does not match the %s head (size %" PRIu64
                "): a line up to seq %" PRIu64 " was changed, or the head is not of this log\n",
                which, h->tree_size, h->tree_size);
        return DZ_ERR_DENIED;
    }
    return 0;
}

static int print_json(json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;

    json_decref(doc);
    if (!s)
        return 1;
    puts(s);
    free(s);
    return 0;
}

static int prove(int argc, char **argv)
{
    long long seq_ll = 0;
    uint64_t seq;
    const char *head_path = NULL;
    struct dz_audit_sth h;
    struct build b;
    static unsigned char path[DZ_MERKLE_PATH_MAX][32];
    size_t len = 0;
    int code = 1;

    if (argc < 3 || dz_parse_int(argv[1], 1, INT64_MAX, &seq_ll) != 0)
        return usage();
    seq = (uint64_t)seq_ll;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--head") == 0 && i + 1 < argc)
            head_path = argv[++i];
        else
            return usage();
    }
    if ((head_path ? load_head(head_path, &h) : latest_head(argv[2], &h)) != 0)
        return 1;
    if (seq > h.tree_size) {
        fprintf(stderr,
                "darvaza audit: seq %" PRIu64 " is not covered by the head (size %" PRIu64
                ") yet: prove it against a later head\n",
                seq, h.tree_size);
        return 1;
    }
    if (build_tree(argv[2], h.tree_size, seq, &b) == 0 && root_matches(&b, &h, "signed") == 0 &&
        dz_merkle_inclusion(&b.t, seq - 1, h.tree_size, path, &len) == 0)
        code = print_json(
            dz_audit_inclusion_json(seq, b.want_line, b.want_len, (const void *)path, len, &h));
    build_free(&b);
    return code;
}

static int report(const struct dz_audit_proof *p, int rc, const char *reason, bool keyed)
{
    char hex[65];

    if (rc != 0) {
        printf("invalid: %s\n", reason ? reason : "bad_path");
        return 1;
    }
    dz_hex(p->head.root, 32, hex);
    if (p->kind == DZ_AUDIT_PROOF_INCLUSION)
        printf("valid: line seq %" PRIu64 " is in the audit history of %s (tree size %" PRIu64
               ", root %s%s%s at %s)\n",
               p->seq, p->head.instance, p->head.tree_size, hex,
               keyed ? ", signed by " : ", signature NOT checked", keyed ? p->head.kid : "",
               p->head.time);
    else
        printf("valid: the audit history of %s at size %" PRIu64 " extends the one at size %" PRIu64
               " (root %s%s)\n",
               p->head.instance, p->head.tree_size, p->old.tree_size, hex,
               keyed ? ", both heads signed" : ", signatures NOT checked");
    return 0;
}

static int check_proof(int argc, char **argv)
{
    const char *jwks = NULL;
    const char *pem = NULL;
    struct keys k = {NULL, NULL};
    struct dz_audit_keys ak = {find_key, &k};
    struct dz_audit_proof p;
    const char *reason = NULL;
    size_t n;
    char *buf;
    int code = 1;

    if (argc < 2)
        return usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--jwks") == 0 && i + 1 < argc)
            jwks = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            pem = argv[++i];
        else
            return usage();
    }
    /* A proof whose head is not checked proves nothing against a forger:
     * the key is required. */
    if (!jwks && !pem)
        return usage();
    if (load_keys(&k, jwks, pem) != 0)
        goto out;
    buf = slurp(argv[1], DZ_AUDIT_PROOF_MAX, &n);
    if (!buf)
        goto out;
    if (dz_audit_proof_parse(buf, n, &p) != 0) {
        printf("invalid: %s is not a proof document\n", argv[1]);
        free(buf);
        goto out;
    }
    free(buf);
    code = report(&p, dz_audit_proof_check(&p, &ak, &reason), reason, true);
    dz_audit_proof_cleanup(&p);
out:
    keys_free(&k);
    return code;
}

static int consistency(int argc, char **argv)
{
    const char *jwks = NULL;
    const char *pem = NULL;
    struct keys k = {NULL, NULL};
    struct dz_audit_keys ak = {find_key, &k};
    struct dz_audit_sth old;
    struct dz_audit_sth new_;
    struct build b;
    static struct dz_audit_proof p;
    const char *reason = NULL;
    json_t *doc = NULL;
    int code = 1;

    if (argc < 4)
        return usage();
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--jwks") == 0 && i + 1 < argc)
            jwks = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            pem = argv[++i];
        else
            return usage();
    }
    if (load_keys(&k, jwks, pem) != 0 || load_head(argv[1], &old) != 0 ||
        load_head(argv[2], &new_) != 0)
        goto out;
    if (strcmp(old.instance, new_.instance) != 0 || old.tree_size > new_.tree_size) {
        printf("invalid: %s\n",
               strcmp(old.instance, new_.instance) != 0 ? "instance_mismatch" : "size_order");
        goto out;
    }
    memset(&b, 0, sizeof(b));
    if (build_tree(argv[3], new_.tree_size, 0, &b) == 0 && root_matches(&b, &old, "old") == 0 &&
        root_matches(&b, &new_, "new") == 0) {
        memset(&p, 0, sizeof(p));
        p.kind = DZ_AUDIT_PROOF_CONSISTENCY;
        p.old = old;
        p.head = new_;
        if (dz_merkle_consistency(&b.t, old.tree_size, new_.tree_size, p.path, &p.path_len) == 0) {
            doc = dz_audit_consistency_json(&old, &new_, (const void *)p.path, p.path_len);
            code = dz_audit_proof_check(&p, (jwks || pem) ? &ak : NULL, &reason) == 0 ? 0 : 1;
        }
    }
    build_free(&b);
    if (code == 0) {
        code = print_json(doc);
        doc = NULL;
    } else if (reason) {
        printf("invalid: %s\n", reason);
    }
out:
    json_decref(doc);
    keys_free(&k);
    return code;
}

int dz_cli_audit_tree(int argc, char **argv)
{
    if (strcmp(argv[0], "prove") == 0)
        return prove(argc, argv);
    if (strcmp(argv[0], "check-proof") == 0)
        return check_proof(argc, argv);
    if (strcmp(argv[0], "consistency") == 0)
        return consistency(argc, argv);
    return usage();
}
