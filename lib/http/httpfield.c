/*
 * httpfield.c - HTTP field syntax shared by the server engine and both
 * outbound transports (see httpfield.h).
 */
#include "http/httpfield.h"

#include <string.h>
#include <strings.h>

bool dz_http_is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

bool dz_http_token_ok(const char *s, size_t max)
{
    size_t i;

    if (!s || !*s)
        return false;
    for (i = 0; s[i]; i++)
        if (i >= max || !dz_http_is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool dz_http_value_ok(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;

    if (!v)
        return false;
    for (; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

enum dz_http_line dz_http_header_line(const char *p, size_t n, size_t *name_len, const char **value,
                                      size_t *value_len)
{
    const char *colon;
    const char *v;
    const char *end;
    size_t i;

    *name_len = 0;
    *value = NULL;
    *value_len = 0;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        return DZ_HTTP_LINE_STATUS;
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n == 0 || p[0] == ' ' || p[0] == '\t')
        return DZ_HTTP_LINE_SKIP; /* end of a block, or obsolete folding */
    colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return DZ_HTTP_LINE_SKIP;
    for (i = 0; p + i < colon; i++)
        if (!dz_http_is_tchar((unsigned char)p[i]))
            return DZ_HTTP_LINE_SKIP;
    v = colon + 1;
    end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    /* A control character inside a value (a bare CR, a NUL) would be
     * passed on to our own clients: such a header is dropped. */
    for (i = 0; v + i < end; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            return DZ_HTTP_LINE_SKIP;
    *name_len = (size_t)(colon - p);
    *value = v;
    *value_len = (size_t)(end - v);
    return DZ_HTTP_LINE_HEADER;
}

static bool in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return true;
    return false;
}

bool dz_http_connection_field(const char *name)
{
    static const char *const fields[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", NULL};

    return in_list(name, fields);
}

bool dz_http_framing_field(const char *name)
{
    static const char *const fields[] = {"content-length", "expect", "http2-settings", NULL};

    return dz_http_connection_field(name) || in_list(name, fields);
}
