/*
 * tsp.h - RFC 3161 time-stamp protocol, client side: build a request for a
 * SHA-256 message imprint, send it to a TSA over HTTP
 * (application/timestamp-query -> application/timestamp-reply), and check a
 * time-stamp token: the TSA's signature (CMS SignedData), its certificate
 * chain to the given trust store with the timeStamping extended key usage
 * (critical, the only EKU: OpenSSL's X509_PURPOSE_TIMESTAMP_SIGN), the ESS
 * signing-certificate attribute, the version, that the imprint is SHA-256
 * over exactly our digest, that the token was issued under a TSA policy the
 * trust store accepts, and (for a fresh answer) our nonce.
 *
 * Used by lib/pki/cades.c (level T) and by the gateway's signed-body step.  It
 * never decides what a time-stamp means for a signature (cades.c does),
 * and it keeps no state.  Everything here is public data.
 *
 * Thread affinity: dz_tsp_verify_token, dz_tsp_response_check and
 * dz_tsp_request_der are pure and
 * run on any thread; dz_tsp_stamp BLOCKS (an HTTP fetch bounded by its
 * timeout): pool threads, peers and CLIs only, never a loop thread.
 */
#ifndef DZ_TSP_H
#define DZ_TSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509_vfy.h>

#include "http/httpc.h"

#define DZ_TSP_MAX_TOKEN (32 * 1024)    /* one time-stamp token (DER) */
#define DZ_TSP_MAX_RESPONSE (40 * 1024) /* one TimeStampResp */
#define DZ_TSP_TIMEOUT_MS 5000u         /* default fetch limit */
#define DZ_TSP_FRESH_SKEW_S 300         /* a fresh token's genTime this far from our clock */
#define DZ_TSP_MAX_POLICIES 8           /* accepted TSA policies per trust store */

struct dz_tsp_info {
    int64_t gen_time;             /* TSTInfo genTime, unix seconds */
    unsigned char tsa_sha256[32]; /* of the TSA signer's certificate DER */
    char tsa_name[128];           /* TSA signer's subject CN ("" if none) */
    char serial[64];              /* TSTInfo serialNumber, hex */
};

/* Seconds since the epoch of an ASN.1 time (UTCTime or GeneralizedTime: a
 * token's genTime, a CMS signing-time); 0 when t is NULL or unreadable. */
int64_t dz_tsp_time_unix(const ASN1_TIME *t);

/*
 * Load a PEM bundle of trust anchors into a new store.  Every certificate
 * in it is an anchor, an intermediate CA too (X509_V_FLAG_PARTIAL_CHAIN):
 * give the TSA's own issuing CA, not a root that also issues other CAs
 * (any CA under an anchor may certify a time-stamping authority).
 * *out is the caller's (X509_STORE_free).  The store carries the fixed
 * key and signature floor (keyfloor.h); raise it with
 * dz_keyfloor_store_set.  0, DZ_ERR_IO, DZ_ERR_PARSE (no certificate),
 * DZ_ERR_NOMEM.  Blocking file I/O: start-up or CLI.
 */
int dz_tsp_trust_load(const char *pem_path, X509_STORE **out);

/*
 * The TSA policies (TSTInfo.policy, dotted numeric OIDs) whose tokens st
 * accepts, attached to st (a copy, freed with st; replaces any earlier
 * list).  A TSA may issue tokens under several policies (a test policy, a
 * policy of lesser assurance): its certificate alone does not say which
 * promise a token carries, so the policy is checked on every token, and a
 * store without a list accepts no token at all.  0, DZ_ERR_INVAL (n is 0
 * or over DZ_TSP_MAX_POLICIES, or an entry is not a numeric OID),
 * DZ_ERR_NOMEM.  Build time only.
 */
int dz_tsp_trust_set_policies(X509_STORE *st, const char *const *oids, size_t n);

/*
 * TimeStampReq (DER, malloc'd into *out) for a SHA-256 digest, certReq true
 * and a random 64-bit nonce written to nonce[8].  0, DZ_ERR_NOMEM,
 * DZ_ERR_CRYPTO.  Any thread.
 */
int dz_tsp_request_der(const unsigned char digest[32], unsigned char nonce[8], unsigned char **out,
                       size_t *out_len);

/*
 * Check a time-stamp token (the ContentInfo DER, <= DZ_TSP_MAX_TOKEN) over
 * digest (SHA-256, 32 bytes) against trust (borrowed; not modified).
 * nonce NULL: no nonce check (a stored token).  *info is cleared on entry
 * and filled on success.  Returns 0 when the token is good, DZ_ERR_PARSE
 * (not a token), DZ_ERR_DENIED (signature, chain, EKU, imprint, algorithm,
 * nonce or TSA policy (dz_tsp_trust_set_policies; detail then starts with
 * "policy") wrong, or the token's signature or a key or signature of the
 * TSA's path under trust's floor (keyfloor.h; detail then starts with
 * "weak_key" or "weak_signature"): detail says which), DZ_ERR_INVAL, DZ_ERR_NOMEM.  detail
 * (may be NULL) gets a short English reason.  Pure; any thread.
 */
int dz_tsp_verify_token(const unsigned char *token, size_t len, const unsigned char digest[32],
                        const unsigned char *nonce, X509_STORE *trust, struct dz_tsp_info *info,
                        char *detail, size_t detail_len);

/*
 * Check a TimeStampResp (DER resp[0..len), <= DZ_TSP_MAX_RESPONSE) that
 * answers our request for digest with nonce[8]: status granted or
 * grantedWithMods, a token, and that token checked by dz_tsp_verify_token
 * with the nonce, and with now (unix seconds; 0: no clock check) its genTime
 * within DZ_TSP_FRESH_SKEW_S of now: the nonce proves the token was made
 * for this request, not that its time is right, and a token's genTime is
 * the proof of existence a later validation trusts (a certificate revoked
 * after it still passes: cades.h).  On 0, *token / *token_len is the token
 * DER (free with OPENSSL_free).  Returns 0, DZ_ERR_UNAVAILABLE (status not
 * granted), DZ_ERR_PARSE, DZ_ERR_TOOBIG, DZ_ERR_DENIED, DZ_ERR_INVAL,
 * DZ_ERR_NOMEM, DZ_ERR_CRYPTO.  Pure (what dz_tsp_stamp runs on the TSA's
 * answer, with the clock; unit-tested and fuzzed); any thread.
 */
int dz_tsp_response_check(const unsigned char *resp, size_t len, const unsigned char digest[32],
                          const unsigned char nonce[8], X509_STORE *trust, int64_t now,
                          unsigned char **token, size_t *token_len, struct dz_tsp_info *info,
                          char *detail, size_t detail_len);

/*
 * Ask the TSA at url (http or https; tls may be NULL) for a token over
 * digest, check the answer (status granted, then dz_tsp_verify_token with
 * our nonce) and hand back the token DER (malloc'd, *token_len bytes).
 * Returns 0, DZ_ERR_UNAVAILABLE / DZ_ERR_TIMEOUT (TSA down or slow, HTTP
 * status not 200, status not granted), DZ_ERR_PARSE, DZ_ERR_DENIED (a token
 * that does not check), DZ_ERR_NOMEM.  BLOCKS up to timeout_ms (0: the
 * default): never on a loop thread.
 */
int dz_tsp_stamp(const char *url, const struct dz_httpc_tls *tls, enum dz_httpc_version version,
                 uint32_t timeout_ms, X509_STORE *trust, const unsigned char digest[32],
                 unsigned char **token, size_t *token_len, struct dz_tsp_info *info, char *detail,
                 size_t detail_len);

#endif
