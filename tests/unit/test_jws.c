/* test_jws.c - ES256 compact JWS and JWK sets through their public interface,
 * plus the PEM-file signer: round trips, every tampering and header trick we
 * refuse (alg none/HS256/RS256, unknown kid, wrong typ, crit), malformed and
 * padded encodings, bounds, JWKS import/export and its bad inputs, signing
 * from many threads, and two checks against the openssl command line tool
 * (it verifies our signatures; we verify its signatures), so a signature
 * that is only self-consistent cannot pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "base/b64.h"
#include "base/err.h"
#include "keys/jws.h"
#include "keys/signer.h"
#include "keys/signer_int.h"

/* ------------------------------------------------------------ helpers --- */

static char tmpdir[64];
static char key_path[128];
static struct dz_signer *signer;
static struct dz_jwks *jwks;

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_key(const char *path, const char *curve, const char *pass)
{
    EVP_PKEY *k = strcmp(curve, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen(curve);
    FILE *f;

    assert_non_null(k);
    f = fopen(path, "wb");
    assert_non_null(f);
    if (pass)
        assert_int_equal(PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), (unsigned char *)pass,
                                              (int)strlen(pass), NULL, NULL),
                         1);
    else
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    chmod(path, 0600);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_jws_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    write_key(key_path, "P-256", NULL);
    if (dz_signer_open(key_path, NULL, &signer) != 0)
        return -1;
    if (dz_jwks_new(&jwks) != 0 || dz_jwks_add(jwks, "k1", dz_signer_public_key(signer)) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[256];

    (void)state;
    dz_jwks_free(jwks);
    dz_signer_free(signer);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *sign_claims(const char *kid, const char *typ, const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    char *tok = NULL;

    assert_non_null(c);
    assert_int_equal(dz_jws_sign_es256(signer, kid, typ, c, &tok), 0);
    json_decref(c);
    return tok;
}

static char *b64url(const void *p, size_t n)
{
    char *s = NULL;
    assert_int_equal(dz_b64_encode(p, n, true, &s), 0);
    return s;
}

/* header_json "." payload of tok "." signature of tok */
static char *with_header(const char *tok, const char *header_json)
{
    char *h = b64url(header_json, strlen(header_json));
    const char *rest = strchr(tok, '.');
    size_t n = strlen(h) + strlen(rest) + 1;
    char *out = malloc(n);

    assert_non_null(out);
    snprintf(out, n, "%s%s", h, rest);
    free(h);
    return out;
}

static int verify(const char *tok, const char *typ, const char **reason)
{
    return dz_jws_verify_detail(tok, strlen(tok), jwks, typ, NULL, NULL, reason);
}

/* -------------------------------------------------------------- tests --- */

static void test_round_trip(void **state)
{
    char *tok = sign_claims("k1", "test+jwt", "{\"sub\":\"AB12CD3\",\"n\":42}");
    json_t *h = NULL, *c = NULL;
    const char *reason = NULL;

    (void)state;
    assert_int_equal(dz_jws_verify_detail(tok, strlen(tok), jwks, "test+jwt", &h, &c, &reason), 0);
    assert_string_equal(reason, "ok");
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "k1");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "test+jwt");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "AB12CD3");
    assert_int_equal(json_integer_value(json_object_get(c, "n")), 42);
    json_decref(h);
    json_decref(c);
    /* No typ expected: also fine; out params may be NULL. */
    assert_int_equal(dz_jws_verify(tok, strlen(tok), jwks, NULL, NULL, NULL), 0);
    /* The header is exactly what the contract says, in that order. */
    {
        unsigned char *d = NULL;
        size_t n = 0;
        assert_int_equal(dz_b64_decode(tok, (size_t)(strchr(tok, '.') - tok), true, &d, &n), 0);
        assert_string_equal((char *)d, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"test+jwt\"}");
        free(d);
    }
    free(tok);
}

static void test_tampering(void **state)
{
    char *tok = sign_claims("k1", "t", "{\"sub\":\"AB12CD3\"}");
    char *bad;
    char *dot2;
    const char *reason;
    char *p;

    (void)state;
    /* Another payload under the same header and signature. */
    {
        char *pl = b64url("{\"sub\":\"ZZ12CD3\"}", 17);
        const char *d1 = strchr(tok, '.');
        const char *d2 = strchr(d1 + 1, '.');
        size_t n = (size_t)(d1 - tok) + 1 + strlen(pl) + strlen(d2) + 1;
        bad = malloc(n);
        snprintf(bad, n, "%.*s.%s%s", (int)(d1 - tok), tok, pl, d2);
        assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_signature");
        free(bad);
        free(pl);
    }
    /* Another header (same alg/kid/typ, different spacing) under the signature. */
    bad = with_header(tok, "{\"alg\":\"ES256\", \"kid\":\"k1\",\"typ\":\"t\"}");
    assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "bad_signature");
    free(bad);
    /* Each part of the signature flipped. */
    dot2 = strrchr(tok, '.');
    for (size_t off = 1; off < strlen(dot2) - 1; off += 21) {
        bad = strdup(tok);
        p = bad + (dot2 - tok) + off;
        *p = *p == 'A' ? 'B' : 'A';
        assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_signature");
        free(bad);
    }
    /* r || s with s replaced by n - s is also a valid ECDSA signature
     * (malleability) - documented; but a zeroed signature never is. */
    bad = strdup(tok);
    memset(bad + (dot2 - tok) + 1, 'A', 86);
    assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
    free(bad);
    free(tok);
}

static void test_alg_confusion(void **state)
{
    char *tok = sign_claims("k1", "t", "{\"a\":1}");
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":\"ES384\",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":\"es256\",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":\"ES256 \",\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"alg\":[\"ES256\"],\"kid\":\"k1\",\"typ\":\"t\"}",
        "{\"kid\":\"k1\",\"typ\":\"t\"}",
    };
    const char *reason;

    (void)state;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *bad = with_header(tok, headers[i]);
        assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_algorithm");
        free(bad);
    }
    /* alg none with an empty signature part: malformed before anything. */
    {
        char *h = b64url("{\"alg\":\"none\"}", 14);
        const char *d1 = strchr(tok, '.');
        const char *d2 = strchr(d1 + 1, '.');
        char buf[512];
        snprintf(buf, sizeof(buf), "%s%.*s.", h, (int)(d2 - d1), d1);
        assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
        free(h);
    }
    /* A real HS256 token keyed with our public key's bytes (the classic
     * confusion attack) is refused for its alg. */
    {
        EVP_PKEY *pub = dz_signer_public_key(signer);
        unsigned char *der = NULL;
        int der_len = i2d_PUBKEY(pub, &der);
        char *h = b64url("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"t\"}", 36);
        char *pl = b64url("{\"a\":1}", 7);
        char input[256];
        unsigned char mac[32];
        unsigned int mac_len = 0;
        char *m;
        char buf[512];
        snprintf(input, sizeof(input), "%s.%s", h, pl);
        HMAC(EVP_sha256(), der, der_len, (unsigned char *)input, strlen(input), mac, &mac_len);
        m = b64url(mac, mac_len);
        snprintf(buf, sizeof(buf), "%s.%s", input, m);
        assert_int_equal(verify(buf, "t", &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_algorithm");
        OPENSSL_free(der);
        free(h);
        free(pl);
        free(m);
    }
    free(tok);
}

static void test_kid_typ_crit(void **state)
{
    char *tok = sign_claims("k1", "t", "{\"a\":1}");
    char *other = sign_claims("k2", "t", "{\"a\":1}"); /* signed fine, kid not in set */
    char *bad;
    const char *reason;

    (void)state;
    assert_int_equal(verify(other, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "unknown_key");
    bad = with_header(tok, "{\"alg\":\"ES256\",\"typ\":\"t\"}");
    assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "unknown_key");
    free(bad);
    bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":1,\"typ\":\"t\"}");
    assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "unknown_key");
    free(bad);
    bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":\"k1\\u0000x\",\"typ\":\"t\"}");
    assert_int_not_equal(verify(bad, "t", &reason), 0);
    free(bad);

    assert_int_equal(verify(tok, "other", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "wrong_type");
    assert_int_equal(verify(tok, "T", &reason), DZ_ERR_DENIED);
    free(tok);
    tok = sign_claims("k1", NULL, "{\"a\":1}");
    assert_int_equal(verify(tok, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "wrong_type");
    assert_int_equal(verify(tok, NULL, &reason), 0);
    free(tok);

    tok = sign_claims("k1", "t", "{\"a\":1}");
    bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"t\",\"crit\":[\"exp\"]}");
    assert_int_equal(verify(bad, "t", &reason), DZ_ERR_DENIED);
    assert_string_equal(reason, "unsupported_header");
    free(bad);
    free(tok);
    free(other);
}

static void test_malformed(void **state)
{
    char *tok = sign_claims("k1", "t", "{\"a\":1}");
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    int hl = (int)(d1 - tok);
    int pl = (int)(d2 - d1 - 1);
    char buf[1024];
    const char *reason;
    static const char *const junk[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        "eyJ9.e30.",
        ".e30.AAAA",
        "eyJ9..AAAA",
        "!!!!.e30.AAAA",
        "W10.e30.AAAA",
        "bnVsbA.e30.AAAA",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        assert_int_equal(verify(junk[i], NULL, &reason), DZ_ERR_PARSE);
        assert_string_equal(reason, "malformed");
    }
    /* Header JSON that is not one object without duplicates. */
    {
        static const char *const hdrs[] = {"{\"alg\":\"ES256\",\"alg\":\"ES256\"}", "{",
                                           "{\"alg\":\"ES256\"} {}", "\"ES256\""};
        for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
            char *bad = with_header(tok, hdrs[i]);
            assert_int_equal(verify(bad, NULL, &reason), DZ_ERR_PARSE);
            free(bad);
        }
    }
    /* Padding is not base64url: '=' on any part. */
    snprintf(buf, sizeof(buf), "%.*s=.%.*s.%s", hl, tok, pl, d1 + 1, d2 + 1);
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    snprintf(buf, sizeof(buf), "%.*s.%.*s=.%s", hl, tok, pl, d1 + 1, d2 + 1);
    assert_int_not_equal(verify(buf, NULL, &reason), 0);
    snprintf(buf, sizeof(buf), "%s==", tok);
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    /* Standard-alphabet characters are not base64url. */
    snprintf(buf, sizeof(buf), "%s", tok);
    buf[strlen(buf) - 3] = '+';
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    /* A JWE-shaped five-part token, trailing whitespace, embedded NUL. */
    snprintf(buf, sizeof(buf), "%s.AAAA.AAAA", tok);
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    snprintf(buf, sizeof(buf), "%s\n", tok);
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    assert_int_equal(dz_jws_verify(tok, strlen(tok) + 1, jwks, NULL, NULL, NULL), DZ_ERR_PARSE);
    /* A signature part that is not base64url at all (5 mod 4 chars). */
    snprintf(buf, sizeof(buf), "%.*s.A", (int)(d2 - tok), tok);
    assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_PARSE);
    assert_string_equal(reason, "malformed");
    /* Signature of 63 and 65 bytes. */
    {
        unsigned char s[65] = {1};
        char *e63 = b64url(s, 63), *e65 = b64url(s, 65);
        snprintf(buf, sizeof(buf), "%.*s.%s", (int)(d2 - tok), tok, e63);
        assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_signature");
        snprintf(buf, sizeof(buf), "%.*s.%s", (int)(d2 - tok), tok, e65);
        assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_DENIED);
        free(e63);
        free(e65);
    }
    /* The real signature with one byte appended is not a signature. */
    {
        unsigned char *raw = NULL;
        size_t raw_len = 0;
        unsigned char s65[65];
        char *e65;
        assert_int_equal(dz_b64_decode(d2 + 1, strlen(d2 + 1), true, &raw, &raw_len), 0);
        assert_int_equal(raw_len, 64);
        memcpy(s65, raw, 64);
        s65[64] = 0;
        e65 = b64url(s65, 65);
        snprintf(buf, sizeof(buf), "%.*s.%s", (int)(d2 - tok), tok, e65);
        assert_int_equal(verify(buf, NULL, &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_signature");
        free(e65);
        free(raw);
    }
    free(tok);
    /* A validly signed payload that is not a JSON object. */
    assert_int_equal(dz_jws_sign_payload(signer, "k1", NULL, "[1]", 3, &tok), 0);
    assert_int_equal(verify(tok, NULL, &reason), DZ_ERR_PARSE);
    assert_string_equal(reason, "malformed");
    free(tok);
    assert_int_equal(dz_jws_sign_payload(signer, "k1", NULL, "{\"a\":1,\"a\":2}", 13, &tok), 0);
    assert_int_equal(verify(tok, NULL, &reason), DZ_ERR_PARSE);
    free(tok);
}

static void test_bounds_and_args(void **state)
{
    size_t big = DZ_JWS_TOKEN_MAX;
    char *payload = malloc(big + 1);
    char *tok = NULL;
    json_t *c = json_array();

    (void)state;
    /* Oversized input is refused before any parsing. */
    memset(payload, 'A', big + 1);
    assert_int_equal(dz_jws_verify(payload, big + 1, jwks, NULL, NULL, NULL), DZ_ERR_TOOBIG);
    /* We never sign what we would refuse to verify. */
    payload[0] = '{';
    assert_int_equal(dz_jws_sign_payload(signer, "k1", "t", payload, big * 3 / 4, &tok),
                     DZ_ERR_TOOBIG);
    assert_null(tok);
    free(payload);
    /* kid/typ that would need escaping, empty, too long; non-object claims. */
    assert_int_equal(dz_jws_sign_payload(signer, "k\"1", "t", "{}", 2, &tok), DZ_ERR_INVAL);
    assert_int_equal(dz_jws_sign_payload(signer, "k1", "t\\", "{}", 2, &tok), DZ_ERR_INVAL);
    assert_int_equal(dz_jws_sign_payload(signer, "", "t", "{}", 2, &tok), DZ_ERR_INVAL);
    assert_int_equal(dz_jws_sign_payload(signer, "k 1", "t", "{}", 2, &tok), DZ_ERR_INVAL);
    {
        char longkid[DZ_JWS_KID_MAX + 2];
        memset(longkid, 'k', sizeof(longkid) - 1);
        longkid[sizeof(longkid) - 1] = '\0';
        assert_int_equal(dz_jws_sign_payload(signer, longkid, "t", "{}", 2, &tok), DZ_ERR_INVAL);
    }
    assert_int_equal(dz_jws_sign_es256(signer, "k1", "t", c, &tok), DZ_ERR_INVAL);
    assert_null(tok);
    json_decref(c);
}

static void test_jwks_round_trip(void **state)
{
    char *json = NULL;
    struct dz_jwks *parsed = NULL;
    json_t *root, *k;
    json_error_t e;
    char *tok;

    (void)state;
    assert_int_equal(dz_jwks_to_json(jwks, &json), 0);
    root = json_loads(json, 0, &e);
    assert_non_null(root);
    k = json_array_get(json_object_get(root, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(k, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(k, "kid")), "k1");
    assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(k, "alg")), "ES256");
    assert_int_equal(strlen(json_string_value(json_object_get(k, "x"))), 43);
    assert_int_equal(strlen(json_string_value(json_object_get(k, "y"))), 43);
    assert_null(json_object_get(k, "d"));
    json_decref(root);

    assert_int_equal(dz_jwks_parse(json, strlen(json), &parsed), 0);
    assert_int_equal(dz_jwks_count(parsed), 1);
    assert_non_null(dz_jwks_find(parsed, "k1"));
    assert_null(dz_jwks_find(parsed, "k2"));
    assert_int_equal(EVP_PKEY_eq(dz_jwks_find(parsed, "k1"), dz_signer_public_key(signer)), 1);
    tok = sign_claims("k1", "t", "{\"a\":1}");
    assert_int_equal(dz_jws_verify(tok, strlen(tok), parsed, "t", NULL, NULL), 0);
    free(tok);
    dz_jwks_free(parsed);
    free(json);

    /* add: duplicate kid, bad kid, wrong curve, RSA. */
    {
        EVP_PKEY *p384 = EVP_EC_gen("P-384");
        EVP_PKEY *rsa = EVP_RSA_gen(1024);
        assert_int_equal(dz_jwks_add(jwks, "k1", dz_signer_public_key(signer)), DZ_ERR_EXISTS);
        assert_int_equal(dz_jwks_add(jwks, "a\"b", dz_signer_public_key(signer)), DZ_ERR_INVAL);
        assert_int_equal(dz_jwks_add(jwks, "p384", p384), DZ_ERR_INVAL);
        assert_int_equal(dz_jwks_add(jwks, "rsa", rsa), DZ_ERR_INVAL);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(rsa);
    }
    dz_jwks_free(NULL);
}

/* A JWKS with one EC key whose members are given as a JSON fragment. */
static int parse_one(const char *members)
{
    char buf[1024];
    struct dz_jwks *j = NULL;
    int rc;

    snprintf(buf, sizeof(buf), "{\"keys\":[{%s}]}", members);
    rc = dz_jwks_parse(buf, strlen(buf), &j);
    if (rc == 0)
        assert_non_null(j);
    else
        assert_null(j);
    dz_jwks_free(j);
    return rc;
}

static void test_jwks_bad_input(void **state)
{
    unsigned char x[32], y[32];
    char *xb, *yb;
    char m[512];
    EVP_PKEY *pub = dz_signer_public_key(signer);
    BIGNUM *bx = NULL, *by = NULL;
    struct dz_jwks *j = NULL;

    (void)state;
    assert_int_equal(EVP_PKEY_get_bn_param(pub, "qx", &bx), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pub, "qy", &by), 1);
    BN_bn2binpad(bx, x, 32);
    BN_bn2binpad(by, y, 32);
    BN_free(bx);
    BN_free(by);
    xb = b64url(x, 32);
    yb = b64url(y, 32);

#define KEY(extra) "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"" extra
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\""), xb, yb);
    assert_int_equal(parse_one(m), 0);
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\",\"use\":\"sig\",\"alg\":\"ES256\""), xb, yb);
    assert_int_equal(parse_one(m), 0);
    /* No kid, empty kid, kid with a quote, numeric kid. */
    snprintf(m, sizeof(m), KEY(""), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    snprintf(m, sizeof(m), KEY(",\"kid\":\"\""), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\\\"b\""), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    snprintf(m, sizeof(m), KEY(",\"kid\":7"), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    /* A published private part. */
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\",\"d\":\"%s\""), xb, yb, xb);
    assert_int_equal(parse_one(m), DZ_ERR_INVAL);
    /* Off-curve point: y changed by one bit. */
    {
        unsigned char y2[32];
        char *y2b;
        memcpy(y2, y, 32);
        y2[31] ^= 1;
        y2b = b64url(y2, 32);
        snprintf(m, sizeof(m), KEY(",\"kid\":\"a\""), xb, y2b);
        assert_int_equal(parse_one(m), DZ_ERR_PARSE);
        free(y2b);
    }
    /* Wrong lengths, padding, standard alphabet, not a string. */
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\""), "AAAA", yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    {
        char padded[64];
        snprintf(padded, sizeof(padded), "%s=", xb);
        snprintf(m, sizeof(m), KEY(",\"kid\":\"a\""), padded, yb);
        assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    }
    snprintf(m, sizeof(m), "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1,\"y\":\"%s\",\"kid\":\"a\"",
             yb);
    assert_int_equal(parse_one(m), DZ_ERR_PARSE);
    /* Keys not for us are skipped; a set of only those has no usable key. */
    assert_int_equal(parse_one("\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"r\""),
                     DZ_ERR_NOTFOUND);
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\",\"use\":\"enc\""), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_NOTFOUND);
    snprintf(m, sizeof(m), KEY(",\"kid\":\"a\",\"alg\":\"ES384\""), xb, yb);
    assert_int_equal(parse_one(m), DZ_ERR_NOTFOUND);
    assert_int_equal(parse_one("\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"a\""), DZ_ERR_NOTFOUND);
    assert_int_equal(parse_one("\"crv\":\"P-256\""), DZ_ERR_PARSE);
    /* Duplicate kid, duplicate member names. */
    {
        char buf[1024];
        snprintf(buf, sizeof(buf),
                 "{\"keys\":[{" KEY(",\"kid\":\"a\"") "},{" KEY(",\"kid\":\"a\"") "}]}", xb, yb, xb,
                 yb);
        assert_int_equal(dz_jwks_parse(buf, strlen(buf), &j), DZ_ERR_PARSE);
        snprintf(buf, sizeof(buf), "{\"keys\":[{" KEY(",\"kid\":\"a\",\"kid\":\"b\"") "}]}", xb,
                 yb);
        assert_int_equal(dz_jwks_parse(buf, strlen(buf), &j), DZ_ERR_PARSE);
    }
    /* Structure. */
    assert_int_equal(dz_jwks_parse("", 0, &j), DZ_ERR_PARSE);
    assert_int_equal(dz_jwks_parse("[]", 2, &j), DZ_ERR_PARSE);
    assert_int_equal(dz_jwks_parse("{\"keys\":{}}", 11, &j), DZ_ERR_PARSE);
    assert_int_equal(dz_jwks_parse("{\"keys\":[]}", 11, &j), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_jwks_parse("{\"keys\":[1]}", 12, &j), DZ_ERR_PARSE);
    assert_int_equal(dz_jwks_parse("{\"keys\":[]} x", 13, &j), DZ_ERR_PARSE);
    /* Too many keys, too long. */
    {
        size_t n = DZ_JWKS_JSON_MAX + 16;
        char *buf = malloc(n);
        size_t o = (size_t)snprintf(buf, n, "{\"keys\":[");
        for (int i = 0; i <= DZ_JWKS_KEYS_MAX; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s{\"kty\":\"oct\"}", i ? "," : "");
        o += (size_t)snprintf(buf + o, n - o, "]}");
        assert_int_equal(dz_jwks_parse(buf, o, &j), DZ_ERR_TOOBIG);
        memset(buf, ' ', n);
        assert_int_equal(dz_jwks_parse(buf, DZ_JWKS_JSON_MAX + 1, &j), DZ_ERR_TOOBIG);
        free(buf);
    }
#undef KEY
    assert_null(j);
    free(xb);
    free(yb);
}

struct thread_arg {
    int ok;
};

static void *sign_many(void *p)
{
    struct thread_arg *a = p;
    char msg[32];

    for (int i = 0; i < 50; i++) {
        unsigned char sig[64];
        char *b = NULL;
        char *tok = NULL;
        size_t n;
        snprintf(msg, sizeof(msg), "{\"i\":%d}", i);
        if (dz_signer_sign_es256(signer, msg, strlen(msg), sig) != 0)
            return NULL;
        n = strlen(msg);
        if (dz_jws_sign_payload(signer, "k1", "t", msg, n, &tok) != 0)
            return NULL;
        if (dz_jws_verify(tok, strlen(tok), jwks, "t", NULL, NULL) == 0)
            a->ok++;
        free(tok);
        free(b);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    struct thread_arg a[4] = {{0}};

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_many, &a[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].ok, 50);
    }
    assert_false(dz_signer_is_blocking(signer));
    assert_string_equal(dz_signer_kind(signer), "file");
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* openssl dgst verifies our signature over the JWS signing input. */
static void test_openssl_verifies_ours(void **state)
{
    char *tok = sign_claims("k1", "t", "{\"sub\":\"AB12CD3\"}");
    const char *dot2 = strrchr(tok, '.');
    char pub_path[160], in_path[160], sig_path[160], cmd[640];
    unsigned char *raw = NULL, *der = NULL;
    size_t raw_len = 0;
    int der_len;
    ECDSA_SIG *es;
    FILE *f;

    (void)state;
    snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", tmpdir);
    snprintf(in_path, sizeof(in_path), "%s/input", tmpdir);
    snprintf(sig_path, sizeof(sig_path), "%s/sig.der", tmpdir);
    f = fopen(pub_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, dz_signer_public_key(signer)), 1);
    fclose(f);
    write_file(in_path, tok, (size_t)(dot2 - tok));
    assert_int_equal(dz_b64_decode(dot2 + 1, strlen(dot2 + 1), true, &raw, &raw_len), 0);
    assert_int_equal(raw_len, 64);
    es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    der_len = i2d_ECDSA_SIG(es, &der);
    assert_true(der_len > 0);
    write_file(sig_path, der, (size_t)der_len);
    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sha256 -verify '%s' -signature '%s' '%s' >/dev/null 2>&1", pub_path,
             sig_path, in_path);
    assert_int_equal(run(cmd), 0);
    /* The same check fails on a changed input: the check can fail. */
    write_file(in_path, tok, (size_t)(dot2 - tok) - 1);
    assert_int_not_equal(run(cmd), 0);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    free(raw);
    free(tok);
}

/* We verify a token whose signature openssl dgst made. */
static void test_we_verify_openssl(void **state)
{
    char *h = b64url("{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"t\"}", 36);
    char *p = b64url("{\"sub\":\"AB12CD3\"}", 17);
    char in_path[160], sig_path[160], cmd[640], input[256], tok[512];
    unsigned char der[128], raw[64];
    size_t der_len;
    char *s;
    FILE *f;

    (void)state;
    snprintf(in_path, sizeof(in_path), "%s/input2", tmpdir);
    snprintf(sig_path, sizeof(sig_path), "%s/sig2.der", tmpdir);
    snprintf(input, sizeof(input), "%s.%s", h, p);
    write_file(in_path, input, strlen(input));
    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -sign '%s' -out '%s' '%s' 2>/dev/null",
             key_path, sig_path, in_path);
    assert_int_equal(run(cmd), 0);
    f = fopen(sig_path, "rb");
    assert_non_null(f);
    der_len = fread(der, 1, sizeof(der), f);
    fclose(f);
    assert_int_equal(dz_signer_sig_from_der(der, der_len, raw), 0);
    s = b64url(raw, 64);
    snprintf(tok, sizeof(tok), "%s.%s", input, s);
    assert_int_equal(dz_jws_verify(tok, strlen(tok), jwks, "t", NULL, NULL), 0);
    /* DER with trailing garbage is refused by the converter. */
    der[der_len] = 0;
    assert_int_equal(dz_signer_sig_from_der(der, der_len + 1, raw), DZ_ERR_CRYPTO);
    free(s);
    free(h);
    free(p);
}

/* A key set read from a file: whole, or refused (never parsed cut short),
 * and a missing file told by errno. */
static void test_jwks_load_file(void **state)
{
    char path[600];
    char *json = NULL;
    struct dz_jwks *got = NULL;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/none.jwks", tmpdir);
    assert_int_equal(dz_jwks_load_file(path, &got), DZ_ERR_IO);
    assert_int_equal(errno, ENOENT);
    assert_null(got);

    snprintf(path, sizeof(path), "%s/set.jwks", tmpdir);
    assert_int_equal(dz_jwks_to_json(jwks, &json), 0);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    assert_int_equal(dz_jwks_load_file(path, &got), 0);
    assert_non_null(dz_jwks_find(got, "k1"));
    dz_jwks_free(got);
    got = NULL;

    /* The same set padded past the bound: refused, not cut to a valid set. */
    f = fopen(path, "a");
    assert_non_null(f);
    for (size_t i = 0; i <= DZ_JWKS_JSON_MAX; i += 64)
        fputs("                                                                ", f);
    fclose(f);
    assert_int_equal(dz_jwks_load_file(path, &got), DZ_ERR_TOOBIG);
    assert_null(got);
    free(json);
}

static void test_file_signer_errors(void **state)
{
    char path[160], pass[160];
    struct dz_signer *s = NULL;

    (void)state;
    snprintf(path, sizeof(path), "%s/missing.pem", tmpdir);
    assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_IO);
    assert_null(s);
    assert_int_equal(dz_signer_open(tmpdir, NULL, &s), DZ_ERR_IO); /* a directory */
    assert_int_equal(dz_signer_open("", NULL, &s), DZ_ERR_INVAL);
    snprintf(path, sizeof(path), "%s/junk.pem", tmpdir);
    write_file(path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58);
    assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_CRYPTO);
    snprintf(path, sizeof(path), "%s/p384.pem", tmpdir);
    write_key(path, "P-384", NULL);
    assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_INVAL);
    snprintf(path, sizeof(path), "%s/rsa.pem", tmpdir);
    write_key(path, "RSA", NULL);
    assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_INVAL);
    /* Encrypted PEM: right passphrase, wrong one, none (no prompt). */
    snprintf(path, sizeof(path), "%s/enc.pem", tmpdir);
    write_key(path, "P-256", "s3cret pass");
    snprintf(pass, sizeof(pass), "%s/pass", tmpdir);
    write_file(pass, "s3cret pass\n", 12);
    /* A passphrase file others can read is refused (base/secretfile.h). */
    assert_int_equal(chmod(pass, 0644), 0);
    assert_int_equal(dz_signer_open(path, pass, &s), DZ_ERR_DENIED);
    assert_null(s);
    assert_int_equal(chmod(pass, 0600), 0);
    assert_int_equal(dz_signer_open(path, pass, &s), 0);
    dz_signer_free(s);
    s = NULL;
    write_file(pass, "wrong\n", 6);
    assert_int_equal(dz_signer_open(path, pass, &s), DZ_ERR_CRYPTO);
    assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_CRYPTO);
    write_file(pass, "\n", 1);
    assert_int_equal(dz_signer_open(path, pass, &s), DZ_ERR_INVAL);
    assert_null(s);
    /* A huge file is refused, not read. */
    {
        char *big = calloc(1, 70000);
        snprintf(path, sizeof(path), "%s/big.pem", tmpdir);
        write_file(path, big, 70000);
        free(big);
        assert_int_equal(dz_signer_open(path, NULL, &s), DZ_ERR_TOOBIG);
    }
    dz_signer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_alg_confusion),     cmocka_unit_test(test_kid_typ_crit),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_bounds_and_args),
        cmocka_unit_test(test_jwks_round_trip),   cmocka_unit_test(test_jwks_bad_input),
        cmocka_unit_test(test_threads),           cmocka_unit_test(test_openssl_verifies_ours),
        cmocka_unit_test(test_we_verify_openssl), cmocka_unit_test(test_file_signer_errors),
        cmocka_unit_test(test_jwks_load_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
