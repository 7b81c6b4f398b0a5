/*
 * jws.c - compact ES256 JWS signing and verification, and JWK sets.
 *
 * It owns the byte-level token format: header writing, base64url, the
 * JOSE r || s <-> DER signature conversion, and the strict parser that
 * decides whether a token is even worth a signature check.  It never holds a
 * private key (the signer does) and never trusts anything in a token before
 * the signature over it has been checked - except the header fields it needs
 * to find the key, and those select nothing but a key from a fixed set.
 */
#include "keys/jws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/log.h"
#include "keys/ecdsa_sig.h"
#include "keys/signer.h"

#include "base/compat.h"

#define SIG_LEN 64
#define SIG_B64_LEN 86 /* unpadded base64url of 64 bytes */

struct jwk {
    char kid[DZ_JWS_KID_MAX + 1];
    EVP_PKEY *pub;
};

struct dz_jwks {
    size_t n;
    struct jwk keys[DZ_JWKS_KEYS_MAX];
};

/* Key ids and typ values go into a header we write by hand, so they are
 * limited to characters that need no JSON escaping. */
static bool token_word_ok(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\' || n >= DZ_JWS_KID_MAX)
            return false;
    }
    return n > 0;
}

/* ---- signing ---------------------------------------------------------- */

int dz_jws_sign_payload(struct dz_signer *s, const char *kid, const char *typ, const void *payload,
                        size_t payload_len, char **out_token)
{
    char header[64 + 2 * DZ_JWS_KID_MAX];
    unsigned char sig[SIG_LEN];
    size_t header_len;
    size_t hb, pb, total;
    char *tok = NULL;
    int n;
    int rc;

    *out_token = NULL;
    if (!token_word_ok(kid) || (typ && !token_word_ok(typ)) || !payload || payload_len == 0)
        return DZ_ERR_INVAL;
    if (typ)
        n = snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"%s\"}",
                     kid, typ);
    else
        n = snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    if (n < 0 || (size_t)n >= sizeof(header))
        return DZ_ERR_INVAL;
    header_len = (size_t)n;
    if (payload_len > DZ_JWS_TOKEN_MAX)
        return DZ_ERR_TOOBIG;
    hb = dz_b64_encoded_len(header_len, true);
    pb = dz_b64_encoded_len(payload_len, true);
    total = hb + 1 + pb + 1 + SIG_B64_LEN;
    /* Never issue a token our own verifier would refuse as too big. */
    if (total > DZ_JWS_TOKEN_MAX)
        return DZ_ERR_TOOBIG;
    tok = malloc(total + 1);
    if (!tok)
        return DZ_ERR_NOMEM;
    dz_b64_encode_to(header, header_len, true, tok);
    tok[hb] = '.';
    dz_b64_encode_to(payload, payload_len, true, tok + hb + 1);
    rc = dz_signer_sign_es256(s, tok, hb + 1 + pb, sig);
    if (rc != 0)
        goto out;
    tok[hb + 1 + pb] = '.';
    dz_b64_encode_to(sig, SIG_LEN, true, tok + hb + 1 + pb + 1);
    *out_token = tok;
    tok = NULL;
out:
    free(tok);
    return rc;
}

int dz_jws_sign_es256(struct dz_signer *s, const char *kid, const char *typ, const json_t *claims,
                      char **out_token)
{
    char *payload = NULL;
    int rc;

    *out_token = NULL;
    if (!json_is_object(claims))
        return DZ_ERR_INVAL;
    payload = json_dumps(claims, JSON_COMPACT);
    if (!payload)
        return DZ_ERR_NOMEM;
    rc = dz_jws_sign_payload(s, kid, typ, payload, strlen(payload), out_token);
    free(payload);
    return rc;
}

/* ---- key sets --------------------------------------------------------- */

int dz_jwks_new(struct dz_jwks **out)
{
    *out = calloc(1, sizeof(struct dz_jwks));
    return *out ? 0 : DZ_ERR_NOMEM;
}

void dz_jwks_free(struct dz_jwks *jwks)
{
    if (!jwks)
        return;
    for (size_t i = 0; i < jwks->n; i++)
        EVP_PKEY_free(jwks->keys[i].pub);
    free(jwks);
}

size_t dz_jwks_count(const struct dz_jwks *jwks)
{
    return jwks ? jwks->n : 0;
}

EVP_PKEY *dz_jwks_find(const struct dz_jwks *jwks, const char *kid)
{
    if (!jwks || !kid)
        return NULL;
    for (size_t i = 0; i < jwks->n; i++) {
        if (strcmp(jwks->keys[i].kid, kid) == 0)
            return jwks->keys[i].pub;
    }
    return NULL;
}

/* Store pub itself (the set takes over the caller's reference). */
static int jwks_put(struct dz_jwks *jwks, const char *kid, EVP_PKEY *pub)
{
    if (!token_word_ok(kid))
        return DZ_ERR_INVAL;
    if (dz_jwks_find(jwks, kid))
        return DZ_ERR_EXISTS;
    if (jwks->n >= DZ_JWKS_KEYS_MAX)
        return DZ_ERR_TOOBIG;
    memcpy(jwks->keys[jwks->n].kid, kid, strlen(kid) + 1);
    jwks->keys[jwks->n].pub = pub;
    jwks->n++;
    return 0;
}

int dz_jwks_add(struct dz_jwks *jwks, const char *kid, EVP_PKEY *pub)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *copy = NULL;
    int len;
    int rc;

    if (!token_word_ok(kid) || !dz_signer_key_is_p256(pub))
        return DZ_ERR_INVAL;
    if (dz_jwks_find(jwks, kid))
        return DZ_ERR_EXISTS;
    /* Keep a public-only copy: a private key handed in must not end up in
     * a structure meant for publishing. */
    len = i2d_PUBKEY(pub, &der);
    if (len <= 0) {
        dz_log_openssl("jwks_add");
        return DZ_ERR_CRYPTO;
    }
    p = der;
    copy = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    if (!copy) {
        dz_log_openssl("jwks_add");
        return DZ_ERR_CRYPTO;
    }
    rc = jwks_put(jwks, kid, copy);
    if (rc != 0)
        EVP_PKEY_free(copy);
    return rc;
}

/* x and y of a P-256 public key as 32-byte big-endian integers. */
static int ec_xy(EVP_PKEY *pub, unsigned char x[32], unsigned char y[32])
{
    BIGNUM *bx = NULL;
    BIGNUM *by = NULL;
    int rc = DZ_ERR_CRYPTO;

    if (EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
        EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1)
        goto out;
    if (BN_bn2binpad(bx, x, 32) != 32 || BN_bn2binpad(by, y, 32) != 32)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        dz_log_openssl("jwk_export");
    BN_free(bx);
    BN_free(by);
    return rc;
}

static int jwk_to_json(const struct jwk *k, json_t **out)
{
    unsigned char x[32], y[32];
    char xb[44], yb[44];
    json_t *o = NULL;
    int rc;

    *out = NULL;
    if ((rc = ec_xy(k->pub, x, y)) != 0)
        return rc;
    dz_b64_encode_to(x, 32, true, xb);
    dz_b64_encode_to(y, 32, true, yb);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", xb, "y",
                  yb, "kid", k->kid, "use", "sig", "alg", "ES256");
    if (!o)
        return DZ_ERR_NOMEM;
    *out = o;
    return 0;
}

int dz_jwks_to_json(const struct dz_jwks *jwks, char **out)
{
    json_t *root = NULL;
    json_t *arr = NULL;
    json_t *k = NULL;
    int rc;

    *out = NULL;
    root = json_object();
    arr = json_array();
    if (!root || !arr || json_object_set(root, "keys", arr) != 0) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < jwks->n; i++) {
        if ((rc = jwk_to_json(&jwks->keys[i], &k)) != 0)
            goto out;
        if (json_array_append_new(arr, k) != 0) {
            k = NULL;
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        k = NULL;
    }
    *out = json_dumps(root, JSON_COMPACT);
    rc = *out ? 0 : DZ_ERR_NOMEM;
out:
    json_decref(arr);
    json_decref(root);
    return rc;
}

/* Decode a base64url coordinate that must be exactly 32 bytes. */
static int coord(const json_t *v, unsigned char out[32])
{
    unsigned char *d = NULL;
    size_t n = 0;
    int rc;

    if (!json_is_string(v))
        return DZ_ERR_PARSE;
    rc = dz_b64_decode(json_string_value(v), json_string_length(v), true, &d, &n);
    if (rc == 0 && n != 32)
        rc = DZ_ERR_PARSE;
    if (rc == 0)
        memcpy(out, d, 32);
    free(d);
    return rc;
}

/* Build a P-256 public key from its affine coordinates; off-curve points
 * (and the point at infinity) are DZ_ERR_PARSE. */
static int ec_from_xy(const unsigned char x[32], const unsigned char y[32], EVP_PKEY **out)
{
    unsigned char pt[65];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *chk = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = DZ_ERR_PARSE;

    *out = NULL;
    pt[0] = 0x04;
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt));
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!chk || EVP_PKEY_public_check(chk) != 1)
        goto out;
    *out = pkey;
    pkey = NULL;
    rc = 0;
out:
    /* A bad point from outside is not our error: keep the queue clean. */
    ERR_clear_error();
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}

static bool str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0 &&
           json_string_length(v) == strlen(s);
}

/* One key of a set: 1 = added, 0 = skipped (not for us), < 0 = error. */
static int jwk_import(struct dz_jwks *jwks, const json_t *k)
{
    const json_t *kid = json_object_get(k, "kid");
    const json_t *use = json_object_get(k, "use");
    const json_t *alg = json_object_get(k, "alg");
    unsigned char x[32], y[32];
    EVP_PKEY *pub = NULL;
    int rc;

    if (!json_is_object(k) || !json_is_string(json_object_get(k, "kty")))
        return DZ_ERR_PARSE;
    if (!str_is(json_object_get(k, "kty"), "EC") || !str_is(json_object_get(k, "crv"), "P-256"))
        return 0;
    if ((use && !str_is(use, "sig")) || (alg && !str_is(alg, "ES256")))
        return 0;
    if (json_object_get(k, "d")) {
        dz_log(DZ_LOG_ERROR, "jwks_parse", "a key in the JWKS has its private part (\"d\")");
        return DZ_ERR_INVAL;
    }
    if (!json_is_string(kid) || json_string_length(kid) != strlen(json_string_value(kid)) ||
        !token_word_ok(json_string_value(kid)))
        return DZ_ERR_PARSE;
    if ((rc = coord(json_object_get(k, "x"), x)) != 0 ||
        (rc = coord(json_object_get(k, "y"), y)) != 0)
        return rc == DZ_ERR_NOMEM ? rc : DZ_ERR_PARSE;
    if ((rc = ec_from_xy(x, y, &pub)) != 0)
        return rc;
    rc = jwks_put(jwks, json_string_value(kid), pub);
    if (rc != 0) {
        EVP_PKEY_free(pub);
        return rc == DZ_ERR_EXISTS || rc == DZ_ERR_INVAL ? DZ_ERR_PARSE : rc;
    }
    return 1;
}

int dz_jwks_parse(const char *json, size_t len, struct dz_jwks **out)
{
    struct dz_jwks *jwks = NULL;
    json_t *root = NULL;
    const json_t *keys;
    json_error_t jerr;
    int rc;

    *out = NULL;
    if (!json)
        return DZ_ERR_INVAL;
    if (len > DZ_JWKS_JSON_MAX)
        return DZ_ERR_TOOBIG;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    if (json_array_size(keys) > DZ_JWKS_KEYS_MAX) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    if ((rc = dz_jwks_new(&jwks)) != 0)
        goto out;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        rc = jwk_import(jwks, json_array_get(keys, i));
        if (rc < 0)
            goto out;
    }
    if (jwks->n == 0) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    *out = jwks;
    jwks = NULL;
    rc = 0;
out:
    dz_jwks_free(jwks);
    json_decref(root);
    return rc;
}

int dz_jwks_load_file(const char *path, struct dz_jwks **out)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n = 0;
    int rc;
    int err;

    *out = NULL;
    if (!f)
        return DZ_ERR_IO;
    buf = malloc(DZ_JWKS_JSON_MAX + 1);
    if (buf)
        /* One byte over the bound: a larger file is refused, not cut. */
        n = fread(buf, 1, DZ_JWKS_JSON_MAX + 1, f);
    err = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf)
        return DZ_ERR_NOMEM;
    if (err) {
        free(buf);
        errno = err;
        return DZ_ERR_IO;
    }
    rc = n > DZ_JWKS_JSON_MAX ? DZ_ERR_TOOBIG : dz_jwks_parse(buf, n, out);
    free(buf);
    return rc;
}

/* ---- verification ----------------------------------------------------- */

static int check_signature(EVP_PKEY *pub, const char *input, size_t input_len,
                           const unsigned char sig[SIG_LEN])
{
    EVP_MD_CTX *md = NULL;
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = 0;
    int rc;

    /* r or s zero or not below the order: a signature that cannot verify. */
    rc = dz_ecdsa_sig_raw_to_der(sig, SIG_LEN, 32, der, sizeof(der), &der_len);
    if (rc == DZ_ERR_PARSE)
        rc = DZ_ERR_DENIED;
    if (rc != 0)
        goto out;
    md = EVP_MD_CTX_new();
    if (!md) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pub, NULL) != 1) {
        dz_log_openssl("jws_verify");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    /* 1 valid, 0 invalid, < 0 e.g. r or s out of range: all but 1 deny. */
    rc = EVP_DigestVerify(md, der, der_len, (const unsigned char *)input, input_len) == 1
             ? 0
             : DZ_ERR_DENIED;
    ERR_clear_error();
out:
    EVP_MD_CTX_free(md);
    return rc;
}

/* Decode a base64url part into a JSON object. */
static int part_json(const char *p, size_t n, json_t **out)
{
    unsigned char *d = NULL;
    size_t dn = 0;
    json_error_t jerr;
    json_t *v;
    int rc;

    *out = NULL;
    if ((rc = dz_b64_decode(p, n, true, &d, &dn)) != 0)
        return rc;
    v = json_loadb((const char *)d, dn, JSON_REJECT_DUPLICATES, &jerr);
    free(d);
    if (!json_is_object(v)) {
        json_decref(v);
        return DZ_ERR_PARSE;
    }
    *out = v;
    return 0;
}

int dz_jws_verify_detail(const char *token, size_t len, const struct dz_jwks *jwks,
                         const char *expected_typ, json_t **out_header, json_t **out_claims,
                         const char **out_reason)
{
    const char *reason = "malformed";
    const char *dot1 = NULL;
    const char *dot2 = NULL;
    json_t *header = NULL;
    json_t *claims = NULL;
    const json_t *v;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_PKEY *pub;
    int rc;

    if (out_header)
        *out_header = NULL;
    if (out_claims)
        *out_claims = NULL;
    if (!token || !jwks) {
        rc = DZ_ERR_INVAL;
        reason = "internal_error";
        goto out;
    }
    if (len > DZ_JWS_TOKEN_MAX) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (token[i] != '.')
            continue;
        if (!dot1) {
            dot1 = token + i;
        } else if (!dot2) {
            dot2 = token + i;
        } else {
            rc = DZ_ERR_PARSE; /* a fourth part (JWE has five) */
            goto out;
        }
    }
    if (!dot2 || dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    if ((rc = part_json(token, (size_t)(dot1 - token), &header)) != 0)
        goto out;

    /* The header is read only to pick a key; nothing in it can pick an
     * algorithm, because there is only one. */
    rc = DZ_ERR_DENIED;
    if (!str_is(json_object_get(header, "alg"), "ES256")) {
        reason = "bad_algorithm";
        goto out;
    }
    if (json_object_get(header, "crit")) {
        reason = "unsupported_header";
        goto out;
    }
    if (expected_typ && !str_is(json_object_get(header, "typ"), expected_typ)) {
        reason = "wrong_type";
        goto out;
    }
    v = json_object_get(header, "kid");
    pub = json_is_string(v) && json_string_length(v) == strlen(json_string_value(v))
              ? dz_jwks_find(jwks, json_string_value(v))
              : NULL;
    if (!pub) {
        reason = "unknown_key";
        goto out;
    }
    reason = "bad_signature";
    if ((rc = dz_b64_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), true, &sig, &sig_len)) !=
        0) {
        if (rc == DZ_ERR_PARSE)
            reason = "malformed";
        goto out;
    }
    if (sig_len != SIG_LEN) {
        rc = DZ_ERR_DENIED;
        goto out;
    }
    if ((rc = check_signature(pub, token, (size_t)(dot2 - token), sig)) != 0)
        goto out;

    reason = "malformed";
    if ((rc = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims)) != 0)
        goto out;
    if (out_header) {
        *out_header = header;
        header = NULL;
    }
    if (out_claims) {
        *out_claims = claims;
        claims = NULL;
    }
    reason = "ok";
    rc = 0;
out:
    if (rc == DZ_ERR_NOMEM || rc == DZ_ERR_CRYPTO)
        reason = "internal_error";
    if (out_reason)
        *out_reason = reason;
    free(sig);
    json_decref(header);
    json_decref(claims);
    return rc;
}

int dz_jws_verify(const char *token, size_t len, const struct dz_jwks *jwks,
                  const char *expected_typ, json_t **out_header, json_t **out_claims)
{
    return dz_jws_verify_detail(token, len, jwks, expected_typ, out_header, out_claims, NULL);
}
