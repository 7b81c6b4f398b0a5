/*
 * test_peer.c - the peers' runtime helpers (peers/main.c: query and listen
 * parsing) and the assertion replay cache (peers/peer_auth.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The peers' shared runtime, without the binary's main() and modes. */
#include "../../peers/peer_auth.c"
#include "../../peers/runtime.c"

static void test_query_find(void **state)
{
    char buf[8];

    (void)state;
    assert_int_equal(dz_peer_query_find("/x?a=1&b=22", "a", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1");
    assert_int_equal(dz_peer_query_find("/x?a=1&b=22", "b", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "22");
    /* the first of two, and a name that is only a suffix does not count */
    assert_int_equal(dz_peer_query_find("/x?xa=9&a=1&a=2", "a", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1");
    assert_int_equal(dz_peer_query_find("/x?&&a=3&", "a", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "3");
    assert_int_equal(dz_peer_query_find("/x?a=", "a", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    /* absent */
    assert_int_equal(dz_peer_query_find("/x?a", "a", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_peer_query_find("/x?ab=1", "a", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_peer_query_find("/x/a=1", "a", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_peer_query_find("/x?", "a", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_peer_query_find(NULL, "a", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_peer_query_find("/x?=1", "", buf, sizeof(buf)), DZ_ERR_NOTFOUND);
    /* too long for the buffer: refused, never truncated */
    assert_int_equal(dz_peer_query_find("/x?a=12345678", "a", buf, sizeof(buf)), DZ_ERR_TOOBIG);
    assert_string_equal(buf, "");
    assert_int_equal(dz_peer_query_find("/x?a=1234567", "a", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1234567");
}

static void test_parse_listen(void **state)
{
    char host[64];
    uint16_t port;

    (void)state;
    assert_int_equal(dz_peer_parse_listen("127.0.0.1:9101", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9101);
    assert_int_equal(dz_peer_parse_listen("[::1]:8443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8443);
    assert_int_equal(dz_peer_parse_listen("127.0.0.1:65535", host, sizeof(host), &port), 0);

    const char *bad[] = {"",
                         ":9101",
                         "127.0.0.1:",
                         "127.0.0.1",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "127.0.0.1:+1",
                         "127.0.0.1:01",
                         "127.0.0.1:9x",
                         "[::1]9101",
                         "[::1:9101",
                         "[]:9101",
                         "::1",
                         "[::1[::14[::13]:8443",
                         "a b:80",
                         "[::1]]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dz_peer_parse_listen(bad[i], host, sizeof(host), &port), DZ_ERR_PARSE);
        assert_int_equal(port, 0);
    }
    assert_int_equal(dz_peer_parse_listen(NULL, host, sizeof(host), &port), DZ_ERR_PARSE);
    /* a host longer than the buffer */
    assert_int_equal(dz_peer_parse_listen("1234567890:80", host, 8, &port), DZ_ERR_PARSE);
}

static struct dz_peer_auth *new_auth(struct dz_pool **pool)
{
    struct dz_peer_auth_conf c = {
        .jwks_url = "https://localhost:1/jwks.json", .iss = "darvaza-demo", .aud = "registry"};
    struct dz_peer_auth *a = NULL;

    assert_int_equal(dz_pool_new(1, 1, pool), 0);
    assert_int_equal(dz_peer_auth_new(&c, *pool, &a), 0);
    return a;
}

/* The shared options land where each peer reads them, and a peer's own
 * codes are left to it. */
static void test_shared_options(void **state)
{
    struct dz_peer_listen_opts lo = {0};
    struct dz_peer_auth_conf ac = {.iss = "darvaza-demo", .aud = "registry"};

    (void)state;
    assert_true(dz_peer_listen_option(&lo, 'l', "127.0.0.1:9101"));
    assert_true(dz_peer_listen_option(&lo, 'c', "tls.pem"));
    assert_true(dz_peer_listen_option(&lo, 'k', "tls.key"));
    assert_string_equal(lo.listen, "127.0.0.1:9101");
    assert_string_equal(lo.cert, "tls.pem");
    assert_string_equal(lo.key, "tls.key");
    assert_false(dz_peer_listen_option(&lo, 'C', "ca.pem"));
    assert_true(dz_peer_auth_option(&ac, 'j', "https://localhost:8443/.well-known/jwks.json"));
    assert_true(dz_peer_auth_option(&ac, 'a', "root.pem"));
    assert_true(dz_peer_auth_option(&ac, 'u', "court"));
    assert_string_equal(ac.cacert, "root.pem");
    assert_string_equal(ac.aud, "court");
    assert_string_equal(ac.iss, "darvaza-demo"); /* untouched default */
    assert_false(dz_peer_auth_option(&ac, 'l', "x"));
    assert_false(dz_peer_auth_option(&ac, 'd', "x"));
}

static void test_auth_new_needs_conf(void **state)
{
    struct dz_peer_auth_conf c = {.jwks_url = "https://x/", .iss = "i"};
    struct dz_peer_auth *a = (struct dz_peer_auth *)1;
    struct dz_pool *pool = NULL;

    (void)state;
    assert_int_equal(dz_pool_new(1, 1, &pool), 0);
    assert_int_equal(dz_peer_auth_new(&c, pool, &a), DZ_ERR_INVAL); /* no aud */
    assert_null(a);
    c.aud = "a";
    assert_int_equal(dz_peer_auth_new(&c, NULL, &a), DZ_ERR_INVAL); /* no pool */
    /* keys only over https, or plain http on loopback */
    c.jwks_url = "http://10.0.0.1/jwks.json";
    assert_int_equal(dz_peer_auth_new(&c, pool, &a), DZ_ERR_INVAL);
    assert_null(a);
    c.jwks_url = "ftp://127.0.0.1/jwks.json";
    assert_int_equal(dz_peer_auth_new(&c, pool, &a), DZ_ERR_INVAL);
    c.jwks_url = "http://127.0.0.1:9100/jwks.json";
    assert_int_equal(dz_peer_auth_new(&c, pool, &a), 0);
    dz_peer_auth_free(a);
    dz_pool_free(pool);
}

static void test_replay_once(void **state)
{
    struct dz_pool *pool = NULL;
    struct dz_peer_auth *a = new_auth(&pool);

    (void)state;
    assert_null(replay_note(a, "jti-1"));
    assert_string_equal(replay_note(a, "jti-1"), "replayed");
    assert_null(replay_note(a, "jti-2"));
    assert_string_equal(replay_note(a, "jti-2"), "replayed");
    assert_string_equal(replay_note(a, "jti-1"), "replayed");
    assert_int_equal(a->njti, 2);
    dz_peer_auth_free(a);
    dz_pool_free(pool);
}

static void test_replay_expiry(void **state)
{
    struct dz_pool *pool = NULL;
    struct dz_peer_auth *a = new_auth(&pool);
    struct jti_entry *e;
    char jti[32];

    (void)state;
    for (int i = 0; i < 1000; i++) {
        snprintf(jti, sizeof(jti), "jti-%d", i);
        assert_null(replay_note(a, jti));
    }
    /* Age the first half past the window: they are forgotten, the rest kept. */
    e = a->fifo_head;
    for (int i = 0; i < 500; i++, e = e->fnext)
        e->expires = 0;
    assert_null(replay_note(a, "jti-0"));
    assert_string_equal(replay_note(a, "jti-999"), "replayed");
    assert_string_equal(replay_note(a, "jti-500"), "replayed");
    assert_null(replay_note(a, "jti-499"));
    assert_int_equal(a->njti, 502);
    dz_peer_auth_free(a);
    dz_pool_free(pool);
}

static void test_replay_full_fails_closed(void **state)
{
    struct dz_pool *pool = NULL;
    struct dz_peer_auth *a = new_auth(&pool);
    char jti[32];

    (void)state;
    for (int i = 0; i < DZ_PEER_AUTH_REPLAY_MAX; i++) {
        snprintf(jti, sizeof(jti), "j%d", i);
        assert_null(replay_note(a, jti));
    }
    assert_string_equal(replay_note(a, "one-more"), "replay_cache_full");
    assert_string_equal(replay_note(a, "j0"), "replayed");
    dz_peer_auth_free(a);
    dz_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_find),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_shared_options),
        cmocka_unit_test(test_auth_new_needs_conf),
        cmocka_unit_test(test_replay_once),
        cmocka_unit_test(test_replay_expiry),
        cmocka_unit_test(test_replay_full_fails_closed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
