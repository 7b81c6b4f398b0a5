/* x509cache.c - see x509cache.h. */
#include "pki/x509cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "pki/x509check.h"

#include "base/compat.h"

struct slot {
    unsigned char *der; /* the exact bytes x was parsed from */
    size_t len;
    X509 *x;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[DZ_X509_CACHE_SLOTS];
static atomic_uint_fast64_t hits, parses;

static size_t slot_of(const unsigned char *der, size_t len)
{
    unsigned char h[32];

    dz_sha256(der, len, h);
    return (((size_t)h[0] << 8) | h[1]) % DZ_X509_CACHE_SLOTS;
}

static void slot_clear(struct slot *s)
{
    X509_free(s->x);
    free(s->der);
    memset(s, 0, sizeof(*s));
}

int dz_x509_from_der_cached(const unsigned char *der, size_t len, X509 **out)
{
    struct slot *s;
    unsigned char *copy;
    X509 *x = NULL;
    int rc;

    *out = NULL;
    if (der == NULL || len == 0)
        return DZ_ERR_PARSE;
    if (len > DZ_X509_MAX_CERT_DER)
        return DZ_ERR_TOOBIG;
    s = &slots[slot_of(der, len)];
    pthread_mutex_lock(&mu);
    /* The whole DER compared: equal bytes, equal certificate. */
    if (s->x != NULL && s->len == len && memcmp(s->der, der, len) == 0 && X509_up_ref(s->x) == 1) {
        *out = s->x;
        pthread_mutex_unlock(&mu);
        atomic_fetch_add(&hits, 1);
        return 0;
    }
    pthread_mutex_unlock(&mu);
    /* Parsed outside the lock (the slow part); bad input is never kept. */
    rc = dz_x509_from_der(der, len, &x);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&parses, 1);
    /* The extensions are cached in x now, once, not later by two threads
     * at the same time (OpenSSL locks that, but a warm object is cheaper). */
    X509_check_purpose(x, -1, 0);
    copy = malloc(len);
    if (copy != NULL) {
        memcpy(copy, der, len);
        pthread_mutex_lock(&mu);
        if (X509_up_ref(x) == 1) {
            slot_clear(s);
            s->der = copy;
            s->len = len;
            s->x = x;
            copy = NULL;
        }
        pthread_mutex_unlock(&mu);
        free(copy);
    }
    *out = x;
    return 0;
}

uint64_t dz_x509_cache_hits(void)
{
    return atomic_load(&hits);
}

uint64_t dz_x509_cache_parses(void)
{
    return atomic_load(&parses);
}

void dz_x509_cache_clear(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < DZ_X509_CACHE_SLOTS; i++)
        slot_clear(&slots[i]);
    pthread_mutex_unlock(&mu);
}
