/*
 * store_redis_seal.c - what the Redis backend writes instead of the
 * caller's keys and values (store_redis_int.h).
 *
 * Keys: prefix ns ":" hex(HMAC-SHA256(name key, ns 0x00 key))[:16 bytes].
 * The callers key some namespaces by personal data (a FIN for the failure
 * counters, a phone number for the mobile rate): a keyed hash names the
 * entry without showing it, and 128 bits leave no collision to fear.
 *
 * Values, one tag byte first:
 *   0x01 nonce[12] ciphertext tag[16]  AES-256-GCM, AAD = the Redis key, so a
 *                                      value copied under another key does
 *                                      not open (fail closed);
 *   0x00 bytes                         in clear (no value key configured);
 *   '-' or a digit                     a counter, in clear: INCR must work on
 *                                      it inside Redis, and a count is no
 *                                      personal data.
 * The two keys are derived from the configured one with HMAC-SHA256 and two
 * labels, so the naming key never encrypts and vice versa.
 */
#include "state/store_redis_int.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

#define TAG_CLEAR 0x00
#define TAG_SEALED 0x01
#define NONCE_LEN 12
#define GCM_TAG_LEN 16
#define NAME_LEN 16
#define COUNTER_MAX_LEN 20

void rs_seal_keys(struct rs_store *st, const unsigned char key[DZ_STORE_REDIS_KEY_LEN])
{
    static const char seal_label[] = "darvaza redis value v1";
    static const char name_label[] = "darvaza redis key name v1";
    unsigned int n = 32;

    HMAC(EVP_sha256(), key, DZ_STORE_REDIS_KEY_LEN, (const unsigned char *)seal_label,
         sizeof(seal_label) - 1, st->seal_key, &n);
    n = 32;
    HMAC(EVP_sha256(), key, DZ_STORE_REDIS_KEY_LEN, (const unsigned char *)name_label,
         sizeof(name_label) - 1, st->name_key, &n);
    st->sealed = true;
}

static void hex_to(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
}

int rs_key(const struct rs_store *st, const char *ns, const void *key, size_t key_len,
           struct dz_buf *out)
{
    size_t ns_len = strlen(ns);
    int rc;

    if ((rc = dz_buf_append(out, st->prefix, st->prefix_len)) != 0 ||
        (rc = dz_buf_append(out, ns, ns_len)) != 0 || (rc = dz_buf_append(out, ":", 1)) != 0)
        return rc;
    if (st->sealed) {
        unsigned char mac[32];
        unsigned int mac_len = sizeof(mac);
        char hex[2 * NAME_LEN];
        unsigned char small[256];
        unsigned char *msg = small;
        size_t msg_len = ns_len + 1 + key_len;

        if (msg_len > sizeof(small)) {
            msg = malloc(msg_len);
            if (!msg)
                return DZ_ERR_NOMEM;
        }
        memcpy(msg, ns, ns_len);
        msg[ns_len] = 0;
        memcpy(msg + ns_len + 1, key, key_len);
        if (!HMAC(EVP_sha256(), st->name_key, sizeof(st->name_key), msg, msg_len, mac, &mac_len))
            rc = DZ_ERR_CRYPTO;
        dz_secret_wipe(msg, msg_len);
        if (msg != small)
            free(msg);
        if (rc)
            return rc;
        hex_to(mac, NAME_LEN, hex);
        return dz_buf_append(out, hex, sizeof(hex));
    }
    {
        char hex[128];
        const unsigned char *k = key;

        for (size_t i = 0; i < key_len; i += sizeof(hex) / 2) {
            size_t n = key_len - i < sizeof(hex) / 2 ? key_len - i : sizeof(hex) / 2;

            hex_to(k + i, n, hex);
            if ((rc = dz_buf_append(out, hex, 2 * n)) != 0)
                return rc;
        }
    }
    return 0;
}

/* Text INCR can count on: an optional '-' and 1..19 digits. */
static bool is_counter(const unsigned char *v, size_t n)
{
    size_t i = 0;

    if (n == 0 || n > COUNTER_MAX_LEN)
        return false;
    if (v[0] == '-')
        i = 1;
    if (i == n)
        return false;
    for (; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

size_t rs_seal_overhead(const struct rs_store *st)
{
    return st->sealed ? 1 + NONCE_LEN + GCM_TAG_LEN : 1;
}

int rs_seal(const struct rs_store *st, const char *rkey, size_t rkey_len, const void *val,
            size_t val_len, struct dz_buf *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *p;
    int n = 0;
    int rc;

    if (is_counter(val, val_len))
        return dz_buf_append(out, val, val_len);
    if (!st->sealed) {
        unsigned char tag = TAG_CLEAR;

        if ((rc = dz_buf_append(out, &tag, 1)) != 0)
            return rc;
        return dz_buf_append(out, val, val_len);
    }
    /* Reserve the whole sealed length, then write into it. */
    {
        size_t at = out->len;
        size_t total = 1 + NONCE_LEN + val_len + GCM_TAG_LEN;

        if (total > out->max - out->len)
            return DZ_ERR_TOOBIG;
        for (size_t i = 0; i < total; i += 4096) {
            static const unsigned char zero[4096];
            size_t k = total - i < sizeof(zero) ? total - i : sizeof(zero);

            if ((rc = dz_buf_append(out, zero, k)) != 0)
                return rc;
        }
        p = (unsigned char *)out->data + at;
    }
    p[0] = TAG_SEALED;
    rc = DZ_ERR_CRYPTO;
    if (RAND_bytes(p + 1, NONCE_LEN) != 1)
        return rc;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, st->seal_key, p + 1) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)rkey, (int)rkey_len) != 1 ||
        (val_len && EVP_EncryptUpdate(ctx, p + 1 + NONCE_LEN, &n, val, (int)val_len) != 1) ||
        EVP_EncryptFinal_ex(ctx, p + 1 + NONCE_LEN + val_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, p + 1 + NONCE_LEN + val_len) !=
            1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int rs_open(const struct rs_store *st, const char *rkey, size_t rkey_len, const void *sealed,
            size_t sealed_len, struct dz_buf *out)
{
    const unsigned char *s = sealed;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t at = out->len;
    size_t ct_len;
    int n = 0;
    int rc;

    if (sealed_len == 0)
        return DZ_ERR_DENIED;
    if (is_counter(s, sealed_len))
        return dz_buf_append(out, s, sealed_len);
    if (s[0] == TAG_CLEAR && !st->sealed)
        return dz_buf_append(out, s + 1, sealed_len - 1);
    if (s[0] != TAG_SEALED || !st->sealed || sealed_len < 1 + NONCE_LEN + GCM_TAG_LEN)
        return DZ_ERR_DENIED;
    ct_len = sealed_len - 1 - NONCE_LEN - GCM_TAG_LEN;
    /* Decrypt in place at the end of out (grown first). */
    for (size_t i = 0; i < ct_len; i += 4096) {
        static const unsigned char zero[4096];
        size_t k = ct_len - i < sizeof(zero) ? ct_len - i : sizeof(zero);

        if ((rc = dz_buf_append(out, zero, k)) != 0) {
            out->len = at;
            return rc;
        }
    }
    rc = DZ_ERR_DENIED;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, st->seal_key, s + 1) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)rkey, (int)rkey_len) != 1 ||
        (ct_len && EVP_DecryptUpdate(ctx, (unsigned char *)out->data + at, &n, s + 1 + NONCE_LEN,
                                     (int)ct_len) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
                            (void *)(s + 1 + NONCE_LEN + ct_len)) != 1 ||
        EVP_DecryptFinal_ex(ctx, (unsigned char *)out->data + at + ct_len, &n) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc) {
        dz_secret_wipe(out->data + at, out->len - at);
        out->len = at;
        out->data[at] = '\0';
    }
    return rc;
}
