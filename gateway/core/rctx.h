/*
 * rctx.h - one request as the gateway sees it: its id, its generation, how
 * it authenticated, and the helpers that answer it (JSON, problem+json,
 * common headers).  Lives from on_request until the stream closes; owned by
 * the worker loop thread, never touched elsewhere.
 */
#ifndef DZ_RCTX_H
#define DZ_RCTX_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/log.h"
#include "core/gen.h"
#include "http/httpd.h"
#include "state/session.h"

/* A request id's bytes at most: a prefix in hex, a code constant and a
 * counter in hex (rctx.c, router.c). */
#define DZ_RCTX_RID_MAX 31

struct dz_rctx {
    int refs;    /* loop thread only; see dz_rctx_hold */
    bool closed; /* the stream is gone: never answer */
    struct dz_req *req;
    struct dz_gw_worker *gw_worker;
    struct dz_gw *gw;
    struct dz_gen *gen; /* referenced for the request's lifetime */
    char rid[DZ_RCTX_RID_MAX + 1];
    uint64_t start_us;
    const char *route; /* metrics label: builtin name or policy rule */
    int status;        /* what was answered */
    bool answered;
    /* what the access log and the metrics say about the request; set by
     * whoever learns it (the router, forward), zero until then */
    const char *service;   /* the policy's service name; NULL for builtins */
    const char *route_tpl; /* method-free route template, e.g. "/api/registry/me" */
    uint64_t bytes_out;    /* body bytes answered */
    int upstream_status;   /* 0: no back end was asked */
    uint64_t upstream_us;  /* time the back end took, request to answer head */
    /* authentication, filled by dz_rctx_authenticate_async */
    bool has_session;
    bool via_cookie; /* the token came from the cookie (browser) */
    struct dz_session session;
    /* the asynchronous operation in flight, if any (for cancel on close) */
    void (*cancel)(struct dz_rctx *c);
    void *op;
};

/* Keep c (and its request) alive across asynchronous work; every hold is
 * matched by one release on the loop thread.  The stream's own hold is
 * released when it closes; c is freed with the last one. */
void dz_rctx_hold(struct dz_rctx *c);
void dz_rctx_release(struct dz_rctx *c);

/* A context for work of the gateway's own, with no request behind it (the
 * OIDC expiry sweeper signs, audits and POSTs through the same steps as a
 * request): the worker's current generation, a request id of the worker's
 * prefix, what (a short tag, e.g. "bg") and its counter; it answers nothing
 * (dz_rctx_respond refuses).  One reference: dz_rctx_release frees it.
 * NULL when out of memory.  The worker's loop thread. */
struct dz_gw_worker;
struct dz_rctx *dz_rctx_background(struct dz_gw_worker *gww, const char *what);

/* Monotonic microseconds. */
uint64_t dz_now_us(void);
/* Unix time in milliseconds / seconds. */
int64_t dz_unix_ms(void);

/* Answer with a JSON body (consumed).  extra may be NULL. */
int dz_rctx_json(struct dz_rctx *c, int status, json_t *body, const struct dz_hdr *extra,
                 size_t nextra);
/* Answer with a problem document for code (status from the table). */
int dz_rctx_problem(struct dz_rctx *c, const char *code, const char *detail);
/* Same, with extra headers (e.g. Retry-After). */
int dz_rctx_problem_h(struct dz_rctx *c, const char *code, const char *detail,
                      const struct dz_hdr *extra, size_t nextra);
/* Same, with more members (consumed; may be NULL) that tell the client
 * what to do next, e.g. where a code went.  The standard members win. */
int dz_rctx_problem_x(struct dz_rctx *c, const char *code, const char *detail, json_t *members);
/* 503 state_unavailable with Retry-After: the state this request needs (a
 * failure count, a nonce, a pending login, a rate counter) cannot be read
 * or recorded now — its budget is used up or the store failed (rc, for the
 * log; a full budget is already logged by the store).  Nothing was done. */
int dz_rctx_state_unavailable(struct dz_rctx *c, int rc);
/* Answer with a raw body and content type (NULL: none). */
int dz_rctx_respond(struct dz_rctx *c, int status, const char *content_type, const void *body,
                    size_t len, const struct dz_hdr *extra, size_t nextra);

/* The common headers every answer carries (request id, no-sniff, HSTS on
 * TLS).  Fills h (at least 6 slots) and returns how many. */
size_t dz_rctx_common_headers(struct dz_rctx *c, struct dz_hdr *h);

/*
 * Ops log lines about one request: like dz_log / dz_logj (base/log.h, the
 * subsystem is the calling file's folder) with the request's "rid" added,
 * the id a citizen reads as "instance" in a problem document and the
 * access log's "rid".  fields is consumed (may be NULL).  Loop thread.
 */
#define dz_rctx_log(c, level, event, ...) dz_rctx_log_at(__FILE__, c, level, event, __VA_ARGS__)
#define dz_rctx_logj(c, level, event, fields) dz_rctx_logj_at(__FILE__, c, level, event, fields)
void dz_rctx_log_at(const char *file, const struct dz_rctx *c, enum dz_log_level level,
                    const char *event, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void dz_rctx_logj_at(const char *file, const struct dz_rctx *c, enum dz_log_level level,
                     const char *event, json_t *fields);

/* Parse the body as a JSON object: 0, or answers 415/400 itself and returns
 * DZ_ERR_INVAL (the caller just returns).  The parse's memory (the values,
 * and jansson's own copies of the text) is wiped when freed once
 * dz_json_wipe_frees() has run. */
int dz_rctx_body_json(struct dz_rctx *c, json_t **out);

/* Make jansson wipe every block it frees, process-wide (json_set_alloc_funcs):
 * request bodies carry passwords and OTP codes, and jansson keeps copies of
 * them (the lexer's token buffer, the string values) that json_decref would
 * free as they are.  Call once at start-up, before the worker threads; it is
 * safe at any time for memory jansson already holds (the free wipes
 * malloc_usable_size bytes, so any malloc'd block may pass through it). */
void dz_json_wipe_frees(void);

/* The session token sent with the request (Bearer, else the cookie), or
 * NULL.  *via_cookie tells which.  Points into the request's headers or buf. */
const char *dz_rctx_token(struct dz_rctx *c, char *buf, size_t buf_len, size_t *len,
                          bool *via_cookie);

/* The value of cookie name (copied into buf), or NULL. */
const char *dz_rctx_cookie(struct dz_rctx *c, const char *name, char *buf, size_t buf_len,
                           size_t *len);

/* Whether the SHA-256 of cookie name's value is binding (compared in
 * constant time): the browser collecting a login (QR, card in the browser,
 * mobile signature) is the one that began it.  False without the cookie. */
bool dz_rctx_cookie_bound(struct dz_rctx *c, const char *name, const unsigned char binding[32]);

/* Look up the session without waiting on the loop for a shared store:
 * then(c, rc, arg) once, possibly before returning.  rc: 0 (c->session
 * and c->has_session filled), DZ_ERR_NOTFOUND (no or dead token) or
 * DZ_ERR_UNAVAILABLE (the store could not answer: the caller answers 503
 * state_unavailable, fail closed).  c is held meanwhile; if the client
 * went away, then still runs with c->closed true and must not answer. */
void dz_rctx_authenticate_async(struct dz_rctx *c,
                                void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg);

/* Browser check for state-changing requests: an Origin header, when sent,
 * must be our origin; a cookie-authenticated request must send one.
 * Answers 403 bad_origin itself and returns false when refused. */
bool dz_rctx_origin_ok(struct dz_rctx *c);
/* The same rule without an answer, for a caller that records the refusal
 * before it answers (the forwarder's audit). */
bool dz_rctx_origin_matches(const struct dz_rctx *c);

/* Get a string member of a JSON object, bounded in length; NULL if absent,
 * not a string, or longer than max. */
const char *dz_json_str(const json_t *obj, const char *key, size_t max);

#endif
