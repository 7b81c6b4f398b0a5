/*
 * ecdsa_sig.h - the two forms of an ECDSA signature, and the one place that
 * converts between them:
 *   raw  r || s, each a big-endian integer left-padded to the curve's field
 *        size (IEEE P1363; JOSE RFC 7518 §3.4, Web eID, Mobile-ID SIMs);
 *   DER  the ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 3279,
 *        SEC 1) that OpenSSL, PKCS#11 tokens through libp11 and CMS use.
 *
 * Both directions apply the same checks, so no caller repeats them: the
 * raw form is exactly 2 * field_len bytes; the DER form is one canonical
 * DER SEQUENCE with nothing after it (anything OpenSSL would re-encode
 * differently - long-form short lengths, needless 00 bytes - is refused),
 * of bounded size; r and s are in [1, n - 1] for the order n of the NIST
 * curve with that field size.  A value outside that range cannot be a valid
 * signature, so verifiers map DZ_ERR_PARSE to "does not verify".
 *
 * field_len is 32 (P-256), 48 (P-384) or 66 (P-521); other curves are not
 * supported (the gateway, the peers and the card client accept only these).
 *
 * Pure functions over bounded buffers, no globals: any thread.
 */
#ifndef DZ_ECDSA_SIG_H
#define DZ_ECDSA_SIG_H

#include <stddef.h>

#include <openssl/evp.h>

#define DZ_ECDSA_SIG_FIELD_MAX 66                                   /* P-521 */
#define DZ_ECDSA_SIG_RAW_MAX (2 * DZ_ECDSA_SIG_FIELD_MAX)           /* 132 */
#define DZ_ECDSA_SIG_DER_MAX (3 + 2 * (DZ_ECDSA_SIG_FIELD_MAX + 3)) /* 141 */

/* The field size in bytes of an EC key on P-256, P-384 or P-521 (32, 48,
 * 66); 0 for any other key or NULL. */
size_t dz_ecdsa_sig_field_len(const EVP_PKEY *pkey);

/*
 * raw (raw_len bytes) to DER, written into der (der_cap bytes; with
 * DZ_ECDSA_SIG_DER_MAX it always fits); *der_len gets its length.
 * Returns 0; DZ_ERR_INVAL (NULL argument, unsupported field_len, raw_len
 * not 2 * field_len); DZ_ERR_PARSE (r or s zero or not below the order);
 * DZ_ERR_TOOBIG (der_cap too small); DZ_ERR_NOMEM.  *der_len is 0 on error.
 */
int dz_ecdsa_sig_raw_to_der(const unsigned char *raw, size_t raw_len, size_t field_len,
                            unsigned char *der, size_t der_cap, size_t *der_len);

/*
 * DER (der_len bytes) to raw: writes exactly 2 * field_len bytes at raw.
 * Returns 0; DZ_ERR_INVAL (NULL argument, unsupported field_len);
 * DZ_ERR_PARSE (anything but one canonical ECDSA-Sig-Value filling der
 * exactly, longer than DZ_ECDSA_SIG_DER_MAX, or r or s zero, negative, wider than
 * field_len or not below the order).  raw is zeroed on error.
 */
int dz_ecdsa_sig_der_to_raw(const unsigned char *der, size_t der_len, size_t field_len,
                            unsigned char *raw);

#endif
