/*
 * test_startlimit.c - dz_start_check (gateway/core/startlimit.c), the
 * non-waiting count of unauthenticated starts, on the in-process store of
 * the request-layer harness: the per-address limit (429 rate_limited with
 * Retry-After), the global limit (an address over its own limit is not
 * counted globally), two limits in a row (a QR start: "qr", then
 * "qr_pending" over the QR lifetime), and a store that cannot count (503
 * state_unavailable: fail closed).  Each check calls its continuation once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/rctx.h"
#include "core/startlimit.h"
#include "harness/fake_gw.h"
#include "state/store.h"

struct outcome {
    int calls;
    bool ok;
    int status;
    char code[64];
    long retry_after; /* -1: no header */
};

static void then(struct dz_rctx *c, bool ok, void *arg)
{
    struct outcome *o = arg;

    o->calls++;
    o->ok = ok;
}

/* One request from ip through dz_start_check(limits, n); limits NULL: the
 * config's limit for "mobile" (dz_start_limit_of). */
static struct outcome check(struct fake_gw *g, const char *ip, const struct dz_start_limit *limits,
                            size_t n)
{
    struct outcome o = {.retry_after = -1};
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/mobile");
    struct dz_rctx *c = calloc(1, sizeof(*c));
    struct dz_start_limit own;
    const char *ra;

    assert_non_null(c);
    fake_req_set_peer(r, ip);
    /* As the router makes one (router.c rctx_new), without its hooks. */
    c->req = r;
    c->gw_worker = g->gww;
    c->gw = &g->gw;
    c->gen = g->gww->gen;
    dz_gen_ref(c->gen);
    snprintf(c->rid, sizeof(c->rid), "test");
    dz_rctx_hold(c);
    if (!limits) {
        own = dz_start_limit_of(c, "mobile");
        limits = &own;
        n = 1;
    }
    dz_start_check(c, limits, n, then, &o);
    /* The in-process store answers at once: then() has run. */
    assert_int_equal(o.calls, 1);
    o.status = fake_req_status(r);
    fake_req_problem_code(r, o.code, sizeof(o.code));
    ra = fake_req_resp_header(r, "retry-after");
    if (ra)
        o.retry_after = strtol(ra, NULL, 10);
    dz_rctx_release(c);
    fake_req_free(r);
    return o;
}

static int setup(void **state)
{
    struct fake_gw_opts o = {.config_extra = "limits:\n"
                                             "  starts_per_address: 2\n"
                                             "  starts_global: 1000\n"};
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&o, &g), 0);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    assert_true(fake_gw_free(*state));
    return 0;
}

static void assert_refused(const struct outcome *o, long window_s)
{
    assert_false(o->ok);
    assert_int_equal(o->status, 429);
    assert_string_equal(o->code, "rate_limited");
    /* The seconds left in the window: at least one, at most the window. */
    assert_true(o->retry_after >= 1 && o->retry_after <= window_s);
}

static void assert_allowed(const struct outcome *o)
{
    assert_true(o->ok);
    assert_int_equal(o->status, 0); /* nothing answered: the caller goes on */
}

static void test_per_address(void **state)
{
    struct fake_gw *g = *state;
    struct outcome o;

    /* limits.starts_per_address: 2 a minute from one address. */
    o = check(g, "192.0.2.1", NULL, 0);
    assert_allowed(&o);
    o = check(g, "192.0.2.1", NULL, 0);
    assert_allowed(&o);
    o = check(g, "192.0.2.1", NULL, 0);
    assert_refused(&o, 60);
    /* Another address has its own count; one /64 counts as one address. */
    o = check(g, "192.0.2.2", NULL, 0);
    assert_allowed(&o);
    o = check(g, "2001:db8:1:2::1", NULL, 0);
    assert_allowed(&o);
    o = check(g, "2001:db8:1:2::ffff", NULL, 0);
    assert_allowed(&o);
    o = check(g, "2001:db8:1:2:aaaa::7", NULL, 0);
    assert_refused(&o, 60);
}

static void test_global(void **state)
{
    struct fake_gw *g = *state;
    const struct dz_start_limit lim = {"t_global", 60000, 1, 3};
    struct outcome o;

    o = check(g, "198.51.100.1", &lim, 1);
    assert_allowed(&o);
    /* Over its own limit: refused before the global count, so it does not
     * use up everyone's budget. */
    o = check(g, "198.51.100.1", &lim, 1);
    assert_refused(&o, 60);
    o = check(g, "198.51.100.2", &lim, 1);
    assert_allowed(&o);
    o = check(g, "198.51.100.3", &lim, 1);
    assert_allowed(&o);
    /* The fourth address within its own limit: over the global one. */
    o = check(g, "198.51.100.4", &lim, 1);
    assert_refused(&o, 60);
}

static void test_two_limits(void **state)
{
    struct fake_gw *g = *state;
    /* A QR start: per minute, then pending per QR lifetime (global 0: no
     * global limit on the second). */
    const struct dz_start_limit lim[2] = {{"t_qr", 60000, 5, 1000}, {"t_qr_pending", 300000, 2, 0}};
    struct outcome o;

    o = check(g, "203.0.113.1", lim, 2);
    assert_allowed(&o);
    o = check(g, "203.0.113.1", lim, 2);
    assert_allowed(&o);
    /* The first limit allows the third, the second refuses it, with the
     * seconds left in its own (five-minute) window. */
    o = check(g, "203.0.113.1", lim, 2);
    assert_refused(&o, 300);
    /* The first limit refuses on its own once over it, even with the second
     * out of the way (a new address, a fresh pending count). */
    const struct dz_start_limit tight[2] = {{"t_qr2", 60000, 1, 0},
                                            {"t_qr2_pending", 300000, 9, 0}};
    o = check(g, "203.0.113.2", tight, 2);
    assert_allowed(&o);
    o = check(g, "203.0.113.2", tight, 2);
    assert_refused(&o, 60);
    /* More limits than it takes: refused, not ignored. */
    struct dz_start_limit many[DZ_START_LIMITS_MAX + 1];
    for (size_t i = 0; i < DZ_START_LIMITS_MAX + 1; i++)
        many[i] = (struct dz_start_limit){"t_many", 60000, 100, 0};
    o = check(g, "203.0.113.3", many, DZ_START_LIMITS_MAX + 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 503);
    assert_string_equal(o.code, "state_unavailable");
}

/* A store that cannot count: every call fails as an unreachable Redis
 * does (the asynchronous forms fall back to these). */
static int down_put(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                    size_t key_len, const void *val, size_t val_len, uint64_t ttl_ms, int flags)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_read(void *impl, const char *ns, const void *key, size_t key_len,
                     struct dz_buf *out)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_del(void *impl, const char *ns, const void *key, size_t key_len)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_del_if(void *impl, const char *ns, const void *key, size_t key_len, const void *val,
                       size_t val_len)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_incr(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                     size_t key_len, uint64_t ttl_ms, int64_t *out)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_ttl(void *impl, const char *ns, const void *key, size_t key_len, uint64_t *out)
{
    return DZ_ERR_UNAVAILABLE;
}

static int down_touch(void *impl, const char *ns, const void *key, size_t key_len, uint64_t ttl)
{
    return DZ_ERR_UNAVAILABLE;
}

static size_t down_count(void *impl, const char *ns)
{
    return 0;
}

static void down_free(void *impl)
{
}

static void test_store_down(void **state)
{
    struct fake_gw *g = *state;
    static const struct dz_store_ops down = {
        .put = down_put,
        .get = down_read,
        .take = down_read,
        .del = down_del,
        .del_if = down_del_if,
        .incr = down_incr,
        .ttl = down_ttl,
        .touch = down_touch,
        .count = down_count,
        .free = down_free,
    };
    struct dz_store *saved = g->gw.store;
    struct dz_store *s = NULL;
    const struct dz_start_limit lim = {"t_down", 60000, 100, 1000};
    struct outcome o;

    static int nothing; /* the backend keeps no state */

    assert_int_equal(dz_store_new(&down, &nothing, &s), 0);
    g->gw.store = s;
    o = check(g, "192.0.2.9", &lim, 1);
    g->gw.store = saved;
    dz_store_free(s);
    /* Never "allowed" because the count could not be kept. */
    assert_false(o.ok);
    assert_int_equal(o.status, 503);
    assert_string_equal(o.code, "state_unavailable");
    assert_int_equal(o.retry_after, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
