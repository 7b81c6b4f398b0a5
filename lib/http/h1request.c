/*
 * h1request.c - strict HTTP/1.1 request head parsing (see h1request.h).
 * Reads only buf[0..len) and never more than max_head of it; writes only
 * *r and *head_len.
 */
#include "http/h1request.h"

#include <string.h>
#include <strings.h>

#include "base/compat.h"

/* tchar, RFC 9110 §5.6.2 */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-vchar, SP and HTAB; obs-text (0x80..0xff) allowed as RFC 9110
 * §5.5 still permits it in values. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The end of the line starting at p (the CR of its CRLF), or NULL when no
 * CRLF comes before end; *bad when a bare CR or LF shows up first. */
static const char *line_end(const char *p, const char *end, bool *bad)
{
    for (const char *q = p; q < end; q++) {
        if (*q == '\n') {
            *bad = true; /* a bare LF */
            return NULL;
        }
        if (*q == '\r') {
            if (q + 1 >= end)
                return NULL;
            if (q[1] != '\n') {
                *bad = true;
                return NULL;
            }
            return q;
        }
    }
    return NULL;
}

static enum dz_h1_rc parse_request_line(const char *p, const char *eol, struct dz_h1_request *r)
{
    const char *q = p;

    while (q < eol && is_tchar((unsigned char)*q))
        q++;
    if (q == p || q >= eol || *q != ' ')
        return DZ_H1_ERROR;
    r->method = p;
    r->method_len = (size_t)(q - p);
    p = ++q;
    while (q < eol && (unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f)
        q++;
    if (q == p || q >= eol || *q != ' ' || *p != '/')
        return DZ_H1_ERROR;
    r->target = p;
    r->target_len = (size_t)(q - p);
    p = q + 1;
    if (eol - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return DZ_H1_ERROR;
    r->minor = p[7] - '0';
    return DZ_H1_OK;
}

/* One field line p..eol: name ":" OWS value OWS. */
static enum dz_h1_rc parse_field(const char *p, const char *eol, struct dz_h1_request *r)
{
    const char *q = p;
    const char *v;
    const char *ve;
    size_t nlen;

    while (q < eol && is_tchar((unsigned char)*q))
        q++;
    if (q == p || q >= eol || *q != ':')
        return DZ_H1_ERROR; /* also white space before the colon (§5.1) */
    nlen = (size_t)(q - p);
    v = q + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    ve = eol;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    for (const char *c = v; c < ve; c++) {
        if (!is_value_char((unsigned char)*c))
            return DZ_H1_ERROR;
    }
    if (nlen == 4 && strncasecmp(p, "host", 4) == 0) {
        if (r->has_host)
            return DZ_H1_ERROR; /* two Host fields (§3.2) */
        r->has_host = true;
        r->host = v;
        r->host_len = (size_t)(ve - v);
    } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
        return DZ_H1_ERROR;
    } else if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
        if (ve - v != 1 || *v != '0')
            return DZ_H1_ERROR;
    }
    return DZ_H1_OK;
}

enum dz_h1_rc dz_h1_parse_request(const char *buf, size_t len, size_t max_head,
                                  struct dz_h1_request *r, size_t *head_len)
{
    const char *p = buf;
    const char *end;
    const char *eol;
    bool bad = false;
    bool first = true;

    memset(r, 0, sizeof(*r));
    *head_len = 0;
    end = buf + (len < max_head ? len : max_head);
    for (;;) {
        eol = line_end(p, end, &bad);
        if (bad)
            return DZ_H1_ERROR;
        if (!eol)
            return len > max_head ? DZ_H1_TOOBIG : DZ_H1_MORE;
        if (first) {
            if (parse_request_line(p, eol, r) != DZ_H1_OK)
                return DZ_H1_ERROR;
            first = false;
        } else if (eol == p) {
            break; /* the empty line */
        } else {
            if (*p == ' ' || *p == '\t')
                return DZ_H1_ERROR; /* obs-fold */
            if (++r->nfields > DZ_H1_REQUEST_FIELDS_MAX)
                return DZ_H1_TOOBIG;
            if (parse_field(p, eol, r) != DZ_H1_OK)
                return DZ_H1_ERROR;
        }
        p = eol + 2;
    }
    if (r->minor == 1 && !r->has_host)
        return DZ_H1_ERROR;
    *head_len = (size_t)(eol + 2 - buf);
    return DZ_H1_OK;
}
