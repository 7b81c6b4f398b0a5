/*
 * storebg.c - see storebg.h.
 */
#include "core/storebg.h"

#include <stdlib.h>
#include <string.h>

#include "http/pool.h"
#include "state/store.h"

#include "base/compat.h"

#define KEY_MAX 128

struct del_op {
    struct dz_store *store;
    const char *ns;
    unsigned char key[KEY_MAX];
    size_t key_len;
};

static void del_work(void *arg)
{
    struct del_op *op = arg;

    /* The answer is not needed: an absent key is gone already, and a
     * backend failure is counted by the backend and ends with the TTL. */
    (void)dz_store_del(op->store, op->ns, op->key, op->key_len);
}

static void del_done(void *arg)
{
    free(arg);
}

void dz_gw_store_del(struct dz_rctx *c, const char *ns, const void *key, size_t key_len)
{
    struct dz_store *s = c->gw->store;
    struct del_op *op;

    if (!dz_store_waits(s) || key_len > KEY_MAX || !(op = malloc(sizeof(*op)))) {
        (void)dz_store_del(s, ns, key, key_len);
        return;
    }
    op->store = s;
    op->ns = ns;
    memcpy(op->key, key, key_len);
    op->key_len = key_len;
    if (dz_pool_submit(c->gw->pool, c->gw_worker->worker, del_work, del_done, op) != 0) {
        free(op);
        (void)dz_store_del(s, ns, key, key_len);
    }
}
