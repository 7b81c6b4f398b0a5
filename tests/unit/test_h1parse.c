/* test_h1parse.c - the HTTP/1.1 response head parser, framing rules and
 * the chunked decoder of lib/http/h1parse.c (RFC 9112), including the inputs
 * a hostile back end would send to desynchronise a kept-alive
 * connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1parse.h"

static struct dz_h1_head head;

static enum dz_h1_rc parse(const char *s, size_t *hl)
{
    return dz_h1_parse_head(s, strlen(s), 1024, &head, hl);
}

static void test_head(void **state)
{
    const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A:  b c \r\n"
                    " folded\r\nBad Name: x\r\nContent-Length: 2\r\n\r\n{}";
    size_t hl = 0;

    (void)state;
    assert_int_equal(parse(r, &hl), DZ_H1_OK);
    assert_int_equal(hl, strlen(r) - 2);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.minor, 1);
    /* the folded line and the name with a space are dropped */
    assert_int_equal(head.nhdr, 3);
    assert_memory_equal(head.hdr[1].name, "X-A", 3);
    assert_int_equal(head.hdr[1].value_len, 3);
    assert_memory_equal(head.hdr[1].value, "b c", 3);
    /* bare LF line ends, an empty reason */
    assert_int_equal(parse("HTTP/1.0 204\nA: 1\n\nrest", &hl), DZ_H1_OK);
    assert_int_equal(hl, strlen("HTTP/1.0 204\nA: 1\n\n"));
    assert_int_equal(head.minor, 0);
    /* incomplete */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nA: 1\r\n", &hl), DZ_H1_MORE);
    assert_int_equal(parse("HTTP/1.1 2", &hl), DZ_H1_MORE);
}

static void test_bad_heads(void **state)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",       "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",    "HTTP/1.1 099 OK\r\n\r\n",
        "HTTX/1.1 200 OK\r\n\r\n",     "HTTP/1.1 200OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",     "<html>\r\n\r\n",
    };
    char big[2048];
    size_t hl;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &hl), DZ_H1_ERROR);
    /* over max_head without an end: too big, not "more" forever */
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(dz_h1_parse_head(big, sizeof(big), 1024, &head, &hl), DZ_H1_TOOBIG);
}

static void test_too_many_fields(void **state)
{
    static char r[16384];
    size_t n = 0, hl;

    (void)state;
    n += (size_t)snprintf(r + n, sizeof(r) - n, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= DZ_HTTP_MAX_RESPONSE_FIELDS; i++)
        n += (size_t)snprintf(r + n, sizeof(r) - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(r + n, sizeof(r) - n, "\r\n");
    assert_int_equal(dz_h1_parse_head(r, n, sizeof(r), &head, &hl), DZ_H1_TOOBIG);
}

static enum dz_h1_rc framing_of(const char *r, bool head_req, enum dz_h1_framing *f, uint64_t *len,
                                bool *reuse)
{
    size_t hl;

    assert_int_equal(parse(r, &hl), DZ_H1_OK);
    return dz_h1_framing(&head, head_req, f, len, reuse);
}

static void test_framing(void **state)
{
    enum dz_h1_framing f;
    uint64_t len;
    bool reuse;

    (void)state;
    assert_int_equal(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", false, &f, &len, &reuse),
        DZ_H1_OK);
    assert_int_equal(f, DZ_H1_LENGTH);
    assert_int_equal(len, 42);
    assert_true(reuse);
    /* the same length twice is fine; two different lengths, a list, a sign
     * or junk are a smuggling attempt or a broken server */
    assert_int_equal(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
                                false, &f, &len, &reuse),
                     DZ_H1_OK);
    static const char *const bad_cl[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++)
        assert_int_equal(framing_of(bad_cl[i], false, &f, &len, &reuse), DZ_H1_ERROR);
    /* chunked wins over a length, and the connection is not kept */
    assert_int_equal(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n",
                                false, &f, &len, &reuse),
                     DZ_H1_OK);
    assert_int_equal(f, DZ_H1_CHUNKED);
    assert_false(reuse);
    /* a final coding other than chunked: read to the close */
    framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, &f, &len,
               &reuse);
    assert_int_equal(f, DZ_H1_TO_CLOSE);
    assert_false(reuse);
    framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, &f, &len,
               &reuse);
    assert_int_equal(f, DZ_H1_CHUNKED);
    assert_true(reuse);
    /* no framing: to the close */
    framing_of("HTTP/1.1 200 OK\r\n\r\n", false, &f, &len, &reuse);
    assert_int_equal(f, DZ_H1_TO_CLOSE);
    assert_false(reuse);
    /* no body: HEAD, 204, 304 whatever the fields say */
    framing_of("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, &f, &len, &reuse);
    assert_int_equal(f, DZ_H1_NO_BODY);
    framing_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, &f, &len, &reuse);
    assert_int_equal(f, DZ_H1_NO_BODY);
    assert_true(reuse);
    /* Connection: close, HTTP/1.0 */
    framing_of("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n",
               false, &f, &len, &reuse);
    assert_false(reuse);
    framing_of("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, &f, &len, &reuse);
    assert_false(reuse);
}

/* Decode all of in, one byte at a time when bytewise; the data into out. */
static int decode(const char *in, size_t len, bool bytewise, char *out, size_t *out_len,
                  size_t *used)
{
    struct dz_h1_chunked s;
    size_t off = 0;

    dz_h1_chunked_init(&s);
    *out_len = 0;
    while (off < len && !dz_h1_chunked_done(&s)) {
        const char *d;
        size_t n;
        size_t give = bytewise ? 1 : len - off;
        ssize_t k = dz_h1_chunked_step(&s, in + off, give, &d, &n);

        if (k < 0)
            return -1;
        if (n)
            memcpy(out + *out_len, d, n);
        *out_len += n;
        off += (size_t)k;
    }
    *used = off;
    return dz_h1_chunked_done(&s) ? 0 : 1;
}

static void test_chunked(void **state)
{
    const char *in = "5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\nabcdefghij\n0\r\nTrailer: t\r\n\r\nNEXT";
    char out[64];
    size_t n, used;

    (void)state;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        assert_int_equal(decode(in, strlen(in), bytewise, out, &n, &used), 0);
        assert_int_equal(n, 16);
        assert_memory_equal(out, "hello abcdefghij", 16);
        assert_string_equal(in + used, "NEXT"); /* the next response is left alone */
    }
    assert_int_equal(decode("0\r\n\r\n", 5, false, out, &n, &used), 0);
    assert_int_equal(n, 0);
    /* incomplete */
    assert_int_equal(decode("5\r\nhel", 6, false, out, &n, &used), 1);
    assert_int_equal(decode("0\r\nX: y\r\n", 9, false, out, &n, &used), 1);
}

static void test_bad_chunked(void **state)
{
    static const char *const bad[] = {
        "\r\n",                 /* no size */
        "g\r\n",                /* not hex */
        "-1\r\n",               /* sign */
        "1000000000000000\r\n", /* 16 digits: overflow guard */
        "5\rX",                 /* CR without LF */
        "2\r\nabX\r\n",         /* data longer than its size */
        "2\r\nab\rX",           /* CR then junk after data */
        "1;a\x01\r\n",          /* control in an extension */
    };
    char out[64];
    size_t n, used;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(decode(bad[i], strlen(bad[i]), false, out, &n, &used), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_bad_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
