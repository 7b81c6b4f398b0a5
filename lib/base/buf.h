/*
 * buf.h - a growable byte buffer with a hard maximum (curl's dynbuf idea).
 *
 * Every buffer is bounded when created.  A failing append frees the buffer
 * and returns an error, so no half-written state survives.  The contents are
 * always NUL-terminated (the NUL is not counted in len), so text can be used
 * as a C string.  Not thread-safe; owned by one thread at a time.
 */
#ifndef DZ_BUF_H
#define DZ_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct dz_buf {
    char *data; /* NULL until the first append */
    size_t len; /* bytes used, excluding the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the most len may ever reach */
};

/* Start an empty buffer that may hold at most max bytes. */
void dz_buf_init(struct dz_buf *b, size_t max);

/* Append n bytes. Returns 0, DZ_ERR_TOOBIG (max reached) or DZ_ERR_NOMEM;
 * on error the buffer has been freed (len 0).  The result must be looked
 * at: a caller that goes on after a failed append sends a truncated answer
 * or signs a truncated message. */
#define DZ_MUST_CHECK __attribute__((warn_unused_result))
DZ_MUST_CHECK int dz_buf_append(struct dz_buf *b, const void *p, size_t n);
DZ_MUST_CHECK int dz_buf_append_str(struct dz_buf *b, const char *s);
DZ_MUST_CHECK int dz_buf_appendf(struct dz_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
DZ_MUST_CHECK int dz_buf_vappendf(struct dz_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Make room for n bytes in all (not more than max) without changing the
 * contents, so a buffer whose size is known grows once.  Returns 0,
 * DZ_ERR_TOOBIG or DZ_ERR_NOMEM (and, like an append, frees on error). */
DZ_MUST_CHECK int dz_buf_reserve(struct dz_buf *b, size_t n);

/* The contents as a C string: "" for an empty buffer, never NULL. */
const char *dz_buf_cstr(const struct dz_buf *b);

/* Forget the contents, keep the allocation. */
void dz_buf_reset(struct dz_buf *b);

/* Take the allocation out of the buffer (caller frees with free()); the
 * buffer is left empty.  Returns a malloc'd "" for an empty buffer, or NULL
 * when out of memory. */
char *dz_buf_steal(struct dz_buf *b, size_t *len);

/* Free the contents. dz_buf_wipe also overwrites them first (secrets). */
void dz_buf_cleanup(struct dz_buf *b);
void dz_buf_wipe(struct dz_buf *b);

#endif
