/*
 * test_merkle.c - the RFC 9162 Merkle tree (audit/merkle.c), the proof
 * documents (audit/audit_proof.c) and the tree kept beside an audit log
 * (audit/audit_tree.c): known roots (the RFC 6962 reference vectors), every
 * inclusion and consistency proof of small trees checked against a naive
 * recursive definition, tampered proofs refused, and the on-disk tree
 * following a real writer, repaired after damage and rebuilt when it
 * disagrees with the log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_proof.h"
#include "audit/audit_tree.h"
#include "audit/merkle.h"
#include "base/err.h"
#include "base/secret.h"
#include "keys/ecdsa_sig.h"

static EVP_PKEY *key;
static EVP_PKEY *other;

static int group_setup(void **state)
{
    (void)state;
    key = EVP_EC_gen("P-256");
    other = EVP_EC_gen("P-256");
    return key && other ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return 0;
}

static int sign_cb(void *arg, const void *data, size_t len, unsigned char sig[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = sizeof(der);
    int rc = DZ_ERR_CRYPTO;

    if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, arg) == 1 &&
        EVP_DigestSign(ctx, der, &der_len, data, len) == 1)
        rc = dz_ecdsa_sig_der_to_raw(der, der_len, 32, sig);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static EVP_PKEY *find_k1(void *arg, const char *kid)
{
    return strcmp(kid, "k1") == 0 ? arg : NULL;
}

static void hex_to(const char *hex, unsigned char out[32])
{
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* MTH straight from the RFC's definition, over leaf hashes. */
static void naive_mth(unsigned char (*leaves)[32], size_t n, unsigned char out[32])
{
    size_t k = 1;
    unsigned char l[32];
    unsigned char r[32];

    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    naive_mth(leaves, k, l);
    naive_mth(leaves + k, n - k, r);
    dz_merkle_node_hash(l, r, out);
}

static void test_reference_vectors(void **state)
{
    /* RFC 6962's reference leaves and the roots of their first n. */
    static const char *const data[] = {"",
                                       "00",
                                       "10",
                                       "2021",
                                       "3031",
                                       "40414243",
                                       "5051525354555657",
                                       "606162636465666768696a6b6c6d6e6f"};
    static const char *const roots[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
    struct dz_merkle_mem m;
    struct dz_merkle_levels t;

    (void)state;
    memset(&m, 0, sizeof(m));
    t = dz_merkle_mem_levels(&m);
    for (size_t i = 0; i < 8; i++) {
        unsigned char bytes[16];
        size_t n = strlen(data[i]) / 2;
        unsigned char leaf[32];
        unsigned char want[32];
        unsigned char got[32];
        for (size_t j = 0; j < n; j++) {
            unsigned v;
            sscanf(data[i] + 2 * j, "%2x", &v);
            bytes[j] = (unsigned char)v;
        }
        dz_merkle_leaf_hash(bytes, n, leaf);
        assert_int_equal(dz_merkle_append(&t, leaf), 0);
        hex_to(roots[i], want);
        assert_int_equal(dz_merkle_root(&t, i + 1, got), 0);
        assert_memory_equal(got, want, 32);
    }
    dz_merkle_mem_cleanup(&m);
}

/* Every proof of every tree up to N leaves, against the naive roots. */
static void test_all_proofs(void **state)
{
    enum { N = 70 };
    static unsigned char leaves[N][32];
    static unsigned char roots[N + 1][32];
    static unsigned char path[DZ_MERKLE_PATH_MAX][32];
    struct dz_merkle_mem m;
    struct dz_merkle_levels t;
    size_t len;

    (void)state;
    memset(&m, 0, sizeof(m));
    t = dz_merkle_mem_levels(&m);
    for (size_t i = 0; i < N; i++) {
        char d[16];
        snprintf(d, sizeof(d), "line %zu", i);
        dz_merkle_leaf_hash(d, strlen(d), leaves[i]);
        assert_int_equal(dz_merkle_append(&t, leaves[i]), 0);
        naive_mth(leaves, i + 1, roots[i + 1]);
    }
    for (uint64_t n = 1; n <= N; n++) {
        unsigned char got[32];
        assert_int_equal(dz_merkle_root(&t, n, got), 0);
        assert_memory_equal(got, roots[n], 32);
        for (uint64_t i = 0; i < n; i++) {
            assert_int_equal(dz_merkle_inclusion(&t, i, n, path, &len), 0);
            assert_true(
                dz_merkle_verify_inclusion(leaves[i], i, n, (const void *)path, len, roots[n]));
            /* Another leaf, another index, another size, a changed hash: no. */
            assert_false(dz_merkle_verify_inclusion(leaves[(i + 1) % N], i, n, (const void *)path,
                                                    len, roots[n]));
            if (n > 1)
                assert_false(dz_merkle_verify_inclusion(leaves[i], (i + 1) % n, n,
                                                        (const void *)path, len, roots[n]));
            /* (The size alone does not always change the path's shape -
             * leaves of a complete left subtree have the same path in n and
             * n+1 - which is why the head signs the size with the root.) */
            assert_false(dz_merkle_verify_inclusion(leaves[i], i, n + 1, (const void *)path, len,
                                                    roots[n + 1 <= N ? n + 1 : n]) &&
                         n + 1 <= N);
            if (len > 0) {
                path[len - 1][7] ^= 1;
                assert_false(
                    dz_merkle_verify_inclusion(leaves[i], i, n, (const void *)path, len, roots[n]));
                /* A path one hash short or long. */
                assert_false(dz_merkle_verify_inclusion(leaves[i], i, n, (const void *)path,
                                                        len - 1, roots[n]));
            }
        }
        for (uint64_t k = 1; k <= n; k++) {
            assert_int_equal(dz_merkle_consistency(&t, k, n, path, &len), 0);
            assert_true(
                dz_merkle_verify_consistency(k, n, roots[k], roots[n], (const void *)path, len));
            if (k < n) {
                assert_false(dz_merkle_verify_consistency(k, n, roots[k + 1], roots[n],
                                                          (const void *)path, len));
                assert_false(dz_merkle_verify_consistency(k, n, roots[k], roots[n - 1],
                                                          (const void *)path, len));
                path[0][0] ^= 1;
                assert_false(dz_merkle_verify_consistency(k, n, roots[k], roots[n],
                                                          (const void *)path, len));
            }
        }
    }
    assert_int_equal(dz_merkle_inclusion(&t, 5, 5, path, &len), DZ_ERR_INVAL);
    assert_int_equal(dz_merkle_consistency(&t, 0, 5, path, &len), DZ_ERR_INVAL);
    assert_int_equal(dz_merkle_consistency(&t, 6, 5, path, &len), DZ_ERR_INVAL);
    assert_int_equal(dz_merkle_root(&t, N + 1, path[0]), DZ_ERR_INVAL);
    dz_merkle_mem_cleanup(&m);
}

/* A repaired store equals one that never lost its parents. */
static void test_repair(void **state)
{
    struct dz_merkle_mem m;
    struct dz_merkle_levels t;
    unsigned char leaf[32];
    unsigned char before[32];
    unsigned char after[32];

    (void)state;
    memset(&m, 0, sizeof(m));
    t = dz_merkle_mem_levels(&m);
    for (int i = 0; i < 37; i++) {
        dz_merkle_leaf_hash(&i, sizeof(i), leaf);
        assert_int_equal(dz_merkle_append(&t, leaf), 0);
    }
    assert_int_equal(dz_merkle_root(&t, 37, before), 0);
    m.n[1] = 3; /* a crash after the leaves, before their parents */
    m.n[2] = 0;
    m.n[3] = 0;
    m.n[5] = 0;
    assert_int_equal(dz_merkle_repair(&t), 0);
    assert_int_equal(m.n[1], 18);
    assert_int_equal(m.n[5], 1);
    assert_int_equal(dz_merkle_root(&t, 37, after), 0);
    assert_memory_equal(before, after, 32);
    m.n[4] = 9; /* more parents than children: the owner's problem */
    assert_int_equal(dz_merkle_repair(&t), DZ_ERR_STATE);
    dz_merkle_mem_cleanup(&m);
}

/* ------------------------------------------------------ proof documents */

static void make_head(struct dz_merkle_levels *t, uint64_t n, EVP_PKEY *k, struct dz_audit_sth *h)
{
    char msg[DZ_AUDIT_STH_MSG_MAX];
    size_t len;

    memset(h, 0, sizeof(*h));
    snprintf(h->instance, sizeof(h->instance), "gw-1");
    snprintf(h->kid, sizeof(h->kid), "k1");
    snprintf(h->time, sizeof(h->time), "2026-12-06T12:00:00.000Z");
    h->tree_size = n;
    assert_int_equal(dz_merkle_root(t, n, h->root), 0);
    len = dz_audit_sth_message(h, msg);
    assert_true(len > 0);
    assert_int_equal(sign_cb(k, msg, len, h->sig), 0);
}

static char *lines[20];

static void build_log(struct dz_merkle_mem *m, struct dz_merkle_levels *t)
{
    char prev[65];
    unsigned char h[32];

    memset(prev, '0', 64);
    prev[64] = '\0';
    memset(m, 0, sizeof(*m));
    *t = dz_merkle_mem_levels(m);
    for (int i = 0; i < 20; i++) {
        unsigned char leaf[32];
        lines[i] = malloc(256);
        snprintf(lines[i], 256,
                 "{\"fin\":\"AAAAAA%d\",\"prev\":\"%s\",\"seq\":%d,\"time\":\"t\",\"type\":\"x\"}",
                 i % 10, prev, i + 1);
        dz_sha256(lines[i], strlen(lines[i]), h);
        dz_hex(h, 32, prev);
        dz_merkle_leaf_hash(lines[i], strlen(lines[i]), leaf);
        assert_int_equal(dz_merkle_append(t, leaf), 0);
    }
}

static void free_log(struct dz_merkle_mem *m)
{
    for (int i = 0; i < 20; i++)
        free(lines[i]);
    dz_merkle_mem_cleanup(m);
}

static int check_doc(json_t *doc, const struct dz_audit_keys *keys, const char **reason)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    struct dz_audit_proof p;
    int rc;

    assert_non_null(s);
    rc = dz_audit_proof_parse(s, strlen(s), &p);
    free(s);
    if (rc != 0) {
        *reason = "parse";
        return rc;
    }
    rc = dz_audit_proof_check(&p, keys, reason);
    dz_audit_proof_cleanup(&p);
    return rc;
}

static void test_documents(void **state)
{
    struct dz_merkle_mem m;
    struct dz_merkle_levels t;
    struct dz_audit_sth h12;
    struct dz_audit_sth h20;
    struct dz_audit_sth wrong;
    static unsigned char path[DZ_MERKLE_PATH_MAX][32];
    size_t len;
    struct dz_audit_keys keys = {find_k1, NULL};
    struct dz_audit_keys other_keys = {find_k1, NULL};
    const char *reason = NULL;
    json_t *doc;

    (void)state;
    keys.arg = key;
    other_keys.arg = other;
    build_log(&m, &t);
    make_head(&t, 12, key, &h12);
    make_head(&t, 20, key, &h20);
    make_head(&t, 20, other, &wrong);

    /* Inclusion of line 7 in the head of 12. */
    assert_int_equal(dz_merkle_inclusion(&t, 6, 12, path, &len), 0);
    doc = dz_audit_inclusion_json(7, lines[6], strlen(lines[6]), (const void *)path, len, &h12);
    assert_int_equal(check_doc(doc, &keys, &reason), 0);
    assert_int_equal(check_doc(doc, &other_keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "bad_signature");
    assert_int_equal(check_doc(doc, NULL, &reason), 0);
    /* The line changed by one byte: the path no longer leads to the root. */
    json_object_set_new(doc, "line", json_string(lines[16] /* seq 17 */));
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "seq_mismatch");
    {
        char *l = strdup(lines[6]);
        l[9] = 'B';
        json_object_set_new(doc, "line", json_string(l));
        free(l);
    }
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "bad_path");
    json_decref(doc);
    /* A head re-signed over another size, or another kid. */
    doc = dz_audit_inclusion_json(7, lines[6], strlen(lines[6]), (const void *)path, len, &h20);
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "bad_path");
    json_decref(doc);
    snprintf(h12.kid, sizeof(h12.kid), "k9");
    doc = dz_audit_inclusion_json(7, lines[6], strlen(lines[6]), (const void *)path, len, &h12);
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "unknown_kid");
    json_decref(doc);
    snprintf(h12.kid, sizeof(h12.kid), "k1");

    /* Consistency 12 -> 20. */
    assert_int_equal(dz_merkle_consistency(&t, 12, 20, path, &len), 0);
    doc = dz_audit_consistency_json(&h12, &h20, (const void *)path, len);
    assert_int_equal(check_doc(doc, &keys, &reason), 0);
    json_decref(doc);
    doc = dz_audit_consistency_json(&h20, &h12, (const void *)path, len);
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "size_order");
    json_decref(doc);
    wrong = h20;
    snprintf(wrong.instance, sizeof(wrong.instance), "gw-2");
    doc = dz_audit_consistency_json(&h12, &wrong, (const void *)path, len);
    assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "instance_mismatch");
    json_decref(doc);
    /* A forked history: the same size 12 but another line 5. */
    {
        struct dz_merkle_mem m2;
        struct dz_merkle_levels t2;
        struct dz_audit_sth fork;
        unsigned char leaf[32];
        memset(&m2, 0, sizeof(m2));
        t2 = dz_merkle_mem_levels(&m2);
        for (int i = 0; i < 12; i++) {
            dz_merkle_leaf_hash(i == 4 ? "forged" : lines[i], i == 4 ? 6 : strlen(lines[i]), leaf);
            dz_merkle_append(&t2, leaf);
        }
        make_head(&t2, 12, key, &fork);
        doc = dz_audit_consistency_json(&fork, &h20, (const void *)path, len);
        assert_int_equal(check_doc(doc, &keys, &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_path");
        json_decref(doc);
        dz_merkle_mem_cleanup(&m2);
    }
    free_log(&m);
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"type\":\"darvaza-audit-inclusion\",\"v\":1}",
        "{\"type\":\"darvaza-audit-inclusion\",\"v\":2,\"seq\":1,\"line\":\"x\",\"path\":[]}",
        "{\"type\":\"darvaza-audit-consistency\",\"v\":1,\"old\":{},\"new\":{},\"path\":[]}",
        "{\"type\":\"other\",\"v\":1}",
        "{\"type\":\"darvaza-audit-inclusion\",\"type\":\"darvaza-audit-inclusion\",\"v\":1}",
    };
    static const char head_ok[] =
        "{\"type\":\"darvaza-audit-tree-head\",\"v\":1,\"instance\":\"gw\",\"tree_size\":3,"
        "\"root\":\"%s\",\"time\":\"%s\",\"kid\":\"k1\",\"sig\":\"%s\"}";
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    static const char sig64[] =
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    struct dz_audit_proof p;
    char buf[2048];
    json_t *o;
    struct dz_audit_sth h;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dz_audit_proof_parse(bad[i], strlen(bad[i]), &p), DZ_ERR_PARSE);
    snprintf(buf, sizeof(buf), head_ok, zeros, "2026-12-06T00:00:00Z", sig64);
    o = json_loads(buf, 0, NULL);
    assert_int_equal(dz_audit_sth_parse(o, &h), 0);
    json_decref(o);
    /* Upper-case hex, a '|' in the time, a short signature: each refused. */
    snprintf(buf, sizeof(buf), head_ok,
             "000000000000000000000000000000000000000000000000000000000000000A",
             "2026-12-06T00:00:00Z", sig64);
    o = json_loads(buf, 0, NULL);
    assert_int_equal(dz_audit_sth_parse(o, &h), DZ_ERR_PARSE);
    json_decref(o);
    snprintf(buf, sizeof(buf), head_ok, zeros, "2026|12", sig64);
    o = json_loads(buf, 0, NULL);
    assert_int_equal(dz_audit_sth_parse(o, &h), DZ_ERR_PARSE);
    json_decref(o);
    snprintf(buf, sizeof(buf), head_ok, zeros, "2026-12-06T00:00:00Z", "AAAA");
    o = json_loads(buf, 0, NULL);
    assert_int_equal(dz_audit_sth_parse(o, &h), DZ_ERR_PARSE);
    json_decref(o);
    /* A path longer than any tree needs. */
    {
        json_t *path = json_array();
        json_t *doc;
        char *s;
        for (int i = 0; i <= DZ_MERKLE_PATH_MAX; i++)
            json_array_append_new(path, json_string(zeros));
        snprintf(buf, sizeof(buf), head_ok, zeros, "2026-12-06T00:00:00Z", sig64);
        doc = json_pack("{s:s, s:i, s:i, s:s, s:o, s:o}", "type", "darvaza-audit-inclusion", "v", 1,
                        "seq", 1, "line", "x", "path", path, "head", json_loads(buf, 0, NULL));
        s = json_dumps(doc, 0);
        assert_int_equal(dz_audit_proof_parse(s, strlen(s), &p), DZ_ERR_PARSE);
        free(s);
        json_decref(doc);
    }
}

/* ------------------------------------------------- the tree beside a log */

static char tmpdir[64];
static char logpath[128];

static void rm_rf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void on_done(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, 0);
}

static int done_n;

static int count_segments(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int segs = 0;

    while (d && (e = readdir(d)) != NULL)
        segs += strncmp(e->d_name, "audit-", 6) == 0;
    if (d)
        closedir(d);
    return segs;
}

static void count_done(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, 0);
    __atomic_add_fetch(&done_n, 1, __ATOMIC_SEQ_CST);
}

static void wait_done(int n)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&done_n, __ATOMIC_SEQ_CST) < n; i++)
        usleep(1000);
    assert_int_equal(__atomic_load_n(&done_n, __ATOMIC_SEQ_CST), n);
}

static void write_lines(struct dz_audit_tree *t, int n, bool rotate_midway)
{
    struct dz_audit *a = NULL;
    struct dz_audit_rotation rot = {.instance = "gw-1"};

    assert_int_equal(dz_audit_open(logpath, &a), 0);
    /* The instance the gateway names in every segment header. */
    assert_int_equal(dz_audit_set_rotation(a, &rot), 0);
    if (t)
        dz_audit_set_observer(a, dz_audit_tree_observe, t);
    assert_int_equal(dz_audit_set_head_signer(a, sign_cb, key, "k1", 0), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(dz_audit_append(a, json_pack("{s:s, s:i}", "type", "forward", "i", i),
                                         NULL, rotate_midway ? count_done : on_done, NULL),
                         0);
        if (rotate_midway && i == n / 2) {
            /* A rotation after a durable line: the tree goes on in the
             * next segment (read back through dz_audit_read_history). */
            wait_done(i + 1);
            dz_audit_request_head(a);
            dz_audit_rotate(a);
            for (int k = 0; k < 5000 && count_segments() == 0; k++)
                usleep(1000);
        }
    }
    dz_audit_close(a);
}

struct collect {
    struct dz_merkle_levels t;
    uint64_t n;
};

static int collect_line(void *arg, uint64_t seq, const char *line, size_t len)
{
    struct collect *c = arg;
    unsigned char leaf[32];

    assert_int_equal(seq, c->n + 1);
    c->n++;
    dz_merkle_leaf_hash(line, len, leaf);
    return dz_merkle_append(&c->t, leaf);
}

static void expect_tree_matches_log(struct dz_audit_tree *t)
{
    struct dz_merkle_mem m;
    struct collect c;
    struct dz_audit_sth h;
    unsigned char root[32];
    struct dz_audit_keys keys = {find_k1, NULL};
    static unsigned char path[DZ_MERKLE_PATH_MAX][32];
    size_t len;

    keys.arg = key;
    memset(&m, 0, sizeof(m));
    c.t = dz_merkle_mem_levels(&m);
    c.n = 0;
    assert_int_equal(dz_audit_read_history(logpath, 1, collect_line, &c), 0);
    assert_int_equal(dz_audit_tree_size(t), c.n);
    assert_int_equal(dz_audit_tree_head(t, &h), 0);
    assert_true(h.tree_size <= c.n);
    assert_int_equal(dz_merkle_root(&c.t, h.tree_size, root), 0);
    assert_memory_equal(root, h.root, 32);
    assert_int_equal(dz_audit_sth_verify(&h, &keys), 0);
    for (uint64_t seq = 1; seq <= h.tree_size; seq++) {
        unsigned char leaf[32];
        assert_int_equal(dz_audit_tree_inclusion(t, seq, h.tree_size, path, &len), 0);
        assert_int_equal(c.t.get(c.t.arg, 0, seq - 1, leaf), 0);
        assert_true(dz_merkle_verify_inclusion(leaf, seq - 1, h.tree_size, (const void *)path, len,
                                               h.root));
    }
    dz_merkle_mem_cleanup(&m);
}

/* Is there an AUDIT.log.tree.bad-* beside the log? */
static bool tree_aside(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    bool aside = false;

    while (d && (e = readdir(d)) != NULL)
        aside |= strstr(e->d_name, "audit.log.tree.bad-") != NULL;
    if (d)
        closedir(d);
    return aside;
}

/* Change the last line of the live file (the first letter of its first
 * key upper-cased), keeping its seq; returns that seq. */
static uint64_t last_seq_and_edit(void)
{
    FILE *f = fopen(logpath, "r+");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    off_t at = 0;
    off_t last = 0;
    uint64_t seq = 0;

    assert_non_null(f);
    while ((len = getline(&line, &cap, f)) > 0) {
        last = at;
        at += len;
        seq = strtoull(strstr(line, "\"seq\":") + 6, NULL, 10);
    }
    assert_int_equal(fseeko(f, last, SEEK_SET), 0);
    assert_true(getline(&line, &cap, f) > 2 && line[2] >= 'a' && line[2] <= 'z');
    assert_int_equal(fseeko(f, last + 2, SEEK_SET), 0);
    assert_int_equal(fputc(line[2] - 'a' + 'A', f), line[2] - 'a' + 'A');
    free(line);
    fclose(f);
    return seq;
}

static int count_line(void *arg, uint64_t seq, const char *line, size_t len)
{
    (void)seq;
    (void)line;
    (void)len;
    ++*(uint64_t *)arg;
    return 0;
}

static void test_tree_follows_log(void **state)
{
    struct dz_audit_tree *t = NULL;
    char p[256];

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_merkle_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(logpath, sizeof(logpath), "%s/audit.log", tmpdir);

    /* A tree attached from the first line, across a rotation. */
    assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
    done_n = 0;
    write_lines(t, 40, true);
    assert_int_equal(count_segments(), 1);
    expect_tree_matches_log(t);
    dz_audit_tree_close(t);

    /* Lines written while no tree followed: caught up at open, from both
     * segments. */
    write_lines(NULL, 7, false);
    assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
    write_lines(t, 3, false);
    expect_tree_matches_log(t);
    /* Lines written while the open tree did not follow: the next batch
     * finds them missing and reads them back from the log. */
    write_lines(NULL, 5, false);
    write_lines(t, 2, false);
    expect_tree_matches_log(t);
    dz_audit_tree_close(t);

    /* Parents lost (a crash): recomputed from the leaves. */
    snprintf(p, sizeof(p), "%s.tree/L01", logpath);
    assert_int_equal(truncate(p, 32), 0);
    snprintf(p, sizeof(p), "%s.tree/L03", logpath);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
    expect_tree_matches_log(t);
    dz_audit_tree_close(t);

    /* The whole tree lost: rebuilt from the log, whose own signed heads
     * are all there is to check it by (across both segments). */
    snprintf(p, sizeof(p), "%s.tree", logpath);
    assert_true(dz_audit_tree_vouched(logpath, NULL) > 0);
    rm_rf(p);
    assert_int_equal(dz_audit_tree_vouched(logpath, NULL), 0);
    {
        struct dz_audit_history_check *c = malloc(sizeof(*c));
        struct dz_audit_keys keys = {find_k1, key};
        struct dz_audit_keys none = {find_k1, NULL};
        uint64_t nlines = 0;
        assert_non_null(c);
        assert_int_equal(dz_audit_verify_history(logpath, 0, &keys, c), 0);
        assert_null(c->reason);
        assert_int_equal(dz_audit_read_history(logpath, 1, count_line, &nlines), 0);
        assert_int_equal(c->lines, nlines);
        assert_true(c->heads_verified >= 4);
        assert_int_equal(c->unsigned_tail, 0);
        assert_string_equal(c->head_path, logpath);
        assert_int_equal(dz_audit_verify_history(logpath, 0, &none, c), 0);
        assert_string_equal(c->reason, "unknown_kid");
        assert_non_null(strstr(c->path, "/audit-"));
        /* From a seq of the live file on, the closed segment is left unread. */
        assert_int_equal(dz_audit_verify_history(logpath, nlines, &none, c), 0);
        assert_string_equal(c->reason, "unknown_kid");
        assert_string_equal(c->path, logpath);
        free(c);
    }
    assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
    write_lines(t, 1, false);
    expect_tree_matches_log(t);
    dz_audit_tree_close(t);

    /* The live file cut short (restored from an older copy): the open
     * refuses and says where, nothing is moved aside or signed; only an
     * acknowledgement made for this very state lets a later open rebuild,
     * and that open hands back the record of the restore to append. */
    {
        uint64_t tree_n;
        uint64_t header_seq;
        struct dz_audit_mismatch m;
        json_t *rec;
        FILE *f = fopen(logpath, "r");
        char *line = NULL;
        size_t cap = 0;
        off_t keep = 0;
        char acc[256];

        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
        tree_n = dz_audit_tree_size(t);
        dz_audit_tree_close(t);
        assert_non_null(f);
        assert_true(getline(&line, &cap, f) > 0); /* keep the header only */
        keep = ftello(f);
        header_seq = strtoull(strstr(line, "\"seq\":") + 6, NULL, 10);
        free(line);
        fclose(f);
        assert_true(header_seq < tree_n);
        assert_int_equal(truncate(logpath, keep), 0);

        t = NULL;
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, &m), DZ_ERR_STATE);
        assert_null(t);
        assert_int_equal(m.seq, header_seq + 1);
        assert_int_equal(m.log_end, header_seq);
        assert_int_equal(m.tree_size, tree_n);
        assert_non_null(strstr(m.what, "were cut"));
        assert_false(tree_aside());

        assert_int_equal(dz_audit_tree_accept_restore(logpath, NULL, "bad\nreason", &m),
                         DZ_ERR_INVAL);
        assert_int_equal(dz_audit_tree_accept_restore(logpath, NULL, "restored 12-06 backup", &m),
                         0);
        /* An acknowledgement for another state (here: another log end) is void. */
        snprintf(acc, sizeof(acc), "%s.tree/%s", logpath, DZ_AUDIT_ACCEPT_NAME);
        {
            json_t *o = json_load_file(acc, 0, NULL);
            json_t *o2 = json_deep_copy(o);
            json_object_set_new(o2, "log_end", json_integer((json_int_t)header_seq + 1));
            assert_int_equal(json_dump_file(o2, acc, 0), 0);
            assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, &m), DZ_ERR_STATE);
            assert_false(tree_aside());
            assert_int_equal(json_dump_file(o, acc, 0), 0);
            json_decref(o);
            json_decref(o2);
        }
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, &m), 0);
        assert_true(tree_aside());
        assert_int_equal(dz_audit_tree_size(t), header_seq);
        rec = dz_audit_tree_restore_pending(t);
        assert_non_null(rec);
        assert_string_equal(json_string_value(json_object_get(rec, "type")), "audit_restore");
        assert_int_equal(json_integer_value(json_object_get(rec, "old_tree_size")), tree_n);
        assert_int_equal(json_integer_value(json_object_get(rec, "differs_at")), header_seq + 1);
        assert_int_equal(strlen(json_string_value(json_object_get(rec, "old_root"))), 64);
        assert_string_equal(json_string_value(json_object_get(rec, "reason")),
                            "restored 12-06 backup");
        dz_audit_tree_close(t);
        /* Not yet in the log: the next open still holds it. */
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
        assert_non_null(dz_audit_tree_restore_pending(t));
        assert_int_equal(dz_audit_tree_restore_done(t), 0);
        assert_null(dz_audit_tree_restore_pending(t));
        dz_audit_tree_close(t);
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
        assert_null(dz_audit_tree_restore_pending(t));
        write_lines(t, 2, false);
        expect_tree_matches_log(t);
        dz_audit_tree_close(t);
        assert_int_equal(dz_audit_tree_accept_restore(logpath, NULL, "again", &m), DZ_ERR_NOTFOUND);
    }

    /* The last line changed: refused at that seq. */
    {
        struct dz_audit_mismatch m;
        uint64_t last = last_seq_and_edit();
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, &m), DZ_ERR_STATE);
        assert_int_equal(m.seq, last);
        assert_non_null(strstr(m.what, "was changed"));
        /* The tree's levels deleted too (heads.jsonl kept): rebuilt from the
         * changed log, it no longer reproduces the last signed head. */
        for (int l = 0; l < 64; l++) {
            snprintf(p, sizeof(p), "%s.tree/L%02d", logpath, l);
            unlink(p);
        }
        assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, &m), DZ_ERR_STATE);
        assert_non_null(strstr(m.what, "holds a head signed"));
    }
    /* A line of the closed segment changed: its history no longer verifies,
     * and the file and line are named. */
    {
        struct dz_audit_history_check *c = malloc(sizeof(*c));
        struct dz_audit_keys keys = {find_k1, key};
        char seg[512] = "";
        DIR *d = opendir(tmpdir);
        struct dirent *e;
        FILE *f;
        char *buf = malloc(1 << 20);
        size_t n;
        char *at;

        assert_non_null(c);
        assert_non_null(buf);
        while (d && (e = readdir(d)) != NULL)
            if (strncmp(e->d_name, "audit-", 6) == 0)
                snprintf(seg, sizeof(seg), "%s/%s", tmpdir, e->d_name);
        if (d)
            closedir(d);
        assert_non_null(f = fopen(seg, "r+"));
        n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        assert_non_null(at = strstr(buf, "\"i\":3"));
        assert_int_equal(fseeko(f, at - buf + 4, SEEK_SET), 0);
        assert_int_equal(fputc('4', f), '4');
        fclose(f);
        assert_int_equal(dz_audit_verify_history(logpath, 0, &keys, c), 0);
        assert_string_equal(c->reason, "chain_broken");
        assert_string_equal(c->path, seg);
        assert_int_equal(c->line, 6); /* the header, lines i=0..3, then the one after */
        free(buf);
        free(c);
    }
    rm_rf(tmpdir);
}

/* Batches of many sizes on top of trees of many sizes, given to the
 * observer as the writer would: every batch's nodes are staged in memory
 * and written once per level, and the tree must be the one a leaf at a
 * time builds (dz_merkle_append, the reference), at every size. */
static void test_tree_batches(void **state)
{
    static const unsigned sizes[] = {1, 1, 2, 3, 5, 8, 13, 64, 127, 1, 255, 2, 1000, 7};
    static unsigned char path[DZ_MERKLE_PATH_MAX][32];
    struct dz_audit_tree *t = NULL;
    struct dz_merkle_mem m;
    struct dz_merkle_levels ref;
    char data[2000 * 24];
    uint64_t seq = 1;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_merkle_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(logpath, sizeof(logpath), "%s/audit.log", tmpdir);
    memset(&m, 0, sizeof(m));
    ref = dz_merkle_mem_levels(&m);
    assert_int_equal(dz_audit_tree_open(logpath, NULL, "gw-1", &t, NULL), 0);
    for (size_t b = 0; b < sizeof(sizes) / sizeof(sizes[0]); b++) {
        struct dz_audit_batch batch = {0};
        size_t len = 0;
        unsigned char root[32];
        for (unsigned i = 0; i < sizes[b]; i++) {
            unsigned char leaf[32];
            int n = snprintf(data + len, sizeof(data) - len, "{\"seq\":%llu}\n",
                             (unsigned long long)(seq + i));
            dz_merkle_leaf_hash(data + len, (size_t)n - 1, leaf);
            assert_int_equal(dz_merkle_append(&ref, leaf), 0);
            len += (size_t)n;
        }
        batch.first_seq = seq;
        batch.data = data;
        batch.len = len;
        dz_audit_tree_observe(t, &batch);
        seq += sizes[b];
        assert_int_equal(dz_audit_tree_size(t), seq - 1);
        assert_int_equal(dz_merkle_root(&ref, seq - 1, root), 0);
        /* The first, a middle and the last line prove against the
         * reference root: every level the proofs read is right. */
        for (uint64_t k = 1; k < seq; k = k < seq / 2 ? seq / 2 : k == seq - 1 ? seq : seq - 1) {
            size_t plen = 0;
            unsigned char leaf[32];
            assert_int_equal(dz_audit_tree_inclusion(t, k, seq - 1, path, &plen), 0);
            assert_int_equal(ref.get(ref.arg, 0, k - 1, leaf), 0);
            assert_true(
                dz_merkle_verify_inclusion(leaf, k - 1, seq - 1, (const void *)path, plen, root));
        }
    }
    dz_audit_tree_close(t);
    /* The files hold exactly those nodes, nothing beyond: level l has
     * (leaves >> l) complete nodes. */
    for (unsigned l = 0; l < 12; l++) {
        char p[300];
        struct stat st;
        snprintf(p, sizeof(p), "%s.tree/L%02u", logpath, l);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal((uint64_t)st.st_size, ((seq - 1) >> l) * 32);
    }
    dz_merkle_mem_cleanup(&m);
    rm_rf(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_all_proofs),
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_tree_follows_log),
        cmocka_unit_test(test_tree_batches),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
