/*
 * httpc.c - the outbound HTTP client over libcurl multi and libev; see
 * httpc.h.
 *
 * It owns the multi handle, the ev watchers libcurl asks for (one ev_io per
 * socket, one ev_timer for libcurl's timeout), a small pool of reset easy
 * handles, and every transfer's state.  It must never free a transfer or
 * call into the multi handle while libcurl is on the stack (libcurl refuses
 * recursive calls and a freed handle would crash it): such work is queued
 * and run by run_deferred() once libcurl returns.  It never logs request or
 * response contents.
 *
 * A transfer lives in exactly one queue at a time:
 *   queued  - started from inside libcurl; added to the multi later
 *   active  - in the multi
 *   reap    - cancelled from inside libcurl; removed and freed later
 *   done    - finished, removed from the multi, on_done not yet called
 * and, independently, on the unpause list when resuming is pending.
 *
 * libcurl before 8.0.0 (Debian 12 ships 7.88.1) breaks every HTTP/2
 * prior-knowledge (h2c) transfer that reuses a connection: it layers a
 * second HTTP/2 handler on the connection and fails with "Error in the
 * HTTP2 framing layer" (curl issue #10634, fixed by PR #10643).  With such a
 * libcurl an h2c transfer first runs in "reuse only" mode: plain HTTP/2
 * (no prior-knowledge switch, so reuse is safe) with an open-socket
 * callback that refuses to create a connection.  If libcurl finds a live
 * h2c connection the transfer multiplexes on it; if it would need a new one
 * the refusal fails it before a byte is sent, and it is restarted with prior
 * knowledge on a fresh connection (which later transfers then reuse).  While
 * such a fresh connection is being made, a refused transfer tries reuse
 * again (PIPEWAIT makes it wait for that connection) a few times before it
 * opens its own, so a burst does not open one connection per transfer.
 *
 * libcurl before 8.1 also loses track of an HTTP/2 stream once it has been
 * paused and resumed: data it has already read for the stream can sit in
 * its buffers until some unrelated timer runs the transfer (up to the
 * connect timeout later; curl issue #10988).  Until such a transfer ends,
 * every H2_NUDGE_S its pause state is toggled, which makes libcurl
 * run the transfer and deliver what is buffered.  Only transfers that were
 * actually paused pay for this.
 *
 * HTTP/1.1 to a back end named by an IP address over plain http does not go
 * through libcurl at all: lib/http/h1client.c carries it (see there why), and a
 * transfer here is then a thin wrapper on the "native" queue.
 */
#include "http/httpc.h"
#include "http/httpfield.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <ev.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "http/h1client.h"

#include "base/compat.h"

#define MAX_CONNECTS 256    /* connection cache of one client */
#define EASY_POOL 64        /* reset easy handles kept for reuse */
#define MAX_REQ_HEADERS 256 /* request headers accepted */
#define MAX_METHOD 32
#define ARENA_FIRST 1024
#define H2C_MAX_TRIES 3 /* refused reuse attempts before a fresh connection */
#define H2_NUDGE_S 0.02 /* nudge period for once-paused HTTP/2 transfers */

enum xstate { X_QUEUED, X_ACTIVE, X_CANCELLED, X_DONE, X_DELIVERING };

/* h2c on a libcurl with the reuse bug (see the top of this file). */
enum { H2C_PLAIN = 0, H2C_REUSE_ONLY = 1, H2C_FRESH = 2 };

struct xq {
    struct dz_httpc_xfer *head;
    struct dz_httpc_xfer *tail;
};

/* A socket libcurl asked us to watch (assigned to the fd in the multi). */
struct sock {
    ev_io io;
    struct dz_httpc *c;
    curl_socket_t fd;
    struct sock *prev;
    struct sock *next;
};

struct dz_httpc_xfer {
    struct dz_httpc *c;
    struct dz_httpc_xfer *prev; /* in one of c's queues */
    struct dz_httpc_xfer *next;
    struct dz_httpc_xfer *unext; /* on c->unpause while want_unpause */
    enum xstate state;
    CURL *easy;
    CURLU *url;
    struct curl_slist *req_hdrs;
    unsigned char *body; /* the request body, ours until the end */
    struct dz_httpc_callbacks cb;
    dz_httpc_fetch_cb fetch_done; /* non-NULL: a buffered fetch */
    void *arg;
    size_t max_body; /* 0: no cap */
    size_t received;
    int err; /* our own reason to stop (TOOBIG, NOMEM): beats cres */
    CURLcode cres;
    const char *reason; /* why it failed, for dz_httpc_reason; static text */
    int status;
    bool head_done;
    bool paused;         /* the application wants no data */
    bool curl_paused;    /* we returned CURL_WRITEFUNC_PAUSE */
    bool draining;       /* abandon: on_write drops what libcurl held */
    bool want_unpause;   /* on c->unpause */
    bool cancel_req;     /* cancelled while its on_done was being delivered */
    uint8_t h2c_mode;    /* H2C_* below */
    bool refused_socket; /* reuse-only attempt wanted a new connection */
    uint8_t h2c_tries;   /* reuse-only attempts refused so far */
    bool h2c_pending;    /* counted in c->h2c_pending */
    bool nudge;          /* an HTTP/2 transfer that was paused: nudged */
    /* Response headers: "name\0value\0" pairs in arena; pointers are made
     * once, when the head is delivered, after which the arena never moves
     * (later header lines are trailers and are ignored). */
    char *arena;
    size_t arena_len;
    size_t arena_cap;
    uint32_t off[DZ_HTTPC_MAX_HEADERS][2];
    size_t nhdr;
    struct dz_hdr hdrs[DZ_HTTPC_MAX_HEADERS];
    struct dz_buf fbody; /* fetch: the body so far */
    /* lib/http/h1client.c transfers: h1 until its on_done; the head it gives
     * stays valid until then. */
    bool native;
    struct dz_h1c_xfer *h1;
    const struct dz_hdr *native_hdrs;
};

struct dz_httpc {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;  /* libcurl's own timeout */
    ev_timer kick;   /* run_deferred on the next loop iteration */
    ev_timer nudge;  /* see H2_NUDGE_S */
    unsigned nnudge; /* transfers that need nudging */
    unsigned in_curl;
    unsigned h2c_pending; /* fresh h2c connections being made */
    bool in_deferred;
    bool freeing;
    struct xq queued;
    struct xq active;
    struct xq reap;
    struct xq done;
    struct xq native; /* transfers carried by h1 */
    struct dz_h1c *h1;
    struct dz_httpc_xfer *unpause;
    struct sock *socks;
    CURL *pool[EASY_POOL];
    unsigned npool;
};

/* ---- libcurl global state (once per process) */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static bool h2c_reuse_bug; /* before 8.0.0 */
static bool h2_pause_bug;  /* before 8.1.0 */

static void global_init(void)
{
    const curl_version_info_data *v;

    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    v = curl_version_info(CURLVERSION_NOW);
    h2c_reuse_bug = v && v->version_num < 0x080000;
    h2_pause_bug = v && v->version_num < 0x080100;
}

static int global_ready(void)
{
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK ? 0 : DZ_ERR_NOMEM;
}

/* ---- queues */

static void q_push(struct xq *q, struct dz_httpc_xfer *x)
{
    x->next = NULL;
    x->prev = q->tail;
    if (q->tail)
        q->tail->next = x;
    else
        q->head = x;
    q->tail = x;
}

static void q_remove(struct xq *q, struct dz_httpc_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        q->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        q->tail = x->prev;
    x->prev = x->next = NULL;
}

/* ---- request checks (everything the caller gives is outside input for
 * libcurl: a CR or LF in a header would split the request) */

static bool url_chars_ok(const char *u, size_t *len)
{
    size_t i;

    for (i = 0; u[i]; i++)
        if (i >= DZ_HTTPC_MAX_URL || (unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return false;
    *len = i;
    return i > 0;
}

static int check_request(const struct dz_httpc_request *r)
{
    size_t len = 0;
    bool https;
    size_t i;

    if (!r || !r->url || !url_chars_ok(r->url, &len))
        return DZ_ERR_INVAL;
    https = len > 8 && strncasecmp(r->url, "https://", 8) == 0;
    if (!https && !(len > 7 && strncasecmp(r->url, "http://", 7) == 0))
        return DZ_ERR_INVAL;
    if (r->version != DZ_HTTPC_H2 && r->version != DZ_HTTPC_H2C && r->version != DZ_HTTPC_HTTP1)
        return DZ_ERR_INVAL;
    if (r->version == DZ_HTTPC_H2C && https)
        return DZ_ERR_INVAL;
    if (r->method && !dz_http_token_ok(r->method, MAX_METHOD))
        return DZ_ERR_INVAL;
    if ((r->body_len && !r->body) || (r->nheaders && !r->headers) || r->nheaders > MAX_REQ_HEADERS)
        return DZ_ERR_INVAL;
    for (i = 0; i < r->nheaders; i++)
        if (!dz_http_token_ok(r->headers[i].name, 256) || !dz_http_value_ok(r->headers[i].value))
            return DZ_ERR_INVAL;
    return 0;
}

static int build_headers(const struct dz_httpc_request *r, struct curl_slist **out)
{
    struct curl_slist *l = NULL;
    struct curl_slist *t;
    char small[512];
    char *line;
    size_t need;
    size_t i;

    *out = NULL;
    for (i = 0; i < r->nheaders; i++) {
        const char *n = r->headers[i].name;
        const char *v = r->headers[i].value;

        if (dz_http_framing_field(n))
            continue;
        need = strlen(n) + strlen(v) + 3;
        line = need <= sizeof(small) ? small : malloc(need);
        if (!line)
            goto nomem;
        /* "name;" is libcurl's way to send a header with an empty value. */
        if (*v)
            snprintf(line, need, "%s: %s", n, v);
        else
            snprintf(line, need, "%s;", n);
        t = curl_slist_append(l, line);
        if (line != small)
            free(line);
        if (!t)
            goto nomem;
        l = t;
    }
    if (r->body_len) {
        bool has_type = false;

        for (i = 0; i < r->nheaders; i++)
            has_type = has_type || strcasecmp(r->headers[i].name, "content-type") == 0;
        t = curl_slist_append(l, "Expect:");
        if (!t)
            goto nomem;
        l = t;
        /* With a body and no type, libcurl would add its own
         * (application/x-www-form-urlencoded): a back end must see only
         * what the client sent.  "Content-Type:" removes libcurl's. */
        if (!has_type) {
            t = curl_slist_append(l, "Content-Type:");
            if (!t)
                goto nomem;
            l = t;
        }
    }
    *out = l;
    return 0;
nomem:
    curl_slist_free_all(l);
    return DZ_ERR_NOMEM;
}

static int parse_url(const char *s, CURLU **out)
{
    CURLU *u = curl_url();
    CURLUcode uc;

    *out = NULL;
    if (!u)
        return DZ_ERR_NOMEM;
    uc = curl_url_set(u, CURLUPART_URL, s, 0);
    if (uc != CURLUE_OK) {
        curl_url_cleanup(u);
        return uc == CURLUE_OUT_OF_MEMORY ? DZ_ERR_NOMEM : DZ_ERR_INVAL;
    }
    *out = u;
    return 0;
}

/* Options shared by the loop client and the blocking fetch. */
static int setup_easy(CURL *e, const struct dz_httpc_request *r, CURLU *url, const void *body,
                      struct curl_slist *hdrs)
{
    const char *m = r->method ? r->method : "GET";
    CURLcode rc = CURLE_OK;
    long ver;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_CURLU, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms ? r->timeout_ms : DZ_HTTPC_TIMEOUT_MS));
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(r->connect_timeout_ms ? r->connect_timeout_ms : DZ_HTTPC_CONNECT_TIMEOUT_MS));
    switch (r->version) {
    case DZ_HTTPC_H2C:
        ver = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
        break;
    case DZ_HTTPC_HTTP1:
        ver = CURL_HTTP_VERSION_1_1;
        break;
    default:
        ver = CURL_HTTP_VERSION_2TLS;
        break;
    }
    SET(CURLOPT_HTTP_VERSION, ver);
    if (r->version != DZ_HTTPC_HTTP1)
        SET(CURLOPT_PIPEWAIT, 1L); /* wait to multiplex rather than connect again */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (r->tls && r->tls->ca_file)
        SET(CURLOPT_CAINFO, r->tls->ca_file);
    if (r->tls && r->tls->cert_file)
        SET(CURLOPT_SSLCERT, r->tls->cert_file);
    if (r->tls && r->tls->key_file)
        SET(CURLOPT_SSLKEY, r->tls->key_file);
    if (strcmp(m, "HEAD") == 0 && !r->body_len) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") == 0 && !r->body_len) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (r->body_len || strcmp(m, "POST") == 0) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_POSTFIELDS, r->body_len ? body : "");
        if (strcmp(m, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, m);
    } else {
        SET(CURLOPT_CUSTOMREQUEST, m);
    }
    if (hdrs)
        SET(CURLOPT_HTTPHEADER, hdrs);
#undef SET
    if (rc == CURLE_OK)
        return 0;
    return rc == CURLE_OUT_OF_MEMORY ? DZ_ERR_NOMEM : DZ_ERR_INVAL;
}

/* The one place libcurl results become darvaza errors.  Anything not
 * recognised is the back end's fault as far as a caller can tell. */
static int map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return DZ_ERR_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        return DZ_ERR_NOMEM;
    case CURLE_FILESIZE_EXCEEDED:
        return DZ_ERR_TOOBIG;
    default:
        return DZ_ERR_UNAVAILABLE;
    }
}

/* A short, stable word for why a transfer failed, for the logs of the
 * callers (an operator greps for "connect_refused", not for libcurl's
 * wording).  The socket's errno separates a refused connection from an
 * unreachable one and a reset from other I/O errors. */
static const char *curl_reason(CURL *e, CURLcode rc, int result)
{
    long oserr = 0;

    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
    switch (rc) {
    case CURLE_OK:
        return dz_httpc_reason_of(result);
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "resolve";
    case CURLE_COULDNT_CONNECT:
        return oserr == ECONNREFUSED ? "connect_refused" : "connect_failed";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return "tls";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return oserr == ECONNRESET || oserr == EPIPE ? "reset" : "io";
    case CURLE_GOT_NOTHING:
        return "empty_reply";
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return "protocol";
    case CURLE_FILESIZE_EXCEEDED:
        return "too_large";
    default:
        return dz_httpc_reason_of(result);
    }
}

const char *dz_httpc_reason_of(int result)
{
    switch (result) {
    case 0:
        return "ok";
    case DZ_ERR_TIMEOUT:
        return "timeout";
    case DZ_ERR_TOOBIG:
        return "too_large";
    case DZ_ERR_NOMEM:
        return "out_of_memory";
    default:
        return "unavailable";
    }
}

const char *dz_httpc_reason(const struct dz_httpc_xfer *x)
{
    return x && x->reason ? x->reason : "unavailable";
}

static const char *log_failure(CURL *e, CURLcode rc, int result)
{
    char *ip = NULL;
    long port = 0;
    const char *reason = curl_reason(e, rc, result);

    if (rc == CURLE_OK)
        return reason;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    dz_logj(DZ_LOG_DEBUG, "httpc_failed",
            json_pack("{s:s, s:s, s:s, s:s, s:i}", "result", dz_err_str(result), "reason", reason,
                      "curl", curl_easy_strerror(rc), "peer", ip && *ip ? ip : "-", "port",
                      (int)port));
    return reason;
}

/* ---- transfers */

static void h2c_settle(struct dz_httpc_xfer *x);

static void xfer_free(struct dz_httpc_xfer *x)
{
    struct dz_httpc *c = x->c;

    h2c_settle(x);
    if (x->nudge && --c->nnudge == 0)
        ev_timer_stop(c->loop, &c->nudge);
    if (x->want_unpause) {
        struct dz_httpc_xfer **pp = &c->unpause;

        while (*pp && *pp != x)
            pp = &(*pp)->unext;
        if (*pp)
            *pp = x->unext;
    }
    if (x->easy) {
        if (!c->freeing && c->npool < EASY_POOL) {
            curl_easy_reset(x->easy);
            c->pool[c->npool++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
    }
    curl_url_cleanup(x->url);
    curl_slist_free_all(x->req_hdrs);
    free(x->body);
    free(x->arena);
    dz_buf_cleanup(&x->fbody);
    free(x);
}

static void deliver_head(struct dz_httpc_xfer *x)
{
    long code = 0;
    size_t i;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    for (i = 0; i < x->nhdr; i++) {
        x->hdrs[i].name = x->arena + x->off[i][0];
        x->hdrs[i].value = x->arena + x->off[i][1];
    }
    x->status = (int)code;
    x->head_done = true;
    h2c_settle(x); /* its connection is up */
    if (!x->fetch_done && x->cb.on_head)
        x->cb.on_head(x->arg, x->status, x->hdrs, x->nhdr);
}

static bool arena_add(struct dz_httpc_xfer *x, const char *p, size_t n, bool lower)
{
    size_t i;

    if (x->arena_len + n + 1 > x->arena_cap) {
        size_t cap = x->arena_cap ? x->arena_cap : ARENA_FIRST;
        char *a;

        while (cap < x->arena_len + n + 1)
            cap *= 2;
        a = realloc(x->arena, cap);
        if (!a)
            return false;
        x->arena = a;
        x->arena_cap = cap;
    }
    for (i = 0; i < n; i++) {
        char ch = p[i];

        x->arena[x->arena_len + i] = lower && ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    x->arena[x->arena_len + n] = '\0';
    x->arena_len += n + 1;
    return true;
}

/* CURLOPT_OPENSOCKETFUNCTION for h2c transfers on a libcurl with the reuse
 * bug: a reuse-only attempt may not connect (see the top of this file). */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct dz_httpc_xfer *x = ud;

    if (purpose != CURLSOCKTYPE_IPCXN || x->h2c_mode == H2C_REUSE_ONLY) {
        x->refused_socket = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void h2c_settle(struct dz_httpc_xfer *x)
{
    if (x->h2c_pending) {
        x->h2c_pending = false;
        x->c->h2c_pending--;
    }
}

static int set_h2c_mode(struct dz_httpc_xfer *x, uint8_t mode)
{
    CURL *e = x->easy;
    CURLcode rc;

    x->h2c_mode = mode;
    x->refused_socket = false;
    if (mode == H2C_FRESH && !x->h2c_pending) {
        x->h2c_pending = true;
        x->c->h2c_pending++;
    }
    if (mode == H2C_REUSE_ONLY)
        rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_0);
    else
        rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, mode == H2C_FRESH ? 1L : 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    return rc == CURLE_OK ? 0 : DZ_ERR_NOMEM;
}

/* libcurl hands over one header line at a time, the status line of each
 * response (HTTP/2 too) first.  Runs inside libcurl: no user callback. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct dz_httpc_xfer *x = ud;
    size_t n = size * nmemb;
    size_t nl = 0;
    size_t vl = 0;
    const char *v = NULL;

    if (x->state != X_ACTIVE)
        return 0;
    if (x->head_done)
        return n; /* trailers */
    switch (dz_http_header_line(p, n, &nl, &v, &vl)) {
    case DZ_HTTP_LINE_STATUS:
        x->nhdr = 0; /* a new response: forget any 1xx headers */
        x->arena_len = 0;
        return n;
    case DZ_HTTP_LINE_SKIP:
        return n;
    case DZ_HTTP_LINE_HEADER:
        break;
    }
    if (x->nhdr == DZ_HTTPC_MAX_HEADERS || x->arena_len + nl + vl + 2 > DZ_HTTPC_MAX_HEADER_BYTES) {
        x->err = DZ_ERR_TOOBIG;
        return 0;
    }
    x->off[x->nhdr][0] = (uint32_t)x->arena_len;
    if (!arena_add(x, p, nl, true))
        goto nomem;
    x->off[x->nhdr][1] = (uint32_t)x->arena_len;
    if (!arena_add(x, v, vl, false))
        goto nomem;
    x->nhdr++;
    return n;
nomem:
    x->err = DZ_ERR_NOMEM;
    return 0;
}

/* What on_write answers for a transfer that is no longer active.  One
 * cancelled inside libcurl is paused, not failed: a failure would end it
 * inside libcurl at once, and its connection with it kept for reuse (see
 * abandon); paused, it is removed by run_deferred as soon as libcurl
 * returns, through abandon. */
static size_t stopped(struct dz_httpc_xfer *x)
{
    if (x->state != X_CANCELLED)
        return 0;
    x->curl_paused = true; /* libcurl holds the chunk: abandon drains it */
    return CURL_WRITEFUNC_PAUSE;
}

/* Body bytes, delivered without a copy.  Runs inside libcurl: whatever the
 * callbacks do to transfers is deferred (see dz_httpc_cancel/_start). */
static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct dz_httpc_xfer *x = ud;
    size_t n = size * nmemb;
    int rc;

    if (x->draining)
        return n; /* abandon: what libcurl held is dropped */
    if (x->state != X_ACTIVE)
        return stopped(x);
    if (x->paused) {
        /* libcurl keeps this chunk and offers it again on resume. */
        x->curl_paused = true;
        if (!x->nudge) {
            long v = 0;

            curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &v);
            if (v == CURL_HTTP_VERSION_2_0 && h2_pause_bug) {
                x->nudge = true;
                if (x->c->nnudge++ == 0)
                    ev_timer_again(x->c->loop, &x->c->nudge);
            }
        }
        return CURL_WRITEFUNC_PAUSE;
    }
    if (x->max_body && n > x->max_body - x->received) {
        x->err = DZ_ERR_TOOBIG;
        return 0;
    }
    x->received += n;
    if (!x->head_done) {
        deliver_head(x);
        if (x->state != X_ACTIVE)
            return stopped(x);
    }
    if (x->fetch_done) {
        rc = dz_buf_append(&x->fbody, p, n);
        if (rc) {
            x->err = rc;
            return 0;
        }
        return n;
    }
    if (x->cb.on_data) {
        x->cb.on_data(x->arg, p, n);
        if (x->state != X_ACTIVE)
            return stopped(x);
    }
    return n;
}

/* ---- the loop side */

static void run_deferred(struct dz_httpc *c);

static void leave_curl(struct dz_httpc *c)
{
    if (--c->in_curl == 0)
        run_deferred(c);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sock *s = (struct sock *)w;
    struct dz_httpc *c = s->c;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;

    /* s may be freed inside (libcurl closes the socket): not used after. */
    c->in_curl++;
    curl_multi_socket_action(c->multi, s->fd, action, &running);
    leave_curl(c);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct dz_httpc *c = w->data;
    int running = 0;

    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    leave_curl(c);
}

static void on_nudge(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct dz_httpc *c = w->data;
    struct dz_httpc_xfer *x;
    struct dz_httpc_xfer *next;

    /* A pause toggle is the one call that makes libcurl 7.88 run a given
     * transfer and look at what it has buffered for it. */
    c->in_curl++;
    for (x = c->active.head; x; x = next) {
        next = x->next;
        if (x->state == X_ACTIVE && x->nudge && !x->paused && !x->curl_paused) {
            curl_easy_pause(x->easy, CURLPAUSE_RECV);
            curl_easy_pause(x->easy, CURLPAUSE_CONT);
        }
    }
    leave_curl(c);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    run_deferred(w->data);
}

static void kick(struct dz_httpc *c)
{
    if (!ev_is_active(&c->kick) && !ev_is_pending(&c->kick)) {
        ev_timer_set(&c->kick, 0., 0.);
        ev_timer_start(c->loop, &c->kick);
    }
}

static void sock_free(struct dz_httpc *c, struct sock *s)
{
    ev_io_stop(c->loop, &s->io);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) a socket. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp)
{
    struct dz_httpc *c = ud;
    struct sock *s = sp;
    int events;

    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(c, s);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->c = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        ev_init(&s->io, on_io);
        curl_multi_assign(c->multi, fd, s);
    } else {
        ev_io_stop(c->loop, &s->io);
    }
    events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_set(&s->io, fd, events);
    ev_io_start(c->loop, &s->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "soon", which an
 * ev_timer of 0 gives on the next loop iteration (never from in here). */
static int on_timer_set(CURLM *m, long ms, void *ud)
{
    struct dz_httpc *c = ud;

    ev_timer_stop(c->loop, &c->timer);
    if (ms >= 0) {
        ev_timer_set(&c->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(c->loop, &c->timer);
    }
    return 0;
}

/*
 * A transfer cancelled before its end leaves the multi (outside libcurl),
 * and its connection is not kept for another: an unfinished HTTP/1.1
 * answer cannot be reused (libcurl closes it anyway), and on HTTP/2
 * libcurl 7.88 to 8.14 submits the stream's RST_STREAM without sending it
 * (curl issue #17611, fixed in 8.15): an idle connection kept in the cache
 * would leave the back end's stream open, still answering, until a later
 * transfer happened to write on it.  So a connection the transfer had to
 * itself is closed.  One that other transfers still use stays (libcurl
 * honours FORBID_REUSE only for the last user), and sends the reset with
 * its next frame.  FORBID_REUSE is the easy handle's own option; the pool
 * resets it.
 */
static void abandon(struct dz_httpc *c, struct dz_httpc_xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    if (x->curl_paused) {
        /* libcurl 7.88 loses the chunks it holds for a paused HTTP/2
         * stream removed while its connection is still in use (curl issue
         * #10971: 16 KiB each, freed only in a path that returns early
         * then): resumed here, it hands them back to on_write, which drops
         * them, and frees them.  Outside libcurl, as abandon always is. */
        x->draining = true;
        c->in_curl++;
        curl_easy_pause(x->easy, CURLPAUSE_CONT);
        c->in_curl--;
    }
    curl_multi_remove_handle(c->multi, x->easy);
}

static void finish(struct dz_httpc *c, struct dz_httpc_xfer *x)
{
    x->state = X_DONE;
    q_push(&c->done, x);
}

static void activate(struct dz_httpc *c, struct dz_httpc_xfer *x)
{
    CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);

    if (mc != CURLM_OK) {
        x->err = mc == CURLM_OUT_OF_MEMORY ? DZ_ERR_NOMEM : DZ_ERR_UNAVAILABLE;
        finish(c, x);
        return;
    }
    x->state = X_ACTIVE;
    q_push(&c->active, x);
}

static void harvest(struct dz_httpc *c)
{
    struct dz_httpc_xfer *x;
    char *priv;
    CURLMsg *m;
    int left = 0;

    while ((m = curl_multi_info_read(c->multi, &left))) {
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;

        if (m->msg != CURLMSG_DONE)
            continue;
        priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        x = (struct dz_httpc_xfer *)priv;
        if (!x || x->state != X_ACTIVE)
            continue; /* cancelled: reaped elsewhere */
        x->cres = rc;
        curl_multi_remove_handle(c->multi, e); /* m is invalid from here */
        if (x->h2c_mode == H2C_REUSE_ONLY && x->refused_socket && !x->head_done &&
            x->received == 0) {
            /* No connection to reuse and none was opened: nothing was
             * sent.  Go again with prior knowledge on a new connection. */
            uint8_t mode = H2C_FRESH;

            if (c->h2c_pending && ++x->h2c_tries < H2C_MAX_TRIES)
                mode = H2C_REUSE_ONLY;
            x->nhdr = 0;
            x->arena_len = 0;
            x->cres = CURLE_OK;
            if (set_h2c_mode(x, mode) == 0 && curl_multi_add_handle(c->multi, e) == CURLM_OK)
                continue;
            x->err = DZ_ERR_NOMEM;
        }
        q_remove(&c->active, x);
        finish(c, x);
    }
}

/* The last callback of a transfer (unless it was cancelled meanwhile). */
static void deliver_end(struct dz_httpc_xfer *x, int result, const struct dz_hdr *hdrs)
{
    if (x->cancel_req)
        return;
    if (!x->fetch_done) {
        if (x->cb.on_done)
            x->cb.on_done(x->arg, result);
    } else if (result) {
        x->fetch_done(x->arg, result, 0, NULL, 0, NULL, 0);
    } else {
        x->fetch_done(x->arg, 0, x->status, hdrs, x->nhdr,
                      (const unsigned char *)dz_buf_cstr(&x->fbody), x->fbody.len);
    }
}

static void deliver_done(struct dz_httpc_xfer *x)
{
    int result = x->err ? x->err : map_curl(x->cres);

    x->state = X_DELIVERING;
    if (result)
        x->reason = log_failure(x->easy, x->cres, result);
    if (result == 0 && !x->head_done)
        deliver_head(x); /* a response without a body */
    deliver_end(x, result, x->hdrs);
    xfer_free(x);
}

/* Everything that may not happen inside libcurl, in an order that lets any
 * step queue more work for the next round. */
static void run_deferred(struct dz_httpc *c)
{
    struct dz_httpc_xfer *x;
    bool work = true;

    if (c->in_deferred || c->in_curl || c->freeing)
        return;
    c->in_deferred = true;
    while (work) {
        work = false;
        while ((x = c->queued.head)) {
            q_remove(&c->queued, x);
            activate(c, x);
            work = true;
        }
        while ((x = c->unpause)) {
            c->unpause = x->unext;
            x->want_unpause = false;
            if (x->state == X_ACTIVE && x->curl_paused && !x->paused) {
                x->curl_paused = false;
                /* May deliver the held data at once: that is on_data inside
                 * libcurl, so count it as such. */
                c->in_curl++;
                curl_easy_pause(x->easy, CURLPAUSE_CONT);
                c->in_curl--;
            }
            work = true;
        }
        while ((x = c->reap.head)) {
            q_remove(&c->reap, x);
            abandon(c, x);
            xfer_free(x);
            work = true;
        }
        harvest(c);
        while ((x = c->done.head)) {
            q_remove(&c->done, x);
            deliver_done(x);
            work = true;
        }
    }
    c->in_deferred = false;
}

/* ---- API */

int dz_httpc_new(struct ev_loop *loop, struct dz_httpc **out)
{
    struct dz_httpc *c = NULL;
    CURLMcode mc = CURLM_OK;
    int rc;

    *out = NULL;
    if (!loop)
        return DZ_ERR_INVAL;
    rc = global_ready();
    if (rc)
        return rc;
    c = calloc(1, sizeof(*c));
    if (!c)
        return DZ_ERR_NOMEM;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return DZ_ERR_NOMEM;
    }
#define MSET(opt, val)                                                                             \
    do {                                                                                           \
        if (mc == CURLM_OK)                                                                        \
            mc = curl_multi_setopt(c->multi, opt, val);                                            \
    } while (0)
    MSET(CURLMOPT_SOCKETFUNCTION, on_socket);
    MSET(CURLMOPT_SOCKETDATA, c);
    MSET(CURLMOPT_TIMERFUNCTION, on_timer_set);
    MSET(CURLMOPT_TIMERDATA, c);
    MSET(CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    MSET(CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
#undef MSET
    if (mc != CURLM_OK) {
        curl_multi_cleanup(c->multi);
        free(c);
        return DZ_ERR_NOMEM;
    }
    rc = dz_h1c_new(loop, &c->h1);
    if (rc) {
        curl_multi_cleanup(c->multi);
        free(c);
        return rc;
    }
    ev_timer_init(&c->timer, on_timeout, 0., 0.);
    c->timer.data = c;
    ev_timer_init(&c->kick, on_kick, 0., 0.);
    c->kick.data = c;
    ev_timer_init(&c->nudge, on_nudge, 0., H2_NUDGE_S);
    c->nudge.data = c;
    *out = c;
    return 0;
}

int dz_httpc_set_max_connections(struct dz_httpc *c, unsigned total)
{
    if (!c)
        return DZ_ERR_INVAL;
    return curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)total) == CURLM_OK
               ? 0
               : DZ_ERR_INVAL;
}

static void free_queue(struct dz_httpc *c, struct xq *q, bool in_multi)
{
    struct dz_httpc_xfer *x;

    while ((x = q->head)) {
        q_remove(q, x);
        if (in_multi)
            curl_multi_remove_handle(c->multi, x->easy);
        xfer_free(x);
    }
}

void dz_httpc_free(struct dz_httpc *c)
{
    unsigned i;

    if (!c)
        return;
    c->freeing = true;
    dz_h1c_free(c->h1); /* no callback runs; the wrappers go below */
    free_queue(c, &c->native, false);
    free_queue(c, &c->active, true);
    free_queue(c, &c->reap, true);
    free_queue(c, &c->queued, false);
    free_queue(c, &c->done, false);
    for (i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    curl_multi_cleanup(c->multi); /* closes the cached connections */
    while (c->socks)
        sock_free(c, c->socks);
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_stop(c->loop, &c->kick);
    ev_timer_stop(c->loop, &c->nudge);
    free(c);
}

/* ---- transfers carried by lib/http/h1client.c */

static void native_on_head(void *arg, int status, const struct dz_hdr *h, size_t n)
{
    struct dz_httpc_xfer *x = arg;

    x->status = status;
    x->head_done = true;
    x->native_hdrs = h;
    x->nhdr = n;
    if (!x->fetch_done && x->cb.on_head)
        x->cb.on_head(x->arg, status, h, n); /* x may be gone after this */
}

static void native_on_done(void *arg, int result);

static void native_on_data(void *arg, const void *p, size_t n)
{
    struct dz_httpc_xfer *x = arg;
    int rc;

    if (!x->fetch_done) {
        if (x->cb.on_data)
            x->cb.on_data(x->arg, p, n); /* x may be gone after this */
        return;
    }
    rc = dz_buf_append(&x->fbody, p, n);
    if (rc) {
        /* Stop the transfer (freed by h1client once we return) and end
         * the fetch here: no on_done will come from it. */
        dz_h1c_cancel(x->h1);
        native_on_done(x, rc);
    }
}

static void native_on_done(void *arg, int result)
{
    struct dz_httpc_xfer *x = arg;

    x->state = X_DELIVERING;
    x->h1 = NULL; /* h1client frees its part when this returns */
    if (result)
        x->reason = dz_httpc_reason_of(result);
    deliver_end(x, result, x->native_hdrs);
    q_remove(&x->c->native, x);
    xfer_free(x);
}

static int start_native(struct dz_httpc *c, const struct dz_httpc_request *r,
                        struct dz_httpc_xfer *x)
{
    static const struct dz_httpc_callbacks cbs = {native_on_head, native_on_data, native_on_done};
    struct dz_httpc_request nr = *r;
    int rc;

    x->native = true;
    nr.max_response_bytes = x->max_body;
    rc = dz_h1c_start(c->h1, &nr, &cbs, x, &x->h1);
    if (rc)
        return rc;
    x->state = X_ACTIVE;
    q_push(&c->native, x);
    return 0;
}

static int start(struct dz_httpc *c, const struct dz_httpc_request *r,
                 const struct dz_httpc_callbacks *cb, dz_httpc_fetch_cb fetch_done, void *arg,
                 struct dz_httpc_xfer **out)
{
    struct dz_httpc_xfer *x = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (!c || c->freeing)
        return DZ_ERR_INVAL;
    rc = check_request(r);
    if (rc)
        return rc;
    x = calloc(1, sizeof(*x));
    if (!x)
        return DZ_ERR_NOMEM;
    x->c = c;
    x->state = X_QUEUED;
    if (cb)
        x->cb = *cb;
    x->fetch_done = fetch_done;
    x->arg = arg;
    x->max_body = r->max_response_bytes;
    if (fetch_done) {
        if (!x->max_body)
            x->max_body = DZ_HTTPC_FETCH_MAX;
        dz_buf_init(&x->fbody, x->max_body);
    }
    if (dz_h1c_takes(r)) {
        rc = start_native(c, r, x);
        if (rc)
            goto fail;
        if (out)
            *out = x;
        return 0;
    }
    rc = DZ_ERR_NOMEM;
    x->easy = c->npool ? c->pool[--c->npool] : curl_easy_init();
    if (!x->easy)
        goto fail;
    if (r->body_len) {
        x->body = malloc(r->body_len);
        if (!x->body)
            goto fail;
        memcpy(x->body, r->body, r->body_len);
    }
    rc = parse_url(r->url, &x->url);
    if (rc)
        goto fail;
    rc = build_headers(r, &x->req_hdrs);
    if (rc)
        goto fail;
    rc = setup_easy(x->easy, r, x->url, x->body, x->req_hdrs);
    if (rc)
        goto fail;
    if (r->version == DZ_HTTPC_H2C && h2c_reuse_bug) {
        rc = set_h2c_mode(x, H2C_REUSE_ONLY);
        if (rc)
            goto fail;
    }
    if (curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x) != CURLE_OK) {
        rc = DZ_ERR_NOMEM;
        goto fail;
    }
    if (c->in_curl) {
        q_push(&c->queued, x); /* added once libcurl returns */
    } else {
        CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);

        if (mc != CURLM_OK) {
            rc = mc == CURLM_OUT_OF_MEMORY ? DZ_ERR_NOMEM : DZ_ERR_INVAL;
            goto fail;
        }
        x->state = X_ACTIVE;
        q_push(&c->active, x);
    }
    if (out)
        *out = x;
    return 0;
fail:
    xfer_free(x);
    return rc;
}

int dz_httpc_start(struct dz_httpc *c, const struct dz_httpc_request *r,
                   const struct dz_httpc_callbacks *cb, void *arg, struct dz_httpc_xfer **out)
{
    return start(c, r, cb, NULL, arg, out);
}

int dz_httpc_fetch(struct dz_httpc *c, const struct dz_httpc_request *r, dz_httpc_fetch_cb done,
                   void *arg, struct dz_httpc_xfer **out)
{
    if (!done) {
        if (out)
            *out = NULL;
        return DZ_ERR_INVAL;
    }
    return start(c, r, NULL, done, arg, out);
}

void dz_httpc_cancel(struct dz_httpc_xfer *x)
{
    struct dz_httpc *c;

    if (!x)
        return;
    c = x->c;
    if (x->native) {
        if (x->state == X_DELIVERING) {
            x->cancel_req = true;
            return;
        }
        dz_h1c_cancel(x->h1);
        q_remove(&c->native, x);
        xfer_free(x);
        return;
    }
    switch (x->state) {
    case X_QUEUED:
        q_remove(&c->queued, x);
        xfer_free(x);
        break;
    case X_ACTIVE:
        q_remove(&c->active, x);
        if (c->in_curl) {
            /* libcurl may be working on this very handle: the callbacks
             * see X_CANCELLED and stop it; it is removed once out. */
            x->state = X_CANCELLED;
            q_push(&c->reap, x);
        } else {
            abandon(c, x);
            xfer_free(x);
        }
        break;
    case X_DONE:
        q_remove(&c->done, x);
        xfer_free(x);
        break;
    case X_DELIVERING:
        x->cancel_req = true;
        break;
    case X_CANCELLED:
        break;
    }
}

int dz_httpc_pause(struct dz_httpc_xfer *x, bool paused)
{
    struct dz_httpc *c;

    if (!x || (x->state != X_ACTIVE && x->state != X_QUEUED))
        return DZ_ERR_STATE;
    if (x->native)
        return dz_h1c_pause(x->h1, paused);
    c = x->c;
    x->paused = paused;
    if (!paused && x->curl_paused && !x->want_unpause) {
        x->want_unpause = true;
        x->unext = c->unpause;
        c->unpause = x;
        if (!c->in_curl)
            kick(c); /* never resume synchronously: on_data would re-enter */
    }
    return 0;
}

/* ---- blocking */

struct sink {
    struct dz_buf *body;
    size_t max;
    size_t got;
    int err;
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    int rc;

    if (s->max && n > s->max - s->got) {
        s->err = DZ_ERR_TOOBIG;
        return 0;
    }
    rc = dz_buf_append(s->body, p, n);
    if (rc) {
        s->err = rc;
        return 0;
    }
    s->got += n;
    return n;
}

int dz_http_fetch_blocking(const struct dz_httpc_request *r, int *status, struct dz_buf *body)
{
    struct sink sink = {.body = body, .max = r ? r->max_response_bytes : 0};
    struct curl_slist *hdrs = NULL;
    CURLU *url = NULL;
    CURL *e = NULL;
    CURLcode cr;
    long code = 0;
    int rc;

    if (status)
        *status = 0;
    if (!status || !body)
        return DZ_ERR_INVAL;
    rc = check_request(r);
    if (rc)
        return rc;
    rc = global_ready();
    if (rc)
        return rc;
    rc = parse_url(r->url, &url);
    if (rc)
        goto out;
    rc = build_headers(r, &hdrs);
    if (rc)
        goto out;
    rc = DZ_ERR_NOMEM;
    e = curl_easy_init();
    if (!e)
        goto out;
    rc = setup_easy(e, r, url, r->body, hdrs);
    if (rc)
        goto out;
    if (curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_write) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink) != CURLE_OK) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    cr = curl_easy_perform(e);
    rc = sink.err ? sink.err : map_curl(cr);
    if (rc) {
        log_failure(e, cr, rc);
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    *status = (int)code;
out:
    curl_easy_cleanup(e);
    curl_url_cleanup(url);
    curl_slist_free_all(hdrs);
    return rc;
}
