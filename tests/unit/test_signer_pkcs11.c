/* test_signer_pkcs11.c - the PKCS#11 signer against a real SoftHSM2 token
 * made for this run in a temporary directory (softhsm2-util, pkcs11-tool):
 * RFC 7512 URI parsing (includes the .c for its pure parser), signing that
 * verifies with the published key and through a JWS, key lookup by label and
 * by id, module from the URI and from the environment, PIN from a file or a
 * pin-source, a wrong PIN failing at once with DZ_ERR_PKCS11, wrong token,
 * object, curve or key type, and signing from several threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/keys/signer_pkcs11.c"

#include "base/err.h"
#include "keys/jws.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOOL "pkcs11-tool --module " MODULE " --login --pin 123456 --token-label dz-test "

static char tmpdir[64];
static char pin_path[128];
static char bad_pin_path[128];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A PIN file: 0600, as dz_secret_file_read requires. */
static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    if (fchmod(fileno(f), 0600) != 0) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static int setup(void **state)
{
    char conf[128], text[256];

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_p11_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
    snprintf(text, sizeof(text),
             "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
             tmpdir);
    if (write_text(conf, text) != 0 || sh("mkdir -p '%s/tokens'", tmpdir) != 0)
        return -1;
    setenv("SOFTHSM2_CONF", conf, 1);
    unsetenv("DARVAZA_PKCS11_MODULE");
    if (sh("softhsm2-util --init-token --free --label dz-test --pin 123456 --so-pin 12345678 "
           ">/dev/null") != 0)
        return -1;
    if (sh(TOOL "--keypairgen --key-type EC:prime256v1 --label assert-key --id 01 >/dev/null "
                "2>&1") != 0 ||
        sh(TOOL "--keypairgen --key-type EC:secp384r1 --label p384-key --id 02 >/dev/null "
                "2>&1") != 0 ||
        sh(TOOL "--keypairgen --key-type rsa:1024 --label rsa-key --id 03 >/dev/null 2>&1") != 0)
        return -1;
    snprintf(pin_path, sizeof(pin_path), "%s/pin", tmpdir);
    snprintf(bad_pin_path, sizeof(bad_pin_path), "%s/badpin", tmpdir);
    if (write_text(pin_path, "123456\n") != 0 || write_text(bad_pin_path, "654321\n") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return sh("rm -rf '%s'", tmpdir) == 0 ? 0 : -1;
}

static void verify_raw(EVP_PKEY *pub, const void *data, size_t len, const unsigned char sig[64],
                       int want)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int der_len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    der_len = i2d_ECDSA_SIG(es, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)der_len, data, len), want);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
}

/* ------------------------------------------------------------- tests --- */

static void test_uri_parse(void **state)
{
    struct p11_uri u;

    (void)state;
    assert_int_equal(parse_uri("pkcs11:token=dz-test;object=assert-key", &u), 0);
    assert_string_equal(u.token, "dz-test");
    assert_string_equal(u.object, "assert-key");
    assert_int_equal(u.seen, A_TOKEN | A_OBJECT);
    assert_int_equal(parse_uri("pkcs11:token=My%20Token;object=a%2Fb;id=%01%ff;type=private"
                               "?module-path=/usr/lib/x.so&pin-source=file:/run/pin",
                               &u),
                     0);
    assert_string_equal(u.token, "My Token");
    assert_string_equal(u.object, "a/b");
    assert_int_equal(u.id_len, 2);
    assert_int_equal(u.id[0], 0x01);
    assert_int_equal(u.id[1], 0xff);
    assert_string_equal(u.module_path, "/usr/lib/x.so");
    assert_string_equal(u.pin_source, "file:/run/pin");
    /* module-path as a path attribute is accepted too (libp11, p11-kit). */
    assert_int_equal(parse_uri("pkcs11:object=k;module-path=/m.so", &u), 0);
    assert_string_equal(u.module_path, "/m.so");
    assert_int_equal(parse_uri("pkcs11:id=%00", &u), 0); /* binary id may hold 0 */

    static const char *const bad[] = {
        "pkcs11:",                            /* nothing to find */
        "pkcs11:token=t",                     /* no object or id */
        "pkcs11:object=k;pin-value=1234",     /* PIN in the URI */
        "pkcs11:object=k?pin-value=1234",     /* also in the query */
        "pkcs11:object=k;object=l",           /* twice */
        "pkcs11:object=k;",                   /* trailing ';' */
        "pkcs11:object=k;;token=t",           /* empty attribute */
        "pkcs11:object",                      /* no '=' */
        "pkcs11:object=k;colour=red",         /* unknown */
        "pkcs11:object=k?token=t",            /* path attribute in the query */
        "pkcs11:object=k?",                   /* empty query */
        "pkcs11:object=k?module-path=/m.so&", /* trailing '&' */
        "pkcs11:object=k;type=public",        /* not a private key */
        "pkcs11:object=a%zz",                 /* bad escape */
        "pkcs11:object=a%2",                  /* truncated escape */
        "pkcs11:object=a%00b",                /* NUL in text */
        "pkcs11:object=a b",                  /* raw space */
        "pkcs11:id=",                         /* empty id */
        "pkcs12:object=k",                    /* another scheme */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_uri(bad[i], &u) != DZ_ERR_INVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* Bounds: a value over ATTR_MAX, an id over ID_MAX, a URI over URI_MAX. */
    {
        char big[URI_MAX + 64];
        size_t o = (size_t)snprintf(big, sizeof(big), "pkcs11:object=");
        memset(big + o, 'a', ATTR_MAX + 1);
        big[o + ATTR_MAX + 1] = '\0';
        assert_int_equal(parse_uri(big, &u), DZ_ERR_INVAL);
        o = (size_t)snprintf(big, sizeof(big), "pkcs11:id=");
        for (int i = 0; i <= ID_MAX; i++)
            o += (size_t)snprintf(big + o, sizeof(big) - o, "%%01");
        assert_int_equal(parse_uri(big, &u), DZ_ERR_INVAL);
        memset(big, 'a', sizeof(big) - 1);
        memcpy(big, "pkcs11:object=", 14);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(parse_uri(big, &u), DZ_ERR_INVAL);
    }
}

static void test_sign_and_verify(void **state)
{
    struct dz_signer *s = NULL;
    struct dz_jwks *jwks = NULL;
    unsigned char sig[64];
    char *tok = NULL;
    json_t *claims = json_pack("{s:s}", "sub", "AB12CD3");
    json_t *got = NULL;

    (void)state;
    assert_int_equal(
        dz_signer_open("pkcs11:token=dz-test;object=assert-key?module-path=" MODULE, pin_path, &s),
        0);
    assert_non_null(s);
    assert_true(dz_signer_is_blocking(s));
    assert_string_equal(dz_signer_kind(s), "pkcs11");
    assert_int_equal(dz_signer_sign_es256(s, "hello", 5, sig), 0);
    verify_raw(dz_signer_public_key(s), "hello", 5, sig, 1);
    verify_raw(dz_signer_public_key(s), "hellO", 5, sig, 0);

    /* What we publish is a plain public key: it cannot sign. */
    {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, dz_signer_public_key(s), NULL);
        unsigned char d[32] = {0}, out[80];
        size_t out_len = sizeof(out);
        assert_non_null(c);
        assert_true(EVP_PKEY_sign_init(c) != 1 || EVP_PKEY_sign(c, out, &out_len, d, 32) != 1);
        EVP_PKEY_CTX_free(c);
        ERR_clear_error();
    }

    /* A full JWS made on the token verifies against the published JWKS. */
    assert_int_equal(dz_jwks_new(&jwks), 0);
    assert_int_equal(dz_jwks_add(jwks, "hsm-1", dz_signer_public_key(s)), 0);
    assert_int_equal(dz_jws_sign_es256(s, "hsm-1", "t", claims, &tok), 0);
    assert_int_equal(dz_jws_verify(tok, strlen(tok), jwks, "t", NULL, &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "sub")), "AB12CD3");
    json_decref(got);
    json_decref(claims);
    free(tok);
    dz_jwks_free(jwks);
    dz_signer_free(s);
}

static void test_find_by_id_env_module_pin_source(void **state)
{
    struct dz_signer *s = NULL;
    unsigned char sig[64];
    char uri[512];

    (void)state;
    /* By id, module from the environment. */
    setenv("DARVAZA_PKCS11_MODULE", MODULE, 1);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;id=%01;type=private", pin_path, &s), 0);
    assert_int_equal(dz_signer_sign_es256(s, "x", 1, sig), 0);
    verify_raw(dz_signer_public_key(s), "x", 1, sig, 1);
    dz_signer_free(s);
    s = NULL;
    /* The URI's module-path wins over the environment; a bad one fails. */
    setenv("DARVAZA_PKCS11_MODULE", "/nonexistent/libnothing.so", 1);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", pin_path, &s),
                     DZ_ERR_PKCS11);
    assert_int_equal(
        dz_signer_open("pkcs11:token=dz-test;object=assert-key?module-path=" MODULE, pin_path, &s),
        0);
    dz_signer_free(s);
    s = NULL;
    unsetenv("DARVAZA_PKCS11_MODULE");
    /* Default module when neither is given. */
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", pin_path, &s), 0);
    dz_signer_free(s);
    s = NULL;
    /* PIN from the URI's pin-source (plain path and file: form). */
    snprintf(uri, sizeof(uri), "pkcs11:token=dz-test;object=assert-key?pin-source=%s", pin_path);
    assert_int_equal(dz_signer_open(uri, NULL, &s), 0);
    dz_signer_free(s);
    s = NULL;
    snprintf(uri, sizeof(uri), "pkcs11:object=assert-key?pin-source=file:%s", pin_path);
    assert_int_equal(dz_signer_open(uri, NULL, &s), 0);
    dz_signer_free(s);
}

static void test_wrong_pin_and_lookup_errors(void **state)
{
    struct dz_signer *s = NULL;
    char missing[160];

    (void)state;
    /* Wrong PIN: one attempt, DZ_ERR_PKCS11; the right PIN still works
     * afterwards (one try is far from any lock-out threshold). */
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", bad_pin_path, &s),
                     DZ_ERR_PKCS11);
    assert_null(s);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", pin_path, &s), 0);
    dz_signer_free(s);
    s = NULL;
    /* No PIN at all for a token that needs one; a PIN file that is missing. */
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", NULL, &s),
                     DZ_ERR_INVAL);
    snprintf(missing, sizeof(missing), "%s/nopin", tmpdir);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", missing, &s),
                     DZ_ERR_IO);
    /* No such token, no such key. */
    assert_int_equal(dz_signer_open("pkcs11:token=other;object=assert-key", pin_path, &s),
                     DZ_ERR_NOTFOUND);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=nokey", pin_path, &s),
                     DZ_ERR_NOTFOUND);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key;id=%02", pin_path, &s),
                     DZ_ERR_NOTFOUND);
    /* Keys that are not EC P-256. */
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=p384-key", pin_path, &s),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=rsa-key", pin_path, &s),
                     DZ_ERR_INVAL);
    /* A PIN in the URI is refused before anything is loaded. */
    assert_int_equal(
        dz_signer_open("pkcs11:token=dz-test;object=assert-key?pin-value=123456", NULL, &s),
        DZ_ERR_INVAL);
    assert_null(s);
}

static struct dz_signer *shared;

static void *sign_many(void *p)
{
    int *ok = p;
    unsigned char sig[64];
    char msg[32];

    for (int i = 0; i < 25; i++) {
        snprintf(msg, sizeof(msg), "message %d", i);
        if (dz_signer_sign_es256(shared, msg, strlen(msg), sig) != 0)
            continue;
        /* Verify here with OpenSSL directly (no cmocka asserts off-thread). */
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *der = NULL;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int der_len;
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        der_len = i2d_ECDSA_SIG(es, &der);
        if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, dz_signer_public_key(shared)) == 1 &&
            EVP_DigestVerify(md, der, (size_t)der_len, (unsigned char *)msg, strlen(msg)) == 1)
            (*ok)++;
        EVP_MD_CTX_free(md);
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    int ok[4] = {0};

    (void)state;
    assert_int_equal(dz_signer_open("pkcs11:token=dz-test;object=assert-key", pin_path, &shared),
                     0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_many, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], 25);
    }
    dz_signer_free(shared);
    shared = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parse),
        cmocka_unit_test(test_sign_and_verify),
        cmocka_unit_test(test_find_by_id_env_module_pin_source),
        cmocka_unit_test(test_wrong_pin_and_lookup_errors),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
