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

#define DZ_CHAINSIG_SLOTS 1024

/* For X509_STORE_CTX_set_verify: 1 when the path's signatures and validity
 * periods pass (or the verify callback accepted each error), 0 otherwise
 * (the context's error, depth and current certificate say why). */
int dz_chainsig_verify(X509_STORE_CTX *ctx);

/* Signatures answered from the memo, and verified, since the start. */
uint64_t dz_chainsig_hits(void);
uint64_t dz_chainsig_verified(void);

/* Forget every signature (tests). */
void dz_chainsig_clear(void);

#endif
