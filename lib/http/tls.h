/*
 * tls.h - server-side OpenSSL contexts for the HTTP/2 engine (lib/http/httpd.h).
 *
 * One function builds an SSL_CTX that speaks only TLS 1.2 and 1.3 with
 * modern ciphers (TLS 1.2: ECDHE key exchange with AES-GCM or ChaCha20-
 * Poly1305 only; TLS 1.3: OpenSSL defaults), selects ALPN "h2" and nothing
 * else, and optionally asks for a client certificate.  It never validates a
 * client certificate in the optional mode: the application does that itself
 * (its own validator, with revocation) through dz_req_peer_cert().
 */
#ifndef DZ_TLS_H
#define DZ_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

/*
 * Build a server context from PEM files.
 *   cert_chain_file  leaf certificate first, then intermediates
 *   key_file         the leaf's private key (must match, checked)
 *   client_ca_file   NULL: no client certificates are requested.  Otherwise
 *                    the CAs whose names are sent in CertificateRequest and
 *                    that OpenSSL uses to build the client's chain.
 *   client_auth_optional
 *                    with a client CA: true asks for a certificate but lets
 *                    the handshake finish without one, and also when the
 *                    chain does NOT verify (the application validates it
 *                    later; the certificate is then still available);
 *                    false requires a certificate that verifies against
 *                    client_ca_file (handshake fails otherwise).
 * Read-ahead is on (one read(2) takes several records): whoever reads an SSL
 * made from it must go on until SSL_read wants more, or check
 * SSL_has_pending, before waiting for the socket again; the bytes OpenSSL
 * holds no longer show as readiness.
 * On success *out holds a new context the caller owns (SSL_CTX_free; the
 * engine takes its own reference).  Errors are logged with the file name and
 * OpenSSL's error queue: DZ_ERR_INVAL (NULL argument), DZ_ERR_CRYPTO (a file
 * cannot be read or the key does not match), DZ_ERR_NOMEM.  Any thread.
 */
int dz_tls_server_ctx_new(const char *cert_chain_file, const char *key_file,
                          const char *client_ca_file, bool client_auth_optional, SSL_CTX **out);

/* The ALPN protocol the engine requires, in wire format ("\x02h2"). */
extern const unsigned char dz_tls_alpn_h2[3];

#endif
