/*
 * test_phone.c - the phone's SIM and QR helpers (peers/phone.c): the key
 * opens only with its PIN and only if it is PIN-protected, the wrong PINs
 * the wrong-pin mode enters are really wrong, signatures over a digest and
 * ES256 signatures over the QR message verify as raw r || s, the origin
 * is cut from the gateway URL, and a QR image is read back with zbarimg.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../peers/mssp_msg.c"
#include "../../peers/phone.c"

#include "base/qrsvg.h"

/* phone.c's server side uses the peer runtime (peers/main.c), which is not
 * under test here. */
int dz_peer_parse_listen(const char *s, char *host, size_t host_len, uint16_t *port)
{
    (void)s;
    (void)host;
    (void)host_len;
    *port = 0;
    return DZ_ERR_PARSE;
}
int dz_peer_serve(const char *name, const char *host, uint16_t port, SSL_CTX *tls, size_t max_body,
                  const struct dz_httpd_handlers *handlers, void *app)
{
    (void)name;
    (void)host;
    (void)port;
    (void)tls;
    (void)max_body;
    (void)handlers;
    (void)app;
    return DZ_ERR_IO;
}
int dz_peer_respond_json(struct dz_req *r, int status, json_t *body)
{
    (void)r;
    (void)status;
    json_decref(body);
    return 0;
}
int dz_peer_problem(struct dz_req *r, int status, const char *code, const char *detail,
                    const char *reason)
{
    (void)r;
    (void)status;
    (void)code;
    (void)detail;
    (void)reason;
    return 0;
}
const char *dz_peer_req_path(const struct dz_req *r, char *buf, size_t len)
{
    (void)r;
    snprintf(buf, len, "/");
    return buf;
}
bool dz_peer_req_is_loopback(const struct dz_req *r)
{
    (void)r;
    return false;
}

static char dir[] = "/tmp/test_phone.XXXXXX";
static char key_enc[64], key_plain[64], cert_file[64];
static EVP_PKEY *pub;

static int setup(void **state)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *b;

    (void)state;
    if (!k || !x || !mkdtemp(dir))
        return -1;
    snprintf(key_enc, sizeof(key_enc), "%s/sim.key", dir);
    snprintf(key_plain, sizeof(key_plain), "%s/plain.key", dir);
    snprintf(cert_file, sizeof(cert_file), "%s/sim.pem", dir);
    b = BIO_new_file(key_enc, "w");
    if (!b || PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), "2468", 4, NULL, NULL) != 1)
        return -1;
    BIO_free(b);
    b = BIO_new_file(key_plain, "w");
    if (!b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
        return -1;
    BIO_free(b);
    /* A self-signed certificate is enough for the key/certificate match. */
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"sim", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        return -1;
    b = BIO_new_file(cert_file, "w");
    if (!b || PEM_write_bio_X509(b, x) != 1)
        return -1;
    BIO_free(b);
    X509_free(x);
    pub = k;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    EVP_PKEY_free(pub);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ECDSA_SIG *raw_sig(const unsigned char *raw, size_t len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();

    assert_int_equal(len, 64);
    assert_int_equal(ECDSA_SIG_set0(s, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
    return s;
}

static void test_sim_open(void **state)
{
    EVP_PKEY *k = (EVP_PKEY *)1;

    (void)state;
    assert_int_equal(sim_open(key_enc, "2468", &k), 0);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, pub), 1);
    EVP_PKEY_free(k);
    assert_int_equal(sim_open(key_enc, "2469", &k), DZ_ERR_DENIED);
    assert_null(k);
    /* A key that needs no PIN is not a SIM key. */
    assert_int_equal(sim_open(key_plain, "2468", &k), DZ_ERR_INVAL);
    assert_null(k);
    assert_int_equal(sim_open("/nonexistent/sim.key", "2468", &k), DZ_ERR_IO);
    assert_null(k);
}

static void test_wrong_pin(void **state)
{
    char w[3][PHONE_PIN_MAX + 1];
    EVP_PKEY *k = NULL;

    (void)state;
    for (int i = 0; i < 3; i++) {
        wrong_pin("2468", i + 1, w[i], sizeof(w[i]));
        assert_int_equal(strlen(w[i]), 4);
        for (int j = 0; j < 4; j++)
            assert_true(w[i][j] != "2468"[j]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(w[i], w[j]);
        assert_int_equal(sim_open(key_enc, w[i], &k), DZ_ERR_DENIED);
    }
    wrong_pin("0999", 1, w[0], sizeof(w[0]));
    assert_string_equal(w[0], "1000");
}

static void test_sign_digest(void **state)
{
    unsigned char dg[64], raw[DZ_MSSP_SIG_MAX];
    size_t raw_len = 0;
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *v;

    (void)state;
    assert_int_equal(sim_open(key_enc, "2468", &k), 0);
    for (size_t n = 32; n <= 64; n += 16) {
        ECDSA_SIG *s;
        unsigned char *der = NULL;
        int der_len;

        memset(dg, (int)n, sizeof(dg));
        assert_int_equal(sign_digest(k, dg, n, raw, sizeof(raw), &raw_len), 0);
        s = raw_sig(raw, raw_len);
        der_len = i2d_ECDSA_SIG(s, &der);
        v = EVP_PKEY_CTX_new(pub, NULL);
        assert_int_equal(EVP_PKEY_verify_init(v), 1);
        assert_int_equal(EVP_PKEY_verify(v, der, (size_t)der_len, dg, n), 1);
        dg[0] ^= 1; /* another digest: refused */
        assert_int_not_equal(EVP_PKEY_verify(v, der, (size_t)der_len, dg, n), 1);
        EVP_PKEY_CTX_free(v);
        OPENSSL_free(der);
        ECDSA_SIG_free(s);
    }
    assert_int_equal(sign_digest(k, dg, 32, raw, 63, &raw_len), DZ_ERR_CRYPTO);
    assert_int_equal(raw_len, 0);
    EVP_PKEY_free(k);
}

static void test_sign_qr(void **state)
{
    static const char payload[] = "darvaza-qr:1:abc:3:0123456789abcdef";
    unsigned char msg[64], raw[132];
    size_t raw_len = 0;
    const char *alg = NULL;
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    ECDSA_SIG *s;
    unsigned char *der = NULL;
    int der_len;
    unsigned char *cder = NULL;
    size_t cder_len = 0;

    (void)state;
    dz_sha256(payload, strlen(payload), msg);
    dz_sha256("https://localhost:8443", 22, msg + 32);
    assert_int_equal(sim_open(key_enc, "2468", &k), 0);
    assert_int_equal(sign_jose(k, msg, sizeof(msg), &alg, raw, sizeof(raw), &raw_len), 0);
    assert_string_equal(alg, "ES256");
    s = raw_sig(raw, raw_len);
    der_len = i2d_ECDSA_SIG(s, &der);
    assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(m, der, (size_t)der_len, msg, sizeof(msg)), 1);
    /* The certificate file must be the key's. */
    assert_int_equal(cert_der(cert_file, k, &cder, &cder_len), 0);
    assert_true(cder_len > 100);
    OPENSSL_free(cder);
    assert_int_equal(cert_der(key_enc, k, &cder, &cder_len), DZ_ERR_CRYPTO);
    assert_null(cder);
    OPENSSL_free(der);
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(k);
}

static void test_origin(void **state)
{
    char o[64];

    (void)state;
    assert_int_equal(origin_of("https://localhost:8443/auth/qr", o, sizeof(o)), 0);
    assert_string_equal(o, "https://localhost:8443");
    assert_int_equal(origin_of("https://gov.az", o, sizeof(o)), 0);
    assert_string_equal(o, "https://gov.az");
    assert_int_equal(origin_of("http://127.0.0.1:9/?x", o, sizeof(o)), 0);
    assert_string_equal(o, "http://127.0.0.1:9");
    assert_int_equal(origin_of("localhost:8443", o, sizeof(o)), DZ_ERR_INVAL);
    assert_int_equal(origin_of("https:///x", o, sizeof(o)), DZ_ERR_INVAL);
    assert_int_equal(origin_of("https://a-very-long-host-name.example:8443", o, 20), DZ_ERR_INVAL);
    assert_string_equal(o, "");
}

static void test_read_pin(void **state)
{
    char f[96];
    FILE *fp;
    char *pin;
    char arg[] = "13579";

    (void)state;
    snprintf(f, sizeof(f), "%s/pin", dir);
    fp = fopen(f, "w");
    assert_non_null(fp);
    fputs("4321\nignored\n", fp);
    fclose(fp);
    pin = read_pin(NULL, f);
    assert_string_equal(pin, "4321");
    dz_secret_free_str(pin);
    pin = read_pin(arg, NULL);
    assert_string_equal(pin, "13579");
    /* The argument is wiped where it lay (argv). */
    assert_int_equal(arg[0], '\0');
    dz_secret_free_str(pin);
    fp = fopen(f, "w");
    fputs("123\n", fp);
    fclose(fp);
    assert_null(read_pin(NULL, f));
    assert_null(read_pin(NULL, "/nonexistent/pin"));
}

static void test_decode_image(void **state)
{
    static const char payload[] =
        "darvaza-qr:1:Zm9v:12:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    struct dz_buf img;
    char f[96], out[DZ_QR_PAYLOAD_MAX + 2];
    FILE *fp;

    (void)state;
    dz_buf_init(&img, 1 << 20);
    assert_int_equal(dz_qrsvg_render_pbm(payload, 4, &img), 0);
    snprintf(f, sizeof(f), "%s/qr.pbm", dir);
    fp = fopen(f, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(img.data, 1, img.len, fp), img.len);
    fclose(fp);
    dz_buf_cleanup(&img);
    assert_int_equal(decode_image(f, out, sizeof(out)), 0);
    assert_string_equal(out, payload);
    /* No code in the image, no image at all. */
    fp = fopen(f, "wb");
    fputs("P1\n8 8\n", fp);
    for (int i = 0; i < 64; i++)
        fputs("0 ", fp);
    fclose(fp);
    assert_int_not_equal(decode_image(f, out, sizeof(out)), 0);
    assert_int_not_equal(decode_image("/nonexistent/qr.png", out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_open),     cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_sign_digest),  cmocka_unit_test(test_sign_qr),
        cmocka_unit_test(test_origin),       cmocka_unit_test(test_read_pin),
        cmocka_unit_test(test_decode_image),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
