/*
 * test_login_change_race.c - a password change or a TOTP reset racing a
 * password login that is already past its password check
 * (gateway/auth/login.c dz_login_complete_password).  The change updates
 * the account, then lists the person's sessions and ends them; here it runs
 * exactly between the login's session being made and its entry in the
 * person's list being written (a store wrapper's hook before that write),
 * so the change's list cannot show the login's session.  The login must
 * then see the change itself: no session, no cookie, 401 bad_credentials.
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
#include "harness/store_wrap.h"
#include "state/accounts.h"
#include "state/sessidx.h"
#include "state/session.h"
#include "state/store.h"
#include "state/totp.h"

#define FIN "5ABC123"
#define PASSWORD "correct horse battery"
#define NEW_PASSWORD "a brand new password"

static const unsigned char seed[20] = "12345678901234567890";
static const unsigned char new_seed[20] = "new-seed-new-seed-ne";

enum change { NONE, NEW_PASSWORD_SET, TOTP_RESET };

/* The change the hook makes before the next write of a session-list entry
 * (once), and what it found. */
static struct {
    struct fake_gw *g;
    enum change what;
    bool busy;
    int rc;
    size_t ended;
} race;

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    struct fake_gw *g = race.g;

    (void)w;
    if (race.what == NONE || race.busy || strcmp(op, "put") != 0 || strcmp(ns, DZ_SESSIDX_NS) != 0)
        return 0;
    race.busy = true; /* the change's own store calls pass straight on */
    if (race.what == NEW_PASSWORD_SET)
        race.rc = dz_accounts_set_password(g->gw.accounts, FIN, NEW_PASSWORD, strlen(NEW_PASSWORD));
    else
        race.rc = dz_accounts_set_totp(g->gw.accounts, FIN, new_seed, sizeof(new_seed));
    /* Then, as the account page does, every other session of the person
     * ends: the login's is made but not listed yet, so not among them. */
    if (race.rc == 0)
        race.rc = dz_sessidx_end_all(g->gw.store, FIN, NULL, NULL, &race.ended);
    race.what = NONE;
    race.busy = false;
    return 0;
}

static int setup(void **state)
{
    struct fake_gw *g;
    struct store_wrap *w;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){0}, &g), 0);
    assert_int_equal(
        dz_accounts_create(g->gw.accounts, FIN, PASSWORD, strlen(PASSWORD), seed, sizeof(seed)), 0);
    /* Requests read g->gw.store when they run: from now on they see the
     * wrapper, which owns (and frees) the harness's store. */
    assert_int_equal(store_wrap_new(g->gw.store, &w, &g->gw.store), 0);
    w->before = before;
    memset(&race, 0, sizeof(race));
    race.g = g;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
}

static struct dz_req *login(struct fake_gw *g, const char *password, const unsigned char *key)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/password");
    char code[DZ_TOTP_CODE_MAX + 1];
    char body[256];

    if (key) {
        assert_int_equal(dz_totp_generate(key, 20, dz_unix_ms() / 1000, 6, code), 0);
        snprintf(body, sizeof(body), "{\"fin\":\"%s\",\"password\":\"%s\",\"otp\":\"%s\"}", FIN,
                 password, code);
    } else {
        snprintf(body, sizeof(body), "{\"fin\":\"%s\",\"password\":\"%s\"}", FIN, password);
    }
    fake_req_set_json(r, body);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

/* The login lost the race: refused as a wrong password would be, recorded
 * so, and nothing of it left in the store. */
static void assert_locked_out(struct fake_gw *g, struct dz_req *r)
{
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    const char *rid = fake_req_resp_header(r, "darvaza-request-id");
    size_t n = 99;
    json_t *line;

    assert_int_equal(race.rc, 0);
    assert_int_equal(race.ended, 0); /* the change did not see the login's session */
    assert_problem(r, 401, "bad_credentials");
    assert_null(fake_req_resp_header(r, "set-cookie"));
    assert_int_equal(dz_store_count(g->gw.store, DZ_SESSION_NS), 0);
    assert_int_equal(dz_sessidx_list(g->gw.store, FIN, e, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(rid);
    line = fake_gw_audit_find(g, rid, "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "result")), "bad_credentials");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "credentials_changed");
    json_decref(line);
}

/* A login with the password and a code of key (NULL: none) while the
 * change what is made; then the new credentials (new_key: a code of it, or
 * NULL) sign in: the check after listing passes when nothing changed. */
static void lose_then_sign_in(struct fake_gw *g, enum change what, const unsigned char *key,
                              const char *new_pw, const unsigned char *new_key)
{
    struct dz_req *r;

    race.what = what;
    r = login(g, PASSWORD, key);
    assert_locked_out(g, r);
    fake_req_free(r);
    r = login(g, new_pw, new_key);
    assert_int_equal(fake_req_status(r), 200);
    assert_non_null(fake_req_resp_header(r, "set-cookie"));
    assert_int_equal(dz_store_count(g->gw.store, DZ_SESSION_NS), 1);
    fake_req_free(r);
}

static void test_password_changed_before_listed(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r;

    lose_then_sign_in(g, NEW_PASSWORD_SET, NULL, NEW_PASSWORD, NULL);
    r = login(g, PASSWORD, NULL); /* the old password is now simply wrong */
    assert_problem(r, 401, "bad_credentials");
    fake_req_free(r);
}

/* The TOTP step of a password login: a code of the seed a reset replaces
 * while the login's session is being listed. */
static void test_totp_reset_before_listed(void **state)
{
    lose_then_sign_in(*state, TOTP_RESET, seed, PASSWORD, new_seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_changed_before_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_totp_reset_before_listed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
