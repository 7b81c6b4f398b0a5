/* buf.c - bounded growable buffer; see buf.h.  Never grows past max. */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"

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

    if (n > b->max || b->len > b->max - n) {
        dz_buf_cleanup(b);
        return DZ_ERR_TOOBIG;
    }
    need = b->len + n + 1;
    if (need > b->cap) {
        cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        nd = realloc(b->data, cap);
        if (!nd) {
            dz_buf_cleanup(b);
            return DZ_ERR_NOMEM;
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
    char small[256];
    char *big = NULL;
    va_list cp;
    int n;
    int rc;

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
        OPENSSL_cleanse(b->data, b->cap);
    dz_buf_cleanup(b);
}
