/*
 * fuzz_h1request.c - feeds arbitrary bytes, as a client's request, to the
 * strict HTTP/1.1 request-head parser of lib/http/h1request.c, whole and cut
 * at every length the input's first byte picks (the management listener
 * parses each time more bytes arrive).  Besides not crashing it checks the
 * promises: a parsed head ends inside the input and at an empty line, the
 * method and target point inside it, the target is origin-form, the minor
 * version is 0 or 1, the Host value lies inside it, trimmed, and a prefix
 * of a parsed head is never "parsed" with a different length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 4096

static void check(const char *buf, size_t len, enum dz_h1_rc rc, const struct dz_h1_request *r,
                  size_t hl)
{
    if (rc != DZ_H1_OK) {
        if (hl != 0 || (rc != DZ_H1_MORE && rc != DZ_H1_ERROR && rc != DZ_H1_TOOBIG))
            abort();
        if (rc == DZ_H1_MORE && len > MAX_HEAD)
            abort();
        return;
    }
    if (hl < 4 || hl > len || hl > MAX_HEAD || memcmp(buf + hl - 4, "\r\n\r\n", 4) != 0)
        abort();
    if (r->method < buf || r->method_len == 0 || r->method + r->method_len > buf + hl)
        abort();
    if (r->target < buf || r->target_len == 0 || r->target + r->target_len > buf + hl ||
        r->target[0] != '/')
        abort();
    if (r->minor != 0 && r->minor != 1)
        abort();
    if (r->nfields > DZ_H1_REQUEST_FIELDS_MAX || (r->minor == 1 && !r->has_host))
        abort();
    /* The Host value (what the management listener checks) lies inside the
     * head, without white space at either end; none without a Host. */
    if (r->has_host != (r->host != NULL))
        abort();
    if (r->host &&
        (r->host < buf || r->host + r->host_len > buf + hl ||
         (r->host_len && (r->host[0] == ' ' || r->host[0] == '\t' ||
                          r->host[r->host_len - 1] == ' ' || r->host[r->host_len - 1] == '\t'))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct dz_h1_request r;
    size_t hl = 0;
    size_t whole_hl = 0;
    enum dz_h1_rc whole = dz_h1_parse_request(buf, size, MAX_HEAD, &r, &whole_hl);
    size_t step = size ? (size_t)data[0] % 13 + 1 : 1;

    check(buf, size, whole, &r, whole_hl);
    for (size_t cut = 0; cut < size; cut += step) {
        enum dz_h1_rc rc = dz_h1_parse_request(buf, cut, MAX_HEAD, &r, &hl);

        check(buf, cut, rc, &r, hl);
        /* Bytes after a complete head do not change where it ends. */
        if (rc == DZ_H1_OK && whole == DZ_H1_OK && hl != whole_hl)
            abort();
        if (rc == DZ_H1_OK && whole != DZ_H1_OK)
            abort();
    }
    return 0;
}
