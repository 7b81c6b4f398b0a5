/*
 * tsp.c - RFC 3161 client (see tsp.h): requests, the fetch, and the token
 * check, all with OpenSSL's TS API.  It never trusts a token whose chain,
 * EKU, imprint or nonce it has not checked, and never keeps any state.
 */
#include "pki/tsp.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "pki/keyfloor.h"

#include "base/compat.h"

static void set_detail(char *d, size_t n, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    if (!d || !n)
        return;
    if (r)
        snprintf(d, n, "%s: %s", what, r);
    else
        snprintf(d, n, "%s", what);
}

int dz_tsp_trust_load(const char *pem_path, X509_STORE **out)
{
    X509_STORE *st = NULL;
    FILE *f = NULL;
    X509 *x = NULL;
    int n = 0;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    f = fopen(pem_path, "r");
    if (!f)
        return DZ_ERR_IO;
    st = X509_STORE_new();
    if (!st || dz_keyfloor_store_set(st, &dz_keyfloor_default) != 0)
        goto out;
    /* Every certificate of the bundle is an anchor, the TSA's issuing CA
     * included: trusting only the root above it would also trust every
     * other CA under that root (the card and mobile-signature CAs) to make
     * time-stamping authorities. */
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) != 1) {
            rc = DZ_ERR_CRYPTO;
            goto out;
        }
        X509_free(x);
        x = NULL;
        if (++n > 64) {
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
    }
    ERR_clear_error();
    if (n == 0) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    *out = st;
    st = NULL;
    rc = 0;
out:
    X509_free(x);
    X509_STORE_free(st);
    fclose(f);
    return rc;
}

/* ---- the accepted TSA policies of a store (ex_data) ---- */

struct tsa_policies {
    size_t n;
    ASN1_OBJECT *oid[DZ_TSP_MAX_POLICIES];
};

static pthread_once_t pol_once = PTHREAD_ONCE_INIT;
static int pol_idx = -1;

static void policies_free(struct tsa_policies *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        ASN1_OBJECT_free(p->oid[i]);
    free(p);
}

static void pol_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    policies_free(ptr);
}

static void pol_idx_init(void)
{
    pol_idx = X509_STORE_get_ex_new_index(0, NULL, NULL, NULL, pol_free_cb);
}

int dz_tsp_trust_set_policies(X509_STORE *st, const char *const *oids, size_t n)
{
    struct tsa_policies *p;
    void *old;

    if (!st || !oids || n == 0 || n > DZ_TSP_MAX_POLICIES)
        return DZ_ERR_INVAL;
    pthread_once(&pol_once, pol_idx_init);
    if (pol_idx < 0)
        return DZ_ERR_NOMEM;
    p = calloc(1, sizeof(*p));
    if (!p)
        return DZ_ERR_NOMEM;
    for (; p->n < n; p->n++) {
        /* Numeric only (no_name 1): a name would depend on OpenSSL's table. */
        p->oid[p->n] = oids[p->n] ? OBJ_txt2obj(oids[p->n], 1) : NULL;
        if (!p->oid[p->n]) {
            ERR_clear_error();
            policies_free(p);
            return DZ_ERR_INVAL;
        }
    }
    old = X509_STORE_get_ex_data(st, pol_idx);
    if (X509_STORE_set_ex_data(st, pol_idx, p) != 1) {
        ERR_clear_error();
        policies_free(p);
        return DZ_ERR_NOMEM;
    }
    policies_free(old);
    return 0;
}

/* The token's TSTInfo.policy among those st accepts?  detail says why not. */
static bool policy_ok(X509_STORE *st, TS_TST_INFO *tst, char *detail, size_t detail_len)
{
    const struct tsa_policies *p = NULL;
    const ASN1_OBJECT *pol = TS_TST_INFO_get_policy_id(tst);
    char txt[96];

    pthread_once(&pol_once, pol_idx_init);
    if (pol_idx >= 0)
        p = X509_STORE_get_ex_data(st, pol_idx);
    for (size_t i = 0; p && pol && i < p->n; i++) {
        if (OBJ_cmp(p->oid[i], pol) == 0)
            return true;
    }
    if (detail && detail_len) {
        if (!p)
            snprintf(detail, detail_len, "policy: no TSA policy is accepted (none configured)");
        else if (!pol || OBJ_obj2txt(txt, sizeof(txt), pol, 1) <= 0)
            snprintf(detail, detail_len, "policy: the token names no readable TSA policy");
        else
            snprintf(detail, detail_len, "policy: the token's TSA policy %s is not accepted", txt);
    }
    return false;
}

static TS_REQ *make_req(const unsigned char digest[32], unsigned char nonce[8])
{
    TS_REQ *req = TS_REQ_new();
    TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *n = NULL;
    bool ok = false;

    if (!req || !mi || !alg || dz_random(nonce, 8) != 0)
        goto out;
    nonce[0] &= 0x7f; /* a positive INTEGER of fixed size */
    nonce[0] |= 0x01;
    bn = BN_bin2bn(nonce, 8, NULL);
    n = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!n || X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
        TS_REQ_set_version(req, 1) != 1 || TS_MSG_IMPRINT_set_algo(mi, alg) != 1 ||
        TS_MSG_IMPRINT_set_msg(mi, (unsigned char *)digest, 32) != 1 ||
        TS_REQ_set_msg_imprint(req, mi) != 1 || TS_REQ_set_nonce(req, n) != 1 ||
        TS_REQ_set_cert_req(req, 1) != 1)
        goto out;
    ok = true;
out:
    BN_free(bn);
    ASN1_INTEGER_free(n);
    X509_ALGOR_free(alg);
    TS_MSG_IMPRINT_free(mi);
    if (!ok) {
        TS_REQ_free(req);
        return NULL;
    }
    return req;
}

int dz_tsp_request_der(const unsigned char digest[32], unsigned char nonce[8], unsigned char **out,
                       size_t *out_len)
{
    TS_REQ *req = make_req(digest, nonce);
    unsigned char *der = NULL;
    int len;

    *out = NULL;
    *out_len = 0;
    if (!req)
        return DZ_ERR_CRYPTO;
    len = i2d_TS_REQ(req, &der);
    TS_REQ_free(req);
    if (len <= 0)
        return DZ_ERR_CRYPTO;
    *out = der;
    *out_len = (size_t)len;
    return 0;
}

int64_t dz_tsp_time_unix(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void fill_info(PKCS7 *tok, TS_TST_INFO *tst, X509_STORE *trust, struct dz_tsp_info *info)
{
    X509 *signer = NULL;
    const ASN1_INTEGER *serial = TS_TST_INFO_get_serial(tst);
    BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    info->gen_time = dz_tsp_time_unix(TS_TST_INFO_get_time(tst));
    if (hex)
        snprintf(info->serial, sizeof(info->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    /* Already verified by TS_RESP_verify_token: this only finds the signer. */
    if (TS_RESP_verify_signature(tok, NULL, trust, &signer) == 1 && signer) {
        unsigned char *der = NULL;
        int n = i2d_X509(signer, &der);
        if (n > 0)
            dz_sha256(der, (size_t)n, info->tsa_sha256);
        OPENSSL_free(der);
        X509_NAME_get_text_by_NID(X509_get_subject_name(signer), NID_commonName, info->tsa_name,
                                  sizeof(info->tsa_name));
    }
    X509_free(signer);
    ERR_clear_error();
}

/*
 * The floor (keyfloor.h) on a token that OpenSSL has verified: the token's
 * own signature (digest and signature algorithm of its one SignerInfo, the
 * hashes of its ESS signing-certificate-v2) and
 * every certificate from the TSA's signer up to the anchor (key; signature
 * but the anchor's).  OpenSSL's security level on the store already
 * refused the grossest cases during TS_RESP_verify_token.  0 or
 * DZ_ERR_DENIED with detail.
 */
static int token_floor(PKCS7 *tok, X509_STORE *trust, char *detail, size_t detail_len)
{
    const struct dz_keyfloor *f = dz_keyfloor_store_get(trust);
    STACK_OF(PKCS7_SIGNER_INFO) *sis = PKCS7_get_signer_info(tok);
    PKCS7_SIGNER_INFO *si =
        sk_PKCS7_SIGNER_INFO_num(sis) == 1 ? sk_PKCS7_SIGNER_INFO_value(sis, 0) : NULL;
    X509_STORE_CTX *vc = NULL;
    STACK_OF(X509) *chain = NULL;
    X509 *signer = NULL;
    ASN1_TYPE *ess;
    const char *weak;
    char why[160];
    int depth = 0;
    int rc = DZ_ERR_DENIED;

    if (f->off)
        return 0;
    if (!si || !si->digest_alg || !dz_keyfloor_md_ok(f, OBJ_obj2nid(si->digest_alg->algorithm))) {
        set_detail(detail, detail_len,
                   "weak_signature: the token's digest is not SHA-224 or stronger");
        goto out;
    }
    if (!dz_keyfloor_sigalg_ok(f, si->digest_enc_alg, true, why, sizeof(why))) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "weak_signature: time-stamp token: %s", why);
        goto out;
    }
    /* What binds the token to its TSA's certificate (RFC 5816): a
     * signing-certificate-v2 whose hashes are held to the floor.  A token
     * with only the v1 attribute names its certificate by SHA-1 alone, so
     * accepting it would leave the floor on v2 a door beside the wall. */
    ess = PKCS7_get_signed_attribute(si, NID_id_smime_aa_signingCertificateV2);
    if (!ess || ess->type != V_ASN1_SEQUENCE) {
        set_detail(detail, detail_len,
                   "weak_signature: the token names its TSA's certificate by SHA-1 only (no "
                   "signing-certificate-v2)");
        goto out;
    }
    if (!dz_keyfloor_ess_v2_ok(f, ASN1_STRING_get0_data(ess->value.sequence),
                               (size_t)ASN1_STRING_length(ess->value.sequence), why, sizeof(why))) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "weak_signature: time-stamp token: %s", why);
        goto out;
    }
    if (TS_RESP_verify_signature(tok, NULL, trust, &signer) != 1 || !signer) {
        set_detail(detail, detail_len, "time-stamp token refused");
        goto out;
    }
    vc = X509_STORE_CTX_new();
    if (!vc || X509_STORE_CTX_init(vc, trust, signer, tok->d.sign->cert) != 1 ||
        X509_verify_cert(vc) != 1 || !(chain = X509_STORE_CTX_get1_chain(vc))) {
        set_detail(detail, detail_len, "time-stamp token refused");
        goto out;
    }
    weak = dz_keyfloor_chain(f, chain, &depth, why, sizeof(why));
    if (weak) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "%s: TSA %s (depth %d)", weak, why, depth);
        goto out;
    }
    rc = 0;
out:
    sk_X509_pop_free(chain, X509_free);
    X509_STORE_CTX_free(vc);
    X509_free(signer);
    ERR_clear_error();
    return rc;
}

/* The checks shared by fresh and stored tokens; ctx carries the imprint
 * (and nonce) to compare with and is consumed. */
static int verify_with(TS_VERIFY_CTX *ctx, PKCS7 *tok, X509_STORE *trust, struct dz_tsp_info *info,
                       char *detail, size_t detail_len)
{
    TS_TST_INFO *tst = NULL;
    const X509_ALGOR *alg;
    const ASN1_OBJECT *oid = NULL;
    int rc = DZ_ERR_DENIED;

    X509_STORE_up_ref(trust); /* the context frees its store */
    TS_VERIFY_CTX_set_store(ctx, trust);
    tst = PKCS7_to_TS_TST_INFO(tok);
    if (!tst) {
        set_detail(detail, detail_len, "not a time-stamp token");
        rc = DZ_ERR_PARSE;
        goto out;
    }
    alg = TS_MSG_IMPRINT_get_algo(TS_TST_INFO_get_msg_imprint(tst));
    if (alg)
        X509_ALGOR_get0(&oid, NULL, NULL, alg);
    if (!oid || OBJ_obj2nid(oid) != NID_sha256) {
        set_detail(detail, detail_len, "the token's imprint is not SHA-256");
        goto out;
    }
    if (TS_RESP_verify_token(ctx, tok) != 1) {
        const char *data = NULL;
        int eflags = 0;
        unsigned long e = ERR_peek_last_error_data(&data, &eflags);

        /* A TSA path refused by OpenSSL (its security level included) says
         * why in the error data ("Verify error:EE certificate key too
         * weak"). */
        if (detail && detail_len && ERR_GET_LIB(e) == ERR_LIB_TS &&
            ERR_GET_REASON(e) == TS_R_CERTIFICATE_VERIFY_ERROR && data && (eflags & ERR_TXT_STRING))
            snprintf(detail, detail_len, "time-stamp token refused: %s", data);
        else
            set_detail(detail, detail_len, "time-stamp token refused");
        goto out;
    }
    rc = token_floor(tok, trust, detail, detail_len);
    if (rc != 0)
        goto out;
    rc = DZ_ERR_DENIED;
    /* After the signature: only a token the TSA truly made is judged by
     * the promise it names. */
    if (!policy_ok(trust, tst, detail, detail_len))
        goto out;
    fill_info(tok, tst, trust, info);
    if (info->gen_time <= 0) {
        set_detail(detail, detail_len, "the token's genTime cannot be read");
        goto out;
    }
    rc = 0;
out:
    if (rc)
        memset(info, 0, sizeof(*info)); /* filled on success only */
    TS_TST_INFO_free(tst);
    TS_VERIFY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static PKCS7 *token_parse(const unsigned char *token, size_t len)
{
    const unsigned char *p = token;
    PKCS7 *tok;

    if (!token || len == 0 || len > DZ_TSP_MAX_TOKEN)
        return NULL;
    tok = d2i_PKCS7(NULL, &p, (long)len);
    if (tok && p != token + len) {
        PKCS7_free(tok);
        return NULL;
    }
    if (tok && !PKCS7_type_is_signed(tok)) {
        PKCS7_free(tok);
        return NULL;
    }
    return tok;
}

int dz_tsp_verify_token(const unsigned char *token, size_t len, const unsigned char digest[32],
                        const unsigned char *nonce, X509_STORE *trust, struct dz_tsp_info *info,
                        char *detail, size_t detail_len)
{
    PKCS7 *tok = NULL;
    TS_VERIFY_CTX *ctx = NULL;
    unsigned char *imp = NULL;
    int rc;

    memset(info, 0, sizeof(*info));
    if (detail && detail_len)
        detail[0] = '\0';
    if (!digest || !trust)
        return DZ_ERR_INVAL;
    tok = token_parse(token, len);
    if (!tok) {
        set_detail(detail, detail_len, "not a time-stamp token");
        ERR_clear_error();
        return len > DZ_TSP_MAX_TOKEN ? DZ_ERR_TOOBIG : DZ_ERR_PARSE;
    }
    if (nonce) {
        /* A fresh answer: build the context from the request it answers,
         * so the nonce is compared too. */
        unsigned char n8[8];
        TS_REQ *req = make_req(digest, n8);
        BIGNUM *bn = BN_bin2bn(nonce, 8, NULL);
        ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;

        if (req && ai && TS_REQ_set_nonce(req, ai) == 1)
            ctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
        TS_REQ_free(req);
        ASN1_INTEGER_free(ai);
        BN_free(bn);
        if (ctx)
            TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT |
                                             TS_VFY_NONCE);
    } else {
        ctx = TS_VERIFY_CTX_new();
        imp = OPENSSL_memdup(digest, 32);
        if (ctx && imp) {
            TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
            TS_VERIFY_CTX_set_imprint(ctx, imp, 32);
            imp = NULL;
        }
    }
    if (!ctx) {
        OPENSSL_free(imp);
        PKCS7_free(tok);
        return DZ_ERR_NOMEM;
    }
    rc = verify_with(ctx, tok, trust, info, detail, detail_len);
    PKCS7_free(tok);
    return rc;
}

int dz_tsp_response_check(const unsigned char *resp_der, size_t len, const unsigned char digest[32],
                          const unsigned char nonce[8], X509_STORE *trust, int64_t now,
                          unsigned char **token, size_t *token_len, struct dz_tsp_info *info,
                          char *detail, size_t detail_len)
{
    const unsigned char *p = resp_der;
    TS_RESP *resp = NULL;
    unsigned char *der = NULL;
    int der_len;
    int rc;

    *token = NULL;
    *token_len = 0;
    memset(info, 0, sizeof(*info));
    if (detail && detail_len)
        detail[0] = '\0';
    if (!resp_der || !digest || !nonce || !trust)
        return DZ_ERR_INVAL;
    if (len > DZ_TSP_MAX_RESPONSE) {
        set_detail(detail, detail_len, "the TSA's answer is too big");
        return DZ_ERR_TOOBIG;
    }
    resp = len ? d2i_TS_RESP(NULL, &p, (long)len) : NULL;
    if (!resp || p != resp_der + len) {
        set_detail(detail, detail_len, "the TSA's answer is not a TimeStampResp");
        rc = DZ_ERR_PARSE;
        goto out;
    }
    {
        const ASN1_INTEGER *st = TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp));
        long s = st ? ASN1_INTEGER_get(st) : -1;
        if (s != 0 && s != 1) {
            if (detail && detail_len)
                snprintf(detail, detail_len, "the TSA refused the request (status %ld)", s);
            rc = DZ_ERR_UNAVAILABLE;
            goto out;
        }
    }
    if (!TS_RESP_get_token(resp)) {
        set_detail(detail, detail_len, "the TSA granted but sent no token");
        rc = DZ_ERR_PARSE;
        goto out;
    }
    der_len = i2d_PKCS7(TS_RESP_get_token(resp), &der);
    if (der_len <= 0) {
        set_detail(detail, detail_len, "the TSA's token cannot be encoded");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    rc = dz_tsp_verify_token(der, (size_t)der_len, digest, nonce, trust, info, detail, detail_len);
    if (rc)
        goto out;
    /* A TSA whose clock is off (or that backdates) would make a proof of
     * existence at a time the signature did not exist: refused, whatever
     * the direction. */
    if (now > 0 && (info->gen_time > now + DZ_TSP_FRESH_SKEW_S ||
                    info->gen_time < now - DZ_TSP_FRESH_SKEW_S)) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "the token's genTime is %lld s from our clock",
                     (long long)(info->gen_time - now));
        memset(info, 0, sizeof(*info));
        rc = DZ_ERR_DENIED;
        goto out;
    }
    *token = der;
    *token_len = (size_t)der_len;
    der = NULL;
out:
    OPENSSL_free(der);
    TS_RESP_free(resp);
    ERR_clear_error();
    return rc;
}

int dz_tsp_stamp(const char *url, const struct dz_httpc_tls *tls, enum dz_httpc_version version,
                 uint32_t timeout_ms, X509_STORE *trust, const unsigned char digest[32],
                 unsigned char **token, size_t *token_len, struct dz_tsp_info *info, char *detail,
                 size_t detail_len)
{
    static const struct dz_hdr hdrs[] = {{"content-type", "application/timestamp-query"},
                                         {"accept", "application/timestamp-reply"}};
    struct dz_httpc_request r;
    struct dz_buf body;
    unsigned char nonce[8];
    unsigned char *req = NULL;
    size_t req_len = 0;
    int status = 0;
    int rc;

    *token = NULL;
    *token_len = 0;
    memset(info, 0, sizeof(*info));
    if (detail && detail_len)
        detail[0] = '\0';
    if (!url || !trust || !digest)
        return DZ_ERR_INVAL;
    dz_buf_init(&body, DZ_TSP_MAX_RESPONSE);
    rc = dz_tsp_request_der(digest, nonce, &req, &req_len);
    if (rc)
        goto out;
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.url = url;
    r.headers = hdrs;
    r.nheaders = 2;
    r.body = req;
    r.body_len = req_len;
    r.version = version;
    r.timeout_ms = timeout_ms ? timeout_ms : DZ_TSP_TIMEOUT_MS;
    r.connect_timeout_ms = r.timeout_ms;
    r.tls = tls;
    r.max_response_bytes = DZ_TSP_MAX_RESPONSE;
    rc = dz_http_fetch_blocking(&r, &status, &body);
    if (rc) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "the TSA cannot be reached: %s", dz_err_str(rc));
        if (rc != DZ_ERR_TIMEOUT && rc != DZ_ERR_NOMEM)
            rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    if (status != 200) {
        if (detail && detail_len)
            snprintf(detail, detail_len, "the TSA answered HTTP %d", status);
        rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    rc = dz_tsp_response_check((const unsigned char *)body.data, body.len, digest, nonce, trust,
                               (int64_t)time(NULL), token, token_len, info, detail, detail_len);
out:
    OPENSSL_free(req);
    dz_buf_cleanup(&body);
    ERR_clear_error();
    return rc;
}
