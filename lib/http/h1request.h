/*
 * h1request.h - the head of an HTTP/1.1 request (RFC 9112 §2-§5), parsed
 * strictly: what the management listener (gateway/ops/mgmt.c) needs to
 * answer GET /metrics, /healthz and /readyz to Prometheus, curl and load
 * balancer health checks.  A pure function over a caller buffer, no
 * allocation, no I/O, so it is fuzzed on its own (tests/fuzz/fuzz_h1request.c).
 *
 * Strict, because nothing on the other side needs leniency and every
 * leniency is a place for request smuggling or a confused cache: CRLF line
 * ends only, no obsolete line folding, no white space before the colon,
 * methods and field names are tokens, the target is origin-form (starts
 * with '/', visible ASCII), the version is HTTP/1.0 or HTTP/1.1, and a
 * request with a body (Transfer-Encoding, or a Content-Length other than
 * 0) is refused: these endpoints take none.
 */
#ifndef DZ_H1REQUEST_H
#define DZ_H1REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "http/h1parse.h"

#define DZ_H1_REQUEST_FIELDS_MAX 64 /* header fields before DZ_H1_TOOBIG */

struct dz_h1_request {
    const char *method; /* into the buffer, not NUL-terminated */
    size_t method_len;
    const char *target; /* origin-form, with any query */
    size_t target_len;
    int minor;        /* HTTP/1.minor: 0 or 1 */
    size_t nfields;   /* header fields seen */
    bool has_host;    /* a Host field (HTTP/1.1 requires exactly one) */
    const char *host; /* its value without surrounding white space (NULL: none) */
    size_t host_len;
};

/*
 * Parse the request head at the start of buf[0..len).  DZ_H1_OK: *r is
 * filled and *head_len is the head's length (the empty line included).
 * DZ_H1_MORE: no empty line yet and len <= max_head (read more).
 * DZ_H1_TOOBIG: over max_head bytes or DZ_H1_REQUEST_FIELDS_MAX fields.
 * DZ_H1_ERROR: malformed, a body announced, HTTP/1.1 without exactly one
 * Host.  *r and *head_len are cleared on entry.  Any thread.
 */
enum dz_h1_rc dz_h1_parse_request(const char *buf, size_t len, size_t max_head,
                                  struct dz_h1_request *r, size_t *head_len);

#endif
