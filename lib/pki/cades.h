/*
 * cades.h - CAdES baseline signatures (ETSI EN 319 122-1) over documents:
 * CMS SignedData, detached, one signer, signed attributes content-type
 * (id-data), message-digest, signing-time and ESS signing-certificate-v2
 * (level B); level T adds an RFC 3161 time-stamp token over the signature
 * value as the unsigned attribute id-aa-signatureTimeStampToken.  DESIGN §4.7.
 *
 * Signing never sees a private key: the caller's callback signs the DER of
 * the signed attributes (a card through PKCS#11, a phone through the MSSP,
 * a file key in tests), so this module also serves `darvaza-card sign`.
 *
 * Verification produces a report with the indications and sub-indications
 * of ETSI EN 319 102-1 (TOTAL_PASSED, INDETERMINATE, TOTAL_FAILED;
 * HASH_FAILURE, SIG_CRYPTO_FAILURE, REVOKED, NO_CERTIFICATE_CHAIN_FOUND,
 * ...), with one entry per check.  Certificates go through the one
 * validator (x509check.h, purpose SIGN: keyUsage nonRepudiation).
 *
 * Thread affinity: everything is reentrant.  dz_cades_verify BLOCKS when the
 * options ask for OCSP/CRL revocation (fetches): pool threads, peers and
 * CLIs only.  Everything here is public data (no secrets).
 */
#ifndef DZ_CADES_H
#define DZ_CADES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/x509check.h"

#define DZ_CADES_MAX_SIG (64 * 1024)       /* one CMS signature (DER) */
#define DZ_CADES_MAX_DOC (8 * 1024 * 1024) /* one document */
#define DZ_CADES_MAX_CHECKS 12
#define DZ_CADES_MAX_ANCHORS 4
/* signing-time may be this much after the time-stamp or the validation time */
#define DZ_CADES_TS_SKEW_S 300

/*
 * The signer: sign tbs (the DER SET OF signed attributes) with the key of
 * the certificate and put a malloc'd signature in *sig: an ECDSA-Sig-Value
 * (DER, see dz_ecdsa_sig_raw_to_der in keys/ecdsa_sig.h) for EC keys, PKCS#1 v1.5 for RSA,
 * both with SHA-256.  Return 0 or a negative dz_err (the signing fails).
 */
typedef int (*dz_cades_sign_fn)(void *arg, const unsigned char *tbs, size_t tbs_len,
                                unsigned char **sig, size_t *sig_len);

/*
 * Make a detached CAdES-B signature over doc with cert (the signer's; its
 * key usage is not checked here) and optional chain certificates (included
 * in the SignedData).  signing_time: unix seconds (0 = now).  *out (DER,
 * caller frees with OPENSSL_free) on success.  0, DZ_ERR_INVAL, DZ_ERR_TOOBIG,
 * DZ_ERR_CRYPTO, DZ_ERR_NOMEM, or what fn returned.  fn is called once.
 */
int dz_cades_sign(const void *doc, size_t doc_len, X509 *cert, STACK_OF(X509) * chain,
                  int64_t signing_time, dz_cades_sign_fn fn, void *arg, unsigned char **out,
                  size_t *out_len);

/*
 * The same signature in two steps, for a signer that answers later (a phone
 * through the MSSP): dz_cades_prepare builds the SignedData with the signed
 * attributes and an EMPTY signature value, hands it back as *partial (DER,
 * OPENSSL_free; at most DZ_CADES_MAX_SIG bytes, public data that may be
 * kept in the store) and puts in tbs_digest the SHA-256 of the DER signed
 * attributes: what the signer signs as a digest (ECDSA/RSA with SHA-256).
 * dz_cades_finish sets sig (DER ECDSA-Sig-Value or PKCS#1 v1.5, see
 * dz_cades_sign_fn) as the signature value and encodes the CAdES-B
 * signature into *out (OPENSSL_free).  The signature is not verified here:
 * the caller checks it over tbs_digest first.  prepare: 0, DZ_ERR_INVAL,
 * DZ_ERR_TOOBIG, DZ_ERR_CRYPTO, DZ_ERR_NOMEM.  finish: 0, DZ_ERR_INVAL,
 * DZ_ERR_PARSE (not a prepared SignedData, or already signed),
 * DZ_ERR_TOOBIG, DZ_ERR_CRYPTO.
 */
int dz_cades_prepare(const void *doc, size_t doc_len, X509 *cert, STACK_OF(X509) * chain,
                     int64_t signing_time, unsigned char **partial, size_t *partial_len,
                     unsigned char tbs_digest[32]);
int dz_cades_finish(const unsigned char *partial, size_t partial_len, const unsigned char *sig,
                    size_t sig_len, unsigned char **out, size_t *out_len);

/* A dz_cades_sign_fn for an in-memory key (arg: EVP_PKEY *): tests, CLIs. */
int dz_cades_sign_with_pkey(void *arg, const unsigned char *tbs, size_t tbs_len,
                            unsigned char **sig, size_t *sig_len);

/*
 * SHA-256 of the signature value of the one SignerInfo of cms: the
 * message imprint of its signature time-stamp.  0, DZ_ERR_PARSE.
 */
int dz_cades_signature_digest(const unsigned char *cms, size_t len, unsigned char digest[32]);

/*
 * Level B -> T: add token (an RFC 3161 TimeStampToken DER over
 * dz_cades_signature_digest) as the unsigned attribute
 * id-aa-signatureTimeStampToken; a signature that already has one is
 * refused (DZ_ERR_EXISTS).  *out is a new DER (malloc'd).  The token is
 * not checked here (dz_tsp_stamp checked it).  *out: OPENSSL_free.  0, DZ_ERR_PARSE,
 * DZ_ERR_EXISTS, DZ_ERR_CRYPTO, DZ_ERR_NOMEM.
 */
int dz_cades_add_timestamp(const unsigned char *cms, size_t len, const unsigned char *token,
                           size_t token_len, unsigned char **out, size_t *out_len);

/*
 * The signature as the gateway passes it on, its unsigned attributes
 * cleaned: they are not covered by the signer's signature, so anything
 * there is unvouched.  Every unsigned attribute is removed (counter-
 * signatures, revocation values, anything unknown) but one signature
 * time-stamp, and that one too unless its token checks as the gateway's
 * own would: dz_tsp_verify_token over the signature value against
 * tsa_trust (chain, EKU, policy, floor), with a genTime within
 * DZ_TSP_FRESH_SKEW_S of now (unix seconds).  *kept_ts says whether the
 * time-stamp stayed; *removed counts the attributes removed.  *out is a
 * new DER (OPENSSL_free; the input's bytes when nothing was removed).  0,
 * DZ_ERR_PARSE (not one SignerInfo), DZ_ERR_TOOBIG, DZ_ERR_CRYPTO,
 * DZ_ERR_NOMEM.  Pure; any thread.
 */
int dz_cades_clean_unsigned(const unsigned char *cms, size_t len, X509_STORE *tsa_trust,
                            int64_t now, unsigned char **out, size_t *out_len, bool *kept_ts,
                            unsigned *removed);

/* Where signer certificates may chain: a trust and the certificate policy
 * its leaves must carry (card, mobile).  The anchor whose policy the signer
 * certificate carries is used; the first one when it carries none. */
struct dz_cades_anchor {
    const struct dz_x509_trust *trust;
    const char *policy; /* NULL: no policy requirement */
};

struct dz_cades_verify_opts {
    struct dz_cades_anchor anchors[DZ_CADES_MAX_ANCHORS];
    size_t nanchors;
    enum dz_x509_revocation revocation;
    uint32_t fetch_timeout_ms;
    struct dz_ocsp_cache *ocsp_cache; /* optional */
    X509_STORE *tsa_trust;            /* NULL: a time-stamp cannot be checked */
    bool require_t;                   /* level B is INDETERMINATE (SIG_CONSTRAINTS_FAILURE) */
    int64_t at;                       /* validation time, unix seconds (0 = now) */
};

struct dz_cades_check {
    const char *name;   /* static: "format", "signing_certificate", "message_digest",
                         * "signature", "signed_attributes", "timestamp",
                         * "certificate", "revocation" */
    const char *result; /* static: "passed" | "failed" | "indeterminate" | "absent" */
    char detail[192];
};

struct dz_cades_report {
    const char *indication;     /* "TOTAL_PASSED" | "INDETERMINATE" | "TOTAL_FAILED" */
    const char *sub_indication; /* EN 319 102-1 name, NULL with TOTAL_PASSED */
    bool has_signer;            /* the signer certificate was found */
    char fin[8];                /* "" when the certificate has none */
    char name[128];             /* subject CN */
    char role[16];              /* "judge" | "citizen" | "" */
    unsigned char certificate_sha256[32];
    int64_t signing_time;   /* signed attribute, unix seconds; 0 if absent */
    int64_t timestamp_time; /* genTime of a good time-stamp; 0 if none */
    char level;             /* 'B' or 'T' (a good time-stamp) */
    struct dz_cades_check checks[DZ_CADES_MAX_CHECKS];
    size_t nchecks;
};

/*
 * Verify the detached signature cms over doc.  *out is cleared on entry
 * (TOTAL_FAILED / FORMAT_FAILURE).  Returns 0 when a report was made (the
 * verdict is out->indication: a failure is NOT an error), DZ_ERR_PARSE
 * when cms is not a CMS SignedData at all (the caller answers 400),
 * DZ_ERR_TOOBIG (over DZ_CADES_MAX_SIG / _DOC), DZ_ERR_INVAL, DZ_ERR_NOMEM.
 * BLOCKING with revocation OCSP/CRL (see x509check.h).
 */
int dz_cades_verify(const void *doc, size_t doc_len, const unsigned char *cms, size_t cms_len,
                    const struct dz_cades_verify_opts *o, struct dz_cades_report *out);

/* dz_cades_verify for a document known only by its SHA-256 (it is not
 * kept): a signature whose digest algorithm is not SHA-256 fails with
 * HASH-related FORMAT_FAILURE.  Same returns; same blocking. */
int dz_cades_verify_sha256(const unsigned char doc_sha256[32], const unsigned char *cms,
                           size_t cms_len, const struct dz_cades_verify_opts *o,
                           struct dz_cades_report *out);

/* The report as the API's JSON:
 * {"indication","sub_indication"(null when passed),"signer":{"fin","name",
 *  "role","certificate_sha256"}|null,"signing_time","timestamp_time"
 *  (RFC 3339 UTC or null),"level","checks":[{"name","result","detail"}]}.
 * NULL when out of memory. */
json_t *dz_cades_report_json(const struct dz_cades_report *r);

#endif
