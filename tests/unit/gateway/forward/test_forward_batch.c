/*
 * test_forward_batch.c - a service with `assertion: { signing: batch }`
 * (core/batchsign.c) through the real request layer: requests handed to the
 * router in one loop turn share one signature (the last of three carries a
 * one-step path), a lone request is signed at once as a batch of one, and
 * every token the back end receives verifies against the generation's
 * published keys with the request's own claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward_case.h"
#include "harness/fake_gw.h"
#include "keys/assertion.h"
#include "keys/jws.h"

static const char policy[] = "service: batched\n"
                             "registered_as: \"DIS-7002\"\n"
                             "upstream: @UPSTREAM@\n"
                             "upstream_http: http1\n"
                             "assertion: { signing: batch }\n"
                             "routes:\n"
                             "  - path: /api/b/open\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "limits: { body: 1KiB, timeout: 10s }\n";

static int setup(void **state)
{
    return fwd_setup(state, policy);
}

static int teardown(void **state)
{
    return fwd_teardown(state);
}

struct many {
    struct dz_req *r[3];
    size_t n;
};

static bool all_complete(void *arg)
{
    struct many *m = arg;

    for (size_t i = 0; i < m->n; i++) {
        if (!fake_req_complete(m->r[i]))
            return false;
    }
    return true;
}

/* The token the back end received last, checked against the published keys
 * for path; returns the length of its inclusion path in bytes. */
static size_t last_token_path_len(struct fake_gw *g, const char *path)
{
    char tok[DZ_JWS_TOKEN_MAX + 1];
    struct dz_jwks *jwks = NULL;
    struct dz_assertion_expect e = {.aud = "batched", .htm = "GET", .htu = path, .leeway_s = 5};
    const char *reason = NULL;
    json_t *claims = NULL;
    const char *p;
    size_t b64_len;

    assert_non_null(fake_upstream_last_header(g->up, "darvaza-assertion", tok, sizeof(tok)));
    assert_int_equal(dz_jwks_parse(g->gw.gen->jwks_json, strlen(g->gw.gen->jwks_json), &jwks), 0);
    assert_int_equal(dz_assertion_verify(tok, jwks, &e, &claims, &reason), 0);
    assert_string_equal(reason, "ok");
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), FIN_A);
    json_decref(claims);
    dz_jwks_free(jwks);
    p = strrchr(tok, '~');
    assert_non_null(p);
    assert_true(strchr(tok, '~') < p); /* root JWS ~ claims ~ path */
    b64_len = strlen(p + 1);
    return b64_len * 3 / 4; /* unpadded base64url */
}

static void test_one_turn_one_signature(void **state)
{
    struct fake_gw *g = *state;
    struct many m = {.n = 3};
    static const char *const paths[] = {"/api/b/open?i=0", "/api/b/open?i=1", "/api/b/open?i=2"};
    char tok[64];

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, "content-type: text/plain\r\n", "ok");
    /* Three requests reach the signing step before the loop turns: one
     * batch, one signature; the third leaf sits beside the first two's
     * node, one step from the root. */
    for (size_t i = 0; i < m.n; i++) {
        m.r[i] = fake_gw_req(g, "GET", paths[i]);
        fake_req_bearer(m.r[i], tok);
        fake_gw_send(g, m.r[i]);
    }
    assert_true(fake_spin(g->w, all_complete, &m, FAKE_GW_TIMEOUT_MS));
    for (size_t i = 0; i < m.n; i++) {
        assert_int_equal(fake_req_status(m.r[i]), 200);
        fake_req_free(m.r[i]);
    }
    assert_int_equal(fake_upstream_requests(g->up), 3);
    assert_int_equal(last_token_path_len(g, paths[2]), 33);

    /* Alone, a request is not held: a batch of one, an empty path. */
    m.n = 1;
    m.r[0] = fake_gw_req(g, "GET", "/api/b/open?alone=1");
    fake_req_bearer(m.r[0], tok);
    assert_true(fake_gw_roundtrip(g, m.r[0]));
    assert_int_equal(fake_req_status(m.r[0]), 200);
    fake_req_free(m.r[0]);
    assert_int_equal(last_token_path_len(g, "/api/b/open?alone=1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_turn_one_signature, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
