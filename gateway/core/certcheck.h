/*
 * certcheck.h - validating a login certificate without blocking the event
 * loop: the chain, key usage, policy (card or mobile), revocation and FIN
 * checks of lib/pki/x509check.c.  When everything they need is cached (the
 * path's signatures remembered, a fresh OCSP answer for the certificate)
 * they run on the loop (dz_x509_validate_cached, about 80 us, never a
 * fetch); otherwise on the blocking pool (they may fetch OCSP or a CRL, or
 * verify a signature seen for the first time), and the result comes back
 * to the request's loop.  Either way the same decision.  Shared by the
 * card, mobile and QR logins and the mobile signature.
 */
#ifndef DZ_CERTCHECK_H
#define DZ_CERTCHECK_H

#include <stdint.h>

#include <openssl/x509.h>

#include "core/config.h"
#include "core/rctx.h"
#include "pki/x509check.h"

typedef void (*dz_certcheck_cb)(struct dz_rctx *c, int rc, const struct dz_x509_result *res,
                                void *arg);

/* Validate leaf (a reference is taken) with optional untrusted chain
 * (copied) against t for purpose (login: AUTH, document signing: SIGN),
 * requiring policy and a FIN.
 * Returns 0 when started: cb runs once, later (never from inside this
 * call, even when the check was decided on the loop), on c's loop with rc
 * 0 and the verdict in res (or rc < 0 on an internal error: treat as
 * refused).  Otherwise the client has been answered 503 and cb is never
 * called. */
int dz_certcheck_start(struct dz_rctx *c, const struct dz_x509_trust *t, X509 *leaf,
                       STACK_OF(X509) * chain, enum dz_x509_purpose purpose, const char *policy,
                       enum dz_config_revocation revocation, uint64_t fetch_timeout_ms,
                       dz_certcheck_cb cb, void *arg);

/* Checks decided on the worker loops and checks sent to the pool since the
 * start (darvaza_certchecks_total{path}).  Any thread. */
void dz_certcheck_counts(uint64_t *loop, uint64_t *pool);

/* The problem code for a refused certificate: certificate_revoked,
 * revocation_unavailable or certificate_invalid. */
const char *dz_certcheck_code(const struct dz_x509_result *res);

/* prf: SHA-256 of the login evidence (certificate hash, the signature, the
 * OCSP answer's hash when one decided). */
void dz_certcheck_prf(const struct dz_x509_result *res, const unsigned char *sig, size_t sig_len,
                      unsigned char out[32]);

#endif
