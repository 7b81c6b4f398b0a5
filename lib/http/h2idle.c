/*
 * h2idle.c - an idle connection's nghttp2 session given back and rebuilt
 * (memory per idle connection, docs/internals/httpd.md "An idle session
 * given back").
 *
 * nghttp2 1.52 gives a server session about 5 KB at once (the session
 * object, two HPACK ring buffers), more once streams were used (the stream
 * map, the closed streams RFC 9113 needs, the client's HPACK entries), and
 * cannot shrink one.  So while a connection is idle its session is freed,
 * and rebuilt before it is used again from the little that describes it:
 *
 * - before the first stream: the client's own bytes (the preface, SETTINGS
 *   and their ACK, WINDOW_UPDATE, PING, PRIORITY: a few dozen), replayed
 *   into a new session whose answers (sent the first time) are dropped;
 * - after streams ("settled"): once the connection has been idle for
 *   DZ_H2_SETTLE_MS, the client is asked to empty its HPACK encoder table
 *   (SETTINGS_HEADER_TABLE_SIZE 0, then 4096 again, RFC 7541 4.2) and our
 *   encoder never indexes (the option in h2session.c, as nginx does); when
 *   both are acknowledged, no HPACK state is left, and what remains is the
 *   client's settings, our send window and the last stream's id.  Those are
 *   kept in the connection (a few dozen bytes) and the new session is given
 *   frames that rebuild them: SETTINGS, a SETTINGS ACK, a WINDOW_UPDATE and
 *   a header-only request on the last stream (its request never reaches the
 *   application), so that stream ids go on as before; that stream is reset,
 *   or, when the client's window for us had not come back to its initial
 *   size, answered with as many bytes as it lacks (never sent).  Closed streams are forgotten: a
 * frame on one is then ignored like one on a stream never seen (RFC 9113 5.1 allows both).
 *
 * nghttp2 is deterministic: the rebuilt session is the freed one as far as
 * the client can tell.  Runs on the connection's thread, never inside
 * nghttp2 (the callers check in_ngh).
 */
#include "http/httpd_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"

#include "base/compat.h"

/* Bytes kept at most before the first stream: a browser's preface,
 * SETTINGS, WINDOW_UPDATE and a few PRIORITY frames fit. */
#define DZ_H2_REPLAY_MAX 512

/* The client's settings kept while settled (ENABLE_CONNECT_PROTOCOL is a
 * server's setting only). */
static const int32_t kept_ids[DZ_H2_KEPT_SETTINGS] = {
    NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,      NGHTTP2_SETTINGS_ENABLE_PUSH,
    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
    NGHTTP2_SETTINGS_MAX_FRAME_SIZE,         NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
    NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES,
};
/* Their values before the client sends any (RFC 9113 6.5.2). */
static const uint32_t kept_defaults[DZ_H2_KEPT_SETTINGS] = {
    4096, 1, UINT32_MAX, NGHTTP2_INITIAL_WINDOW_SIZE, 16384, UINT32_MAX, 0,
};

/* The settle's two SETTINGS: the client's HPACK table emptied, then its
 * size back to the default. */
static const nghttp2_settings_entry table_empty = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0};
static const nghttp2_settings_entry table_back = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096};

int dz_h2conn_session_new(struct dz_h2conn *c)
{
    const struct dz_httpd_limits *lim = &c->w->h->limits;
    nghttp2_settings_entry iv[3];
    uint32_t win;

    dz_h2_arena_init(&c->arena);
    if (nghttp2_session_server_new3(&c->ngh, c->w->h->h2cb, c, c->w->h->h2opt, &c->arena.mem) !=
        0) {
        c->ngh = NULL;
        return DZ_ERR_NOMEM;
    }
    dz_h2_arena_mark_framebuf(&c->arena);
    win = lim->max_body_bytes < NGHTTP2_INITIAL_WINDOW_SIZE ? NGHTTP2_INITIAL_WINDOW_SIZE
          : lim->max_body_bytes > DZ_H2_STREAM_WINDOW       ? DZ_H2_STREAM_WINDOW
                                                            : (uint32_t)lim->max_body_bytes;
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = lim->max_concurrent_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = win;
    iv[2].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[2].value = lim->max_header_bytes;
    /* No SETTINGS_NO_RFC7540_PRIORITIES: with it nghttp2 skips PRIORITY
     * frames unparsed, so one on stream 0 or depending on itself would not
     * be the PROTOCOL_ERROR RFC 9113 5.3.1 and 6.3 require, and it keeps no
     * closed streams (they live in the priority tree).  nghttp2 bounds the
     * idle streams PRIORITY frames create like the closed ones. */
    if (nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0, DZ_H2_CONN_WINDOW) !=
            0) {
        nghttp2_session_del(c->ngh);
        c->ngh = NULL;
        return DZ_ERR_NOMEM;
    }
    /* Counted when submitted, as nghttp2 does: it takes the ACK from then. */
    c->settings_unacked++;
    return 0;
}

/* ---------- before the first stream: the client's bytes replayed ---------- */

void dz_h2conn_replay_drop(struct dz_h2conn *c)
{
    if (c->replay)
        dz_secret_wipe(c->replay, c->replay_len);
    free(c->replay);
    c->replay = NULL;
    c->replay_len = 0;
    c->replay_off = true;
}

void dz_h2conn_replay_record(struct dz_h2conn *c, const uint8_t *p, size_t n)
{
    uint8_t *nb;

    if (c->replay_off)
        return;
    if (n > (size_t)(DZ_H2_REPLAY_MAX - c->replay_len) || !(nb = malloc(c->replay_len + n))) {
        dz_h2conn_replay_drop(c);
        return;
    }
    if (c->replay)
        memcpy(nb, c->replay, c->replay_len);
    memcpy(nb + c->replay_len, p, n);
    /* A HEADERS frame cut by a read may be in it (a cookie): wiped. */
    if (c->replay)
        dz_secret_wipe(c->replay, c->replay_len);
    free(c->replay);
    c->replay = nb;
    c->replay_len = (uint16_t)(c->replay_len + n);
}

/* The kept bytes are the preface and whole frames of the kinds that
 * change nothing but settings, windows and the priority tree. */
static bool replay_is_plain(const struct dz_h2conn *c)
{
    size_t off = NGHTTP2_CLIENT_MAGIC_LEN;

    if (c->replay_len < off)
        return false;
    while (off < c->replay_len) {
        const uint8_t *h = c->replay + off;
        size_t len;
        if (c->replay_len - off < 9)
            return false;
        len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        if (h[3] != NGHTTP2_SETTINGS && h[3] != NGHTTP2_PING && h[3] != NGHTTP2_WINDOW_UPDATE &&
            h[3] != NGHTTP2_PRIORITY)
            return false;
        if (len > c->replay_len - off - 9)
            return false;
        off += 9 + len;
    }
    return true;
}

/* ---------- after streams: settled ---------- */

void dz_h2conn_track_frames(struct dz_h2conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = 1;

        if (c->in_magic_left) {
            k = n < c->in_magic_left ? n : c->in_magic_left;
            c->in_magic_left = (uint8_t)(c->in_magic_left - k);
        } else if (c->in_frame_left) {
            k = n < c->in_frame_left ? n : c->in_frame_left;
            c->in_frame_left -= (uint32_t)k;
        } else {
            /* A header byte; the first three are the payload's length. */
            if (c->in_head_got < 3)
                c->in_frame_len = c->in_frame_len << 8 | *p;
            if (++c->in_head_got == 9) {
                c->in_frame_left = c->in_frame_len;
                c->in_frame_len = 0;
                c->in_head_got = 0;
            }
        }
        p += k;
        n -= k;
    }
}

static bool between_frames(const struct dz_h2conn *c)
{
    return !c->in_magic_left && !c->in_head_got && !c->in_frame_left;
}

/* Nothing under way and nothing owed either way: the state a session
 * could be rebuilt from, but for HPACK (checked by the callers). */
static bool is_quiet(const struct dz_h2conn *c)
{
    return c->ngh && !c->in_ngh && !c->is_draining && !c->is_close_wanted && c->nstreams == 0 &&
           !c->closed_head && c->out_len == c->out_off && !nghttp2_session_want_write(c->ngh);
}

void dz_h2conn_settle(struct dz_h2conn *c)
{
    int32_t unacked;

    if (!c->is_open || !c->replay_off || c->is_settled || c->settings_unacked || !is_quiet(c) ||
        nghttp2_session_get_last_proc_stream_id(c->ngh) <= 0)
        return;
    c->is_settled = true;
    /* Request bodies received and not yet given back to the client's
     * window (nghttp2 waits for half the window): given back now, so that
     * the rebuilt session's full window is the client's view too. */
    unacked = nghttp2_session_get_effective_recv_data_length(c->ngh);
    if (unacked > 0 && nghttp2_submit_window_update(c->ngh, NGHTTP2_FLAG_NONE, 0, unacked) != 0)
        return;
    /* Two SETTINGS frames: a client applies each when it reads it, so its
     * encoder sees the table emptied even if it only keeps the last value
     * of a frame.  nghttp2 empties our decoder's table at the first ACK. */
    if (nghttp2_session_get_hd_inflate_dynamic_table_size(c->ngh) > 0) {
        if (nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, &table_empty, 1) != 0)
            return;
        c->settings_unacked++;
        c->empty_unacked = true;
        if (nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, &table_back, 1) != 0)
            return; /* never given back: the table is not emptied for good */
        c->settings_unacked++;
    }
    dz_h2conn_mark_dirty(c); /* sent, and given back, by the flush */
}

/* Free a settled session whose HPACK state is empty on both sides. */
static bool give_back_settled(struct dz_h2conn *c)
{
    if (!c->is_settled || c->settings_unacked || !is_quiet(c) || !between_frames(c) ||
        nghttp2_session_get_hd_inflate_dynamic_table_size(c->ngh) != 0 ||
        nghttp2_session_get_hd_deflate_dynamic_table_size(c->ngh) != 0 ||
        nghttp2_session_get_effective_recv_data_length(c->ngh) != 0 ||
        nghttp2_session_get_remote_window_size(c->ngh) < 0 ||
        nghttp2_session_get_last_proc_stream_id(c->ngh) <= 0)
        return false;
    /* A stream refused above the last one processed: nghttp2 ignores a
     * request on its id again (ids never go back), a session rebuilt from
     * the last processed one would take it.  Kept until a later stream. */
    if (c->headers_stream > nghttp2_session_get_last_proc_stream_id(c->ngh))
        return false;
    /* A send window below the initial one is rebuilt by sending (into the
     * void) that many bytes on the last stream, which its window must
     * allow. */
    if (NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE - nghttp2_session_get_remote_window_size(c->ngh) >
        (int32_t)nghttp2_session_get_remote_settings(c->ngh, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE))
        return false;
    for (int i = 0; i < DZ_H2_KEPT_SETTINGS; i++)
        c->kept_settings[i] = nghttp2_session_get_remote_settings(c->ngh, kept_ids[i]);
    c->kept_window = nghttp2_session_get_remote_window_size(c->ngh);
    c->kept_stream = nghttp2_session_get_last_proc_stream_id(c->ngh);
    nghttp2_session_del(c->ngh);
    c->ngh = NULL;
    c->is_given_back = true;
    return true;
}

bool dz_h2conn_give_back(struct dz_h2conn *c)
{
    if (c->replay_off)
        return give_back_settled(c);
    if (!c->replay || !is_quiet(c) || nghttp2_session_get_last_proc_stream_id(c->ngh) != 0 ||
        !replay_is_plain(c))
        return false;
    nghttp2_session_del(c->ngh);
    c->ngh = NULL;
    return true;
}

uint8_t *dz_h2_put_frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, int32_t sid)
{
    *p++ = (uint8_t)(len >> 16);
    *p++ = (uint8_t)(len >> 8);
    *p++ = (uint8_t)len;
    *p++ = type;
    *p++ = flags;
    *p++ = (uint8_t)((uint32_t)sid >> 24);
    *p++ = (uint8_t)((uint32_t)sid >> 16);
    *p++ = (uint8_t)((uint32_t)sid >> 8);
    *p++ = (uint8_t)sid;
    return p;
}

uint8_t *dz_h2_put_u32(uint8_t *p, uint32_t v)
{
    *p++ = (uint8_t)(v >> 24);
    *p++ = (uint8_t)(v >> 16);
    *p++ = (uint8_t)(v >> 8);
    *p++ = (uint8_t)v;
    return p;
}

/* The frames a new session is given to become the settled one: the
 * client's SETTINGS (those not at their defaults), its ACK of ours, its
 * window beyond the initial one, and a request on its last stream (GET /,
 * static-table and unindexed fields only: no HPACK state). */
static size_t settled_frames(const struct dz_h2conn *c, uint8_t *buf)
{
    static const uint8_t block[] = {0x82, 0x87, 0x84, 0x01, 0x01, 'x'};
    uint8_t *p = buf, *set;
    size_t n = 0;

    memcpy(p, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    p += NGHTTP2_CLIENT_MAGIC_LEN;
    set = p;
    p += 9;
    for (int i = 0; i < DZ_H2_KEPT_SETTINGS; i++) {
        if (c->kept_settings[i] == kept_defaults[i])
            continue;
        *p++ = (uint8_t)(kept_ids[i] >> 8);
        *p++ = (uint8_t)kept_ids[i];
        p = dz_h2_put_u32(p, c->kept_settings[i]);
        n += 6;
    }
    (void)dz_h2_put_frame_head(set, n, NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
    p = dz_h2_put_frame_head(p, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    if (c->kept_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
        p = dz_h2_put_frame_head(p, 4, NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE, 0);
        p = dz_h2_put_u32(p, (uint32_t)(c->kept_window - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE));
    }
    p = dz_h2_put_frame_head(p, sizeof(block), NGHTTP2_HEADERS,
                             NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, c->kept_stream);
    memcpy(p, block, sizeof(block));
    p += sizeof(block);
    return (size_t)(p - buf);
}

/* The settled session's decoder expected a size update to 0 at the start
 * of the client's next header block (RFC 7541 4.2): the rebuilt one is
 * brought to the same state the same way, by our two SETTINGS (into the
 * void, like the rest of the rebuild's output) and the client's ACKs. */
static int owe_size_update(struct dz_h2conn *c)
{
    uint8_t acks[18];

    (void)dz_h2_put_frame_head(acks, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    (void)dz_h2_put_frame_head(acks + 9, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    if (nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, &table_empty, 1) != 0 ||
        nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, &table_back, 1) != 0)
        return -1;
    return nghttp2_session_mem_recv(c->ngh, acks, sizeof(acks)) == (ssize_t)sizeof(acks) ? 0 : -1;
}

/* The body of the answer that spends the rebuilt session's send window
 * down to the kept one: zeros, never sent. */
static ssize_t spend_window(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    size_t *left = source->ptr;
    size_t n = length < *left ? length : *left;

    memset(buf, 0, n);
    *left -= n;
    if (*left == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The last stream of a settled session being rebuilt ends as it did:
 * answered with as many bytes as the client's window lacks, or reset. */
static int end_kept_stream(struct dz_h2conn *c, size_t *left)
{
    static const nghttp2_nv status = {(uint8_t *)":status", (uint8_t *)"200", 7, 3,
                                      NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider prd;

    if (c->kept_window >= NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        return nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, c->kept_stream,
                                         NGHTTP2_NO_ERROR);
    *left = (size_t)(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE - c->kept_window);
    prd.source.ptr = left;
    prd.read_callback = spend_window;
    return nghttp2_submit_response(c->ngh, c->kept_stream, &status, 1, &prd);
}

int dz_h2conn_rebuild(struct dz_h2conn *c)
{
    uint8_t settled[NGHTTP2_CLIENT_MAGIC_LEN + 9 + 6 * DZ_H2_KEPT_SETTINGS + 9 + 13 + 9 + 8];
    const uint8_t *in = c->replay, *data;
    size_t len = c->replay_len;
    ssize_t rv;
    ssize_t n;

    uint8_t unacked = c->settings_unacked;
    size_t left = 0;

    if (dz_h2conn_session_new(c) != 0)
        return DZ_ERR_NOMEM;
    if (c->is_given_back) {
        len = settled_frames(c, settled);
        in = settled;
    }
    c->in_ngh = true;
    c->is_rebuilding = true;
    rv = nghttp2_session_mem_recv(c->ngh, in, len);
    if (c->is_given_back && rv == (ssize_t)len &&
        (end_kept_stream(c, &left) != 0 || (c->size_update_owed && owe_size_update(c) != 0)))
        rv = -1;
    while ((n = nghttp2_session_mem_send(c->ngh, &data)) > 0)
        ; /* sent the first time */
    c->is_rebuilding = false;
    c->in_ngh = false;
    c->settings_unacked = unacked; /* our SETTINGS were sent the first time */
    c->arena.framebuf_used = true;
    c->is_given_back = false;
    if (rv != (ssize_t)len || n < 0 || left != 0 ||
        (c->kept_stream && nghttp2_session_get_last_proc_stream_id(c->ngh) != c->kept_stream)) {
        dz_log(DZ_LOG_ERROR, "h2_rebuild", "%s: the idle session could not be rebuilt", c->peer_ip);
        return DZ_ERR_STATE;
    }
    return 0;
}
