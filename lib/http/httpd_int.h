/*
 * httpd_int.h - private structures of the HTTP/2 engine, shared by its four
 * files and by its unit test and fuzz target only:
 *   httpd.c   server, listeners, worker threads, accept, posts, drain
 *   h2conn.c  one connection: socket/TLS I/O, timers, flushing, the
 *             deferred close ("reap")
 *   h2session.c  the nghttp2 callbacks: frames -> request events
 *   h2req.c   one request (stream): arena, headers, body, dz_req_* API,
 *             the response data provider
 * Nothing here is part of the contract in httpd.h; applications must not
 * include this file.  Everything is loop-thread-only unless marked.
 */
#ifndef DZ_HTTPD_INT_H
#define DZ_HTTPD_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "base/buf.h"
#include "http/httpd.h"

enum {
    DZ_H2_READ_BUF = 32 * 1024,        /* per worker, shared by its connections */
    DZ_H2_READS_PER_EVENT = 8,         /* fairness between connections */
    DZ_H2_OUT_HIGH = 64 * 1024,        /* stop asking nghttp2 for frames above this */
    DZ_H2_OUT_READ_PAUSE = 256 * 1024, /* stop reading while this much is unsent */
    DZ_H2_ARENA_INLINE = 1536,         /* request arena bytes inside struct dz_req */
    DZ_H2_OUT_INLINE = 1024,           /* response bytes inside struct dz_req */
    DZ_H2_REQ_FREELIST = 256,          /* recycled requests kept per worker */
    DZ_H2_MAX_RESP_HDRS = 128,         /* headers the app may pass to one answer */
    DZ_H2_STREAM_WINDOW = 256 * 1024,  /* SETTINGS_INITIAL_WINDOW_SIZE (upper bound) */
    DZ_H2_CONN_WINDOW = 1024 * 1024,   /* connection-level receive window */
    DZ_H2_RST_PER_SEC = 200,           /* rapid-reset defence: client RST_STREAM/s */
    DZ_H2_DRAIN_GRACE_MS = 2000,       /* wait for app references after the drain */
    DZ_H2_DISCARD_MAX = 1024 * 1024    /* body read and dropped after an early answer */
};
#define DZ_H2_REQ_OUT_MAX ((size_t)64 << 20) /* dz_req_write backlog bound */

struct dz_h2conn;

/* One configured listener (shared by all workers). */
struct dz_listener {
    char host[INET6_ADDRSTRLEN];
    uint16_t port;
    int tag;
    bool is_tls;
    pthread_mutex_t tls_lock; /* guards tls (dz_httpd_set_tls vs accept) */
    SSL_CTX *tls;
};

struct dz_worker {
    struct dz_httpd *h;
    unsigned index;
    struct ev_loop *loop;
    pthread_t thread;
    bool has_thread;
    void *wdata;
    int *lfds;             /* one listening socket per listener, -1 once closed */
    ev_io *accept_w;       /* one per listener */
    ev_timer accept_pause; /* back-off after EMFILE/ENFILE */
    ev_async async;
    ev_prepare prepare; /* flush dirty connections before the loop sleeps */
    ev_idle again;      /* a read fed during the prepare: one more turn before sleeping */
    ev_timer drain_timer;
    /* posts: the only cross-thread state */
    pthread_mutex_t post_lock;
    struct dz_post *post_head, *post_tail;
    bool posts_closed;
    atomic_uint holds;
    atomic_uint_fast64_t nconns_pub; /* for dz_httpd_open_connections */
    /* Connections that serve nobody (counted, no open stream: still in the
     * TLS handshake or idle), what shed_one may close.  Written by this
     * worker only (a plain store), read by another worker's accept at the
     * process cap to choose whom to ask for room (httpd.c). */
    atomic_uint_fast32_t quiet_pub;
    atomic_uint_fast32_t shed_asked; /* sheds posted to this worker, not yet run */
    /* loop-thread state */
    struct dz_h2conn *conns;      /* open connections, newest first */
    struct dz_h2conn *conns_tail; /* the oldest (shed_one starts there) */
    uint32_t nconns;
    uint32_t nquiet;         /* published as quiet_pub */
    struct dz_h2conn *dirty; /* connections to flush (each holds a reference) */
    struct dz_req *free_reqs;
    unsigned nfree_reqs;
    uint64_t live_reqs;
    unsigned char *rbuf;
    uint32_t drain_ms;
    int drain_phase; /* 0 running, 1 GOAWAY sent, 2 connections closed */
};

/* Open connections per client address are counted in a fixed table of
 * slots indexed by a keyed hash of the address: no allocation and no lock
 * on accept.  Two addresses may share a slot (and so a cap); the key is
 * random per process, so a client cannot choose whom it shares with. */
#define DZ_H2_ADDR_SLOTS 65536u
/* Near the process cap, a new connection must finish its TLS handshake
 * within this (or the configured timeout, if shorter). */
#define DZ_H2_PRESSED_HANDSHAKE_MS 2000u
/* At the cap, how many of the oldest connections are looked at for one to
 * shed (a bound on the work one accept can cost). */
#define DZ_H2_SHED_SCAN 256u
/* At the cap, a worker with nothing to shed lets a newcomer in and asks
 * another worker to shed one of its own (a post).  Until that runs the
 * process is over the cap; accepts never take it more than this over. */
#define DZ_H2_SHED_LENT 16u

struct dz_httpd {
    struct dz_httpd_limits limits;
    atomic_uint_fast32_t nconns;                       /* open connections, all workers */
    atomic_uint_fast32_t addr_conns[DZ_H2_ADDR_SLOTS]; /* open per address slot */
    uint64_t addr_key[2];
    atomic_uint_fast64_t refused_addr, refused_full, closed_stalled;
    /* Closed at the cap to let a newcomer in; asked of another worker
     * that had nothing left to shed when the ask ran. */
    atomic_uint_fast64_t shed, shed_missed;
    atomic_size_t out_buffered; /* unsent answer bytes, all connections */
    struct dz_httpd_handlers handlers;
    void *app;
    struct dz_listener *listeners;
    size_t nlisteners;
    struct dz_worker *workers;
    unsigned nworkers;
    nghttp2_session_callbacks *h2cb;
    nghttp2_option *h2opt;
    bool is_started;
    bool is_stopped;
};

struct dz_h2field {
    const char *name;
    const char *value;
};

struct dz_arena_chunk {
    struct dz_arena_chunk *next;
    size_t cap;
    size_t used;
    max_align_t data[];
};

struct dz_req {
    struct dz_h2conn *c;
    struct dz_req *prev, *next; /* c->streams while the stream is open */
    struct dz_req *closed_next; /* c->closed_* queue: on_close to run */
    struct dz_req *free_next;   /* worker free list */
    int32_t stream_id;
    unsigned refs;
    bool is_closed;
    bool is_headers_done;
    bool is_delivered; /* on_request called, or suppressed by an early answer */
    bool is_answered;  /* response HEADERS submitted */
    bool is_ended;     /* no more response bytes will be written */
    bool is_deferred;  /* data provider returned NGHTTP2_ERR_DEFERRED */
    bool is_overflow;
    bool is_hdr_overflow;
    bool is_head;
    bool is_notified;
    bool is_end_sent;    /* our END_STREAM went out */
    bool is_remote_done; /* the client's END_STREAM came: timer = response timeout */
    bool is_rst_sent;
    bool is_drain_cut;  /* still open when the drain deadline closed its connection */
    uint64_t discarded; /* body bytes dropped (after an answer or overflow) */
    const char *method, *path, *scheme, *authority, *host;
    struct dz_h2field *fields;
    uint32_t nfields, fields_cap, field_bytes;
    uint32_t nall_fields; /* including pseudo-headers, for the count limit */
    struct dz_buf body;
    size_t body_limit;
    unsigned char *out; /* out_inline or heap */
    size_t out_len, out_off, out_cap;
    size_t out_inline_used; /* high-water mark in out_inline: what to wipe */
    size_t out_counted;     /* of out_len - out_off, what c and the process count */
    ev_timer timer;         /* request timeout, then response timeout */
    void *data;
    void (*on_close)(struct dz_req *r, void *arg);
    void *on_close_arg;
    size_t arena_used;
    struct dz_arena_chunk *chunks;
    /* Everything above is cleared when a request is recycled. */
    unsigned char out_inline[DZ_H2_OUT_INLINE];
    _Alignas(max_align_t) unsigned char arena[DZ_H2_ARENA_INLINE];
};

/* nghttp2's memory for one session (h2session.c): blocks of a page or more
 * are mapped pages of their own, without a header, so a page nghttp2 never
 * writes is never resident, and the outbound frame buffer's pages are given
 * back while the connection is idle.  Owned by the connection's thread. */
#define DZ_H2_ARENA_SLOTS 4
#define DZ_H2_REGION (8 * 1024)

/* A connection idle this long after its last stream gives its session back
 * (h2idle.c): longer than the gaps inside a page load, so a browser's burst
 * keeps its HPACK state. */
#define DZ_H2_SETTLE_MS 1000u
#define DZ_H2_KEPT_SETTINGS 7
struct dz_h2_arena {
    nghttp2_mem mem; /* what the session is given; mem_user_data is the arena */
    struct {
        void *p;
        size_t len;
    } slot[DZ_H2_ARENA_SLOTS];
    int framebuf;       /* the slot of the outbound frame buffer, -1: not known */
    bool framebuf_used; /* frames written since it was last given back */
    /* Small blocks, first come: mapped pages of the session's own, given
     * back to the kernel when its last block goes (h2session.c). */
    unsigned char *region;
    size_t region_top;  /* bytes handed out from its start (LIFO frees undo) */
    size_t region_live; /* blocks not yet freed */
};

struct dz_h2conn {
    struct dz_worker *w;
    const struct dz_listener *l;
    struct dz_h2conn *prev, *next; /* w->conns while open */
    struct dz_h2conn *dirty_next;
    unsigned refs; /* 1 while open, +1 per live request, +1 while dirty */
    int fd;        /* -1: memory sink (fuzzing), output is discarded */
    SSL *ssl;      /* kept until the last request goes (peer certificate) */
    nghttp2_session *ngh;
    ev_io rio, wio;
    ev_timer timer; /* handshake, idle and write-stall deadlines */
    bool is_open;
    bool in_dirty;
    bool in_ngh;          /* inside nghttp2_session_mem_recv/mem_send */
    bool is_close_wanted; /* close once outside nghttp2 */
    bool is_handshaking;  /* TLS handshake not finished */
    bool is_established;  /* first client frame (after the preface) seen */
    bool is_draining;     /* GOAWAY sent by us */
    bool is_read_paused;
    bool tls_read_wants_write;
    bool tls_write_wants_read;
    bool is_counted;     /* holds a process and an address slot (accept) */
    size_t out_buffered; /* unsent answer bytes of its requests */
    uint32_t addr_slot;
    uint32_t nstreams; /* open streams */
    uint32_t nsending; /* open streams with a response under way */
    struct dz_req *streams;
    struct dz_req *closed_head, *closed_tail;
    unsigned char *out;
    size_t out_len, out_off, out_cap;
    ev_tstamp t_accept, t_idle, t_write;
    ev_tstamp rst_window;
    uint32_t rst_count;
    char peer_ip[INET6_ADDRSTRLEN];
    struct dz_h2_arena arena; /* ngh's memory; must outlive ngh */
    /* Until the first stream: every byte the client sent, so that ngh can
     * be freed while the connection is idle and rebuilt by replaying them
     * (h2conn.c, "an idle session given back").  NULL once a stream opened
     * or too much came (replay_off). */
    uint8_t *replay;
    uint16_t replay_len;
    bool replay_off;
    /* After streams (h2idle.c, "settled"): idle for DZ_H2_SETTLE_MS, the
     * HPACK tables emptied, ngh freed and what rebuilds it kept here. */
    bool is_settled;          /* asked to empty the client's table (or it was) */
    bool is_given_back;       /* ngh freed after streams: rebuild from kept_* */
    bool is_rebuilding;       /* inside the rebuild: the callbacks make no request */
    uint8_t settings_unacked; /* our SETTINGS submitted, not yet acknowledged */
    /* RFC 7541 4.2: once our settle's SETTINGS_HEADER_TABLE_SIZE 0 is
     * acknowledged, the client's next header block must begin with a size
     * update to 0.  nghttp2 enforces it on the session that sent it; a
     * rebuilt session is told again (h2idle.c), so the rule outlives a
     * give-back.  empty_unacked: that SETTINGS is the one the next ACK
     * answers (a settle starts with none of ours unacknowledged). */
    bool empty_unacked;
    bool size_update_owed;
    int32_t kept_stream;                         /* the client's last stream */
    int32_t kept_window;                         /* our connection send window */
    uint32_t kept_settings[DZ_H2_KEPT_SETTINGS]; /* the client's, h2idle.c order */
    /* The highest stream id a client HEADERS named: above the last stream
     * processed when one was refused (REFUSED_STREAM before our SETTINGS
     * were acknowledged), which a session rebuilt from kept_stream would
     * not know (h2session.c on_begin_frame, h2idle.c). */
    int32_t headers_stream;
    /* Where the client's bytes stand in its frames: nghttp2 keeps a frame
     * received in part inside the session, so a settled session is given
     * back only between two frames (h2idle.c dz_h2conn_track_frames). */
    uint32_t in_frame_len;  /* the length field, while its header comes in */
    uint32_t in_frame_left; /* payload bytes still to come */
    uint8_t in_head_got;    /* header bytes seen of the current frame (0..8) */
    uint8_t in_magic_left;  /* bytes of the client preface still to come */
};

/* --- h2idle.c: an idle connection's session given back --- */
/* Make c's session, with our SETTINGS and connection window queued. */
int dz_h2conn_session_new(struct dz_h2conn *c);
/* Keep the client's bytes until its first stream (at most 512); drop them
 * (wiped) once a stream opened or too much came. */
void dz_h2conn_replay_record(struct dz_h2conn *c, const uint8_t *p, size_t n);
void dz_h2conn_replay_drop(struct dz_h2conn *c);
/* An HTTP/2 frame header (RFC 9113 4.1) and a 32-bit field, big-endian, at
 * p; each returns the byte after what it wrote. */
uint8_t *dz_h2_put_frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, int32_t sid);
uint8_t *dz_h2_put_u32(uint8_t *p, uint32_t v);
/* Follow the client's bytes through its frames (before nghttp2 reads them). */
void dz_h2conn_track_frames(struct dz_h2conn *c, const uint8_t *p, size_t n);
/* After streams, idle for DZ_H2_SETTLE_MS (the connection timer): ask the
 * client to empty its HPACK table; the flush gives the session back once
 * it has.  A no-op unless the connection is quiet. */
void dz_h2conn_settle(struct dz_h2conn *c);
/* Free c's session if it is idle and can be rebuilt.  true: freed.  Only
 * outside nghttp2. */
bool dz_h2conn_give_back(struct dz_h2conn *c);
/* Before a given-back session is used again: rebuild it. */
int dz_h2conn_rebuild(struct dz_h2conn *c);

/* --- h2req.c --- */
/* Bring the connection's and the process's count of unsent answer bytes
 * up to date with r's backlog (after any change to r->out_len/out_off). */
void dz_h2req_out_account(struct dz_req *r);

/* --- h2session.c --- */
/* nghttp2 objects shared by every session of a server (read-only after). */
int dz_h2_callbacks_new(nghttp2_session_callbacks **out);
int dz_h2_option_new(const struct dz_httpd_limits *l, nghttp2_option **out);
/* The allocator every session gets: it wipes each block it frees (nghttp2
 * holds request fields in clear).  Thread-safe, static. */
nghttp2_mem *dz_h2_mem(void);
/* A session's own allocator (the same wiping and mapping, see dz_h2_arena):
 * init before nghttp2_session_*_new3 with &a->mem; then mark_framebuf once
 * the session exists; set framebuf_used when the session produced frames;
 * idle when it has nothing to send and no stream open (the frame buffer's
 * pages go back to the kernel if frames were written since). */
void dz_h2_arena_init(struct dz_h2_arena *a);
void dz_h2_arena_mark_framebuf(struct dz_h2_arena *a);
void dz_h2_arena_idle(struct dz_h2_arena *a);
/* Mark r closed, stop its timer, unlink it and queue it on c's closed list
 * (on_close and the engine's unref happen when h2conn.c reaps). */
void dz_h2conn_stream_closed(struct dz_h2conn *c, struct dz_req *r);

/* --- h2conn.c --- */
/* Take fd (may be -1: memory sink) and ssl (NULL: cleartext h2c); both are
 * released on failure.  The connection is registered with w and starts its
 * watchers.  0, DZ_ERR_NOMEM. */
int dz_h2conn_new(struct dz_worker *w, const struct dz_listener *l, int fd, SSL *ssl,
                  const char *peer_ip, struct dz_h2conn **out);
/* Feed received cleartext bytes to nghttp2 and run deferred work.
 * 0 or DZ_ERR_PARSE (the connection must be closed). */
int dz_h2conn_feed(struct dz_h2conn *c, const uint8_t *p, size_t n);
void dz_h2conn_flush(struct dz_h2conn *c);
void dz_h2conn_mark_dirty(struct dz_h2conn *c);
/* GOAWAY now; the connection closes when its last stream has finished. */
void dz_h2conn_goaway(struct dz_h2conn *c);
/* Tear down now (or right after nghttp2 returns); every open request gets
 * its on_close.  The memory goes with the last request reference. */
void dz_h2conn_close(struct dz_h2conn *c);
void dz_h2conn_unref(struct dz_h2conn *c);
/* Flush every dirty connection of w (the prepare watcher). */
void dz_worker_flush_dirty(struct dz_worker *w);

/* --- h2req.c --- */
/* New request for a stream, with one (engine) reference.  NULL: no memory. */
struct dz_req *dz_h2req_new(struct dz_h2conn *c, int32_t stream_id);
/* Store one received field; DZ_ERR_TOOBIG past the count/bytes limits. */
int dz_h2req_add_field(struct dz_req *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen);
/* Buffer body bytes; past the limit sets is_overflow and drops the body. */
void dz_h2req_add_body(struct dz_req *r, const uint8_t *p, size_t n);
ssize_t dz_h2req_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data);
/* Wipe and drop the response bytes of r (heap backlog and what was used of
 * the inline buffer); r->out is the empty inline buffer afterwards. */
void dz_h2req_wipe_out(struct dz_req *r);
/* Return the recycled requests of w to the allocator (worker stop). */
void dz_h2req_freelist_clear(struct dz_worker *w);

/* --- httpd.c --- */
/* Worker i of h (tests and the fuzz target drive a worker by hand). */
struct dz_worker *dz_httpd_worker_at(struct dz_httpd *h, unsigned i);
/* A counted connection of w became quiet (d = 1: no open stream) or busy or
 * gone (d = -1).  Only w's own thread writes the count, so publishing it is
 * a plain store, not a locked add: this runs on a connection's first stream
 * and after its last. */
static inline void dz_worker_quiet_move(struct dz_worker *w, int d)
{
    w->nquiet += (uint32_t)d;
    atomic_store_explicit(&w->quiet_pub, w->nquiet, memory_order_relaxed);
}

#endif
