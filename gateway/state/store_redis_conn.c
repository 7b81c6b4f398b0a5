/*
 * store_redis_conn.c - the connections of the Redis backend and its circuit
 * breaker (store_redis_int.h).
 *
 * Each calling thread (a worker loop, a pool thread) has its own blocking
 * hiredis connection, made on its first call: no lock on the request path
 * and no connection shared across threads.  Every wait is bounded: the
 * connect timeout for connecting, the command timeout for each round trip
 * (SO_RCVTIMEO/SO_SNDTIMEO through redisSetTimeout).
 *
 * The breaker keeps a dead or slow Redis from stalling the loops one after
 * another: at the first network error, timeout or "not a writable master"
 * answer it opens, and every call on every thread answers
 * DZ_ERR_UNAVAILABLE at once, without touching the network, until a backoff
 * (100 ms doubling to retry_max) has passed; then exactly one caller probes
 * (reconnecting), and its success closes the breaker.  A trip bumps a
 * generation, so every other thread's connection, made before the trip,
 * reconnects on its next use instead of failing once more.
 *
 * With sentinels the master's address is asked of them at each (re)connect
 * (SENTINEL get-master-addr-by-name), so after a failover the first probe
 * finds the promoted replica.  The password is sent in AUTH and nowhere
 * else; no log line carries it.
 */
#include "state/store_redis_int.h"

#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/looptag.h"

#include "base/compat.h"

#define BACKOFF_MIN_MS 100u

uint64_t rs_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval tv_of(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

static void conn_free(struct rs_conn *c)
{
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    free(c);
}

int rs_conn_init(struct rs_store *st)
{
    if (pthread_mutex_init(&st->lock, NULL) != 0)
        return DZ_ERR_NOMEM;
    /* No destructor: connections are released with the store (a thread
     * that ends leaves its connection on the list until then; the loops and
     * pool threads live as long as the store). */
    if (pthread_key_create(&st->tls, NULL) != 0) {
        pthread_mutex_destroy(&st->lock);
        return DZ_ERR_NOMEM;
    }
    atomic_store(&st->backoff_ms, BACKOFF_MIN_MS);
    return 0;
}

void rs_conn_cleanup(struct rs_store *st)
{
    struct rs_conn *c = st->conns;

    while (c) {
        struct rs_conn *n = c->next;
        conn_free(c);
        c = n;
    }
    st->conns = NULL;
    pthread_key_delete(st->tls);
    pthread_mutex_destroy(&st->lock);
}

static void set_why(struct rs_store *st, const char *why)
{
    pthread_mutex_lock(&st->lock);
    snprintf(st->why, sizeof(st->why), "%s", why);
    pthread_mutex_unlock(&st->lock);
}

/* Open the breaker (or keep it open).  Only a failed probe doubles the
 * backoff: the calls already on the wire when Redis went away all fail
 * together, and must not push the next probe minutes away. */
static void trip(struct rs_store *st, const char *why, bool probe)
{
    bool was_down = atomic_exchange(&st->down, true);
    uint64_t b;

    atomic_fetch_add(&st->errors, 1);
    atomic_fetch_add(&st->gen, 1);
    set_why(st, why);
    if (!was_down) {
        b = BACKOFF_MIN_MS;
        dz_log(DZ_LOG_WARN, "store_unavailable",
               "redis: %s; state calls answer unavailable until it is back", why);
    } else if (probe) {
        b = atomic_load(&st->backoff_ms) * 2;
        if (b > st->cfg.retry_max_ms)
            b = st->cfg.retry_max_ms;
    } else {
        return; /* already open: its retry time stands */
    }
    atomic_store(&st->backoff_ms, b);
    atomic_store(&st->retry_at_ms, rs_now_ms() + b);
}

void rs_breaker_trip(struct rs_store *st, const char *why)
{
    trip(st, why, false);
}

void rs_breaker_ok(struct rs_store *st)
{
    if (atomic_load_explicit(&st->down, memory_order_relaxed) &&
        atomic_exchange(&st->down, false)) {
        atomic_store(&st->backoff_ms, BACKOFF_MIN_MS);
        dz_log(DZ_LOG_INFO, "store_available", "redis answers again");
    }
}

void rs_breaker_fail(struct rs_store *st, const char *why, bool probe)
{
    trip(st, why, probe);
}

void rs_breaker_probe_end(struct rs_store *st)
{
    atomic_store(&st->probing, false);
}

int rs_master_addr(struct rs_store *st, char *host, size_t cap, int *port)
{
    int rc = 0;

    if (!st->cfg.n_sentinels) {
        snprintf(host, cap, "%s", st->cfg.master.host);
        *port = st->cfg.master.port;
        return 0;
    }
    pthread_mutex_lock(&st->lock);
    if (st->master_host[0]) {
        snprintf(host, cap, "%s", st->master_host);
        *port = st->master_port;
    } else {
        rc = DZ_ERR_UNAVAILABLE;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Whether this call may go to the network: 1 yes, 2 yes as the probe, 0 no. */
int rs_breaker_allow(struct rs_store *st)
{
    bool expected = false;

    if (!atomic_load_explicit(&st->down, memory_order_acquire))
        return 1;
    if (rs_now_ms() < atomic_load(&st->retry_at_ms))
        return 0;
    if (!atomic_compare_exchange_strong(&st->probing, &expected, true))
        return 0;
    return 2;
}

/* One command on a fresh context (set-up only); the reply or NULL. */
static redisReply *cmd(redisContext *ctx, int argc, const char **argv, const size_t *lens)
{
    return redisCommandArgv(ctx, argc, argv, lens);
}

/* Ask the sentinels, in order, where the master is. */
static int discover(struct rs_store *st, uint64_t timeout_ms, char *host, size_t cap, int *port,
                    char *why, size_t why_cap)
{
    for (size_t i = 0; i < st->cfg.n_sentinels; i++) {
        const struct dz_store_redis_endpoint *e = &st->cfg.sentinels[i];
        redisContext *ctx = redisConnectWithTimeout(e->host, e->port, tv_of(timeout_ms));
        redisReply *r = NULL;

        if (!ctx || ctx->err) {
            snprintf(why, why_cap, "sentinel %s:%d: %s", e->host, e->port,
                     ctx ? ctx->errstr : "out of memory");
            if (ctx)
                redisFree(ctx);
            continue;
        }
        redisSetTimeout(ctx, tv_of(timeout_ms));
        {
            const char *argv[] = {"SENTINEL", "get-master-addr-by-name", st->master_name};
            r = cmd(ctx, 3, argv, NULL);
        }
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < cap) {
            long p = strtol(r->element[1]->str, NULL, 10);

            if (p > 0 && p < 65536) {
                memcpy(host, r->element[0]->str, r->element[0]->len + 1);
                *port = (int)p;
                freeReplyObject(r);
                redisFree(ctx);
                return 0;
            }
        }
        snprintf(why, why_cap, "sentinel %s:%d does not know master %s", e->host, e->port,
                 st->master_name);
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
    }
    return DZ_ERR_UNAVAILABLE;
}

redisContext *rs_connect_master(struct rs_store *st, uint64_t timeout_ms, char *why, size_t why_cap)
{
    char host[RS_HOST_MAX];
    int port;
    redisContext *ctx = NULL;
    redisReply *r = NULL;

    if (st->cfg.n_sentinels) {
        if (discover(st, timeout_ms, host, sizeof(host), &port, why, why_cap) != 0)
            return NULL;
        pthread_mutex_lock(&st->lock);
        if (strcmp(host, st->master_host) != 0 || port != st->master_port) {
            if (st->master_host[0])
                dz_log(DZ_LOG_WARN, "store_master_changed", "redis: the master is now %s:%d", host,
                       port);
            snprintf(st->master_host, sizeof(st->master_host), "%s", host);
            st->master_port = port;
        }
        pthread_mutex_unlock(&st->lock);
    } else {
        snprintf(host, sizeof(host), "%s", st->cfg.master.host);
        port = st->cfg.master.port;
    }
    ctx = redisConnectWithTimeout(host, port, tv_of(timeout_ms));
    if (!ctx || ctx->err) {
        snprintf(why, why_cap, "%s:%d: %s", host, port, ctx ? ctx->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(ctx, tv_of(st->cfg.command_timeout_ms)) != REDIS_OK) {
        snprintf(why, why_cap, "%s:%d: cannot set the timeout", host, port);
        goto fail;
    }
    if (st->password) {
        const char *argv[] = {"AUTH", st->username ? st->username : st->password, st->password};
        r = cmd(ctx, st->username ? 3 : 2, argv, NULL);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            /* Redis's own words name no secret ("WRONGPASS invalid
             * username-password pair"). */
            snprintf(why, why_cap, "%s:%d: AUTH refused: %.60s", host, port,
                     r ? r->str : ctx->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    {
        /* A replica (a stale address, a failover under way) must not take
         * writes: only a master is a connection we keep. */
        const char *argv[] = {"ROLE"};
        r = cmd(ctx, 1, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(r->element[0]->str, "master") != 0) {
            snprintf(why, why_cap, "%s:%d: not a master (%.40s)", host, port,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : "role");
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    {
        const char *argv[] = {"INFO", "memory"};
        r = cmd(ctx, 2, argv, NULL);
        if (rs_evicts(r, why, why_cap)) {
            size_t n = strlen(why);
            snprintf(why + n, why_cap - n, " (%s:%d)", host, port);
            goto fail;
        }
        freeReplyObject(r);
    }
    return ctx;
fail:
    if (r)
        freeReplyObject(r);
    if (ctx)
        redisFree(ctx);
    return NULL;
}

/* The calling thread's connection, connected in this generation, or
 * DZ_ERR_UNAVAILABLE (the breaker is tripped on a failed connect). */
static int thread_conn(struct rs_store *st, bool probe, struct rs_conn **out)
{
    struct rs_conn *c = pthread_getspecific(st->tls);
    unsigned gen = atomic_load(&st->gen);
    char why[128];

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return DZ_ERR_NOMEM;
        pthread_mutex_lock(&st->lock);
        c->next = st->conns;
        if (st->conns)
            st->conns->prev = c;
        st->conns = c;
        pthread_mutex_unlock(&st->lock);
        pthread_setspecific(st->tls, c);
    }
    if (c->ctx && c->gen != gen) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (!c->ctx) {
        c->ctx = rs_connect_master(st, st->cfg.connect_timeout_ms, why, sizeof(why));
        if (!c->ctx) {
            trip(st, why, probe);
            return DZ_ERR_UNAVAILABLE;
        }
        c->gen = atomic_load(&st->gen);
        atomic_fetch_add(&st->reconnects, 1);
    }
    *out = c;
    return 0;
}

/* Answers that say this server cannot take the call now (a replica after a
 * failover, loading, no good replicas): the breaker's business. */
bool rs_reply_unavailable(const redisReply *r)
{
    static const char *const codes[] = {"READONLY",    "LOADING",  "MASTERDOWN",
                                        "NOREPLICAS",  "BUSY",     "OOM",
                                        "CLUSTERDOWN", "TRYAGAIN", NULL};

    if (r->type != REDIS_REPLY_ERROR)
        return false;
    for (size_t i = 0; codes[i]; i++)
        if (strncmp(r->str, codes[i], strlen(codes[i])) == 0)
            return true;
    return false;
}

/* Whether the server's INFO memory (r) allows it to evict keys; why filled
 * when so.  Every entry has a TTL, so any policy but noeviction (volatile-*
 * as much as allkeys-*) may drop a used mark (a replayed QR answer, OIDC
 * code or client assertion would be taken for fresh), a lockout's lock or
 * counter (the guessing goes on), or a session's slot, as soon as Redis
 * fills up: a Redis that cannot keep what it was given is no store.  An
 * answer without the field (not Redis, or an ACL without INFO) is refused
 * alike: fail closed. */
bool rs_evicts(const redisReply *r, char *why, size_t why_cap)
{
    static const char field[] = "maxmemory_policy:";
    const char *p = NULL;
    size_t n = 0;

    if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, field)) != NULL) {
        p += sizeof(field) - 1;
        n = strcspn(p, "\r\n");
        if (n == 10 && memcmp(p, "noeviction", 10) == 0)
            return false;
    }
    if (p)
        snprintf(why, why_cap,
                 "maxmemory-policy %.*s may evict single-use marks and locks; set "
                 "noeviction",
                 (int)(n < 32 ? n : 32), p);
    else
        snprintf(why, why_cap, "INFO memory does not say the maxmemory-policy (%.60s)",
                 !r                              ? "no answer"
                 : r->type == REDIS_REPLY_ERROR  ? r->str
                 : r->type == REDIS_REPLY_STRING ? "no such field"
                                                 : "not a text reply");
    return true;
}

/* A round trip about to block an event loop: counted, and logged at most
 * once a minute (with DARVAZA_DEBUG_LOOP_WAITS set, every time, with the
 * caller's stack, to find the call site). */
static void note_loop_wait(struct rs_store *st, const char *command)
{
    uint64_t now = rs_now_ms();
    uint_fast64_t last;

    if (!dz_thread_on_loop())
        return;
    atomic_fetch_add(&st->loop_waits, 1);
    if (getenv("DARVAZA_DEBUG_LOOP_WAITS")) {
        void *frames[16];
        int n = backtrace(frames, 16);

        dz_log(DZ_LOG_WARN, "store_loop_wait",
               "redis: %s waited on a worker loop; stack:", command);
        backtrace_symbols_fd(frames, n, 2);
        return;
    }
    last = atomic_load(&st->loop_wait_logged_ms);
    if (now - last < 60000 && last != 0)
        return;
    if (atomic_compare_exchange_strong(&st->loop_wait_logged_ms, &last, now))
        dz_log(DZ_LOG_WARN, "store_loop_wait",
               "redis: %s waited on a worker loop (darvaza_store_loop_waits_total counts them)",
               command);
}

int rs_call(struct rs_store *st, int argc, const char **argv, const size_t *lens, bool wait,
            redisReply **out)
{
    struct rs_conn *c = NULL;
    redisReply *r = NULL;
    redisReply *w = NULL;
    char why[160];
    int allow;
    int rc;

    *out = NULL;
    note_loop_wait(st, argv[0]);
    allow = rs_breaker_allow(st);
    if (!allow) {
        atomic_fetch_add(&st->errors, 1);
        return DZ_ERR_UNAVAILABLE;
    }
    rc = thread_conn(st, allow == 2, &c);
    if (rc)
        goto out;
    wait = wait && st->cfg.wait_replicas > 0;
    {
        struct timespec a, b;

        clock_gettime(CLOCK_MONOTONIC, &a);
        if (redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK)
            goto neterr;
        if (wait) {
            char n[16], ms[24];

            snprintf(n, sizeof(n), "%u", st->cfg.wait_replicas);
            /* Half the command timeout, so the command and its WAIT end
             * within the socket's timeout with an answer, not a timeout. */
            snprintf(ms, sizeof(ms), "%llu",
                     (unsigned long long)(st->cfg.command_timeout_ms / 2
                                              ? st->cfg.command_timeout_ms / 2
                                              : 1));
            if (redisAppendCommand(c->ctx, "WAIT %s %s", n, ms) != REDIS_OK)
                goto neterr;
        }
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || !r)
            goto neterr;
        if (wait && (redisGetReply(c->ctx, (void **)&w) != REDIS_OK || !w))
            goto neterr;
        clock_gettime(CLOCK_MONOTONIC, &b);
        dz_histo_observe(&st->latency, (uint64_t)((b.tv_sec - a.tv_sec) * 1000000LL +
                                                  (b.tv_nsec - a.tv_nsec) / 1000));
    }
    if (rs_reply_unavailable(r)) {
        snprintf(why, sizeof(why), "the server cannot take the call now (%.60s)", r->str);
        redisFree(c->ctx);
        c->ctx = NULL;
        trip(st, why, allow == 2);
        rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    if (wait && (w->type != REDIS_REPLY_INTEGER || w->integer < (long long)st->cfg.wait_replicas)) {
        /* The write is on the master only: a failover now could bring it
         * back unused.  Fail closed; the breaker stays closed (the master
         * answers) but the call is counted as an error. */
        atomic_fetch_add(&st->errors, 1);
        dz_log(DZ_LOG_WARN, "store_wait_short",
               "redis: a single-use write reached %lld of %u replicas in time; refused",
               w->type == REDIS_REPLY_INTEGER ? w->integer : -1LL, st->cfg.wait_replicas);
        rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    rs_breaker_ok(st);
    *out = r;
    r = NULL;
    rc = 0;
    goto out;
neterr:
    snprintf(why, sizeof(why), "%s", c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
    redisFree(c->ctx);
    c->ctx = NULL;
    trip(st, why, allow == 2);
    rc = DZ_ERR_UNAVAILABLE;
out:
    if (allow == 2)
        atomic_store(&st->probing, false);
    if (r)
        freeReplyObject(r);
    if (w)
        freeReplyObject(w);
    return rc;
}
