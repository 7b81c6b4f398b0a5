/* test_store_redis_seal.c - the Redis store's key names and sealed values
 * (store_redis_seal.c) are byte for byte what the one-shot OpenSSL calls
 * make from the same keys (HMAC(), a fresh AES-256-GCM context per value),
 * also from two threads at once; fixed vectors computed outside OpenSSL
 * (Python's hmac and cryptography) pin the format; anything tampered with
 * is refused, and a refusal leaves the thread's contexts usable.  No Redis:
 * the functions are called on a store made by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/buf.h"
#include "base/err.h"
#include "state/store_redis_int.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN (1 + NONCE_LEN)

static const unsigned char value_key[DZ_STORE_REDIS_KEY_LEN] = "0123456789abcdef0123456789abcdef";

/* The two keys, derived here the way the format says (not by the code
 * under test). */
static unsigned char seal_key[32], name_key[32];

static void derive(void)
{
    unsigned int n = 32;

    assert_non_null(HMAC(EVP_sha256(), value_key, sizeof(value_key),
                         (const unsigned char *)"darvaza redis value v1", 22, seal_key, &n));
    assert_non_null(HMAC(EVP_sha256(), value_key, sizeof(value_key),
                         (const unsigned char *)"darvaza redis key name v1", 25, name_key, &n));
}

static struct rs_store *store_new(void)
{
    struct rs_store *st = calloc(1, sizeof(*st));

    assert_non_null(st);
    snprintf(st->prefix, sizeof(st->prefix), "t:");
    st->prefix_len = 2;
    assert_int_equal(rs_seal_keys(st, value_key), 0);
    assert_true(st->sealed);
    return st;
}

static void store_free(struct rs_store *st)
{
    rs_seal_cleanup(st);
    assert_false(st->sealed);
    assert_null(st->seal);
    free(st);
}

/* What the name of (ns,key) must be: prefix ns ":" hex of the first 16
 * bytes of HMAC-SHA256(name key, ns 0x00 key), by HMAC() one-shot.  0 or
 * -1 (no cmocka assertion: the threads call it too). */
static int expected_name(const char *ns, const void *key, size_t key_len, char *out, size_t cap)
{
    size_t ns_len = strlen(ns);
    unsigned char *msg = malloc(ns_len + 1 + key_len + 1);
    unsigned char mac[32];
    unsigned int mac_len = sizeof(mac);
    int at;

    if (!msg)
        return -1;
    memcpy(msg, ns, ns_len);
    msg[ns_len] = 0;
    if (key_len)
        memcpy(msg + ns_len + 1, key, key_len);
    if (!HMAC(EVP_sha256(), name_key, sizeof(name_key), msg, ns_len + 1 + key_len, mac, &mac_len)) {
        free(msg);
        return -1;
    }
    free(msg);
    at = snprintf(out, cap, "t:%s:", ns);
    for (int i = 0; i < 16; i++)
        at += snprintf(out + at, cap - (size_t)at, "%02x", mac[i]);
    return 0;
}

/* AES-256-GCM one-shot: a new context, the key schedule, this nonce.  enc:
 * in -> out and tag; else in + tag -> out, 0 only if the tag holds. */
static int gcm_oneshot(int enc, const unsigned char *nonce, const void *aad, size_t aad_len,
                       const unsigned char *in, size_t len, unsigned char *out,
                       unsigned char tag[TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok;

    ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, seal_key, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
         (len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static int unhex(const char *h, unsigned char *out, size_t cap)
{
    size_t n = strlen(h) / 2;

    if (n > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;

        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)n;
}

/* Names: the fixed vectors, and HMAC() for short, empty and long keys (the
 * old code copied keys longer than 256 bytes to the heap). */
static void test_names(void **state)
{
    struct rs_store *st = store_new();
    struct dz_buf b;
    unsigned char sid[32], longkey[1000];
    char want[128];

    (void)state;
    dz_buf_init(&b, 256);
    memset(sid, 7, sizeof(sid));
    assert_int_equal(rs_key(st, "sess", sid, sizeof(sid), &b), 0);
    /* Python: hmac.new(name_key, b"sess\0" + bytes([7]) * 32, sha256) */
    assert_string_equal(b.data, "t:sess:da6de2cc946061e2ef124da991c45a81");
    dz_buf_reset(&b);
    assert_int_equal(rs_key(st, "fail_fin", "38001085718", 11, &b), 0);
    assert_string_equal(b.data, "t:fail_fin:bc27ed2bccfaf6d762f72ade92480bf0");

    for (size_t i = 0; i < sizeof(longkey); i++)
        longkey[i] = (unsigned char)(i * 31 + 5);
    {
        static const size_t lens[] = {0, 1, 11, 32, 55, 56, 64, 200, 256, 257, 1000};

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            dz_buf_reset(&b);
            assert_int_equal(rs_key(st, "mobrate", longkey, lens[i], &b), 0);
            assert_int_equal(expected_name("mobrate", longkey, lens[i], want, sizeof(want)), 0);
            assert_string_equal(b.data, want);
        }
    }
    dz_buf_cleanup(&b);
    store_free(st);
}

/* A sealed value is tag 0x01, the nonce, then exactly what a one-shot
 * AES-256-GCM with that nonce and the Redis key as associated data makes;
 * and a value sealed one-shot (or by Python) opens. */
static void test_values(void **state)
{
    struct rs_store *st = store_new();
    static const size_t lens[] = {0, 1, 15, 16, 17, 214, 1000, 5000};
    unsigned char *val = malloc(5000), *ct = malloc(5000 + TAG_LEN);
    struct dz_buf sealed, opened;
    const char *rkey = "t:sess:da6de2cc946061e2ef124da991c45a81";

    (void)state;
    assert_non_null(val);
    assert_non_null(ct);
    for (size_t i = 0; i < 5000; i++)
        val[i] = (unsigned char)('a' + i % 26);
    dz_buf_init(&sealed, 8192);
    dz_buf_init(&opened, 8192);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i];
        unsigned char tag[TAG_LEN], nonce[NONCE_LEN];
        const unsigned char *s;

        dz_buf_reset(&sealed);
        assert_int_equal(rs_seal(st, rkey, strlen(rkey), val, n, &sealed), 0);
        assert_int_equal(sealed.len, HDR_LEN + n + TAG_LEN);
        s = (const unsigned char *)sealed.data;
        assert_int_equal(s[0], 0x01);
        memcpy(nonce, s + 1, NONCE_LEN);
        assert_int_equal(gcm_oneshot(1, nonce, rkey, strlen(rkey), val, n, ct, tag), 0);
        if (n)
            assert_memory_equal(s + HDR_LEN, ct, n);
        assert_memory_equal(s + HDR_LEN + n, tag, TAG_LEN);

        /* and back */
        dz_buf_reset(&opened);
        assert_int_equal(rs_open(st, rkey, strlen(rkey), sealed.data, sealed.len, &opened), 0);
        assert_int_equal(opened.len, n);
        if (n)
            assert_memory_equal(opened.data, val, n);

        /* a value sealed one-shot with another nonce opens too */
        {
            unsigned char other[HDR_LEN + 5000 + TAG_LEN];

            other[0] = 0x01;
            for (int k = 0; k < NONCE_LEN; k++)
                other[1 + k] = (unsigned char)(0xA0 + k + i);
            assert_int_equal(gcm_oneshot(1, other + 1, rkey, strlen(rkey), val, n, other + HDR_LEN,
                                         other + HDR_LEN + n),
                             0);
            dz_buf_reset(&opened);
            assert_int_equal(rs_open(st, rkey, strlen(rkey), other, HDR_LEN + n + TAG_LEN, &opened),
                             0);
            assert_int_equal(opened.len, n);
            if (n)
                assert_memory_equal(opened.data, val, n);
        }
    }
    /* Python cryptography: AESGCM(seal_key).encrypt(bytes(range(12)),
     * b"session record", b"t:sess:x") */
    {
        unsigned char v[HDR_LEN + 14 + TAG_LEN];

        v[0] = 0x01;
        for (int k = 0; k < NONCE_LEN; k++)
            v[1 + k] = (unsigned char)k;
        assert_int_equal(unhex("f5d4b96099ce756d050d3dfefc7f2f33c66a7e6476a0a54a07c5f3c99d4a",
                               v + HDR_LEN, sizeof(v) - HDR_LEN),
                         14 + TAG_LEN);
        dz_buf_reset(&opened);
        assert_int_equal(rs_open(st, "t:sess:x", 8, v, sizeof(v), &opened), 0);
        assert_int_equal(opened.len, 14);
        assert_memory_equal(opened.data, "session record", 14);
    }
    /* a counter stays text: INCR works on it inside Redis */
    dz_buf_reset(&sealed);
    assert_int_equal(rs_seal(st, rkey, strlen(rkey), "-42", 3, &sealed), 0);
    assert_int_equal(sealed.len, 3);
    assert_memory_equal(sealed.data, "-42", 3);
    free(val);
    free(ct);
    dz_buf_cleanup(&sealed);
    dz_buf_cleanup(&opened);
    store_free(st);
}

/* Every change refuses (DZ_ERR_DENIED, nothing appended), and the next
 * good value still opens on the same thread: a failed open leaves the
 * thread's context ready for the next. */
static void test_tampered(void **state)
{
    struct rs_store *st = store_new();
    const char *rkey = "t:sess:aaaa", *other = "t:sess:aaab";
    static const char rec[] = "a session record naming a FIN";
    struct dz_buf sealed, opened;
    unsigned char bad[256];

    (void)state;
    dz_buf_init(&sealed, 256);
    dz_buf_init(&opened, 256);
    assert_int_equal(rs_seal(st, rkey, strlen(rkey), rec, sizeof(rec) - 1, &sealed), 0);
    /* every bit of the nonce, the ciphertext and the tag */
    for (size_t i = 1; i < sealed.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, sealed.data, sealed.len);
            bad[i] ^= (unsigned char)(1u << bit);
            dz_buf_reset(&opened);
            assert_int_equal(dz_buf_append(&opened, "x", 1), 0);
            assert_int_equal(rs_open(st, rkey, strlen(rkey), bad, sealed.len, &opened),
                             DZ_ERR_DENIED);
            assert_int_equal(opened.len, 1); /* nothing of the value left */
        }
    }
    /* another Redis key (the value copied under another session) */
    dz_buf_reset(&opened);
    assert_int_equal(rs_open(st, other, strlen(other), sealed.data, sealed.len, &opened),
                     DZ_ERR_DENIED);
    assert_int_equal(opened.len, 0);
    /* truncated: no tag, a short tag, the tag byte alone */
    for (size_t n = 1; n < sealed.len; n += n < HDR_LEN + TAG_LEN ? 1 : 7) {
        dz_buf_reset(&opened);
        assert_int_equal(rs_open(st, rkey, strlen(rkey), sealed.data, n, &opened), DZ_ERR_DENIED);
        assert_int_equal(opened.len, 0);
    }
    /* the clear form, which only an unsealed store writes */
    bad[0] = 0x00;
    memcpy(bad + 1, rec, sizeof(rec) - 1);
    assert_int_equal(rs_open(st, rkey, strlen(rkey), bad, sizeof(rec), &opened), DZ_ERR_DENIED);
    /* another value key */
    {
        static const unsigned char k2[DZ_STORE_REDIS_KEY_LEN] = "another-key-another-key-another!";
        struct rs_store *o = calloc(1, sizeof(*o));

        assert_non_null(o);
        assert_int_equal(rs_seal_keys(o, k2), 0);
        dz_buf_reset(&opened);
        assert_int_equal(rs_open(o, rkey, strlen(rkey), sealed.data, sealed.len, &opened),
                         DZ_ERR_DENIED);
        store_free(o);
    }
    /* still opens after all those refusals */
    dz_buf_reset(&opened);
    assert_int_equal(rs_open(st, rkey, strlen(rkey), sealed.data, sealed.len, &opened), 0);
    assert_int_equal(opened.len, sizeof(rec) - 1);
    assert_memory_equal(opened.data, rec, sizeof(rec) - 1);
    dz_buf_cleanup(&sealed);
    dz_buf_cleanup(&opened);
    store_free(st);
}

/* Two threads at once, each with its own keys and values, each result
 * checked against the one-shot calls, a refusal now and then between. */
#define ROUNDS 300

struct worker {
    struct rs_store *st;
    int id;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct dz_buf rk, sealed, opened;
    unsigned char key[40], val[300], ct[300 + TAG_LEN], tag[TAG_LEN];
    char want[128];

    dz_buf_init(&rk, 256);
    dz_buf_init(&sealed, 1024);
    dz_buf_init(&opened, 1024);
    for (int r = 0; r < ROUNDS; r++) {
        size_t klen = (size_t)(r % (int)sizeof(key)) + 1, vlen = (size_t)(r * 7 % 300) + 1;

        for (size_t i = 0; i < sizeof(key); i++)
            key[i] = (unsigned char)(w->id * 101 + r + i);
        for (size_t i = 0; i < sizeof(val); i++)
            val[i] = (unsigned char)(w->id * 13 + r * 3 + i);
        val[0] = 0x7f; /* never a counter */
        dz_buf_reset(&rk);
        dz_buf_reset(&sealed);
        dz_buf_reset(&opened);
        if (expected_name("sess", key, klen, want, sizeof(want)) != 0 ||
            rs_key(w->st, "sess", key, klen, &rk) != 0 || strcmp(rk.data, want) != 0 ||
            rs_seal(w->st, rk.data, rk.len, val, vlen, &sealed) != 0 ||
            sealed.len != HDR_LEN + vlen + TAG_LEN ||
            gcm_oneshot(1, (const unsigned char *)sealed.data + 1, rk.data, rk.len, val, vlen, ct,
                        tag) != 0 ||
            memcmp(sealed.data + HDR_LEN, ct, vlen) != 0 ||
            memcmp(sealed.data + HDR_LEN + vlen, tag, TAG_LEN) != 0 ||
            rs_open(w->st, rk.data, rk.len, sealed.data, sealed.len, &opened) != 0 ||
            opened.len != vlen || memcmp(opened.data, val, vlen) != 0) {
            w->failures++;
            continue;
        }
        if (r % 10 == 0) {
            sealed.data[sealed.len - 1] ^= 1;
            dz_buf_reset(&opened);
            if (rs_open(w->st, rk.data, rk.len, sealed.data, sealed.len, &opened) != DZ_ERR_DENIED)
                w->failures++;
        }
    }
    dz_buf_cleanup(&rk);
    dz_buf_cleanup(&sealed);
    dz_buf_cleanup(&opened);
    return NULL;
}

static void test_two_threads(void **state)
{
    struct rs_store *st = store_new();
    struct worker w[2] = {{st, 1, 0}, {st, 2, 0}};
    pthread_t th[2];

    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);
    /* the threads are gone; their contexts are freed with the store (the
     * sanitizer build's leak check would name them otherwise) */
    store_free(st);
}

/* Freeing what was never sealed is a no-op. */
static void test_cleanup_unsealed(void **state)
{
    struct rs_store *st = calloc(1, sizeof(*st));

    (void)state;
    assert_non_null(st);
    rs_seal_cleanup(st);
    assert_false(st->sealed);
    free(st);
}

static int setup(void **state)
{
    (void)state;
    derive();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_cleanup_unsealed),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
