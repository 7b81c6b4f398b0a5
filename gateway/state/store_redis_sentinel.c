/*
 * store_redis_sentinel.c - follow the sentinels' +switch-master
 * (store_redis_int.h rs_sentinel_start): one thread per store, with
 * store.redis.sentinels only, subscribed to "+switch-master" on one sentinel
 * at a time (the next one when it goes silent or away).
 *
 * When the sentinels announce that our master moved, the new address is
 * taken at once: every connection (blocking, asynchronous, the subscriber)
 * is of an older generation and reconnects to it on its next use, instead
 * of each finding out from an error (a refused connection, READONLY from a
 * demoted master).  The connections still ask the sentinels and check ROLE
 * when they connect, so a lost or forged-looking event costs nothing but a
 * reconnection.  Logged as store_master_switched, counted in
 * darvaza_store_master_switches_total.
 */
#include "state/store_redis_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

#define POLL_MS 100
#define PING_EVERY_MS 1000u

static void nap(struct rs_store *st, uint64_t ms)
{
    uint64_t end = rs_now_ms() + ms;

    while (!atomic_load(&st->sent_stop) && rs_now_ms() < end) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);

    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

/* "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>" */
static void on_switch(struct rs_store *st, const redisReply *m, const char *from)
{
    char name[256], old_ip[RS_HOST_MAX], new_ip[RS_HOST_MAX];
    int old_port, new_port;

    if (m->type != REDIS_REPLY_STRING ||
        sscanf(m->str, "%255s %255s %d %255s %d", name, old_ip, &old_port, new_ip, &new_port) !=
            5 ||
        strcmp(name, st->master_name) != 0 || new_port <= 0 || new_port > 65535)
        return;
    pthread_mutex_lock(&st->lock);
    snprintf(st->master_host, sizeof(st->master_host), "%s", new_ip);
    st->master_port = new_port;
    pthread_mutex_unlock(&st->lock);
    atomic_fetch_add(&st->switches, 1);
    /* Every connection made before is of an older generation now. */
    atomic_fetch_add(&st->gen, 1);
    dz_log(DZ_LOG_WARN, "store_master_switched",
           "redis: sentinel %s announced +switch-master: the master is now %s:%d (was %s:%d)", from,
           new_ip, new_port, old_ip, old_port);
}

/* Read one sentinel's events until it fails, goes silent, or we stop. */
static void watch(struct rs_store *st, redisContext *ctx, const char *from)
{
    uint64_t last_ping = rs_now_ms();
    uint64_t pong_due = 0;

    while (!atomic_load(&st->sent_stop)) {
        redisReply *r = NULL;
        struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
        uint64_t now;

        if (redisGetReplyFromReader(ctx, (void **)&r) != REDIS_OK)
            return;
        if (r) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && str_is(r->element[0], "pong"))
                pong_due = 0;
            else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                     str_is(r->element[0], "message") && str_is(r->element[1], "+switch-master"))
                on_switch(st, r->element[2], from);
            freeReplyObject(r);
            continue;
        }
        now = rs_now_ms();
        if (pong_due && now > pong_due)
            return;
        if (!pong_due && now - last_ping >= PING_EVERY_MS) {
            int done = 0;

            if (redisAppendCommand(ctx, "PING") != REDIS_OK)
                return;
            while (!done)
                if (redisBufferWrite(ctx, &done) != REDIS_OK)
                    return;
            last_ping = now;
            pong_due = now + st->cfg.command_timeout_ms + 1000u;
        }
        if (poll(&p, 1, POLL_MS) > 0 && redisBufferRead(ctx) != REDIS_OK)
            return;
    }
}

static redisContext *subscribe_to(struct rs_store *st, size_t i)
{
    const struct dz_store_redis_endpoint *e = &st->cfg.sentinels[i];
    uint64_t ms = st->cfg.connect_timeout_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout(e->host, e->port, tv);
    redisReply *r;

    if (!ctx || ctx->err) {
        if (ctx)
            redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    r = redisCommand(ctx, "SUBSCRIBE +switch-master");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
        return NULL;
    }
    freeReplyObject(r);
    return ctx;
}

static void *sentinel_main(void *arg)
{
    struct rs_store *st = arg;
    uint64_t backoff = 100;
    size_t i = 0;

    while (!atomic_load(&st->sent_stop)) {
        const struct dz_store_redis_endpoint *e = &st->cfg.sentinels[i];
        redisContext *ctx = subscribe_to(st, i);
        char from[RS_HOST_MAX + 8];

        snprintf(from, sizeof(from), "%s:%d", e->host, e->port);
        i = (i + 1) % st->cfg.n_sentinels;
        if (!ctx) {
            /* Not a failure of the store: the connections still find the
             * master by asking; only the event is late.  Try the next. */
            nap(st, backoff);
            backoff = backoff * 2 > st->cfg.retry_max_ms ? st->cfg.retry_max_ms : backoff * 2;
            continue;
        }
        backoff = 100;
        dz_log(DZ_LOG_DEBUG, "store_sentinel_watch", "redis: following +switch-master on %s", from);
        watch(st, ctx, from);
        redisFree(ctx);
    }
    return NULL;
}

int rs_sentinel_start(struct rs_store *st)
{
    if (!st->cfg.n_sentinels)
        return 0;
    atomic_store(&st->sent_stop, false);
    if (pthread_create(&st->sent_thread, NULL, sentinel_main, st) != 0)
        return DZ_ERR_NOMEM;
    st->sent_running = true;
    return 0;
}

void rs_sentinel_stop(struct rs_store *st)
{
    if (!st->sent_running)
        return;
    atomic_store(&st->sent_stop, true);
    pthread_join(st->sent_thread, NULL);
    st->sent_running = false;
}
