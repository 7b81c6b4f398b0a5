/*
 * store.c - the dz_store_* entry points: argument checks shared by every
 * backend, then one call through the backend's ops table.  It owns the
 * struct dz_store wrapper (ops + backend state) and nothing else; it never
 * looks inside keys or values, never logs them, and holds no lock itself
 * (each backend is responsible for its own thread safety).
 */
#include "state/store.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"

#include "base/compat.h"

/* Bounds every backend shares (store.h: "key or value over 64 KiB"). */
#define KEY_MAX (64u * 1024u)
#define VAL_MAX (64u * 1024u)
#define NS_MAX 64u

struct dz_store {
    const struct dz_store_ops *ops;
    void *impl;
};

/* Wrap a backend: ownership of impl moves to the store (ops->free releases
 * it, also here on failure). */
int dz_store_new(const struct dz_store_ops *ops, void *impl, struct dz_store **out)
{
    struct dz_store *s = NULL;

    *out = NULL;
    if (!ops || !ops->put || !ops->get || !ops->take || !ops->del || !ops->incr || !ops->ttl ||
        !ops->touch || !ops->count || !ops->free) {
        if (ops && ops->free && impl)
            ops->free(impl);
        return DZ_ERR_INVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        ops->free(impl);
        return DZ_ERR_NOMEM;
    }
    s->ops = ops;
    s->impl = impl;
    *out = s;
    return 0;
}

/* Namespace: a short non-empty constant such as "sess"; key: 1..64 KiB. */
static int check_key(const struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    size_t n;

    if (!s || !ns)
        return DZ_ERR_INVAL;
    n = strnlen(ns, NS_MAX + 1);
    if (n == 0 || n > NS_MAX)
        return DZ_ERR_INVAL;
    if (key_len > KEY_MAX)
        return DZ_ERR_TOOBIG;
    if (key_len == 0 || !key)
        return DZ_ERR_INVAL;
    return 0;
}

int dz_store_put(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 const void *val, size_t val_len, uint64_t ttl_ms, int flags)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (val_len > VAL_MAX)
        return DZ_ERR_TOOBIG;
    if ((val_len && !val) || ttl_ms == 0 || (flags & ~DZ_STORE_NX))
        return DZ_ERR_INVAL;
    return s->ops->put(s->impl, ns, key, key_len, val, val_len, ttl_ms, flags);
}

int dz_store_get(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 struct dz_buf *out)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (!out)
        return DZ_ERR_INVAL;
    return s->ops->get(s->impl, ns, key, key_len, out);
}

int dz_store_take(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  struct dz_buf *out)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (!out)
        return DZ_ERR_INVAL;
    return s->ops->take(s->impl, ns, key, key_len, out);
}

int dz_store_del(struct dz_store *s, const char *ns, const void *key, size_t key_len)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    return s->ops->del(s->impl, ns, key, key_len);
}

int dz_store_incr(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                  uint64_t ttl_ms, int64_t *out_value)
{
    int rc;

    if (out_value)
        *out_value = 0;
    rc = check_key(s, ns, key, key_len);
    if (rc)
        return rc;
    if (!out_value || ttl_ms == 0)
        return DZ_ERR_INVAL;
    return s->ops->incr(s->impl, ns, key, key_len, ttl_ms, out_value);
}

int dz_store_ttl(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                 uint64_t *out_ms)
{
    int rc;

    if (out_ms)
        *out_ms = 0;
    rc = check_key(s, ns, key, key_len);
    if (rc)
        return rc;
    if (!out_ms)
        return DZ_ERR_INVAL;
    return s->ops->ttl(s->impl, ns, key, key_len, out_ms);
}

int dz_store_touch(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                   uint64_t ttl_ms)
{
    int rc = check_key(s, ns, key, key_len);

    if (rc)
        return rc;
    if (ttl_ms == 0)
        return DZ_ERR_INVAL;
    return s->ops->touch(s->impl, ns, key, key_len, ttl_ms);
}

size_t dz_store_count(struct dz_store *s, const char *ns)
{
    size_t n;

    if (!s || !ns)
        return 0;
    n = strnlen(ns, NS_MAX + 1);
    if (n == 0 || n > NS_MAX)
        return 0;
    return s->ops->count(s->impl, ns);
}

void dz_store_free(struct dz_store *s)
{
    if (!s)
        return;
    s->ops->free(s->impl);
    free(s);
}
