/*
 * peer_auth.c - assertion checking for the peers; see peer_auth.h.  Owns the
 * current key set, the parked requests waiting for a key fetch and the jti
 * replay cache.  It never accepts a request whose assertion it could not
 * verify (no keys, fetch failed, cache full: refused), never logs a token,
 * and never blocks the loop (the fetch runs on the pool).
 */
#include "peer_auth.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secret.h"
#include "http/httpc.h"
#include "http/httpd.h"
#include "http/pool.h"
#include "keys/assertion.h"
#include "keys/jws.h"

#include "base/compat.h"

#define REPLAY_BUCKETS 4096 /* power of two */

struct waiter {
    struct dz_req *r; /* referenced */
    dz_peer_auth_cb cb;
    void *arg;
    struct waiter *next;
};

struct jti_entry {
    unsigned char key[32]; /* SHA-256 of the jti */
    double expires;        /* monotonic seconds */
    struct jti_entry *hnext;
    struct jti_entry *fnext; /* insertion order = expiry order */
};

struct dz_peer_auth {
    char *url;
    char *cacert;
    char *iss;
    char *aud;
    struct dz_pool *pool;

    struct dz_jwks *jwks;  /* current keys, NULL before the first good fetch */
    struct dz_jwks *empty; /* stands in for jwks before that */
    bool has_fetched;
    bool fetching;
    double last_fetch; /* monotonic start time of the last fetch */
    struct waiter *wait_head;
    struct waiter **wait_tail;

    struct jti_entry *bucket[REPLAY_BUCKETS];
    struct jti_entry *fifo_head;
    struct jti_entry *fifo_tail;
    size_t njti;
};

struct fetch_job {
    struct dz_peer_auth *a;
    struct dz_jwks *result; /* set by the pool thread on success */
    int rc;
};

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool dz_peer_auth_option(struct dz_peer_auth_conf *conf, int c, const char *arg)
{
    switch (c) {
    case 'j':
        conf->jwks_url = arg;
        return true;
    case 'a':
        conf->cacert = arg;
        return true;
    case 'i':
        conf->iss = arg;
        return true;
    case 'u':
        conf->aud = arg;
        return true;
    default:
        return false;
    }
}

int dz_peer_auth_new(const struct dz_peer_auth_conf *conf, struct dz_pool *pool,
                     struct dz_peer_auth **out)
{
    struct dz_peer_auth *a = NULL;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    if (!conf || !conf->jwks_url || !conf->iss || !conf->aud || !pool)
        return DZ_ERR_INVAL;
    /* The same rule as the gateway's outbound URLs: keys fetched in clear
     * across a network could be swapped on the way. */
    if (dz_outbound_url_problem(conf->jwks_url, NULL))
        return DZ_ERR_INVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return DZ_ERR_NOMEM;
    a->pool = pool;
    a->wait_tail = &a->wait_head;
    a->url = strdup(conf->jwks_url);
    a->cacert = conf->cacert ? strdup(conf->cacert) : NULL;
    a->iss = strdup(conf->iss);
    a->aud = strdup(conf->aud);
    if (!a->url || (conf->cacert && !a->cacert) || !a->iss || !a->aud)
        goto out;
    rc = dz_jwks_new(&a->empty);
    if (rc)
        goto out;
    *out = a;
    a = NULL;
    rc = 0;
out:
    dz_peer_auth_free(a);
    return rc;
}

void dz_peer_auth_free(struct dz_peer_auth *a)
{
    struct jti_entry *e, *next;

    if (!a)
        return;
    for (e = a->fifo_head; e; e = next) {
        next = e->fnext;
        free(e);
    }
    /* Parked requests only remain if the server stopped mid-fetch. */
    while (a->wait_head) {
        struct waiter *w = a->wait_head;

        a->wait_head = w->next;
        dz_req_unref(w->r);
        free(w);
    }
    dz_jwks_free(a->jwks);
    dz_jwks_free(a->empty);
    free(a->url);
    free(a->cacert);
    free(a->iss);
    free(a->aud);
    free(a);
}

/* ---- replay cache ---- */

static size_t bucket_of(const unsigned char key[32])
{
    size_t h;

    memcpy(&h, key, sizeof(h));
    return h & (REPLAY_BUCKETS - 1);
}

static void replay_expire(struct dz_peer_auth *a, double now)
{
    while (a->fifo_head && a->fifo_head->expires <= now) {
        struct jti_entry *e = a->fifo_head;
        struct jti_entry **pp = &a->bucket[bucket_of(e->key)];

        while (*pp && *pp != e)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = e->hnext;
        a->fifo_head = e->fnext;
        if (!a->fifo_head)
            a->fifo_tail = NULL;
        a->njti--;
        free(e);
    }
}

/* Remember jti; NULL when new, else the reason to refuse. */
static const char *replay_note(struct dz_peer_auth *a, const char *jti)
{
    double now = mono_now();
    struct jti_entry *e;
    unsigned char key[32];
    size_t b;

    replay_expire(a, now);
    dz_sha256(jti, strlen(jti), key);
    b = bucket_of(key);
    for (e = a->bucket[b]; e; e = e->hnext) {
        if (memcmp(e->key, key, sizeof(key)) == 0)
            return "replayed";
    }
    if (a->njti >= DZ_PEER_AUTH_REPLAY_MAX)
        return "replay_cache_full"; /* fail closed rather than forget */
    e = calloc(1, sizeof(*e));
    if (!e)
        return "internal_error";
    memcpy(e->key, key, sizeof(key));
    e->expires = now + DZ_PEER_AUTH_REPLAY_S;
    e->hnext = a->bucket[b];
    a->bucket[b] = e;
    if (a->fifo_tail)
        a->fifo_tail->fnext = e;
    else
        a->fifo_head = e;
    a->fifo_tail = e;
    a->njti++;
    return NULL;
}

/* ---- verification ---- */

/* Verify without touching the replay cache; *claims set on success. */
static int verify(struct dz_peer_auth *a, struct dz_req *r, json_t **claims, const char **reason)
{
    const char *token = dz_req_header(r, DZ_PEER_AUTH_HEADER);
    struct dz_assertion_expect e = {0};
    size_t blen = 0;
    const unsigned char *body = dz_req_body(r, &blen);

    *claims = NULL;
    *reason = "internal_error";
    if (!token || !*token) {
        *reason = "missing";
        return DZ_ERR_DENIED;
    }
    e.iss = a->iss;
    e.aud = a->aud;
    e.htm = dz_req_method(r);
    e.htu = dz_req_path(r);
    e.body = blen ? body : NULL;
    e.body_len = blen;
    e.leeway_s = DZ_PEER_AUTH_LEEWAY_S;
    return dz_assertion_verify(token, a->jwks ? a->jwks : a->empty, &e, claims, reason);
}

/* Turn a verification result into the verdict (with the replay check for
 * a valid token) and call cb.  Takes claims. */
static void finish(struct dz_peer_auth *a, struct dz_req *r, dz_peer_auth_cb cb, void *arg, int rc,
                   json_t *claims, const char *reason)
{
    const char *jti;

    if (rc != 0) {
        if (!a->jwks && strcmp(reason, "unknown_key") == 0)
            reason = "jwks_unavailable";
        json_decref(claims);
        cb(r, arg, NULL, reason);
        return;
    }
    jti = json_string_value(json_object_get(claims, "jti"));
    reason = jti && *jti ? replay_note(a, jti) : "malformed";
    cb(r, arg, reason ? NULL : claims, reason);
    json_decref(claims);
}

static void judge(struct dz_peer_auth *a, struct dz_req *r, dz_peer_auth_cb cb, void *arg)
{
    json_t *claims = NULL;
    const char *reason = NULL;
    int rc = verify(a, r, &claims, &reason);

    finish(a, r, cb, arg, rc, claims, reason);
}

/* ---- key fetch ---- */

static void fetch_work(void *arg)
{
    static const struct dz_hdr accept[] = {{"accept", "application/json"}};
    struct fetch_job *job = arg;
    struct dz_peer_auth *a = job->a;
    struct dz_httpc_tls tls = {.ca_file = a->cacert};
    struct dz_httpc_request req = {
        .method = "GET",
        .url = a->url,
        .headers = accept,
        .nheaders = 1,
        .version = DZ_HTTPC_H2,
        .timeout_ms = DZ_PEER_AUTH_FETCH_TIMEOUT_MS,
        .connect_timeout_ms = DZ_PEER_AUTH_FETCH_TIMEOUT_MS,
        .tls = &tls,
        .max_response_bytes = DZ_JWKS_JSON_MAX,
    };
    struct dz_buf body;
    int status = 0;
    int rc;

    dz_buf_init(&body, DZ_JWKS_JSON_MAX);
    rc = dz_http_fetch_blocking(&req, &status, &body);
    if (rc == 0 && status != 200)
        rc = DZ_ERR_UNAVAILABLE;
    if (rc == 0)
        rc = dz_jwks_parse(dz_buf_cstr(&body), body.len, &job->result);
    job->rc = rc;
    if (rc)
        dz_log(DZ_LOG_WARN, "peer_jwks", "cannot fetch keys from %s: %s (HTTP %d)", a->url,
               dz_err_str(rc), status);
    else
        dz_log(DZ_LOG_INFO, "peer_jwks", "fetched %zu keys from %s", dz_jwks_count(job->result),
               a->url);
    dz_buf_cleanup(&body);
}

/* Decide every parked request with the keys we now have. */
static void release_waiters(struct dz_peer_auth *a)
{
    struct waiter *w = a->wait_head;

    a->wait_head = NULL;
    a->wait_tail = &a->wait_head;
    while (w) {
        struct waiter *next = w->next;

        judge(a, w->r, w->cb, w->arg);
        dz_req_unref(w->r);
        free(w);
        w = next;
    }
}

static void fetch_done(void *arg)
{
    struct fetch_job *job = arg;
    struct dz_peer_auth *a = job->a;

    if (job->rc == 0) {
        dz_jwks_free(a->jwks);
        a->jwks = job->result;
    }
    free(job);
    a->fetching = false;
    release_waiters(a);
}

static bool may_fetch(const struct dz_peer_auth *a, double now)
{
    return !a->has_fetched || now - a->last_fetch >= DZ_PEER_AUTH_REFETCH_S;
}

static int start_fetch(struct dz_peer_auth *a, struct dz_req *r)
{
    struct fetch_job *job = calloc(1, sizeof(*job));
    int rc;

    if (!job)
        return DZ_ERR_NOMEM;
    job->a = a;
    rc = dz_pool_submit(a->pool, dz_req_worker(r), fetch_work, fetch_done, job);
    if (rc) {
        free(job);
        return rc;
    }
    a->fetching = true;
    a->has_fetched = true;
    a->last_fetch = mono_now();
    return 0;
}

static int park(struct dz_peer_auth *a, struct dz_req *r, dz_peer_auth_cb cb, void *arg)
{
    struct waiter *w = calloc(1, sizeof(*w));

    if (!w)
        return DZ_ERR_NOMEM;
    w->r = r;
    w->cb = cb;
    w->arg = arg;
    dz_req_ref(r);
    *a->wait_tail = w;
    a->wait_tail = &w->next;
    return 0;
}

void dz_peer_auth_check(struct dz_peer_auth *a, struct dz_req *r, dz_peer_auth_cb cb, void *arg)
{
    json_t *claims = NULL;
    const char *reason = NULL;
    int rc = verify(a, r, &claims, &reason);

    /* Only an unknown key is worth a fetch (first use, or a rotation);
     * a failed verification has not touched the replay cache, so the
     * parked request is simply verified again once the keys are in. */
    if (rc != 0 && strcmp(reason, "unknown_key") == 0 &&
        (a->fetching || may_fetch(a, mono_now())) && park(a, r, cb, arg) == 0) {
        json_decref(claims);
        if (a->fetching || start_fetch(a, r) == 0)
            return;
        /* The pool refused the fetch: decide now with what we have. */
        release_waiters(a);
        return;
    }
    finish(a, r, cb, arg, rc, claims, reason);
}
