/*
 * h1client.c - see h1client.h.
 *
 * A transfer owns one connection while it runs: taken from the client's
 * idle list (checked alive with a non-blocking peek) or connected anew.
 * The request is written, then the answer is read into the client's
 * buffer (shared by its transfers: reads run only in loop callbacks): the
 * head is parsed in place, the body handed to on_data without a copy, and
 * only what a read leaves unused is moved to the transfer's own buffer.
 * A connection whose answer ended cleanly (HTTP/1.1, framed by length or
 * chunks, nothing extra after it) goes back to the idle list,
 * where a readable event (the server closing it) closes it.
 *
 * Re-entrancy: while a user callback runs, x->in_cb is set; dz_h1c_cancel
 * of that transfer only marks it, and the code that called the callback
 * frees it when the callback returns.  Failures found inside dz_h1c_start
 * are reported from a zero timer, never from start itself.
 */
#include "http/h1client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "base/err.h"
#include "http/h1parse.h"
#include "http/httpfield.h"

#include "base/compat.h"

#define HEAD_MAX (DZ_HTTPC_MAX_HEADER_BYTES + 8192) /* status line, fields, CRLFs */
#define READ_SIZE (16 * 1024)
#define ARENA_INLINE 512 /* a usual answer's header fields fit in the transfer itself */
#define IDLE_MAX 256     /* idle connections kept by one client */

struct conn {
    int fd;
    ev_io io;
    struct dz_h1c *c;
    struct sockaddr_storage addr;
    socklen_t alen;
    struct conn *prev; /* in c->idle */
    struct conn *next;
};

enum xstate { XS_CONNECTING, XS_SENDING, XS_HEAD, XS_BODY, XS_DONE };

struct dz_h1c_xfer {
    struct dz_h1c *c;
    struct dz_h1c_xfer *prev; /* in c->live */
    struct dz_h1c_xfer *next;
    struct conn *conn; /* ours while the transfer runs */
    enum xstate state;
    bool reused;    /* the connection came from the idle list */
    bool retried;   /* sent again once already */
    bool got_bytes; /* some of an answer arrived */
    bool head_request;
    bool reusable;
    bool paused;
    bool in_cb;
    bool cancelled;
    ev_timer total;   /* the whole transfer */
    ev_timer connect; /* connecting */
    ev_timer later;   /* zero timer: a deferred failure, or resuming */
    int later_result; /* 0: resume */
    struct sockaddr_storage addr;
    socklen_t alen;
    double connect_s;
    char *req; /* the request bytes */
    size_t req_len;
    size_t req_off;
    char *in; /* the answer as read, not yet used: c->rbuf while read_answer
               * works on it, else owned (what a read left unused) */
    size_t in_len;
    size_t in_cap;
    bool in_borrowed; /* x->in is c->rbuf */
    enum dz_h1_framing framing;
    uint64_t left; /* DZ_H1_LENGTH: bytes still to come */
    struct dz_h1_chunked ck;
    int status;
    char *arena; /* header names (lower case) and values, NUL-terminated:
                  * arena_inline, or allocated when they do not fit */
    char arena_inline[ARENA_INLINE];
    struct dz_hdr hdrs[DZ_HTTPC_MAX_HEADERS];
    size_t nhdr;
    struct dz_httpc_callbacks cb;
    void *arg;
    size_t max_body;
    size_t received;
};

struct dz_h1c {
    struct ev_loop *loop;
    struct conn *idle; /* most recently used first */
    unsigned nidle;
    struct dz_h1c_xfer *live;
    /* Shared by the client's transfers, one at a time: reads happen only
     * in loop callbacks, never inside a user callback, so no two transfers
     * use them at once.  A small answer is read, parsed and delivered from
     * rbuf without an allocation of its own (it was a 72 KB one per
     * answer); what one read leaves unused moves to the transfer. */
    char *rbuf;             /* HEAD_MAX + 1 bytes, allocated at the first read */
    struct dz_h1_head head; /* parse scratch, used within one process() */
};

/* ---- the URL */

struct target {
    struct sockaddr_storage addr;
    socklen_t alen;
    const char *authority; /* for Host */
    size_t authority_len;
    const char *path; /* from '/' or '?' on; NULL: "/" */
    size_t path_len;
};

static bool parse_target(const char *url, struct target *t)
{
    const char *a, *e, *h, *he, *p;
    char host[64];
    unsigned long port = 80;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->addr;

    memset(t, 0, sizeof(*t));
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    a = url + 7;
    e = a + strcspn(a, "/?#");
    if (e == a || memchr(a, '@', (size_t)(e - a)))
        return false;
    if (*a == '[') {
        h = a + 1;
        he = memchr(h, ']', (size_t)(e - h));
        if (!he)
            return false;
        p = he + 1;
    } else {
        h = a;
        he = memchr(a, ':', (size_t)(e - a));
        if (!he)
            he = e;
        p = he;
    }
    if (p < e) {
        char *end;

        if (*p != ':' || p + 1 == e || e - p > 6)
            return false;
        port = strtoul(p + 1, &end, 10);
        if (end != e || port == 0 || port > 65535)
            return false;
    }
    if ((size_t)(he - h) >= sizeof(host) || he == h)
        return false;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    if (*a != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        t->alen = sizeof(*v4);
    } else if (*a == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        t->alen = sizeof(*v6);
    } else {
        return false; /* a name: libcurl resolves it */
    }
    t->authority = a;
    t->authority_len = (size_t)(e - a);
    if (*e == '/' || *e == '?') {
        t->path = e;
        t->path_len = strcspn(e, "#");
    }
    return true;
}

bool dz_h1c_takes(const struct dz_httpc_request *r)
{
    struct target t;

    return r && r->version == DZ_HTTPC_HTTP1 && r->url && !r->tls && parse_target(r->url, &t);
}

/* ---- the request bytes */

static bool has_body_method(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

static int build_request(struct dz_h1c_xfer *x, const struct dz_httpc_request *r,
                         const struct target *t)
{
    const char *method = r->method ? r->method : "GET";
    const char *host = NULL;
    size_t host_len = t->authority_len;
    size_t need = strlen(method) + (t->path ? t->path_len : 1) + 64 + host_len + r->body_len;
    size_t n = 0;
    char *b;

    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, "host") == 0) {
            host = r->headers[i].value; /* the caller's Host wins, as with libcurl */
            host_len = strlen(host);
            need += host_len;
        }
        need += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 4;
    }
    b = malloc(need);
    if (!b)
        return DZ_ERR_NOMEM;
#define PUT(p, len)                                                                                \
    do {                                                                                           \
        memcpy(b + n, (p), (len));                                                                 \
        n += (len);                                                                                \
    } while (0)
#define PUTS(s) PUT((s), strlen(s))
    PUTS(method);
    PUTS(" ");
    if (t->path && t->path[0] == '?')
        PUTS("/");
    if (t->path)
        PUT(t->path, t->path_len);
    else
        PUTS("/");
    PUTS(" HTTP/1.1\r\nHost: ");
    PUT(host ? host : t->authority, host_len);
    PUTS("\r\n");
    for (size_t i = 0; i < r->nheaders; i++) {
        /* Host was written above, from the caller's or the URL. */
        if (dz_http_framing_field(r->headers[i].name) ||
            strcasecmp(r->headers[i].name, "host") == 0)
            continue;
        PUTS(r->headers[i].name);
        PUTS(": ");
        PUTS(r->headers[i].value);
        PUTS("\r\n");
    }
    if (r->body_len || has_body_method(method))
        n += (size_t)snprintf(b + n, need - n, "Content-Length: %zu\r\n", r->body_len);
    PUTS("\r\n");
    if (r->body_len)
        PUT(r->body, r->body_len);
#undef PUTS
#undef PUT
    x->req = b;
    x->req_len = n;
    x->head_request = strcmp(method, "HEAD") == 0;
    return 0;
}

/* ---- connections */

static void conn_close(struct conn *k)
{
    if (!k)
        return;
    ev_io_stop(k->c->loop, &k->io);
    close(k->fd);
    free(k);
}

/* Point k's watcher at cb for events.  The fd is k's for its whole life
 * (ev_io_init once, in x_connect), so this never calls ev_io_init again:
 * that would mark the fd for an epoll_ctl at the next loop turn even when
 * nothing changed.  With the same events the watcher keeps running and
 * only its callback changes; libev compares the fd's event mask at the
 * next turn, so a stop and a start with the same events cost no system
 * call either. */
static void conn_watch(struct conn *k, void (*cb)(struct ev_loop *, ev_io *, int), void *data,
                       int events)
{
    if (!ev_is_active(&k->io) || (k->io.events & (EV_READ | EV_WRITE)) != events) {
        ev_io_stop(k->c->loop, &k->io);
        ev_io_modify(&k->io, events);
        ev_set_cb(&k->io, cb);
        k->io.data = data;
        ev_io_start(k->c->loop, &k->io);
        return;
    }
    ev_set_cb(&k->io, cb);
    k->io.data = data;
}

static void idle_unlink(struct dz_h1c *c, struct conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        c->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    c->nidle--;
}

/* Readable while idle: the server closed it (or sent what nobody asked). */
static void on_idle_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *k = w->data;

    idle_unlink(k->c, k);
    conn_close(k);
}

static void idle_put(struct dz_h1c *c, struct conn *k)
{
    if (c->nidle >= IDLE_MAX) {
        conn_close(k);
        return;
    }
    conn_watch(k, on_idle_io, k, EV_READ);
    k->prev = NULL;
    k->next = c->idle;
    if (c->idle)
        c->idle->prev = k;
    c->idle = k;
    c->nidle++;
}

/* An idle connection to addr that is still open, or NULL. */
static struct conn *idle_take(struct dz_h1c *c, const struct sockaddr_storage *addr, socklen_t alen)
{
    struct conn *k = c->idle;

    while (k) {
        struct conn *next = k->next;

        if (k->alen == alen && memcmp(&k->addr, addr, alen) == 0) {
            char b;
            ssize_t n;

            idle_unlink(c, k);
            ev_io_stop(c->loop, &k->io);
            n = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return k;
            conn_close(k); /* closed, reset, or unasked-for bytes */
        }
        k = next;
    }
    return NULL;
}

/* ---- transfers */

static void x_io(struct ev_loop *loop, ev_io *w, int revents);

static void x_free(struct dz_h1c_xfer *x)
{
    struct dz_h1c *c = x->c;

    ev_timer_stop(c->loop, &x->total);
    ev_timer_stop(c->loop, &x->connect);
    ev_timer_stop(c->loop, &x->later);
    if (x->prev)
        x->prev->next = x->next;
    else if (c->live == x)
        c->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    conn_close(x->conn);
    free(x->req);
    if (!x->in_borrowed)
        free(x->in);
    if (x->arena != x->arena_inline)
        free(x->arena);
    free(x);
}

static void watch(struct dz_h1c_xfer *x, int events)
{
    conn_watch(x->conn, x_io, x, events);
}

static void defer(struct dz_h1c_xfer *x, int result)
{
    x->later_result = result;
    ev_timer_stop(x->c->loop, &x->later);
    ev_timer_set(&x->later, 0., 0.);
    ev_timer_start(x->c->loop, &x->later);
}

/* The end: the connection is kept or closed, on_done runs, x is freed. */
static void finish(struct dz_h1c_xfer *x, int result)
{
    struct dz_h1c *c = x->c;

    ev_timer_stop(c->loop, &x->total);
    ev_timer_stop(c->loop, &x->connect);
    ev_timer_stop(c->loop, &x->later);
    if (x->conn) {
        if (result == 0 && x->reusable && x->in_len == 0)
            idle_put(c, x->conn);
        else
            conn_close(x->conn);
        x->conn = NULL;
    }
    x->state = XS_DONE;
    if (x->cb.on_done) {
        x->in_cb = true;
        x->cb.on_done(x->arg, result);
    }
    x_free(x);
}

static void x_connect(struct dz_h1c_xfer *x)
{
    struct dz_h1c *c = x->c;
    struct conn *k = calloc(1, sizeof(*k));
    int one = 1;

    if (!k) {
        defer(x, DZ_ERR_NOMEM);
        return;
    }
    k->c = c;
    k->addr = x->addr;
    k->alen = x->alen;
    k->fd = socket(x->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        free(k);
        defer(x, DZ_ERR_UNAVAILABLE);
        return;
    }
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev_io_init(&k->io, x_io, k->fd, EV_WRITE);
    x->conn = k;
    x->reused = false;
    x->req_off = 0;
    if (connect(k->fd, (struct sockaddr *)&x->addr, x->alen) == 0) {
        x->state = XS_SENDING;
    } else if (errno == EINPROGRESS) {
        x->state = XS_CONNECTING;
        ev_timer_set(&x->connect, x->connect_s, 0.);
        ev_timer_start(c->loop, &x->connect);
    } else {
        defer(x, DZ_ERR_UNAVAILABLE);
        return;
    }
    watch(x, EV_WRITE);
}

/* A failure that may deserve a second try: a kept-alive connection the
 * server closed before any of the answer came (the request never got
 * there, or got there as the server closed: a back end sees it at most
 * twice, as with libcurl). */
static void fail(struct dz_h1c_xfer *x, int result)
{
    if (result == DZ_ERR_UNAVAILABLE && x->reused && !x->got_bytes && !x->retried &&
        (x->state == XS_SENDING || x->state == XS_HEAD)) {
        x->retried = true;
        conn_close(x->conn);
        x->conn = NULL;
        x_connect(x);
        return;
    }
    finish(x, result);
}

/* 1: all sent, 0: wait for writable, < 0: failed. */
static int send_some(struct dz_h1c_xfer *x)
{
    while (x->req_off < x->req_len) {
        ssize_t n = send(x->conn->fd, x->req + x->req_off, x->req_len - x->req_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        x->req_off += (size_t)n;
    }
    return 1;
}

/* Calls a user callback; false when the transfer was cancelled in it (it
 * is then freed here). */
static bool call_head(struct dz_h1c_xfer *x)
{
    if (x->cb.on_head) {
        x->in_cb = true;
        x->cb.on_head(x->arg, x->status, x->hdrs, x->nhdr);
        x->in_cb = false;
        if (x->cancelled) {
            x_free(x);
            return false;
        }
    }
    return true;
}

static bool deliver(struct dz_h1c_xfer *x, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (x->max_body && n > x->max_body - x->received) {
        finish(x, DZ_ERR_TOOBIG);
        return false;
    }
    x->received += n;
    if (x->cb.on_data) {
        x->in_cb = true;
        x->cb.on_data(x->arg, p, n);
        x->in_cb = false;
        if (x->cancelled) {
            x_free(x);
            return false;
        }
    }
    return true;
}

static void consume(struct dz_h1c_xfer *x, size_t n)
{
    memmove(x->in, x->in + n, x->in_len - n);
    x->in_len -= n;
}

/* The head is in h: keep its fields (names lower-cased) for on_head. */
static bool keep_head(struct dz_h1c_xfer *x, const struct dz_h1_head *h)
{
    size_t need = 0, off = 0;

    for (size_t i = 0; i < h->nhdr; i++)
        need += h->hdr[i].name_len + h->hdr[i].value_len + 2;
    if (need > DZ_HTTPC_MAX_HEADER_BYTES)
        return false;
    if (x->arena != x->arena_inline)
        free(x->arena);
    x->arena = need <= sizeof(x->arena_inline) ? x->arena_inline : malloc(need);
    if (!x->arena)
        return false;
    for (size_t i = 0; i < h->nhdr; i++) {
        const struct dz_h1_field *f = &h->hdr[i];
        char *name = x->arena + off;

        for (size_t k = 0; k < f->name_len; k++) {
            char ch = f->name[k];
            name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        name[f->name_len] = '\0';
        off += f->name_len + 1;
        memcpy(x->arena + off, f->value, f->value_len);
        x->arena[off + f->value_len] = '\0';
        x->hdrs[i].name = name;
        x->hdrs[i].value = x->arena + off;
        off += f->value_len + 1;
    }
    x->nhdr = h->nhdr;
    x->status = h->status;
    return true;
}

/* Uses what is in x->in.  false: x is gone (finished, failed, cancelled). */
static bool process(struct dz_h1c_xfer *x)
{
    while (x->state == XS_HEAD) {
        struct dz_h1_head *h = &x->c->head; /* done with before call_head */
        size_t hl = 0;
        enum dz_h1_rc rc = dz_h1_parse_head(x->in, x->in_len, HEAD_MAX, h, &hl);

        if (rc == DZ_H1_MORE)
            return true;
        if (rc != DZ_H1_OK || h->status == 101) {
            finish(x, rc == DZ_H1_TOOBIG ? DZ_ERR_TOOBIG : DZ_ERR_UNAVAILABLE);
            return false;
        }
        if (h->status < 200) { /* interim (100 Continue, 103): skipped */
            consume(x, hl);
            continue;
        }
        if (dz_h1_framing(h, x->head_request, &x->framing, &x->left, &x->reusable) != DZ_H1_OK) {
            finish(x, DZ_ERR_UNAVAILABLE);
            return false;
        }
        if (!keep_head(x, h)) {
            finish(x, DZ_ERR_TOOBIG);
            return false;
        }
        consume(x, hl);
        x->state = XS_BODY;
        if (x->framing == DZ_H1_CHUNKED)
            dz_h1_chunked_init(&x->ck);
        if (!call_head(x))
            return false;
        if (x->framing == DZ_H1_NO_BODY || (x->framing == DZ_H1_LENGTH && x->left == 0)) {
            finish(x, 0); /* extra bytes make the connection unusable: closed */
            return false;
        }
    }
    while (x->in_len > 0 && !x->paused) {
        size_t used = 0;
        bool end = false;
        const char *data = x->in;
        size_t n = 0;

        if (x->framing == DZ_H1_LENGTH) {
            n = x->in_len < x->left ? x->in_len : (size_t)x->left;
            used = n;
            x->left -= n;
            end = x->left == 0;
        } else if (x->framing == DZ_H1_CHUNKED) {
            ssize_t k = dz_h1_chunked_step(&x->ck, x->in, x->in_len, &data, &n);

            if (k < 0) {
                finish(x, DZ_ERR_UNAVAILABLE);
                return false;
            }
            used = (size_t)k;
            end = dz_h1_chunked_done(&x->ck);
        } else {
            n = used = x->in_len;
        }
        /* The data points into x->in: deliver before moving the rest. */
        if (!deliver(x, data, n))
            return false;
        consume(x, used);
        if (end) {
            finish(x, 0);
            return false;
        }
    }
    return true;
}

/* Make x->in its own again (own, own_cap: its buffer before the read),
 * holding what the read left unused, with room for a next read of want
 * bytes.  false: out of memory (x->in is then empty). */
static bool keep_unused(struct dz_h1c_xfer *x, char *own, size_t own_cap, size_t want)
{
    x->in_borrowed = false;
    if (x->in_len == 0) {
        x->in = own;
        x->in_cap = own_cap;
        return true;
    }
    /* Room for all that is unread, which can exceed want: a read into the
     * shared buffer takes up to HEAD_MAX + 1 bytes, and a caller that
     * paused the transfer leaves most of them unread. */
    if (want < x->in_len)
        want = x->in_len;
    if (own_cap < want) {
        char *b = realloc(own, want);

        if (!b) {
            free(own);
            x->in = NULL;
            x->in_cap = x->in_len = 0;
            return false;
        }
        own = b;
        own_cap = want;
    }
    memcpy(own, x->in, x->in_len);
    x->in = own;
    x->in_cap = own_cap;
    return true;
}

static void read_answer(struct dz_h1c_xfer *x)
{
    struct dz_h1c *c = x->c;
    size_t want = x->state == XS_HEAD ? HEAD_MAX + 1 : READ_SIZE;
    char *own = x->in;
    size_t own_cap = x->in_cap;
    ssize_t n;

    if (x->in_len == 0) {
        /* Nothing left from before: read into the client's buffer. */
        if (!c->rbuf && !(c->rbuf = malloc(HEAD_MAX + 1))) {
            finish(x, DZ_ERR_NOMEM);
            return;
        }
        x->in = c->rbuf;
        x->in_cap = want;
        x->in_borrowed = true;
    } else if (x->in_cap < want) {
        char *b = realloc(x->in, want);

        if (!b) {
            finish(x, DZ_ERR_NOMEM);
            return;
        }
        x->in = own = b;
        x->in_cap = own_cap = want;
    }
    if (x->in_len == x->in_cap) {
        /* Only a head over HEAD_MAX can fill the buffer. */
        finish(x, DZ_ERR_TOOBIG);
        return;
    }
    n = recv(x->conn->fd, x->in + x->in_len, x->in_cap - x->in_len, 0);
    if (n <= 0) {
        if (x->in_borrowed) { /* it held nothing */
            x->in = own;
            x->in_cap = own_cap;
            x->in_borrowed = false;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fail(x, DZ_ERR_UNAVAILABLE);
        } else if (x->state == XS_BODY && x->framing == DZ_H1_TO_CLOSE) {
            x->reusable = false;
            finish(x, 0);
        } else {
            fail(x, DZ_ERR_UNAVAILABLE);
        }
        return;
    }
    x->got_bytes = true;
    x->in_len += (size_t)n;
    if (!process(x))
        return; /* x is gone, and with it its use of c->rbuf */
    if (x->in_borrowed &&
        !keep_unused(x, own, own_cap, x->state == XS_HEAD ? HEAD_MAX + 1 : READ_SIZE)) {
        finish(x, DZ_ERR_NOMEM);
        return;
    }
    if (x->paused)
        ev_io_stop(c->loop, &x->conn->io);
}

static void x_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct dz_h1c_xfer *x = w->data;
    int rc;

    switch (x->state) {
    case XS_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(x->conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            finish(x, DZ_ERR_UNAVAILABLE);
            return;
        }
        ev_timer_stop(x->c->loop, &x->connect);
        x->state = XS_SENDING;
    }
        /* fall through */
    case XS_SENDING:
        rc = send_some(x);
        if (rc < 0) {
            fail(x, DZ_ERR_UNAVAILABLE);
        } else if (rc > 0) {
            x->state = XS_HEAD;
            watch(x, EV_READ);
        }
        return;
    case XS_HEAD:
    case XS_BODY:
        read_answer(x);
        return;
    case XS_DONE:
        return;
    }
}

static void on_total(struct ev_loop *loop, ev_timer *w, int revents)
{
    finish(w->data, DZ_ERR_TIMEOUT);
}

static void on_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct dz_h1c_xfer *x = w->data;

    if (x->later_result) {
        fail(x, x->later_result);
        return;
    }
    /* Resumed: what is buffered first, then the socket again. */
    if (x->state == XS_BODY && !x->paused && process(x) && !x->paused && x->conn)
        watch(x, EV_READ);
}

/* ---- API */

int dz_h1c_new(struct ev_loop *loop, struct dz_h1c **out)
{
    struct dz_h1c *c;

    *out = NULL;
    if (!loop)
        return DZ_ERR_INVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return DZ_ERR_NOMEM;
    c->loop = loop;
    *out = c;
    return 0;
}

void dz_h1c_free(struct dz_h1c *c)
{
    if (!c)
        return;
    while (c->live)
        x_free(c->live);
    while (c->idle) {
        struct conn *k = c->idle;

        idle_unlink(c, k);
        conn_close(k);
    }
    free(c->rbuf);
    free(c);
}

int dz_h1c_start(struct dz_h1c *c, const struct dz_httpc_request *r,
                 const struct dz_httpc_callbacks *cb, void *arg, struct dz_h1c_xfer **out)
{
    struct dz_h1c_xfer *x;
    struct target t;
    uint32_t total_ms = r->timeout_ms ? r->timeout_ms : DZ_HTTPC_TIMEOUT_MS;
    uint32_t connect_ms =
        r->connect_timeout_ms ? r->connect_timeout_ms : DZ_HTTPC_CONNECT_TIMEOUT_MS;
    int rc;

    if (out)
        *out = NULL;
    if (!c || !dz_h1c_takes(r) || !parse_target(r->url, &t))
        return DZ_ERR_INVAL;
    x = calloc(1, sizeof(*x));
    if (!x)
        return DZ_ERR_NOMEM;
    x->c = c;
    x->addr = t.addr;
    x->alen = t.alen;
    x->connect_s = connect_ms / 1000.;
    x->max_body = r->max_response_bytes;
    if (cb)
        x->cb = *cb;
    x->arg = arg;
    ev_timer_init(&x->total, on_total, total_ms / 1000., 0.);
    x->total.data = x;
    ev_timer_init(&x->connect, on_total, 0., 0.);
    x->connect.data = x;
    ev_timer_init(&x->later, on_later, 0., 0.);
    x->later.data = x;
    x->next = c->live;
    if (c->live)
        c->live->prev = x;
    c->live = x;
    rc = build_request(x, r, &t);
    if (rc) {
        x_free(x);
        return rc;
    }
    ev_timer_start(c->loop, &x->total);
    x->conn = idle_take(c, &x->addr, x->alen);
    if (x->conn) {
        /* A kept-alive connection: write at once, no callback can run. */
        x->reused = true;
        x->state = XS_SENDING;
        rc = send_some(x);
        if (rc < 0) {
            defer(x, DZ_ERR_UNAVAILABLE);
        } else if (rc > 0) {
            x->state = XS_HEAD;
            watch(x, EV_READ);
        } else {
            watch(x, EV_WRITE);
        }
    } else {
        x_connect(x);
    }
    if (out)
        *out = x;
    return 0;
}

void dz_h1c_cancel(struct dz_h1c_xfer *x)
{
    if (!x || x->state == XS_DONE)
        return;
    if (x->in_cb) {
        x->cancelled = true; /* freed when the callback returns */
        return;
    }
    x_free(x); /* an unfinished answer: the connection is closed */
}

int dz_h1c_pause(struct dz_h1c_xfer *x, bool paused)
{
    if (!x || x->state == XS_DONE || x->cancelled)
        return DZ_ERR_STATE;
    x->paused = paused;
    if (paused) {
        if (x->state == XS_BODY && x->conn && !x->in_cb)
            ev_io_stop(x->c->loop, &x->conn->io);
    } else if (x->state == XS_BODY) {
        defer(x, 0); /* never resume synchronously: on_data would re-enter */
    }
    return 0;
}
