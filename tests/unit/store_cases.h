/* store_cases.h - the cases every backend of the ephemeral store must pass,
 * through the public interface only.  Included by test_store.c (in-process
 * backend) and test_store_redis.c (Redis), each of which defines first:
 *
 *   static int backend_new(const struct dz_store_quotas *q, struct dz_store **out);
 *
 * (q NULL: the default quotas) returning an empty store, and then lists
 * STORE_CASES in its cmocka table (the includer includes <ev.h>). */
#ifndef STORE_CASES_H
#define STORE_CASES_H

/* TTLs the cases let run out: long enough for the round trips before the
 * checks even on a slow shared backend, short enough to wait for. */
#define SHORT_TTL_MS 400
#define FILL_TTL_MS 1500

static const char NS[] = "test";

/* Every kind's quota set to n. */
static const struct dz_store_quotas *quotas_all(size_t n)
{
    static struct dz_store_quotas q;

    for (size_t i = 0; i < DZ_STORE_KINDS; i++)
        q.max[i] = n;
    return &q;
}

static struct dz_store *mk(void)
{
    struct dz_store *s = NULL;

    assert_int_equal(backend_new(NULL, &s), 0);
    assert_non_null(s);
    return s;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void test_put_get_overwrite_nx(void **state)
{
    struct dz_store *s = mk();
    struct dz_buf b;

    (void)state;
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "v1", 2, 10000, 0), 0);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "v1", 2);
    dz_buf_reset(&b);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "value2", 6, 10000, DZ_STORE_NX), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "v1");
    dz_buf_reset(&b);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "value2", 6, 10000, 0), 0);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "value2");
    /* get appends */
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "value2value2");
    dz_buf_reset(&b);
    /* the same key in another namespace is another entry */
    assert_int_equal(dz_store_get(s, "other", "k", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_put(s, "other", "k", 1, "", 0, 10000, DZ_STORE_NX), 0);
    assert_int_equal(dz_store_get(s, "other", "k", 1, &b), 0);
    assert_int_equal(b.len, 0);
    /* binary keys with NULs and a key that extends another */
    assert_int_equal(dz_store_put(s, NS, "a\0b", 3, "x", 1, 10000, DZ_STORE_NX), 0);
    assert_int_equal(dz_store_put(s, NS, "a\0", 2, "y", 1, 10000, DZ_STORE_NX), 0);
    assert_int_equal(dz_store_get(s, NS, "a\0b", 3, &b), 0);
    assert_int_equal(dz_store_get(s, NS, "a\0", 2, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "xy");
    assert_int_equal(dz_store_count(s, NS), 3);
    assert_int_equal(dz_store_count(s, "other"), 1);
    assert_int_equal(dz_store_count(s, "none"), 0);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void test_bad_arguments(void **state)
{
    struct dz_store *s = mk();
    unsigned char *big = calloc(1, 64 * 1024 + 1);
    char longns[80];
    struct dz_buf b;
    int64_t v = 7;
    uint64_t ms = 7;

    (void)state;
    assert_non_null(big);
    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    dz_buf_init(&b, 16);
    assert_int_equal(dz_store_put(s, NS, big, 64 * 1024 + 1, "v", 1, 1000, 0), DZ_ERR_TOOBIG);
    assert_int_equal(dz_store_put(s, NS, "k", 1, big, 64 * 1024 + 1, 1000, 0), DZ_ERR_TOOBIG);
    assert_int_equal(dz_store_put(s, NS, big, 64 * 1024, big, 64 * 1024, 1000, 0), 0);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "v", 1, 0, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "v", 1, 1000, 8), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "k", 0, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, NULL, 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "k", 1, NULL, 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, "", "k", 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NULL, "k", 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, longns, "k", 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(NULL, NS, "k", 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_get(s, NS, "k", 1, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 0, &v), DZ_ERR_INVAL);
    assert_int_equal(v, 0); /* out-param cleared on entry */
    assert_int_equal(dz_store_ttl(s, NS, "nope", 4, &ms), DZ_ERR_NOTFOUND);
    assert_int_equal(ms, 0);
    assert_int_equal(dz_store_touch(s, NS, "k", 1, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_store_count(s, ""), 0);
    assert_int_equal(dz_store_count(NULL, NS), 0);
    dz_store_free(NULL);
    free(big);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void test_take_del(void **state)
{
    struct dz_store *s = mk();
    struct dz_buf b;

    (void)state;
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_put(s, NS, "n", 1, "once", 4, 10000, 0), 0);
    assert_int_equal(dz_store_take(s, NS, "n", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "once");
    assert_int_equal(dz_store_take(s, NS, "n", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_get(s, NS, "n", 1, &b), DZ_ERR_NOTFOUND);
    dz_buf_cleanup(&b);

    /* a take whose copy fails (buffer too small) leaves the value */
    dz_buf_init(&b, 2);
    assert_int_equal(dz_store_put(s, NS, "n", 1, "once", 4, 10000, 0), 0);
    assert_int_equal(dz_store_take(s, NS, "n", 1, &b), DZ_ERR_TOOBIG);
    assert_int_equal(dz_store_get(s, NS, "n", 1, &b), DZ_ERR_TOOBIG);
    dz_buf_init(&b, 16);
    assert_int_equal(dz_store_take(s, NS, "n", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "once");

    assert_int_equal(dz_store_del(s, NS, "n", 1), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_put(s, NS, "d", 1, "x", 1, 10000, 0), 0);
    assert_int_equal(dz_store_del(s, NS, "d", 1), 0);
    assert_int_equal(dz_store_del(s, NS, "d", 1), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_count(s, NS), 0);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

/* A compare-and-delete deletes only the very value it is given. */
static void test_del_if(void **state)
{
    struct dz_store *s = mk();
    unsigned char *big = calloc(1, 64 * 1024 + 1);
    struct dz_buf b;
    int64_t v = 0;

    (void)state;
    assert_non_null(big);
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "value", 5, 10000, 0), 0);
    /* another value, one shorter, one longer: kept, and said so */
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "other", 5), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "valu", 4), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "value!", 6), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, NULL, 0), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "value");
    assert_int_equal(dz_store_count(s, NS), 1);
    /* the same value: deleted, once */
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "value", 5), 0);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "value", 5), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_count(s, NS), 0);
    /* never written, or in another namespace */
    assert_int_equal(dz_store_del_if(s, NS, "never", 5, "value", 5), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_put(s, "other", "k", 1, "value", 5, 10000, 0), 0);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, "value", 5), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_get(s, "other", "k", 1, &b), 0);
    /* an empty value, and a counter (kept as text) */
    assert_int_equal(dz_store_put(s, NS, "e", 1, "", 0, 10000, 0), 0);
    assert_int_equal(dz_store_del_if(s, NS, "e", 1, "x", 1), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_del_if(s, NS, "e", 1, NULL, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 10000, &v), 0);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 10000, &v), 0);
    assert_int_equal(dz_store_del_if(s, NS, "c", 1, "1", 1), DZ_ERR_EXISTS);
    assert_int_equal(dz_store_del_if(s, NS, "c", 1, "2", 1), 0);
    /* the checks of del, and of a value */
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, NULL, 1), DZ_ERR_INVAL);
    assert_int_equal(dz_store_del_if(s, NS, "k", 0, "v", 1), DZ_ERR_INVAL);
    assert_int_equal(dz_store_del_if(s, NS, "k", 1, big, 64 * 1024 + 1), DZ_ERR_TOOBIG);
    assert_int_equal(dz_store_del_if(NULL, NS, "k", 1, "v", 1), DZ_ERR_INVAL);
    assert_int_equal(dz_store_count(s, NS), 0);
    free(big);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void test_incr(void **state)
{
    struct dz_store *s = mk();
    struct dz_buf b;
    uint64_t ms = 0;
    int64_t v = 0;

    (void)state;
    dz_buf_init(&b, 64);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 100000, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 5, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 5, &v), 0);
    assert_int_equal(v, 3);
    /* an existing counter keeps its expiry (the 5 ms above did not apply) */
    assert_int_equal(dz_store_ttl(s, NS, "c", 1, &ms), 0);
    assert_true(ms > 50000 && ms <= 100000);
    assert_int_equal(dz_store_get(s, NS, "c", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "3");
    /* not a counter */
    assert_int_equal(dz_store_put(s, NS, "t", 1, "abc", 3, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "t", 1, "12 ", 3, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "t", 1, " 12", 3, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_INVAL);
    assert_int_equal(dz_store_put(s, NS, "t", 1, "", 0, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_INVAL);
    /* a counter put as text counts on, and growing digits are fine */
    assert_int_equal(dz_store_put(s, NS, "t", 1, "99", 2, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(dz_store_put(s, NS, "t", 1, "-2", 2, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), 0);
    assert_int_equal(v, -1);
    /* overflow is refused, not wrapped */
    assert_int_equal(dz_store_put(s, NS, "t", 1, "9223372036854775807", 19, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_TOOBIG);
    assert_int_equal(dz_store_put(s, NS, "t", 1, "9223372036854775808", 19, 10000, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "t", 1, 10000, &v), DZ_ERR_INVAL);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void test_ttl_touch_expiry(void **state)
{
    struct dz_store *s = mk();
    struct dz_buf b;
    uint64_t ms = 0;
    int64_t v = 0;

    (void)state;
    dz_buf_init(&b, 64);
    /* Short TTLs, long enough for a few round trips to a shared backend
     * under a sanitizer; then the expiry is waited for (bounded). */
    assert_int_equal(dz_store_put(s, NS, "e", 1, "x", 1, SHORT_TTL_MS, 0), 0);
    assert_int_equal(dz_store_put(s, NS, "keep", 4, "x", 1, SHORT_TTL_MS, 0), 0);
    assert_int_equal(dz_store_incr(s, NS, "cnt", 3, SHORT_TTL_MS, &v), 0);
    assert_int_equal(dz_store_ttl(s, NS, "e", 1, &ms), 0);
    assert_true(ms > 0 && ms <= SHORT_TTL_MS);
    assert_int_equal(dz_store_touch(s, NS, "keep", 4, 10000), 0);
    assert_int_equal(dz_store_ttl(s, NS, "keep", 4, &ms), 0);
    assert_true(ms > 9000 && ms <= 10000);
    assert_int_equal(dz_store_count(s, NS), 3);
    for (int i = 0; i < 500 && dz_store_count(s, NS) != 1; i++)
        sleep_ms(20);
    assert_int_equal(dz_store_count(s, NS), 1);
    assert_int_equal(dz_store_get(s, NS, "e", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_ttl(s, NS, "e", 1, &ms), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_touch(s, NS, "e", 1, 1000), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_take(s, NS, "e", 1, &b), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_del(s, NS, "e", 1), DZ_ERR_NOTFOUND);
    /* an expired key is absent for NX */
    assert_int_equal(dz_store_put(s, NS, "e", 1, "y", 1, 1000, DZ_STORE_NX), 0);
    /* an expired counter starts again at 1 */
    assert_int_equal(dz_store_incr(s, NS, "cnt", 3, 1000, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(dz_store_get(s, NS, "keep", 4, &b), 0);
    /* a huge TTL saturates instead of wrapping into the past */
    assert_int_equal(dz_store_put(s, NS, "far", 3, "x", 1, UINT64_MAX, 0), 0);
    assert_int_equal(dz_store_get(s, NS, "far", 3, &b), 0);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void test_many_keys_and_bound(void **state)
{
    struct dz_store *s = NULL;
    struct dz_buf b;
    unsigned i;
    char k[32];
    int n;

    (void)state;
    /* growth: 20000 keys in 2 shards all come back */
    assert_int_equal(backend_new(quotas_all(100000), &s), 0);
    for (i = 0; i < 20000; i++) {
        n = snprintf(k, sizeof(k), "key-%u", i);
        assert_int_equal(dz_store_put(s, NS, k, (size_t)n, &i, sizeof(i), 3600000, 0), 0);
    }
    assert_int_equal(dz_store_count(s, NS), 20000);
    dz_buf_init(&b, 64);
    for (i = 0; i < 20000; i++) {
        n = snprintf(k, sizeof(k), "key-%u", i);
        dz_buf_reset(&b);
        assert_int_equal(dz_store_get(s, NS, k, (size_t)n, &b), 0);
        assert_int_equal(b.len, sizeof(i));
        assert_memory_equal(b.data, &i, sizeof(i));
    }
    dz_store_free(s);

    /* the entry bound: the 101st live key is refused, replacing is fine */
    assert_int_equal(backend_new(quotas_all(100), &s), 0);
    for (i = 0; i < 100; i++) {
        n = snprintf(k, sizeof(k), "b-%u", i);
        assert_int_equal(dz_store_put(s, NS, k, (size_t)n, "v", 1, FILL_TTL_MS, 0), 0);
    }
    assert_int_equal(dz_store_put(s, NS, "one-more", 8, "v", 1, 10000, 0), DZ_ERR_FULL);
    assert_int_equal(dz_store_incr(s, NS, "ctr", 3, 10000, &(int64_t){0}), DZ_ERR_FULL);
    assert_int_equal(dz_store_put(s, NS, "b-7", 3, "w", 1, FILL_TTL_MS, 0), 0);
    /* once they have all expired (waited for, bounded), the full-store
     * sweep makes room */
    for (int t = 0; t < 500 && dz_store_count(s, NS) != 0; t++)
        sleep_ms(20);
    assert_int_equal(dz_store_count(s, NS), 0);
    assert_int_equal(dz_store_put(s, NS, "one-more", 8, "v", 1, 10000, 0), 0);
    for (i = 1; i < 100; i++) {
        n = snprintf(k, sizeof(k), "c-%u", i);
        assert_int_equal(dz_store_put(s, NS, k, (size_t)n, "v", 1, 10000, 0), 0);
    }
    assert_int_equal(dz_store_count(s, NS), 100);
    assert_int_equal(dz_store_put(s, NS, "c-100", 5, "v", 1, 10000, 0), DZ_ERR_FULL);
    assert_int_equal(dz_store_kind_count(s, DZ_STORE_OTHER), 100);
    assert_int_equal(dz_store_refusals(s, DZ_STORE_OTHER), 3); /* one-more, ctr, c-100 */
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

/* Each kind has its own budget: a flood of one kind (pending QR logins)
 * fills that kind only; sessions, failure counters and single-use
 * challenges still get room, and the refusals are counted per kind. */
static void test_budgets_per_kind(void **state)
{
    struct dz_store_quotas q;
    struct dz_store *s = NULL;
    int64_t v = 0;
    char k[32];
    int n;

    (void)state;
    assert_int_equal(dz_store_kind_of("sess"), DZ_STORE_SESSIONS);
    assert_int_equal(dz_store_kind_of("qr"), DZ_STORE_PENDING_QR);
    assert_int_equal(dz_store_kind_of("qrused"), DZ_STORE_CHALLENGES);
    assert_int_equal(dz_store_kind_of("cardnonce"), DZ_STORE_CHALLENGES);
    assert_int_equal(dz_store_kind_of("mobsign"), DZ_STORE_PENDING_MOBILE);
    assert_int_equal(dz_store_kind_of("fail_fin"), DZ_STORE_FAILURES);
    assert_int_equal(dz_store_kind_of("lock_ip"), DZ_STORE_FAILURES);
    assert_int_equal(dz_store_kind_of("lim_qr"), DZ_STORE_RATES);
    assert_int_equal(dz_store_kind_of("rate"), DZ_STORE_RATES);
    assert_int_equal(dz_store_kind_of("qrx"), DZ_STORE_OTHER);
    assert_string_equal(dz_store_kind_name(DZ_STORE_PENDING_QR), "pending_qr");

    dz_store_quotas_default(&q);
    q.max[DZ_STORE_PENDING_QR] = 200;
    assert_int_equal(backend_new(&q, &s), 0);
    for (int i = 0; i < 200; i++) {
        n = snprintf(k, sizeof(k), "qr-%d", i);
        assert_int_equal(dz_store_put(s, "qr", k, (size_t)n, "p", 1, 60000, 0), 0);
    }
    for (int i = 0; i < 50; i++) {
        n = snprintf(k, sizeof(k), "more-%d", i);
        assert_int_equal(dz_store_put(s, "qr", k, (size_t)n, "p", 1, 60000, 0), DZ_ERR_FULL);
    }
    assert_int_equal(dz_store_refusals(s, DZ_STORE_PENDING_QR), 50);
    /* other kinds are untouched by the flood */
    assert_int_equal(dz_store_put(s, "sess", "sid", 3, "s", 1, 60000, 0), 0);
    assert_int_equal(dz_store_incr(s, "fail_fin", "AAAAAAA", 7, 60000, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(dz_store_put(s, "cardnonce", "n1", 2, "c", 1, 60000, DZ_STORE_NX), 0);
    assert_int_equal(dz_store_refusals(s, DZ_STORE_SESSIONS), 0);
    assert_int_equal(dz_store_refusals(s, DZ_STORE_FAILURES), 0);
    /* room comes back as pending entries end */
    assert_int_equal(dz_store_del(s, "qr", "qr-7", 4), 0);
    assert_int_equal(dz_store_put(s, "qr", "again", 5, "p", 1, 60000, 0), 0);
    dz_store_free(s);

    /* a zero quota is a configuration error, not a store that refuses all */
    q.max[DZ_STORE_RATES] = 0;
    s = (struct dz_store *)1;
    assert_int_equal(backend_new(&q, &s), DZ_ERR_INVAL);
    assert_null(s);
}

/* ---- concurrency */

#define THREADS 8
#define INCRS 5000
#define ROUNDS 300

struct race {
    struct dz_store *s;
    pthread_barrier_t *bar;
    int wins;
    int errors;
};

static void *incr_thread(void *arg)
{
    struct race *r = arg;
    int64_t v;
    int i;

    pthread_barrier_wait(r->bar);
    for (i = 0; i < INCRS; i++)
        if (dz_store_incr(r->s, NS, "shared", 6, 100000, &v) != 0)
            r->errors++;
    return NULL;
}

static void test_concurrent_incr(void **state)
{
    struct dz_store *s = mk();
    pthread_barrier_t bar;
    pthread_t t[THREADS];
    struct race r[THREADS];
    int64_t v = 0;
    int i;

    (void)state;
    pthread_barrier_init(&bar, NULL, THREADS);
    for (i = 0; i < THREADS; i++) {
        r[i] = (struct race){.s = s, .bar = &bar};
        assert_int_equal(pthread_create(&t[i], NULL, incr_thread, &r[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].errors, 0);
    }
    assert_int_equal(dz_store_incr(s, NS, "shared", 6, 1000, &v), 0);
    assert_int_equal(v, (int64_t)THREADS * INCRS + 1);
    pthread_barrier_destroy(&bar);
    dz_store_free(s);
}

/* Each round: the main thread puts a fresh nonce, THREADS threads take it at
 * the same moment; exactly one may win. */
static pthread_barrier_t round_start, round_end;

static void *take_thread(void *arg)
{
    struct race *r = arg;
    struct dz_buf b;
    int i;
    int rc;

    dz_buf_init(&b, 64);
    for (i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&round_start);
        dz_buf_reset(&b);
        rc = dz_store_take(r->s, NS, "nonce", 5, &b);
        if (rc == 0 && b.len == sizeof(int) && memcmp(b.data, &i, sizeof(int)) == 0)
            r->wins++;
        else if (rc != DZ_ERR_NOTFOUND)
            r->errors++;
        pthread_barrier_wait(&round_end);
    }
    dz_buf_cleanup(&b);
    return NULL;
}

static void test_take_single_use(void **state)
{
    struct dz_store *s = mk();
    pthread_t t[THREADS];
    struct race r[THREADS];
    int total = 0;
    int i;

    (void)state;
    pthread_barrier_init(&round_start, NULL, THREADS + 1);
    pthread_barrier_init(&round_end, NULL, THREADS + 1);
    for (i = 0; i < THREADS; i++) {
        r[i] = (struct race){.s = s};
        assert_int_equal(pthread_create(&t[i], NULL, take_thread, &r[i]), 0);
    }
    for (i = 0; i < ROUNDS; i++) {
        assert_int_equal(dz_store_put(s, NS, "nonce", 5, &i, sizeof(i), 10000, DZ_STORE_NX), 0);
        pthread_barrier_wait(&round_start);
        pthread_barrier_wait(&round_end);
        assert_int_equal(dz_store_count(s, NS), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].errors, 0);
        total += r[i].wins;
    }
    assert_int_equal(total, ROUNDS);
    pthread_barrier_destroy(&round_start);
    pthread_barrier_destroy(&round_end);
    dz_store_free(s);
}

/* ---- the asynchronous forms (dz_store_*_async), on an ev loop */

struct async_seen {
    int calls;
    int rc;
    int64_t values[8];
    char data[64];
    size_t len;
};

static void async_cb(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct async_seen *a = arg;

    if (a->calls < 8)
        a->values[a->calls] = value;
    a->calls++;
    a->rc = rc;
    a->len = len < sizeof(a->data) ? len : sizeof(a->data);
    if (data && a->len)
        memcpy(a->data, data, a->len);
}

/* Run the loop until a has seen want answers (bounded: every call of a
 * shared backend has a timer, so the loop always has an event coming). */
static void async_wait(struct ev_loop *loop, struct async_seen *a, int want)
{
    for (int i = 0; a->calls < want && i < 10000; i++)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(a->calls, want);
}

static void test_async_ops(void **state)
{
    struct dz_store *s = mk();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct async_seen a;
    int64_t v = 0;
    uint64_t ms = 0;

    (void)state;
    assert_non_null(loop);
    memset(&a, 0, sizeof(a));
    dz_store_get_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_put(s, NS, "k", 1, "v1", 2, 10000, 0), 0);
    memset(&a, 0, sizeof(a));
    dz_store_get_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.len, 2);
    assert_memory_equal(a.data, "v1", 2);

    /* Three counts sent before any answer: answered in order, exactly. */
    memset(&a, 0, sizeof(a));
    for (int i = 0; i < 3; i++)
        dz_store_incr_async(s, loop, NS, "c", 1, 10000, async_cb, &a);
    async_wait(loop, &a, 3);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.values[0], 1);
    assert_int_equal(a.values[1], 2);
    assert_int_equal(a.values[2], 3);
    assert_int_equal(dz_store_incr(s, NS, "c", 1, 10000, &v), 0);
    assert_int_equal(v, 4); /* one counter for both forms */
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, NS, "k", 1, 10000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_INVAL); /* "v1" is not a counter */

    memset(&a, 0, sizeof(a));
    dz_store_touch_async(s, loop, NS, "k", 1, 600000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(dz_store_ttl(s, NS, "k", 1, &ms), 0);
    assert_true(ms > 10000 && ms <= 600000);
    memset(&a, 0, sizeof(a));
    dz_store_touch_async(s, loop, NS, "absent", 6, 600000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_NOTFOUND);

    /* Bad arguments are answered at once, before the call returns. */
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, NS, "c", 1, 0, async_cb, &a);
    dz_store_get_async(s, loop, NS, "", 0, async_cb, &a);
    dz_store_touch_async(s, NULL, NS, "k", 1, 1000, async_cb, &a);
    assert_int_equal(a.calls, 3);
    assert_int_equal(a.rc, DZ_ERR_INVAL);

    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* put (with NX) and del, asynchronously: the same entries and answers as
 * the synchronous forms. */
static void test_async_put_del(void **state)
{
    struct dz_store *s = mk();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct async_seen a;
    struct dz_buf b;
    char val[] = "v1";

    (void)state;
    assert_non_null(loop);
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "k", 1, val, 2, 10000, DZ_STORE_NX, async_cb, &a);
    val[1] = '9'; /* copied before the call returned */
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    dz_buf_init(&b, 64);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "v1", 2);
    dz_buf_cleanup(&b);

    /* NX on a live entry: refused, the value kept. */
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "k", 1, "v2", 2, 10000, DZ_STORE_NX, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_EXISTS);
    memset(&a, 0, sizeof(a));
    dz_store_get_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.len, 2);
    assert_memory_equal(a.data, "v1", 2);
    /* Without NX: overwritten. */
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "k", 1, "v3", 2, 10000, 0, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    memset(&a, 0, sizeof(a));
    dz_store_get_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_memory_equal(a.data, "v3", 2);

    /* del: gone for both forms; a second del finds nothing. */
    memset(&a, 0, sizeof(a));
    dz_store_del_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    dz_buf_init(&b, 64);
    assert_int_equal(dz_store_get(s, NS, "k", 1, &b), DZ_ERR_NOTFOUND);
    dz_buf_cleanup(&b);
    memset(&a, 0, sizeof(a));
    dz_store_del_async(s, loop, NS, "k", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_NOTFOUND);
    /* A sync put, deleted asynchronously; NX then creates again. */
    assert_int_equal(dz_store_put(s, NS, "s", 1, "x", 1, 10000, 0), 0);
    memset(&a, 0, sizeof(a));
    dz_store_del_async(s, loop, NS, "s", 1, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(dz_store_put(s, NS, "s", 1, "y", 1, 10000, DZ_STORE_NX), 0);

    /* Bad arguments are answered at once, before the call returns. */
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "k", 1, "v", 1, 0, 0, async_cb, &a);
    dz_store_put_async(s, loop, NS, "k", 1, "v", 1, 1000, 0x40, async_cb, &a);
    dz_store_put_async(s, NULL, NS, "k", 1, "v", 1, 1000, 0, async_cb, &a);
    dz_store_put_async(s, loop, NS, "k", 1, NULL, 1, 1000, 0, async_cb, &a);
    dz_store_del_async(s, loop, NS, "", 0, async_cb, &a);
    dz_store_del_async(s, NULL, NS, "k", 1, async_cb, &a);
    assert_int_equal(a.calls, 6);
    assert_int_equal(a.rc, DZ_ERR_INVAL);

    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* A full budget refuses an asynchronous creation like a synchronous one,
 * and counts the refusal. */
static void test_async_budget(void **state)
{
    struct dz_store *s = NULL;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct async_seen a;

    (void)state;
    assert_non_null(loop);
    assert_int_equal(backend_new(quotas_all(1), &s), 0);
    assert_int_equal(dz_store_put(s, NS, "one", 3, "x", 1, 10000, 0), 0);
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, NS, "two", 3, 10000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_FULL);
    assert_int_equal(dz_store_refusals(s, DZ_STORE_OTHER), 1);
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "two", 3, "x", 1, 10000, DZ_STORE_NX, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_FULL);
    assert_int_equal(dz_store_refusals(s, DZ_STORE_OTHER), 2);
    /* Overwriting a live entry creates nothing: no quota needed. */
    memset(&a, 0, sizeof(a));
    dz_store_put_async(s, loop, NS, "one", 3, "y", 1, 10000, 0, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    dz_store_free(s);
    ev_loop_destroy(loop);
}

#define STORE_CASES                                                                                \
    cmocka_unit_test(test_put_get_overwrite_nx), cmocka_unit_test(test_bad_arguments),             \
        cmocka_unit_test(test_take_del), cmocka_unit_test(test_del_if),                            \
        cmocka_unit_test(test_incr), cmocka_unit_test(test_ttl_touch_expiry),                      \
        cmocka_unit_test(test_many_keys_and_bound), cmocka_unit_test(test_budgets_per_kind),       \
        cmocka_unit_test(test_concurrent_incr), cmocka_unit_test(test_take_single_use),            \
        cmocka_unit_test(test_async_ops), cmocka_unit_test(test_async_put_del),                    \
        cmocka_unit_test(test_async_budget)

#endif
