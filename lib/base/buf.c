/* buf.c - bounded growable buffer; see buf.h.  Never grows past max. */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/secret.h"

void dz_buf_init(struct dz_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int dz_buf_append(struct dz_buf *b, const void *p, size_t n)
{
    size_t need;
    size_t cap;
    char *nd;

    /* Written as a subtraction so len + n cannot wrap.  A refused append frees
     * the buffer (buf.h): a caller that ignored the error would otherwise go on
     * with a silently truncated answer or a truncated message to sign. */
    if (n > b->max || b->len > b->max - n) {
        dz_buf_cleanup(b);
        return DZ_ERR_TOOBIG;
    }
    /* +1: the contents stay NUL-terminated, so cap may reach max + 1. */
    need = b->len + n + 1;
    if (need > b->cap) {
        cap = b->cap ? b->cap : 64;
        while (cap < need)
            /* Doubling keeps appends amortised O(1); the guard stops cap from
             * wrapping to a small value, which would make the memcpy overflow. */
            cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        /* Not realloc: it may move the block and free the old copy unwiped,
         * and a buffer may hold a secret (a body with a password, an
         * answer with a token).  The old copy is wiped before it goes. */
        nd = malloc(cap);
        if (!nd) {
            dz_buf_cleanup(b);
            return DZ_ERR_NOMEM;
        }
        if (b->data) {
            memcpy(nd, b->data, b->len);
            dz_secret_wipe(b->data, b->cap);
            free(b->data);
        }
        b->data = nd;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dz_buf_append_str(struct dz_buf *b, const char *s)
{
    return dz_buf_append(b, s, strlen(s));
}

int dz_buf_vappendf(struct dz_buf *b, const char *fmt, va_list ap)
{
    /* Most log and JSON fragments fit here, which saves a malloc per call. */
    char small[256];
    char *big = NULL;
    va_list cp;
    int n;
    int rc;

    /* ap is read twice (measure, then format into big), so the first pass
     * works on a copy. */
    va_copy(cp, ap);
    n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0) {
        dz_buf_cleanup(b);
        return DZ_ERR_INVAL;
    }
    if ((size_t)n < sizeof(small))
        return dz_buf_append(b, small, (size_t)n);
    big = malloc((size_t)n + 1);
    if (!big) {
        dz_buf_cleanup(b);
        return DZ_ERR_NOMEM;
    }
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    rc = dz_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

int dz_buf_appendf(struct dz_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = dz_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *dz_buf_cstr(const struct dz_buf *b)
{
    return b->data ? b->data : "";
}

int dz_buf_reserve(struct dz_buf *b, size_t n)
{
    char *nd;

    if (n > b->max) {
        dz_buf_cleanup(b);
        return DZ_ERR_TOOBIG;
    }
    if (n + 1 <= b->cap)
        return 0;
    nd = malloc(n + 1);
    if (!nd) {
        dz_buf_cleanup(b);
        return DZ_ERR_NOMEM;
    }
    /* Wiped before it goes, as in dz_buf_append. */
    if (b->data) {
        memcpy(nd, b->data, b->len + 1);
        dz_secret_wipe(b->data, b->cap);
        free(b->data);
    } else {
        nd[0] = '\0';
    }
    b->data = nd;
    b->cap = n + 1;
    return 0;
}

void dz_buf_reset(struct dz_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *dz_buf_steal(struct dz_buf *b, size_t *len)
{
    char *p = b->data;

    if (len)
        *len = b->len;
    if (!p)
        /* Callers get a freeable C string even for an empty buffer (buf.h);
         * NULL then means only out of memory. */
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void dz_buf_cleanup(struct dz_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dz_buf_wipe(struct dz_buf *b)
{
    if (b->data)
        /* The whole allocation, not just len: bytes past len may still hold
         * contents from before a dz_buf_reset. */
        OPENSSL_cleanse(b->data, b->cap);
    dz_buf_cleanup(b);
}
