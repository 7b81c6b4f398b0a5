/*
 * fake_pki.h - throwaway keys and certificates for request-layer tests
 * (the gateway's signing key, a card CA and card certificates), made with
 * OpenSSL in memory and written as PEM where the config wants a file.
 * Aborts on failure: a test cannot go on without its PKI.
 */
#ifndef DZ_TEST_FAKE_PKI_H
#define DZ_TEST_FAKE_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/* An EC P-256 key pair. */
EVP_PKEY *fake_pki_key(void);
/* subject "CN=x/serialNumber=y/title=z"; issuer NULL: self-signed with key.
 * exts: "name=value" strings as in openssl.cnf, NULL-terminated (may be
 * NULL).  Valid from an hour ago for a day. */
X509 *fake_pki_cert(const char *subject, long serial, EVP_PKEY *key, X509 *issuer,
                    EVP_PKEY *issuer_key, const char *const *exts);
void fake_pki_write_key(const char *path, EVP_PKEY *key);
void fake_pki_write_cert(const char *path, X509 *cert);
/* The DER of cert, base64 (standard alphabet, padded); free() it. */
char *fake_pki_cert_b64(X509 *cert);
/* An ES256 signature (raw r||s, base64 standard, padded) over msg; free() it. */
char *fake_pki_sign_es256_b64(EVP_PKEY *key, const unsigned char *msg, size_t len);

#endif
