/*
 * sha256.c - the cost of one SHA-256 the ways darvaza has computed it, in
 * one process so the before and after share the machine's state: the
 * implicit fetch of EVP_Digest(EVP_sha256()) (dz_sha256 before), a new
 * EVP_MD_CTX per call with the implicit fetch (Merkle leaf, batch JWS
 * before), SHA256() (Merkle node before), EVP_Digest with an EVP_MD
 * fetched once (the signer before), and dz_sha256_parts (now).  THREADS
 * threads hash at once (the gateway hashes on every worker and on the audit
 * writer).  Sizes: a Merkle node (65 bytes) and an audit line (600).  The
 * ways run interleaved, ROUNDS times; the median of each is printed, so a
 * busy neighbour slows all of them alike.  Not part
 * of `make bench`; build it against a build tree:
 *
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -o build/sha256_bench tests/bench/sha256.c \
 *      build/libdarvaza.a -lcrypto -pthread
 *   build/sha256_bench 200000 2
 */
#include "base/sha256.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "benchtime.h"

#define ROUNDS 7

enum way { IMPLICIT, NEWCTX, ONESHOT, FETCHED, PARTS, WAYS };
static const char *names[WAYS] = {"EVP_Digest(EVP_sha256())", "EVP_MD_CTX_new + implicit fetch",
                                  "SHA256()", "EVP_Digest(fetched EVP_MD)", "dz_sha256_parts"};

static EVP_MD *fetched;
static unsigned long iters;
static size_t msg_len;
static enum way cur;

static void hash_once(const unsigned char *msg, unsigned char out[32])
{
    unsigned int len = 32;

    switch (cur) {
    case IMPLICIT:
        EVP_Digest(msg, msg_len, out, &len, EVP_sha256(), NULL);
        break;
    case NEWCTX: {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        EVP_DigestInit_ex(c, EVP_sha256(), NULL);
        EVP_DigestUpdate(c, msg, msg_len);
        EVP_DigestFinal_ex(c, out, NULL);
        EVP_MD_CTX_free(c);
        break;
    }
    case ONESHOT:
        SHA256(msg, msg_len, out);
        break;
    case FETCHED:
        EVP_Digest(msg, msg_len, out, &len, fetched, NULL);
        break;
    default: {
        const struct dz_sha256_part p = {msg, msg_len};
        dz_sha256_parts(&p, 1, out);
        break;
    }
    }
}

static void *run(void *arg)
{
    unsigned char msg[600];
    unsigned char out[32] = {0};

    memset(msg, 'a', sizeof(msg));
    for (unsigned long i = 0; i < iters; i++) {
        hash_once(msg, out);
        msg[0] = out[0]; /* a dependency, so nothing is hoisted */
    }
    return arg;
}

int main(int argc, char **argv)
{
    static const size_t sizes[2] = {65, 600};
    pthread_t th[16];
    unsigned threads;

    if (!bench_iters_threads(argc, argv, &iters, &threads, 16))
        return 2;
    fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    printf("| way (%u thread%s, median of "
           "%d"
           ") | 65 B, ns | 600 B, ns |\n| --- | ---: | ---: |\n",
           threads, threads > 1 ? "s" : "", ROUNDS);
    static double ns[WAYS][2][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (cur = 0; cur < WAYS; cur++) {
            for (int s = 0; s < 2; s++) {
                double t0;
                msg_len = sizes[s];
                t0 = wall_s();
                for (unsigned i = 0; i < threads; i++)
                    pthread_create(&th[i], NULL, run, NULL);
                for (unsigned i = 0; i < threads; i++)
                    pthread_join(th[i], NULL);
                /* Wall time per hash per thread: what one thread waits. */
                ns[cur][s][r] = (wall_s() - t0) * 1e9 / (double)iters;
            }
        }
    }
    for (cur = 0; cur < WAYS; cur++) {
        qsort(ns[cur][0], ROUNDS, sizeof(double), cmp_double);
        qsort(ns[cur][1], ROUNDS, sizeof(double), cmp_double);
        printf("| %s | %.0f | %.0f |\n", names[cur], ns[cur][0][ROUNDS / 2],
               ns[cur][1][ROUNDS / 2]);
    }
    EVP_MD_free(fetched);
    return 0;
}
