/*
 * h2session.c - the nghttp2 side of an engine connection: the session
 * callbacks, the options and the wiping allocator every session gets, and
 * how frames become request events (headers complete, body, request
 * complete, overflow, timeouts, the rapid-reset count).  It runs inside
 * nghttp2_session_mem_recv/mem_send, so it never frees a request or a
 * connection and never does I/O: a closed stream is only queued
 * (dz_h2conn_stream_closed) for h2conn.c to reap once nghttp2 has returned.
 */
#include "http/httpd_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* ---------- closing a stream (also used by the connection's teardown) ---------- */

void dz_h2conn_stream_closed(struct dz_h2conn *c, struct dz_req *r)
{
    if (r->is_closed)
        return;
    r->is_closed = true;
    ev_timer_stop(c->w->loop, &r->timer);
    if (r->prev)
        r->prev->next = r->next;
    else
        c->streams = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    c->nstreams--;
    if (r->is_answered)
        c->nsending--;
    if (c->nstreams == 0) {
        if (c->is_counted) /* false once closing: dz_h2conn_close took it off */
            dz_worker_quiet_move(c->w, 1);
        c->t_idle = ev_now(c->w->loop);
        c->is_settled = false; /* a new idle period (h2idle.c) */
        /* The connection timer recomputes its deadline when it fires: soon
         * enough to settle the connection once idle (h2conn.c). */
        if (ev_is_active(&c->timer) &&
            ev_timer_remaining(c->w->loop, &c->timer) > secs(DZ_H2_SETTLE_MS)) {
            ev_timer_stop(c->w->loop, &c->timer);
            ev_timer_set(&c->timer, secs(DZ_H2_SETTLE_MS), 0.);
            ev_timer_start(c->w->loop, &c->timer);
        }
    }
    /* The response backlog can go now (wiped: a login answer carries the
     * session token); the app may hold r much longer. */
    dz_h2req_wipe_out(r);
    if (c->closed_tail)
        c->closed_tail->closed_next = r;
    else
        c->closed_head = r;
    c->closed_tail = r;
}

/* ---------- request flow (called from nghttp2 callbacks) ---------- */

static void deliver(struct dz_h2conn *c, struct dz_req *r)
{
    if (r->is_delivered)
        return;
    r->is_delivered = true;
    if (!r->is_answered)
        c->w->h->handlers.on_request(r, c->w->wdata);
}

/* Strict decimal, as nghttp2 already checked; anything odd is "huge". */
static uint64_t parse_cl(const char *s)
{
    uint64_t v = 0;

    if (!*s)
        return UINT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

static void headers_done(struct dz_h2conn *c, struct dz_req *r)
{
    const struct dz_httpd_handlers *hd = &c->w->h->handlers;
    const char *cl;

    r->is_headers_done = true;
    if (r->is_hdr_overflow) {
        dz_log(DZ_LOG_DEBUG, "h2_header_limit", "%s: stream %d: header fields over the limit",
               c->peer_ip, (int)r->stream_id);
        /* The same problem+json shape as every other refusal (RFC 9457),
         * made here because no application code has seen the request. */
        static const struct dz_hdr ct[] = {{"content-type", "application/problem+json"}};
        static const char body[] =
            "{\"type\":\"urn:darvaza:problem:header_fields_too_large\","
            "\"title\":\"The request's header fields are too large\",\"status\":431,"
            "\"detail\":\"too many or too long header fields\","
            "\"code\":\"header_fields_too_large\"}";
        if (dz_req_respond(r, 431, ct, 1, body, sizeof(body) - 1) != 0)
            nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, r->stream_id,
                                      NGHTTP2_REFUSED_STREAM);
        r->is_delivered = true;
        return;
    }
    if (hd->on_headers)
        hd->on_headers(r, c->w->wdata);
    if (r->is_delivered || r->is_closed)
        return;
    /* A declared length over the limit is an overflow now: the app answers
     * 413 before the client sends a byte of body. */
    cl = dz_req_header(r, "content-length");
    if (cl && parse_cl(cl) > r->body_limit) {
        dz_buf_wipe(&r->body);
        r->is_overflow = true;
        deliver(c, r);
    }
}

static void request_done(struct dz_h2conn *c, struct dz_req *r)
{
    uint32_t resp_ms = limits_of(c)->response_timeout_ms;

    ev_timer_stop(c->w->loop, &r->timer);
    r->is_remote_done = true;
    deliver(c, r);
    /* From here the timer bounds the app: until the answer is complete. */
    if (!r->is_ended && !r->is_closed && resp_ms) {
        ev_timer_set(&r->timer, secs(resp_ms), 0.);
        ev_timer_start(c->w->loop, &r->timer);
    }
}

static void count_reset(struct dz_h2conn *c, nghttp2_session *s)
{
    ev_tstamp now = ev_now(c->w->loop);

    if (now - c->rst_window >= 1.0) {
        c->rst_window = now;
        c->rst_count = 0;
    }
    if (++c->rst_count == DZ_H2_RST_PER_SEC + 1) {
        /* Rapid reset (CVE-2023-44487): streams opened and cancelled at
         * once cost us work but never count against the concurrency limit. */
        dz_log(DZ_LOG_WARN, "h2_rapid_reset", "%s: over %d RST_STREAM per second, GOAWAY",
               c->peer_ip, DZ_H2_RST_PER_SEC);
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static void req_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dz_req *r = t->data;
    struct dz_h2conn *c = r->c;

    if (r->is_closed || !c->is_open || r->is_rst_sent)
        return;
    if (r->is_remote_done) {
        if (!r->is_ended) {
            /* No path: it may carry a token in its query. */
            dz_log(DZ_LOG_WARN, "h2_response_timeout", "%s: stream %d (%s): no answer in time",
                   c->peer_ip, (int)r->stream_id, r->method);
            r->is_rst_sent = true;
            nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, r->stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
            dz_h2conn_mark_dirty(c);
        }
        return;
    }
    if (!nghttp2_session_get_stream_remote_close(c->ngh, r->stream_id)) {
        dz_log(DZ_LOG_DEBUG, "h2_request_timeout", "%s: stream %d", c->peer_ip, (int)r->stream_id);
        r->is_rst_sent = true;
        /* After a complete answer the reset only stops the upload. */
        nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, r->stream_id,
                                  r->is_end_sent ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
        dz_h2conn_mark_dirty(c);
    }
}

/* ---------- nghttp2 callbacks ---------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct dz_h2conn *c = ud;
    struct dz_req *r;

    /* The request a rebuild replays on the last stream is not a request. */
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST || c->is_rebuilding)
        return 0;
    r = dz_h2req_new(c, f->hd.stream_id);
    if (!r)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, r);
    r->next = c->streams;
    if (c->streams)
        c->streams->prev = r;
    c->streams = r;
    if (c->nstreams++ == 0 && c->is_counted)
        dz_worker_quiet_move(c->w, -1);
    ev_timer_init(&r->timer, req_timeout_cb, secs(limits_of(c)->request_timeout_ms), 0.);
    r->timer.data = r;
    ev_timer_start(c->w->loop, &r->timer);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct dz_req *r;
    int rc;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are dropped (nghttp2 bounds their size) */
    r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r || r->is_closed || r->is_hdr_overflow)
        return 0;
    rc = dz_h2req_add_field(r, name, nlen, value, vlen);
    if (rc == DZ_ERR_TOOBIG) {
        r->is_hdr_overflow = true; /* keep decoding (HPACK state), store nothing */
        return 0;
    }
    return rc == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct dz_h2conn *c = ud;
    struct dz_req *r = NULL;

    c->is_established = true;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!r || r->is_closed)
            break;
        if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
            headers_done(c, r);
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !r->is_closed)
            request_done(c, r);
        break;
    case NGHTTP2_RST_STREAM:
        count_reset(c, s);
        break;
    case NGHTTP2_SETTINGS:
        /* h2idle.c gives a session back only when none of ours is pending:
         * an ACK reaching a rebuilt session with none would be an error. */
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) && c->settings_unacked)
            c->settings_unacked--;
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) && c->empty_unacked && !c->is_rebuilding) {
            c->empty_unacked = false;
            c->size_update_owed = true;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct dz_h2conn *c = ud;
    struct dz_req *r = nghttp2_session_get_stream_user_data(s, stream_id);

    if (!r || r->is_closed)
        return 0;
    if (r->is_delivered) {
        /* After an answer or an overflow the rest of the body is read and
         * dropped: clients (curl before 8.x among them) take a reset before
         * their upload ends as a failure even after a complete answer.  The
         * request timer bounds the time, DZ_H2_DISCARD_MAX the bytes. */
        r->discarded += len;
        if (r->is_end_sent && !r->is_rst_sent && r->discarded > DZ_H2_DISCARD_MAX) {
            r->is_rst_sent = true;
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
        }
        return 0;
    }
    dz_h2req_add_body(r, data, len);
    if (r->is_overflow)
        deliver(c, r);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct dz_h2conn *c = ud;
    struct dz_req *r = nghttp2_session_get_stream_user_data(s, stream_id);

    if (r)
        dz_h2conn_stream_closed(c, r); /* freed later, by the reap */
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct dz_req *r;

    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r || r->is_closed)
        return 0;
    r->is_end_sent = true;
    /* Answered before the request was complete (431, 413, early answer)
     * and the client keeps sending: RFC 9113 8.1 allows RST_STREAM(NO_ERROR);
     * we first let up to DZ_H2_DISCARD_MAX bytes through (on_data_chunk). */
    if (!r->is_rst_sent && r->discarded > DZ_H2_DISCARD_MAX &&
        !nghttp2_session_get_stream_remote_close(s, f->hd.stream_id)) {
        r->is_rst_sent = true;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/* Every frame's header, before nghttp2 acts on it: the stream ids a client
 * used, refused ones included (h2idle.c gives back no session that could
 * not be rebuilt with them). */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    struct dz_h2conn *c = ud;

    if (hd->type == NGHTTP2_HEADERS && hd->stream_id > c->headers_stream)
        c->headers_stream = hd->stream_id;
    if (hd->type == NGHTTP2_HEADERS && !c->is_rebuilding)
        c->size_update_owed = false; /* its block pays the update, or nghttp2 refuses it */
    return 0;
}

int dz_h2_callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cb = NULL;

    *out = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return DZ_ERR_NOMEM;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    *out = cb;
    return 0;
}

/* ---------- nghttp2's memory: wiped when freed ---------- */

/* nghttp2 holds request fields in clear: each decoded field passes through a
 * refcounted buffer (freed after on_header), and the HPACK dynamic table
 * keeps indexed fields (a client indexes its authorization header) until
 * they are evicted or the session ends.  Every block nghttp2 frees is wiped.
 *
 * Memory per idle connection: every session allocates a 16 KB frame buffer
 * at once and writes only a few frames at its start.  Blocks that large are
 * mapped pages of their own (H2_MAP_MIN): only the pages nghttp2 touches
 * are resident, and they go back to the kernel when the session ends (which
 * zeroes them before anyone else gets them, so no wipe is needed).  Each
 * block carries a small header with its length and kind.  The sessions of
 * connections use the arena below, which does better (no header on the
 * mapped blocks, the frame buffer given back while idle); dz_h2_mem is its
 * fallback. */
#define H2_MAP_MIN (12 * 1024)
struct h2_block {
    size_t len; /* bytes asked for, after this header */
    size_t is_mapped;
};
#define H2_HDR sizeof(struct h2_block)

static void *h2_alloc(size_t n, bool zero)
{
    struct h2_block *b;

    if (n > SIZE_MAX - H2_HDR - 4096)
        return NULL;
    if (n >= H2_MAP_MIN) {
        b = mmap(NULL, n + H2_HDR, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED)
            return NULL;
        b->is_mapped = 1; /* fresh pages are zero: calloc needs nothing more */
    } else {
        b = zero ? calloc(1, n + H2_HDR) : malloc(n + H2_HDR);
        if (!b)
            return NULL;
        b->is_mapped = 0;
    }
    b->len = n;
    return b + 1;
}

static void *h2_malloc(size_t n, void *ud)
{
    return h2_alloc(n, false);
}

static void h2_free(void *p, void *ud)
{
    struct h2_block *b;

    if (!p)
        return;
    b = (struct h2_block *)p - 1;
    if (b->is_mapped) {
        munmap(b, b->len + H2_HDR);
        return;
    }
    dz_secret_wipe(b, b->len + H2_HDR);
    free(b);
}

static void *h2_calloc(size_t nmemb, size_t size, void *ud)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return h2_alloc(nmemb * size, true);
}

/* Not realloc: the old block is wiped before it goes. */
static void *h2_realloc(void *p, size_t n, void *ud)
{
    size_t old;
    void *np;

    if (!p)
        return h2_alloc(n, false);
    if (n == 0) {
        h2_free(p, ud);
        return NULL;
    }
    np = h2_alloc(n, false);
    if (!np)
        return NULL;
    old = ((struct h2_block *)p - 1)->len;
    memcpy(np, p, old < n ? old : n);
    h2_free(p, ud);
    return np;
}

nghttp2_mem *dz_h2_mem(void)
{
    /* nghttp2 copies it into each session; never written. */
    static nghttp2_mem mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};
    return &mem;
}

/* A session's own blocks.  Blocks of a page or more go to the arena's
 * slots: mapped without a header (the header would make the first page
 * resident), so a calloc'd table nghttp2 has not written yet (the 4 KB
 * stream map of a connection that never opened a stream) costs no memory,
 * and the frame buffer can be given back while idle.  When the slots are
 * full, the blocks of dz_h2_mem. */
#define ARENA_MIN 4096

/* The slot holding p, or with p NULL a free one; -1 when there is none. */
static int arena_find(const struct dz_h2_arena *a, const void *p)
{
    for (int i = 0; i < DZ_H2_ARENA_SLOTS; i++)
        if (a->slot[i].p == p)
            return i;
    return -1;
}

/* Small blocks come from the session's region while it has room: the
 * session object, its HPACK ring buffers and entries, its first streams.
 * When the session is freed (an idle connection's, h2idle.c) the region's
 * pages go back to the kernel at once; from the process heap they would
 * stay resident, between other connections' blocks.  Each block has the
 * h2_block header (its length); a block freed last is taken back, and the
 * region is unmapped when its last block goes. */
#define REGION_ALIGN 16u

/* Under ASan the region's free bytes are poisoned, so a block used after it
 * was freed, or past its end, is reported as from the heap. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define REGION_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define REGION_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define REGION_POISON(p, n) ((void)(p), (void)(n))
#define REGION_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static size_t region_need(size_t n)
{
    return H2_HDR + ((n + REGION_ALIGN - 1) & ~(size_t)(REGION_ALIGN - 1));
}

static bool in_region(const struct dz_h2_arena *a, const void *p)
{
    return a->region && (const unsigned char *)p > a->region &&
           (const unsigned char *)p < a->region + DZ_H2_REGION;
}

static void *region_alloc(struct dz_h2_arena *a, size_t n, bool zero)
{
    struct h2_block *b;

    if (n > DZ_H2_REGION || region_need(n) > DZ_H2_REGION - a->region_top)
        return NULL;
    if (!a->region) {
        void *m =
            mmap(NULL, DZ_H2_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        a->region = m;
        a->region_top = 0;
        REGION_POISON(m, DZ_H2_REGION);
    }
    b = (struct h2_block *)(a->region + a->region_top);
    REGION_UNPOISON(b, H2_HDR + n);
    a->region_top += region_need(n);
    a->region_live++;
    b->len = n;
    b->is_mapped = 0;
    if (zero)
        memset(b + 1, 0, n); /* a block taken back may have held one */
    return b + 1;
}

static void region_free(struct dz_h2_arena *a, void *p)
{
    struct h2_block *b = (struct h2_block *)p - 1;

    size_t need = region_need(b->len);

    dz_secret_wipe(p, b->len);
    if ((unsigned char *)b + need == a->region + a->region_top)
        a->region_top -= need;
    REGION_POISON(b, need);
    if (--a->region_live == 0) {
        REGION_UNPOISON(a->region, DZ_H2_REGION); /* the next mapping there is clean */
        munmap(a->region, DZ_H2_REGION);          /* zeroed before anyone else gets it */
        a->region = NULL;
        a->region_top = 0;
    }
}

static void *arena_alloc(struct dz_h2_arena *a, size_t n, bool zero)
{
    int i = n >= ARENA_MIN ? arena_find(a, NULL) : -1;
    void *p;

    if (i < 0) {
        p = n < ARENA_MIN ? region_alloc(a, n, zero) : NULL;
        return p ? p : h2_alloc(n, zero);
    }
    p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    a->slot[i].p = p; /* fresh pages are zero: calloc needs nothing more */
    a->slot[i].len = n;
    return p;
}

static void *arena_malloc(size_t n, void *ud)
{
    return arena_alloc(ud, n, false);
}

static void *arena_calloc(size_t nmemb, size_t size, void *ud)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return arena_alloc(ud, nmemb * size, true);
}

static void arena_free(void *p, void *ud)
{
    struct dz_h2_arena *a = ud;
    int i = p ? arena_find(a, p) : -1;

    if (i < 0 && in_region(a, p)) {
        region_free(a, p);
        return;
    }
    if (i < 0) {
        h2_free(p, NULL);
        return;
    }
    /* The kernel zeroes the pages before anyone else gets them: no wipe. */
    munmap(p, a->slot[i].len);
    a->slot[i].p = NULL;
    a->slot[i].len = 0;
    if (a->framebuf == i)
        a->framebuf = -1;
}

/* Not realloc: the old block is wiped (or unmapped) before it goes. */
static void *arena_realloc(void *p, size_t n, void *ud)
{
    struct dz_h2_arena *a = ud;
    int i = p ? arena_find(a, p) : -1;
    size_t old;
    void *np;

    if (!p)
        return arena_alloc(a, n, false);
    if (n == 0) {
        arena_free(p, ud);
        return NULL;
    }
    old = i >= 0 ? a->slot[i].len : ((struct h2_block *)p - 1)->len;
    np = arena_alloc(a, n, false);
    if (!np)
        return NULL;
    memcpy(np, p, old < n ? old : n);
    arena_free(p, ud);
    return np;
}

void dz_h2_arena_init(struct dz_h2_arena *a)
{
    memset(a, 0, sizeof(*a));
    a->mem = (nghttp2_mem){a, arena_malloc, arena_free, arena_calloc, arena_realloc};
    a->framebuf = -1;
}

/* nghttp2 (1.52) allocates one block over 16 KB when a session is made: the
 * outbound frame buffer (NGHTTP2_FRAMEBUF_CHUNKLEN).  It is written from
 * its start for every frame and never read before it is written, so its
 * contents are dead whenever the session has nothing to send.  Anything
 * else than exactly one such block: not known, never given back. */
void dz_h2_arena_mark_framebuf(struct dz_h2_arena *a)
{
    a->framebuf = -1;
    for (int i = 0; i < DZ_H2_ARENA_SLOTS; i++) {
        if (a->slot[i].p && a->slot[i].len > 16384) {
            if (a->framebuf >= 0) {
                a->framebuf = -1;
                return;
            }
            a->framebuf = i;
        }
    }
}

void dz_h2_arena_idle(struct dz_h2_arena *a)
{
    /* The pages read back as zeros when nghttp2 writes the next frame.  Only
     * after frames were written: an idle connection woken by nothing to
     * send costs no system call. */
    if (a->framebuf >= 0 && a->framebuf_used)
        (void)madvise(a->slot[a->framebuf].p, a->slot[a->framebuf].len, MADV_DONTNEED);
    a->framebuf_used = false;
}

int dz_h2_option_new(const struct dz_httpd_limits *l, nghttp2_option **out)
{
    nghttp2_option *opt = NULL;
    size_t hb = l->max_header_bytes < 16384 ? 16384 : l->max_header_bytes;

    *out = NULL;
    if (nghttp2_option_new(&opt) != 0)
        return DZ_ERR_NOMEM;
    /* Our own answers: bounded header blocks. */
    nghttp2_option_set_max_send_header_block_length(opt, hb * 4);
    /* SETTINGS/PING floods: few entries, few queued ACKs. */
    nghttp2_option_set_max_settings(opt, 16);
    nghttp2_option_set_max_outbound_ack(opt, 128);
    /* Our answers' fields are never indexed (nginx does the same: its first
     * answer sets its encoder's table to 0), so our encoder holds nothing
     * an idle connection would have to keep (h2idle.c). */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    /* Closed streams are remembered (no nghttp2_option_set_no_closed_streams):
     * that is how nghttp2 tells a frame on a closed stream (RFC 9113 5.1,
     * STREAM_CLOSED) from one on a stream it never saw.  nghttp2 keeps at most
     * SETTINGS_MAX_CONCURRENT_STREAMS minus the open ones, oldest dropped
     * first, so the memory stays bounded per connection. */
    /* The Debian build of 1.52 also carries the CVE-2023-44487 and
     * CVE-2024-28182 back-ports (stream reset rate limit, max CONTINUATION
     * frames) with safe defaults; the rapid-reset count in count_reset()
     * does not depend on them. */
    *out = opt;
    return 0;
}
