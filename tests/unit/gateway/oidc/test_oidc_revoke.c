/*
 * test_oidc_revoke.c - a replayed authorization code revokes the access
 * token of its first exchange (RFC 6749 4.1.2), and that revocation must
 * survive a failover of a shared store: it is a durable delete
 * (dz_store_del_durable: on Redis it waits for the replicas, as the delete
 * of a session does).  On the request-layer harness, with the store
 * wrapped: when the store cannot make the revocation durable (the delete
 * answers DZ_ERR_UNAVAILABLE, as Redis does when too few replicas
 * acknowledge), /token does not claim the token revoked (503
 * temporarily_unavailable, the replay on the audit record with revoked
 * false); the same replay once the store answers revokes it for good, and
 * /userinfo refuses the token from then on.
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
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "harness/store_wrap.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"
#include "state/session.h"
#include "state/store.h"

#define FIN "5ABC123"
#define SECRET "0123456789abcdef0123456789abcdef-test"
#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

static const char policy[] = "service: rp\n"
                             "registered_as: \"DIS-7100\"\n"
                             "oidc:\n"
                             "  client_id: rp\n"
                             "  token_endpoint_auth_method: client_secret_basic\n"
                             "  secret_file: @DIR@/rp.secret\n"
                             "  redirect_uris: [https://rp.test/cb]\n"
                             "  scopes: [openid]\n"
                             "  release: [fin]\n"
                             "  acr_default: low\n"
                             "  consent: pre-approved\n";

/* Deleting an access token fails while fail_revoke is set; the deletes of
 * access tokens are counted by form. */
static bool fail_revoke;
static unsigned token_dels, token_dels_durable;

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    if (strcmp(ns, DZ_OIDC_NS_TOKEN) != 0)
        return 0;
    if (strcmp(op, "del") == 0)
        token_dels++;
    else if (strcmp(op, "del_durable") == 0)
        token_dels_durable++;
    else
        return 0;
    return fail_revoke ? DZ_ERR_UNAVAILABLE : 0;
}

static void prepare(const char *dir, void *arg)
{
    (void)arg;
    assert_int_equal(fake_gw_write_file(dir, "rp.secret", SECRET "\n", 0600), 0);
}

static int setup(void **state)
{
    struct fake_gw_opts o = {.policy_yaml = policy, .prepare = prepare};
    struct fake_gw *g;
    struct store_wrap *w;

    assert_int_equal(fake_gw_new(&o, &g), 0);
    assert_int_equal(store_wrap_new(g->gw.store, &w, &g->gw.store), 0);
    w->before = before;
    fail_revoke = false;
    token_dels = token_dels_durable = 0;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
}

/* A code for the session of token, as /authorize stores it. */
static void issue_code(struct fake_gw *g, const char *token, char code[DZ_OIDC_SECRET_LEN + 1])
{
    unsigned char h[32];
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char challenge[DZ_OIDC_SECRET_LEN + 1];
    json_t *rec;

    dz_sha256(token, strlen(token), h);
    dz_b64_encode_to(h, sizeof(h), true, sid);
    dz_sha256(VERIFIER, strlen(VERIFIER), h);
    dz_b64_encode_to(h, sizeof(h), true, challenge);
    assert_int_equal(dz_oidc_secret_new(code), 0);
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:I, s:i, s:I}", "client", "rp",
                    "redirect_uri", "https://rp.test/cb", "challenge", challenge, "sid", sid, "fin",
                    FIN, "acr", "low", "amr", "pwd", "auth_time", (json_int_t)(dz_unix_ms() / 1000),
                    "scopes", (int)DZ_OIDC_SCOPE_OPENID, "iat", (json_int_t)(dz_unix_ms() / 1000));
    assert_non_null(rec);
    assert_int_equal(dz_oidc_state_put(g->gw.store, DZ_OIDC_NS_CODE, code, rec, 30000, DZ_STORE_NX),
                     0);
    json_decref(rec);
}

static struct dz_req *exchange(struct fake_gw *g, const char *code)
{
    char body[512];
    char *basic = NULL;
    char auth[128];
    struct dz_req *r = fake_gw_req(g, "POST", "/token");

    assert_int_equal(dz_b64_encode("rp:" SECRET, strlen("rp:" SECRET), false, &basic), 0);
    snprintf(auth, sizeof(auth), "Basic %s", basic);
    free(basic);
    snprintf(body, sizeof(body),
             "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Frp.test%%2Fcb"
             "&code_verifier=%s",
             code, VERIFIER);
    fake_req_add_header(r, "authorization", auth);
    fake_req_add_header(r, "content-type", "application/x-www-form-urlencoded");
    fake_req_set_body(r, body, strlen(body));
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static int userinfo_status(struct fake_gw *g, const char *access_token)
{
    struct dz_req *r = fake_gw_req(g, "GET", "/userinfo");
    int status;

    fake_req_bearer(r, access_token);
    assert_true(fake_gw_roundtrip(g, r));
    status = fake_req_status(r);
    fake_req_free(r);
    return status;
}

static const char *oauth_error(struct dz_req *r, char *buf, size_t len)
{
    json_t *j = fake_req_json(r);

    snprintf(buf, len, "%s", json_string_value(json_object_get(j, "error")) ?: "");
    json_decref(j);
    return buf;
}

struct line_wait {
    struct fake_gw *g;
    const char *rid;
    json_t *line;
};

static bool line_written(void *arg)
{
    struct line_wait *lw = arg;

    lw->line = fake_gw_audit_find(lw->g, lw->rid, "oidc_code_replay");
    return lw->line != NULL;
}

/* The replay's audit line (the refusal does not wait for it: waited for
 * here). */
static json_t *replay_line(struct fake_gw *g, struct dz_req *r)
{
    struct line_wait lw = {g, fake_req_resp_header(r, "darvaza-request-id"), NULL};

    assert_non_null(lw.rid);
    assert_true(fake_spin(g->w, line_written, &lw, FAKE_GW_TIMEOUT_MS));
    return lw.line;
}

static void test_replay_revocation_not_durable_is_not_claimed(void **state)
{
    struct fake_gw *g = *state;
    char token[64];
    char code[DZ_OIDC_SECRET_LEN + 1];
    char at[128];
    char err[64];
    struct dz_req *r;
    json_t *j, *line;

    fake_gw_session(g, FIN, "password", DZ_AMR_PWD, "low", NULL, token);
    issue_code(g, token, code);
    r = exchange(g, code);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    snprintf(at, sizeof(at), "%s", json_string_value(json_object_get(j, "access_token")) ?: "");
    json_decref(j);
    fake_req_free(r);
    assert_int_equal(strlen(at), DZ_OIDC_SECRET_LEN);
    assert_int_equal(userinfo_status(g, at), 200);

    /* The code again, while the store cannot revoke for good: the answer
     * must not say the token is revoked, for it still works. */
    fail_revoke = true;
    r = exchange(g, code);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(oauth_error(r, err, sizeof(err)), "temporarily_unavailable");
    line = replay_line(g, r);
    assert_true(json_is_false(json_object_get(line, "revoked")));
    json_decref(line);
    fake_req_free(r);
    fail_revoke = false;
    assert_int_equal(userinfo_status(g, at), 200);

    /* The store answers again: the same replay revokes it, durably. */
    token_dels = token_dels_durable = 0;
    r = exchange(g, code);
    assert_int_equal(fake_req_status(r), 400);
    assert_string_equal(oauth_error(r, err, sizeof(err)), "invalid_grant");
    line = replay_line(g, r);
    assert_true(json_is_true(json_object_get(line, "revoked")));
    json_decref(line);
    fake_req_free(r);
    assert_int_equal(token_dels_durable, 1);
    assert_int_equal(token_dels, 0);
    assert_int_equal(userinfo_status(g, at), 401);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_revocation_not_durable_is_not_claimed, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
