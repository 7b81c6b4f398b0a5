/*
 * accessline.c - dz_accesslog_format (ops/accesslog.h): one access-log line
 * written straight into a buffer.  It runs on the loop thread for every
 * request, and a jansson object built and dumped per line cost about 8 µs
 * of the 150 µs a forwarded request costs (docs/performance.md); this
 * writer does the same in a fraction of that.  The output is byte for byte
 * what json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6))
 * wrote for the same object (test_accesslog checks it against jansson): the
 * members in the same order, strings escaped the same way, a value that is
 * not UTF-8 left out, reals printed as jansson prints them.
 */
#include "ops/accesslog.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/jsonout.h"
#include "base/timefmt.h"

#include "base/compat.h"

#define PATH_LOG_MAX 2048          /* bytes of a path logged; longer ones are cut and said so */
#define LINE_MAX_BYTES (64 * 1024) /* a line longer than this is a bug upstream */
#define LINE_RESERVE 511           /* + 1 for the NUL: one 512-byte block */

/* '{"key":' for the first member, ',"key":' after (keys are plain ASCII). */
static int put_key(struct dz_buf *b, const char *key)
{
    int rc = dz_buf_append(b, b->len ? ",\"" : "{\"", 2);

    if (rc == 0)
        rc = dz_buf_append_str(b, key);
    return rc ? rc : dz_buf_append(b, "\":", 2);
}

/* A string member; a value that is not UTF-8 is left out rather than
 * breaking the line (json_string refused it the same way). */
static int put_str(struct dz_buf *b, const char *key, const char *v)
{
    size_t n;
    int rc;

    if (!v || !dz_json_utf8_valid(v, n = strlen(v)))
        return 0;
    if ((rc = put_key(b, key)) != 0)
        return rc;
    return dz_json_put_string(b, v, n);
}

static int put_int(struct dz_buf *b, const char *key, long long v)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", v);
    int rc = put_key(b, key);

    return rc ? rc : dz_buf_append(b, digits, (size_t)n);
}

/* A real as jansson writes it with precision 6: "%.6g", ".0" added when
 * the result would read back as an integer, the exponent without '+' and
 * without leading zeros. */
static int put_real(struct dz_buf *b, const char *key, double v)
{
    char num[64];
    int n = snprintf(num, sizeof(num) - 3, "%.6g", v);
    size_t len;
    char *start, *end;
    int rc;

    if (n < 0)
        return DZ_ERR_INVAL;
    len = (size_t)n;
    if (!strchr(num, '.') && !strchr(num, 'e')) {
        memcpy(num + len, ".0", 3);
        len += 2;
    }
    start = strchr(num, 'e');
    if (start) {
        start++;
        end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - num) + 1);
            len -= (size_t)(end - start);
        }
    }
    if ((rc = put_key(b, key)) != 0)
        return rc;
    return dz_buf_append(b, num, len);
}

static bool has_fin_segment(const char *path, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t start;
        char fin[DZ_FIN_LEN + 1];

        while (i < len && path[i] == '/')
            i++;
        start = i;
        while (i < len && path[i] != '/')
            i++;
        if (dz_fin_normalize(path + start, i - start, fin) == 0)
            return true;
    }
    return false;
}

/* The path as printable ASCII: other bytes percent-encoded, so a log
 * reader never meets a control character or a broken UTF-8 sequence. */
static int put_path(struct dz_buf *b, const char *path, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char out[PATH_LOG_MAX * 3 + 1];
    bool cut = len > PATH_LOG_MAX;
    size_t n = 0;
    int rc;

    if (cut)
        len = PATH_LOG_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch > 0x20 && ch < 0x7f) {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    if ((rc = put_key(b, "path")) != 0 || (rc = dz_json_put_string(b, out, n)) != 0)
        return rc;
    if (cut && ((rc = put_key(b, "path_cut")) != 0 || (rc = dz_buf_append(b, "true", 4)) != 0))
        return rc;
    return 0;
}

int dz_accesslog_format(const struct dz_access_entry *e, bool log_fin, char **out, size_t *out_len)
{
    char when[DZ_RFC3339_MS_MAX];
    struct dz_buf b;
    size_t plen = e->path ? strcspn(e->path, "?") : 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    dz_buf_init(&b, LINE_MAX_BYTES);
    /* A line is a few hundred bytes (a forwarded request's about 340): room for it at once,
     * rather than four doublings from 64 (four allocations and copies). */
    if ((rc = dz_buf_reserve(&b, LINE_RESERVE)) != 0)
        return rc;
    dz_rfc3339_ms(e->time_ms, when);
    if ((rc = put_str(&b, "time", when)) != 0 || (rc = put_str(&b, "rid", e->rid)) != 0 ||
        (rc = put_str(&b, "gw", e->gw)) != 0 || (rc = put_str(&b, "host", e->host)) != 0 ||
        (rc = put_str(&b, "client", e->client)) != 0 ||
        (rc = put_str(&b, "method", e->method)) != 0 ||
        (rc = put_str(&b, "route", e->route)) != 0 ||
        (rc = put_str(&b, "service", e->service)) != 0)
        goto out;
    if (e->path &&
        (log_fin || e->path_kind == DZ_ACCESS_PATH_SAFE ||
         (e->path_kind == DZ_ACCESS_PATH_UNKNOWN && !has_fin_segment(e->path, plen))) &&
        (rc = put_path(&b, e->path, plen)) != 0)
        goto out;
    if ((rc = put_int(&b, "status", e->status)) != 0 ||
        (rc = put_int(&b, "bytes", (long long)e->bytes)) != 0 ||
        (rc = put_real(&b, "dur_ms", (double)e->dur_us / 1000.0)) != 0)
        goto out;
    if (e->upstream_status && ((rc = put_int(&b, "up_status", e->upstream_status)) != 0 ||
                               (rc = put_real(&b, "up_ms", (double)e->upstream_us / 1000.0)) != 0))
        goto out;
    if ((rc = put_str(&b, "sid", e->sid)) != 0 || (rc = put_str(&b, "means", e->means)) != 0 ||
        (rc = put_str(&b, "acr", e->acr)) != 0 || (rc = dz_buf_append(&b, "}\n", 2)) != 0)
        goto out;
    *out = dz_buf_steal(&b, out_len);
    rc = *out ? 0 : DZ_ERR_NOMEM;
out:
    dz_buf_cleanup(&b);
    /* The header promises 0 or DZ_ERR_NOMEM: a line over its bound is
     * dropped like one that could not be allocated. */
    return rc == 0 ? 0 : DZ_ERR_NOMEM;
}
