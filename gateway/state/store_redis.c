/*
 * store_redis.c - the ops of the Redis backend (store_redis.h); the key
 * layout and the scripts that keep each op atomic.
 *
 * Layout (P = store.redis.prefix):
 *   P ns ":" name     an entry (name: store_redis_seal.c), with its TTL (PX)
 *   P "#i:" ns        sorted set of the namespace's entries, scored by
 *                     their expiry (unix ms on the Redis clock)
 *   P "#k:" kind      set of the "#i:" keys of the kind's namespaces
 *   P "#wake"         the channel of wake-ups
 * Namespaces starting with '#' are refused, so no entry can collide with
 * the bookkeeping.
 *
 * Atomicity: every op that creates, removes or re-times an entry is one Lua
 * script (EVALSHA), so the entry and its index change together and the
 * per-kind quota is checked and taken in one step across every instance:
 * the script drops the expired members of each of the kind's namespaces
 * (ZREMRANGEBYSCORE, O(log n + expired)) and counts the rest (ZCARD).
 * The cost: one sorted-set member per entry (about 100 bytes), and a few
 * O(log n) steps on each creation; reads (GET, PTTL) are plain commands.
 * A take is GET + DEL in one script, so exactly one caller of the whole
 * cluster gets a single-use value.
 */
#include "state/store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "state/store_redis_int.h"

#include "base/compat.h"

#define KEY_BUF_MAX (RS_PREFIX_MAX + 80u + 2u * 64u * 1024u)
#define VAL_BUF_MAX (64u * 1024u + 64u)
#define TTL_MAX_MS 3153600000000ULL /* a hundred years: far inside Lua's exact integers */

/* ---- scripts */

#define LUA_NOW                                                                                    \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* n: live entries of the kind (KEYS[3]) after dropping the expired ones. */
#define LUA_KIND_COUNT                                                                             \
    "redis.call('SADD', KEYS[3], KEYS[2])\n"                                                       \
    "local n = 0\n"                                                                                \
    "for _, z in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"                                     \
    "  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)\n"                                           \
    "  n = n + redis.call('ZCARD', z)\n"                                                           \
    "end\n"

enum script_id { S_PUT, S_INCR, S_TAKE, S_DEL, S_DEL_IF, S_TOUCH, S_COUNT, S_N };

/* KEYS: entry, its namespace's index, its kind's set.  Put and incr answer
 * alike (script_answer): {code, value, kind count or -1}, code 0 ok,
 * 1 exists, 2 full, 3 not a counter, 4 overflow.
 * put ARGV: value, ttl, nx, max (value 0) */
static const char *const scripts[S_N] = {
    [S_PUT] = LUA_NOW "local ttl = tonumber(ARGV[2])\n"
                      "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
                      "  if ARGV[3] == '1' then return {1, 0, -1} end\n"
                      "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
                      "  redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])\n"
                      "  return {0, 0, -1}\n"
                      "end\n" LUA_KIND_COUNT "if n >= tonumber(ARGV[4]) then return {2, 0, n} end\n"
                      "redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
                      "redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])\n"
                      "return {0, 0, n + 1}\n",
    /* incr ARGV: ttl, max, by.  The clock is read only to create: counting
     * on costs INCRBY alone. */
    [S_INCR] =
        "local ttl = tonumber(ARGV[1])\n"
        "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
        "  local r = redis.pcall('INCRBY', KEYS[1], ARGV[3])\n"
        "  if type(r) == 'table' and r.err then\n"
        "    if string.find(r.err, 'overflow') then return {4, 0, -1} end\n"
        "    return {3, 0, -1}\n"
        "  end\n"
        "  return {0, r, -1}\n"
        "end\n" LUA_NOW LUA_KIND_COUNT "if n >= tonumber(ARGV[2]) then return {2, 0, n} end\n"
        "redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)\n"
        "redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])\n"
        "return {0, tonumber(ARGV[3]), n + 1}\n",
    /* KEYS: entry, index.  ARGV: room (plain bytes the caller can take),
     * overhead of sealing -> {0} absent | {1, value} | {2} too big (kept) */
    [S_TAKE] = "local v = redis.call('GET', KEYS[1])\n"
               "if not v then return {0} end\n"
               "local plain = #v\n"
               "local c = string.byte(v, 1)\n"
               "if not (c == 45 or (c and c >= 48 and c <= 57)) then\n"
               "  plain = #v - tonumber(ARGV[2])\n"
               "end\n"
               "if plain > tonumber(ARGV[1]) then return {2} end\n"
               "redis.call('DEL', KEYS[1])\n"
               "redis.call('ZREM', KEYS[2], KEYS[1])\n"
               "return {1, v}\n",
    [S_DEL] = "local n = redis.call('DEL', KEYS[1])\n"
              "redis.call('ZREM', KEYS[2], KEYS[1])\n"
              "return n\n",
    /* KEYS: entry, index.  ARGV: the raw (sealed) value the caller read and
     * opened -> 1 deleted | 0 absent | 2 another value (kept).  Sealing is
     * not reproducible (a fresh nonce each time), so the caller compares
     * the opened value, and this the very bytes it opened: a value written
     * since the read differs even if its plain text is the same. */
    [S_DEL_IF] = "local v = redis.call('GET', KEYS[1])\n"
                 "if not v then return 0 end\n"
                 "if v ~= ARGV[1] then return 2 end\n"
                 "redis.call('DEL', KEYS[1])\n"
                 "redis.call('ZREM', KEYS[2], KEYS[1])\n"
                 "return 1\n",
    /* ARGV: ttl -> 1 touched | 0 absent */
    [S_TOUCH] = LUA_NOW "local ttl = tonumber(ARGV[1])\n"
                        "if redis.call('PEXPIRE', KEYS[1], ttl) == 0 then return 0 end\n"
                        "redis.call('ZADD', KEYS[2], 'XX', now + ttl, KEYS[1])\n"
                        "return 1\n",
    /* KEYS: index -> live entries of the namespace */
    [S_COUNT] = LUA_NOW "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
                        "return redis.call('ZCARD', KEYS[1])\n",
};

static char script_sha[S_N][41];

static void scripts_hash(void)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < S_N; i++) {
        unsigned char d[20];
        unsigned int n = 0;

        EVP_Digest(scripts[i], strlen(scripts[i]), d, &n, EVP_sha1(), NULL);
        for (int j = 0; j < 20; j++) {
            script_sha[i][2 * j] = hex[d[j] >> 4];
            script_sha[i][2 * j + 1] = hex[d[j] & 15];
        }
        script_sha[i][40] = '\0';
    }
}

/* The argv of EVALSHA script nkeys args... into argv/argl (12 slots);
 * nk holds the key count's text.  Returns argc. */
static int eval_argv(enum script_id id, int nkeys, int nargs, const char **args, const size_t *lens,
                     const char **argv, size_t *argl, char nk[4])
{
    snprintf(nk, 4, "%d", nkeys);
    argv[0] = "EVALSHA";
    argl[0] = 7;
    argv[1] = script_sha[id];
    argl[1] = 40;
    argv[2] = nk;
    argl[2] = strlen(nk);
    for (int i = 0; i < nkeys + nargs; i++) {
        argv[3 + i] = args[i];
        argl[3 + i] = lens[i];
    }
    return 3 + nkeys + nargs;
}

/* EVALSHA, and EVAL once when this server has not seen the script yet. */
static int eval(struct rs_store *st, enum script_id id, int nkeys, int nargs, const char **args,
                const size_t *lens, bool wait, redisReply **out)
{
    const char *argv[12];
    size_t argl[12];
    char nk[4];
    int argc = eval_argv(id, nkeys, nargs, args, lens, argv, argl, nk);
    int rc;

    rc = rs_call(st, argc, argv, argl, wait, out);
    if (rc == 0 && (*out)->type == REDIS_REPLY_ERROR && strncmp((*out)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*out);
        *out = NULL;
        argv[0] = "EVAL";
        argl[0] = 4;
        argv[1] = scripts[id];
        argl[1] = strlen(scripts[id]);
        rc = rs_call(st, argc, argv, argl, wait, out);
    }
    return rc;
}

/* The same on the loop's asynchronous connection (NOSCRIPT handled there). */
static void eval_async(struct rs_store *st, struct ev_loop *loop, enum script_id id, int nkeys,
                       int nargs, const char **args, const size_t *lens, bool wait, rs_amap_fn map,
                       rs_adone_fn done, void *arg)
{
    const char *argv[12];
    size_t argl[12];
    char nk[4];
    int argc = eval_argv(id, nkeys, nargs, args, lens, argv, argl, nk);

    rs_acall(st, loop, argc, argv, argl, scripts[id], wait, map, done, arg);
}

/* An answer no script gives: fail closed, and say so (never the values). */
static int unexpected(const char *op, const redisReply *r)
{
    dz_log(DZ_LOG_WARN, "store_error", "redis: unexpected answer to %s (%.80s)", op,
           r && r->type == REDIS_REPLY_ERROR ? r->str : "wrong type");
    return DZ_ERR_UNAVAILABLE;
}

/* ---- keys */

struct keys {
    struct dz_buf entry, index, kind;
};

static int keys_make(struct rs_store *st, const char *ns, const void *key, size_t key_len,
                     enum dz_store_kind kind, struct keys *k)
{
    int rc;

    dz_buf_init(&k->entry, KEY_BUF_MAX);
    dz_buf_init(&k->index, RS_PREFIX_MAX + 80);
    dz_buf_init(&k->kind, RS_PREFIX_MAX + 80);
    if (ns[0] == '#')
        return DZ_ERR_INVAL;
    if ((rc = rs_key(st, ns, key, key_len, &k->entry)) != 0 ||
        (rc = dz_buf_appendf(&k->index, "%s#i:%s", st->prefix, ns)) != 0 ||
        (rc = dz_buf_appendf(&k->kind, "%s#k:%s", st->prefix, dz_store_kind_name(kind))) != 0)
        return rc;
    return 0;
}

static void keys_cleanup(struct keys *k)
{
    dz_buf_cleanup(&k->entry);
    dz_buf_cleanup(&k->index);
    dz_buf_cleanup(&k->kind);
}

static const char *num(char *buf, size_t cap, unsigned long long v)
{
    snprintf(buf, cap, "%llu", v);
    return buf;
}

static uint64_t clamp_ttl(uint64_t ttl_ms)
{
    return ttl_ms > TTL_MAX_MS ? TTL_MAX_MS : ttl_ms;
}

/* Writes a failover must not lose wait for the replicas (store.redis.
 * wait_replicas): single-use marks and the lockout's counters and locks
 * (put, incr), every take (a consumed nonce, QR answer or mobile result
 * must not come back unused), the delete of a session (a logout must
 * not come back) and every durable delete (a revocation must not come
 * back).  Losing anything else costs a retry, not a guarantee. */
static bool must_wait(enum dz_store_kind kind)
{
    return kind == DZ_STORE_CHALLENGES || kind == DZ_STORE_FAILURES;
}

static bool is_sess(const char *ns)
{
    return strcmp(ns, "sess") == 0;
}

static long long elem_int(const redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : -1;
}

static void note_count(struct rs_store *st, enum dz_store_kind kind, long long n)
{
    if (n >= 0)
        atomic_store_explicit(&st->count[kind], (size_t)n, memory_order_relaxed);
}

/* The answer of the put and incr scripts, {code, value, kind count or -1}:
 * the rc, and *value (may be NULL) for an ok. */
static int script_answer(struct rs_store *st, enum dz_store_kind kind, const char *op,
                         const redisReply *r, int64_t *value)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return unexpected(op, r);
    note_count(st, kind, elem_int(r, 2));
    switch (elem_int(r, 0)) {
    case 0:
        if (value)
            *value = r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 0;
        return 0;
    case 1:
        return DZ_ERR_EXISTS;
    case 2:
        return DZ_ERR_FULL;
    case 3:
        return DZ_ERR_INVAL;
    case 4:
        return DZ_ERR_TOOBIG;
    default:
        return unexpected(op, r);
    }
}

/* Open a GET's answer r (a string) into out; an entry that does not open
 * is refused, never taken for absent. */
static int open_answer(struct rs_store *st, const char *ns, const struct dz_buf *rk,
                       const redisReply *r, struct dz_buf *out)
{
    int rc = rs_open(st, rk->data, rk->len, r->str, r->len, out);

    if (rc == DZ_ERR_DENIED) {
        dz_log(DZ_LOG_WARN, "store_unsealed",
               "redis: an entry of %s does not open with this value key; treated as absent"
               " is not safe, refused",
               ns);
        rc = DZ_ERR_UNAVAILABLE;
    }
    return rc;
}

/* A GET's answer: the opened value appended to out (and cached when the
 * namespace is, and no invalidation came since seq). */
static int get_answer(struct rs_store *st, const char *ns, const struct dz_buf *rk, bool cached,
                      uint64_t seq, redisReply *r, struct dz_buf *out)
{
    size_t at = out->len;
    int rc;

    if (r->type == REDIS_REPLY_NIL)
        return DZ_ERR_NOTFOUND;
    if (r->type != REDIS_REPLY_STRING)
        return unexpected("get", r);
    rc = open_answer(st, ns, rk, r, out);
    dz_secret_wipe(r->str, r->len);
    if (rc == 0 && cached)
        rs_cache_put(st->cache, seq, rk->data, rk->len, out->data + at, out->len - at, 0);
    return rc;
}

static int touch_answer(const redisReply *r)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected("touch", r);
    return r->integer == 1 ? 0 : DZ_ERR_NOTFOUND;
}

static int del_answer(const redisReply *r)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected("del", r);
    return r->integer > 0 ? 0 : DZ_ERR_NOTFOUND;
}

/* ---- ops */

static int r_put(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                 size_t key_len, const void *val, size_t val_len, uint64_t ttl_ms, int flags)
{
    struct rs_store *st = impl;
    struct dz_buf v;
    struct keys k;
    redisReply *r = NULL;
    char ttl[24], max[24];
    bool nx = (flags & DZ_STORE_NX) != 0;
    int rc;

    dz_buf_init(&v, VAL_BUF_MAX);
    rc = keys_make(st, ns, key, key_len, kind, &k);
    if (rc)
        goto out;
    rc = rs_seal(st, k.entry.data, k.entry.len, val, val_len, &v);
    if (rc)
        goto out;
    {
        const char *a[] = {k.entry.data,
                           k.index.data,
                           k.kind.data,
                           v.data ? v.data : "",
                           num(ttl, sizeof(ttl), clamp_ttl(ttl_ms)),
                           nx ? "1" : "0",
                           num(max, sizeof(max), st->max[kind])};
        size_t l[] = {k.entry.len, k.index.len, k.kind.len, v.len, strlen(a[4]), 1, strlen(a[6])};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, k.entry.data, k.entry.len);
        rc = eval(st, S_PUT, 3, 4, a, l, must_wait(kind), &r);
    }
    if (rc)
        goto out;
    rc = script_answer(st, kind, "put", r, NULL);
out:
    if (r)
        freeReplyObject(r);
    dz_buf_wipe(&v);
    keys_cleanup(&k);
    return rc;
}

static int r_get(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out)
{
    struct rs_store *st = impl;
    struct dz_buf rk;
    redisReply *r = NULL;
    bool cached = st->cache && is_sess(ns);
    uint64_t seq = 0;
    int rc;

    dz_buf_init(&rk, KEY_BUF_MAX);
    if (ns[0] == '#') {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    if ((rc = rs_key(st, ns, key, key_len, &rk)) != 0)
        goto out;
    if (cached) {
        if (rs_cache_get(st->cache, rk.data, rk.len, out) == 0)
            goto out;
        seq = rs_cache_seq(st->cache);
    }
    {
        const char *argv[] = {"GET", rk.data};
        size_t l[] = {3, rk.len};

        rc = rs_call(st, 2, argv, l, false, &r);
    }
    if (rc)
        goto out;
    rc = get_answer(st, ns, &rk, cached, seq, r, out);
out:
    if (r)
        freeReplyObject(r);
    dz_buf_cleanup(&rk);
    return rc;
}

static int r_take(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out)
{
    struct rs_store *st = impl;
    enum dz_store_kind kind = dz_store_kind_of(ns);
    struct keys k;
    redisReply *r = NULL;
    char room[24], over[24];
    int rc;

    rc = keys_make(st, ns, key, key_len, kind, &k);
    if (rc)
        goto out;
    {
        const char *a[] = {k.entry.data, k.index.data, num(room, sizeof(room), out->max - out->len),
                           num(over, sizeof(over), rs_seal_overhead(st))};
        size_t l[] = {k.entry.len, k.index.len, strlen(a[2]), strlen(a[3])};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, k.entry.data, k.entry.len);
        rc = eval(st, S_TAKE, 2, 2, a, l, true, &r);
    }
    if (rc)
        goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        rc = unexpected("take", r);
        goto out;
    }
    switch (elem_int(r, 0)) {
    case 0:
        rc = DZ_ERR_NOTFOUND;
        break;
    case 2:
        rc = DZ_ERR_TOOBIG;
        break;
    case 1:
        if (r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING) {
            rc = unexpected("take", r);
            break;
        }
        rc = rs_open(st, k.entry.data, k.entry.len, r->element[1]->str, r->element[1]->len, out);
        if (rc == DZ_ERR_DENIED)
            rc = DZ_ERR_UNAVAILABLE;
        dz_secret_wipe(r->element[1]->str, r->element[1]->len);
        break;
    default:
        rc = unexpected("take", r);
    }
out:
    if (r)
        freeReplyObject(r);
    keys_cleanup(&k);
    return rc;
}

/* DEL; with wait, WAIT for the replicas in the same round trip. */
static int del_wait(struct rs_store *st, const char *ns, const void *key, size_t key_len, bool wait)
{
    struct keys k;
    redisReply *r = NULL;
    int rc;

    rc = keys_make(st, ns, key, key_len, dz_store_kind_of(ns), &k);
    if (rc)
        goto out;
    {
        const char *a[] = {k.entry.data, k.index.data};
        size_t l[] = {k.entry.len, k.index.len};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, k.entry.data, k.entry.len);
        rc = eval(st, S_DEL, 2, 0, a, l, wait, &r);
    }
    if (rc)
        goto out;
    rc = del_answer(r);
out:
    if (r)
        freeReplyObject(r);
    keys_cleanup(&k);
    return rc;
}

static int r_del(void *impl, const char *ns, const void *key, size_t key_len)
{
    /* A logout lost in a failover would bring the session back. */
    return del_wait(impl, ns, key, key_len, is_sess(ns));
}

/* A revocation lost in a failover would bring the right back. */
static int r_del_durable(void *impl, const char *ns, const void *key, size_t key_len)
{
    return del_wait(impl, ns, key, key_len, true);
}

/* Between the GET and the script of a compare-and-delete: NULL, except in
 * the unit test that includes this file to write there meanwhile (the
 * script must then keep the new value). */
static void (*del_if_between)(void);

/* GET the raw value (never the near cache: the script compares the sealed
 * bytes), open it and compare; then the script deletes only if those bytes
 * are still there.  Two round trips, both failing closed. */
static int r_del_if(void *impl, const char *ns, const void *key, size_t key_len, const void *val,
                    size_t val_len)
{
    struct rs_store *st = impl;
    struct dz_buf plain;
    struct keys k;
    redisReply *g = NULL, *r = NULL;
    int rc;

    dz_buf_init(&plain, VAL_BUF_MAX);
    rc = keys_make(st, ns, key, key_len, dz_store_kind_of(ns), &k);
    if (rc)
        goto out;
    {
        const char *argv[] = {"GET", k.entry.data};
        size_t l[] = {3, k.entry.len};

        rc = rs_call(st, 2, argv, l, false, &g);
    }
    if (rc)
        goto out;
    if (g->type == REDIS_REPLY_NIL) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    if (g->type != REDIS_REPLY_STRING) {
        rc = unexpected("del_if", g);
        goto out;
    }
    rc = open_answer(st, ns, &k.entry, g, &plain);
    if (rc)
        goto out;
    if (plain.len != val_len || (val_len && memcmp(plain.data, val, val_len) != 0)) {
        rc = DZ_ERR_EXISTS;
        goto out;
    }
    if (del_if_between)
        del_if_between();
    {
        const char *a[] = {k.entry.data, k.index.data, g->str};
        size_t l[] = {k.entry.len, k.index.len, g->len};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, k.entry.data, k.entry.len);
        /* As r_del: a logout lost in a failover would bring the session back. */
        rc = eval(st, S_DEL_IF, 2, 1, a, l, is_sess(ns), &r);
    }
    if (rc)
        goto out;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = unexpected("del_if", r);
    else
        rc = r->integer == 1 ? 0 : r->integer == 2 ? DZ_ERR_EXISTS : DZ_ERR_NOTFOUND;
out:
    if (g) {
        if (g->type == REDIS_REPLY_STRING)
            dz_secret_wipe(g->str, g->len);
        freeReplyObject(g);
    }
    if (r)
        freeReplyObject(r);
    dz_buf_wipe(&plain);
    keys_cleanup(&k);
    return rc;
}

static int r_incr(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                  size_t key_len, uint64_t ttl_ms, int64_t *out_value)
{
    struct rs_store *st = impl;
    struct keys k;
    redisReply *r = NULL;
    char ttl[24], max[24], by_s[24];
    bool batched = st->batch && kind == DZ_STORE_RATES;
    int64_t by = 1;
    int rc;

    rc = keys_make(st, ns, key, key_len, kind, &k);
    if (rc)
        goto out;
    if (batched && rs_batch_take(st->batch, k.entry.data, k.entry.len, out_value, &by) == 1)
        goto out; /* counted here; sent with the batch (store.redis.rate_batch) */
    {
        const char *a[] = {k.entry.data,
                           k.index.data,
                           k.kind.data,
                           num(ttl, sizeof(ttl), clamp_ttl(ttl_ms)),
                           num(max, sizeof(max), st->max[kind]),
                           num(by_s, sizeof(by_s), (unsigned long long)by)};
        size_t l[] = {k.entry.len,  k.index.len,  k.kind.len,
                      strlen(a[3]), strlen(a[4]), strlen(a[5])};

        rc = eval(st, S_INCR, 3, 3, a, l, must_wait(kind), &r);
    }
    if (rc)
        goto out;
    rc = script_answer(st, kind, "incr", r, out_value);
out:
    if (batched && r) {
        if (rc == 0)
            rs_batch_seen(st->batch, k.entry.data, k.entry.len, ttl_ms, *out_value);
        else
            rs_batch_drop(st->batch, k.entry.data, k.entry.len);
    }
    if (r)
        freeReplyObject(r);
    keys_cleanup(&k);
    return rc;
}

static int r_ttl(void *impl, const char *ns, const void *key, size_t key_len, uint64_t *out_ms)
{
    struct rs_store *st = impl;
    struct dz_buf rk;
    redisReply *r = NULL;
    int rc;

    dz_buf_init(&rk, KEY_BUF_MAX);
    if (ns[0] == '#') {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    if ((rc = rs_key(st, ns, key, key_len, &rk)) != 0)
        goto out;
    {
        const char *argv[] = {"PTTL", rk.data};
        size_t l[] = {4, rk.len};

        rc = rs_call(st, 2, argv, l, false, &r);
    }
    if (rc)
        goto out;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = unexpected("ttl", r);
    else if (r->integer < 0)
        rc = DZ_ERR_NOTFOUND; /* -2 absent; -1 (no expiry) is never written */
    else
        *out_ms = (uint64_t)r->integer;
out:
    if (r)
        freeReplyObject(r);
    dz_buf_cleanup(&rk);
    return rc;
}

static int r_touch(void *impl, const char *ns, const void *key, size_t key_len, uint64_t ttl_ms)
{
    struct rs_store *st = impl;
    struct keys k;
    redisReply *r = NULL;
    char ttl[24];
    int rc;

    rc = keys_make(st, ns, key, key_len, dz_store_kind_of(ns), &k);
    if (rc)
        goto out;
    /* A session read from the near cache was touched on Redis a moment ago:
     * its sliding expiry is kept with a documented slack instead of a write
     * (and an invalidation on every instance) per request. */
    if (st->cache && is_sess(ns) &&
        rs_cache_touch_recent(st->cache, k.entry.data, k.entry.len, ttl_ms))
        goto out;
    {
        const char *a[] = {k.entry.data, k.index.data, num(ttl, sizeof(ttl), clamp_ttl(ttl_ms))};
        size_t l[] = {k.entry.len, k.index.len, strlen(a[2])};

        rc = eval(st, S_TOUCH, 2, 1, a, l, false, &r);
    }
    if (rc)
        goto out;
    rc = touch_answer(r);
out:
    if (r)
        freeReplyObject(r);
    keys_cleanup(&k);
    return rc;
}

/* ---- asynchronous ops (store.h dz_store_*_async): the same keys, scripts
 * and answers as the synchronous ones, on the loop's connection. */

struct aget {
    struct rs_store *st;
    const char *ns;
    struct dz_buf rk, val;
    bool cached;
    uint64_t seq;
    struct rs_flight *flight; /* the misses of this key waiting on this GET */
    dz_store_cb cb;
    void *arg;
};

static int aget_map(void *arg, redisReply *r)
{
    struct aget *a = arg;

    return get_answer(a->st, a->ns, &a->rk, a->cached, a->seq, r, &a->val);
}

static void aget_done(void *arg, int rc)
{
    struct aget *a = arg;

    /* The misses that waited on this GET first: the flight leaves the
     * table before any callback could read the key again (and join it). */
    rs_flight_end(a->flight, rc, a->val.data, a->val.len);
    a->cb(a->arg, rc, 0, rc == 0 ? a->val.data : NULL, rc == 0 ? a->val.len : 0);
    dz_buf_cleanup(&a->rk);
    dz_buf_wipe(&a->val);
    free(a);
}

static void r_get_async(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg)
{
    struct rs_store *st = impl;
    struct aget *a = calloc(1, sizeof(*a));
    int rc;

    if (!a) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *a =
        (struct aget){.st = st, .ns = ns, .cached = st->cache && is_sess(ns), .cb = cb, .arg = arg};
    dz_buf_init(&a->rk, KEY_BUF_MAX);
    dz_buf_init(&a->val, VAL_BUF_MAX);
    rc = ns[0] == '#' ? DZ_ERR_INVAL : rs_key(st, ns, key, key_len, &a->rk);
    if (rc == 0 && a->cached) {
        if (rs_cache_get(st->cache, a->rk.data, a->rk.len, &a->val) == 0) {
            aget_done(a, 0);
            return;
        }
        struct rs_flight **flights = rs_cache_usable(st->cache) ? rs_aconn_flights(st, loop) : NULL;

        a->seq = rs_cache_seq(st->cache);
        /* Another miss of this key on this loop has its GET on the wire
         * (and no invalidation came since): its answer is this one's. */
        if (rs_flight_join(flights, a->rk.data, a->rk.len, a->seq, cb, arg)) {
            dz_buf_cleanup(&a->rk);
            dz_buf_wipe(&a->val);
            free(a);
            return;
        }
        a->flight = rs_flight_start(flights, a->rk.data, a->rk.len, a->seq);
    }
    if (rc) {
        aget_done(a, rc);
        return;
    }
    {
        const char *argv[] = {"GET", a->rk.data};
        size_t l[] = {3, a->rk.len};

        rs_acall(st, loop, 2, argv, l, NULL, false, aget_map, aget_done, a);
    }
}

struct aincr {
    struct rs_store *st;
    enum dz_store_kind kind;
    struct keys k;
    uint64_t ttl_ms;
    bool batched;
    int64_t value;
    dz_store_cb cb;
    void *arg;
};

static int aincr_map(void *arg, redisReply *r)
{
    struct aincr *a = arg;

    return script_answer(a->st, a->kind, "incr", r, &a->value);
}

static void aincr_done(void *arg, int rc)
{
    struct aincr *a = arg;

    if (a->batched) {
        if (rc == 0)
            rs_batch_seen(a->st->batch, a->k.entry.data, a->k.entry.len, a->ttl_ms, a->value);
        else
            rs_batch_drop(a->st->batch, a->k.entry.data, a->k.entry.len);
    }
    keys_cleanup(&a->k);
    a->cb(a->arg, rc, rc == 0 ? a->value : 0, NULL, 0);
    free(a);
}

static void r_incr_async(void *impl, struct ev_loop *loop, enum dz_store_kind kind, const char *ns,
                         const void *key, size_t key_len, uint64_t ttl_ms, dz_store_cb cb,
                         void *arg)
{
    struct rs_store *st = impl;
    struct aincr *a = calloc(1, sizeof(*a));
    char ttl[24], max[24], by_s[24];
    int64_t by = 1;
    int rc;

    if (!a) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *a = (struct aincr){.st = st, .kind = kind, .ttl_ms = ttl_ms, .cb = cb, .arg = arg};
    rc = keys_make(st, ns, key, key_len, kind, &a->k);
    if (rc) {
        aincr_done(a, rc);
        return;
    }
    if (st->batch && kind == DZ_STORE_RATES) {
        if (rs_batch_take(st->batch, a->k.entry.data, a->k.entry.len, &a->value, &by) == 1) {
            aincr_done(a, 0); /* counted here (store.redis.rate_batch) */
            return;
        }
        a->batched = true;
    }
    {
        const char *args[] = {a->k.entry.data,
                              a->k.index.data,
                              a->k.kind.data,
                              num(ttl, sizeof(ttl), clamp_ttl(ttl_ms)),
                              num(max, sizeof(max), st->max[kind]),
                              num(by_s, sizeof(by_s), (unsigned long long)by)};
        size_t l[] = {a->k.entry.len,  a->k.index.len,  a->k.kind.len,
                      strlen(args[3]), strlen(args[4]), strlen(args[5])};

        eval_async(st, loop, S_INCR, 3, 3, args, l, must_wait(kind), aincr_map, aincr_done, a);
    }
}

struct atouch {
    struct keys k;
    dz_store_cb cb;
    void *arg;
};

static int atouch_map(void *arg, redisReply *r)
{
    (void)arg;
    return touch_answer(r);
}

static void atouch_done(void *arg, int rc)
{
    struct atouch *a = arg;

    keys_cleanup(&a->k);
    a->cb(a->arg, rc, 0, NULL, 0);
    free(a);
}

static void r_touch_async(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                          size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg)
{
    struct rs_store *st = impl;
    struct atouch *a = calloc(1, sizeof(*a));
    char ttl[24];
    int rc;

    if (!a) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    a->cb = cb;
    a->arg = arg;
    rc = keys_make(st, ns, key, key_len, dz_store_kind_of(ns), &a->k);
    if (rc) {
        atouch_done(a, rc);
        return;
    }
    /* As r_touch: a session touched on Redis a moment ago is not re-sent. */
    if (st->cache && is_sess(ns) &&
        rs_cache_touch_recent(st->cache, a->k.entry.data, a->k.entry.len, ttl_ms)) {
        atouch_done(a, 0);
        return;
    }
    {
        const char *args[] = {a->k.entry.data, a->k.index.data,
                              num(ttl, sizeof(ttl), clamp_ttl(ttl_ms))};
        size_t l[] = {a->k.entry.len, a->k.index.len, strlen(args[2])};

        eval_async(st, loop, S_TOUCH, 2, 1, args, l, false, atouch_map, atouch_done, a);
    }
}

/* A put or a del: the keys live until the answer (the op's argv is a
 * copy, but the put's answer needs the kind). */
struct awrite {
    struct rs_store *st;
    enum dz_store_kind kind;
    struct keys k;
    dz_store_cb cb;
    void *arg;
};

static int aput_map(void *arg, redisReply *r)
{
    struct awrite *a = arg;

    return script_answer(a->st, a->kind, "put", r, NULL);
}

static int adel_map(void *arg, redisReply *r)
{
    (void)arg;
    return del_answer(r);
}

static void awrite_done(void *arg, int rc)
{
    struct awrite *a = arg;

    keys_cleanup(&a->k);
    a->cb(a->arg, rc, 0, NULL, 0);
    free(a);
}

static void r_put_async(void *impl, struct ev_loop *loop, enum dz_store_kind kind, const char *ns,
                        const void *key, size_t key_len, const void *val, size_t val_len,
                        uint64_t ttl_ms, int flags, dz_store_cb cb, void *arg)
{
    struct rs_store *st = impl;
    struct awrite *a = calloc(1, sizeof(*a));
    struct dz_buf v;
    char ttl[24], max[24];
    bool nx = (flags & DZ_STORE_NX) != 0;
    int rc;

    if (!a) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *a = (struct awrite){.st = st, .kind = kind, .cb = cb, .arg = arg};
    dz_buf_init(&v, VAL_BUF_MAX);
    rc = keys_make(st, ns, key, key_len, kind, &a->k);
    if (rc == 0)
        rc = rs_seal(st, a->k.entry.data, a->k.entry.len, val, val_len, &v);
    if (rc) {
        dz_buf_wipe(&v);
        awrite_done(a, rc);
        return;
    }
    {
        const char *args[] = {a->k.entry.data,
                              a->k.index.data,
                              a->k.kind.data,
                              v.data ? v.data : "",
                              num(ttl, sizeof(ttl), clamp_ttl(ttl_ms)),
                              nx ? "1" : "0",
                              num(max, sizeof(max), st->max[kind])};
        size_t l[] = {a->k.entry.len, a->k.index.len, a->k.kind.len, v.len, strlen(args[4]), 1,
                      strlen(args[6])};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, a->k.entry.data, a->k.entry.len);
        eval_async(st, loop, S_PUT, 3, 4, args, l, must_wait(kind), aput_map, awrite_done, a);
    }
    dz_buf_wipe(&v); /* rs_acall copied it */
}

static void r_del_async(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg)
{
    struct rs_store *st = impl;
    struct awrite *a = calloc(1, sizeof(*a));
    int rc;

    if (!a) {
        cb(arg, DZ_ERR_NOMEM, 0, NULL, 0);
        return;
    }
    *a = (struct awrite){.st = st, .kind = dz_store_kind_of(ns), .cb = cb, .arg = arg};
    rc = keys_make(st, ns, key, key_len, a->kind, &a->k);
    if (rc) {
        awrite_done(a, rc);
        return;
    }
    {
        const char *args[] = {a->k.entry.data, a->k.index.data};
        size_t l[] = {a->k.entry.len, a->k.index.len};

        if (st->cache && is_sess(ns))
            rs_cache_drop(st->cache, a->k.entry.data, a->k.entry.len);
        /* As r_del: a logout lost in a failover would bring the session back. */
        eval_async(st, loop, S_DEL, 2, 0, args, l, is_sess(ns), adel_map, awrite_done, a);
    }
}

static size_t r_count(void *impl, const char *ns)
{
    struct rs_store *st = impl;
    struct dz_buf ix;
    redisReply *r = NULL;
    size_t n = 0;

    dz_buf_init(&ix, RS_PREFIX_MAX + 80);
    if (ns[0] != '#' && dz_buf_appendf(&ix, "%s#i:%s", st->prefix, ns) == 0) {
        const char *a[] = {ix.data};
        size_t l[] = {ix.len};

        if (eval(st, S_COUNT, 1, 0, a, l, false, &r) == 0 && r->type == REDIS_REPLY_INTEGER &&
            r->integer > 0)
            n = (size_t)r->integer;
    }
    if (r)
        freeReplyObject(r);
    dz_buf_cleanup(&ix);
    return n;
}

static size_t r_kind_count(const void *impl, enum dz_store_kind kind)
{
    const struct rs_store *st = impl;

    return atomic_load_explicit(&st->count[kind], memory_order_relaxed);
}

static void r_publish(void *impl, const char *ns, const void *key, size_t key_len)
{
    struct rs_store *st = impl;
    struct dz_buf chan, msg, sealed;
    redisReply *r = NULL;

    dz_buf_init(&chan, RS_PREFIX_MAX + 8);
    dz_buf_init(&msg, VAL_BUF_MAX);
    dz_buf_init(&sealed, VAL_BUF_MAX + 64);
    /* The message is ns 0x00 key, sealed like a value (the key may be an
     * id a waiter polls with). */
    if (dz_buf_appendf(&chan, "%s#wake", st->prefix) == 0 && dz_buf_append_str(&msg, ns) == 0 &&
        dz_buf_append(&msg, "", 1) == 0 && dz_buf_append(&msg, key, key_len) == 0 &&
        rs_seal(st, chan.data, chan.len, msg.data, msg.len, &sealed) == 0) {
        const char *argv[] = {"PUBLISH", chan.data, sealed.data};
        size_t l[] = {7, chan.len, sealed.len};

        if (rs_call(st, 3, argv, l, false, &r) != 0 || r->type != REDIS_REPLY_INTEGER)
            atomic_fetch_add(&st->errors, 1);
    }
    if (r)
        freeReplyObject(r);
    dz_buf_cleanup(&chan);
    dz_buf_wipe(&msg);
    dz_buf_cleanup(&sealed);
}

static void r_bind(void *impl, struct dz_store *s)
{
    struct rs_store *st = impl;

    st->store = s;
}

static void r_health(void *impl, struct dz_store_health *out)
{
    struct rs_store *st = impl;

    out->shared = true;
    out->up = !atomic_load(&st->down);
    if (!out->up) {
        pthread_mutex_lock(&st->lock);
        snprintf(out->why, sizeof(out->why), "redis: %s", st->why);
        pthread_mutex_unlock(&st->lock);
    }
    out->errors = atomic_load(&st->errors);
    out->reconnects = atomic_load(&st->reconnects);
    out->loop_waits = atomic_load(&st->loop_waits);
    out->latency = &st->latency;
    out->inflight = atomic_load(&st->inflight);
    out->master_switches = atomic_load(&st->switches);
}

static void r_free(void *impl)
{
    struct rs_store *st = impl;

    if (!st)
        return;
    rs_sentinel_stop(st);
    rs_sub_stop(st);
    rs_aconn_cleanup(st);
    if (st->cache)
        rs_cache_free(st->cache);
    rs_batch_free(st->batch);
    if (st->conn_ready)
        rs_conn_cleanup(st);
    rs_seal_cleanup(st);
    if (st->password) {
        dz_secret_wipe(st->password, strlen(st->password));
        free(st->password);
    }
    free(st->username);
    free(st->master_name);
    for (size_t i = 0; i < DZ_STORE_REDIS_SENTINELS_MAX; i++)
        free(st->sentinel_hosts[i]);
    free((char *)st->cfg.master.host);
    dz_secret_wipe(st, sizeof(*st));
    free(st);
}

static const struct dz_store_ops redis_ops = {
    .put = r_put,
    .get = r_get,
    .take = r_take,
    .del = r_del,
    .del_if = r_del_if,
    .del_durable = r_del_durable,
    .incr = r_incr,
    .ttl = r_ttl,
    .touch = r_touch,
    .count = r_count,
    .free = r_free,
    .kind_count = r_kind_count,
    .publish = r_publish,
    .bind = r_bind,
    .health = r_health,
    .get_async = r_get_async,
    .incr_async = r_incr_async,
    .touch_async = r_touch_async,
    .put_async = r_put_async,
    .del_async = r_del_async,
};

static char *dup_or_null(const char *s, bool *ok)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

int dz_store_redis_new(const struct dz_store_redis_config *cfg, const struct dz_store_quotas *q,
                       struct dz_store **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct dz_store_quotas def;
    struct rs_store *st = NULL;
    bool ok = true;
    int rc;

    *out = NULL;
    if (!cfg || !cfg->prefix || !cfg->prefix[0] || strlen(cfg->prefix) > RS_PREFIX_MAX ||
        cfg->connect_timeout_ms == 0 || cfg->command_timeout_ms == 0 ||
        cfg->n_sentinels > DZ_STORE_REDIS_SENTINELS_MAX ||
        (cfg->n_sentinels ? !cfg->master_name
                          : !cfg->master.host || cfg->master.port <= 0 || cfg->master.port > 65535))
        return DZ_ERR_INVAL;
    if (!q) {
        dz_store_quotas_default(&def);
        q = &def;
    }
    for (int k = 0; k < DZ_STORE_KINDS; k++)
        if (q->max[k] == 0)
            return DZ_ERR_INVAL;
    pthread_once(&once, scripts_hash);
    st = calloc(1, sizeof(*st));
    if (!st)
        return DZ_ERR_NOMEM;
    st->cfg = *cfg;
    if (st->cfg.retry_max_ms < 100)
        st->cfg.retry_max_ms = 100;
    snprintf(st->prefix, sizeof(st->prefix), "%s", cfg->prefix);
    st->prefix_len = strlen(st->prefix);
    st->cfg.prefix = st->prefix;
    st->username = dup_or_null(cfg->username, &ok);
    st->password = dup_or_null(cfg->password, &ok);
    st->master_name = dup_or_null(cfg->master_name, &ok);
    st->cfg.master.host = dup_or_null(cfg->master.host, &ok);
    for (size_t i = 0; i < cfg->n_sentinels; i++) {
        st->sentinel_hosts[i] = dup_or_null(cfg->sentinels[i].host, &ok);
        st->cfg.sentinels[i].host = st->sentinel_hosts[i];
    }
    st->cfg.username = st->username;
    st->cfg.password = NULL; /* only st->password holds it */
    st->cfg.master_name = st->master_name;
    st->cfg.value_key = NULL;
    if (!ok) {
        r_free(st);
        return DZ_ERR_NOMEM;
    }
    if (cfg->value_key && (rc = rs_seal_keys(st, cfg->value_key)) != 0) {
        r_free(st);
        return rc;
    }
    for (int k = 0; k < DZ_STORE_KINDS; k++)
        st->max[k] = q->max[k];
    rc = rs_conn_init(st);
    if (rc) {
        r_free(st);
        return rc;
    }
    st->conn_ready = true;
    if ((rc = rs_aconn_init(st)) != 0) {
        r_free(st);
        return rc;
    }
    if ((cfg->rate_batch > 1 && (rc = rs_batch_new(cfg->rate_batch, &st->batch)) != 0) ||
        (cfg->near_cache && (rc = rs_cache_new(st, &st->cache)) != 0) ||
        (rc = rs_sub_start(st)) != 0 || (rc = rs_sentinel_start(st)) != 0) {
        r_free(st);
        return rc;
    }
    if (!st->sealed)
        dz_log(DZ_LOG_WARN, "store_clear",
               "redis: no value_key_file: keys and values are written to Redis in clear");
    return dz_store_new(&redis_ops, st, out);
}
