/* test_chainsig_memo.c - the signature memo (lib/pki/chainsig.c, included
 * for its statics) as a worker loop uses it: the memo-only step never
 * verifies, stops at the first pair not remembered with
 * DZ_CHAINSIG_NOT_MEMO at that depth, whatever the verify callback says,
 * and passes once the full step remembered the path; and the two ways of
 * a set: a card whose pair lands on its CA's set does not push the CA's
 * out. */
/* First: cmocka.h defines a macro fail() that chainsig.c has a function of. */
#include "../../lib/pki/chainsig.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness/fake_pki.h"

static struct fake_pki_ca pki;
static EVP_PKEY *leaf_key;

/* A verify callback that waives every error (as a careless caller might):
 * a miss must stop the memo-only step all the same. */
static int waive_all(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

/* Validate leaf under pki.root via pki.ca with step (dz_chainsig_verify or
 * _memo).  Returns the X509_V_ERR (0: valid), *depth where it stopped. */
static int validate(X509 *leaf, int (*step)(X509_STORE_CTX *), bool waive, int *depth)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int err;

    assert_non_null(st);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(st, pki.root), 1);
    assert_true(sk_X509_push(untrusted, pki.ca) > 0);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
    X509_STORE_CTX_set_verify(ctx, step);
    if (waive)
        X509_STORE_CTX_set_verify_cb(ctx, waive_all);
    err = X509_verify_cert(ctx) == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    *depth = X509_STORE_CTX_get_error_depth(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(st);
    return err;
}

static X509 *person(long serial)
{
    return fake_pki_person(&pki, leaf_key, "1AB2C3D", "1.3.6.1.4.1.99999.1.1", false, serial);
}

/* The set a pair lands on. */
static size_t set_of_pair(X509 *x, X509 *issuer)
{
    unsigned char k[32];

    assert_true(memo_key(x, issuer, k));
    return set_of(k);
}

static void test_memo_only_never_verifies(void **state)
{
    X509 *leaf = person(40), *other = person(41);
    uint64_t v0, m0;
    int depth = -1;

    (void)state;
    dz_chainsig_clear();
    v0 = dz_chainsig_verified();
    m0 = dz_chainsig_misses();
    /* Cold: the CA's pair (depth 1) is the first asked, nothing verified,
     * and a callback that waives everything cannot waive a miss. */
    assert_int_equal(validate(leaf, dz_chainsig_verify_memo, false, &depth), DZ_CHAINSIG_NOT_MEMO);
    assert_int_equal(depth, 1);
    assert_int_equal(validate(leaf, dz_chainsig_verify_memo, true, &depth), DZ_CHAINSIG_NOT_MEMO);
    assert_int_equal(dz_chainsig_verified(), v0);
    assert_int_equal(dz_chainsig_misses(), m0 + 2);
    /* The full step remembers both pairs; then the memo alone passes. */
    assert_int_equal(validate(leaf, dz_chainsig_verify, false, &depth), 0);
    assert_int_equal(validate(leaf, dz_chainsig_verify_memo, false, &depth), 0);
    /* Another card of the same CA: only its own pair is missing. */
    assert_int_equal(validate(other, dz_chainsig_verify_memo, false, &depth), DZ_CHAINSIG_NOT_MEMO);
    assert_int_equal(depth, 0);
    X509_free(leaf);
    X509_free(other);
}

/* Cards whose pairs land on the CA's set: each takes the way the CA's is
 * not in, so the CA's stays and the memo-only step keeps passing for the
 * last one; the one before it was the one pushed out. */
static void test_ca_stays_in_its_set(void **state)
{
    size_t ca_set = set_of_pair(pki.ca, pki.root);
    X509 *found[2] = {NULL, NULL};
    int n = 0;
    int depth = -1;

    (void)state;
    /* About one serial in SETS lands there: a bounded search. */
    for (long serial = 1000; serial < 1000 + 40 * SETS && n < 2; serial++) {
        X509 *x = person(serial);
        if (set_of_pair(x, pki.ca) == ca_set)
            found[n++] = x;
        else
            X509_free(x);
    }
    assert_int_equal(n, 2);
    dz_chainsig_clear();
    assert_int_equal(validate(found[0], dz_chainsig_verify, false, &depth), 0);
    assert_int_equal(validate(found[0], dz_chainsig_verify_memo, false, &depth), 0);
    assert_int_equal(validate(found[1], dz_chainsig_verify, false, &depth), 0);
    assert_int_equal(validate(found[1], dz_chainsig_verify_memo, false, &depth), 0);
    assert_int_equal(validate(found[0], dz_chainsig_verify_memo, false, &depth),
                     DZ_CHAINSIG_NOT_MEMO);
    assert_int_equal(depth, 0); /* the card's own pair, not the CA's */
    X509_free(found[0]);
    X509_free(found[1]);
}

static int setup(void **state)
{
    (void)state;
    fake_pki_ca_init(&pki, "Card");
    leaf_key = fake_pki_key();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_pki_ca_cleanup(&pki);
    EVP_PKEY_free(leaf_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_only_never_verifies),
        cmocka_unit_test(test_ca_stays_in_its_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
