/* test_certid.c - FIN, role, name and policies out of a certificate
 * (lib/pki/certid.c): PNOAZ- and bare FINs, normalisation, malformed and
 * repeated serialNumber, missing FIN, the judge role needing both marks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "pki/certid.h"

static EVP_PKEY *key;

static int setup(void **state)
{
    (void)state;
    key = EVP_EC_gen("P-256");
    return key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    return 0;
}

/* A self-signed certificate with subject CN=cn plus the given
 * serialNumber (NULL: none; "\x01" separated values: several), title and
 * certificatePolicies (text as openssl.cnf writes it). */
static X509 *mk(const char *cn, const char *serial, const char *title, const char *policies)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    /* CN as a raw UTF8String: past the 64-character upper bound the
     * MBSTRING path enforces, as a hostile issuer could write it. */
    if (cn)
        assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    while (serial) {
        const char *sep = strchr(serial, '\x01');
        int len = sep ? (int)(sep - serial) : -1;
        assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC,
                                                    (const unsigned char *)serial, len, -1, 0),
                         1);
        serial = sep ? sep + 1 : NULL;
    }
    if (title)
        assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_title, MBSTRING_UTF8,
                                                    (const unsigned char *)title, -1, -1, 0),
                         1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (policies) {
        /* certificatePolicies text may name sections: it wants a (here
         * empty) config database. */
        CONF *conf = NCONF_new(NULL);
        assert_non_null(conf);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509V3_set_nconf(&ctx, conf);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_certificate_policies, policies);
        NCONF_free(conf);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static int extract(const char *serial, const char *title, const char *policies,
                   struct dz_certid *id)
{
    X509 *x = mk("Test Person", serial, title, policies);
    int rc = dz_certid_extract(x, id);
    X509_free(x);
    return rc;
}

static void test_fin_forms(void **state)
{
    struct dz_certid id;

    (void)state;
    assert_int_equal(extract("PNOAZ-ABC1234", NULL, NULL, &id), 0);
    assert_true(id.has_fin);
    assert_string_equal(id.fin, "ABC1234");
    assert_string_equal(id.name, "Test Person");
    assert_string_equal(id.role, "citizen");

    assert_int_equal(extract("5ZJ3K7P", NULL, NULL, &id), 0); /* bare FIN */
    assert_true(id.has_fin);
    assert_string_equal(id.fin, "5ZJ3K7P");

    assert_int_equal(extract("abc1234", NULL, NULL, &id), 0); /* normalised */
    assert_string_equal(id.fin, "ABC1234");
    assert_int_equal(extract("PNOAZ-ab1cd2e", NULL, NULL, &id), 0);
    assert_string_equal(id.fin, "AB1CD2E");
}

static void test_fin_missing(void **state)
{
    struct dz_certid id;

    (void)state;
    assert_int_equal(extract(NULL, NULL, NULL, &id), 0);
    assert_false(id.has_fin);
    assert_string_equal(id.fin, "");
    assert_string_equal(id.role, "citizen");
}

static void test_fin_bad(void **state)
{
    static const char *const bad[] = {
        "PNOAZ-ABC123",                                     /* 6 characters */
        "PNOAZ-ABC12345",                                   /* 8 */
        "ABC123",         "ABC12345",      "PNOXX-ABC1234", /* another country */
        "IDCAZ-ABC1234",                                    /* a document number, not a FIN */
        "pnoaz-ABC1234",                                    /* the prefix is exact */
        "PNOAZ ABC1234",  "PNOAZ-ABC 234", "PNOAZ-ABC-234", "ABC 234", "PNOAZ-", "-",
    };
    struct dz_certid id;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(extract(bad[i], NULL, NULL, &id), DZ_ERR_PARSE);
        assert_false(id.has_fin);
        assert_string_equal(id.fin, "");
    }
    /* Two serialNumber attributes: ambiguous, refused even if both parse. */
    assert_int_equal(extract("PNOAZ-ABC1234\x01PNOAZ-XYZ9876", NULL, NULL, &id), DZ_ERR_PARSE);
    assert_false(id.has_fin);
    assert_int_equal(extract("PNOAZ-ABC1234\x01PNOAZ-ABC1234", NULL, NULL, &id), DZ_ERR_PARSE);
    /* An unreadable identity carries no role either (found by fuzz_certid). */
    assert_int_equal(extract("PNOAZ-JDG00", "Judge", DZ_CERTID_POLICY_JUDGE, &id), DZ_ERR_PARSE);
    assert_string_equal(id.role, "citizen");
    assert_false(id.has_judge_policy || id.has_judge_title);
}

static void test_fin_from_serial(void **state)
{
    char fin[8];

    (void)state;
    assert_int_equal(dz_certid_fin_from_serial("PNOAZ-7ZZ1AB2", 13, fin), 0);
    assert_string_equal(fin, "7ZZ1AB2");
    assert_int_equal(dz_certid_fin_from_serial("7zz1ab2", 7, fin), 0);
    assert_string_equal(fin, "7ZZ1AB2");
    /* An embedded NUL is not a character of a FIN. */
    assert_int_equal(dz_certid_fin_from_serial("PNOAZ-7ZZ\0AB2", 13, fin), DZ_ERR_PARSE);
    assert_string_equal(fin, "");
    assert_int_equal(dz_certid_fin_from_serial("ABC\xc3\xa7"
                                               "1234",
                                               9, fin),
                     DZ_ERR_PARSE);
    assert_int_equal(dz_certid_fin_from_serial(NULL, 0, fin), DZ_ERR_PARSE);
    assert_int_equal(dz_certid_fin_from_serial("", 0, fin), DZ_ERR_PARSE);
}

static void test_judge_needs_both(void **state)
{
    struct dz_certid id;

    (void)state;
    assert_int_equal(
        extract("PNOAZ-JDG0001", "Judge", DZ_CERTID_POLICY_CARD "," DZ_CERTID_POLICY_JUDGE, &id),
        0);
    assert_string_equal(id.role, "judge");
    assert_true(id.has_card_policy && id.has_judge_policy && id.has_judge_title);
    assert_false(id.has_mobile_policy);

    assert_int_equal(extract("PNOAZ-JDG0001", NULL, DZ_CERTID_POLICY_JUDGE, &id), 0);
    assert_string_equal(id.role, "citizen"); /* policy without title */
    assert_int_equal(extract("PNOAZ-JDG0001", "Judge", DZ_CERTID_POLICY_CARD, &id), 0);
    assert_string_equal(id.role, "citizen"); /* title without policy */
    assert_int_equal(extract("PNOAZ-JDG0001", "judge", DZ_CERTID_POLICY_JUDGE, &id), 0);
    assert_string_equal(id.role, "citizen"); /* the title is exact */
    assert_int_equal(extract("PNOAZ-JDG0001", "Judge ", DZ_CERTID_POLICY_JUDGE, &id), 0);
    assert_string_equal(id.role, "citizen");
}

static void test_policies(void **state)
{
    struct dz_certid id;
    X509 *x;

    (void)state;
    assert_int_equal(extract("ABC1234", NULL, DZ_CERTID_POLICY_MOBILE, &id), 0);
    assert_true(id.has_mobile_policy);
    assert_false(id.has_card_policy);
    x = mk("P", NULL, NULL, DZ_CERTID_POLICY_MOBILE ",1.2.3.4");
    assert_true(dz_certid_has_policy(x, DZ_CERTID_POLICY_MOBILE));
    assert_true(dz_certid_has_policy(x, "1.2.3.4"));
    assert_false(dz_certid_has_policy(x, DZ_CERTID_POLICY_CARD));
    assert_false(dz_certid_has_policy(x, "1.3.6.1.4.1.55555.1.1")); /* a prefix is not a match */
    assert_false(dz_certid_has_policy(x, "not an oid"));
    assert_false(dz_certid_has_policy(x, ""));
    assert_false(dz_certid_has_policy(x, NULL));
    assert_false(dz_certid_has_policy(NULL, "1.2.3.4"));
    X509_free(x);
    x = mk("P", NULL, NULL, NULL);
    assert_false(dz_certid_has_policy(x, DZ_CERTID_POLICY_CARD));
    X509_free(x);
}

static void test_name(void **state)
{
    struct dz_certid id;
    char longname[300];
    X509 *x;

    (void)state;
    x = mk("Ayt\xc9\x99n Quliyeva\n", "ABC1234", NULL, NULL); /* ə, and a newline */
    assert_int_equal(dz_certid_extract(x, &id), 0);
    assert_string_equal(id.name, "Ayt\xc9\x99n Quliyeva?");
    X509_free(x);

    /* 126 ASCII then two-byte characters: the cut never splits one. */
    memset(longname, 'a', 126);
    for (size_t i = 126; i + 2 < sizeof(longname); i += 2) {
        longname[i] = '\xc9';
        longname[i + 1] = '\x99';
    }
    longname[sizeof(longname) - 2] = '\0';
    x = mk(longname, NULL, NULL, NULL);
    assert_int_equal(dz_certid_extract(x, &id), 0);
    assert_int_equal(strlen(id.name), 126);
    X509_free(x);

    x = mk(NULL, "ABC1234", NULL, NULL);
    assert_int_equal(dz_certid_extract(x, &id), 0);
    assert_string_equal(id.name, "");
    X509_free(x);
}

static void test_der(void **state)
{
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    struct dz_certid id;
    unsigned char *der = NULL;
    unsigned char big[DZ_CERTID_MAX_DER + 1];
    unsigned char *plus;
    X509 *x;
    int n;

    (void)state;
    x = mk("P", "PNOAZ-ABC1234", NULL, NULL);
    n = i2d_X509(x, &der);
    assert_true(n > 0);
    assert_int_equal(dz_certid_from_der(der, (size_t)n, &id), 0);
    assert_string_equal(id.fin, "ABC1234");
    /* trailing bytes */
    plus = malloc((size_t)n + 1);
    assert_non_null(plus);
    memcpy(plus, der, (size_t)n);
    plus[n] = 0;
    assert_int_equal(dz_certid_from_der(plus, (size_t)n + 1, &id), DZ_ERR_PARSE);
    assert_false(id.has_fin);
    /* truncated */
    assert_int_equal(dz_certid_from_der(der, (size_t)n - 1, &id), DZ_ERR_PARSE);
    free(plus);
    OPENSSL_free(der);
    X509_free(x);

    assert_int_equal(dz_certid_from_der(junk, sizeof(junk), &id), DZ_ERR_PARSE);
    assert_int_equal(dz_certid_from_der(NULL, 0, &id), DZ_ERR_PARSE);
    memset(big, 0x30, sizeof(big));
    assert_int_equal(dz_certid_from_der(big, sizeof(big), &id), DZ_ERR_TOOBIG);
    assert_int_equal(dz_certid_extract(NULL, &id), DZ_ERR_INVAL);
    assert_string_equal(id.role, "citizen");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_forms),
        cmocka_unit_test(test_fin_missing),
        cmocka_unit_test(test_fin_bad),
        cmocka_unit_test(test_fin_from_serial),
        cmocka_unit_test(test_judge_needs_both),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_der),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
