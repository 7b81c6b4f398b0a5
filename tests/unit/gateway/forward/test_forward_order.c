/*
 * test_forward_order.c - audit before acting, seen from the back end: it
 * never sees a request whose "sent" line could not be written, and sees it
 * only once the line is in the file and its result is back on the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "forward_case.h"
#include "harness/fake_gw.h"

static const char policy[] = "service: backend\n"
                             "registered_as: \"DIS-7001\"\n"
                             "upstream: @UPSTREAM@\n"
                             "upstream_http: http1\n"
                             "routes:\n"
                             "  - path: /api/t/open\n"
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

static struct dz_req *open_req(struct fake_gw *g, const char *path)
{
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    r = fake_gw_req(g, "GET", path);
    fake_req_bearer(r, tok);
    return r;
}

static bool answered(void *arg)
{
    return fake_req_status(arg) != 0;
}

/* The disk is full: the line's write fails, the client gets 503 and the
 * back end nothing. */
static void test_line_fails_nothing_leaves(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = open_req(g, "/api/t/open");
    char *text;

    fwd_audit_file_fills(g);
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 503, "service_unavailable");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_upstream_requests(g->up), 0);
    text = fake_gw_audit_text(g);
    assert_null(strstr(text, "\"phase\":\"sent\""));
    free(text);
    assert_int_equal(fake_req_refs(r), 1);
    fake_req_free(r);
}

/* The line is written and fdatasync'ed, its result not yet delivered to
 * the loop: the back end has nothing and the client no answer; once the
 * result is delivered the request leaves and is answered. */
static void test_leaves_once_durable(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = open_req(g, "/api/t/open");
    char *text;

    fake_upstream_set_answer(g->up, 200, "content-type: text/plain\r\n", "ok");
    fake_worker_hold_posts(g->w, true);
    fake_gw_send(g, r);
    assert_true(fake_spin(g->w, fwd_audit_delivery_waiting, g, FAKE_GW_TIMEOUT_MS));
    text = fake_gw_audit_text(g);
    assert_non_null(strstr(text, "\"phase\":\"sent\""));
    free(text);
    assert_int_equal(fake_upstream_requests(g->up), 0);
    assert_int_equal(fake_req_status(r), 0);

    fake_worker_hold_posts(g->w, false);
    assert_true(fake_spin(g->w, answered, r, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_body(r, NULL), "ok");
    assert_int_equal(fake_upstream_requests(g->up), 1);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_fails_nothing_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaves_once_durable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
