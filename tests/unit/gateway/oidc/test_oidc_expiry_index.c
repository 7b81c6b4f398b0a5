/*
 * test_oidc_expiry_index.c - the store index the back-channel expiry
 * sweeper reads (oidc_expiry_index.c), on the in-process store: a watched
 * session lands in the bucket of its expiry with its FIN, once per session;
 * a session that is not there is not watched (and can be later); nothing
 * goes into a bucket that may already be swept; and writers on many threads
 * at once each get their own slot (none overwrites another).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "core/rctx.h"
#include "oidc/oidc_expiry_index.h"
#include "state/session.h"
#include "state/store.h"

#define B DZ_OIDC_EXPIRY_BUCKET_MS

static struct dz_store *st;

static int setup(void **state)
{
    return dz_store_mem_new(4, NULL, &st);
}

static int teardown(void **state)
{
    dz_store_free(st);
    st = NULL;
    return 0;
}

/* The bucket's next counter value (the sweeper's way of reading it). */
static int64_t counter(int64_t b)
{
    unsigned char key[8];
    int64_t v = 0;

    dz_oidc_expiry_bucket_key(b, key);
    assert_int_equal(dz_store_incr(st, DZ_OIDC_NS_EXPIRY, key, 8, 60000, &v), 0);
    return v;
}

/* Slot i of bucket b into out: 0 or DZ_ERR_NOTFOUND. */
static int slot(int64_t b, int64_t i, struct dz_buf *out)
{
    unsigned char key[12];

    dz_oidc_expiry_bucket_key(b, key);
    key[8] = (unsigned char)(i >> 24);
    key[9] = (unsigned char)(i >> 16);
    key[10] = (unsigned char)(i >> 8);
    key[11] = (unsigned char)i;
    return dz_store_get(st, DZ_OIDC_NS_EXPIRY, key, sizeof(key), out);
}

static void test_watch(void **state)
{
    unsigned char sid[32];
    int64_t now = dz_unix_ms();
    int64_t b;
    struct dz_buf v;

    memset(sid, 0xa5, sizeof(sid));
    /* Not a live session: not watched, and nothing remembered of it. */
    assert_int_equal(dz_oidc_expiry_watch(st, sid, "1ABCDEF", now + 600000), DZ_ERR_NOTFOUND);
    /* A session with 60 s to live (its idle expiry). */
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, sid, 32, "s", 1, 60000, 0), 0);
    assert_int_equal(dz_oidc_expiry_watch(st, sid, "1ABCDEF", now + 600000), 0);
    /* A second code of the same session adds nothing. */
    assert_int_equal(dz_oidc_expiry_watch(st, sid, "1ABCDEF", now + 600000), 0);
    /* It is in the bucket of about now + 60 s (the watch read the TTL a
     * moment later than now: the bucket before or after at an edge). */
    for (b = (now + 60000) / B - 1; b <= (now + 60000) / B + 1; b++) {
        dz_buf_init(&v, 64);
        if (slot(b, 1, &v) == 0)
            break;
        dz_buf_wipe(&v);
    }
    assert_true(b <= (now + 60000) / B + 1);
    assert_int_equal(v.len, 32 + 7);
    assert_memory_equal(v.data, sid, 32);
    assert_memory_equal((const char *)v.data + 32, "1ABCDEF", 7);
    dz_buf_wipe(&v);
    /* Only one slot: the second watch added nothing. */
    dz_buf_init(&v, 64);
    assert_int_equal(slot(b, 2, &v), DZ_ERR_NOTFOUND);
    dz_buf_wipe(&v);
}

static void test_never_a_swept_bucket(void **state)
{
    unsigned char sid[32];
    int64_t now = dz_unix_ms();
    struct dz_buf v;
    int64_t b;

    memset(sid, 0x11, sizeof(sid));
    /* Due in the past (a session that expired a moment ago): the bucket
     * after the current one, which no sweeper has reached. */
    assert_int_equal(dz_oidc_expiry_enqueue(st, sid, "2ABCDEF", now - 30000, now), 0);
    b = now / B + 1;
    dz_buf_init(&v, 64);
    assert_int_equal(slot(b, 1, &v), 0);
    assert_memory_equal(v.data, sid, 32);
    dz_buf_wipe(&v);
    dz_buf_init(&v, 64);
    assert_int_equal(slot(now / B, 1, &v), DZ_ERR_NOTFOUND);
    dz_buf_wipe(&v);
}

#define THREADS 8
#define EACH 50

struct writer {
    int64_t due, now;
    unsigned char id;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    unsigned char sid[32];

    for (int i = 0; i < EACH; i++) {
        memset(sid, w->id, sizeof(sid));
        sid[0] = (unsigned char)i;
        if (dz_oidc_expiry_enqueue(st, sid, "3ABCDEF", w->due, w->now) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    pthread_t t[THREADS];
    struct writer w[THREADS];
    int64_t now = dz_unix_ms();
    int64_t due = now + 120000;
    int64_t b = due / B;
    unsigned seen[THREADS][EACH] = {{0}};
    void *r;

    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct writer){due, now, (unsigned char)(0x40 + i)};
        assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    /* Every one of the THREADS x EACH entries has a slot of its own. */
    assert_int_equal(counter(b), THREADS * EACH + 1);
    for (int64_t i = 1; i <= THREADS * EACH; i++) {
        struct dz_buf v;
        const unsigned char *d;
        dz_buf_init(&v, 64);
        assert_int_equal(slot(b, i, &v), 0);
        d = (const unsigned char *)v.data;
        assert_true(d[1] >= 0x40 && d[1] < 0x40 + THREADS && d[0] < EACH);
        seen[d[1] - 0x40][d[0]]++;
        dz_buf_wipe(&v);
    }
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < EACH; k++)
            assert_int_equal(seen[i][k], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_a_swept_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
