/*
 * jsonout.c - JSON strings into a buffer as jansson writes them with
 * JSON_ENSURE_ASCII (see jsonout.h).  Moved here from the access-log line
 * builder so the audit line builder writes strings the same way.
 */
#include "base/jsonout.h"

#include <stdio.h>

#include "base/err.h"

#include "base/compat.h"

/* Decode one UTF-8 sequence at s[0..n) as jansson's utf8_check does (no
 * overlongs, no surrogates, at most U+10FFFF); its length, or 0. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

bool dz_json_utf8_valid(const char *s, size_t n)
{
    uint32_t cp;

    for (size_t i = 0; i < n;) {
        size_t k;
        if ((unsigned char)s[i] < 0x80) { /* ASCII, nearly every byte we see: no decoding */
            i++;
            continue;
        }
        k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Runs of plain bytes go in one append. */
int dz_json_put_string(struct dz_buf *b, const char *s, size_t n)
{
    const char *run = s;
    size_t i = 0;
    int rc;

    if ((rc = dz_buf_append(b, "\"", 1)) != 0)
        return rc;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t k;
        char seq[16];
        const char *text = seq;
        size_t len = 2;

        /* Printable ASCII but for '"' and '\\' goes as it is, undecoded. */
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (k == 0)
            return DZ_ERR_INVAL; /* checked before: cannot happen */
        if (cp >= 0x20 && cp <= 0x7f && cp != '"' && cp != '\\') {
            i += k;
            continue;
        }
        if (s + i > run && (rc = dz_buf_append(b, run, (size_t)(s + i - run))) != 0)
            return rc;
        switch (cp) {
        case '\\':
            text = "\\\\";
            break;
        case '"':
            text = "\\\"";
            break;
        case '\b':
            text = "\\b";
            break;
        case '\f':
            text = "\\f";
            break;
        case '\n':
            text = "\\n";
            break;
        case '\r':
            text = "\\r";
            break;
        case '\t':
            text = "\\t";
            break;
        default:
            if (cp < 0x10000) {
                snprintf(seq, sizeof(seq), "\\u%04X", (unsigned)cp);
                len = 6;
            } else {
                uint32_t v = cp - 0x10000;
                snprintf(seq, sizeof(seq), "\\u%04X\\u%04X", (unsigned)(0xd800 | (v >> 10)),
                         (unsigned)(0xdc00 | (v & 0x3ff)));
                len = 12;
            }
        }
        if ((rc = dz_buf_append(b, text, len)) != 0)
            return rc;
        i += k;
        run = s + i;
    }
    if (s + n > run && (rc = dz_buf_append(b, run, (size_t)(s + n - run))) != 0)
        return rc;
    return dz_buf_append(b, "\"", 1);
}
