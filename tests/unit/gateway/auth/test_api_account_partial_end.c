/*
 * test_api_account_partial_end.c - a password change, a TOTP reset and
 * "sign out everywhere" (gateway/auth/api_account.c) whose ending of the
 * person's other sessions fails part-way: the store wrapped so that one
 * chosen session delete fails as a shared store fails (DZ_ERR_UNAVAILABLE).
 * The person changing a stolen password must not be told it is all done
 * while the thief's session lives on: the answer and the audit line say
 * that not every session ended (docs/api.md "Account"); the sessions that
 * could be ended are, and their OpenID Connect clients are told
 * (back-channel logout), the one that could not is not told; "sign out
 * everywhere" again ends the rest and tells its client.
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

#include "auth/session_end.h"
#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/rctx.h"
#include "gateway/oidc/backchannel_case.h"
#include "harness/fake_gw.h"
#include "harness/store_wrap.h"
#include "keys/assertion.h"
#include "oidc/oidc.h"
#include "oidc/oidc_state.h"
#include "state/accounts.h"
#include "state/sessidx.h"
#include "state/session.h"
#include "state/store.h"

#define FIN "5ABC123"
#define PASSWORD "correct horse battery"
#define NEW_PASSWORD "a brand new password"
#define OTHERS 3

static const unsigned char seed[20] = "12345678901234567890";

/* The fail_nth-th session delete from now on fails (0: none); with
 * fail_slot, the next freeing of a session-list slot fails instead. */
static unsigned fail_nth, dels;
static bool fail_slot;

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    if (fail_nth && strcmp(op, "del") == 0 && strcmp(ns, DZ_SESSION_NS) == 0 && ++dels == fail_nth)
        return DZ_ERR_UNAVAILABLE;
    if (fail_slot && strcmp(op, "del_if") == 0 && strcmp(ns, DZ_SESSIDX_NS) == 0) {
        fail_slot = false;
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

static void fail_delete(unsigned nth)
{
    fail_nth = nth;
    dels = 0;
    fail_slot = false;
}

static int setup(void **state)
{
    struct fake_gw *g;
    struct store_wrap *w;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){.policy_yaml = policy}, &g), 0);
    assert_int_equal(
        dz_accounts_create(g->gw.accounts, FIN, PASSWORD, strlen(PASSWORD), seed, sizeof(seed)), 0);
    /* Requests read g->gw.store when they run: from now on they see the
     * wrapper, which owns (and frees) the harness's store. */
    assert_int_equal(store_wrap_new(g->gw.store, &w, &g->gw.store), 0);
    w->before = before;
    fail_delete(0);
    /* As the daemon does (daemon/consent_hook.c). */
    dz_session_end_set_hook(dz_oidc_session_ended);
    fake_upstream_set_answer(g->up, 200, NULL, "");
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    dz_session_end_set_hook(NULL);
    assert_true(fake_gw_free(*state));
    return 0;
}

/* A session of FIN as a login makes it: in the person's list, and signed
 * in to the client (so its end is owed to the client). */
static void signed_in(struct fake_gw *g, const char *acr, char token[64])
{
    struct dz_session s;

    fake_gw_session(g, FIN, acr[0] == 'h' ? "card" : "password",
                    acr[0] == 'h' ? DZ_AMR_SC | DZ_AMR_PIN : DZ_AMR_PWD, acr, NULL, token);
    assert_int_equal(
        dz_session_lookup(g->gw.store, &g->gw.gen->session_limits, token, strlen(token), &s), 0);
    assert_int_equal(dz_sessidx_add(g->gw.store, &s, "127.0.0.1", dz_unix_ms()), 0);
    signed_in_to_rp(g, token);
}

static bool session_works(struct fake_gw *g, const char *token)
{
    struct dz_req *r = fake_gw_req(g, "GET", "/auth/session");
    int status;

    fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    status = fake_req_status(r);
    fake_req_free(r);
    assert_true(status == 200 || status == 401);
    return status == 200;
}

static struct dz_req *send_bearer(struct fake_gw *g, const char *method, const char *path,
                                  const char *token, const char *body)
{
    struct dz_req *r = fake_gw_req(g, method, path);

    fake_req_bearer(r, token);
    if (body)
        fake_req_set_json(r, body);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static struct {
    size_t posts;
} want;

static bool got_posts(void *arg)
{
    struct fake_gw *g = arg;

    return fake_upstream_requests(g->up) >= want.posts;
}

/* Exactly n logout tokens have reached the client by now. */
static void assert_posts(struct fake_gw *g, size_t n)
{
    want.posts = n;
    assert_true(fake_spin(g->w, got_posts, g, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_upstream_requests(g->up), n);
}

/* The audit line of type for the request answered r, parsed. */
static json_t *audit_of(struct fake_gw *g, struct dz_req *r, const char *type)
{
    json_t *line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), type);

    assert_non_null(line);
    return line;
}

/* Of the others, which one lived through the failed delete: exactly one,
 * still owed to its client; every other one ended and told.  Its index. */
static size_t one_survivor(struct fake_gw *g, char others[OTHERS][64])
{
    size_t alive = OTHERS;

    for (size_t i = 0; i < OTHERS; i++) {
        if (session_works(g, others[i])) {
            assert_int_equal(alive, OTHERS);
            alive = i;
            assert_true(rp_still_owed(g, others[i])); /* no end it did not have */
        } else {
            assert_false(rp_still_owed(g, others[i])); /* told of its end */
        }
    }
    assert_true(alive < OTHERS);
    return alive;
}

/* "Sign out everywhere else" again, from the current session: the rest
 * ends, and its client is told. */
static void retry_ends_the_rest(struct fake_gw *g, const char *current, char others[OTHERS][64],
                                size_t alive)
{
    struct dz_req *r =
        send_bearer(g, "DELETE", "/api/account/sessions?except=current", current, NULL);

    assert_int_equal(fake_req_status(r), 204);
    fake_req_free(r);
    assert_false(session_works(g, others[alive]));
    assert_false(rp_still_owed(g, others[alive]));
    assert_posts(g, OTHERS);
    assert_true(session_works(g, current));
}

/* OTHERS sessions and then this one (current, of acr) signed in, each to
 * the client; then method path (body) from this one while the nth session
 * delete fails. */
static struct dz_req *end_partly(struct fake_gw *g, const char *acr, unsigned nth,
                                 const char *method, const char *path, const char *body,
                                 char current[64], char others[OTHERS][64])
{
    struct dz_req *r;

    for (size_t i = 0; i < OTHERS; i++)
        signed_in(g, "low", others[i]);
    signed_in(g, acr, current);
    fail_delete(nth);
    r = send_bearer(g, method, path, current, body);
    fail_delete(0);
    return r;
}

/* A change (POST path with body) from a high session while the second of
 * the other sessions' deletes fails. */
static void change_ends_partly(struct fake_gw *g, const char *path, const char *body,
                               const char *type)
{
    char current[64], others[OTHERS][64];
    struct dz_req *r;
    json_t *j, *line;
    size_t alive;

    r = end_partly(g, "high", 2, "POST", path, body, current, others);
    /* The change is made: 200, but not "all done". */
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "sessions_ended")), OTHERS - 1);
    assert_true(json_is_true(json_object_get(j, "sessions_end_failed")));
    json_decref(j);
    line = audit_of(g, r, type);
    assert_int_equal(json_integer_value(json_object_get(line, "sessions_ended")), OTHERS - 1);
    assert_true(json_is_true(json_object_get(line, "sessions_end_failed")));
    json_decref(line);
    fake_req_free(r);

    alive = one_survivor(g, others);
    assert_posts(g, OTHERS - 1);
    assert_true(session_works(g, current));
    retry_ends_the_rest(g, current, others, alive);
}

static void test_password_change_says_sessions_live_on(void **state)
{
    struct fake_gw *g = *state;
    struct dz_account_info info;
    bool ok = false;

    change_ends_partly(g, "/api/account/password", "{\"password\":\"" NEW_PASSWORD "\"}",
                       "account_password");
    assert_int_equal(dz_accounts_verify_password(g->gw.accounts, FIN, NEW_PASSWORD,
                                                 strlen(NEW_PASSWORD), &ok, &info),
                     0);
    assert_true(ok); /* the change itself did happen */
}

static void test_totp_reset_says_sessions_live_on(void **state)
{
    change_ends_partly(*state, "/api/account/totp", "{}", "account_totp_reset");
}

/* All went well: said so (false, not absent). */
static void test_change_all_ended(void **state)
{
    struct fake_gw *g = *state;
    char current[64], other[64];
    struct dz_req *r;
    json_t *j;

    signed_in(g, "low", other);
    signed_in(g, "high", current);
    r = send_bearer(g, "POST", "/api/account/password", current,
                    "{\"password\":\"" NEW_PASSWORD "\"}");
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "sessions_ended")), 1);
    assert_true(json_is_false(json_object_get(j, "sessions_end_failed")));
    json_decref(j);
    fake_req_free(r);
    assert_false(session_works(g, other));
    assert_posts(g, 1);
}

/* "Sign out everywhere" (this session too) whose first delete fails: the
 * others that could be ended are, recorded and told; this session is kept
 * so that the person can press the button again, and the answer says
 * what happened; the second press ends everything. */
static void test_sign_out_everywhere_partly(void **state)
{
    struct fake_gw *g = *state;
    char current[64], others[OTHERS][64];
    char code[64];
    struct dz_req *r;
    json_t *j, *line;
    size_t alive;

    r = end_partly(g, "low", 1, "DELETE", "/api/account/sessions", NULL, current, others);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "state_unavailable");
    assert_null(fake_req_resp_header(r, "set-cookie"));
    j = fake_req_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "sessions_ended")), OTHERS - 1);
    json_decref(j);
    line = audit_of(g, r, "session_end");
    assert_int_equal(json_integer_value(json_object_get(line, "ended")), OTHERS - 1);
    assert_true(json_is_true(json_object_get(line, "sessions_end_failed")));
    json_decref(line);
    fake_req_free(r);

    alive = one_survivor(g, others);
    assert_posts(g, OTHERS - 1);
    assert_true(session_works(g, current));
    assert_true(rp_still_owed(g, current));

    r = send_bearer(g, "DELETE", "/api/account/sessions", current, NULL);
    assert_int_equal(fake_req_status(r), 204);
    assert_non_null(fake_req_resp_header(r, "set-cookie"));
    line = audit_of(g, r, "session_end");
    assert_int_equal(json_integer_value(json_object_get(line, "ended")), 2);
    assert_null(json_object_get(line, "sessions_end_failed"));
    json_decref(line);
    fake_req_free(r);
    assert_false(session_works(g, others[alive]));
    assert_false(session_works(g, current));
    assert_false(rp_still_owed(g, others[alive]));
    assert_false(rp_still_owed(g, current));
    assert_posts(g, OTHERS + 1);
}

/* The session is deleted but freeing its list slot fails: it did end (a
 * slot whose session is gone reads as dead and is freed then), so it is
 * answered as ended and its client is told, not left owed for good. */
static void test_slot_not_freed_still_ended(void **state)
{
    struct fake_gw *g = *state;
    char current[64], other[64];
    struct dz_req *r;

    signed_in(g, "low", other);
    signed_in(g, "low", current);
    fail_slot = true;
    r = send_bearer(g, "DELETE", "/api/account/sessions?except=current", current, NULL);
    assert_false(fail_slot); /* the failure was met */
    assert_int_equal(fake_req_status(r), 204);
    fake_req_free(r);
    assert_false(session_works(g, other));
    assert_false(rp_still_owed(g, other));
    assert_posts(g, 1);
    assert_true(session_works(g, current));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_change_says_sessions_live_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_totp_reset_says_sessions_live_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_all_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_out_everywhere_partly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_not_freed_still_ended, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
