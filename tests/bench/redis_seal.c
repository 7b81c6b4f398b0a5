/*
 * redis_seal.c - the cost of the Redis store's sealing per call: the name
 * of a session's key (rs_key: HMAC-SHA256 of "sess" 0x00 and a 32-byte
 * session id), a session record sealed (rs_seal: AES-256-GCM of 214 bytes,
 * the Redis key as associated data) and opened again (rs_open).
 *
 * Two ways side by side in one process, interleaved, so the before and the
 * after share the machine's state:
 *   one-shot  what store_redis_seal.c did until 2026-12-07, reproduced
 *             here: HMAC() (an implicit fetch and a key set-up per call)
 *             and a new EVP_CIPHER_CTX with EVP_aes_256_gcm() and the key
 *             schedule per call;
 *   rs_*      the functions of the build this is linked against.
 * Linked against a build of the old code, both ways measure the same thing
 * (a check of the bench itself).  THREADS threads call at once (the store
 * is called from every worker loop and the pool).  ROUNDS rounds; the
 * median of each is printed, in ns per call per thread: wall time (what a
 * caller waits, a lock's wait included) and the threads' CPU time (what
 * a busy neighbour on a shared machine disturbs least).  Not
 * part of `make bench`; build it against a build tree:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -Igateway $(pkg-config --cflags hiredis) \
 *      -o build/redis_seal_bench tests/bench/redis_seal.c build/libgateway.a \
 *      build/libdarvaza.a -lcrypto -pthread
 *   build/redis_seal_bench 100000 1
 */
#include "state/store_redis_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "benchtime.h"

#define ROUNDS 7
#define REC_LEN 214
#define SID_LEN 32

enum way { ONESHOT, RS, WAYS };
enum op { NAME, SEAL, OPEN, OPS };
static const char *way_names[WAYS] = {"one-shot (before)", "rs_* of this build"};
static const char *op_names[OPS] = {"name (rs_key)", "seal (rs_seal)", "open (rs_open)"};

static struct rs_store *st;
static unsigned char seal_key[32], name_key[32]; /* the one-shot way's copies */
static unsigned long iters;
static enum way cur_way;
static enum op cur_op;

/* The old rs_key's work: the message copied, HMAC() one-shot. */
static int name_oneshot(const unsigned char *sid, struct dz_buf *out)
{
    unsigned char msg[5 + SID_LEN], mac[32];
    unsigned int mac_len = sizeof(mac);
    static const char digits[] = "0123456789abcdef";
    char hex[32];

    memcpy(msg, "sess", 5);
    memcpy(msg + 5, sid, SID_LEN);
    if (dz_buf_append(out, st->prefix, st->prefix_len) != 0 || dz_buf_append(out, "sess:", 5) != 0)
        return -1;
    if (!HMAC(EVP_sha256(), name_key, sizeof(name_key), msg, sizeof(msg), mac, &mac_len))
        return -1;
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    return dz_buf_append(out, hex, sizeof(hex));
}

/* The old rs_seal / rs_open's cipher work: a new context, the implicit
 * fetch and the key schedule per call. */
static int gcm_oneshot(int enc, const char *aad, size_t aad_len, const unsigned char *nonce,
                       const unsigned char *in, size_t len, unsigned char *out,
                       unsigned char tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok;

    ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, seal_key, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)aad_len) == 1 &&
         EVP_CipherUpdate(c, out, &n, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    double *cpu = arg, c0 = cpu_s();
    unsigned char sid[SID_LEN], rec[REC_LEN];
    struct dz_buf rk, sealed, opened;
    unsigned long bad = 0;

    memset(sid, 7, sizeof(sid));
    memset(rec, 'r', sizeof(rec));
    dz_buf_init(&rk, 256);
    dz_buf_init(&sealed, 1024);
    dz_buf_init(&opened, 1024);
    if (rs_key(st, "sess", sid, sizeof(sid), &rk) != 0 ||
        rs_seal(st, rk.data, rk.len, rec, sizeof(rec), &sealed) != 0)
        bad++;
    for (unsigned long i = 0; i < iters; i++) {
        const unsigned char *s = (const unsigned char *)sealed.data;

        switch (cur_op) {
        case NAME:
            dz_buf_reset(&rk);
            sid[0] = (unsigned char)i;
            bad += cur_way == RS ? rs_key(st, "sess", sid, sizeof(sid), &rk) != 0
                                 : name_oneshot(sid, &rk) != 0;
            break;
        case SEAL:
            if (cur_way == RS) {
                dz_buf_reset(&sealed);
                bad += rs_seal(st, rk.data, rk.len, rec, sizeof(rec), &sealed) != 0;
            } else {
                unsigned char out[1 + 12 + REC_LEN + 16];

                out[0] = 1;
                bad += RAND_bytes(out + 1, 12) != 1 ||
                       gcm_oneshot(1, rk.data, rk.len, out + 1, rec, sizeof(rec), out + 13,
                                   out + 13 + REC_LEN) != 0;
            }
            break;
        default:
            if (cur_way == RS) {
                dz_buf_reset(&opened);
                bad += rs_open(st, rk.data, rk.len, sealed.data, sealed.len, &opened) != 0;
            } else {
                unsigned char out[REC_LEN + 16], tag[16];

                memcpy(tag, s + 13 + REC_LEN, 16);
                bad += gcm_oneshot(0, rk.data, rk.len, s + 1, s + 13, REC_LEN, out, tag) != 0;
            }
            break;
        }
    }
    dz_buf_cleanup(&rk);
    dz_buf_cleanup(&sealed);
    dz_buf_cleanup(&opened);
    if (bad)
        fprintf(stderr, "%lu calls failed\n", bad);
    *cpu = cpu_s() - c0;
    return arg;
}

int main(int argc, char **argv)
{
    static const unsigned char key[DZ_STORE_REDIS_KEY_LEN] = "0123456789abcdef0123456789abcdef";
    static const char seal_label[] = "darvaza redis value v1";
    static const char name_label[] = "darvaza redis key name v1";
    static double ns[WAYS][OPS][ROUNDS], cpu_ns[WAYS][OPS][ROUNDS];
    double cpu[16];
    unsigned int n = 32;
    pthread_t th[16];
    unsigned threads;

    if (!bench_iters_threads(argc, argv, &iters, &threads, 16))
        return 2;
    st = calloc(1, sizeof(*st));
    if (!st)
        return 1;
    snprintf(st->prefix, sizeof(st->prefix), "darvaza:");
    st->prefix_len = strlen(st->prefix);
    rs_seal_keys(st, key);
    HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)seal_label, sizeof(seal_label) - 1,
         seal_key, &n);
    HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)name_label, sizeof(name_label) - 1,
         name_key, &n);
    for (int r = 0; r < ROUNDS; r++) {
        for (cur_op = 0; cur_op < OPS; cur_op++) {
            for (cur_way = 0; cur_way < WAYS; cur_way++) {
                double t0 = wall_s(), c = 0;

                for (unsigned i = 0; i < threads; i++)
                    pthread_create(&th[i], NULL, run, &cpu[i]);
                for (unsigned i = 0; i < threads; i++) {
                    pthread_join(th[i], NULL);
                    c += cpu[i];
                }
                /* Wall time per call per thread: what one caller waits. */
                ns[cur_way][cur_op][r] = (wall_s() - t0) * 1e9 / (double)iters;
                cpu_ns[cur_way][cur_op][r] = c * 1e9 / (double)iters / threads;
            }
        }
    }
    printf("| %u thread%s, median of %d, ns per call (wall / CPU) | %s | %s | %s |\n"
           "| --- | ---: | ---: | ---: |\n",
           threads, threads > 1 ? "s" : "", ROUNDS, op_names[0], op_names[1], op_names[2]);
    for (int w = 0; w < WAYS; w++) {
        printf("| %s |", way_names[w]);
        for (int o = 0; o < OPS; o++) {
            qsort(ns[w][o], ROUNDS, sizeof(double), cmp_double);
            qsort(cpu_ns[w][o], ROUNDS, sizeof(double), cmp_double);
            printf(" %.0f / %.0f |", ns[w][o][ROUNDS / 2], cpu_ns[w][o][ROUNDS / 2]);
        }
        printf("\n");
    }
    return 0;
}
