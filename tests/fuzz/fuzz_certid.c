/*
 * fuzz_certid.c - arbitrary bytes as a client's certificate (lib/pki/certid.c
 * through dz_certid_from_der, and dz_x509_from_der) or, when the first byte
 * is 0x01, as an OCSP responder's answer (dz_ocsp_response_check against a
 * fixed issuer and leaf).  Promises checked: a FIN is only ever reported in
 * normal form, "judge" only with both marks, errors leave no FIN behind,
 * and an OCSP answer is never accepted from bytes nobody signed with the
 * issuer's key (the key is made at start-up, so no input can carry a
 * valid signature: any 0 return is a bug).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/fin.h"
#include "pki/certid.h"
#include "pki/ocsp.h"
#include "pki/x509check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *issuer;
static X509 *leaf;

static X509 *mk(EVP_PKEY *key, EVP_PKEY *signer, X509 *iss, long serial, const char *cn)
{
    X509 *x = X509_new();

    if (x == NULL)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(iss ? iss : x));
    X509_set_pubkey(x, key);
    if (X509_sign(x, signer, EVP_sha256()) <= 0)
        abort();
    return x;
}

static void init(void)
{
    EVP_PKEY *ik;
    EVP_PKEY *lk;

    if (issuer != NULL)
        return;
    ik = EVP_EC_gen("P-256");
    lk = EVP_EC_gen("P-256");
    if (ik == NULL || lk == NULL)
        abort();
    issuer = mk(ik, ik, NULL, 1, "Fuzz CA");
    leaf = mk(lk, ik, issuer, 2, "Fuzz Leaf");
    EVP_PKEY_free(ik);
    EVP_PKEY_free(lk);
}

static void check_certid(const uint8_t *data, size_t size)
{
    struct dz_certid id;
    X509 *x = NULL;
    int rc;

    rc = dz_certid_from_der(data, size, &id);
    if (strcmp(id.role, "judge") != 0 && strcmp(id.role, "citizen") != 0)
        abort();
    if (rc != 0 && (id.has_fin || id.fin[0] != '\0' || strcmp(id.role, "citizen") != 0))
        abort();
    if (id.has_fin != (id.fin[0] != '\0'))
        abort();
    if (id.has_fin && !dz_fin_is_normal(id.fin))
        abort();
    if (strcmp(id.role, "judge") == 0 && !(id.has_judge_policy && id.has_judge_title))
        abort();
    if (memchr(id.name, '\0', sizeof(id.name)) == NULL)
        abort();

    /* The validator's own DER entry point must agree on what parses. */
    if (dz_x509_from_der(data, size, &x) == 0) {
        if (rc == DZ_ERR_TOOBIG)
            abort();
        X509_free(x);
    } else if (x != NULL) {
        abort();
    }
}

static void check_ocsp(const uint8_t *data, size_t size)
{
    struct dz_ocsp_answer a;

    init();
    if (dz_ocsp_response_check(data, size, NULL, leaf, issuer, 1700000000, NULL, &a) == 0)
        abort(); /* nobody else holds the issuer's key */
    if (a.status != DZ_OCSP_UNKNOWN || a.this_update != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 0x01)
        check_ocsp(data + 1, size - 1);
    else
        check_certid(data, size);
    return 0;
}
