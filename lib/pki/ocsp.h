/*
 * ocsp.h - OCSP (RFC 6960) for the certificate validator: building a
 * request with a nonce, checking a response, asking a responder over HTTP,
 * and a bounded, thread-safe cache of answers kept until their nextUpdate.
 *
 * A response is believed only when it is a successful basic response,
 * signed by the certificate's issuer itself or by a delegated responder
 * certificate that the issuer signed and that carries id-kp-OCSPSigning
 * (and is within its validity), echoes the request's nonce, answers for
 * exactly the CertID asked, and is fresh (thisUpdate not in the future and
 * nextUpdate not in the past, DZ_OCSP_LEEWAY seconds of leeway; without
 * nextUpdate, thisUpdate at most DZ_OCSP_MAX_AGE old).  Anything else is an
 * error, never a "good".
 *
 * dz_ocsp_response_check is pure (no I/O, no globals): unit-tested and
 * fuzzed.  dz_ocsp_query blocks (HTTP).  The cache may be shared by every
 * thread.  OCSP data is public: nothing to wipe.
 */
#ifndef DZ_OCSP_H
#define DZ_OCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "pki/keyfloor.h"

#define DZ_OCSP_MAX_RESPONSE (64 * 1024) /* bytes of an OCSPResponse */
#define DZ_OCSP_NONCE_LEN 16
#define DZ_OCSP_LEEWAY 300                /* seconds of clock skew allowed */
#define DZ_OCSP_MAX_AGE 600               /* thisUpdate age without nextUpdate */
#define DZ_OCSP_CACHE_DEFAULT 4096        /* entries */
#define DZ_OCSP_CACHE_MAX_TTL (7 * 86400) /* never keep an answer longer */

enum dz_ocsp_status {
    DZ_OCSP_GOOD,
    DZ_OCSP_REVOKED,
    DZ_OCSP_UNKNOWN /* the responder does not know the certificate */
};

struct dz_ocsp_answer {
    enum dz_ocsp_status status;
    int64_t this_update;      /* unix seconds */
    int64_t next_update;      /* 0: the responder gave none (not cacheable) */
    int64_t revoked_at;       /* DZ_OCSP_REVOKED only */
    int revocation_reason;    /* CRLReason, -1 when absent */
    unsigned char sha256[32]; /* of the whole OCSPResponse DER */
};

/* ---- request / response (pure) ---- */

/* The lookup key of (issuer, leaf): SHA-256 of the DER CertID (SHA-1
 * issuer name hash, issuer key hash, serial), i.e. issuer + serial.
 * 0 or DZ_ERR_CRYPTO. */
int dz_ocsp_key(X509 *leaf, X509 *issuer, unsigned char key[32]);

/*
 * A DER OCSPRequest for leaf (issued by issuer) with a fresh random nonce
 * of DZ_OCSP_NONCE_LEN bytes.  *der (free with OPENSSL_free) and *der_len;
 * *req (free with OCSP_REQUEST_free) is what the response is checked
 * against.  0, DZ_ERR_CRYPTO, DZ_ERR_NOMEM.
 */
int dz_ocsp_request_new(X509 *leaf, X509 *issuer, OCSP_REQUEST **req, unsigned char **der,
                        size_t *der_len);

/*
 * Check a DER OCSPResponse der[0..len) against req (made by
 * dz_ocsp_request_new for leaf/issuer) at time now (unix seconds).
 * *out is cleared on entry.  Returns 0 with *out filled (status GOOD,
 * REVOKED or UNKNOWN), or an error: DZ_ERR_TOOBIG (> DZ_OCSP_MAX_RESPONSE),
 * DZ_ERR_PARSE (not an OCSPResponse / basic response, or no answer for the
 * CertID), DZ_ERR_UNAVAILABLE (responseStatus not successful: tryLater,
 * internalError, ...), DZ_ERR_DENIED (signature, responder not authorised,
 * nonce missing or different), DZ_ERR_STATE (not fresh), DZ_ERR_INVAL.
 * The answer must also meet floor (keyfloor.h; NULL: the fixed floor): the
 * responder's key, a delegated responder certificate's signature
 * algorithm and the response's signature algorithm; a weak one is
 * DZ_ERR_DENIED.
 * With req NULL no nonce is required (for tests of stored answers only; the
 * validator always passes req).  Any thread.
 */
int dz_ocsp_response_check(const unsigned char *der, size_t len, OCSP_REQUEST *req, X509 *leaf,
                           X509 *issuer, int64_t now, const struct dz_keyfloor *floor,
                           struct dz_ocsp_answer *out);

/*
 * Ask the responder at url (http:// or https://) about leaf: request,
 * POST (application/ocsp-request), check as above.  On 0, *out is the
 * checked answer and, when resp_der is not NULL, *resp_der / *resp_len the
 * response (free with OPENSSL_free).  Errors as dz_ocsp_response_check plus
 * DZ_ERR_TIMEOUT / DZ_ERR_UNAVAILABLE (transport or HTTP status != 200).
 * BLOCKING (timeout_ms bounds the whole exchange): never a loop thread.
 */
int dz_ocsp_query(const char *url, X509 *leaf, X509 *issuer, uint32_t timeout_ms, int64_t now,
                  const struct dz_keyfloor *floor, struct dz_ocsp_answer *out,
                  unsigned char **resp_der, size_t *resp_len);

/* The first http(s) OCSP URL of leaf's AIA into url[url_size].  0,
 * DZ_ERR_NOTFOUND (none), DZ_ERR_TOOBIG (longer than url_size - 1). */
int dz_ocsp_url(X509 *leaf, char *url, size_t url_size);

/* ---- cache ---- */

struct dz_ocsp_cache;

/* A cache of at most max_entries answers (0: DZ_OCSP_CACHE_DEFAULT).
 * 0, DZ_ERR_NOMEM.  Any thread. */
int dz_ocsp_cache_new(size_t max_entries, struct dz_ocsp_cache **out);

/* NULL is a no-op.  No other call may be running on c. */
void dz_ocsp_cache_free(struct dz_ocsp_cache *c);

/*
 * Look key up at time now.  0 with *out (a GOOD or REVOKED answer whose
 * next_update is still ahead of now) or DZ_ERR_NOTFOUND (*out cleared).
 * An expired entry is dropped.  Thread-safe.
 */
int dz_ocsp_cache_get(struct dz_ocsp_cache *c, const unsigned char key[32], int64_t now,
                      struct dz_ocsp_answer *out);

/* The same, but a miss is not counted in the stats: for a first look
 * that, on a miss, is followed by dz_ocsp_cache_get (the worker loop's
 * cached-only check, then the pool's full one), so that one validation
 * counts one lookup.  A hit is counted. */
int dz_ocsp_cache_try(struct dz_ocsp_cache *c, const unsigned char key[32], int64_t now,
                      struct dz_ocsp_answer *out);

/*
 * Keep a (GOOD or REVOKED) answer until its next_update (at most
 * DZ_OCSP_CACHE_MAX_TTL from now).  Answers without next_update, already
 * past it, or UNKNOWN are not kept (DZ_ERR_INVAL).  When full, expired
 * entries go first, then the one expiring soonest.  0, DZ_ERR_INVAL.
 * Thread-safe.
 */
int dz_ocsp_cache_put(struct dz_ocsp_cache *c, const unsigned char key[32],
                      const struct dz_ocsp_answer *a, int64_t now);

/* Entries currently held (including not yet collected expired ones). */
size_t dz_ocsp_cache_count(struct dz_ocsp_cache *c);

/* What the cache saw since it was made, for the metrics: lookups answered
 * (hits) and not (misses, expired entries included), and OCSP queries that
 * gave no usable answer (failures: counted by the caller with
 * dz_ocsp_cache_note_failure, as the query itself knows no cache).  Any
 * thread. */
struct dz_ocsp_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t failures;
    size_t entries;
};
void dz_ocsp_cache_stats(struct dz_ocsp_cache *c, struct dz_ocsp_cache_stats *out);
void dz_ocsp_cache_note_failure(struct dz_ocsp_cache *c);

#endif
