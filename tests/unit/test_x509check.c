/* test_x509check.c - the certificate validator (lib/pki/x509check.c) against a
 * throwaway PKI made here with OpenSSL: a root, a card CA and people's
 * certificates.  Expired, not yet valid, unknown CA, bad signature, key
 * usage for auth vs sign, card vs mobile policy, FIN and role, CRL
 * revocation, OCSP unreachable (fail closed, CRL fallback), a real
 * `openssl ocsp` responder for good / revoked / cached answers, the key and
 * signature floor (weak keys, curves and hashes anywhere in the path) and
 * the end-entity rules (no CA in any form, v3, serial number). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "harness/fake_pki.h"
#include "pki/certid.h"
#include "pki/ocsp.h"
#include "pki/x509check.h"

extern char **environ;

static char dir[] = "/tmp/test_x509check.XXXXXX";
static int64_t T0;
static int ocsp_port;

static EVP_PKEY *root_key, *ca_key, *other_key, *leaf_key, *resp_key;
static const EVP_MD *mk_md; /* mk's signature hash; NULL: SHA-256 */
static X509 *root, *ca, *other_root;

/* ---- a throwaway PKI ---- */

/* subject "/CN=x/serialNumber=y/title=z"; built by the harness's
 * fake_pki_cert_at. */
static X509 *mk(const char *subject, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                int64_t nb, int64_t na, const char *const *exts)
{
    return fake_pki_cert_at(subject, serial, key, issuer, ikey, nb, na, mk_md, exts);
}

static const char *path(const char *name)
{
    static char p[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static void write_pem(const char *name, X509 *x)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A CRL by (issuer, ikey), valid [T0+lu, T0+nu), revoking the serials. */
static void write_crl(const char *name, X509 *issuer, EVP_PKEY *ikey, int64_t lu, int64_t nu,
                      const long *serials, size_t n)
{
    X509_CRL *c = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    FILE *f;
    size_t i;

    assert_non_null(c);
    X509_CRL_set_version(c, 1);
    X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer));
    ASN1_TIME_set(t, (time_t)(T0 + lu));
    X509_CRL_set1_lastUpdate(c, t);
    ASN1_TIME_set(t, (time_t)(T0 + nu));
    X509_CRL_set1_nextUpdate(c, t);
    for (i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, serials[i]);
        X509_REVOKED_set_serialNumber(r, s);
        ASN1_TIME_set(t, (time_t)(T0 - 60));
        X509_REVOKED_set_revocationDate(r, t);
        X509_CRL_add0_revoked(c, r);
        ASN1_INTEGER_free(s);
    }
    {
        /* authorityKeyIdentifier, as X509_STRICT CRL users expect */
        X509V3_CTX ctx;
        X509_EXTENSION *e;
        X509V3_set_ctx(&ctx, issuer, NULL, NULL, c, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        assert_non_null(e);
        X509_CRL_add_ext(c, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_CRL_sort(c);
    assert_true(X509_CRL_sign(c, ikey, EVP_sha256()) > 0);
    f = fopen(path(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509_CRL(f, c), 1);
    fclose(f);
    ASN1_TIME_free(t);
    X509_CRL_free(c);
}

#define AKID "authorityKeyIdentifier=keyid:always"
#define SKID "subjectKeyIdentifier=hash"
#define KU_AUTH "keyUsage=critical,digitalSignature"
#define KU_SIGN "keyUsage=critical,nonRepudiation"
#define EKU_AUTH "extendedKeyUsage=clientAuth,emailProtection"
#define POL_CARD "certificatePolicies=" DZ_CERTID_POLICY_CARD
#define POL_MOBILE "certificatePolicies=" DZ_CERTID_POLICY_MOBILE
#define AIA_DEAD "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/"

enum {
    SER_GOOD = 0x1001,
    SER_REVOKED = 0x1002,
    SER_OCSP_GOOD = 0x1003,
    SER_OCSP_REVOKED = 0x1004,
};

static X509 *person(const char *subject, long serial, int64_t nb, int64_t na,
                    const char *const *exts)
{
    return mk(subject, serial, leaf_key, ca, ca_key, T0 + nb, T0 + na, exts);
}

/* The usual card certificate, with the OCSP URL given (NULL: none). */
static X509 *card(long serial, const char *aia)
{
    const char *exts[] = {KU_AUTH, EKU_AUTH, POL_CARD, SKID, AKID, aia, NULL};
    return person("CN=Aytən Quliyeva/serialNumber=PNOAZ-abc1234", serial, -3600, 86400, exts);
}

static int setup(void **state)
{
    static const char *const root_ext[] = {"basicConstraints=critical,CA:true",
                                           "keyUsage=critical,keyCertSign,cRLSign", SKID, NULL};
    static const char *const ca_ext[] = {"basicConstraints=critical,CA:true,pathlen:0",
                                         "keyUsage=critical,keyCertSign,cRLSign", SKID, AKID, NULL};
    static const char *const resp_ext[] = {KU_AUTH, "extendedKeyUsage=OCSPSigning", SKID, AKID,
                                           NULL};
    static const long revoked[] = {SER_REVOKED};
    X509 *resp;
    FILE *f;

    (void)state;
    T0 = (int64_t)time(NULL);
    if (mkdtemp(dir) == NULL)
        return -1;
    root_key = EVP_EC_gen("P-256");
    ca_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    resp_key = EVP_EC_gen("P-256");
    root = mk("CN=Test Root", 1, root_key, NULL, NULL, T0 - 86400, T0 + 86400 * 365, root_ext);
    ca = mk("CN=Test Card CA", 2, ca_key, root, root_key, T0 - 86400, T0 + 86400 * 300, ca_ext);
    other_root =
        mk("CN=Other Root", 1, other_key, NULL, NULL, T0 - 86400, T0 + 86400 * 365, root_ext);
    resp = mk("CN=Test OCSP", 3, resp_key, ca, ca_key, T0 - 86400, T0 + 86400 * 30, resp_ext);
    write_pem("root.pem", root);
    write_pem("ca.pem", ca);
    write_pem("resp.pem", resp);
    write_key("resp.key", resp_key);
    X509_free(resp);
    write_crl("ca.crl", ca, ca_key, -600, 3600, revoked, 1);
    write_crl("root.crl", root, root_key, -86400, 3600, NULL, 0);
    write_crl("ca_stale.crl", ca, ca_key, -7200, -1800, NULL, 0);
    write_crl("forged.crl", ca, other_key, -600, 3600, NULL, 0); /* the CA's name, not its key */
    /* root + CA in one PEM file */
    f = fopen(path("both.pem"), "w");
    assert_non_null(f);
    PEM_write_X509(f, root);
    PEM_write_X509(f, ca);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    const char *names[] = {"root.pem", "ca.pem",   "resp.pem",     "resp.key",  "ca.crl",
                           "root.crl", "both.pem", "ca_stale.crl", "index.txt", "junk.pem",
                           "leaf.der", "ocsp.log", "forged.crl",   NULL};

    (void)state;
    for (const char **n = names; *n; n++)
        unlink(path(*n));
    rmdir(dir);
    X509_free(root);
    X509_free(ca);
    X509_free(other_root);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(resp_key);
    return 0;
}

/* Trust: root anchor + card CA intermediate, plus CRL files. */
static struct dz_x509_trust *trust(const char *crl1, const char *crl2)
{
    struct dz_x509_trust *t = NULL;

    assert_int_equal(dz_x509_trust_new(&t), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path("root.pem")), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path("ca.pem")), 0);
    assert_int_equal(dz_x509_trust_anchors(t), 1);
    if (crl1)
        assert_int_equal(dz_x509_trust_add_crl_file(t, path(crl1)), 0);
    if (crl2)
        assert_int_equal(dz_x509_trust_add_crl_file(t, path(crl2)), 0);
    return t;
}

static const char *const card_only[] = {DZ_CERTID_POLICY_CARD};
static const char *const mobile_only[] = {DZ_CERTID_POLICY_MOBILE};

static struct dz_x509_opts login_opts(void)
{
    struct dz_x509_opts o;

    memset(&o, 0, sizeof(o));
    o.purpose = DZ_X509_PURPOSE_AUTH;
    o.policies = card_only;
    o.npolicies = 1;
    o.revocation = DZ_X509_REV_NONE;
    o.require_fin = true;
    o.fetch_timeout_ms = 3000;
    return o;
}

/* Validate and return the reason ("ok" when valid); checks the
 * valid/reason invariant on the way. */
static const char *run(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                       const struct dz_x509_opts *o, struct dz_x509_result *res)
{
    assert_int_equal(dz_x509_validate(t, leaf, untrusted, o, res), 0);
    assert_non_null(res->reason);
    assert_true(res->valid == (strcmp(res->reason, "ok") == 0));
    assert_non_null(res->revocation_source);
    if (getenv("TEST_X509_VERBOSE"))
        print_message("%s: %s\n", res->reason, res->detail);
    return res->reason;
}

/* ---- tests ---- */

static void test_valid_card(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *leaf = card(SER_GOOD, NULL);
    unsigned char *der = NULL;
    unsigned char h[32];
    int n;

    (void)state;
    assert_string_equal(run(t, leaf, NULL, &o, &r), "ok");
    assert_string_equal(r.fin, "ABC1234");
    assert_string_equal(r.role, "citizen");
    assert_string_equal(r.name, "Aytən Quliyeva");
    assert_string_equal(r.revocation_source, "none");
    assert_false(r.has_ocsp);
    n = i2d_X509(leaf, &der);
    dz_sha256(der, (size_t)n, h);
    assert_memory_equal(h, r.sha256, 32);
    OPENSSL_free(der);
    /* NULL options: inspection (any purpose, no revocation). */
    assert_string_equal(run(t, leaf, NULL, NULL, &r), "ok");
    X509_free(leaf);
    dz_x509_trust_free(t);
}

/* The chain a signature should carry: the card CA, never the root. */
static void test_issuer_chain(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_trust *only_root = NULL;
    STACK_OF(X509) *sk = NULL;
    X509 *leaf = card(SER_GOOD, NULL);

    (void)state;
    assert_int_equal(dz_x509_trust_issuer_chain(t, leaf, &sk), 0);
    assert_int_equal(sk_X509_num(sk), 1);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 0), ca), 0);
    sk_X509_pop_free(sk, X509_free);
    /* From the CA itself: nothing (its issuer is the anchor). */
    assert_int_equal(dz_x509_trust_issuer_chain(t, ca, &sk), 0);
    assert_int_equal(sk_X509_num(sk), 0);
    sk_X509_pop_free(sk, X509_free);
    /* A trust without the intermediate: an empty chain, not an error. */
    assert_int_equal(dz_x509_trust_new(&only_root), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(only_root, path("root.pem")), 0);
    assert_int_equal(dz_x509_trust_issuer_chain(only_root, leaf, &sk), 0);
    assert_int_equal(sk_X509_num(sk), 0);
    sk_X509_pop_free(sk, X509_free);
    assert_int_equal(dz_x509_trust_issuer_chain(NULL, leaf, &sk), DZ_ERR_INVAL);
    assert_null(sk);
    X509_free(leaf);
    dz_x509_trust_free(t);
    dz_x509_trust_free(only_root);
}

static void test_validity_period(void **state)
{
    const char *exts[] = {KU_AUTH, POL_CARD, SKID, AKID, NULL};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *expired = person("CN=A/serialNumber=ABC1234", 10, -7200, -3600, exts);
    X509 *notyet = person("CN=A/serialNumber=ABC1234", 11, 3600, 7200, exts);
    X509 *leaf = card(SER_GOOD, NULL);

    (void)state;
    assert_string_equal(run(t, expired, NULL, &o, &r), "expired");
    assert_false(r.valid);
    assert_true(strlen(r.detail) > 0);
    assert_string_equal(run(t, notyet, NULL, &o, &r), "not_yet_valid");
    /* The validation time moves the window: */
    o.at = T0 - 5400;
    assert_string_equal(run(t, expired, NULL, &o, &r), "ok");
    o.at = T0 + 5400;
    assert_string_equal(run(t, notyet, NULL, &o, &r), "ok");
    assert_string_equal(run(t, leaf, NULL, &o, &r), "ok");
    o.at = T0 - 86400 * 2; /* before every certificate, the CA's too */
    assert_string_equal(run(t, leaf, NULL, &o, &r), "not_yet_valid");
    X509_free(expired);
    X509_free(notyet);
    X509_free(leaf);
    dz_x509_trust_free(t);
}

static void test_unknown_ca_and_signature(void **state)
{
    const char *exts[] = {KU_AUTH, POL_CARD, SKID, AKID, NULL};
    const char *no_akid[] = {KU_AUTH, POL_CARD, NULL};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_trust *only_root = NULL;
    struct dz_x509_trust *empty = NULL;
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *stranger = mk("CN=S/serialNumber=ABC1234", 5, leaf_key, other_root, other_key, T0 - 60,
                        T0 + 3600, exts);
    X509 *leaf = card(SER_GOOD, NULL);
    X509 *tampered = NULL;
    X509 *sloppy = person("CN=S/serialNumber=ABC1234", 6, -60, 3600, no_akid);
    STACK_OF(X509) *chain = sk_X509_new_null();
    unsigned char *der = NULL;
    int n;

    (void)state;
    assert_string_equal(run(t, stranger, NULL, &o, &r), "unknown_ca");
    /* The stranger's root offered by the client changes nothing. */
    sk_X509_push(chain, other_root);
    assert_string_equal(run(t, stranger, chain, &o, &r), "unknown_ca");
    sk_X509_zero(chain);

    /* Root only: the intermediate must come from the client. */
    assert_int_equal(dz_x509_trust_new(&only_root), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(only_root, path("root.pem")), 0);
    assert_string_equal(run(only_root, leaf, NULL, &o, &r), "unknown_ca");
    sk_X509_push(chain, ca);
    assert_string_equal(run(only_root, leaf, chain, &o, &r), "ok");

    /* One file holding root and CA: one anchor, one intermediate. */
    assert_int_equal(dz_x509_trust_new(&empty), 0);
    assert_string_equal(run(empty, leaf, NULL, &o, &r), "unknown_ca");
    assert_int_equal(dz_x509_trust_add_ca_file(empty, path("both.pem")), 0);
    assert_int_equal(dz_x509_trust_anchors(empty), 1);
    assert_string_equal(run(empty, leaf, NULL, &o, &r), "ok");

    /* A flipped bit in the leaf's signature. */
    n = i2d_X509(leaf, &der);
    der[n - 5] ^= 0x01;
    assert_int_equal(dz_x509_from_der(der, (size_t)n, &tampered), 0);
    assert_string_equal(run(t, tampered, NULL, &o, &r), "bad_signature");

    /* X509_STRICT: RFC 5280 profile errors are refusals. */
    assert_string_equal(run(t, sloppy, NULL, &o, &r), "chain_invalid");
    assert_non_null(strstr(r.detail, "Authority Key Identifier"));

    OPENSSL_free(der);
    X509_free(tampered);
    X509_free(sloppy);
    sk_X509_free(chain);
    X509_free(stranger);
    X509_free(leaf);
    dz_x509_trust_free(t);
    dz_x509_trust_free(only_root);
    dz_x509_trust_free(empty);
}

static void test_key_usage(void **state)
{
    const char *sign_ext[] = {KU_SIGN, POL_CARD, SKID, AKID, NULL};
    const char *email_ext[] = {KU_AUTH, "extendedKeyUsage=emailProtection", POL_CARD, SKID, AKID,
                               NULL};
    const char *noku_ext[] = {POL_CARD, SKID, AKID, NULL};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *auth = card(SER_GOOD, NULL);
    X509 *sign = person("CN=A/serialNumber=ABC1234", 20, -60, 3600, sign_ext);
    X509 *email = person("CN=A/serialNumber=ABC1234", 21, -60, 3600, email_ext);
    X509 *noku = person("CN=A/serialNumber=ABC1234", 22, -60, 3600, noku_ext);
    STACK_OF(X509) *chain = sk_X509_new_null();

    (void)state;
    assert_string_equal(run(t, auth, NULL, &o, &r), "ok");
    assert_string_equal(run(t, sign, NULL, &o, &r), "bad_key_usage");  /* signing key for login */
    assert_string_equal(run(t, email, NULL, &o, &r), "bad_key_usage"); /* EKU without clientAuth */
    assert_string_equal(run(t, noku, NULL, &o, &r), "bad_key_usage");
    o.purpose = DZ_X509_PURPOSE_SIGN;
    assert_string_equal(run(t, sign, NULL, &o, &r), "ok");
    assert_string_equal(run(t, auth, NULL, &o, &r), "bad_key_usage"); /* login key for signing */
    assert_string_equal(run(t, noku, NULL, &o, &r), "bad_key_usage");
    o.purpose = DZ_X509_PURPOSE_ANY;
    assert_string_equal(run(t, noku, NULL, &o, &r), "ok");
    /* A CA certificate is nobody's login certificate. */
    o.purpose = DZ_X509_PURPOSE_AUTH;
    o.npolicies = 0;
    o.require_fin = false;
    sk_X509_push(chain, ca);
    assert_string_equal(run(t, ca, NULL, &o, &r), "not_end_entity");
    sk_X509_free(chain);
    X509_free(auth);
    X509_free(sign);
    X509_free(email);
    X509_free(noku);
    dz_x509_trust_free(t);
}

static void test_policy(void **state)
{
    const char *mobile_ext[] = {KU_AUTH, POL_MOBILE, SKID, AKID, NULL};
    const char *none_ext[] = {KU_AUTH, SKID, AKID, NULL};
    const char *const both[] = {DZ_CERTID_POLICY_MOBILE, DZ_CERTID_POLICY_CARD};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *cardc = card(SER_GOOD, NULL);
    X509 *mobile = person("CN=M/serialNumber=PNOAZ-MOB0001", 30, -60, 3600, mobile_ext);
    X509 *none = person("CN=N/serialNumber=PNOAZ-NON0001", 31, -60, 3600, none_ext);

    (void)state;
    /* A mobile certificate never passes as a card, nor the reverse. */
    assert_string_equal(run(t, mobile, NULL, &o, &r), "wrong_policy");
    assert_string_equal(r.fin, "");
    o.policies = mobile_only;
    assert_string_equal(run(t, mobile, NULL, &o, &r), "ok");
    assert_string_equal(r.fin, "MOB0001");
    assert_string_equal(run(t, cardc, NULL, &o, &r), "wrong_policy");
    assert_string_equal(run(t, none, NULL, &o, &r), "wrong_policy");
    o.policies = both;
    o.npolicies = 2;
    assert_string_equal(run(t, cardc, NULL, &o, &r), "ok");
    assert_string_equal(run(t, mobile, NULL, &o, &r), "ok");
    o.npolicies = 0;
    assert_string_equal(run(t, none, NULL, &o, &r), "ok");
    /* RFC 5280 inputs: explicit policy with an initial set the path lacks. */
    {
        const char *const initial[] = {"1.2.3.4"};
        o.explicit_policy = true;
        o.initial_policies = initial;
        o.ninitial = 1;
        assert_string_equal(run(t, cardc, NULL, &o, &r), "wrong_policy");
        o.initial_policies = (const char *const[]){"not an oid"};
        assert_string_equal(run(t, cardc, NULL, &o, &r), "malformed");
    }
    X509_free(cardc);
    X509_free(mobile);
    X509_free(none);
    dz_x509_trust_free(t);
}

static void test_fin_and_role(void **state)
{
    const char *judge_ext[] = {
        KU_AUTH, "certificatePolicies=" DZ_CERTID_POLICY_CARD "," DZ_CERTID_POLICY_JUDGE, SKID,
        AKID, NULL};
    const char *ext[] = {KU_AUTH, POL_CARD, SKID, AKID, NULL};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *judge = person("CN=J/title=Judge/serialNumber=PNOAZ-JDG0001", 40, -60, 3600, judge_ext);
    X509 *clerk = person("CN=C/title=Clerk/serialNumber=PNOAZ-CLK0001", 41, -60, 3600, judge_ext);
    X509 *nofin = person("CN=No FIN", 42, -60, 3600, ext);
    X509 *badfin = person("CN=Bad/serialNumber=IDCAZ-AA12345", 43, -60, 3600, ext);

    (void)state;
    assert_string_equal(run(t, judge, NULL, &o, &r), "ok");
    assert_string_equal(r.role, "judge");
    assert_string_equal(r.fin, "JDG0001");
    assert_string_equal(run(t, clerk, NULL, &o, &r), "ok");
    assert_string_equal(r.role, "citizen");
    assert_string_equal(run(t, nofin, NULL, &o, &r), "no_fin");
    assert_string_equal(run(t, badfin, NULL, &o, &r), "bad_fin");
    assert_string_equal(r.fin, "");
    o.require_fin = false; /* cert check: a certificate without FIN may be valid */
    assert_string_equal(run(t, nofin, NULL, &o, &r), "ok");
    assert_string_equal(r.fin, "");
    assert_string_equal(run(t, badfin, NULL, &o, &r), "ok");
    assert_string_equal(r.fin, "");
    X509_free(judge);
    X509_free(clerk);
    X509_free(nofin);
    X509_free(badfin);
    dz_x509_trust_free(t);
}

static void test_crl(void **state)
{
    struct dz_x509_trust *t = trust("ca.crl", "root.crl");
    struct dz_x509_trust *nocrl = trust(NULL, NULL);
    struct dz_x509_trust *leafonly = trust("ca.crl", NULL);
    struct dz_x509_trust *stale = trust("ca_stale.crl", "root.crl");
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *good = card(SER_GOOD, NULL);
    X509 *revoked = card(SER_REVOKED, NULL);

    (void)state;
    o.revocation = DZ_X509_REV_CRL_ONLY;
    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "crl");
    assert_true(r.revocation_checked_at >= T0 - 601 && r.revocation_checked_at <= T0 - 599);
    assert_string_equal(run(t, revoked, NULL, &o, &r), "revoked");
    assert_int_equal(r.revoked_at, T0 - 60); /* the CRL entry's revocationDate */
    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_int_equal(r.revoked_at, 0);
    /* Fail closed: no CRL at all, no CRL for the CA (crl_check_all), or a
     * stale one. */
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "revocation_unknown");
    assert_string_equal(run(leafonly, good, NULL, &o, &r), "revocation_unknown");
    assert_string_equal(run(stale, good, NULL, &o, &r), "revocation_unknown");
    /* ...but a CRL that was current at the validation time is fine. */
    o.at = T0 - 2400;
    assert_string_equal(run(stale, good, NULL, &o, &r), "ok");
    dz_x509_trust_free(t);
    dz_x509_trust_free(nocrl);
    dz_x509_trust_free(leafonly);
    dz_x509_trust_free(stale);
    X509_free(good);
    X509_free(revoked);
}

static void test_ocsp_unreachable(void **state)
{
    const char *cdp_ext[] = {KU_AUTH,  POL_CARD,
                             SKID,     AKID,
                             AIA_DEAD, "crlDistributionPoints=URI:http://127.0.0.1:1/ca.crl",
                             NULL};
    struct dz_x509_trust *nocrl = trust(NULL, NULL);
    struct dz_x509_trust *withcrl = trust("ca.crl", NULL);
    struct dz_x509_trust *stale = trust("ca_stale.crl", NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *good = card(SER_GOOD, AIA_DEAD);
    X509 *revoked = card(SER_REVOKED, AIA_DEAD);
    X509 *noaia = card(SER_GOOD, NULL);
    X509 *cdp = person("CN=A/serialNumber=ABC1234", SER_GOOD, -60, 3600, cdp_ext);
    time_t start = time(NULL);

    (void)state;
    o.revocation = DZ_X509_REV_OCSP_CRL;
    /* Responder refused, no CRL: the status is unknown, so no. */
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "revocation_unknown");
    assert_non_null(strstr(r.detail, "OCSP"));
    assert_string_equal(r.fin, "ABC1234"); /* identity known, still refused */
    assert_string_equal(run(nocrl, noaia, NULL, &o, &r), "revocation_unknown");
    assert_string_equal(run(nocrl, cdp, NULL, &o, &r), "revocation_unknown"); /* CDP dead too */
    assert_string_equal(run(stale, good, NULL, &o, &r), "revocation_unknown");
    /* The CRL file answers instead. */
    assert_string_equal(run(withcrl, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "crl");
    assert_false(r.has_ocsp);
    assert_string_equal(run(withcrl, revoked, NULL, &o, &r), "revoked");
    assert_true(time(NULL) - start < 30);
    dz_x509_trust_free(nocrl);
    dz_x509_trust_free(withcrl);
    dz_x509_trust_free(stale);
    X509_free(good);
    X509_free(revoked);
    X509_free(noaia);
    X509_free(cdp);
}

/* ---- a CRL distribution point: a tiny HTTP/1.0 server in a thread ---- */

struct cdp_server {
    int fd;
    int port;
    _Atomic int stop;
    const char *_Atomic file; /* served for every request */
    _Atomic int hits;         /* counted before the answer goes out */
    pthread_t th;
};

static void *cdp_serve(void *arg)
{
    struct cdp_server *sv = arg;

    while (!sv->stop) {
        struct pollfd p = {.fd = sv->fd, .events = POLLIN};
        char req[4096];
        char body[65536];
        char head[128];
        size_t got = 0;
        size_t n;
        FILE *f;
        int c;

        if (poll(&p, 1, 100) <= 0)
            continue;
        c = accept(sv->fd, NULL, NULL);
        if (c < 0)
            continue;
        while (got < sizeof(req) - 1) { /* the request head */
            ssize_t k = read(c, req + got, sizeof(req) - 1 - got);
            if (k <= 0)
                break;
            got += (size_t)k;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        sv->hits++;
        f = fopen(sv->file, "rb");
        n = f ? fread(body, 1, sizeof(body), f) : 0;
        if (f)
            fclose(f);
        snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
        if (write(c, head, strlen(head)) >= 0 && write(c, body, n) < 0)
            n = 0; /* the client went away: nothing to do but close */
        close(c);
    }
    return NULL;
}

static void cdp_start(struct cdp_server *sv, const char *file)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    memset(sv, 0, sizeof(*sv));
    sv->file = file;
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(sv->fd, 8), 0);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &len), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->th, NULL, cdp_serve, sv), 0);
}

static void cdp_stop(struct cdp_server *sv)
{
    sv->stop = 1;
    pthread_join(sv->th, NULL);
    close(sv->fd);
}

static void test_crl_from_cdp(void **state)
{
    struct dz_x509_trust *nocrl = trust(NULL, NULL);
    struct dz_x509_trust *stale = trust("ca_stale.crl", NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    struct cdp_server sv;
    char cdp[96];
    X509 *good;
    X509 *revoked;

    (void)state;
    cdp_start(&sv, path("ca.crl"));
    snprintf(cdp, sizeof(cdp), "crlDistributionPoints=URI:http://127.0.0.1:%d/ca.crl", sv.port);
    {
        const char *exts[] = {KU_AUTH, POL_CARD, SKID, AKID, AIA_DEAD, cdp, NULL};
        good = person("CN=A/serialNumber=ABC1234", SER_GOOD, -60, 3600, exts);
        revoked = person("CN=A/serialNumber=ABC1234", SER_REVOKED, -60, 3600, exts);
    }
    o.revocation = DZ_X509_REV_OCSP_CRL;
    /* OCSP refused; no CRL file: the CDP's CRL decides. */
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "crl");
    assert_true(r.revocation_checked_at > 0);
    assert_string_equal(run(nocrl, revoked, NULL, &o, &r), "revoked");
    assert_int_equal(sv.hits, 2);
    /* A stale CRL file: the CDP is asked for a current one. */
    assert_string_equal(run(stale, good, NULL, &o, &r), "ok");
    assert_int_equal(sv.hits, 3);
    /* The CDP serves a CRL in the CA's name signed by someone else, or
     * garbage: unknown, refused. */
    sv.file = path("forged.crl");
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "revocation_unknown");
    sv.file = path("root.pem");
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "revocation_unknown");
    /* CRL-only mode never fetches. */
    o.revocation = DZ_X509_REV_CRL_ONLY;
    sv.file = path("ca.crl");
    assert_string_equal(run(nocrl, good, NULL, &o, &r), "revocation_unknown");
    assert_int_equal(sv.hits, 5);
    cdp_stop(&sv);
    X509_free(good);
    X509_free(revoked);
    dz_x509_trust_free(nocrl);
    dz_x509_trust_free(stale);
}

/* ---- a real responder: `openssl ocsp` on a free port ---- */

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(s >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* The responder says when it listens.  (Probing the port instead would
 * wedge it: `openssl ocsp` serves one connection at a time and waits on a
 * connection that sends nothing.) */
static bool responder_ready(void)
{
    char buf[4096];
    FILE *f = fopen(path("ocsp.log"), "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, "waiting for OCSP client connections") != NULL;
}

static pid_t start_responder(void)
{
    char portstr[16];
    char *argv[] = {"openssl",  "ocsp", "-index",    NULL, "-port", portstr,
                    "-rsigner", NULL,   "-rkey",     NULL, "-CA",   NULL,
                    "-nmin",    "10",   "-nrequest", "20", NULL};
    posix_spawn_file_actions_t fa;
    FILE *f;
    pid_t pid = -1;
    int i;

    /* index.txt: V (valid) or R (revoked), expiry, revocation date, serial
     * in hex, file, subject. */
    f = fopen(path("index.txt"), "w");
    assert_non_null(f);
    fprintf(f, "V\t301231235959Z\t\t%X\tunknown\t/CN=g\n", SER_OCSP_GOOD);
    fprintf(f, "R\t301231235959Z\t240101000000Z\t%X\tunknown\t/CN=r\n", SER_OCSP_REVOKED);
    fclose(f);
    ocsp_port = free_port();
    snprintf(portstr, sizeof(portstr), "%d", ocsp_port);
    argv[3] = (char *)path("index.txt");
    argv[7] = (char *)path("resp.pem");
    argv[9] = (char *)path("resp.key");
    argv[11] = (char *)path("ca.pem");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, path("ocsp.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    assert_true(pid > 0);
    for (i = 0; i < 200 && !responder_ready(); i++) /* at most 10 s */
        usleep(50000);
    return pid;
}

static void stop_responder(pid_t pid)
{
    int st;

    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
}

static void test_ocsp_responder(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    struct dz_ocsp_cache *cache = NULL;
    unsigned char first[32];
    char aia[96];
    X509 *good;
    X509 *revoked;
    X509 *unknown;
    pid_t pid;

    (void)state;
    pid = start_responder();
    assert_true(responder_ready());
    snprintf(aia, sizeof(aia), "authorityInfoAccess=OCSP;URI:http://127.0.0.1:%d/", ocsp_port);
    good = card(SER_OCSP_GOOD, aia);
    revoked = card(SER_OCSP_REVOKED, aia);
    unknown = card(0x1999, aia); /* not in the responder's index */
    assert_int_equal(dz_ocsp_cache_new(16, &cache), 0);
    o.revocation = DZ_X509_REV_OCSP_CRL;
    o.ocsp_cache = cache;

    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "ocsp");
    assert_true(r.has_ocsp);
    assert_true(r.revocation_checked_at > T0 - 120 && r.revocation_checked_at < T0 + 600);
    memcpy(first, r.ocsp_sha256, 32);
    assert_int_equal(dz_ocsp_cache_count(cache), 1);
    /* Asked again: from the cache, the same evidence. */
    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "ocsp_cache");
    assert_memory_equal(first, r.ocsp_sha256, 32);

    assert_string_equal(run(t, revoked, NULL, &o, &r), "revoked");
    assert_string_equal(r.revocation_source, "ocsp");
    assert_true(r.has_ocsp);
    assert_int_equal(r.revoked_at, 1704067200); /* revocationTime 2024-01-01T00:00:00Z */
    assert_string_equal(run(t, revoked, NULL, &o, &r), "revoked"); /* cached revoked */
    assert_string_equal(r.revocation_source, "ocsp_cache");
    /* "unknown" from the responder and no CRL: refused. */
    assert_string_equal(run(t, unknown, NULL, &o, &r), "revocation_unknown");
    /* Without a cache every call asks the responder. */
    o.ocsp_cache = NULL;
    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "ocsp");
    assert_memory_not_equal(first, r.ocsp_sha256, 32); /* a new nonce, a new answer */

    stop_responder(pid);
    /* Responder gone: the cached answer still serves until nextUpdate,
     * an uncached lookup fails closed. */
    o.ocsp_cache = cache;
    assert_string_equal(run(t, good, NULL, &o, &r), "ok");
    assert_string_equal(r.revocation_source, "ocsp_cache");
    o.ocsp_cache = NULL;
    assert_string_equal(run(t, good, NULL, &o, &r), "revocation_unknown");

    dz_ocsp_cache_free(cache);
    X509_free(good);
    X509_free(revoked);
    X509_free(unknown);
    dz_x509_trust_free(t);
}

static void test_bounds_and_files(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    STACK_OF(X509) *many = sk_X509_new_null();
    STACK_OF(X509) *loaded = NULL;
    X509 *leaf = card(SER_GOOD, NULL);
    X509 *x = NULL;
    unsigned char big[DZ_X509_MAX_CERT_DER + 1];
    unsigned char *der = NULL;
    FILE *f;
    int n;
    int i;

    (void)state;
    for (i = 0; i <= DZ_X509_MAX_UNTRUSTED; i++)
        sk_X509_push(many, ca);
    assert_string_equal(run(t, leaf, many, &o, &r), "malformed");
    sk_X509_pop(many);
    assert_string_equal(run(t, leaf, many, &o, &r), "ok"); /* 8 is allowed */
    sk_X509_free(many);

    assert_int_equal(dz_x509_validate(NULL, leaf, NULL, &o, &r), DZ_ERR_INVAL);
    assert_false(r.valid);
    assert_int_equal(dz_x509_validate(t, NULL, NULL, &o, &r), DZ_ERR_INVAL);
    assert_int_equal(dz_x509_validate(t, leaf, NULL, &o, NULL), DZ_ERR_INVAL);

    memset(big, 0x30, sizeof(big));
    assert_int_equal(dz_x509_from_der(big, sizeof(big), &x), DZ_ERR_TOOBIG);
    assert_int_equal(dz_x509_from_der(big, 10, &x), DZ_ERR_PARSE);
    assert_null(x);
    n = i2d_X509(leaf, &der);
    assert_int_equal(dz_x509_from_der(der, (size_t)n - 1, &x), DZ_ERR_PARSE);

    /* DER file; PEM with trailing garbage; missing file; not a CRL. */
    f = fopen(path("leaf.der"), "wb");
    fwrite(der, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(dz_x509_load_file(path("leaf.der"), &loaded), 0);
    assert_int_equal(sk_X509_num(loaded), 1);
    sk_X509_pop_free(loaded, X509_free);
    assert_int_equal(dz_x509_load_file(path("both.pem"), &loaded), 0);
    assert_int_equal(sk_X509_num(loaded), 2);
    sk_X509_pop_free(loaded, X509_free);
    f = fopen(path("junk.pem"), "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(dz_x509_load_file(path("junk.pem"), &loaded), DZ_ERR_PARSE);
    assert_null(loaded);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path("junk.pem")), DZ_ERR_PARSE);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path("nonexistent")), DZ_ERR_IO);
    assert_int_equal(dz_x509_trust_add_crl_file(t, path("root.pem")), DZ_ERR_PARSE);
    assert_int_equal(dz_x509_trust_add_crl_file(t, path("leaf.der")), DZ_ERR_PARSE);
    assert_int_equal(dz_x509_trust_anchors(t), 1);
    OPENSSL_free(der);
    X509_free(leaf);
    dz_x509_trust_free(t);
    dz_x509_trust_free(NULL);
}

/* One immutable trust, many threads (TSan/ASan builds check the rest). */
struct worker {
    const struct dz_x509_trust *t;
    X509 *good;
    X509 *revoked;
    int mismatches;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;

    o.revocation = DZ_X509_REV_CRL_ONLY;
    for (int i = 0; i < 25; i++) {
        if (dz_x509_validate(w->t, w->good, NULL, &o, &r) != 0 || !r.valid)
            w->mismatches++;
        if (dz_x509_validate(w->t, w->revoked, NULL, &o, &r) != 0 ||
            strcmp(r.reason, "revoked") != 0)
            w->mismatches++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct dz_x509_trust *t = trust("ca.crl", "root.crl");
    X509 *good = card(SER_GOOD, NULL);
    X509 *revoked = card(SER_REVOKED, NULL);
    struct worker w[4];
    pthread_t th[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        w[i] = (struct worker){.t = t, .good = good, .revoked = revoked};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
    }
    X509_free(good);
    X509_free(revoked);
    dz_x509_trust_free(t);
}

/* ---- the key and signature floor (keyfloor.h), rules X1 and X2 ---- */

#define FLOOR_SUBJECT "CN=Floor/serialNumber=PNOAZ-FLR1234"
static const char *const root_exts[] = {"basicConstraints=critical,CA:true",
                                        "keyUsage=critical,keyCertSign,cRLSign", SKID, NULL};
static const char *const ca_exts[] = {"basicConstraints=critical,CA:true,pathlen:0",
                                      "keyUsage=critical,keyCertSign,cRLSign", SKID, AKID, NULL};
static const char *const card_exts[] = {KU_AUTH, EKU_AUTH, POL_CARD, SKID, AKID, NULL};

/* A card certificate for key under (issuer, ikey), signed with md. */
static X509 *floor_leaf(EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const EVP_MD *md)
{
    X509 *x;

    mk_md = md;
    x = mk(FLOOR_SUBJECT, 0x2001, key, issuer, ikey, T0 - 60, T0 + 3600, card_exts);
    mk_md = NULL;
    return x;
}

/* A trust of the anchor (written to name) and optionally a CA. */
static struct dz_x509_trust *trust_of(const char *name, X509 *anchor, X509 *inter)
{
    struct dz_x509_trust *t = NULL;

    write_pem(name, anchor);
    assert_int_equal(dz_x509_trust_new(&t), 0);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path(name)), 0);
    unlink(path(name));
    if (inter) {
        write_pem("floor-inter.pem", inter);
        assert_int_equal(dz_x509_trust_add_ca_file(t, path("floor-inter.pem")), 0);
        unlink(path("floor-inter.pem"));
    }
    assert_int_equal(dz_x509_trust_anchors(t), 1);
    return t;
}

static void test_floor_keys(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    struct {
        const char *what;
        EVP_PKEY *key;
        const char *want;
    } cases[] = {
        {"RSA-2048", EVP_RSA_gen(2048), "ok"},
        {"RSA-3072", EVP_RSA_gen(3072), "ok"},
        {"P-256", EVP_EC_gen("P-256"), "ok"},
        {"P-384", EVP_EC_gen("P-384"), "ok"},
        {"P-521", EVP_EC_gen("P-521"), "ok"},
        {"RSA-512", EVP_RSA_gen(512), "weak_key"},
        {"RSA-1024", EVP_RSA_gen(1024), "weak_key"},
        {"RSA-2047", EVP_RSA_gen(2047), "weak_key"},
        {"P-192", EVP_EC_gen("P-192"), "weak_key"},
        {"P-224", EVP_EC_gen("P-224"), "weak_key"}, /* OpenSSL's level 2 passes it */
        {"secp256k1", EVP_EC_gen("secp256k1"), "weak_key"},
        {"brainpoolP256r1", EVP_EC_gen("brainpoolP256r1"), "weak_key"},
        {"Ed25519", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "weak_key"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x;
        assert_non_null(cases[i].key);
        x = floor_leaf(cases[i].key, ca, ca_key, NULL);
        o.purpose = DZ_X509_PURPOSE_AUTH;
        if (strcmp(run(t, x, NULL, &o, &r), cases[i].want) != 0)
            fail_msg("%s: %s (%s), expected %s", cases[i].what, r.reason, r.detail, cases[i].want);
        /* The floor is no matter of purpose: inspection sees it too. */
        o.purpose = DZ_X509_PURPOSE_ANY;
        if (strcmp(run(t, x, NULL, &o, &r), cases[i].want) != 0)
            fail_msg("%s (purpose any): %s, expected %s", cases[i].what, r.reason, cases[i].want);
        X509_free(x);
        EVP_PKEY_free(cases[i].key);
    }
    dz_x509_trust_free(t);
}

static void test_floor_signatures(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    EVP_PKEY *rk = EVP_RSA_gen(2048);
    EVP_PKEY *rk1024 = EVP_RSA_gen(1024);
    EVP_PKEY *ck = EVP_EC_gen("P-256");
    X509 *rsa_ca, *sha1_ca, *root1k, *sha1_root, *ca_under_sha1_root, *x;
    struct dz_x509_trust *t2;

    (void)state;
    /* An RSA CA, so that MD5 (which ECDSA has not) can sign. */
    rsa_ca = mk("CN=Floor RSA CA", 0x3001, rk, root, root_key, T0 - 600, T0 + 86400, ca_exts);
    write_pem("floor-rsaca.pem", rsa_ca);
    assert_int_equal(dz_x509_trust_add_ca_file(t, path("floor-rsaca.pem")), 0);
    unlink(path("floor-rsaca.pem"));

    x = floor_leaf(leaf_key, rsa_ca, rk, EVP_sha256());
    assert_string_equal(run(t, x, NULL, &o, &r), "ok"); /* control */
    X509_free(x);
    x = floor_leaf(leaf_key, rsa_ca, rk, EVP_sha512());
    assert_string_equal(run(t, x, NULL, &o, &r), "ok");
    X509_free(x);
    x = floor_leaf(leaf_key, rsa_ca, rk, EVP_sha1());
    assert_string_equal(run(t, x, NULL, &o, &r), "weak_signature");
    X509_free(x);
    x = floor_leaf(leaf_key, rsa_ca, rk, EVP_md5());
    assert_string_equal(run(t, x, NULL, &o, &r), "weak_signature");
    X509_free(x);
    x = floor_leaf(leaf_key, ca, ca_key, EVP_sha1()); /* ecdsa-with-SHA1 */
    assert_string_equal(run(t, x, NULL, &o, &r), "weak_signature");
    X509_free(x);
    /* ... and for signing as for login. */
    o.purpose = DZ_X509_PURPOSE_SIGN;
    x = floor_leaf(leaf_key, ca, ca_key, EVP_sha1());
    assert_string_equal(run(t, x, NULL, &o, &r), "weak_signature");
    X509_free(x);
    o.purpose = DZ_X509_PURPOSE_AUTH;

    /* A CA certificate signed with SHA-1 (given by the client). */
    mk_md = EVP_sha1();
    sha1_ca = mk("CN=Floor SHA-1 CA", 0x3002, ck, root, root_key, T0 - 600, T0 + 86400, ca_exts);
    mk_md = NULL;
    x = floor_leaf(leaf_key, sha1_ca, ck, EVP_sha256());
    {
        STACK_OF(X509) *u = sk_X509_new_null();
        sk_X509_push(u, sha1_ca);
        assert_string_equal(run(t, x, u, &o, &r), "weak_signature");
        assert_non_null(strstr(r.detail, "depth 1"));
        sk_X509_free(u);
    }
    X509_free(x);
    dz_x509_trust_free(t);

    /* An RSA-1024 root: every key of the path counts, the anchor's too. */
    root1k = mk("CN=Floor Weak Root", 1, rk1024, NULL, NULL, T0 - 600, T0 + 86400, root_exts);
    t2 = trust_of("floor-root1k.pem", root1k, NULL);
    x = floor_leaf(leaf_key, root1k, rk1024, EVP_sha256());
    assert_string_equal(run(t2, x, NULL, &o, &r), "weak_key");
    X509_free(x);
    dz_x509_trust_free(t2);

    /* A root whose own self-signature is SHA-1: not judged (nothing relies
     * on it), but everything it signs is. */
    mk_md = EVP_sha1();
    sha1_root = mk("CN=Floor Old Root", 1, rk, NULL, NULL, T0 - 600, T0 + 86400, root_exts);
    mk_md = NULL;
    ca_under_sha1_root =
        mk("CN=Floor CA 2", 0x3003, ck, sha1_root, rk, T0 - 600, T0 + 86400, ca_exts);
    t2 = trust_of("floor-sha1root.pem", sha1_root, ca_under_sha1_root);
    x = floor_leaf(leaf_key, ca_under_sha1_root, ck, EVP_sha256());
    assert_string_equal(run(t2, x, NULL, &o, &r), "ok");
    X509_free(x);
    x = floor_leaf(leaf_key, ca_under_sha1_root, ck, EVP_sha1());
    assert_string_equal(run(t2, x, NULL, &o, &r), "weak_signature");
    X509_free(x);
    dz_x509_trust_free(t2);

    X509_free(rsa_ca);
    X509_free(sha1_ca);
    X509_free(root1k);
    X509_free(sha1_root);
    X509_free(ca_under_sha1_root);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(rk1024);
    EVP_PKEY_free(ck);
}

/* The floor can be raised per trust, never lowered; --legacy-algorithms'
 * off switch is the only way below it. */
static void test_floor_config(void **state)
{
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    EVP_PKEY *k2048 = EVP_RSA_gen(2048);
    EVP_PKEY *k1024 = EVP_RSA_gen(1024);
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    X509 *x2048 = floor_leaf(k2048, ca, ca_key, NULL);
    X509 *x1024 = floor_leaf(k1024, ca, ca_key, NULL);
    X509 *xp256 = floor_leaf(leaf_key, ca, ca_key, NULL);
    X509 *xp384 = floor_leaf(p384, ca, ca_key, NULL);
    struct dz_keyfloor f = {.rsa_bits = 3072, .ec_bits = 384};

    (void)state;
    assert_int_equal(dz_x509_trust_floor(t)->rsa_bits, DZ_KEYFLOOR_RSA_BITS);
    assert_string_equal(run(t, x2048, NULL, &o, &r), "ok");
    assert_string_equal(run(t, xp256, NULL, &o, &r), "ok");
    assert_int_equal(dz_x509_trust_set_floor(t, &f), 0);
    assert_string_equal(run(t, x2048, NULL, &o, &r), "weak_key");
    assert_non_null(strstr(r.detail, "3072"));
    assert_string_equal(run(t, xp256, NULL, &o, &r), "weak_key");
    assert_non_null(strstr(r.detail, "depth 0"));
    /* The card CA is P-256: under a 384-bit EC floor a P-384 leaf does not
     * help, the path is weak at the CA. */
    assert_string_equal(run(t, xp384, NULL, &o, &r), "weak_key");
    assert_non_null(strstr(r.detail, "depth 1"));
    /* Below the floor counts as the floor. */
    f = (struct dz_keyfloor){.rsa_bits = 1024, .ec_bits = 160};
    assert_int_equal(dz_x509_trust_set_floor(t, &f), 0);
    assert_string_equal(run(t, x1024, NULL, &o, &r), "weak_key");
    assert_string_equal(run(t, x2048, NULL, &o, &r), "ok");
    f = (struct dz_keyfloor){.rsa_bits = DZ_KEYFLOOR_RSA_MAX + 1};
    assert_int_equal(dz_x509_trust_set_floor(t, &f), DZ_ERR_INVAL);
    /* Off (conformance suites only). */
    f = (struct dz_keyfloor){.off = true};
    assert_int_equal(dz_x509_trust_set_floor(t, &f), 0);
    assert_string_equal(run(t, x1024, NULL, &o, &r), "ok");
    X509_free(x2048);
    X509_free(x1024);
    X509_free(xp256);
    X509_free(xp384);
    EVP_PKEY_free(k2048);
    EVP_PKEY_free(k1024);
    EVP_PKEY_free(p384);
    dz_x509_trust_free(t);
}

/* ---- a person's certificate is an end-entity certificate (X3, X4, X7,
 * X9, X10) ---- */

/* Re-sign x (by the card CA) after a change. */
static void resign(X509 *x)
{
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
}

static void test_end_entity(void **state)
{
    const char *ca_no_kcs[] = {
        "basicConstraints=critical,CA:true", KU_AUTH, EKU_AUTH, POL_CARD, SKID, AKID, NULL};
    const char *ca_no_kcs_sign[] = {
        "basicConstraints=critical,CA:true", KU_SIGN, POL_CARD, SKID, AKID, NULL};
    const char *ca_kcs[] = {"basicConstraints=critical,CA:true",
                            "keyUsage=critical,digitalSignature,keyCertSign",
                            EKU_AUTH,
                            POL_CARD,
                            SKID,
                            AKID,
                            NULL};
    const char *crlsign[] = {
        "keyUsage=critical,digitalSignature,cRLSign", EKU_AUTH, POL_CARD, SKID, AKID, NULL};
    const char *kcs_no_ca[] = {
        "keyUsage=critical,digitalSignature,keyCertSign", EKU_AUTH, POL_CARD, SKID, AKID, NULL};
    struct dz_x509_trust *t = trust(NULL, NULL);
    struct dz_x509_opts o = login_opts();
    struct dz_x509_result r;
    X509 *x;
    BIGNUM *bn = NULL;

    (void)state;
    /* cA=TRUE without keyCertSign: OpenSSL's X509_check_ca says "not a
     * CA" (it needs keyCertSign), so it passed before. */
    x = person(FLOOR_SUBJECT, 0x4001, -60, 3600, ca_no_kcs);
    assert_string_equal(run(t, x, NULL, &o, &r), "not_end_entity");
    X509_free(x);
    x = person(FLOOR_SUBJECT, 0x4002, -60, 3600, ca_no_kcs_sign);
    o.purpose = DZ_X509_PURPOSE_SIGN;
    assert_string_equal(run(t, x, NULL, &o, &r), "not_end_entity");
    o.purpose = DZ_X509_PURPOSE_ANY; /* inspection: a CA is a CA */
    assert_string_equal(run(t, x, NULL, &o, &r), "ok");
    o.purpose = DZ_X509_PURPOSE_AUTH;
    X509_free(x);
    x = person(FLOOR_SUBJECT, 0x4003, -60, 3600, ca_kcs);
    assert_string_equal(run(t, x, NULL, &o, &r), "not_end_entity");
    X509_free(x);
    x = person(FLOOR_SUBJECT, 0x4004, -60, 3600, crlsign);
    assert_string_equal(run(t, x, NULL, &o, &r), "not_end_entity");
    X509_free(x);
    /* keyCertSign without cA: OpenSSL's strict mode refuses it first. */
    x = person(FLOOR_SUBJECT, 0x4005, -60, 3600, kcs_no_ca);
    assert_string_equal(run(t, x, NULL, &o, &r), "chain_invalid");
    X509_free(x);

    /* A v1 certificate (no extensions at all) is nobody's. */
    x = person(FLOOR_SUBJECT, 0x4006, -60, 3600, NULL);
    X509_set_version(x, X509_VERSION_1);
    resign(x);
    assert_string_equal(run(t, x, NULL, &o, &r), "not_end_entity");
    X509_free(x);

    /* Serial numbers: positive, at most 20 octets of DER content. */
    x = card(SER_GOOD, NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0);
    resign(x);
    assert_string_equal(run(t, x, NULL, &o, &r), "malformed");
    ASN1_INTEGER_set(X509_get_serialNumber(x), -5);
    resign(x);
    assert_string_equal(run(t, x, NULL, &o, &r), "malformed");
    /* 0x7F then 19 x 0xFF: 20 octets, the most allowed. */
    assert_true(BN_hex2bn(&bn, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    resign(x);
    assert_string_equal(run(t, x, NULL, &o, &r), "ok");
    /* 0x80 then 19 x 0x00: a leading zero octet makes it 21. */
    assert_true(BN_hex2bn(&bn, "8000000000000000000000000000000000000000") > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    resign(x);
    assert_string_equal(run(t, x, NULL, &o, &r), "malformed");
    BN_free(bn);
    X509_free(x);

    /* The same extension twice (RFC 5280 4.2).  OpenSSL marks a
     * certificate with a duplicate of an extension it knows as invalid (a
     * second certificatePolicies fails policy processing, a second
     * subjectKeyIdentifier makes the certificate unusable for path
     * building); a private extension twice it lets through, and the
     * end-entity check refuses. */
    {
        const char *const priv[] = {KU_AUTH,
                                    EKU_AUTH,
                                    POL_CARD,
                                    SKID,
                                    AKID,
                                    "1.3.6.1.4.1.55555.9.9=ASN1:NULL",
                                    "1.3.6.1.4.1.55555.9.9=ASN1:NULL",
                                    NULL};
        const char *const once[] = {
            KU_AUTH, EKU_AUTH, POL_CARD, SKID, AKID, "1.3.6.1.4.1.55555.9.9=ASN1:NULL", NULL};
        x = person(FLOOR_SUBJECT, 0x4007, -60, 3600, once);
        assert_string_equal(run(t, x, NULL, &o, &r), "ok"); /* control */
        X509_free(x);
        x = person(FLOOR_SUBJECT, 0x4008, -60, 3600, priv);
        assert_string_equal(run(t, x, NULL, &o, &r), "malformed");
        assert_non_null(strstr(r.detail, "twice"));
        X509_free(x);
    }
    for (int k = 0; k < 2; k++) {
        int nid = k == 0 ? NID_certificate_policies : NID_subject_key_identifier;
        X509_EXTENSION *dup;

        x = card(SER_GOOD, NULL);
        dup = X509_EXTENSION_dup(X509_get_ext(x, X509_get_ext_by_NID(x, nid, -1)));
        assert_non_null(dup);
        assert_int_equal(X509_add_ext(x, dup, -1), 1);
        X509_EXTENSION_free(dup);
        resign(x);
        assert_string_equal(run(t, x, NULL, &o, &r), k == 0 ? "wrong_policy" : "unknown_ca");
        X509_free(x);
    }
    dz_x509_trust_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_card),       cmocka_unit_test(test_issuer_chain),
        cmocka_unit_test(test_validity_period),  cmocka_unit_test(test_unknown_ca_and_signature),
        cmocka_unit_test(test_key_usage),        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_fin_and_role),     cmocka_unit_test(test_crl),
        cmocka_unit_test(test_ocsp_unreachable), cmocka_unit_test(test_crl_from_cdp),
        cmocka_unit_test(test_ocsp_responder),   cmocka_unit_test(test_bounds_and_files),
        cmocka_unit_test(test_threads),          cmocka_unit_test(test_floor_keys),
        cmocka_unit_test(test_floor_signatures), cmocka_unit_test(test_floor_config),
        cmocka_unit_test(test_end_entity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
