/*
 * startlimit.c - per-address and global limits on unauthenticated starts
 * (see startlimit.h).
 */
#include "core/startlimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "core/addrkey.h"
#include "core/config.h"
#include "core/gen.h"
#include "http/httpd.h"
#include "state/store.h"

#include "base/compat.h"

#define NS "lim_start"

/* The store key of one count: (endpoint, window number, who). */
static int count_key(char *key, size_t cap, const char *endpoint, int64_t window, const char *who,
                     size_t who_len, size_t *len)
{
    int n = snprintf(key, cap, "%s|%lld|", endpoint, (long long)window);

    if (n < 0 || (size_t)n + who_len > cap)
        return -1;
    memcpy(key + n, who, who_len);
    *len = (size_t)n + who_len;
    return 0;
}

/* 429 rate_limited with the seconds left in the window. */
static void refuse(struct dz_rctx *c, uint64_t window_ms, int64_t now)
{
    char retry[24];

    snprintf(retry, sizeof(retry), "%lld",
             (long long)(((int64_t)window_ms - now % (int64_t)window_ms + 999) / 1000));
    dz_rctx_problem_h(c, "rate_limited", "too many starts; wait for the window to end",
                      &(struct dz_hdr){"retry-after", retry}, 1);
}

struct dz_start_limit dz_start_limit_of(struct dz_rctx *c, const char *endpoint)
{
    const struct dz_config_limits *l = &c->gen->config->limits;

    return (struct dz_start_limit){endpoint, 60000, l->starts_per_address, l->starts_global};
}

/* dz_start_check's walk: step 2i counts limit i for the address, step
 * 2i+1 for everyone (skipped when its global is 0). */
struct start_op {
    struct dz_rctx *c;
    struct dz_start_limit lim[DZ_START_LIMITS_MAX];
    size_t n, step;
    int64_t now;
    struct dz_addr_key ak;
    void (*then)(struct dz_rctx *c, bool ok, void *arg);
    void *arg;
};

static void start_end(struct start_op *op, bool ok)
{
    struct dz_rctx *c = op->c;
    void (*then)(struct dz_rctx *, bool, void *) = op->then;
    void *arg = op->arg;

    free(op);
    then(c, ok && !c->closed, arg);
    dz_rctx_release(c);
}

static void start_next(struct start_op *op);

static void start_counted(void *p, int rc, int64_t value, const void *data, size_t len)
{
    struct start_op *op = p;
    const struct dz_start_limit *l = &op->lim[op->step / 2];

    (void)data;
    (void)len;
    if (op->c->closed) {
        start_end(op, false);
        return;
    }
    if (rc < 0) {
        dz_rctx_state_unavailable(op->c, rc);
        start_end(op, false);
        return;
    }
    if (value > (int64_t)(op->step % 2 ? l->global : l->per_address)) {
        refuse(op->c, l->window_ms, op->now);
        start_end(op, false);
        return;
    }
    op->step++;
    start_next(op);
}

static void start_next(struct start_op *op)
{
    const struct dz_start_limit *l;
    int64_t window;
    char key[160];
    size_t len;

    for (;;) {
        if (op->step >= 2 * op->n) {
            start_end(op, true);
            return;
        }
        l = &op->lim[op->step / 2];
        if (op->step % 2 == 0 || l->global)
            break;
        op->step++;
    }
    window = op->now / (int64_t)l->window_ms;
    if ((op->step % 2 ? count_key(key, sizeof(key), l->endpoint, window, "*", 1, &len)
                      : count_key(key, sizeof(key), l->endpoint, window, (const char *)op->ak.b,
                                  op->ak.len, &len)) != 0) {
        dz_rctx_state_unavailable(op->c, DZ_ERR_INVAL);
        start_end(op, false);
        return;
    }
    dz_store_incr_async(op->c->gw->store, dz_worker_loop(op->c->gw_worker->worker), NS, key, len,
                        l->window_ms, start_counted, op);
}

void dz_start_check(struct dz_rctx *c, const struct dz_start_limit *limits, size_t n,
                    void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg)
{
    struct start_op *op = NULL;
    size_t i;

    if (n > DZ_START_LIMITS_MAX || !(op = calloc(1, sizeof(*op)))) {
        dz_rctx_state_unavailable(c, DZ_ERR_NOMEM);
        then(c, false, arg);
        return;
    }
    *op = (struct start_op){.c = c, .n = n, .now = dz_unix_ms(), .then = then, .arg = arg};
    for (i = 0; i < n; i++) {
        op->lim[i] = limits[i];
        if (op->lim[i].window_ms == 0)
            op->lim[i].window_ms = 60000;
    }
    if (dz_addr_key(dz_req_peer_ip(c->req), &op->ak) != 0) {
        free(op);
        dz_rctx_state_unavailable(c, DZ_ERR_INVAL);
        then(c, false, arg);
        return;
    }
    dz_rctx_hold(c);
    start_next(op);
}
