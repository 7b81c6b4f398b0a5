/* b64.c - strict base64 / base64url codec; see b64.h. */
#include "base/b64.h"

#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t dz_b64_encoded_len(size_t n, bool url)
{
    /* The url form (RFC 4648 §5) is written unpadded, as JWS needs
     * (RFC 7515 §2); the standard form is padded to a multiple of 4. */
    if (url)
        return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    return ((n + 2) / 3) * 4;
}

void dz_b64_encode_to(const void *p, size_t n, bool url, char *out)
{
    const unsigned char *s = p;
    const char *a = url ? url_alpha : std_alpha;
    size_t i = 0;
    size_t o = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
}

int dz_b64_encode(const void *p, size_t n, bool url, char **out)
{
    char *s;

    *out = NULL;
    /* Keeps dz_b64_encoded_len(n) + 1 from wrapping. */
    if (n > (SIZE_MAX / 4) * 3 - 3)
        return DZ_ERR_TOOBIG;
    s = malloc(dz_b64_encoded_len(n, url) + 1);
    if (!s)
        return DZ_ERR_NOMEM;
    dz_b64_encode_to(p, n, url, s);
    *out = s;
    return 0;
}

static int value_of(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int dz_b64_decode(const char *in, size_t len, bool url, unsigned char **out, size_t *out_len)
{
    unsigned char *d = NULL;
    size_t pad = 0;
    size_t body;
    size_t i;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    if (!url) {
        /* Strict decoding: the padded form must be whole quanta, and '=' may
         * only close the input, at most twice. */
        if (len % 4)
            return DZ_ERR_PARSE;
        while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
            pad++;
        /* One leftover character carries 6 bits, not a byte: no encoder writes
         * that, so it is malformed rather than something to round off. */
    } else if (len % 4 == 1) {
        return DZ_ERR_PARSE;
    }
    body = len - pad;
    /* Every whole quantum gives 3 bytes, a partial one at most 2 more; the
     * +1 keeps the result NUL-terminated for callers that parse it as text. */
    d = malloc(body / 4 * 3 + 3 + 1);
    if (!d)
        return DZ_ERR_NOMEM;
    for (i = 0; i < body; i++) {
        int v = value_of(in[i], url);
        if (v < 0)
            goto bad;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, or two encodings would mean one value. */
    if (acc != 0)
        goto bad;
    /* Implied by len % 4 == 0 with at most two '=' stripped; kept as a
     * second guard so a change to the length check cannot admit bad padding. */
    if (!url && pad != (4 - body % 4) % 4)
        goto bad;
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
bad:
    free(d);
    return DZ_ERR_PARSE;
}
