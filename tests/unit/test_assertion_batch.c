/* test_assertion_batch.c - batch-signed assertions (keys/jws_batch.h,
 * dz_assertion_sign_batch): every token of batches of many shapes verifies
 * with the request's own claims, all share one root JWS that a plain JWS
 * check accepts, and any change to the claims, the path or the root is
 * refused with its reason; the batch's shared fields and per-entry errors
 * behave as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/b64.h"
#include "base/err.h"
#include "keys/assertion.h"
#include "keys/jws.h"
#include "keys/jws_batch.h"
#include "keys/signer.h"

#include "signer_case.h"

#define NOW 1800000000

static struct dz_signer *signer;
static struct dz_jwks *jwks;

static int setup(void **state)
{
    (void)state;
    return signer_case_open("/tmp/dz_asbt_XXXXXX", &signer, &jwks);
}

static int teardown(void **state)
{
    (void)state;
    signer_case_close(signer, jwks);
    return 0;
}

#define MAXN 40
static char paths[MAXN][64];

static struct dz_assertion_in in_for(size_t i)
{
    struct dz_assertion_in in = {
        .iss = "darvaza-test",
        .sub = "5ZJBKQG",
        .aud = "registry",
        .sid_b64 = "c2Vzc2lvbi1oYXNo",
        .acr = "substantial",
        .amr = DZ_AMR_PWD | DZ_AMR_OTP,
        .iat = NOW,
        .auth_time = NOW - 100,
        .ttl_s = 30,
        .htm = "GET",
    };
    snprintf(paths[i], sizeof(paths[i]), "/api/registry/item/%zu", i);
    in.htu = paths[i];
    return in;
}

static struct dz_assertion_expect expect_for(size_t i)
{
    struct dz_assertion_expect e = {
        .iss = "darvaza-test",
        .aud = "registry",
        .htm = "GET",
        .htu = paths[i],
        .now = NOW + 5,
        .leeway_s = 5,
    };
    return e;
}

/* Sign n requests as one batch; every one must get its token. */
static void sign_batch(size_t n, struct dz_assertion_in *ins, char **tokens)
{
    const struct dz_assertion_in *ptrs[MAXN] = {0};
    int rcs[MAXN];

    for (size_t i = 0; i < n; i++) {
        ins[i] = in_for(i);
        ptrs[i] = &ins[i];
    }
    assert_int_equal(dz_assertion_sign_batch(signer, "gw-1", ptrs, n, tokens, rcs), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rcs[i], 0);
        assert_non_null(tokens[i]);
    }
}

static const char *reason_of(const char *tok, const struct dz_assertion_expect *e)
{
    const char *reason = NULL;
    json_t *c = NULL;
    int rc = dz_assertion_verify(tok, jwks, e, &c, &reason);

    assert_non_null(reason);
    assert_int_equal(rc == 0, c != NULL);
    assert_int_equal(rc == 0, strcmp(reason, "ok") == 0);
    json_decref(c);
    return reason;
}

/* The root JWS's length (the whole token if it has no '~'). */
static size_t jws_len(const char *tok)
{
    return strcspn(tok, "~");
}

/* The three parts of a batch token, decoded: payload and path bytes. */
static void split(const char *tok, unsigned char **payload, size_t *pl, unsigned char **path,
                  size_t *ql)
{
    const char *a = strchr(tok, '~');
    const char *b = strchr(a + 1, '~');

    assert_int_equal(dz_b64_decode(a + 1, (size_t)(b - a - 1), true, payload, pl), 0);
    assert_int_equal(dz_b64_decode(b + 1, strlen(b + 1), true, path, ql), 0);
}

/* Put a token back together from a root JWS and raw payload and path. */
static char *join(const char *tok, const void *payload, size_t pl, const void *path, size_t ql)
{
    size_t jl = jws_len(tok);
    char *out = malloc(jl + 2 + dz_b64_encoded_len(pl, true) + dz_b64_encoded_len(ql, true) + 1);
    char *p = out;

    assert_non_null(out);
    memcpy(p, tok, jl);
    p += jl;
    *p++ = '~';
    dz_b64_encode_to(payload, pl, true, p);
    p += strlen(p);
    *p++ = '~';
    dz_b64_encode_to(path, ql, true, p);
    return out;
}

static void free_all(char **tokens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
}

static void test_shapes(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 13, 33};

    (void)state;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        struct dz_assertion_in ins[MAXN];
        char *tokens[MAXN];
        json_t *root = NULL;
        json_t *h = NULL;
        size_t depth_max = 0;

        sign_batch(n, ins, tokens);
        for (size_t i = 0; i < n; i++) {
            struct dz_assertion_expect e = expect_for(i);
            json_t *c = NULL;
            const char *reason = NULL;
            unsigned char *pl, *path;
            size_t pll, ql;

            assert_int_equal(dz_assertion_verify(tokens[i], jwks, &e, &c, &reason), 0);
            assert_string_equal(reason, "ok");
            assert_string_equal(json_string_value(json_object_get(c, "htu")), paths[i]);
            assert_string_equal(json_string_value(json_object_get(c, "sub")), "5ZJBKQG");
            assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 30);
            json_decref(c);
            /* Bound to its own request: another one's path is refused. */
            if (n > 1) {
                struct dz_assertion_expect other = expect_for((i + 1) % n);
                assert_string_equal(reason_of(tokens[i], &other), "path_mismatch");
            }
            /* Every token carries the same root JWS. */
            assert_int_equal(jws_len(tokens[i]), jws_len(tokens[0]));
            assert_memory_equal(tokens[i], tokens[0], jws_len(tokens[0]));
            split(tokens[i], &pl, &pll, &path, &ql);
            assert_int_equal(ql % DZ_JWS_BATCH_STEP, 0);
            if (ql / DZ_JWS_BATCH_STEP > depth_max)
                depth_max = ql / DZ_JWS_BATCH_STEP;
            free(pl);
            free(path);
        }
        /* A tree of n leaves is ceil(log2 n) deep. */
        {
            size_t want = 0;
            while (((size_t)1 << want) < n)
                want++;
            assert_int_equal(depth_max, want);
        }
        /* The root is an ordinary JWS with the batch typ. */
        assert_int_equal(
            dz_jws_verify(tokens[0], jws_len(tokens[0]), jwks, DZ_ASSERTION_BATCH_TYP, &h, &root),
            0);
        assert_string_equal(json_string_value(json_object_get(h, "typ")),
                            "darvaza-assertion-batch+jwt");
        assert_string_equal(json_string_value(json_object_get(root, "iss")), "darvaza-test");
        assert_string_equal(json_string_value(json_object_get(root, "aud")), "registry");
        assert_int_equal(json_integer_value(json_object_get(root, "iat")), NOW);
        assert_int_equal(json_integer_value(json_object_get(root, "exp")), NOW + 30);
        assert_int_equal(json_string_length(json_object_get(root, "mrk")), 43);
        assert_int_equal(json_object_size(root), 5);
        json_decref(h);
        json_decref(root);
        free_all(tokens, n);
    }
}

static void test_tampered(void **state)
{
    struct dz_assertion_in ins[MAXN];
    char *tokens[MAXN];
    char *other[MAXN];
    struct dz_assertion_expect e = expect_for(2);
    unsigned char *pl, *path, *pl3, *path3;
    size_t pll, ql, pll3, ql3;
    char *t;

    (void)state;
    sign_batch(5, ins, tokens);
    split(tokens[2], &pl, &pll, &path, &ql);
    assert_true(ql >= 2 * DZ_JWS_BATCH_STEP);
    assert_string_equal(reason_of(tokens[2], &e), "ok");

    /* The claims changed (here: another path, re-encoded) */
    {
        char *s = strndup((const char *)pl, pll);
        char *at = strstr(s, "item/2");
        assert_non_null(at);
        at[5] = '9';
        t = join(tokens[2], s, pll, path, ql);
        free(s);
        e.htu = "/api/registry/item/9";
        assert_string_equal(reason_of(t, &e), "bad_signature");
        e = expect_for(2);
        free(t);
    }
    /* A sibling hash, one bit */
    path[1] ^= 0x01;
    t = join(tokens[2], pl, pll, path, ql);
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    path[1] ^= 0x01;
    /* A side byte flipped */
    path[0] ^= 0x01;
    t = join(tokens[2], pl, pll, path, ql);
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    path[0] ^= 0x01;
    /* A side byte that is neither side */
    path[0] = 2;
    t = join(tokens[2], pl, pll, path, ql);
    assert_string_equal(reason_of(t, &e), "malformed");
    free(t);
    free(path);
    split(tokens[2], &pl3, &pll3, &path, &ql);
    free(pl3);
    /* A step missing, a step too many, a partial step, no path at all */
    t = join(tokens[2], pl, pll, path, ql - DZ_JWS_BATCH_STEP);
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    {
        unsigned char longer[DZ_JWS_BATCH_STEP * 8];
        memcpy(longer, path, ql);
        memcpy(longer + ql, path, DZ_JWS_BATCH_STEP);
        t = join(tokens[2], pl, pll, longer, ql + DZ_JWS_BATCH_STEP);
        assert_string_equal(reason_of(t, &e), "bad_signature");
        free(t);
    }
    t = join(tokens[2], pl, pll, path, ql - 1);
    assert_string_equal(reason_of(t, &e), "malformed");
    free(t);
    t = join(tokens[2], pl, pll, path, 0);
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    /* Another leaf of the same batch with this leaf's path */
    split(tokens[3], &pl3, &pll3, &path3, &ql3);
    t = join(tokens[2], pl3, pll3, path, ql);
    e.htu = paths[3];
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    /* ... and with its own path it is fine: the leaf, not the slot, counts */
    t = join(tokens[2], pl3, pll3, path3, ql3);
    assert_string_equal(reason_of(t, &e), "ok");
    free(t);
    e = expect_for(2);
    /* This leaf and path under the root of another batch (same key) */
    sign_batch(5, ins, other);
    t = join(other[2], pl, pll, path, ql);
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    /* The root JWS's signature */
    t = strdup(tokens[2]);
    t[jws_len(t) - 3] = t[jws_len(t) - 3] == 'A' ? 'B' : 'A';
    assert_string_equal(reason_of(t, &e), "bad_signature");
    free(t);
    /* The root's payload (its mrk) changed: the JWS signature breaks */
    {
        char *dot1 = strchr(tokens[2], '.');
        t = strdup(tokens[2]);
        t[dot1 - tokens[2] + 5] = t[dot1 - tokens[2] + 5] == 'A' ? 'B' : 'A';
        assert_string_equal(reason_of(t, &e), "bad_signature");
        free(t);
    }
    /* Framing: a fourth part, an empty leaf, missing parts */
    assert_true(asprintf(&t, "%s~", tokens[2]) > 0);
    assert_string_equal(reason_of(t, &e), "malformed");
    free(t);
    t = join(tokens[2], "", 0, path, ql);
    assert_string_equal(reason_of(t, &e), "malformed");
    free(t);
    t = strndup(tokens[2], strrchr(tokens[2], '~') - tokens[2]);
    assert_string_equal(reason_of(t, &e), "malformed");
    free(t);
    /* The root JWS alone is not an assertion; neither is an assertion signed
     * alone with a leaf and path glued on (its typ is not the batch's). */
    t = strndup(tokens[2], jws_len(tokens[2]));
    assert_string_equal(reason_of(t, &e), "wrong_type");
    free(t);
    {
        struct dz_assertion_in in = in_for(2);
        char *single = NULL;
        assert_int_equal(dz_assertion_sign(signer, "gw-1", &in, &single), 0);
        assert_string_equal(reason_of(single, &e), "ok");
        t = join(single, pl, pll, path, ql);
        assert_string_equal(reason_of(t, &e), "wrong_type");
        free(t);
        free(single);
    }
    free(pl);
    free(path);
    free(pl3);
    free(path3);
    free_all(tokens, 5);
    free_all(other, 5);
}

/* The rules on the leaf are those of a token signed alone; and a leaf that
 * disagrees with its root on the shared fields is refused even when the
 * path is right (signed here through the lower layer directly). */
static void test_leaf_rules(void **state)
{
    struct dz_assertion_in ins[MAXN];
    char *tokens[MAXN];
    struct dz_assertion_expect e = expect_for(0);
    unsigned char *pl, *path;
    size_t pll, ql;

    (void)state;
    sign_batch(3, ins, tokens);
    e.now = NOW + 40;
    assert_string_equal(reason_of(tokens[0], &e), "expired");
    e = expect_for(0);
    e.aud = "court";
    assert_string_equal(reason_of(tokens[0], &e), "wrong_audience");
    e = expect_for(0);
    e.iss = "someone-else";
    assert_string_equal(reason_of(tokens[0], &e), "wrong_issuer");
    e = expect_for(0);
    e.htm = "POST";
    assert_string_equal(reason_of(tokens[0], &e), "method_mismatch");
    e = expect_for(0);

    split(tokens[0], &pl, &pll, &path, &ql);
    {
        static const char *const roots[] = {
            "\"iss\":\"darvaza-test\",\"aud\":\"court\",\"iat\":1800000000,\"exp\":1800000030",
            "\"iss\":\"other\",\"aud\":\"registry\",\"iat\":1800000000,\"exp\":1800000030",
            "\"iss\":\"darvaza-test\",\"aud\":\"registry\",\"iat\":1800000000,\"exp\":1800000060",
            "\"iss\":\"darvaza-test\",\"aud\":\"registry\",\"iat\":\"1800000000\",\"exp\":"
            "1800000030",
            "\"iss\":\"darvaza-test\",\"aud\":\"registry\",\"exp\":1800000030",
        };
        for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
            struct dz_jws_batch_item item = {pl, pll};
            char *tok = NULL;
            int rc1 = -1;
            assert_int_equal(dz_jws_batch_sign(signer, "gw-1", DZ_ASSERTION_BATCH_TYP, roots[r],
                                               &item, 1, &tok, &rc1),
                             0);
            assert_int_equal(rc1, 0);
            assert_string_equal(reason_of(tok, &e), "malformed");
            free(tok);
        }
    }
    /* ... and the same leaf under a root that agrees is fine. */
    {
        struct dz_jws_batch_item item = {pl, pll};
        char *tok = NULL;
        int rc1 = -1;
        assert_int_equal(dz_jws_batch_sign(signer, "gw-1", DZ_ASSERTION_BATCH_TYP,
                                           "\"iss\":\"darvaza-test\",\"aud\":\"registry\",\"iat\":"
                                           "1800000000,\"exp\":1800000030",
                                           &item, 1, &tok, &rc1),
                         0);
        assert_string_equal(reason_of(tok, &e), "ok");
        free(tok);
    }
    free(pl);
    free(path);
    free_all(tokens, 3);
}

static void test_entry_errors(void **state)
{
    struct dz_assertion_in ins[6];
    const struct dz_assertion_in *ptrs[6];
    char *tokens[6];
    int rcs[6];
    char *huge = malloc(DZ_JWS_TOKEN_MAX);

    (void)state;
    assert_non_null(huge);
    memset(huge, 'a', DZ_JWS_TOKEN_MAX - 1);
    huge[0] = '/';
    huge[DZ_JWS_TOKEN_MAX - 1] = '\0';
    for (size_t i = 0; i < 6; i++) {
        ins[i] = in_for(i);
        ptrs[i] = &ins[i];
    }
    ins[1].aud = "court"; /* not the batch's audience */
    ins[2].iat = NOW + 1; /* not the batch's time */
    ins[3].htu = huge;    /* too big for any token */
    ins[4].sub = "bad";   /* not a FIN */
    assert_int_equal(dz_assertion_sign_batch(signer, "gw-1", ptrs, 6, tokens, rcs), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], DZ_ERR_INVAL);
    assert_int_equal(rcs[2], DZ_ERR_INVAL);
    assert_int_equal(rcs[3], DZ_ERR_TOOBIG);
    assert_int_equal(rcs[4], DZ_ERR_INVAL);
    assert_int_equal(rcs[5], 0);
    for (size_t i = 1; i < 5; i++)
        assert_null(tokens[i]);
    {
        struct dz_assertion_expect e0 = expect_for(0), e5 = expect_for(5);
        assert_string_equal(reason_of(tokens[0], &e0), "ok");
        assert_string_equal(reason_of(tokens[5], &e5), "ok");
    }
    free(tokens[0]);
    free(tokens[5]);
    /* Bounds of the whole call */
    assert_int_equal(dz_assertion_sign_batch(signer, "gw-1", ptrs, 0, tokens, rcs), DZ_ERR_INVAL);
    assert_int_equal(
        dz_assertion_sign_batch(signer, "gw-1", ptrs, DZ_JWS_BATCH_MAX + 1, tokens, rcs),
        DZ_ERR_INVAL);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_leaf_rules),
        cmocka_unit_test(test_entry_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
