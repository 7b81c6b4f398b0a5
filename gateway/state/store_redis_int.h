/*
 * store_redis_int.h - what the files of the Redis backend share (not an
 * interface: store_redis.h is).  store_redis.c owns the ops, the scripts
 * and the key layout; store_redis_conn.c the per-thread connections, the
 * master's address and the circuit breaker; store_redis_seal.c the sealing
 * of values and the naming of keys; store_redis_cache.c the near cache of
 * sessions and the subscriber connection (invalidations and wake-ups).
 */
#ifndef DZ_STORE_REDIS_INT_H
#define DZ_STORE_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "base/buf.h"
#include "base/histo.h"
#include "state/store.h"
#include "state/store_redis.h"

#define RS_PREFIX_MAX 64
#define RS_HOST_MAX 256

struct rs_cache;
struct rs_batch;
struct rs_seal;
struct rs_aconn;
struct ev_loop;

struct rs_conn {
    redisContext *ctx;
    unsigned gen; /* the breaker generation it connected in */
    struct rs_conn *prev, *next;
};

struct rs_store {
    struct dz_store_redis_config cfg; /* strings below are our copies */
    char prefix[RS_PREFIX_MAX + 1];
    size_t prefix_len;
    char *username;
    char *password;
    char *master_name;
    char *sentinel_hosts[DZ_STORE_REDIS_SENTINELS_MAX];
    bool sealed;          /* a value key was given */
    struct rs_seal *seal; /* its derived keys and each thread's keyed contexts */

    pthread_key_t tls; /* struct rs_conn * of the calling thread */
    pthread_mutex_t lock;
    struct rs_conn *conns; /* every thread's connection, for free */
    char master_host[RS_HOST_MAX];
    int master_port;

    /* The breaker: down after a failure; calls answer unavailable until
     * retry_at, then one caller (probing) tries. */
    atomic_bool down;
    atomic_bool probing;
    atomic_uint_fast64_t retry_at_ms;
    atomic_uint_fast64_t backoff_ms;
    atomic_uint gen; /* bumped at each trip: older connections reconnect */
    char why[96];    /* under lock */

    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t reconnects;
    atomic_uint_fast64_t loop_waits; /* blocking round trips made on a loop thread */
    atomic_uint_fast64_t loop_wait_logged_ms;
    struct dz_histo latency;

    size_t max[DZ_STORE_KINDS];
    atomic_size_t count[DZ_STORE_KINDS]; /* as the last creation saw it */

    struct rs_cache *cache; /* NULL without a near cache */
    struct rs_batch *batch; /* NULL: rate counters exact */
    bool conn_ready;        /* rs_conn_init done */
    pthread_t sub_thread;
    bool sub_running;
    atomic_bool sub_stop;
    struct dz_store *store; /* for wake-up delivery (bind) */

    /* Asynchronous connections, one per worker loop (store_redis_aconn.c). */
    pthread_key_t atls;      /* struct rs_aconn * of the calling thread */
    struct rs_aconn *aconns; /* every one, for free (under lock) */
    bool atls_ready;
    atomic_bool closing;           /* the store is being freed: answer nobody */
    atomic_uint_fast64_t inflight; /* asynchronous calls waiting for Redis */
    atomic_uint_fast64_t switches; /* +switch-master events followed */
    pthread_t sent_thread;         /* store_redis_sentinel.c: +switch-master */
    bool sent_running;
    atomic_bool sent_stop;
};

/* ---- store_redis_conn.c */

/* Set up / release the connection machinery (not connecting yet). */
int rs_conn_init(struct rs_store *st);
void rs_conn_cleanup(struct rs_store *st);

/*
 * Run one command (argv) on the calling thread's connection, then, when
 * wait is true, WAIT for cfg.wait_replicas replicas in the same round trip.
 * *out is the command's reply (freeReplyObject).  0, or DZ_ERR_UNAVAILABLE
 * (breaker open, network error, timeout, Redis not a writable master, or
 * the replicas' acknowledgement missing).  Error replies of the command
 * itself are returned in *out for the caller to map.
 */
int rs_call(struct rs_store *st, int argc, const char **argv, const size_t *lens, bool wait,
            redisReply **out);

/* A connected, authenticated context to the current master (discovered
 * through the sentinels when configured), or NULL; why filled. */
redisContext *rs_connect_master(struct rs_store *st, uint64_t timeout_ms, char *why,
                                size_t why_cap);

/* Trip the breaker (a failure seen by a caller or by the subscriber). */
void rs_breaker_trip(struct rs_store *st, const char *why);
/* Whether a call may go to the network: 1 yes, 2 yes as the probe (end it
 * with rs_breaker_probe_end), 0 no (counted as an error). */
int rs_breaker_allow(struct rs_store *st);
void rs_breaker_probe_end(struct rs_store *st);
/* A call failed (network, timeout, an answer of a server that cannot take
 * it): trip; probe says whether it was the probe (doubles the backoff). */
void rs_breaker_fail(struct rs_store *st, const char *why, bool probe);
/* Answers that say the server cannot take the call now (READONLY, ...). */
bool rs_reply_unavailable(const redisReply *r);
/* INFO memory's answer r says the server may evict keys (any
 * maxmemory-policy but noeviction, or none said): true, why filled. */
bool rs_evicts(const redisReply *r, char *why, size_t why_cap);
/* The master's address as last discovered (or configured): 0, or
 * DZ_ERR_UNAVAILABLE when the sentinels have not been asked yet. */
int rs_master_addr(struct rs_store *st, char *host, size_t cap, int *port);
/* Close it: Redis answered (a call, or the subscriber connected). */
void rs_breaker_ok(struct rs_store *st);

uint64_t rs_now_ms(void);

/* ---- store_redis_aconn.c */

/* The answer of rs_acall comes in two steps: map(arg, r) with the
 * command's reply (valid during the call only; error replies of the command
 * itself included) returns the op's rc (and keeps what it needs in arg);
 * done(arg, rc) then gets that rc, or DZ_ERR_UNAVAILABLE without any map
 * (breaker open, network, timeout, not a writable master, replicas short
 * after WAIT: a mapped answer is then dropped). */
typedef int (*rs_amap_fn)(void *arg, redisReply *r);
typedef void (*rs_adone_fn)(void *arg, int rc);

/*
 * Send argv on the calling thread's asynchronous connection, attached to
 * loop (made, with AUTH and the ROLE check, on first use), then, when wait
 * is true, WAIT for the replicas.  When script is not NULL, argv is an
 * EVALSHA and a NOSCRIPT answer resends it as EVAL of script.  fn is called
 * done is called exactly once, on loop's thread, possibly before rs_acall
 * returns; at the latest after the command timeout.  argv is copied.
 */
void rs_acall(struct rs_store *st, struct ev_loop *loop, int argc, const char **argv,
              const size_t *lens, const char *script, bool wait, rs_amap_fn map, rs_adone_fn done,
              void *arg);
int rs_aconn_init(struct rs_store *st);
/* The GETs in flight on the calling thread's connection to loop
 * (RS_FLIGHT_BUCKETS lists, store_redis_flight.c), or NULL (no memory). */
struct rs_flight **rs_aconn_flights(struct rs_store *st, struct ev_loop *loop);
/* At free, after the loops have stopped: closes without touching them. */
void rs_aconn_cleanup(struct rs_store *st);

/* ---- store_redis_flight.c: one GET in flight per cached key per loop */

#define RS_FLIGHT_BUCKETS 64

struct rs_flight;

/* Wait for the GET of rkey in flight in table (a loop's: rs_aconn_flights;
 * NULL: false), if one was sent in cache sequence seq (no invalidation
 * since): true, and cb(arg, rc, 0, data, len) comes with that GET's answer.
 * false: the caller sends its own GET.  The caller passes a table only
 * while the near cache is usable. */
bool rs_flight_join(struct rs_flight **table, const char *rkey, size_t n, uint64_t seq,
                    dz_store_cb cb, void *arg);
/* A GET of rkey about to be sent in sequence seq: the flight later misses
 * join, or NULL (table NULL, no memory). */
struct rs_flight *rs_flight_start(struct rs_flight **table, const char *rkey, size_t n,
                                  uint64_t seq);
/* The GET's answer, to every waiter (in order of arrival); ends f (NULL:
 * a no-op). */
void rs_flight_end(struct rs_flight *f, int rc, const void *data, size_t len);
/* At free (the loops stopped, nobody is answered any more): release a
 * table's flights. */
void rs_flight_drop_all(struct rs_flight **table);

/* ---- store_redis_seal.c */

/* Derive the sealing and the naming keys from the configured key, fetch
 * HMAC and AES-256-GCM and key the calling thread's contexts (every other
 * thread keys its own on its first call).  0 (st->sealed set), or
 * DZ_ERR_NOMEM / DZ_ERR_CRYPTO (nothing kept, st->sealed false: the caller
 * fails the store).  Once, before the store is shared. */
int rs_seal_keys(struct rs_store *st, const unsigned char key[DZ_STORE_REDIS_KEY_LEN]);
/* Free what rs_seal_keys made, every thread's contexts included, the key
 * material wiped; after every thread has stopped calling.  A no-op when
 * nothing was made. */
void rs_seal_cleanup(struct rs_store *st);

/* The Redis key of (ns,key) into out: prefix ns ":" name.  The name is the
 * hex of a keyed hash of (ns,key) when sealed, else the hex of key.  0, or
 * DZ_ERR_NOMEM / DZ_ERR_TOOBIG (out) / DZ_ERR_CRYPTO.  rs_key, rs_seal and
 * rs_open may be called from any thread at once. */
int rs_key(const struct rs_store *st, const char *ns, const void *key, size_t key_len,
           struct dz_buf *out);

/* Seal val for the Redis key rkey into out (a plain counter stays text so
 * that INCR works on it). */
int rs_seal(const struct rs_store *st, const char *rkey, size_t rkey_len, const void *val,
            size_t val_len, struct dz_buf *out);

/* Open what rs_seal made; appends the value to out.  DZ_ERR_DENIED when it
 * does not open (another key, another value key, tampered). */
int rs_open(const struct rs_store *st, const char *rkey, size_t rkey_len, const void *sealed,
            size_t sealed_len, struct dz_buf *out);

/* Bytes rs_seal adds at most (so take can refuse a value too big before
 * consuming it). */
size_t rs_seal_overhead(const struct rs_store *st);

/* ---- store_redis_cache.c */

int rs_cache_new(struct rs_store *st, struct rs_cache **out);
void rs_cache_free(struct rs_cache *c);
/* A live cached value of rkey appended to out: 0, or DZ_ERR_NOTFOUND when
 * not cached (or the cache cannot be trusted now). */
int rs_cache_get(struct rs_cache *c, const char *rkey, size_t rkey_len, struct dz_buf *out);
/* The invalidation sequence before a read; pass it to rs_cache_put. */
uint64_t rs_cache_seq(struct rs_cache *c);
void rs_cache_put(struct rs_cache *c, uint64_t seq, const char *rkey, size_t rkey_len,
                  const void *val, size_t val_len, uint64_t ttl_ms);
void rs_cache_drop(struct rs_cache *c, const char *rkey, size_t rkey_len);
/* From the subscriber: rkey changed (value dropped); everything changed;
 * the subscriber is (not) connected. */
void rs_cache_invalidate(struct rs_cache *c, const char *rkey, size_t rkey_len);
void rs_cache_flush(struct rs_cache *c);
void rs_cache_set_usable(struct rs_cache *c, bool usable);
/* Whether invalidations are heard now (the subscriber connected). */
bool rs_cache_usable(struct rs_cache *c);
/* Whether a touch of rkey may be skipped (sent less than the bound ago). */
bool rs_cache_touch_recent(struct rs_cache *c, const char *rkey, size_t rkey_len, uint64_t ttl_ms);

/* ---- store_redis_batch.c */

int rs_batch_new(unsigned k, struct rs_batch **out);
void rs_batch_free(struct rs_batch *b);
/* Count one on rkey: 1 when answered here (*out_value set); 0 when the
 * caller must add *incr_by on Redis and then call rs_batch_seen with the
 * value Redis answered (or rs_batch_drop if it failed). */
int rs_batch_take(struct rs_batch *b, const char *rkey, size_t rkey_len, int64_t *out_value,
                  int64_t *incr_by);
void rs_batch_seen(struct rs_batch *b, const char *rkey, size_t rkey_len, uint64_t ttl_ms,
                   int64_t value);
void rs_batch_drop(struct rs_batch *b, const char *rkey, size_t rkey_len);

/* ---- store_redis_sentinel.c */

/* Start / stop the thread that follows the sentinels' +switch-master (a
 * no-op without sentinels). */
int rs_sentinel_start(struct rs_store *st);
void rs_sentinel_stop(struct rs_store *st);

/* ---- store_redis_sub.c */

/* Start / stop the subscriber thread (invalidations, wake-ups). */
int rs_sub_start(struct rs_store *st);
void rs_sub_stop(struct rs_store *st);

#endif
