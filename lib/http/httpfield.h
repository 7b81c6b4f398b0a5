/*
 * httpfield.h - the HTTP field syntax every part of lib/http agrees on
 * (RFC 9110 §5): token characters, field values, the header-line splitter
 * for HTTP/1.1 heads, and the fields that frame a message and so are never
 * passed on.  A leaf: pure functions, no allocation, no I/O, nothing above
 * lib/base, so the parsers that use it (h1parse, h2req) can be fuzzed alone.
 */
#ifndef DZ_HTTPFIELD_H
#define DZ_HTTPFIELD_H

#include <stdbool.h>
#include <stddef.h>

/* Response header fields a client keeps (more is a malformed answer). */
#define DZ_HTTP_MAX_RESPONSE_FIELDS 100

/* RFC 9110 tchar, either case. */
bool dz_http_is_tchar(unsigned char ch);

/* s is a non-empty token of at most max characters. */
bool dz_http_token_ok(const char *s, size_t max);

/* s has no control character other than horizontal tab (no CR, LF, NUL or
 * DEL that could split or end a header). */
bool dz_http_value_ok(const char *s);

/*
 * Split one response-header line (as libcurl hands them over, or one line
 * of an HTTP/1.1 head).  Returns DZ_HTTP_LINE_STATUS for a status line
 * ("HTTP/..."), DZ_HTTP_LINE_HEADER with the name (p[0..*name_len), a token)
 * and the value (trimmed of spaces, tabs, CR and LF; *value points into p),
 * or DZ_HTTP_LINE_SKIP for an empty line, obsolete line folding, a name that
 * is not a token or a value with a control character other than tab (such
 * headers are dropped).  Thread-safe.
 */
enum dz_http_line { DZ_HTTP_LINE_SKIP, DZ_HTTP_LINE_STATUS, DZ_HTTP_LINE_HEADER };
enum dz_http_line dz_http_header_line(const char *p, size_t n, size_t *name_len, const char **value,
                                      size_t *value_len);

/* Connection-specific fields (connection, keep-alive, proxy-connection,
 * transfer-encoding, upgrade, te): malformed in HTTP/2 (RFC 9113 §8.2.2).
 * Case-insensitive. */
bool dz_http_connection_field(const char *name);

/* Whether a request field is one an outbound client drops because the
 * client frames the request itself: the connection-specific fields plus
 * content-length, expect and http2-settings.  A caller's copy could
 * contradict the framing and, on HTTP/1.1, smuggle a second request.
 * Case-insensitive. */
bool dz_http_framing_field(const char *name);

#endif
