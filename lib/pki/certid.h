/*
 * certid.h - who a certificate names: the holder's FIN, role, display name
 * and the darvaza certificate policies it carries (DESIGN §2).
 *
 * The FIN is taken from the subject serialNumber attribute, written as an
 * ETSI EN 319 412-1 semantics identifier "PNOAZ-<FIN>" or as a bare FIN;
 * the FIN part is normalised to upper case (lib/base/fin.h).  A subject with no
 * serialNumber has no FIN; one with two serialNumber attributes, or a value
 * that is neither form, is malformed (never guessed at).
 *
 * The role is "judge" only when the certificate carries BOTH the judge
 * policy OID and a subject title of exactly "Judge"; otherwise "citizen".
 *
 * This module only reads a certificate that the caller has already parsed:
 * it never decides whether the certificate is trustworthy (that is
 * x509check.h, which calls this after path validation), does no I/O and
 * keeps no state.  Pure and thread-safe; callable from loop threads.
 */
#ifndef DZ_CERTID_H
#define DZ_CERTID_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#define DZ_CERTID_POLICY_CARD "1.3.6.1.4.1.55555.1.1.1"   /* e-signature card */
#define DZ_CERTID_POLICY_MOBILE "1.3.6.1.4.1.55555.1.1.2" /* mobile signature */
#define DZ_CERTID_POLICY_JUDGE "1.3.6.1.4.1.55555.1.2.1"  /* judge role */
#define DZ_CERTID_JUDGE_TITLE "Judge"
#define DZ_CERTID_FIN_PREFIX "PNOAZ-"

#define DZ_CERTID_MAX_DER (16 * 1024) /* the largest certificate accepted */
#define DZ_CERTID_NAME_MAX 128        /* bytes of name[] with the NUL */

struct dz_certid {
    bool has_fin;
    char fin[8];                   /* normalised FIN, "" when !has_fin */
    char role[16];                 /* "judge" | "citizen" */
    char name[DZ_CERTID_NAME_MAX]; /* subject CN as UTF-8, truncated, "" when absent;
                                    * control characters replaced by '?' */
    bool has_card_policy;          /* DZ_CERTID_POLICY_CARD present */
    bool has_mobile_policy;        /* DZ_CERTID_POLICY_MOBILE present */
    bool has_judge_policy;         /* DZ_CERTID_POLICY_JUDGE present */
    bool has_judge_title;          /* subject title == "Judge" */
};

/*
 * Fill *out from cert.  *out is cleared on entry (role "citizen").
 * Returns 0 (with or without a FIN: see out->has_fin), DZ_ERR_PARSE when
 * the subject serialNumber is present but not a FIN in either form, or
 * appears more than once, or the certificatePolicies extension is
 * malformed, DZ_ERR_NOMEM, DZ_ERR_INVAL (cert NULL).  On any error *out
 * is left cleared (no FIN, role "citizen", no name, no policies).
 * The caller keeps cert.
 */
int dz_certid_extract(X509 *cert, struct dz_certid *out);

/*
 * Parse DER (at most DZ_CERTID_MAX_DER bytes, nothing trailing) and extract
 * as above.  DZ_ERR_TOOBIG, DZ_ERR_PARSE (not one certificate), or the
 * returns of dz_certid_extract.  (The fuzz target's entry point.)
 */
int dz_certid_from_der(const unsigned char *der, size_t len, struct dz_certid *out);

/*
 * FIN from one serialNumber value s[0..len): "PNOAZ-" followed by 7
 * [0-9A-Za-z], or the 7 characters alone; written upper case into fin.
 * 0 or DZ_ERR_PARSE (fin is then "").
 */
int dz_certid_fin_from_serial(const char *s, size_t len, char fin[8]);

/* true when cert's certificatePolicies extension holds oid (dotted text).
 * false for a missing or malformed extension or a malformed oid. */
bool dz_certid_has_policy(X509 *cert, const char *oid);

#endif
