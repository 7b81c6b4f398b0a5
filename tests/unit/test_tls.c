/* test_tls.c - the server SSL_CTX builder (lib/http/tls.c) on its own: bad files
 * and mismatched keys are errors, and handshakes through an in-memory BIO
 * pair show the policy: TLS 1.2/1.3 only, ECDHE+AEAD only in 1.2, ALPN h2 or
 * nothing, client certificates optional-and-unverified or required-and-
 * verified; session tickets under keys from files (lib/http/tlstickets.c)
 * taken by every context with the same keys, rotated, refused where a
 * client certificate is asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "http/tls.h"
#include "http/tlstickets.h"

static char g_dir[64];

static void path_of(char *buf, size_t n, const char *name, const char *ext)
{
    snprintf(buf, n, "%s/%s.%s", g_dir, name, ext);
}

static void make_cert(const char *name, const char *cn, const char *issuer_name)
{
    char p[160];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_PKEY *ikey = NULL;
    X509 *issuer = NULL;
    X509 *x = X509_new();
    X509_NAME *n;
    FILE *f;

    assert_non_null(key);
    if (issuer_name) {
        path_of(p, sizeof(p), issuer_name, "crt");
        f = fopen(p, "r");
        assert_non_null(f);
        issuer = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        path_of(p, sizeof(p), issuer_name, "key");
        f = fopen(p, "r");
        assert_non_null(f);
        ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(issuer);
        assert_non_null(ikey);
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff) + 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    if (!issuer) { /* a CA (the client CA must be usable as a trust anchor) */
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        bc->ca = 1;
        X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0);
        BASIC_CONSTRAINTS_free(bc);
    }
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    path_of(p, sizeof(p), name, "crt");
    f = fopen(p, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    path_of(p, sizeof(p), name, "key");
    f = fopen(p, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
}

static SSL_CTX *server_ctx(const char *client_ca, bool optional)
{
    char crt[160], key[160], ca[160];
    SSL_CTX *ctx = NULL;

    path_of(crt, sizeof(crt), "server", "crt");
    path_of(key, sizeof(key), "server", "key");
    if (client_ca)
        path_of(ca, sizeof(ca), client_ca, "crt");
    assert_int_equal(dz_tls_server_ctx_new(crt, key, client_ca ? ca : NULL, optional, &ctx), 0);
    assert_non_null(ctx);
    return ctx;
}

struct client_opts {
    int max_version;     /* 0: default */
    const char *ciphers; /* TLS 1.2 list, NULL: default */
    const unsigned char *alpn;
    unsigned alpn_len;
    const char *cert;     /* name of a cert/key pair, or NULL */
    SSL_SESSION *session; /* offered for resumption, or NULL */
    bool keep_session;    /* result.session wanted */
};

struct result {
    bool ok;
    char alpn[16];
    int version;
    bool has_peer_cert;
    long verify;
    bool reused;          /* the handshake resumed o->session */
    SSL_SESSION *session; /* keep_session: the client's, resumable or not (caller frees) */
};

/* Handshake a client and a server over a BIO pair, in memory. */
static void handshake(SSL_CTX *sctx, const struct client_opts *o, struct result *res)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c, *s;
    BIO *cb = NULL, *sb = NULL;
    int rc_c = 0, rc_s = 0;

    memset(res, 0, sizeof(*res));
    assert_non_null(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    if (o->max_version)
        SSL_CTX_set_max_proto_version(cctx, o->max_version);
    if (o->ciphers)
        assert_int_equal(SSL_CTX_set_cipher_list(cctx, o->ciphers), 1);
    if (o->alpn)
        assert_int_equal(SSL_CTX_set_alpn_protos(cctx, o->alpn, o->alpn_len), 0);
    if (o->cert) {
        char crt[160], key[160];
        path_of(crt, sizeof(crt), o->cert, "crt");
        path_of(key, sizeof(key), o->cert, "key");
        assert_int_equal(SSL_CTX_use_certificate_file(cctx, crt, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, key, SSL_FILETYPE_PEM), 1);
    }
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    if (o->session)
        assert_int_equal(SSL_set_session(c, o->session), 1);
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 50; i++) {
        int e;
        if (rc_c != 1) {
            rc_c = SSL_do_handshake(c);
            e = SSL_get_error(c, rc_c);
            if (rc_c != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                break;
        }
        if (rc_s != 1) {
            rc_s = SSL_do_handshake(s);
            e = SSL_get_error(s, rc_s);
            if (rc_s != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                break;
        }
        if (rc_c == 1 && rc_s == 1)
            break;
    }
    /* TLS 1.3: the server learns of a rejected client certificate only when
     * it processes the client's Finished; one more read settles it. */
    if (rc_c == 1 && rc_s == 1) {
        char b;
        SSL_read(c, &b, 1);
        SSL_read(s, &b, 1);
    }
    ERR_clear_error();
    res->ok = rc_c == 1 && rc_s == 1 && SSL_get_shutdown(s) == 0;
    if (res->ok) {
        const unsigned char *a = NULL;
        unsigned alen = 0;
        SSL_get0_alpn_selected(s, &a, &alen);
        if (a && alen < sizeof(res->alpn))
            memcpy(res->alpn, a, alen);
        res->version = SSL_version(s);
        res->has_peer_cert = SSL_get0_peer_certificate(s) != NULL;
        res->verify = SSL_get_verify_result(s);
        res->reused = SSL_session_reused(s) == 1;
        /* (a client freed without close_notify marks its session not
         * resumable) */
        SSL_shutdown(c);
        if (o->keep_session)
            res->session = SSL_get1_session(c); /* TLS 1.3: with the ticket read above */
    }
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
}

static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h1[] = "\x08http/1.1";

static void test_bad_files(void **state)
{
    char crt[160], key[160], other_key[160], missing[160];
    SSL_CTX *ctx = (SSL_CTX *)&ctx;

    (void)state;
    path_of(crt, sizeof(crt), "server", "crt");
    path_of(key, sizeof(key), "server", "key");
    path_of(other_key, sizeof(other_key), "rogue", "key");
    path_of(missing, sizeof(missing), "missing", "pem");
    assert_int_equal(dz_tls_server_ctx_new(NULL, key, NULL, false, &ctx), DZ_ERR_INVAL);
    assert_null(ctx);
    assert_int_equal(dz_tls_server_ctx_new(crt, key, NULL, false, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_tls_server_ctx_new(missing, key, NULL, false, &ctx), DZ_ERR_CRYPTO);
    assert_int_equal(dz_tls_server_ctx_new(crt, missing, NULL, false, &ctx), DZ_ERR_CRYPTO);
    assert_int_equal(dz_tls_server_ctx_new(crt, other_key, NULL, false, &ctx), DZ_ERR_CRYPTO);
    assert_int_equal(dz_tls_server_ctx_new(crt, key, missing, true, &ctx), DZ_ERR_CRYPTO);
    /* A key file given as the certificate. */
    assert_int_equal(dz_tls_server_ctx_new(key, key, NULL, false, &ctx), DZ_ERR_CRYPTO);
    assert_null(ctx);
}

static void test_versions_and_alpn(void **state)
{
    SSL_CTX *ctx = server_ctx(NULL, false);
    struct client_opts o = {.alpn = alpn_h2, .alpn_len = sizeof(alpn_h2) - 1};
    struct result r;

    (void)state;
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "h2");
    assert_int_equal(r.version, TLS1_3_VERSION);

    o.max_version = TLS1_2_VERSION;
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_int_equal(r.version, TLS1_2_VERSION);
    assert_string_equal(r.alpn, "h2");

    /* TLS 1.1 and older: refused. */
    o.max_version = TLS1_1_VERSION;
    handshake(ctx, &o, &r);
    assert_false(r.ok);

    /* TLS 1.2 without ECDHE+AEAD: no shared cipher. */
    o.max_version = TLS1_2_VERSION;
    o.ciphers = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-GCM-SHA256";
    handshake(ctx, &o, &r);
    assert_false(r.ok);
    o.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
    handshake(ctx, &o, &r);
    assert_true(r.ok);

    /* No h2 offered: the handshake completes without ALPN (the engine then
     * closes the connection); none offered at all: the same. */
    o.ciphers = NULL;
    o.max_version = 0;
    o.alpn = alpn_h1;
    o.alpn_len = sizeof(alpn_h1) - 1;
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "");
    o.alpn = NULL;
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "");
    SSL_CTX_free(ctx);
}

static void test_client_cert_optional(void **state)
{
    SSL_CTX *ctx = server_ctx("clientca", true);
    struct client_opts o = {.alpn = alpn_h2, .alpn_len = sizeof(alpn_h2) - 1};
    struct result r;

    (void)state;
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_false(r.has_peer_cert);

    o.cert = "goodclient";
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_true(r.has_peer_cert);
    assert_int_equal(r.verify, X509_V_OK);

    /* Does not chain to the CA: still accepted, exposed, marked failed for
     * whoever asks OpenSSL (the application runs its own validator). */
    o.cert = "rogue";
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_true(r.has_peer_cert);
    assert_int_not_equal(r.verify, X509_V_OK);
    SSL_CTX_free(ctx);
}

static void test_client_cert_required(void **state)
{
    SSL_CTX *ctx = server_ctx("clientca", false);
    struct client_opts o = {.alpn = alpn_h2, .alpn_len = sizeof(alpn_h2) - 1};
    struct result r;

    (void)state;
    handshake(ctx, &o, &r);
    assert_false(r.ok); /* none sent */
    o.cert = "rogue";
    handshake(ctx, &o, &r);
    assert_false(r.ok); /* does not verify */
    o.cert = "goodclient";
    handshake(ctx, &o, &r);
    assert_true(r.ok);
    assert_true(r.has_peer_cert);
    SSL_CTX_free(ctx);
}

/* A ticket key file of len random bytes (80 is right) with mode `mode`;
 * its first 16 bytes, the key name, into name when not NULL. */
static void make_ticket_key(const char *file, size_t len, mode_t mode, unsigned char *name)
{
    unsigned char buf[128];
    char p[160];
    FILE *f;

    assert_true(len <= sizeof(buf));
    assert_int_equal(RAND_bytes(buf, (int)len), 1);
    path_of(p, sizeof(p), file, "key");
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
    if (name)
        memcpy(name, buf, 16);
}

/* The portal's kind of context with the key files named (NULL-terminated). */
static SSL_CTX *ticket_ctx(const char *first, ...)
{
    char paths[DZ_TLS_TICKET_KEYS_MAX][160];
    const char *files[DZ_TLS_TICKET_KEYS_MAX];
    char why[512] = "";
    SSL_CTX *ctx = server_ctx(NULL, false);
    size_t n = 0;
    va_list ap;

    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        assert_true(n < DZ_TLS_TICKET_KEYS_MAX);
        path_of(paths[n], sizeof(paths[n]), name, "key");
        files[n] = paths[n];
        n++;
    }
    va_end(ap);
    if (dz_tls_ticket_keys_set(ctx, files, n, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    return ctx;
}

/* The key name a client's session ticket was made under (its first 16
 * bytes, as the callback wrote them). */
static bool ticket_named(const SSL_SESSION *sess, const unsigned char *name)
{
    const unsigned char *tick = NULL;
    size_t len = 0;

    SSL_SESSION_get0_ticket(sess, &tick, &len);
    return tick && len > 16 && memcmp(tick, name, 16) == 0;
}

/* A session from `from` offered to `to`: whether `to` resumed it.  The
 * client's new session (a fresh ticket) into *next when not NULL. */
static bool resumes(SSL_CTX *from, SSL_CTX *to, int version, SSL_SESSION **next)
{
    struct client_opts o = {.alpn = alpn_h2,
                            .alpn_len = sizeof(alpn_h2) - 1,
                            .max_version = version,
                            .keep_session = true};
    struct result r, r2;

    handshake(from, &o, &r);
    assert_true(r.ok);
    assert_false(r.reused);
    assert_non_null(r.session);
    assert_true(SSL_SESSION_is_resumable(r.session));
    o.session = r.session;
    handshake(to, &o, &r2);
    /* Whatever happened to the ticket, the handshake itself succeeds: an
     * unknown ticket is a full handshake, never an error. */
    assert_true(r2.ok);
    SSL_SESSION_free(r.session);
    if (next)
        *next = r2.session;
    else
        SSL_SESSION_free(r2.session);
    return r2.reused;
}

/* The portal's listeners issue tickets and resume (card clients and
 * browsers skip the certificate signature); a listener that asks for a
 * client certificate never does: a resumed session would carry the
 * certificate of its first handshake without a new CertificateVerify. */
static void test_resumption(void **state)
{
    SSL_CTX *portal = server_ctx(NULL, false);
    SSL_CTX *card = server_ctx("clientca", true);
    struct client_opts o = {.alpn = alpn_h2, .alpn_len = sizeof(alpn_h2) - 1, .keep_session = true};
    struct result r, r2;

    (void)state;
    assert_true(resumes(portal, portal, 0, NULL));
    /* The portal's session offered to the card listener: not taken. */
    assert_false(resumes(portal, card, 0, NULL));

    /* A card login's handshake: nothing to resume with, in 1.3 and 1.2. */
    o.cert = "goodclient";
    handshake(card, &o, &r);
    assert_true(r.ok);
    assert_true(r.has_peer_cert);
    assert_false(SSL_SESSION_is_resumable(r.session));
    o.session = r.session;
    handshake(card, &o, &r2);
    assert_true(r2.ok);
    assert_false(r2.reused);
    SSL_SESSION_free(r2.session);
    SSL_SESSION_free(r.session);
    o.session = NULL;
    o.max_version = TLS1_2_VERSION;
    handshake(card, &o, &r);
    assert_true(r.ok);
    assert_false(SSL_SESSION_is_resumable(r.session));
    SSL_SESSION_free(r.session);
    SSL_CTX_free(portal);
    SSL_CTX_free(card);
}

static const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};

/* Two contexts (two instances, or one before and after a reload) with the
 * same key file take each other's tickets; without keys from a file they
 * do not (what the feature is for), nor with different keys. */
static void test_tickets_shared(void **state)
{
    SSL_CTX *plain_a = server_ctx(NULL, false);
    SSL_CTX *plain_b = server_ctx(NULL, false);
    SSL_CTX *a, *b, *other;
    SSL_SESSION *next = NULL;
    unsigned char t1[16];

    (void)state;
    make_ticket_key("t1", 80, 0600, t1);
    make_ticket_key("t2", 80, 0600, NULL);
    a = ticket_ctx("t1", NULL);
    /* A symbolic link to a key file is followed (a "current" link to a
     * dated file is a usual way to rotate): the same key. */
    {
        char target[160], link[160];
        path_of(target, sizeof(target), "t1", "key");
        path_of(link, sizeof(link), "t1link", "key");
        unlink(link);
        assert_int_equal(symlink(target, link), 0);
    }
    b = ticket_ctx("t1link", NULL);
    other = ticket_ctx("t2", NULL);
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        assert_true(resumes(a, b, versions[i], &next));
        assert_true(ticket_named(next, t1));
        SSL_SESSION_free(next);
        assert_true(resumes(b, a, versions[i], NULL));
        assert_true(resumes(a, a, versions[i], NULL));
        assert_false(resumes(a, other, versions[i], NULL));
        assert_false(resumes(plain_a, plain_b, versions[i], NULL));
        assert_false(resumes(plain_a, a, versions[i], NULL));
    }
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(other);
    SSL_CTX_free(plain_a);
    SSL_CTX_free(plain_b);
}

/* Rotation: [new, old] takes a ticket under old and gives the client a new
 * one under new; once old is dropped, its tickets make a full handshake. */
static void test_tickets_rotation(void **state)
{
    unsigned char n_old[16], n_new[16];
    SSL_CTX *before, *during, *after;
    SSL_SESSION *next = NULL;

    (void)state;
    make_ticket_key("old", 80, 0600, n_old);
    make_ticket_key("new", 80, 0600, n_new);
    before = ticket_ctx("old", NULL);
    during = ticket_ctx("new", "old", NULL);
    after = ticket_ctx("new", NULL);
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        assert_true(resumes(before, during, versions[i], &next));
        /* TLS 1.2: the callback's "renew" made OpenSSL send a new ticket in
         * the resumed handshake; TLS 1.3 sends one after every handshake. */
        assert_true(ticket_named(next, n_new));
        assert_false(ticket_named(next, n_old));
        SSL_SESSION_free(next);
        /* New tickets from the rotated context resume after the old key
         * is gone; the old key's do not. */
        assert_true(resumes(during, after, versions[i], NULL));
        assert_false(resumes(before, after, versions[i], NULL));
    }
    SSL_CTX_free(before);
    SSL_CTX_free(during);
    SSL_CTX_free(after);
}

/* Key files that are not right are refused, naming the file; nothing is
 * installed on the context then. */
static void test_tickets_bad_files(void **state)
{
    static const struct {
        const char *file;
        int rc;
        const char *why;
    } cases[] = {
        {"short", DZ_ERR_INVAL, "short.key: fewer than 80 bytes; a ticket key file is exactly 80"},
        {"long", DZ_ERR_INVAL, "long.key: more than 80 bytes"},
        {"empty", DZ_ERR_INVAL, "empty.key: fewer than 80 bytes"},
        {"loose", DZ_ERR_DENIED, "loose.key: group or others have access (mode 0644)"},
        {"grp", DZ_ERR_DENIED, "grp.key: group or others have access (mode 0640)"},
        {"absent", DZ_ERR_IO, "absent.key: No such file or directory"},
    };
    char p[160], dirpath[160], why[512];
    const char *files[2];
    SSL_CTX *ctx;

    (void)state;
    make_ticket_key("short", 79, 0600, NULL);
    make_ticket_key("long", 81, 0600, NULL);
    make_ticket_key("empty", 0, 0600, NULL);
    make_ticket_key("loose", 80, 0644, NULL);
    make_ticket_key("grp", 80, 0640, NULL);
    make_ticket_key("good", 80, 0600, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctx = server_ctx(NULL, false);
        path_of(p, sizeof(p), cases[i].file, "key");
        files[0] = p;
        why[0] = '\0';
        assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 1, why, sizeof(why)), cases[i].rc);
        if (!strstr(why, cases[i].why) || strncmp(why, g_dir, strlen(g_dir)) != 0)
            fail_msg("case %zu: \"%s\", wanted the path and \"%s\"", i, why, cases[i].why);
        SSL_CTX_free(ctx);
    }
    /* A directory; the same key (a copied file) twice. */
    ctx = server_ctx(NULL, false);
    snprintf(dirpath, sizeof(dirpath), "%s", g_dir);
    files[0] = dirpath;
    assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 1, why, sizeof(why)), DZ_ERR_IO);
    assert_non_null(strstr(why, "not a regular file"));
    path_of(p, sizeof(p), "good", "key");
    files[0] = p;
    files[1] = p;
    assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 2, why, sizeof(why)), DZ_ERR_INVAL);
    assert_non_null(strstr(why, "good.key: the same key name as"));
    assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 0, why, sizeof(why)), DZ_ERR_INVAL);
    assert_int_equal(
        dz_tls_ticket_keys_set(ctx, files, DZ_TLS_TICKET_KEYS_MAX + 1, why, sizeof(why)),
        DZ_ERR_INVAL);
    /* After all these refusals the context has no keys of ours: it takes
     * them once, and only once. */
    assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 1, why, sizeof(why)), 0);
    assert_int_equal(dz_tls_ticket_keys_set(ctx, files, 1, why, sizeof(why)), DZ_ERR_INVAL);
    SSL_CTX_free(ctx);
}

/* A listener that asks for client certificates (the card listener) issues
 * no tickets; keys must not turn them back on. */
static void test_tickets_refused_with_client_certs(void **state)
{
    char p[160], why[512] = "";
    const char *files[1] = {p};
    SSL_CTX *opt = server_ctx("clientca", true);
    SSL_CTX *req = server_ctx("clientca", false);
    struct client_opts o = {.alpn = alpn_h2,
                            .alpn_len = sizeof(alpn_h2) - 1,
                            .cert = "goodclient",
                            .keep_session = true};
    struct result r;

    (void)state;
    make_ticket_key("card", 80, 0600, NULL);
    path_of(p, sizeof(p), "card", "key");
    assert_int_equal(dz_tls_ticket_keys_set(opt, files, 1, why, sizeof(why)), DZ_ERR_INVAL);
    assert_non_null(strstr(why, "asks for client certificates and issues no session tickets"));
    assert_int_equal(dz_tls_ticket_keys_set(req, files, 1, why, sizeof(why)), DZ_ERR_INVAL);
    handshake(req, &o, &r);
    assert_true(r.ok);
    assert_false(SSL_SESSION_is_resumable(r.session));
    SSL_SESSION_free(r.session);
    SSL_CTX_free(opt);
    SSL_CTX_free(req);
}

static int group_setup(void **state)
{
    (void)state;
    memcpy(g_dir, "/tmp/test_tls_XXXXXX", 21);
    assert_non_null(mkdtemp(g_dir));
    make_cert("server", "server.test", NULL);
    make_cert("clientca", "Client CA", NULL);
    make_cert("goodclient", "Good Client", "clientca");
    make_cert("rogue", "Rogue", NULL);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_versions_and_alpn),
        cmocka_unit_test(test_client_cert_optional),
        cmocka_unit_test(test_client_cert_required),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_tickets_shared),
        cmocka_unit_test(test_tickets_rotation),
        cmocka_unit_test(test_tickets_bad_files),
        cmocka_unit_test(test_tickets_refused_with_client_certs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
