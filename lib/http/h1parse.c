/* h1parse.c - see h1parse.h. */
#include "http/h1parse.h"

#include <string.h>
#include <strings.h>

#include "base/parse.h"

/* The end of the line starting at p (the LF), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

static bool status_line(const char *p, size_t n, struct dz_h1_head *h)
{
    /* "HTTP/1.x NNN" then SP and a reason (possibly empty) or the end. */
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ')
        return false;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    if (n > 12 && p[12] != ' ')
        return false;
    h->minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return h->status >= 100;
}

enum dz_h1_rc dz_h1_parse_head(const char *buf, size_t len, size_t max_head, struct dz_h1_head *h,
                               size_t *head_len)
{
    const char *end = buf + (len < max_head ? len : max_head);
    const char *p = buf;
    const char *lf;

    h->nhdr = 0;
    h->status = 0;
    *head_len = 0;
    lf = line_end(p, end);
    if (!lf)
        return len >= max_head ? DZ_H1_TOOBIG : DZ_H1_MORE;
    if (!status_line(p, (size_t)(lf - p), h))
        return DZ_H1_ERROR;
    p = lf + 1;
    for (;;) {
        size_t n, nl = 0, vl = 0;
        const char *v = NULL;

        lf = line_end(p, end);
        if (!lf)
            return len >= max_head ? DZ_H1_TOOBIG : DZ_H1_MORE;
        n = (size_t)(lf - p);
        if (n == 0 || (n == 1 && p[0] == '\r')) {
            *head_len = (size_t)(lf + 1 - buf);
            return DZ_H1_OK;
        }
        /* Obsolete folding and malformed fields are dropped, status-like
         * lines inside a head are malformed. */
        switch (dz_http_header_line(p, n + 1, &nl, &v, &vl)) {
        case DZ_HTTP_LINE_STATUS:
            return DZ_H1_ERROR;
        case DZ_HTTP_LINE_SKIP:
            break;
        case DZ_HTTP_LINE_HEADER:
            if (h->nhdr == DZ_HTTP_MAX_RESPONSE_FIELDS)
                return DZ_H1_TOOBIG;
            h->hdr[h->nhdr].name = p;
            h->hdr[h->nhdr].name_len = nl;
            h->hdr[h->nhdr].value = v;
            h->hdr[h->nhdr].value_len = vl;
            h->nhdr++;
            break;
        }
        p = lf + 1;
    }
}

static bool name_is(const struct dz_h1_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok, bool last_only)
{
    size_t tl = strlen(tok);
    bool found = false;
    size_t i = 0;

    while (i < n) {
        size_t s, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        found = e - s == tl && strncasecmp(v + s, tok, tl) == 0;
        if (found && !last_only)
            return true;
    }
    return found;
}

enum dz_h1_rc dz_h1_framing(const struct dz_h1_head *h, bool head_request,
                            enum dz_h1_framing *framing, uint64_t *length, bool *reusable)
{
    bool has_te = false, chunked = false, has_cl = false, close = false;
    uint64_t cl = 0;

    *length = 0;
    for (size_t i = 0; i < h->nhdr; i++) {
        const struct dz_h1_field *f = &h->hdr[i];

        if (name_is(f, "transfer-encoding")) {
            /* Only the last coding of the last field decides (RFC 9112 §6.3). */
            has_te = true;
            chunked = list_has(f->value, f->value_len, "chunked", true);
        } else if (name_is(f, "content-length")) {
            uint64_t v = 0;

            if (f->value_len == 0 || f->value_len > 15)
                return DZ_H1_ERROR;
            for (size_t k = 0; k < f->value_len; k++) {
                if (f->value[k] < '0' || f->value[k] > '9')
                    return DZ_H1_ERROR; /* also "5, 5": refused, not guessed */
                v = v * 10 + (uint64_t)(f->value[k] - '0');
            }
            if (has_cl && v != cl)
                return DZ_H1_ERROR;
            has_cl = true;
            cl = v;
        } else if (name_is(f, "connection")) {
            close = close || list_has(f->value, f->value_len, "close", false);
        }
    }
    *reusable = h->minor >= 1 && !close && !(has_te && has_cl);
    if (head_request || h->status < 200 || h->status == 204 || h->status == 304) {
        *framing = DZ_H1_NO_BODY;
    } else if (has_te) {
        *framing = chunked ? DZ_H1_CHUNKED : DZ_H1_TO_CLOSE;
    } else if (has_cl) {
        *framing = DZ_H1_LENGTH;
        *length = cl;
    } else {
        *framing = DZ_H1_TO_CLOSE;
    }
    if (*framing == DZ_H1_TO_CLOSE)
        *reusable = false;
    return DZ_H1_OK;
}

/* ---- chunked */

enum { CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_DONE };

#define CK_MAX_DIGITS 15       /* < 2^60 bytes: no overflow */
#define CK_MAX_LINE (8 * 1024) /* an extension or trailer line */

void dz_h1_chunked_init(struct dz_h1_chunked *s)
{
    memset(s, 0, sizeof(*s));
    s->state = CK_SIZE;
}

bool dz_h1_chunked_done(const struct dz_h1_chunked *s)
{
    return s->state == CK_DONE;
}

ssize_t dz_h1_chunked_step(struct dz_h1_chunked *s, const char *in, size_t len, const char **data,
                           size_t *data_len)
{
    size_t i = 0;

    *data = NULL;
    *data_len = 0;
    while (i < len && s->state != CK_DONE) {
        char ch = in[i];

        switch (s->state) {
        case CK_SIZE:
            if (dz_hex_digit(ch) >= 0) {
                if (++s->digits > CK_MAX_DIGITS)
                    return -1;
                s->left = s->left * 16 + (uint64_t)dz_hex_digit(ch);
            } else if (s->digits == 0) {
                return -1;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                s->state = CK_EXT;
                s->line = 0;
            } else if (ch == '\r') {
                s->state = CK_SIZE_LF;
            } else if (ch == '\n') {
                goto size_done;
            } else {
                return -1;
            }
            i++;
            break;
        case CK_EXT:
            /* Extensions are ignored; a bare CR inside one is not allowed. */
            if (ch == '\n')
                goto size_done;
            if (ch == '\r')
                s->state = CK_SIZE_LF;
            else if (++s->line > CK_MAX_LINE || ((unsigned char)ch < 0x20 && ch != '\t'))
                return -1;
            i++;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -1;
        size_done:
            i++;
            s->digits = 0;
            s->line = 0;
            s->state = s->left ? CK_DATA : CK_TRAILER;
            break;
        case CK_DATA: {
            size_t n = len - i;

            if (n > s->left)
                n = (size_t)s->left;
            *data = in + i;
            *data_len = n;
            s->left -= n;
            i += n;
            if (s->left == 0)
                s->state = CK_DATA_CR;
            return (ssize_t)i;
        }
        case CK_DATA_CR:
            if (ch == '\n') {
                s->state = CK_SIZE;
            } else if (ch == '\r') {
                s->state = CK_DATA_LF;
            } else {
                return -1;
            }
            i++;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return -1;
            s->state = CK_SIZE;
            i++;
            break;
        case CK_TRAILER:
            /* Trailer fields are skipped; the empty line ends the body. */
            if (ch == '\n') {
                if (s->line == 0)
                    s->state = CK_DONE;
                s->line = 0;
            } else if (ch != '\r' || s->line > 0) {
                if (++s->line > CK_MAX_LINE)
                    return -1;
            }
            i++;
            break;
        default:
            return -1;
        }
    }
    return (ssize_t)i;
}
