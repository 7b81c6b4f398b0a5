/* test_httpd.c - the HTTP/2 engine (lib/http/httpd.c, lib/http/h2conn.c, lib/http/h2req.c)
 * in-process on 127.0.0.1, driven by libcurl (h2c prior knowledge and TLS
 * with ALPN h2) and by a raw nghttp2 client for the abuse cases curl cannot
 * produce (rapid reset, stalled request, idle and handshake timeouts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/err.h"
#include "harness/h2raw_client.h"
#include "harness/h2raw_server.h"
#include "http/httpd.h"
#include "http/httpd_int.h" /* dz_httpd_worker_at */
#include "http/tls.h"

/* ---------- certificates ---------- */

static char g_dir[64];

/* Self-signed (issuer == NULL) or issued by (issuer, ikey); EC P-256. */
static void make_cert(const char *name, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                      X509 **out_cert, EVP_PKEY **out_key)
{
    char path[160];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n;
    FILE *f;

    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff) + 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);

    snprintf(path, sizeof(path), "%s/%s.crt", g_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", g_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    if (out_cert)
        *out_cert = x;
    else
        X509_free(x);
    if (out_key)
        *out_key = key;
    else
        EVP_PKEY_free(key);
}

static SSL_CTX *ctx_for(const char *name, const char *client_ca)
{
    char crt[160], key[160], ca[160];
    SSL_CTX *ctx = NULL;

    snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", g_dir, name);
    if (client_ca)
        snprintf(ca, sizeof(ca), "%s/%s.crt", g_dir, client_ca);
    assert_int_equal(dz_tls_server_ctx_new(crt, key, client_ca ? ca : NULL, true, &ctx), 0);
    return ctx;
}

/* Handlers run on worker threads, where cmocka's longjmp cannot be used. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #x);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---------- the application under test ---------- */

static atomic_int n_worker_init, n_worker_fini, n_on_request, n_on_close, n_early_on_request;
static atomic_int n_drain_cut; /* on_close calls for requests the drain deadline cut */
static atomic_int late_answer_rc = 12345, bad_hdr_rc = 12345;
static _Atomic(struct dz_req *) g_held; /* the last /held request */

struct later {
    ev_timer t;
    struct dz_req *r;
    int step;
};

static int query_int(const char *path, const char *key, int dflt)
{
    const char *q = strstr(path, key);
    return q ? (int)strtol(q + strlen(key), NULL, 10) : dflt;
}

static void on_close_count(struct dz_req *r, void *arg)
{
    (void)arg;
    if (dz_req_is_drain_cut(r))
        atomic_fetch_add(&n_drain_cut, 1);
    atomic_fetch_add(&n_on_close, 1);
}

/* Answers a request the app holds a reference to, and lets it go; when
 * its stream closed first, the answer is a no-op whose result is kept. */
static void answer_late(void *arg)
{
    struct dz_req *r = arg;
    bool closed = dz_req_is_closed(r);
    int rc = dz_req_respond(r, 200, NULL, 0, "slow", 4);

    if (closed)
        atomic_store(&late_answer_rc, rc);
    dz_req_unref(r);
}

static void slow_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct later *l = (struct later *)t;

    (void)loop;
    (void)revents;
    answer_late(l->r);
    free(l);
}

static void stream_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct later *l = (struct later *)t;
    char chunk[16];

    (void)revents;
    if (dz_req_is_closed(l->r) || l->step == 5) {
        if (!dz_req_is_closed(l->r))
            CHECK((dz_req_end(l->r)) == 0);
        ev_timer_stop(loop, t);
        dz_req_unref(l->r);
        free(l);
        return;
    }
    snprintf(chunk, sizeof(chunk), "chunk%d\n", l->step++);
    CHECK((dz_req_write(l->r, chunk, strlen(chunk))) == 0);
}

static void async_answer(void *arg)
{
    struct dz_req *r = arg;

    dz_req_respond(r, 200, NULL, 0, "async", 5);
    dz_req_unref(r);
}

static void *async_thread(void *arg)
{
    struct dz_req *r = arg;
    struct timespec ts = {0, 30 * 1000 * 1000};
    struct dz_worker *w;

    /* Not a wait of the test: the answer comes from another thread a
     * while after on_request returned, however long that takes. */
    nanosleep(&ts, NULL);
    /* dz_req_worker only reads a pointer that never changes. */
    w = dz_req_worker(r);
    if (dz_worker_post(w, async_answer, r) != 0)
        abort();
    return NULL;
}

static void on_headers(struct dz_req *r, void *wdata)
{
    (void)wdata;
    if (strcmp(dz_req_path(r), "/early") == 0) {
        CHECK((dz_req_respond(r, 401, NULL, 0, "no", 2)) == 0);
        return;
    }
    if (strcmp(dz_req_path(r), "/small") == 0)
        dz_req_set_body_limit(r, 10);
}

static void on_request(struct dz_req *r, void *wdata)
{
    const char *path = dz_req_path(r);
    struct dz_hdr ct[] = {{"content-type", "text/plain"}};
    struct ev_loop *loop = dz_worker_loop(dz_req_worker(r));
    const unsigned char *body;
    size_t len;

    CHECK(wdata == dz_req_worker(r));
    atomic_fetch_add(&n_on_request, 1);
    if (strcmp(path, "/early") == 0)
        atomic_fetch_add(&n_early_on_request, 1);
    if (dz_req_body_overflow(r)) {
        body = dz_req_body(r, &len);
        CHECK((len) == 0);
        CHECK((dz_req_respond(r, 413, ct, 1, "too large", 9)) == 0);
        return;
    }
    if (strcmp(path, "/hello") == 0) {
        CHECK((dz_req_respond(r, 200, ct, 1, "hello", 5)) == 0);
        CHECK((dz_req_respond(r, 200, ct, 1, "hello", 5)) == DZ_ERR_STATE);
    } else if (strcmp(path, "/echo") == 0 || strcmp(path, "/small") == 0) {
        body = dz_req_body(r, &len);
        CHECK((dz_req_respond(r, 200, ct, 1, body, len)) == 0);
    } else if (strcmp(path, "/info") == 0) {
        char info[512];
        X509 *peer = dz_req_peer_cert(r);
        char cn[64] = "-";
        const char *x = dz_req_header(r, "x-test");
        if (peer)
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
        snprintf(info, sizeof(info), "%s %s %s %s tls=%d peer=%s x=%s n=%zu tag=%d",
                 dz_req_method(r), dz_req_scheme(r), dz_req_authority(r), dz_req_peer_ip(r),
                 dz_req_is_tls(r), cn, x ? x : "-", dz_req_header_count(r), dz_req_listener_tag(r));
        CHECK((dz_req_respond(r, 200, ct, 1, info, strlen(info))) == 0);
    } else if (strcmp(path, "/never") == 0) {
        /* no answer: the engine's response timeout must end it */
    } else if (strcmp(path, "/badhdr") == 0) {
        struct dz_hdr bad1[] = {{"Upper", "x"}};
        struct dz_hdr bad2[] = {{"x-ok", "a\r\nb"}};
        struct dz_hdr bad3[] = {{"connection", "close"}};
        struct dz_hdr good[] = {{"x-a", "1"}, {"content-length", "999"}};
        int rc1 = dz_req_respond(r, 200, bad1, 1, NULL, 0);
        int rc2 = dz_req_respond(r, 200, bad2, 1, NULL, 0);
        int rc3 = dz_req_respond(r, 200, bad3, 1, NULL, 0);
        int rc4 = dz_req_respond(r, 99, NULL, 0, NULL, 0);
        atomic_store(&bad_hdr_rc, (rc1 == DZ_ERR_INVAL && rc2 == DZ_ERR_INVAL &&
                                   rc3 == DZ_ERR_INVAL && rc4 == DZ_ERR_INVAL)
                                      ? 0
                                      : -1);
        /* The app's content-length is replaced by the real one. */
        CHECK((dz_req_respond(r, 200, good, 2, "ok", 2)) == 0);
    } else if (strcmp(path, "/async") == 0) {
        pthread_t t;
        dz_req_ref(r);
        CHECK((pthread_create(&t, NULL, async_thread, r)) == 0);
        pthread_detach(t);
    } else if (strncmp(path, "/slow", 5) == 0) {
        struct later *l = calloc(1, sizeof(*l));
        CHECK(l != NULL);
        l->r = r;
        dz_req_ref(r);
        dz_req_on_close(r, on_close_count, NULL);
        ev_timer_init(&l->t, slow_cb, query_int(path, "ms=", 300) / 1000.0, 0.);
        ev_timer_start(loop, &l->t);
    } else if (strcmp(path, "/held") == 0) {
        /* held until the test has it answered (answer_late) */
        dz_req_ref(r);
        dz_req_on_close(r, on_close_count, NULL);
        atomic_store(&g_held, r);
    } else if (strcmp(path, "/stream") == 0) {
        struct later *l = calloc(1, sizeof(*l));
        CHECK(l != NULL);
        CHECK((dz_req_write(r, "x", 1)) == DZ_ERR_STATE); /* not started */
        CHECK((dz_req_start(r, 200, ct, 1)) == 0);
        CHECK((dz_req_write(r, "start\n", 6)) == 0);
        CHECK(dz_req_pending(r) >= 6);
        l->r = r;
        dz_req_ref(r);
        ev_timer_init(&l->t, stream_cb, 0.01, 0.01);
        ev_timer_start(loop, &l->t);
    } else if (strcmp(path, "/stream-reset") == 0) {
        /* An answer whose source failed after its first byte. */
        CHECK((dz_req_start(r, 200, ct, 1)) == 0);
        CHECK((dz_req_write(r, "start\n", 6)) == 0);
        CHECK((dz_req_reset(r)) == 0);
        CHECK((dz_req_write(r, "more\n", 5)) == 0); /* no-ops once reset */
        CHECK((dz_req_end(r)) == 0);
        CHECK((dz_req_reset(r)) == 0);
    } else if (strncmp(path, "/big", 4) == 0) {
        size_t n = (size_t)query_int(path, "n=", 1 << 20);
        unsigned char *b = malloc(n);
        CHECK(b != NULL);
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)('a' + i % 26);
        int rc = dz_req_respond(r, 200, ct, 1, b, n);
        /* TOOBIG: the answer took its connection over its budget of unsent
         * bytes and the connection was closed (test_zero_window_budget). */
        CHECK(rc == 0 || rc == DZ_ERR_TOOBIG);
        free(b);
    } else {
        CHECK((dz_req_respond(r, 404, ct, 1, "not found", 9)) == 0);
    }
}

static void *worker_init(struct dz_worker *w, void *app)
{
    CHECK(app == &n_worker_init);
    atomic_fetch_add(&n_worker_init, 1);
    return w;
}

static void worker_fini(struct dz_worker *w, void *wdata)
{
    CHECK(w == wdata);
    atomic_fetch_add(&n_worker_fini, 1);
}

/* ---------- server fixture ---------- */

static void test_limits(struct dz_httpd_limits *l)
{
    dz_httpd_limits_default(l);
    l->max_body_bytes = 4096;
    l->max_header_count = 30;
    l->max_header_bytes = 4096;
    l->handshake_timeout_ms = 2000;
    l->idle_timeout_ms = 5000;
    l->request_timeout_ms = 2000;
}

static void srv_start(struct h2raw_server *s, const struct dz_httpd_limits *lim, SSL_CTX *tls,
                      unsigned workers)
{
    struct dz_httpd_conf c;

    memset(&c, 0, sizeof(c));
    c.workers = workers;
    c.limits = *lim;
    c.handlers.worker_init = worker_init;
    c.handlers.worker_fini = worker_fini;
    c.handlers.on_headers = on_headers;
    c.handlers.on_request = on_request;
    c.app = &n_worker_init;
    h2raw_server_start(s, &c, tls);
}

static void srv_stop(struct h2raw_server *s)
{
    int fini_before = atomic_load(&n_worker_fini);
    unsigned workers = 0;

    dz_httpd_drain(s->h, 1000);
    workers = (unsigned)(atomic_load(&n_worker_fini) - fini_before);
    assert_true(workers >= 1);
    assert_int_equal(dz_httpd_open_connections(s->h), 0);
    dz_httpd_free(s->h);
    s->h = NULL;
}

/* ---------- curl helpers ---------- */

struct resp {
    CURLcode rc;
    long status;
    long version;
    struct dz_buf body;
    char subject[256];
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct resp *r = ud;
    return dz_buf_append(&r->body, p, sz * nm) == 0 ? sz * nm : 0;
}

struct upload {
    const char *p;
    size_t len;
    size_t off;
};

static size_t on_read(char *buf, size_t sz, size_t nm, void *ud)
{
    struct upload *u = ud;
    size_t n = sz * nm;

    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->p + u->off, n);
    u->off += n;
    return n;
}

static CURL *easy_for(const char *url, bool tls, struct resp *out)
{
    CURL *e = curl_easy_init();

    assert_non_null(e);
    memset(out, 0, sizeof(*out));
    dz_buf_init(&out->body, 8u << 20);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 8000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (tls) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    }
    return e;
}

static void easy_done(CURL *e, struct resp *out)
{
    struct curl_certinfo *ci = NULL;

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &out->version);
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci && ci->num_of_certs > 0)
        for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
            if (strncmp(s->data, "Subject:", 8) == 0)
                snprintf(out->subject, sizeof(out->subject), "%s", s->data);
}

/* A GET with the request headers hl (NULL: none; freed here). */
static void get_with(const char *url, bool tls, struct curl_slist *hl, struct resp *out)
{
    CURL *e = easy_for(url, tls, out);

    if (hl)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    out->rc = curl_easy_perform(e);
    easy_done(e, out);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
}

static void get(const char *url, bool tls, struct resp *out)
{
    get_with(url, tls, NULL, out);
}

/* n request headers "X-Many-<i>: v". */
static struct curl_slist *many_headers(int n)
{
    struct curl_slist *hl = NULL;

    for (int i = 0; i < n; i++) {
        char h[32];
        snprintf(h, sizeof(h), "X-Many-%d: v", i);
        hl = curl_slist_append(hl, h);
    }
    return hl;
}

static void post(const char *url, const void *body, size_t len, bool send_length, struct resp *out)
{
    CURL *e = easy_for(url, false, out);
    struct upload u = {body, len, 0};

    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &u);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, send_length ? (curl_off_t)len : -1);
    out->rc = curl_easy_perform(e);
    easy_done(e, out);
    curl_easy_cleanup(e);
}

static void url(char *buf, size_t n, bool tls, uint16_t port, const char *path)
{
    snprintf(buf, n, "%s://127.0.0.1:%u%s", tls ? "https" : "http", port, path);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------- tests: basic requests ---------- */

static void test_get_and_info(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 2);
    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, CURL_HTTP_VERSION_2_0);
    assert_string_equal(dz_buf_cstr(&r.body), "hello");
    dz_buf_cleanup(&r.body);

    url(u, sizeof(u), false, s.h2c_port, "/info");
    get_with(u, false, curl_slist_append(NULL, "X-Test: value-1"), &r);
    assert_int_equal(r.status, 200);
    {
        char want[128];
        snprintf(want, sizeof(want), "GET http 127.0.0.1:%u 127.0.0.1 tls=0 peer=- x=value-1",
                 s.h2c_port);
        assert_non_null(strstr(dz_buf_cstr(&r.body), want));
        assert_non_null(strstr(dz_buf_cstr(&r.body), "tag=7"));
    }
    dz_buf_cleanup(&r.body);

    url(u, sizeof(u), false, s.h2c_port, "/nowhere");
    get(u, false, &r);
    assert_int_equal(r.status, 404);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
    assert_int_equal(atomic_load(&n_worker_init), atomic_load(&n_worker_fini));
}

static void test_post_echo_and_overflow(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];
    char *big = malloc(100000);

    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (char)('A' + i % 23);
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    url(u, sizeof(u), false, s.h2c_port, "/echo");

    post(u, big, 4000, true, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 4000);
    assert_memory_equal(r.body.data, big, 4000);
    dz_buf_cleanup(&r.body);

    /* Without content-length (the limit is found while receiving). */
    post(u, big, 3000, false, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 3000);
    dz_buf_cleanup(&r.body);

    /* Declared length over the limit: 413 at once. */
    post(u, big, 100000, true, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    assert_string_equal(dz_buf_cstr(&r.body), "too large");
    dz_buf_cleanup(&r.body);

    /* Unknown length over the limit: 413 when the limit is crossed. */
    post(u, big, 100000, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    dz_buf_cleanup(&r.body);

    /* on_headers lowered the limit for this path. */
    url(u, sizeof(u), false, s.h2c_port, "/small");
    post(u, big, 11, false, &r);
    assert_int_equal(r.status, 413);
    dz_buf_cleanup(&r.body);
    post(u, big, 10, true, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 10);
    dz_buf_cleanup(&r.body);

    /* The server is still fine. */
    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &r);
    assert_int_equal(r.status, 200);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
    free(big);
}

static void test_early_answer_and_bad_headers(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];
    char body[2000];

    (void)state;
    memset(body, 'z', sizeof(body));
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    atomic_store(&n_early_on_request, 0);
    url(u, sizeof(u), false, s.h2c_port, "/early");
    post(u, body, sizeof(body), true, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 401);
    assert_string_equal(dz_buf_cstr(&r.body), "no");
    dz_buf_cleanup(&r.body);
    get(u, false, &r);
    assert_int_equal(r.status, 401);
    dz_buf_cleanup(&r.body);
    assert_int_equal(atomic_load(&n_early_on_request), 0);

    atomic_store(&bad_hdr_rc, 12345);
    url(u, sizeof(u), false, s.h2c_port, "/badhdr");
    {
        CURL *e = easy_for(u, false, &r);
        curl_off_t cl = -1;
        r.rc = curl_easy_perform(e);
        easy_done(e, &r);
        curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        curl_easy_cleanup(e);
        assert_int_equal(cl, 2);
    }
    assert_int_equal(r.status, 200);
    assert_string_equal(dz_buf_cstr(&r.body), "ok");
    assert_int_equal(atomic_load(&bad_hdr_rc), 0);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
}

static void test_big_response(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    url(u, sizeof(u), false, s.h2c_port, "/big?n=3000000");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 3000000);
    for (size_t i = 0; i < r.body.len; i += 4099)
        assert_int_equal((unsigned char)r.body.data[i], 'a' + i % 26);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
}

/* ---------- concurrency, async answers, streaming ---------- */

static void test_many_streams(void **state)
{
    enum { N = 60 };
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r[N];
    CURL *e[N];
    char bodies[N][64];
    char u[128];
    CURLM *m = curl_multi_init();
    int running = 1;
    long connects = 0;
    SSL_CTX *tls;

    (void)state;
    test_limits(&lim);
    lim.max_concurrent_streams = 20; /* more requests than streams: queued */
    /* Over TLS: curl 7.88 cannot multiplex over h2c prior knowledge (its
     * streams after the first fail with "Error in the HTTP2 framing layer",
     * against nginx too). */
    tls = ctx_for("first", NULL);
    srv_start(&s, &lim, tls, 2);
    SSL_CTX_free(tls);
    url(u, sizeof(u), true, s.tls_port, "/echo");
    curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "body number %d", i);
        e[i] = easy_for(u, true, &r[i]);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_PIPEWAIT, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    for (int spins = 0; running && spins < 100000; spins++) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    assert_int_equal(running, 0);
    {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            for (int i = 0; i < N; i++)
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == e[i])
                    r[i].rc = msg->data.result;
    }
    for (int i = 0; i < N; i++) {
        long c = 0;
        easy_done(e[i], &r[i]);
        if (r[i].status != 200)
            fprintf(stderr, "stream %d: status %ld rc %d\n", i, r[i].status, (int)r[i].rc);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(dz_buf_cstr(&r[i].body), bodies[i]);
        curl_easy_getinfo(e[i], CURLINFO_NUM_CONNECTS, &c);
        connects += c;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        dz_buf_cleanup(&r[i].body);
    }
    /* Multiplexed: far fewer connections than transfers.  (curl may send
     * more streams than our SETTINGS allow before it has read them; those
     * are refused and curl retries them on a new connection.) */
    assert_true(connects <= N / 4);
    curl_multi_cleanup(m);
    srv_stop(&s);
}

static void test_async_and_stream(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 2);
    url(u, sizeof(u), false, s.h2c_port, "/async");
    for (int i = 0; i < 3; i++) {
        get(u, false, &r);
        assert_int_equal(r.rc, CURLE_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(dz_buf_cstr(&r.body), "async");
        dz_buf_cleanup(&r.body);
    }
    url(u, sizeof(u), false, s.h2c_port, "/stream");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(dz_buf_cstr(&r.body), "start\nchunk0\nchunk1\nchunk2\nchunk3\nchunk4\n");
    dz_buf_cleanup(&r.body);
    /* A reset answer is cut for the client (RST_STREAM INTERNAL_ERROR), not
     * ended as if complete; the next request is served. */
    url(u, sizeof(u), false, s.h2c_port, "/stream-reset");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_HTTP2_STREAM);
    dz_buf_cleanup(&r.body);
    url(u, sizeof(u), false, s.h2c_port, "/stream");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
}

/* libcurl's progress callback: non-zero aborts the transfer. */
static int abort_when_held(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    return atomic_load(&g_held) != NULL;
}

static void test_client_abort(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    struct dz_req *held;
    char u[128];
    int closes;
    int cuts;

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    closes = atomic_load(&n_on_close);
    cuts = atomic_load(&n_drain_cut);
    atomic_store(&late_answer_rc, 12345);
    atomic_store(&g_held, NULL);
    url(u, sizeof(u), false, s.h2c_port, "/held");
    {
        /* The client leaves once the app holds its request, which it
         * answers only when told: no timer that the answer could beat. */
        CURL *e = easy_for(u, false, &r);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_when_held);
        r.rc = curl_easy_perform(e);
        curl_easy_cleanup(e); /* closes the connection: the stream dies */
    }
    assert_int_equal(r.rc, CURLE_ABORTED_BY_CALLBACK);
    dz_buf_cleanup(&r.body);
    for (int i = 0; i < 100 && atomic_load(&n_on_close) == closes; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&n_on_close), closes + 1);
    /* The app still holds its reference and answers later: a no-op. */
    held = atomic_load(&g_held);
    assert_int_equal(dz_worker_post(dz_req_worker(held), answer_late, held), 0);
    for (int i = 0; i < 100 && atomic_load(&late_answer_rc) == 12345; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&late_answer_rc), 0);

    /* A normal slow request: on_close runs once after the answer. */
    closes = atomic_load(&n_on_close);
    url(u, sizeof(u), false, s.h2c_port, "/slow?ms=50");
    get(u, false, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(dz_buf_cstr(&r.body), "slow");
    dz_buf_cleanup(&r.body);
    for (int i = 0; i < 100 && atomic_load(&n_on_close) == closes; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&n_on_close), closes + 1);
    /* The client left: not a drain cut. */
    assert_int_equal(atomic_load(&n_drain_cut), cuts);
    srv_stop(&s);
}

struct bg_get {
    char url[128];
    struct resp r;
};

static void *bg_get_main(void *arg)
{
    struct bg_get *b = arg;
    get(b->url, false, &b->r);
    return NULL;
}

/* The app has been handed n requests in all: a stream in flight, what a
 * drain must find (it reaches the worker after on_request returns). */
static void wait_requests(int n)
{
    for (int k = 0; k < 400 && atomic_load(&n_on_request) < n; k++)
        sleep_ms(5);
    assert_true(atomic_load(&n_on_request) >= n);
}

static void test_drain_finishes_inflight(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct bg_get b;
    struct resp r;
    pthread_t t;
    char u[128];
    struct timespec t0, t1;
    int cuts;
    int before;

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 2);
    cuts = atomic_load(&n_drain_cut);
    before = atomic_load(&n_on_request);
    url(b.url, sizeof(b.url), false, s.h2c_port, "/slow?ms=400");
    assert_int_equal(pthread_create(&t, NULL, bg_get_main, &b), 0);
    wait_requests(before + 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dz_httpd_drain(s.h, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    assert_int_equal(b.r.rc, CURLE_OK);
    assert_int_equal(b.r.status, 200);
    assert_string_equal(dz_buf_cstr(&b.r.body), "slow");
    dz_buf_cleanup(&b.r.body);
    /* Drained as soon as the stream finished, not at the deadline. */
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    /* Listeners are closed. */
    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    dz_buf_cleanup(&r.body);
    assert_int_equal(dz_httpd_open_connections(s.h), 0);
    /* Finished in time: not a cut. */
    assert_int_equal(atomic_load(&n_drain_cut), cuts);
    dz_httpd_free(s.h);
}

static void test_drain_deadline_cuts(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct bg_get b;
    pthread_t t;
    int closes;
    int cuts;
    int before;

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    closes = atomic_load(&n_on_close);
    cuts = atomic_load(&n_drain_cut);
    before = atomic_load(&n_on_request);
    url(b.url, sizeof(b.url), false, s.h2c_port, "/slow?ms=1500");
    assert_int_equal(pthread_create(&t, NULL, bg_get_main, &b), 0);
    wait_requests(before + 1);
    /* The slow answer comes after the deadline: the stream is cut, on_close
     * runs, and the worker waits for the app's reference (its timer). */
    dz_httpd_drain(s.h, 100);
    pthread_join(t, NULL);
    assert_int_not_equal(b.r.rc, CURLE_OK);
    dz_buf_cleanup(&b.r.body);
    assert_int_equal(atomic_load(&n_on_close), closes + 1);
    /* ... and the app can tell it was the deadline, not the client. */
    assert_int_equal(atomic_load(&n_drain_cut), cuts + 1);
    dz_httpd_free(s.h);
}

/* ---------- TLS ---------- */

static void test_tls_and_swap(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];
    SSL_CTX *a = ctx_for("first", NULL);
    SSL_CTX *b = ctx_for("second", NULL);
    CURL *keep;

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, a, 2);
    SSL_CTX_free(a); /* the server holds its own reference */
    url(u, sizeof(u), true, s.tls_port, "/info");
    keep = easy_for(u, true, &r);
    r.rc = curl_easy_perform(keep);
    easy_done(keep, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, CURL_HTTP_VERSION_2_0);
    assert_non_null(strstr(r.subject, "first"));
    assert_non_null(strstr(dz_buf_cstr(&r.body), "GET https"));
    assert_non_null(strstr(dz_buf_cstr(&r.body), "tls=1 peer=-"));
    assert_non_null(strstr(dz_buf_cstr(&r.body), "tag=9"));
    dz_buf_cleanup(&r.body);

    assert_int_equal(dz_httpd_set_tls(s.h, 1, b), 0);
    assert_int_equal(dz_httpd_set_tls(s.h, 0, b), DZ_ERR_INVAL); /* cleartext */
    assert_int_equal(dz_httpd_set_tls(s.h, 5, b), DZ_ERR_INVAL);
    SSL_CTX_free(b);
    get(u, true, &r); /* a new connection */
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.subject, "second"));
    dz_buf_cleanup(&r.body);

    /* The open connection keeps working on the old context. */
    dz_buf_init(&r.body, 1 << 20);
    r.rc = curl_easy_perform(keep);
    assert_int_equal(r.rc, CURLE_OK);
    assert_non_null(strstr(dz_buf_cstr(&r.body), "tls=1"));
    dz_buf_cleanup(&r.body);
    curl_easy_cleanup(keep);

    /* A client that does not offer h2 is dropped after the handshake. */
    {
        CURL *e = easy_for(u, true, &r);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        r.rc = curl_easy_perform(e);
        curl_easy_cleanup(e);
        assert_int_not_equal(r.rc, CURLE_OK);
        dz_buf_cleanup(&r.body);
    }
    srv_stop(&s);
}

static void test_tls_client_cert_optional(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128], crt[160], key[160];
    SSL_CTX *ctx = ctx_for("first", "clientca");

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, ctx, 1);
    SSL_CTX_free(ctx);
    url(u, sizeof(u), true, s.tls_port, "/info");

    /* No certificate: allowed, none exposed. */
    get(u, true, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_non_null(strstr(dz_buf_cstr(&r.body), "peer=-"));
    dz_buf_cleanup(&r.body);

    /* Issued by the CA, and one that does not verify (self-signed): both
     * are accepted and handed to the application as sent. */
    for (int i = 0; i < 2; i++) {
        const char *name = i == 0 ? "goodclient" : "rogueclient";
        CURL *e = easy_for(u, true, &r);
        snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", g_dir, name);
        curl_easy_setopt(e, CURLOPT_SSLCERT, crt);
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
        r.rc = curl_easy_perform(e);
        easy_done(e, &r);
        curl_easy_cleanup(e);
        assert_int_equal(r.rc, CURLE_OK);
        assert_int_equal(r.status, 200);
        assert_non_null(
            strstr(dz_buf_cstr(&r.body), i == 0 ? "peer=Good Client" : "peer=Rogue Client"));
        dz_buf_cleanup(&r.body);
    }
    srv_stop(&s);
}

/* ---------- limits ---------- */

static void test_header_limits(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];
    char *big = malloc(6000);

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    url(u, sizeof(u), false, s.h2c_port, "/info");

    get_with(u, false, many_headers(40), &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 431);
    dz_buf_cleanup(&r.body);

    assert_non_null(big);
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'b', 5000);
    big[5007] = '\0';
    get_with(u, false, curl_slist_append(NULL, big), &r);
    free(big);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 431);
    dz_buf_cleanup(&r.body);

    /* Just under the count limit still works. */
    get_with(u, false, many_headers(20), &r);
    assert_int_equal(r.status, 200);
    dz_buf_cleanup(&r.body);
    srv_stop(&s);
}

/* Reads (and drops) whatever the server sent until EOF; true if the
 * server closed the connection within ms. */
static bool closed_by_server(int fd, int ms)
{
    char buf[512];

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, ms) != 1)
            return false;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

static int connect_local(uint16_t port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void wait_open(struct h2raw_server *s, uint64_t n)
{
    for (int k = 0; k < 400 && dz_httpd_open_connections(s->h) != n; k++)
        sleep_ms(5);
    assert_int_equal(dz_httpd_open_connections(s->h), n);
}

/* At the process cap a newcomer is let in by shedding the oldest
 * connection that serves nobody (idle here: h2c has no handshake). */
static void test_max_connections(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw newcomer;
    int fds[2];

    (void)state;
    test_limits(&lim);
    lim.max_connections = 2;
    srv_start(&s, &lim, NULL, 1);
    fds[0] = connect_local(s.h2c_port);
    wait_open(&s, 1);
    fds[1] = connect_local(s.h2c_port);
    wait_open(&s, 2);
    h2raw_open(&newcomer, s.h2c_port, false); /* silent, as the others */
    /* the oldest idle one goes; the newcomer stays (it is served: had it
     * been closed at accept, its PINGs would meet EOF); the count stays 2 */
    assert_true(closed_by_server(fds[0], 2000));
    wait_open(&s, 2);
    assert_true(h2raw_is_kept(&newcomer, 5000));
    assert_int_equal(dz_httpd_refused_full(s.h), 0);
    assert_int_equal(dz_httpd_shed(s.h), 1);
    for (int i = 0; i < 2; i++)
        close(fds[i]);
    h2raw_close(&newcomer);
    srv_stop(&s);
}

/* One address cannot hold more than its share: the next one is closed at
 * accept (before the server says anything), and others are not affected. */
static void test_connections_per_address(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw first;
    int fds[2];

    (void)state;
    test_limits(&lim);
    lim.max_connections = 100;
    lim.max_connections_per_address = 2;
    srv_start(&s, &lim, NULL, 1);
    h2raw_open(&first, s.h2c_port, false);
    fds[0] = connect_local(s.h2c_port);
    wait_open(&s, 2);
    fds[1] = connect_local(s.h2c_port);
    assert_true(closed_by_server(fds[1], 2000));
    for (int k = 0; k < 400 && dz_httpd_refused_per_address(s.h) == 0; k++)
        sleep_ms(5);
    assert_int_equal(dz_httpd_refused_per_address(s.h), 1);
    assert_int_equal(dz_httpd_open_connections(s.h), 2);
    assert_true(h2raw_is_kept(&first, 5000));
    /* a slot comes back when one of them closes */
    h2raw_close(&first);
    wait_open(&s, 1);
    h2raw_open(&first, s.h2c_port, false);
    wait_open(&s, 2);
    assert_true(h2raw_is_kept(&first, 5000));
    for (int i = 0; i < 2; i++)
        close(fds[i]);
    h2raw_close(&first);
    srv_stop(&s);
}

/* ---------- the raw client (harness/h2raw_client.h) for what curl cannot do ---------- */

static const nghttp2_nv req_nv[] = {
    {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
    {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    {(uint8_t *)":path", (uint8_t *)"/hello", 5, 6, 0},
};

static const nghttp2_nv never_nv[] = {
    {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
    {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    {(uint8_t *)":path", (uint8_t *)"/never", 5, 6, 0},
};

static const nghttp2_nv post_nv[] = {
    {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
    {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    {(uint8_t *)":path", (uint8_t *)"/echo", 5, 5, 0},
};

static ssize_t never_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)buf;
    (void)len;
    (void)flags;
    (void)src;
    (void)ud;
    return NGHTTP2_ERR_DEFERRED;
}

static bool got_goaway(const struct h2raw *r)
{
    return r->goaway;
}

static bool got_rst(const struct h2raw *r)
{
    return r->n_rst_recv > 0;
}

static bool got_eof(const struct h2raw *r)
{
    return r->eof;
}

/* A client that never opens its window (SETTINGS_INITIAL_WINDOW_SIZE 0)
 * keeps every answer it asks for in the server; past the connection's
 * budget of unsent answer bytes the server closes it, and only it. */
static void test_zero_window_budget(void **state)
{
    static const nghttp2_nv big_nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)"/big?n=300000", 5, 13, 0},
    };
    nghttp2_settings_entry zero = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0};
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw r;
    struct resp ok;
    char u[128];

    (void)state;
    test_limits(&lim);
    lim.max_buffered_per_connection = 1 << 20;
    srv_start(&s, &lim, NULL, 1);
    h2raw_open(&r, s.h2c_port, false);
    assert_int_equal(nghttp2_submit_settings(r.s, NGHTTP2_FLAG_NONE, &zero, 1), 0);
    /* three answers (900 KB) fit in the budget: the connection stays */
    for (int i = 0; i < 3; i++)
        assert_true(nghttp2_submit_request(r.s, NULL, big_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r);
    /* Kept: the PINGs come after the requests, so the server answered all
     * three (and counted any closing) before their ACKs. */
    assert_true(h2raw_is_kept(&r, 5000));
    assert_int_equal(r.n_status, 3);
    assert_int_equal(dz_httpd_closed_stalled(s.h), 0);
    /* the fourth (1.2 MB unsent) is over it: closed */
    assert_true(nghttp2_submit_request(r.s, NULL, big_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r);
    h2raw_pump(&r, 5000, got_eof);
    assert_true(r.eof);
    assert_int_equal(dz_httpd_closed_stalled(s.h), 1);
    h2raw_close(&r);
    /* a client that reads still gets a large answer in full */
    url(u, sizeof(u), false, s.h2c_port, "/big?n=900000");
    get(u, false, &ok);
    assert_int_equal(ok.status, 200);
    assert_int_equal(ok.body.len, 900000);
    dz_buf_cleanup(&ok.body);
    srv_stop(&s);

    /* Over the process's budget, the connection holding the most goes, not
     * the one whose answer tipped it over. */
    test_limits(&lim);
    lim.max_buffered_per_connection = 4 << 20;
    lim.max_buffered_total = 1 << 20;
    srv_start(&s, &lim, NULL, 1);
    struct h2raw r2;
    h2raw_open(&r, s.h2c_port, false);
    assert_int_equal(nghttp2_submit_settings(r.s, NGHTTP2_FLAG_NONE, &zero, 1), 0);
    for (int i = 0; i < 3; i++)
        assert_true(nghttp2_submit_request(r.s, NULL, big_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r);
    assert_true(h2raw_is_kept(&r, 5000));
    assert_int_equal(r.n_status, 3);
    h2raw_open(&r2, s.h2c_port, false);
    assert_int_equal(nghttp2_submit_settings(r2.s, NGHTTP2_FLAG_NONE, &zero, 1), 0);
    assert_true(nghttp2_submit_request(r2.s, NULL, big_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r2);
    h2raw_pump(&r, 5000, got_eof);
    assert_true(r.eof);                    /* 900 KB held: the worst */
    assert_true(h2raw_is_kept(&r2, 5000)); /* 300 KB: stays */
    assert_int_equal(r2.n_status, 1);
    assert_int_equal(dz_httpd_closed_stalled(s.h), 1);
    h2raw_close(&r);
    h2raw_close(&r2);
    srv_stop(&s);
}

static void test_rapid_reset(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw r;
    struct resp ok;
    char u[128];
    nghttp2_data_provider never = {{0}, never_read};

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, NULL, 1);
    h2raw_open(&r, s.h2c_port, true);
    for (int round = 0; round < 8 && !r.goaway && !r.eof; round++) {
        int32_t ids[50];
        for (int i = 0; i < 50; i++) {
            ids[i] = nghttp2_submit_request(r.s, NULL, post_nv, 4, &never, NULL);
            assert_true(ids[i] > 0);
        }
        h2raw_flush(&r);
        for (int i = 0; i < 50; i++)
            nghttp2_submit_rst_stream(r.s, NGHTTP2_FLAG_NONE, ids[i], NGHTTP2_CANCEL);
        h2raw_flush(&r);
        /* The round read by the server before the next is sent (or the
         * GOAWAY, after which the PING is not answered). */
        (void)h2raw_ping(&r, 2000);
    }
    h2raw_pump(&r, 2000, got_goaway);
    assert_true(r.goaway);
    assert_int_equal(r.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    h2raw_pump(&r, 2000, NULL);
    assert_true(r.eof);
    h2raw_close(&r);

    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &ok);
    assert_int_equal(ok.status, 200);
    dz_buf_cleanup(&ok.body);
    srv_stop(&s);
}

static void test_timeouts(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw r;
    nghttp2_data_provider never = {{0}, never_read};
    struct timespec t0, t1;
    long el;

    (void)state;
    test_limits(&lim);
    lim.handshake_timeout_ms = 300;
    lim.request_timeout_ms = 300;
    lim.idle_timeout_ms = 400;
    lim.response_timeout_ms = 300;
    srv_start(&s, &lim, NULL, 1);

    /* Connection preface never sent: closed after the handshake timeout. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    h2raw_open(&r, s.h2c_port, false);
    r.is_silent = true;
    h2raw_pump(&r, 3000, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(r.eof);
    assert_true(el >= 250 && el < 2000);
    h2raw_close(&r);

    /* A request whose body never comes: RST_STREAM(CANCEL) after the
     * request timeout; then, with no stream left, GOAWAY on idle. */
    h2raw_open(&r, s.h2c_port, true);
    assert_true(nghttp2_submit_request(r.s, NULL, post_nv, 4, &never, NULL) > 0);
    h2raw_flush(&r);
    h2raw_pump(&r, 3000, got_rst);
    assert_int_equal(r.n_rst_recv, 1);
    assert_int_equal(r.last_rst_code, NGHTTP2_CANCEL);
    assert_int_equal(r.n_status, 0);
    h2raw_pump(&r, 3000, got_goaway);
    assert_true(r.goaway);
    assert_int_equal(r.goaway_code, NGHTTP2_NO_ERROR);
    h2raw_pump(&r, 3000, NULL);
    assert_true(r.eof);
    h2raw_close(&r);

    /* The app never answers: RST_STREAM(INTERNAL_ERROR) after the response
     * timeout, and the request is closed (on_close would run). */
    h2raw_open(&r, s.h2c_port, true);
    assert_true(nghttp2_submit_request(r.s, NULL, never_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r);
    h2raw_pump(&r, 3000, got_rst);
    assert_int_equal(r.n_rst_recv, 1);
    assert_int_equal(r.last_rst_code, NGHTTP2_INTERNAL_ERROR);
    assert_int_equal(r.n_status, 0);
    h2raw_close(&r);

    /* A client that asks for a big answer and never reads (its window
     * stays shut): closed by the write-stall deadline (the idle timeout). */
    {
        static const nghttp2_nv big_nv[] = {
            {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
            {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
            {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
            {(uint8_t *)":path", (uint8_t *)"/big?n=2000000", 5, 14, 0},
        };
        h2raw_open(&r, s.h2c_port, true);
        assert_true(nghttp2_submit_request(r.s, NULL, big_nv, 4, NULL, NULL) > 0);
        h2raw_flush(&r);
        r.is_silent = true; /* read and drop: no WINDOW_UPDATE ever */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        h2raw_pump(&r, 4000, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        assert_true(r.eof);
        assert_true(el >= 350 && el < 3000);
        h2raw_close(&r);
    }

    /* A normal request still works on a fresh connection. */
    h2raw_open(&r, s.h2c_port, true);
    assert_true(nghttp2_submit_request(r.s, NULL, req_nv, 4, NULL, NULL) > 0);
    h2raw_flush(&r);
    h2raw_pump(&r, 3000, NULL);
    assert_int_equal(r.n_status, 1);
    assert_true(r.goaway); /* idle afterwards */
    h2raw_close(&r);
    srv_stop(&s);
}

static void test_garbage_and_bad_args(void **state)
{
    struct dz_httpd_limits lim;
    struct dz_httpd_conf c;
    struct dz_httpd *h = (struct dz_httpd *)&c;
    struct h2raw_server s;
    struct h2raw r;
    struct resp ok;
    char u[128];
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    (void)state;
    test_limits(&lim);
    memset(&c, 0, sizeof(c));
    c.workers = 1;
    c.limits = lim;
    assert_int_equal(dz_httpd_new(&c, &h), DZ_ERR_INVAL); /* no on_request */
    assert_null(h);
    c.handlers.on_request = on_request;
    c.workers = 0;
    assert_int_equal(dz_httpd_new(&c, &h), DZ_ERR_INVAL);
    c.workers = 1;
    {
        struct dz_listener_conf bad = {"localhost", 0, NULL, 0};
        c.listeners = &bad;
        c.nlisteners = 1;
        assert_int_equal(dz_httpd_new(&c, &h), DZ_ERR_INVAL);
    }
    dz_httpd_free(NULL);

    srv_start(&s, &lim, NULL, 1);
    {
        /* The port is taken: an error, not a silent SO_REUSEPORT share. */
        struct dz_listener_conf same = {"127.0.0.1", s.h2c_port, NULL, 0};
        c.listeners = &same;
        c.nlisteners = 1;
        assert_int_equal(dz_httpd_new(&c, &h), DZ_ERR_IO);
        assert_null(h);
    }
    /* HTTP/1.1 on an h2c port: bad preface, closed. */
    h2raw_open(&r, s.h2c_port, false);
    assert_int_equal(send(r.fd, junk, sizeof(junk) - 1, 0), (ssize_t)sizeof(junk) - 1);
    h2raw_pump(&r, 3000, NULL);
    assert_true(r.eof);
    h2raw_close(&r);
    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &ok);
    assert_int_equal(ok.status, 200);
    dz_buf_cleanup(&ok.body);
    srv_stop(&s);
}

/* ---------- TLS records that arrive together ---------- */

/* A TLS client over memory BIOs, so the test decides what goes out in one
 * send(): the client's Finished, the preface, SETTINGS and two requests,
 * each its own TLS record, in a single TCP write. */
struct tls_raw {
    struct h2raw r; /* fd, the nghttp2 client session, its counters */
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out; /* from the server / to the server */
    char body[64];
    size_t body_len;
};

static int tls_raw_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p,
                           size_t n, void *ud)
{
    struct tls_raw *t = ud;
    (void)s;
    (void)flags;
    (void)id;
    if (n > sizeof(t->body) - t->body_len)
        n = sizeof(t->body) - t->body_len;
    memcpy(t->body + t->body_len, p, n);
    t->body_len += n;
    return 0;
}

/* Every byte the client has produced, in one send(). */
static void tls_raw_send(struct tls_raw *t)
{
    char *p = NULL;
    long n = BIO_get_mem_data(t->out, &p);

    if (n <= 0)
        return;
    assert_int_equal(send(t->r.fd, p, (size_t)n, MSG_NOSIGNAL), n);
    (void)BIO_reset(t->out);
}

/* What the server sent, into the client's input; false at EOF or when
 * nothing came within ms. */
static bool tls_raw_recv(struct tls_raw *t, int ms)
{
    struct pollfd p = {t->r.fd, POLLIN, 0};
    uint8_t buf[16384];
    ssize_t n;

    if (poll(&p, 1, ms) <= 0)
        return false;
    n = recv(t->r.fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return false;
    assert_int_equal(BIO_write(t->in, buf, (int)n), (int)n);
    return true;
}

/* nghttp2's output, one SSL_write (one record) per chunk; not sent yet. */
static void tls_raw_frames(struct tls_raw *t)
{
    const uint8_t *data;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(t->r.s, &data)) > 0)
        assert_int_equal(SSL_write(t->ssl, data, (int)n), (int)n);
}

static void tls_raw_open(struct tls_raw *t, uint16_t port, int version)
{
    static const unsigned char alpn[] = "\x02h2";
    struct h2raw_opts o = {.on_data = tls_raw_on_data, .user = t};

    memset(t, 0, sizeof(*t));
    h2raw_open_opts(&t->r, port, &o);

    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(t->ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(t->ctx, version), 1);
    assert_int_equal(SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof(alpn) - 1), 0);
    t->ssl = SSL_new(t->ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    assert_non_null(t->ssl);
    assert_non_null(t->in);
    assert_non_null(t->out);
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both */
    SSL_set_connect_state(t->ssl);
}

static void tls_raw_close(struct tls_raw *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    h2raw_close(&t->r);
}

static void test_tls_records_together(void **state)
{
    static const nghttp2_nv hello_nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)"/hello", 5, 6, 0},
    };
    static const int tls_versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    SSL_CTX *ctx = ctx_for("first", NULL);

    (void)state;
    test_limits(&lim);
    srv_start(&s, &lim, ctx, 1);
    SSL_CTX_free(ctx);
    for (size_t v = 0; v < sizeof(tls_versions) / sizeof(tls_versions[0]); v++) {
        struct tls_raw t;
        int k;

        tls_raw_open(&t, s.tls_port, tls_versions[v]);
        /* The handshake up to the client's Finished, which stays unsent in
         * TLS 1.3 (in 1.2 the client's Finished goes before the server's). */
        while ((k = SSL_do_handshake(t.ssl)) != 1) {
            assert_int_equal(SSL_get_error(t.ssl, k), SSL_ERROR_WANT_READ);
            tls_raw_send(&t);
            assert_true(tls_raw_recv(&t, 5000));
        }
        assert_int_equal(nghttp2_submit_settings(t.r.s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
        for (int i = 0; i < 2; i++)
            assert_true(nghttp2_submit_request(t.r.s, NULL, hello_nv, 4, NULL, NULL) > 0);
        tls_raw_frames(&t);
        tls_raw_send(&t);

        /* Both answers come, and nothing more was sent: the server read
         * everything it was given without the socket waking it again. */
        while (t.r.n_closed < 2) {
            unsigned char buf[16384];
            assert_true(tls_raw_recv(&t, 5000));
            while ((k = SSL_read(t.ssl, buf, sizeof(buf))) > 0)
                assert_int_equal(nghttp2_session_mem_recv(t.r.s, buf, (size_t)k), k);
            assert_int_equal(SSL_get_error(t.ssl, k), SSL_ERROR_WANT_READ);
        }
        assert_int_equal(t.r.n_status, 2);
        assert_int_equal(t.body_len, 10);
        assert_memory_equal(t.body, "hellohello", 10);
        assert_false(t.r.goaway);
        assert_int_equal(t.r.n_rst_recv, 0);
        tls_raw_close(&t);
    }
    srv_stop(&s);
}

/* ---------- posts ---------- */

static atomic_int posted;

static void post_fn(void *arg)
{
    atomic_fetch_add(&posted, *(int *)arg);
}

static void test_worker_post(void **state)
{
    struct dz_httpd_limits lim;
    struct dz_httpd_conf c;
    struct dz_httpd *h = NULL;
    struct dz_worker *w;
    static int one = 1;

    (void)state;
    test_limits(&lim);
    memset(&c, 0, sizeof(c));
    c.workers = 2;
    c.limits = lim;
    c.handlers.on_request = on_request;
    c.handlers.worker_init = worker_init;
    c.handlers.worker_fini = worker_fini;
    c.app = &n_worker_init;
    assert_int_equal(dz_httpd_new(&c, &h), 0);
    w = dz_httpd_worker_at(h, 1);
    assert_non_null(w);
    assert_int_equal(dz_worker_index(w), 1);
    atomic_store(&posted, 0);
    /* Posts before start are kept and run once the loop runs. */
    assert_int_equal(dz_worker_post(w, post_fn, &one), 0);
    assert_int_equal(dz_httpd_start(h), 0);
    assert_int_equal(dz_httpd_start(h), DZ_ERR_STATE);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dz_worker_post(w, post_fn, &one), 0);
    for (int i = 0; i < 200 && atomic_load(&posted) < 1001; i++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&posted), 1001);
    dz_httpd_drain(h, 100);
    assert_int_equal(dz_worker_post(w, post_fn, &one), DZ_ERR_STATE);
    dz_httpd_free(h);
}

/* ---------- the process cap across workers ---------- */

/* Which worker accepts a connection is the kernel's choice (SO_REUSEPORT
 * hashes the client's address and port).  The tests below steer it by
 * changing which workers listen: on the worker's own loop, through a post,
 * as the engine itself would touch its listeners. */
struct steer {
    struct dz_worker *w;
    int fd; /* the socket to listen on; -1: stop listening */
    atomic_bool is_done;
};

static void steer_fn(void *arg)
{
    struct steer *st = arg;
    struct dz_worker *w = st->w;

    ev_io_stop(w->loop, &w->accept_w[0]);
    if (w->lfds[0] >= 0)
        close(w->lfds[0]); /* the kernel then spreads over the others only */
    w->lfds[0] = st->fd;
    if (st->fd >= 0) {
        ev_io_set(&w->accept_w[0], st->fd, EV_READ);
        ev_io_start(w->loop, &w->accept_w[0]);
    }
    atomic_store(&st->is_done, true);
}

/* A new socket joining the port's SO_REUSEPORT group. */
static int reuseport_socket(uint16_t port)
{
    struct sockaddr_in a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    return fd;
}

/* Worker i of s listens on the h2c port (again), or stops listening. */
static void steer(struct h2raw_server *s, unsigned i, bool is_listening)
{
    static struct steer st; /* outlives a failed wait: the post may run late */

    st.w = dz_httpd_worker_at(s->h, i);
    st.fd = is_listening ? reuseport_socket(s->h2c_port) : -1;
    atomic_store(&st.is_done, false);
    assert_int_equal(dz_worker_post(st.w, steer_fn, &st), 0);
    for (int k = 0; k < 400 && !atomic_load(&st.is_done); k++)
        sleep_ms(5);
    assert_true(atomic_load(&st.is_done));
}

static uint64_t worker_open(struct h2raw_server *s, unsigned i)
{
    return atomic_load(&dz_httpd_worker_at(s->h, i)->nconns_pub);
}

/* The attack: a flood of connections that never say anything fills the
 * process cap from one worker; a client the kernel hands to the other
 * worker, which holds nothing it could shed, must still be served.  That
 * worker asks the flooded one to shed its oldest, and lets the client in. */
static void test_shed_across_workers(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct resp r;
    char u[128];
    struct h2raw flood[3]; /* silent: they never send a byte until pinged */

    (void)state;
    test_limits(&lim);
    lim.max_connections = 3;
    lim.handshake_timeout_ms = 30000; /* the flood stays until shed */
    srv_start(&s, &lim, NULL, 2);
    steer(&s, 1, false); /* worker 0 takes the flood */
    for (int i = 0; i < 3; i++) {
        h2raw_open(&flood[i], s.h2c_port, false);
        wait_open(&s, (uint64_t)i + 1);
    }
    assert_int_equal(worker_open(&s, 0), 3);
    steer(&s, 1, true); /* worker 1 takes the client */
    steer(&s, 0, false);

    url(u, sizeof(u), false, s.h2c_port, "/hello");
    get(u, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body.data, "hello", 5);
    dz_buf_cleanup(&r.body);
    assert_int_equal(dz_httpd_refused_full(s.h), 0);
    /* the flood's oldest made the room; the rest are still held */
    assert_true(closed_by_server(flood[0].fd, 2000));
    assert_true(h2raw_is_kept(&flood[1], 5000));
    assert_true(h2raw_is_kept(&flood[2], 5000));
    wait_open(&s, 2); /* the client's closed too: never over the cap for long */
    assert_int_equal(worker_open(&s, 0), 2);
    assert_int_equal(dz_httpd_shed(s.h), 1);
    assert_int_equal(dz_httpd_shed_missed(s.h), 0);
    /* what worker 0 publishes is what it holds: the two quiet ones left */
    assert_int_equal(atomic_load(&dz_httpd_worker_at(s.h, 0)->quiet_pub), 2);
    assert_int_equal(atomic_load(&dz_httpd_worker_at(s.h, 0)->shed_asked), 0);
    /* worker 1's client came, asked, and went: it holds nothing quiet */
    for (int k = 0; k < 400 && atomic_load(&dz_httpd_worker_at(s.h, 1)->quiet_pub) != 0; k++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&dz_httpd_worker_at(s.h, 1)->quiet_pub), 0);
    for (int i = 0; i < 3; i++)
        h2raw_close(&flood[i]);
    srv_stop(&s);
}

static atomic_bool g_loop_held, g_loop_release;

/* Keep a worker's loop busy (inside a post) until released: the asks other
 * workers post to it wait in its queue meanwhile. */
static void hold_loop_fn(void *arg)
{
    (void)arg;
    atomic_store(&g_loop_held, true);
    while (!atomic_load(&g_loop_release))
        sleep_ms(1);
}

/* Over the cap only by what was lent: while the flooded worker has not yet
 * run the asks, the other lets in at most DZ_H2_SHED_LENT newcomers and
 * refuses the next; once the asks run, the flood pays for every one of
 * them and the count is back at the cap. */
static void test_shed_lent_bound(void **state)
{
    enum { CAP = 20, LENT = DZ_H2_SHED_LENT };
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw r[LENT];
    int flood[CAP];
    int late;
    int before;

    (void)state;
    test_limits(&lim);
    lim.max_connections = CAP;
    lim.handshake_timeout_ms = 30000; /* the flood stays until shed */
    srv_start(&s, &lim, NULL, 2);
    steer(&s, 1, false);
    for (int i = 0; i < CAP; i++)
        flood[i] = connect_local(s.h2c_port);
    wait_open(&s, CAP);
    assert_int_equal(worker_open(&s, 0), CAP);
    steer(&s, 1, true);
    steer(&s, 0, false);
    atomic_store(&g_loop_held, false);
    atomic_store(&g_loop_release, false);
    assert_int_equal(dz_worker_post(dz_httpd_worker_at(s.h, 0), hold_loop_fn, NULL), 0);
    for (int k = 0; k < 400 && !atomic_load(&g_loop_held); k++)
        sleep_ms(5);
    assert_true(atomic_load(&g_loop_held));

    /* Each newcomer opens a request at once, so worker 1 has nothing of
     * its own to shed for the next one. */
    for (int i = 0; i < LENT; i++) {
        before = atomic_load(&n_on_request);
        h2raw_open(&r[i], s.h2c_port, true);
        assert_true(nghttp2_submit_request(r[i].s, NULL, never_nv, 4, NULL, NULL) > 0);
        h2raw_flush(&r[i]);
        for (int k = 0; k < 400 && atomic_load(&n_on_request) == before; k++)
            sleep_ms(5);
        assert_int_equal(atomic_load(&n_on_request), before + 1);
    }
    assert_int_equal(dz_httpd_open_connections(s.h), CAP + LENT);
    late = connect_local(s.h2c_port);
    assert_true(closed_by_server(late, 2000));
    assert_int_equal(dz_httpd_refused_full(s.h), 1);
    assert_int_equal(dz_httpd_open_connections(s.h), CAP + LENT);

    atomic_store(&g_loop_release, true);
    wait_open(&s, CAP);
    assert_int_equal(worker_open(&s, 0), CAP - LENT);
    assert_int_equal(dz_httpd_shed(s.h), LENT);
    assert_int_equal(dz_httpd_shed_missed(s.h), 0);
    for (int i = 0; i < LENT; i++) {
        /* the newcomers' requests are untouched: the connection kept, no
         * RST_STREAM before the PINGs' ACKs */
        assert_true(h2raw_is_kept(&r[i], 5000));
        assert_int_equal(r[i].n_rst_recv, 0);
        h2raw_close(&r[i]);
    }
    for (int i = 0; i < CAP; i++)
        close(flood[i]);
    close(late);
    srv_stop(&s);
}

/* Fail closed: with every connection of every worker serving a request,
 * there is nothing to shed anywhere and a newcomer is refused (counted). */
static void test_full_refuses_when_all_serve(void **state)
{
    struct dz_httpd_limits lim;
    struct h2raw_server s;
    struct h2raw r[2];
    int before = atomic_load(&n_on_request);
    int fd;

    (void)state;
    test_limits(&lim);
    lim.max_connections = 2;
    srv_start(&s, &lim, NULL, 2);
    for (int i = 0; i < 2; i++) {
        h2raw_open(&r[i], s.h2c_port, true);
        assert_true(nghttp2_submit_request(r[i].s, NULL, never_nv, 4, NULL, NULL) > 0);
        h2raw_flush(&r[i]);
    }
    for (int k = 0; k < 400 && atomic_load(&n_on_request) < before + 2; k++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&n_on_request), before + 2);
    fd = connect_local(s.h2c_port);
    assert_true(closed_by_server(fd, 2000));
    for (int k = 0; k < 400 && dz_httpd_refused_full(s.h) == 0; k++)
        sleep_ms(5);
    assert_int_equal(dz_httpd_refused_full(s.h), 1);
    assert_int_equal(dz_httpd_shed(s.h), 0);
    assert_int_equal(dz_httpd_open_connections(s.h), 2);
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(atomic_load(&dz_httpd_worker_at(s.h, i)->quiet_pub), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(h2raw_is_kept(&r[i], 5000)); /* the requests are untouched */
        assert_int_equal(r[i].n_rst_recv, 0);
        h2raw_close(&r[i]);
    }
    close(fd);
    srv_stop(&s);
}

/* ---------- main ---------- */

/* ---------- secret hygiene: a recycled request keeps nothing ---------- */

/* The bytes of one login-like exchange: a bearer token and a cookie in the
 * fields (the arena), a password in the body, a session token in a small
 * answer (the inline answer buffer). */
#define WIPE_BEARER "Bearer WIPE-ME-bearer-0123456789abcdef"
#define WIPE_COOKIE "__Host-darvaza=WIPE-ME-cookie-fedcba9876543210"
#define WIPE_BODY "{\"fin\":\"AB12CD3\",\"password\":\"WIPE-ME-password\"}"
#define WIPE_ANSWER "{\"token\":\"WIPE-ME-answer-token-00112233\"}"

static struct dz_req *g_wipe_req;
static bool g_wipe_seen_live; /* the secrets were in the object while live */

static bool mem_has(const void *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void wipe_on_request(struct dz_req *r, void *wdata)
{
    const unsigned char *body;
    size_t len;

    body = dz_req_body(r, &len);
    g_wipe_req = r;
    /* The fields live in the request object's inline arena: the test below
     * would prove nothing if they did not. */
    g_wipe_seen_live = mem_has(r, sizeof(*r), "WIPE-ME-bearer") &&
                       mem_has(r, sizeof(*r), "WIPE-ME-cookie") && len == strlen(WIPE_BODY) &&
                       memcmp(body, WIPE_BODY, len) == 0;
    assert_int_equal(dz_req_respond(r, 200, NULL, 0, WIPE_ANSWER, strlen(WIPE_ANSWER)), 0);
    g_wipe_seen_live = g_wipe_seen_live && mem_has(r, sizeof(*r), "WIPE-ME-answer-token");
}

static ssize_t wipe_body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                              uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    size_t *off = src->ptr;
    size_t left = strlen(WIPE_BODY) - *off;
    size_t n = left < length ? left : length;

    memcpy(buf, WIPE_BODY + *off, n);
    *off += n;
    if (*off == strlen(WIPE_BODY))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* A client's bytes for one POST (the preface included), made by an nghttp2
 * client session. */
static void wipe_client_bytes(struct dz_buf *out)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"test", 10, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/auth/password", 5, 14, 0},
        {(uint8_t *)"authorization", (uint8_t *)WIPE_BEARER, 13, strlen(WIPE_BEARER), 0},
        {(uint8_t *)"cookie", (uint8_t *)WIPE_COOKIE, 6, strlen(WIPE_COOKIE), 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, 0},
    };
    size_t off = 0;
    nghttp2_data_provider prd = {.source.ptr = &off, .read_callback = wipe_body_read};
    const uint8_t *data;
    ssize_t n;

    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    assert_int_equal(nghttp2_session_client_new(&s, cb, NULL), 0);
    assert_int_equal(nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    assert_int_equal(nghttp2_submit_request(s, NULL, nv, sizeof(nv) / sizeof(nv[0]), &prd, NULL),
                     1);
    while ((n = nghttp2_session_mem_send(s, &data)) > 0)
        assert_int_equal(dz_buf_append(out, data, (size_t)n), 0);
    assert_int_equal(n, 0);
    nghttp2_session_del(s);
    nghttp2_session_callbacks_del(cb);
}

static void test_recycled_request_wiped(void **state)
{
    static const struct dz_listener lst = {.host = "test", .tag = 1};
    struct dz_httpd_conf conf;
    struct dz_httpd *h = NULL;
    struct dz_worker *w;
    struct dz_h2conn *c = NULL;
    struct dz_buf in;

    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = wipe_on_request;
    assert_int_equal(dz_httpd_new(&conf, &h), 0);
    /* Never started: this thread plays the worker's loop thread, and the
     * connection is a memory sink (fd -1), as in fuzz_h2frames. */
    w = dz_httpd_worker_at(h, 0);
    dz_buf_init(&in, 1 << 16);
    wipe_client_bytes(&in);
    assert_int_equal(dz_h2conn_new(w, &lst, -1, NULL, "192.0.2.1", &c), 0);
    g_wipe_req = NULL;
    g_wipe_seen_live = false;
    assert_int_equal(dz_h2conn_feed(c, (const uint8_t *)in.data, in.len), 0);
    dz_worker_flush_dirty(w);
    assert_non_null(g_wipe_req);
    assert_true(g_wipe_seen_live);
    dz_h2conn_close(c);
    dz_worker_flush_dirty(w);
    /* The request went back to the worker's free list (its memory is still
     * ours to read) and holds none of the previous exchange's bytes. */
    assert_int_equal(w->live_reqs, 0);
    assert_ptr_equal(w->free_reqs, g_wipe_req);
    assert_false(mem_has(g_wipe_req, sizeof(*g_wipe_req), "WIPE-ME-bearer"));
    assert_false(mem_has(g_wipe_req, sizeof(*g_wipe_req), "WIPE-ME-cookie"));
    assert_false(mem_has(g_wipe_req, sizeof(*g_wipe_req), "WIPE-ME-password"));
    assert_false(mem_has(g_wipe_req, sizeof(*g_wipe_req), "WIPE-ME-answer-token"));
    assert_false(mem_has(g_wipe_req, sizeof(*g_wipe_req), "AB12CD3"));
    dz_buf_wipe(&in);
    dz_httpd_free(h);
}

/* The allocator the sessions get (wiping free, realloc by copy) behaves
 * like malloc/realloc/free: contents kept on growth and shrink. */
static void test_h2_mem(void **state)
{
    nghttp2_mem *m = dz_h2_mem();
    unsigned char *p = m->malloc(16, m->mem_user_data);
    unsigned char *z = m->calloc(4, 8, m->mem_user_data);

    assert_non_null(p);
    assert_non_null(z);
    for (int i = 0; i < 32; i++)
        assert_int_equal(z[i], 0);
    memcpy(p, "0123456789abcdef", 16);
    p = m->realloc(p, 4096, m->mem_user_data);
    assert_non_null(p);
    assert_memory_equal(p, "0123456789abcdef", 16);
    p = m->realloc(p, 8, m->mem_user_data);
    assert_non_null(p);
    assert_memory_equal(p, "01234567", 8);
    assert_null(m->realloc(p, 0, m->mem_user_data)); /* frees */
    p = m->realloc(NULL, 8, m->mem_user_data);
    assert_non_null(p);
    m->free(p, m->mem_user_data);
    m->free(z, m->mem_user_data);
    m->free(NULL, m->mem_user_data);
}

/* A session's own allocator (dz_h2_arena): blocks of a page or more are
 * mapped pages without a header (page-aligned, calloc'd ones zero), realloc
 * keeps the contents across that boundary both ways, more big blocks than
 * slots fall back to dz_h2_mem's; the frame buffer (the one block over
 * 16 KB) reads as zeros after idle and is usable again. */
static void test_h2_arena(void **state)
{
    struct dz_h2_arena a;
    nghttp2_mem *m = &a.mem;
    void *ud;
    unsigned char *p, *fb, *big[DZ_H2_ARENA_SLOTS + 1];

    (void)state;
    dz_h2_arena_init(&a);
    ud = m->mem_user_data;
    p = m->malloc(100, ud);
    assert_non_null(p);
    memcpy(p, "0123456789", 10);
    p = m->realloc(p, 8192, ud);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0);
    assert_ptr_equal(a.slot[0].p, p);
    assert_memory_equal(p, "0123456789", 10);
    p[8191] = 1;
    p = m->realloc(p, 16, ud);
    assert_non_null(p);
    assert_null(a.slot[0].p);
    assert_memory_equal(p, "0123456789", 10);
    m->free(p, ud);

    for (int i = 0; i <= DZ_H2_ARENA_SLOTS; i++) {
        big[i] = m->calloc(1, 4096 + (size_t)i, ud);
        assert_non_null(big[i]);
        for (size_t k = 0; k < 4096 + (size_t)i; k++)
            assert_int_equal(big[i][k], 0);
        memset(big[i], 0x5a, 4096 + (size_t)i);
    }
    for (int i = 0; i < DZ_H2_ARENA_SLOTS; i++)
        assert_ptr_equal(a.slot[i].p, big[i]);
    /* The slots are full: the last one is a block of dz_h2_mem. */
    for (int i = 0; i < DZ_H2_ARENA_SLOTS; i++)
        assert_ptr_not_equal(a.slot[i].p, big[DZ_H2_ARENA_SLOTS]);
    for (int i = 0; i <= DZ_H2_ARENA_SLOTS; i++)
        m->free(big[i], ud);
    for (int i = 0; i < DZ_H2_ARENA_SLOTS; i++)
        assert_null(a.slot[i].p);

    fb = m->malloc(16394, ud);
    assert_non_null(fb);
    p = m->calloc(1, 4096, ud); /* the stream map: never given back */
    assert_non_null(p);
    memset(fb, 0xab, 16394);
    memset(p, 0xcd, 4096);
    dz_h2_arena_mark_framebuf(&a);
    assert_true(a.framebuf >= 0);
    assert_ptr_equal(a.slot[a.framebuf].p, fb);
    dz_h2_arena_idle(&a); /* no frame written since: kept */
    assert_int_equal(fb[0], 0xab);
    a.framebuf_used = true;
    dz_h2_arena_idle(&a);
    assert_int_equal(fb[0], 0);
    assert_int_equal(fb[16393], 0);
    assert_int_equal(p[0], 0xcd);
    assert_int_equal(p[4095], 0xcd);
    memset(fb, 0x11, 16394);
    assert_int_equal(fb[16393], 0x11);
    m->free(fb, ud);
    assert_int_equal(a.framebuf, -1);
    a.framebuf_used = true;
    dz_h2_arena_idle(&a); /* nothing known: nothing done */
    assert_int_equal(p[0], 0xcd);

    /* Two blocks over 16 KB: which one is the frame buffer is not known. */
    fb = m->malloc(16394, ud);
    big[0] = m->malloc(20000, ud);
    memset(big[0], 0x22, 20000);
    dz_h2_arena_mark_framebuf(&a);
    assert_int_equal(a.framebuf, -1);
    a.framebuf_used = true;
    dz_h2_arena_idle(&a);
    assert_int_equal(big[0][19999], 0x22);
    m->free(big[0], ud);
    m->free(fb, ud);
    m->free(p, ud);
    m->free(NULL, ud);
}

static int group_setup(void **state)
{
    X509 *ca = NULL;
    EVP_PKEY *cakey = NULL;

    (void)state;
    memcpy(g_dir, "/tmp/test_httpd_XXXXXX", 23);
    assert_non_null(mkdtemp(g_dir));
    make_cert("first", "first.test", NULL, NULL, NULL, NULL);
    make_cert("second", "second.test", NULL, NULL, NULL, NULL);
    make_cert("clientca", "Client CA", NULL, NULL, &ca, &cakey);
    make_cert("goodclient", "Good Client", ca, cakey, NULL, NULL);
    make_cert("rogueclient", "Rogue Client", NULL, NULL, NULL, NULL);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    assert_int_equal(curl_global_init(CURL_GLOBAL_ALL), 0);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    curl_global_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_info),
        cmocka_unit_test(test_post_echo_and_overflow),
        cmocka_unit_test(test_early_answer_and_bad_headers),
        cmocka_unit_test(test_big_response),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_async_and_stream),
        cmocka_unit_test(test_client_abort),
        cmocka_unit_test(test_drain_finishes_inflight),
        cmocka_unit_test(test_drain_deadline_cuts),
        cmocka_unit_test(test_tls_and_swap),
        cmocka_unit_test(test_tls_client_cert_optional),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_connections_per_address),
        cmocka_unit_test(test_zero_window_budget),
        cmocka_unit_test(test_rapid_reset),
        cmocka_unit_test(test_tls_records_together),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_garbage_and_bad_args),
        cmocka_unit_test(test_worker_post),
        cmocka_unit_test(test_shed_across_workers),
        cmocka_unit_test(test_shed_lent_bound),
        cmocka_unit_test(test_full_refuses_when_all_serve),
        cmocka_unit_test(test_recycled_request_wiped),
        cmocka_unit_test(test_h2_mem),
        cmocka_unit_test(test_h2_arena),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
