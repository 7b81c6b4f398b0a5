/*
 * tls.c - builds the server SSL_CTX used by the HTTP/2 engine; see tls.h.
 * Owns protocol versions, cipher lists, ALPN selection and the client-
 * certificate policy.  It must never decide whether a client certificate is
 * trustworthy in the optional mode (the application's validator does, with
 * revocation), and never loads anything but the files it is given.
 */
#include "http/tls.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

const unsigned char dz_tls_alpn_h2[3] = {2, 'h', '2'};

/* TLS 1.2 only: forward secrecy and AEAD; no CBC, no RSA key exchange. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                    "ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                    "ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                    "ECDHE-RSA-CHACHA20-POLY1305";

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;

    if (SSL_select_next_proto(&sel, &sel_len, dz_tls_alpn_h2, sizeof(dz_tls_alpn_h2), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        /* No h2 offered: finish the handshake without ALPN; the engine
         * closes the connection once it sees nothing was selected. */
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

/* Optional client authentication: accept any chain (or none).  The result of
 * OpenSSL's own verification is deliberately ignored here; the application
 * runs its own validator on dz_req_peer_cert()/dz_req_peer_chain(). */
static int verify_accept_all(int preverify_ok, X509_STORE_CTX *ctx)
{
    return 1;
}

static int load_client_ca(SSL_CTX *ctx, const char *file, bool optional)
{
    STACK_OF(X509_NAME) *names = NULL;
    static const unsigned char sid_ctx[] = "darvaza";

    if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        dz_log(DZ_LOG_ERROR, "tls_config", "cannot load client CA file %s", file);
        dz_log_openssl("tls_config");
        return DZ_ERR_CRYPTO;
    }
    names = SSL_load_client_CA_file(file);
    if (!names) {
        dz_log(DZ_LOG_ERROR, "tls_config", "no CA names in client CA file %s", file);
        dz_log_openssl("tls_config");
        return DZ_ERR_CRYPTO;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes ownership */
    /* No resumption where a certificate is asked for: a resumed session
     * carries the certificate of its first handshake without a new
     * CertificateVerify, so a browser resuming on the card listener would
     * log in whoever sits at it as the card's holder, the card pulled out.
     * Every certificate login proves the key anew: no tickets, no server
     * cache.  (The context id stays: OpenSSL wants one once peers are
     * verified.) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        dz_log_openssl("tls_config");
        return DZ_ERR_CRYPTO;
    }
    if (optional)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_accept_all);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    return 0;
}

int dz_tls_server_ctx_new(const char *cert_chain_file, const char *key_file,
                          const char *client_ca_file, bool client_auth_optional, SSL_CTX **out)
{
    SSL_CTX *ctx = NULL;
    int rc = DZ_ERR_CRYPTO;

    if (out)
        *out = NULL;
    if (!cert_chain_file || !key_file || !out)
        return DZ_ERR_INVAL;

    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        dz_log_openssl("tls_config");
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        dz_log(DZ_LOG_ERROR, "tls_config", "cannot set protocol versions or ciphers");
        dz_log_openssl("tls_config");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* One read(2) takes what the socket holds, not a record's 5-byte header
     * and then its body: half the reads of a connection.  Bytes OpenSSL
     * keeps no longer show as socket readiness; the engine reads until
     * SSL_read wants more (h2conn.c do_read), and says so where it stops
     * early. */
    SSL_CTX_set_read_ahead(ctx, 1);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_chain_file) != 1) {
        dz_log(DZ_LOG_ERROR, "tls_config", "cannot load certificate chain %s", cert_chain_file);
        dz_log_openssl("tls_config");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        dz_log(DZ_LOG_ERROR, "tls_config", "cannot load private key %s", key_file);
        dz_log_openssl("tls_config");
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        dz_log(DZ_LOG_ERROR, "tls_config", "private key %s does not match certificate %s", key_file,
               cert_chain_file);
        dz_log_openssl("tls_config");
        goto out;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);

    if (client_ca_file) {
        rc = load_client_ca(ctx, client_ca_file, client_auth_optional);
        if (rc != 0)
            goto out;
    }
    *out = ctx;
    ctx = NULL;
    rc = 0;
out:
    SSL_CTX_free(ctx);
    return rc;
}
