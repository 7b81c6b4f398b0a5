/*
 * oidc_offloop.c - see oidc_offloop.h.
 */
#include "oidc/oidc_offloop.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

#include "base/compat.h"

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
        if (dz_gw_state_try(c, revoke_work, revoke_done, r) == 0)
            return;
        revoke_done(c, r);
    }
    /* No memory or no room on the pool: a token that must not be held is
     * worth one wait on the loop. */
    dz_oidc_state_del(c->gw->store, DZ_OIDC_NS_TOKEN, access_token);
}
