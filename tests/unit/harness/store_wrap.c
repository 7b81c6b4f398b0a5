/*
 * store_wrap.c - see store_wrap.h.
 */
#include "store_wrap.h"

#include <stdlib.h>

#include "base/err.h"
#include "state/store.h"

struct wrap {
    struct store_wrap pub;
    struct dz_store *inner;
};

static int ask(struct wrap *w, const char *op, const char *ns)
{
    return w->pub.before ? w->pub.before(&w->pub, op, ns) : 0;
}

static int w_put(void *i, enum dz_store_kind kind, const char *ns, const void *k, size_t kl,
                 const void *v, size_t vl, uint64_t ttl, int f)
{
    int rc = ask(i, "put", ns);

    (void)kind; /* the wrapped store finds it again */
    return rc ? rc : dz_store_put(((struct wrap *)i)->inner, ns, k, kl, v, vl, ttl, f);
}
static int w_get(void *i, const char *ns, const void *k, size_t kl, struct dz_buf *o)
{
    int rc = ask(i, "get", ns);

    return rc ? rc : dz_store_get(((struct wrap *)i)->inner, ns, k, kl, o);
}
static int w_take(void *i, const char *ns, const void *k, size_t kl, struct dz_buf *o)
{
    int rc = ask(i, "take", ns);

    return rc ? rc : dz_store_take(((struct wrap *)i)->inner, ns, k, kl, o);
}
static int w_del(void *i, const char *ns, const void *k, size_t kl)
{
    int rc = ask(i, "del", ns);

    return rc ? rc : dz_store_del(((struct wrap *)i)->inner, ns, k, kl);
}
static int w_del_durable(void *i, const char *ns, const void *k, size_t kl)
{
    int rc = ask(i, "del_durable", ns);

    return rc ? rc : dz_store_del_durable(((struct wrap *)i)->inner, ns, k, kl);
}
static int w_del_if(void *i, const char *ns, const void *k, size_t kl, const void *v, size_t vl)
{
    int rc = ask(i, "del_if", ns);

    return rc ? rc : dz_store_del_if(((struct wrap *)i)->inner, ns, k, kl, v, vl);
}
static int w_incr(void *i, enum dz_store_kind kind, const char *ns, const void *k, size_t kl,
                  uint64_t ttl, int64_t *o)
{
    int rc = ask(i, "incr", ns);

    (void)kind;
    return rc ? rc : dz_store_incr(((struct wrap *)i)->inner, ns, k, kl, ttl, o);
}
static int w_ttl(void *i, const char *ns, const void *k, size_t kl, uint64_t *o)
{
    int rc = ask(i, "ttl", ns);

    return rc ? rc : dz_store_ttl(((struct wrap *)i)->inner, ns, k, kl, o);
}
static int w_touch(void *i, const char *ns, const void *k, size_t kl, uint64_t ttl)
{
    int rc = ask(i, "touch", ns);

    return rc ? rc : dz_store_touch(((struct wrap *)i)->inner, ns, k, kl, ttl);
}
static size_t w_count(void *i, const char *ns)
{
    return ask(i, "count", ns) ? 0 : dz_store_count(((struct wrap *)i)->inner, ns);
}
static size_t w_kind_count(const void *i, enum dz_store_kind kind)
{
    return dz_store_kind_count(((const struct wrap *)i)->inner, kind);
}
static void w_free(void *i)
{
    struct wrap *w = i;

    dz_store_free(w->inner);
    free(w);
}

static const struct dz_store_ops wrap_ops = {
    .put = w_put,
    .get = w_get,
    .take = w_take,
    .del = w_del,
    .del_if = w_del_if,
    .del_durable = w_del_durable,
    .incr = w_incr,
    .ttl = w_ttl,
    .touch = w_touch,
    .count = w_count,
    .free = w_free,
    .kind_count = w_kind_count,
};

int store_wrap_new(struct dz_store *inner, struct store_wrap **w, struct dz_store **out)
{
    struct wrap *x = calloc(1, sizeof(*x));

    *out = NULL;
    if (!x) {
        dz_store_free(inner);
        return DZ_ERR_NOMEM;
    }
    x->inner = inner;
    *w = &x->pub;
    return dz_store_new(&wrap_ops, x, out);
}
