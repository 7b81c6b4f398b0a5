/*
 * test_oidc_params.c - the parsers of OpenID Connect input: the query and
 * form parser (oidc_params.c), HTTP Basic client credentials, the
 * authorization request check against a client registry compiled from a
 * policy (oidc_authreq.c, policy_oidc.c), and the claim checks of a client
 * assertion (oidc_jwt.c), each with the bad input it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "keys/jws.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_params.h"
#include "policy/policy_oidc.h"

#define JWKS                                                                                       \
    "{\"keys\":[{\"crv\":\"P-256\",\"x\":\"8cLFzRJ4qhP_G3qPkO1Ob6f6nUBO6GwYChxL5xDNOkQ\","         \
    "\"y\":\"2QQt8c6XbLgvzoLk5avqnp0giT-fuAg4q-8W0Y3MtKA\",\"kty\":\"EC\",\"kid\":\"k1\","         \
    "\"use\":\"sig\",\"alg\":\"ES256\"}]}"

static const char policy[] = "service: rp\n"
                             "registered_as: DIS-0009\n"
                             "oidc:\n"
                             "  client_id: rp-1\n"
                             "  token_endpoint_auth_method: private_key_jwt\n"
                             "  jwks: '" JWKS "'\n"
                             "  redirect_uris: [https://rp.example/cb, http://127.0.0.1:8000/cb]\n"
                             "  scopes: [openid, profile]\n"
                             "  acr_default: low\n"
                             "  acr_allowed: [low, substantial]\n"
                             "  consent: ask\n";

/* ---- the form parser ------------------------------------------------------------- */

static void test_params_good(void **state)
{
    struct dz_oidc_params p;
    const char *in = "a=1&b=x+y%20z&&c&d=%7e%2F&e=";
    size_t n;

    assert_int_equal(dz_oidc_params_parse(in, strlen(in), &p), 0);
    assert_int_equal(p.n, 5);
    assert_string_equal(dz_oidc_params_get(&p, "a", NULL), "1");
    assert_string_equal(dz_oidc_params_get(&p, "b", &n), "x y z");
    assert_int_equal(n, 5);
    assert_string_equal(dz_oidc_params_get(&p, "c", NULL), "");
    assert_string_equal(dz_oidc_params_get(&p, "d", NULL), "~/");
    assert_string_equal(dz_oidc_params_get(&p, "e", NULL), "");
    assert_null(dz_oidc_params_get(&p, "f", NULL));
    dz_oidc_params_cleanup(&p);
    dz_oidc_params_cleanup(&p); /* twice is harmless */
    assert_int_equal(dz_oidc_params_parse("", 0, &p), 0);
    assert_int_equal(p.n, 0);
    dz_oidc_params_cleanup(&p);
}

static void test_params_bad(void **state)
{
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        {"a=1&a=2", DZ_ERR_EXISTS}, /* RFC 6749 3.1: never twice */
        {"a=%", DZ_ERR_PARSE},
        {"a=%4", DZ_ERR_PARSE},
        {"a=%zz", DZ_ERR_PARSE},
        {"a=%00", DZ_ERR_PARSE}, /* a NUL inside a value */
        {"a=%0a", DZ_ERR_PARSE}, /* a control character */
        {"A=1", DZ_ERR_PARSE},   /* names are [a-z0-9_] */
        {"a-b=1", DZ_ERR_PARSE},
        {"=1", DZ_ERR_PARSE},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", DZ_ERR_TOOBIG},
    };
    struct dz_oidc_params p;
    char many[512] = "";

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = dz_oidc_params_parse(cases[i].in, strlen(cases[i].in), &p);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, expected %d", cases[i].in, rc, cases[i].rc);
        assert_int_equal(p.n, 0);
        assert_null(p.arena);
    }
    for (int i = 0; i <= DZ_OIDC_PARAMS_MAX; i++) {
        char one[16];
        snprintf(one, sizeof(one), "p%d=1&", i);
        strcat(many, one);
    }
    assert_int_equal(dz_oidc_params_parse(many, strlen(many), &p), DZ_ERR_TOOBIG);
    {
        size_t big = DZ_OIDC_INPUT_MAX + 1;
        char *b = malloc(big);
        assert_non_null(b);
        memset(b, 'a', big);
        assert_int_equal(dz_oidc_params_parse(b, big, &p), DZ_ERR_TOOBIG);
        free(b);
    }
}

static void test_basic(void **state)
{
    char id[32];
    char secret[32];

    /* "rp-1:s3cr%3At" -> the secret is form-decoded: "s3cr:t" */
    assert_int_equal(
        dz_oidc_basic_parse("Basic cnAtMTpzM2NyJTNBdA==", id, sizeof(id), secret, sizeof(secret)),
        0);
    assert_string_equal(id, "rp-1");
    assert_string_equal(secret, "s3cr:t");
    assert_int_equal(
        dz_oidc_basic_parse("basic   cnAtMTpzM2NyJTNBdA==", id, sizeof(id), secret, sizeof(secret)),
        0);
    assert_int_equal(dz_oidc_basic_parse("Bearer abc", id, sizeof(id), secret, sizeof(secret)),
                     DZ_ERR_PARSE);
    assert_string_equal(id, "");
    assert_int_equal(dz_oidc_basic_parse("Basic !!!", id, sizeof(id), secret, sizeof(secret)),
                     DZ_ERR_PARSE);
    /* "nocolon" */
    assert_int_equal(
        dz_oidc_basic_parse("Basic bm9jb2xvbg==", id, sizeof(id), secret, sizeof(secret)),
        DZ_ERR_PARSE);
    /* ":x" - an empty id */
    assert_int_equal(dz_oidc_basic_parse("Basic Ong=", id, sizeof(id), secret, sizeof(secret)),
                     DZ_ERR_PARSE);
    /* an id longer than the buffer */
    assert_int_equal(
        dz_oidc_basic_parse("Basic cnAtMTpzM2NyJTNBdA==", id, 3, secret, sizeof(secret)),
        DZ_ERR_TOOBIG);
    assert_string_equal(secret, "");
}

static void test_urlencode(void **state)
{
    char out[32];

    assert_int_equal(dz_oidc_urlencode("a b&c=d/\xc3\xa9~", 11, out, sizeof(out)), 23);
    assert_string_equal(out, "a%20b%26c%3Dd%2F%C3%A9~");
    assert_int_equal(dz_oidc_urlencode("abcdef", 6, out, 4), (size_t)-1);
    assert_string_equal(out, "");
}

/* ---- the authorization request ------------------------------------------------------ */

static struct dz_policy_set *load(const char *text, char *err, size_t err_len)
{
    struct dz_policy_set *s = NULL;

    if (dz_policy_load_buf("rp.yaml", text, strlen(text), &s, err, err_len) != 0)
        return NULL;
    return s;
}

static enum dz_oidc_authreq_error check(const struct dz_policy_set *s, const char *q,
                                        struct dz_oidc_authreq *ar, const char **code)
{
    struct dz_oidc_params p;
    const char *detail;
    enum dz_oidc_authreq_error e;

    assert_int_equal(dz_oidc_params_parse(q, strlen(q), &p), 0);
    e = dz_oidc_authreq_check(s, &p, ar, code, &detail);
    dz_oidc_params_cleanup(&p);
    return e;
}

#define GOOD_REQ                                                                                   \
    "response_type=code&client_id=rp-1&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid"    \
    "&state=s%20t&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"              \
    "&code_challenge_method=S256"

static void test_authreq(void **state)
{
    char err[512];
    struct dz_policy_set *s = load(policy, err, sizeof(err));
    struct dz_oidc_authreq ar;
    const char *code;
    char q[1600];

    if (!s)
        fail_msg("%s", err);
    assert_int_equal(check(s, GOOD_REQ, &ar, &code), DZ_OIDC_AUTHREQ_OK);
    assert_string_equal(ar.state, "s t");
    assert_string_equal(ar.redirect_uri, "https://rp.example/cb");
    assert_int_equal(ar.acr, DZ_ACR_LOW);
    assert_int_equal(ar.max_age, -1);
    /* acr_values: the first level the client may ask; high is not allowed */
    assert_int_equal(check(s, GOOD_REQ "&acr_values=high%20substantial", &ar, &code),
                     DZ_OIDC_AUTHREQ_OK);
    assert_int_equal(ar.acr, DZ_ACR_SUBSTANTIAL);
    assert_int_equal(check(s, GOOD_REQ "&acr_values=high", &ar, &code), DZ_OIDC_AUTHREQ_REDIRECT);
    assert_int_equal(check(s,
                           GOOD_REQ "&prompt=login%20consent&max_age=60&login_hint=abc1234"
                                    "&ui_locales=en-GB%20az",
                           &ar, &code),
                     DZ_OIDC_AUTHREQ_OK);
    assert_true(ar.prompt_login && ar.prompt_consent && !ar.prompt_none);
    assert_int_equal(ar.max_age, 60);
    assert_string_equal(ar.login_hint, "ABC1234");
    assert_string_equal(ar.lang, "en");

    /* shown to the person, never redirected */
    assert_int_equal(check(s, "response_type=code", &ar, &code), DZ_OIDC_AUTHREQ_SHOW);
    assert_string_equal(code, "invalid_request");
    assert_int_equal(
        check(s, "client_id=other&redirect_uri=https%3A%2F%2Frp.example%2Fcb", &ar, &code),
        DZ_OIDC_AUTHREQ_SHOW);
    assert_string_equal(code, "unknown_client");
    assert_int_equal(
        check(s, "client_id=rp-1&redirect_uri=https%3A%2F%2Frp.example%2Fcb%2F", &ar, &code),
        DZ_OIDC_AUTHREQ_SHOW);
    assert_string_equal(code, "invalid_redirect_uri");
    assert_int_equal(
        check(s, "client_id=rp-1&redirect_uri=https%3A%2F%2Frp.example%2Fcbx", &ar, &code),
        DZ_OIDC_AUTHREQ_SHOW);
    assert_int_equal(check(s, "client_id=rp-1", &ar, &code), DZ_OIDC_AUTHREQ_SHOW);
    snprintf(q, sizeof(q),
             "%s&state=", "client_id=rp-1&redirect_uri=https%3A%2F%2Frp.example%2Fcb");
    memset(q + strlen(q), 'x', 513);
    q[strlen("client_id=rp-1&redirect_uri=https%3A%2F%2Frp.example%2Fcb&state=") + 513] = '\0';
    assert_int_equal(check(s, q, &ar, &code), DZ_OIDC_AUTHREQ_SHOW);

    /* back to the client */
    static const struct {
        const char *tail;
        const char *code;
    } back[] = {
        {"&response_type=token&scope=openid&code_challenge_method=S256",
         "unsupported_response_type"},
        {"&response_type=code&scope=profile", "invalid_scope"},
        {"&response_type=code&scope=openid%20email", "invalid_scope"},
        {"&response_type=code&scope=openid%20phone", "invalid_scope"},
        {"&response_type=code&scope=openid", "invalid_request"}, /* no PKCE */
        {"&response_type=code&scope=openid&code_challenge_method=plain"
         "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
         "invalid_request"},
        {"&response_type=code&scope=openid&code_challenge_method=S256&code_challenge=short",
         "invalid_request"},
        {"&response_type=code&scope=openid&request=x", "request_not_supported"},
    };
    for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
        snprintf(q, sizeof(q),
                 "client_id=rp-1&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A8000%%2Fcb"
                 "&state=z%s",
                 back[i].tail);
        if (check(s, q, &ar, &code) != DZ_OIDC_AUTHREQ_REDIRECT || strcmp(code, back[i].code))
            fail_msg("%s: %s", back[i].tail, code ? code : "(ok)");
        assert_string_equal(ar.state, "z");
        assert_string_equal(ar.redirect_uri, "http://127.0.0.1:8000/cb");
    }
    assert_int_equal(check(s, GOOD_REQ "&prompt=none%20login", &ar, &code),
                     DZ_OIDC_AUTHREQ_REDIRECT);
    assert_int_equal(check(s, GOOD_REQ "&prompt=sometimes", &ar, &code), DZ_OIDC_AUTHREQ_REDIRECT);
    assert_int_equal(check(s, GOOD_REQ "&max_age=-1", &ar, &code), DZ_OIDC_AUTHREQ_REDIRECT);
    assert_int_equal(check(s, GOOD_REQ "&login_hint=%3Cscript%3E", &ar, &code),
                     DZ_OIDC_AUTHREQ_REDIRECT);
    dz_policy_set_free(s);
}

/* ---- the oidc: block ------------------------------------------------------------ */

static void test_policy_oidc_errors(void **state)
{
    static const struct {
        const char *from;
        const char *to;
        const char *err;
    } cases[] = {
        {"https://rp.example/cb,", "http://rp.example/cb,",
         "rp.yaml:7: oidc.redirect_uris: https, or http only to a loopback host"},
        {"https://rp.example/cb,", "https://rp.example/cb#f,", "no blanks, fragments"},
        {"https://rp.example/cb,", "https://rp.example,", "expected a path after the host"},
        {"consent: ask", "consent: maybe",
         "rp.yaml:11: oidc.consent: expected pre-approved or ask"},
        {"acr_default: low", "acr_default: high",
         "oidc.acr_default: \"high\" is not in acr_allowed"},
        {"scopes: [openid, profile]", "scopes: [profile]", "oidc.scopes: must include openid"},
        {"  consent: ask\n", "  consent: ask\n  secret_file: /x\n",
         "oidc.secret_file: does not go with private_key_jwt"},
        {"  consent: ask\n", "  consent: ask\n  colour: blue\n",
         "rp.yaml:12: oidc.colour: unknown key"},
        {"jwks: '", "jwks: '{\"keys\":[]}' #", "oidc.jwks: expected a JSON Web Key Set"},
        {"registered_as: DIS-0009\n", "", "registered_as: required key is missing"},
        /* The key set by URL: https only, never with an inline set. */
        {"jwks: '" JWKS "'", "jwks_uri: http://127.0.0.1:9/jwks",
         "rp.yaml:6: oidc.jwks_uri: https only"},
        {"jwks: '" JWKS "'", "jwks_uri: https://rp.example/k#x", "no blanks, fragments"},
        {"  consent: ask\n", "  consent: ask\n  jwks_uri: https://rp.example/jwks\n",
         "oidc.jwks_uri: give jwks or jwks_uri, not both"},
        {"  consent: ask\n", "  consent: ask\n  jwks_max_age: 1h\n",
         "oidc.jwks_max_age: goes only with jwks_uri"},
        {"jwks: '" JWKS "'", "jwks_uri: https://rp.example/jwks\n  jwks_min_interval: 0s",
         "oidc.jwks_min_interval: expected a duration from 1s to 1h"},
        {"jwks: '" JWKS "'", "jwks_uri: https://rp.example/jwks\n  jwks_max_age: 2d",
         "oidc.jwks_max_age: expected a duration from 1m to 24h"},
        {"code_lifetime", "code_lifetime", ""},
    };
    char text[2048];
    char err[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *at = strstr(policy, cases[i].from);
        struct dz_policy_set *s;
        if (!cases[i].err[0])
            continue;
        assert_non_null(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - policy), policy, cases[i].to,
                 at + strlen(cases[i].from));
        s = load(text, err, sizeof(err));
        if (s || !strstr(err, cases[i].err))
            fail_msg("case %zu: loaded %d, err '%s', expected '%s'", i, s != NULL, err,
                     cases[i].err);
    }
}

static void test_policy_jwks_uri(void **state)
{
    char text[2048];
    char err[512];
    const char *at = strstr(policy, "jwks: '");
    const char *end = at ? strchr(at + 7, '\'') : NULL;
    const struct dz_policy_service *svc;
    struct dz_policy_set *s;

    assert_non_null(end);
    snprintf(text, sizeof(text),
             "%.*sjwks_uri: https://rp.example/jwks.json\n"
             "  jwks_min_interval: 5s%s",
             (int)(at - policy), policy, end + 1);
    s = load(text, err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    svc = dz_policy_oidc_client(s, "rp-1");
    assert_non_null(svc);
    assert_string_equal(svc->oidc->jwks_uri, "https://rp.example/jwks.json");
    assert_null(svc->oidc->jwks);
    assert_int_equal(svc->oidc->jwks_max_age_ms, 3600000); /* the default */
    assert_int_equal(svc->oidc->jwks_min_interval_ms, 5000);
    dz_policy_set_free(s);
}

static void test_policy_secret(void **state)
{
    char dir[] = "/tmp/test_oidc_XXXXXX";
    char path[128];
    char text[1024];
    char err[512];
    struct dz_policy_set *s;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/rp.secret", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("0123456789abcdef0123456789abcdef-long-enough\n", f);
    fclose(f);
    chmod(path, 0644);
    snprintf(text, sizeof(text),
             "service: rp\nregistered_as: DIS-1\noidc:\n  client_id: rp-2\n"
             "  token_endpoint_auth_method: client_secret_basic\n  secret_file: %s\n"
             "  redirect_uris: [https://rp.example/cb]\n  consent: pre-approved\n",
             path);
    assert_null(load(text, err, sizeof(err))); /* group and others may read it */
    assert_non_null(strstr(err, "oidc.secret_file"));
    chmod(path, 0600);
    s = load(text, err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    {
        const struct dz_policy_service *svc = dz_policy_oidc_client(s, "rp-2");
        unsigned char zero[32] = {0};
        assert_non_null(svc);
        assert_int_equal(svc->n_routes, 0);
        assert_null(svc->upstream);
        assert_true(svc->oidc->consent_preapproved);
        assert_int_equal(svc->oidc->code_lifetime_ms, 30000);
        assert_memory_not_equal(svc->oidc->secret_hash, zero, 32);
        assert_null(dz_policy_oidc_client(s, "rp-3"));
    }
    dz_policy_set_free(s);
    unlink(path);
    rmdir(dir);
}

/* ---- client assertions ------------------------------------------------------------ */

static int claims_check(const char *json, int64_t now, const char **reason)
{
    json_t *c = json_loads(json, 0, NULL);
    const char *jti;
    int64_t exp;
    int rc;

    assert_non_null(c);
    rc = dz_oidc_assertion_check(c, "rp-1", "https://gw/token", "https://gw", now, 30, &jti, &exp,
                                 reason);
    json_decref(c);
    return rc;
}

static void test_assertion_claims(void **state)
{
    const char *why;

    assert_int_equal(claims_check("{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://gw/token\","
                                  "\"exp\":1100,\"iat\":1000,\"jti\":\"j1\"}",
                                  1000, &why),
                     0);
    assert_int_equal(
        claims_check("{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":[\"x\",\"https://gw\"],"
                     "\"exp\":1100,\"jti\":\"j1\"}",
                     1000, &why),
        0);
    static const struct {
        const char *claims;
        const char *why;
    } bad[] = {
        {"{\"iss\":\"rp-2\",\"sub\":\"rp-1\",\"aud\":\"https://gw\",\"exp\":1100,\"jti\":\"j\"}",
         "wrong_issuer"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-2\",\"aud\":\"https://gw\",\"exp\":1100,\"jti\":\"j\"}",
         "wrong_subject"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://other\",\"exp\":1100,\"jti\":\"j\"}",
         "wrong_audience"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://gw\",\"exp\":900,\"jti\":\"j\"}",
         "expired"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://gw\",\"exp\":5000,\"jti\":\"j\"}",
         "bad_lifetime"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://"
         "gw\",\"exp\":\"1100\",\"jti\":\"j\"}",
         "bad_lifetime"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://"
         "gw\",\"exp\":1100,\"iat\":2000,\"jti\":\"j\"}",
         "not_yet_valid"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://gw\",\"exp\":1100}", "missing_jti"},
        {"{\"iss\":\"rp-1\",\"sub\":\"rp-1\",\"aud\":\"https://gw\",\"exp\":1100,\"jti\":\"a b\"}",
         "missing_jti"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (claims_check(bad[i].claims, 1000, &why) != DZ_ERR_DENIED || strcmp(why, bad[i].why))
            fail_msg("%s: %s", bad[i].claims, why);
    }
}

/* alg:none and HS256 never reach the claim check: the verifier knows ES256 only. */
static void test_assertion_algorithms(void **state)
{
    struct dz_jwks *k = NULL;
    json_t *claims = NULL;
    const char *why = NULL;
    /* {"alg":"none"}.{"iss":"rp-1"}. and {"alg":"HS256","kid":"k1"}.{...}.sig */
    static const char none[] = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJycC0xIn0.";
    static const char hs[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJycC0xIn0."
                             "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl";

    assert_int_equal(dz_jwks_parse(JWKS, strlen(JWKS), &k), 0);
    assert_int_not_equal(dz_jws_verify_detail(none, strlen(none), k, NULL, NULL, &claims, &why), 0);
    assert_null(claims);
    assert_int_equal(dz_jws_verify_detail(hs, strlen(hs), k, NULL, NULL, &claims, &why),
                     DZ_ERR_DENIED);
    assert_string_equal(why, "bad_algorithm");
    dz_jwks_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_good),
        cmocka_unit_test(test_params_bad),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_urlencode),
        cmocka_unit_test(test_authreq),
        cmocka_unit_test(test_policy_oidc_errors),
        cmocka_unit_test(test_policy_jwks_uri),
        cmocka_unit_test(test_policy_secret),
        cmocka_unit_test(test_assertion_claims),
        cmocka_unit_test(test_assertion_algorithms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
