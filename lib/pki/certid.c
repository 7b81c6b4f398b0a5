/*
 * certid.c - reads the holder's FIN, role, name and darvaza policies out of
 * an already parsed certificate; see certid.h.  Owns nothing beyond the
 * call.  It never decides trust (x509check.c does, before calling this),
 * never guesses a FIN out of a malformed serialNumber, and never logs a
 * subject (personal data).
 */
#include "pki/certid.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/fin.h"

#include "base/compat.h"

int dz_certid_fin_from_serial(const char *s, size_t len, char fin[8])
{
    const size_t plen = sizeof(DZ_CERTID_FIN_PREFIX) - 1;

    fin[0] = '\0';
    if (s == NULL)
        return DZ_ERR_PARSE;
    /* The semantics identifier prefix is exact (ETSI EN 319 412-1 writes it
     * upper case); only the FIN itself is normalised. */
    if (len == plen + DZ_FIN_LEN && memcmp(s, DZ_CERTID_FIN_PREFIX, plen) == 0) {
        s += plen;
        len -= plen;
    }
    if (len != DZ_FIN_LEN || dz_fin_normalize(s, len, fin) != 0) {
        fin[0] = '\0';
        return DZ_ERR_PARSE;
    }
    return 0;
}

/* The one value of attribute nid in name: 0 with *entry set, DZ_ERR_NOTFOUND,
 * or DZ_ERR_PARSE when it appears more than once (ambiguous: refused). */
static int single_entry(const X509_NAME *name, int nid, const ASN1_STRING **value)
{
    int idx;

    *value = NULL;
    idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0)
        return DZ_ERR_NOTFOUND;
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0)
        return DZ_ERR_PARSE;
    *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    return *value != NULL ? 0 : DZ_ERR_PARSE;
}

/* UTF-8 of an ASN.1 string into out (truncated at a character boundary,
 * control characters as '?').  Returns false when it cannot be converted. */
static bool to_utf8(const ASN1_STRING *v, char *out, size_t out_size)
{
    unsigned char *u = NULL;
    int n;
    size_t i;
    size_t len;

    out[0] = '\0';
    n = ASN1_STRING_to_UTF8(&u, v);
    if (n < 0)
        return false;
    len = (size_t)n;
    if (len > out_size - 1) {
        len = out_size - 1;
        while (len > 0 && (u[len] & 0xC0) == 0x80) /* don't cut a character */
            len--;
    }
    for (i = 0; i < len; i++)
        out[i] = (u[i] < 0x20 || u[i] == 0x7F) ? '?' : (char)u[i];
    out[len] = '\0';
    OPENSSL_free(u);
    return true;
}

static int policy_oids(X509 *cert, struct dz_certid *out)
{
    CERTIFICATEPOLICIES *cp = NULL;
    ASN1_OBJECT *card = NULL;
    ASN1_OBJECT *mobile = NULL;
    ASN1_OBJECT *judge = NULL;
    int crit = -1;
    int rc = DZ_ERR_PARSE;
    int i;

    cp = X509_get_ext_d2i(cert, NID_certificate_policies, &crit, NULL);
    if (cp == NULL) {
        rc = crit == -1 ? 0 : DZ_ERR_PARSE; /* absent, or malformed / repeated */
        goto out;
    }
    card = OBJ_txt2obj(DZ_CERTID_POLICY_CARD, 1);
    mobile = OBJ_txt2obj(DZ_CERTID_POLICY_MOBILE, 1);
    judge = OBJ_txt2obj(DZ_CERTID_POLICY_JUDGE, 1);
    if (card == NULL || mobile == NULL || judge == NULL) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < sk_POLICYINFO_num(cp); i++) {
        const ASN1_OBJECT *id = sk_POLICYINFO_value(cp, i)->policyid;
        if (OBJ_cmp(id, card) == 0)
            out->has_card_policy = true;
        else if (OBJ_cmp(id, mobile) == 0)
            out->has_mobile_policy = true;
        else if (OBJ_cmp(id, judge) == 0)
            out->has_judge_policy = true;
    }
    rc = 0;
out:
    ASN1_OBJECT_free(card);
    ASN1_OBJECT_free(mobile);
    ASN1_OBJECT_free(judge);
    CERTIFICATEPOLICIES_free(cp);
    return rc;
}

static void clear(struct dz_certid *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->role, "citizen", sizeof("citizen"));
}

static int extract(X509 *cert, struct dz_certid *out)
{
    const X509_NAME *subject;
    const ASN1_STRING *v = NULL;
    char text[64];
    int rc;

    if (cert == NULL)
        return DZ_ERR_INVAL;
    subject = X509_get_subject_name(cert);
    if (subject == NULL)
        return DZ_ERR_PARSE;

    rc = policy_oids(cert, out);
    if (rc != 0)
        return rc;

    if (single_entry(subject, NID_commonName, &v) == 0)
        (void)to_utf8(v, out->name, sizeof(out->name));

    /* The judge role needs both marks: the policy alone could be a
     * mis-issued clerk's certificate, the title alone is just text. */
    rc = single_entry(subject, NID_title, &v);
    if (rc == 0 && to_utf8(v, text, sizeof(text)) && strcmp(text, DZ_CERTID_JUDGE_TITLE) == 0)
        out->has_judge_title = true;
    if (out->has_judge_policy && out->has_judge_title)
        memcpy(out->role, "judge", sizeof("judge"));

    rc = single_entry(subject, NID_serialNumber, &v);
    if (rc == DZ_ERR_NOTFOUND)
        return 0; /* no FIN: the caller decides whether that is acceptable */
    if (rc != 0)
        return rc;
    /* serialNumber is a PrintableString; anything else (or an embedded NUL)
     * fails the FIN syntax check below. */
    if (ASN1_STRING_length(v) <= 0 || ASN1_STRING_length(v) > 32)
        return DZ_ERR_PARSE;
    rc = dz_certid_fin_from_serial((const char *)ASN1_STRING_get0_data(v),
                                   (size_t)ASN1_STRING_length(v), out->fin);
    if (rc != 0)
        return rc;
    out->has_fin = true;
    return 0;
}

int dz_certid_extract(X509 *cert, struct dz_certid *out)
{
    int rc;

    clear(out);
    rc = extract(cert, out);
    if (rc != 0)
        clear(out); /* a certificate we could not read names nobody: no role either */
    return rc;
}

int dz_certid_from_der(const unsigned char *der, size_t len, struct dz_certid *out)
{
    const unsigned char *p = der;
    X509 *cert = NULL;
    int rc;

    clear(out);
    if (der == NULL || len == 0)
        return DZ_ERR_PARSE;
    if (len > DZ_CERTID_MAX_DER)
        return DZ_ERR_TOOBIG;
    cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL || p != der + len) {
        ERR_clear_error();
        rc = DZ_ERR_PARSE;
        goto out;
    }
    rc = dz_certid_extract(cert, out);
out:
    X509_free(cert);
    return rc;
}

bool dz_certid_has_policy(X509 *cert, const char *oid)
{
    CERTIFICATEPOLICIES *cp = NULL;
    ASN1_OBJECT *want = NULL;
    bool found = false;
    int i;

    if (cert == NULL || oid == NULL)
        return false;
    want = OBJ_txt2obj(oid, 1);
    if (want == NULL) {
        ERR_clear_error();
        goto out;
    }
    cp = X509_get_ext_d2i(cert, NID_certificate_policies, NULL, NULL);
    if (cp == NULL)
        goto out;
    for (i = 0; i < sk_POLICYINFO_num(cp) && !found; i++)
        found = OBJ_cmp(sk_POLICYINFO_value(cp, i)->policyid, want) == 0;
out:
    CERTIFICATEPOLICIES_free(cp);
    ASN1_OBJECT_free(want);
    return found;
}
