/*
 * mgmt.c - the management listener (see mgmt.h): one thread, one libev
 * loop, a few short HTTP/1.1 exchanges at a time.  It owns its socket and
 * connections; it only reads the gateway's metrics (lock-free renders) and
 * its ready/draining flags (atomics), so it shares no lock with the
 * workers and a slow scraper can never hold up a citizen's request.
 */
#include "ops/mgmt.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "core/metrics.h"
#include "core/problem.h"
#include "http/h1request.h"
#include "ops/mgmthost.h"
#include "state/store.h"

#include "base/compat.h"

struct mconn {
    struct dz_mgmt *m;
    int fd;
    ev_io io;
    ev_timer timer;
    char in[DZ_MGMT_HEAD_MAX + 1]; /* one byte more: tells "too big" from "full" */
    size_t in_len;
    struct dz_buf out;
    size_t out_off;
    bool lingering; /* answered: reading to EOF before closing */
    struct mconn *prev;
    struct mconn *next;
};

struct dz_mgmt {
    struct dz_gw *gw;
    int lfd;
    struct ev_loop *loop;
    ev_io accept_io;
    ev_async stop;
    pthread_t thread;
    bool started;
    unsigned nconns;
    struct mconn *conns;
    char **hosts; /* management.hosts, copied at start */
    size_t n_hosts;
};

static void conn_close(struct mconn *k)
{
    struct dz_mgmt *m = k->m;

    ev_io_stop(m->loop, &k->io);
    ev_timer_stop(m->loop, &k->timer);
    close(k->fd);
    dz_buf_cleanup(&k->out);
    if (k->prev)
        k->prev->next = k->next;
    else
        m->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    m->nconns--;
    free(k);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 421:
        return "Misdirected Request";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Queue the whole answer in k->out; the connection closes after it. */
static void answer(struct mconn *k, int status, const char *type, const char *body, size_t len,
                   const char *extra)
{
    dz_buf_cleanup(&k->out);
    dz_buf_init(&k->out, len + 1024);
    if (dz_buf_appendf(&k->out,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                       "Connection: close\r\n%s\r\n",
                       status, reason(status), type, len, extra ? extra : "") != 0 ||
        dz_buf_append(&k->out, body, len) != 0)
        dz_buf_cleanup(&k->out); /* nothing to send: the connection just closes */
}

static void answer_json(struct mconn *k, int status, json_t *j, const char *type, const char *extra)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text)
        answer(k, status, type, text, strlen(text), extra);
    free(text);
    json_decref(j);
}

static void answer_problem(struct mconn *k, const char *code, const char *detail, const char *extra)
{
    answer_json(k, dz_problem_status(code), dz_problem_new(code, detail),
                "application/problem+json", extra);
}

static void serve_metrics(struct mconn *k)
{
    struct dz_buf b;

    dz_buf_init(&b, DZ_MGMT_METRICS_MAX);
    if (dz_metrics_render(k->m->gw->metrics, &b) != 0) {
        dz_buf_cleanup(&b);
        answer_problem(k, "internal_error", "metrics", NULL);
        return;
    }
    answer(k, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    dz_buf_cleanup(&b);
}

static void serve(struct mconn *k, const struct dz_h1_request *r)
{
    struct dz_gw *gw = k->m->gw;
    size_t plen = strcspn(r->target, "? ");
    static const struct {
        const char *path;
        int which;
    } paths[] = {{"/metrics", 0}, {"/healthz", 1}, {"/readyz", 2}};
    int which = -1;

    if (plen > r->target_len)
        plen = r->target_len;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (strlen(paths[i].path) == plen && memcmp(paths[i].path, r->target, plen) == 0)
            which = paths[i].which;
    }
    if (which < 0) {
        answer_problem(k, "not_found", NULL, NULL);
        return;
    }
    if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0) {
        answer_problem(k, "method_not_allowed", NULL, "Allow: GET\r\n");
        return;
    }
    if (which == 0) {
        serve_metrics(k);
    } else if (which == 1) {
        answer_json(k, 200, json_pack("{s:s}", "status", "ok"), "application/json", NULL);
    } else if (atomic_load(&gw->draining)) {
        /* As on the public listeners (api_ops.c): the stop is said at once. */
        answer_problem(k, "draining", "stopping: send new requests elsewhere", NULL);
    } else if (atomic_load(&gw->ready)) {
        struct dz_store_health h;

        dz_store_health(gw->store, &h);
        if (h.up)
            answer_json(k, 200, json_pack("{s:s}", "status", "ready"), "application/json", NULL);
        else
            answer_problem(k, "state_unavailable", h.why, "Retry-After: 5\r\n");
    } else {
        answer_problem(k, "service_unavailable", "not ready", NULL);
    }
}

static void write_some(struct mconn *k)
{
    while (k->out_off < k->out.len) {
        ssize_t n = send(k->fd, k->out.data + k->out_off, k->out.len - k->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the write watcher calls again */
        if (n <= 0)
            break;
        k->out_off += (size_t)n;
    }
    if (k->out_off < k->out.len) {
        conn_close(k);
        return;
    }
    /* Closing with unread request bytes would reset the connection and
     * could destroy the answer before the client read it: half-close, then
     * read to the client's EOF (the timer still bounds it). */
    shutdown(k->fd, SHUT_WR);
    k->lingering = true;
    ev_io_stop(k->m->loop, &k->io);
    ev_io_set(&k->io, k->fd, EV_READ);
    ev_io_start(k->m->loop, &k->io);
}

static void linger_read(struct mconn *k)
{
    char sink[1024];
    ssize_t n = recv(k->fd, sink, sizeof(sink), 0);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(k);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mconn *k = w->data;
    struct dz_h1_request r;
    size_t head_len;
    enum dz_h1_rc rc;
    ssize_t n;

    if (k->lingering) {
        linger_read(k);
        return;
    }
    if (k->out.data) {
        write_some(k);
        return;
    }
    n = recv(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(k);
        return;
    }
    k->in_len += (size_t)n;
    rc = dz_h1_parse_request(k->in, k->in_len, DZ_MGMT_HEAD_MAX, &r, &head_len);
    if (rc == DZ_H1_MORE)
        return;
    if (rc == DZ_H1_OK && !dz_mgmt_host_allowed(r.host, r.host_len, k->m->hosts, k->m->n_hosts))
        /* A browser led here by a rebound name (evil.example resolving to
         * this address) sends that name: nothing is read for it. */
        answer_problem(k, "misdirected_request",
                       "the management listener answers an IP address, localhost or a name in "
                       "management.hosts",
                       NULL);
    else if (rc == DZ_H1_OK)
        serve(k, &r);
    else if (rc == DZ_H1_TOOBIG)
        answer_problem(k, "request_header_too_large", NULL, NULL);
    else
        answer_problem(k, "invalid_request", "malformed HTTP/1.1 request", NULL);
    if (!k->out.data) {
        conn_close(k);
        return;
    }
    ev_io_stop(loop, &k->io);
    ev_io_set(&k->io, k->fd, EV_WRITE);
    ev_io_start(loop, &k->io);
    write_some(k);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_close(w->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct dz_mgmt *m = w->data;

    for (;;) {
        struct mconn *k;
        int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error the next readiness retries */
        if (m->nconns >= DZ_MGMT_CONNS_MAX || !(k = calloc(1, sizeof(*k)))) {
            close(fd); /* full: a scraper retries, a health check counts a failure */
            continue;
        }
        k->m = m;
        k->fd = fd;
        dz_buf_init(&k->out, 0);
        k->out.data = NULL;
        ev_io_init(&k->io, io_cb, fd, EV_READ);
        k->io.data = k;
        ev_timer_init(&k->timer, timeout_cb, DZ_MGMT_TIMEOUT_MS / 1000.0, 0);
        k->timer.data = k;
        k->next = m->conns;
        if (m->conns)
            m->conns->prev = k;
        m->conns = k;
        m->nconns++;
        ev_io_start(loop, &k->io);
        ev_timer_start(loop, &k->timer);
    }
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void *mgmt_main(void *arg)
{
    struct dz_mgmt *m = arg;

    ev_run(m->loop, 0);
    while (m->conns)
        conn_close(m->conns);
    return NULL;
}

int dz_mgmt_start(const struct dz_config_management *conf, struct dz_gw *gw, struct dz_mgmt **out)
{
    struct dz_mgmt *m = NULL;
    int one = 1;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->gw = gw;
    m->lfd = -1;
    if (conf->n_hosts) {
        m->hosts = calloc(conf->n_hosts, sizeof(char *));
        if (!m->hosts)
            goto out;
        m->n_hosts = conf->n_hosts;
        for (size_t i = 0; i < conf->n_hosts; i++) {
            if (!(m->hosts[i] = strdup(conf->hosts[i])))
                goto out;
        }
    }
    m->lfd = socket(conf->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    rc = DZ_ERR_IO;
    if (m->lfd < 0 || setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(m->lfd, (const struct sockaddr *)&conf->sa, conf->sa_len) != 0 ||
        listen(m->lfd, 64) != 0) {
        dz_log(DZ_LOG_ERROR, "management_listen_failed", "management.listen %s: %s", conf->listen,
               strerror(errno));
        goto out;
    }
    rc = DZ_ERR_NOMEM;
    m->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (!m->loop)
        goto out;
    ev_io_init(&m->accept_io, accept_cb, m->lfd, EV_READ);
    m->accept_io.data = m;
    ev_io_start(m->loop, &m->accept_io);
    ev_async_init(&m->stop, stop_cb);
    ev_async_start(m->loop, &m->stop);
    if (pthread_create(&m->thread, NULL, mgmt_main, m) != 0)
        goto out;
    m->started = true;
    dz_log(DZ_LOG_INFO, "management_listening", "management listener on %s (HTTP/1.1)",
           conf->listen);
    *out = m;
    m = NULL;
    rc = 0;
out:
    dz_mgmt_stop(m);
    return rc;
}

void dz_mgmt_stop(struct dz_mgmt *m)
{
    if (!m)
        return;
    if (m->started) {
        ev_async_send(m->loop, &m->stop);
        pthread_join(m->thread, NULL);
    }
    if (m->loop)
        ev_loop_destroy(m->loop);
    if (m->lfd >= 0)
        close(m->lfd);
    for (size_t i = 0; i < m->n_hosts; i++)
        free(m->hosts[i]);
    free(m->hosts);
    free(m);
}
