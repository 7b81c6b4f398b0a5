/*
 * tsa.c - `darvaza-peer tsa`: an RFC 3161 time-stamping authority.
 * POST (any path) with Content-Type application/timestamp-query and a DER
 * TimeStampReq answers 200 application/timestamp-reply with a
 * TimeStampResp made by OpenSSL's TS_RESP_CTX (SHA-256/384/512 imprints,
 * ESS signing-certificate-v2, the TSA certificate chain included when the
 * request asks for it, accuracy 1 s, a random 64-bit serial).  A request
 * OpenSSL cannot use gets a TimeStampResp with status "rejection", as RFC
 * 3161 says, never a crash.
 *
 * It speaks HTTP/2 (h2c on loopback, or h2 with --tls-cert): lib/httpd is
 * HTTP/2 only, real TSAs speak HTTP/1.1; darvaza's client (libcurl) speaks
 * both, and `curl --http2-prior-knowledge` reaches this one.  It owns the
 * TSA key; it never logs request contents.  One loop thread (peer.h): the
 * signing context is only touched there.
 */
#include "peer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "http/tls.h"

#include "base/compat.h"

#define TSA_BODY_MAX (16 * 1024)
#define TSA_POLICY "1.3.6.1.4.1.55555.3.1" /* the demo TSA's policy */

struct tsa {
    TS_RESP_CTX *ctx;
    unsigned long served;
};

static ASN1_INTEGER *serial_cb(TS_RESP_CTX *ctx, void *data)
{
    unsigned char r[8];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *s = NULL;

    if (dz_random(r, sizeof(r)) == 0) {
        r[0] &= 0x7f;
        bn = BN_bin2bn(r, sizeof(r), NULL);
        s = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    }
    BN_free(bn);
    if (!s)
        TS_RESP_CTX_set_status_info(ctx, TS_STATUS_REJECTION, "cannot make a serial number");
    return s;
}

static void on_request(struct dz_req *r, void *wdata)
{
    static const struct dz_hdr h[] = {{"content-type", "application/timestamp-reply"},
                                      {"cache-control", "no-store"}};
    struct tsa *app = wdata;
    char pbuf[64];
    const char *ct = dz_req_header(r, "content-type");
    const unsigned char *body;
    size_t len = 0;
    BIO *in = NULL;
    TS_RESP *resp = NULL;
    unsigned char *der = NULL;
    int n;

    if (strcmp(dz_peer_req_path(r, pbuf, sizeof(pbuf)), DZ_PEER_LOG_PATH) == 0) {
        dz_peer_log_serve(r);
        return;
    }
    if (strcmp(dz_req_method(r), "POST") != 0) {
        dz_peer_problem(r, 405, "method_not_allowed", "POST a TimeStampReq", NULL);
        return;
    }
    if (dz_req_body_overflow(r)) {
        dz_peer_problem(r, 413, "payload_too_large", "a TimeStampReq is small", NULL);
        return;
    }
    if (!ct || strncasecmp(ct, "application/timestamp-query", 27) != 0) {
        dz_peer_problem(r, 415, "unsupported_media_type",
                        "Content-Type must be application/timestamp-query", NULL);
        return;
    }
    body = dz_req_body(r, &len);
    in = BIO_new_mem_buf(body ? (const void *)body : "", (int)len);
    resp = in ? TS_RESP_create_response(app->ctx, in) : NULL;
    n = resp ? i2d_TS_RESP(resp, &der) : -1;
    if (n <= 0) {
        dz_log_openssl("tsa_response");
        dz_peer_problem(r, 500, "internal_error", "cannot make a time-stamp response", NULL);
    } else {
        const ASN1_INTEGER *st = TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp));
        long s = st ? ASN1_INTEGER_get(st) : -1;
        app->served++;
        dz_peer_log_request(r, NULL, s == 0 ? NULL : "rejected", 200);
        dz_log(DZ_LOG_INFO, "tsa_request", "status %ld (%lu served)", s, app->served);
        dz_req_respond(r, 200, h, 2, der, (size_t)n);
    }
    ERR_clear_error();
    OPENSSL_free(der);
    TS_RESP_free(resp);
    BIO_free(in);
}

/* The signing context: leaf (first certificate of cert_path) + its key,
 * the rest of the file as the chain sent with tokens. */
static int make_ctx(const char *cert_path, const char *key_path, TS_RESP_CTX **out)
{
    TS_RESP_CTX *ctx = TS_RESP_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *leaf = NULL, *x;
    EVP_PKEY *key = NULL;
    ASN1_OBJECT *pol = OBJ_txt2obj(TSA_POLICY, 1);
    FILE *f = NULL;
    int rc = DZ_ERR_CRYPTO;

    *out = NULL;
    if (!ctx || !chain || !pol)
        goto out;
    f = fopen(cert_path, "r");
    if (!f) {
        rc = DZ_ERR_IO;
        goto out;
    }
    leaf = PEM_read_X509(f, NULL, NULL, NULL);
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            goto out;
        }
    }
    fclose(f);
    f = fopen(key_path, "r");
    if (!f) {
        rc = DZ_ERR_IO;
        goto out;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    ERR_clear_error();
    /* set_signer_cert refuses a certificate without the critical
     * timeStamping EKU: a misissued TSA certificate never starts. */
    if (!leaf || !key || TS_RESP_CTX_set_signer_cert(ctx, leaf) != 1 ||
        TS_RESP_CTX_set_signer_key(ctx, key) != 1 ||
        TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()) != 1 ||
        TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256()) != 1 ||
        TS_RESP_CTX_set_certs(ctx, chain) != 1 || TS_RESP_CTX_set_def_policy(ctx, pol) != 1 ||
        TS_RESP_CTX_add_md(ctx, EVP_sha256()) != 1 || TS_RESP_CTX_add_md(ctx, EVP_sha384()) != 1 ||
        TS_RESP_CTX_add_md(ctx, EVP_sha512()) != 1 || TS_RESP_CTX_set_accuracy(ctx, 1, 0, 0) != 1)
        goto out;
    TS_RESP_CTX_set_serial_cb(ctx, serial_cb, NULL);
    *out = ctx;
    ctx = NULL;
    rc = 0;
out:
    if (rc)
        dz_log_openssl("tsa_start");
    if (f)
        fclose(f);
    TS_RESP_CTX_free(ctx);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    EVP_PKEY_free(key);
    ASN1_OBJECT_free(pol);
    return rc;
}

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer tsa --listen HOST:PORT --cert TSA.pem --key TSA.key\n"
          "         [--tls-cert F --tls-key F]\n"
          "  --cert   the TSA certificate (EKU timeStamping, critical) then its chain\n"
          "  --key    its private key (PEM)\n"
          "  cleartext HTTP/2 (h2c) unless --tls-cert/--tls-key are given\n",
          to);
    return 2;
}

int dz_peer_tsa_main(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"tls-cert", required_argument, NULL, 'C'},
                                         {"tls-key", required_argument, NULL, 'K'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *listen = NULL, *cert = NULL, *key = NULL, *tls_cert = NULL, *tls_key = NULL;
    struct tsa app = {0};
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    char host[64];
    uint16_t port = 0;
    int c, status = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'C':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage(stderr);
        }
    }
    if (optind != argc || !listen || !cert || !key || (!tls_cert != !tls_key))
        return usage(stderr);
    if (dz_peer_parse_listen(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "tsa: bad --listen '%s' (HOST:PORT)\n", listen);
        return 2;
    }
    if (make_ctx(cert, key, &app.ctx) != 0) {
        fprintf(stderr, "tsa: cannot use %s / %s as a TSA certificate and key\n", cert, key);
        return 1;
    }
    if (tls_cert && dz_tls_server_ctx_new(tls_cert, tls_key, NULL, false, &tls) != 0)
        goto out;
    h.worker_init = dz_peer_worker_init;
    h.worker_fini = dz_peer_worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("tsa", host, port, tls, TSA_BODY_MAX, &h, &app) == 0)
        status = 0;
out:
    SSL_CTX_free(tls);
    TS_RESP_CTX_free(app.ctx);
    return status;
}
