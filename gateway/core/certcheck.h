/*
 * certcheck.h - validating a login certificate off the event loop: the
 * chain, key usage, policy (card or mobile), revocation and FIN checks of
 * lib/pki/x509check.c run on the blocking pool (they may fetch OCSP or a CRL),
 * then the result comes back to the request's loop.  Shared by the card,
 * mobile and QR logins.
 */
#ifndef DZ_CERTCHECK_H
#define DZ_CERTCHECK_H

#include <openssl/x509.h>

#include "core/config.h"
#include "core/rctx.h"
#include "pki/x509check.h"

typedef void (*dz_certcheck_cb)(struct dz_rctx *c, int rc, const struct dz_x509_result *res,
                                void *arg);

/* Validate leaf (a reference is taken) with optional untrusted chain
 * (copied) against t for purpose (login: AUTH, document signing: SIGN),
 * requiring policy and a FIN.
 * Returns 0 when started: cb runs later on c's loop with rc 0 and the
 * verdict in res (or rc < 0 on an internal error: treat as refused).
 * Otherwise the client has been answered 503 and cb is never called. */
int dz_certcheck_start(struct dz_rctx *c, const struct dz_x509_trust *t, X509 *leaf,
                       STACK_OF(X509) * chain, enum dz_x509_purpose purpose, const char *policy,
                       enum dz_config_revocation revocation, uint64_t fetch_timeout_ms,
                       dz_certcheck_cb cb, void *arg);

/* The problem code for a refused certificate: certificate_revoked,
 * revocation_unavailable or certificate_invalid. */
const char *dz_certcheck_code(const struct dz_x509_result *res);

/* prf: SHA-256 of the login evidence (certificate hash, the signature, the
 * OCSP answer's hash when one decided). */
void dz_certcheck_prf(const struct dz_x509_result *res, const unsigned char *sig, size_t sig_len,
                      unsigned char out[32]);

#endif
