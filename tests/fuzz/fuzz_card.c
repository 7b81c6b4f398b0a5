/*
 * fuzz_card.c - arbitrary bytes through darvaza-card's parsers of outside
 * input (pkcs11/card_util.c, and keys/ecdsa_sig.c for the card's
 * signatures): the first byte picks the parser, the rest is the input.
 *   0  the gateway's challenge answer    3  an ECDSA DER signature (P-256)
 *   1  a problem document                4  the same for P-384
 *   2  a session answer                  5  a gateway URL -> origin
 * Promises checked: a nonce accepted is strict base64 of 32 bytes, a
 * problem's strings hold no control character, a token is printable ASCII
 * without space, an r||s accepted re-encodes (i2d) to exactly the input
 * (one value, one encoding), an origin is stable under a second pass and
 * never keeps a userinfo or a path; failures leave nothing behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "../../pkcs11/card_util.c"
#include "keys/ecdsa_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

/* r||s back to DER with OpenSSL: must be the input, byte for byte. */
static void reencode(const uint8_t *der, size_t len, const unsigned char *raw, size_t field)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)field, NULL);
    BIGNUM *s = BN_bin2bn(raw + field, (int)field, NULL);
    unsigned char *out = NULL;
    int n;

    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1)
        abort();
    n = i2d_ECDSA_SIG(sig, &out);
    if (n < 0 || (size_t)n != len || memcmp(out, der, len) != 0)
        abort();
    OPENSSL_free(out);
    ECDSA_SIG_free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in;
    size_t n;

    if (size == 0)
        return 0;
    in = (const char *)data + 1;
    n = size - 1;
    switch (data[0] % 6) {
    case 0: {
        char nonce[DZ_CARD_NONCE_MAX + 1];
        long exp = 0;
        unsigned char *raw = NULL;
        size_t raw_len = 0;
        if (dz_card_parse_challenge(in, n, nonce, &exp) == 0) {
            if (exp < 1 || exp > 86400 ||
                dz_b64_decode(nonce, strlen(nonce), false, &raw, &raw_len) != 0 || raw_len != 32)
                abort();
            free(raw);
        } else if (nonce[0] != '\0' || exp != 0) {
            abort();
        }
        break;
    }
    case 1: {
        struct dz_card_problem p;
        if (dz_card_parse_problem(in, n, &p) == 0) {
            if (p.code[0] == '\0')
                abort();
            no_controls(p.code);
            no_controls(p.title);
            no_controls(p.detail);
        } else if (p.code[0] || p.title[0] || p.detail[0]) {
            abort();
        }
        break;
    }
    case 2: {
        char tok[257];
        if (dz_card_parse_session(in, n, tok) == 0) {
            if (tok[0] == '\0')
                abort();
            for (const char *p = tok; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                    abort();
        } else if (tok[0] != '\0') {
            abort();
        }
        break;
    }
    case 3:
    case 4: {
        size_t field = data[0] % 6 == 3 ? 32 : 48;
        unsigned char raw[2 * 66];
        if (dz_ecdsa_sig_der_to_raw(data + 1, n, field, raw) == 0)
            reencode(data + 1, n, raw, field);
        break;
    }
    default: {
        char url[DZ_CARD_URL_MAX + 1];
        char origin[DZ_CARD_ORIGIN_MAX + 1];
        char again[DZ_CARD_ORIGIN_MAX + 1];
        if (n > DZ_CARD_URL_MAX)
            n = DZ_CARD_URL_MAX;
        memcpy(url, in, n);
        url[n] = '\0';
        if (dz_card_origin_from_url(url, origin, sizeof(origin)) == 0) {
            const char *host = strstr(origin, "://");
            if (!host || strchr(host + 3, '/') || strchr(origin, '@') || strchr(origin, '?'))
                abort();
            if (dz_card_origin_from_url(origin, again, sizeof(again)) != 0 ||
                strcmp(origin, again) != 0)
                abort();
        } else if (origin[0] != '\0') {
            abort();
        }
        break;
    }
    }
    return 0;
}
