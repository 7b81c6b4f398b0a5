/*
 * test_oidc_logout.c - the ends of a session that its OpenID Connect
 * clients hear of (back-channel logout): GET /logout (gateway/oidc/
 * oidc_logout.c), the portal's POST /auth/logout and "sign out everywhere"
 * on the account page, on the request-layer harness, with the store
 * wrapped so that deleting the session can fail as a shared store fails
 * (DZ_ERR_UNAVAILABLE).  The logout then did not happen, so the person is
 * told so (503 state_unavailable), nothing claims it did (no logout audit
 * line), the session still works, and its client is not told it ended (no
 * logout token, its entry still recorded); with the store answering again
 * the same logout ends the session and the client gets its token, once.
 * The client's back-channel URI is the harness's fake back end.
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
#include "backchannel_case.h"
#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/rctx.h"
#include "harness/fake_gw.h"
#include "harness/store_wrap.h"
#include "keys/jws.h"
#include "oidc/oidc.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_state.h"
#include "state/session.h"
#include "state/store.h"

#define FIN "5ABC123"

/* Deleting a session fails while fail_del is set, recording which clients
 * a session signed in to while fail_sid is (the store wrapper's hook). */
static bool fail_del, fail_sid;

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    if (fail_del && strcmp(op, "del") == 0 && strcmp(ns, DZ_SESSION_NS) == 0)
        return DZ_ERR_UNAVAILABLE;
    if (fail_sid && strcmp(op, "put") == 0 && strcmp(ns, DZ_OIDC_NS_SID) == 0)
        return DZ_ERR_UNAVAILABLE;
    return 0;
}

static int setup(void **state)
{
    struct fake_gw *g;
    struct store_wrap *w;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){.policy_yaml = policy}, &g), 0);
    /* Requests read g->gw.store when they run: from now on they see the
     * wrapper, which owns (and frees) the harness's store. */
    assert_int_equal(store_wrap_new(g->gw.store, &w, &g->gw.store), 0);
    w->before = before;
    fail_del = fail_sid = false;
    /* As the daemon does (daemon/consent_hook.c): the portal's logout and
     * the account page tell the provider through this hook. */
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

static bool got_one_post(void *arg)
{
    return fake_upstream_requests(arg) >= 1;
}

/* No logout token went out for the request answered r: no audit line of
 * one, and the client's entry is still there to be taken. */
static void assert_rp_not_told(struct fake_gw *g, struct dz_req *r, const char *token)
{
    json_t *line =
        fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "oidc_logout_sent");

    assert_null(line);
    assert_true(rp_still_owed(g, token));
}

/* The request answered r sent the client its logout token: one audit line
 * naming it once, its entry taken (never sent again), the POST received
 * with the session's sid in the token. */
static void assert_rp_told_once(struct fake_gw *g, struct dz_req *r, const char *token)
{
    json_t *line =
        fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "oidc_logout_sent");
    json_t *clients;

    assert_non_null(line);
    clients = json_object_get(line, "clients");
    assert_int_equal(json_array_size(clients), 1);
    assert_string_equal(json_string_value(json_array_get(clients, 0)), "rp");
    json_decref(line);
    assert_false(rp_still_owed(g, token));
    assert_true(fake_spin(g->w, got_one_post, g->up, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_upstream_requests(g->up), 1);
    assert_non_null(strstr(fake_upstream_last_request(g->up), "logout_token="));
}

/* An ID token of this gateway for the session of token, as a client holds
 * it after a sign-in (id_token_hint). */
static char *id_token_for(struct fake_gw *g, const char *token)
{
    struct dz_gen *gen = g->gw.gen;
    unsigned char h[32];
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char *jwt = NULL;
    json_t *claims;

    dz_sha256(token, strlen(token), h);
    dz_b64_encode_to(h, sizeof(h), true, sid);
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", gen->config->gateway.origin, "sub",
                       FIN, "aud", "rp", "sid", sid, "iat", (json_int_t)(dz_unix_ms() / 1000),
                       "exp", (json_int_t)(dz_unix_ms() / 1000 + 300));
    assert_non_null(claims);
    assert_int_equal(dz_jws_sign_es256(gen->signers[gen->active], gen->kids[gen->active],
                                       DZ_OIDC_ID_TOKEN_TYP, claims, &jwt),
                     0);
    json_decref(claims);
    return jwt;
}

static struct dz_req *logout(struct fake_gw *g, const char *token, const char *hint)
{
    char path[2048];
    struct dz_req *r;

    snprintf(path, sizeof(path), "/logout?id_token_hint=%s", hint);
    r = fake_gw_req(g, "GET", path);
    fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static int session_status(struct fake_gw *g, const char *token)
{
    struct dz_req *r = fake_gw_req(g, "GET", "/auth/session");
    int status;

    fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    status = fake_req_status(r);
    fake_req_free(r);
    return status;
}

static void test_delete_fails_no_logout(void **state)
{
    struct fake_gw *g = *state;
    char token[64];
    char code[64];
    char *hint;
    struct dz_req *r;
    const char *rid;
    json_t *line;

    fake_gw_session(g, FIN, "password", DZ_AMR_PWD, "low", NULL, token);
    signed_in_to_rp(g, token);
    hint = id_token_for(g, token);
    assert_int_equal(session_status(g, token), 200);

    fail_del = true;
    r = logout(g, token, hint);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "state_unavailable");
    assert_null(fake_req_resp_header(r, "location"));
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);
    line = fake_gw_audit_find(g, rid, "oidc_logout");
    assert_null(line); /* no record of a logout that did not happen */
    assert_rp_not_told(g, r, token);
    fake_req_free(r);
    fail_del = false;
    assert_int_equal(session_status(g, token), 200); /* still signed in, as told */

    /* The store answers again: the same logout ends the session. */
    r = logout(g, token, hint);
    assert_int_equal(fake_req_status(r), 302);
    assert_string_equal(fake_req_resp_header(r, "location"), "/#/account");
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "oidc_logout");
    assert_non_null(line);
    json_decref(line);
    assert_rp_told_once(g, r, token);
    fake_req_free(r);
    assert_int_equal(session_status(g, token), 401);
    free(hint);
}

static struct dz_req *send_bearer(struct fake_gw *g, const char *method, const char *path,
                                  const char *token)
{
    struct dz_req *r = fake_gw_req(g, method, path);

    fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

/* A request that ends the session of its bearer (audit line type: the
 * one it writes when it does), whose delete fails, then succeeds: first
 * 503 and nobody told, the session still working; then 204, the client
 * told once, the session gone. */
static void end_fails_then_tells(struct fake_gw *g, const char *method, const char *path,
                                 const char *type)
{
    char token[64];
    char code[64];
    struct dz_req *r;

    fake_gw_session(g, FIN, "password", DZ_AMR_PWD, "low", NULL, token);
    signed_in_to_rp(g, token);

    fail_del = true;
    r = send_bearer(g, method, path, token);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "state_unavailable");
    assert_null(fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), type));
    assert_rp_not_told(g, r, token);
    fake_req_free(r);
    fail_del = false;
    assert_int_equal(session_status(g, token), 200);

    r = send_bearer(g, method, path, token);
    assert_int_equal(fake_req_status(r), 204);
    assert_rp_told_once(g, r, token);
    fake_req_free(r);
    assert_int_equal(session_status(g, token), 401);
}

/* The portal's own logout: the same order. */
static void test_portal_logout_delete_fails_no_backchannel(void **state)
{
    end_fails_then_tells(*state, "POST", "/auth/logout", "logout");
}

/* "Sign out everywhere" on the account page, whose own session's delete
 * fails (it is not in the session list, so only the delete of the
 * current session meets the failure). */
static void test_sign_out_everywhere_delete_fails_no_backchannel(void **state)
{
    end_fails_then_tells(*state, "DELETE", "/api/account/sessions", "session_end");
}

static struct dz_req *authorize(struct fake_gw *g, const char *token)
{
    return send_bearer(g, "GET",
                       "/authorize?client_id=rp&redirect_uri=https%3A%2F%2Frp.test%2Fcb"
                       "&response_type=code&scope=openid&state=s1&nonce=n1"
                       "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                       "&code_challenge_method=S256",
                       token);
}

/* A code is issued only once the session's sign-in to the client is on
 * record: without it, the client would never be told when the session
 * ends.  The store failing there: 503, no code; then it answers: a code,
 * and a logout tells the client. */
static void test_no_code_without_backchannel_record(void **state)
{
    struct fake_gw *g = *state;
    char token[64];
    char code[64];
    struct dz_req *r;

    fake_gw_session(g, FIN, "password", DZ_AMR_PWD, "low", NULL, token);
    fail_sid = true;
    r = authorize(g, token);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "state_unavailable");
    assert_null(fake_req_resp_header(r, "location"));
    fake_req_free(r);
    assert_false(rp_still_owed(g, token));

    fail_sid = false;
    r = authorize(g, token);
    assert_int_equal(fake_req_status(r), 302);
    assert_non_null(strstr(fake_req_resp_header(r, "location"), "code="));
    fake_req_free(r);
    assert_true(rp_still_owed(g, token));
    r = send_bearer(g, "POST", "/auth/logout", token);
    assert_int_equal(fake_req_status(r), 204);
    assert_rp_told_once(g, r, token);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delete_fails_no_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_portal_logout_delete_fails_no_backchannel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sign_out_everywhere_delete_fails_no_backchannel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_code_without_backchannel_record, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
