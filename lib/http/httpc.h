/*
 * httpc.h - the outbound HTTP client: libcurl's multi interface driven by a
 * libev loop, for forwarding requests to back ends, asking the registry,
 * and OCSP / MSSP / TSA.
 *
 * One struct dz_httpc per worker loop.  It keeps libcurl's connection cache,
 * so requests to the same origin reuse connections: HTTP/1.1 keep-alive,
 * and HTTP/2 streams multiplexed on one connection (a new transfer waits
 * for a connection that can multiplex rather than opening another).
 *
 * Threading: a dz_httpc and its transfers belong to the thread that runs
 * their loop; every function below except dz_http_fetch_blocking must be
 * called on that thread.  dz_http_fetch_blocking blocks: CLIs, peers and
 * start-up code only, never a loop thread.
 *
 * Callbacks and re-entrancy: callbacks run on the loop thread.  on_head and
 * on_data may run while libcurl is on the stack; from inside any callback
 * the application may call dz_httpc_start, dz_httpc_fetch, dz_httpc_cancel
 * (of this or any other transfer) and dz_httpc_pause: the library defers
 * whatever libcurl forbids there until libcurl has returned.  Only
 * dz_httpc_free must not be called from a callback.  on_done is always
 * called outside libcurl, never from inside dz_httpc_start, and is the last
 * call for a transfer: after it returns the struct dz_httpc_xfer is freed.
 *
 * Nothing here logs request or response contents (they may carry personal
 * data or credentials); a failed transfer is logged at debug level with
 * libcurl's error text and the peer address only.
 */
#ifndef DZ_HTTPC_H
#define DZ_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/httpd.h" /* struct dz_hdr */
#include "http/httpfield.h"

struct ev_loop;
struct dz_buf;
struct dz_httpc;
struct dz_httpc_xfer;

#define DZ_HTTPC_MAX_HEADERS DZ_HTTP_MAX_RESPONSE_FIELDS /* response headers kept */
#define DZ_HTTPC_MAX_HEADER_BYTES (64 * 1024)            /* their names + values */
#define DZ_HTTPC_MAX_URL 8192
#define DZ_HTTPC_TIMEOUT_MS 30000u         /* default whole-transfer limit */
#define DZ_HTTPC_CONNECT_TIMEOUT_MS 10000u /* default connect limit */
#define DZ_HTTPC_FETCH_MAX (1024 * 1024)   /* default body cap of fetches */

/* Client TLS material (PEM files).  NULL members: not used.  With no
 * ca_file the system trust store verifies the server.  The server is always
 * verified (certificate chain and host name). */
struct dz_httpc_tls {
    const char *ca_file;
    const char *cert_file; /* client certificate (mutual TLS) */
    const char *key_file;
};

enum dz_httpc_version {
    DZ_HTTPC_H2,   /* https: HTTP/2 through ALPN (HTTP/1.1 if refused);
                    * http: HTTP/1.1 */
    DZ_HTTPC_H2C,  /* http only: HTTP/2 with prior knowledge */
    DZ_HTTPC_HTTP1 /* HTTP/1.1 */
};

/* Everything is copied (or fully used) by dz_httpc_start: the request and
 * what it points to may be freed when start returns. */
struct dz_httpc_request {
    const char *method;           /* token, e.g. "GET"; NULL: "GET" */
    const char *url;              /* http:// or https://, <= DZ_HTTPC_MAX_URL */
    const struct dz_hdr *headers; /* names: tokens; values: no CR, LF, NUL */
    size_t nheaders;
    const void *body; /* copied at start */
    size_t body_len;
    enum dz_httpc_version version;
    uint32_t timeout_ms;            /* 0: DZ_HTTPC_TIMEOUT_MS */
    uint32_t connect_timeout_ms;    /* 0: DZ_HTTPC_CONNECT_TIMEOUT_MS */
    const struct dz_httpc_tls *tls; /* NULL: system defaults */
    size_t max_response_bytes;      /* body cap; 0: none for dz_httpc_start,
                                     * DZ_HTTPC_FETCH_MAX for fetches */
};

/*
 * on_head: once, before any data, when the final response's headers are in
 * (1xx interim responses are skipped).  Header names are lower case; the
 * status line and HTTP/2 pseudo-headers are not among them; values have no
 * surrounding white space.  h stays valid until on_done returns.  Not
 * called if the transfer fails before a response arrives.
 * on_data: body bytes as they arrive (p valid during the call only).
 * on_done: the end, exactly once unless the transfer was cancelled.
 * result: 0 (any HTTP status, including 4xx/5xx), DZ_ERR_TIMEOUT,
 * DZ_ERR_UNAVAILABLE (resolve, connect, refused, reset, TLS, protocol
 * error), DZ_ERR_TOOBIG (max_response_bytes or header bounds), DZ_ERR_NOMEM.
 * Any callback pointer may be NULL.
 */
struct dz_httpc_callbacks {
    void (*on_head)(void *arg, int status, const struct dz_hdr *h, size_t n);
    void (*on_data)(void *arg, const void *p, size_t n);
    void (*on_done)(void *arg, int result);
};

/* Create a client on loop.  0, DZ_ERR_NOMEM, DZ_ERR_INVAL (loop NULL).
 * Loop thread. */
int dz_httpc_new(struct ev_loop *loop, struct dz_httpc **out);

/* Bounds the connections libcurl holds open at once for this client, to
 * every origin together (CURLMOPT_MAX_TOTAL_CONNECTIONS; CURLMOPT_MAXCONNECTS
 * bounds only the idle cache).  A transfer over the bound is not failed:
 * libcurl queues it until a connection ends or is free for reuse (an
 * HTTP/2 one multiplexes it at once), its clock running from its start.
 * Transfers lib/http/h1client.c carries (HTTP/1.1 to an IP address) are
 * not libcurl's and not counted.  0: no bound.  Loop thread, any time
 * (a lower bound lets the connections over it finish). */
int dz_httpc_set_max_connections(struct dz_httpc *c, unsigned total);

/* Cancel every transfer (no callback runs), close all connections, free.
 * NULL is a no-op.  Loop thread, not from inside a callback. */
void dz_httpc_free(struct dz_httpc *c);

/*
 * Start a transfer.  On success *out (if out is not NULL) is a handle valid
 * until on_done returns or dz_httpc_cancel is called; the callbacks are
 * copied.  Returns 0, or synchronously (no callback will run):
 * DZ_ERR_INVAL (bad method, URL, header, or H2C with https),
 * DZ_ERR_NOMEM.  Loop thread; may be called from callbacks.
 */
int dz_httpc_start(struct dz_httpc *c, const struct dz_httpc_request *r,
                   const struct dz_httpc_callbacks *cb, void *arg, struct dz_httpc_xfer **out);

/*
 * Why a transfer failed, as a short stable word for logs: "connect_refused",
 * "connect_failed", "resolve", "tls", "timeout", "reset", "io",
 * "empty_reply", "protocol", "too_large", "out_of_memory", "unavailable"
 * (plain HTTP/1.1 transfers say only timeout / too_large / unavailable).
 * Valid only inside on_done with a non-zero result (x is freed when on_done
 * returns); never NULL.  dz_httpc_reason_of maps a result code alone.
 * Loop thread.
 */
const char *dz_httpc_reason(const struct dz_httpc_xfer *x);
const char *dz_httpc_reason_of(int result);

/* Stop a transfer: no callback for it runs after this returns, its memory
 * is released (at once or, inside a libcurl callback, as soon as libcurl
 * returns).  A transfer stopped before its end does not leave its
 * connection for another when it was the only one on it: the connection is
 * closed, so the back end sees the answer abandoned.  On an HTTP/2
 * connection other transfers still use, the stream's reset goes out with
 * the connection's next frame (libcurl 7.88 queues it without sending it,
 * curl issue #17611), and the connection stays.  NULL is
 * a no-op.  Must not be called after on_done returned.  Loop thread; may
 * be called from callbacks. */
void dz_httpc_cancel(struct dz_httpc_xfer *x);

/* Back-pressure: stop (paused true) or resume receiving the body.  A
 * transfer paused from inside its own on_data gets no further on_data until
 * resumed; libcurl holds what was already read and flow control (TCP or
 * the HTTP/2 stream window) holds the rest at the server.  Resuming is
 * asynchronous: on_data does not run inside this call.  The timeout keeps
 * running while paused.  0, or DZ_ERR_STATE when the transfer has already
 * finished.  Loop thread; may be called from callbacks. */
int dz_httpc_pause(struct dz_httpc_xfer *x, bool paused);

/*
 * Buffered convenience: the whole body (at most r->max_response_bytes, or
 * DZ_HTTPC_FETCH_MAX when 0) is delivered once to done.  On result 0,
 * status, the headers (as for on_head) and the body are valid during the
 * call; otherwise status is 0, n is 0 and body is NULL.  Same returns,
 * handle and re-entrancy rules as dz_httpc_start.
 */
typedef void (*dz_httpc_fetch_cb)(void *arg, int result, int status, const struct dz_hdr *h,
                                  size_t n, const unsigned char *body, size_t len);
int dz_httpc_fetch(struct dz_httpc *c, const struct dz_httpc_request *r, dz_httpc_fetch_cb done,
                   void *arg, struct dz_httpc_xfer **out);

/*
 * Blocking fetch with libcurl's easy interface, for CLIs, peers and
 * start-up.  The body is appended to body (bounded by the buffer's own
 * maximum and by r->max_response_bytes when not 0).  *status is 0 until a
 * response arrives.  Returns 0 (any HTTP status), DZ_ERR_INVAL,
 * DZ_ERR_TIMEOUT, DZ_ERR_UNAVAILABLE, DZ_ERR_TOOBIG, DZ_ERR_NOMEM.  Any
 * thread except a loop thread (it blocks).
 */
int dz_http_fetch_blocking(const struct dz_httpc_request *r, int *status, struct dz_buf *body);

#endif
