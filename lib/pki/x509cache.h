/*
 * x509cache.h - parsed certificates kept by their exact DER.  OpenSSL 3's
 * d2i_X509 decodes the public key through its provider decoders, which on
 * this project's machines costs as much as several ECDSA verifications; a
 * card logs in with the same certificate again and again.  The cache only
 * saves the parse: the same bytes always give the same certificate, and
 * every check (chain, validity, revocation, FIN) still runs on it for every
 * login.  A hit is decided by comparing the whole DER, not only its hash,
 * so no collision can ever hand out another certificate.  Process-wide,
 * bounded (DZ_X509_CACHE_SLOTS, one certificate per slot: a new one
 * replaces the slot's old one), any thread.
 */
#ifndef DZ_X509CACHE_H
#define DZ_X509CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define DZ_X509_CACHE_SLOTS 256

/* As dz_x509_from_der (x509check.h): exactly one DER certificate of at
 * most DZ_X509_MAX_CERT_DER bytes, *out a reference the caller frees with
 * X509_free.  The certificate may be shared with other callers: treat it
 * as read-only.  0, DZ_ERR_PARSE, DZ_ERR_TOOBIG, DZ_ERR_NOMEM. */
int dz_x509_from_der_cached(const unsigned char *der, size_t len, X509 **out);

/* Lookups answered from the cache, and the certificates parsed, since the
 * start (tests, metrics). */
uint64_t dz_x509_cache_hits(void);
uint64_t dz_x509_cache_parses(void);

/* Forget every certificate (tests; process exit, for leak checkers). */
void dz_x509_cache_clear(void);

#endif
