/*
 * ocsp.c - OCSP requests, response checking, the blocking query and the
 * answer cache; see ocsp.h.  Owns the cache's entries and its mutex.  It
 * never turns an unchecked, unauthorised, stale or nonce-less response into
 * a status, never caches anything but a checked GOOD or REVOKED answer with
 * a nextUpdate, and never does I/O except in dz_ocsp_query.
 */
#include "pki/ocsp.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "http/httpc.h"

#include "base/compat.h"

/* ASN1_TIME -> unix seconds; false when it cannot be read. */
static bool asn1_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    *out = 0;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

int dz_ocsp_key(X509 *leaf, X509 *issuer, unsigned char key[32])
{
    OCSP_CERTID *id = NULL;
    unsigned char *der = NULL;
    int n;
    int rc = DZ_ERR_CRYPTO;

    memset(key, 0, 32);
    if (leaf == NULL || issuer == NULL)
        return DZ_ERR_INVAL;
    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (id == NULL)
        goto out;
    n = i2d_OCSP_CERTID(id, &der);
    if (n <= 0)
        goto out;
    dz_sha256(der, (size_t)n, key);
    rc = 0;
out:
    if (rc != 0)
        ERR_clear_error();
    OPENSSL_free(der);
    OCSP_CERTID_free(id);
    return rc;
}

int dz_ocsp_request_new(X509 *leaf, X509 *issuer, OCSP_REQUEST **req, unsigned char **der,
                        size_t *der_len)
{
    OCSP_REQUEST *r = NULL;
    OCSP_CERTID *id = NULL;
    unsigned char *d = NULL;
    int n;
    int rc = DZ_ERR_CRYPTO;

    *req = NULL;
    *der = NULL;
    *der_len = 0;
    if (leaf == NULL || issuer == NULL)
        return DZ_ERR_INVAL;
    r = OCSP_REQUEST_new();
    /* SHA-1 CertID: the one every responder (and RFC 6960 5.1.1) supports;
     * it names, it does not protect. */
    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (r == NULL || id == NULL)
        goto out;
    if (OCSP_request_add0_id(r, id) == NULL)
        goto out;
    id = NULL; /* owned by r */
    if (OCSP_request_add1_nonce(r, NULL, DZ_OCSP_NONCE_LEN) != 1)
        goto out;
    n = i2d_OCSP_REQUEST(r, &d);
    if (n <= 0)
        goto out;
    *req = r;
    r = NULL;
    *der = d;
    d = NULL;
    *der_len = (size_t)n;
    rc = 0;
out:
    if (rc != 0)
        ERR_clear_error();
    OPENSSL_free(d);
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(r);
    return rc;
}

/* Is signer allowed to answer for certificates issued by issuer (RFC 6960
 * 4.2.2.2)?  The issuer itself, or a certificate the issuer signed with
 * id-kp-OCSPSigning, valid at now. */
static bool responder_authorised(X509 *signer, X509 *issuer, int64_t now)
{
    int64_t nb;
    int64_t na;

    if (X509_cmp(signer, issuer) == 0)
        return true;
    if (X509_check_issued(issuer, signer) != X509_V_OK)
        return false;
    if (X509_verify(signer, X509_get0_pubkey(issuer)) != 1)
        return false;
    if ((X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) == 0 ||
        (X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN) == 0)
        return false;
    if (!asn1_unix(X509_get0_notBefore(signer), &nb) || !asn1_unix(X509_get0_notAfter(signer), &na))
        return false;
    return nb <= now + DZ_OCSP_LEEWAY && now - DZ_OCSP_LEEWAY <= na;
}

int dz_ocsp_response_check(const unsigned char *der, size_t len, OCSP_REQUEST *req, X509 *leaf,
                           X509 *issuer, int64_t now, const struct dz_keyfloor *floor,
                           struct dz_ocsp_answer *out)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    STACK_OF(X509) *extra = NULL;
    STACK_OF(X509) *just_signer = NULL;
    X509 *signer = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL;
    ASN1_GENERALIZEDTIME *nextupd = NULL;
    int status = -1;
    int reason = -1;
    int rc = DZ_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    out->status = DZ_OCSP_UNKNOWN;
    out->revocation_reason = -1;
    if (der == NULL || leaf == NULL || issuer == NULL)
        return DZ_ERR_INVAL;
    if (len > DZ_OCSP_MAX_RESPONSE)
        return DZ_ERR_TOOBIG;
    if (len == 0)
        return DZ_ERR_PARSE;

    resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL || p != der + len)
        goto out;
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    bs = OCSP_response_get1_basic(resp);
    if (bs == NULL)
        goto out;

    /* Replay defence: the answer must be to this request. */
    if (req != NULL && OCSP_check_nonce(req, bs) != 1) {
        rc = DZ_ERR_DENIED;
        goto out;
    }

    /* Who signed it, and may they?  Look in the response's certificates,
     * then at the issuer itself. */
    extra = sk_X509_new_null();
    just_signer = sk_X509_new_null();
    if (extra == NULL || just_signer == NULL || !sk_X509_push(extra, issuer)) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (OCSP_resp_get0_signer(bs, &signer, extra) != 1 || signer == NULL) {
        rc = DZ_ERR_DENIED;
        goto out;
    }
    if (!responder_authorised(signer, issuer, now)) {
        rc = DZ_ERR_DENIED;
        goto out;
    }
    /* The floor (keyfloor.h) holds for the answer too: the responder's
     * key, a delegated responder certificate's signature, and the
     * response's own signature algorithm.  A weak answer is no answer. */
    if (!dz_keyfloor_key_ok(floor, X509_get0_pubkey(signer), NULL, 0) ||
        !dz_keyfloor_sigalg_ok(floor, OCSP_resp_get0_tbs_sigalg(bs), false, NULL, 0)) {
        rc = DZ_ERR_DENIED;
        goto out;
    }
    if (X509_cmp(signer, issuer) != 0) {
        const X509_ALGOR *alg = NULL;

        X509_get0_signature(NULL, &alg, signer);
        if (!dz_keyfloor_sigalg_ok(floor, alg, false, NULL, 0)) {
            rc = DZ_ERR_DENIED;
            goto out;
        }
    }
    /* Signature by exactly that certificate: NOINTERN so OpenSSL cannot
     * pick another, NOVERIFY because the authorisation was decided above
     * (the issuer is already validated by the caller's path). */
    if (!sk_X509_push(just_signer, signer)) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (OCSP_basic_verify(bs, just_signer, NULL, OCSP_NOINTERN | OCSP_NOVERIFY) != 1) {
        rc = DZ_ERR_DENIED;
        goto out;
    }

    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (id == NULL) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1)
        goto out; /* no answer about this certificate */

    if (!asn1_unix(thisupd, &out->this_update))
        goto out;
    if (nextupd != NULL && !asn1_unix(nextupd, &out->next_update))
        goto out;
    rc = DZ_ERR_STATE;
    if (out->this_update > now + DZ_OCSP_LEEWAY)
        goto out; /* from the future */
    if (nextupd != NULL) {
        if (out->next_update < out->this_update || out->next_update < now - DZ_OCSP_LEEWAY)
            goto out;
    } else if (out->this_update < now - DZ_OCSP_MAX_AGE - DZ_OCSP_LEEWAY) {
        goto out; /* no nextUpdate: only a very recent answer is believed */
    }

    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
        out->status = DZ_OCSP_GOOD;
        break;
    case V_OCSP_CERTSTATUS_REVOKED:
        out->status = DZ_OCSP_REVOKED;
        out->revocation_reason = reason;
        if (rev != NULL && !asn1_unix(rev, &out->revoked_at)) {
            rc = DZ_ERR_PARSE;
            goto out;
        }
        break;
    default:
        out->status = DZ_OCSP_UNKNOWN;
        break;
    }
    dz_sha256(der, len, out->sha256);
    rc = 0;
out:
    if (rc != 0) {
        ERR_clear_error();
        memset(out, 0, sizeof(*out));
        out->status = DZ_OCSP_UNKNOWN;
        out->revocation_reason = -1;
    }
    OCSP_CERTID_free(id);
    sk_X509_free(just_signer);
    sk_X509_free(extra);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

int dz_ocsp_url(X509 *leaf, char *url, size_t url_size)
{
    STACK_OF(OPENSSL_STRING) *urls = NULL;
    int rc = DZ_ERR_NOTFOUND;
    int i;

    if (url_size > 0)
        url[0] = '\0';
    if (leaf == NULL || url_size == 0)
        return DZ_ERR_INVAL;
    urls = X509_get1_ocsp(leaf);
    for (i = 0; i < sk_OPENSSL_STRING_num(urls); i++) {
        const char *u = sk_OPENSSL_STRING_value(urls, i);
        size_t n = strlen(u);
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
            continue;
        if (n >= url_size || n > DZ_HTTPC_MAX_URL) {
            rc = DZ_ERR_TOOBIG;
            continue;
        }
        memcpy(url, u, n + 1);
        rc = 0;
        break;
    }
    X509_email_free(urls);
    return rc;
}

int dz_ocsp_query(const char *url, X509 *leaf, X509 *issuer, uint32_t timeout_ms, int64_t now,
                  const struct dz_keyfloor *floor, struct dz_ocsp_answer *out,
                  unsigned char **resp_der, size_t *resp_len)
{
    static const struct dz_hdr hdrs[] = {
        {"content-type", "application/ocsp-request"},
        {"accept", "application/ocsp-response"},
    };
    struct dz_httpc_request r;
    struct dz_buf body;
    OCSP_REQUEST *req = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int status = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->status = DZ_OCSP_UNKNOWN;
    out->revocation_reason = -1;
    if (resp_der != NULL)
        *resp_der = NULL;
    if (resp_len != NULL)
        *resp_len = 0;
    dz_buf_init(&body, DZ_OCSP_MAX_RESPONSE);
    if (url == NULL || leaf == NULL || issuer == NULL) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    rc = dz_ocsp_request_new(leaf, issuer, &req, &der, &der_len);
    if (rc != 0)
        goto out;

    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.url = url;
    r.headers = hdrs;
    r.nheaders = sizeof(hdrs) / sizeof(hdrs[0]);
    r.body = der;
    r.body_len = der_len;
    r.version = DZ_HTTPC_HTTP1;
    r.timeout_ms = timeout_ms;
    r.connect_timeout_ms = timeout_ms;
    r.max_response_bytes = DZ_OCSP_MAX_RESPONSE;
    rc = dz_http_fetch_blocking(&r, &status, &body);
    if (rc != 0)
        goto out;
    if (status != 200) {
        rc = DZ_ERR_UNAVAILABLE;
        goto out;
    }
    rc = dz_ocsp_response_check((const unsigned char *)body.data, body.len, req, leaf, issuer, now,
                                floor, out);
    if (rc != 0)
        goto out;
    if (resp_der != NULL) {
        *resp_der = OPENSSL_memdup(body.data, body.len);
        if (*resp_der == NULL) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        if (resp_len != NULL)
            *resp_len = body.len;
    }
out:
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    dz_buf_cleanup(&body);
    return rc;
}

/* ---- cache ---- */

struct entry {
    unsigned char key[32];
    struct dz_ocsp_answer answer;
    int64_t expires;
};

struct dz_ocsp_cache {
    pthread_mutex_t mu;
    size_t max;
    size_t n;
    uint64_t hits, misses, failures; /* under mu */
    struct entry *e;                 /* n used of max; unordered (a linear scan of a few
                                      * thousand keys costs microseconds, next to the
                                      * milliseconds of a signature check) */
};

int dz_ocsp_cache_new(size_t max_entries, struct dz_ocsp_cache **out)
{
    struct dz_ocsp_cache *c = NULL;

    *out = NULL;
    if (max_entries == 0)
        max_entries = DZ_OCSP_CACHE_DEFAULT;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DZ_ERR_NOMEM;
    c->e = calloc(max_entries, sizeof(*c->e));
    if (c->e == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->e);
        free(c);
        return DZ_ERR_NOMEM;
    }
    c->max = max_entries;
    *out = c;
    return 0;
}

void dz_ocsp_cache_free(struct dz_ocsp_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->e);
    free(c);
}

static void drop(struct dz_ocsp_cache *c, size_t i)
{
    c->e[i] = c->e[c->n - 1];
    c->n--;
}

static int lookup(struct dz_ocsp_cache *c, const unsigned char key[32], int64_t now,
                  struct dz_ocsp_answer *out, bool count_miss)
{
    int rc = DZ_ERR_NOTFOUND;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->status = DZ_OCSP_UNKNOWN;
    out->revocation_reason = -1;
    if (c == NULL || key == NULL)
        return DZ_ERR_INVAL;
    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->n; i++) {
        if (memcmp(c->e[i].key, key, 32) != 0)
            continue;
        if (c->e[i].expires <= now) {
            drop(c, i);
            break;
        }
        *out = c->e[i].answer;
        rc = 0;
        break;
    }
    if (rc == 0)
        c->hits++;
    else if (count_miss)
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int dz_ocsp_cache_get(struct dz_ocsp_cache *c, const unsigned char key[32], int64_t now,
                      struct dz_ocsp_answer *out)
{
    return lookup(c, key, now, out, true);
}

int dz_ocsp_cache_try(struct dz_ocsp_cache *c, const unsigned char key[32], int64_t now,
                      struct dz_ocsp_answer *out)
{
    return lookup(c, key, now, out, false);
}

void dz_ocsp_cache_stats(struct dz_ocsp_cache *c, struct dz_ocsp_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->failures = c->failures;
    out->entries = c->n;
    pthread_mutex_unlock(&c->mu);
}

void dz_ocsp_cache_note_failure(struct dz_ocsp_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->failures++;
    pthread_mutex_unlock(&c->mu);
}

int dz_ocsp_cache_put(struct dz_ocsp_cache *c, const unsigned char key[32],
                      const struct dz_ocsp_answer *a, int64_t now)
{
    int64_t expires;
    size_t i;
    size_t victim;

    if (c == NULL || key == NULL || a == NULL)
        return DZ_ERR_INVAL;
    if (a->status != DZ_OCSP_GOOD && a->status != DZ_OCSP_REVOKED)
        return DZ_ERR_INVAL;
    if (a->next_update == 0 || a->next_update <= now)
        return DZ_ERR_INVAL;
    expires = a->next_update;
    if (expires - now > DZ_OCSP_CACHE_MAX_TTL)
        expires = now + DZ_OCSP_CACHE_MAX_TTL;

    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->n; i++) {
        if (memcmp(c->e[i].key, key, 32) == 0)
            break;
    }
    if (i == c->n) {
        if (c->n < c->max) {
            c->n++;
        } else {
            /* Full: an expired entry if any, else the one expiring first. */
            victim = 0;
            for (i = 0; i < c->n; i++) {
                if (c->e[i].expires <= now) {
                    victim = i;
                    break;
                }
                if (c->e[i].expires < c->e[victim].expires)
                    victim = i;
            }
            i = victim;
        }
    }
    memcpy(c->e[i].key, key, 32);
    c->e[i].answer = *a;
    c->e[i].expires = expires;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

size_t dz_ocsp_cache_count(struct dz_ocsp_cache *c)
{
    size_t n;

    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
