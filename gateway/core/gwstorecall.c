/* gwstorecall.c - see gwstorecall.h. */
#include "core/gwstorecall.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gen.h"
#include "core/gwasync.h"
#include "http/httpd.h"
#include "state/store.h"

#include "base/compat.h"

#define KEY_MAX 64

struct call {
    struct dz_store *store; /* the gateway's: lives as long as the process */
    const char *ns;         /* a constant of the caller */
    bool take;
    unsigned char key[KEY_MAX];
    size_t key_len;
    unsigned char *val; /* put: a copy, wiped when freed */
    size_t val_len;
    uint64_t ttl_ms;
    int flags;
    struct dz_buf out; /* take: what was taken, wiped when freed */
    int rc;
    dz_gw_store_then then;
    void *arg;
};

static void call_free(struct call *k)
{
    if (k->val) {
        dz_secret_wipe(k->val, k->val_len);
        free(k->val);
    }
    dz_buf_wipe(&k->out);
    dz_secret_wipe(k->key, sizeof(k->key));
    free(k);
}

/* On the pool for a shared store (it may wait there), inline otherwise. */
static void call_work(void *p)
{
    struct call *k = p;

    k->rc = k->take ? dz_store_take(k->store, k->ns, k->key, k->key_len, &k->out)
                    : dz_store_put(k->store, k->ns, k->key, k->key_len, k->val, k->val_len,
                                   k->ttl_ms, k->flags);
}

static void call_done(struct dz_rctx *c, void *p)
{
    struct call *k = p;

    k->then(c, k->rc, &k->out, k->arg);
    call_free(k);
}

static int submit(struct dz_rctx *c, struct call *k)
{
    if (dz_gw_state(c, call_work, call_done, k) != 0) {
        call_free(k); /* answered 503 */
        return DZ_ERR_UNAVAILABLE;
    }
    return 0;
}

static struct call *call_new(struct dz_rctx *c, const char *ns, const void *key, size_t key_len,
                             dz_gw_store_then then, void *arg)
{
    struct call *k;

    if (key_len > KEY_MAX || !(k = calloc(1, sizeof(*k)))) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return NULL;
    }
    k->store = c->gw->store;
    k->ns = ns;
    memcpy(k->key, key, key_len);
    k->key_len = key_len;
    k->then = then;
    k->arg = arg;
    dz_buf_init(&k->out, 0);
    return k;
}

int dz_gw_store_put(struct dz_rctx *c, const char *ns, const void *key, size_t key_len,
                    const void *val, size_t val_len, uint64_t ttl_ms, int flags,
                    dz_gw_store_then then, void *arg)
{
    struct call *k = call_new(c, ns, key, key_len, then, arg);

    if (!k)
        return DZ_ERR_NOMEM;
    k->val = malloc(val_len ? val_len : 1);
    if (!k->val) {
        call_free(k);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return DZ_ERR_NOMEM;
    }
    memcpy(k->val, val, val_len);
    k->val_len = val_len;
    k->ttl_ms = ttl_ms;
    k->flags = flags;
    return submit(c, k);
}

int dz_gw_store_take(struct dz_rctx *c, const char *ns, const void *key, size_t key_len, size_t max,
                     dz_gw_store_then then, void *arg)
{
    struct call *k = call_new(c, ns, key, key_len, then, arg);

    if (!k)
        return DZ_ERR_NOMEM;
    k->take = true;
    dz_buf_init(&k->out, max);
    return submit(c, k);
}

static void del_answered(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    (void)arg;
    (void)rc;
    (void)value;
    (void)data;
    (void)len;
}

void dz_gw_store_del(struct dz_rctx *c, const char *ns, const void *key, size_t key_len)
{
    dz_store_del_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), ns, key, key_len,
                       del_answered, NULL);
}
