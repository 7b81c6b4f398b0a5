/*
 * h1client.h - the HTTP/1.1 transport of lib/httpc for plain-http back ends
 * named by an IP address (the usual case behind a gateway: a back end on
 * loopback or the service network).  libcurl does everything else (TLS,
 * HTTP/2, host names, the blocking fetch).
 *
 * Why not libcurl here too: per transfer libcurl parses the URL, builds
 * and matches its connection cache, checks a reused connection with poll()
 * and allocates dozens of small blocks; on the forwarding path that was
 * about a sixth of the gateway's CPU (docs/performance.md).  This
 * transport keeps per-origin idle connections in a list, writes each
 * request with one send and parses the answer in place (lib/http/h1parse.c).
 *
 * The contract is lib/http/httpc.h's (callbacks, results, pause, cancel,
 * re-entrancy: any function here may be called from a callback; on_done
 * is never called from inside dz_h1c_start and is the last call), with
 * dz_httpc_request's fields; lib/http/httpc.c has checked the request.  A
 * request that met a closed keep-alive connection before any byte of an
 * answer is sent again once on a new connection, as libcurl does.
 * Loop thread only.
 */
#ifndef DZ_H1CLIENT_H
#define DZ_H1CLIENT_H

#include <stdbool.h>

#include "http/httpc.h"

struct ev_loop;
struct dz_h1c;
struct dz_h1c_xfer;

int dz_h1c_new(struct ev_loop *loop, struct dz_h1c **out);
/* Close every connection, drop every transfer (no callback runs). */
void dz_h1c_free(struct dz_h1c *c);

/* Whether this transport takes the request (HTTP/1.1, http://, IP literal
 * host, no user information in the URL).  Pure. */
bool dz_h1c_takes(const struct dz_httpc_request *r);

/* As dz_httpc_start for a request dz_h1c_takes: 0 or DZ_ERR_INVAL /
 * DZ_ERR_NOMEM (no callback then). */
int dz_h1c_start(struct dz_h1c *c, const struct dz_httpc_request *r,
                 const struct dz_httpc_callbacks *cb, void *arg, struct dz_h1c_xfer **out);
void dz_h1c_cancel(struct dz_h1c_xfer *x);
int dz_h1c_pause(struct dz_h1c_xfer *x, bool paused);

#endif
