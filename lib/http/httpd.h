/*
 * httpd.h - the HTTP/2 server engine shared by darvazad and darvaza-peer.
 *
 * One process, N worker threads; each worker owns one libev loop and one
 * SO_REUSEPORT socket per listener, so nothing on the request path takes a
 * lock.  Listeners speak HTTP/2 over TLS (ALPN "h2", TLS 1.2/1.3) or
 * cleartext HTTP/2 with prior knowledge (h2c, for loopback).  The engine
 * knows nothing of darvaza: it parses and bounds requests, buffers bodies up
 * to a limit, calls the application, and sends what the application answers.
 *
 * Threading: every dz_req_* and dz_worker_* function below must be called on
 * the worker's own loop thread, except dz_worker_post (any thread).
 *
 * Lifetime of a request: the engine creates it when a stream opens and calls
 * on_request once the whole request (headers and body) has arrived.  The app
 * answers at once or later (asynchronous work holds a reference with
 * dz_req_ref and checks dz_req_is_closed when it comes back).  When the
 * stream closes (answer sent, or reset by the peer, or connection lost) the
 * on_close callback runs; the object is freed when the last reference goes.
 * Answering a closed request is a harmless no-op.
 */
#ifndef DZ_HTTPD_H
#define DZ_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct ev_loop;
struct dz_httpd;
struct dz_worker;
struct dz_req;

/* A header to send. Names must be lower case (HTTP/2). Values are copied. */
struct dz_hdr {
    const char *name;
    const char *value;
};

struct dz_httpd_limits {
    uint32_t max_header_bytes;            /* header list size (SETTINGS + enforced), e.g. 16384 */
    uint32_t max_header_count;            /* e.g. 100 */
    size_t max_body_bytes;                /* default cap per request; on_headers may lower it */
    uint32_t max_concurrent_streams;      /* SETTINGS_MAX_CONCURRENT_STREAMS, e.g. 100 */
    uint32_t max_connections;             /* per process (all workers): see accept in httpd.c */
    uint32_t max_connections_per_address; /* per client address (IPv6: a /64); 0 = no cap */
    /* Answer bytes held for clients that do not take them (a reader that
     * keeps its HTTP/2 window shut): per connection, and for the whole
     * process; over either, a connection is closed (see h2req.c). */
    size_t max_buffered_per_connection;
    size_t max_buffered_total;
    uint32_t handshake_timeout_ms; /* TLS handshake + connection preface */
    uint32_t idle_timeout_ms;      /* connection with no open stream */
    uint32_t request_timeout_ms;   /* from stream open to the whole request received */
    /* From the whole request received to the answer complete (dz_req_respond
     * or dz_req_end); 0 = no limit.  A safety net for an app that never
     * answers: the stream is reset (INTERNAL_ERROR) and logged. */
    uint32_t response_timeout_ms;
};

struct dz_listener_conf {
    const char *host; /* numeric address, e.g. "127.0.0.1" or "::1" */
    uint16_t port;    /* 0 = ephemeral (tests); see dz_httpd_port */
    SSL_CTX *tls;     /* NULL: cleartext h2c; else the engine takes a reference */
    int tag;          /* the application's number for this listener */
};

struct dz_httpd_handlers {
    /* On each worker thread at start; the result is that worker's app data. */
    void *(*worker_init)(struct dz_worker *w, void *app);
    /* On each worker thread at stop, after every request is gone. */
    void (*worker_fini)(struct dz_worker *w, void *wdata);
    /* Optional: headers are complete.  The app may lower the body limit or
     * answer at once (then on_request is not called). */
    void (*on_headers)(struct dz_req *req, void *wdata);
    /* Required: the whole request is here, or the body went over its limit:
     * dz_req_body_overflow is then true, the body is empty, and the call
     * comes at once (when a content-length over the limit is declared, right
     * after on_headers; else when the first byte over the limit arrives),
     * not at END_STREAM; the rest of the body is discarded.  Answer 413. */
    void (*on_request)(struct dz_req *req, void *wdata);
};

struct dz_httpd_conf {
    const struct dz_listener_conf *listeners;
    size_t nlisteners;
    unsigned workers; /* >= 1 */
    struct dz_httpd_limits limits;
    struct dz_httpd_handlers handlers;
    void *app; /* passed to worker_init */
};

/* Fill limits with safe defaults (16 KiB headers, 100 headers, 1 MiB body,
 * 100 streams, 4096 connections, 1024 per address, 8 MiB of unsent answers
 * per connection and 256 MiB in all, 10 s handshake, 60 s idle, 30 s
 * request, 300 s response). */
void dz_httpd_limits_default(struct dz_httpd_limits *l);

/* Create the server and bind every listener (SO_REUSEPORT, one socket per
 * worker).  Errors: DZ_ERR_IO (bind failed, also when any other socket
 * already listens on the port, logged with the address),
 * DZ_ERR_INVAL, DZ_ERR_NOMEM.  Main thread. */
int dz_httpd_new(const struct dz_httpd_conf *conf, struct dz_httpd **out);

/* The bound port of listener i (useful with port 0). */
uint16_t dz_httpd_port(const struct dz_httpd *h, size_t listener);

/* Connections refused since start: over the per-address cap, and over the
 * process cap with nothing to shed.  Any thread. */
uint64_t dz_httpd_refused_per_address(const struct dz_httpd *h);
uint64_t dz_httpd_refused_full(const struct dz_httpd *h);
/* Connections closed at the process cap to let a newcomer in (by the
 * accepting worker or, when it had none to close, by another worker it
 * asked), and asks that found nothing left to close by the time they ran
 * (the newcomer came in all the same: the process was over the cap until a
 * connection closed).  Any thread. */
uint64_t dz_httpd_shed(const struct dz_httpd *h);
uint64_t dz_httpd_shed_missed(const struct dz_httpd *h);
/* Connections closed for holding too many unsent answer bytes. */
uint64_t dz_httpd_closed_stalled(const struct dz_httpd *h);

/* Start the worker threads. 0 or DZ_ERR_IO. Main thread. */
int dz_httpd_start(struct dz_httpd *h);

/* Replace listener i's TLS context for new connections (certificate reload);
 * open connections keep theirs.  Takes a reference.  Any thread. */
int dz_httpd_set_tls(struct dz_httpd *h, size_t listener, SSL_CTX *ctx);

/* Graceful stop: close the listening sockets, send GOAWAY on every
 * connection, let open streams finish for at most timeout_ms, then close
 * the rest and join the workers.  Blocks the calling (main) thread. */
void dz_httpd_drain(struct dz_httpd *h, uint32_t timeout_ms);

/* Free after dz_httpd_drain (or if never started). NULL is a no-op. */
void dz_httpd_free(struct dz_httpd *h);

/* Open connections across all workers (approximate; any thread). */
uint64_t dz_httpd_open_connections(const struct dz_httpd *h);

/* --- workers --- */
struct ev_loop *dz_worker_loop(struct dz_worker *w);
unsigned dz_worker_index(const struct dz_worker *w);
void *dz_worker_data(struct dz_worker *w);

/* Run fn(arg) on w's loop thread, soon, in posting order.  Thread-safe
 * (ev_async).  Posts made before dz_httpd_start run once the loop runs;
 * during a drain they still run.  Returns 0, or DZ_ERR_STATE once the
 * worker has stopped (fn is then not called and the caller still owns arg),
 * DZ_ERR_INVAL (w or fn NULL), or DZ_ERR_NOMEM. */
int dz_worker_post(struct dz_worker *w, void (*fn)(void *arg), void *arg);

/* A post's place in the queue, embedded in the caller's own object so that
 * a post that must not be lost (a completion someone waits for: a request,
 * a hold on the worker) needs no allocation.  The members are the
 * engine's; the caller only provides the memory. */
struct dz_post {
    struct dz_post *next;
    void (*fn)(void *arg);
    void *arg;
    bool is_heap; /* dz_worker_post's own: freed once run */
};

/* dz_worker_post without the allocation: node (the caller's, not in
 * another post's queue) is queued as it is and must stay valid until fn
 * has started; fn may free it.  Returns 0, DZ_ERR_STATE once the worker
 * has stopped (fn is not called, node and arg are still the caller's), or
 * DZ_ERR_INVAL (w, node or fn NULL): never DZ_ERR_NOMEM.  Any thread.  On
 * a worker that is freed without ever running, queued nodes are dropped
 * unrun, as dz_worker_post's are. */
int dz_worker_post_node(struct dz_worker *w, struct dz_post *node, void (*fn)(void *arg),
                        void *arg);

/* Keep w's drain waiting for one more piece of outstanding work (e.g. a
 * pool job whose done() must still run on w).  dz_worker_hold: any thread;
 * dz_worker_release: w's loop thread, after the work's last step ran.  The
 * drain waits for holds (and for every request reference) at most
 * DZ_H2_DRAIN_GRACE_MS (2 s) past its own deadline, then stops anyway. */
void dz_worker_hold(struct dz_worker *w);
void dz_worker_release(struct dz_worker *w);

/* --- requests (loop thread only) --- */
struct dz_worker *dz_req_worker(struct dz_req *r);
const char *dz_req_method(const struct dz_req *r);    /* ":method" */
const char *dz_req_path(const struct dz_req *r);      /* ":path" as sent, with query */
const char *dz_req_scheme(const struct dz_req *r);    /* ":scheme" or "" */
const char *dz_req_authority(const struct dz_req *r); /* ":authority" or "host", or "" */
/* First value of a header (name lower case) or NULL. */
const char *dz_req_header(const struct dz_req *r, const char *name);
size_t dz_req_header_count(const struct dz_req *r);
/* i-th regular header (pseudo-headers excluded), in arrival order. */
void dz_req_header_at(const struct dz_req *r, size_t i, const char **name, const char **value);
const unsigned char *dz_req_body(const struct dz_req *r, size_t *len);
bool dz_req_body_overflow(const struct dz_req *r);
void dz_req_set_body_limit(struct dz_req *r, size_t max);
const char *dz_req_peer_ip(const struct dz_req *r); /* "127.0.0.1" */
bool dz_req_is_tls(const struct dz_req *r);
/* The client certificate of a TLS connection, if one was sent and passed the
 * context's verify callback; borrowed, valid while r is. NULL otherwise.
 * The chain is what the client sent after its certificate (OpenSSL's server-
 * side SSL_get_peer_cert_chain: the leaf is NOT in it). */
X509 *dz_req_peer_cert(const struct dz_req *r);
STACK_OF(X509) * dz_req_peer_chain(const struct dz_req *r);
int dz_req_listener_tag(const struct dz_req *r);

/* One application pointer per request. */
void dz_req_set_data(struct dz_req *r, void *p);
void *dz_req_data(const struct dz_req *r);

void dz_req_ref(struct dz_req *r);
void dz_req_unref(struct dz_req *r);
bool dz_req_is_closed(const struct dz_req *r);
/* Called once when the stream closes for any reason; r stays valid during
 * the call and for as long as references are held.  Register it while the
 * request is open (in on_headers/on_request): registered after the close it
 * is never called.  It runs from the loop, never inside nghttp2. */
void dz_req_on_close(struct dz_req *r, void (*cb)(struct dz_req *r, void *arg), void *arg);
/* True when r was still open as the drain deadline passed (dz_httpd_drain)
 * and the engine closed it: the request was cut, not abandoned by its
 * client.  Meaningful in on_close and after. */
bool dz_req_is_drain_cut(const struct dz_req *r);

/* --- answering (loop thread only) ---
 * dz_req_respond sends a whole answer (headers and body are copied).
 * For streaming, dz_req_start, then dz_req_write any number of times, then
 * dz_req_end.  "content-length" is added by dz_req_respond (one given by the
 * app is replaced; none for 204/304; HEAD gets the length but no body).
 * Return 0, or DZ_ERR_STATE if already answered (write/end: not started or
 * already ended), DZ_ERR_INVAL (status outside 200..599, more than 128
 * headers, a name that is not a lower-case token or is connection-specific
 * such as "connection"/"transfer-encoding", a value with CR, LF or other
 * control bytes), DZ_ERR_TOOBIG (more than 64 MiB waiting to be sent on the
 * stream, or the connection's unsent answers over its budget: the
 * connection is closed at the end of the loop turn, and the stream's
 * on_close runs then, never inside these calls), or DZ_ERR_NOMEM.
 * Closed: 0, no-op.
 * An answer given before the request is complete (in on_headers, or after a
 * body overflow): the rest of the body is read and dropped, up to 1 MiB past
 * the answer and within the request timeout, then the stream is reset with
 * RST_STREAM(NO_ERROR) (RFC 9113 8.1).  Requests whose header fields exceed the limits are never
 * shown to the app: the engine answers 431 itself. */
int dz_req_respond(struct dz_req *r, int status, const struct dz_hdr *h, size_t n, const void *body,
                   size_t len);
int dz_req_start(struct dz_req *r, int status, const struct dz_hdr *h, size_t n);
int dz_req_write(struct dz_req *r, const void *p, size_t len);
int dz_req_end(struct dz_req *r);
/* An answer that cannot be completed (its source failed after the first
 * byte): the stream is reset with RST_STREAM(INTERNAL_ERROR), so the client
 * sees the answer cut instead of complete (RFC 9113 8.1: a response ended
 * cleanly is a complete one).  What was written and not sent is dropped;
 * later writes and the end are no-ops.  0, or DZ_ERR_NOMEM.  Closed or
 * already reset: 0, no-op. */
int dz_req_reset(struct dz_req *r);
/* The client's next request is to come on a new connection: GOAWAY now,
 * naming the streams already received (this one included), which are still
 * answered; the connection closes once they are.  For a listener where each
 * request needs a handshake of its own (a client certificate proves its key
 * only in the handshake).  Closed: no-op.  Loop thread only. */
void dz_req_goaway(struct dz_req *r);
/* Bytes written with dz_req_write and not yet sent (for back-pressure). */
size_t dz_req_pending(const struct dz_req *r);

#endif
