/*
 * store_redis_aconn.c - the asynchronous connections of the Redis backend
 * (store_redis_int.h rs_acall): one hiredis redisAsyncContext per worker
 * loop, attached to that loop with hiredis's libev adapter, so that a call
 * on the forward path costs the loop no wait at all.
 *
 * Each thread that calls gets its own connection (thread-local, like the
 * blocking ones of store_redis_conn.c: a worker loop runs on one thread), to
 * the master's address as last discovered through the sentinels (the
 * subscriber and the blocking connections ask them; asking here would
 * block).  AUTH, ROLE and INFO memory are pipelined ahead of the first
 * command: the answers come in order, so no command's answer is used before
 * ROLE said "master" and INFO said the server evicts nothing.
 *
 * Every command has a timer on the loop (the command timeout; the connect
 * timeout more while connecting).  When it fires the caller hears
 * DZ_ERR_UNAVAILABLE, the breaker trips and the connection is dropped (a
 * late answer must not be taken for the next command's).  The breaker is
 * the one the blocking calls use: open, calls answer at once.
 *
 * Ownership: an op is owned by hiredis while a callback of it is pending,
 * and by its timer otherwise; it is freed when the caller has its answer
 * and hiredis no longer holds it.  hiredis calls every pending callback
 * with no reply when a connection goes away, so none is lost.
 */
#include "state/store_redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>

#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

#define ARGS_MAX 16

/* One asynchronous connection of one thread (its loop). */
struct rs_aconn {
    struct rs_store *st;
    struct ev_loop *loop;
    redisAsyncContext *ac; /* NULL: not connected */
    unsigned gen;          /* breaker generation it connected in */
    bool master;           /* ROLE answered "master" on ac */
    bool dead;             /* ac failed: drop it at the next call */
    struct rs_aconn *next;
    struct rs_flight *flights[RS_FLIGHT_BUCKETS]; /* GETs in flight (store_redis_flight.c) */
};

struct aop {
    struct rs_store *st;
    struct rs_aconn *conn;
    rs_amap_fn map;
    rs_adone_fn done;
    void *arg;
    int mapped; /* map's answer, held while WAIT runs */
    ev_timer timer;
    uint64_t sent_us;
    bool probe;
    bool wait;
    bool answered;   /* fn was called */
    bool in_hiredis; /* a hiredis callback of it is pending */
    bool answering;  /* inside done(): a nested op_answer must not free it */
    bool retried;    /* NOSCRIPT: resent as EVAL */
    const char *script;
    int argc;
    const char *argv[ARGS_MAX];
    size_t lens[ARGS_MAX];
    char *args; /* the copies argv points into */
};

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void op_free(struct aop *op)
{
    free(op->args);
    free(op);
}

/* Give the caller its answer (once) and free the op unless hiredis still
 * holds it.  done() may start another call that drops the connection
 * (a probe, a dead connection); hiredis then answers this op's pending
 * callback with no reply from inside done(), and that nested op_answer
 * must leave the freeing to this one. */
static void op_answer(struct aop *op, int rc)
{
    struct rs_store *st = op->st;

    if (!op->answered) {
        op->answered = true;
        if (!atomic_load(&st->closing))
            ev_timer_stop(op->conn->loop, &op->timer);
        atomic_fetch_sub(&st->inflight, 1);
        if (op->probe)
            rs_breaker_probe_end(st);
        if (!atomic_load(&st->closing)) {
            op->answering = true;
            op->done(op->arg, rc);
            op->answering = false;
        }
    }
    if (!op->in_hiredis && !op->answering)
        op_free(op);
}

/* Drop the thread's connection (not from inside one of its callbacks):
 * hiredis answers every pending op with no reply. */
static void conn_drop(struct rs_aconn *c)
{
    redisAsyncContext *ac = c->ac;

    if (!ac)
        return;
    c->ac = NULL;
    c->master = false;
    c->dead = false;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void fail(struct aop *op, const char *why)
{
    if (op->answered)
        return;
    if (!atomic_load(&op->st->closing))
        rs_breaker_fail(op->st, why, op->probe);
    op_answer(op, DZ_ERR_UNAVAILABLE);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct aop *op = t->data;
    struct rs_aconn *c = op->conn;

    (void)loop;
    (void)revents;
    fail(op, "no answer within the command timeout");
    /* A late answer must not be taken for another command's: the
     * connection goes (every other op on it is answered unavailable). */
    if (c->ac && !(c->ac->c.flags & REDIS_IN_CALLBACK))
        conn_drop(c);
    else
        c->dead = true;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rs_aconn *c = ac->data;

    if (status != REDIS_OK && c && c->ac == ac) {
        /* hiredis frees ac after this and answers its ops with no reply. */
        c->ac = NULL;
        c->master = false;
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rs_aconn *c = ac->data;

    (void)status;
    if (c && c->ac == ac) {
        c->ac = NULL;
        c->master = false;
    }
}

static void on_role(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rs_aconn *c = ac->data;
    redisReply *r = reply;

    (void)privdata;
    if (!c || c->ac != ac)
        return;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0) {
        c->master = true;
        return;
    }
    /* A replica (a failover under way, a stale address): every command
     * queued behind is answered unavailable (on_reply sees !master). */
    c->dead = true;
    if (r)
        rs_breaker_fail(c->st, "the async connection reached a replica", false);
}

/* After ROLE: a server that may evict keys is no master to use either
 * (rs_evicts); the commands queued behind are answered unavailable. */
static void on_policy(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rs_aconn *c = ac->data;
    char why[160];

    (void)privdata;
    if (!c || c->ac != ac || !reply || !rs_evicts(reply, why, sizeof(why)))
        return;
    c->master = false;
    c->dead = true;
    rs_breaker_fail(c->st, why, false);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rs_aconn *c = ac->data;
    redisReply *r = reply;

    (void)privdata;
    if (c && c->ac == ac && r && r->type == REDIS_REPLY_ERROR) {
        char why[96];

        /* Redis's own words name no secret. */
        snprintf(why, sizeof(why), "AUTH refused: %.60s", r->str);
        c->dead = true;
        rs_breaker_fail(c->st, why, false);
    }
}

static int conn_open(struct rs_aconn *c, char *why, size_t why_cap)
{
    struct rs_store *st = c->st;
    char host[RS_HOST_MAX];
    int port;
    redisAsyncContext *ac;

    if (rs_master_addr(st, host, sizeof(host), &port) != 0) {
        snprintf(why, why_cap, "the master is not known yet");
        return DZ_ERR_NOTFOUND;
    }
    ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        snprintf(why, why_cap, "%s:%d: %s", host, port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return DZ_ERR_UNAVAILABLE;
    }
    ac->data = c;
    if (redisLibevAttach(c->loop, ac) != REDIS_OK) {
        snprintf(why, why_cap, "cannot attach to the loop");
        redisAsyncFree(ac);
        return DZ_ERR_UNAVAILABLE;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->master = false;
    c->dead = false;
    c->gen = atomic_load(&st->gen);
    if (st->password) {
        const char *argv[] = {"AUTH", st->username ? st->username : st->password, st->password};
        redisAsyncCommandArgv(ac, on_auth, NULL, st->username ? 3 : 2, argv, NULL);
    }
    {
        const char *argv[] = {"ROLE"};
        redisAsyncCommandArgv(ac, on_role, NULL, 1, argv, NULL);
    }
    {
        const char *argv[] = {"INFO", "memory"};
        redisAsyncCommandArgv(ac, on_policy, NULL, 2, argv, NULL);
    }
    atomic_fetch_add(&st->reconnects, 1);
    return 0;
}

static struct rs_aconn *thread_aconn(struct rs_store *st, struct ev_loop *loop)
{
    struct rs_aconn *c = pthread_getspecific(st->atls);

    if (c && c->loop != loop) {
        /* Another loop on this thread (tests): the old one's connection is
         * left to be freed with the store. */
        pthread_setspecific(st->atls, NULL);
        c = NULL;
    }
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->st = st;
        c->loop = loop;
        pthread_mutex_lock(&st->lock);
        c->next = st->aconns;
        st->aconns = c;
        pthread_mutex_unlock(&st->lock);
        pthread_setspecific(st->atls, c);
    }
    return c;
}

static int send_op(struct aop *op);

static void on_wait(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct aop *op = privdata;
    redisReply *r = reply;
    struct rs_store *st = op->st;

    (void)ac;
    op->in_hiredis = false;
    if (op->answered) {
        op_answer(op, 0);
        return;
    }
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < (long long)st->cfg.wait_replicas) {
        if (!r) {
            fail(op, "connection lost");
            return;
        }
        atomic_fetch_add(&st->errors, 1);
        dz_log(DZ_LOG_WARN, "store_wait_short",
               "redis: a single-use write reached %lld of %u replicas in time; refused",
               r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL, st->cfg.wait_replicas);
        op_answer(op, DZ_ERR_UNAVAILABLE);
        return;
    }
    op_answer(op, op->mapped);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct aop *op = privdata;
    struct rs_aconn *c = ac->data;
    redisReply *r = reply;
    struct rs_store *st = op->st;

    op->in_hiredis = false;
    if (op->answered) {
        op_answer(op, 0); /* timed out before: only free */
        return;
    }
    if (!r || !c || !c->master) {
        fail(op, r ? "not a master" : (ac->errstr[0] ? ac->errstr : "connection lost"));
        return;
    }
    if (rs_reply_unavailable(r)) {
        char why[128];

        snprintf(why, sizeof(why), "the server cannot take the call now (%.60s)", r->str);
        c->dead = true;
        fail(op, why);
        return;
    }
    if (op->script && !op->retried && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        op->retried = true;
        op->argv[0] = "EVAL";
        op->lens[0] = 4;
        op->argv[1] = op->script;
        op->lens[1] = strlen(op->script);
        if (send_op(op) != 0)
            fail(op, "connection lost");
        return;
    }
    dz_histo_observe(&st->latency, now_us() - op->sent_us);
    rs_breaker_ok(st);
    op->mapped = op->map(op->arg, r);
    if (op->wait) {
        /* WAIT after the answer: it waits for every write this connection
         * made before it.  The answer is held until then, so a write the
         * replicas did not take is never reported done. */
        char n[16], ms[24];
        const char *argv[] = {"WAIT", n, ms};

        snprintf(n, sizeof(n), "%u", st->cfg.wait_replicas);
        snprintf(ms, sizeof(ms), "%llu",
                 (unsigned long long)(st->cfg.command_timeout_ms / 2
                                          ? st->cfg.command_timeout_ms / 2
                                          : 1));
        if (redisAsyncCommandArgv(ac, on_wait, op, 3, argv, NULL) != REDIS_OK) {
            fail(op, "connection lost");
            return;
        }
        op->in_hiredis = true;
        return;
    }
    op_answer(op, op->mapped);
}

static int send_op(struct aop *op)
{
    struct rs_aconn *c = op->conn;

    if (!c->ac ||
        redisAsyncCommandArgv(c->ac, on_reply, op, op->argc, op->argv, op->lens) != REDIS_OK)
        return DZ_ERR_UNAVAILABLE;
    op->in_hiredis = true;
    op->sent_us = now_us();
    return 0;
}

static int op_copy(struct aop *op, int argc, const char **argv, const size_t *lens)
{
    size_t total = 0, at = 0;

    if (argc > ARGS_MAX)
        return DZ_ERR_TOOBIG;
    for (int i = 0; i < argc; i++)
        total += lens[i];
    op->args = malloc(total ? total : 1);
    if (!op->args)
        return DZ_ERR_NOMEM;
    for (int i = 0; i < argc; i++) {
        memcpy(op->args + at, argv[i], lens[i]);
        op->argv[i] = op->args + at;
        op->lens[i] = lens[i];
        at += lens[i];
    }
    op->argc = argc;
    return 0;
}

void rs_acall(struct rs_store *st, struct ev_loop *loop, int argc, const char **argv,
              const size_t *lens, const char *script, bool wait, rs_amap_fn map, rs_adone_fn done,
              void *arg)
{
    struct rs_aconn *c;
    struct aop *op;
    char why[RS_HOST_MAX + 128];
    int allow;
    int rc;
    bool in_cb;

    allow = rs_breaker_allow(st);
    if (!allow) {
        atomic_fetch_add(&st->errors, 1);
        done(arg, DZ_ERR_UNAVAILABLE);
        return;
    }
    c = thread_aconn(st, loop);
    op = calloc(1, sizeof(*op));
    if (!c || !op || op_copy(op, argc, argv, lens) != 0) {
        if (op)
            op_free(op);
        if (allow == 2)
            rs_breaker_probe_end(st);
        done(arg, DZ_ERR_NOMEM);
        return;
    }
    op->st = st;
    op->conn = c;
    op->map = map;
    op->done = done;
    op->arg = arg;
    op->probe = allow == 2;
    op->wait = wait && st->cfg.wait_replicas > 0;
    op->script = script;
    atomic_fetch_add(&st->inflight, 1);
    in_cb = c->ac && (c->ac->c.flags & REDIS_IN_CALLBACK);
    /* A connection of an older breaker generation, or one that failed,
     * is replaced; not from inside its own callback (a chained call): that
     * call fails instead, the next one reconnects. */
    if (c->ac && (c->dead || c->gen != atomic_load(&st->gen))) {
        if (in_cb) {
            fail(op, "connection being replaced");
            return;
        }
        conn_drop(c);
    }
    ev_timer_init(&op->timer, on_timeout,
                  (double)(st->cfg.command_timeout_ms + (c->ac ? 0 : st->cfg.connect_timeout_ms)) /
                      1000.0,
                  0.);
    op->timer.data = op;
    if (!c->ac && (rc = conn_open(c, why, sizeof(why))) != 0) {
        if (rc == DZ_ERR_NOTFOUND) {
            /* Not a failure of Redis: the sentinels have not been asked
             * yet (just started).  Unavailable, without tripping. */
            atomic_fetch_add(&st->errors, 1);
            op_answer(op, DZ_ERR_UNAVAILABLE);
            return;
        }
        fail(op, why);
        return;
    }
    ev_timer_start(loop, &op->timer);
    if (send_op(op) != 0) {
        c->dead = true;
        fail(op, "cannot send");
    }
}

struct rs_flight **rs_aconn_flights(struct rs_store *st, struct ev_loop *loop)
{
    struct rs_aconn *c = thread_aconn(st, loop);

    return c ? c->flights : NULL;
}

int rs_aconn_init(struct rs_store *st)
{
    if (pthread_key_create(&st->atls, NULL) != 0)
        return DZ_ERR_NOMEM;
    st->atls_ready = true;
    return 0;
}

void rs_aconn_cleanup(struct rs_store *st)
{
    struct rs_aconn *c = st->aconns;

    if (!st->atls_ready)
        return;
    atomic_store(&st->closing, true);
    while (c) {
        struct rs_aconn *n = c->next;

        if (c->ac) {
            /* The loop may be gone already: unhook the adapter so freeing
             * the context does not touch it, and free its events here. */
            redisAsyncContext *ac = c->ac;
            void *ev = ac->ev.data;

            ac->ev.addRead = ac->ev.delRead = NULL;
            ac->ev.addWrite = ac->ev.delWrite = NULL;
            ac->ev.cleanup = NULL;
            ac->ev.data = NULL;
            ac->data = NULL;
            c->ac = NULL;
            redisAsyncFree(ac);
            free(ev);
        }
        rs_flight_drop_all(c->flights);
        free(c);
        c = n;
    }
    st->aconns = NULL;
    pthread_key_delete(st->atls);
    st->atls_ready = false;
}
