/*
 * test_api_account_password.c - POST /api/account/password
 * (gateway/auth/api_account.c) from a session below high: the current
 * password and a one-time code are both required (docs/api.md "Account"),
 * and an answer "changed" means the password was changed.
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
#include "keys/assertion.h"
#include "state/accounts.h"
#include "state/totp.h"

#define FIN "5ABC123"
#define PASSWORD "correct horse battery"
#define NEW_PASSWORD "a brand new password"

static const unsigned char seed[20] = "12345678901234567890";

static int setup(void **state)
{
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){0}, &g), 0);
    /* Enrolled, not active yet: no code has been used. */
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

/* POST the change with this code from a password-only session. */
static struct dz_req *change(struct fake_gw *g, const char *otp)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/api/account/password");
    char token[64], body[256];

    fake_gw_session(g, FIN, "password", DZ_AMR_PWD, "low", NULL, token);
    fake_req_bearer(r, token);
    snprintf(body, sizeof(body), "{\"current_password\":\"%s\",\"otp\":\"%s\",\"password\":\"%s\"}",
             PASSWORD, otp, NEW_PASSWORD);
    fake_req_set_json(r, body);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static bool password_is(struct fake_gw *g, const char *pw)
{
    struct dz_account_info info;
    bool ok = false;

    assert_int_equal(dz_accounts_verify_password(g->gw.accounts, FIN, pw, strlen(pw), &ok, &info),
                     0);
    return ok;
}

/* An empty code is no code: refused, and nothing said to be changed that
 * was not (the old password would go on working, and the other sessions
 * on running, while the person believes them gone). */
static void test_empty_code_changes_nothing(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = change(g, "");
    const char *rid = fake_req_resp_header(r, "darvaza-request-id");

    assert_problem(r, 401, "otp_required");
    assert_true(password_is(g, PASSWORD));
    assert_false(password_is(g, NEW_PASSWORD));
    assert_non_null(rid);
    assert_null(fake_gw_audit_find(g, rid, "account_password"));
    fake_req_free(r);
}

static void test_password_and_code_change_it(void **state)
{
    struct fake_gw *g = *state;
    char code[DZ_TOTP_CODE_MAX + 1];
    struct dz_req *r;
    json_t *j;

    assert_int_equal(dz_totp_generate(seed, sizeof(seed), dz_unix_ms() / 1000, 6, code), 0);
    r = change(g, code);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    assert_true(password_is(g, NEW_PASSWORD));
    assert_false(password_is(g, PASSWORD));
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_code_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_and_code_change_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
