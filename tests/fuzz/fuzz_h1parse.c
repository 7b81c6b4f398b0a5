/*
 * fuzz_h1parse.c - feeds arbitrary bytes, as a back end's answer, to the
 * HTTP/1.1 response parsing of lib/http/h1parse.c the way lib/http/h1client.c uses
 * it: parse the head (skipping interim 1xx heads), decide the framing,
 * then decode a chunked body in pieces of sizes taken from the input.
 * Besides not crashing it checks the promises: a parsed head ends inside
 * the input, every field points inside it, decoded data lies inside the
 * piece given and never exceeds what a chunk announced, and the decoder
 * never consumes more than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dz_h1_head head;

static void check_head(const char *buf, size_t len, size_t hl)
{
    if (hl == 0 || hl > len)
        abort();
    if (head.status < 100 || head.status > 999 || head.nhdr > DZ_HTTP_MAX_RESPONSE_FIELDS)
        abort();
    for (size_t i = 0; i < head.nhdr; i++) {
        const struct dz_h1_field *f = &head.hdr[i];

        if (f->name < buf || f->name + f->name_len > buf + hl || f->name_len == 0 ||
            f->value < buf || f->value + f->value_len > buf + hl)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t len = size;
    size_t hl = 0;
    enum dz_h1_framing framing;
    uint64_t length;
    bool reusable;
    struct dz_h1_chunked ck;
    unsigned step = size ? (unsigned)(data[0] % 7) + 1 : 1;

    for (;;) {
        enum dz_h1_rc rc = dz_h1_parse_head(p, len, 4096, &head, &hl);

        if (rc != DZ_H1_OK)
            return 0;
        check_head(p, len, hl);
        p += hl;
        len -= hl;
        if (head.status >= 200)
            break;
    }
    if (dz_h1_framing(&head, size % 2 == 0, &framing, &length, &reusable) != DZ_H1_OK)
        return 0;
    if (framing == DZ_H1_TO_CLOSE && reusable)
        abort();
    if (framing != DZ_H1_CHUNKED)
        return 0;
    dz_h1_chunked_init(&ck);
    while (len > 0 && !dz_h1_chunked_done(&ck)) {
        size_t give = len < step ? len : step;
        const char *d = NULL;
        size_t n = 0;
        ssize_t k = dz_h1_chunked_step(&ck, p, give, &d, &n);

        if (k < 0)
            return 0;
        if ((size_t)k > give || (n && (d < p || d + n > p + k)))
            abort();
        if (k == 0 && !dz_h1_chunked_done(&ck))
            abort(); /* no progress on non-empty input */
        p += k;
        len -= (size_t)k;
        step = step % 13 + 1;
    }
    return 0;
}
