/* test_card_tlscache.c - darvaza-card's TLS session file (pkcs11/card_tlscache.c)
 * against a real server context (lib/http/tls.c) over an in-memory BIO pair:
 * a first handshake is full and saves the gateway's ticket 0600; the next
 * one resumes it; a file for another gateway or trust, one others can read,
 * a symbolic link or garbage is not offered (a full handshake, never an
 * error); a TLS 1.2 session is not kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "http/tls.h"

#include "../../pkcs11/card_tlscache.c"

static char g_dir[64];
static char g_crt[128], g_key[128], g_file[128];
static SSL_CTX *g_server;

#define TARGET "https://gw.test:8443"

static void write_server_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f;

    assert_non_null(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"gw.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_non_null(f = fopen(g_crt, "w"));
    PEM_write_X509(f, x);
    fclose(f);
    assert_non_null(f = fopen(g_key, "w"));
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* One connection as darvaza-card makes it, with the cache opened for
 * target and cacert: whether it resumed; the cache saved afterwards. */
static bool connect_v(const char *target, const char *cacert, int max_version)
{
    struct dz_card_tls_cache *c = NULL;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *cl, *sv;
    BIO *cb = NULL, *sb = NULL;
    int rc_c = 0, rc_s = 0;
    bool resumed;
    char b;

    assert_int_equal(dz_card_tls_cache_open(g_file, target, cacert, &c), 0);
    assert_int_equal(dz_card_tls_cache_attach(c, cctx), 0);
    if (max_version)
        SSL_CTX_set_max_proto_version(cctx, max_version);
    cl = SSL_new(cctx);
    sv = SSL_new(g_server);
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(cl, cb, cb);
    SSL_set_bio(sv, sb, sb);
    SSL_set_connect_state(cl);
    SSL_set_accept_state(sv);
    for (int i = 0; i < 20 && (rc_c != 1 || rc_s != 1); i++) {
        if (rc_c != 1)
            rc_c = SSL_do_handshake(cl);
        if (rc_s != 1)
            rc_s = SSL_do_handshake(sv);
    }
    assert_int_equal(rc_c, 1);
    assert_int_equal(rc_s, 1);
    SSL_read(cl, &b, 1); /* the tickets */
    SSL_shutdown(cl);
    resumed = dz_card_tls_cache_resumed(c);
    assert_int_equal(resumed, SSL_session_reused(sv) == 1);
    SSL_free(cl);
    SSL_free(sv);
    SSL_CTX_free(cctx);
    assert_int_equal(dz_card_tls_cache_save(c), 0);
    dz_card_tls_cache_free(c);
    ERR_clear_error();
    return resumed;
}

static bool connect_once(const char *target, const char *cacert)
{
    return connect_v(target, cacert, 0);
}

static void test_full_then_resumed(void **state)
{
    struct stat st;
    char head[256] = "";
    FILE *f;

    (void)state;
    unlink(g_file);
    assert_false(connect_once(TARGET, NULL));
    assert_int_equal(stat(g_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_non_null(f = fopen(g_file, "r"));
    assert_non_null(fgets(head, sizeof(head), f));
    fclose(f);
    assert_string_equal(head, "darvaza-card-tls-session 1 " TARGET " system\n");
    assert_true(connect_once(TARGET, NULL));
    assert_true(connect_once(TARGET, NULL)); /* the resumed one's ticket saved too */
}

/* A TLS 1.2 session is not kept: its master secret would decrypt every
 * connection resumed from it. */
static void test_tls12_not_kept(void **state)
{
    struct stat st;

    (void)state;
    unlink(g_file);
    assert_false(connect_v(TARGET, NULL, TLS1_2_VERSION));
    assert_int_not_equal(stat(g_file, &st), 0);
    assert_false(connect_v(TARGET, NULL, TLS1_2_VERSION));
}

static void test_not_offered(void **state)
{
    FILE *f;
    char link[160];

    (void)state;
    unlink(g_file);
    assert_false(connect_once(TARGET, NULL));
    /* Another gateway, another trust: full, and the file is now theirs. */
    assert_false(connect_once("https://other.test", NULL));
    assert_false(connect_once(TARGET, NULL));
    assert_false(connect_once(TARGET, g_crt));
    assert_true(connect_once(TARGET, g_crt));
    /* Others may read it: not used. */
    assert_int_equal(chmod(g_file, 0644), 0);
    assert_false(connect_once(TARGET, g_crt));
    /* (saved again 0600, so it serves the next) */
    assert_true(connect_once(TARGET, g_crt));
    /* A link to it: not followed (and replaced by a file of its own). */
    snprintf(link, sizeof(link), "%s/link", g_dir);
    unlink(link);
    assert_int_equal(symlink(g_file, link), 0);
    {
        struct dz_card_tls_cache *c = NULL;
        assert_int_equal(dz_card_tls_cache_open(link, TARGET, g_crt, &c), 0);
        assert_null(c->offer);
        dz_card_tls_cache_free(c);
    }
    /* Garbage after a right header. */
    assert_non_null(f = fopen(g_file, "w"));
    fprintf(f, "darvaza-card-tls-session 1 " TARGET " system\n-----BEGIN SSL SESSION "
               "PARAMETERS-----\nAAAA\n-----END SSL SESSION PARAMETERS-----\n");
    fclose(f);
    assert_false(connect_once(TARGET, NULL));
    /* Bad arguments; an unreadable CA file. */
    {
        struct dz_card_tls_cache *c = (struct dz_card_tls_cache *)&c;
        assert_int_equal(dz_card_tls_cache_open(g_file, "https://a b", NULL, &c), DZ_ERR_INVAL);
        assert_null(c);
        assert_int_equal(dz_card_tls_cache_open(g_file, TARGET, "/nonexistent/ca.pem", &c),
                         DZ_ERR_IO);
        assert_null(c);
    }
    assert_int_equal(dz_card_tls_cache_save(NULL), 0);
    dz_card_tls_cache_free(NULL);
}

static int group_setup(void **state)
{
    (void)state;
    memcpy(g_dir, "/tmp/test_card_tlscache_XXXXXX", 31);
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_crt, sizeof(g_crt), "%s/server.crt", g_dir);
    snprintf(g_key, sizeof(g_key), "%s/server.key", g_dir);
    snprintf(g_file, sizeof(g_file), "%s/tls-session", g_dir);
    write_server_cert();
    assert_int_equal(dz_tls_server_ctx_new(g_crt, g_key, NULL, false, &g_server), 0);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    SSL_CTX_free(g_server);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_then_resumed),
        cmocka_unit_test(test_not_offered),
        cmocka_unit_test(test_tls12_not_kept),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
