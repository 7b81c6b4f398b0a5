/* test_x509check_cached.c - the validator's cached-only mode
 * (dz_x509_validate_cached, lib/pki/x509check.c), which a worker loop runs
 * before it would send a certificate check to the pool.  When everything
 * is cached it must decide exactly as dz_x509_validate (a pass, a cached
 * "revoked", an expired certificate); otherwise it must say "not cached"
 * and decide nothing: a cold signature memo, no OCSP answer, an answer
 * past its nextUpdate, other bytes under the same names, CRL files.  The
 * certificates' OCSP URL is a closed loopback port, so the full check
 * fails closed wherever it would have to ask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "harness/fake_pki.h"
#include "pki/certid.h"
#include "pki/chainsig.h"
#include "pki/ocsp.h"
#include "pki/x509check.h"

#define AIA_DEAD "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/"

static char dir[] = "/tmp/test_x509check_cached.XXXXXX";
static struct fake_pki_ca pki;
static EVP_PKEY *leaf_key;
static struct dz_x509_trust *trust;
static const char *const card_only[] = {DZ_CERTID_POLICY_CARD};

static const char *path(const char *name)
{
    static char p[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

/* A citizen's card certificate (certs/mkcards.sh's profile) with a dead
 * OCSP URL, valid from an hour ago to until (unix seconds; 0: a day). */
static X509 *card(long serial, int64_t until)
{
    const char *const exts[] = {"keyUsage=critical,digitalSignature",
                                "extendedKeyUsage=clientAuth",
                                "certificatePolicies=" DZ_CERTID_POLICY_CARD,
                                "subjectKeyIdentifier=hash",
                                "authorityKeyIdentifier=keyid:always",
                                AIA_DEAD,
                                NULL};
    X509 *x = fake_pki_cert("CN=Aytən Quliyeva/serialNumber=PNOAZ-ABC1234", serial, leaf_key,
                            pki.ca, pki.ca_key, exts);

    if (until != 0) {
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)until);
        assert_true(X509_sign(x, pki.ca_key, EVP_sha256()) > 0);
    }
    return x;
}

static struct dz_x509_opts login_opts(struct dz_ocsp_cache *cache)
{
    struct dz_x509_opts o;

    memset(&o, 0, sizeof(o));
    o.purpose = DZ_X509_PURPOSE_AUTH;
    o.policies = card_only;
    o.npolicies = 1;
    o.revocation = DZ_X509_REV_OCSP_CRL;
    o.fetch_timeout_ms = 2000;
    o.ocsp_cache = cache;
    o.require_fin = true;
    return o;
}

/* One test's card, its OCSP cache and the login's options: the set-up
 * every case shares.  No answer is cached yet. */
struct login_case {
    struct dz_ocsp_cache *cache;
    struct dz_x509_opts o;
    X509 *leaf;
};

static void case_open(struct login_case *k, long serial, int64_t until)
{
    k->leaf = card(serial, until);
    assert_int_equal(dz_ocsp_cache_new(16, &k->cache), 0);
    k->o = login_opts(k->cache);
}

static void case_close(struct login_case *k)
{
    dz_ocsp_cache_free(k->cache);
    X509_free(k->leaf);
}

/* The card's OCSP answer, as a responder gave it, into the case's cache. */
static void case_answer(struct login_case *k, enum dz_ocsp_status status, int64_t next_update)
{
    struct dz_ocsp_answer a;
    unsigned char key[32];
    int64_t now = (int64_t)time(NULL);

    memset(&a, 0, sizeof(a));
    a.status = status;
    a.this_update = now - 60;
    a.next_update = next_update;
    a.revoked_at = status == DZ_OCSP_REVOKED ? now - 86400 : 0;
    a.revocation_reason = status == DZ_OCSP_REVOKED ? 1 : -1;
    memset(a.sha256, status == DZ_OCSP_REVOKED ? 0xee : 0x60, sizeof(a.sha256));
    assert_int_equal(dz_ocsp_key(k->leaf, pki.ca, key), 0);
    assert_int_equal(dz_ocsp_cache_put(k->cache, key, &a, now), 0);
}

/* The full check (the pool's). */
static void full(X509 *leaf, const struct dz_x509_opts *o, struct dz_x509_result *r)
{
    assert_int_equal(dz_x509_validate(trust, leaf, NULL, o, r), 0);
    assert_non_null(r->reason);
}

/* The cached-only check must say "not cached", and nothing else. */
static void not_cached(X509 *leaf, const struct dz_x509_opts *o, const char *why)
{
    struct dz_x509_result r;

    assert_int_equal(dz_x509_validate_cached(trust, leaf, NULL, o, &r), DZ_ERR_NOTFOUND);
    assert_false(r.valid);
    assert_string_equal(r.reason, "not_cached");
    assert_non_null(strstr(r.detail, why));
}

/* The cached-only check decides, exactly as the full one does now. */
static void same_as_full(X509 *leaf, const struct dz_x509_opts *o, const char *reason)
{
    struct dz_x509_result a, b;

    full(leaf, o, &a);
    assert_string_equal(a.reason, reason);
    assert_int_equal(dz_x509_validate_cached(trust, leaf, NULL, o, &b), 0);
    assert_int_equal(b.valid, a.valid);
    assert_string_equal(b.reason, a.reason);
    assert_string_equal(b.detail, a.detail);
    assert_string_equal(b.fin, a.fin);
    assert_string_equal(b.role, a.role);
    assert_string_equal(b.name, a.name);
    assert_memory_equal(b.sha256, a.sha256, 32);
    assert_string_equal(b.revocation_source, a.revocation_source);
    assert_int_equal(b.revocation_checked_at, a.revocation_checked_at);
    assert_int_equal(b.revoked_at, a.revoked_at);
    assert_int_equal(b.has_ocsp, a.has_ocsp);
    assert_memory_equal(b.ocsp_sha256, a.ocsp_sha256, 32);
}

/* Until time(NULL) is past t (bounded: a few seconds at most here). */
static void wait_past(int64_t t)
{
    struct timespec tick = {0, 50 * 1000 * 1000};

    for (int i = 0; i < 200 && (int64_t)time(NULL) <= t; i++)
        nanosleep(&tick, NULL);
    assert_true((int64_t)time(NULL) > t);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    fake_pki_ca_init(&pki, "Test E-Signature");
    leaf_key = fake_pki_key();
    fake_pki_ca_write(&pki, path("chain.pem"));
    assert_int_equal(dz_x509_trust_new(&trust), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust, path("chain.pem")), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dz_x509_trust_free(trust);
    unlink(path("chain.pem"));
    unlink(path("ca.crl"));
    rmdir(dir);
    fake_pki_ca_cleanup(&pki);
    EVP_PKEY_free(leaf_key);
    return 0;
}

/* Everything cached: the same pass as the pool's; the first check of a
 * path never seen is not cached even with the OCSP answer there. */
static void test_hit_same_as_full(void **state)
{
    struct dz_ocsp_cache_stats st;
    struct dz_x509_result r;
    struct login_case k;

    (void)state;
    case_open(&k, 0x2001, 0);
    case_answer(&k, DZ_OCSP_GOOD, time(NULL) + 3600);
    dz_chainsig_clear();
    not_cached(k.leaf, &k.o, "signature of the path not remembered");
    full(k.leaf, &k.o, &r); /* remembers the CA's and the card's signatures */
    assert_true(r.valid);
    same_as_full(k.leaf, &k.o, "ok");
    assert_string_equal(r.revocation_source, "ocsp_cache");
    /* One validation, one lookup: the loop's hit is counted, nothing else. */
    dz_ocsp_cache_stats(k.cache, &st);
    assert_int_equal(st.misses, 0);
    /* Without revocation the memo alone decides. */
    k.o.revocation = DZ_X509_REV_NONE;
    same_as_full(k.leaf, &k.o, "ok");
    case_close(&k);
}

/* No answer cached (or no cache): not cached, and the full check, which
 * has to ask, fails closed here.  The loop's miss is not counted: the
 * pool's lookup that follows counts it. */
static void test_no_ocsp_answer(void **state)
{
    struct dz_ocsp_cache_stats st;
    struct dz_x509_result r;
    struct login_case k;

    (void)state;
    case_open(&k, 0x2002, 0);
    k.o.revocation = DZ_X509_REV_NONE;
    full(k.leaf, &k.o, &r); /* the signatures remembered */
    k.o.revocation = DZ_X509_REV_OCSP_CRL;
    not_cached(k.leaf, &k.o, "no fresh OCSP answer");
    dz_ocsp_cache_stats(k.cache, &st);
    assert_int_equal(st.misses, 0);
    full(k.leaf, &k.o, &r);
    assert_string_equal(r.reason, "revocation_unknown");
    dz_ocsp_cache_stats(k.cache, &st);
    assert_int_equal(st.misses, 1);
    k.o.ocsp_cache = NULL;
    not_cached(k.leaf, &k.o, "no fresh OCSP answer");
    case_close(&k);
}

/* A "good" answer past its nextUpdate lets nothing through: the loop
 * says not cached, and the pool asks again (here: fails closed). */
static void test_ocsp_past_next_update(void **state)
{
    struct dz_x509_result r;
    struct login_case k;
    int64_t next = (int64_t)time(NULL) + 2;

    (void)state;
    case_open(&k, 0x2003, 0);
    case_answer(&k, DZ_OCSP_GOOD, next);
    full(k.leaf, &k.o, &r);
    if (r.valid) /* the second may have turned already on a slow machine */
        same_as_full(k.leaf, &k.o, "ok");
    wait_past(next);
    not_cached(k.leaf, &k.o, "no fresh OCSP answer");
    full(k.leaf, &k.o, &r);
    assert_string_equal(r.reason, "revocation_unknown");
    case_close(&k);
}

/* A cached "revoked" is a refusal on the loop, the same as the pool's. */
static void test_revoked(void **state)
{
    struct dz_x509_result r;
    struct login_case k;

    (void)state;
    case_open(&k, 0x2004, 0);
    case_answer(&k, DZ_OCSP_REVOKED, time(NULL) + 3600);
    full(k.leaf, &k.o, &r);
    same_as_full(k.leaf, &k.o, "revoked");
    assert_true(r.revoked_at > 0);
    assert_string_equal(r.revocation_source, "ocsp_cache");
    case_close(&k);
}

/* A certificate that expired after its signature was remembered and its
 * OCSP answer cached: the validity period is checked at every validation,
 * so the loop refuses it as the pool does. */
static void test_expired_since_cached(void **state)
{
    struct dz_x509_result r;
    int64_t until = (int64_t)time(NULL) + 2;
    struct login_case k;

    (void)state;
    case_open(&k, 0x2005, until);
    case_answer(&k, DZ_OCSP_GOOD, time(NULL) + 3600);
    full(k.leaf, &k.o, &r);
    assert_true(r.valid);
    wait_past(until);
    same_as_full(k.leaf, &k.o, "expired");
    case_close(&k);
}

/* Other bytes under the same names and serial (so the same OCSP CertID
 * and a cached "good"): signed by another key, or the genuine one with
 * its signature altered.  Neither is in the memo: not cached, and the
 * full check refuses them. */
static void test_other_bytes(void **state)
{
    struct dz_x509_result r;
    struct login_case k;
    X509 *forged = card(0x2006, 0);
    X509 *altered = NULL;
    EVP_PKEY *other = fake_pki_key();
    unsigned char *der = NULL;
    const unsigned char *p;
    int n;

    (void)state;
    case_open(&k, 0x2006, 0);
    case_answer(&k, DZ_OCSP_GOOD, time(NULL) + 3600);
    full(k.leaf, &k.o, &r);
    assert_true(r.valid);
    assert_true(X509_sign(forged, other, EVP_sha256()) > 0);
    /* The DER's last octet is the signature's (ECDSA s). */
    n = i2d_X509(k.leaf, &der);
    assert_true(n > 0);
    der[n - 1] ^= 0x01;
    p = der;
    altered = d2i_X509(NULL, &p, n);
    assert_non_null(altered);
    OPENSSL_free(der);
    not_cached(forged, &k.o, "signature of the path not remembered");
    full(forged, &k.o, &r);
    assert_string_equal(r.reason, "bad_signature");
    not_cached(altered, &k.o, "signature of the path not remembered");
    full(altered, &k.o, &r);
    assert_string_equal(r.reason, "bad_signature");
    /* Neither refusal was remembered. */
    not_cached(forged, &k.o, "signature of the path not remembered");
    EVP_PKEY_free(other);
    case_close(&k);
    X509_free(forged);
    X509_free(altered);
}

/* A CRL's signature is verified at each use: a trust with CRL files is the
 * pool's in the modes that read them, and the loop's without revocation. */
static void test_crl_files(void **state)
{
    struct dz_x509_trust *plain = trust;
    struct dz_x509_result r;
    struct login_case k;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    FILE *f;

    (void)state;
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki.ca));
    ASN1_TIME_set(t, time(NULL) - 60);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, time(NULL) + 3600);
    X509_CRL_set1_nextUpdate(crl, t);
    assert_true(X509_CRL_sign(crl, pki.ca_key, EVP_sha256()) > 0);
    f = fopen(path("ca.crl"), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
    fclose(f);
    assert_int_equal(dz_x509_trust_new(&trust), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(trust, path("chain.pem")), 0);
    assert_int_equal(dz_x509_trust_add_crl_file(trust, path("ca.crl")), 0);

    case_open(&k, 0x2007, 0);
    case_answer(&k, DZ_OCSP_GOOD, time(NULL) + 3600);
    full(k.leaf, &k.o, &r);
    assert_true(r.valid);
    not_cached(k.leaf, &k.o, "CRL files");
    k.o.revocation = DZ_X509_REV_CRL_ONLY;
    not_cached(k.leaf, &k.o, "CRL files");
    k.o.revocation = DZ_X509_REV_NONE;
    same_as_full(k.leaf, &k.o, "ok");

    dz_x509_trust_free(trust);
    trust = plain;
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    case_close(&k);
}

/* Refusals that need nothing cached beyond the path are the loop's too,
 * word for word: a mobile certificate where a card one is required. */
static void test_refusal_same_as_full(void **state)
{
    const char *const exts[] = {
        "keyUsage=critical,digitalSignature", "certificatePolicies=" DZ_CERTID_POLICY_MOBILE,
        "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", NULL};
    struct dz_x509_opts o = login_opts(NULL);
    struct dz_x509_result r;
    X509 *mobile = fake_pki_cert("CN=A/serialNumber=PNOAZ-ABC1234", 0x2008, leaf_key, pki.ca,
                                 pki.ca_key, exts);

    (void)state;
    o.revocation = DZ_X509_REV_NONE;
    dz_chainsig_clear();
    not_cached(mobile, &o, "signature of the path not remembered");
    full(mobile, &o, &r);
    same_as_full(mobile, &o, "wrong_policy");
    X509_free(mobile);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_same_as_full),
        cmocka_unit_test(test_no_ocsp_answer),
        cmocka_unit_test(test_ocsp_past_next_update),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_expired_since_cached),
        cmocka_unit_test(test_other_bytes),
        cmocka_unit_test(test_crl_files),
        cmocka_unit_test(test_refusal_same_as_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
