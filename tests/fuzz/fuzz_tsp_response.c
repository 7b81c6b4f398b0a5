/*
 * fuzz_tsp_response.c - arbitrary bytes as the DER TimeStampResp a TSA
 * sends back, judged by dz_tsp_response_check: what dz_tsp_stamp (the
 * gateway's signed-body and mobile-signing steps) runs on the TSA's answer
 * before it keeps the token; an accepted token is then checked again by
 * dz_tsp_verify_token without nonce, the stored-token path lib/pki/cades.c
 * takes when it verifies a level-T signature.
 *
 * Fixed material (pki_fixture.h, made by make_pki_corpus.sh from the demo
 * PKI and `darvaza-peer tsa`): the demo root as the only trust anchor (as
 * the e-court peer trusts it), the TSA certificate, and the SHA-256 digest
 * and nonce of the TimeStampReq the seeds answer.  Chains are verified at
 * the time the seeds were made (FX_NOW), so the replay does not expire.
 * An input that parses as a TimeStampResp with a token is then re-signed
 * with the TSA's key (its TSTInfo as mutated, the certificates it carried,
 * a fresh ESS signing-certificate-v2) and checked again: without that the
 * fuzzer would never get past the signature to the imprint, nonce, version
 * and genTime checks behind it.
 *
 * Promises checked besides "no crash, no leak":
 *  - an accepted answer parses as a whole, has status granted (or
 *    grantedWithMods) and carries exactly the token handed back; the token's
 *    TSTInfo is over SHA-256 of exactly our digest, with our nonce; it is
 *    signed by the demo TSA (info names that certificate, and CMS verifies
 *    the signature with only that certificate); its genTime is readable;
 *    and the stored-token check accepts it too, with the same info;
 *  - a refused answer hands back no token, clears info and says why;
 *  - every committed seed gets the verdict recorded for it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509_vfy.h>

#include "base/err.h"
#include "base/secret.h"
#include "pki/tsp.h"

#define FX_TSP /* the TSP half of the fixture */
#include "pki_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    X509_STORE *trust;
    X509 *tsa;
    EVP_PKEY *tsa_key;
    unsigned char tsa_sha256[32];
} fx;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_tsp_response: %s\n", what);
    abort();
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (!x)
        fail("fixture certificate does not parse");
    return x;
}

static void init(void)
{
    X509 *root = pem_cert(FX_ROOT_PEM);
    unsigned char *der = NULL;
    int n;

    fx.trust = X509_STORE_new();
    if (!fx.trust || X509_STORE_add_cert(fx.trust, root) != 1)
        fail("no trust store");
    X509_free(root);
    {
        const char *pol = "1.3.6.1.4.1.55555.3.1"; /* the demo TSA's, as the e-court is given */
        if (dz_tsp_trust_set_policies(fx.trust, &pol, 1) != 0)
            fail("cannot set the TSA policy");
    }
    /* Chains are judged at the seeds' time (the store's parameters are
     * what each verification context starts from). */
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(fx.trust), (time_t)FX_NOW);
    fx.tsa = pem_cert(FX_TSA_PEM);
    {
        BIO *b = BIO_new_mem_buf(FX_TSA_KEY_PEM, -1);
        fx.tsa_key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!fx.tsa_key)
            fail("fixture key does not parse");
    }
    n = i2d_X509(fx.tsa, &der);
    if (n <= 0)
        fail("cannot encode the TSA certificate");
    dz_sha256(der, (size_t)n, fx.tsa_sha256);
    OPENSSL_free(der);
}

/* The token's signature checked with the TSA certificate alone. */
static void check_signature(const unsigned char *tok, size_t tok_len)
{
    const unsigned char *p = tok;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)tok_len);
    STACK_OF(X509) *certs = sk_X509_new_null();

    if (!cms || !certs || !sk_X509_push(certs, fx.tsa))
        fail("token does not parse as CMS");
    if (CMS_verify(cms, certs, NULL, NULL, NULL,
                   CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1)
        fail("accepted token is not signed by the demo TSA");
    sk_X509_free(certs);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
}

static void check_accepted(const uint8_t *data, size_t size, const unsigned char *tok,
                           size_t tok_len, const struct dz_tsp_info *info)
{
    const unsigned char *p = data;
    TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)size);
    const ASN1_INTEGER *st;
    unsigned char *der = NULL;
    int n;
    TS_TST_INFO *tst;
    TS_MSG_IMPRINT *mi;
    const ASN1_OBJECT *oid = NULL;
    const ASN1_OCTET_STRING *msg;
    const ASN1_INTEGER *nonce;
    BIGNUM *want = BN_bin2bn(FX_TSP_NONCE, sizeof(FX_TSP_NONCE), NULL);
    BIGNUM *got = NULL;
    struct dz_tsp_info again;

    if (!resp || p != data + size)
        fail("accepted answer does not parse as a whole");
    st = TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp));
    if (!st || (ASN1_INTEGER_get(st) != 0 && ASN1_INTEGER_get(st) != 1))
        fail("accepted answer is not granted");
    n = TS_RESP_get_token(resp) ? i2d_PKCS7(TS_RESP_get_token(resp), &der) : -1;
    if (n <= 0 || (size_t)n != tok_len || memcmp(der, tok, tok_len) != 0)
        fail("the token handed back is not the answer's");
    tst = TS_RESP_get_tst_info(resp);
    mi = tst ? TS_TST_INFO_get_msg_imprint(tst) : NULL;
    if (!mi)
        fail("accepted token has no imprint");
    X509_ALGOR_get0(&oid, NULL, NULL, TS_MSG_IMPRINT_get_algo(mi));
    msg = TS_MSG_IMPRINT_get_msg(mi);
    if (!oid || OBJ_obj2nid(oid) != NID_sha256 || !msg || ASN1_STRING_length(msg) != 32 ||
        memcmp(ASN1_STRING_get0_data(msg), FX_TSP_DIGEST, 32) != 0)
        fail("accepted token is not over our SHA-256 digest");
    nonce = TS_TST_INFO_get_nonce(tst);
    got = nonce ? ASN1_INTEGER_to_BN(nonce, NULL) : NULL;
    if (!want || !got || BN_cmp(want, got) != 0)
        fail("accepted token does not carry our nonce");
    if (memcmp(info->tsa_sha256, fx.tsa_sha256, 32) != 0)
        fail("accepted token is not from the demo TSA");
    if (info->gen_time <= 0)
        fail("accepted token without a genTime");
    check_signature(tok, tok_len);
    if (dz_tsp_verify_token(tok, tok_len, FX_TSP_DIGEST, NULL, fx.trust, &again, NULL, 0) != 0 ||
        memcmp(&again, info, sizeof(again)) != 0)
        fail("the stored-token check disagrees");
    BN_free(got);
    BN_free(want);
    OPENSSL_free(der);
    TS_RESP_free(resp);
}

static const struct fx_tsp_seed *seed_of(const uint8_t *data, size_t size)
{
    unsigned char sha[32];
    char hex[65];

    dz_sha256(data, size, sha);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha[i]);
    for (size_t i = 0; i < sizeof(FX_TSP_SEEDS) / sizeof(FX_TSP_SEEDS[0]); i++)
        if (strcmp(FX_TSP_SEEDS[i].sha256, hex) == 0)
            return &FX_TSP_SEEDS[i];
    return NULL;
}

/* An empty id-ct-TSTInfo content for p7 (PKCS7_content_new knows only the
 * PKCS#7 types): what OpenSSL's TSA does. */
static bool tst_content_new(PKCS7 *p7)
{
    PKCS7 *c = PKCS7_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

    if (!c || !os || !(c->d.other = ASN1_TYPE_new())) {
        PKCS7_free(c);
        ASN1_OCTET_STRING_free(os);
        return false;
    }
    c->type = OBJ_nid2obj(NID_id_smime_ct_TSTInfo);
    ASN1_TYPE_set(c->d.other, V_ASN1_OCTET_STRING, os);
    if (!PKCS7_set_content(p7, c)) {
        PKCS7_free(c);
        return false;
    }
    return true;
}

/* A SignedData over tst_der[0..len) by the demo TSA, as OpenSSL's TSA
 * makes it (content type and ESS signing-certificate-v2 attributes), with
 * the certificates of certs; NULL on failure. */
static PKCS7 *sign_tst(const unsigned char *tst_der, int len, const STACK_OF(X509) * certs)
{
    PKCS7 *p7 = PKCS7_new();
    PKCS7_SIGNER_INFO *si = NULL;
    ESS_SIGNING_CERT_V2 *sc = NULL;
    unsigned char *sc_der = NULL;
    ASN1_STRING *seq = NULL;
    BIO *b = NULL;
    int sc_len = 0;
    bool ok = false;

    if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed))
        goto out;
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i)))
            goto out;
    si = PKCS7_add_signature(p7, fx.tsa, fx.tsa_key, EVP_sha256());
    if (!si || !PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                           OBJ_nid2obj(NID_id_smime_ct_TSTInfo)))
        goto out;
    sc = OSSL_ESS_signing_cert_v2_new_init(EVP_sha256(), fx.tsa, NULL, 0);
    sc_len = sc ? i2d_ESS_SIGNING_CERT_V2(sc, &sc_der) : -1;
    seq = sc_len > 0 ? ASN1_STRING_new() : NULL;
    if (!seq || !ASN1_STRING_set(seq, sc_der, sc_len) ||
        !PKCS7_add_signed_attribute(si, NID_id_smime_aa_signingCertificateV2, V_ASN1_SEQUENCE, seq))
        goto out;
    seq = NULL; /* the attribute's now */
    if (!tst_content_new(p7) || !(b = PKCS7_dataInit(p7, NULL)) ||
        BIO_write(b, tst_der, len) != len || !PKCS7_dataFinal(p7, b))
        goto out;
    ok = true;
out:
    BIO_free_all(b);
    ASN1_STRING_free(seq);
    OPENSSL_free(sc_der);
    ESS_SIGNING_CERT_V2_free(sc);
    if (!ok) {
        PKCS7_free(p7);
        p7 = NULL;
    }
    return p7;
}

/* The input's TimeStampResp with its token re-signed by the demo TSA (DER,
 * OPENSSL_free), or NULL when the input is no TimeStampResp with a token. */
static unsigned char *resign(const uint8_t *data, size_t size, size_t *out_len)
{
    const unsigned char *p = data;
    TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)size);
    PKCS7 *old = resp ? TS_RESP_get_token(resp) : NULL;
    TS_TST_INFO *tst = resp ? TS_RESP_get_tst_info(resp) : NULL;
    TS_TST_INFO *tst_copy = NULL;
    PKCS7 *p7 = NULL;
    unsigned char *tst_der = NULL;
    unsigned char *der = NULL;
    int tst_len = -1;
    int n = 0;

    if (old && tst && PKCS7_type_is_signed(old))
        tst_len = i2d_TS_TST_INFO(tst, &tst_der);
    if (tst_len > 0)
        p7 = sign_tst(tst_der, tst_len, old->d.sign->cert);
    if (p7)
        tst_copy = TS_TST_INFO_dup(tst);
    if (tst_copy) {
        TS_RESP_set_tst_info(resp, p7, tst_copy); /* takes both */
        p7 = NULL;
        n = i2d_TS_RESP(resp, &der);
    }
    PKCS7_free(p7);
    OPENSSL_free(tst_der);
    TS_RESP_free(resp);
    ERR_clear_error();
    if (n <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    *out_len = (size_t)n;
    return der;
}

static void judge(const uint8_t *data, size_t size, const struct fx_tsp_seed *seed)
{
    unsigned char *tok = NULL;
    size_t tok_len = 0;
    struct dz_tsp_info info, zero;
    char detail[160];
    int rc;

    /* No clock check (0): the corpus's tokens keep the genTime they were
     * made with. */
    rc = dz_tsp_response_check(data, size, FX_TSP_DIGEST, FX_TSP_NONCE, fx.trust, 0, &tok, &tok_len,
                               &info, detail, sizeof(detail));
    if (rc == 0) {
        if (!tok || tok_len == 0)
            fail("accepted without a token");
        check_accepted(data, size, tok, tok_len, &info);
    } else {
        memset(&zero, 0, sizeof(zero));
        if (tok || tok_len || memcmp(&info, &zero, sizeof(info)) != 0)
            fail("a refused answer left a token or info behind");
        if (detail[0] == '\0')
            fail("a refused answer without a reason");
    }
    if (seed && rc != seed->rc) {
        fprintf(stderr, "%s: %d (%s), recorded %d\n", seed->name, rc, detail, seed->rc);
        fail("a seed's verdict changed");
    }
    OPENSSL_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    unsigned char *again;
    size_t again_len = 0;

    if (!ready) {
        init();
        ready = true;
    }
    judge(data, size, seed_of(data, size));
    again = resign(data, size, &again_len);
    if (again) {
        judge(again, again_len, NULL);
        OPENSSL_free(again);
    }
    return 0;
}
