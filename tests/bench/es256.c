/*
 * es256.c - what one assertion signature costs through darvaza's signer
 * (dz_jws_sign_payload: digest, EVP_PKEY_sign, DER to r || s, base64url)
 * next to OpenSSL's EVP_PKEY_sign alone on the same key, in one process:
 * their difference is what the signer adds to the floor.  The two run
 * interleaved, ROUNDS times; the medians of the thread's CPU time are
 * printed (less moved by busy neighbours than wall time).  Not part of
 * `make bench`; build it against a build tree (against another revision's
 * for the before of a before/after):
 *
 *   openssl ecparam -name prime256v1 -genkey -noout -out /tmp/k.pem
 *   cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -o build/es256_bench tests/bench/es256.c \
 *      build/libdarvaza.a $(pkg-config --libs openssl jansson) -lp11 -pthread
 *   build/es256_bench /tmp/k.pem 20000
 */
#include "keys/jws.h"
#include "keys/signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "benchtime.h"

#define ROUNDS 11

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    /* A payload the size of a usual assertion's claims. */
    static const char claims[] =
        "{\"iss\":\"https://gw.example\",\"sub\":\"EE38001085718\",\"aud\":\"registry\","
        "\"iat\":1796000000,\"exp\":1796000060,\"jti\":\"bX9tQ2c1dW5pcXVlLWp0aQ\","
        "\"sid\":\"c2Vzc2lvbi1pZC1ieXRlcw\",\"acr\":\"high\",\"amr\":[\"sc\",\"pin\"],"
        "\"auth_time\":1795999000,\"htm\":\"GET\",\"htu\":\"https://registry/api/items/42\"}";
    double ours[ROUNDS], floor_us[ROUNDS];
    struct dz_signer *s = NULL;
    EVP_PKEY *key;
    EVP_PKEY_CTX *c;
    unsigned long n;
    FILE *f;

    if (argc < 3) {
        fprintf(stderr, "usage: %s EC_KEY_PEM SIGNATURES\n", argv[0]);
        return 2;
    }
    n = strtoul(argv[2], NULL, 10);
    f = fopen(argv[1], "r");
    key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    c = key ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    if (!c || EVP_PKEY_sign_init(c) != 1 || dz_signer_open(argv[1], NULL, &s) != 0) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = cpu_s();
        for (unsigned long i = 0; i < n; i++) {
            char *tok = NULL;
            if (dz_jws_sign_payload(s, "k1", "darvaza-assertion+jwt", claims, sizeof(claims) - 1,
                                    &tok) != 0)
                return 1;
            free(tok);
        }
        ours[r] = (cpu_s() - t0) * 1e6 / (double)n;
        t0 = cpu_s();
        for (unsigned long i = 0; i < n; i++) {
            unsigned char digest[32] = {(unsigned char)i}, der[80];
            size_t der_len = sizeof(der);
            if (EVP_PKEY_sign(c, der, &der_len, digest, 32) != 1)
                return 1;
        }
        floor_us[r] = (cpu_s() - t0) * 1e6 / (double)n;
    }
    qsort(ours, ROUNDS, sizeof(double), cmp_double);
    qsort(floor_us, ROUNDS, sizeof(double), cmp_double);
    printf("dz_jws_sign_payload %.2f us, EVP_PKEY_sign alone %.2f us, added %.2f us (medians of "
           "%d)\n",
           ours[ROUNDS / 2], floor_us[ROUNDS / 2], ours[ROUNDS / 2] - floor_us[ROUNDS / 2], ROUNDS);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(key);
    dz_signer_free(s);
    return 0;
}
