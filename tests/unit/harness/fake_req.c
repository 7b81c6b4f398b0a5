/*
 * fake_req.c - see fake_req.h: the dz_req / dz_worker API in memory.
 */
#include "fake_req.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "base/err.h"

#define MAX_REQ_HEADERS 128 /* over the engine's default limits.header_count (100) */
#define MAX_RESP_HEADERS 128

struct dz_worker {
    struct ev_loop *loop;
    ev_async wake;
    ev_prepare reaper;
    ev_timer heartbeat;
    pthread_mutex_t mu;
    struct dz_post *head, *tail; /* under mu (httpd.h's nodes, as the engine's) */
    size_t nposts;               /* under mu */
    bool hold_posts;
    atomic_int holds;
    void *data;
    struct dz_req *live; /* every request not yet freed */
    struct dz_req *reap; /* answered, waiting for the loop to close them */
    void (*first_byte)(struct dz_req *r, void *arg);
    void *first_byte_arg;
};

struct field {
    char *name;
    char *value;
};

struct dz_req {
    struct dz_worker *w;
    struct dz_req *live_next, *live_prev;
    struct dz_req *reap_next;
    bool reap_queued;
    int refs;
    bool test_freed;
    char *method;
    char *path;
    struct field hdrs[MAX_REQ_HEADERS];
    size_t nhdrs;
    unsigned char *body;
    size_t body_len;
    bool overflow;
    size_t body_limit;
    char peer[64];
    char authority[256];
    bool tls;
    void *data;
    void (*on_close)(struct dz_req *r, void *arg);
    void *on_close_arg;
    bool on_close_ran;
    bool closed;
    /* the answer */
    int status;
    bool started;
    bool complete;
    bool streamed;
    bool reset; /* dz_req_reset: the answer cut, not complete */
    struct field resp[MAX_RESP_HEADERS];
    size_t nresp;
    char *out;
    size_t out_len;
    unsigned invalid;
    unsigned nomem; /* answers refused for want of memory (DZ_ERR_NOMEM) */
    char *note;
};

/* ------------------------------------------------------------- worker */

static void run_posts(struct dz_worker *w)
{
    for (;;) {
        struct dz_post *p;
        bool is_heap;

        pthread_mutex_lock(&w->mu);
        p = w->hold_posts ? NULL : w->head;
        if (p) {
            w->head = p->next;
            if (!w->head)
                w->tail = NULL;
            w->nposts--;
        }
        pthread_mutex_unlock(&w->mu);
        if (!p)
            return;
        /* A node embedded in the poster's object may go with it in fn. */
        is_heap = p->is_heap;
        p->fn(p->arg);
        if (is_heap)
            free(p);
    }
}

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    run_posts(a->data);
}

static void req_drop(struct dz_req *r);

static void close_stream(struct dz_req *r)
{
    if (r->on_close_ran)
        return;
    r->closed = true;
    r->on_close_ran = true;
    if (r->on_close)
        r->on_close(r, r->on_close_arg);
    req_drop(r); /* the engine's reference */
}

/* Streams whose answer is complete close from the loop, as the engine reaps
 * them once nghttp2 has returned. */
static void reap_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct dz_worker *w = p->data;

    while (w->reap) {
        struct dz_req *r = w->reap;
        w->reap = r->reap_next;
        r->reap_queued = false;
        close_stream(r);
    }
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    /* Only wakes EVRUN_ONCE so fake_spin can look at its clock. */
}

struct dz_worker *fake_worker_new(void)
{
    struct dz_worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (!w->loop) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->holds, 0);
    ev_async_init(&w->wake, wake_cb);
    w->wake.data = w;
    ev_async_start(w->loop, &w->wake);
    ev_prepare_init(&w->reaper, reap_cb);
    w->reaper.data = w;
    ev_prepare_start(w->loop, &w->reaper);
    ev_timer_init(&w->heartbeat, heartbeat_cb, 0.02, 0.02);
    return w;
}

void fake_worker_free(struct dz_worker *w)
{
    if (!w)
        return;
    w->hold_posts = false;
    run_posts(w);
    ev_async_stop(w->loop, &w->wake);
    ev_prepare_stop(w->loop, &w->reaper);
    ev_timer_stop(w->loop, &w->heartbeat);
    ev_loop_destroy(w->loop);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void fake_worker_set_data(struct dz_worker *w, void *data)
{
    w->data = data;
}

void fake_worker_hold_posts(struct dz_worker *w, bool hold)
{
    w->hold_posts = hold;
    if (!hold)
        ev_async_send(w->loop, &w->wake);
}

size_t fake_worker_posts_waiting(struct dz_worker *w)
{
    size_t n;

    pthread_mutex_lock(&w->mu);
    n = w->nposts;
    pthread_mutex_unlock(&w->mu);
    return n;
}

int fake_worker_holds(struct dz_worker *w)
{
    return atomic_load(&w->holds);
}

size_t fake_worker_live_reqs(struct dz_worker *w)
{
    size_t n = 0;

    for (struct dz_req *r = w->live; r; r = r->live_next)
        n++;
    return n;
}

void fake_worker_on_first_byte(struct dz_worker *w, void (*fn)(struct dz_req *r, void *arg),
                               void *arg)
{
    w->first_byte = fn;
    w->first_byte_arg = arg;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool fake_spin(struct dz_worker *w, bool (*done)(void *arg), void *arg, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    bool ok;

    ev_timer_again(w->loop, &w->heartbeat);
    /* Whatever is ready runs first, without waiting. */
    ev_run(w->loop, EVRUN_NOWAIT);
    while (!(ok = done(arg)) && now_ms() < end)
        ev_run(w->loop, EVRUN_ONCE);
    ev_timer_stop(w->loop, &w->heartbeat);
    return ok;
}

static bool answer_done(void *arg)
{
    const struct dz_req *r = arg;

    return r->complete || r->closed;
}

bool fake_spin_answer(struct dz_worker *w, struct dz_req *r, unsigned timeout_ms)
{
    return fake_spin(w, answer_done, r, timeout_ms);
}

static bool idle_done(void *arg)
{
    struct dz_worker *w = arg;

    if (atomic_load(&w->holds) != 0 || fake_worker_posts_waiting(w) != 0 || w->reap)
        return false;
    for (struct dz_req *r = w->live; r; r = r->live_next) {
        /* Requests the test still owns: only the test's reference, stream
         * closed.  Anything else is work in flight. */
        if (!r->on_close_ran || r->refs != (r->test_freed ? 0 : 1))
            return false;
    }
    return true;
}

bool fake_spin_idle(struct dz_worker *w, unsigned timeout_ms)
{
    return fake_spin(w, idle_done, w, timeout_ms);
}

/* The engine's API: any thread may post. */
static void post_queue(struct dz_worker *w, struct dz_post *p, void (*fn)(void *arg), void *arg,
                       bool is_heap)
{
    *p = (struct dz_post){NULL, fn, arg, is_heap};
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = p;
    else
        w->head = p;
    w->tail = p;
    w->nposts++;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wake);
}

int dz_worker_post_node(struct dz_worker *w, struct dz_post *node, void (*fn)(void *arg), void *arg)
{
    if (!w || !node || !fn)
        return DZ_ERR_INVAL;
    post_queue(w, node, fn, arg, false);
    return 0;
}

int dz_worker_post(struct dz_worker *w, void (*fn)(void *arg), void *arg)
{
    struct dz_post *p;

    if (!w || !fn)
        return DZ_ERR_INVAL;
    /* malloc, as the engine: a test's fail_alloc hook reaches it. */
    p = malloc(sizeof(*p));
    if (!p)
        return DZ_ERR_NOMEM;
    post_queue(w, p, fn, arg, true);
    return 0;
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
    return 0;
}

void *dz_worker_data(struct dz_worker *w)
{
    return w->data;
}

/* ------------------------------------------------------------ request */

static char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");

    if (!p)
        abort(); /* a test harness out of memory cannot report anything useful */
    return p;
}

struct dz_req *fake_req_new(struct dz_worker *w, const char *method, const char *path)
{
    struct dz_req *r = calloc(1, sizeof(*r));

    if (!r)
        abort();
    r->w = w;
    r->refs = 2; /* the engine's and the test's */
    r->method = xstrdup(method);
    r->path = xstrdup(path);
    r->body_limit = 1u << 20;
    snprintf(r->peer, sizeof(r->peer), "127.0.0.1");
    snprintf(r->authority, sizeof(r->authority), "localhost:8443");
    r->live_next = w->live;
    if (w->live)
        w->live->live_prev = r;
    w->live = r;
    return r;
}

void fake_req_add_header(struct dz_req *r, const char *name, const char *value)
{
    if (r->nhdrs >= MAX_REQ_HEADERS)
        abort();
    r->hdrs[r->nhdrs].name = xstrdup(name);
    r->hdrs[r->nhdrs].value = xstrdup(value);
    r->nhdrs++;
}

void fake_req_set_body(struct dz_req *r, const void *body, size_t len)
{
    free(r->body);
    r->body = malloc(len + 1);
    if (!r->body)
        abort();
    if (len)
        memcpy(r->body, body, len);
    r->body[len] = 0;
    r->body_len = len;
}

void fake_req_set_json(struct dz_req *r, const char *json)
{
    fake_req_add_header(r, "content-type", "application/json");
    fake_req_set_body(r, json, strlen(json));
}

void fake_req_set_body_overflow(struct dz_req *r)
{
    r->overflow = true;
    fake_req_set_body(r, "", 0);
}

void fake_req_set_peer(struct dz_req *r, const char *ip)
{
    snprintf(r->peer, sizeof(r->peer), "%s", ip);
}

void fake_req_set_authority(struct dz_req *r, const char *authority)
{
    snprintf(r->authority, sizeof(r->authority), "%s", authority);
}

void fake_req_set_tls(struct dz_req *r, bool tls)
{
    r->tls = tls;
}

static void req_destroy(struct dz_req *r)
{
    struct dz_worker *w = r->w;

    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else
        w->live = r->live_next;
    if (r->live_next)
        r->live_next->live_prev = r->live_prev;
    free(r->method);
    free(r->path);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    for (size_t i = 0; i < r->nresp; i++) {
        free(r->resp[i].name);
        free(r->resp[i].value);
    }
    free(r->body);
    free(r->out);
    free(r->note);
    free(r);
}

static void req_drop(struct dz_req *r)
{
    if (r->refs <= 0)
        abort(); /* one unref too many: the bug the refcount is there to catch */
    if (--r->refs == 0)
        req_destroy(r);
}

void fake_req_reset(struct dz_req *r)
{
    if (r->on_close_ran)
        return;
    if (r->reap_queued) {
        /* Already answered and about to close: close it now instead. */
        struct dz_req **pp = &r->w->reap;
        while (*pp && *pp != r)
            pp = &(*pp)->reap_next;
        if (*pp)
            *pp = r->reap_next;
        r->reap_queued = false;
    }
    close_stream(r);
}

void fake_req_free(struct dz_req *r)
{
    if (!r)
        return;
    if (!r->on_close_ran)
        fake_req_reset(r);
    r->test_freed = true;
    req_drop(r);
}

/* dz_req_* (httpd.h) */

struct dz_worker *dz_req_worker(struct dz_req *r)
{
    return r->w;
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
    return "https";
}

const char *dz_req_authority(const struct dz_req *r)
{
    return r->authority;
}

const char *dz_req_header(const struct dz_req *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    }
    return NULL;
}

size_t dz_req_header_count(const struct dz_req *r)
{
    return r->nhdrs;
}

void dz_req_header_at(const struct dz_req *r, size_t i, const char **name, const char **value)
{
    *name = i < r->nhdrs ? r->hdrs[i].name : "";
    *value = i < r->nhdrs ? r->hdrs[i].value : "";
}

const unsigned char *dz_req_body(const struct dz_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : (const unsigned char *)"";
}

bool dz_req_body_overflow(const struct dz_req *r)
{
    return r->overflow;
}

void dz_req_set_body_limit(struct dz_req *r, size_t max)
{
    r->body_limit = max;
}

const char *dz_req_peer_ip(const struct dz_req *r)
{
    return r->peer;
}

bool dz_req_is_tls(const struct dz_req *r)
{
    return r->tls;
}

X509 *dz_req_peer_cert(const struct dz_req *r)
{
    return NULL;
}

STACK_OF(X509) * dz_req_peer_chain(const struct dz_req *r)
{
    return NULL;
}

int dz_req_listener_tag(const struct dz_req *r)
{
    return 0;
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
    req_drop(r);
}

bool dz_req_is_closed(const struct dz_req *r)
{
    return r->closed;
}

bool dz_req_is_drain_cut(const struct dz_req *r)
{
    return false; /* the fake engine never drains */
}

void dz_req_goaway(struct dz_req *r)
{
    (void)r; /* the fake engine has one request per "connection" */
}

void dz_req_on_close(struct dz_req *r, void (*cb)(struct dz_req *r, void *arg), void *arg)
{
    if (r->closed)
        return; /* as documented: registered after the close, never called */
    r->on_close = cb;
    r->on_close_arg = arg;
}

/* The same checks as h2req.c's submit_headers. */
static bool name_valid(const char *s)
{
    static const char *const conn_specific[] = {"connection", "keep-alive", "proxy-connection",
                                                "transfer-encoding", "upgrade"};

    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    }
    for (size_t i = 0; i < sizeof(conn_specific) / sizeof(conn_specific[0]); i++) {
        if (strcmp(s, conn_specific[i]) == 0)
            return false;
    }
    return true;
}

static bool value_valid(const char *s)
{
    if (!s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    }
    return true;
}

static int check_head(struct dz_req *r, int status, const struct dz_hdr *h, size_t n)
{
    if (status < 200 || status > 599 || n > MAX_RESP_HEADERS)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (!name_valid(h[i].name) || !value_valid(h[i].value))
            goto bad;
    }
    return 0;
bad:
    r->invalid++;
    return DZ_ERR_INVAL;
}

static void record_head(struct dz_req *r, int status, const struct dz_hdr *h, size_t n,
                        bool drop_length)
{
    if (r->w->first_byte)
        r->w->first_byte(r, r->w->first_byte_arg);
    r->status = status;
    r->started = true;
    for (size_t i = 0; i < n; i++) {
        /* dz_req_respond computes content-length itself: an app's is replaced. */
        if (drop_length && strcmp(h[i].name, "content-length") == 0)
            continue;
        r->resp[r->nresp].name = xstrdup(h[i].name);
        r->resp[r->nresp].value = xstrdup(h[i].value);
        r->nresp++;
    }
}

/* The engine's own copy of an answer's head: nghttp2 copies the fields of
 * a HEADERS frame into one block (h2_malloc, a malloc a fail_alloc test
 * reaches), and dz_req_start / dz_req_respond return DZ_ERR_NOMEM when it
 * cannot.  The fake takes a block of that shape (fake_req.h) before it
 * records anything, so a test can refuse it as the engine's would be. */
static int take_head(struct dz_req *r, const struct dz_hdr *h, size_t n)
{
    size_t need = n * sizeof(*h);
    void *block;

    for (size_t i = 0; i < n; i++)
        need += strlen(h[i].name) + strlen(h[i].value) + 2;
    block = malloc(need ? need : 1);
    if (!block) {
        r->nomem++;
        return DZ_ERR_NOMEM;
    }
    free(block); /* record_head keeps its own copies */
    return 0;
}

/* Each append takes one new block of out_len + len + 1 bytes from malloc
 * (not realloc, which fail_alloc does not reach), as the engine's output
 * buffer grows by malloc (h2req.c out_append): a test can refuse exactly
 * the block of a given write. */
static int out_append(struct dz_req *r, const void *p, size_t len)
{
    char *n = malloc(r->out_len + len + 1);

    if (!n) {
        r->nomem++;
        return DZ_ERR_NOMEM;
    }
    if (r->out_len)
        memcpy(n, r->out, r->out_len);
    if (len)
        memcpy(n + r->out_len, p, len);
    free(r->out);
    r->out = n;
    r->out_len += len;
    r->out[r->out_len] = '\0';
    return 0;
}

/* The stream closes from the loop later, as the engine's does once its
 * answer or reset is out. */
static void queue_close(struct dz_req *r)
{
    if (!r->reap_queued && !r->on_close_ran) {
        r->reap_queued = true;
        r->reap_next = r->w->reap;
        r->w->reap = r;
    }
}

static void answer_complete(struct dz_req *r)
{
    r->complete = true;
    queue_close(r);
}

int dz_req_respond(struct dz_req *r, int status, const struct dz_hdr *h, size_t n, const void *body,
                   size_t len)
{
    int rc;

    if (r->closed)
        return 0;
    if (r->started)
        return DZ_ERR_STATE;
    if ((rc = check_head(r, status, h, n)) != 0 || (rc = take_head(r, h, n)) != 0)
        return rc;
    /* Nothing is recorded when the body cannot be held: the engine sends
     * neither (h2req.c takes the body first, then submits the head). */
    if (status != 204 && status != 304 && strcmp(r->method, "HEAD") != 0 &&
        (rc = out_append(r, body, len)) != 0)
        return rc;
    record_head(r, status, h, n, true);
    answer_complete(r);
    return 0;
}

int dz_req_start(struct dz_req *r, int status, const struct dz_hdr *h, size_t n)
{
    int rc;

    if (r->closed)
        return 0;
    if (r->started)
        return DZ_ERR_STATE;
    if ((rc = check_head(r, status, h, n)) != 0 || (rc = take_head(r, h, n)) != 0)
        return rc;
    record_head(r, status, h, n, false);
    r->streamed = true;
    return 0;
}

int dz_req_write(struct dz_req *r, const void *p, size_t len)
{
    if (r->closed || r->reset)
        return 0;
    if (!r->streamed || r->complete)
        return DZ_ERR_STATE;
    return out_append(r, p, len);
}

int dz_req_end(struct dz_req *r)
{
    if (r->closed || r->reset)
        return 0;
    if (!r->streamed || r->complete)
        return DZ_ERR_STATE;
    answer_complete(r);
    return 0;
}

int dz_req_reset(struct dz_req *r)
{
    if (r->closed || r->reset)
        return 0;
    r->reset = true;
    queue_close(r);
    return 0;
}

size_t dz_req_pending(const struct dz_req *r)
{
    return 0; /* the fake client reads everything at once */
}

/* ------------------------------------------------------------ answers */

int fake_req_status(const struct dz_req *r)
{
    return r->status;
}

bool fake_req_started(const struct dz_req *r)
{
    return r->started;
}

bool fake_req_complete(const struct dz_req *r)
{
    return r->complete;
}

bool fake_req_was_reset(const struct dz_req *r)
{
    return r->reset;
}

bool fake_req_streamed(const struct dz_req *r)
{
    return r->streamed;
}

const char *fake_req_resp_header(const struct dz_req *r, const char *name)
{
    for (size_t i = 0; i < r->nresp; i++) {
        if (strcmp(r->resp[i].name, name) == 0)
            return r->resp[i].value;
    }
    return NULL;
}

size_t fake_req_resp_header_count(const struct dz_req *r, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nresp; i++)
        n += strcmp(r->resp[i].name, name) == 0;
    return n;
}

const char *fake_req_resp_body(const struct dz_req *r, size_t *len)
{
    if (len)
        *len = r->out_len;
    return r->out ? r->out : "";
}

unsigned fake_req_invalid_answers(const struct dz_req *r)
{
    return r->invalid;
}

unsigned fake_req_nomem_answers(const struct dz_req *r)
{
    return r->nomem;
}

int fake_req_refs(const struct dz_req *r)
{
    return r->refs;
}

bool fake_req_on_close_ran(const struct dz_req *r)
{
    return r->on_close_ran;
}

void fake_req_set_note(struct dz_req *r, const char *note)
{
    free(r->note);
    r->note = xstrdup(note);
}

const char *fake_req_note(const struct dz_req *r)
{
    return r->note;
}
