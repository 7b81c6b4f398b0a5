/*
 * totp.c - TOTP/HOTP helpers over liboath; see totp.h.  Owns no state beyond
 * liboath's one-time initialisation.  Never stores or logs a secret or a
 * code, and never decides about replay (accounts.c does, with the persisted
 * last step).  liboath's own strcmp is replaced by a constant-time compare.
 */
#include "state/totp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

/* oath_init must run before any other liboath call, and any pool thread
 * may be the first to need one, so it runs once under pthread_once; a
 * failure is kept and every later call refuses instead of retrying. */
static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void oath_init_once(void)
{
    oath_init_rc = oath_init();
}

static int ensure_oath(void)
{
    if (pthread_once(&oath_once, oath_init_once) != 0 || oath_init_rc != OATH_OK)
        return DZ_ERR_CRYPTO;
    return 0;
}

int dz_totp_secret_new(unsigned char secret[DZ_TOTP_SECRET_LEN])
{
    return dz_random(secret, DZ_TOTP_SECRET_LEN);
}

int dz_totp_base32(const unsigned char *secret, size_t len, char *out, size_t out_size)
{
    char *enc = NULL;
    size_t enc_len = 0;
    int rc;

    if (out && out_size)
        out[0] = '\0';
    if (!secret || len == 0 || len > DZ_TOTP_SECRET_MAX || !out)
        return DZ_ERR_INVAL;
    rc = ensure_oath();
    if (rc < 0)
        return rc;
    if (oath_base32_encode((const char *)secret, len, &enc, &enc_len) != OATH_OK || !enc) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    /* Authenticator apps expect the secret unpadded in otpauth URIs (Key
     * URI Format), and '=' would need escaping there. */
    while (enc_len > 0 && enc[enc_len - 1] == '=')
        enc_len--;
    if (enc_len + 1 > out_size) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    memcpy(out, enc, enc_len);
    out[enc_len] = '\0';
    rc = 0;
out:
    if (enc) {
        dz_secret_wipe(enc, strlen(enc));
        free(enc);
    }
    return rc;
}

int dz_totp_base32_decode(const char *b32, unsigned char *out, size_t out_size, size_t *out_len)
{
    char clean[DZ_TOTP_B32_MAX + 8];
    char *dec = NULL;
    size_t dec_len = 0;
    size_t n = 0;
    size_t i;
    int rc;

    *out_len = 0;
    if (!b32)
        return DZ_ERR_PARSE;
    rc = ensure_oath();
    if (rc < 0)
        return rc;
    for (i = 0; b32[i]; i++) {
        unsigned char c = (unsigned char)b32[i];

        if (c == ' ' || c == '=')
            continue; /* padding is re-added below: liboath wants it or none */
        /* RFC 4648 base32 is upper case; people type seeds in either. */
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'))) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
        if (n + 8 >= sizeof(clean)) {
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
        clean[n++] = (char)c;
    }
    /* Lengths 1, 3 and 6 mod 8 cannot come from whole bytes. */
    if (n == 0 || n % 8 == 1 || n % 8 == 3 || n % 8 == 6) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    while (n % 8)
        clean[n++] = '=';
    clean[n] = '\0';
    if (oath_base32_decode(clean, n, &dec, &dec_len) != OATH_OK || !dec) {
        rc = DZ_ERR_PARSE;
        goto out;
    }
    if (dec_len == 0 || dec_len > out_size) {
        rc = dec_len ? DZ_ERR_TOOBIG : DZ_ERR_PARSE;
        goto out;
    }
    memcpy(out, dec, dec_len);
    *out_len = dec_len;
    rc = 0;
out:
    dz_secret_wipe(clean, sizeof(clean));
    if (dec) {
        dz_secret_wipe(dec, dec_len);
        free(dec);
    }
    return rc;
}

/* RFC 3986 unreserved characters pass; everything else is %XX.  Writes into
 * out[*pos..size) and fails rather than truncate. */
static int put_pct(char *out, size_t size, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            if (size - *pos < 2)
                return DZ_ERR_TOOBIG;
            out[(*pos)++] = (char)c;
        } else {
            if (size - *pos < 4)
                return DZ_ERR_TOOBIG;
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
    out[*pos] = '\0';
    return 0;
}

static int put_str(char *out, size_t size, size_t *pos, const char *s)
{
    size_t n = strlen(s);

    if (size - *pos < n + 1)
        return DZ_ERR_TOOBIG;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return 0;
}

int dz_totp_uri(const char *account, const char *b32, struct dz_buf *out)
{
    /* Built on the stack and appended once: growing a heap buffer step by
     * step would leave freed copies of the secret behind. */
    char uri[DZ_TOTP_URI_MAX + 1];
    char tail[64];
    size_t pos = 0;
    int rc;

    if (!account || !*account || !b32 || !*b32)
        return DZ_ERR_INVAL;
    snprintf(tail, sizeof(tail), "&issuer=%s&algorithm=SHA1&digits=%d&period=%d", DZ_TOTP_ISSUER,
             DZ_TOTP_DIGITS, DZ_TOTP_STEP);
    /* The label is "issuer:account" with a literal colon (Key URI Format);
     * the issuer parameter repeats it for apps that read only that. */
    rc = put_str(uri, sizeof(uri), &pos, "otpauth://totp/" DZ_TOTP_ISSUER ":");
    if (rc == 0)
        rc = put_pct(uri, sizeof(uri), &pos, account);
    if (rc == 0)
        rc = put_str(uri, sizeof(uri), &pos, "?secret=");
    if (rc == 0)
        rc = put_pct(uri, sizeof(uri), &pos, b32);
    if (rc == 0)
        rc = put_str(uri, sizeof(uri), &pos, tail);
    if (rc == 0)
        rc = dz_buf_append(out, uri, pos);
    dz_secret_wipe(uri, sizeof(uri));
    return rc;
}

static bool args_ok(const unsigned char *secret, size_t len, unsigned digits)
{
    return secret && len > 0 && len <= DZ_TOTP_SECRET_MAX && digits >= 6 &&
           digits <= DZ_TOTP_CODE_MAX;
}

int dz_totp_hotp(const unsigned char *secret, size_t len, uint64_t counter, unsigned digits,
                 char out[DZ_TOTP_CODE_MAX + 1])
{
    int rc;

    out[0] = '\0';
    if (!args_ok(secret, len, digits))
        return DZ_ERR_INVAL;
    rc = ensure_oath();
    if (rc < 0)
        return rc;
    /* false: no checksum digit; the truncation is RFC 4226 §5.3's. */
    if (oath_hotp_generate((const char *)secret, len, counter, digits, false,
                           OATH_HOTP_DYNAMIC_TRUNCATION, out) != OATH_OK) {
        out[0] = '\0';
        return DZ_ERR_CRYPTO;
    }
    return 0;
}

uint64_t dz_totp_step(int64_t now)
{
    /* RFC 6238 §4 with T0 = 0: the step is Unix time / X. */
    return now < 0 ? 0 : (uint64_t)now / DZ_TOTP_STEP;
}

int dz_totp_generate(const unsigned char *secret, size_t len, int64_t now, unsigned digits,
                     char out[DZ_TOTP_CODE_MAX + 1])
{
    out[0] = '\0';
    if (now < 0)
        return DZ_ERR_INVAL;
    return dz_totp_hotp(secret, len, dz_totp_step(now), digits, out);
}

struct cmp_ctx {
    const char *code;
    size_t len;
};

/* liboath's comparison callback: 0 on a match, positive on a mismatch.
 * Both strings are exactly `digits` long here, so CRYPTO_memcmp over that
 * length leaks nothing about where they differ. */
static int ct_cmp(void *handle, const char *test_otp)
{
    const struct cmp_ctx *c = handle;

    /* The length is not secret (it is digits either way): only the digits
     * are compared in constant time. */
    if (strlen(test_otp) != c->len)
        return 1;
    return CRYPTO_memcmp(c->code, test_otp, c->len) == 0 ? 0 : 1;
}

int dz_totp_validate(const unsigned char *secret, size_t len, const char *code, int64_t now,
                     unsigned window, unsigned digits, bool *ok, uint64_t *step)
{
    struct cmp_ctx cc;
    uint64_t counter = 0;
    int pos = 0;
    size_t i;
    int orc;
    int rc;

    *ok = false;
    if (step)
        *step = 0;
    if (!args_ok(secret, len, digits) || window > DZ_TOTP_WINDOW_MAX || now < 0)
        return DZ_ERR_INVAL;
    if (!code)
        return 0;
    /* Only exactly `digits` decimal digits reach liboath, so ct_cmp always
     * compares equal lengths, and junk is a plain refusal, not an error. */
    for (i = 0; i < digits; i++)
        if (code[i] < '0' || code[i] > '9')
            return 0; /* also stops at a short code's NUL */
    if (code[digits] != '\0')
        return 0;
    rc = ensure_oath();
    if (rc < 0)
        return rc;
    cc.code = code;
    cc.len = digits;
    orc = oath_totp_validate3_callback((const char *)secret, len, (time_t)now, DZ_TOTP_STEP, 0,
                                       digits, window, &pos, &counter, ct_cmp, &cc);
    /* liboath's OATH_INVALID_OTP is a decision (deny); other negatives are
     * faults, reported as errors so the caller refuses and logs them. */
    if (orc == OATH_INVALID_OTP)
        return 0;
    if (orc < 0)
        return DZ_ERR_CRYPTO;
    *ok = true;
    if (step)
        /* The matched step, not the current one: accounts.c stores it so this
         * code, and any older one, is refused from now on (RFC 6238 §5.2). */
        *step = counter;
    return 0;
}
