/* test_cades.c - CAdES signatures (lib/pki/cades.c) and RFC 3161 tokens
 * (lib/pki/tsp.c) on a throwaway PKI made here: sign with a file key through the
 * callback, verify (TOTAL_PASSED level B), tamper with the document, the
 * signature, the signed attributes and the ESS attribute, an unknown CA, a
 * revoked certificate (CRL), a key without nonRepudiation, garbage input;
 * level T with an in-process TSA (TS_RESP_CTX), a token over something else,
 * a TSA certificate without the timeStamping EKU, and the ECDSA raw->DER
 * conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "harness/fake_pki.h"
#include "pki/cades.h"
#include "pki/certid.h"
#include "pki/keyfloor.h"
#include "pki/tsp.h"
#include "pki/x509check.h"

static char dir[] = "/tmp/test_cades.XXXXXX";
static int64_t T0;
static EVP_PKEY *root_key, *ca_key, *leaf_key, *other_key, *tsa_key;
static X509 *root, *ca, *other_root, *signer, *revoked, *authonly, *stranger, *tsa, *badtsa;
static struct dz_x509_trust *trust_plain, *trust_crl;
static X509_STORE *tsa_store;

#define KU_SIGN "keyUsage=critical,nonRepudiation"
#define KU_AUTH "keyUsage=critical,digitalSignature"
#define POL_CARD "certificatePolicies=1.3.6.1.4.1.55555.1.1.1"
#define SKID "subjectKeyIdentifier=hash"
#define AKID "authorityKeyIdentifier=keyid:always"

/* Valid around T0; built by the harness's fake_pki_cert_at. */
static X509 *mk(const char *subject, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                const char *const *exts)
{
    return fake_pki_cert_at(subject, serial, key, issuer, ikey, T0 - 86400, T0 + 86400 * 30, NULL,
                            exts);
}

static const char *path(const char *name)
{
    static char p[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static void write_pem(const char *name, X509 *a, X509 *b)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    PEM_write_X509(f, a);
    if (b)
        PEM_write_X509(f, b);
    fclose(f);
}

static void write_crl(const char *name, X509 *issuer, EVP_PKEY *ikey, long serial)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *s = ASN1_INTEGER_new();
    FILE *f;

    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME_set(t, (time_t)(T0 - 600));
    X509_CRL_set1_lastUpdate(crl, t);
    X509_REVOKED_set_revocationDate(r, t);
    ASN1_TIME_set(t, (time_t)(T0 + 3600));
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_INTEGER_set(s, serial);
    X509_REVOKED_set_serialNumber(r, s);
    if (serial)
        X509_CRL_add0_revoked(crl, r);
    else
        X509_REVOKED_free(r);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ikey, EVP_sha256()) > 0);
    f = fopen(path(name), "w");
    PEM_write_X509_CRL(f, crl);
    fclose(f);
    X509_CRL_free(crl);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(s);
}

static int setup(void **state)
{
    static const char *const ca_ext[] = {"basicConstraints=critical,CA:true",
                                         "keyUsage=critical,keyCertSign,cRLSign", SKID, NULL};
    static const char *const sub_ext[] = {"basicConstraints=critical,CA:true,pathlen:0",
                                          "keyUsage=critical,keyCertSign,cRLSign", SKID, AKID,
                                          NULL};
    static const char *const sign_ext[] = {KU_SIGN, POL_CARD, SKID, AKID, NULL};
    static const char *const auth_ext[] = {KU_AUTH, POL_CARD, SKID, AKID, NULL};
    static const char *const tsa_ext[] = {"keyUsage=critical,digitalSignature,nonRepudiation",
                                          "extendedKeyUsage=critical,timeStamping", SKID, AKID,
                                          NULL};
    static const char *const badtsa_ext[] = {"keyUsage=critical,digitalSignature",
                                             "extendedKeyUsage=serverAuth", SKID, AKID, NULL};

    (void)state;
    T0 = (int64_t)time(NULL);
    if (!mkdtemp(dir))
        return -1;
    root_key = EVP_EC_gen("P-256");
    ca_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    tsa_key = EVP_EC_gen("P-256");
    root = mk("CN=Test Root", 1, root_key, NULL, NULL, ca_ext);
    ca = mk("CN=Test E-Signature CA", 2, ca_key, root, root_key, sub_ext);
    other_root = mk("CN=Rogue Root", 3, other_key, NULL, NULL, ca_ext);
    signer =
        mk("CN=Aygün Məmmədova/serialNumber=PNOAZ-5HK2J7Q", 10, leaf_key, ca, ca_key, sign_ext);
    revoked =
        mk("CN=Revoked Holder/serialNumber=PNOAZ-REV0001", 11, leaf_key, ca, ca_key, sign_ext);
    authonly = mk("CN=Auth Key/serialNumber=PNOAZ-AUTH001", 12, leaf_key, ca, ca_key, auth_ext);
    stranger = mk("CN=Look Alike/serialNumber=PNOAZ-5HK2J7Q", 13, leaf_key, other_root, other_key,
                  sign_ext);
    tsa = mk("CN=Test TSA", 20, tsa_key, root, root_key, tsa_ext);
    badtsa = mk("CN=Not A TSA", 21, tsa_key, root, root_key, badtsa_ext);
    write_pem("root.pem", root, NULL);
    write_pem("ca.pem", ca, NULL);
    write_crl("ca.crl", ca, ca_key, 11);
    write_crl("root.crl", root, root_key, 0);
    assert_int_equal(dz_x509_trust_new(&trust_plain), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust_plain, path("root.pem")), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust_plain, path("ca.pem")), 0);
    assert_int_equal(dz_x509_trust_new(&trust_crl), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust_crl, path("root.pem")), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust_crl, path("ca.pem")), 0);
    assert_int_equal(dz_x509_trust_add_crl_file(trust_crl, path("ca.crl")), 0);
    assert_int_equal(dz_x509_trust_add_crl_file(trust_crl, path("root.crl")), 0);
    assert_int_equal(dz_tsp_trust_load(path("root.pem"), &tsa_store), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path("root.pem"));
    unlink(path("ca.pem"));
    unlink(path("ca.crl"));
    unlink(path("root.crl"));
    rmdir(dir);
    dz_x509_trust_free(trust_plain);
    dz_x509_trust_free(trust_crl);
    X509_STORE_free(tsa_store);
    X509 *xs[] = {root, ca, other_root, signer, revoked, authonly, stranger, tsa, badtsa};
    for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
        X509_free(xs[i]);
    EVP_PKEY *ks[] = {root_key, ca_key, leaf_key, other_key, tsa_key};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
        EVP_PKEY_free(ks[i]);
    return 0;
}

static const char DOC[] = "{\"case\":\"2-1234/2025\",\"party\":\"5HK2J7Q\",\"text\":\"Notice\"}";

static struct dz_cades_verify_opts opts(struct dz_x509_trust *t)
{
    struct dz_cades_verify_opts o;

    memset(&o, 0, sizeof(o));
    o.anchors[0].trust = t;
    o.anchors[0].policy = DZ_CERTID_POLICY_CARD;
    o.nanchors = 1;
    o.revocation = t == trust_crl ? DZ_X509_REV_CRL_ONLY : DZ_X509_REV_NONE;
    o.tsa_trust = tsa_store;
    return o;
}

static void sign_doc(X509 *cert, const void *doc, size_t len, unsigned char **sig, size_t *sig_len)
{
    STACK_OF(X509) *chain = sk_X509_new_null();

    sk_X509_push(chain, ca);
    assert_int_equal(
        dz_cades_sign(doc, len, cert, chain, 0, dz_cades_sign_with_pkey, leaf_key, sig, sig_len),
        0);
    sk_X509_free(chain);
}

static const char *check_result(const struct dz_cades_report *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++) {
        if (strcmp(r->checks[i].name, name) == 0)
            return r->checks[i].result;
    }
    return "none";
}

static void test_sign_verify_b(void **state)
{
    unsigned char *sig = NULL;
    size_t len = 0;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);
    json_t *j;

    (void)state;
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    assert_null(r.sub_indication);
    assert_string_equal(r.fin, "5HK2J7Q");
    assert_string_equal(r.name, "Aygün Məmmədova");
    assert_int_equal(r.level, 'B');
    assert_true(r.signing_time >= T0 - 5 && r.signing_time <= T0 + 60);
    assert_string_equal(check_result(&r, "timestamp"), "absent");
    j = dz_cades_report_json(&r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "B");
    assert_true(json_is_null(json_object_get(j, "timestamp_time")));
    json_decref(j);

    /* OpenSSL agrees that this is a valid CMS signature with ESS v2. */
    {
        const unsigned char *p = sig;
        CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
        X509_STORE *st = X509_STORE_new();
        BIO *in = BIO_new_mem_buf(DOC, (int)strlen(DOC));
        assert_non_null(cms);
        X509_STORE_add_cert(st, root);
        X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
        assert_int_equal(CMS_verify(cms, NULL, st, in, NULL, CMS_BINARY | CMS_DETACHED), 1);
        BIO_free(in);
        X509_STORE_free(st);
        CMS_ContentInfo_free(cms);
    }
    /* require_t: a level-B signature is not enough */
    o.require_t = true;
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "SIG_CONSTRAINTS_FAILURE");
    free(sig);
}

static void test_tampered(void **state)
{
    unsigned char *sig = NULL;
    size_t len = 0;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);
    char doc2[sizeof(DOC)];

    (void)state;
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    memcpy(doc2, DOC, sizeof(DOC));
    doc2[10] ^= 1;
    assert_int_equal(dz_cades_verify(doc2, strlen(doc2), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_FAILED");
    assert_string_equal(r.sub_indication, "HASH_FAILURE");
    assert_string_equal(check_result(&r, "message_digest"), "failed");
    /* the last byte of the signature value (ECDSA s): crypto failure.
     * Find the signature value by its content rather than by offset. */
    {
        const unsigned char *p = sig;
        CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
        CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
        ASN1_OCTET_STRING *sv = CMS_SignerInfo_get0_signature(si);
        unsigned char *der = NULL;
        int n;
        unsigned char *d = (unsigned char *)ASN1_STRING_get0_data(sv);
        d[ASN1_STRING_length(sv) - 3] ^= 0x55;
        n = i2d_CMS_ContentInfo(cms, &der);
        assert_true(n > 0);
        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), der, (size_t)n, &o, &r), 0);
        assert_string_equal(r.indication, "TOTAL_FAILED");
        assert_string_equal(r.sub_indication, "SIG_CRYPTO_FAILURE");
        OPENSSL_free(der);
        CMS_ContentInfo_free(cms);
    }
    /* any single flipped byte: a parse error or a report, never a crash;
     * flips inside the signer's certificate or the signature never pass */
    for (size_t i = 0; i < len; i += 3) {
        int rc;
        sig[i] ^= 0x20;
        rc = dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r);
        assert_true(rc == DZ_ERR_PARSE || rc == 0);
        if (rc == 0)
            assert_non_null(r.indication);
        sig[i] ^= 0x20;
    }
    sig[len - 2] ^= 0x01; /* inside the signature value (the last element) */
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_FAILED");
    sig[len - 2] ^= 0x01;
    /* eContentType is outside the signature: a changed OID there (the first
     * id-data in the SignedData; the signed content-type attribute comes
     * later) must not pass (RFC 5652 11.1). */
    {
        static const unsigned char id_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x07, 0x01};
        unsigned char *at = NULL;

        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
        assert_string_equal(r.indication, "TOTAL_PASSED"); /* the control */
        for (size_t i = 0; i + sizeof(id_data) <= len && !at; i++)
            if (memcmp(sig + i, id_data, sizeof(id_data)) == 0)
                at = sig + i;
        assert_non_null(at);
        at[sizeof(id_data) - 1] = 0x05; /* 1.2.840.113549.1.7.5: digestedData */
        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
        assert_string_equal(r.indication, "TOTAL_FAILED");
        assert_string_equal(r.sub_indication, "FORMAT_FAILURE");
        at[sizeof(id_data) - 1] = 0x01;
    }
    free(sig);
}

/* signing-time is the signer's claim: one after the validation time
 * (beyond DZ_CADES_TS_SKEW_S of clock skew) does not pass, at level B as
 * in a report or before the gateway's time-stamp; validated later, when
 * that time has come, the same signature passes. */
static void test_future_signing_time(void **state)
{
    unsigned char *sig = NULL;
    size_t len = 0;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);
    STACK_OF(X509) *chain = sk_X509_new_null();

    (void)state;
    sk_X509_push(chain, ca);
    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), signer, chain, T0 + 3600,
                                   dz_cades_sign_with_pkey, leaf_key, &sig, &len),
                     0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "SIG_CONSTRAINTS_FAILURE");
    {
        bool said = false;
        for (size_t i = 0; i < r.nchecks; i++)
            said = said || (strcmp(r.checks[i].name, "signed_attributes") == 0 &&
                            strcmp(r.checks[i].result, "failed") == 0 &&
                            strstr(r.checks[i].detail, "future") != NULL);
        assert_true(said);
    }
    assert_string_equal(check_result(&r, "signature"), "passed");
    o.at = T0 + 3600;
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    free(sig);
    /* Within the skew: a signer's clock a little ahead is not refused. */
    o.at = 0;
    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), signer, chain, T0 + 60,
                                   dz_cades_sign_with_pkey, leaf_key, &sig, &len),
                     0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    free(sig);
    sk_X509_free(chain);
}

/* A CAdES-B by OpenSSL's own CMS code (ESS v2 for signer) with an ESS
 * signing-certificate (v1) attribute naming v1_names, signed with the
 * others. */
static void sign_with_v1(X509 *v1_names, unsigned char **sig, size_t *len)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    ESS_SIGNING_CERT *sc;
    ASN1_STRING *seq = ASN1_STRING_new();
    unsigned char *der = NULL;
    BIO *in = BIO_new_mem_buf(DOC, (int)strlen(DOC));
    int n;

    sk_X509_push(chain, ca);
    cms = CMS_sign(signer, leaf_key, chain, NULL,
                   CMS_PARTIAL | CMS_DETACHED | CMS_BINARY | CMS_CADES | CMS_NOSMIMECAP);
    assert_non_null(cms);
    si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    sc = OSSL_ESS_signing_cert_new_init(v1_names, NULL, 1);
    assert_non_null(sc);
    n = i2d_ESS_SIGNING_CERT(sc, &der);
    assert_true(n > 0);
    assert_int_equal(ASN1_STRING_set(seq, der, n), 1);
    assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_id_smime_aa_signingCertificate,
                                                 V_ASN1_SEQUENCE, seq, -1),
                     1);
    assert_int_equal(CMS_final(cms, in, NULL, CMS_DETACHED | CMS_BINARY), 1);
    *sig = NULL;
    n = i2d_CMS_ContentInfo(cms, sig);
    assert_true(n > 0);
    *len = (size_t)n;
    OPENSSL_free(der);
    ASN1_STRING_free(seq);
    ESS_SIGNING_CERT_free(sc);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    sk_X509_free(chain);
}

/* OpenSSL's CAdES verification (`openssl cms -verify -cades`) of sig over
 * DOC, root trusted: true when it passes. */
static int openssl_verifies(const unsigned char *sig, size_t len)
{
    const unsigned char *p = sig;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    X509_STORE *st = X509_STORE_new();
    BIO *in = BIO_new_mem_buf(DOC, (int)strlen(DOC));
    int ok;

    assert_non_null(cms);
    X509_STORE_add_cert(st, root);
    X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
    ok = CMS_verify(cms, NULL, st, in, NULL, CMS_BINARY | CMS_DETACHED | CMS_CADES);
    ERR_clear_error();
    BIO_free(in);
    X509_STORE_free(st);
    CMS_ContentInfo_free(cms);
    return ok == 1;
}

/* Both ESS attributes are signed and each names a signing certificate: a
 * v1 beside the v2 must name the same one.  One that names another
 * certificate (the look-alike of the same FIN) made a signature darvaza
 * passed and OpenSSL's CAdES verification refuses. */
static void test_ess_v1_beside_v2(void **state)
{
    unsigned char *sig = NULL;
    size_t len = 0;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);

    (void)state;
    sign_with_v1(signer, &sig, &len); /* the control: both name the signer */
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    assert_true(openssl_verifies(sig, len));
    OPENSSL_free(sig);
    sign_with_v1(stranger, &sig, &len);
    assert_false(openssl_verifies(sig, len));
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "NO_SIGNING_CERTIFICATE_FOUND");
    assert_string_equal(check_result(&r, "signing_certificate"), "failed");
    OPENSSL_free(sig);
}

static void test_certificates(void **state)
{
    unsigned char *sig = NULL;
    size_t len = 0;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_crl);

    (void)state;
    sign_doc(revoked, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_FAILED");
    assert_string_equal(r.sub_indication, "REVOKED");
    free(sig);

    /* the good one passes with the CRL too */
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    free(sig);

    sign_doc(stranger, DOC, strlen(DOC), &sig, &len);
    o = opts(trust_plain);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "NO_CERTIFICATE_CHAIN_FOUND");
    assert_string_equal(r.fin, "5HK2J7Q"); /* shown, but never trusted */
    free(sig);

    sign_doc(authonly, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "CHAIN_CONSTRAINTS_FAILURE");
    free(sig);
}

static void test_garbage(void **state)
{
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);
    unsigned char junk[64];
    unsigned char *sig = NULL;
    size_t len = 0;

    (void)state;
    memset(junk, 0x30, sizeof(junk));
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), junk, sizeof(junk), &o, &r), DZ_ERR_PARSE);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), junk, 0, &o, &r), DZ_ERR_PARSE);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), NULL, 0, &o, &r), DZ_ERR_PARSE);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), junk, DZ_CADES_MAX_SIG + 1, &o, &r),
                     DZ_ERR_TOOBIG);
    /* every truncation is refused as unparsable, never a crash */
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    for (size_t n = 0; n < len; n += 3)
        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, n, &o, &r), DZ_ERR_PARSE);
    free(sig);
    assert_int_equal(dz_cades_signature_digest(junk, sizeof(junk), (unsigned char[32]){0}),
                     DZ_ERR_PARSE);
}

/* ---- level T with an in-process TSA ---- */

/* genTime of the tokens make_token makes; 0: now. */
static long token_time;

static int time_cb(TS_RESP_CTX *ctx, void *data, long *sec, long *usec)
{
    (void)ctx;
    (void)data;
    *sec = token_time ? token_time : (long)time(NULL);
    *usec = 0;
    return 1;
}

static ASN1_INTEGER *serial_cb(TS_RESP_CTX *ctx, void *data)
{
    static long n = 100;
    ASN1_INTEGER *s = ASN1_INTEGER_new();

    (void)ctx;
    (void)data;
    ASN1_INTEGER_set(s, n++);
    return s;
}

static void make_token_with(X509 *cert, EVP_PKEY *key, const EVP_MD *md,
                            const unsigned char digest[32], unsigned char **tok, size_t *tok_len);

/* A token over digest by cert/key (the TSA), through the real request path. */
static void make_token(X509 *cert, const unsigned char digest[32], unsigned char **tok,
                       size_t *tok_len)
{
    make_token_with(cert, tsa_key, EVP_sha256(), digest, tok, tok_len);
}

/* The same by any TSA key, signing with md. */
static void make_token_with(X509 *cert, EVP_PKEY *key, const EVP_MD *md,
                            const unsigned char digest[32], unsigned char **tok, size_t *tok_len)
{
    unsigned char nonce[8];
    unsigned char *req = NULL;
    size_t req_len = 0;
    TS_RESP_CTX *ctx = TS_RESP_CTX_new();
    BIO *in;
    TS_RESP *resp;
    int n;

    assert_int_equal(dz_tsp_request_der(digest, nonce, &req, &req_len), 0);
    TS_RESP_CTX_set_signer_cert(ctx, cert);
    TS_RESP_CTX_set_signer_key(ctx, key);
    TS_RESP_CTX_set_signer_digest(ctx, md);
    TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256());
    {
        ASN1_OBJECT *pol = OBJ_txt2obj("1.3.6.1.4.1.55555.3.1", 1);
        TS_RESP_CTX_set_def_policy(ctx, pol); /* copies */
        ASN1_OBJECT_free(pol);
    }
    TS_RESP_CTX_add_md(ctx, EVP_sha256());
    TS_RESP_CTX_set_serial_cb(ctx, serial_cb, NULL);
    TS_RESP_CTX_set_time_cb(ctx, time_cb, NULL);
    in = BIO_new_mem_buf(req, (int)req_len);
    resp = TS_RESP_create_response(ctx, in);
    assert_non_null(resp);
    if (!TS_RESP_get_token(resp))
        ERR_print_errors_fp(stderr);
    *tok = NULL;
    n = i2d_PKCS7(TS_RESP_get_token(resp), tok);
    assert_true(n > 0);
    *tok_len = (size_t)n;
    TS_RESP_free(resp);
    BIO_free(in);
    TS_RESP_CTX_free(ctx);
    OPENSSL_free(req);
}

static void test_level_t(void **state)
{
    unsigned char *sig = NULL, *sig_t = NULL, *tok = NULL, *tok2 = NULL;
    size_t len = 0, len_t = 0, tok_len = 0, tok2_len = 0;
    unsigned char d[32], other[32];
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);
    struct dz_tsp_info info;
    unsigned char *again = NULL;
    size_t again_len = 0;

    (void)state;
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_signature_digest(sig, len, d), 0);
    make_token(tsa, d, &tok, &tok_len);
    assert_int_equal(dz_tsp_verify_token(tok, tok_len, d, NULL, tsa_store, &info, NULL, 0), 0);
    assert_true(info.gen_time >= T0 - 5);
    assert_string_equal(info.tsa_name, "Test TSA");
    memset(other, 7, sizeof(other));
    assert_int_equal(dz_tsp_verify_token(tok, tok_len, other, NULL, tsa_store, &info, NULL, 0),
                     DZ_ERR_DENIED);
    assert_int_equal(dz_cades_add_timestamp(sig, len, tok, tok_len, &sig_t, &len_t), 0);
    assert_int_equal(dz_cades_add_timestamp(sig_t, len_t, tok, tok_len, &again, &again_len),
                     DZ_ERR_EXISTS);
    o.require_t = true;
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig_t, len_t, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    assert_int_equal(r.level, 'T');
    assert_true(r.timestamp_time >= T0 - 5);
    assert_string_equal(check_result(&r, "timestamp"), "passed");
    /* the time-stamp still covers the signature after a round trip, and the
     * signature digest is unchanged by adding it */
    assert_int_equal(dz_cades_signature_digest(sig_t, len_t, other), 0);
    assert_memory_equal(d, other, 32);
    free(sig_t);
    sig_t = NULL;

    /* a token over something else */
    memset(other, 9, sizeof(other));
    make_token(tsa, other, &tok2, &tok2_len);
    assert_int_equal(dz_cades_add_timestamp(sig, len, tok2, tok2_len, &sig_t, &len_t), 0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig_t, len_t, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(check_result(&r, "timestamp"), "failed");
    assert_int_equal(r.level, 'B');
    free(sig_t);
    sig_t = NULL;
    OPENSSL_free(tok2);
    tok2 = NULL;

    /* OpenSSL will not even make a token with a certificate that lacks the
     * timeStamping EKU (TS_RESP_CTX_set_signer_cert); a token by a TSA the
     * store does not trust is refused */
    {
        TS_RESP_CTX *ctx = TS_RESP_CTX_new();
        X509_STORE *rogue = X509_STORE_new();
        assert_int_equal(TS_RESP_CTX_set_signer_cert(ctx, badtsa), 0);
        ERR_clear_error();
        TS_RESP_CTX_free(ctx);
        X509_STORE_add_cert(rogue, other_root);
        assert_int_equal(dz_tsp_verify_token(tok, tok_len, d, NULL, rogue, &info, NULL, 0),
                         DZ_ERR_DENIED);
        X509_STORE_free(rogue);
    }

    /* garbage tokens */
    assert_int_equal(
        dz_tsp_verify_token((const unsigned char *)"0000", 4, d, NULL, tsa_store, &info, NULL, 0),
        DZ_ERR_PARSE);
    assert_int_equal(dz_cades_add_timestamp(sig, len, NULL, 0, &sig_t, &len_t), DZ_ERR_INVAL);
    OPENSSL_free(tok2);
    OPENSSL_free(tok);
    free(sig);
}

/* ---- the key and signature floor (keyfloor.h) on documents ---- */

/* Time-stamp tokens: the TSA's key (RSA-1024: OpenSSL's security level on
 * the store; P-224: our own walk), the token's own digest (SHA-1), and a
 * store whose floor was raised.  A P-256 / SHA-256 token is the control. */
static void test_weak_timestamps(void **state)
{
    static const char *const tsa_ext[] = {"keyUsage=critical,digitalSignature,nonRepudiation",
                                          "extendedKeyUsage=critical,timeStamping", SKID, AKID,
                                          NULL};
    EVP_PKEY *k1024 = EVP_RSA_gen(1024);
    EVP_PKEY *p224 = EVP_EC_gen("P-224");
    X509 *tsa1024 = mk("CN=Weak TSA", 30, k1024, root, root_key, tsa_ext);
    X509 *tsa224 = mk("CN=Small Curve TSA", 31, p224, root, root_key, tsa_ext);
    const struct dz_keyfloor ec384 = {.ec_bits = 384};
    X509_STORE *raised = NULL;
    struct dz_tsp_info info;
    unsigned char d[32];
    unsigned char *tok = NULL;
    size_t tok_len = 0;
    char detail[160];

    (void)state;
    memset(d, 0x5a, sizeof(d));
    make_token(tsa, d, &tok, &tok_len);
    assert_int_equal(
        dz_tsp_verify_token(tok, tok_len, d, NULL, tsa_store, &info, detail, sizeof(detail)), 0);
    OPENSSL_free(tok);

    make_token_with(tsa1024, k1024, EVP_sha256(), d, &tok, &tok_len);
    assert_int_equal(
        dz_tsp_verify_token(tok, tok_len, d, NULL, tsa_store, &info, detail, sizeof(detail)),
        DZ_ERR_DENIED);
    assert_non_null(strstr(detail, "key too weak"));
    OPENSSL_free(tok);

    make_token_with(tsa224, p224, EVP_sha256(), d, &tok, &tok_len);
    assert_int_equal(
        dz_tsp_verify_token(tok, tok_len, d, NULL, tsa_store, &info, detail, sizeof(detail)),
        DZ_ERR_DENIED);
    assert_non_null(strstr(detail, "weak_key"));
    OPENSSL_free(tok);

    make_token_with(tsa, tsa_key, EVP_sha1(), d, &tok, &tok_len);
    assert_int_equal(
        dz_tsp_verify_token(tok, tok_len, d, NULL, tsa_store, &info, detail, sizeof(detail)),
        DZ_ERR_DENIED);
    assert_non_null(strstr(detail, "weak_signature"));
    OPENSSL_free(tok);

    /* A raised floor on the TSA store refuses the P-256 TSA. */
    assert_int_equal(dz_tsp_trust_load(path("root.pem"), &raised), 0);
    assert_int_equal(dz_keyfloor_store_set(raised, &ec384), 0);
    make_token(tsa, d, &tok, &tok_len);
    assert_int_equal(
        dz_tsp_verify_token(tok, tok_len, d, NULL, raised, &info, detail, sizeof(detail)),
        DZ_ERR_DENIED);
    assert_non_null(strstr(detail, "weak_key"));
    OPENSSL_free(tok);

    X509_STORE_free(raised);
    X509_free(tsa1024);
    X509_free(tsa224);
    EVP_PKEY_free(k1024);
    EVP_PKEY_free(p224);
}

/* Signed documents: a signer with an RSA-1024 key, a cA=TRUE signer, and a
 * SignerInfo whose signatureAlgorithm names SHA-1 are never TOTAL_PASSED. */
static void test_weak_signers(void **state)
{
    static const char *const sign_ext[] = {KU_SIGN, POL_CARD, SKID, AKID, NULL};
    static const char *const ca_sign_ext[] = {
        "basicConstraints=critical,CA:true", KU_SIGN, POL_CARD, SKID, AKID, NULL};
    EVP_PKEY *k1024 = EVP_RSA_gen(1024);
    X509 *weak = mk("CN=Weak Key/serialNumber=PNOAZ-WEAK001", 40, k1024, ca, ca_key, sign_ext);
    X509 *caleaf =
        mk("CN=CA Leaf/serialNumber=PNOAZ-CALEAF1", 41, leaf_key, ca, ca_key, ca_sign_ext);
    struct dz_cades_verify_opts o = opts(trust_plain);
    STACK_OF(X509) *chain = sk_X509_new_null();
    struct dz_cades_report r;
    unsigned char *sig = NULL;
    size_t len = 0;

    (void)state;
    sk_X509_push(chain, ca);
    assert_int_equal(
        dz_cades_sign(DOC, strlen(DOC), weak, chain, 0, dz_cades_sign_with_pkey, k1024, &sig, &len),
        0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE");
    free(sig);
    sig = NULL;

    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), caleaf, chain, 0, dz_cades_sign_with_pkey,
                                   leaf_key, &sig, &len),
                     0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "CHAIN_CONSTRAINTS_FAILURE");
    free(sig);
    sig = NULL;

    /* signatureAlgorithm is not covered by the signature: rewrite it to
     * ecdsa-with-SHA1 on a good signature (control: unchanged, passed). */
    sign_doc(signer, DOC, strlen(DOC), &sig, &len);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    {
        const unsigned char *p = sig;
        CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
        CMS_SignerInfo *si;
        X509_ALGOR *psig = NULL;
        unsigned char *der = NULL;
        int n;

        assert_non_null(cms);
        si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
        CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &psig);
        assert_int_equal(
            X509_ALGOR_set0(psig, OBJ_nid2obj(NID_ecdsa_with_SHA1), V_ASN1_UNDEF, NULL), 1);
        n = i2d_CMS_ContentInfo(cms, &der);
        assert_true(n > 0);
        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), der, (size_t)n, &o, &r), 0);
        assert_string_equal(r.indication, "INDETERMINATE");
        assert_string_equal(r.sub_indication, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE");
        assert_string_equal(check_result(&r, "signature"), "failed");
        OPENSSL_free(der);
        CMS_ContentInfo_free(cms);
    }
    free(sig);
    sk_X509_free(chain);
    X509_free(weak);
    X509_free(caleaf);
    EVP_PKEY_free(k1024);
}

/* A revoked signing certificate (CRL: revoked at T0 - 600) judged by time
 * (EN 319 102-1): a time-stamp older than the revocation proves the
 * signature existed while the certificate was good. */
static void test_revoked_after_poe(void **state)
{
    unsigned char *sig = NULL, *sig_t = NULL, *tok = NULL;
    size_t len = 0, len_t = 0, tok_len = 0;
    unsigned char d[32];
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_crl);
    STACK_OF(X509) *chain = sk_X509_new_null();

    (void)state;
    sk_X509_push(chain, ca);
    /* Claimed signed an hour before the revocation, no time-stamp: nothing
     * proves it, so neither pass nor fail. */
    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), revoked, chain, T0 - 3600,
                                   dz_cades_sign_with_pkey, leaf_key, &sig, &len),
                     0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig, len, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "REVOKED_NO_POE");
    assert_string_equal(check_result(&r, "certificate"), "indeterminate");

    /* The same signature time-stamped before the revocation: passes. */
    assert_int_equal(dz_cades_signature_digest(sig, len, d), 0);
    token_time = (long)(T0 - 1800);
    make_token(tsa, d, &tok, &tok_len);
    token_time = 0;
    assert_int_equal(dz_cades_add_timestamp(sig, len, tok, tok_len, &sig_t, &len_t), 0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig_t, len_t, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    assert_int_equal(r.level, 'T');
    assert_string_equal(check_result(&r, "certificate"), "passed");
    free(sig_t);
    sig_t = NULL;
    OPENSSL_free(tok);
    tok = NULL;

    /* Time-stamped only after the revocation: no proof again. */
    make_token(tsa, d, &tok, &tok_len);
    assert_int_equal(dz_cades_add_timestamp(sig, len, tok, tok_len, &sig_t, &len_t), 0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig_t, len_t, &o, &r), 0);
    assert_string_equal(r.indication, "INDETERMINATE");
    assert_string_equal(r.sub_indication, "REVOKED_NO_POE");
    free(sig_t);
    OPENSSL_free(tok);
    free(sig);
    sk_X509_free(chain);
}

/* cert signs DOC an hour before the CRL's revocation, time-stamped half an
 * hour before it. */
static void sign_t_before_revocation(X509 *cert, unsigned char **sig_t, size_t *len_t)
{
    unsigned char *sig = NULL, *tok = NULL;
    size_t len = 0, tok_len = 0;
    unsigned char d[32];
    STACK_OF(X509) *chain = sk_X509_new_null();

    sk_X509_push(chain, ca);
    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), cert, chain, T0 - 3600,
                                   dz_cades_sign_with_pkey, leaf_key, &sig, &len),
                     0);
    assert_int_equal(dz_cades_signature_digest(sig, len, d), 0);
    token_time = (long)(T0 - 1800);
    make_token(tsa, d, &tok, &tok_len);
    token_time = 0;
    assert_int_equal(dz_cades_add_timestamp(sig, len, tok, tok_len, sig_t, len_t), 0);
    OPENSSL_free(tok);
    free(sig);
    sk_X509_free(chain);
}

/* The time-stamp excuses the revocation only: everything else about the
 * certificate is still checked (a revoked serial is no free pass). */
static void test_revoked_poe_checks_the_rest(void **state)
{
    static const char *const auth_ext[] = {KU_AUTH, POL_CARD, SKID, AKID, NULL};
    static const char *const sign_ext[] = {KU_SIGN, POL_CARD, SKID, AKID, NULL};
    /* The revoked serial (11) on an authentication-only key, and on a
     * certificate the CA never signed. */
    X509 *auth_revoked =
        mk("CN=Revoked Auth/serialNumber=PNOAZ-REV0002", 11, leaf_key, ca, ca_key, auth_ext);
    X509 *forged =
        mk("CN=Forged/serialNumber=PNOAZ-REV0003", 11, leaf_key, ca, other_key, sign_ext);
    X509 *certs[] = {auth_revoked, forged};
    struct dz_cades_verify_opts o = opts(trust_crl);
    struct dz_cades_report r;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        unsigned char *sig_t = NULL;
        size_t len_t = 0;

        sign_t_before_revocation(certs[i], &sig_t, &len_t);
        assert_int_equal(dz_cades_verify(DOC, strlen(DOC), sig_t, len_t, &o, &r), 0);
        assert_int_equal(r.level, 'T');
        assert_string_not_equal(r.indication, "TOTAL_PASSED");
        assert_string_not_equal(check_result(&r, "certificate"), "passed");
        if (i == 0)
            assert_string_equal(r.sub_indication, "CHAIN_CONSTRAINTS_FAILURE");
        free(sig_t);
    }
    X509_free(auth_revoked);
    X509_free(forged);
}

/* Two steps (the mobile signature's way): prepare, sign the digest
 * elsewhere, finish; the result verifies like dz_cades_sign's. */
static void test_prepare_finish(void **state)
{
    unsigned char *partial = NULL, *cms = NULL, *cms2 = NULL, *sig = NULL;
    size_t partial_len = 0, cms_len = 0, cms2_len = 0, sig_len = 0;
    unsigned char tbs[32], doc_hash[32];
    EVP_PKEY_CTX *pc;
    struct dz_cades_report r;
    struct dz_cades_verify_opts o = opts(trust_plain);

    (void)state;
    assert_int_equal(
        dz_cades_prepare(DOC, strlen(DOC), signer, NULL, 0, &partial, &partial_len, tbs), 0);
    /* Unsigned as prepared: verification fails on the signature. */
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), partial, partial_len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_FAILED");
    pc = EVP_PKEY_CTX_new(leaf_key, NULL);
    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_sign_init(pc), 1);
    assert_int_equal(EVP_PKEY_sign(pc, NULL, &sig_len, tbs, sizeof(tbs)), 1);
    sig = malloc(sig_len);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(pc, sig, &sig_len, tbs, sizeof(tbs)), 1);
    EVP_PKEY_CTX_free(pc);
    assert_int_equal(dz_cades_finish(partial, partial_len, sig, sig_len, &cms, &cms_len), 0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), cms, cms_len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    assert_string_equal(check_result(&r, "signature"), "passed");
    /* By the document's hash alone. */
    dz_sha256(DOC, strlen(DOC), doc_hash);
    assert_int_equal(dz_cades_verify_sha256(doc_hash, cms, cms_len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_PASSED");
    doc_hash[0] ^= 1;
    assert_int_equal(dz_cades_verify_sha256(doc_hash, cms, cms_len, &o, &r), 0);
    assert_string_equal(r.sub_indication, "HASH_FAILURE");
    /* A signature over another digest does not verify. */
    assert_int_equal(dz_cades_finish(partial, partial_len, sig, sig_len - 1, &cms2, &cms2_len), 0);
    assert_int_equal(dz_cades_verify(DOC, strlen(DOC), cms2, cms2_len, &o, &r), 0);
    assert_string_equal(r.indication, "TOTAL_FAILED");
    OPENSSL_free(cms2);
    /* Finished once: a signed SignedData is not a prepared one. */
    assert_int_equal(dz_cades_finish(cms, cms_len, sig, sig_len, &cms2, &cms2_len), DZ_ERR_PARSE);
    assert_null(cms2);
    assert_int_equal(
        dz_cades_finish((const unsigned char *)"junk", 4, sig, sig_len, &cms2, &cms2_len),
        DZ_ERR_PARSE);
    assert_int_equal(dz_cades_finish(partial, partial_len, sig, 0, &cms2, &cms2_len), DZ_ERR_INVAL);
    assert_int_equal(dz_cades_prepare(NULL, 0, signer, NULL, 0, &cms2, &cms2_len, tbs),
                     DZ_ERR_INVAL);
    free(sig);
    OPENSSL_free(cms);
    OPENSSL_free(partial);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_b),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_future_signing_time),
        cmocka_unit_test(test_ess_v1_beside_v2),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_level_t),
        cmocka_unit_test(test_weak_timestamps),
        cmocka_unit_test(test_weak_signers),
        cmocka_unit_test(test_revoked_after_poe),
        cmocka_unit_test(test_revoked_poe_checks_the_rest),
        cmocka_unit_test(test_prepare_finish),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
