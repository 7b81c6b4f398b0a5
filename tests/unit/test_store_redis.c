/* test_store_redis.c - the Redis backend of the ephemeral store against a
 * real redis-server this test starts on 127.0.0.1:9135 (a fixed test port;
 * never the system service): every case of store_cases.h, then what only a
 * shared backend has (sealed values and keys, the breaker and recovery,
 * wake-ups and the near cache across two instances). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "base/buf.h"
#include "base/err.h"
#include "state/sessidx.h"
#include "state/session.h"
#include "state/store.h"
#include "state/store_redis.h"

/* For its statics: the hook between a compare-and-delete's GET and its
 * script (test_del_if_between). */
#include "state/store_redis.c"

#define PREFIX "t:"

/* 9135, or DZ_TEST_REDIS_PORT (a second run beside the first, e.g. under
 * valgrind). */
static int PORT = 9135;

static pid_t redis_pid = -1;
static char redis_dir[64];

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* A direct connection for the test's own look at Redis. */
static redisContext *raw(void)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", PORT, (struct timeval){1, 0});

    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Our server answers: the one we started (its pid), not another process
 * that happens to hold the port (which we must never flush). */
static bool redis_pings(void)
{
    redisContext *c = raw();
    redisReply *r = c ? redisCommand(c, "INFO server") : NULL;
    char want[32];
    bool ok;

    snprintf(want, sizeof(want), "process_id:%d\r", (int)redis_pid);
    ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want);

    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return ok;
}

static int redis_start(void)
{
    char port[8];

    snprintf(port, sizeof(port), "%d", PORT);
    redis_pid = fork();
    if (redis_pid < 0)
        return -1;
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", redis_dir, "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    /* Wait for the state, bounded; a server that exited (the port taken)
     * ends the wait at once. */
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end; nap_ms(20)) {
        if (redis_pings())
            return 0;
        if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) {
            fprintf(stderr, "redis-server could not start on port %d (taken?)\n", PORT);
            redis_pid = -1;
            return -1;
        }
    }
    return -1;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
    }
    redis_pid = -1;
}

static void flushall(void)
{
    redisContext *c = raw();
    redisReply *r;

    assert_non_null(c);
    r = redisCommand(c, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static const unsigned char value_key[DZ_STORE_REDIS_KEY_LEN] = "0123456789abcdef0123456789abcdef";

static void config(struct dz_store_redis_config *c)
{
    memset(c, 0, sizeof(*c));
    c->master.host = "127.0.0.1";
    c->master.port = PORT;
    c->prefix = PREFIX;
    c->value_key = value_key;
    c->connect_timeout_ms = 500;
    c->command_timeout_ms = 2000; /* the sanitizer build is slow */
    c->retry_max_ms = 200;
    c->near_cache = true;
}

static int backend_new(const struct dz_store_quotas *q, struct dz_store **out)
{
    struct dz_store_redis_config c;

    flushall();
    config(&c);
    return dz_store_redis_new(&c, q, out);
}

#include <ev.h>

#include "store_cases.h"

#include "sessidx_race.h"

/* ---- what only the shared backend has */

/* The raw value of one Redis key, or NULL. */
static redisReply *raw_get(const char *key)
{
    redisContext *c = raw();
    redisReply *r;

    assert_non_null(c);
    r = redisCommand(c, "GET %s", key);
    redisFree(c);
    return r;
}

/* Neither the key nor the value reaches Redis in clear, and a sealed value
 * copied under another key does not open there. */
static void test_sealed(void **state)
{
    struct dz_store *s = mk();
    redisContext *c = raw();
    redisReply *keys, *r;
    struct dz_buf b;
    char *k1 = NULL, *k2 = NULL;

    (void)state;
    dz_buf_init(&b, 1024);
    assert_int_equal(
        dz_store_put(s, "fail_fin", "38001085718", 11, "personal-AB1234567", 18, 60000, 0), 0);
    assert_int_equal(dz_store_put(s, "fail_fin", "38001085719", 11, "other", 5, 60000, 0), 0);
    keys = redisCommand(c, "KEYS %sfail_fin:*", PREFIX);
    assert_non_null(keys);
    assert_int_equal(keys->elements, 2);
    for (size_t i = 0; i < 2; i++) {
        const char *k = keys->element[i]->str;

        /* the hex of "3800108571" would be 33383030...: not there */
        assert_null(strstr(k, "3338303031"));
        assert_null(strstr(k, "38001085718"));
        r = raw_get(k);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_null(memmem(r->str, r->len, "personal", 8));
        assert_true(r->len >= 5 + 29); /* tag, nonce, GCM tag */
        freeReplyObject(r);
    }
    k1 = strdup(keys->element[0]->str);
    k2 = strdup(keys->element[1]->str);
    /* swap: copy k1's value onto k2 */
    r = redisCommand(c, "COPY %s %s REPLACE", k1, k2);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_not_equal(dz_store_get(s, "fail_fin", "38001085718", 11, &b), DZ_ERR_NOTFOUND);
    dz_buf_reset(&b);
    {
        int rc1 = dz_store_get(s, "fail_fin", "38001085719", 11, &b);
        /* one of the two now holds the other's value: it must not open */
        dz_buf_reset(&b);
        int rc0 = dz_store_get(s, "fail_fin", "38001085718", 11, &b);
        assert_true(rc0 == DZ_ERR_UNAVAILABLE || rc1 == DZ_ERR_UNAVAILABLE);
        assert_true(rc0 == 0 || rc1 == 0);
    }
    /* a store with another value key opens nothing of this one */
    {
        struct dz_store_redis_config cf;
        struct dz_store *o = NULL;
        static const unsigned char other_key[DZ_STORE_REDIS_KEY_LEN] =
            "another-key-another-key-another!";

        config(&cf);
        cf.value_key = other_key;
        assert_int_equal(dz_store_redis_new(&cf, NULL, &o), 0);
        dz_buf_reset(&b);
        /* another naming key: the entry is simply not found */
        assert_int_equal(dz_store_get(o, "fail_fin", "38001085718", 11, &b), DZ_ERR_NOTFOUND);
        dz_store_free(o);
    }
    free(k1);
    free(k2);
    freeReplyObject(keys);
    redisFree(c);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

/* Start Redis again and wait until s writes there by itself (its breaker
 * closes on its own): a put of ("sess", "k2"), unavailable until then. */
static void redis_back(struct dz_store *s)
{
    int rc = -1;

    assert_int_equal(redis_start(), 0);
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end; nap_ms(20)) {
        rc = dz_store_put(s, "sess", "k2", 2, "v", 1, 60000, 0);
        if (rc == 0)
            break;
        assert_int_equal(rc, DZ_ERR_UNAVAILABLE);
    }
    assert_int_equal(rc, 0);
}

/* Redis gone: every call answers unavailable, at once while the breaker is
 * open; /readyz's health says why; Redis back: calls work again by
 * themselves. */
static void test_down_and_back(void **state)
{
    struct dz_store *s = mk();
    struct dz_store_health h;
    struct dz_buf b;
    int64_t v = 0;
    uint64_t t0;

    (void)state;
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_put(s, "sess", "k", 1, "v", 1, 60000, 0), 0);
    dz_store_health(s, &h);
    assert_true(h.shared);
    assert_true(h.up);
    redis_stop();
    assert_int_equal(dz_store_get(s, "sess", "k", 1, &b), DZ_ERR_UNAVAILABLE);
    t0 = mono_ms();
    assert_int_equal(dz_store_incr(s, "fail_fin", "f", 1, 60000, &v), DZ_ERR_UNAVAILABLE);
    assert_int_equal(dz_store_take(s, "cardnonce", "n", 1, &b), DZ_ERR_UNAVAILABLE);
    assert_int_equal(dz_store_put(s, "qrused", "n", 1, "1", 1, 1000, DZ_STORE_NX),
                     DZ_ERR_UNAVAILABLE);
    assert_int_equal(dz_store_del_if(s, "sess", "k", 1, "v", 1), DZ_ERR_UNAVAILABLE);
    assert_true(mono_ms() - t0 < 100); /* the breaker answers without the network */
    dz_store_health(s, &h);
    assert_false(h.up);
    assert_non_null(strstr(h.why, "redis"));
    assert_true(h.errors >= 5);
    redis_back(s);
    assert_int_equal(dz_store_get(s, "sess", "k2", 2, &b), 0);
    dz_store_health(s, &h);
    assert_true(h.up);
    assert_true(h.reconnects >= 2);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

static void config_set(const char *name, const char *value)
{
    redisContext *c = raw();
    redisReply *r;

    assert_non_null(c);
    r = redisCommand(c, "CONFIG SET %s %s", name, value);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

/* s refuses blocking and asynchronous calls alike, and is down for
 * /readyz with a reason that contains why. */
static void assert_refused(struct dz_store *s, struct ev_loop *loop, const char *why)
{
    struct dz_store_health h;
    struct async_seen a;

    assert_int_equal(dz_store_put(s, "qrused", "id", 2, "1", 1, 60000, DZ_STORE_NX),
                     DZ_ERR_UNAVAILABLE);
    dz_store_health(s, &h);
    assert_false(h.up);
    assert_non_null(strstr(h.why, why));
    memset(&a, 0, sizeof(a));
    dz_store_get_async(s, loop, "sess", "sid", 3, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_UNAVAILABLE);
}

/* A Redis that may evict keys is refused, blocking and asynchronous calls
 * alike: every entry has a TTL, so under memory pressure any policy but
 * noeviction (volatile-* included) could drop a used mark or a lock, and
 * a replayed QR answer, OIDC code or a locked-out guesser would be taken
 * for fresh.  Back to noeviction, the store serves again by itself. */
static void test_evicting_refused(void **state)
{
    static const char *const policies[] = {"allkeys-lru", "volatile-ttl"};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dz_store *s;
    int rc = -1;

    (void)state;
    assert_non_null(loop);
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        config_set("maxmemory-policy", policies[i]);
        s = mk();
        assert_refused(s, loop, "maxmemory-policy");
        dz_store_free(s);
    }
    config_set("maxmemory-policy", "noeviction");
    s = mk();
    for (uint64_t end = mono_ms() + 5000; mono_ms() < end && rc != 0; nap_ms(20))
        rc = dz_store_put(s, "qrused", "id", 2, "1", 1, 60000, DZ_STORE_NX);
    assert_int_equal(rc, 0);
    assert_int_equal(dz_store_put(s, "qrused", "id", 2, "1", 1, 60000, DZ_STORE_NX), DZ_ERR_EXISTS);
    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* A user the server lets do everything but INFO (an ACL written for the
 * commands the store sends, forgetting that one): the store cannot tell
 * whether the server may evict, so it is refused, blocking and
 * asynchronous calls alike, with Redis's own word as the reason /readyz
 * shows (rs_evicts; test_store_redis_evicts has the other odd answers). */
static void test_info_denied_refused(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dz_store_redis_config c;
    redisContext *rc = raw();
    redisReply *r;
    struct dz_store *s = NULL;

    (void)state;
    assert_non_null(loop);
    assert_non_null(rc);
    r = redisCommand(rc, "ACL SETUSER noinfo on >pw-noinfo ~* &* +@all -info");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    flushall();
    config(&c);
    c.username = "noinfo";
    c.password = "pw-noinfo";
    assert_int_equal(dz_store_redis_new(&c, NULL, &s), 0);
    assert_refused(s, loop, "does not say the maxmemory-policy (NOPERM");
    dz_store_free(s);
    r = redisCommand(rc, "ACL DELUSER noinfo");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(rc);
    ev_loop_destroy(loop);
}

/* What the hook of r_del_if does between its GET and its script. */
static struct dz_store *between_store;

static void between_reseal(void)
{
    /* the same plain text, sealed afresh: other bytes on Redis */
    assert_int_equal(dz_store_put(between_store, "sess", "k", 1, "value", 5, 60000, 0), 0);
}

static void between_redis_gone(void)
{
    redis_stop();
}

/* A compare-and-delete compares what it opened, then deletes only if Redis
 * still holds the very sealed bytes it opened: another writer in between
 * (even of the same plain text) keeps its value; Redis gone in between is
 * never "deleted". */
static void test_del_if_between(void **state)
{
    struct dz_store *s = mk();
    struct dz_buf b;

    (void)state;
    dz_buf_init(&b, 1024);
    between_store = s;
    assert_int_equal(dz_store_put(s, "sess", "k", 1, "value", 5, 60000, 0), 0);
    del_if_between = between_reseal;
    assert_int_equal(dz_store_del_if(s, "sess", "k", 1, "value", 5), DZ_ERR_EXISTS);
    del_if_between = NULL;
    assert_int_equal(dz_store_get(s, "sess", "k", 1, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "value");
    assert_int_equal(dz_store_count(s, "sess"), 1);
    /* no writer in between: deleted, its index entry with it */
    assert_int_equal(dz_store_del_if(s, "sess", "k", 1, "value", 5), 0);
    assert_int_equal(dz_store_count(s, "sess"), 0);
    assert_int_equal(dz_store_put(s, "sess", "k", 1, "value", 5, 60000, 0), 0);
    del_if_between = between_redis_gone;
    assert_int_equal(dz_store_del_if(s, "sess", "k", 1, "value", 5), DZ_ERR_UNAVAILABLE);
    del_if_between = NULL;
    redis_back(s);
    dz_buf_cleanup(&b);
    dz_store_free(s);
}

/* Logins of one person racing on a full list, on the shared store (fewer
 * rounds than in process: each is many round trips). */
static void test_sessidx_race(void **state)
{
    struct dz_store *s = mk();

    (void)state;
    sessidx_race(s, "5ABC124", 20);
    dz_store_free(s);
}

static void tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    (*(int *)t->data)++;
}

/* Redis paused (SIGSTOP): an asynchronous count leaves the loop free (a
 * timer of the loop keeps firing while it waits), is answered unavailable
 * after the command timeout (fail closed), and the breaker then answers at
 * once; Redis resumed, counting goes on from where it was. */
static void test_async_paused(void **state)
{
    struct dz_store *s = mk();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dz_store_health h;
    struct async_seen a;
    ev_timer t;
    int ticks = 0;
    uint64_t t0;
    int rc = -1;

    (void)state;
    assert_non_null(loop);
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, "rate", "r", 1, 60000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.values[0], 1);

    assert_int_equal(kill(redis_pid, SIGSTOP), 0);
    ev_timer_init(&t, tick, 0.02, 0.02);
    t.data = &ticks;
    ev_timer_start(loop, &t);
    memset(&a, 0, sizeof(a));
    t0 = mono_ms();
    dz_store_incr_async(s, loop, "rate", "r", 1, 60000, async_cb, &a);
    assert_int_equal(a.calls, 0); /* not answered before the call returned */
    dz_store_health(s, &h);
    assert_int_equal(h.inflight, 1);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_UNAVAILABLE);
    assert_true(mono_ms() - t0 >= 1900); /* the command timeout, 2 s */
    assert_true(ticks >= 10);            /* the loop ran meanwhile */
    dz_store_health(s, &h);
    assert_int_equal(h.inflight, 0);
    assert_false(h.up);
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, "rate", "r", 1, 60000, async_cb, &a);
    assert_int_equal(a.calls, 1); /* the open breaker answers at once */
    assert_int_equal(a.rc, DZ_ERR_UNAVAILABLE);
    ev_timer_stop(loop, &t);

    assert_int_equal(kill(redis_pid, SIGCONT), 0);
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end; nap_ms(20)) {
        memset(&a, 0, sizeof(a));
        dz_store_incr_async(s, loop, "rate", "r", 1, 60000, async_cb, &a);
        async_wait(loop, &a, 1);
        rc = a.rc;
        if (rc == 0)
            break;
        assert_int_equal(rc, DZ_ERR_UNAVAILABLE);
    }
    assert_int_equal(rc, 0);
    /* The count that timed out may or may not have been applied by Redis
     * after it resumed: 2 or 3, never lost below what was answered. */
    assert_true(a.values[0] == 2 || a.values[0] == 3);
    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* A write that must reach a replica (a failure counter) and does not:
 * answered unavailable, as the synchronous form. */
static void test_async_wait_short(void **state)
{
    struct dz_store_redis_config c;
    struct dz_store *s = NULL;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct async_seen a;

    (void)state;
    flushall();
    config(&c);
    c.wait_replicas = 1;
    c.command_timeout_ms = 400;
    assert_int_equal(dz_store_redis_new(&c, NULL, &s), 0);
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, "fail_fin", "f", 1, 60000, async_cb, &a);
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, DZ_ERR_UNAVAILABLE);
    memset(&a, 0, sizeof(a));
    dz_store_incr_async(s, loop, "rate", "f", 1, 60000, async_cb, &a); /* waits for nothing */
    async_wait(loop, &a, 1);
    assert_int_equal(a.rc, 0);
    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* A durable delete (a revoked token, a withdrawn consent) waits for the
 * replicas as a session's delete does: with none to acknowledge it is
 * unavailable (not known to be deleted), where a plain delete of the same
 * namespace does not wait. */
static void test_durable_delete_waits(void **state)
{
    struct dz_store_redis_config c;
    struct dz_store *s = NULL;

    (void)state;
    flushall();
    config(&c);
    c.wait_replicas = 1;
    c.command_timeout_ms = 400;
    assert_int_equal(dz_store_redis_new(&c, NULL, &s), 0);
    assert_int_equal(dz_store_put(s, "oidcconsent", "k", 1, "v", 1, 60000, 0), 0);
    assert_int_equal(dz_store_del(s, "oidcconsent", "k", 1), 0);
    assert_int_equal(dz_store_put(s, "oidcconsent", "k", 1, "v", 1, 60000, 0), 0);
    assert_int_equal(dz_store_del_durable(s, "oidcconsent", "k", 1), DZ_ERR_UNAVAILABLE);
    dz_store_free(s);

    config(&c); /* wait_replicas 0: waits for nothing */
    assert_int_equal(dz_store_redis_new(&c, NULL, &s), 0);
    assert_int_equal(dz_store_put(s, "oidcconsent", "k", 1, "v", 1, 60000, 0), 0);
    assert_int_equal(dz_store_del_durable(s, "oidcconsent", "k", 1), 0);
    assert_int_equal(dz_store_del_durable(s, "oidcconsent", "k", 1), DZ_ERR_NOTFOUND);
    dz_store_free(s);
}

struct wake_seen {
    atomic_int calls;
    char ns[16];
    char key[16];
};

static void on_wake(void *arg, const char *ns, const void *key, size_t key_len)
{
    struct wake_seen *w = arg;

    snprintf(w->ns, sizeof(w->ns), "%s", ns);
    snprintf(w->key, sizeof(w->key), "%.*s", (int)key_len, (const char *)key);
    atomic_fetch_add(&w->calls, 1);
}

static bool wait_until(atomic_int *v, int want, unsigned ms)
{
    for (uint64_t end = mono_ms() + ms; mono_ms() < end; nap_ms(5))
        if (atomic_load(v) >= want)
            return true;
    return false;
}

/* Two instances on one Redis: a wake-up published on A reaches B's
 * subscribers (and A's own); a logout on B makes A's cached session fail
 * within 100 ms. */
static void test_two_instances(void **state)
{
    struct dz_store_redis_config cf;
    struct dz_store *a = mk();
    struct dz_store *b = NULL;
    struct wake_seen wa = {0}, wb = {0};
    struct dz_buf buf;
    int rc = 0;

    (void)state;
    config(&cf);
    assert_int_equal(dz_store_redis_new(&cf, NULL, &b), 0);
    assert_int_equal(dz_store_subscribe(a, on_wake, &wa), 0);
    assert_int_equal(dz_store_subscribe(b, on_wake, &wb), 0);
    dz_buf_init(&buf, 1024);
    /* the subscribers connect on their own threads: publish until heard */
    for (uint64_t end = mono_ms() + 5000;
         mono_ms() < end && (atomic_load(&wb.calls) == 0 || atomic_load(&wa.calls) == 0);) {
        dz_store_publish(a, "qr", "id42", 4);
        wait_until(&wb.calls, 1, 100);
    }
    assert_true(atomic_load(&wb.calls) >= 1);
    assert_true(atomic_load(&wa.calls) >= 1);
    assert_string_equal(wb.ns, "qr");
    assert_string_equal(wb.key, "id42");

    /* near cache: A reads (and caches) the session, B deletes it */
    assert_int_equal(dz_store_put(b, "sess", "sid", 3, "record", 6, 60000, DZ_STORE_NX), 0);
    for (int i = 0; i < 3; i++) {
        dz_buf_reset(&buf);
        assert_int_equal(dz_store_get(a, "sess", "sid", 3, &buf), 0);
        assert_string_equal(dz_buf_cstr(&buf), "record");
        assert_int_equal(dz_store_touch(a, "sess", "sid", 3, 60000), 0);
    }
    assert_int_equal(dz_store_del(b, "sess", "sid", 3), 0);
    {
        uint64_t t0 = mono_ms();

        for (; mono_ms() - t0 < 1000; nap_ms(2)) {
            dz_buf_reset(&buf);
            rc = dz_store_get(a, "sess", "sid", 3, &buf);
            if (rc == DZ_ERR_NOTFOUND)
                break;
        }
        assert_int_equal(rc, DZ_ERR_NOTFOUND);
        assert_true(mono_ms() - t0 < 100);
    }
    /* the touch of a session that is gone fails too */
    assert_int_equal(dz_store_touch(a, "sess", "sid", 3, 60000), DZ_ERR_NOTFOUND);
    dz_buf_cleanup(&buf);
    dz_store_free(b);
    dz_store_free(a);
}

/* The one value under a pattern of keys (a counter, in clear), or -1. */
static long long raw_counter(const char *pattern)
{
    redisContext *c = raw();
    redisReply *keys = redisCommand(c, "KEYS %s", pattern);
    long long v = -1;

    if (keys && keys->type == REDIS_REPLY_ARRAY && keys->elements == 1) {
        redisReply *r = redisCommand(c, "GET %s", keys->element[0]->str);

        if (r && r->type == REDIS_REPLY_STRING)
            v = strtoll(r->str, NULL, 10);
        if (r)
            freeReplyObject(r);
    }
    if (keys)
        freeReplyObject(keys);
    redisFree(c);
    return v;
}

/* GET commands Redis has run since start (INFO commandstats). */
static long long get_calls(void)
{
    redisContext *c = raw();
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long n = 0;
    const char *p;

    if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, "cmdstat_get:calls=")) != NULL)
        n = strtoll(p + strlen("cmdstat_get:calls="), NULL, 10);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Misses of one session on one loop at once: answered with the value
 * Redis holds now, by GETs sent in one round; d is how many. */
static void session_misses(struct dz_store *s, struct ev_loop *loop, int n, const char *want,
                           long long *d)
{
    struct async_seen a[4];
    long long g0 = get_calls();

    for (int i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        dz_store_get_async(s, loop, "sess", "sid", 3, async_cb, &a[i]);
    }
    for (int i = 0; i < n; i++) {
        async_wait(loop, &a[i], 1);
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(a[i].len, strlen(want));
        assert_memory_equal(a[i].data, want, strlen(want));
    }
    *d = get_calls() - g0;
}

/* Concurrent near-cache misses of one session on one loop send one GET;
 * a miss after an invalidation (here a write of this instance) does not
 * join a GET sent before it, and gets the new value. */
static void test_get_coalesced(void **state)
{
    struct dz_store *s = mk();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct async_seen lead, late;
    long long d = 0;
    long long g0;

    (void)state;
    assert_non_null(loop);
    /* Each round misses (the put drops the cached value); until the
     * subscriber is up (its own thread) the cache is off and each miss
     * sends its GET. */
    for (uint64_t end = mono_ms() + 5000; mono_ms() < end;) {
        assert_int_equal(dz_store_put(s, "sess", "sid", 3, "rec1", 4, 60000, 0), 0);
        session_misses(s, loop, 4, "rec1", &d);
        if (d == 1)
            break;
        nap_ms(20);
    }
    assert_int_equal(d, 1);

    /* The first miss's GET is in flight; the record changes; a later
     * miss sends its own GET and sees the new record. */
    assert_int_equal(dz_store_put(s, "sess", "sid", 3, "rec2", 4, 60000, 0), 0);
    memset(&lead, 0, sizeof(lead));
    memset(&late, 0, sizeof(late));
    g0 = get_calls();
    dz_store_get_async(s, loop, "sess", "sid", 3, async_cb, &lead);
    assert_int_equal(dz_store_put(s, "sess", "sid", 3, "rec3", 4, 60000, 0), 0);
    dz_store_get_async(s, loop, "sess", "sid", 3, async_cb, &late);
    async_wait(loop, &lead, 1);
    async_wait(loop, &late, 1);
    assert_int_equal(late.rc, 0);
    assert_memory_equal(late.data, "rec3", 4);
    assert_int_equal(get_calls() - g0, 2);
    dz_store_free(s);
    ev_loop_destroy(loop);
}

/* store.redis.rate_batch: a rate counter is sent every k-th count and
 * counted on locally in between (one instance sees its own counts exactly);
 * what Redis holds lags by less than k per instance, so a subject exceeds
 * its rate by at most instances x k; other kinds stay exact. */
static void test_rate_batch(void **state)
{
    struct dz_store_redis_config cf;
    struct dz_store *a = NULL, *b = NULL;
    int64_t v = 0;
    long long held;

    (void)state;
    flushall();
    config(&cf);
    cf.rate_batch = 5;
    assert_int_equal(dz_store_redis_new(&cf, NULL, &a), 0);
    assert_int_equal(dz_store_redis_new(&cf, NULL, &b), 0);
    for (int64_t i = 1; i <= 12; i++) {
        assert_int_equal(dz_store_incr(a, "rate", "subject", 7, 60000, &v), 0);
        assert_int_equal(v, i);
    }
    held = raw_counter(PREFIX "rate:*");
    assert_true(held >= 12 - 4 && held <= 12);
    for (int i = 1; i <= 12; i++) {
        assert_int_equal(dz_store_incr(b, "rate", "subject", 7, 60000, &v), 0);
        assert_true(v >= held + i && v <= 24); /* B starts from what Redis had */
    }
    held = raw_counter(PREFIX "rate:*");
    assert_true(held >= 24 - 2 * 4 && held <= 24);
    /* a window that ends starts again at 1, and is batched again */
    assert_int_equal(dz_store_incr(a, "rate", "short", 5, 300, &v), 0);
    assert_int_equal(v, 1);
    for (int t = 0; t < 250 && raw_counter(PREFIX "rate:*") != held; t++)
        nap_ms(20); /* until only "subject" is left in Redis */
    for (uint64_t end = mono_ms() + 5000; mono_ms() < end; nap_ms(20)) {
        assert_int_equal(dz_store_incr(a, "rate", "short", 5, 300, &v), 0);
        if (v == 1)
            break;
    }
    assert_int_equal(v, 1);
    assert_int_equal(dz_store_incr(a, "rate", "short", 5, 300, &v), 0);
    assert_int_equal(v, 2);
    /* a failure counter is exact: Redis has every count at once */
    for (long long i = 1; i <= 3; i++) {
        assert_int_equal(dz_store_incr(a, "fail_fin", "AAAAAAA", 7, 60000, &v), 0);
        assert_int_equal(raw_counter(PREFIX "fail_fin:*"), i);
    }
    dz_store_free(b);
    dz_store_free(a);
}

/* Bad configurations are refused before anything runs. */
static void test_bad_config(void **state)
{
    struct dz_store_redis_config cf;
    struct dz_store *s = (struct dz_store *)1;

    (void)state;
    config(&cf);
    cf.prefix = "";
    assert_int_equal(dz_store_redis_new(&cf, NULL, &s), DZ_ERR_INVAL);
    assert_null(s);
    config(&cf);
    cf.master.port = 0;
    assert_int_equal(dz_store_redis_new(&cf, NULL, &s), DZ_ERR_INVAL);
    config(&cf);
    cf.command_timeout_ms = 0;
    assert_int_equal(dz_store_redis_new(&cf, NULL, &s), DZ_ERR_INVAL);
    /* the bookkeeping's namespace cannot be written */
    assert_int_equal(backend_new(NULL, &s), 0);
    assert_int_equal(dz_store_put(s, "#i", "k", 1, "v", 1, 1000, 0), DZ_ERR_INVAL);
    dz_store_free(s);
}

static int group_setup(void **state)
{
    const char *p = getenv("DZ_TEST_REDIS_PORT");
    long port = p ? strtol(p, NULL, 10) : 0;

    (void)state;
    if (port > 0 && port < 65536)
        PORT = (int)port;
    snprintf(redis_dir, sizeof(redis_dir), "/tmp/dz-redis-unit-XXXXXX");
    if (!mkdtemp(redis_dir))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return redis_start();
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    redis_stop();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", redis_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CASES,
        cmocka_unit_test(test_sealed),
        cmocka_unit_test(test_del_if_between),
        cmocka_unit_test(test_sessidx_race),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_rate_batch),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_down_and_back),
        cmocka_unit_test(test_async_paused),
        cmocka_unit_test(test_async_wait_short),
        cmocka_unit_test(test_durable_delete_waits),
        cmocka_unit_test(test_get_coalesced),
        cmocka_unit_test(test_evicting_refused),
        cmocka_unit_test(test_info_denied_refused),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
