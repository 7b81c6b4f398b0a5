/*
 * test_oidc_park.c - a parked authorization request (oidc_authorize.c):
 * an /authorize without a session parks the request for the portal's
 * sign-in, and /authorize/resume finishes it.  What is parked is only what
 * the check read (oidc_authreq.h dz_oidc_authreq_compact): a request
 * padded to the parser's 16 KiB with parameters nobody reads, and with the
 * longest state and nonce there may be, parks at most
 * DZ_OIDC_PARKED_QUERY_MAX bytes, and resumes to the same answer (the
 * exact state, the nonce and PKCE challenge bound to the code, the level
 * asked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/secret.h"
#include "core/rctx.h"
#include "harness/fake_gw.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_params.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#define FIN "5ABC123"
#define RP_URI "https://rp.test/cb"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static const char policy[] = "service: rp\n"
                             "registered_as: \"DIS-7100\"\n"
                             "oidc:\n"
                             "  client_id: rp\n"
                             "  token_endpoint_auth_method: private_key_jwt\n"
                             "  jwks: '{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"1\","
                             "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
                             "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\"}]}'\n"
                             "  redirect_uris: [" RP_URI "]\n"
                             "  scopes: [openid, profile]\n"
                             "  release: [fin]\n"
                             "  acr_default: low\n"
                             "  consent: pre-approved\n";

static int setup(void **state)
{
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){.policy_yaml = policy}, &g), 0);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
}

/* n copies of ch, percent-encoded (ch not unreserved: 3 bytes each). */
static void repeat_enc(char *out, const char *enc, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(out, enc);
}

/* The value of name in the query part of url, copied (still encoded). */
static void url_param(const char *url, const char *name, char *out, size_t cap)
{
    char key[32];
    const char *p;
    size_t n;

    snprintf(key, sizeof(key), "%s=", name);
    p = strstr(url, key);
    assert_non_null(p);
    p += strlen(key);
    n = strcspn(p, "&");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_padded_request_parks_compact_and_resumes(void **state)
{
    struct fake_gw *g = *state;
    char *path = malloc(DZ_OIDC_INPUT_MAX + 64);
    char *state_enc = malloc(3 * DZ_OIDC_STATE_MAX + 1);
    char *nonce = malloc(DZ_OIDC_STATE_MAX + 1);
    char *pad = malloc(DZ_OIDC_INPUT_MAX);
    char id[DZ_OIDC_SECRET_LEN + 1];
    char code[DZ_OIDC_SECRET_LEN + 1];
    char token[64];
    char got[3 * DZ_OIDC_STATE_MAX + 1];
    const char *loc;
    struct dz_req *r;
    json_t *pend = NULL;
    json_t *rec = NULL;
    const char *q;
    size_t len;

    assert_non_null(path && state_enc && nonce && pad);
    /* The longest state there may be, every byte escaped; the longest
     * nonce; a login_hint, prompt, max_age, acr_values and language to
     * carry; and padding nobody reads up to the parser's limit. */
    repeat_enc(state_enc, "%21", DZ_OIDC_STATE_MAX);
    memset(nonce, 'n', DZ_OIDC_STATE_MAX);
    nonce[DZ_OIDC_STATE_MAX] = '\0';
    len = (size_t)snprintf(path, DZ_OIDC_INPUT_MAX + 64,
                           "/authorize?client_id=rp&redirect_uri=https%%3A%%2F%%2Frp.test%%2Fcb"
                           "&response_type=code&scope=openid%%20profile&code_challenge_method=S256"
                           "&code_challenge=" CHALLENGE "&state=%s&nonce=%s&prompt=login"
                           "&max_age=600&acr_values=substantial&login_hint=" FIN
                           "&ui_locales=en-GB&pad=",
                           state_enc, nonce);
    memset(pad, 'A', DZ_OIDC_INPUT_MAX - 1 - (len - strlen("/authorize?")));
    pad[DZ_OIDC_INPUT_MAX - 1 - (len - strlen("/authorize?"))] = '\0';
    strcat(path, pad);
    assert_int_equal(strlen(path) - strlen("/authorize?"), DZ_OIDC_INPUT_MAX - 1);

    /* No session: parked, off to the portal's sign-in. */
    r = fake_gw_req(g, "GET", path);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 302);
    loc = fake_req_resp_header(r, "location");
    assert_non_null(loc);
    assert_true(strncmp(loc, "/?oidc=", 7) == 0);
    url_param(loc, "oidc", id, sizeof(id));
    assert_int_equal(strlen(id), DZ_OIDC_SECRET_LEN);
    fake_req_free(r);

    /* What the store holds: the checked request only, bounded. */
    assert_int_equal(dz_oidc_state_get(g->gw.store, DZ_OIDC_NS_REQUEST, id, false, &pend), 0);
    q = json_string_value(json_object_get(pend, "q"));
    assert_non_null(q);
    assert_true(strlen(q) <= DZ_OIDC_PARKED_QUERY_MAX);
    assert_null(strstr(q, "pad="));
    assert_non_null(strstr(q, state_enc));
    {
        unsigned char h[32];
        struct dz_buf b;

        dz_sha256(id, strlen(id), h);
        dz_buf_init(&b, DZ_STORE_VAL_MAX);
        assert_int_equal(dz_store_get(g->gw.store, DZ_OIDC_NS_REQUEST, h, sizeof(h), &b), 0);
        assert_true(b.len <= DZ_OIDC_PARKED_QUERY_MAX + 64);
        dz_buf_wipe(&b);
    }
    json_decref(pend);

    /* Signed in at the level asked: resumed to a code for the client. */
    fake_gw_session(g, FIN, "password", DZ_AMR_PWD | DZ_AMR_OTP, "substantial", NULL, token);
    snprintf(path, DZ_OIDC_INPUT_MAX, "/authorize/resume?id=%s", id);
    r = fake_gw_req(g, "GET", path);
    fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 302);
    loc = fake_req_resp_header(r, "location");
    assert_non_null(loc);
    assert_true(strncmp(loc, RP_URI "?", strlen(RP_URI) + 1) == 0);
    url_param(loc, "state", got, sizeof(got));
    assert_string_equal(got, state_enc); /* the exact state, back */
    url_param(loc, "code", code, sizeof(code));
    fake_req_free(r);

    /* The code carries the nonce and the PKCE challenge of the request. */
    assert_int_equal(dz_oidc_state_get(g->gw.store, DZ_OIDC_NS_CODE, code, false, &rec), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "nonce")), nonce);
    assert_string_equal(json_string_value(json_object_get(rec, "challenge")), CHALLENGE);
    assert_string_equal(json_string_value(json_object_get(rec, "acr")), "substantial");
    json_decref(rec);
    free(path);
    free(state_enc);
    free(nonce);
    free(pad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_padded_request_parks_compact_and_resumes, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
