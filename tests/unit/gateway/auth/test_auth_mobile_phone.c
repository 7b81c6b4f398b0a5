/*
 * test_auth_mobile_phone.c - the one-request-per-phone lock of mobile login
 * (gateway/mssp/mssp_phone.c, docs/mobile.md "One request per phone") on the
 * request-layer harness.  Someone else's request holds the phone, nobody
 * polls it: a start for the phone asks the MSSP (the harness's scripted
 * back end) whether that request has ended (or is unknown to the MSSP),
 * and goes on only if so; and a late poll of an ended request frees only
 * its own lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "harness/fake_gw.h"
#include "harness/store_wrap.h"
#include "mobile_case.h"
#include "state/store.h"

#define FIN "5ABC123"
#define PHONE "+994501234567"
#define HELD "XXXXXXXXXXXXXXXXXXXXXX"  /* the lock value of the request on the phone */
#define NEWER "YYYYYYYYYYYYYYYYYYYYYY" /* a newer request's lock value */
#define ID "AAAAAAAAAAAAAAAAAAAAAA"    /* the held request's id */
#define BIND "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void put(struct mobile_fx *f, const char *ns, const char *val)
{
    assert_int_equal(
        dz_store_put(f->g->gw.store, ns, PHONE, strlen(PHONE), val, strlen(val), 60000, 0), 0);
}

/* The phone is held by request HELD, whose start recorded its MSSP session. */
static int setup(void **state)
{
    struct mobile_fx *f = mobile_fx_new("@UPSTREAM@");

    put(f, "mobphone", HELD);
    put(f, "mobphsess", HELD " mssp-held-1");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    mobile_fx_free(*state);
    return 0;
}

/* The value of the phone's lock ("" when free). */
static const char *lock_of(struct mobile_fx *f, char *out, size_t out_len)
{
    struct dz_buf b;

    dz_buf_init(&b, 256);
    out[0] = '\0';
    if (dz_store_get(f->g->gw.store, "mobphone", PHONE, strlen(PHONE), &b) == 0)
        snprintf(out, out_len, "%.*s", (int)b.len, b.data);
    dz_buf_cleanup(&b);
    return out;
}

/* POST /auth/mobile for the phone, answered. */
static struct dz_req *start(struct mobile_fx *f)
{
    struct dz_req *r = fake_gw_req(f->g, "POST", "/auth/mobile");

    fake_req_add_header(r, "origin", FAKE_GW_ORIGIN);
    fake_req_set_json(r, "{\"phone\":\"" PHONE "\",\"fin\":\"" FIN "\"}");
    assert_true(fake_gw_roundtrip(f->g, r));
    return r;
}

static void assert_pending(struct dz_req *r)
{
    char buf[64];

    assert_int_equal(fake_req_status(r), 429);
    assert_string_equal(fake_req_problem_code(r, buf, sizeof(buf)), "request_pending");
}

/* A start that asks the MSSP about the held request, frees the phone
 * and takes it: 202 after the status query and the new request; lock gets
 * the phone's new lock value. */
static void start_takes_phone(struct mobile_fx *f, char *lock, size_t lock_len)
{
    struct dz_req *r = start(f);

    assert_int_equal(fake_req_status(r), 202);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(f->g->up), 2);
    assert_non_null(strstr(fake_upstream_last_request(f->g->up), "POST /mid/authentication"));
    lock_of(f, lock, lock_len);
    assert_int_equal(strlen(lock), 22);
    assert_string_not_equal(lock, HELD);
}

/* The MSSP says the held request has ended (the phone refused it) and
 * takes the new one: the start frees the phone, takes it and goes on. */
static void test_ended_request_frees_phone(void **state)
{
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_buf b;

    /* One answer serves both calls: the status, then the new request. */
    fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n",
                             "{\"state\":\"COMPLETE\",\"result\":\"USER_CANCELLED\","
                             "\"session_id\":\"mssp-new-2\"}");
    start_takes_phone(f, lock, sizeof(lock));
    /* The phone is the new request's now, under its own session. */
    dz_buf_init(&b, 256);
    assert_int_equal(dz_store_get(f->g->gw.store, "mobphsess", PHONE, strlen(PHONE), &b), 0);
    assert_int_equal(b.len, 22 + strlen(" mssp-new-2"));
    assert_memory_equal(b.data, lock, 22);
    assert_memory_equal(b.data + 22, " mssp-new-2", strlen(" mssp-new-2"));
    dz_buf_cleanup(&b);
}

/* Two starts find the ended request at once: one takes the phone, the
 * other finds it taken by the first and is refused. */
static void test_racing_starts_one_wins(void **state)
{
    struct mobile_fx *f = *state;
    struct dz_req *r[2];
    int ok = 0, pending = 0;

    fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n",
                             "{\"state\":\"COMPLETE\",\"result\":\"USER_CANCELLED\","
                             "\"session_id\":\"mssp-new-2\"}");
    for (int i = 0; i < 2; i++) {
        r[i] = fake_gw_req(f->g, "POST", "/auth/mobile");
        fake_req_add_header(r[i], "origin", FAKE_GW_ORIGIN);
        fake_req_set_json(r[i], "{\"phone\":\"" PHONE "\",\"fin\":\"" FIN "\"}");
        fake_gw_send(f->g, r[i]);
    }
    for (int i = 0; i < 2; i++) {
        assert_true(fake_spin_answer(f->g->w, r[i], FAKE_GW_TIMEOUT_MS));
        if (fake_req_status(r[i]) == 202)
            ok++;
        else {
            assert_pending(r[i]);
            pending++;
        }
        fake_req_free(r[i]);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(pending, 1);
}

/* Still waiting on the phone: 429 request_pending, after asking. */
static void test_waiting_request_keeps_phone(void **state)
{
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n",
                             "{\"state\":\"RUNNING\"}");
    r = start(f);
    assert_pending(r);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(f->g->up), 1);
    assert_non_null(
        strstr(fake_upstream_last_request(f->g->up), "GET /mid/session/mssp-held-1?timeoutMs=0"));
    assert_string_equal(lock_of(f, lock, sizeof(lock)), HELD);
}

/* The MSSP cannot say (an error): fail closed. */
static void test_mssp_error_keeps_phone(void **state)
{
    static const int statuses[] = {500, 502, 503};
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        fake_upstream_set_answer(f->g->up, statuses[i], "content-type: application/json\r\n",
                                 "{\"state\":\"COMPLETE\",\"result\":\"USER_CANCELLED\"}");
        r = start(f);
        assert_pending(r);
        fake_req_free(r);
        assert_int_equal(fake_upstream_requests(f->g->up), i + 1);
        assert_string_equal(lock_of(f, lock, sizeof(lock)), HELD);
    }
}

/* The MSSP answers 200 but says no end: not JSON, no state, a state that
 * is not text, an unknown state, or COMPLETE somewhere else than the
 * state.  None of it reads as ended: 429 request_pending, the phone held. */
static void test_malformed_status_keeps_phone(void **state)
{
    static const char *const bodies[] = {
        "COMPLETE",
        "{\"state\":\"COMPLETE\"",
        "",
        "{}",
        "{\"result\":\"USER_CANCELLED\"}",
        "{\"state\":null,\"result\":\"USER_CANCELLED\"}",
        "{\"state\":7}",
        "{\"state\":[\"COMPLETE\"]}",
        "{\"state\":\"complete\"}",
        "{\"state\":\"COMPLETED\"}",
        "{\"state\":\"COMPLETE\\u0000x\"}",
        "{\"session\":{\"state\":\"COMPLETE\"}}",
        "[{\"state\":\"COMPLETE\"}]",
    };
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        /* More starts than mobile.phone_rate allows a minute. */
        (void)dz_store_del(f->g->gw.store, "mobrate", PHONE, strlen(PHONE));
        fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n", bodies[i]);
        r = start(f);
        assert_pending(r);
        fake_req_free(r);
        assert_int_equal(fake_upstream_requests(f->g->up), i + 1);
        assert_non_null(strstr(fake_upstream_last_request(f->g->up), "GET /mid/session/"));
        assert_string_equal(lock_of(f, lock, sizeof(lock)), HELD);
    }
}

/* The MSSP no longer has the held request (404: expired there, or
 * forgotten by its restart): nothing of it waits on the phone, so the
 * start frees the phone, takes it and goes on, as for an ended request. */
static void test_forgotten_request_frees_phone(void **state)
{
    struct mobile_fx *f = *state;
    char lock[64];

    fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n",
                             "{\"session_id\":\"mssp-new-2\"}");
    fake_upstream_set_next_status(f->g->up, 404); /* the status query's */
    start_takes_phone(f, lock, sizeof(lock));
}

/* A lock whose session is not recorded (its start is still on the way),
 * or recorded for an older lock: nothing to ask, the phone stays held. */
static void test_unknown_session_keeps_phone(void **state)
{
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    put(f, "mobphsess", NEWER " mssp-older-0");
    r = start(f);
    assert_pending(r);
    fake_req_free(r);
    assert_int_equal(fake_upstream_requests(f->g->up), 0);
    assert_string_equal(lock_of(f, lock, sizeof(lock)), HELD);
}

/* The held request polled at last, after the phone went to a newer
 * request: it finishes, and the newer request's lock stays; its own lock
 * is freed when it still holds the phone. */
static void test_late_poll_frees_only_its_lock(void **state)
{
    static const char answer[] = "{\"state\":\"COMPLETE\",\"result\":\"USER_CANCELLED\"}";
    static const char *const locks[] = {NEWER, HELD};
    static const char *const after[] = {NEWER, ""};
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    for (size_t i = 0; i < 2; i++) {
        put(f, "mobphone", locks[i]);
        mobile_rec_put(f, ID, FIN, PHONE, BIND, HELD);
        /* The MSSP's answer as the polls share it (auth_mobile.c). */
        assert_int_equal(dz_store_put(f->g->gw.store, "mobres", ID, strlen(ID), answer,
                                      strlen(answer), 60000, 0),
                         0);
        r = fake_gw_req(f->g, "GET", "/auth/mobile/" ID);
        fake_req_add_header(r, "cookie", "__Host-darvaza-mob=" BIND);
        assert_true(fake_gw_roundtrip(f->g, r));
        assert_int_equal(fake_req_status(r), 200);
        fake_req_free(r);
        assert_string_equal(lock_of(f, lock, sizeof(lock)), after[i]);
    }
}

/* Set by the store wrapper's hook: the unwrapped store, and whether the
 * next release of the phone's lock finds it taken by a newer request. */
static struct dz_store *inner_store;
static bool taken_meanwhile;

static int before_release(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    if (taken_meanwhile && strcmp(ns, "mobphone") == 0 &&
        (strcmp(op, "del") == 0 || strcmp(op, "del_if") == 0)) {
        /* This start's lock expired and another request took the phone. */
        taken_meanwhile = false;
        assert_int_equal(dz_store_put(inner_store, "mobphone", PHONE, strlen(PHONE), NEWER,
                                      strlen(NEWER), 60000, 0),
                         0);
    }
    return 0;
}

/* The phone free, the store wrapped (before_release). */
static int setup_wrapped(void **state)
{
    struct mobile_fx *f = mobile_fx_new("@UPSTREAM@");
    struct store_wrap *w;

    inner_store = f->g->gw.store;
    /* Requests read gw.store when they run: from now on the wrapper,
     * which owns (and frees) the harness's store. */
    assert_int_equal(store_wrap_new(f->g->gw.store, &w, &f->g->gw.store), 0);
    w->before = before_release;
    taken_meanwhile = false;
    *state = f;
    return 0;
}

/* A start fails after taking the phone (the MSSP refuses it, or answers
 * without a session), and its lock expired meanwhile and went to a newer
 * request: the failing start frees only its own lock, never the newer
 * request's (which would let a third start push the phone alongside it). */
static void test_failed_start_keeps_newer_lock(void **state)
{
    static const struct {
        int status;
        const char *body;
    } fails[] = {{500, "{}"}, {200, "{\"result\":\"OK\"}"}};
    struct mobile_fx *f = *state;
    char lock[64];
    struct dz_req *r;

    for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
        (void)dz_store_del(inner_store, "mobphone", PHONE, strlen(PHONE));
        fake_upstream_set_answer(f->g->up, fails[i].status, "content-type: application/json\r\n",
                                 fails[i].body);
        taken_meanwhile = true;
        r = start(f);
        assert_int_equal(fake_req_status(r), 502);
        fake_req_free(r);
        assert_false(taken_meanwhile); /* the release ran */
        assert_string_equal(lock_of(f, lock, sizeof(lock)), NEWER);
    }
}

/* The MSSP's session id goes into the path of our later calls to it (the
 * status a start asks, the polls), made with our secret: an id that is not
 * a plain token (a path, a query, a fragment, dot segments, escapes,
 * spaces, control characters, a NUL) would send them elsewhere on the
 * MSSP.  Such a start has failed: 502, nothing recorded, the phone free. */
static void test_bad_session_id_refused(void **state)
{
    static const char *const bad[] = {
        "\"\"",
        "\"../../admin\"",
        "\"a/b\"",
        "\"..\"",
        "\"x?timeoutMs=0&y=\"",
        "\"x#y\"",
        "\"x%2F..%2Fy\"",
        "\"x y\"",
        "\"x\\r\\nHost: evil\"",
        "\"x\\u0000/y\"",
        "\"x\\u00e9\"",
        "\"0123456789012345678901234567890123456789012345678901234567890123\"",
        "42",
    };
    struct mobile_fx *f = *state;
    char body[160];
    char buf[64];
    struct dz_buf b;
    struct dz_req *r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        (void)dz_store_del(f->g->gw.store, "mobphone", PHONE, strlen(PHONE));
        (void)dz_store_del(f->g->gw.store, "mobphsess", PHONE, strlen(PHONE));
        (void)dz_store_del(f->g->gw.store, "mobrate", PHONE, strlen(PHONE)); /* phone_rate */
        snprintf(body, sizeof(body), "{\"session_id\":%s}", bad[i]);
        fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n", body);
        r = start(f);
        if (fake_req_status(r) != 502)
            fail_msg("session_id %s: %d", bad[i], fake_req_status(r));
        assert_string_equal(fake_req_problem_code(r, buf, sizeof(buf)), "upstream_unavailable");
        fake_req_free(r);
        assert_non_null(strstr(fake_upstream_last_request(f->g->up), "POST /mid/authentication"));
        assert_string_equal(lock_of(f, buf, sizeof(buf)), "");
        dz_buf_init(&b, 256);
        assert_int_not_equal(dz_store_get(f->g->gw.store, "mobphsess", PHONE, strlen(PHONE), &b),
                             0);
        dz_buf_cleanup(&b);
    }
    /* A UUID, as MSSPs give, still starts. */
    (void)dz_store_del(f->g->gw.store, "mobphone", PHONE, strlen(PHONE));
    (void)dz_store_del(f->g->gw.store, "mobrate", PHONE, strlen(PHONE));
    fake_upstream_set_answer(f->g->up, 200, "content-type: application/json\r\n",
                             "{\"session_id\":\"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\"}");
    r = start(f);
    assert_int_equal(fake_req_status(r), 202);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ended_request_frees_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racing_starts_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_request_keeps_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mssp_error_keeps_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_status_keeps_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forgotten_request_frees_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_session_keeps_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_poll_frees_only_its_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_session_id_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_start_keeps_newer_lock, setup_wrapped,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
