/*
 * store_wrap.h - a store (state/store.h) that passes every call to another
 * one, after asking the test: a hook called before each call may answer it
 * with an error instead (a shared store failing at one chosen step), or do
 * something first (another instance writing between a read and a write).
 * Only the synchronous calls are wrapped: the asynchronous forms fall back
 * to them, so the hook sees those too.
 */
#ifndef DZ_TEST_STORE_WRAP_H
#define DZ_TEST_STORE_WRAP_H

struct dz_store;

struct store_wrap {
    /* Before each call: op is "put", "get", "take", "del", "del_if",
     * "del_durable", "incr", "ttl", "touch" or "count", ns its namespace.
     * Return 0 to pass the call on, or the error to answer with.  NULL:
     * pass all. */
    int (*before)(struct store_wrap *w, const char *op, const char *ns);
    void *arg; /* the test's */
};

/* Wrap inner (the new store owns it and frees it with itself, or at once
 * on failure); *w is the wrapper's hook, valid as long as *out.  0 or
 * DZ_ERR_NOMEM. */
int store_wrap_new(struct dz_store *inner, struct store_wrap **w, struct dz_store **out);

#endif
