/*
 * card_login.c - darvaza-card's conversation with the gateway (see card.h):
 * POST /auth/card/challenge, the card signs SHA-256(origin) ||
 * SHA-256(nonce), POST /auth/card, print the session.  HTTP/2 through
 * libcurl's easy interface on one handle, so both requests share one
 * connection (TLS with ALPN h2; "http://" means h2c with prior knowledge,
 * for a loopback listener).  Every answer is bounded (DZ_CARD_BODY_MAX) and
 * every request timed out.  It never sees the PIN (the caller logged in)
 * and never writes the token anywhere but `to` and the cookie jar the user
 * named (created 0600).
 */
#include "card.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

#define DEFAULT_TIMEOUT_MS 30000L

struct http {
    CURL *h;
    struct dz_card_tls_cache *tls_cache; /* NULL: no --tls-session */
    struct curl_slist *hdrs;
    struct dz_buf body;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct http *x = arg;
    size_t len = size * n;

    if (dz_buf_append(&x->body, p, len) != 0) {
        x->too_big = true;
        return 0; /* libcurl stops the transfer: CURLE_WRITE_ERROR */
    }
    return len;
}

/* libcurl's hook on each connection's SSL_CTX: the session file's
 * callbacks. */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
    (void)h;
    return dz_card_tls_cache_attach(arg, ssl_ctx) == 0 ? CURLE_OK : CURLE_SSL_CONNECT_ERROR;
}

static int http_init(struct http *x, const struct dz_card_login_opts *o,
                     struct dz_card_tls_cache *cache)
{
    bool h2c = strncasecmp(o->gateway, "http://", 7) == 0;
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;

    memset(x, 0, sizeof(*x));
    x->tls_cache = cache;
    dz_buf_init(&x->body, DZ_CARD_BODY_MAX);
    x->h = curl_easy_init();
    if (!x->h)
        return DZ_ERR_NOMEM;
    x->hdrs = curl_slist_append(NULL, "content-type: application/json");
    if (x->hdrs)
        x->hdrs = curl_slist_append(x->hdrs, "accept: application/json");
    if (!x->hdrs)
        return DZ_ERR_NOMEM;
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->h, CURLOPT_HTTP_VERSION,
                     h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                         : (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt(x->h, CURLOPT_USERAGENT, "darvaza-card/1");
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->cacert)
        curl_easy_setopt(x->h, CURLOPT_CAINFO, o->cacert);
    if (o->cookie_jar) {
        curl_easy_setopt(x->h, CURLOPT_COOKIEFILE, "");
        curl_easy_setopt(x->h, CURLOPT_COOKIEJAR, o->cookie_jar);
    }
    if (x->tls_cache) {
        /* libcurl's own session cache would install its own new-session
         * callback on the same context: ours replaces it. */
        curl_easy_setopt(x->h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        if (curl_easy_setopt(x->h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK ||
            curl_easy_setopt(x->h, CURLOPT_SSL_CTX_DATA, x->tls_cache) != CURLE_OK)
            return DZ_ERR_STATE;
    }
    return 0;
}

/* The session token goes through these buffers: wipe them. */
static void http_cleanup(struct http *x)
{
    if (x->h)
        curl_easy_cleanup(x->h); /* writes the cookie jar */
    x->h = NULL;
    curl_slist_free_all(x->hdrs);
    dz_buf_wipe(&x->body);
    dz_buf_cleanup(&x->body);
}

/* POST body to url; *status is the HTTP status.  0, or DZ_ERR_UNAVAILABLE
 * / DZ_ERR_TOOBIG with the reason on stderr. */
static int http_post(struct http *x, const char *url, const char *body, long *status)
{
    CURLcode cc;

    *status = 0;
    dz_buf_wipe(&x->body);
    dz_buf_reset(&x->body);
    x->too_big = false;
    x->errbuf[0] = '\0';
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    cc = curl_easy_perform(x->h);
    if (x->too_big) {
        fprintf(stderr, "darvaza-card: %s: the answer is larger than %d bytes\n", url,
                DZ_CARD_BODY_MAX);
        return DZ_ERR_TOOBIG;
    }
    if (cc != CURLE_OK) {
        fprintf(stderr, "darvaza-card: %s: %s\n", url,
                x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
        return DZ_ERR_UNAVAILABLE;
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

/* Say why the gateway refused (a problem document, or just the status). */
static void report_refusal(const char *what, long status, const struct http *x)
{
    struct dz_card_problem p;

    if (dz_card_parse_problem(dz_buf_cstr(&x->body), x->body.len, &p) == 0)
        fprintf(stderr, "darvaza-card: %s refused: %ld %s: %s%s%s%s\n", what, status, p.code,
                p.title[0] ? p.title : "(no title)", p.detail[0] ? " (" : "", p.detail,
                p.detail[0] ? ")" : "");
    else
        fprintf(stderr, "darvaza-card: %s: the gateway answered %ld without a problem document\n",
                what, status);
}

/* base + path, without doubling the slash. */
static int make_url(const char *base, const char *path, char *out, size_t cap)
{
    size_t n = strlen(base);
    int w;

    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n > DZ_CARD_URL_MAX)
        return DZ_ERR_INVAL;
    w = snprintf(out, cap, "%.*s%s", (int)n, base, path);
    return w > 0 && (size_t)w < cap ? 0 : DZ_ERR_TOOBIG;
}

/* Sign the challenge for origin/nonce: the request body (malloc'd). */
static int signed_request(struct dz_card_key *k, const char *origin, const char *nonce, char **out)
{
    unsigned char msg[64];
    unsigned char sig[DZ_CARD_SIG_MAX];
    size_t sig_len = 0;
    char alg[DZ_CARD_ALG_MAX];
    unsigned char *der = NULL;
    int der_len;
    int rc;

    *out = NULL;
    dz_card_challenge_message(origin, nonce, msg);
    if ((rc = dz_card_key_sign(k, msg, sizeof(msg), alg, sig, &sig_len)) != 0)
        return rc;
    der_len = i2d_X509(dz_card_key_cert(k), &der);
    if (der_len <= 0)
        return DZ_ERR_CRYPTO;
    rc = dz_card_request_json(der, (size_t)der_len, alg, nonce, sig, sig_len, out);
    OPENSSL_free(der);
    return rc;
}

int dz_card_sign_challenge(struct dz_card_key *k, const char *origin, const char *nonce, FILE *to)
{
    char *req = NULL;
    int rc = signed_request(k, origin, nonce, &req);

    if (rc == 0) {
        fprintf(to, "%s\n", req);
        free(req);
    }
    return rc;
}

/* Create the cookie jar 0600 before libcurl writes the session cookie. */
static int prepare_jar(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        fprintf(stderr, "darvaza-card: %s: %s\n", path, strerror(errno));
        return DZ_ERR_IO;
    }
    if (fchmod(fd, 0600) != 0) {
        fprintf(stderr, "darvaza-card: %s: %s\n", path, strerror(errno));
        close(fd);
        return DZ_ERR_IO;
    }
    close(fd);
    return 0;
}

enum dz_card_outcome dz_card_login(const struct dz_card_login_opts *o, struct dz_card_key *k,
                                   FILE *to)
{
    struct http x;
    char origin[DZ_CARD_ORIGIN_MAX + 1];
    char target[DZ_CARD_ORIGIN_MAX + 1];
    struct dz_card_tls_cache *cache = NULL;
    char url[DZ_CARD_URL_MAX + 64];
    char nonce[DZ_CARD_NONCE_MAX + 1];
    char token[257];
    char *req = NULL;
    long expires_in = 0;
    long status = 0;
    enum dz_card_outcome res = DZ_CARD_FAILED;
    const char *body;
    size_t blen;

    token[0] = '\0';
    memset(&x, 0, sizeof(x));
    dz_buf_init(&x.body, DZ_CARD_BODY_MAX);
    if (o->origin) {
        if (dz_card_origin_from_url(o->origin, origin, sizeof(origin)) != 0 ||
            strcmp(origin, o->origin) != 0) {
            fprintf(stderr,
                    "darvaza-card: --origin must be an origin like https://host[:port] "
                    "(got \"%s\")\n",
                    o->origin);
            goto out;
        }
    } else if (dz_card_origin_from_url(o->gateway, origin, sizeof(origin)) != 0) {
        fprintf(stderr, "darvaza-card: --gateway must be an http(s) URL without user name "
                        "(e.g. https://localhost:8443)\n");
        goto out;
    }
    if (o->cookie_jar && prepare_jar(o->cookie_jar) != 0)
        goto out;
    /* The session file is keyed on where the connection goes (not on
     * --origin, which only names what the signature covers).  It is a
     * cache: without it the login goes on with a full handshake. */
    if (o->tls_session && (dz_card_origin_from_url(o->gateway, target, sizeof(target)) != 0 ||
                           dz_card_tls_cache_open(o->tls_session, target, o->cacert, &cache) != 0))
        cache = NULL;
    if (http_init(&x, o, cache) != 0) {
        fprintf(stderr, "darvaza-card: out of memory\n");
        goto out;
    }

    if (make_url(o->gateway, "/auth/card/challenge", url, sizeof(url)) != 0 ||
        http_post(&x, url, "", &status) != 0)
        goto out;
    if (o->verbose && cache)
        fprintf(stderr, "darvaza-card: TLS: %s\n",
                dz_card_tls_cache_resumed(cache) ? "session resumed" : "full handshake");
    if (status != 200) {
        report_refusal("challenge", status, &x);
        res = status >= 500 ? DZ_CARD_FAILED : DZ_CARD_REFUSED;
        goto out;
    }
    if (dz_card_parse_challenge(dz_buf_cstr(&x.body), x.body.len, nonce, &expires_in) != 0) {
        fprintf(stderr,
                "darvaza-card: %s: the answer is not a card challenge "
                "(is this a darvaza gateway?)\n",
                url);
        goto out;
    }
    if (signed_request(k, origin, nonce, &req) != 0)
        goto out;

    if (make_url(o->gateway, "/auth/card", url, sizeof(url)) != 0 ||
        http_post(&x, url, req, &status) != 0)
        goto out;
    body = dz_buf_cstr(&x.body);
    blen = x.body.len;
    if (status != 200) {
        report_refusal("login", status, &x);
        res = status >= 500 ? DZ_CARD_FAILED : DZ_CARD_REFUSED;
        goto out;
    }
    if (dz_card_parse_session(body, blen, token) != 0) {
        fprintf(stderr, "darvaza-card: the gateway's answer holds no session token\n");
        goto out;
    }
    while (blen > 0 && (body[blen - 1] == '\n' || body[blen - 1] == '\r'))
        blen--;
    /* The session as the gateway sent it, then the token alone on the last
     * line, so `| tail -n 1` gives a script its bearer token. */
    fprintf(to, "%.*s\n%s\n", (int)blen, body, token);
    fflush(to);
    res = DZ_CARD_OK;
out:
    free(req);
    dz_secret_wipe(token, sizeof(token));
    http_cleanup(&x); /* the connection closed: no ticket comes later */
    dz_card_tls_cache_save(cache);
    dz_card_tls_cache_free(cache);
    return res;
}
