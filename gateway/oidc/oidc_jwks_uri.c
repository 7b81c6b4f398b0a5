/*
 * oidc_jwks_uri.c - see oidc_jwks_uri.h.
 */
#include "oidc/oidc_jwks_uri.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "core/gen.h"
#include "core/gwasync.h"
#include "http/httpc.h"
#include "keys/jws.h"

#include "base/compat.h"

#define CACHE_MAX 256         /* clients with a jwks_uri, across reloads */
#define FETCH_TIMEOUT_MS 5000 /* a key set is small: a slow server is a broken one */

/* One client's set, keyed by client id and URL (a reload that changes the
 * URL starts afresh). */
struct entry {
    char key[DZ_OIDC_CLIENT_ID_MAX + DZ_OIDC_URI_MAX + 2];
    struct dz_jwks *keys; /* NULL until a fetch succeeded */
    int64_t fetched_ms;   /* when keys came */
    int64_t tried_ms;     /* when the last fetch started (the rate limit) */
    bool running;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry cache[CACHE_MAX];
static size_t used;

/* The entry of o (created when missing; the oldest-tried one is reused
 * when the table is full).  Lock held. */
static struct entry *entry_of(const struct dz_policy_oidc *o)
{
    char key[sizeof(cache[0].key)];
    struct entry *e = NULL;

    snprintf(key, sizeof(key), "%s %s", o->client_id, o->jwks_uri);
    for (size_t i = 0; i < used; i++)
        if (strcmp(cache[i].key, key) == 0)
            return &cache[i];
    if (used < CACHE_MAX) {
        e = &cache[used++];
    } else {
        for (size_t i = 0; i < used; i++)
            if (!cache[i].running && (!e || cache[i].tried_ms < e->tried_ms))
                e = &cache[i];
        if (!e)
            return NULL;
        dz_jwks_free(e->keys);
    }
    memset(e, 0, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    return e;
}

/* Whether a fetch may start now; if so it is marked running.  Lock held. */
static bool fetch_allowed(struct entry *e, const struct dz_policy_oidc *o, int64_t now)
{
    if (e->running || (e->tried_ms && now - e->tried_ms < (int64_t)o->jwks_min_interval_ms))
        return false;
    e->running = true;
    e->tried_ms = now;
    return true;
}

int dz_oidc_jwks_uri_verify(const struct dz_policy_oidc *o, const char *jwt, bool may_fetch,
                            json_t **claims, const char **reason)
{
    int64_t now = dz_unix_ms();
    struct entry *e;
    bool stale;
    int rc = DZ_ERR_DENIED;

    *claims = NULL;
    *reason = "no_key_set";
    pthread_mutex_lock(&lock);
    e = entry_of(o);
    if (!e) {
        pthread_mutex_unlock(&lock);
        return DZ_ERR_DENIED;
    }
    stale = !e->keys || now - e->fetched_ms >= (int64_t)o->jwks_max_age_ms;
    /* A stale set is still used while its refresh runs or waits for the
     * interval; a refresh that fails drops it (fetched() below). */
    if (e->keys)
        rc = dz_jws_verify_detail(jwt, strlen(jwt), e->keys, NULL, NULL, claims, reason);
    if (rc == 0 && !stale) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    if (may_fetch && (stale || strcmp(*reason, "unknown_key") == 0) && fetch_allowed(e, o, now)) {
        json_decref(*claims);
        *claims = NULL;
        pthread_mutex_unlock(&lock);
        return DZ_ERR_STATE;
    }
    pthread_mutex_unlock(&lock);
    return rc == 0 ? 0 : DZ_ERR_DENIED;
}

struct fetch_op {
    struct dz_rctx *c;
    const struct dz_policy_oidc *o; /* lives with c's generation */
    void (*done)(struct dz_rctx *c, void *arg);
    void *arg;
    struct dz_httpc_xfer *xfer;
};

/* The fetch is over (result: 0 a new set, else why not): store the set or
 * keep the rate limit's mark, and let the next fetch run. */
static void settle(const struct dz_policy_oidc *o, struct dz_jwks *keys, const char *why)
{
    int64_t now = dz_unix_ms();
    struct entry *e;
    size_t n = keys ? dz_jwks_count(keys) : 0;

    pthread_mutex_lock(&lock);
    e = entry_of(o);
    if (e) {
        e->running = false;
        if (keys) {
            dz_jwks_free(e->keys);
            e->keys = keys;
            e->fetched_ms = now;
            keys = NULL;
        } else if (e->keys && now - e->fetched_ms >= (int64_t)o->jwks_max_age_ms) {
            /* Past its age and not renewed: no longer trusted. */
            dz_jwks_free(e->keys);
            e->keys = NULL;
        }
    }
    pthread_mutex_unlock(&lock);
    dz_jwks_free(keys);
    dz_logj(why ? DZ_LOG_WARN : DZ_LOG_INFO, "oidc_jwks_fetched",
            json_pack("{s:s, s:s, s:s, s:I}", "client", o->client_id, "url", o->jwks_uri, "result",
                      why ? why : "ok", "keys", (json_int_t)n));
}

static void op_drop(void *p)
{
    struct fetch_op *op = p;

    /* The request went away first: the cache is free to fetch again. */
    settle(op->o, NULL, "cancelled");
    free(op);
}

static void cancel(struct dz_rctx *c)
{
    struct fetch_op *op = c->op;

    dz_gw_cancel_transfer(c, op ? &op->xfer : NULL, op_drop);
}

static void fetched(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                    const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct fetch_op *op = c->op;
    struct dz_jwks *keys = NULL;
    const char *why = NULL;
    int rc;

    c->op = NULL;
    c->cancel = NULL;
    op->xfer = NULL;
    if (result != 0)
        why = dz_httpc_reason_of(result);
    else if (status != 200)
        why = "not 200";
    else if ((rc = dz_jwks_parse((const char *)body, len, &keys)) != 0)
        why = rc == DZ_ERR_NOTFOUND ? "no usable key" : "not a valid JWK set";
    settle(op->o, keys, why);
    op->done(c, op->arg);
    free(op);
    dz_rctx_release(c);
}

void dz_oidc_jwks_fetch(struct dz_rctx *c, const struct dz_policy_oidc *o,
                        void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_tls tls = {cf->upstream_tls.ca, NULL, NULL};
    struct dz_hdr accept = {"accept", "application/jwk-set+json, application/json"};
    struct dz_httpc_request r = {.method = "GET",
                                 .url = o->jwks_uri,
                                 .headers = &accept,
                                 .nheaders = 1,
                                 .version = DZ_HTTPC_H2,
                                 .timeout_ms = FETCH_TIMEOUT_MS,
                                 .connect_timeout_ms = FETCH_TIMEOUT_MS,
                                 .tls = &tls,
                                 .max_response_bytes = DZ_JWKS_JSON_MAX};
    struct fetch_op *op = calloc(1, sizeof(*op));

    if (!op) {
        settle(o, NULL, "out of memory");
        done(c, arg);
        return;
    }
    *op = (struct fetch_op){c, o, done, arg, NULL};
    c->op = op;
    c->cancel = cancel;
    dz_rctx_hold(c);
    if (dz_httpc_fetch(c->gw_worker->httpc, &r, fetched, c, &op->xfer) != 0) {
        c->op = NULL;
        c->cancel = NULL;
        dz_rctx_release(c);
        free(op);
        settle(o, NULL, "the request could not start");
        done(c, arg);
    }
}

void dz_oidc_jwks_cache_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < used; i++)
        dz_jwks_free(cache[i].keys);
    memset(cache, 0, sizeof(cache));
    used = 0;
    pthread_mutex_unlock(&lock);
}
