/*
 * runtime.c - the runtime every darvaza-peer mode shares (peer.h): the
 * server loop with its signal handling, JSON and problem answers, query and
 * header helpers, and the bounded log of recent requests that tests read.
 * It never checks assertions (peer_auth.c) and never knows a mode's routes.
 */
#include "peer.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "http/tls.h"

#include "base/compat.h"

/* ---- command line ---- */

bool dz_peer_listen_option(struct dz_peer_listen_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'l':
        o->listen = arg;
        return true;
    case 'c':
        o->cert = arg;
        return true;
    case 'k':
        o->key = arg;
        return true;
    default:
        return false;
    }
}

int dz_peer_options(int argc, char **argv, const struct option *opts,
                    struct dz_peer_listen_opts *lo, bool (*own)(void *ctx, int c, const char *arg),
                    void *ctx, int (*usage)(FILE *to))
{
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (!dz_peer_listen_option(lo, c, optarg) && !(own && own(ctx, c, optarg)))
            return usage(stderr);
    }
    return optind == argc ? -1 : usage(stderr);
}

int dz_peer_parse_listen(const char *s, char *host, size_t host_len, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    long long p = 0;

    *port = 0;
    if (host_len)
        host[0] = '\0';
    if (!s)
        return DZ_ERR_PARSE;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':')
            return DZ_ERR_PARSE;
        h = s + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strchr(s, ':');
        /* An IPv6 address needs brackets: "::1:80" is ambiguous. */
        if (!colon || strchr(colon + 1, ':'))
            return DZ_ERR_PARSE;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= host_len || dz_parse_int(colon + 1, 1, 65535, &p) != 0)
        return DZ_ERR_PARSE;
    for (size_t i = 0; i < hl; i++) {
        char ch = h[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '.' || ch == ':' || ch == '-'))
            return DZ_ERR_PARSE;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* ---- answers ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

int dz_peer_respond_json(struct dz_req *r, int status, json_t *body)
{
    static const struct dz_hdr hdr[] = {{"content-type", "application/json"},
                                        {"cache-control", "no-store"}};
    char *text = NULL;
    int rc;

    if (body)
        text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                  "\"status\":500,\"code\":\"internal_error\"}";
        static const struct dz_hdr ph[] = {{"content-type", "application/problem+json"}};

        return dz_req_respond(r, 500, ph, 1, oom, sizeof(oom) - 1);
    }
    rc = dz_req_respond(r, status, hdr, 2, text, strlen(text));
    free(text);
    return rc;
}

int dz_peer_problem(struct dz_req *r, int status, const char *code, const char *detail,
                    const char *reason)
{
    static const struct dz_hdr hdr[] = {{"content-type", "application/problem+json"},
                                        {"cache-control", "no-store"}};
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                          reason_phrase(status), "status", status, "detail",
                          detail ? detail : reason_phrase(status), "code", code);
    char *text = NULL;
    int rc;

    if (o && reason)
        json_object_set_new(o, "reason", json_string(reason));
    if (o)
        text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return dz_req_respond(r, status, hdr, 2, "{}", 2);
    rc = dz_req_respond(r, status, hdr, 2, text, strlen(text));
    free(text);
    return rc;
}

/* ---- request helpers ---- */

const char *dz_peer_req_path(const struct dz_req *r, char *buf, size_t len)
{
    const char *p = dz_req_path(r);
    size_t n = p ? strcspn(p, "?") : 0;

    if (n == 0 || n >= len) {
        snprintf(buf, len, "%s", n == 0 ? "/" : "");
        return buf;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

int dz_peer_query_find(const char *target, const char *name, char *buf, size_t len)
{
    const char *q = target ? strchr(target, '?') : NULL;
    size_t nl = name ? strlen(name) : 0;

    if (len)
        buf[0] = '\0';
    if (!q || nl == 0)
        return DZ_ERR_NOTFOUND;
    for (q++; *q;) {
        size_t item = strcspn(q, "&");

        if (item > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            size_t vl = item - nl - 1;

            if (vl >= len)
                return DZ_ERR_TOOBIG;
            memcpy(buf, q + nl + 1, vl);
            buf[vl] = '\0';
            return 0;
        }
        q += item;
        if (*q == '&')
            q++;
    }
    return DZ_ERR_NOTFOUND;
}

int dz_peer_query_param(const struct dz_req *r, const char *name, char *buf, size_t len)
{
    return dz_peer_query_find(dz_req_path(r), name, buf, len);
}

json_t *dz_peer_json_text(const char *s)
{
    json_t *v;

    if (!s)
        return json_null();
    v = json_string(s);
    return v ? v : json_string("<not utf-8>");
}

json_t *dz_peer_headers_json(const struct dz_req *r)
{
    json_t *o = json_object();
    size_t n = dz_req_header_count(r);

    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *value = NULL;
        json_t *prev;
        json_t *v;

        dz_req_header_at(r, i, &name, &value);
        if (!name || !value)
            continue;
        prev = json_object_get(o, name);
        if (prev) {
            char *joined = NULL;

            if (asprintf(&joined, "%s, %s", json_string_value(prev), value) < 0)
                goto fail;
            v = dz_peer_json_text(joined);
            free(joined);
        } else {
            /* Header values are bytes; keep what is valid UTF-8 and mark
             * what is not rather than drop the header. */
            v = dz_peer_json_text(value);
        }
        if (!v || json_object_set_new(o, name, v) != 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

bool dz_peer_req_is_loopback(const struct dz_req *r)
{
    const char *ip = dz_req_peer_ip(r);

    return ip && (strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0 ||
                  strcmp(ip, "::ffff:127.0.0.1") == 0);
}

/* ---- request log: a ring of the last DZ_PEER_LOG_MAX entries ---- */

static json_t *log_ring[DZ_PEER_LOG_MAX];
static size_t log_next; /* slot the next entry goes to */

static void iso_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

void dz_peer_log_request(const struct dz_req *r, const json_t *claims, const char *reason,
                         int status)
{
    char now[40];
    json_t *e;

    iso_now(now, sizeof(now));
    e = json_pack("{s:s, s:s, s:o, s:o, s:s, s:b, s:o, s:b, s:o, s:o, s:i}", "time", now, "method",
                  dz_req_method(r), "path", dz_peer_json_text(dz_req_path(r)), "authority",
                  dz_peer_json_text(dz_req_authority(r)), "peer_ip", dz_req_peer_ip(r), "tls",
                  dz_req_is_tls(r), "headers", dz_peer_headers_json(r), "verified", claims != NULL,
                  "claims", claims ? json_deep_copy(claims) : json_null(), "reason",
                  reason ? json_string(reason) : json_null(), "status", status);
    if (!e) {
        dz_log(DZ_LOG_WARN, "peer_log", "request not logged (out of memory)");
        return;
    }
    json_decref(log_ring[log_next]);
    log_ring[log_next] = e;
    log_next = (log_next + 1) % DZ_PEER_LOG_MAX;
}

bool dz_peer_read_back_allowed(struct dz_req *r)
{
    /* Never reachable through the gateway (it routes only declared paths)
     * and, as a second fence, only served to this machine. */
    if (!dz_peer_req_is_loopback(r)) {
        dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
        return false;
    }
    if (strcmp(dz_req_method(r), "GET") != 0) {
        dz_peer_problem(r, 405, "method_not_allowed", "use GET", NULL);
        return false;
    }
    return true;
}

void dz_peer_log_serve(struct dz_req *r)
{
    json_t *a;

    if (!dz_peer_read_back_allowed(r))
        return;
    a = json_array();
    for (size_t i = 0; a && i < DZ_PEER_LOG_MAX; i++) {
        json_t *e = log_ring[(log_next + i) % DZ_PEER_LOG_MAX];

        if (e && json_array_append(a, e) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    dz_peer_respond_json(r, 200, a);
}

void dz_peer_log_clear(void)
{
    for (size_t i = 0; i < DZ_PEER_LOG_MAX; i++) {
        json_decref(log_ring[i]);
        log_ring[i] = NULL;
    }
    log_next = 0;
}

/* ---- server loop ---- */

sigset_t dz_peer_stop_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

int dz_peer_serve(const char *name, const char *host, uint16_t port, SSL_CTX *tls, size_t max_body,
                  const struct dz_httpd_handlers *handlers, void *app)
{
    struct dz_listener_conf lc = {.host = host, .port = port, .tls = tls, .tag = 0};
    struct dz_httpd_conf conf = {0};
    struct dz_httpd *h = NULL;
    sigset_t set = dz_peer_stop_signals();
    int sig = 0;
    int rc;

    conf.listeners = &lc;
    conf.nlisteners = 1;
    conf.workers = 1; /* see peer.h: loop-only state needs no locks */
    dz_httpd_limits_default(&conf.limits);
    conf.limits.max_body_bytes = max_body;
    conf.handlers = *handlers;
    conf.app = app;

    rc = dz_httpd_new(&conf, &h);
    if (rc) {
        dz_log(DZ_LOG_ERROR, "peer_start", "%s: cannot listen on %s:%u: %s", name, host,
               (unsigned)port, dz_err_str(rc));
        return DZ_ERR_IO;
    }
    rc = dz_httpd_start(h);
    if (rc) {
        dz_log(DZ_LOG_ERROR, "peer_start", "%s: cannot start: %s", name, dz_err_str(rc));
        dz_httpd_free(h);
        return DZ_ERR_IO;
    }
    dz_logj(DZ_LOG_INFO, "peer_listening",
            json_pack("{s:s, s:s, s:i, s:s}", "mode", name, "host", host, "port",
                      (int)dz_httpd_port(h, 0), "proto", tls ? "h2" : "h2c"));
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            dz_log(DZ_LOG_INFO, "peer_signal", "%s: SIGHUP ignored (nothing to reload)", name);
            continue;
        }
        break;
    }
    dz_log(DZ_LOG_INFO, "peer_stopping", "%s: signal %d, draining", name, sig);
    dz_httpd_drain(h, 5000);
    dz_httpd_free(h);
    return 0;
}

void *dz_peer_worker_init(struct dz_worker *w, void *app)
{
    return app;
}

void dz_peer_worker_fini(struct dz_worker *w, void *wdata)
{
    dz_peer_log_clear();
}

int dz_peer_tls_gateway_client(const char *cert, const char *key, const char *client_ca,
                               const char *event, SSL_CTX **out)
{
    int rc = dz_tls_server_ctx_new(cert, key, client_ca, false, out);

    if (rc || !client_ca)
        return rc;
    if (X509_STORE_set_flags(SSL_CTX_get_cert_store(*out), X509_V_FLAG_PARTIAL_CHAIN) != 1 ||
        SSL_CTX_set_purpose(*out, X509_PURPOSE_SSL_CLIENT) != 1) {
        dz_log_openssl(event);
        SSL_CTX_free(*out);
        *out = NULL;
        return DZ_ERR_CRYPTO;
    }
    return 0;
}
