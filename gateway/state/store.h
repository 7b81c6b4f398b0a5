/*
 * store.h - the one interface for ephemeral state: sessions, nonces, QR and
 * mobile sessions, failure counters, used OTP steps.
 *
 * Keys live in a namespace (a short constant string such as "sess") and are
 * opaque bytes; values are opaque bytes with a time to live.  The in-process
 * backend (store_mem.c) shards by key hash with one mutex per shard; the
 * Redis backend (store_redis.h) shares the state between instances.  Callers
 * store hashes of secrets, never secrets (a dump of the store yields nothing
 * usable).
 *
 * All functions are thread-safe and never block for long (no I/O in the
 * in-process backend; at most one bounded round trip in the Redis one, none
 * while it is known to be down), so they may be called from a loop thread.
 * The forward path uses the asynchronous forms (dz_store_*_async), which
 * never wait on the loop.
 */
#ifndef DZ_STORE_H
#define DZ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dz_buf;
struct dz_histo;
struct dz_store;
struct ev_loop;

/* The answer of an asynchronous call (below): rc as the synchronous call
 * would return it; value: the counter of an incr; data/len: the value of a
 * get (valid only during the call; NULL/0 otherwise). */
typedef void (*dz_store_cb)(void *arg, int rc, int64_t value, const void *data, size_t len);

enum dz_store_flags {
    DZ_STORE_NX = 1 /* put only if absent: DZ_ERR_EXISTS otherwise */
};

/*
 * Budgets.  Every namespace belongs to one kind, and each kind has its own
 * quota of live entries, so that filling one kind (a flood of QR logins, of
 * card challenges) never takes room from another (sessions, the failure
 * counters the lockout needs).  A put or incr that would create an entry
 * of a kind at its quota fails with DZ_ERR_FULL; a caller that cannot
 * record security state (a failure, a lock, a used nonce) refuses the
 * request rather than going on without it.  Every backend enforces the
 * same quotas.
 */
enum dz_store_kind {
    DZ_STORE_SESSIONS,       /* "sess" */
    DZ_STORE_PENDING_QR,     /* "qr" */
    DZ_STORE_PENDING_MOBILE, /* "mob", "mobsign", "mobphone" */
    DZ_STORE_CHALLENGES,     /* single-use items: "cardnonce", "qrused", "oidc*" codes, tokens */
    DZ_STORE_FAILURES,       /* failure counters and locks: "fail_*", "lock_*" */
    DZ_STORE_RATES,          /* rate counters: "rate", "mobrate", "verify_rate", "lim_*" */
    DZ_STORE_OTHER,          /* any other namespace */
    DZ_STORE_KINDS
};

/* Live entries allowed per kind (each > 0). */
struct dz_store_quotas {
    size_t max[DZ_STORE_KINDS];
};

/* The kind a namespace belongs to (DZ_STORE_OTHER when not listed). */
enum dz_store_kind dz_store_kind_of(const char *ns);

/* A kind's name for logs and metric labels ("sessions", "pending_qr", ...). */
const char *dz_store_kind_name(enum dz_store_kind k);

/* Entries of kind k held now (live or expired but not yet reaped: what
 * counts against the quota), or 0 when the backend cannot tell.  Any
 * thread; cheap (an atomic read), for the metrics. */
size_t dz_store_kind_count(const struct dz_store *s, enum dz_store_kind k);

/* Creations refused since start because kind k was at its quota. */
uint64_t dz_store_refusals(const struct dz_store *s, enum dz_store_kind k);

/* What a backend shared by several instances reports for /readyz and
 * /metrics; the in-process store reports shared = false, up = true. */
struct dz_store_health {
    bool shared;                    /* a backend other instances share */
    bool up;                        /* answering now */
    char why[128];                  /* when !up: what is wrong (no secret) */
    uint64_t errors;                /* calls that failed on the backend's side */
    uint64_t reconnects;            /* connections made after a failure */
    uint64_t loop_waits;            /* blocking round trips made on an event-loop thread */
    const struct dz_histo *latency; /* round trips; NULL when not shared */
    uint64_t inflight;              /* asynchronous calls waiting for an answer */
    uint64_t master_switches;       /* failovers followed from the sentinels' event */
};

/* Backends: put and incr get the namespace's kind, to count a new entry
 * against its quota (DZ_ERR_FULL when at it). */
struct dz_store_ops {
    int (*put)(void *impl, enum dz_store_kind kind, const char *ns, const void *key, size_t key_len,
               const void *val, size_t val_len, uint64_t ttl_ms, int flags);
    int (*get)(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out);
    int (*take)(void *impl, const char *ns, const void *key, size_t key_len, struct dz_buf *out);
    int (*del)(void *impl, const char *ns, const void *key, size_t key_len);
    int (*del_if)(void *impl, const char *ns, const void *key, size_t key_len, const void *val,
                  size_t val_len);
    /* del that a failover must not undo (may be NULL: a backend without
     * replicas, whose del is as durable as it gets). */
    int (*del_durable)(void *impl, const char *ns, const void *key, size_t key_len);
    int (*incr)(void *impl, enum dz_store_kind kind, const char *ns, const void *key,
                size_t key_len, uint64_t ttl_ms, int64_t *out_value);
    int (*ttl)(void *impl, const char *ns, const void *key, size_t key_len, uint64_t *out_ms);
    int (*touch)(void *impl, const char *ns, const void *key, size_t key_len, uint64_t ttl_ms);
    size_t (*count)(void *impl, const char *ns);
    void (*free)(void *impl);
    size_t (*kind_count)(const void *impl, enum dz_store_kind kind); /* may be NULL */
    /* Wake-ups that cross instances (may be NULL: delivered in this process
     * only).  A backend with publish gets bind() once from dz_store_new, so
     * that what it receives from other instances reaches dz_store_deliver. */
    void (*publish)(void *impl, const char *ns, const void *key, size_t key_len);
    void (*bind)(void *impl, struct dz_store *s);
    /* Health of a shared backend (may be NULL: in process, always up). */
    void (*health)(void *impl, struct dz_store_health *out);
    /* Asynchronous forms (may be NULL: the synchronous op, then cb at once).
     * They call cb exactly once, on the loop's thread, possibly before
     * returning. */
    void (*get_async)(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                      size_t key_len, dz_store_cb cb, void *arg);
    void (*incr_async)(void *impl, struct ev_loop *loop, enum dz_store_kind kind, const char *ns,
                       const void *key, size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg);
    void (*touch_async)(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg);
    void (*put_async)(void *impl, struct ev_loop *loop, enum dz_store_kind kind, const char *ns,
                      const void *key, size_t key_len, const void *val, size_t val_len,
                      uint64_t ttl_ms, int flags, dz_store_cb cb, void *arg);
    void (*del_async)(void *impl, struct ev_loop *loop, const char *ns, const void *key,
                      size_t key_len, dz_store_cb cb, void *arg);
};

/* For backends: wrap an ops table and its state.  Ownership of impl moves to
 * the store (ops->free releases it, also on failure).  0, DZ_ERR_INVAL,
 * DZ_ERR_NOMEM. */
int dz_store_new(const struct dz_store_ops *ops, void *impl, struct dz_store **out);

/* The default quotas (docs/operations.md "Budgets"). */
void dz_store_quotas_default(struct dz_store_quotas *q);

/* In-process backend. shards >= 1 (rounded up to a power of two); quotas
 * NULL: the defaults. */
int dz_store_mem_new(unsigned shards, const struct dz_store_quotas *quotas, struct dz_store **out);

/* The largest value the store takes. */
#define DZ_STORE_VAL_MAX (64u * 1024u)

/* Store val under (ns,key) for ttl_ms (> 0).  0, DZ_ERR_EXISTS (with NX),
 * DZ_ERR_NOMEM, DZ_ERR_TOOBIG (key or value over 64 KiB), DZ_ERR_FULL (a
 * new entry and the namespace's kind is at its quota). */
int dz_store_put(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 const void *val, size_t val_len, uint64_t ttl_ms, int flags);

/* Copy the live value into out (appended).  0 or DZ_ERR_NOTFOUND (absent or
 * expired), DZ_ERR_NOMEM/TOOBIG from the buffer. */
int dz_store_get(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 struct dz_buf *out);

/* Like get, and delete in the same step: exactly one caller can take a value
 * (single-use nonces, one-time completions). */
int dz_store_take(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  struct dz_buf *out);

/* Delete; 0 or DZ_ERR_NOTFOUND. */
int dz_store_del(struct dz_store *s, const char *ns, const void *key, size_t key_len);

/* Delete, and make sure a failover cannot bring the entry back: on a
 * shared backend with replicas the delete waits for them (store.redis.
 * wait_replicas, as the delete of a session always does) and answers
 * DZ_ERR_UNAVAILABLE when they do not acknowledge in time (the entry may
 * or may not survive a failover: not known to be deleted).  For a delete
 * that ends a right someone else holds (a revoked token, a withdrawn
 * consent).  0, DZ_ERR_NOTFOUND, or the backend's error. */
int dz_store_del_durable(struct dz_store *s, const char *ns, const void *key, size_t key_len);

/* Delete (ns,key) only if its value is still exactly val (what a get of it
 * returned): a compare-and-delete, so that a value another caller wrote
 * there since the read is never deleted.  0 (deleted), DZ_ERR_NOTFOUND
 * (absent or expired), DZ_ERR_EXISTS (it holds another value, kept), or,
 * like del, an error of the backend (DZ_ERR_UNAVAILABLE: not known to be
 * deleted, never reported as deleted).  Same keys, invalidations and
 * replica waits as del. */
int dz_store_del_if(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                    const void *val, size_t val_len);

/* Add one to a counter (created at 1 with ttl_ms if absent or expired; an
 * existing counter keeps its expiry).  *out_value is the new value.
 * DZ_ERR_FULL as for put. */
int dz_store_incr(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  uint64_t ttl_ms, int64_t *out_value);

/* Milliseconds left for a live key; DZ_ERR_NOTFOUND otherwise. */
int dz_store_ttl(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 uint64_t *out_ms);

/* Set a new time to live on a live key; DZ_ERR_NOTFOUND otherwise. */
int dz_store_touch(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                   uint64_t ttl_ms);

/*
 * Asynchronous forms of get, incr and touch for the worker loops (the
 * forward path: session read, sliding expiry, rate counter).  Same
 * arguments, checks and answers as the synchronous calls; the answer comes
 * through cb(arg, rc, value, data, len) exactly once, on loop's thread
 * (which must be the calling thread).  The in-process backend, a near-cache
 * hit, a local rate batch, a bad argument and an open circuit breaker
 * answer at once, before the call returns; a shared backend otherwise
 * answers when Redis does, or DZ_ERR_UNAVAILABLE after the command timeout,
 * and the loop runs other work meanwhile.  The caller keeps what arg points
 * to alive until cb (a request: hold it, and do not answer if it closed).
 * ns must be a constant string (it is kept until cb).
 */
void dz_store_get_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg);
void dz_store_incr_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                         size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg);
void dz_store_touch_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                          size_t key_len, uint64_t ttl_ms, dz_store_cb cb, void *arg);

/*
 * Asynchronous forms of put and del, for what the forward path writes now
 * and then (the first refusal of a minute, put NX; a session past its
 * absolute expiry, deleted).  Same arguments, checks, answers, keys,
 * sealing and replica waits as dz_store_put / dz_store_del, and the same
 * calling rules as the forms above; key and val are copied before the call
 * returns (the caller need not keep them).
 */
void dz_store_put_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, const void *val, size_t val_len, uint64_t ttl_ms, int flags,
                        dz_store_cb cb, void *arg);
void dz_store_del_async(struct dz_store *s, struct ev_loop *loop, const char *ns, const void *key,
                        size_t key_len, dz_store_cb cb, void *arg);

/*
 * Wake-ups.  An entry a browser waits for (a QR answer, an MSSP result) may
 * be written by another instance than the one holding the browser's long
 * poll.  The writer publishes (ns,key) after its write; every subscriber of
 * every instance sharing the store is then called with it.  Delivery is best
 * effort (a waiter still looks at the store itself now and then) and comes on
 * a thread of the backend's choosing: the in-process backend calls the
 * subscribers at once on the publisher's thread, a shared backend on its own
 * thread.  A subscriber only hands the news over to its loop.
 */
typedef void (*dz_store_wake_fn)(void *arg, const char *ns, const void *key, size_t key_len);

#define DZ_STORE_SUBSCRIBERS_MAX 8

/* Add a subscriber, at start-up before any publish.  0, DZ_ERR_INVAL,
 * DZ_ERR_TOOBIG (more than DZ_STORE_SUBSCRIBERS_MAX). */
int dz_store_subscribe(struct dz_store *s, dz_store_wake_fn fn, void *arg);

/* Tell every instance's subscribers that (ns,key) changed.  Never fails
 * loudly: a wake-up that cannot be sent is counted and dropped. */
void dz_store_publish(struct dz_store *s, const char *ns, const void *key, size_t key_len);

/* For backends: call this process's subscribers (from publish, or when a
 * shared backend hears of another instance's publish). */
void dz_store_deliver(struct dz_store *s, const char *ns, const void *key, size_t key_len);

/* Fill *out (zeroed first) with the backend's health.  Any thread; never
 * blocks (a shared backend reports what its last calls saw). */
void dz_store_health(struct dz_store *s, struct dz_store_health *out);

/* Whether the synchronous calls may wait on I/O (a shared backend): then a
 * loop thread must not make them (core/gwasync.h dz_gw_state runs them on
 * the blocking pool instead).  The in-process backend never waits. */
bool dz_store_waits(const struct dz_store *s);

/* Whether rc says the store could not answer (DZ_ERR_UNAVAILABLE from a
 * shared backend that is down or slow, DZ_ERR_NOMEM) rather than giving an
 * answer (NOTFOUND, EXISTS, FULL, ...).  A caller that gets such an rc
 * answers 503 state_unavailable: never absent, used, unlocked or fresh. */
bool dz_store_failed(int rc);

/* Live keys in a namespace (for the sessions gauge). */
size_t dz_store_count(struct dz_store *s, const char *ns);

/* NULL is a no-op. */
void dz_store_free(struct dz_store *s);

#endif
