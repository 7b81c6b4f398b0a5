/*
 * chainsig.h - the signature-and-validity step of X509_verify_cert, with a
 * memo of the signatures already verified.  OpenSSL's path validation
 * verifies every signature of the path at every validation; a card CA's
 * certificate is the same at every card login, and with a P-384 root its
 * one signature costs about ten P-256 verifications.  The memo keeps only
 * "these exact certificate bytes carry a valid signature by this exact
 * issuer key" (SHA-256 of the certificate's DER and of the issuer's
 * SubjectPublicKeyInfo), which no other certificate or key can match; a
 * failed verification is never kept.  Everything else of the path
 * validation (chain building, extensions, trust, revocation, name
 * constraints, policies) stays OpenSSL's; this step checks what OpenSSL's
 * own does, in the same order, with the same errors and depths: for each
 * certificate from the anchor down, the issuer's key usage allows
 * certificate signing, its signature (but a self-signed anchor's), its
 * validity period at the verification time.
 */
#ifndef DZ_CHAINSIG_H
#define DZ_CHAINSIG_H

#include <stdint.h>

#include <openssl/x509_vfy.h>

#define DZ_CHAINSIG_SLOTS 1024 /* pairs remembered, two per set (chainsig.c) */

/* For X509_STORE_CTX_set_verify: 1 when the path's signatures and validity
 * periods pass (or the verify callback accepted each error), 0 otherwise
 * (the context's error, depth and current certificate say why). */
int dz_chainsig_verify(X509_STORE_CTX *ctx);

/* What dz_chainsig_verify_memo sets when a signature is not in the memo.
 * OpenSSL reserves this code for applications and never sets it itself. */
#define DZ_CHAINSIG_NOT_MEMO X509_V_ERR_APPLICATION_VERIFICATION

/* The same step without verifying anything: for a check on a worker loop,
 * where a verification (a P-384 one costs about a millisecond) must not
 * run.  Every signature must come from the memo; the first that does not
 * stops the step with error DZ_CHAINSIG_NOT_MEMO at its depth, without the
 * verify callback (a miss is not a verdict: no callback may waive it), and
 * the caller validates again with dz_chainsig_verify where it may take the
 * time.  Everything else (key usage, validity periods, the callback's
 * verdicts) exactly as dz_chainsig_verify. */
int dz_chainsig_verify_memo(X509_STORE_CTX *ctx);

/* Signatures answered from the memo, verified, and not found by
 * dz_chainsig_verify_memo, since the start. */
uint64_t dz_chainsig_hits(void);
uint64_t dz_chainsig_verified(void);
uint64_t dz_chainsig_misses(void);

/* Forget every signature (tests). */
void dz_chainsig_clear(void);

#endif
