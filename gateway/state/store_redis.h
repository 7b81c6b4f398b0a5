/*
 * store_redis.h - the Redis backend of the ephemeral store (store.h), for
 * several gateways sharing one state.  docs/internals/redis-store.md.
 *
 * The dz_store interface is synchronous and is called on the worker loops,
 * so this backend answers each call with one bounded round trip on a
 * blocking hiredis connection of the calling thread (at most the command
 * timeout), and trips a circuit breaker at the first failure: while it is
 * open every call answers DZ_ERR_UNAVAILABLE without touching the network,
 * one caller at a time probes after a backoff, and the connections
 * reconnect alone.  Callers answer 503 state_unavailable (fail closed).
 * The asynchronous forms (get, incr, touch: the forward path) go on a
 * connection per worker loop with hiredis's libev adapter instead, with a
 * timer per command and the same breaker (store_redis_aconn.c).
 *
 * Values are sealed with AES-256-GCM under a key the instances share (the
 * Redis key is the associated data, so a value cannot be moved to another
 * key), and keys are named by a keyed hash, so a dump of Redis yields no
 * FIN, phone number or session record.  Without a value key both are in
 * clear (a warning at start).
 */
#ifndef DZ_STORE_REDIS_H
#define DZ_STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/store.h"

#define DZ_STORE_REDIS_KEY_LEN 32 /* bytes of the value key */
#define DZ_STORE_REDIS_SENTINELS_MAX 8

struct dz_store_redis_endpoint {
    const char *host; /* name or address */
    int port;         /* 1..65535 */
};

struct dz_store_redis_config {
    /* Either the master's address, or sentinels + master_name. */
    struct dz_store_redis_endpoint master;
    struct dz_store_redis_endpoint sentinels[DZ_STORE_REDIS_SENTINELS_MAX];
    size_t n_sentinels;
    const char *master_name;
    const char *username; /* ACL user, NULL: the default user */
    const char *password; /* NULL: no AUTH; copied, wiped at free */
    const char *prefix;   /* every key and channel starts with it; 1..64 bytes */
    /* NULL: keys and values in clear.  Copied, wiped at free. */
    const unsigned char *value_key; /* DZ_STORE_REDIS_KEY_LEN bytes */
    uint64_t connect_timeout_ms;    /* > 0 */
    uint64_t command_timeout_ms;    /* > 0; WAIT waits half of it */
    uint64_t retry_max_ms;          /* the breaker's longest backoff, >= 100 */
    unsigned wait_replicas;         /* single-use writes wait for this many replicas */
    unsigned rate_batch;            /* rate counters sent every k counts; 0 or 1: exact */
    bool near_cache;                /* cache session reads, invalidated by Redis */
};

/*
 * Make the backend and wrap it in a store.  It does not need Redis to be up:
 * the first calls connect (and answer unavailable while it is down).  The
 * near cache starts its subscriber thread here.  0, DZ_ERR_INVAL (bad
 * config), DZ_ERR_NOMEM.  Start-up thread.
 */
int dz_store_redis_new(const struct dz_store_redis_config *cfg, const struct dz_store_quotas *q,
                       struct dz_store **out);

#endif
