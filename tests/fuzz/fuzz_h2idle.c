/*
 * fuzz_h2idle.c - a cleartext HTTP/2 connection of the engine driven through
 * requests, idle periods, its session given back and rebuilt
 * (lib/http/h2idle.c, docs/internals/httpd.md "An idle session given back").
 *
 * The input is a list of steps, each a byte choosing what happens next and
 * the bytes that step reads: arbitrary client bytes, or a client frame built
 * from a few bytes (SETTINGS and their ACK, requests whose HPACK blocks use
 * literals that the server indexes, references to dynamic-table entries,
 * table size updates, DATA, WINDOW_UPDATE, PRIORITY, RST_STREAM, PING,
 * GOAWAY), or "idle now" (what the connection timer does once the
 * connection has been idle for DZ_H2_SETTLE_MS: its timer's callback, the
 * idle start moved back), or the server's own GOAWAY (a drain).
 * So the client's ACKs of the settle's SETTINGS may be missing, duplicated
 * or come before anything else, and what follows a give-back is anything.
 * Frames are well formed in their header only when the fuzzer keeps them so.
 *
 * The memory sink (fd -1) drops what the server writes.  Properties checked
 * besides "no crash, no leak, no sanitizer report":
 * - a session given back is always rebuilt (a failure is the client's
 *   connection lost for nothing);
 * - the rebuilt session is the freed one as the client sees it: the
 *   client's settings, our send window, the last stream id, empty HPACK
 *   tables, no stream, no request reaching the application;
 * - at the end, as in fuzz_h2frames.c, no request is left alive.
 * FUZZ_H2_VERBOSE=1 prints what each input reached, 2 each step as well.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dz_httpd *h;
static struct dz_worker *w;
static int verbose; /* FUZZ_H2_VERBOSE: 1 what each input reached, 2 each step too */
static const struct dz_listener fuzz_listener = {.host = "fuzz", .tag = 1};
static unsigned char big_body[24000]; /* spends the client's window fast */

/* What one input reached. */
static struct {
    unsigned requests, closes, settles, given_back, replays, rebuilds;
} n;

/* The session as the client sees it, taken before each flush (a give-back
 * happens at the end of one; sending changes none of these but the send
 * window, compared with what the connection kept). */
static const int32_t snap_ids[] = {
    NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,      NGHTTP2_SETTINGS_ENABLE_PUSH,
    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
    NGHTTP2_SETTINGS_MAX_FRAME_SIZE,         NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
    NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES,
};
#define NSNAP (sizeof(snap_ids) / sizeof(snap_ids[0]))
struct snap {
    bool valid;
    uint32_t settings[NSNAP];
    int32_t last_stream;
    int32_t window;
};

static void snap_take(const struct dz_h2conn *c, struct snap *s)
{
    s->valid = c->ngh != NULL;
    if (!s->valid)
        return;
    for (size_t i = 0; i < NSNAP; i++)
        s->settings[i] = nghttp2_session_get_remote_settings(c->ngh, snap_ids[i]);
    s->last_stream = nghttp2_session_get_last_proc_stream_id(c->ngh);
    s->window = nghttp2_session_get_remote_window_size(c->ngh);
}

/* The highest stream id of the HEADERS fed so far, while every byte came
 * from a built frame (has_raw: arbitrary bytes fed, their ids unknown). */
static struct {
    uint32_t headers_max;
    bool has_raw;
} ids;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_h2idle: %s\n", what);
    abort();
}

/* A request opens only above every HEADERS the client sent before: nghttp2
 * ignores one on an id it has seen, even one it refused (RFC 9113 5.1.1),
 * and a rebuilt session must too. */
static void on_headers(struct dz_req *r, void *wdata)
{
    if (!ids.has_raw && (uint32_t)r->stream_id <= ids.headers_max)
        fail("a request opened on a stream id already used");
}

static void count_close(struct dz_req *r, void *arg)
{
    (void)r;
    (void)arg;
    n.closes++;
}

static void answer_later(void *arg)
{
    struct dz_req *r = arg;

    (void)dz_req_respond(r, 200, NULL, 0, "later", 5);
    dz_req_unref(r);
}

static void on_request(struct dz_req *r, void *wdata)
{
    const char *path = dz_req_path(r);
    const unsigned char *body;
    size_t len;

    if (wdata != w)
        abort();
    n.requests++;
    dz_req_on_close(r, count_close, NULL);
    body = dz_req_body(r, &len);
    if (strcmp(path, "/later") == 0) {
        dz_req_ref(r);
        if (dz_worker_post(dz_req_worker(r), answer_later, r) != 0)
            dz_req_unref(r);
    } else if (strcmp(path, "/big") == 0) {
        (void)dz_req_respond(r, 200, NULL, 0, big_body, sizeof(big_body));
    } else if (strcmp(path, "/stream") == 0) {
        if (dz_req_start(r, 200, NULL, 0) == 0) {
            (void)dz_req_write(r, body, len);
            (void)dz_req_end(r);
        }
    } else {
        (void)dz_req_respond(r, 200, NULL, 0, body, len);
    }
}

static void setup(void)
{
    if (h)
        return;
    w = fuzz_h2_engine(&h, on_headers, on_request);
    verbose = getenv("FUZZ_H2_VERBOSE") ? atoi(getenv("FUZZ_H2_VERBOSE")) : 0;
}

/* ---------- the input, read step by step ---------- */

struct in {
    const uint8_t *p;
    size_t left;
};

static uint8_t byte(struct in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static uint32_t u32(struct in *in)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v = v << 8 | byte(in);
    return v;
}

/* ---------- the connection ---------- */

struct run {
    struct dz_h2conn *c;
    struct snap before;  /* taken before the last flush that had a session */
    int32_t next_stream; /* the client's next new stream id */
};

/* A given-back session rebuilt (as dz_h2conn_feed or dz_h2conn_goaway would
 * do first) and compared with the one that was freed. */
static void rebuild_checked(struct run *run)
{
    struct dz_h2conn *c = run->c;
    bool settled = c->is_given_back;
    unsigned requests = n.requests;

    if (!c->is_open || c->ngh)
        return;
    if (!run->before.valid)
        fail("given back without a session seen");
    if (dz_h2conn_rebuild(c) != 0)
        fail("a given-back session could not be rebuilt");
    n.rebuilds++;
    for (size_t i = 0; i < NSNAP; i++)
        if (nghttp2_session_get_remote_settings(c->ngh, snap_ids[i]) != run->before.settings[i])
            fail("a client setting changed across the rebuild");
    if (nghttp2_session_get_last_proc_stream_id(c->ngh) != run->before.last_stream)
        fail("the last stream changed across the rebuild");
    if (nghttp2_session_get_remote_window_size(c->ngh) !=
        (settled ? c->kept_window : run->before.window))
        fail("the send window changed across the rebuild");
    if (settled && (nghttp2_session_get_hd_inflate_dynamic_table_size(c->ngh) != 0 ||
                    nghttp2_session_get_hd_deflate_dynamic_table_size(c->ngh) != 0))
        fail("HPACK state after a settled rebuild");
    if (c->nstreams != 0 || c->streams || n.requests != requests || c->is_rebuilding)
        fail("the rebuild made a request");
}

/* Dirty connections flushed and posted work run, as one loop iteration. */
static void loop_once(struct run *run)
{
    struct dz_h2conn *c = run->c;
    bool had = c->ngh != NULL;

    if (had)
        snap_take(c, &run->before);
    dz_worker_flush_dirty(w);
    ev_run(w->loop, EVRUN_NOWAIT);
    if (c->ngh)
        snap_take(c, &run->before);
    dz_worker_flush_dirty(w);
    if (had && !c->ngh && c->is_open) {
        if (c->is_given_back)
            n.given_back++;
        else
            n.replays++;
    }
}

static void feed(struct run *run, const uint8_t *p, size_t len)
{
    struct dz_h2conn *c = run->c;

    if (!c->is_open)
        return;
    rebuild_checked(run);
    if (dz_h2conn_feed(c, p, len) != 0)
        dz_h2conn_close(c);
    loop_once(run);
}

/* A built HEADERS frame fed: its id counts from the next frame on. */
static void feed_headers(struct run *run, const uint8_t *p, size_t len, uint32_t sid)
{
    feed(run, p, len);
    if (sid > ids.headers_max)
        ids.headers_max = sid;
}

/* A stream id from one byte: the last one used, the one before, a new one,
 * stream 0, one further on, or a given one (1 to 63). */
static uint32_t pick_stream(struct run *run, struct in *in, bool opening)
{
    uint8_t b = byte(in);
    int32_t last = run->next_stream - 2;

    switch (b & 7) {
    case 0:
        if (!opening)
            return last > 0 ? (uint32_t)last : 1;
        /* fall through */
    case 1:
    case 2: {
        uint32_t id = (uint32_t)run->next_stream;
        run->next_stream += 2;
        return id;
    }
    case 3:
        return last > 2 ? (uint32_t)(last - 2) : 1;
    case 4:
        return 0;
    case 5:
        return (uint32_t)run->next_stream + 2u * (b >> 3);
    case 6:
        return 2u * (b >> 3) + 1;
    default:
        return last > 0 ? (uint32_t)last : 1;
    }
}

/* A request's header block: static-table fields and literals, one the
 * server's decoder indexes (x-token, RFC 7541 6.2.1), a reference to an
 * entry of an earlier block, table size updates at its start (0, 4096, or
 * over the setting). */
static size_t header_block(struct in *in, uint8_t *p)
{
    static const char *const paths[] = {"/", "/big", "/later", "/stream"};
    uint8_t b = byte(in);
    uint8_t *s = p;
    const char *path = paths[b & 3];
    size_t plen = strlen(path);

    /* At the start: what a client says after SETTINGS_HEADER_TABLE_SIZE 0
     * and 4096 (RFC 7541 4.2: the smallest, then the last), or less, or
     * more than allowed. */
    switch ((b >> 2) & 3) {
    case 1:
        *p++ = 0x20; /* 0 */
        break;
    case 2:
        *p++ = 0x20; /* 0, then 4096 */
        /* fall through */
    case 0:
        if ((b >> 2 & 3) == 2 || (b & 0x80)) {
            *p++ = 0x3f; /* 4096 */
            *p++ = 0xe1;
            *p++ = 0x1f;
        }
        break;
    default:
        *p++ = 0x3f; /* 4097: over the setting, a COMPRESSION_ERROR */
        *p++ = 0xe2;
        *p++ = 0x1f;
        break;
    }
    *p++ = 0x82; /* :method GET */
    *p++ = 0x86; /* :scheme http */
    *p++ = 0x04; /* :path, literal, not indexed */
    *p++ = (uint8_t)plen;
    memcpy(p, path, plen);
    p += plen;
    *p++ = 0x01; /* :authority, literal, not indexed */
    *p++ = 1;
    *p++ = 'b';
    /* An entry an earlier block put in the table (x-token): there (no
     * settle since), or not (emptied, or the session given back). */
    if (b & 0x20)
        *p++ = (uint8_t)(0x80 | (62 + (byte(in) & 3)));
    if (b & 0x10) { /* x-token: a new name and value, indexed */
        *p++ = 0x40;
        *p++ = 7;
        memcpy(p, "x-token", 7);
        p += 7;
        *p++ = 8;
        for (int i = 0; i < 8; i++)
            *p++ = (uint8_t)('a' + (byte(in) & 15));
    }
    if (b & 0x40) /* a size update after a field: a COMPRESSION_ERROR */
        *p++ = 0x20;
    return (size_t)(p - s);
}

/* One step.  false: the input is spent. */
static bool step(struct run *run, struct in *in)
{
    uint8_t f[256], *p;
    uint8_t op;
    struct dz_h2conn *c = run->c;

    if (in->left == 0 || !c->is_open)
        return false;
    op = byte(in);
    if (verbose > 1)
        fprintf(stderr, "step %u: session %s, %u stream(s), settled %d, unacked %u\n", op % 13,
                c->ngh             ? "on"
                : c->is_given_back ? "given back"
                                   : "replay",
                c->nstreams, c->is_settled, c->settings_unacked);
    switch (op % 13) {
    case 0: { /* arbitrary client bytes */
        size_t len = byte(in);
        if (len > in->left)
            len = in->left;
        ids.has_raw = true;
        feed(run, in->p, len);
        in->p += len;
        in->left -= len;
        break;
    }
    case 1: /* SETTINGS ACK (missing, once or more: the fuzzer's choice) */
        dz_h2_put_frame_head(f, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
        feed(run, f, 9);
        break;
    case 2: { /* SETTINGS, one or two entries */
        size_t k = (op >> 4 & 1) + 1;
        p = dz_h2_put_frame_head(f, 6 * k, NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
        for (size_t i = 0; i < k; i++) {
            uint8_t id = byte(in) % 10;
            *p++ = 0;
            *p++ = id;
            p = dz_h2_put_u32(p, id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE ? u32(in) & 0x7fffffff
                                                                            : u32(in));
        }
        feed(run, f, (size_t)(p - f));
        break;
    }
    case 3: { /* a request (HEADERS, END_STREAM or not) */
        uint32_t sid = pick_stream(run, in, true);
        size_t len = header_block(in, f + 9);
        dz_h2_put_frame_head(f, len, NGHTTP2_HEADERS,
                             NGHTTP2_FLAG_END_HEADERS | (op & 0x10 ? 0 : NGHTTP2_FLAG_END_STREAM),
                             sid);
        feed_headers(run, f, 9 + len, sid);
        break;
    }
    case 4: { /* DATA */
        uint32_t sid = pick_stream(run, in, false);
        size_t len = byte(in) % 64;
        dz_h2_put_frame_head(f, len, NGHTTP2_DATA, op & 0x10 ? NGHTTP2_FLAG_END_STREAM : 0, sid);
        memset(f + 9, 'd', len);
        feed(run, f, 9 + len);
        break;
    }
    case 5: { /* WINDOW_UPDATE */
        uint32_t sid = op & 0x10 ? pick_stream(run, in, false) : 0;
        uint32_t inc = op & 0x20 ? u32(in) & 0x7fffffff : (uint32_t)byte(in) << 8;
        p = dz_h2_put_frame_head(f, 4, NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE, sid);
        dz_h2_put_u32(p, inc);
        feed(run, f, 13);
        break;
    }
    case 6: { /* PRIORITY */
        uint32_t sid = pick_stream(run, in, false);
        uint32_t dep = pick_stream(run, in, false);
        p = dz_h2_put_frame_head(f, 5, NGHTTP2_PRIORITY, NGHTTP2_FLAG_NONE, sid);
        p = dz_h2_put_u32(p, dep | (op & 0x10 ? 0x80000000u : 0));
        *p = byte(in);
        feed(run, f, 14);
        break;
    }
    case 7: { /* RST_STREAM (on the kept stream, mostly) */
        uint32_t sid = pick_stream(run, in, false);
        p = dz_h2_put_frame_head(f, 4, NGHTTP2_RST_STREAM, NGHTTP2_FLAG_NONE, sid);
        dz_h2_put_u32(p, byte(in) & 15);
        feed(run, f, 13);
        break;
    }
    case 8: /* PING, or a PING ACK nobody asked for */
        p = dz_h2_put_frame_head(f, 8, NGHTTP2_PING, op & 0x10 ? NGHTTP2_FLAG_ACK : 0, 0);
        memset(p, 'p', 8);
        feed(run, f, 17);
        break;
    case 9: { /* the client's GOAWAY */
        p = dz_h2_put_frame_head(f, 8, NGHTTP2_GOAWAY, NGHTTP2_FLAG_NONE, 0);
        p = dz_h2_put_u32(p, 0);
        dz_h2_put_u32(p, byte(in) & 15);
        feed(run, f, 17);
        break;
    }
    case 10: { /* idle now: the connection timer, DZ_H2_SETTLE_MS later */
        bool was_settled = c->is_settled;
        /* The clock moves by the idle start moving back (repeated, the
         * idle timeout comes too); the timer runs as libev would, then is
         * stopped: this harness says when time passes. */
        c->t_idle -= DZ_H2_SETTLE_MS / 1000.0;
        if (!c->ngh && c->t_idle + w->h->limits.idle_timeout_ms / 1000.0 <= ev_now(w->loop))
            rebuild_checked(run); /* the idle timeout's GOAWAY rebuilds first */
        if (c->is_open) {
            ev_invoke(w->loop, &c->timer, EV_TIMER);
            ev_timer_stop(w->loop, &c->timer);
        }
        if (c->is_settled && !was_settled)
            n.settles++;
        loop_once(run);
        break;
    }
    case 11: /* the server drains (shutdown, idle timeout) */
        rebuild_checked(run);
        dz_h2conn_goaway(c);
        loop_once(run);
        break;
    default: /* HEADERS then CONTINUATION, the block split anywhere */
    {
        uint32_t sid = pick_stream(run, in, true);
        uint8_t blk[128];
        size_t len = header_block(in, blk);
        size_t cut = byte(in) % (len + 1);
        dz_h2_put_frame_head(f, cut, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, sid);
        memcpy(f + 9, blk, cut);
        dz_h2_put_frame_head(f + 9 + cut, len - cut, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS,
                             sid);
        memcpy(f + 18 + cut, blk + cut, len - cut);
        feed_headers(run, f, 18 + len, sid);
        break;
    }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct run run;
    struct in in = {data, size};

    setup();
    memset(&n, 0, sizeof(n));
    memset(&ids, 0, sizeof(ids));
    memset(&run, 0, sizeof(run));
    run.next_stream = 1;
    if (dz_h2conn_new(w, &fuzz_listener, -1, NULL, "192.0.2.1", &run.c) != 0)
        return 0;
    run.c->refs++;   /* keep it inspectable after a close */
    loop_once(&run); /* our SETTINGS */
    feed(&run, preface, sizeof(preface) - 1);
    while (step(&run, &in))
        ;
    if (verbose > 1)
        fprintf(stderr, "end: connection %s\n", run.c->is_open ? "open" : "closed");
    dz_h2conn_close(run.c);
    loop_once(&run);
    dz_h2conn_unref(run.c);
    if (w->live_reqs != 0 || w->conns != NULL || w->dirty != NULL || n.closes != n.requests)
        abort();
    if (verbose)
        fprintf(stderr,
                "size %zu: %u request(s), %u settle(s), %u given back after streams, %u before, "
                "%u rebuild(s)\n",
                size, n.requests, n.settles, n.given_back, n.replays, n.rebuilds);
    return 0;
}
