/* test_x509cache.c - parsed certificates kept by their exact DER
 * (lib/pki/x509cache.c): a hit is the same certificate, any other bytes -
 * one flipped bit, another certificate in the same slot, garbage - never
 * get a kept one, bad input is never kept, and the cache stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509.h>

#include "base/err.h"
#include "base/secret.h"
#include "harness/fake_pki.h"
#include "pki/x509cache.h"

static EVP_PKEY *key;

static size_t der_of(X509 *x, unsigned char **out)
{
    int n = i2d_X509(x, out);

    assert_true(n > 0);
    return (size_t)n;
}

static X509 *cert(long serial)
{
    return fake_pki_cert("CN=card holder", serial, key, NULL, NULL, NULL);
}

static size_t slot_of(const unsigned char *der, size_t len)
{
    unsigned char h[32];

    dz_sha256(der, len, h);
    return (((size_t)h[0] << 8) | h[1]) % DZ_X509_CACHE_SLOTS;
}

static void test_hit_is_the_same_certificate(void **state)
{
    X509 *orig = cert(1), *a = NULL, *b = NULL;
    unsigned char *der = NULL;
    size_t len = der_of(orig, &der);
    uint64_t hits = dz_x509_cache_hits(), parses = dz_x509_cache_parses();

    (void)state;
    assert_int_equal(dz_x509_from_der_cached(der, len, &a), 0);
    assert_int_equal(dz_x509_cache_parses(), parses + 1);
    assert_int_equal(X509_cmp(a, orig), 0);
    assert_int_equal(dz_x509_from_der_cached(der, len, &b), 0);
    assert_int_equal(dz_x509_cache_hits(), hits + 1);
    assert_int_equal(dz_x509_cache_parses(), parses + 1);
    assert_ptr_equal(a, b); /* shared, each caller holds its own reference */
    X509_free(a);
    X509_free(b);
    X509_free(orig);
    OPENSSL_free(der);
}

static void test_other_bytes_never_hit(void **state)
{
    X509 *orig = cert(2), *a = NULL, *b = NULL;
    unsigned char *der = NULL, *bent;
    size_t len = der_of(orig, &der);
    uint64_t hits;
    int rc;

    (void)state;
    assert_int_equal(dz_x509_from_der_cached(der, len, &a), 0);
    /* The last byte is in the signature: a certificate that still parses
     * but whose signature no longer verifies must come out as itself, not
     * as the kept, good one. */
    bent = malloc(len);
    assert_non_null(bent);
    memcpy(bent, der, len);
    bent[len - 1] ^= 0x01;
    hits = dz_x509_cache_hits();
    rc = dz_x509_from_der_cached(bent, len, &b);
    assert_int_equal(dz_x509_cache_hits(), hits);
    if (rc == 0) {
        assert_ptr_not_equal(a, b);
        assert_int_not_equal(X509_cmp(a, b), 0);
        assert_int_equal(X509_verify(b, key), 0);
        X509_free(b);
        b = NULL;
    }
    /* A prefix (a truncated answer) is refused, never matched. */
    assert_int_equal(dz_x509_from_der_cached(der, len - 1, &b), DZ_ERR_PARSE);
    assert_null(b);
    assert_int_equal(dz_x509_cache_hits(), hits);
    X509_free(a);
    X509_free(orig);
    free(bent);
    OPENSSL_free(der);
}

static void test_same_slot_other_certificate(void **state)
{
    X509 *first = cert(100), *other = NULL, *got = NULL;
    unsigned char *d1 = NULL, *d2 = NULL;
    size_t l1 = der_of(first, &d1), l2 = 0;
    long serial;

    (void)state;
    /* Another certificate that lands in the same slot (found by trying
     * serials: 1 in DZ_X509_CACHE_SLOTS). */
    for (serial = 101; serial < 101 + 50 * DZ_X509_CACHE_SLOTS; serial++) {
        other = cert(serial);
        l2 = der_of(other, &d2);
        if (slot_of(d2, l2) == slot_of(d1, l1))
            break;
        X509_free(other);
        OPENSSL_free(d2);
        other = NULL;
        d2 = NULL;
    }
    assert_non_null(other);
    assert_int_equal(dz_x509_from_der_cached(d1, l1, &got), 0);
    assert_int_equal(X509_cmp(got, first), 0);
    X509_free(got);
    assert_int_equal(dz_x509_from_der_cached(d2, l2, &got), 0);
    assert_int_equal(X509_cmp(got, other), 0); /* not the slot's first one */
    X509_free(got);
    assert_int_equal(dz_x509_from_der_cached(d1, l1, &got), 0);
    assert_int_equal(X509_cmp(got, first), 0); /* and back: parsed again */
    X509_free(got);
    X509_free(first);
    X509_free(other);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
}

static void test_bad_input_is_not_kept(void **state)
{
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    unsigned char big[1];
    X509 *x = (X509 *)1;
    uint64_t parses = dz_x509_cache_parses();

    (void)state;
    assert_int_equal(dz_x509_from_der_cached(junk, sizeof(junk), &x), DZ_ERR_PARSE);
    assert_null(x);
    assert_int_equal(dz_x509_from_der_cached(junk, sizeof(junk), &x), DZ_ERR_PARSE);
    assert_int_equal(dz_x509_from_der_cached(NULL, 0, &x), DZ_ERR_PARSE);
    assert_int_equal(dz_x509_from_der_cached(big, 64 * 1024, &x), DZ_ERR_TOOBIG);
    assert_int_equal(dz_x509_cache_parses(), parses);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_is_the_same_certificate),
        cmocka_unit_test(test_other_bytes_never_hit),
        cmocka_unit_test(test_same_slot_other_certificate),
        cmocka_unit_test(test_bad_input_is_not_kept),
    };
    int rc;

    key = fake_pki_key();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    dz_x509_cache_clear();
    EVP_PKEY_free(key);
    return rc;
}
