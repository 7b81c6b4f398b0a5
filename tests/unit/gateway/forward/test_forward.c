/*
 * test_forward.c - the forwarder (gateway/forward/forward.c) through the
 * router, on the request-layer harness: policy refusals with their problem
 * codes, the audit line durable before the answer's first byte, and the
 * client going away while the back end or the audit step is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "forward_case.h"
#include "harness/fake_gw.h"
#include "keys/assertion.h"
#include "state/store.h"

static const char policy[] = "service: backend\n"
                             "registered_as: \"DIS-7001\"\n"
                             "upstream: @UPSTREAM@\n"
                             "upstream_http: http1\n"
                             "routes:\n"
                             "  - path: /api/t/open\n"
                             "    methods: [GET, POST]\n"
                             "    acr: low\n"
                             "  - path: /api/t/strong\n"
                             "    methods: [GET]\n"
                             "    acr: substantial\n"
                             "  - path: /api/t/card\n"
                             "    methods: [GET]\n"
                             "    means: [sc]\n"
                             "  - path: /api/t/judge\n"
                             "    methods: [GET]\n"
                             "    means: [sc]\n"
                             "    role: judge\n"
                             "  - path: /api/t/record\n"
                             "    methods: [GET, HEAD]\n"
                             "    acr: low\n"
                             "    release: [fin, name]\n"
                             "  - path: /api/t/rated\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "    limits: { rate: 2/h per subject }\n"
                             "  - path: /api/t/public\n"
                             "    methods: [GET]\n"
                             "    public: true\n"
                             "limits: { body: 1KiB, timeout: 10s }\n";

static int setup(void **state)
{
    return fwd_setup(state, policy);
}

static int teardown(void **state)
{
    return fwd_teardown(state);
}

/* ------------------------------------------------------------ refusals */

static void test_no_route(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = fwd_get(g, "/api/nothing/here", NULL);

    assert_problem(r, 404, "not_found");
    fake_req_free(r);
    r = fwd_get(g, "/api/t/strong?x=1", NULL);
    assert_problem(r, 401, "unauthenticated");
    fake_req_free(r);
    /* A method the route does not list. */
    r = fake_gw_req(g, "DELETE", "/api/t/open");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 405, "method_not_allowed");
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 0);
}

static void test_no_session(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r = fwd_get(g, "/api/t/open", NULL);

    assert_problem(r, 401, "unauthenticated");
    fake_req_free(r);
    /* A token that names no session is no session. */
    r = fwd_get(g, "/api/t/open", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_problem(r, 401, "unauthenticated");
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 0);
}

/* Anonymous refusals are sampled per address, and an IPv6 client is one
 * address per /64 (core/addrkey.h): a host walking the addresses of its
 * prefix makes one sample mark and one audit line a minute, not an entry of
 * the shared rates budget (which every login's start limit needs) and a
 * line per address.  Another /64 is another client. */
static void test_refusals_by_prefix(void **state)
{
    struct fake_gw *g = *state;
    int64_t minute = (int64_t)time(NULL) / 60;
    int lines = 0;

    for (int i = 0; i < 20; i++) {
        char ip[64];
        struct dz_req *r = fake_gw_req(g, "GET", "/api/t/open");
        json_t *line;

        snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
        fake_req_set_peer(r, ip);
        assert_true(fake_gw_roundtrip(g, r));
        assert_problem(r, 401, "unauthenticated");
        line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
        lines += line != NULL;
        json_decref(line);
        fake_req_free(r);
    }
    if ((int64_t)time(NULL) / 60 != minute)
        skip(); /* a new minute starts a new sample */
    assert_int_equal(lines, 1);
    assert_int_equal(dz_store_count(g->gw.store, "lim_refusal_audit"), 1);
    {
        struct dz_req *r = fake_gw_req(g, "GET", "/api/t/open");

        fake_req_set_peer(r, "2001:db8:1:3::1");
        assert_true(fake_gw_roundtrip(g, r));
        assert_problem(r, 401, "unauthenticated");
        fake_req_free(r);
    }
    assert_int_equal(dz_store_count(g->gw.store, "lim_refusal_audit"), 2);
}

static void test_insufficient(void **state)
{
    struct fake_gw *g = *state;
    char low[64];
    char card[64];
    struct dz_req *r;
    json_t *line;
    const char *rid;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, low);
    fake_gw_session(g, FIN_A, "card", DZ_AMR_SC | DZ_AMR_PIN, "high", "citizen", card);

    /* acr low on an acr substantial route */
    r = fwd_get(g, "/api/t/strong", low);
    assert_problem(r, 403, "insufficient_assurance");
    /* A refusal to a known person is audited before the answer too. */
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);
    line = fake_gw_audit_find(g, rid, "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "reason")),
                        "insufficient_assurance");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN_A);
    json_decref(line);
    assert_non_null(strstr(fake_req_note(r), rid));
    fake_req_free(r);

    /* a password session on a card-only route (means) */
    r = fwd_get(g, "/api/t/card", low);
    assert_problem(r, 403, "insufficient_assurance");
    fake_req_free(r);

    /* a card session without the role */
    r = fwd_get(g, "/api/t/judge", card);
    assert_problem(r, 403, "forbidden");
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 0);
}

/* Once the policy allows: the judge's card session on the judges' route;
 * then the checks after the policy (Origin, body, rate), each answered
 * without reaching the back end. */
static void test_after_policy(void **state)
{
    struct fake_gw *g = *state;
    char judge[64];
    char low[64];
    char cookie[96];
    char big[2048];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "card", DZ_AMR_SC | DZ_AMR_PIN, "high", "judge", judge);
    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, low);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    r = fwd_get(g, "/api/t/judge", judge);
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_body(r, NULL), "ok");
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 1);

    /* A browser (cookie) POST without our Origin. */
    snprintf(cookie, sizeof(cookie), "__Host-darvaza=%s", low);
    r = fake_gw_req(g, "POST", "/api/t/open");
    fake_req_add_header(r, "cookie", cookie);
    fake_req_set_json(r, "{}");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 403, "bad_origin");
    /* Refused after the policy said yes, and on record all the same: as
     * another site's doing (sampled by address, no person named). */
    json_t *line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "bad_origin");
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 403);
    assert_string_equal(json_string_value(json_object_get(line, "sampled")), "first_in_minute");
    assert_null(json_object_get(line, "fin"));
    json_decref(line);
    fake_req_free(r);
    /* A bearer token is sent only on purpose: the wrong Origin is refused
     * alike, and its line names the person. */
    r = fake_gw_req(g, "POST", "/api/t/open");
    fake_req_bearer(r, low);
    fake_req_add_header(r, "origin", "https://elsewhere.example");
    fake_req_set_json(r, "{}");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 403, "bad_origin");
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "bad_origin");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN_A);
    json_decref(line);
    fake_req_free(r);
    /* A body over the service's 1 KiB: on record too, under the person
     * (sampled per person, service and code). */
    memset(big, 'x', sizeof(big));
    r = fake_gw_req(g, "POST", "/api/t/open");
    fake_req_bearer(r, low);
    fake_req_set_body(r, big, sizeof(big));
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 413, "payload_too_large");
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "payload_too_large");
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 413);
    assert_string_equal(json_string_value(json_object_get(line, "sampled")), "first_in_minute");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN_A);
    json_decref(line);
    fake_req_free(r);
    /* Two an hour on /api/t/rated (a window the test never straddles in
     * practice): the third is refused. */
    for (int i = 0; i < 2; i++) {
        r = fwd_get(g, "/api/t/rated", low);
        assert_int_equal(fake_req_status(r), 200);
        fake_req_free(r);
    }
    time_t minute = time(NULL) / 60;
    r = fwd_get(g, "/api/t/rated", low);
    assert_problem(r, 429, "rate_limited");
    assert_non_null(fake_req_resp_header(r, "retry-after"));
    /* The refusal is on record (sampled: the first of its minute)... */
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "rate_limited");
    assert_string_equal(json_string_value(json_object_get(line, "sampled")), "first_in_minute");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN_A);
    json_decref(line);
    fake_req_free(r);
    /* ... and the same refusal again within the minute is answered alike
     * without another line (a flood does not become a log flood). */
    r = fwd_get(g, "/api/t/rated", low);
    assert_problem(r, 429, "rate_limited");
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    if (time(NULL) / 60 == minute) /* (a new minute may start a new sample) */
        assert_null(line);
    json_decref(line);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 3);
}

/* ------------------------------------------------------------ the join */

static void test_allowed_audited_first(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char buf[4096];
    struct dz_req *r;
    const char *rid;
    const char *body;
    json_t *line;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD | DZ_AMR_OTP, "substantial", NULL, tok);
    fake_upstream_set_answer(g->up, 200, "content-type: text/plain\r\nx-backend: yes\r\n",
                             "hello from the back end");
    r = fake_gw_req(g, "GET", "/api/t/strong?q=1");
    fake_req_bearer(r, tok);
    fake_req_add_header(r, "cookie", "__Host-darvaza=secret; other=1");
    fake_req_add_header(r, "darvaza-assertion", "spoofed");
    /* Headers for the hop or the gateway alone (compared by length first,
     * so each length of the list is tried) and look-alikes that pass. */
    fake_req_add_header(r, "x-forwarded-for", "10.0.0.1");
    fake_req_add_header(r, "x-real-ip", "10.0.0.2");
    fake_req_add_header(r, "proxy-authorization", "Basic eA==");
    fake_req_add_header(r, "forwarded", "for=10.0.0.3");
    fake_req_add_header(r, "expect", "100-continue");
    fake_req_add_header(r, "x-forwarder-for", "kept");
    fake_req_add_header(r, "hosts", "kept too");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);

    /* The answer reached the client, whole. */
    assert_int_equal(fake_req_status(r), 200);
    body = fake_req_resp_body(r, NULL);
    assert_string_equal(body, "hello from the back end");
    assert_string_equal(fake_req_resp_header(r, "x-backend"), "yes");
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);

    /* The back end got the request with our assertion, not the client's
     * secrets. */
    assert_int_equal(fake_upstream_requests(g->up), 1);
    assert_non_null(strstr(fake_upstream_last_request(g->up), "GET /api/t/strong?q=1 HTTP/1.1"));
    assert_non_null(fake_upstream_last_header(g->up, "darvaza-assertion", buf, sizeof(buf)));
    assert_string_not_equal(buf, "spoofed");
    assert_int_equal(strncmp(buf, "ey", 2), 0);
    assert_string_equal(fake_upstream_last_header(g->up, "darvaza-request-id", buf, sizeof(buf)),
                        rid);
    assert_null(fake_upstream_last_header(g->up, "authorization", buf, sizeof(buf)));
    assert_null(fake_upstream_last_header(g->up, "x-forwarded-for", buf, sizeof(buf)));
    assert_null(fake_upstream_last_header(g->up, "x-real-ip", buf, sizeof(buf)));
    assert_null(fake_upstream_last_header(g->up, "proxy-authorization", buf, sizeof(buf)));
    assert_null(fake_upstream_last_header(g->up, "expect", buf, sizeof(buf)));
    assert_null(strstr(fake_upstream_last_request(g->up), "10.0.0.3"));
    assert_string_equal(fake_upstream_last_header(g->up, "x-forwarder-for", buf, sizeof(buf)),
                        "kept");
    assert_string_equal(fake_upstream_last_header(g->up, "hosts", buf, sizeof(buf)), "kept too");
    assert_string_equal(fake_upstream_last_header(g->up, "cookie", buf, sizeof(buf)), "other=1");
    assert_null(strstr(fake_upstream_last_request(g->up), tok));

    /* Audit before acting: the "sent" line (decision, who, the assertion's
     * jti) was in the file before the request left, so at the first byte
     * of the answer too. */
    line = fake_gw_audit_find(g, rid, "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "phase")), "sent");
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(line, "service")), "backend");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN_A);
    assert_true(strlen(json_string_value(json_object_get(line, "jti"))) >= 16);
    char jti[64];
    snprintf(jti, sizeof(jti), "%s", json_string_value(json_object_get(line, "jti")));
    json_decref(line);
    assert_non_null(fake_req_note(r));
    assert_non_null(strstr(fake_req_note(r), rid));

    /* Every reference is back: only the test's own. */
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    /* ... and the outcome followed, linked by the request id and the jti. */
    line = fake_gw_audit_find(g, rid, "forward_result");
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "ok");
    assert_true(json_is_true(json_object_get(line, "sent")));
    assert_string_equal(json_string_value(json_object_get(line, "jti")), jti);
    json_decref(line);
    assert_int_equal(fake_req_refs(r), 1);
    fake_req_free(r);
}

/* Fields by which a framework behind a proxy takes another method or path
 * than the request line's (method override, the "original" URL, a prefix)
 * never reach the back end: it would act on a DELETE, or on another path,
 * while the policy matched and the assertion signed this GET or POST.
 * Matched whatever their case, with every X-Forwarded-* field (a proxy's
 * word on the original request, never a client's). */
static void test_override_fields_dropped(void **state)
{
    static const char *const names[] = {
        "x-http-method-override", "X-HTTP-Method",      "x-method-override", "X-Original-URL",
        "x-original-uri",         "x-rewrite-url",      "X-Original-Method", "x-forwarded-prefix",
        "X-Forwarded-Uri",        "x-forwarded-method", "x-original-host",   "X-Forwarded-Port",
    };
    struct fake_gw *g = *state;
    char tok[64];
    char buf[256];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    r = fake_gw_req(g, "POST", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_req_set_json(r, "{}");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        fake_req_add_header(r, names[i], i % 2 ? "/api/t/judge" : "DELETE");
    fake_req_add_header(r, "x-method", "kept: not an override name");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 1);
    assert_non_null(strstr(fake_upstream_last_request(g->up), "POST /api/t/open HTTP/1.1"));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_null(fake_upstream_last_header(g->up, names[i], buf, sizeof(buf)));
    assert_null(strstr(fake_upstream_last_request(g->up), "DELETE"));
    assert_null(strstr(fake_upstream_last_request(g->up), "/api/t/judge"));
    assert_string_equal(fake_upstream_last_header(g->up, "x-method", buf, sizeof(buf)),
                        "kept: not an override name");
}

/* A public route answers a caller without a session: the request goes on
 * without an assertion (one names a person; signing one for nobody failed,
 * and every such request was a 503), never with the client's own, and is
 * on record without a fin or a jti.  With a session, the same route gets
 * the person's assertion as any other. */
static void test_public_route(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char buf[4096];
    struct dz_req *r;
    json_t *line;

    fake_upstream_set_answer(g->up, 200, NULL, "open to all");
    r = fake_gw_req(g, "GET", "/api/t/public");
    fake_req_add_header(r, "darvaza-assertion", "spoofed");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_body(r, NULL), "open to all");
    assert_int_equal(fake_upstream_requests(g->up), 1);
    assert_null(fake_upstream_last_header(g->up, "darvaza-assertion", buf, sizeof(buf)));
    assert_non_null(fake_upstream_last_header(g->up, "darvaza-request-id", buf, sizeof(buf)));
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "allow");
    assert_null(json_object_get(line, "fin"));
    assert_null(json_object_get(line, "jti"));
    json_decref(line);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    fake_req_free(r);

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    r = fake_gw_req(g, "GET", "/api/t/public");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    assert_non_null(fake_upstream_last_header(g->up, "darvaza-assertion", buf, sizeof(buf)));
    assert_int_equal(strncmp(buf, "ey", 2), 0);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    fake_req_free(r);
}

/* The longest service name, a per-address rate, a client at a long IPv6
 * address: the count's key (service | address | window) is whole, and the
 * rate holds (the key once took 96 bytes: cut, and read past its end). */
static const char long_name_policy[] =
    "service: s123456789-123456789-123456789-123456789-123456789-12\n"
    "registered_as: \"DIS-7002\"\n"
    "upstream: @UPSTREAM@\n"
    "upstream_http: http1\n"
    "routes:\n"
    "  - path: /api/t/rated\n"
    "    methods: [GET]\n"
    "    acr: low\n"
    "    limits: { rate: 2/h per address }\n";

static int setup_long_name(void **state)
{
    return fwd_setup(state, long_name_policy);
}

static void test_rate_key_long(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    for (int i = 0; i < 3; i++) {
        r = fake_gw_req(g, "GET", "/api/t/rated");
        fake_req_bearer(r, tok);
        fake_req_set_peer(r, "2001:db8:ffff:ffff:ffff:ffff:ffff:fff7");
        assert_true(fake_gw_roundtrip(g, r));
        if (i < 2)
            assert_int_equal(fake_req_status(r), 200);
        else
            assert_problem(r, 429, "rate_limited");
        fake_req_free(r);
    }
    assert_int_equal(fake_upstream_requests(g->up), 2);
}

/* A target up to the documented 8192 bytes reaches the back end whole,
 * as the assertion's htu names it (it was once cut at 2 KiB with the
 * upstream's address). */
static void test_long_target(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char target[8000];
    char line[8100];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    memcpy(target, "/api/t/open?q=", 14);
    memset(target + 14, 'a', sizeof(target) - 14 - 9);
    memcpy(target + sizeof(target) - 9, "&last=1", 8);
    r = fake_gw_req(g, "GET", target);
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\n", target);
    assert_non_null(strstr(fake_upstream_last_request(g->up), line));
}

/* Forwarded names the client as RFC 7239 6 writes a node: an IPv6
 * address in brackets, so its last group is not read as a port. */
static void test_forwarded_node(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char buf[256];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_req_set_peer(r, "2001:db8::7");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    assert_non_null(fake_upstream_last_header(g->up, "forwarded", buf, sizeof(buf)));
    assert_int_equal(strncmp(buf, "for=\"[2001:db8::7]\";", 20), 0);

    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_req_set_peer(r, "192.0.2.7");
    assert_true(fake_gw_roundtrip(g, r));
    fake_req_free(r);
    assert_non_null(fake_upstream_last_header(g->up, "forwarded", buf, sizeof(buf)));
    assert_int_equal(strncmp(buf, "for=\"192.0.2.7\";", 16), 0);
}

/* More header fields than a forwarded request carries (the engine admits
 * limits.header_count, 100 by default): refused, never sent on without the
 * fields the gateway adds last (the assertion, Forwarded). */
static void test_too_many_fields(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char name[32];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, NULL, "ok");
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    for (int i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "x-filler-%d", i);
        fake_req_add_header(r, name, "1");
    }
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 431, "header_fields_too_large");
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 0);

    /* At the bound, the request goes with every field of the gateway. */
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    for (int i = 0; i < 57; i++) {
        snprintf(name, sizeof(name), "x-filler-%d", i);
        fake_req_add_header(r, name, "1");
    }
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(g->up), 1);
    assert_non_null(fake_upstream_last_header(g->up, "darvaza-assertion", name, sizeof(name)));
    assert_non_null(fake_upstream_last_header(g->up, "forwarded", name, sizeof(name)));
    assert_non_null(fake_upstream_last_header(g->up, "x-filler-56", name, sizeof(name)));
}

static void test_upstream_down(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;
    json_t *line;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    /* The back end answers a 5xx: passed through as it is. */
    fake_upstream_set_answer(g->up, 503, NULL, "busy");
    r = fwd_get(g, "/api/t/open", tok);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_resp_body(r, NULL), "busy");
    fake_req_free(r);
    /* Nobody listens: 502 upstream_unavailable, and still audited. */
    fake_upstream_free(g->up);
    g->up = NULL;
    r = fwd_get(g, "/api/t/open", tok);
    assert_problem(r, 502, "upstream_unavailable");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward_result");
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 502);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "upstream_error");
    json_decref(line);
    fake_req_free(r);
    assert_int_equal(fake_upstream_new(dz_worker_loop(g->w), &g->up), 0);
}

/* A route with a release list: the JSON answer is buffered and stripped of
 * what the policy does not release; an answer that is not JSON is not
 * passed on unchecked. */
static void test_release_filter(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char buf[128];
    struct dz_req *r;
    json_t *j;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(
        g->up, 200, "content-type: application/json\r\n",
        "{\"fin\":\"5ABC123\",\"name\":\"Ayten\",\"phones\":[\"+994501234567\"]}");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 200);
    assert_false(fake_req_streamed(r));
    j = fake_req_json(r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "fin")), "5ABC123");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Ayten");
    assert_null(json_object_get(j, "phones"));
    json_decref(j);
    assert_string_equal(fake_upstream_last_header(g->up, "darvaza-release", buf, sizeof(buf)),
                        "fin,name");
    fake_req_free(r);

    fake_upstream_set_answer(g->up, 200, "content-type: application/json\r\n", "{\"fin\":");
    r = fwd_get(g, "/api/t/record", tok);
    assert_problem(r, 502, "upstream_unavailable");
    assert_null(strstr(fake_req_resp_body(r, NULL), "fin\":"));
    fake_req_free(r);

    /* A byte range of the record (here a relative's entry nested under a
     * field not released, whose keys are release names) is not asked for,
     * and a part answered all the same is refused, not filtered as a
     * record. */
    fake_upstream_set_answer(g->up, 206,
                             "content-type: application/json\r\n"
                             "content-range: bytes 40-77/120\r\n",
                             "{\"fin\":\"7XYZ789\",\"name\":\"Other\"}");
    r = fake_gw_req(g, "GET", "/api/t/record");
    fake_req_bearer(r, tok);
    fake_req_add_header(r, "range", "bytes=40-77");
    fake_req_add_header(r, "if-range", "\"v1\"");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 502, "upstream_unavailable");
    assert_null(strstr(fake_req_resp_body(r, NULL), "7XYZ789"));
    assert_null(fake_upstream_last_header(g->up, "range", buf, sizeof(buf)));
    assert_null(fake_upstream_last_header(g->up, "if-range", buf, sizeof(buf)));
    fake_req_free(r);
    /* Answers without content: a HEAD's, a 204. */
    fake_upstream_set_answer(g->up, 200, "content-type: application/json\r\n", "{}");
    r = fake_gw_req(g, "HEAD", "/api/t/record");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    fake_upstream_set_answer(g->up, 204, NULL, "");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 204);
    fake_req_free(r);
    /* The gateway asks for the record uncoded, whatever the client
     * accepts; a coded answer all the same is refused. */
    fake_upstream_set_answer(g->up, 200,
                             "content-type: application/json\r\n"
                             "content-encoding: gzip\r\n",
                             "{\"fin\":\"5ABC123\",\"phones\":[\"+994501234567\"]}");
    r = fake_gw_req(g, "GET", "/api/t/record");
    fake_req_bearer(r, tok);
    fake_req_add_header(r, "accept-encoding", "gzip, deflate, br");
    assert_true(fake_gw_roundtrip(g, r));
    assert_problem(r, 502, "upstream_unavailable");
    assert_null(strstr(fake_req_resp_body(r, NULL), "phones"));
    assert_string_equal(fake_upstream_last_header(g->up, "accept-encoding", buf, sizeof(buf)),
                        "identity");
    assert_null(strstr(fake_upstream_last_request(g->up), "gzip"));
    fake_req_free(r);
    /* A route without a release list passes both on. */
    fake_upstream_set_answer(g->up, 206, "content-range: bytes 0-1/10\r\n", "ok");
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_req_add_header(r, "range", "bytes=0-1");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 206);
    assert_string_equal(fake_upstream_last_header(g->up, "range", buf, sizeof(buf)), "bytes=0-1");
    fake_req_free(r);
}

/* A release route's error answers are read as its successes are: a 409
 * "conflict" or a 422 echoing the stored record would otherwise hand the
 * client every unreleased field.  A JSON error keeps only what kind of error
 * (RFC 9457 type, title, status; the contract's snake_case code) and the
 * released fields; one the filter
 * cannot read keeps its status, not its content; a redirect is refused. */
static void test_release_errors(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;
    json_t *j;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 409, "content-type: application/problem+json\r\n",
                             "{\"type\":\"urn:reg:conflict\",\"title\":\"Conflict\","
                             "\"status\":409,\"code\":\"phone_taken\","
                             "\"detail\":\"+994501234567 is on record\","
                             "\"instance\":\"/persons/5ABC123/phones/+994501234567\","
                             "\"fin\":\"5ABC123\",\"phones\":[\"+994501234567\"],"
                             "\"record\":{\"address\":\"Baku\"}}");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 409);
    assert_null(strstr(fake_req_resp_body(r, NULL), "+994"));
    assert_null(strstr(fake_req_resp_body(r, NULL), "Baku"));
    j = fake_req_json(r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "urn:reg:conflict");
    assert_string_equal(json_string_value(json_object_get(j, "title")), "Conflict");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 409);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "phone_taken");
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "Conflict");
    assert_string_equal(json_string_value(json_object_get(j, "fin")), "5ABC123");
    assert_int_equal(json_object_size(j), 6);
    json_decref(j);
    fake_req_free(r);

    /* The kind's members only with their own types: a "title" that is the
     * record goes, and so does a "code" that is not a snake_case token. */
    fake_upstream_set_answer(g->up, 422, "content-type: application/json\r\n",
                             "{\"title\":{\"phones\":[\"+994501234567\"]},\"status\":\"x\","
                             "\"code\":\"+994501234567\"}");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 422);
    assert_string_equal(fake_req_resp_body(r, NULL), "{}");
    fake_req_free(r);

    /* Not one JSON object (a page, text, a list, a coded body): the status
     * goes on, the content does not. */
    static const struct {
        int status;
        const char *headers;
        const char *body;
    } unread[] = {
        {404, "content-type: text/html\r\n", "<p>no phone +994501234567 here</p>"},
        {500, "content-type: application/json\r\n", "[{\"phones\":[\"+994501234567\"]}]"},
        {409, "content-type: application/json\r\ncontent-encoding: gzip\r\n",
         "{\"phones\":[\"+994501234567\"]}"},
    };
    for (size_t i = 0; i < sizeof(unread) / sizeof(unread[0]); i++) {
        fake_upstream_set_answer(g->up, unread[i].status, unread[i].headers, unread[i].body);
        r = fwd_get(g, "/api/t/record", tok);
        assert_problem(r, unread[i].status, "upstream_error_withheld");
        assert_null(strstr(fake_req_resp_body(r, NULL), "+994"));
        assert_string_equal(fake_req_resp_header(r, "content-type"), "application/problem+json");
        assert_null(fake_req_resp_header(r, "content-encoding"));
        fake_req_free(r);
    }

    /* An error without content has nothing to strip. */
    fake_upstream_set_answer(g->up, 404, NULL, "");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 404);
    assert_string_equal(fake_req_resp_body(r, NULL), "");
    fake_req_free(r);

    /* A redirect's Location is the back end's text (here an unreleased
     * field in its query): refused, not followed. */
    fake_upstream_set_answer(g->up, 302, "location: /api/t/record?phone=%2B994501234567\r\n", "");
    r = fwd_get(g, "/api/t/record", tok);
    assert_problem(r, 502, "upstream_unavailable");
    assert_null(fake_req_resp_header(r, "location"));
    assert_null(strstr(fake_req_resp_body(r, NULL), "994"));
    fake_req_free(r);

    /* A route without a release list passes its errors on as they are. */
    fake_upstream_set_answer(g->up, 409, "content-type: text/plain\r\n", "taken: +994501234567");
    r = fwd_get(g, "/api/t/open", tok);
    assert_int_equal(fake_req_status(r), 409);
    assert_string_equal(fake_req_resp_body(r, NULL), "taken: +994501234567");
    fake_req_free(r);
}

/* The header section of a release route's answer is the back end's text
 * as its body is: a field the filter cannot read (the person's name in a
 * file name, a phone of its own, an ETag of the whole record, a cookie, a
 * Location) would carry the record past the release list.  Only the
 * gateway's content type and the few fields that hold no record go. */
static void test_release_header_fields(void **state)
{
    static const char *const dropped[] = {
        "x-record-phone", "content-disposition", "etag",         "last-modified",
        "link",           "set-cookie",          "location",     "expires",
        "vary",           "content-language",    "x-powered-by",
    };
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200,
                             "content-type: text/html; name=\"Ayten Aliyeva\"\r\n"
                             "x-record-phone: +994501234567\r\n"
                             "content-disposition: attachment; filename=\"Ayten Aliyeva.json\"\r\n"
                             "etag: \"sha1-of-the-whole-record\"\r\n"
                             "last-modified: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
                             "link: </persons/5ABC123/relatives/7XYZ789>; rel=related\r\n"
                             "set-cookie: last_phone=994501234567; Path=/\r\n"
                             "location: /persons/5ABC123?phone=994501234567\r\n"
                             "expires: Tue, 01 Dec 2036 00:00:00 GMT\r\n"
                             "vary: x-phone-994501234567\r\n"
                             "content-language: az\r\n"
                             "x-powered-by: registry\r\n"
                             "date: Tue, 08 Dec 2026 02:00:00 GMT\r\n"
                             "retry-after: 120\r\n",
                             "{\"fin\":\"5ABC123\",\"phones\":[\"+994501234567\"]}");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_body(r, NULL), "{\"fin\":\"5ABC123\"}");
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (fake_req_resp_header(r, dropped[i]))
            fail_msg("%s passed on a release route", dropped[i]);
    }
    assert_string_equal(fake_req_resp_header(r, "content-type"), "application/json");
    assert_int_equal(fake_req_resp_header_count(r, "content-type"), 1);
    assert_string_equal(fake_req_resp_header(r, "date"), "Tue, 08 Dec 2026 02:00:00 GMT");
    /* Retry-After only where it means something. */
    assert_null(fake_req_resp_header(r, "retry-after"));
    assert_string_equal(fake_req_resp_header(r, "cache-control"), "no-store");
    fake_req_free(r);

    /* An error the back end typed as a problem keeps that type; a 503's
     * delay goes, a date in its place (the back end's text) does not. */
    fake_upstream_set_answer(g->up, 503,
                             "content-type: application/problem+json; x=\"994501234567\"\r\n"
                             "retry-after: 30\r\n"
                             "x-record-phone: +994501234567\r\n",
                             "{\"title\":\"Busy\",\"status\":503}");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 503);
    assert_string_equal(fake_req_resp_header(r, "content-type"), "application/problem+json");
    assert_string_equal(fake_req_resp_header(r, "retry-after"), "30");
    assert_null(fake_req_resp_header(r, "x-record-phone"));
    fake_req_free(r);
    fake_upstream_set_answer(g->up, 429,
                             "retry-after: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
                             "date: 5ABC123 +994501234567\r\n",
                             "");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 429);
    assert_null(fake_req_resp_header(r, "retry-after"));
    assert_null(fake_req_resp_header(r, "date"));
    assert_null(fake_req_resp_header(r, "content-type"));
    fake_req_free(r);

    /* A 401 keeps a challenge (RFC 9110 15.5.2): the gateway's. */
    fake_upstream_set_answer(g->up, 401,
                             "www-authenticate: Bearer error_description=\"5ABC123 has "
                             "+994501234567\"\r\n",
                             "");
    r = fwd_get(g, "/api/t/record", tok);
    assert_int_equal(fake_req_status(r), 401);
    assert_string_equal(fake_req_resp_header(r, "www-authenticate"), "Bearer realm=\"darvaza\"");
    assert_int_equal(fake_req_resp_header_count(r, "www-authenticate"), 1);
    fake_req_free(r);

    /* Bodiless answers: their fields are filtered all the same. */
    fake_upstream_set_answer(g->up, 200,
                             "content-type: application/json\r\n"
                             "x-record-phone: +994501234567\r\n",
                             "{}");
    r = fake_gw_req(g, "HEAD", "/api/t/record");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    assert_null(fake_req_resp_header(r, "x-record-phone"));
    fake_req_free(r);

    /* A route without a release list passes the back end's fields on. */
    fake_upstream_set_answer(g->up, 200,
                             "content-type: text/plain\r\n"
                             "x-record-phone: +994501234567\r\n",
                             "ok");
    r = fwd_get(g, "/api/t/open", tok);
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_header(r, "x-record-phone"), "+994501234567");
    assert_string_equal(fake_req_resp_header(r, "content-type"), "text/plain");
    fake_req_free(r);
}

/* A release route's ETag and Last-Modified do not go to the client; nor
 * may the client test them with its conditions: a 304 or 412 against a
 * guessed ETag, or an If-Modified-Since moved by halves, would tell them. */
static void test_release_conditions(void **state)
{
    static const char *const conds[][2] = {
        {"if-none-match", "\"sha1-of-the-whole-record\""},
        {"if-modified-since", "Tue, 01 Dec 2026 10:00:00 GMT"},
        {"if-match", "\"sha1-of-the-whole-record\""},
        {"if-unmodified-since", "Tue, 01 Dec 2026 10:00:00 GMT"},
    };
    struct fake_gw *g = *state;
    char tok[64];
    char buf[128];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, "content-type: application/json\r\n", "{}");
    for (int plain = 0; plain < 2; plain++) {
        r = fake_gw_req(g, "GET", plain ? "/api/t/open" : "/api/t/record");
        fake_req_bearer(r, tok);
        for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
            fake_req_add_header(r, conds[i][0], conds[i][1]);
        assert_true(fake_gw_roundtrip(g, r));
        assert_int_equal(fake_req_status(r), 200);
        for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
            const char *got = fake_upstream_last_header(g->up, conds[i][0], buf, sizeof(buf));

            if (plain)
                assert_string_equal(got, conds[i][1]);
            else if (got)
                fail_msg("%s reached the back end of a release route", conds[i][0]);
        }
        fake_req_free(r);
    }
}

/* ------------------------------------------------- the client goes away */

static bool upstream_closed(void *arg)
{
    struct fake_gw *g = arg;

    return fake_upstream_closed_by_client(g->up) > 0 && fake_upstream_open(g->up) == 0;
}

static bool upstream_got_request(void *arg)
{
    struct fake_gw *g = arg;

    return fake_upstream_requests(g->up) > 0;
}

/* The forward's outcome line for r: the client went, with the request
 * sent to the back end or not. */
static void assert_client_gone(struct fake_gw *g, struct dz_req *r, bool sent)
{
    /* (a reset request has no answer to read its id from: the test's only
     * forward is the last one in the file) */
    char *text = fake_gw_audit_text(g);
    char *save = NULL;
    json_t *line = NULL;

    (void)r;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "type"));
        if (t && strcmp(t, "forward_result") == 0) {
            json_decref(line);
            line = j;
        } else {
            json_decref(j);
        }
    }
    free(text);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "client_gone");
    assert_int_equal(json_is_true(json_object_get(line, "sent")), sent);
    json_decref(line);
}

/* Reset in the middle of the answer's body: the transfer is cancelled, the
 * back end's connection closed, every reference released. */
static void test_reset_mid_transfer(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r;

    r = fwd_mid_transfer(g);
    assert_true(fake_req_streamed(r));
    assert_false(fake_req_complete(r));
    assert_string_equal(fake_req_resp_body(r, NULL), "the first part");
    assert_int_equal(fake_upstream_open(g->up), 1);
    assert_true(fake_req_refs(r) > 2); /* the transfer holds the request */

    fake_req_reset(r);
    assert_true(fake_req_on_close_ran(r));
    assert_true(fake_spin(g->w, upstream_closed, g, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_false(fake_req_complete(r));
    assert_client_gone(g, r, true);
    fake_req_free(r);
}

/* The back end dies after the answer started streaming: too late for a
 * 502, so the stream is reset (RST_STREAM), never ended as if the answer
 * were complete; the outcome line says what happened. */
static bool was_reset(void *arg)
{
    return fake_req_was_reset(arg);
}

static void test_upstream_dies_mid_transfer(void **state)
{
    struct fake_gw *g = *state;
    struct dz_req *r;
    json_t *line;

    r = fwd_mid_transfer(g);
    assert_true(fake_req_streamed(r));
    assert_int_equal(fake_req_status(r), 200);

    fake_upstream_drop(g->up); /* 1000 bytes short of its content-length */
    assert_true(fake_spin(g->w, was_reset, r, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_complete(r));
    assert_string_equal(fake_req_resp_body(r, NULL), "the first part");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward_result");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "upstream_error");
    assert_true(json_is_true(json_object_get(line, "sent")));
    json_decref(line);
    fake_req_free(r);
}

/*
 * The outcome line lost after the request left (the log failed meanwhile:
 * its disk is full).  The client's answer was not held back for it; the
 * loss is not silent: one error line "audit_lost" naming the kind, the
 * line's type and the request id (nothing of the person), and
 * darvaza_audit_lost_total{kind="outcome"}.
 */
static void test_outcome_lost_is_told(void **state)
{
    struct fake_gw *g = *state;
    char rid[64];
    struct fwd_capture cap;
    struct dz_req *r;
    json_t *line;
    char *logs;
    char *text;
    bool reset;
    bool idle;

    r = fwd_mid_transfer(g);
    snprintf(rid, sizeof(rid), "%s", fake_req_resp_header(r, "darvaza-request-id"));
    line = fake_gw_audit_find(g, rid, "forward"); /* the request is on record */
    assert_non_null(line);
    json_decref(line);
    assert_int_equal(fwd_metric(g, "darvaza_audit_lost_total{kind=\"outcome\"}"), 0);

    fwd_audit_file_fills(g);
    fwd_capture_start(&cap);
    fake_upstream_drop(g->up); /* the transfer ends: the outcome is written */
    reset = fake_spin(g->w, was_reset, r, FAKE_GW_TIMEOUT_MS);
    idle = fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS);
    logs = fwd_capture_end(&cap);
    assert_true(reset);
    assert_true(idle);
    assert_string_equal(fake_req_resp_body(r, NULL), "the first part");

    line = fwd_log_line(logs, "audit_lost", rid);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "level")), "error");
    assert_string_equal(json_string_value(json_object_get(line, "kind")), "outcome");
    assert_string_equal(json_string_value(json_object_get(line, "type")), "forward_result");
    text = json_dumps(line, 0);
    assert_null(strstr(text, FIN_A));
    free(text);
    json_decref(line);
    /* One line for the loss, not a second generic one. */
    line = fwd_log_line(logs, "audit_failed", rid);
    assert_null(line);
    free(logs);
    assert_int_equal(fwd_metric(g, "darvaza_audit_lost_total{kind=\"outcome\"}"), 1);
    assert_null(fake_gw_audit_find(g, rid, "forward_result"));
    fake_req_free(r);
}

/* Reset before the back end answered anything. */
static void test_reset_before_answer(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_mode(g->up, FAKE_UP_HOLD);
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_gw_send(g, r);
    assert_true(fake_spin(g->w, upstream_got_request, g, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_started(r));
    fake_req_reset(r);
    assert_true(fake_spin(g->w, upstream_closed, g, FAKE_GW_TIMEOUT_MS));
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_int_equal(fake_req_status(r), 0);
    /* the back end had the request: the log says the client went */
    assert_client_gone(g, r, true);
    fake_req_free(r);
}

/* Reset while the "sent" line is being written: the request has not left
 * and never will; the outcome line says so (sent false), and everything is
 * released. */
static void test_reset_during_audit(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_worker_hold_posts(g->w, true);
    fake_gw_send(g, r);
    /* The audit writer has made the line durable and posted its result. */
    assert_true(fake_spin(g->w, fwd_audit_delivery_waiting, g, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_upstream_requests(g->up), 0); /* nothing left yet */
    fake_req_reset(r);
    fake_worker_hold_posts(g->w, false);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_false(fake_req_started(r));
    assert_int_equal(fake_upstream_requests(g->up), 0); /* and never did */
    assert_client_gone(g, r, false);
    fake_req_free(r);
}

/* What the router refuses before any endpoint reads the request: a
 * malformed :authority, and a header read as one value sent twice. */
static void test_router_refusals(void **state)
{
    struct fake_gw *g = *state;
    static const char *const bad_authorities[] = {"evil\"host", "a b", "x/y", "h\\", "a,b"};
    struct dz_req *r;
    char tok[64];

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    for (size_t i = 0; i < sizeof(bad_authorities) / sizeof(bad_authorities[0]); i++) {
        r = fake_gw_req(g, "GET", "/api/t/open");
        fake_req_bearer(r, tok);
        fake_req_set_authority(r, bad_authorities[i]);
        assert_true(fake_gw_roundtrip(g, r));
        assert_problem(r, 400, "invalid_request");
        fake_req_free(r);
    }
    /* the control: a good authority, an IPv6 literal with a port */
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_req_set_authority(r, "[::1]:8443");
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    static const char *const single[] = {"origin", "darvaza-purpose", "authorization",
                                         "content-type"};
    for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        r = fake_gw_req(g, "GET", "/api/t/open");
        fake_req_bearer(r, tok);
        fake_req_add_header(r, single[i], "a");
        fake_req_add_header(r, single[i], "b");
        assert_true(fake_gw_roundtrip(g, r));
        assert_problem(r, 400, "invalid_request");
        fake_req_free(r);
    }
    assert_int_equal(fake_upstream_requests(g->up), 1); /* only the control went out */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_by_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insufficient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_audited_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_override_fields_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarded_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_key_long, setup_long_name, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_header_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_conditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_mid_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_dies_mid_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_lost_is_told, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_before_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_during_audit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
