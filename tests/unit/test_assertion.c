/* test_assertion.c - the Darvaza-Assertion: every claim present with the
 * right value and type, optional claims absent when they should be, inputs
 * out of their domain refused, and each verification failure reported with
 * its stable reason (tokens for the claim checks are forged with our own key
 * through dz_jws_sign_es256, so only the claim under test is wrong). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "keys/assertion.h"
#include "keys/jws.h"
#include "keys/signer.h"

#include "signer_case.h"

#define NOW 1800000000

static struct dz_signer *signer;
static struct dz_jwks *jwks;
static const unsigned char prf[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const unsigned char body[] = "{\"notice\":\"hello\"}";

static int setup(void **state)
{
    (void)state;
    return signer_case_open("/tmp/dz_asrt_XXXXXX", &signer, &jwks);
}

static int teardown(void **state)
{
    (void)state;
    signer_case_close(signer, jwks);
    return 0;
}

static struct dz_assertion_in base_in(void)
{
    struct dz_assertion_in in = {
        .iss = "darvaza-test",
        .sub = "5ZJBKQG",
        .aud = "registry",
        .sid_b64 = "c2Vzc2lvbi1oYXNo",
        .acr = "high",
        .amr = DZ_AMR_QR | DZ_AMR_MOB | DZ_AMR_PIN,
        .iat = NOW,
        .auth_time = NOW - 100,
        .ttl_s = 30,
        .prf = prf,
        .htm = "POST",
        .htu = "/api/registry/persons/AB12CD3?x=1",
        .body = body,
        .body_len = sizeof(body) - 1,
        .tgt = "AB12CD3",
        .pur = "case 2-1/2026",
        .release = "fin,name, surname",
    };
    return in;
}

static struct dz_assertion_expect base_expect(void)
{
    struct dz_assertion_expect e = {
        .iss = "darvaza-test",
        .aud = "registry",
        .htm = "POST",
        .htu = "/api/registry/persons/AB12CD3?x=1",
        .body = body,
        .body_len = sizeof(body) - 1,
        .now = NOW + 5,
        .leeway_s = 5,
    };
    return e;
}

static char *sign_in(const struct dz_assertion_in *in)
{
    char *tok = NULL;
    assert_int_equal(dz_assertion_sign(signer, "gw-1", in, &tok), 0);
    assert_non_null(tok);
    return tok;
}

static const char *reason_of(const char *tok, const struct dz_assertion_expect *e)
{
    const char *reason = NULL;
    json_t *c = NULL;
    int rc = dz_assertion_verify(tok, jwks, e, &c, &reason);

    assert_non_null(reason);
    if (rc == 0) {
        assert_non_null(c);
        assert_string_equal(reason, "ok");
    } else {
        assert_null(c);
        assert_string_not_equal(reason, "ok");
    }
    json_decref(c);
    return reason;
}

static const char *str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_claims(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    char *tok = sign_in(&in);
    char *tok2 = sign_in(&in);
    json_t *h = NULL, *c = NULL;
    const char *reason = NULL;
    unsigned char digest[32];
    char want[64];
    const json_t *amr, *rel;
    unsigned char *d = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, &reason), 0);
    assert_string_equal(reason, "ok");
    assert_int_equal(dz_jws_verify(tok, strlen(tok), jwks, DZ_ASSERTION_TYP, &h, NULL), 0);
    assert_string_equal(str(h, "alg"), "ES256");
    assert_string_equal(str(h, "kid"), "gw-1");
    assert_string_equal(str(h, "typ"), "darvaza-assertion+jwt");
    assert_int_equal(json_object_size(h), 3);

    assert_string_equal(str(c, "iss"), "darvaza-test");
    assert_string_equal(str(c, "sub"), "5ZJBKQG");
    assert_string_equal(str(c, "aud"), "registry");
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 30);
    assert_int_equal(json_integer_value(json_object_get(c, "auth_time")), NOW - 100);
    assert_string_equal(str(c, "sid"), "c2Vzc2lvbi1oYXNo");
    assert_string_equal(str(c, "acr"), "high");
    amr = json_object_get(c, "amr");
    assert_int_equal(json_array_size(amr), 3);
    /* DESIGN §3 writes a QR login as ["qr","mob","pin"]. */
    assert_string_equal(json_string_value(json_array_get(amr, 0)), "qr");
    assert_string_equal(json_string_value(json_array_get(amr, 1)), "mob");
    assert_string_equal(json_string_value(json_array_get(amr, 2)), "pin");
    dz_b64_encode_to(prf, 32, true, want);
    assert_string_equal(str(c, "prf"), want);
    assert_string_equal(str(c, "htm"), "POST");
    assert_string_equal(str(c, "htu"), "/api/registry/persons/AB12CD3?x=1");
    dz_sha256(body, sizeof(body) - 1, digest);
    dz_b64_encode_to(digest, 32, true, want);
    assert_string_equal(str(c, "bdy"), want);
    assert_string_equal(str(c, "tgt"), "AB12CD3");
    assert_string_equal(str(c, "pur"), "case 2-1/2026");
    rel = json_object_get(c, "rel");
    assert_int_equal(json_array_size(rel), 3);
    assert_string_equal(json_string_value(json_array_get(rel, 2)), "surname");
    /* jti: 128 random bits, different every time. */
    assert_int_equal(dz_b64_decode(str(c, "jti"), strlen(str(c, "jti")), true, &d, &n), 0);
    assert_int_equal(n, 16);
    free(d);
    {
        json_t *c2 = NULL;
        assert_int_equal(dz_assertion_verify(tok2, jwks, &e, &c2, NULL), 0);
        assert_string_not_equal(str(c, "jti"), str(c2, "jti"));
        json_decref(c2);
    }
    assert_int_equal(json_object_size(c), 17);
    json_decref(h);
    json_decref(c);
    free(tok);
    free(tok2);
}

/* jti values stay distinct across refills of the per-thread random pool
 * (32 per refill) and in a forked child (the pool is not inherited). */
/* A caller that must know the jti (the gateway's audit lines) makes it
 * first and hands it in; a jti not of that form is refused. */
static void test_jti_given(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    char jti[DZ_ASSERTION_JTI_LEN + 1];
    char jti2[DZ_ASSERTION_JTI_LEN + 1];
    char *tok;
    json_t *c = NULL;

    (void)state;
    assert_int_equal(dz_assertion_new_jti(jti), 0);
    assert_int_equal(dz_assertion_new_jti(jti2), 0);
    assert_int_equal(strlen(jti), DZ_ASSERTION_JTI_LEN);
    assert_string_not_equal(jti, jti2);
    in.jti = jti;
    tok = sign_in(&in);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
    assert_string_equal(str(c, "jti"), jti);
    json_decref(c);
    free(tok);
    tok = (char *)1;
    for (size_t i = 0; i < 4; i++) {
        static const char *const bad[] = {"short", "AAAAAAAAAAAAAAAAAAAAA\"", "",
                                          "AAAAAAAAAAAAAAAAAAAAAAA"};
        in.jti = bad[i];
        assert_int_equal(dz_assertion_sign(signer, "gw-1", &in, &tok), DZ_ERR_INVAL);
        assert_null(tok);
    }
}

static void test_jti_unique(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    char jtis[80][23];
    int fds[2];
    pid_t pid;

    (void)state;
    for (int i = 0; i < 80; i++) {
        char *tok = sign_in(&in);
        json_t *c = NULL;
        assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
        snprintf(jtis[i], sizeof(jtis[i]), "%s", str(c, "jti"));
        assert_int_equal(strlen(jtis[i]), 22);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(jtis[k], jtis[i]);
        json_decref(c);
        free(tok);
    }
    /* Parent and child both sign right after the fork: different jti. */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *tok = NULL;
        json_t *c = NULL;
        int ok = dz_assertion_sign(signer, "gw-1", &in, &tok) == 0 &&
                 dz_assertion_verify(tok, jwks, &e, &c, NULL) == 0;
        if (ok && write(fds[1], json_string_value(json_object_get(c, "jti")), 22) != 22)
            ok = 0;
        _exit(ok ? 0 : 1);
    }
    {
        char *tok = sign_in(&in);
        json_t *c = NULL;
        char child[23] = {0};
        int st = 0;
        assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
        assert_int_equal(read(fds[0], child, 22), 22);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_string_not_equal(child, str(c, "jti"));
        json_decref(c);
        free(tok);
    }
    close(fds[0]);
    close(fds[1]);
}

static void test_optional_claims_absent(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    json_t *c = NULL;
    char *tok;

    (void)state;
    in.prf = NULL;
    in.body = NULL;
    in.body_len = 0;
    in.tgt = NULL;
    in.pur = NULL;
    in.release = NULL;
    in.amr = DZ_AMR_PWD | DZ_AMR_OTP;
    in.htm = "GET";
    e.htm = "GET";
    e.body = NULL;
    e.body_len = 0;
    tok = sign_in(&in);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
    assert_null(json_object_get(c, "prf"));
    assert_null(json_object_get(c, "bdy"));
    assert_null(json_object_get(c, "tgt"));
    assert_null(json_object_get(c, "pur"));
    assert_null(json_object_get(c, "rel"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "amr"), 1)), "otp");
    json_decref(c);
    free(tok);
    /* A service assertion (acr "none", nobody logged in) may have no amr;
     * any other acr needs at least one method. */
    in.acr = "none";
    in.amr = 0;
    tok = sign_in(&in);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(c, "amr")), 0);
    json_decref(c);
    free(tok);
    in.acr = "low";
    assert_int_equal(dz_assertion_sign(signer, "gw-1", &in, &tok), DZ_ERR_INVAL);
    in.amr = DZ_AMR_PWD;
    /* An empty release list is announced as an empty array. */
    in.release = "";
    tok = sign_in(&in);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(c, "rel")), 0);
    json_decref(c);
    free(tok);
}

static void test_escaping(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    const char *odd = "/a\"b\\c\x01\x1f\t/\xc3\xa4\xe2\x82\xac?q=\xf0\x9f\x98\x80";
    json_t *c = NULL;
    char *tok;

    (void)state;
    in.htu = odd;
    e.htu = odd;
    in.pur = "\"quoted\"\n";
    tok = sign_in(&in);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &c, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(c, "htu")), odd);
    assert_string_equal(json_string_value(json_object_get(c, "pur")), "\"quoted\"\n");
    json_decref(c);
    free(tok);
}

static void test_bad_input(void **state)
{
    struct dz_assertion_in in;
    char *tok = NULL;
    char *huge;

    (void)state;
#define BAD(field, value, err)                                                                     \
    do {                                                                                           \
        in = base_in();                                                                            \
        in.field = value;                                                                          \
        assert_int_equal(dz_assertion_sign(signer, "gw-1", &in, &tok), err);                       \
        assert_null(tok);                                                                          \
    } while (0)
    BAD(ttl_s, 0, DZ_ERR_INVAL);
    BAD(ttl_s, 61, DZ_ERR_INVAL);
    BAD(ttl_s, -5, DZ_ERR_INVAL);
    BAD(sub, "5zjbkqg", DZ_ERR_INVAL);
    BAD(sub, "5ZJBKQ", DZ_ERR_INVAL);
    BAD(sub, NULL, DZ_ERR_INVAL);
    BAD(tgt, "AB12CD34", DZ_ERR_INVAL);
    BAD(amr, 0, DZ_ERR_INVAL);
    BAD(amr, 64, DZ_ERR_INVAL);
    BAD(iss, "", DZ_ERR_INVAL);
    BAD(aud, NULL, DZ_ERR_INVAL);
    BAD(acr, NULL, DZ_ERR_INVAL);
    BAD(sid_b64, "", DZ_ERR_INVAL);
    BAD(htm, NULL, DZ_ERR_INVAL);
    BAD(htu, "/\xff", DZ_ERR_INVAL);         /* not UTF-8 */
    BAD(htu, "/\xc0\xaf", DZ_ERR_INVAL);     /* overlong */
    BAD(htu, "/\xed\xa0\x80", DZ_ERR_INVAL); /* surrogate */
    BAD(pur, "", DZ_ERR_INVAL);
    BAD(auth_time, NOW + 1, DZ_ERR_INVAL);
    BAD(auth_time, 0, DZ_ERR_INVAL);
    BAD(iat, 0, DZ_ERR_INVAL);
    BAD(body, NULL, DZ_ERR_INVAL); /* body_len > 0 */
    BAD(release, "fin,", DZ_ERR_INVAL);
    BAD(release, "fin,,name", DZ_ERR_INVAL);
    BAD(release, "Fin", DZ_ERR_INVAL);
    BAD(release, "a\"b", DZ_ERR_INVAL);
    huge = malloc(DZ_JWS_TOKEN_MAX);
    memset(huge, 'a', DZ_JWS_TOKEN_MAX - 1);
    huge[0] = '/';
    huge[DZ_JWS_TOKEN_MAX - 1] = '\0';
    BAD(htu, huge, DZ_ERR_TOOBIG);
    free(huge);
#undef BAD
    in = base_in();
    assert_int_equal(dz_assertion_sign(signer, "gw\"1", &in, &tok), DZ_ERR_INVAL);
    assert_int_equal(dz_assertion_sign(signer, "gw-1", NULL, &tok), DZ_ERR_INVAL);
}

static void test_request_binding(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e;
    char *tok = sign_in(&in);
    char *tok_nobody;
    static const unsigned char other[] = "{\"notice\":\"hellO\"}";

    (void)state;
    e = base_expect();
    assert_string_equal(reason_of(tok, &e), "ok");
    e.iss = "someone-else";
    assert_string_equal(reason_of(tok, &e), "wrong_issuer");
    e = base_expect();
    e.aud = "court";
    assert_string_equal(reason_of(tok, &e), "wrong_audience");
    e = base_expect();
    e.htm = "GET";
    assert_string_equal(reason_of(tok, &e), "method_mismatch");
    e.htm = "post";
    assert_string_equal(reason_of(tok, &e), "method_mismatch");
    e = base_expect();
    e.htu = "/api/registry/persons/AB12CD3?x=2";
    assert_string_equal(reason_of(tok, &e), "path_mismatch");
    e.htu = "/api/registry/persons/AB12CD3";
    assert_string_equal(reason_of(tok, &e), "path_mismatch");
    e = base_expect();
    e.body = other;
    assert_string_equal(reason_of(tok, &e), "body_mismatch");
    e.body_len = 3;
    assert_string_equal(reason_of(tok, &e), "body_mismatch");
    /* Token with bdy, request without a body. */
    e.body = NULL;
    e.body_len = 0;
    assert_string_equal(reason_of(tok, &e), "body_mismatch");
    /* Unless the tool says it has no body to compare. */
    e.skip_body = true;
    assert_string_equal(reason_of(tok, &e), "ok");
    /* Token without bdy, request with a body. */
    in.body = NULL;
    in.body_len = 0;
    tok_nobody = sign_in(&in);
    e = base_expect();
    assert_string_equal(reason_of(tok_nobody, &e), "body_mismatch");
    e.body = NULL;
    e.body_len = 0;
    assert_string_equal(reason_of(tok_nobody, &e), "ok");
    /* NULL expectations are skipped (tools only). */
    e.iss = e.aud = e.htm = e.htu = NULL;
    assert_string_equal(reason_of(tok_nobody, &e), "ok");
    free(tok_nobody);
    free(tok);
}

static void test_freshness(void **state)
{
    struct dz_assertion_in in = base_in(); /* iat NOW, exp NOW + 30 */
    struct dz_assertion_expect e = base_expect();
    char *tok = sign_in(&in);

    (void)state;
    e.leeway_s = 5;
    e.now = NOW + 34;
    assert_string_equal(reason_of(tok, &e), "ok");
    e.now = NOW + 35;
    assert_string_equal(reason_of(tok, &e), "expired");
    e.now = NOW + 10000;
    assert_string_equal(reason_of(tok, &e), "expired");
    e.now = NOW - 5;
    assert_string_equal(reason_of(tok, &e), "ok");
    e.now = NOW - 6;
    assert_string_equal(reason_of(tok, &e), "not_yet_valid");
    e.leeway_s = 0;
    e.now = NOW + 30;
    assert_string_equal(reason_of(tok, &e), "expired");
    e.now = NOW - 1;
    assert_string_equal(reason_of(tok, &e), "not_yet_valid");
    /* Leeway is clamped: a verifier cannot accept a day-old token. */
    e.leeway_s = 86400;
    e.now = NOW + 30 + DZ_ASSERTION_LEEWAY_MAX;
    assert_string_equal(reason_of(tok, &e), "expired");
    e.leeway_s = -10;
    e.now = NOW + 29;
    assert_string_equal(reason_of(tok, &e), "ok");
    /* A clock the sums cannot handle is an error, not a pass. */
    e.now = INT64_MAX;
    assert_string_equal(reason_of(tok, &e), "internal_error");
    e.now = -1;
    assert_string_equal(reason_of(tok, &e), "internal_error");
    free(tok);
}

/* Valid claims for base_expect() without a body; each case below changes one
 * member and signs the result with the real key, so only that is wrong. */
static json_t *good_claims(void)
{
    json_t *c = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:[s], s:I, s:s, s:s}", "iss", "darvaza-test",
        "sub", "AB12CD3", "aud", "registry", "iat", (json_int_t)NOW, "exp", (json_int_t)NOW + 30,
        "jti", "AAAAAAAAAAAAAAAAAAAAAA", "sid", "s", "acr", "low", "amr", "pwd", "auth_time",
        (json_int_t)NOW, "htm", "POST", "htu", "/api/registry/persons/AB12CD3?x=1");
    assert_non_null(c);
    return c;
}

/* Sign c (consumed) with typ and return the verification reason. */
static const char *forged_reason(json_t *c, const char *typ)
{
    struct dz_assertion_expect e = base_expect();
    char *tok = NULL;
    const char *reason;

    assert_int_equal(dz_jws_sign_es256(signer, "gw-1", typ, c, &tok), 0);
    json_decref(c);
    e.body = NULL;
    e.body_len = 0;
    reason = reason_of(tok, &e);
    free(tok);
    return reason;
}

/* good_claims() with member k set to v (consumed), or removed when v is NULL. */
static const char *with(const char *k, json_t *v)
{
    json_t *c = good_claims();

    if (v)
        assert_int_equal(json_object_set_new(c, k, v), 0);
    else
        assert_int_equal(json_object_del(c, k), 0);
    return forged_reason(c, DZ_ASSERTION_TYP);
}

static void test_claim_checks(void **state)
{
    static const char *const required[] = {"iss", "sub", "aud", "iat",       "exp", "jti",
                                           "sid", "acr", "amr", "auth_time", "htm", "htu"};
    json_t *c;

    (void)state;
    /* The baseline is accepted: each case then changes one thing. */
    assert_string_equal(forged_reason(good_claims(), DZ_ASSERTION_TYP), "ok");
    assert_string_equal(forged_reason(good_claims(), "JWT"), "wrong_type");
    assert_string_equal(forged_reason(good_claims(), NULL), "wrong_type");
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        assert_string_equal(with(required[i], NULL), "malformed");

    /* Lifetime over 60 s, exp not after iat, auth_time after iat, huge values. */
    assert_string_equal(with("exp", json_integer(NOW + 61)), "bad_lifetime");
    assert_string_equal(with("exp", json_integer(NOW)), "bad_lifetime");
    assert_string_equal(with("auth_time", json_integer(NOW + 1)), "bad_lifetime");
    assert_string_equal(with("auth_time", json_integer(0)), "bad_lifetime");
    c = good_claims();
    json_object_set_new(c, "iat", json_integer(INT64_MAX - 10));
    json_object_set_new(c, "exp", json_integer(INT64_MAX));
    assert_string_equal(forged_reason(c, DZ_ASSERTION_TYP), "bad_lifetime");

    /* Subject and target must be normalised FINs. */
    assert_string_equal(with("sub", json_string("ab12cd3")), "invalid_subject");
    assert_string_equal(with("sub", json_string("AB12CD3 ")), "invalid_subject");
    assert_string_equal(with("sub", json_string("AB12CD")), "invalid_subject");
    assert_string_equal(with("tgt", json_string("X")), "invalid_target");
    assert_string_equal(with("tgt", json_string("AB12CD3")), "ok");

    /* Mistyped claims. */
    assert_string_equal(with("iat", json_string("1800000000")), "malformed");
    assert_string_equal(with("iat", json_real(1800000000.5)), "malformed");
    assert_string_equal(with("amr", json_array()), "malformed"); /* acr "low" */
    assert_string_equal(with("amr", json_string("pwd")), "malformed");
    assert_string_equal(with("amr", json_pack("[i]", 1)), "malformed");
    assert_string_equal(with("bdy", json_integer(7)), "malformed");
    assert_string_equal(with("prf", json_string("")), "malformed");
    assert_string_equal(with("pur", json_null()), "malformed");
    assert_string_equal(with("rel", json_pack("[i]", 1)), "malformed");
    assert_string_equal(with("rel", json_string("fin")), "malformed");
    assert_string_equal(with("sub", json_pack("[s]", "AB12CD3")), "malformed");
    assert_string_equal(with("jti", json_string("")), "malformed");
    /* aud as an array is not accepted: we always issue a string. */
    assert_string_equal(with("aud", json_pack("[s]", "registry")), "malformed");
    /* A string with a NUL inside is not the string it starts with. */
    assert_string_equal(with("aud", json_stringn("registry\0x", 10)), "malformed");
    /* bdy present for a request without a body. */
    assert_string_equal(with("bdy", json_string("AAAA")), "body_mismatch");
}

static void test_signature_level(void **state)
{
    struct dz_assertion_in in = base_in();
    struct dz_assertion_expect e = base_expect();
    char *tok = sign_in(&in);
    struct dz_jwks *other = NULL;
    char *bad;
    EVP_PKEY *k = EVP_EC_gen("P-256");

    (void)state;
    /* Same kid, another key: bad signature. */
    assert_int_equal(dz_jwks_new(&other), 0);
    assert_int_equal(dz_jwks_add(other, "gw-1", k), 0);
    {
        const char *reason = NULL;
        assert_int_equal(dz_assertion_verify(tok, other, &e, NULL, &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "bad_signature");
    }
    dz_jwks_free(other);
    /* Another kid only. */
    assert_int_equal(dz_jwks_new(&other), 0);
    assert_int_equal(dz_jwks_add(other, "gw-2", dz_signer_public_key(signer)), 0);
    {
        const char *reason = NULL;
        assert_int_equal(dz_assertion_verify(tok, other, &e, NULL, &reason), DZ_ERR_DENIED);
        assert_string_equal(reason, "unknown_key");
    }
    dz_jwks_free(other);
    EVP_PKEY_free(k);
    bad = strdup(tok);
    bad[strlen(bad) - 5] ^= 1;
    assert_string_not_equal(reason_of(bad, &e), "ok");
    free(bad);
    assert_string_equal(reason_of("not a token", &e), "malformed");
    assert_string_equal(reason_of("", &e), "malformed");
    {
        const char *reason = NULL;
        assert_int_equal(dz_assertion_verify(NULL, jwks, &e, NULL, &reason), DZ_ERR_INVAL);
        assert_string_equal(reason, "internal_error");
    }
    free(tok);
}

static void test_amr(void **state)
{
    json_t *a = NULL;

    (void)state;
    assert_string_equal(dz_amr_name(DZ_AMR_PWD), "pwd");
    assert_string_equal(dz_amr_name(DZ_AMR_OTP), "otp");
    assert_string_equal(dz_amr_name(DZ_AMR_SC), "sc");
    assert_string_equal(dz_amr_name(DZ_AMR_PIN), "pin");
    assert_string_equal(dz_amr_name(DZ_AMR_MOB), "mob");
    assert_string_equal(dz_amr_name(DZ_AMR_QR), "qr");
    assert_null(dz_amr_name(0));
    assert_null(dz_amr_name(3));
    assert_null(dz_amr_name(64));
    assert_int_equal(dz_amr_to_json(DZ_AMR_SC | DZ_AMR_PIN, &a), 0);
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "sc");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "pin");
    json_decref(a);
    assert_int_equal(dz_amr_to_json(128, &a), DZ_ERR_INVAL);
    assert_null(a);
    assert_int_equal(dz_amr_to_json(0, &a), 0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_jti_unique),
        cmocka_unit_test(test_jti_given),
        cmocka_unit_test(test_optional_claims_absent),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_request_binding),
        cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_claim_checks),
        cmocka_unit_test(test_signature_level),
        cmocka_unit_test(test_amr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
