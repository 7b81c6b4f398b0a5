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

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
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

/*
 * Prepared once, used per thread.  HMAC() and a new EVP_CIPHER_CTX with
 * EVP_aes_256_gcm() per call looked the implementations up in the provider
 * store (under its lock), allocated their contexts and set the key up again
 * (the HMAC pads, the AES key schedule and the GHASH table) on every call:
 * most of a call's cost for a 32-byte name or a 214-byte session record
 * (tests/bench/redis_seal.c, docs/performance.md).  Now the store fetches
 * HMAC and AES-256-GCM once, and each thread that calls it keys its own
 * contexts on its first call; a call only re-initialises them (the HMAC from
 * its keyed inner state, the GCM context with the call's nonce).
 *
 * Which threads: the worker loops (names, opened GET answers, sealed puts),
 * the blocking pool (the login steps' synchronous calls), the subscriber
 * thread (wake-ups), and the thread that made the store (keyed at set-up).
 * A context is never shared between threads, so no lock on a call; the lock
 * only guards the list of every thread's contexts, for the free.  Like the
 * connections (store_redis_conn.c), a thread's contexts stay on that list
 * until the store is freed: the threads that call a store live as long as
 * it does.
 */
struct seal_thread {
    EVP_MAC_CTX *mac;    /* HMAC-SHA256 keyed with the naming key */
    EVP_CIPHER_CTX *enc; /* AES-256-GCM, the sealing key's schedule, encrypting */
    EVP_CIPHER_CTX *dec; /* the same, decrypting */
    struct seal_thread *next;
};

struct rs_seal {
    unsigned char seal_key[32];
    unsigned char name_key[32];
    EVP_MAC *hmac;
    EVP_CIPHER *gcm;
    pthread_key_t tls; /* struct seal_thread * of the calling thread */
    bool tls_ready;
    pthread_mutex_t lock; /* threads, at a thread's first call and at free */
    bool lock_ready;
    struct seal_thread *threads;
};

/* The contexts' frees cleanse their key material (OpenSSL clears the HMAC
 * pads and the AES-GCM key schedule before freeing them). */
static void thread_free(struct seal_thread *t)
{
    if (!t)
        return;
    EVP_MAC_CTX_free(t->mac);
    EVP_CIPHER_CTX_free(t->enc);
    EVP_CIPHER_CTX_free(t->dec);
    free(t);
}

/* The calling thread's keyed contexts, made on its first call; NULL on
 * failure (the caller fails closed). */
static struct seal_thread *thread_get(struct rs_seal *s)
{
    struct seal_thread *t = pthread_getspecific(s->tls);
    OSSL_PARAM params[2];

    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!(t->mac = EVP_MAC_CTX_new(s->hmac)) ||
        EVP_MAC_init(t->mac, s->name_key, sizeof(s->name_key), params) != 1 ||
        !(t->enc = EVP_CIPHER_CTX_new()) ||
        EVP_EncryptInit_ex2(t->enc, s->gcm, s->seal_key, NULL, NULL) != 1 ||
        !(t->dec = EVP_CIPHER_CTX_new()) ||
        EVP_DecryptInit_ex2(t->dec, s->gcm, s->seal_key, NULL, NULL) != 1 ||
        pthread_setspecific(s->tls, t) != 0) {
        ERR_clear_error();
        thread_free(t);
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    t->next = s->threads;
    s->threads = t;
    pthread_mutex_unlock(&s->lock);
    return t;
}

void rs_seal_cleanup(struct rs_store *st)
{
    struct rs_seal *s = st->seal;

    if (!s)
        return;
    while (s->threads) {
        struct seal_thread *n = s->threads->next;

        thread_free(s->threads);
        s->threads = n;
    }
    if (s->tls_ready)
        pthread_key_delete(s->tls);
    if (s->lock_ready)
        pthread_mutex_destroy(&s->lock);
    EVP_MAC_free(s->hmac);
    EVP_CIPHER_free(s->gcm);
    dz_secret_wipe(s, sizeof(*s));
    free(s);
    st->seal = NULL;
    st->sealed = false;
}

int rs_seal_keys(struct rs_store *st, const unsigned char key[DZ_STORE_REDIS_KEY_LEN])
{
    static const char seal_label[] = "darvaza redis value v1";
    static const char name_label[] = "darvaza redis key name v1";
    unsigned int n1 = 32, n2 = 32;
    struct rs_seal *s;
    int rc = DZ_ERR_CRYPTO;

    st->sealed = false;
    s = calloc(1, sizeof(*s));
    if (!s)
        return DZ_ERR_NOMEM;
    st->seal = s;
    if (!HMAC(EVP_sha256(), key, DZ_STORE_REDIS_KEY_LEN, (const unsigned char *)seal_label,
              sizeof(seal_label) - 1, s->seal_key, &n1) ||
        !HMAC(EVP_sha256(), key, DZ_STORE_REDIS_KEY_LEN, (const unsigned char *)name_label,
              sizeof(name_label) - 1, s->name_key, &n2) ||
        n1 != 32 || n2 != 32 || !(s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) ||
        !(s->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)))
        goto out;
    rc = DZ_ERR_NOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto out;
    s->lock_ready = true;
    if (pthread_key_create(&s->tls, NULL) != 0)
        goto out;
    s->tls_ready = true;
    /* Key this thread's contexts now: a key or a provider that cannot be
     * set up fails the store at start, not a request later. */
    rc = DZ_ERR_CRYPTO;
    if (!thread_get(s))
        goto out;
    st->sealed = true;
    rc = 0;
out:
    if (rc) {
        ERR_clear_error();
        rs_seal_cleanup(st);
    }
    return rc;
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
        struct seal_thread *t = thread_get(st->seal);
        static const unsigned char zero = 0;
        unsigned char mac[32];
        size_t mac_len = 0;
        char hex[2 * NAME_LEN];

        /* The parts go straight into the MAC: no copy of the caller's key
         * (a FIN, a phone number) to wipe afterwards; SHA-256 cleanses its
         * block buffer at the end of each hash. */
        if (!t || EVP_MAC_init(t->mac, NULL, 0, NULL) != 1 ||
            EVP_MAC_update(t->mac, (const unsigned char *)ns, ns_len) != 1 ||
            EVP_MAC_update(t->mac, &zero, 1) != 1 ||
            (key_len && EVP_MAC_update(t->mac, key, key_len) != 1) ||
            EVP_MAC_final(t->mac, mac, &mac_len, sizeof(mac)) != 1 || mac_len != sizeof(mac)) {
            ERR_clear_error();
            return DZ_ERR_CRYPTO;
        }
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
    struct seal_thread *t = NULL;
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
    if (RAND_bytes(p + 1, NONCE_LEN) != 1 || !(t = thread_get(st->seal)))
        goto out;
    /* The key schedule is the thread's; only the nonce is new. */
    if (EVP_EncryptInit_ex2(t->enc, NULL, NULL, p + 1, NULL) != 1 ||
        EVP_EncryptUpdate(t->enc, NULL, &n, (const unsigned char *)rkey, (int)rkey_len) != 1 ||
        (val_len && EVP_EncryptUpdate(t->enc, p + 1 + NONCE_LEN, &n, val, (int)val_len) != 1) ||
        EVP_EncryptFinal_ex(t->enc, p + 1 + NONCE_LEN + val_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(t->enc, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
                            p + 1 + NONCE_LEN + val_len) != 1)
        goto out;
    rc = 0;
out:
    if (rc)
        ERR_clear_error();
    return rc;
}

int rs_open(const struct rs_store *st, const char *rkey, size_t rkey_len, const void *sealed,
            size_t sealed_len, struct dz_buf *out)
{
    const unsigned char *s = sealed;
    struct seal_thread *t = NULL;
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
    /* Any failure here, a context that cannot be had included, is a value
     * that does not open: fail closed, as the callers expect. */
    rc = DZ_ERR_DENIED;
    if (!(t = thread_get(st->seal)) || EVP_DecryptInit_ex2(t->dec, NULL, NULL, s + 1, NULL) != 1 ||
        EVP_DecryptUpdate(t->dec, NULL, &n, (const unsigned char *)rkey, (int)rkey_len) != 1 ||
        (ct_len && EVP_DecryptUpdate(t->dec, (unsigned char *)out->data + at, &n, s + 1 + NONCE_LEN,
                                     (int)ct_len) != 1) ||
        EVP_CIPHER_CTX_ctrl(t->dec, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
                            (void *)(s + 1 + NONCE_LEN + ct_len)) != 1 ||
        EVP_DecryptFinal_ex(t->dec, (unsigned char *)out->data + at + ct_len, &n) != 1)
        goto out;
    rc = 0;
out:
    if (rc) {
        ERR_clear_error();
        dz_secret_wipe(out->data + at, out->len - at);
        out->len = at;
        out->data[at] = '\0';
    }
    return rc;
}
