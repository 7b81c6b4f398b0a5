/*
 * peer.h - the runtime shared by the modes of `darvaza-peer` (implemented in
 * peers/main.c): command-line helpers, the server loop, JSON and problem
 * answers, and the log of recent requests that tests read at
 * GET /_peer/requests.
 *
 * Threading: a peer runs the HTTP/2 engine with ONE worker thread, so all
 * per-request state (request log, assertion cache) is touched by that loop
 * thread only and needs no lock.  Blocking work (SQLite, the JWKS fetch)
 * goes to a lib/http/pool.h pool and comes back to the loop.
 */
#ifndef DZ_PEER_H
#define DZ_PEER_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "http/httpd.h"

#define DZ_PEER_LOG_MAX 50 /* requests kept for GET /_peer/requests */
#define DZ_PEER_LOG_PATH "/_peer/requests"

/* Each mode: argv[0] is the mode name.  Returns the process exit code
 * (0 ok, 1 failure, 2 usage). */
int dz_peer_registry_main(int argc, char **argv);
int dz_peer_echo_main(int argc, char **argv);
int dz_peer_tsa_main(int argc, char **argv);   /* tsa.c: RFC 3161 time-stamping authority */
int dz_peer_court_main(int argc, char **argv); /* court.c: e-court notices */
int dz_peer_sms_main(int argc, char **argv);   /* sms.c: SMS gateway, keeps messages */

/* The listening options of a serving peer, for its getopt_long table:
 * --listen HOST:PORT, --tls-cert F, --tls-key F (codes 'l', 'c', 'k'). */
struct dz_peer_listen_opts {
    const char *listen;
    const char *cert;
    const char *key;
};
#define DZ_PEER_LISTEN_OPTIONS                                                                     \
    {"listen", required_argument, NULL, 'l'}, {"tls-cert", required_argument, NULL, 'c'},          \
    {                                                                                              \
        "tls-key", required_argument, NULL, 'k'                                                    \
    }

/* Take getopt code c with arg into o; false when c is not one of them. */
bool dz_peer_listen_option(struct dz_peer_listen_opts *o, int c, const char *arg);

/* The option loop of a serving peer over the getopt_long table opts (with
 * {"help", no_argument, NULL, 'h'}): --help prints usage to stdout, the
 * listening options go to lo, any other code to own(ctx, c, optarg) (NULL:
 * there are none), which says whether it took it.  Returns -1 when every
 * option was taken and no operand is left (go on), 0 after --help, and
 * usage(stderr)'s status otherwise. */
int dz_peer_options(int argc, char **argv, const struct option *opts,
                    struct dz_peer_listen_opts *lo, bool (*own)(void *ctx, int c, const char *arg),
                    void *ctx, int (*usage)(FILE *to));

/* "127.0.0.1:9101" or "[::1]:9101" into host (numeric, no brackets) and
 * port 1..65535.  0 or DZ_ERR_PARSE. */
int dz_peer_parse_listen(const char *s, char *host, size_t host_len, uint16_t *port);

/* Run the engine with one listener and one worker until SIGTERM or SIGINT,
 * then drain (bounded) and return 0; DZ_ERR_IO when it cannot bind or start.
 * tls NULL means cleartext h2c.  The caller keeps its reference to tls.
 * max_body is the request body cap.  Main thread; blocks.  name is used in
 * the log. */
/* The signals that stop a peer (SIGINT, SIGTERM): main blocks them before
 * any thread starts and dz_peer_serve waits for them. */
sigset_t dz_peer_stop_signals(void);

/* Worker hooks for modes with no per-worker state: the app is each
 * worker's data; on stop the request log is cleared. */
void *dz_peer_worker_init(struct dz_worker *w, void *app);
void dz_peer_worker_fini(struct dz_worker *w, void *wdata);

/* A TLS server context that requires the gateway's client certificate when
 * client_ca is given: the chain may end at that CA (partial chain) and the
 * certificate must be for TLS clients, so a peer trusts the gateway CA, not
 * every CA under the root.  0 or a dz_err (logged under event). */
int dz_peer_tls_gateway_client(const char *cert, const char *key, const char *client_ca,
                               const char *event, SSL_CTX **out);

int dz_peer_serve(const char *name, const char *host, uint16_t port, SSL_CTX *tls, size_t max_body,
                  const struct dz_httpd_handlers *handlers, void *app);

/* Answer with a JSON body (application/json).  Takes ownership of body;
 * body NULL (out of memory upstream) answers 500. */
int dz_peer_respond_json(struct dz_req *r, int status, json_t *body);

/* Answer an RFC 9457 problem: {"type","title","status","detail","code"}
 * plus, when reason is not NULL, "reason". */
int dz_peer_problem(struct dz_req *r, int status, const char *code, const char *detail,
                    const char *reason);

/* The path of r without its query ("" never: at least "/"), into buf. */
const char *dz_peer_req_path(const struct dz_req *r, char *buf, size_t len);

/* The value of query parameter name (the first "name=" item) in target, a
 * ":path" such as "/x?a=1&b=2", copied (not decoded) into buf[len].
 * 0, DZ_ERR_NOTFOUND (absent, or no query, or name empty), DZ_ERR_TOOBIG
 * (longer than buf; buf is then ""). Pure; any thread. */
int dz_peer_query_find(const char *target, const char *name, char *buf, size_t len);

/* The same for r's path. */
int dz_peer_query_param(const struct dz_req *r, const char *name, char *buf, size_t len);

/* s as a JSON string; bytes that are not UTF-8 (header values and paths
 * are bytes) give the placeholder "<not utf-8>", NULL gives null.  NULL
 * only when out of memory. */
json_t *dz_peer_json_text(const char *s);

/* All regular headers of r as one JSON object; a name sent twice has its
 * values joined with ", ".  NULL when out of memory. */
json_t *dz_peer_headers_json(const struct dz_req *r);

/* True when r came from the loopback interface (127.0.0.1 or ::1). */
bool dz_peer_req_is_loopback(const struct dz_req *r);

/* --- request log (loop thread only) --- */

/* Record what arrived at r and how its assertion was judged: claims (may be
 * NULL; borrowed, copied) or reason (may be NULL).  status is the answer
 * the peer chose (0 when not known yet).  One entry:
 *   {"time","method","path","authority","peer_ip","tls","headers":{...},
 *    "verified":bool,"claims":{...}|null,"reason":str|null,"status":int}
 * Never fails the request: an allocation failure only loses the entry. */
void dz_peer_log_request(const struct dz_req *r, const json_t *claims, const char *reason,
                         int status);

/* Answer GET /_peer/requests: the log as a JSON array, oldest first.  Only
 * to loopback clients; others get 404. */
void dz_peer_log_serve(struct dz_req *r);

/* A test-only read-back endpoint (/_peer/requests, /_sms/messages) may
 * answer r: a GET from this machine.  Otherwise r is answered (404 for
 * another machine, as if the path did not exist; 405) and false. */
bool dz_peer_read_back_allowed(struct dz_req *r);

/* Free the log (at worker stop). */
void dz_peer_log_clear(void);

#endif
