/*
 * echo.c - `darvaza-peer echo`: a generic back end for tests.  Answers any
 * request with what it received (method, path, headers, body digest) and
 * how its Darvaza-Assertion was judged; ?delay_ms=N delays the answer on a
 * libev timer, ?status=N picks the status, ?size=N streams N bytes instead,
 * with ?cut=M resets the stream after M of them (a back end that breaks
 * off mid-body), and with ?hold=M sends M of them, then nothing until its
 * client closes the stream (at most ECHO_HOLD_MAX_MS, then the rest): a
 * slow back end in the middle of its answer.  A streamed answer its client
 * closes before its end is logged (event echo_closed_unfinished, with the
 * Darvaza-Request-Id it came with).  Its JSON answers carry a field of
 * its own, x-echo-view: request.
 * Owns only those answers.  It never refuses a request for its assertion
 * (it reports the verdict), and never sleeps on the loop.
 */
#include "peer.h"

#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secret.h"
#include "http/pool.h"
#include "http/tls.h"
#include "peer_auth.h"

#include "base/compat.h"

#define ECHO_BODY_MAX ((size_t)16 << 20)
#define ECHO_DELAY_MAX_MS 30000
#define ECHO_SIZE_MAX ((long long)1 << 30)
#define ECHO_CHUNK (16 * 1024)
#define ECHO_PENDING_HIGH (256 * 1024) /* stop writing above this backlog */
#define ECHO_HOLD_MAX_MS 60000

struct echo {
    struct dz_peer_auth *auth; /* NULL: no --jwks-url, assertions not checked */
};

/* One answer being delayed or streamed.  Freed in on_close only, so the
 * timer can never outlive it. */
struct job {
    struct dz_req *r; /* referenced */
    ev_timer timer;
    struct ev_loop *loop;
    int status;
    long long size; /* >= 0: stream this many bytes; < 0: JSON answer */
    long long cut;  /* >= 0: reset the stream after this many bytes */
    long long hold; /* >= 0: after this many bytes, wait (see holding) */
    long long sent;
    char *json;   /* the JSON answer */
    bool started; /* headers sent */
    bool done;    /* answer complete */
    bool holding; /* the timer is the hold's bound: what is sent is out */
};

static void job_send(struct job *j);

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct job *j = t->data;

    job_send(j);
}

static void on_close(struct dz_req *r, void *arg)
{
    struct job *j = arg;
    const char *rid = dz_req_header(r, "darvaza-request-id");

    /* The client let go of an answer in its middle (its stream reset or
     * its connection closed): said, so that a test sees a gateway give up
     * a transfer rather than wait for its end. */
    if (j->started && !j->done)
        dz_log(DZ_LOG_INFO, "echo_closed_unfinished", "rid=%s sent=%lld held=%s", rid ? rid : "-",
               j->sent, j->holding ? "yes" : "no");
    ev_timer_stop(j->loop, &j->timer);
    free(j->json);
    free(j);
    dz_req_unref(r);
}

static bool no_body_status(int status)
{
    return status == 204 || status == 304;
}

/* Write chunks while the backlog is small; come back on a short timer
 * when it is not (the engine offers no "writable" event). */
static void pump(struct job *j)
{
    static unsigned char chunk[ECHO_CHUNK];
    static bool chunk_ready;

    if (!chunk_ready) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (unsigned char)('a' + i % 26);
        chunk_ready = true;
    }
    long long upto = j->cut >= 0 && j->cut < j->size ? j->cut : j->size;
    bool hold_here = j->hold >= 0 && j->hold < upto;

    if (hold_here)
        upto = j->hold;

    while (j->sent < upto && dz_req_pending(j->r) < ECHO_PENDING_HIGH) {
        size_t n = (size_t)(upto - j->sent < ECHO_CHUNK ? upto - j->sent : ECHO_CHUNK);

        if (dz_req_write(j->r, chunk, n) != 0) {
            j->done = true;
            dz_req_end(j->r);
            return;
        }
        j->sent += (long long)n;
    }
    if (hold_here && j->sent >= upto && dz_req_pending(j->r) == 0) {
        /* What was written is out: now nothing, until the client closes
         * the stream (on_close) or the bound, then the rest. */
        j->holding = true;
        j->hold = -1;
        ev_timer_set(&j->timer, ECHO_HOLD_MAX_MS / 1000.0, 0.);
        ev_timer_start(j->loop, &j->timer);
        return;
    }
    if (!hold_here && j->sent >= upto && upto < j->size && dz_req_pending(j->r) == 0) {
        j->done = true; /* what was written is out: now break off */
        dz_req_reset(j->r);
        return;
    }
    if (j->sent >= j->size) {
        j->done = true;
        dz_req_end(j->r);
        return;
    }
    ev_timer_set(&j->timer, 0.002, 0.);
    ev_timer_start(j->loop, &j->timer);
}

static void job_send(struct job *j)
{
    /* x-echo-view: a field of the back end's own beside its content (a
     * release route passes none of those on). */
    static const struct dz_hdr json_hdr[] = {{"content-type", "application/json"},
                                             {"cache-control", "no-store"},
                                             {"x-echo-view", "request"}};
    static const struct dz_hdr bin_hdr[] = {{"content-type", "application/octet-stream"},
                                            {"cache-control", "no-store"}};

    if (j->done || dz_req_is_closed(j->r))
        return;
    j->holding = false;
    if (j->size < 0) {
        j->done = true;
        if (no_body_status(j->status))
            dz_req_respond(j->r, j->status, json_hdr, 1, NULL, 0);
        else
            dz_req_respond(j->r, j->status, json_hdr, 3, j->json, strlen(j->json));
        return;
    }
    if (!j->started) {
        j->started = true;
        if (dz_req_start(j->r, j->status, bin_hdr, 2) != 0 || no_body_status(j->status)) {
            j->done = true;
            dz_req_end(j->r);
            return;
        }
    }
    pump(j);
}

static json_t *describe(struct dz_req *r, const json_t *claims, const char *reason)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    unsigned char md[32];
    char hex[65];

    dz_sha256(len ? body : (const unsigned char *)"", len, md);
    dz_hex(md, sizeof(md), hex);
    return json_pack("{s:s, s:o, s:o, s:s, s:I, s:O?, s:s?}", "method", dz_req_method(r), "path",
                     dz_peer_json_text(dz_req_path(r)), "headers", dz_peer_headers_json(r),
                     "body_sha256", hex, "body_len", (json_int_t)len, "assertion", claims,
                     "assertion_error", reason);
}

/* Query parameter name as an integer in [min, max]; absent: *out = dflt.
 * Returns false on a bad value. */
static bool query_int(struct dz_req *r, const char *name, long long min, long long max,
                      long long dflt, long long *out)
{
    char buf[32];
    int rc = dz_peer_query_param(r, name, buf, sizeof(buf));

    *out = dflt;
    if (rc == DZ_ERR_NOTFOUND)
        return true;
    return rc == 0 && dz_parse_int(buf, min, max, out) == 0;
}

static void auth_done(struct dz_req *r, void *arg, const json_t *claims, const char *reason)
{
    long long delay = 0, status = 200, size = -1, cut = -1, hold = -1;
    struct job *j = NULL;
    json_t *o = NULL;

    if (!query_int(r, "delay_ms", 0, ECHO_DELAY_MAX_MS, 0, &delay) ||
        !query_int(r, "status", 200, 599, 200, &status) ||
        !query_int(r, "size", 0, ECHO_SIZE_MAX, -1, &size) ||
        !query_int(r, "cut", 0, ECHO_SIZE_MAX, -1, &cut) ||
        !query_int(r, "hold", 0, ECHO_SIZE_MAX, -1, &hold)) {
        dz_peer_log_request(r, claims, reason, 400);
        dz_peer_problem(r, 400, "bad_request",
                        "delay_ms 0..30000, status 200..599, size, cut and hold 0..1073741824",
                        NULL);
        return;
    }
    dz_peer_log_request(r, claims, reason, (int)status);
    if (dz_req_is_closed(r))
        return;
    j = calloc(1, sizeof(*j));
    o = describe(r, claims, reason);
    if (!j || !o || !(j->json = json_dumps(o, JSON_COMPACT))) {
        json_decref(o);
        free(j);
        dz_peer_problem(r, 500, "internal_error", "out of memory", NULL);
        return;
    }
    json_decref(o);
    j->r = r;
    dz_req_ref(r);
    j->status = (int)status;
    j->size = size;
    j->cut = cut;
    j->hold = hold;
    j->loop = dz_worker_loop(dz_req_worker(r));
    ev_timer_init(&j->timer, on_timer, 0., 0.);
    j->timer.data = j;
    dz_req_on_close(r, on_close, j);
    if (delay > 0) {
        ev_timer_set(&j->timer, (double)delay / 1000.0, 0.);
        ev_timer_start(j->loop, &j->timer);
        return;
    }
    job_send(j);
}

static void on_request(struct dz_req *r, void *wdata)
{
    struct echo *app = wdata;
    char pbuf[64];

    if (strcmp(dz_peer_req_path(r, pbuf, sizeof(pbuf)), DZ_PEER_LOG_PATH) == 0) {
        dz_peer_log_serve(r);
        return;
    }
    if (dz_req_body_overflow(r)) {
        dz_peer_log_request(r, NULL, NULL, 413);
        dz_peer_problem(r, 413, "payload_too_large", "body too large", NULL);
        return;
    }
    if (app->auth) {
        dz_peer_auth_check(app->auth, r, auth_done, app);
        return;
    }
    auth_done(r, app, NULL, dz_req_header(r, DZ_PEER_AUTH_HEADER) ? "not_verified" : NULL);
}

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer echo --listen HOST:PORT (--h2c | --tls-cert F --tls-key F)\n"
          "         [--jwks-url URL [--cacert F] [--iss ISS] [--aud AUD]]\n"
          "  answers {method,path,headers,body_sha256,body_len,assertion,assertion_error};\n"
          "  query: delay_ms=N (<= 30000), status=N, size=N (stream N bytes),\n"
          "         cut=M (with size: reset the stream after M bytes),\n"
          "         hold=M (with size: after M bytes send nothing until the client\n"
          "         closes the stream, at most 60 s, then the rest)\n",
          to);
    return 2;
}

/* The options of echo besides the listening ones. */
struct echo_opts {
    bool h2c;
    struct dz_peer_auth_conf ac;
};

static bool echo_option(void *ctx, int c, const char *arg)
{
    struct echo_opts *eo = ctx;

    if (c == 'p') {
        eo->h2c = true;
        return true;
    }
    return dz_peer_auth_option(&eo->ac, c, arg);
}

int dz_peer_echo_main(int argc, char **argv)
{
    static const struct option opts[] = {DZ_PEER_LISTEN_OPTIONS,
                                         {"h2c", no_argument, NULL, 'p'},
                                         DZ_PEER_AUTH_OPTIONS,
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct dz_peer_listen_opts lo = {0};
    struct echo_opts eo = {.ac = {.iss = "darvaza-demo", .aud = "echo"}};
    struct echo app = {0};
    struct dz_pool *pool = NULL;
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    char host[64];
    uint16_t port = 0;
    int status = dz_peer_options(argc, argv, opts, &lo, echo_option, &eo, usage);

    if (status >= 0)
        return status;
    status = 1;
    if (!lo.listen || eo.h2c == (lo.cert && lo.key) || (!eo.h2c && (!lo.cert || !lo.key)))
        return usage(stderr);
    if (dz_peer_parse_listen(lo.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "echo: bad --listen '%s' (HOST:PORT)\n", lo.listen);
        return 2;
    }
    if (!eo.h2c && dz_tls_server_ctx_new(lo.cert, lo.key, NULL, false, &tls) != 0)
        goto out;
    if (eo.ac.jwks_url &&
        (dz_pool_new(1, 16, &pool) != 0 || dz_peer_auth_new(&eo.ac, pool, &app.auth) != 0))
        goto out;
    h.worker_init = dz_peer_worker_init;
    h.worker_fini = dz_peer_worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("echo", host, port, tls, ECHO_BODY_MAX, &h, &app) == 0)
        status = 0;
out:
    dz_pool_free(pool);
    dz_peer_auth_free(app.auth);
    SSL_CTX_free(tls);
    return status;
}
