/*
 * regcode.c - registration codes in the ephemeral store; see regcode.h.
 */
#include "auth/regcode.h"

#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/secret.h"

#include "base/compat.h"

#define NS_CODE "regcode"
#define NS_TRIES "fail_regcode"
#define SALT_LEN 16
#define HASH_LEN 32
/* expiry (8) | salt (16) | hash (32) | phone (16, NUL-padded) */
#define ENTRY_LEN (8 + SALT_LEN + HASH_LEN + DZ_REGCODE_PHONE_MAX + 1)
/* An entry outlives its code by this much, so that a late try is told
 * "expired" (ask for a new one) rather than "unknown". */
#define KEEP_AFTER_MS (10 * 60 * 1000ull)

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* SHA-256(salt || fin || 0 || document || 0 || code): the NULs keep the
 * fields apart, so no two (document, code) pairs hash alike. */
static void code_hash(const unsigned char *salt, const char *fin, const char *document,
                      const char *code, unsigned char out[HASH_LEN])
{
    unsigned char buf[SALT_LEN + DZ_FIN_LEN + 1 + 64 + 1 + DZ_REGCODE_DIGITS];
    size_t dl = strnlen(document, 64);
    size_t cl = strnlen(code, DZ_REGCODE_DIGITS);
    size_t n = 0;

    memcpy(buf, salt, SALT_LEN);
    n += SALT_LEN;
    memcpy(buf + n, fin, DZ_FIN_LEN);
    n += DZ_FIN_LEN;
    buf[n++] = 0;
    memcpy(buf + n, document, dl);
    n += dl;
    buf[n++] = 0;
    memcpy(buf + n, code, cl);
    n += cl;
    dz_sha256(buf, n, out);
    dz_secret_wipe(buf, sizeof(buf));
}

static bool code_syntax_ok(const char *code)
{
    if (!code || strnlen(code, DZ_REGCODE_DIGITS + 1) != DZ_REGCODE_DIGITS)
        return false;
    for (size_t i = 0; i < DZ_REGCODE_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
    }
    return true;
}

/* A uniform number below 10^6: rejection keeps every code equally likely. */
static int random_code(char code[DZ_REGCODE_DIGITS + 1])
{
    const uint32_t limit = UINT32_MAX - UINT32_MAX % 1000000u;
    uint32_t v;

    do {
        if (dz_random(&v, sizeof(v)) != 0)
            return DZ_ERR_CRYPTO;
    } while (v >= limit);
    v %= 1000000u;
    for (int i = DZ_REGCODE_DIGITS - 1; i >= 0; i--) {
        code[i] = (char)('0' + v % 10);
        v /= 10;
    }
    code[DZ_REGCODE_DIGITS] = '\0';
    return 0;
}

int dz_regcode_issue(struct dz_store *s, const char *fin, const char *document, const char *phone,
                     int64_t now_ms, uint64_t ttl_ms, char code[DZ_REGCODE_DIGITS + 1])
{
    unsigned char e[ENTRY_LEN];
    int rc;

    if (code)
        memset(code, 0, DZ_REGCODE_DIGITS + 1);
    if (!s || !dz_fin_is_normal(fin) || !document || !phone || !code || now_ms < 0 || ttl_ms == 0 ||
        strlen(phone) > DZ_REGCODE_PHONE_MAX)
        return DZ_ERR_INVAL;
    memset(e, 0, sizeof(e));
    put_be64(e, (uint64_t)now_ms + ttl_ms);
    rc = dz_random(e + 8, SALT_LEN) == 0 ? random_code(code) : DZ_ERR_CRYPTO;
    if (rc == 0) {
        code_hash(e + 8, fin, document, code, e + 8 + SALT_LEN);
        memcpy(e + 8 + SALT_LEN + HASH_LEN, phone, strlen(phone));
        /* A new code starts a new count of wrong tries. */
        rc = dz_store_del(s, NS_TRIES, fin, DZ_FIN_LEN);
        if (rc == DZ_ERR_NOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = dz_store_put(s, NS_CODE, fin, DZ_FIN_LEN, e, sizeof(e), ttl_ms + KEEP_AFTER_MS, 0);
    if (rc != 0)
        dz_secret_wipe(code, DZ_REGCODE_DIGITS + 1);
    dz_secret_wipe(e, sizeof(e));
    return rc;
}

static int del_quiet(struct dz_store *s, const char *ns, const char *fin)
{
    int rc = dz_store_del(s, ns, fin, DZ_FIN_LEN);

    return rc == DZ_ERR_NOTFOUND ? 0 : rc;
}

int dz_regcode_check(struct dz_store *s, const char *fin, const char *document, const char *code,
                     int64_t now_ms, unsigned max_attempts, enum dz_regcode_verdict *out,
                     char *phone, unsigned *left)
{
    unsigned char want[HASH_LEN];
    struct dz_buf b;
    const unsigned char *e;
    int64_t tries = 0;
    int rc;

    if (out)
        *out = DZ_REGCODE_NONE;
    if (left)
        *left = 0;
    if (phone)
        phone[0] = '\0';
    if (!s || !dz_fin_is_normal(fin) || !document || !out || !phone || !left || now_ms < 0 ||
        max_attempts == 0)
        return DZ_ERR_INVAL;
    dz_buf_init(&b, ENTRY_LEN);
    rc = dz_store_get(s, NS_CODE, fin, DZ_FIN_LEN, &b);
    if (rc == DZ_ERR_NOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (b.len != ENTRY_LEN) {
        rc = DZ_ERR_PARSE; /* not ours: refuse rather than guess */
        goto out;
    }
    e = (const unsigned char *)b.data;
    if ((uint64_t)now_ms >= get_be64(e)) {
        *out = DZ_REGCODE_EXPIRED;
        rc = del_quiet(s, NS_CODE, fin);
        goto out;
    }
    /* Every try is counted before its code is compared, atomically: of
     * any number of guesses racing on one code (pool threads, instances),
     * at most max_attempts are ever compared.  Counting only the wrong
     * ones after the comparison let each guess that had read the entry
     * before the last counted one spent it still be compared, and a right
     * one among them win. */
    rc = dz_store_incr(s, NS_TRIES, fin, DZ_FIN_LEN, get_be64(e) - (uint64_t)now_ms + KEEP_AFTER_MS,
                       &tries);
    if (rc < 0)
        goto out;
    *out = DZ_REGCODE_WRONG;
    if (tries > (int64_t)max_attempts) {
        /* over the budget: spent, whatever the code (the try that reached
         * the budget spent it already, unless it raced this one) */
        rc = del_quiet(s, NS_CODE, fin);
        goto out;
    }
    if (code_syntax_ok(code)) {
        code_hash(e + 8, fin, document, code, want);
        if (dz_secret_equal(want, HASH_LEN, e + 8 + SALT_LEN, HASH_LEN)) {
            /* Take, not just delete: of two requests racing with the right
             * code, only the one that takes it goes on. */
            *out = DZ_REGCODE_NONE;
            dz_buf_wipe(&b);
            dz_buf_init(&b, ENTRY_LEN);
            rc = dz_store_take(s, NS_CODE, fin, DZ_FIN_LEN, &b);
            if (rc == DZ_ERR_NOTFOUND) {
                rc = 0;
                goto out;
            }
            if (rc < 0 || b.len != ENTRY_LEN) {
                rc = rc < 0 ? rc : DZ_ERR_PARSE;
                goto out;
            }
            e = (const unsigned char *)b.data;
            memcpy(phone, e + 8 + SALT_LEN + HASH_LEN, DZ_REGCODE_PHONE_MAX);
            phone[DZ_REGCODE_PHONE_MAX] = '\0';
            rc = del_quiet(s, NS_TRIES, fin);
            *out = DZ_REGCODE_OK;
            goto out;
        }
    }
    /* Wrong (or malformed: the same).  The last try of the budget spends
     * the code.  Its count stays until it expires (or a new code starts
     * another): deleted, a guess that had read the entry before would
     * start a fresh count and be compared. */
    if (tries == (int64_t)max_attempts) {
        rc = del_quiet(s, NS_CODE, fin);
    } else {
        *left = max_attempts - (unsigned)tries;
    }
out:
    dz_secret_wipe(want, sizeof(want));
    dz_buf_wipe(&b);
    return rc;
}

void dz_regcode_mask(const char *phone, char *out)
{
    size_t n = phone ? strnlen(phone, DZ_REGCODE_PHONE_MAX + 1) : 0;

    out[0] = '\0';
    if (n < 8 || n > DZ_REGCODE_PHONE_MAX)
        return;
    /* "+994" and the operator's two digits, the last two digits. */
    memcpy(out, phone, 6);
    for (size_t i = 6; i < n - 2; i++)
        out[i] = '*';
    memcpy(out + n - 2, phone + n - 2, 2);
    out[n] = '\0';
}
