/*
 * h1parse.h - the pieces of an HTTP/1.1 response a client must parse
 * (RFC 9112): the head (status line and header fields) and the chunked
 * transfer coding.  Pure functions over caller buffers, no allocation, so
 * they can be fuzzed on their own.  Used by lib/http/h1client.c; what the
 * bytes come from (a back end) is outside input.
 */
#ifndef DZ_H1PARSE_H
#define DZ_H1PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/httpfield.h"

enum dz_h1_rc {
    DZ_H1_OK = 0,     /* a complete head was parsed */
    DZ_H1_MORE = 1,   /* not complete yet: read more */
    DZ_H1_ERROR = -1, /* malformed: the connection cannot be trusted */
    DZ_H1_TOOBIG = -2 /* over max_head bytes or DZ_HTTP_MAX_RESPONSE_FIELDS fields */
};

/* A header field of a parsed head: pointers into the parsed buffer; the
 * name is a token as received (not lower-cased), the value without
 * surrounding white space. */
struct dz_h1_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct dz_h1_head {
    int status;  /* 100..999 */
    int minor;   /* HTTP/1.minor */
    size_t nhdr; /* fields kept (malformed lines are dropped, as libcurl's
                  * line splitter does: see dz_http_header_line) */
    struct dz_h1_field hdr[DZ_HTTP_MAX_RESPONSE_FIELDS];
};

/*
 * Parse the response head at the start of buf[0..len): "HTTP/1.x NNN
 * reason" CRLF, fields, an empty line.  Bare LF line ends are accepted.
 * On DZ_H1_OK *head_len is the number of bytes the head took (the body
 * starts there).  DZ_H1_MORE when no empty line has come yet and len <=
 * max_head; DZ_H1_TOOBIG beyond that.
 */
enum dz_h1_rc dz_h1_parse_head(const char *buf, size_t len, size_t max_head, struct dz_h1_head *h,
                               size_t *head_len);

/* How the body of a response is delimited (RFC 9112 §6.3). */
enum dz_h1_framing {
    DZ_H1_NO_BODY, /* HEAD request, 1xx, 204, 304 */
    DZ_H1_LENGTH,  /* Content-Length: *length bytes */
    DZ_H1_CHUNKED, /* Transfer-Encoding ending in chunked */
    DZ_H1_TO_CLOSE /* until the server closes (not reusable) */
};

/*
 * The framing of a parsed head for a request that was (or was not) HEAD.
 * *reusable: the connection may carry another request afterwards (HTTP/1.1,
 * no "Connection: close", not framed by close, not both Transfer-Encoding
 * and Content-Length).  Returns DZ_H1_OK or DZ_H1_ERROR (an invalid or
 * conflicting Content-Length: a smuggling attempt or a broken server).
 */
enum dz_h1_rc dz_h1_framing(const struct dz_h1_head *h, bool head_request,
                            enum dz_h1_framing *framing, uint64_t *length, bool *reusable);

/* The chunked transfer coding, decoded incrementally. */
struct dz_h1_chunked {
    int state;     /* internal */
    uint64_t left; /* data bytes left in the current chunk */
    unsigned digits;
    size_t line; /* bytes of the current extension or trailer line */
};

/* Start (or restart) decoding. */
void dz_h1_chunked_init(struct dz_h1_chunked *s);

/*
 * Consume bytes of in[0..len): returns how many were used (>= 0) or -1 on
 * malformed input.  When a run of body data is reached it is returned in
 * *data / *data_len (pointing into in) and the call stops after it, so the
 * caller can deliver it; otherwise *data_len is 0.  dz_h1_chunked_done
 * tells the end (the last chunk and the trailer section were consumed);
 * bytes after that belong to the next response.
 */
ssize_t dz_h1_chunked_step(struct dz_h1_chunked *s, const char *in, size_t len, const char **data,
                           size_t *data_len);
bool dz_h1_chunked_done(const struct dz_h1_chunked *s);

#endif
