/*
 * oidc_expiry.c - see oidc_expiry.h.
 */
#include "oidc/oidc_expiry.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "core/gen.h"
#include "core/rctx.h"
#include "http/httpd.h"
#include "http/pool.h"
#include "oidc/oidc.h"
#include "oidc/oidc_expiry_index.h"
#include "state/session.h"
#include "state/store.h"

#include "base/compat.h"

#define NS_SLOT DZ_OIDC_NS_EXPIRY
#define NS_CLAIM "oidcexpc" /* bucket -> swept by one instance */
#define GRACE_BUCKETS 1     /* how far another instance's clock may be behind */
#define LOOK_BACK 12        /* buckets a starting instance looks back (one minute) */
#define KEEP_MS DZ_OIDC_EXPIRY_KEEP_MS

/* ------------------------------------------------------------ sweeper */

struct gone {
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char fin[8];
};

/* The sweeper's state.  busy is the one guard: set on the loop when a
 * sweep starts, cleared on the loop when its last logout token is sent, so
 * two sweeps never overlap.  While the store step runs on the pool, only
 * it touches next, gone, n and rc (the pool's hand-over orders the
 * accesses: the loop reads them again only in swept()). */
static struct {
    struct dz_gw_worker *w;
    ev_timer timer;
    bool started;
    bool busy;          /* a sweep is running (store step, or sending) */
    int64_t next;       /* the next bucket to sweep */
    int64_t now;        /* the sweep's clock (unix ms) */
    int rc;             /* the store step's error, or 0 */
    struct dz_rctx *bg; /* the context the tokens are sent with */
    struct gone *gone;
    size_t n, at;
} sw;

static void send_next(struct dz_rctx *c, void *arg)
{
    (void)arg;
    if (sw.at < sw.n) {
        struct gone *g = &sw.gone[sw.at++];
        dz_oidc_session_ended(c, g->sid, g->fin, send_next, NULL);
        return;
    }
    free(sw.gone);
    sw.gone = NULL;
    sw.n = sw.at = 0;
    sw.bg = NULL;
    sw.busy = false;
    dz_rctx_release(c);
}

static void drop_gone(void)
{
    free(sw.gone);
    sw.gone = NULL;
    sw.n = 0;
}

/* Sweep bucket b: 0, or a store error (the bucket is tried again). */
static int sweep(struct dz_store *st, int64_t b, int64_t now)
{
    unsigned char key[12];
    struct dz_buf v;
    int64_t count = 0;
    int rc;

    dz_oidc_expiry_bucket_key(b, key);
    rc = dz_store_put(st, NS_CLAIM, key, 8, "1", 1, KEEP_MS, DZ_STORE_NX);
    if (rc == DZ_ERR_EXISTS)
        return 0; /* another instance has it */
    if (rc != 0)
        return rc;
    /* The counter's next value: the slots are 1 .. count - 1 (nobody
     * writes to a bucket this old any more). */
    rc = dz_store_incr(st, NS_SLOT, key, 8, KEEP_MS, &count);
    if (rc != 0)
        return rc;
    if (count - 1 > DZ_OIDC_EXPIRY_SLOTS_MAX) {
        dz_logj(DZ_LOG_WARN, "oidc_expiry_full",
                json_pack("{s:I, s:I}", "sessions", (json_int_t)(count - 1), "swept",
                          (json_int_t)DZ_OIDC_EXPIRY_SLOTS_MAX));
        count = DZ_OIDC_EXPIRY_SLOTS_MAX + 1;
    }
    if (count <= 1)
        return 0;
    sw.gone = calloc((size_t)count - 1, sizeof(*sw.gone));
    if (!sw.gone)
        return DZ_ERR_NOMEM;
    for (int64_t i = 1; i < count; i++) {
        uint64_t left = 0;
        const unsigned char *d;
        size_t flen;

        key[8] = (unsigned char)(i >> 24);
        key[9] = (unsigned char)(i >> 16);
        key[10] = (unsigned char)(i >> 8);
        key[11] = (unsigned char)i;
        dz_buf_init(&v, 64);
        if (dz_store_take(st, NS_SLOT, key, sizeof(key), &v) != 0 || v.len < 33 || v.len > 32 + 7) {
            dz_buf_wipe(&v);
            continue; /* a writer that failed half way, or already swept */
        }
        d = (const unsigned char *)v.data;
        flen = v.len - 32;
        rc = dz_store_ttl(st, DZ_SESSION_NS, d, 32, &left);
        if (rc == 0 || dz_store_failed(rc)) {
            /* Alive (its idle expiry moved on), or the store cannot say:
             * look again when it would expire next. */
            char fin[8] = {0};
            memcpy(fin, d + 32, flen);
            dz_oidc_expiry_enqueue(st, d, fin,
                                   now + (rc == 0 ? (int64_t)left : DZ_OIDC_EXPIRY_BUCKET_MS), now);
        } else {
            struct gone *g = &sw.gone[sw.n++];
            dz_b64_encode_to(d, 32, true, g->sid);
            memcpy(g->fin, d + 32, flen);
        }
        dz_buf_wipe(&v);
    }
    return 0;
}

/* Store step (on the blocking pool when the store may wait, so the loop
 * never waits on Redis; inline for the in-process store): sweep the
 * buckets that are over, up to the first with sessions gone. */
static void sweep_work(void *arg)
{
    struct dz_store *st = arg;
    int64_t horizon = sw.now / DZ_OIDC_EXPIRY_BUCKET_MS - 1 - GRACE_BUCKETS;

    sw.rc = 0;
    if (sw.next == 0)
        sw.next = horizon - LOOK_BACK;
    while (sw.next <= horizon) {
        sw.rc = sweep(st, sw.next, sw.now);
        if (sw.rc != 0) {
            drop_gone();
            return; /* this bucket again at the next tick */
        }
        sw.next++;
        if (sw.n > 0)
            return; /* one bucket's sending at a time */
        drop_gone();
    }
}

/* Back on the loop: send the logout tokens of the sessions found gone. */
static void swept(void *arg)
{
    (void)arg;
    if (sw.rc != 0)
        dz_logj(DZ_LOG_WARN, "oidc_expiry_sweep", json_pack("{s:s}", "error", dz_err_str(sw.rc)));
    if (sw.n > 0) {
        sw.bg = dz_rctx_background(sw.w, "exp");
        if (sw.bg) {
            sw.at = 0;
            send_next(sw.bg, NULL); /* clears busy after the last */
            return;
        }
        drop_gone();
    }
    sw.busy = false;
}

static void tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dz_store *st = sw.w->gw->store;

    (void)loop;
    (void)t;
    (void)revents;
    if (sw.busy)
        return;
    sw.busy = true;
    sw.now = dz_unix_ms();
    if (dz_store_waits(st)) {
        /* The pool holds the worker's drain for the job, so a stop waits
         * for a sweep in flight, within the drain's grace. */
        if (dz_pool_submit(sw.w->gw->pool, sw.w->worker, sweep_work, swept, st) != 0)
            sw.busy = false; /* the pool is full: the next tick tries again */
        return;
    }
    sweep_work(st);
    swept(NULL);
}

int dz_oidc_expiry_start(struct dz_gw_worker *w)
{
    if (sw.started)
        return DZ_ERR_STATE;
    sw.w = w;
    sw.next = 0;
    ev_timer_init(&sw.timer, tick, DZ_OIDC_EXPIRY_TICK_MS / 1000.0,
                  DZ_OIDC_EXPIRY_TICK_MS / 1000.0);
    ev_timer_start(dz_worker_loop(w->worker), &sw.timer);
    sw.started = true;
    return 0;
}

void dz_oidc_expiry_stop(struct dz_gw_worker *w)
{
    if (!sw.started || sw.w != w)
        return;
    ev_timer_stop(dz_worker_loop(w->worker), &sw.timer);
    sw.started = false;
}
