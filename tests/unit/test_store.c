/* test_store.c - the ephemeral store through its public interface, with the
 * in-process backend (included for its statics: SipHash, the bounded
 * constructor).  The cases every backend passes are in store_cases.h;
 * test_store_redis.c runs them again against Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* System headers first: the included .c files pull in compat.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../gateway/state/store.c"
#include "../../gateway/state/store_mem.c"

static int backend_new(const struct dz_store_quotas *q, struct dz_store **out)
{
    return dz_store_mem_new(8, q, out);
}

#include <ev.h>

#include "store_cases.h"

/* Reference vectors from the SipHash paper (key 00..0f, message 00..n-1). */
static void test_siphash_vectors(void **state)
{
    unsigned char msg[64];
    struct sip s;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)i;
    sip_init(&s, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
    assert_true(sip_final(&s) == 0x726fdb47dd0e0e31ULL);
    sip_init(&s, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
    sip_update(&s, msg, 15);
    assert_true(sip_final(&s) == 0xa129ca6149be45e5ULL);
    /* Streaming in odd pieces gives the same answer as one call. */
    sip_init(&s, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
    sip_update(&s, msg, 3);
    sip_update(&s, msg + 3, 1);
    sip_update(&s, msg + 4, 9);
    sip_update(&s, msg + 13, 2);
    assert_true(sip_final(&s) == 0xa129ca6149be45e5ULL);
    /* 63 bytes: vector 63 of the reference table. */
    sip_init(&s, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
    sip_update(&s, msg, 63);
    assert_true(sip_final(&s) == 0x958a324ceb064572ULL);
}

/* Shard counts out of range. */
static void test_mem_shards(void **state)
{
    struct dz_store *t = (struct dz_store *)1;

    (void)state;
    assert_int_equal(dz_store_mem_new(0, NULL, &t), DZ_ERR_INVAL);
    assert_null(t);
    assert_int_equal(dz_store_mem_new(MEM_MAX_SHARDS + 1, NULL, &t), DZ_ERR_INVAL);
    assert_int_equal(dz_store_mem_new(3, NULL, &t), 0); /* rounded up to 4 */
    dz_store_free(t);
}

struct wake_seen {
    int calls;
    char ns[16];
    char key[16];
};

static void on_wake(void *arg, const char *ns, const void *key, size_t key_len)
{
    struct wake_seen *w = arg;

    w->calls++;
    snprintf(w->ns, sizeof(w->ns), "%s", ns);
    snprintf(w->key, sizeof(w->key), "%.*s", (int)key_len, (const char *)key);
}

/* The in-process backend delivers a publish to every subscriber at once;
 * bad arguments reach nobody; the subscriber table is bounded. */
static void test_wake_local(void **state)
{
    struct dz_store *s = mk();
    struct wake_seen a = {0}, b = {0};

    (void)state;
    assert_int_equal(dz_store_subscribe(s, on_wake, &a), 0);
    assert_int_equal(dz_store_subscribe(s, on_wake, &b), 0);
    assert_int_equal(dz_store_subscribe(s, NULL, &b), DZ_ERR_INVAL);
    dz_store_publish(s, "qr", "id42", 4);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_string_equal(a.ns, "qr");
    assert_string_equal(b.key, "id42");
    dz_store_publish(s, "", "id42", 4);
    dz_store_publish(s, "qr", "", 0);
    assert_int_equal(a.calls, 1);
    for (int i = 2; i < DZ_STORE_SUBSCRIBERS_MAX; i++)
        assert_int_equal(dz_store_subscribe(s, on_wake, &a), 0);
    assert_int_equal(dz_store_subscribe(s, on_wake, &a), DZ_ERR_TOOBIG);
    dz_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vectors),
        STORE_CASES,
        cmocka_unit_test(test_mem_shards),
        cmocka_unit_test(test_wake_local),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
