/*
 * test_forward_inflight.c - the caps on a service's requests in flight
 * (policy limits in_flight, in_flight_per_caller; gateway/forward/inflight.h)
 * on the request-layer harness: a request over a cap is refused with
 * 503 service_unavailable and Retry-After before anything is signed or
 * sent, one caller at its share leaves room for the others, and every way a
 * forward ends gives its slot back (fwd_teardown checks the counts too).
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

#define FIN_B "7XYZ789"
#define FIN_C "9QRS456"

/* The service and its first route, which both policies share. */
#define POLICY_HEAD                                                                                \
    "service: backend\n"                                                                           \
    "registered_as: \"DIS-7001\"\n"                                                                \
    "upstream: @UPSTREAM@\n"                                                                       \
    "upstream_http: http1\n"                                                                       \
    "routes:\n"                                                                                    \
    "  - path: /api/t/open\n"                                                                      \
    "    methods: [GET]\n"                                                                         \
    "    acr: low\n"

/* One caller may take the whole cap of 2. */
static const char policy_cap[] = POLICY_HEAD "  - path: /api/t/slow\n"
                                             "    methods: [GET]\n"
                                             "    acr: low\n"
                                             "    limits: { timeout: 100ms }\n"
                                             "limits: { in_flight: 2, in_flight_per_caller: 2 }\n";

/* A cap of 8 and the default share, a quarter: 2 per caller. */
static const char policy_share[] = POLICY_HEAD "  - path: /api/t/public\n"
                                               "    methods: [GET]\n"
                                               "    public: true\n"
                                               "limits: { in_flight: 8 }\n";

static int setup_cap(void **state)
{
    return fwd_setup(state, policy_cap);
}

static int setup_share(void **state)
{
    return fwd_setup(state, policy_share);
}

static int teardown(void **state)
{
    return fwd_teardown(state);
}

static unsigned in_flight(struct fake_gw *g)
{
    return dz_inflight_count(dz_policy_service_find(g->gw.gen->policies, "backend"));
}

struct upstream_wait {
    struct fake_gw *g;
    size_t n;
};

static bool upstream_has(void *arg)
{
    struct upstream_wait *u = arg;

    return fake_upstream_requests(u->g->up) >= u->n;
}

static bool upstream_idle(void *arg)
{
    struct fake_gw *g = arg;

    return fake_upstream_open(g->up) == 0;
}

/* r comes from fin (signed in; NULL: no session) and from peer (NULL: the
 * harness's 127.0.0.1). */
static void as_caller(struct fake_gw *g, struct dz_req *r, const char *fin, const char *peer)
{
    char tok[64];

    if (fin) {
        fake_gw_session(g, fin, "password", DZ_AMR_PWD, "low", NULL, tok);
        fake_req_bearer(r, tok);
    }
    if (peer)
        fake_req_set_peer(r, peer);
}

/* A GET of path sent (as fin, or without a session from peer), held by the
 * back end: it has received it.  The caller frees the request. */
static struct dz_req *held(struct fake_gw *g, const char *path, const char *fin, const char *peer)
{
    struct upstream_wait u = {g, fake_upstream_requests(g->up) + 1};
    struct dz_req *r = fake_gw_req(g, "GET", path);

    as_caller(g, r, fin, peer);
    fake_gw_send(g, r);
    assert_true(fake_spin(g->w, upstream_has, &u, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_started(r));
    return r;
}

/* A GET of path answered at once, refused for want of room: 503
 * service_unavailable, Retry-After 1, the detail saying which cap, on
 * record as refused for reason, never sent. */
static void assert_refused(struct fake_gw *g, const char *path, const char *fin, const char *peer,
                           const char *reason, const char *detail)
{
    size_t sent = fake_upstream_requests(g->up);
    struct dz_req *r = fake_gw_req(g, "GET", path);
    json_t *j;
    json_t *line;

    as_caller(g, r, fin, peer);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    assert_problem(r, 503, "service_unavailable");
    assert_string_equal(fake_req_resp_header(r, "retry-after"), "1");
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "detail")), detail);
    json_decref(j);
    assert_int_equal(fake_upstream_requests(g->up), sent);
    /* The refusal's line; no "sent" line, no assertion (jti) for it. */
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), reason);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 503);
    assert_null(json_object_get(line, "jti"));
    json_decref(line);
    fake_req_free(r);
}

static bool one_in_flight(void *arg)
{
    return in_flight(arg) == 1;
}

#define SERVICE_FULL "the service has too many requests in flight"
#define CALLER_FULL "the service has too many requests in flight from this caller"

/* Two held, the third refused; one released (its client goes), the next
 * one goes. */
static void test_service_cap(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *a;
    struct dz_req *b;
    struct dz_req *c;

    fake_upstream_set_mode(g->up, FAKE_UP_HOLD);
    a = held(g, "/api/t/open", FIN_A, NULL);
    b = held(g, "/api/t/open", FIN_B, NULL);
    assert_int_equal(in_flight(g), 2);
    assert_refused(g, "/api/t/open", FIN_C, NULL, "in_flight", SERVICE_FULL);
    assert_int_equal(
        fwd_metric(g, "darvaza_forward_refused_total{service=\"backend\",reason=\"in_flight\"}"),
        1);
    assert_int_equal(in_flight(g), 2);

    fake_req_reset(a);
    assert_true(fake_spin(g->w, one_in_flight, g, FAKE_GW_TIMEOUT_MS));
    c = held(g, "/api/t/open", FIN_C, NULL);
    assert_int_equal(in_flight(g), 2);

    fake_req_reset(b);
    fake_req_reset(c);
    assert_true(fake_spin(g->w, upstream_idle, g, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(in_flight(g), 0);
    fake_req_free(a);
    fake_req_free(b);
    fake_req_free(c);
}

/* A signed-in caller at its share (2 of 8) is refused; another person
 * still gets through.  Then, by address: two IPv6 addresses of one /64
 * are one caller, an address of another /64 is not. */
static void test_caller_share(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r[6];
    size_t n = 0;

    fake_upstream_set_mode(g->up, FAKE_UP_HOLD);
    r[n++] = held(g, "/api/t/open", FIN_A, NULL);
    r[n++] = held(g, "/api/t/open", FIN_A, NULL);
    assert_refused(g, "/api/t/open", FIN_A, NULL, "in_flight_caller", CALLER_FULL);
    r[n++] = held(g, "/api/t/open", FIN_B, NULL);
    assert_int_equal(fwd_metric(g, "darvaza_forward_refused_total{service=\"backend\","
                                   "reason=\"in_flight_caller\"}"),
                     1);

    r[n++] = held(g, "/api/t/public", NULL, "2001:db8:1:2::10");
    r[n++] = held(g, "/api/t/public", NULL, "2001:db8:1:2:ffff::1");
    assert_refused(g, "/api/t/public", NULL, "2001:db8:1:2::99", "in_flight_caller", CALLER_FULL);
    r[n++] = held(g, "/api/t/public", NULL, "2001:db8:1:3::10");
    assert_int_equal(in_flight(g), 6);

    fake_upstream_drop(g->up); /* the back end dies under all of them */
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fake_req_status(r[i]), 502);
        fake_req_free(r[i]);
    }
    assert_int_equal(in_flight(g), 0);
    assert_int_equal(dz_inflight_callers(), 0);
}

/* The client resets in the middle of the answer's body. */
static void test_slot_back_after_reset(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = fwd_mid_transfer(g);

    assert_int_equal(in_flight(g), 1);
    fake_req_reset(r);
    assert_true(fake_spin(g->w, upstream_idle, g, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(in_flight(g), 0);
    fake_req_free(r);
}

/* The back end dies mid-transfer (the answer is cut), and one that never
 * answers times out (504): every slot comes back, and the cap's whole room
 * is there again. */
static void test_slot_back_after_death_and_timeout(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = fwd_mid_transfer(g);
    struct dz_req *s;

    assert_int_equal(in_flight(g), 1);
    fake_upstream_drop(g->up);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_req_was_reset(r));
    assert_int_equal(in_flight(g), 0);
    fake_req_free(r);

    fake_upstream_set_mode(g->up, FAKE_UP_HOLD);
    r = held(g, "/api/t/slow", FIN_A, NULL);
    s = held(g, "/api/t/slow", FIN_B, NULL);
    assert_int_equal(in_flight(g), 2);
    assert_true(fake_spin_answer(g->w, r, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_answer(g->w, s, FAKE_GW_TIMEOUT_MS));
    assert_problem(r, 504, "upstream_timeout");
    assert_problem(s, 504, "upstream_timeout");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(in_flight(g), 0);
    fake_req_free(r);
    fake_req_free(s);

    r = held(g, "/api/t/open", FIN_A, NULL);
    s = held(g, "/api/t/open", FIN_A, NULL);
    assert_int_equal(in_flight(g), 2);
    fake_upstream_drop(g->up);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_problem(r, 502, "upstream_unavailable");
    assert_problem(s, 502, "upstream_unavailable");
    fake_req_free(r);
    fake_req_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_cap, setup_cap, teardown),
        cmocka_unit_test_setup_teardown(test_caller_share, setup_share, teardown),
        cmocka_unit_test_setup_teardown(test_slot_back_after_reset, setup_cap, teardown),
        cmocka_unit_test_setup_teardown(test_slot_back_after_death_and_timeout, setup_cap,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
