/*
 * h2conn.c - one HTTP/2 connection of the engine: socket or TLS I/O, the
 * nghttp2 server session's life (its callbacks are in h2session.c), the
 * connection timer, batched writes and the deferred teardown.
 *
 * Rules this file keeps: nothing is freed inside an nghttp2 callback (closed
 * streams are queued and "reaped" once mem_recv/mem_send has returned, the
 * connection itself is only torn down outside nghttp2, Redis freeClientAsync
 * style); frames are produced with nghttp2_session_mem_send into one output
 * buffer and written with one send/SSL_write per flush, from the worker's
 * prepare watcher (once per loop iteration); every state has a deadline.
 * The byte path (dz_h2conn_feed) needs no socket, so the fuzz target drives
 * the same code with fd = -1.
 */
#include "http/httpd_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

static ev_tstamp secs(uint32_t ms)
{
    return (ev_tstamp)ms / 1000.0;
}

static const struct dz_httpd_limits *limits_of(const struct dz_h2conn *c)
{
    return &c->w->h->limits;
}

/* ---------- deferred work ---------- */

void dz_h2conn_mark_dirty(struct dz_h2conn *c)
{
    if (c->in_dirty || !c->is_open)
        return;
    c->in_dirty = true;
    c->refs++;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

/* The connection buffer holds our answers in clear (before SSL_write):
 * login answers carry session tokens, so it is wiped before it goes. */
static void out_free(struct dz_h2conn *c)
{
    if (c->out) {
        dz_secret_wipe(c->out, c->out_cap);
        free(c->out);
    }
    c->out = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
}

void dz_h2conn_unref(struct dz_h2conn *c)
{
    if (--c->refs > 0)
        return;
    SSL_free(c->ssl);
    out_free(c);
    free(c);
}

/* Run the on_close callbacks of the streams nghttp2 (or a teardown) has
 * closed, and drop the engine's reference on each.  Only ever called when
 * no nghttp2 function is on the stack. */
static void reap(struct dz_h2conn *c)
{
    struct dz_req *r;

    if (!c->closed_head)
        return;
    c->refs++;
    while ((r = c->closed_head) != NULL) {
        c->closed_head = r->closed_next;
        if (!c->closed_head)
            c->closed_tail = NULL;
        r->closed_next = NULL;
        if (r->on_close && !r->is_notified) {
            r->is_notified = true;
            r->on_close(r, r->on_close_arg);
        }
        dz_req_unref(r);
    }
    dz_h2conn_unref(c);
}

/* ---------- output ---------- */

static int out_append(struct dz_h2conn *c, const uint8_t *p, size_t n)
{
    size_t pending = c->out_len - c->out_off;

    if (c->out_off > 0 && c->out_cap - c->out_len < n) {
        memmove(c->out, c->out + c->out_off, pending);
        /* The tail the move left behind is sent data: no copy stays. */
        dz_secret_wipe(c->out + pending, c->out_len - pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (c->out_cap - c->out_len < n) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        unsigned char *nb;
        while (cap - c->out_len < n)
            cap *= 2;
        nb = malloc(cap); /* not realloc: the old block is wiped first */
        if (!nb)
            return DZ_ERR_NOMEM;
        if (c->out_len)
            memcpy(nb, c->out, c->out_len);
        if (c->out) {
            dz_secret_wipe(c->out, c->out_cap);
            free(c->out);
        }
        c->out = nb;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void resume_read(struct dz_h2conn *c)
{
    if (!c->is_read_paused)
        return;
    c->is_read_paused = false;
    ev_io_start(c->w->loop, &c->rio);
    /* What came while paused is read now: the socket signalled it already
     * (and TLS may hold decrypted bytes it never signals). */
    ev_feed_event(c->w->loop, &c->rio, EV_READ);
    /* A resume from the prepare's flush feeds a read that runs after that
     * flush: what it answers must not wait for the next wake-up (a client
     * reading fine would sit until a timer), so the loop takes one more
     * turn, and its prepare flushes again, before it sleeps. */
    ev_idle_start(c->w->loop, &c->w->again);
}

/* 1: everything written; 0: the socket is full (write watcher armed, or
 * TLS wants to read first); <0: the connection is broken. */
static int write_out(struct dz_h2conn *c)
{
    while (c->out_off < c->out_len) {
        size_t len = c->out_len - c->out_off;
        ssize_t n;

        if (c->fd < 0) { /* memory sink */
            c->out_off = c->out_len;
            break;
        }
        if (c->ssl) {
            int k;
            ERR_clear_error();
            k = SSL_write(c->ssl, c->out + c->out_off, len > INT_MAX ? INT_MAX : (int)len);
            if (k <= 0) {
                int e = SSL_get_error(c->ssl, k);
                if (e == SSL_ERROR_WANT_WRITE) {
                    ev_io_start(c->w->loop, &c->wio);
                    return 0;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    c->tls_write_wants_read = true;
                    resume_read(c); /* the read side must be live for this */
                    return 0;
                }
                ERR_clear_error();
                return DZ_ERR_TLS;
            }
            n = k;
        } else {
            n = send(c->fd, c->out + c->out_off, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    ev_io_start(c->w->loop, &c->wio);
                    return 0;
                }
                return DZ_ERR_IO;
            }
        }
        c->out_off += (size_t)n;
        c->t_write = ev_now(c->w->loop);
    }
    /* Idle or bloated: give the memory back (thousands of connections). */
    if (c->out_cap > 32 * 1024 || c->nstreams == 0) {
        out_free(c);
    } else {
        dz_secret_wipe(c->out, c->out_len); /* what was sent stays no longer */
        c->out_off = c->out_len = 0;
    }
    return 1;
}

void dz_h2conn_flush(struct dz_h2conn *c)
{
    bool fatal = false;
    bool want_write;

    if (!c->is_open || c->is_handshaking)
        return;
    if (!c->ngh)
        return; /* given back while idle: nothing to send, nothing pending */
    for (int round = 0; round < 8; round++) {
        c->in_ngh = true;
        while (c->out_len - c->out_off < DZ_H2_OUT_HIGH) {
            const uint8_t *data = NULL;
            ssize_t n = nghttp2_session_mem_send(c->ngh, &data);
            if (n < 0) {
                dz_log(DZ_LOG_DEBUG, "h2_send_error", "%s: %s", c->peer_ip,
                       nghttp2_strerror((int)n));
                fatal = true;
                break;
            }
            if (n == 0)
                break;
            c->arena.framebuf_used = true;
            if (out_append(c, data, (size_t)n) != 0) {
                fatal = true;
                break;
            }
        }
        c->in_ngh = false;
        reap(c);
        if (fatal || !c->is_open || c->out_off == c->out_len)
            break;
        int rc = write_out(c);
        if (rc < 0)
            fatal = true;
        if (rc <= 0)
            break;
    }
    if (fatal || c->is_close_wanted) {
        dz_h2conn_close(c);
        return;
    }
    if (!c->is_open)
        return;
    want_write = nghttp2_session_want_write(c->ngh) != 0;
    if (c->out_off == c->out_len) {
        if (!want_write &&
            (!nghttp2_session_want_read(c->ngh) || (c->is_draining && c->nstreams == 0))) {
            dz_h2conn_close(c); /* done: GOAWAY sent or received, nothing left */
            return;
        }
        if (want_write) /* round limit reached: go on when writable */
            ev_io_start(c->w->loop, &c->wio);
        else if (!c->tls_read_wants_write)
            ev_io_stop(c->w->loop, &c->wio);
        /* Idle: nothing to send, no stream; the whole session goes if it
         * never had a stream, else the frame buffer's pages go back
         * (memory per idle connection, docs/performance.md). */
        if (!want_write && c->nstreams == 0 && !dz_h2conn_give_back(c))
            dz_h2_arena_idle(&c->arena);
    }
    if (c->out_len - c->out_off < DZ_H2_OUT_HIGH)
        resume_read(c);
}

void dz_worker_flush_dirty(struct dz_worker *w)
{
    struct dz_h2conn *c;

    while ((c = w->dirty) != NULL) {
        w->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->in_dirty = false;
        if (c->is_open)
            dz_h2conn_flush(c);
        dz_h2conn_unref(c);
    }
}

/* ---------- input ---------- */

int dz_h2conn_feed(struct dz_h2conn *c, const uint8_t *p, size_t n)
{
    ssize_t rv;

    if (!c->is_open)
        return DZ_ERR_STATE;
    if (!c->ngh && dz_h2conn_rebuild(c) != 0)
        return DZ_ERR_STATE;
    dz_h2conn_replay_record(c, p, n);
    dz_h2conn_track_frames(c, p, n);
    c->in_ngh = true;
    rv = nghttp2_session_mem_recv(c->ngh, p, n);
    c->in_ngh = false;
    if (!c->replay_off && nghttp2_session_get_last_proc_stream_id(c->ngh) != 0)
        dz_h2conn_replay_drop(c); /* a stream opened: the session stays from now on */
    reap(c);
    if (rv < 0) {
        dz_log(DZ_LOG_DEBUG, "h2_recv_error", "%s: %s", c->peer_ip, nghttp2_strerror((int)rv));
        return DZ_ERR_PARSE;
    }
    dz_h2conn_mark_dirty(c);
    return 0;
}

static void do_read(struct dz_h2conn *c)
{
    unsigned char *buf = c->w->rbuf;

    for (int i = 0; i < DZ_H2_READS_PER_EVENT; i++) {
        ssize_t n;
        int rc;

        if (c->ssl) {
            int k;
            ERR_clear_error();
            k = SSL_read(c->ssl, buf, DZ_H2_READ_BUF);
            if (k <= 0) {
                int e = SSL_get_error(c->ssl, k);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->tls_read_wants_write = true;
                    ev_io_start(c->w->loop, &c->wio);
                    return;
                }
                ERR_clear_error(); /* closed by the peer, or broken */
                dz_h2conn_close(c);
                return;
            }
            n = k;
        } else {
            n = recv(c->fd, buf, DZ_H2_READ_BUF, 0);
            if (n == 0) {
                dz_h2conn_close(c);
                return;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    dz_h2conn_close(c);
                return;
            }
        }
        rc = dz_h2conn_feed(c, buf, (size_t)n);
        /* The worker's read buffer held this client's bytes in clear
         * (passwords, bearer tokens): nghttp2 has copied what it keeps. */
        dz_secret_wipe(buf, (size_t)n);
        if (rc != 0) {
            dz_h2conn_close(c);
            return;
        }
        if (!c->is_open || c->is_close_wanted)
            return;
        if (c->out_len - c->out_off >= DZ_H2_OUT_HIGH) {
            /* The client sends but does not read: stop reading until our
             * answers drain, so the backlog stays bounded. */
            c->is_read_paused = true;
            ev_io_stop(c->w->loop, &c->rio);
            return;
        }
        if (!c->ssl && (size_t)n < DZ_H2_READ_BUF)
            return; /* socket drained */
    }
    /* Budget spent: fed again.  libev runs a fed event before it polls
     * again, so this bounds one call, not the connection's share of the
     * turn (the connection window bounds what it can send). */
    if (c->ssl)
        ev_feed_event(c->w->loop, &c->rio, EV_READ);
}

static void handshake(struct dz_h2conn *c)
{
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    int k;

    ERR_clear_error();
    k = SSL_do_handshake(c->ssl);
    if (k != 1) {
        int e = SSL_get_error(c->ssl, k);
        if (e == SSL_ERROR_WANT_READ) {
            ev_io_stop(c->w->loop, &c->wio);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            ev_io_start(c->w->loop, &c->wio);
            return;
        }
        dz_log(DZ_LOG_DEBUG, "tls_handshake_failed", "%s: %s", c->peer_ip,
               ERR_reason_error_string(ERR_peek_error()) ? ERR_reason_error_string(ERR_peek_error())
                                                         : "connection closed");
        ERR_clear_error();
        dz_h2conn_close(c);
        return;
    }
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        dz_log(DZ_LOG_DEBUG, "tls_no_h2", "%s: client did not offer ALPN h2", c->peer_ip);
        dz_h2conn_close(c);
        return;
    }
    c->is_handshaking = false;
    ev_io_stop(c->w->loop, &c->wio);
    dz_h2conn_mark_dirty(c); /* our SETTINGS */
    do_read(c);
}

/* The I/O callbacks hold a reference: a close inside may drop the last. */
static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct dz_h2conn *c = io->data;

    c->refs++;
    if (c->is_handshaking) {
        handshake(c);
    } else {
        do_read(c);
        if (c->is_open && c->tls_write_wants_read) {
            c->tls_write_wants_read = false;
            dz_h2conn_flush(c);
        }
    }
    dz_h2conn_unref(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct dz_h2conn *c = io->data;

    c->refs++;
    if (c->is_handshaking) {
        handshake(c);
    } else {
        if (c->tls_read_wants_write) {
            c->tls_read_wants_write = false;
            do_read(c);
        }
        dz_h2conn_flush(c); /* the backlog first, then more from nghttp2 */
    }
    dz_h2conn_unref(c);
}

/* ---------- timers ---------- */

static bool owes_output(const struct dz_h2conn *c)
{
    if (c->out_off < c->out_len)
        return true;
    for (const struct dz_req *r = c->streams; r; r = r->next)
        if (r->out_off < r->out_len)
            return true;
    return false;
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dz_h2conn *c = t->data;
    const struct dz_httpd_limits *lim = limits_of(c);
    ev_tstamp now = ev_now(loop);
    ev_tstamp deadline;
    const char *what = NULL;

    if (!c->is_open)
        return;
    if (c->is_handshaking || !c->is_established) {
        deadline = c->t_accept + secs(lim->handshake_timeout_ms);
        what = "handshake_timeout";
    } else if (c->nstreams == 0) {
        deadline = c->t_idle + secs(lim->idle_timeout_ms);
        what = "idle_timeout";
        /* After streams, a connection idle for a while gives its session
         * back (h2idle.c); the timer comes back for the idle timeout. */
        if (c->ngh && c->replay_off && !c->is_settled) {
            ev_tstamp settle = c->t_idle + secs(DZ_H2_SETTLE_MS);
            if (settle <= now)
                dz_h2conn_settle(c);
            else if (settle < deadline) {
                deadline = settle;
                what = NULL;
            }
        }
    } else if (owes_output(c)) {
        /* The client stopped reading (or never opens its window). */
        deadline = c->t_write + secs(lim->idle_timeout_ms);
        what = "write_stall";
    } else {
        /* Streams wait for the app or for request bytes (request timers). */
        deadline = now + secs(lim->idle_timeout_ms);
    }
    if (what && deadline <= now) {
        dz_log(DZ_LOG_DEBUG, what, "%s: closing connection", c->peer_ip);
        if (c->nstreams == 0 && c->is_established && !c->is_handshaking && !c->is_draining) {
            /* Polite: GOAWAY, closed by the flush once written; if it cannot
             * be written within a second, the next expiry closes. */
            dz_h2conn_goaway(c);
            ev_timer_set(t, 1.0, 0.);
            ev_timer_start(loop, t);
            return;
        }
        dz_h2conn_close(c);
        return;
    }
    ev_timer_set(t, deadline - now > 0.001 ? deadline - now : 0.001, 0.);
    ev_timer_start(loop, t);
}

/* ---------- life cycle ---------- */

int dz_h2conn_new(struct dz_worker *w, const struct dz_listener *l, int fd, SSL *ssl,
                  const char *peer_ip, struct dz_h2conn **out)
{
    const struct dz_httpd_limits *lim = &w->h->limits;
    struct dz_h2conn *c = NULL;
    ev_tstamp now = ev_now(w->loop);
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->w = w;
    c->in_magic_left = NGHTTP2_CLIENT_MAGIC_LEN;
    if (dz_h2conn_session_new(c) != 0)
        goto out;

    c->l = l;
    c->fd = fd;
    c->ssl = ssl;
    c->refs = 1;
    c->is_open = true;
    c->is_handshaking = ssl != NULL;
    c->t_accept = c->t_idle = c->t_write = now;
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip ? peer_ip : "");
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    else
        w->conns_tail = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->nconns_pub, 1, memory_order_relaxed);

    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    c->rio.data = c;
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    c->wio.data = c;
    ev_timer_init(&c->timer, conn_timer_cb, secs(lim->handshake_timeout_ms), 0.);
    c->timer.data = c;
    if (fd >= 0) {
        ev_io_start(w->loop, &c->rio);
        ev_timer_start(w->loop, &c->timer);
    }
    if (!ssl)
        dz_h2conn_mark_dirty(c); /* our SETTINGS go out at once */
    *out = c;
    c = NULL; /* now owned by w's list; fd and ssl by c */
    fd = -1;
    ssl = NULL;
    rc = 0;
out:
    if (c) {
        if (c->ngh)
            nghttp2_session_del(c->ngh);
        free(c);
    }
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    return rc;
}

void dz_h2conn_goaway(struct dz_h2conn *c)
{
    if (!c->is_open || c->is_draining)
        return;
    if (c->is_handshaking) {
        dz_h2conn_close(c);
        return;
    }
    if (!c->ngh && dz_h2conn_rebuild(c) != 0) {
        dz_h2conn_close(c);
        return;
    }
    c->is_draining = true;
    nghttp2_submit_goaway(c->ngh, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->ngh), NGHTTP2_NO_ERROR, NULL,
                          0);
    dz_h2conn_mark_dirty(c);
}

void dz_h2conn_close(struct dz_h2conn *c)
{
    struct dz_worker *w = c->w;

    if (!c->is_open)
        return;
    if (c->in_ngh) {
        c->is_close_wanted = true;
        dz_h2conn_mark_dirty(c);
        return;
    }
    c->is_open = false;
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->conns_tail = c->prev;
    c->prev = c->next = NULL;
    w->nconns--;
    atomic_fetch_sub_explicit(&w->nconns_pub, 1, memory_order_relaxed);
    if (c->is_counted) {
        if (c->nstreams == 0)
            dz_worker_quiet_move(w, -1);
        c->is_counted = false;
        atomic_fetch_sub_explicit(&w->h->nconns, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&w->h->addr_conns[c->addr_slot], 1, memory_order_relaxed);
    }
    while (c->streams)
        dz_h2conn_stream_closed(c, c->streams);
    nghttp2_session_del(c->ngh); /* NULL (given back while idle) is a no-op */
    c->ngh = NULL;
    dz_h2conn_replay_drop(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    out_free(c);
    reap(c);
    dz_h2conn_unref(c);
}
