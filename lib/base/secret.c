/* secret.c - see secret.h.  Never logs or copies what it is given. */
#include "base/secret.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "base/sha256.h"

void dz_secret_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void dz_secret_free_str(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void dz_sha256(const void *p, size_t n, unsigned char out[32])
{
    struct dz_sha256_part part = {p, n};

    /* Fails only on allocation failure, leaving out zeroed (sha256.h). */
    (void)dz_sha256_parts(&part, 1, out);
}

bool dz_secret_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    unsigned char da[32];
    unsigned char db[32];
    volatile int diff;

    if (a_len == b_len)
        return CRYPTO_memcmp(a, b, a_len) == 0;
    /* Different lengths are never equal, but hash both anyway so the time
     * taken does not depend on where they differ. */
    dz_sha256(a, a_len, da);
    dz_sha256(b, b_len, db);
    diff = CRYPTO_memcmp(da, db, sizeof(da));
    (void)diff;
    OPENSSL_cleanse(da, sizeof(da));
    OPENSSL_cleanse(db, sizeof(db));
    return false;
}

int dz_random(void *p, size_t n)
{
    if (n > (size_t)2147483647 || RAND_bytes(p, (int)n) != 1)
        return DZ_ERR_CRYPTO;
    return 0;
}

void dz_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}
