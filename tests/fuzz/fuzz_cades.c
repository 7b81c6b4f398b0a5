/*
 * fuzz_cades.c - arbitrary bytes as a detached CAdES signature
 * (dz_cades_verify over a fixed document, with an empty trust so that no
 * chain can ever be found) or, when the first byte is 0x01, as an RFC 3161
 * time-stamp token (dz_tsp_verify_token against an empty store) and as a
 * level-B signature to which a token is added.  A signature is also
 * cleaned of its unsigned attributes as the gateway does before forwarding
 * (dz_cades_clean_unsigned).  Promises checked: a report always has an
 * indication; nothing is ever TOTAL_PASSED (no anchor exists); a token is
 * never accepted (no TSA is trusted), so a cleaned signature keeps no
 * time-stamp, parses again and has no unsigned attribute left; no crash,
 * no leak.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/x509_vfy.h>

#include "base/err.h"
#include "pki/cades.h"
#include "pki/tsp.h"
#include "pki/x509check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char DOC[] = "{\"case\":\"2-1/2025\",\"party\":\"5HK2J7Q\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dz_x509_trust *trust;
    static X509_STORE *store;
    struct dz_cades_verify_opts o;
    struct dz_cades_report r;
    struct dz_tsp_info info;
    unsigned char d[32] = {0};
    int rc;

    if (!trust && dz_x509_trust_new(&trust) != 0)
        abort();
    if (!store && !(store = X509_STORE_new()))
        abort();
    if (size > 0 && data[0] == 0x01) {
        unsigned char *out = NULL;
        size_t out_len = 0;
        if (dz_tsp_verify_token(data + 1, size - 1, d, NULL, store, &info, NULL, 0) == 0)
            abort();
        if (dz_cades_add_timestamp(data + 1, size - 1, data + 1, size - 1, &out, &out_len) == 0)
            OPENSSL_free(out);
        (void)dz_cades_signature_digest(data + 1, size - 1, d);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    o.anchors[0].trust = trust;
    o.nanchors = 1;
    o.tsa_trust = store;
    {
        unsigned char *out = NULL;
        size_t out_len = 0;
        bool kept = false;
        unsigned removed = 0;
        if (dz_cades_clean_unsigned(data, size, store, 0, &out, &out_len, &kept, &removed) == 0) {
            const unsigned char *p = out;
            CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)out_len);
            STACK_OF(CMS_SignerInfo) *sis = cms ? CMS_get0_SignerInfos(cms) : NULL;
            if (kept || !cms || p != out + out_len || sk_CMS_SignerInfo_num(sis) != 1 ||
                CMS_unsigned_get_attr_count(sk_CMS_SignerInfo_value(sis, 0)) > 0)
                abort();
            CMS_ContentInfo_free(cms);
            OPENSSL_free(out);
        }
    }
    rc = dz_cades_verify(DOC, sizeof(DOC) - 1, data, size, &o, &r);
    if (rc == 0) {
        json_t *j;
        if (!r.indication || strcmp(r.indication, "TOTAL_PASSED") == 0)
            abort();
        j = dz_cades_report_json(&r);
        json_decref(j);
    }
    return 0;
}
