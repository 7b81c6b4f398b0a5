/* test_chainsig.c - the path validation's signature step with its memo of
 * verified signatures (lib/pki/chainsig.c): a second validation of the same
 * path takes the CA's signature from the memo; a certificate whose
 * signature was altered, one signed by another key under the same names,
 * and an expired one are refused as OpenSSL refuses them (same error, same
 * depth), before and after the genuine one was remembered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "harness/fake_pki.h"
#include "pki/chainsig.h"

static struct fake_pki_ca pki;
static EVP_PKEY *leaf_key;

/* Validate leaf under pki.root with pki.ca as intermediate; with_memo:
 * through dz_chainsig_verify, else OpenSSL's own step.  *depth: where it
 * failed.  Returns the X509_V_ERR (0: valid). */
static int validate(X509 *leaf, X509 *ca, bool with_memo, int *depth)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int err;

    assert_non_null(st);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(st, pki.root), 1);
    assert_true(sk_X509_push(untrusted, ca) > 0);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
    if (with_memo)
        X509_STORE_CTX_set_verify(ctx, dz_chainsig_verify);
    err = X509_verify_cert(ctx) == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    *depth = X509_STORE_CTX_get_error_depth(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(st);
    return err;
}

/* The same verdict (error and depth) with the memo as without it. */
static int both(X509 *leaf, X509 *ca)
{
    int d1 = 0, d2 = 0;
    int e1 = validate(leaf, ca, false, &d1);
    int e2 = validate(leaf, ca, true, &d2);

    assert_int_equal(e2, e1);
    if (e1 != 0)
        assert_int_equal(d2, d1);
    return e2;
}

static X509 *person(long serial)
{
    return fake_pki_person(&pki, leaf_key, "1AB2C3D", "1.3.6.1.4.1.99999.1.1", false, serial);
}

static void test_second_validation_from_the_memo(void **state)
{
    X509 *leaf = person(10), *other = person(11);
    uint64_t hits, verified;

    (void)state;
    dz_chainsig_clear();
    verified = dz_chainsig_verified();
    assert_int_equal(both(leaf, pki.ca), 0);
    assert_int_equal(dz_chainsig_verified(), verified + 2); /* the CA's and the leaf's */
    hits = dz_chainsig_hits();
    /* Another card under the same CA: the CA's signature is remembered,
     * the new leaf's is verified. */
    assert_int_equal(both(other, pki.ca), 0);
    assert_int_equal(dz_chainsig_hits(), hits + 1);
    assert_int_equal(dz_chainsig_verified(), verified + 3);
    X509_free(leaf);
    X509_free(other);
}

static void test_altered_signature_refused_after_the_good_one(void **state)
{
    X509 *leaf = person(20), *bent = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    int n;

    (void)state;
    assert_int_equal(both(leaf, pki.ca), 0); /* remembered */
    n = i2d_X509(leaf, &der);
    assert_true(n > 0);
    der[n - 1] ^= 0x01; /* in the signature */
    p = der;
    bent = d2i_X509(NULL, &p, n);
    if (bent != NULL) {
        assert_int_equal(both(bent, pki.ca), X509_V_ERR_CERT_SIGNATURE_FAILURE);
        X509_free(bent);
    }
    /* An altered CA certificate under the same root: refused at depth 1. */
    OPENSSL_free(der);
    der = NULL;
    n = i2d_X509(pki.ca, &der);
    der[n - 1] ^= 0x01;
    p = der;
    bent = d2i_X509(NULL, &p, n);
    if (bent != NULL) {
        int d = 0;
        assert_int_equal(validate(leaf, bent, true, &d), X509_V_ERR_CERT_SIGNATURE_FAILURE);
        assert_int_equal(d, 1);
        assert_int_equal(both(leaf, bent), X509_V_ERR_CERT_SIGNATURE_FAILURE);
        X509_free(bent);
    }
    OPENSSL_free(der);
    X509_free(leaf);
}

static void test_same_names_other_key(void **state)
{
    struct fake_pki_ca rogue;
    X509 *leaf = person(30), *forged;

    (void)state;
    assert_int_equal(both(leaf, pki.ca), 0); /* the genuine pair remembered */
    /* A CA with the same names as ours but another key, and a leaf from
     * it: the same subject and issuer names, other keys. */
    fake_pki_ca_init(&rogue, "Card");
    forged = fake_pki_person(&rogue, leaf_key, "1AB2C3D", "1.3.6.1.4.1.99999.1.1", false, 30);
    assert_int_not_equal(both(forged, pki.ca), 0);
    assert_int_not_equal(both(forged, rogue.ca), 0); /* rogue CA not under our root */
    assert_int_not_equal(both(leaf, rogue.ca), 0);
    X509_free(forged);
    X509_free(leaf);
    fake_pki_ca_cleanup(&rogue);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_validation_from_the_memo),
        cmocka_unit_test(test_altered_signature_refused_after_the_good_one),
        cmocka_unit_test(test_same_names_other_key),
    };
    int rc;

    fake_pki_ca_init(&pki, "Card");
    leaf_key = fake_pki_key();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(leaf_key);
    fake_pki_ca_cleanup(&pki);
    return rc;
}
