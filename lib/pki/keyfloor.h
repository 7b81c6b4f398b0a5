/*
 * keyfloor.h - the cryptographic floor under every certificate darvaza
 * believes: a person's certificate and its CAs (logins, `darvaza cert
 * check`, signed documents), OCSP responders and their answers, time-stamp
 * authorities and their tokens.
 *
 * The floor: RSA keys of at least 2048 bits (RSA and RSA-PSS keys), EC keys
 * only on the named curves P-256, P-384 and P-521 (explicit parameters and
 * every other curve are refused), no other key type; no signature made with
 * MD2, MD4, MD5, MDC-2, RIPEMD-160 or SHA-1 (the accepted hashes are SHA-224
 * and up, SHA-2 and SHA-3).  A self-signed trust anchor's own signature is
 * not judged (nothing relies on it: it is trusted by configuration), but its
 * key is.
 *
 * The floor can be raised (struct dz_keyfloor, from the gateway config's
 * `trust:` section), never lowered: values under the floor count as the
 * floor.  Only `darvaza cert check --legacy-algorithms` (conformance suites
 * such as NIST PKITS, whose certificates are RSA-1024 / SHA-1) turns it off.
 *
 * The floor belongs to a trust store: dz_keyfloor_store_set attaches it to
 * an X509_STORE (the validator's anchors, the TSA anchors), and whoever
 * checks a path built on that store asks dz_keyfloor_store_get.  A store
 * without one has the fixed floor.
 *
 * Everything here is pure (no I/O) and thread-safe; nothing logs.
 */
#ifndef DZ_KEYFLOOR_H
#define DZ_KEYFLOOR_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define DZ_KEYFLOOR_RSA_BITS 2048u /* the least RSA modulus, ever */
#define DZ_KEYFLOOR_EC_BITS 256u   /* the least EC curve, ever (P-256) */
#define DZ_KEYFLOOR_RSA_MAX 16384u /* the most a config may ask */
#define DZ_KEYFLOOR_EC_MAX 521u    /* P-521 */
#define DZ_KEYFLOOR_AUTH_LEVEL 2   /* OpenSSL security level: 112 bits */

struct dz_keyfloor {
    unsigned rsa_bits; /* RSA modulus at least this; < DZ_KEYFLOOR_RSA_BITS counts as it */
    unsigned ec_bits;  /* EC curve at least this; < DZ_KEYFLOOR_EC_BITS counts as it */
    bool off;          /* no floor at all: conformance suites only, never the gateway */
};

/* The fixed floor (2048 / 256, on). */
extern const struct dz_keyfloor dz_keyfloor_default;

/*
 * Is key k allowed under f (NULL: the fixed floor)?  true, or false with a
 * short English reason in why[why_len] (no personal data).  A NULL key
 * (undecodable) is refused.
 */
bool dz_keyfloor_key_ok(const struct dz_keyfloor *f, const EVP_PKEY *k, char *why, size_t why_len);

/*
 * Is the signature algorithm alg allowed (a certificate's, an OCSP
 * response's, a CMS signer's)?  RSA-PSS is judged by its hash (absent
 * parameters mean SHA-1: refused).  bare_key_ok: alg may name only the key
 * (rsaEncryption, id-ecPublicKey), as CMS SignerInfo.signatureAlgorithm
 * does, with the hash given apart (judge it with dz_keyfloor_md_ok).
 * f->off accepts everything.  false with why filled otherwise.
 */
bool dz_keyfloor_sigalg_ok(const struct dz_keyfloor *f, const X509_ALGOR *alg, bool bare_key_ok,
                           char *why, size_t why_len);

/* Is the digest algorithm md_nid (a NID) allowed for signing?  SHA-224 and
 * up of SHA-2 and SHA-3; f->off accepts everything. */
bool dz_keyfloor_md_ok(const struct dz_keyfloor *f, int md_nid);

/*
 * Is every ESSCertIDv2 of a SigningCertificateV2 (RFC 5035; der[0..len) the
 * attribute value's DER, as in a CMS signer's or a time-stamp token's
 * signed attributes) hashed with a digest dz_keyfloor_md_ok allows?  An
 * absent hashAlgorithm is SHA-256 (its DEFAULT); an explicit weaker one
 * (SHA-1, MD5) is a downgrade of what binds the signature to its
 * certificate.  false with why filled also when der does not decode.
 */
bool dz_keyfloor_ess_v2_ok(const struct dz_keyfloor *f, const unsigned char *der, size_t len,
                           char *why, size_t why_len);

/*
 * Judge a validated chain (leaf first, anchor last): every certificate's
 * key, and the signature of every certificate except a self-signed last
 * one.  NULL when all pass; else the reason, "weak_key" or
 * "weak_signature", with *depth the certificate's place (0 = leaf) and why
 * filled.
 */
const char *dz_keyfloor_chain(const struct dz_keyfloor *f, STACK_OF(X509) * chain, int *depth,
                              char *why, size_t why_len);

/*
 * Set OpenSSL's own part of the floor on a verify context's parameters:
 * security level DZ_KEYFLOOR_AUTH_LEVEL (refuses RSA < 2048, EC < 224 bits
 * and SHA-1 / MD5 signatures below the anchor; X509_V_ERR_EE_KEY_TOO_SMALL,
 * _CA_KEY_TOO_SMALL, _CA_MD_TOO_WEAK).  It is not exact (P-224 and
 * non-NIST curves pass it), so dz_keyfloor_chain runs as well.
 */
void dz_keyfloor_param(const struct dz_keyfloor *f, X509_VERIFY_PARAM *p);

/* Attach a copy of f to st (replacing any earlier one; freed with st), and
 * set the security level on st's parameters.  0, DZ_ERR_NOMEM,
 * DZ_ERR_INVAL (a value over DZ_KEYFLOOR_*_MAX).  Build time only. */
int dz_keyfloor_store_set(X509_STORE *st, const struct dz_keyfloor *f);

/* The floor attached to st, or the fixed floor.  Never NULL. */
const struct dz_keyfloor *dz_keyfloor_store_get(const X509_STORE *st);

#endif
