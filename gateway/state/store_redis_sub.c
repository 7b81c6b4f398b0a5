/*
 * store_redis_sub.c - the subscriber connection of the Redis backend
 * (store_redis_int.h): one thread per store that listens to Redis.
 *
 * It subscribes to two channels on one connection:
 *   __redis__:invalidate  the invalidations of server-assisted client
 *                         caching: CLIENT TRACKING on REDIRECT <itself> BCAST
 *                         PREFIX P "sess:" (RESP2 needs the redirect), for the
 *                         near cache (store_redis_cache.c);
 *   P "#wake"             the wake-ups other instances publish (store.h),
 *                         handed to dz_store_deliver on this thread.
 * It also watches Redis for /readyz: its loss trips the circuit breaker
 * and its reconnection closes it, so readiness follows Redis within a
 * second without any request.  It PINGs every second and counts the connection dead when no answer
 * came within a command timeout plus a second (a silent network).  While it is not connected and
 * subscribed the near cache is off and empty: an invalidation may have been missed.  It reconnects
 * alone, with the breaker's backoff (100 ms doubling to retry_max), and follows the master through
 * the sentinels like every other connection.
 */
#include "state/store_redis_int.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

#define POLL_MS 100
#define PING_EVERY_MS 1000u

static const char INVALIDATE[] = "__redis__:invalidate";

/* Sleep ms, waking early when asked to stop. */
static void nap(struct rs_store *st, uint64_t ms)
{
    uint64_t end = rs_now_ms() + ms;

    while (!atomic_load(&st->sub_stop) && rs_now_ms() < end) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool str_is(const redisReply *r, const char *s, size_t n)
{
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

static void on_wake(struct rs_store *st, const char *chan, size_t chan_len, const redisReply *m)
{
    struct dz_buf msg;
    const char *nul;

    if (m->type != REDIS_REPLY_STRING || !st->store)
        return;
    dz_buf_init(&msg, 64u * 1024u + 128u);
    if (rs_open(st, chan, chan_len, m->str, m->len, &msg) == 0 && msg.len > 1 &&
        (nul = memchr(msg.data, '\0', msg.len)) != NULL && nul > msg.data) {
        size_t ns_len = (size_t)(nul - msg.data);

        dz_store_deliver(st->store, msg.data, nul + 1, msg.len - ns_len - 1);
    }
    dz_buf_wipe(&msg);
}

static void on_message(struct rs_store *st, const redisReply *r, const char *wake, size_t wake_len)
{
    const redisReply *chan, *m;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !str_is(r->element[0], "message", 7))
        return;
    chan = r->element[1];
    m = r->element[2];
    if (str_is(chan, INVALIDATE, sizeof(INVALIDATE) - 1)) {
        if (!st->cache)
            return;
        if (m->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < m->elements; i++)
                if (m->element[i]->type == REDIS_REPLY_STRING)
                    rs_cache_invalidate(st->cache, m->element[i]->str, m->element[i]->len);
        } else {
            rs_cache_flush(st->cache); /* FLUSHALL / FLUSHDB */
        }
    } else if (str_is(chan, wake, wake_len)) {
        on_wake(st, wake, wake_len, m);
    }
}

/* Set up tracking and the subscriptions on a fresh connection. */
static int subscribe(struct rs_store *st, redisContext *ctx, const char *wake, char *why,
                     size_t why_cap)
{
    redisReply *r = redisCommand(ctx, "CLIENT ID");
    long long id;

    if (!r || r->type != REDIS_REPLY_INTEGER) {
        snprintf(why, why_cap, "CLIENT ID failed");
        goto fail;
    }
    id = r->integer;
    freeReplyObject(r);
    r = NULL;
    if (st->cache) {
        r = redisCommand(ctx, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %ssess:", id,
                         st->prefix);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, why_cap, "CLIENT TRACKING refused (%.60s)", r ? r->str : ctx->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (redisAppendCommand(ctx, "SUBSCRIBE %s %s", INVALIDATE, wake) != REDIS_OK)
        goto fail;
    for (int i = 0; i < 2; i++) {
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_ARRAY) {
            snprintf(why, why_cap, "SUBSCRIBE failed");
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    return 0;
fail:
    if (r)
        freeReplyObject(r);
    if (!why[0])
        snprintf(why, why_cap, "%s", ctx->errstr[0] ? ctx->errstr : "set-up failed");
    return DZ_ERR_UNAVAILABLE;
}

/* Read until the connection fails, goes silent, or we are stopped (false),
 * or the sentinels moved the master (true). */
static bool listen_loop(struct rs_store *st, redisContext *ctx, const char *wake, size_t wake_len)
{
    uint64_t last_ping = rs_now_ms();
    uint64_t pong_due = 0; /* 0: no PING outstanding */
    uint_fast64_t switches = atomic_load(&st->switches);

    while (!atomic_load(&st->sub_stop)) {
        redisReply *r = NULL;
        struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
        uint64_t now;

        if (redisGetReplyFromReader(ctx, (void **)&r) != REDIS_OK)
            return false;
        if (r) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                str_is(r->element[0], "pong", 4)) {
                pong_due = 0;
                /* The master answers again after a call timed out (a
                 * pause shorter than this connection's deadline): close
                 * the breaker, or an instance out of its balancer's
                 * rotation would get no request to probe with and stay
                 * not ready. */
                rs_breaker_ok(st);
            } else
                on_message(st, r, wake, wake_len);
            freeReplyObject(r);
            continue;
        }
        now = rs_now_ms();
        if (pong_due && now > pong_due)
            return false; /* silent: count it dead */
        if (atomic_load(&st->switches) != switches)
            return true; /* the sentinels moved the master: follow it now */
        if (!pong_due && now - last_ping >= PING_EVERY_MS) {
            int done = 0;

            if (redisAppendCommand(ctx, "PING") != REDIS_OK)
                return false;
            while (!done)
                if (redisBufferWrite(ctx, &done) != REDIS_OK)
                    return false;
            last_ping = now;
            pong_due = now + st->cfg.command_timeout_ms + 1000u;
        }
        if (poll(&p, 1, POLL_MS) > 0 && redisBufferRead(ctx) != REDIS_OK)
            return false;
    }
    return false;
}

static void *sub_main(void *arg)
{
    struct rs_store *st = arg;
    uint64_t backoff = 100;
    char wake[RS_PREFIX_MAX + 8];
    bool lost_logged = false;

    snprintf(wake, sizeof(wake), "%s#wake", st->prefix);
    while (!atomic_load(&st->sub_stop)) {
        char why[160] = "";
        bool moved;
        redisContext *ctx = rs_connect_master(st, st->cfg.connect_timeout_ms, why, sizeof(why));

        if (ctx && subscribe(st, ctx, wake, why, sizeof(why)) != 0) {
            redisFree(ctx);
            ctx = NULL;
        }
        if (!ctx) {
            /* Said to the breaker too, so that /readyz turns without
             * waiting for a request to find out. */
            rs_breaker_trip(st, why);
            if (!lost_logged)
                dz_log(DZ_LOG_WARN, "store_subscriber_down",
                       "redis subscriber: %s; near cache off, wake-ups from other instances "
                       "wait for the pollers",
                       why);
            lost_logged = true;
            nap(st, backoff);
            backoff = backoff * 2 > st->cfg.retry_max_ms ? st->cfg.retry_max_ms : backoff * 2;
            continue;
        }
        if (lost_logged)
            dz_log(DZ_LOG_INFO, "store_subscriber_up", "redis subscriber connected again");
        lost_logged = false;
        backoff = 100;
        /* A master answers: calls may go again (and /readyz turns back
         * without a request having to probe). */
        rs_breaker_ok(st);
        if (st->cache)
            rs_cache_set_usable(st->cache, true);
        moved = listen_loop(st, ctx, wake, strlen(wake));
        if (st->cache)
            rs_cache_set_usable(st->cache, false);
        if (moved) {
            /* Left for the new master (+switch-master): not a loss. */
            dz_log(DZ_LOG_INFO, "store_subscriber_moved",
                   "redis subscriber: following the master the sentinels switched to");
        } else if (!atomic_load(&st->sub_stop)) {
            dz_log(DZ_LOG_WARN, "store_subscriber_down",
                   "redis subscriber: connection lost (%s); reconnecting",
                   ctx->errstr[0] ? ctx->errstr : "no answer to PING");
            lost_logged = true;
            rs_breaker_trip(st, ctx->errstr[0] ? ctx->errstr : "no answer to PING");
        }
        redisFree(ctx);
    }
    return NULL;
}

int rs_sub_start(struct rs_store *st)
{
    atomic_store(&st->sub_stop, false);
    if (pthread_create(&st->sub_thread, NULL, sub_main, st) != 0)
        return DZ_ERR_NOMEM;
    st->sub_running = true;
    return 0;
}

void rs_sub_stop(struct rs_store *st)
{
    if (!st->sub_running)
        return;
    atomic_store(&st->sub_stop, true);
    pthread_join(st->sub_thread, NULL);
    st->sub_running = false;
}
