/* test_store_redis_evicts.c - rs_evicts (gateway/state/store_redis_conn.c),
 * the check every Redis connection makes of INFO memory before it is used:
 * only an answer that says maxmemory_policy:noeviction lets the store use
 * the server; any other answer (another policy, no such field, an error
 * such as an ACL without INFO, a reply that is not a string, none at all)
 * is refused with a reason, which /readyz then shows (docs/operations.md
 * "Redis store").  The replies are built here as hiredis gives them: the
 * odd ones no real redis-server sends on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include <hiredis/hiredis.h>

#include "state/store_redis_int.h"

static const char info_ok[] = "# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n"
                              "maxmemory_policy:noeviction\r\nallocator_frag_ratio:1.00\r\n";

/* A reply of type with text str (its whole length, NULs included). */
static redisReply reply_of(int type, const char *str, size_t len)
{
    redisReply r;

    memset(&r, 0, sizeof(r));
    r.type = type;
    r.str = (char *)str;
    r.len = len;
    return r;
}

/* Refused, with a reason that contains want. */
static void assert_refused(const redisReply *r, const char *want)
{
    char why[160];

    memset(why, 'x', sizeof(why));
    assert_true(rs_evicts(r, why, sizeof(why)));
    assert_non_null(memchr(why, '\0', sizeof(why)));
    assert_non_null(strstr(why, want));
}

/* The one answer that lets a server be used. */
static void test_noeviction_accepted(void **state)
{
    redisReply r = reply_of(REDIS_REPLY_STRING, info_ok, strlen(info_ok));
    char why[160] = "";

    (void)state;
    assert_false(rs_evicts(&r, why, sizeof(why)));
}

/* A policy that may evict, named in the reason; and near misses of
 * noeviction are not it. */
static void test_other_policy_refused(void **state)
{
    static const char *const infos[] = {
        "maxmemory_policy:allkeys-lru\r\n",    "maxmemory_policy:volatile-ttl\r\n",
        "maxmemory_policy:noevictionx\r\n",    "maxmemory_policy:noevictio\r\n",
        "maxmemory_policy: noeviction\r\n",    "maxmemory_policy:NOEVICTION\r\n",
        "maxmemory_policy:\r\nnoeviction\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
        redisReply r = reply_of(REDIS_REPLY_STRING, infos[i], strlen(infos[i]));

        assert_refused(&r, "maxmemory-policy");
    }
}

/* INFO memory that does not say the policy (not Redis, a server that
 * renamed the field, an empty answer, the field after a NUL): refused. */
static void test_no_policy_refused(void **state)
{
    static const char nul_first[] = "# Memory\r\n\0maxmemory_policy:noeviction\r\n";
    static const char *const infos[] = {
        "# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n",
        "",
        "maxmemory-policy:noeviction\r\n",
        "policy:noeviction\r\n",
    };
    redisReply r;

    (void)state;
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
        r = reply_of(REDIS_REPLY_STRING, infos[i], strlen(infos[i]));
        assert_refused(&r, "does not say the maxmemory-policy (no such field)");
    }
    r = reply_of(REDIS_REPLY_STRING, nul_first, sizeof(nul_first) - 1);
    assert_refused(&r, "does not say the maxmemory-policy (no such field)");
}

/* An error (an ACL user without INFO): refused, Redis's words in the
 * reason, cut to fit. */
static void test_error_refused(void **state)
{
    static const char noperm[] =
        "NOPERM User gw has no permissions to run the 'info' command or its subcommand";
    redisReply r = reply_of(REDIS_REPLY_ERROR, noperm, strlen(noperm));
    char small[24];

    (void)state;
    assert_refused(&r, "NOPERM User gw has no");
    assert_true(rs_evicts(&r, small, sizeof(small)));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* Not a string (a proxy or another server answering something else), even
 * one whose text would say noeviction, or no reply at all: refused. */
static void test_not_a_string_refused(void **state)
{
    static const int types[] = {REDIS_REPLY_STATUS, REDIS_REPLY_INTEGER, REDIS_REPLY_NIL,
                                REDIS_REPLY_ARRAY};
    redisReply r;

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        r = reply_of(types[i], info_ok, strlen(info_ok));
        assert_refused(&r, "does not say the maxmemory-policy (not a text reply)");
    }
    assert_refused(NULL, "does not say the maxmemory-policy (no answer)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noeviction_accepted),  cmocka_unit_test(test_other_policy_refused),
        cmocka_unit_test(test_no_policy_refused),    cmocka_unit_test(test_error_refused),
        cmocka_unit_test(test_not_a_string_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
