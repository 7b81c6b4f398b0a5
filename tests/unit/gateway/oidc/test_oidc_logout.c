/*
 * test_oidc_logout.c - GET /logout (gateway/oidc/oidc_logout.c) on the
 * request-layer harness, with the store wrapped so that deleting the
 * session can fail as a shared store fails (DZ_ERR_UNAVAILABLE): the
 * logout then did not happen, so the person is told so (503
 * state_unavailable), nothing claims it did (no oidc_logout audit line),
 * and the session still works; with the store answering again the same
 * logout ends it.
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
#include "base/err.h"
#include "base/secret.h"
#include "core/rctx.h"
#include "harness/fake_gw.h"
#include "harness/store_wrap.h"
#include "keys/jws.h"
#include "oidc/oidc_jwt.h"
#include "state/session.h"
#include "state/store.h"

#define FIN "5ABC123"

/* Deleting a session fails while fail_del is set (the store wrapper's hook). */
static bool fail_del;

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    return fail_del && strcmp(op, "del") == 0 && strcmp(ns, DZ_SESSION_NS) == 0 ? DZ_ERR_UNAVAILABLE
                                                                                : 0;
}

static int setup(void **state)
{
    struct fake_gw *g;
    struct store_wrap *w;

    assert_int_equal(fake_gw_new(&(struct fake_gw_opts){0}, &g), 0);
    /* Requests read g->gw.store when they run: from now on they see the
     * wrapper, which owns (and frees) the harness's store. */
    assert_int_equal(store_wrap_new(g->gw.store, &w, &g->gw.store), 0);
    w->before = before;
    fail_del = false;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
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
    fake_req_free(r);
    assert_int_equal(session_status(g, token), 401);
    free(hint);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delete_fails_no_logout, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
