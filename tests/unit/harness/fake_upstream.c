/*
 * fake_upstream.c - see fake_upstream.h.
 */
#include "fake_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#define REQ_MAX (256 * 1024)

struct up_conn {
    struct fake_upstream *u;
    struct up_conn *next;
    ev_io io;
    int fd;
    char *in;
    size_t in_len;
    bool served;
};

struct fake_upstream {
    struct ev_loop *loop;
    int lfd;
    ev_io accept_io;
    uint16_t port;
    enum fake_up_mode mode;
    int status;
    int next_status; /* the next answer's only, then status again; 0: none */
    char *extra;
    char *body;
    struct up_conn *conns;
    size_t nopen;
    size_t nclosed_by_client;
    size_t nrequests;
    char *last;
};

static void conn_close(struct up_conn *c)
{
    struct fake_upstream *u = c->u;
    struct up_conn **pp = &u->conns;

    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    ev_io_stop(u->loop, &c->io);
    close(c->fd);
    free(c->in);
    free(c);
    u->nopen--;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the client is gone: nothing to tell it */
        p += k;
        n -= (size_t)k;
    }
}

static void answer(struct up_conn *c)
{
    struct fake_upstream *u = c->u;
    size_t blen = strlen(u->body ? u->body : "");
    size_t declared = blen + (u->mode == FAKE_UP_HEAD_THEN_HOLD ? 1000 : 0);
    char head[4096];
    int n;

    if (u->mode == FAKE_UP_HOLD)
        return;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\ncontent-length: %zu\r\nconnection: close\r\n%s\r\n",
                 u->next_status ? u->next_status : u->status, declared, u->extra ? u->extra : "");
    u->next_status = 0;
    if (n < 0 || (size_t)n >= sizeof(head))
        abort();
    /* A blocking send of a few bytes into a fresh socket buffer. */
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    send_all(c->fd, head, (size_t)n);
    send_all(c->fd, u->body ? u->body : "", blen);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    if (u->mode == FAKE_UP_ANSWER)
        shutdown(c->fd, SHUT_WR);
}

/* The request is complete once the head and content-length bytes are in. */
static bool request_complete(struct up_conn *c)
{
    const char *end = c->in ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
    size_t head_len;
    size_t body_len = 0;

    if (!end)
        return false;
    head_len = (size_t)(end - c->in) + 4;
    for (const char *p = c->in; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, "content-length:", 15) == 0)
            body_len = strtoul(p + 15, NULL, 10);
    }
    return c->in_len >= head_len + body_len;
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct up_conn *c = w->data;
    char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->u->nclosed_by_client++;
        conn_close(c);
        return;
    }
    if (c->served)
        return; /* one request per connection; the rest is ignored */
    if (c->in_len + (size_t)n > REQ_MAX) {
        conn_close(c);
        return;
    }
    char *in = realloc(c->in, c->in_len + (size_t)n + 1);
    if (!in)
        abort();
    memcpy(in + c->in_len, buf, (size_t)n);
    c->in = in;
    c->in_len += (size_t)n;
    c->in[c->in_len] = '\0';
    if (!request_complete(c))
        return;
    c->served = true;
    c->u->nrequests++;
    free(c->u->last);
    c->u->last = strdup(c->in);
    answer(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_upstream *u = w->data;
    int fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct up_conn *c;

    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->u = u;
    c->fd = fd;
    c->next = u->conns;
    u->conns = c;
    u->nopen++;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    c->io.data = c;
    ev_io_start(loop, &c->io);
}

int fake_upstream_new(struct ev_loop *loop, struct fake_upstream **out)
{
    struct fake_upstream *u = calloc(1, sizeof(*u));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sa);

    *out = NULL;
    if (!u)
        return -1;
    u->loop = loop;
    u->status = 200;
    u->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (u->lfd < 0 || bind(u->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(u->lfd, 16) != 0 || getsockname(u->lfd, (struct sockaddr *)&sa, &slen) != 0) {
        if (u->lfd >= 0)
            close(u->lfd);
        free(u);
        return -1;
    }
    u->port = ntohs(sa.sin_port);
    ev_io_init(&u->accept_io, accept_cb, u->lfd, EV_READ);
    u->accept_io.data = u;
    ev_io_start(loop, &u->accept_io);
    *out = u;
    return 0;
}

void fake_upstream_free(struct fake_upstream *u)
{
    if (!u)
        return;
    while (u->conns)
        conn_close(u->conns);
    ev_io_stop(u->loop, &u->accept_io);
    close(u->lfd);
    free(u->extra);
    free(u->body);
    free(u->last);
    free(u);
}

void fake_upstream_drop(struct fake_upstream *u)
{
    while (u->conns)
        conn_close(u->conns);
}

uint16_t fake_upstream_port(const struct fake_upstream *u)
{
    return u->port;
}

void fake_upstream_set_mode(struct fake_upstream *u, enum fake_up_mode mode)
{
    u->mode = mode;
}

void fake_upstream_set_answer(struct fake_upstream *u, int status, const char *extra_headers,
                              const char *body)
{
    free(u->extra);
    free(u->body);
    u->status = status;
    u->extra = extra_headers ? strdup(extra_headers) : NULL;
    u->body = body ? strdup(body) : NULL;
}

void fake_upstream_set_next_status(struct fake_upstream *u, int status)
{
    u->next_status = status;
}

size_t fake_upstream_requests(const struct fake_upstream *u)
{
    return u->nrequests;
}

const char *fake_upstream_last_request(const struct fake_upstream *u)
{
    return u->last ? u->last : "";
}

const char *fake_upstream_last_header(const struct fake_upstream *u, const char *name, char *buf,
                                      size_t buf_len)
{
    size_t nlen = strlen(name);
    const char *p = u->last ? strstr(u->last, "\r\n") : NULL;

    while (p && strncmp(p, "\r\n\r\n", 4) != 0) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            const char *e = strstr(v, "\r\n");
            size_t n;
            while (*v == ' ')
                v++;
            n = e ? (size_t)(e - v) : strlen(v);
            if (n >= buf_len)
                n = buf_len - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

size_t fake_upstream_open(const struct fake_upstream *u)
{
    return u->nopen;
}

size_t fake_upstream_closed_by_client(const struct fake_upstream *u)
{
    return u->nclosed_by_client;
}
