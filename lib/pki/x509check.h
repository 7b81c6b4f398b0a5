/*
 * x509check.h - the one certificate validator that every login path (card
 * challenge, card TLS client certificate, mobile signature, QR answer), the
 * document verifier and `darvaza cert check` share (DESIGN §4.4, §4.5, §4.7).
 *
 * dz_x509_validate answers one question: may this leaf certificate be
 * believed, for this purpose and policy, at this time?  In order:
 *   1. bounds (leaf <= DZ_X509_MAX_CERT_DER bytes, <= DZ_X509_MAX_UNTRUSTED
 *      untrusted certificates);
 *   2. RFC 5280 path validation by OpenSSL's X509_verify_cert against the
 *      trust's anchors (X509_V_FLAG_X509_STRICT, policy processing with the
 *      PKITS inputs, extended CRL support and delta CRLs, security level 2);
 *   3. the trust's key and signature floor on every certificate of the
 *      path (keyfloor.h);
 *   4. for AUTH and SIGN, the leaf is an end-entity certificate (v3, not a
 *      CA in any form, a positive serial of <= 20 octets, no duplicate
 *      extension), its key usage fits the purpose, its certificate policy
 *      is one of o->policies, its FIN (o->require_fin);
 *   5. revocation of the leaf: OCSP from its AIA (answers cached until
 *      nextUpdate), else a CRL (trust files, or fetched from the CDP), and
 *      when neither gives an answer the certificate is refused
 *      ("revocation_unknown"): fail closed.
 * Any error in any step is a refusal: out->valid is true only when every
 * step passed.
 *
 * Trust: a struct dz_x509_trust is built once (config load or the CLI) with
 * the _add_ functions and is immutable afterwards; it is owned by whoever
 * built it (a config generation) and must outlive every validation using it.
 *
 * Everything here is public data: nothing to wipe.  Nothing here logs the
 * certificate's subject (personal data); refusals are returned, not logged.
 */
#ifndef DZ_X509CHECK_H
#define DZ_X509CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "pki/keyfloor.h"

struct dz_ocsp_cache; /* lib/pki/ocsp.h */

#define DZ_X509_MAX_CERT_DER (16 * 1024) /* one certificate */
#define DZ_X509_MAX_UNTRUSTED 8          /* untrusted certificates per call */
#define DZ_X509_MAX_DEPTH 10             /* intermediates between leaf and anchor */
#define DZ_X509_MAX_OCSP_RESPONSE (64 * 1024)
#define DZ_X509_MAX_CRL (4 * 1024 * 1024) /* a CRL file or a fetched CRL */
#define DZ_X509_MAX_FILE_CERTS 64         /* certificates in one --ca file */
#define DZ_X509_FETCH_TIMEOUT_MS 5000u    /* default OCSP / CRL fetch limit */

enum dz_x509_purpose {
    DZ_X509_PURPOSE_ANY,  /* no key usage check (PKITS, inspection) */
    DZ_X509_PURPOSE_AUTH, /* keyUsage digitalSignature; EKU clientAuth if EKU present */
    DZ_X509_PURPOSE_SIGN  /* keyUsage nonRepudiation (contentCommitment) */
};

enum dz_x509_revocation {
    DZ_X509_REV_NONE,     /* no revocation check (tests, inspection only) */
    DZ_X509_REV_CRL_ONLY, /* every certificate of the path against the trust's CRL
                           * files (OpenSSL crl_check_all); nothing is fetched */
    DZ_X509_REV_OCSP_CRL  /* leaf: OCSP from its AIA (cached until nextUpdate),
                           * else a CRL (trust files, or fetched from its CDP);
                           * CA certificates: trust CRL files when present.
                           * Fail closed when the leaf's status is unknown. */
};

struct dz_x509_trust; /* anchors + intermediates + CRLs */

/* New empty trust.  0 or DZ_ERR_NOMEM.  Any thread. */
int dz_x509_trust_new(struct dz_x509_trust **out);

/*
 * Add every certificate of a PEM (one or more) or DER (one) file: a
 * self-signed certificate becomes a trust anchor, any other one an
 * intermediate offered to every path build (never trusted by itself).
 * 0, DZ_ERR_IO (cannot read), DZ_ERR_PARSE (no certificate, or garbage),
 * DZ_ERR_TOOBIG (> DZ_X509_MAX_FILE_CERTS certificates or one over
 * DZ_X509_MAX_CERT_DER), DZ_ERR_NOMEM.  Build time only (not thread-safe
 * against validations using t).
 */
int dz_x509_trust_add_ca_file(struct dz_x509_trust *t, const char *pem_or_der_path);

/*
 * Add every CRL of a PEM or DER file (full or delta CRLs).  The CRL is
 * checked at use (signature by its issuer, thisUpdate/nextUpdate at the
 * validation time), not here.  Same returns as add_ca_file.  Build time.
 */
int dz_x509_trust_add_crl_file(struct dz_x509_trust *t, const char *path);

/*
 * Raise the trust's key and signature floor (keyfloor.h) above the fixed
 * one (RSA 2048, P-256, no MD5/SHA-1), which every new trust has; it
 * applies to every certificate of every path validated against t and to
 * OCSP responders answering for them.  f->off is only for conformance
 * suites.  0, DZ_ERR_INVAL (over DZ_KEYFLOOR_*_MAX), DZ_ERR_NOMEM.  Build
 * time only.
 */
int dz_x509_trust_set_floor(struct dz_x509_trust *t, const struct dz_keyfloor *f);

/* The floor of t (the fixed one when t is NULL).  Never NULL. */
const struct dz_keyfloor *dz_x509_trust_floor(const struct dz_x509_trust *t);

/* Number of anchors added so far (a trust with none validates nothing). */
size_t dz_x509_trust_anchors(const struct dz_x509_trust *t);

/*
 * The intermediates of t that lead from leaf's issuer up to an anchor
 * (nearest first, anchors excluded), as new references in *out (free with
 * sk_X509_pop_free): what a signature should carry so that a verifier
 * holding only the root can build the path.  0 (possibly an empty stack),
 * DZ_ERR_INVAL, DZ_ERR_NOMEM.  Any thread.
 */
int dz_x509_trust_issuer_chain(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * *out);

/* NULL is a no-op.  No validation may be running on t. */
void dz_x509_trust_free(struct dz_x509_trust *t);

struct dz_x509_opts {
    enum dz_x509_purpose purpose;
    const char *const *policies; /* the leaf's certificatePolicies must hold one of
                                  * these (card vs mobile); NULL/0: no requirement */
    size_t npolicies;
    enum dz_x509_revocation revocation;
    int64_t at;                       /* validation time, unix seconds (0 = now) */
    uint32_t fetch_timeout_ms;        /* each OCSP / CRL HTTP fetch; 0 = DZ_X509_FETCH_TIMEOUT_MS */
    struct dz_ocsp_cache *ocsp_cache; /* optional; shared, thread-safe */
    /* RFC 5280 6.1.1 inputs (PKITS); all false/NULL for login paths. */
    bool explicit_policy;
    bool inhibit_policy_mapping;
    bool inhibit_any_policy;
    const char *const *initial_policies; /* NULL/0 = {anyPolicy} */
    size_t ninitial;
    bool require_fin; /* login paths: a certificate without a FIN is refused */
};

/*
 * Result.  reason is a static string, stable (tests and problem codes map
 * on it):
 *   "ok"                 valid
 *   "malformed"          input over a bound, unparsable, bad argument; for AUTH /
 *                        SIGN also a serial number that is not positive or
 *                        over 20 octets, or an extension present twice
 *   "expired" / "not_yet_valid"   leaf or a CA outside its validity at `at`
 *   "unknown_ca"         no path to an anchor of the trust
 *   "bad_signature"      a certificate's signature does not verify
 *   "chain_invalid"      any other path error (basicConstraints, name
 *                        constraints, key usage of a CA, critical extension...)
 *   "wrong_policy"       policy processing failed, or the leaf carries none
 *                        of o->policies (a mobile certificate where a card
 *                        one is required, or the reverse)
 *   "weak_key"           a key of the path is under the trust's floor (RSA
 *                        bits, EC curve, key type)
 *   "weak_signature"     a certificate of the path (not the anchor's own
 *                        self-signature) is signed with MD5, SHA-1 or an
 *                        unknown algorithm
 *   "not_end_entity"     AUTH / SIGN: the leaf is a CA certificate in some
 *                        form (basicConstraints cA, keyCertSign, cRLSign)
 *                        or not v3
 *   "bad_key_usage"      the leaf's keyUsage/EKU do not allow the purpose
 *   "no_fin"             o->require_fin and the subject has no FIN
 *   "bad_fin"            o->require_fin and the subject serialNumber is not a
 *                        FIN (without require_fin: fin stays "")
 *   "revoked"            OCSP or a CRL says revoked (the gateway's
 *                        certificate_revoked)
 *   "revocation_unknown" revocation status could not be learned (fail closed)
 *   "internal"           allocation or OpenSSL failure (also a refusal)
 * detail: a short English explanation (OpenSSL's text, depth), no personal data.
 */
struct dz_x509_result {
    bool valid;
    const char *reason;
    char detail[256];
    char fin[8];              /* "" when the certificate has none */
    char role[16];            /* "judge" | "citizen" ("" when refused before extraction) */
    char name[128];           /* subject CN (see certid.h) */
    unsigned char sha256[32]; /* of the leaf DER (set whenever the leaf encodes) */
    /* Revocation evidence, for the audit log and the assertion's prf. */
    const char *revocation_source; /* "none" | "ocsp" | "ocsp_cache" | "crl" */
    int64_t revocation_checked_at; /* thisUpdate of the OCSP answer or CRL used; 0: none */
    int64_t revoked_at;            /* reason "revoked" of the leaf: when (OCSP revocationTime or
                                    * CRL revocationDate); 0: unknown or not the leaf */
    bool has_ocsp;
    unsigned char ocsp_sha256[32]; /* of the OCSPResponse DER that decided (fresh or cached) */
};

/*
 * Validate leaf (with optional untrusted certificates a client sent along)
 * against t with options o (NULL: purpose ANY, no revocation, now).  *out
 * is cleared on entry (valid false, reason "internal").  The caller keeps
 * leaf and untrusted.
 *
 * Returns 0 when a decision was made (look at out->valid and out->reason;
 * a refusal is NOT an error), DZ_ERR_INVAL (t, leaf or out NULL),
 * DZ_ERR_NOMEM or DZ_ERR_CRYPTO (out->valid false).  Callers deny on any
 * non-zero return as well as on !out->valid.
 *
 * BLOCKING: with DZ_X509_REV_OCSP_CRL it may fetch (OCSP, CRL) with
 * dz_http_fetch_blocking, each fetch bounded by o->fetch_timeout_ms.  Call
 * from the gateway's blocking pool or a CLI, never a loop thread.
 * Thread-safe given an immutable trust (and a thread-safe cache).
 */
int dz_x509_validate(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                     const struct dz_x509_opts *o, struct dz_x509_result *out);

/*
 * The same check for a worker loop, where nothing may block or take long:
 * cached only.  It runs the very steps of dz_x509_validate, but may not
 * verify a signature the path validation has not remembered
 * (pki/chainsig.h: these exact certificate bytes under this exact issuer
 * key), ask an OCSP responder, fetch or read a CRL, or verify one.  Then
 * either:
 *   - it returns 0 with exactly the decision dz_x509_validate would make at
 *     this moment (the same out, reason and detail: a pass, or a refusal
 *     such as "expired" or "revoked" from a cached OCSP answer), or
 *   - it returns DZ_ERR_NOTFOUND, "not cached" (out->valid false, reason
 *     "not_cached", detail says what was missing): a signature of the path
 *     not in the memo (a chain or a certificate not validated before, or
 *     other bytes under the same names), in DZ_X509_REV_OCSP_CRL mode no
 *     answer for the leaf in o->ocsp_cache or one past its nextUpdate, or
 *     a trust with CRL files in a mode that reads them (a CRL's signature
 *     is verified at every use).  The caller then runs dz_x509_validate
 *     where it may block; nothing was decided.
 * Any other non-zero return is an error as for dz_x509_validate (a caller
 * may as well take it to the full check).  Never blocks on I/O; the locks
 * it takes (the memo's, the OCSP cache's, OpenSSL's store lock) are held
 * for a lookup.  Any thread.
 */
int dz_x509_validate_cached(const struct dz_x509_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                            const struct dz_x509_opts *o, struct dz_x509_result *out);

/*
 * Parse exactly one DER certificate of at most DZ_X509_MAX_CERT_DER bytes
 * (nothing trailing) into *out (caller frees with X509_free).  0,
 * DZ_ERR_TOOBIG, DZ_ERR_PARSE.  Pure; any thread (the login paths decode
 * the client's base64 first).
 */
int dz_x509_from_der(const unsigned char *der, size_t len, X509 **out);

/*
 * Read every certificate of a PEM or DER file (<= DZ_X509_MAX_FILE_CERTS,
 * each <= DZ_X509_MAX_CERT_DER) into *out (caller frees with
 * sk_X509_pop_free(.., X509_free)).  Same returns as trust_add_ca_file.
 * Blocking file I/O: start-up, CLI or pool.
 */
int dz_x509_load_file(const char *path, STACK_OF(X509) * *out);

#endif
