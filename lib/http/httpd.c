/*
 * httpd.c - the server side of the HTTP/2 engine: listeners (one
 * SO_REUSEPORT socket per worker), worker threads with their own libev
 * loops, accepting, the cross-thread post queue, and the graceful drain.
 * Connections and requests live in h2conn.c and h2req.c.  Only the post
 * queue, the hold counter, the connection counts (atomics) and a
 * listener's TLS context are shared between threads; nothing on the
 * request path takes a lock.  It never blocks a loop: accept is
 * non-blocking and TLS contexts are built elsewhere.
 */
#include "http/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/looptag.h"
#include "base/secret.h"
#include "http/httpd_int.h"

#include "base/compat.h"

static ev_tstamp secs(uint32_t ms)
{
    return (ev_tstamp)ms / 1000.0;
}

void dz_httpd_limits_default(struct dz_httpd_limits *l)
{
    l->max_header_bytes = 16384;
    l->max_header_count = 100;
    l->max_body_bytes = 1024 * 1024;
    l->max_concurrent_streams = 100;
    l->max_connections = 4096;
    l->max_connections_per_address = 1024;
    l->max_buffered_per_connection = (size_t)8 << 20;
    l->max_buffered_total = (size_t)256 << 20;
    l->handshake_timeout_ms = 10000;
    l->idle_timeout_ms = 60000;
    l->request_timeout_ms = 30000;
    l->response_timeout_ms = 300000;
}

/* ---------- workers: posts and holds ---------- */

static int post_queue(struct dz_worker *w, struct dz_post *node, void (*fn)(void *arg), void *arg,
                      bool is_heap)
{
    node->next = NULL;
    node->fn = fn;
    node->arg = arg;
    node->is_heap = is_heap;
    pthread_mutex_lock(&w->post_lock);
    if (w->posts_closed) {
        pthread_mutex_unlock(&w->post_lock);
        return DZ_ERR_STATE;
    }
    if (w->post_tail)
        w->post_tail->next = node;
    else
        w->post_head = node;
    w->post_tail = node;
    /* Under the lock: the loop cannot be destroyed between the check and
     * the wake-up (it is destroyed only after posts_closed is set). */
    ev_async_send(w->loop, &w->async);
    pthread_mutex_unlock(&w->post_lock);
    return 0;
}

int dz_worker_post_node(struct dz_worker *w, struct dz_post *node, void (*fn)(void *arg), void *arg)
{
    if (!w || !node || !fn)
        return DZ_ERR_INVAL;
    return post_queue(w, node, fn, arg, false);
}

int dz_worker_post(struct dz_worker *w, void (*fn)(void *arg), void *arg)
{
    struct dz_post *p;
    int rc;

    if (!w || !fn)
        return DZ_ERR_INVAL;
    p = malloc(sizeof(*p));
    if (!p)
        return DZ_ERR_NOMEM;
    rc = post_queue(w, p, fn, arg, true);
    if (rc != 0)
        free(p);
    return rc;
}

/* A node that is not the engine's belongs to its caller's object, which fn
 * may free: whether to free it is read before the call. */
static void run_post(struct dz_post *p)
{
    bool is_heap = p->is_heap;

    p->fn(p->arg);
    if (is_heap)
        free(p);
}

static void run_posts(struct dz_worker *w)
{
    struct dz_post *p;

    pthread_mutex_lock(&w->post_lock);
    p = w->post_head;
    w->post_head = w->post_tail = NULL;
    pthread_mutex_unlock(&w->post_lock);
    while (p) {
        struct dz_post *next = p->next;
        run_post(p);
        p = next;
    }
}

void dz_worker_hold(struct dz_worker *w)
{
    atomic_fetch_add(&w->holds, 1);
}

void dz_worker_release(struct dz_worker *w)
{
    atomic_fetch_sub(&w->holds, 1);
}

struct ev_loop *dz_worker_loop(struct dz_worker *w)
{
    return w->loop;
}

unsigned dz_worker_index(const struct dz_worker *w)
{
    return w->index;
}

void *dz_worker_data(struct dz_worker *w)
{
    return w->wdata;
}

struct dz_worker *dz_httpd_worker_at(struct dz_httpd *h, unsigned i)
{
    return i < h->nworkers ? &h->workers[i] : NULL;
}

/* ---------- accepting ---------- */

static void accept_start(struct dz_worker *w)
{
    for (size_t i = 0; i < w->h->nlisteners; i++)
        if (w->lfds[i] >= 0)
            ev_io_start(w->loop, &w->accept_w[i]);
}

static void accept_stop(struct dz_worker *w)
{
    for (size_t i = 0; i < w->h->nlisteners; i++)
        ev_io_stop(w->loop, &w->accept_w[i]);
}

static void accept_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dz_worker *w = t->data;

    if (!w->drain_phase)
        accept_start(w);
}

static void peer_string(const struct sockaddr_storage *ss, char *out, size_t len)
{
    const void *a = NULL;

    if (ss->ss_family == AF_INET)
        a = &((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!a || !inet_ntop(ss->ss_family, a, out, (socklen_t)len))
        snprintf(out, len, "?");
}

/* The slot counting a client address: IPv4 (also IPv4-mapped IPv6) by its
 * 32 bits, IPv6 by its /64 (one host holds a whole /64), through a hash
 * keyed per process (see DZ_H2_ADDR_SLOTS). */
static uint32_t addr_slot(const struct dz_httpd *h, const struct sockaddr_storage *ss)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint64_t x = 0;

    if (ss->ss_family == AF_INET) {
        x = ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
    } else if (ss->ss_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;

        if (memcmp(a, mapped, sizeof(mapped)) == 0)
            memcpy(&x, a + 12, 4);
        else
            memcpy(&x, a, 8);
        x ^= (uint64_t)ss->ss_family << 56; /* keep the two families apart */
    }
    /* Two rounds of a keyed multiply-xorshift: cheap, and without the key
     * a client cannot line its addresses up with someone else's slot. */
    x ^= h->addr_key[0];
    x *= 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    x ^= h->addr_key[1];
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (uint32_t)(x % DZ_H2_ADDR_SLOTS);
}

/* At the process cap, make room by closing this worker's oldest connection
 * that does not serve anyone yet: one still in its TLS handshake first,
 * else one idle (no stream).  A flood of connections that never start TLS
 * then costs its own members their place, not the clients being served. */
static bool shed_one(struct dz_worker *w)
{
    struct dz_h2conn *idle = NULL;
    unsigned looked = 0;

    /* From the oldest, and only so far: at the cap this runs on every
     * accept, and a flood's members are the oldest connections that still
     * handshake, so the first few usually hold one. */
    for (struct dz_h2conn *c = w->conns_tail; c && looked < DZ_H2_SHED_SCAN; c = c->prev) {
        if (!c->is_counted || c->is_close_wanted)
            continue;
        looked++;
        if (c->is_handshaking) {
            dz_h2conn_close(c);
            return true;
        }
        if (!idle && c->nstreams == 0)
            idle = c;
    }
    if (!idle)
        return false;
    dz_h2conn_close(idle);
    return true;
}

/* Another worker's accept asked this one for room (shed_elsewhere). */
static void shed_asked_cb(void *arg)
{
    struct dz_worker *w = arg;
    struct dz_httpd *h = w->h;

    atomic_fetch_sub_explicit(&w->shed_asked, 1, memory_order_relaxed);
    if (shed_one(w)) {
        atomic_fetch_add_explicit(&h->shed, 1, memory_order_relaxed);
        return;
    }
    /* Its quiet connections started streams or went since the ask: the
     * newcomer stays, the process is one over the cap until any connection
     * closes (the count is the connections themselves, so nothing leaks),
     * and accept_one never lets that grow past DZ_H2_SHED_LENT. */
    atomic_fetch_add_explicit(&h->shed_missed, 1, memory_order_relaxed);
}

/* At the cap, with nothing of its own to shed: ask the next worker that
 * published more quiet connections than it was already asked for.  Each
 * worker has its own listener and the kernel picks which one a client
 * reaches, so a flood held by one worker must not lock out the clients
 * that land on another.  true: asked (the newcomer may come in). */
static bool shed_elsewhere(struct dz_worker *w)
{
    struct dz_httpd *h = w->h;

    for (unsigned k = 1; k < h->nworkers; k++) {
        struct dz_worker *o = &h->workers[(w->index + k) % h->nworkers];
        uint_fast32_t quiet = atomic_load_explicit(&o->quiet_pub, memory_order_relaxed);

        if (quiet == 0)
            continue;
        /* Reserve one of its quiet connections: two workers at the cap at
         * once must not both count on the same one. */
        if (atomic_fetch_add_explicit(&o->shed_asked, 1, memory_order_relaxed) < quiet &&
            dz_worker_post(o, shed_asked_cb, o) == 0)
            return true;
        atomic_fetch_sub_explicit(&o->shed_asked, 1, memory_order_relaxed);
    }
    return false;
}

/* Room for one more at the process cap (n: the count before this one).
 * The ask stands once posted: if the newcomer then fails to be set up (no
 * memory for its TLS object or its connection), the other worker still
 * closes a quiet connection of its own, which the cap would have let it
 * keep; rare, and on the side of fewer connections.
 * This worker's own quiet connection first: closed at once, the count
 * stays at the cap.  Else another worker's, shed when its loop runs the
 * ask: meanwhile the process is over the cap, by at most DZ_H2_SHED_LENT. */
static bool make_room(struct dz_worker *w, uint_fast32_t n)
{
    struct dz_httpd *h = w->h;

    if (shed_one(w)) {
        atomic_fetch_add_explicit(&h->shed, 1, memory_order_relaxed);
        return true;
    }
    return n - h->limits.max_connections < DZ_H2_SHED_LENT && shed_elsewhere(w);
}

static void accept_one(struct dz_worker *w, const struct dz_listener *l, int fd,
                       const struct sockaddr_storage *ss)
{
    struct dz_httpd *h = w->h;
    const struct dz_httpd_limits *lim = &h->limits;
    struct dz_h2conn *c = NULL;
    char ip[INET6_ADDRSTRLEN];
    SSL *ssl = NULL;
    int one = 1;
    uint32_t slot = addr_slot(h, ss);
    uint_fast32_t n;
    bool pressed;

    if (w->drain_phase) {
        close(fd);
        return;
    }
    /* Per address first: one address cannot take the process's slots. */
    n = atomic_fetch_add_explicit(&h->addr_conns[slot], 1, memory_order_relaxed);
    if (lim->max_connections_per_address && n >= lim->max_connections_per_address) {
        atomic_fetch_sub_explicit(&h->addr_conns[slot], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->refused_addr, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    n = atomic_fetch_add_explicit(&h->nconns, 1, memory_order_relaxed);
    if (n >= lim->max_connections && !make_room(w, n)) {
        atomic_fetch_sub_explicit(&h->nconns, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&h->addr_conns[slot], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->refused_full, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    pressed = (uint64_t)n * 4 >= (uint64_t)lim->max_connections * 3;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer_string(ss, ip, sizeof(ip));
    if (l->is_tls) {
        pthread_mutex_lock((pthread_mutex_t *)&l->tls_lock);
        ssl = SSL_new(l->tls); /* takes its own reference on the context */
        pthread_mutex_unlock((pthread_mutex_t *)&l->tls_lock);
        if (!ssl || SSL_set_fd(ssl, fd) != 1) {
            dz_log_openssl("tls_accept");
            SSL_free(ssl);
            ssl = NULL;
            close(fd);
            goto unreserve;
        }
        SSL_set_accept_state(ssl);
    }
    if (dz_h2conn_new(w, l, fd, ssl, ip, &c) != 0) {
        dz_log(DZ_LOG_WARN, "httpd_accept", "out of memory for a connection from %s", ip);
        goto unreserve;
    }
    c->is_counted = true;
    c->addr_slot = slot;
    dz_worker_quiet_move(w, 1);
    /* Near the cap, a connection must prove itself quickly. */
    if (pressed && c->is_handshaking && lim->handshake_timeout_ms > DZ_H2_PRESSED_HANDSHAKE_MS) {
        ev_timer_stop(w->loop, &c->timer);
        ev_timer_set(&c->timer, secs(DZ_H2_PRESSED_HANDSHAKE_MS), 0.);
        ev_timer_start(w->loop, &c->timer);
    }
    return;
unreserve:
    atomic_fetch_sub_explicit(&h->nconns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->addr_conns[slot], 1, memory_order_relaxed);
}

uint64_t dz_httpd_refused_per_address(const struct dz_httpd *h)
{
    return atomic_load_explicit(&((struct dz_httpd *)h)->refused_addr, memory_order_relaxed);
}

uint64_t dz_httpd_closed_stalled(const struct dz_httpd *h)
{
    return atomic_load_explicit(&((struct dz_httpd *)h)->closed_stalled, memory_order_relaxed);
}

uint64_t dz_httpd_refused_full(const struct dz_httpd *h)
{
    return atomic_load_explicit(&((struct dz_httpd *)h)->refused_full, memory_order_relaxed);
}

uint64_t dz_httpd_shed(const struct dz_httpd *h)
{
    return atomic_load_explicit(&((struct dz_httpd *)h)->shed, memory_order_relaxed);
}

uint64_t dz_httpd_shed_missed(const struct dz_httpd *h)
{
    return atomic_load_explicit(&((struct dz_httpd *)h)->shed_missed, memory_order_relaxed);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct dz_worker *w = io->data;
    size_t li = (size_t)(io - w->accept_w);
    const struct dz_listener *l = &w->h->listeners[li];

    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* EMFILE and friends: stop for a moment instead of spinning. */
            dz_log(DZ_LOG_WARN, "httpd_accept", "accept on %s port %u: %s", l->host, l->port,
                   strerror(errno));
            accept_stop(w);
            ev_timer_set(&w->accept_pause, 0.1, 0.);
            ev_timer_start(loop, &w->accept_pause);
            return;
        }
        accept_one(w, l, fd, &ss);
    }
}

/* ---------- drain ---------- */

static void close_listeners(struct dz_worker *w)
{
    accept_stop(w);
    ev_timer_stop(w->loop, &w->accept_pause);
    for (size_t i = 0; i < w->h->nlisteners; i++) {
        if (w->lfds[i] >= 0)
            close(w->lfds[i]);
        w->lfds[i] = -1;
    }
}

static void drain_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dz_worker *w = t->data;

    if (w->drain_phase == 1) {
        /* Deadline: whatever is still open is cut; on_close runs for each
         * request.  Then a short grace for references the app still holds
         * (pool work in flight answering into closed requests). */
        w->drain_phase = 2;
        /* Marked before the close so that on_close can tell a request cut
         * by the deadline from one its client abandoned. */
        for (struct dz_h2conn *c = w->conns; c; c = c->next)
            for (struct dz_req *r = c->streams; r; r = r->next)
                r->is_drain_cut = true;
        if (w->conns)
            dz_log(DZ_LOG_WARN, "httpd_drain", "worker %u: closing %u connection(s) at deadline",
                   w->index, w->nconns);
        while (w->conns)
            dz_h2conn_close(w->conns);
        ev_timer_set(t, secs(DZ_H2_DRAIN_GRACE_MS), 0.);
        ev_timer_start(loop, t);
        return;
    }
    dz_log(DZ_LOG_WARN, "httpd_drain",
           "worker %u: giving up on %llu request(s) and %u hold(s) still referenced", w->index,
           (unsigned long long)w->live_reqs, (unsigned)atomic_load(&w->holds));
    ev_break(loop, EVBREAK_ALL);
}

static void begin_drain(struct dz_worker *w)
{
    struct dz_h2conn *c;
    struct dz_h2conn *next;

    if (w->drain_phase)
        return;
    w->drain_phase = 1;
    close_listeners(w);
    for (c = w->conns; c; c = next) {
        next = c->next;
        dz_h2conn_goaway(c);
    }
    ev_timer_init(&w->drain_timer, drain_timer_cb, secs(w->drain_ms), 0.);
    w->drain_timer.data = w;
    ev_timer_start(w->loop, &w->drain_timer);
}

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct dz_worker *w = a->data;
    bool drain;

    run_posts(w);
    pthread_mutex_lock(&w->post_lock);
    drain = w->drain_ms != UINT32_MAX;
    pthread_mutex_unlock(&w->post_lock);
    if (drain)
        begin_drain(w);
}

/* Does nothing: being active keeps the loop from sleeping for one turn
 * (resume_read, h2conn.c), so the prepare runs again first. */
static void again_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    ev_idle_stop(loop, i);
}

/* Before the loop sleeps: one batch of writes per connection, and the end of
 * a drain once nothing is left. */
static void prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct dz_worker *w = p->data;

    dz_worker_flush_dirty(w);
    if (w->drain_phase && !w->conns && w->live_reqs == 0 && atomic_load(&w->holds) == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *arg)
{
    struct dz_worker *w = arg;
    const struct dz_httpd_handlers *hd = &w->h->handlers;

    dz_thread_set_loop(true);
    if (hd->worker_init)
        w->wdata = hd->worker_init(w, w->h->app);
    accept_start(w);
    run_posts(w);
    ev_run(w->loop, 0);

    /* Stopped: no connection may outlive the loop. */
    close_listeners(w);
    while (w->conns)
        dz_h2conn_close(w->conns);
    dz_worker_flush_dirty(w);
    ev_timer_stop(w->loop, &w->drain_timer);
    pthread_mutex_lock(&w->post_lock);
    w->posts_closed = true;
    pthread_mutex_unlock(&w->post_lock);
    run_posts(w); /* what arrived before the door closed still runs once */
    if (w->live_reqs)
        dz_log(DZ_LOG_WARN, "httpd_stop", "worker %u: %llu request(s) still referenced (leaked)",
               w->index, (unsigned long long)w->live_reqs);
    if (hd->worker_fini)
        hd->worker_fini(w, w->wdata);
    return NULL;
}

/* ---------- server ---------- */

/* probe: bind once WITHOUT SO_REUSEPORT and close, so that a port another
 * process already listens on is an error instead of silently sharing it
 * (SO_REUSEPORT lets any process of the same user join a port). */
static int bind_listener(struct dz_listener *l, bool probe, int *out_fd)
{
    union {
        struct sockaddr_storage ss;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } a;
    socklen_t alen;
    int fd = -1;
    int one = 1;
    int rc = DZ_ERR_IO;

    *out_fd = -1;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, l->host, &a.in4.sin_addr) == 1) {
        a.in4.sin_family = AF_INET;
        a.in4.sin_port = htons(l->port);
        alen = sizeof(a.in4);
    } else if (inet_pton(AF_INET6, l->host, &a.in6.sin6_addr) == 1) {
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_port = htons(l->port);
        alen = sizeof(a.in6);
    } else {
        dz_log(DZ_LOG_ERROR, "httpd_bind", "not a numeric address: %s", l->host);
        return DZ_ERR_INVAL;
    }
    fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe && l->port != 0) {
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            (a.ss.ss_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
            bind(fd, (struct sockaddr *)&a, alen) != 0) {
            dz_log(DZ_LOG_ERROR, "httpd_bind", "cannot listen on %s port %u: %s", l->host,
                   (unsigned)l->port, strerror(errno));
            goto out;
        }
        close(fd);
        fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (a.ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&a, alen) != 0 || listen(fd, 1024) != 0) {
        dz_log(DZ_LOG_ERROR, "httpd_bind", "cannot listen on %s port %u: %s", l->host,
               (unsigned)l->port, strerror(errno));
        goto out;
    }
    if (l->port == 0) {
        alen = sizeof(a);
        if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
            goto out;
        l->port = ntohs(a.ss.ss_family == AF_INET ? a.in4.sin_port : a.in6.sin6_port);
    }
    *out_fd = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static bool limits_valid(const struct dz_httpd_limits *l)
{
    return l->max_header_bytes >= 256 && l->max_header_count >= 4 &&
           l->max_concurrent_streams >= 1 && l->max_connections >= 1 &&
           l->handshake_timeout_ms >= 1 && l->idle_timeout_ms >= 1 && l->request_timeout_ms >= 1;
}

static int worker_setup(struct dz_httpd *h, struct dz_worker *w, unsigned idx)
{
    w->h = h;
    w->index = idx;
    w->drain_ms = UINT32_MAX;
    pthread_mutex_init(&w->post_lock, NULL);
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    w->rbuf = malloc(DZ_H2_READ_BUF);
    w->lfds = malloc((h->nlisteners ? h->nlisteners : 1) * sizeof(*w->lfds));
    w->accept_w = calloc(h->nlisteners ? h->nlisteners : 1, sizeof(*w->accept_w));
    if (!w->loop || !w->rbuf || !w->lfds || !w->accept_w)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < h->nlisteners; i++)
        w->lfds[i] = -1;
    /* Started here, before any thread runs the loop, so that a post made
     * before dz_httpd_start is not lost (ev_async_start clears "sent"). */
    ev_async_init(&w->async, async_cb);
    w->async.data = w;
    ev_async_start(w->loop, &w->async);
    ev_prepare_init(&w->prepare, prepare_cb);
    w->prepare.data = w;
    ev_prepare_start(w->loop, &w->prepare);
    ev_idle_init(&w->again, again_cb);
    ev_timer_init(&w->accept_pause, accept_pause_cb, 0.1, 0.);
    w->accept_pause.data = w;
    ev_timer_init(&w->drain_timer, drain_timer_cb, 1., 0.);
    w->drain_timer.data = w;
    return 0;
}

int dz_httpd_new(const struct dz_httpd_conf *conf, struct dz_httpd **out)
{
    struct dz_httpd *h = NULL;
    int rc = DZ_ERR_INVAL;

    if (out)
        *out = NULL;
    if (!conf || !out || conf->workers < 1 || conf->workers > 1024 ||
        (conf->nlisteners && !conf->listeners) || !conf->handlers.on_request ||
        !limits_valid(&conf->limits))
        return DZ_ERR_INVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return DZ_ERR_NOMEM;
    h->limits = conf->limits;
    if (dz_random(h->addr_key, sizeof(h->addr_key)) != 0) {
        free(h);
        return DZ_ERR_CRYPTO;
    }
    h->handlers = conf->handlers;
    h->app = conf->app;
    h->nlisteners = conf->nlisteners;
    rc = DZ_ERR_NOMEM;
    h->listeners = calloc(conf->nlisteners ? conf->nlisteners : 1, sizeof(*h->listeners));
    h->workers = calloc(conf->workers, sizeof(*h->workers));
    if (!h->listeners || !h->workers)
        goto out;
    for (size_t i = 0; i < conf->nlisteners; i++)
        pthread_mutex_init(&h->listeners[i].tls_lock, NULL);
    for (size_t i = 0; i < conf->nlisteners; i++) {
        struct dz_listener *l = &h->listeners[i];
        const struct dz_listener_conf *lc = &conf->listeners[i];
        if (!lc->host || strlen(lc->host) >= sizeof(l->host)) {
            rc = DZ_ERR_INVAL;
            goto out;
        }
        memcpy(l->host, lc->host, strlen(lc->host) + 1);
        l->port = lc->port;
        l->tag = lc->tag;
        if (lc->tls) {
            SSL_CTX_up_ref(lc->tls);
            l->tls = lc->tls;
            l->is_tls = true;
        }
    }
    h->nworkers = conf->workers;
    for (unsigned i = 0; i < h->nworkers; i++) {
        rc = worker_setup(h, &h->workers[i], i);
        if (rc != 0)
            goto out;
    }
    /* One socket per worker per listener; the first fixes an ephemeral
     * port, the others join it through SO_REUSEPORT. */
    for (size_t li = 0; li < h->nlisteners; li++) {
        for (unsigned i = 0; i < h->nworkers; i++) {
            struct dz_worker *w = &h->workers[i];
            rc = bind_listener(&h->listeners[li], i == 0, &w->lfds[li]);
            if (rc != 0)
                goto out;
            ev_io_init(&w->accept_w[li], accept_cb, w->lfds[li], EV_READ);
            w->accept_w[li].data = w;
        }
    }
    rc = dz_h2_callbacks_new(&h->h2cb);
    if (rc == 0)
        rc = dz_h2_option_new(&h->limits, &h->h2opt);
    if (rc != 0)
        goto out;
    *out = h;
    h = NULL;
out:
    dz_httpd_free(h);
    return rc;
}

uint16_t dz_httpd_port(const struct dz_httpd *h, size_t listener)
{
    return h && listener < h->nlisteners ? h->listeners[listener].port : 0;
}

int dz_httpd_start(struct dz_httpd *h)
{
    sigset_t all;
    sigset_t old;
    int rc = 0;

    if (!h)
        return DZ_ERR_INVAL;
    if (h->is_started || h->is_stopped)
        return DZ_ERR_STATE;
    h->is_started = true;
    /* Workers take no signals (SIGPIPE from SSL_write stays pending on the
     * thread instead of killing the process; the main thread handles the
     * rest). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < h->nworkers; i++) {
        struct dz_worker *w = &h->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            dz_log(DZ_LOG_ERROR, "httpd_start", "cannot start worker thread %u", i);
            rc = DZ_ERR_IO;
            break;
        }
        w->has_thread = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        dz_httpd_drain(h, 0);
    return rc;
}

int dz_httpd_set_tls(struct dz_httpd *h, size_t listener, SSL_CTX *ctx)
{
    struct dz_listener *l;
    SSL_CTX *old;

    if (!h || !ctx || listener >= h->nlisteners || !h->listeners[listener].is_tls)
        return DZ_ERR_INVAL;
    l = &h->listeners[listener];
    SSL_CTX_up_ref(ctx);
    pthread_mutex_lock(&l->tls_lock);
    old = l->tls;
    l->tls = ctx;
    pthread_mutex_unlock(&l->tls_lock);
    SSL_CTX_free(old); /* open connections keep theirs through SSL_new's ref */
    return 0;
}

void dz_httpd_drain(struct dz_httpd *h, uint32_t timeout_ms)
{
    if (!h || h->is_stopped)
        return;
    h->is_stopped = true;
    if (timeout_ms == UINT32_MAX)
        timeout_ms--;
    for (unsigned i = 0; i < h->nworkers; i++) {
        struct dz_worker *w = &h->workers[i];
        if (!w->has_thread)
            continue;
        pthread_mutex_lock(&w->post_lock);
        w->drain_ms = timeout_ms;
        if (!w->posts_closed)
            ev_async_send(w->loop, &w->async);
        pthread_mutex_unlock(&w->post_lock);
    }
    for (unsigned i = 0; i < h->nworkers; i++) {
        struct dz_worker *w = &h->workers[i];
        if (w->has_thread) {
            pthread_join(w->thread, NULL);
            w->has_thread = false;
        }
    }
}

static void worker_cleanup(struct dz_worker *w, bool keep_lock)
{
    struct dz_post *p;

    if (!w->h)
        return;
    if (w->loop) {
        if (w->lfds && w->accept_w)
            close_listeners(w);
        while (w->conns) /* never started: connections made by hand (tests) */
            dz_h2conn_close(w->conns);
        dz_worker_flush_dirty(w);
        ev_loop_destroy(w->loop);
    }
    p = w->post_head;
    while (p) { /* posts that never ran (never started) */
        struct dz_post *next = p->next;
        if (p->is_heap)
            free(p);
        p = next;
    }
    w->post_head = w->post_tail = NULL;
    dz_h2req_freelist_clear(w);
    if (!keep_lock)
        pthread_mutex_destroy(&w->post_lock);
    free(w->rbuf);
    free(w->lfds);
    free(w->accept_w);
}

/* Workers kept alive for late pool jobs stay reachable from here (a
 * deliberate, bounded leak on an abnormal stop, not an accident). */
static struct kept_workers {
    struct kept_workers *next;
    struct dz_worker *workers;
} * kept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_workers(struct dz_worker *workers)
{
    struct kept_workers *k = malloc(sizeof(*k));

    if (!k)
        return;
    k->workers = workers;
    pthread_mutex_lock(&kept_lock);
    k->next = kept;
    kept = k;
    pthread_mutex_unlock(&kept_lock);
}

void dz_httpd_free(struct dz_httpd *h)
{
    unsigned held = 0;

    if (!h)
        return;
    if (h->is_started)
        dz_httpd_drain(h, 0);
    for (unsigned i = 0; h->workers && i < h->nworkers; i++) {
        struct dz_worker *w = &h->workers[i];
        if (!w->h)
            continue; /* never set up */
        held += atomic_load(&w->holds);
        pthread_mutex_lock(&w->post_lock);
        w->posts_closed = true; /* never started: later posts fail cleanly */
        pthread_mutex_unlock(&w->post_lock);
    }
    for (unsigned i = 0; h->workers && i < h->nworkers; i++)
        worker_cleanup(&h->workers[i], held > 0);
    for (size_t i = 0; h->listeners && i < h->nlisteners; i++) {
        SSL_CTX_free(h->listeners[i].tls);
        pthread_mutex_destroy(&h->listeners[i].tls_lock);
    }
    if (h->h2cb)
        nghttp2_session_callbacks_del(h->h2cb);
    if (h->h2opt)
        nghttp2_option_del(h->h2opt);
    free(h->listeners);
    if (held) {
        /* Pool jobs still hold workers (the drain's grace ran out): they
         * will post to them, find them closed, and release.  The worker
         * structures must outlive that, so they are left allocated. */
        dz_log(DZ_LOG_WARN, "httpd_free", "%u job(s) still hold workers; keeping their memory",
               held);
        keep_workers(h->workers);
    } else {
        free(h->workers);
    }
    free(h);
}

uint64_t dz_httpd_open_connections(const struct dz_httpd *h)
{
    uint64_t n = 0;

    for (unsigned i = 0; h && i < h->nworkers; i++)
        n += atomic_load_explicit(&((struct dz_worker *)&h->workers[i])->nconns_pub,
                                  memory_order_relaxed);
    return n;
}
