/*
 * oidc_offloop.c - see oidc_offloop.h.
 */
#include "oidc/oidc_offloop.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "http/pool.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#include "base/compat.h"

struct offloop_job {
    struct dz_rctx *c;
    void (*work)(void *arg);
    void (*done)(struct dz_rctx *c, void *arg);
    void *arg;
};

static void job_work(void *p)
{
    struct offloop_job *j = p;

    j->work(j->arg);
}

static void job_done(void *p)
{
    struct offloop_job *j = p;
    struct dz_rctx *c = j->c;

    /* done first, release last: the release may free c. */
    j->done(c, j->arg);
    free(j);
    dz_rctx_release(c);
}

int dz_oidc_offloop(struct dz_rctx *c, void (*work)(void *arg),
                    void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    struct offloop_job *j;

    if (!dz_store_waits(c->gw->store)) {
        work(arg);
        done(c, arg);
        return 0;
    }
    j = malloc(sizeof(*j));
    if (!j)
        return DZ_ERR_UNAVAILABLE;
    *j = (struct offloop_job){c, work, done, arg};
    /* The hold is taken here, on the loop (refs is loop-thread only), and
     * dropped by job_done on the loop. */
    dz_rctx_hold(c);
    if (dz_pool_submit(c->gw->pool, c->gw_worker->worker, job_work, job_done, j) != 0) {
        dz_rctx_release(c);
        free(j);
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

struct revoke_job {
    struct dz_store *st;
    char token[DZ_OIDC_SECRET_LEN + 1];
};

static void revoke_work(void *p)
{
    struct revoke_job *r = p;

    dz_oidc_state_del(r->st, DZ_OIDC_NS_TOKEN, r->token);
}

static void revoke_done(struct dz_rctx *c, void *p)
{
    struct revoke_job *r = p;

    (void)c;
    dz_secret_wipe(r->token, sizeof(r->token));
    free(r);
}

void dz_oidc_revoke_token(struct dz_rctx *c, const char *access_token)
{
    struct revoke_job *r = calloc(1, sizeof(*r));

    if (r) {
        r->st = c->gw->store;
        snprintf(r->token, sizeof(r->token), "%s", access_token);
        if (dz_oidc_offloop(c, revoke_work, revoke_done, r) == 0)
            return;
        revoke_done(c, r);
    }
    /* No memory or no room on the pool: a token that must not be held is
     * worth one wait on the loop. */
    dz_oidc_state_del(c->gw->store, DZ_OIDC_NS_TOKEN, access_token);
}
