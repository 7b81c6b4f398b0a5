/*
 * certcheck_cost.c - process CPU per card login without TLS, processes or
 * SoftHSM2: POST /auth/card/challenge then POST /auth/card, N times, through
 * the request-layer harness (tests/unit/harness: the real router, nonce
 * store, signature check, certificate check, session, audit writer, blocking
 * pool; only the HTTP engine is fake), one card whose chain signatures and
 * OCSP answer are cached after the first login (cards.revocation ocsp, the
 * answer put in the gateway's cache).  The card's signature is made here
 * (about one ES256 signature per login, the same in every build).  Prints
 * process CPU (user + system, all threads) per login, the median and the
 * lowest of 9 batches of N, the voluntary context switches (thread
 * hand-offs: a thread going to sleep) and the wall time per login.  Not
 * part of `make bench`; built against a build tree, so the same source
 * against another revision's build gives the before of a before/after
 * (docs/performance.md "The certificate check on the worker loop"):
 *
 *   B=build; cc -O2 -D_GNU_SOURCE -std=c17 -Ilib -Igateway -Itests/unit \
 *      -o $B/certcheck_cost tests/bench/certcheck_cost.c $B/libtestharness.a \
 *      $B/libgateway.a $B/libdarvaza.a -lssl -lcrypto -lnghttp2 -ljansson -lyaml \
 *      -lcurl -largon2 -lrt -ldl -loath -lqrencode -lsqlite3 -lp11 -lsystemd -lpq \
 *      -lhiredis -lev -lm -pthread
 *   $B/certcheck_cost 200
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/sha.h>

#include "harness/fake_gw.h"
#include "harness/fake_pki.h"
#include "pki/certid.h"
#include "pki/ocsp.h"

#include "benchtime.h"

#define BATCHES 9

static struct fake_pki_ca cards;

static void write_trust(const char *dir, void *arg)
{
    char path[256];

    (void)arg;
    snprintf(path, sizeof(path), "%s/esign-chain.pem", dir);
    fake_pki_ca_write(&cards, path);
}

/* Process CPU seconds (all threads) and voluntary context switches. */
static double cpu_s(long *vcsw)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    *vcsw = ru.ru_nvcsw;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* One login: false if it did not give a session. */
static bool login(struct fake_gw *g, EVP_PKEY *key, const char *cert_b64)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/card/challenge");
    unsigned char msg[64];
    const char *nonce;
    char *sig, *text;
    json_t *j, *body;
    bool ok;

    if (!fake_gw_roundtrip(g, r) || fake_req_status(r) != 200)
        return false;
    j = fake_req_json(r);
    nonce = json_string_value(json_object_get(j, "nonce"));
    if (!nonce)
        return false;
    SHA256((const unsigned char *)FAKE_GW_ORIGIN, strlen(FAKE_GW_ORIGIN), msg);
    SHA256((const unsigned char *)nonce, strlen(nonce), msg + 32);
    sig = fake_pki_sign_es256_b64(key, msg, sizeof(msg));
    body = json_pack("{s:s, s:s, s:s, s:s}", "certificate", cert_b64, "algorithm", "ES256", "nonce",
                     nonce, "signature", sig);
    text = json_dumps(body, JSON_COMPACT);
    fake_req_free(r);
    r = fake_gw_req(g, "POST", "/auth/card");
    fake_req_set_json(r, text);
    ok = fake_gw_roundtrip(g, r) && fake_req_status(r) == 200;
    fake_req_free(r);
    free(text);
    free(sig);
    json_decref(body);
    json_decref(j);
    return ok;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    struct fake_gw_opts o = {
        /* Every login starts a challenge from 127.0.0.1: no start limit. */
        .config_extra = "cards:\n"
                        "  ca: @DIR@/esign-chain.pem\n"
                        "  revocation: ocsp\n"
                        "limits:\n"
                        "  starts_per_address: 100000\n"
                        "  starts_global: 10000000\n",
        .prepare = write_trust,
    };
    struct fake_gw *g = NULL;
    struct dz_ocsp_answer a;
    unsigned char k[32];
    EVP_PKEY *key;
    X509 *leaf;
    char *cert;
    double c0, w0, c1, w1;
    double per[BATCHES];
    double *lat = calloc((size_t)n * BATCHES, sizeof(*lat));
    long v0, v1, vsum = 0;
    int64_t now = (int64_t)time(NULL);
    int ok = 0;

    fake_pki_ca_init(&cards, "Bench E-Signature");
    key = fake_pki_key();
    leaf = fake_pki_person(&cards, key, "5ABC123", DZ_CERTID_POLICY_CARD, false, 500);
    cert = fake_pki_cert_b64(leaf);
    if (n <= 0 || fake_gw_new(&o, &g) != 0)
        return 2;
    memset(&a, 0, sizeof(a));
    a.status = DZ_OCSP_GOOD;
    a.this_update = now - 60;
    a.next_update = now + 3600;
    a.revocation_reason = -1;
    if (dz_ocsp_key(leaf, cards.ca, k) != 0 || dz_ocsp_cache_put(g->gw.ocsp_cache, k, &a, now) != 0)
        return 2;
    /* Warm: the first login remembers the chain's signatures. */
    for (int i = 0; i < 20; i++)
        login(g, key, cert);
    /* Batches, so that a burst of other work on the machine spoils one
     * batch, not the result: the median and the lowest batch. */
    w0 = wall_s();
    for (int b = 0; b < BATCHES; b++) {
        c0 = cpu_s(&v0);
        for (int i = 0; i < n; i++) {
            double t = wall_s();
            ok += login(g, key, cert);
            lat[b * n + i] = (wall_s() - t) * 1e6;
        }
        c1 = cpu_s(&v1);
        per[b] = (c1 - c0) * 1e6 / n;
        vsum += v1 - v0;
    }
    w1 = wall_s();
    qsort(per, BATCHES, sizeof(per[0]), cmp_double);
    printf("%d of %d logins: CPU us per login median %.1f, lowest %.1f (batches of %d); "
           "%.2f voluntary context switches and %.0f us wall per login\n",
           ok, n * BATCHES, per[BATCHES / 2], per[0], n, (double)vsum / (n * BATCHES),
           (w1 - w0) * 1e6 / (n * BATCHES));
    qsort(lat, (size_t)n * BATCHES, sizeof(*lat), cmp_double);
    printf("wall us per login: p50 %.0f, p90 %.0f, p99 %.0f, max %.0f\n", lat[n * BATCHES / 2],
           lat[n * BATCHES * 9 / 10], lat[n * BATCHES * 99 / 100], lat[n * BATCHES - 1]);
    free(lat);
    fake_gw_free(g);
    X509_free(leaf);
    free(cert);
    EVP_PKEY_free(key);
    fake_pki_ca_cleanup(&cards);
    return ok == n * BATCHES ? 0 : 1;
}
