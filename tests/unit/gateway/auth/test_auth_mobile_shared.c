/*
 * test_auth_mobile_shared.c - the polls of a mobile login across instances
 * (gateway/auth/auth_mobile.c, docs/mobile.md "Polls on several
 * instances") on the request-layer harness, with the store's wake-ups
 * handed to the worker (core/wake.c).  What another instance would do is
 * done here straight in the store: hold the login's lease (mobwatch),
 * write the MSSP's final answer (mobres) and publish.  The MSSP's URL goes
 * nowhere (port 9): a poll that asked it would answer 502, so every answer
 * below that is not a 502 came from the store.
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
#include "base/err.h"
#include "core/wake.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "mobile_case.h"
#include "state/store.h"

#define FIN "5ABC123"
#define PHONE "+994501234567"
#define ID "AAAAAAAAAAAAAAAAAAAAAA" /* 22 characters, as the gateway's ids */
/* The starting browser's binding cookie (its value is hashed in the record). */
#define BIND "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define COOKIE "__Host-darvaza-mob=" BIND

static int setup(void **state)
{
    struct mobile_fx *f = mobile_fx_new("http://127.0.0.1:9");

    /* The daemon subscribes its workers to the store's wake-ups at start. */
    f->g->gw.workers[0] = f->g->gww;
    assert_int_equal(dz_wake_setup(&f->g->gw), 0);
    mobile_rec_put(f, ID, FIN, PHONE, BIND, "");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    mobile_fx_free(*state);
    return 0;
}

/* A poll by the browser that started the login (cookie COOKIE), or by
 * another one (cookie: that cookie, or NULL for none). */
static struct dz_req *poll_as(struct mobile_fx *f, const char *query, const char *cookie)
{
    char path[96];
    struct dz_req *r;

    snprintf(path, sizeof(path), "/auth/mobile/%s%s", ID, query);
    r = fake_gw_req(f->g, "GET", path);
    if (cookie)
        fake_req_add_header(r, "cookie", cookie);
    return r;
}

static struct dz_req *poll_req(struct mobile_fx *f, const char *query)
{
    return poll_as(f, query, COOKIE);
}

static bool present(struct mobile_fx *f, const char *ns)
{
    struct dz_buf b;
    int rc;

    dz_buf_init(&b, 64 * 1024);
    rc = dz_store_get(f->g->gw.store, ns, ID, strlen(ID), &b);
    dz_buf_cleanup(&b);
    return rc == 0;
}

/* What another instance's poll writes when the MSSP answers: the user
 * refused (no certificate needed to finish). */
static void share_refusal(struct mobile_fx *f)
{
    static const char answer[] = "{\"state\":\"COMPLETE\",\"result\":\"USER_CANCELLED\"}";

    assert_int_equal(
        dz_store_put(f->g->gw.store, "mobres", ID, strlen(ID), answer, strlen(answer), 60000, 0),
        0);
    dz_store_publish(f->g->gw.store, "mob", ID, strlen(ID));
}

static void assert_failed_cancelled(struct dz_req *r)
{
    json_t *j = fake_req_json(r);

    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "user_cancelled");
    json_decref(j);
}

static bool waiting(void *arg)
{
    struct dz_req *r = arg;

    return fake_req_refs(r) > 2; /* the wait holds the request */
}

/* Another instance holds the lease: this poll does not ask the MSSP, waits,
 * and is woken by the shared answer; the login is then finished once. */
static void test_woken_by_shared_answer(void **state)
{
    struct mobile_fx *f = *state;
    unsigned long woken0 = dz_wake_delivered();
    struct dz_req *poll;
    struct dz_req *r;

    assert_int_equal(
        dz_store_put(f->g->gw.store, "mobwatch", ID, strlen(ID), "1", 1, 60000, DZ_STORE_NX), 0);
    poll = poll_req(f, "?wait=20");
    fake_gw_send(f->g, poll);
    assert_true(fake_spin(f->g->w, waiting, poll, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_started(poll));

    share_refusal(f);
    assert_true(fake_spin_answer(f->g->w, poll, FAKE_GW_TIMEOUT_MS));
    assert_failed_cancelled(poll);
    assert_int_equal(dz_wake_delivered() - woken0, 1);
    fake_req_free(poll);
    /* Taken: the record and the shared answer are gone, a later poll is 404. */
    assert_false(present(f, "mob"));
    assert_false(present(f, "mobres"));
    r = poll_req(f, "");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_problem(r, 404, "not_found");
    fake_req_free(r);
}

/* The answer was shared before this poll came: it finishes at once. */
static void test_answer_already_shared(void **state)
{
    struct mobile_fx *f = *state;
    struct dz_req *r;

    share_refusal(f);
    r = poll_req(f, "");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_failed_cancelled(r);
    fake_req_free(r);
}

/* The lease held elsewhere and nothing shared: the wait ends "pending",
 * without asking the MSSP, and the other's lease stays. */
static void test_lease_held_pending(void **state)
{
    struct mobile_fx *f = *state;
    struct dz_req *r;
    json_t *j;

    assert_int_equal(
        dz_store_put(f->g->gw.store, "mobwatch", ID, strlen(ID), "1", 1, 60000, DZ_STORE_NX), 0);
    r = poll_req(f, "?wait=1");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "pending");
    json_decref(j);
    fake_req_free(r);
    assert_true(present(f, "mobwatch"));
    assert_true(present(f, "mob"));
}

/* No lease: this poll takes it and asks the MSSP (here unreachable: 502);
 * the lease is let go when its call ends, so another poll can ask. */
static void test_lease_taken_and_released(void **state)
{
    struct mobile_fx *f = *state;
    struct dz_req *r;

    r = poll_req(f, "");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_problem(r, 502, "upstream_unavailable");
    fake_req_free(r);
    assert_false(present(f, "mobwatch"));
    assert_true(present(f, "mob"));
}

/* The browser leaves while waiting: the wait lets go at once, takes nothing. */
static void test_waiting_poll_reset(void **state)
{
    struct mobile_fx *f = *state;
    struct dz_req *poll;

    assert_int_equal(
        dz_store_put(f->g->gw.store, "mobwatch", ID, strlen(ID), "1", 1, 60000, DZ_STORE_NX), 0);
    poll = poll_req(f, "?wait=20");
    fake_gw_send(f->g, poll);
    assert_true(fake_spin(f->g->w, waiting, poll, FAKE_GW_TIMEOUT_MS));
    fake_req_reset(poll);
    assert_int_equal(fake_req_refs(poll), 1);
    assert_true(fake_spin_idle(f->g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(poll), 0);
    fake_req_free(poll);
    assert_true(present(f, "mob"));
}

/* Only the browser that started the login collects it: a poll without
 * its cookie (an id carried elsewhere, or a victim's browser sent to the
 * poll of a login approved on the sender's phone) is 403 and takes nothing,
 * even once the answer is there; the starting browser then finishes. */
static void test_other_browser_refused(void **state)
{
    struct mobile_fx *f = *state;
    static const char *const others[] = {
        NULL,
        "__Host-darvaza-mob=cccccccccccccccccccccccccccccccccccccccccc",
        "__Host-darvaza-qr=" BIND,
    };
    struct dz_req *r;

    share_refusal(f);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        r = poll_as(f, "?wait=1", others[i]);
        assert_true(fake_gw_roundtrip(f->g, r));
        assert_problem(r, 403, "forbidden");
        assert_null(fake_req_resp_header(r, "set-cookie"));
        fake_req_free(r);
    }
    assert_true(present(f, "mob"));
    assert_true(present(f, "mobres"));
    r = poll_req(f, "");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_failed_cancelled(r);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_woken_by_shared_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_already_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_held_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_taken_and_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_poll_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_browser_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
