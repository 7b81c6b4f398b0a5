/*
 * rctx.c - answering a request and reading what every endpoint needs (JSON
 * body, session token, Origin).  Never logs a token or a body.
 */
#include "core/rctx.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/cookies.h"
#include "core/gen.h"
#include "core/problem.h"
#include "state/session.h"
#include "state/store.h"

#include "base/compat.h"

uint64_t dz_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t dz_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t dz_rctx_common_headers(struct dz_rctx *c, struct dz_hdr *h)
{
    size_t n = 0;

    h[n++] = (struct dz_hdr){"darvaza-request-id", c->rid};
    h[n++] = (struct dz_hdr){"x-content-type-options", "nosniff"};
    h[n++] = (struct dz_hdr){"cache-control", "no-store"};
    if (dz_req_is_tls(c->req))
        h[n++] = (struct dz_hdr){"strict-transport-security", "max-age=31536000"};
    return n;
}

int dz_rctx_respond(struct dz_rctx *c, int status, const char *content_type, const void *body,
                    size_t len, const struct dz_hdr *extra, size_t nextra)
{
    struct dz_hdr h[24];
    size_t n;

    /* Background work (dz_rctx_background) has nobody to answer. */
    if (!c->req)
        return DZ_ERR_STATE;
    n = dz_rctx_common_headers(c, h);
    if (content_type)
        h[n++] = (struct dz_hdr){"content-type", content_type};
    for (size_t i = 0; i < nextra && n < sizeof(h) / sizeof(h[0]); i++)
        h[n++] = extra[i];
    /* RFC 9110 15.5.2: a 401 names how to authenticate.  The API takes a
     * bearer token (RFC 6750 2.1) or the session cookie a login sets,
     * unless the caller names its own scheme (the OpenID Connect token
     * endpoint's client authentication). */
    bool has_www = false;
    for (size_t i = 0; i < nextra; i++)
        has_www = has_www || strcmp(extra[i].name, "www-authenticate") == 0;
    if (status == 401 && !has_www && n < sizeof(h) / sizeof(h[0]))
        h[n++] = (struct dz_hdr){"www-authenticate", "Bearer realm=\"darvaza\""};
    c->status = status;
    c->answered = true;
    c->bytes_out = len;
    return dz_req_respond(c->req, status, h, n, body, len);
}

static int respond_json(struct dz_rctx *c, int status, const char *ctype, json_t *body,
                        const struct dz_hdr *extra, size_t nextra)
{
    char *text = NULL;
    int rc;

    if (body)
        text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        static const char fallback[] =
            "{\"type\":\"urn:darvaza:problem:internal_error\",\"title\":\"Internal error\","
            "\"status\":500,\"detail\":\"out of memory\",\"code\":\"internal_error\"}";
        return dz_rctx_respond(c, 500, "application/problem+json", fallback, sizeof(fallback) - 1,
                               NULL, 0);
    }
    rc = dz_rctx_respond(c, status, ctype, text, strlen(text), extra, nextra);
    free(text);
    return rc;
}

int dz_rctx_json(struct dz_rctx *c, int status, json_t *body, const struct dz_hdr *extra,
                 size_t nextra)
{
    return respond_json(c, status, "application/json", body, extra, nextra);
}

int dz_rctx_problem_h(struct dz_rctx *c, const char *code, const char *detail,
                      const struct dz_hdr *extra, size_t nextra)
{
    json_t *p = dz_problem_new(code, detail);

    if (p)
        json_object_set_new(p, "instance", json_string(c->rid));
    return respond_json(c, dz_problem_status(code), "application/problem+json", p, extra, nextra);
}

int dz_rctx_problem_x(struct dz_rctx *c, const char *code, const char *detail, json_t *members)
{
    json_t *p = dz_problem_new(code, detail);

    if (p) {
        json_object_set_new(p, "instance", json_string(c->rid));
        if (json_is_object(members))
            json_object_update_missing(p, members);
    }
    json_decref(members);
    return respond_json(c, dz_problem_status(code), "application/problem+json", p, NULL, 0);
}

int dz_rctx_problem(struct dz_rctx *c, const char *code, const char *detail)
{
    return dz_rctx_problem_h(c, code, detail, NULL, 0);
}

void dz_rctx_logj_at(const char *file, const struct dz_rctx *c, enum dz_log_level level,
                     const char *event, json_t *fields)
{
    if (!dz_log_enabled_at(file, level)) {
        json_decref(fields);
        return;
    }
    if (!fields)
        fields = json_object();
    if (fields)
        json_object_set_new(fields, "rid", json_string(c->rid));
    dz_logj_at(file, level, event, fields);
}

void dz_rctx_log_at(const char *file, const struct dz_rctx *c, enum dz_log_level level,
                    const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    if (!dz_log_enabled_at(file, level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Over the bound the message is dropped whole, never logged cut short
     * (as base/log.c does). */
    dz_rctx_logj_at(
        file, c, level, event,
        json_pack("{s:s}", "msg", n >= 0 && (size_t)n < sizeof(msg) ? msg : "(message too long)"));
}

int dz_rctx_state_unavailable(struct dz_rctx *c, int rc)
{
    if (rc != DZ_ERR_FULL)
        dz_rctx_logj(c, DZ_LOG_WARN, "state_unavailable",
                     json_pack("{s:s, s:s}", "msg", "the store failed", "error", dz_err_str(rc)));
    return dz_rctx_problem_h(c, "state_unavailable", NULL, &(struct dz_hdr){"retry-after", "5"}, 1);
}

static bool is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (!ct || strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* malloc_usable_size, not a size header of our own: every block jansson
 * frees comes from malloc (ours or, before dz_json_wipe_frees, libc's), so
 * the length is always known and wiping a little slack costs nothing. */
static void json_wipe_free(void *p)
{
    if (!p)
        return;
    dz_secret_wipe(p, malloc_usable_size(p));
    free(p);
}

void dz_json_wipe_frees(void)
{
    json_set_alloc_funcs(malloc, json_wipe_free);
}

int dz_rctx_body_json(struct dz_rctx *c, json_t **out)
{
    const unsigned char *body;
    size_t len;
    json_error_t jerr;
    json_t *j;

    *out = NULL;
    if (dz_req_body_overflow(c->req)) {
        dz_rctx_problem(c, "payload_too_large", NULL);
        return DZ_ERR_INVAL;
    }
    if (!is_json_type(dz_req_header(c->req, "content-type"))) {
        dz_rctx_problem(c, "unsupported_media_type", NULL);
        return DZ_ERR_INVAL;
    }
    body = dz_req_body(c->req, &len);
    /* jansson checks UTF-8 and nesting depth; duplicate keys are refused so
     * two parsers can never read two different values from one body. */
    j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        char detail[200];
        snprintf(detail, sizeof(detail), "line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        dz_rctx_problem(c, "invalid_json", detail);
        return DZ_ERR_INVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        dz_rctx_problem(c, "invalid_json", "the body must be a JSON object");
        return DZ_ERR_INVAL;
    }
    *out = j;
    return 0;
}

const char *dz_json_str(const json_t *obj, const char *key, size_t max)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_string(v) || json_string_length(v) > max)
        return NULL;
    /* Embedded NULs would let two readers disagree about the value. */
    if (strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

static const char *cookie_value(const char *header, const char *cname, size_t *len)
{
    const char *p = header;
    size_t nlen = strlen(cname);

    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, cname, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            const char *end = strchr(v, ';');
            *len = end ? (size_t)(end - v) : strlen(v);
            return v;
        }
        p = strchr(p, ';');
    }
    return NULL;
}

const char *dz_rctx_cookie(struct dz_rctx *c, const char *name, char *buf, size_t buf_len,
                           size_t *len)
{
    size_t count = dz_req_header_count(c->req);

    *len = 0;
    for (size_t i = 0; i < count; i++) {
        const char *hname;
        const char *value;
        const char *v;
        size_t vlen;

        dz_req_header_at(c->req, i, &hname, &value);
        if (strcmp(hname, "cookie") != 0)
            continue;
        v = cookie_value(value, name, &vlen);
        if (v && vlen < buf_len) {
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            *len = vlen;
            return buf;
        }
    }
    return NULL;
}

bool dz_rctx_cookie_bound(struct dz_rctx *c, const char *name, const unsigned char binding[32])
{
    char buf[128];
    size_t len;
    unsigned char h[32];
    bool ok;

    if (!dz_rctx_cookie(c, name, buf, sizeof(buf), &len))
        return false;
    dz_sha256(buf, len, h);
    ok = dz_secret_equal(h, sizeof(h), binding, 32);
    dz_secret_wipe(buf, sizeof(buf));
    return ok;
}

const char *dz_rctx_token(struct dz_rctx *c, char *buf, size_t buf_len, size_t *len,
                          bool *via_cookie)
{
    const char *auth = dz_req_header(c->req, "authorization");
    const char *v;

    *len = 0;
    *via_cookie = false;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        *len = strlen(auth);
        return auth;
    }
    v = dz_rctx_cookie(c, DZ_COOKIE_SESSION, buf, buf_len, len);
    *via_cookie = v != NULL;
    return v;
}

/* ---- the session, without waiting on the loop */

struct auth_wait {
    struct dz_rctx *c;
    bool via_cookie;
    void (*then)(struct dz_rctx *c, int rc, void *arg);
    void *arg;
};

static void auth_looked_up(void *arg, int rc, const struct dz_session *s)
{
    struct auth_wait w = *(struct auth_wait *)arg;
    struct dz_rctx *c = w.c;

    free(arg);
    if (rc == 0 && !c->closed) {
        c->session = *s;
        c->has_session = true;
        c->via_cookie = w.via_cookie;
    }
    if (dz_store_failed(rc))
        rc = DZ_ERR_UNAVAILABLE; /* not "no session": the store could not say */
    else if (rc != 0)
        rc = DZ_ERR_NOTFOUND;
    w.then(c, rc, w.arg);
    dz_rctx_release(c);
}

void dz_rctx_authenticate_async(struct dz_rctx *c,
                                void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg)
{
    char buf[128];
    size_t len;
    bool via_cookie;
    const char *tok = dz_rctx_token(c, buf, sizeof(buf), &len, &via_cookie);
    struct auth_wait *w;

    c->has_session = false;
    if (!tok) {
        then(c, DZ_ERR_NOTFOUND, arg);
        return;
    }
    w = malloc(sizeof(*w));
    if (!w) {
        dz_secret_wipe(buf, sizeof(buf));
        then(c, DZ_ERR_UNAVAILABLE, arg);
        return;
    }
    *w = (struct auth_wait){c, via_cookie, then, arg};
    dz_rctx_hold(c);
    dz_session_lookup_async(c->gw->store, dz_worker_loop(c->gw_worker->worker),
                            &c->gen->session_limits, tok, len, auth_looked_up, w);
    dz_secret_wipe(buf, sizeof(buf));
}

bool dz_rctx_origin_matches(const struct dz_rctx *c)
{
    const char *origin = dz_req_header(c->req, "origin");

    if (origin)
        return strcmp(origin, c->gen->config->gateway.origin) == 0;
    /* No Origin: a non-browser client (curl, a service) with a bearer token,
     * or a login; a browser always sends Origin on a cross-site POST, so a
     * cookie-authenticated request without one is refused. */
    return !c->via_cookie;
}

bool dz_rctx_origin_ok(struct dz_rctx *c)
{
    if (dz_rctx_origin_matches(c))
        return true;
    dz_rctx_problem(c, "bad_origin", "Origin does not match this gateway");
    return false;
}

/* The stream holds one reference and each asynchronous step another; the
 * last release frees the context and gives back the generation it pinned. */
void dz_rctx_hold(struct dz_rctx *c)
{
    c->refs++;
    if (c->req)
        dz_req_ref(c->req);
}

struct dz_rctx *dz_rctx_background(struct dz_gw_worker *gww, const char *what)
{
    struct dz_rctx *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->gw_worker = gww;
    c->gw = gww->gw;
    c->gen = gww->gen;
    dz_gen_ref(c->gen);
    c->start_us = dz_now_us();
    c->refs = 1;
    c->answered = true; /* nothing to answer: every answer is refused */
    snprintf(c->rid, sizeof(c->rid), "%s%s%08llx", gww->rid_prefix, what,
             (unsigned long long)++gww->rid_counter);
    return c;
}

void dz_rctx_release(struct dz_rctx *c)
{
    struct dz_req *req = c->req;

    if (--c->refs == 0) {
        dz_gen_unref(c->gen);
        free(c);
    }
    dz_req_unref(req);
}
