/*
 * fake_pki.h - throwaway keys and certificates for request-layer tests
 * (the gateway's signing key, a card CA and card certificates), made with
 * OpenSSL in memory and written as PEM where the config wants a file.
 * Aborts on failure: a test cannot go on without its PKI.
 */
#ifndef DZ_TEST_FAKE_PKI_H
#define DZ_TEST_FAKE_PKI_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* An EC P-256 key pair. */
EVP_PKEY *fake_pki_key(void);
/* subject "CN=x/serialNumber=y/title=z"; issuer NULL: self-signed with key.
 * exts: "name=value" strings as in openssl.cnf, NULL-terminated (may be
 * NULL).  Valid from an hour ago for a day. */
X509 *fake_pki_cert(const char *subject, long serial, EVP_PKEY *key, X509 *issuer,
                    EVP_PKEY *issuer_key, const char *const *exts);
/* The same, valid from not_before to not_after (Unix seconds: a test that
 * pins its clock) and signed with md (NULL: SHA-256). */
X509 *fake_pki_cert_at(const char *subject, long serial, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, int64_t not_before, int64_t not_after,
                       const EVP_MD *md, const char *const *exts);
void fake_pki_write_key(const char *path, EVP_PKEY *key);
void fake_pki_write_cert(const char *path, X509 *cert);
/* The DER of cert, base64 (standard alphabet, padded); free() it. */
char *fake_pki_cert_b64(X509 *cert);
/* An ES256 signature (raw r||s, base64 standard, padded) over msg; free() it. */
char *fake_pki_sign_es256_b64(EVP_PKEY *key, const unsigned char *msg, size_t len);

/* A root and an issuing CA under it (as the demo's certs/mkpki.sh makes
 * them): the card or mobile-signature trust of a test. */
struct fake_pki_ca {
    EVP_PKEY *root_key;
    EVP_PKEY *ca_key;
    X509 *root;
    X509 *ca;
};
void fake_pki_ca_init(struct fake_pki_ca *ca, const char *name);
void fake_pki_ca_cleanup(struct fake_pki_ca *ca);
/* Root then CA, PEM, appended to path (a "ca:" bundle of the config). */
void fake_pki_ca_write(const struct fake_pki_ca *ca, const char *path);
/* A person's authentication certificate the way certs/mkcards.sh issues
 * the citizen card's: keyUsage digitalSignature, EKU clientAuth, subject
 * serialNumber PNOAZ-<fin>, certificatePolicies policy_oid (plus the judge
 * policy and title=Judge when judge).  No AIA: revocation "none" in the
 * tests' config, which are not about OCSP (test_x509check is). */
X509 *fake_pki_person(const struct fake_pki_ca *ca, EVP_PKEY *key, const char *fin,
                      const char *policy_oid, bool judge, long serial);
/* The same certificate as fake_pki_cert_b64 gives it (what a client sends);
 * free() it. */
char *fake_pki_person_b64(const struct fake_pki_ca *ca, EVP_PKEY *key, const char *fin,
                          const char *policy_oid, bool judge, long serial);

#endif
