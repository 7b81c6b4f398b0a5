/*
 * test_api_password.c - POST /auth/password (gateway/auth/api_auth.c)
 * through the router on the request-layer harness: the answers and codes of
 * docs/api.md, the session cookie, the audit line before the answer, the
 * lockout, and a client that goes away while argon2id runs on the pool.
 * (tests/unit/test_auth_password.c covers the decision table underneath.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rctx.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "state/accounts.h"
#include "state/totp.h"

#define FIN "5ABC123"
#define PASSWORD "correct horse battery"

static const unsigned char seed[20] = "12345678901234567890";

static int setup(void **state)
{
    struct fake_gw_opts o = {.lockout = "fin_attempts: 3"};
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&o, &g), 0);
    assert_int_equal(
        dz_accounts_create(g->gw.accounts, FIN, PASSWORD, strlen(PASSWORD), seed, sizeof(seed)), 0);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
}

/* POST /auth/password with body (content type JSON), answered. */
static struct dz_req *post(struct fake_gw *g, const char *body)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/password");

    fake_req_set_json(r, body);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static struct dz_req *login(struct fake_gw *g, const char *password, const char *otp)
{
    char body[256];

    if (otp)
        snprintf(body, sizeof(body), "{\"fin\":\"%s\",\"password\":\"%s\",\"otp\":\"%s\"}", FIN,
                 password, otp);
    else
        snprintf(body, sizeof(body), "{\"fin\":\"%s\",\"password\":\"%s\"}", FIN, password);
    return post(g, body);
}

static void current_code(char code[DZ_TOTP_CODE_MAX + 1])
{
    assert_int_equal(dz_totp_generate(seed, sizeof(seed), dz_unix_ms() / 1000, 6, code), 0);
}

static void test_wrong_password(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = login(g, "not the password", NULL);
    const char *rid = fake_req_resp_header(r, "darvaza-request-id");
    json_t *line;
    char *audit;

    assert_problem(r, 401, "bad_credentials");
    assert_null(fake_req_resp_header(r, "set-cookie"));
    /* The attempt is recorded, before the answer. */
    assert_non_null(rid);
    line = fake_gw_audit_find(g, rid, "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN);
    json_decref(line);
    audit = fake_gw_audit_text(g);
    assert_null(strstr(audit, "not the password")); /* never a password in the log */
    free(audit);
    assert_non_null(strstr(fake_req_note(r), rid));
    fake_req_free(r);

    /* An unknown FIN answers exactly the same. */
    r = post(g, "{\"fin\":\"9ZZZ999\",\"password\":\"whatever it is\"}");
    assert_problem(r, 401, "bad_credentials");
    fake_req_free(r);
}

static void test_password_and_totp(void **state)
{
    struct fake_gw *g = *state;
    char code[DZ_TOTP_CODE_MAX + 1];
    char cookie[160];
    struct dz_req *r;
    const char *set_cookie;
    const char *token;
    const char *rid;
    json_t *j;
    json_t *line;

    current_code(code);
    r = login(g, PASSWORD, code);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    assert_string_equal(json_string_value(json_object_get(j, "acr")), "substantial");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "password");
    token = json_string_value(json_object_get(j, "token"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 43);
    /* The cookie carries the same token, with the documented attributes. */
    set_cookie = fake_req_resp_header(r, "set-cookie");
    assert_non_null(set_cookie);
    snprintf(cookie, sizeof(cookie), "__Host-darvaza=%s; Secure; HttpOnly; SameSite=Lax; Path=/",
             token);
    assert_string_equal(set_cookie, cookie);
    rid = fake_req_resp_header(r, "darvaza-request-id");
    line = fake_gw_audit_find(g, rid, "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(line, "acr")), "substantial");
    json_decref(line);
    assert_non_null(strstr(fake_req_note(r), rid));
    assert_null(strstr(fake_req_note(r), token)); /* never the token in the log */
    fake_req_free(r);

    /* The session works: GET /auth/session with the cookie. */
    snprintf(cookie, sizeof(cookie), "__Host-darvaza=%s", token);
    r = fake_gw_req(g, "GET", "/auth/session");
    fake_req_add_header(r, "cookie", cookie);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    json_decref(j);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    assert_null(json_object_get(j, "token"));
    json_decref(j);
    fake_req_free(r);

    /* The code is now required, and a used code is not accepted again. */
    r = login(g, PASSWORD, NULL);
    assert_problem(r, 401, "otp_required");
    fake_req_free(r);
    r = login(g, PASSWORD, code);
    assert_problem(r, 401, "bad_credentials");
    fake_req_free(r);
}

static void test_malformed(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r;

    r = post(g, "{\"fin\":\"5ABC123\",\"password\":");
    assert_problem(r, 400, "invalid_json");
    fake_req_free(r);
    r = post(g, "[\"fin\",\"password\"]");
    assert_problem(r, 400, "invalid_json");
    fake_req_free(r);
    r = post(g, "{\"fin\":\"5ABC123\"}");
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    r = post(g, "{\"fin\":\"5ABC123\",\"password\":42}");
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    r = post(g, "{\"fin\":\"5ABC123\",\"password\":\"a\",\"password\":\"b\"}");
    assert_problem(r, 400, "invalid_json");
    fake_req_free(r);
    r = post(g, "{\"fin\":\"not a fin!\",\"password\":\"whatever it is\"}");
    assert_problem(r, 400, "invalid_fin");
    fake_req_free(r);

    /* Not JSON at all, and a body over the limit. */
    r = fake_gw_req(g, "POST", "/auth/password");
    fake_req_add_header(r, "content-type", "text/plain");
    fake_req_set_body(r, "fin=5ABC123", 11);
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 415, "unsupported_media_type");
    fake_req_free(r);
    r = fake_gw_req(g, "POST", "/auth/password");
    fake_req_add_header(r, "content-type", "application/json");
    fake_req_set_body_overflow(r);
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 413, "payload_too_large");
    fake_req_free(r);

    /* Another site's page. */
    r = fake_gw_req(g, "POST", "/auth/password");
    fake_req_add_header(r, "origin", "https://evil.example");
    fake_req_set_json(r, "{\"fin\":\"5ABC123\",\"password\":\"" PASSWORD "\"}");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 403, "bad_origin");
    fake_req_free(r);

    /* GET is not the login. */
    r = fake_gw_req(g, "GET", "/auth/password");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 405, "method_not_allowed");
    assert_string_equal(fake_req_resp_header(r, "allow"), "POST");
    fake_req_free(r);
}

static void test_lockout(void **state)
{
    struct fake_gw *g = *state;
    char code[DZ_TOTP_CODE_MAX + 1];
    struct dz_req *r;
    const char *retry;

    for (int i = 0; i < 3; i++) {
        r = login(g, "not the password", NULL);
        assert_problem(r, 401, "bad_credentials");
        fake_req_free(r);
    }
    /* Locked: even the right password and code are refused now. */
    current_code(code);
    r = login(g, PASSWORD, code);
    assert_problem(r, 429, "locked");
    retry = fake_req_resp_header(r, "retry-after");
    assert_non_null(retry);
    assert_true(atoi(retry) > 0 && atoi(retry) <= 15 * 60);
    fake_req_free(r);
}

/* The client leaves while argon2id runs: the pool job still comes back,
 * answers nothing, and lets go of the request. */
static void test_reset_while_hashing(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/password");

    fake_req_set_json(r, "{\"fin\":\"5ABC123\",\"password\":\"not the password\"}");
    fake_worker_hold_posts(g->w, true);
    fake_gw_send(g, r);
    assert_true(fake_req_refs(r) > 2); /* the pool job holds it */
    fake_req_reset(r);
    fake_worker_hold_posts(g->w, false);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_int_equal(fake_req_status(r), 0);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_and_totp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_while_hashing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
