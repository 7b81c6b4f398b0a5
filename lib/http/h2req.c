/*
 * h2req.c - one HTTP/2 request (stream) of the engine: its arena, the fields
 * and body received, the dz_req_* accessors and answering API, and the data
 * provider that feeds the response body to nghttp2.  It never calls
 * nghttp2_session_mem_recv/mem_send and never frees a connection: answering
 * only submits frames and marks the connection dirty; the worker's prepare
 * watcher sends them (see h2conn.c).
 */
#include "http/httpd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "http/httpfield.h"

#include "base/compat.h"

/* ---------- allocation, arena, recycling ---------- */

struct dz_req *dz_h2req_new(struct dz_h2conn *c, int32_t stream_id)
{
    struct dz_worker *w = c->w;
    const struct dz_httpd_limits *lim = &w->h->limits;
    struct dz_req *r = w->free_reqs;

    if (r) {
        w->free_reqs = r->free_next;
        w->nfree_reqs--;
    } else {
        r = malloc(sizeof(*r));
        if (!r)
            return NULL;
    }
    memset(r, 0, offsetof(struct dz_req, out_inline));
    r->c = c;
    r->stream_id = stream_id;
    r->refs = 1;
    r->method = r->path = r->scheme = r->authority = r->host = "";
    r->body_limit = lim->max_body_bytes;
    dz_buf_init(&r->body, r->body_limit);
    r->out = r->out_inline;
    r->out_cap = sizeof(r->out_inline);
    c->refs++;
    w->live_reqs++;
    return r;
}

void dz_h2req_out_account(struct dz_req *r)
{
    struct dz_h2conn *c = r->c;
    size_t now = r->out_len - r->out_off;

    if (now == r->out_counted)
        return;
    if (now > r->out_counted) {
        c->out_buffered += now - r->out_counted;
        atomic_fetch_add_explicit(&c->w->h->out_buffered, now - r->out_counted,
                                  memory_order_relaxed);
    } else {
        c->out_buffered -= r->out_counted - now;
        atomic_fetch_sub_explicit(&c->w->h->out_buffered, r->out_counted - now,
                                  memory_order_relaxed);
    }
    r->out_counted = now;
}

/* A zero-window reader: every answer it is sent stays here.  Over the
 * connection's budget, that connection goes; over the process's, the
 * connection of this worker holding the most goes (the one stalling, not
 * whoever answered last).  The connection is closed at the loop's next
 * flush.  Returns true when r's own connection is the one to go. */
static bool enforce_budgets(struct dz_req *r)
{
    struct dz_h2conn *c = r->c;
    struct dz_worker *w = c->w;
    const struct dz_httpd_limits *lim = &w->h->limits;
    struct dz_h2conn *victim = NULL;

    if (lim->max_buffered_per_connection && c->out_buffered > lim->max_buffered_per_connection) {
        victim = c;
    } else if (lim->max_buffered_total &&
               atomic_load_explicit(&w->h->out_buffered, memory_order_relaxed) >
                   lim->max_buffered_total) {
        for (struct dz_h2conn *x = w->conns; x; x = x->next) {
            if (!victim || x->out_buffered > victim->out_buffered)
                victim = x;
        }
    }
    if (!victim || victim->out_buffered == 0)
        return false;
    if (!victim->is_close_wanted) {
        atomic_fetch_add_explicit(&w->h->closed_stalled, 1, memory_order_relaxed);
        dz_log(DZ_LOG_WARN, "answer_buffer",
               "%s: %zu unsent answer bytes (the client does not read): connection closed",
               victim->peer_ip, victim->out_buffered);
        /* Closed when the loop flushes, not here: this runs inside the
         * application's dz_req_* call, and closing now would run the
         * streams' close callbacks (which free the application's state)
         * under its feet. */
        victim->is_close_wanted = true;
        dz_h2conn_mark_dirty(victim);
    }
    return victim == c;
}

void dz_h2req_wipe_out(struct dz_req *r)
{
    if (r->out != r->out_inline) {
        dz_secret_wipe(r->out, r->out_cap);
        free(r->out);
    }
    dz_secret_wipe(r->out_inline, r->out_inline_used);
    r->out_inline_used = 0;
    r->out = r->out_inline;
    r->out_cap = sizeof(r->out_inline);
    r->out_len = r->out_off = 0;
    dz_h2req_out_account(r);
}

/* Everything the client sent (fields with their bearer tokens and cookies,
 * the body with its password) and everything we answered (a login answer
 * holds the session token) is wiped before the object is reused or freed:
 * the next request on this worker, or a heap dump, must not find it.  Only
 * the bytes used are wiped, so a small request costs a small wipe. */
static void req_release(struct dz_req *r)
{
    struct dz_h2conn *c = r->c;
    struct dz_worker *w = c->w;
    struct dz_arena_chunk *ch = r->chunks;

    while (ch) {
        struct dz_arena_chunk *next = ch->next;
        dz_secret_wipe(ch->data, ch->used);
        free(ch);
        ch = next;
    }
    r->chunks = NULL;
    dz_secret_wipe(r->arena, r->arena_used);
    r->arena_used = 0;
    dz_buf_wipe(&r->body);
    dz_h2req_wipe_out(r);
    w->live_reqs--;
    if (w->nfree_reqs < DZ_H2_REQ_FREELIST) {
        r->free_next = w->free_reqs;
        w->free_reqs = r;
        w->nfree_reqs++;
    } else {
        free(r);
    }
    dz_h2conn_unref(c);
}

void dz_h2req_freelist_clear(struct dz_worker *w)
{
    while (w->free_reqs) {
        struct dz_req *r = w->free_reqs;
        w->free_reqs = r->free_next;
        free(r);
    }
    w->nfree_reqs = 0;
}

/* Bump allocator: the inline block first, then chunks of at least 4 KiB.
 * Everything goes when the request is released; total use is bounded by the
 * header limits (fields are the only things allocated here). */
static void *arena_alloc(struct dz_req *r, size_t n)
{
    const size_t align = sizeof(max_align_t);
    struct dz_arena_chunk *ch;
    size_t cap;

    n = (n + align - 1) & ~(align - 1);
    if (n <= sizeof(r->arena) - r->arena_used) {
        void *p = r->arena + r->arena_used;
        r->arena_used += n;
        return p;
    }
    ch = r->chunks;
    if (ch && n <= ch->cap - ch->used) {
        void *p = (unsigned char *)ch->data + ch->used;
        ch->used += n;
        return p;
    }
    cap = n > 4096 ? n : 4096;
    ch = malloc(sizeof(*ch) + cap);
    if (!ch)
        return NULL;
    ch->cap = cap;
    ch->used = n;
    ch->next = r->chunks;
    r->chunks = ch;
    return ch->data;
}

static char *arena_strndup(struct dz_req *r, const uint8_t *p, size_t n)
{
    char *s = arena_alloc(r, n + 1);

    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---------- what the client sent ---------- */

static bool name_is(const uint8_t *name, size_t nlen, const char *lit)
{
    size_t l = strlen(lit);
    return nlen == l && memcmp(name, lit, l) == 0;
}

int dz_h2req_add_field(struct dz_req *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen)
{
    const struct dz_httpd_limits *lim = &r->c->w->h->limits;
    uint64_t bytes = (uint64_t)r->field_bytes + nlen + vlen + 32; /* RFC 7541 4.1 */
    char *n = NULL;
    char *v = NULL;

    if (r->nall_fields + 1 > lim->max_header_count || bytes > lim->max_header_bytes)
        return DZ_ERR_TOOBIG;
    r->nall_fields++;
    r->field_bytes = (uint32_t)bytes;
    v = arena_strndup(r, value, vlen);
    if (!v)
        return DZ_ERR_NOMEM;
    if (nlen > 0 && name[0] == ':') {
        /* nghttp2 has already checked pseudo-header names and placement. */
        if (name_is(name, nlen, ":method")) {
            r->method = v;
            r->is_head = strcmp(v, "HEAD") == 0;
        } else if (name_is(name, nlen, ":path")) {
            r->path = v;
        } else if (name_is(name, nlen, ":scheme")) {
            r->scheme = v;
        } else if (name_is(name, nlen, ":authority")) {
            r->authority = v;
        }
        return 0;
    }
    n = arena_strndup(r, name, nlen);
    if (!n)
        return DZ_ERR_NOMEM;
    if (name_is(name, nlen, "host") && r->host[0] == '\0')
        r->host = v;
    if (r->nfields == r->fields_cap) {
        uint32_t cap = r->fields_cap ? r->fields_cap * 2 : 16;
        struct dz_h2field *nf = arena_alloc(r, cap * sizeof(*nf));
        if (!nf)
            return DZ_ERR_NOMEM;
        if (r->nfields)
            memcpy(nf, r->fields, r->nfields * sizeof(*nf));
        r->fields = nf;
        r->fields_cap = cap;
    }
    r->fields[r->nfields].name = n;
    r->fields[r->nfields].value = v;
    r->nfields++;
    return 0;
}

/* dz_buf_append grows with realloc, which may leave a copy of the body (a
 * password) in freed memory, and frees without wiping when the limit is
 * passed: the body grows here, by hand, wiping what it leaves behind. */
static int body_append(struct dz_buf *b, const uint8_t *p, size_t n)
{
    size_t need;
    size_t cap;
    char *nd;

    if (n > b->max || b->len > b->max - n)
        return DZ_ERR_TOOBIG;
    need = b->len + n + 1;
    if (need > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2; /* need <= max + 1, and max is a body limit: no overflow */
        if (cap > b->max + 1)
            cap = b->max + 1;
        nd = malloc(cap);
        if (!nd)
            return DZ_ERR_NOMEM;
        if (b->len)
            memcpy(nd, b->data, b->len);
        if (b->data) {
            dz_secret_wipe(b->data, b->cap);
            free(b->data);
        }
        b->data = nd;
        b->cap = cap;
    }
    /* Cannot fail now: the room is there. */
    return dz_buf_append(b, p, n);
}

void dz_h2req_add_body(struct dz_req *r, const uint8_t *p, size_t n)
{
    if (r->is_overflow || n == 0)
        return;
    if (body_append(&r->body, p, n) != 0) {
        /* Over the limit (or out of memory, handled the same way so the app
         * answers 413 rather than seeing a truncated body): what was held is
         * wiped, and nothing more is buffered. */
        dz_buf_wipe(&r->body);
        r->is_overflow = true;
    }
}

struct dz_worker *dz_req_worker(struct dz_req *r)
{
    return r->c->w;
}

const char *dz_req_method(const struct dz_req *r)
{
    return r->method;
}

const char *dz_req_path(const struct dz_req *r)
{
    return r->path;
}

const char *dz_req_scheme(const struct dz_req *r)
{
    return r->scheme;
}

const char *dz_req_authority(const struct dz_req *r)
{
    return r->authority[0] ? r->authority : r->host;
}

const char *dz_req_header(const struct dz_req *r, const char *name)
{
    for (uint32_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].name, name) == 0)
            return r->fields[i].value;
    return NULL;
}

size_t dz_req_header_count(const struct dz_req *r)
{
    return r->nfields;
}

void dz_req_header_at(const struct dz_req *r, size_t i, const char **name, const char **value)
{
    if (i >= r->nfields) {
        *name = NULL;
        *value = NULL;
        return;
    }
    *name = r->fields[i].name;
    *value = r->fields[i].value;
}

const unsigned char *dz_req_body(const struct dz_req *r, size_t *len)
{
    *len = r->is_overflow ? 0 : r->body.len;
    if (r->is_overflow || !r->body.data)
        return (const unsigned char *)"";
    return (const unsigned char *)r->body.data;
}

bool dz_req_body_overflow(const struct dz_req *r)
{
    return r->is_overflow;
}

void dz_req_set_body_limit(struct dz_req *r, size_t max)
{
    if (r->is_delivered)
        return;
    r->body_limit = max;
    r->body.max = max;
    if (r->body.len > max) {
        dz_buf_wipe(&r->body);
        r->is_overflow = true;
    }
}

const char *dz_req_peer_ip(const struct dz_req *r)
{
    return r->c->peer_ip;
}

bool dz_req_is_tls(const struct dz_req *r)
{
    return r->c->ssl != NULL;
}

X509 *dz_req_peer_cert(const struct dz_req *r)
{
    return r->c->ssl ? SSL_get0_peer_certificate(r->c->ssl) : NULL;
}

STACK_OF(X509) * dz_req_peer_chain(const struct dz_req *r)
{
    return r->c->ssl ? SSL_get_peer_cert_chain(r->c->ssl) : NULL;
}

int dz_req_listener_tag(const struct dz_req *r)
{
    return r->c->l->tag;
}

void dz_req_set_data(struct dz_req *r, void *p)
{
    r->data = p;
}

void *dz_req_data(const struct dz_req *r)
{
    return r->data;
}

void dz_req_ref(struct dz_req *r)
{
    r->refs++;
}

void dz_req_unref(struct dz_req *r)
{
    if (!r)
        return;
    if (--r->refs == 0)
        req_release(r);
}

bool dz_req_is_closed(const struct dz_req *r)
{
    return r->is_closed;
}

void dz_req_goaway(struct dz_req *r)
{
    if (!r->is_closed)
        dz_h2conn_goaway(r->c);
}

bool dz_req_is_drain_cut(const struct dz_req *r)
{
    return r->is_drain_cut;
}

void dz_req_on_close(struct dz_req *r, void (*cb)(struct dz_req *r, void *arg), void *arg)
{
    r->on_close = cb;
    r->on_close_arg = arg;
}

/* ---------- answering ---------- */

static bool name_valid(const char *s)
{
    if (!s || !*s)
        return false;
    /* HTTP/2 field names are lower case (RFC 9113 §8.2.1). */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!dz_http_is_tchar(*p) || (*p >= 'A' && *p <= 'Z'))
            return false;
    /* Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2). */
    return !dz_http_connection_field(s);
}

static bool value_valid(const char *s)
{
    if (!s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == 0x7f || (*p < 0x20 && *p != '\t'))
            return false;
    return true;
}

static nghttp2_nv make_nv(const char *name, const char *value)
{
    nghttp2_nv nv;

    nv.name = (uint8_t *)(uintptr_t)name;
    nv.namelen = strlen(name);
    nv.value = (uint8_t *)(uintptr_t)value;
    nv.valuelen = strlen(value);
    nv.flags = NGHTTP2_NV_FLAG_NONE; /* nghttp2 copies name and value */
    return nv;
}

static int out_append(struct dz_req *r, const void *p, size_t len)
{
    size_t pending = r->out_len - r->out_off;
    unsigned char *nb;
    size_t cap;

    if (len == 0)
        return 0;
    if (len > DZ_H2_REQ_OUT_MAX - pending)
        return DZ_ERR_TOOBIG;
    if (r->out_off > 0 && r->out_cap - r->out_len < len) {
        memmove(r->out, r->out + r->out_off, pending);
        r->out_off = 0;
        r->out_len = pending;
    }
    if (r->out_cap - r->out_len < len) {
        cap = r->out_cap;
        while (cap - r->out_len < len)
            cap *= 2;
        /* Not realloc: the old block is wiped before it goes (an answer
         * may carry a session token). */
        nb = malloc(cap);
        if (!nb)
            return DZ_ERR_NOMEM;
        if (r->out_len)
            memcpy(nb, r->out, r->out_len);
        if (r->out != r->out_inline) {
            dz_secret_wipe(r->out, r->out_cap);
            free(r->out);
        }
        r->out = nb;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, len);
    r->out_len += len;
    if (r->out == r->out_inline && r->out_len > r->out_inline_used)
        r->out_inline_used = r->out_len;
    dz_h2req_out_account(r);
    if (enforce_budgets(r))
        return DZ_ERR_TOOBIG; /* r's connection goes at the flush */
    return 0;
}

ssize_t dz_h2req_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct dz_req *r = source->ptr;
    size_t avail = r->out_len - r->out_off;
    size_t n = avail < length ? avail : length;

    if (n) {
        memcpy(buf, r->out + r->out_off, n);
        r->out_off += n;
    }
    if (r->out_off == r->out_len)
        r->out_off = r->out_len = 0;
    dz_h2req_out_account(r);
    if (r->out_len == 0) {
        if (r->is_ended) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            r->is_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* Submit the response HEADERS (and the data provider when a body follows).
 * extra_cl: content-length to add, or NULL. */
static int submit_headers(struct dz_req *r, int status, const struct dz_hdr *h, size_t n,
                          const char *extra_cl, bool has_body)
{
    struct dz_h2conn *c = r->c;
    nghttp2_nv stack_nv[34];
    nghttp2_nv *nv = stack_nv;
    nghttp2_data_provider prd;
    char st[8];
    size_t k = 0;
    int rv;
    int rc = 0;

    if (status < 200 || status > 599 || n > DZ_H2_MAX_RESP_HDRS || (n && !h))
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!name_valid(h[i].name) || !value_valid(h[i].value))
            return DZ_ERR_INVAL;
    if (n + 2 > sizeof(stack_nv) / sizeof(stack_nv[0])) {
        nv = malloc((n + 2) * sizeof(*nv));
        if (!nv)
            return DZ_ERR_NOMEM;
    }
    snprintf(st, sizeof(st), "%d", status);
    nv[k++] = make_nv(":status", st);
    for (size_t i = 0; i < n; i++) {
        /* dz_req_respond computes content-length itself. */
        if (extra_cl && strcmp(h[i].name, "content-length") == 0)
            continue;
        nv[k++] = make_nv(h[i].name, h[i].value);
    }
    if (extra_cl)
        nv[k++] = make_nv("content-length", extra_cl);
    prd.source.ptr = r;
    prd.read_callback = dz_h2req_read_cb;
    rv = nghttp2_submit_response(c->ngh, r->stream_id, nv, k, has_body ? &prd : NULL);
    if (rv != 0)
        rc = rv == NGHTTP2_ERR_NOMEM ? DZ_ERR_NOMEM : DZ_ERR_STATE;
    if (nv != stack_nv)
        free(nv);
    return rc;
}

/* The response timer (running once the request is complete) has done its
 * job; before that the timer still bounds the upload and stays. */
static void answer_complete(struct dz_req *r)
{
    if (r->is_remote_done)
        ev_timer_stop(r->c->w->loop, &r->timer);
}

/* Bookkeeping common to every answer. */
static void answered(struct dz_req *r)
{
    struct dz_h2conn *c = r->c;

    r->is_answered = true;
    c->nsending++;
    /* An answer before the request is complete (on_headers, overflow, 431)
     * means on_request must not run any more. */
    r->is_delivered = true;
    dz_h2conn_mark_dirty(c);
}

int dz_req_respond(struct dz_req *r, int status, const struct dz_hdr *h, size_t n, const void *body,
                   size_t len)
{
    char cl[24];
    bool has_body;
    int rc;

    if (r->is_closed)
        return 0;
    if (r->is_answered)
        return DZ_ERR_STATE;
    if (len && !body)
        return DZ_ERR_INVAL;
    /* No body for HEAD, 204 and 304; content-length still tells the size
     * for HEAD (RFC 9110 9.3.2). */
    has_body = len > 0 && !r->is_head && status != 204 && status != 304;
    snprintf(cl, sizeof(cl), "%zu", len);
    if (has_body) {
        rc = out_append(r, body, len);
        if (rc != 0)
            return rc;
    }
    rc = submit_headers(r, status, h, n, status == 204 || status == 304 ? NULL : cl, has_body);
    if (rc != 0) {
        r->out_len = r->out_off = 0;
        dz_h2req_out_account(r);
        return rc;
    }
    r->is_ended = true;
    answered(r);
    answer_complete(r);
    return 0;
}

int dz_req_start(struct dz_req *r, int status, const struct dz_hdr *h, size_t n)
{
    int rc;

    if (r->is_closed)
        return 0;
    if (r->is_answered)
        return DZ_ERR_STATE;
    rc = submit_headers(r, status, h, n, NULL, true);
    if (rc != 0)
        return rc;
    answered(r);
    return 0;
}

static void resume(struct dz_req *r)
{
    if (r->is_deferred) {
        r->is_deferred = false;
        nghttp2_session_resume_data(r->c->ngh, r->stream_id);
    }
    dz_h2conn_mark_dirty(r->c);
}

int dz_req_write(struct dz_req *r, const void *p, size_t len)
{
    int rc;

    if (r->is_closed || r->is_rst_sent)
        return 0;
    if (!r->is_answered || r->is_ended)
        return DZ_ERR_STATE;
    if (len && !p)
        return DZ_ERR_INVAL;
    if (len == 0 || r->is_head)
        return 0;
    rc = out_append(r, p, len);
    if (rc != 0)
        return rc;
    resume(r);
    return 0;
}

int dz_req_end(struct dz_req *r)
{
    if (r->is_closed || r->is_rst_sent)
        return 0;
    if (!r->is_answered || r->is_ended)
        return DZ_ERR_STATE;
    r->is_ended = true;
    answer_complete(r);
    resume(r);
    return 0;
}

int dz_req_reset(struct dz_req *r)
{
    struct dz_h2conn *c = r->c;

    if (r->is_closed || r->is_rst_sent)
        return 0;
    /* is_ended stays false: should nghttp2 ask for the body before the
     * reset goes out, it gets "deferred", never an END_STREAM. */
    if (nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, r->stream_id,
                                  NGHTTP2_INTERNAL_ERROR) != 0)
        return DZ_ERR_NOMEM;
    r->is_rst_sent = true;
    r->out_len = r->out_off = 0;
    dz_h2req_out_account(r);
    answer_complete(r);
    dz_h2conn_mark_dirty(c);
    return 0;
}

size_t dz_req_pending(const struct dz_req *r)
{
    return r->is_closed ? 0 : r->out_len - r->out_off;
}
