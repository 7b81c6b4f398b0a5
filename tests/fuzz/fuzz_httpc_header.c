/*
 * fuzz_httpc_header.c - arbitrary bytes as the response-header lines a back
 * end sends, split at '\n' the way libcurl hands them to the client, through
 * dz_http_header_line.  Promises checked besides "no crash": a header's
 * name is a non-empty token at the start of the line, its value lies inside
 * the line, has no surrounding space or tab and no control character but
 * tab; anything else is skipped, never half-parsed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static void check_line(const char *p, size_t n)
{
    const char *v = NULL;
    size_t nl = 0;
    size_t vl = 0;
    size_t i;

    switch (dz_http_header_line(p, n, &nl, &v, &vl)) {
    case DZ_HTTP_LINE_STATUS:
        if (n < 5 || memcmp(p, "HTTP/", 5) != 0)
            abort();
        break;
    case DZ_HTTP_LINE_SKIP:
        if (nl || vl || v)
            abort();
        break;
    case DZ_HTTP_LINE_HEADER:
        if (nl == 0 || nl >= n || p[nl] != ':' || !v || v < p + nl + 1 || v + vl > p + n)
            abort();
        for (i = 0; i < nl; i++)
            if (!is_tchar((unsigned char)p[i]))
                abort();
        if (vl && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            abort();
        for (i = 0; i < vl; i++)
            if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
                abort();
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so reading past a line shows up under ASan. */
    char *buf = malloc(size ? size : 1);
    size_t start = 0;
    size_t i;

    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    for (i = 0; i < size; i++) {
        if (buf[i] == '\n') {
            check_line(buf + start, i + 1 - start);
            start = i + 1;
        }
    }
    if (start < size)
        check_line(buf + start, size - start);
    free(buf);
    return 0;
}
