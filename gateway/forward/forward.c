/*
 * forward.c - §4.8: every request the policies route goes through here.
 *
 * Order of checks (fail closed at each): route match (default deny) ->
 * session -> policy (acr, means, role, self-only, purpose) -> Origin for
 * state-changing browser requests -> body limit -> rate per subject ->
 * a slot of the service's requests in flight (inflight.h) -> signed body (require_signed_body
 * routes: signed_body.c verifies, time-stamps and may replace the body) -> signed assertion ->
 * upstream.  The upstream never sees the client's Authorization, our cookie, hop-by-hop headers,
 * any Darvaza-* or X-Forwarded-* header, or a method/URL override field; it gets Forwarded,
 * Darvaza-Request-Id, Darvaza-Assertion and Darvaza-Release.  The answer is streamed back, except
 * on routes with a `release` list, whose answers (errors too: release.h) are buffered (bounded) and
 * stripped of the fields the policy does not release.  The audit line is durable before the first
 * byte of the answer leaves.
 */
#include "forward/forward.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>

#include "audit/auditrec.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/addrkey.h"
#include "core/batchsign.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "core/problem.h"
#include "forward/inflight.h"
#include "forward/release.h"
#include "http/httpc.h"
#include "keys/assertion.h"
#include "sign/signed_body.h"
#include "state/store.h"

#include "base/compat.h"

/* The longest request target (path and query) forwarded: RFC 9110 4.1 asks
 * for at least 8000 octets; the assertion carries it whole. */
#define FORWARD_TARGET_MAX 8192
#define MAX_FWD_HEADERS 64
/* The fields the gateway adds after the client's kept ones: cookie (the
 * client's others), forwarded, darvaza-request-id, darvaza-assertion, the
 * onward documents header, darvaza-release and accept-encoding. */
#define OWN_FWD_HEADERS 7
#define RELEASE_BUFFER_MAX (8u << 20)
#define PENDING_HIGH (4u << 20)

struct fwd {
    struct dz_rctx *c;
    const struct dz_policy_service *svc;
    const struct dz_policy_route *route;
    char target[8]; /* captured {fin}, normalised */
    const char *purpose;
    char sid[48];
    struct dz_assertion_in in;
    struct dz_signed_body *sb; /* require_signed_body: what is forwarded instead */
    char *assertion;
    char *url; /* upstream and the client's whole target (up to FORWARD_TARGET_MAX) */
    char forwarded[256];
    char release[256];
    struct dz_hdr hdrs[MAX_FWD_HEADERS];
    size_t nhdrs;
    char *cookie_rest; /* cookie header without ours */
    struct dz_httpc_xfer *xfer;
    /* answer */
    int status;
    struct dz_hdr *rh; /* response headers, copied with their strings in one block */
    size_t nrh;
    bool buffering;              /* release filter: whole body first */
    bool audited;                /* the "sent" line is durable: the request may leave */
    bool audit_pending;          /* the "sent" line is being written; f waits for it */
    bool sent;                   /* the request went to the back end */
    uint64_t bytes;              /* answer body bytes received from the back end */
    uint64_t sent_us;            /* when the request left (dz_now_us) */
    const char *reason;          /* why the transfer failed (dz_httpc_reason) */
    char jti[48];                /* the assertion's jti, linking the audit lines */
    struct dz_httpc_request req; /* kept from signing until the "sent" line is durable */
    struct dz_httpc_tls tls;
    bool started; /* response headers sent */
    bool upstream_done;
    int upstream_result;
    struct dz_buf body; /* buffered or early data */
    /* Back-pressure: resumes reading; once the answer is refused: its end
     * (refuse_answer). */
    ev_timer resume;
    bool paused;
    bool refused; /* the answer was refused mid-transfer (refuse_answer) */
    /* Why, as the outcome line says it, taken when the refusal happens: the
     * client may go before the refusal's posted end runs, and its line
     * still tells why the answer never came.  NULL: none, or a refusal that
     * was the client's own doing (it did not read what it was sent). */
    const char *refusal;
    /* The outcome line, reserved before the request left (audit_sent). */
    struct dz_gw_audit_slot *outcome;
    /* Its place among the service's requests in flight, from before
     * signing to fwd_free (the one place every ending goes through). */
    struct dz_inflight_slot slot;
};

static void fwd_free(struct fwd *f)
{
    if (!f)
        return;
    free(f->assertion);
    free(f->url);
    dz_signed_body_free(f->sb);
    free(f->cookie_rest);
    free(f->rh);
    dz_buf_cleanup(&f->body);
    dz_gw_audit_slot_free(f->outcome);
    dz_inflight_give(&f->slot);
    free(f);
}

static enum dz_httpc_version httpc_version(const struct dz_policy_service *svc)
{
    switch (svc->upstream_http) {
    case DZ_UPSTREAM_H2C:
        return DZ_HTTPC_H2C;
    case DZ_UPSTREAM_HTTP1:
        return DZ_HTTPC_HTTP1;
    default:
        return DZ_HTTPC_H2;
    }
}

static uint64_t route_timeout_ms(struct dz_rctx *c, const struct dz_policy_route *r)
{
    return r->limits.timeout_ms ? r->limits.timeout_ms : c->gen->config->limits.request_timeout_ms;
}

static uint64_t route_body_max(struct dz_rctx *c, const struct dz_policy_route *r)
{
    return r->limits.body ? r->limits.body : c->gen->config->limits.body;
}

/* "fin,name,..." in the order of the release table. */
static void release_list(const struct dz_policy_route *r, char *out, size_t out_len)
{
    size_t used = 0;

    out[0] = '\0';
    for (unsigned i = 0; i < DZ_RELEASE_COUNT; i++) {
        int n;
        if (!(r->release & (1u << i)))
            continue;
        n = snprintf(out + used, out_len - used, "%s%s", used ? "," : "",
                     dz_policy_release_names[i]);
        if (n < 0 || (size_t)n >= out_len - used)
            break;
        used += (size_t)n;
    }
}

/* Compared by length first: this runs for every header of every request
 * and answer, and a strcmp against each name of the list showed in the
 * profile (about 0.6 % of the gateway's CPU).  Case-insensitive: HTTP/2
 * names are lower case (nghttp2 refuses others), but a field dropped for
 * what it makes a back end do must not pass by its spelling. */
/* clang-format off */
#define DROP(s) {(s), sizeof(s) - 1}
/* clang-format on */
static bool is_hop_or_private(const char *name)
{
    static const struct {
        const char *name;
        size_t len;
    } drop[] = {
        DROP("connection"),
        DROP("keep-alive"),
        DROP("proxy-connection"),
        DROP("te"),
        DROP("trailer"),
        DROP("transfer-encoding"),
        DROP("upgrade"),
        DROP("host"),
        DROP("authorization"),
        DROP("content-length"),
        DROP("forwarded"),
        DROP("x-real-ip"),
        DROP("proxy-authorization"),
        DROP("cookie"),
        DROP("http2-settings"),
        DROP("expect"),
        /* Another method or target than the request line's, honoured by
         * many frameworks behind a proxy (method override, the "original"
         * URL of IIS/Symfony/Laminas): the back end would act on a DELETE
         * or another path while the policy matched, the assertion's
         * htm/htu signed and the audit line recorded this one.  Dropped,
         * as proxies drop them, rather than refused: the request the
         * client sent still goes, as the policy allowed it. */
        DROP("x-http-method-override"),
        DROP("x-http-method"),
        DROP("x-method-override"),
        DROP("x-original-method"),
        DROP("x-original-url"),
        DROP("x-original-uri"),
        DROP("x-rewrite-url"),
        DROP("x-original-host"),
    };
    size_t len = strlen(name);

    if (len >= 8 && strncasecmp(name, "darvaza-", 8) == 0)
        return true;
    /* Every X-Forwarded-* (for, host, proto, prefix, uri, method, port...)
     * is a proxy's word on the original request: the gateway gives its own
     * in Forwarded, and a client's would tell the back end another
     * address, scheme, path prefix or method. */
    if (len >= 12 && strncasecmp(name, "x-forwarded-", 12) == 0)
        return true;
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
        if (drop[i].len == len && strncasecmp(name, drop[i].name, len) == 0)
            return true;
    }
    return false;
}
#undef DROP

/* Keep the client's other cookies, drop ours: the session token must never
 * reach a back end. */
static char *cookies_without_ours(struct dz_req *req)
{
    struct dz_buf b;
    size_t n = dz_req_header_count(req);
    bool failed = false;

    dz_buf_init(&b, 16384);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const char *value;
        char *copy;
        char *save = NULL;

        dz_req_header_at(req, i, &name, &value);
        if (strcmp(name, "cookie") != 0)
            continue;
        copy = strdup(value);
        if (!copy)
            break;
        for (char *p = strtok_r(copy, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
            while (*p == ' ')
                p++;
            /* Every cookie of ours (the session and the QR binding) stays
             * here: none is a back end's business. */
            if (strncmp(p, DZ_COOKIE_PREFIX, DZ_COOKIE_PREFIX_LEN) == 0 || *p == '\0')
                continue;
            /* A failed append frees the buffer: stop, and pass no
             * cookie at all rather than a cut list. */
            if ((b.len && dz_buf_append_str(&b, "; ") != 0) || dz_buf_append_str(&b, p) != 0) {
                failed = true;
                break;
            }
        }
        free(copy);
        if (failed)
            break;
    }
    if (!b.len || failed) {
        dz_buf_cleanup(&b);
        return NULL;
    }
    return dz_buf_steal(&b, NULL);
}

/* ----------------------------------------------------------- answering */

static void audit_outcome(struct dz_rctx *c, struct fwd *f, const char *result);

/* A stream the engine closed at the drain deadline (not one its client
 * left, even during the drain's grace). */
static bool drain_cut(const struct dz_rctx *c)
{
    return dz_req_is_drain_cut(c->req);
}

/* What the outcome line says of a stream that closed before the forward
 * ended: the answer's refusal when there was one (recorded as it
 * happened), else how the client went. */
static const char *closed_result(const struct dz_rctx *c, const struct fwd *f)
{
    if (f->refusal)
        return f->refusal;
    return drain_cut(c) ? "drain_cut" : "client_gone";
}

static void fwd_cancel(struct dz_rctx *c)
{
    struct fwd *f = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (!f)
        return;
    ev_timer_stop(dz_worker_loop(c->gw_worker->worker), &f->resume);
    if (f->audit_pending)
        return; /* sent_then sees the stream closed, records it and frees f */
    if (f->xfer || f->refused) {
        /* The client went while the back end was at work: the back end
         * may act on the request all the same, so the log says so.  Or
         * after its answer was refused, before the posted end ran (the
         * timer is stopped above): the line keeps the refusal's reason,
         * unless the refusal was the client's own doing (a write refused
         * because it does not read), when it says the client went. */
        dz_httpc_cancel(f->xfer);
        f->xfer = NULL;
        audit_outcome(c, f, closed_result(c, f));
        /* The transfer's hold. */
        fwd_free(f);
        dz_rctx_release(c);
    }
}

bool dz_forward_in_flight(const struct dz_rctx *c)
{
    return c->cancel == fwd_cancel;
}

static void finish(struct dz_rctx *c, struct fwd *f)
{
    /* Everything is sent; the transfer's hold goes. */
    c->op = NULL;
    c->cancel = NULL;
    ev_timer_stop(dz_worker_loop(c->gw_worker->worker), &f->resume);
    fwd_free(f);
    dz_rctx_release(c);
}

/* The answer has a content coding other than identity. */
static bool answer_coded(const struct fwd *f)
{
    for (size_t i = 0; i < f->nrh; i++) {
        if (strcmp(f->rh[i].name, "content-encoding") == 0 &&
            strcasecmp(f->rh[i].value, "identity") != 0)
            return true;
    }
    return false;
}

/* A back end's answer is served at the portal's origin, where the session
 * cookie and the account API live: were its page to run a script (its own,
 * or one an attacker got reflected into it), the script would act as the
 * person with an Origin the gateway accepts.  Sandboxed, the answer is an
 * opaque origin whatever it holds; a back end's own policy still applies
 * too (every policy a browser receives is enforced). */
#define FORWARD_CSP "sandbox; default-src 'none'; frame-ancestors 'none'"

/* A release route's answer: of the back end's fields only those that hold
 * no record (release.h), the content type the gateway's own for the JSON
 * it filtered (json: the answer has that content).  A 401 keeps the
 * challenge RFC 9110 15.5.2 requires, the gateway's, not the back end's
 * text. */
static size_t released_headers(const struct fwd *f, struct dz_hdr *h, size_t n, size_t max,
                               bool json)
{
    const char *ctype = NULL;

    for (size_t i = 0; i < f->nrh && n + 2 < max; i++) {
        if (strcmp(f->rh[i].name, "content-type") == 0)
            ctype = f->rh[i].value;
        else if (dz_release_field_allows(f->status, f->rh[i].name, f->rh[i].value))
            h[n++] = f->rh[i];
    }
    if (json)
        h[n++] = (struct dz_hdr){"content-type", dz_release_content_type(f->status, ctype)};
    if (f->status == 401)
        h[n++] = (struct dz_hdr){"www-authenticate", "Bearer realm=\"darvaza\""};
    return n;
}

/* json: a release route's answer carries filtered JSON (released_headers). */
static size_t answer_headers(struct dz_rctx *c, struct fwd *f, struct dz_hdr *h, size_t max,
                             bool skip_length, bool json)
{
    size_t n = dz_rctx_common_headers(c, h);

    h[n++] = (struct dz_hdr){"content-security-policy", FORWARD_CSP};
    if (f->route->release)
        return released_headers(f, h, n, max, json);
    for (size_t i = 0; i < f->nrh && n < max; i++) {
        const char *name = f->rh[i].name;
        if (is_hop_or_private(name) || (skip_length && strcmp(name, "content-length") == 0))
            continue;
        /* Which origins may read answers at the portal's origin is the
         * gateway's to say, not a back end's: a back end that reflects
         * any Origin with credentials would open every person's answers
         * to other sites.  The gateway allows none (no CORS). */
        if (strncmp(name, "access-control-", 15) == 0)
            continue;
        /* The back end may not set a cookie of ours (session or QR binding). */
        if (strcmp(name, "set-cookie") == 0 &&
            strncmp(f->rh[i].value, DZ_COOKIE_PREFIX, DZ_COOKIE_PREFIX_LEN) == 0)
            continue;
        if (strcmp(name, "cache-control") == 0 || strcmp(name, "x-content-type-options") == 0 ||
            strcmp(name, "strict-transport-security") == 0)
            continue;
        h[n++] = f->rh[i];
    }
    return n;
}

static void upstream_failed(struct dz_rctx *c, struct fwd *f, int result);

/* A release route's error answer whose content the filter cannot read
 * (release.h): the back end's status, with the gateway's problem document
 * in place of the content (and of the back end's fields: its content type
 * no longer applies).  The client still learns "not found" from "conflict";
 * not what the back end wrote. */
static int withhold_error(struct dz_rctx *c, struct fwd *f)
{
    json_t *p = dz_problem_new("upstream_error_withheld", NULL);
    char *text;
    int rc;

    if (p) {
        json_object_set_new(p, "status", json_integer(f->status));
        json_object_set_new(p, "instance", json_string(c->rid));
    }
    text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!text)
        return DZ_ERR_NOMEM;
    rc = dz_rctx_respond(c, f->status, "application/problem+json", text, strlen(text), NULL, 0);
    free(text);
    return rc;
}

/* The whole answer at once (a buffered one).  Returns 0, or why the client
 * got a 502 instead (answered here: the outcome line tells it). */
static int send_buffered(struct dz_rctx *c, struct fwd *f)
{
    struct dz_hdr h[MAX_FWD_HEADERS + 8];
    size_t n;
    char *filtered = NULL;
    size_t flen = 0;
    int rc;

    /* An answer without content (to a HEAD, a 204, a 304) has no field to
     * strip: nothing to filter, and no record to refuse (RFC 9110 9.3.2:
     * a HEAD gets the GET's answer without its content). */
    bool bodiless = f->body.len == 0 && (f->status == 204 || f->status == 304 ||
                                         strcmp(dz_req_method(c->req), "HEAD") == 0);

    if (f->buffering && !bodiless) {
        switch (dz_release_filter(f->route, f->status, answer_coded(f), f->body.data, f->body.len,
                                  &filtered, &flen)) {
        case DZ_RELEASE_FILTERED:
            break;
        case DZ_RELEASE_WITHHELD:
            rc = withhold_error(c, f);
            if (rc != 0)
                upstream_failed(c, f, rc);
            return rc;
        case DZ_RELEASE_NOMEM:
            /* Our failure, not the service's: said as such, and never
             * the answer unfiltered. */
            upstream_failed(c, f, DZ_ERR_NOMEM);
            return DZ_ERR_NOMEM;
        default:
            /* An answer we cannot read is not passed on unfiltered. */
            dz_metrics_upstream_error(c->gw->metrics, f->svc->name, "bad_answer");
            dz_rctx_problem(c, "upstream_unavailable",
                            f->status >= 300 && f->status < 400
                                ? "the service redirected a route whose answers are filtered"
                                : "the service answered malformed JSON");
            f->status = 502;
            return DZ_ERR_PARSE;
        }
    }
    if (!filtered)
        flen = f->body.len;
    n = answer_headers(c, f, h, sizeof(h) / sizeof(h[0]), true, filtered != NULL);
    rc = dz_req_respond(c->req, f->status, h, n, filtered ? filtered : f->body.data, flen);
    free(filtered);
    if (rc != 0) {
        /* Nothing went out (the engine could not take the answer): the
         * client is not left waiting for one. */
        upstream_failed(c, f, rc);
        return rc;
    }
    c->status = f->status;
    c->answered = true;
    c->bytes_out = flen;
    return 0;
}

/* 0, or why the answer could not start (nothing went out: out of memory,
 * or a field the engine will not send); the caller refuses it then. */
static int start_streaming(struct dz_rctx *c, struct fwd *f)
{
    struct dz_hdr h[MAX_FWD_HEADERS + 8];
    size_t n = answer_headers(c, f, h, sizeof(h) / sizeof(h[0]), false, false);
    int rc = dz_req_start(c->req, f->status, h, n);

    if (rc != 0)
        return rc;
    c->status = f->status;
    c->answered = true;
    f->started = true;
    return 0;
}

/* The metric's kind for a failed forward. */
static const char *error_kind(int result)
{
    switch (result) {
    case DZ_ERR_TIMEOUT:
        return "timeout";
    case DZ_ERR_NOMEM:
        return "out_of_memory";
    default:
        return "unavailable";
    }
}

static void upstream_failed(struct dz_rctx *c, struct fwd *f, int result)
{
    const char *svc = f->svc->name;
    bool timeout = result == DZ_ERR_TIMEOUT;

    /* The operator's first question after a 502/504: why.  Warning, not
     * debug: a back end that cannot be reached is an outage. */
    dz_rctx_logj(c, DZ_LOG_WARN, "upstream_failed",
                 json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "service", svc, "upstream",
                           f->svc->upstream, "reason",
                           f->reason ? f->reason : dz_httpc_reason_of(result), "error",
                           dz_err_str(result), "streaming", f->started, "up_ms",
                           (json_int_t)((dz_now_us() - f->sent_us) / 1000)));
    dz_metrics_upstream_error(c->gw->metrics, svc, error_kind(result));
    if (f->started) {
        /* Too late for a status: the stream is reset, so the client sees
         * the answer cut, not ended as if complete. */
        (void)dz_req_reset(c->req); /* out of memory: the response timer resets it */
        return;
    }
    /* The outcome line carries the status the client gets, not the back
     * end's (which may have answered before the failure). */
    f->status = timeout ? 504 : 502;
    if (result == DZ_ERR_TOOBIG) {
        dz_rctx_problem(c, "upstream_unavailable", "the service answer is too large");
        return;
    }
    dz_rctx_problem(c, timeout ? "upstream_timeout" : "upstream_unavailable", NULL);
}

static const char *outcome_of(int result)
{
    switch (result) {
    case 0:
        return "ok";
    case DZ_ERR_TIMEOUT:
        return "upstream_timeout";
    case DZ_ERR_TOOBIG:
        return "too_large";
    case DZ_ERR_NOMEM:
        return "out_of_memory"; /* ours: the answer could not be held */
    default:
        return "upstream_error";
    }
}

/*
 * The end of a forward: the upstream transfer is over (on_done).  The
 * "sent" line was durable before the request left, so what is left of the
 * answer goes now; then the outcome line (status, bytes, result) is
 * written, linked to the first by the request id and the assertion's jti,
 * and the forward is released.
 */
static void maybe_finish(struct dz_rctx *c, struct fwd *f)
{
    if (!f->audited || !f->upstream_done)
        return;
    if (!c->closed) {
        if (f->upstream_result != 0)
            upstream_failed(c, f, f->upstream_result);
        else if (f->started)
            dz_req_end(c->req);
        else
            f->upstream_result = send_buffered(c, f);
    }
    audit_outcome(c, f, c->closed ? closed_result(c, f) : outcome_of(f->upstream_result));
    finish(c, f);
}

static void outcome_written(struct dz_rctx *c, int rc, void *arg)
{
    /* Nothing waits for it: the answer was not held back for this line
     * (its request was recorded before it left).  A loss is logged and
     * counted by dz_gw_audit_slot_append's hand-off. */
}

/* The second line of the pair: what came of a request that was sent (or,
 * with sent false, was not after all). */
static void audit_outcome(struct dz_rctx *c, struct fwd *f, const char *result)
{
    /* Built without jansson (audit/auditrec.h): these two lines are written
     * for every forwarded request.  Reserved with the first (audit_sent):
     * the request is out, so nothing here may fail for want of memory. */
    struct dz_gw_audit_slot *slot = f->outcome;
    struct dz_audit_rec *rec = dz_gw_audit_slot_rec(slot);

    f->outcome = NULL;

    dz_audit_rec_str(rec, "service", f->svc->name);
    dz_audit_rec_str(rec, "result", result);
    dz_audit_rec_int(rec, "status", f->status);
    dz_audit_rec_int(rec, "bytes", (long long)f->bytes);
    dz_audit_rec_bool(rec, "sent", f->sent);
    if (f->jti[0])
        dz_audit_rec_opt_str(rec, "jti", f->jti);
    /* Patient (dz_audit_append_slot): nobody waits on it, so it joins the
     * next line someone waits on (at a light load, the next request's) and
     * a request does not wait behind the previous one's outcome. */
    dz_gw_audit_slot_append(c, slot, outcome_written, NULL);
}

static void start_transfer(struct dz_rctx *c, struct fwd *f);

/* The "sent" line is durable (or could not be written): only now may the
 * request leave for the back end. */
static void sent_then(struct dz_rctx *c, int rc, void *arg)
{
    struct fwd *f = arg;

    f->audit_pending = false;
    if (rc != 0) {
        /* No durable record, no request: fail closed. */
        if (!c->closed)
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        finish(c, f);
        return;
    }
    f->audited = true;
    if (c->closed) {
        /* The client went before the request left: it never will. */
        audit_outcome(c, f, closed_result(c, f));
        finish(c, f);
        return;
    }
    start_transfer(c, f);
}

/* The first line of the pair, before the request leaves: the decision,
 * who, what, the body's digest and the assertion's jti. */
static void audit_sent(struct dz_rctx *c, struct fwd *f)
{
    struct dz_audit_rec *rec;

    /* The outcome line is taken now, while the request can still be
     * refused: without it the request does not leave (sent_then answers
     * 503), and once it has left its outcome cannot be lost for memory. */
    f->outcome = dz_gw_audit_slot_new("forward_result", "outcome", DZ_FORWARD_OUTCOME_MEMBERS,
                                      DZ_FORWARD_OUTCOME_VALUES_MAX);
    rec = f->outcome ? dz_audit_rec_new("forward") : NULL;

    dz_audit_rec_str(rec, "phase", "sent");
    dz_audit_rec_str(rec, "decision", "allow");
    dz_audit_rec_str(rec, "service", f->svc->name);
    dz_audit_rec_str(rec, "route", c->route ? c->route : "");
    dz_audit_rec_str(rec, "method", dz_req_method(c->req));
    dz_audit_rec_str(rec, "path", dz_req_path(c->req));
    if (c->has_session) {
        dz_audit_rec_opt_str(rec, "fin", c->session.fin);
        dz_audit_rec_opt_str(rec, "means", c->session.method);
        dz_audit_rec_opt_str(rec, "sid", f->sid);
    }
    if (f->target[0])
        dz_audit_rec_opt_str(rec, "tgt", f->target);
    if (f->purpose)
        dz_audit_rec_opt_str(rec, "pur", f->purpose);
    if (f->jti[0])
        dz_audit_rec_opt_str(rec, "jti", f->jti);
    /* Who, in which role, saw which fields: what the person reads in their
     * access list (docs/transparency.md). */
    if (c->has_session && c->session.role[0])
        dz_audit_rec_opt_str(rec, "role", c->session.role);
    /* The actor's name as it was at the time (the login's certificate):
     * in the line, so the proof the person downloads covers it. */
    if (c->has_session && c->session.name[0])
        dz_audit_rec_opt_str(rec, "name", c->session.name);
    if (f->release[0])
        dz_audit_rec_opt_str(rec, "rel", f->release);
    if (f->in.body_len) {
        unsigned char d[32];
        char b[48];
        dz_sha256(f->in.body, f->in.body_len, d);
        dz_b64_encode_to(d, sizeof(d), true, b);
        dz_audit_rec_opt_str(rec, "bdy", b);
    }
    f->audit_pending = true;
    dz_gw_audit_rec(c, rec, sent_then, f);
}

/* The answer's header fields outlive on_head (a buffered answer is sent
 * after the transfer ends): one block holds the array and the strings, one
 * allocation instead of 1 + 2n (n * sizeof(struct dz_hdr), then each name
 * and value with its NUL; an empty list still takes one entry).  NULL when
 * out of memory: on_head then refuses the answer. */
static struct dz_hdr *copy_headers(const struct dz_hdr *h, size_t n, size_t *out_n)
{
    size_t need = (n ? n : 1) * sizeof(*h);
    struct dz_hdr *rh;
    char *p;

    *out_n = 0;
    for (size_t i = 0; i < n; i++)
        need += strlen(h[i].name) + strlen(h[i].value) + 2;
    rh = malloc(need);
    if (!rh)
        return NULL;
    p = (char *)(rh + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(h[i].name) + 1;
        size_t vl = strlen(h[i].value) + 1;

        rh[i].name = memcpy(p, h[i].name, nl);
        p += nl;
        rh[i].value = memcpy(p, h[i].value, vl);
        p += vl;
    }
    *out_n = n;
    return rh;
}

static void refused_end(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct fwd *f = t->data;

    maybe_finish(f->c, f);
}

/*
 * The answer is refused mid-transfer (on_head, on_data): nothing more of it
 * is wanted, so the transfer is cancelled now instead of drained to its end
 * (a slow back end, or one an attacker makes slow, would hold the client's
 * stream, a back-end connection and the buffer for up to the route's
 * timeout, for bytes thrown away).  httpc.h allows the cancel from inside
 * the transfer's callbacks: none of them runs after it, and the back end
 * sees the answer abandoned (an unfinished HTTP/1.1 answer's connection is
 * closed, never back to the idle list; an HTTP/2 stream is reset, its
 * connection closed unless another transfer uses it).  The answer (502, or the reset of a stream
 * already answering) and the forward's end are posted to the loop on the
 * forward's own timer: no allocation (this may be the out-of-memory path),
 * and the client's stream is not answered nor the forward freed with
 * libcurl on the stack.  The back-pressure job of that timer is over: the
 * transfer it resumed is gone.  If the client goes first, fwd_cancel stops
 * the timer and ends the forward; the outcome line still gives the
 * refusal's reason, recorded here, unless is_clients (the engine would not
 * take more for a client that does not read: the line says it went).
 */
static void refuse_answer(struct dz_rctx *c, struct fwd *f, int result, bool is_clients)
{
    struct ev_loop *loop = dz_worker_loop(c->gw_worker->worker);

    f->upstream_result = result;
    f->refused = true;
    f->refusal = is_clients ? NULL : outcome_of(result);
    dz_httpc_cancel(f->xfer);
    f->xfer = NULL;
    f->upstream_done = true;
    f->paused = false;
    ev_timer_stop(loop, &f->resume);
    ev_set_cb(&f->resume, refused_end);
    ev_timer_set(&f->resume, 0., 0.);
    ev_timer_start(loop, &f->resume);
}

static void on_head(void *arg, int status, const struct dz_hdr *h, size_t n)
{
    struct dz_rctx *c = arg;
    struct fwd *f = c->op;
    f->status = status;
    c->upstream_status = status;
    c->upstream_us = dz_now_us() - f->sent_us;
    /* Debug lines of the hot path: the fields are built only when a line
     * will be written (dz_logj takes them whole, so the check is here). */
    if (dz_log_enabled(DZ_LOG_DEBUG))
        dz_rctx_logj(c, DZ_LOG_DEBUG, "upstream_answered",
                     json_pack("{s:s, s:i, s:I}", "service", f->svc->name, "up_status", status,
                               "up_ms", (json_int_t)(c->upstream_us / 1000)));
    dz_metrics_upstream(c->gw->metrics, f->svc->name, c->upstream_us);
    f->rh = copy_headers(h, n < MAX_FWD_HEADERS ? n : MAX_FWD_HEADERS, &f->nrh);
    if (!f->rh) {
        /* Without its header fields (content-type, content-disposition,
         * the cookies it sets) the answer is not the back end's: fail
         * closed.  Nothing of it goes out, and the client gets its 502
         * now, not when the back end is done. */
        refuse_answer(c, f, DZ_ERR_NOMEM, false);
        return;
    }
    /* Released fields are defined on JSON records: on such a route every
     * answer is buffered and read (release.h), an error's as a success's
     * (it can echo the record as well), or refused rather than passed on
     * unchecked. */
    f->buffering = f->route->release != 0;
    dz_buf_init(&f->body, f->buffering ? RELEASE_BUFFER_MAX : PENDING_HIGH * 2);
    /* The request is on record already: the answer may stream at once. */
    if (!c->closed && !f->buffering) {
        int rc = start_streaming(c, f);

        /* The engine would not take the head (out of memory, a back-end
         * header field it refuses, the stream gone): the gateway's refusal,
         * never the client's doing (a head is not counted against the
         * unsent budget; writes are). */
        if (rc != 0)
            refuse_answer(c, f, rc, false);
    }
}

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct fwd *f = t->data;

    if (f->xfer && dz_req_pending(f->c->req) < PENDING_HIGH / 2) {
        dz_httpc_pause(f->xfer, false);
        f->paused = false;
        ev_timer_stop(loop, t);
    }
}

static void on_data(void *arg, const void *p, size_t n)
{
    struct dz_rctx *c = arg;
    struct fwd *f = c->op;
    int rc;

    f->bytes += n;
    /* A refused answer cancels its transfer (refuse_answer), so no more
     * data should come; if some did, it is dropped, never passed on. */
    if (c->closed || f->upstream_result != 0)
        return;
    if (f->started) {
        rc = dz_req_write(c->req, p, n);
        if (rc != 0) {
            /* The engine could not take these bytes: the answer is cut
             * (upstream_failed resets it), not sent on with a hole. */
            refuse_answer(c, f, rc, rc == DZ_ERR_TOOBIG);
            return;
        }
        c->bytes_out += n;
        if (!f->paused && dz_req_pending(c->req) > PENDING_HIGH && f->xfer) {
            /* The client reads slower than the back end writes: stop
             * reading upstream until the output drains. */
            dz_httpc_pause(f->xfer, true);
            f->paused = true;
            ev_timer_again(dz_worker_loop(c->gw_worker->worker), &f->resume);
        }
        return;
    }
    /* Over the bound, or out of memory, while buffering: the buffer is
     * gone (buf.h); the client gets its 502 now and the outcome tells
     * which. */
    rc = dz_buf_append(&f->body, p, n);
    if (rc != 0)
        refuse_answer(c, f, rc, false);
}

static void on_done(void *arg, int result)
{
    struct dz_rctx *c = arg;
    struct fwd *f = c->op;

    /* A refused answer's transfer was cancelled (no on_done); the check
     * keeps the first failure the one told all the same. */
    if (f->upstream_result == 0 && result != 0) {
        f->upstream_result = result;
        f->reason = dz_httpc_reason(f->xfer); /* valid until on_done returns */
    }
    f->xfer = NULL;
    f->upstream_done = true;
    maybe_finish(c, f);
}

/* -------------------------------------------------------------- sending */

/* Never full: dz_forward refused a request whose kept fields leave no room
 * for the gateway's own (client_fields_fit); a silent drop here would send
 * the request on without its assertion, release list or Forwarded. */
static void add_hdr(struct fwd *f, const char *name, const char *value)
{
    if (f->nhdrs < MAX_FWD_HEADERS)
        f->hdrs[f->nhdrs++] = (struct dz_hdr){name, value};
}

/* Nor test the record's validators: its ETag and Last-Modified are not
 * passed on there (release.h), and a 304 or 412 against a guessed ETag, or
 * If-Modified-Since moved by halves, would tell them all the same. */
static bool is_validator_ask(const char *name)
{
    return strcmp(name, "if-none-match") == 0 || strcmp(name, "if-modified-since") == 0 ||
           strcmp(name, "if-match") == 0 || strcmp(name, "if-unmodified-since") == 0;
}

/* On a route with a release list the answer must be one the filter can
 * read whole.  The client may not ask for a part of it: the filter strips
 * the top-level fields of a whole record, and a byte range of it chosen by
 * the client (an object nested under a field not released, whose own keys
 * are release names) would pass as one.  Nor choose its coding: the
 * gateway asks for identity itself (signed_cb), as every browser's
 * "gzip, br" would get a compressed answer the filter refuses. */
static bool is_filter_ask(const struct dz_policy_route *r, const char *name)
{
    return r->release && (strcmp(name, "range") == 0 || strcmp(name, "if-range") == 0 ||
                          strcmp(name, "accept-encoding") == 0 || is_validator_ask(name));
}

static void signed_cb(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct fwd *f = arg;
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_tls tls = {cf->upstream_tls.ca, cf->upstream_tls.certificate,
                               cf->upstream_tls.key};
    size_t n = dz_req_header_count(c->req);
    const unsigned char *body;
    size_t body_len;

    f->assertion = token;
    if (c->closed) {
        fwd_free(f);
        return;
    }
    if (rc == DZ_ERR_TOOBIG) {
        dz_rctx_problem(c, "uri_too_long", "the request does not fit in an assertion");
        fwd_free(f);
        return;
    }
    if (rc != 0) {
        dz_rctx_logj(c, DZ_LOG_ERROR, "assertion_sign",
                     json_pack("{s:s, s:s}", "msg", "signing failed", "error", dz_err_str(rc)));
        dz_rctx_problem(c, "service_unavailable", "could not sign the assertion");
        fwd_free(f);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const char *value;
        dz_req_header_at(c->req, i, &name, &value);
        if (!is_hop_or_private(name) && !is_filter_ask(f->route, name))
            add_hdr(f, name, value);
    }
    f->cookie_rest = cookies_without_ours(c->req);
    if (f->cookie_rest)
        add_hdr(f, "cookie", f->cookie_rest);
    /* host= is the gateway's own public authority, never the client's
     * :authority: a back end builds links from it, and a client could put
     * anything there (RFC 7239 7.4). */
    {
        const char *origin = c->gen->config->gateway.origin;
        const char *host = strstr(origin, "://");
        const char *ip = dz_req_peer_ip(c->req);
        /* An IPv6 node is bracketed (RFC 7239 6): bare, a parser reads
         * its last group as a port. */
        bool v6 = strchr(ip, ':') != NULL;

        snprintf(f->forwarded, sizeof(f->forwarded), "for=\"%s%s%s\";proto=%s;host=\"%s\"",
                 v6 ? "[" : "", ip, v6 ? "]" : "", dz_req_is_tls(c->req) ? "https" : "http",
                 host ? host + 3 : origin);
    }
    add_hdr(f, "forwarded", f->forwarded);
    add_hdr(f, "darvaza-request-id", c->rid);
    if (f->assertion)
        add_hdr(f, "darvaza-assertion", f->assertion);
    if (f->sb && f->sb->onward)
        add_hdr(f, DZ_DOCUMENTS_ONWARD_HEADER, f->sb->onward);
    release_list(f->route, f->release, sizeof(f->release));
    if (f->release[0]) {
        add_hdr(f, "darvaza-release", f->release);
        add_hdr(f, "accept-encoding", "identity");
    }

    /* The target as the client sent it and the assertion's htu names it,
     * whole: never cut to fit a buffer (a back end would act on another
     * request than the one signed and on record). */
    {
        const char *target = dz_req_path(c->req);
        size_t ul = strlen(f->svc->upstream);
        size_t tl = strlen(target);

        f->url = malloc(ul + tl + 1);
        if (!f->url) {
            dz_rctx_problem(c, "service_unavailable", NULL);
            fwd_free(f);
            return;
        }
        memcpy(f->url, f->svc->upstream, ul);
        memcpy(f->url + ul, target, tl + 1);
    }
    body = dz_req_body(c->req, &body_len);
    if (f->sb) {
        body = f->sb->body;
        body_len = f->sb->body_len;
    }
    f->tls = tls;
    memset(&f->req, 0, sizeof(f->req));
    f->req.method = dz_req_method(c->req);
    f->req.url = f->url;
    f->req.headers = f->hdrs;
    f->req.nheaders = f->nhdrs;
    f->req.body = body;
    f->req.body_len = body_len;
    f->req.version = httpc_version(f->svc);
    f->req.timeout_ms = (uint32_t)route_timeout_ms(c, f->route);
    f->req.connect_timeout_ms = f->req.timeout_ms;
    f->req.tls = strncmp(f->url, "https:", 6) == 0 ? &f->tls : NULL;
    f->req.max_response_bytes = 0;
    ev_init(&f->resume, resume_cb);
    f->resume.repeat = 0.01;
    f->resume.data = f;
    f->c = c;
    c->op = f;
    c->cancel = fwd_cancel;
    dz_rctx_hold(c); /* the forward's hold, released by finish */
    /* Audit before acting: the back end may act on what it receives, so the
     * request is on record before it leaves, whatever the client does. */
    audit_sent(c, f);
}

static void start_transfer(struct dz_rctx *c, struct fwd *f)
{
    static const struct dz_httpc_callbacks cbs = {on_head, on_data, on_done};

    f->sent = true;
    f->sent_us = dz_now_us();
    if (dz_log_enabled(DZ_LOG_DEBUG))
        dz_rctx_logj(c, DZ_LOG_DEBUG, "forward_sent",
                     json_pack("{s:s, s:s, s:s}", "service", f->svc->name, "upstream",
                               f->svc->upstream, "jti", f->jti));
    if (dz_httpc_start(c->gw_worker->httpc, &f->req, &cbs, c, &f->xfer) != 0) {
        f->sent = false;
        f->upstream_done = true;
        f->upstream_result = DZ_ERR_UNAVAILABLE;
        f->status = 502;
        maybe_finish(c, f);
    }
}

static void forward_rated(struct dz_rctx *c, struct fwd *f, int rc);

static void rate_counted(void *arg, int rc, int64_t count, const void *data, size_t len)
{
    struct fwd *f = arg;
    struct dz_rctx *c = f->c;

    (void)data;
    (void)len;
    if (c->closed)
        fwd_free(f);
    else if (rc != 0)
        forward_rated(c, f, rc);
    else
        forward_rated(c, f, count <= (int64_t)f->route->limits.rate.count ? 0 : 1);
    dz_rctx_release(c); /* the hold for the count */
}

/* Who is counted: "f" and the person's FIN, or the client's address key
 * (core/addrkey.h: an IPv6 client counts by its /64, as every other
 * per-address count), so a host cannot make a fresh counter with each of
 * the 2^64 addresses of its prefix.  The tags keep a FIN and an address
 * apart.  false: the address is unusable. */
static bool who(const struct dz_rctx *c, bool person, struct dz_addr_key *ak)
{
    if (person) {
        size_t fin_len = strnlen(c->session.fin, sizeof(c->session.fin));

        if (fin_len >= sizeof(ak->b))
            return false;
        ak->b[0] = 'f';
        memcpy(ak->b + 1, c->session.fin, fin_len);
        ak->len = fin_len + 1;
        return true;
    }
    return dz_addr_key(dz_req_peer_ip(c->req), ak) == 0;
}

/* key = svc "|" who "|" tail (who above), so a host cannot take a fresh
 * entry of the shared rates budget that every login's start limit needs.
 * The length, or 0 when it does not fit (or the address is unusable). */
static size_t who_key(const struct dz_rctx *c, const struct fwd *f, bool person, const char *tail,
                      char *key, size_t cap)
{
    struct dz_addr_key ak;
    size_t svc_len = strlen(f->svc->name), tail_len = strlen(tail);

    if (!who(c, person, &ak))
        return 0;
    if (svc_len + ak.len + tail_len + 2 > cap)
        return 0;
    memcpy(key, f->svc->name, svc_len);
    key[svc_len] = '|';
    memcpy(key + svc_len + 1, ak.b, ak.len);
    key[svc_len + 1 + ak.len] = '|';
    memcpy(key + svc_len + 2 + ak.len, tail, tail_len);
    return svc_len + ak.len + tail_len + 2;
}

/* Count the request against the route's rate (one round trip on a shared
 * store, without waiting on the loop), then forward_rated(c, f, rc) with
 * 0: within the rate; 1: over it; < 0: the count could not be kept (the
 * caller refuses: fail closed). */
static void rate_check(struct dz_rctx *c, struct fwd *f)
{
    const struct dz_policy_limits *lim = &f->route->limits;
    /* service (63) | FIN or address key (who_key) | window */
    char key[160], tail[24];
    uint64_t window = lim->rate.period_ms ? lim->rate.period_ms : 1000;
    bool per_subject = lim->rate_scope == DZ_RATE_PER_SUBJECT && c->has_session;
    size_t n;

    if (!lim->rate.count) {
        forward_rated(c, f, 0);
        return;
    }
    snprintf(tail, sizeof(tail), "%llu", (unsigned long long)(dz_unix_ms() / (int64_t)window));
    n = who_key(c, f, per_subject, tail, key, sizeof(key));
    if (n == 0) {
        forward_rated(c, f, DZ_ERR_INVAL); /* cannot be counted: refused */
        return;
    }
    dz_rctx_hold(c);
    dz_store_incr_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), "rate", key, n, window,
                        rate_counted, f);
}

static void deny_then(struct dz_rctx *c, int rc, void *arg)
{
    const char *code = arg; /* a static string from the policy engine */

    if (c->closed)
        return;
    if (rc != 0)
        dz_rctx_problem(c, "service_unavailable", NULL);
    else if (strcmp(code, "in_flight") == 0)
        dz_rctx_problem_h(c, "service_unavailable", "the service has too many requests in flight",
                          &(struct dz_hdr){"retry-after", "1"}, 1);
    else if (strcmp(code, "in_flight_caller") == 0)
        dz_rctx_problem_h(c, "service_unavailable",
                          "the service has too many requests in flight from this caller",
                          &(struct dz_hdr){"retry-after", "1"}, 1);
    else if (strcmp(code, "rate_limited") == 0)
        dz_rctx_problem_h(c, code, NULL, &(struct dz_hdr){"retry-after", "1"}, 1);
    else
        dz_rctx_problem(c, code, NULL);
}

/* The in-flight refusals' reasons are their own (the line says which cap);
 * their answer is a 503 service_unavailable (deny_then). */
static bool is_room_refusal(const char *code)
{
    return strcmp(code, "in_flight") == 0 || strcmp(code, "in_flight_caller") == 0;
}

static int refusal_status(const char *code)
{
    return is_room_refusal(code) ? dz_problem_status("service_unavailable")
                                 : dz_problem_status(code);
}

/* The audit line of a refusal (sampled: the first of its minute), then the
 * answer. */
static void refuse_audit(struct dz_rctx *c, struct fwd *f, const char *code, const char *rule,
                         bool sampled)
{
    json_t *rec;

    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "type", "forward", "decision", "deny",
                    "reason", code, "service", f->svc->name, "route", c->route ? c->route : "",
                    "ip", dz_req_peer_ip(c->req), "status", refusal_status(code));
    if (rec && c->has_session) {
        json_object_set_new(rec, "fin", json_string(c->session.fin));
        json_object_set_new(rec, "means", json_string(c->session.method));
        json_object_set_new(rec, "sid", json_string(f->sid));
    }
    if (rec && rule)
        json_object_set_new(rec, "rule", json_string(rule));
    if (rec && c->has_session && c->session.role[0])
        json_object_set_new(rec, "role", json_string(c->session.role));
    if (rec && c->has_session && c->session.name[0])
        json_object_set_new(rec, "name", json_string(c->session.name));
    if (rec && sampled)
        json_object_set_new(rec, "sampled", json_string("first_in_minute"));
    if (rec && f->target[0])
        json_object_set_new(rec, "tgt", json_string(f->target));
    if (rec && f->purpose)
        json_object_set_new(rec, "pur", json_string(f->purpose));
    fwd_free(f);
    dz_gw_audit(c, rec, deny_then, (void *)code);
}

/* What a sampled refusal carries across its store call. */
struct refusal {
    struct fwd *f;
    const char *code; /* static strings (the policy engine's, or ours) */
    const char *rule;
};

static void refusal_sampled(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct refusal r = *(struct refusal *)arg;
    struct dz_rctx *c = r.f->c;

    (void)value;
    (void)data;
    (void)len;
    free(arg);
    if (c->closed) {
        fwd_free(r.f);
    } else if (dz_store_failed(rc)) {
        fwd_free(r.f);
        dz_rctx_state_unavailable(c, rc);
    } else if (rc != 0) {
        /* Not the first of its minute (or no room to tell): answer only. */
        fwd_free(r.f);
        deny_then(c, 0, (void *)r.code);
    } else {
        refuse_audit(c, r.f, r.code, r.rule, true);
    }
    dz_rctx_release(c); /* the hold for the store call */
}

/*
 * Every refusal of a routed request is on record before it is answered.
 * A known person refused by the policy always gets a line (who was kept
 * from whose data matters to the person).  A flood cannot turn the log
 * into its echo: rate-limited refusals, refusals for a service's requests
 * in flight, bodies over the limit, and refusals of clients without a session (or whose Origin
 * says another site sent them), are sampled — the first per (subject or
 * address, service, code) and minute is written, marked "sampled":"first_in_minute", the rest are
 * answered alike and counted in metrics only.  The sample mark is a put NX
 * without waiting on the loop (a shared store answers later).
 */
static void refuse(struct dz_rctx *c, struct fwd *f, const char *code, const char *rule)
{
    bool sampled = !c->has_session || strcmp(code, "rate_limited") == 0 || is_room_refusal(code) ||
                   strcmp(code, "payload_too_large") == 0;
    char key[160], tail[96];
    struct refusal *r;
    size_t n;
    int t;

    if (!sampled) {
        refuse_audit(c, f, code, rule, false);
        return;
    }
    t = snprintf(tail, sizeof(tail), "%s|%lld", code, (long long)(dz_unix_ms() / 60000));
    n = t > 0 && (size_t)t < sizeof(tail) ? who_key(c, f, c->has_session, tail, key, sizeof(key))
                                          : 0;
    if (n == 0) {
        /* No room to tell whether it is the first: answer only. */
        fwd_free(f);
        deny_then(c, 0, (void *)code);
        return;
    }
    r = malloc(sizeof(*r));
    if (!r) {
        fwd_free(f);
        dz_rctx_state_unavailable(c, DZ_ERR_NOMEM);
        return;
    }
    *r = (struct refusal){f, code, rule};
    dz_rctx_hold(c);
    dz_store_put_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), "lim_refusal_audit", key,
                       n, "1", 1, 60000, DZ_STORE_NX, refusal_sampled, r);
}

static void sign_assertion(struct dz_rctx *c, struct fwd *f, const unsigned char *body,
                           size_t body_len);

/* After signed_body.c: forward the envelope it built (its assertion's bdy
 * covers those bytes), or nothing when it has answered. */
static void signed_body_then(struct dz_rctx *c, struct dz_signed_body *sb, void *arg)
{
    struct fwd *f = arg;

    if (!sb || c->closed) {
        dz_signed_body_free(sb);
        fwd_free(f);
        return;
    }
    f->sb = sb;
    sign_assertion(c, f, sb->body, sb->body_len);
}

static void forward_authed(struct dz_rctx *c, int rc, void *arg);

/* Whether the client's fields that go on (signed_cb) leave room for the
 * gateway's own.  The engine admits up to limits.header_count fields (100
 * by default, up to 1000), more than a forwarded request carries: without
 * this check the last fields added, ours, would be the ones left out. */
static bool client_fields_fit(struct dz_req *req)
{
    size_t n = dz_req_header_count(req);
    size_t kept = 0;

    for (size_t i = 0; i < n; i++) {
        const char *name;
        const char *value;

        dz_req_header_at(req, i, &name, &value);
        if (!is_hop_or_private(name))
            kept++;
    }
    return kept <= MAX_FWD_HEADERS - OWN_FWD_HEADERS;
}

void dz_forward(struct dz_rctx *c)
{
    struct dz_policy_match m;
    const char *method = dz_req_method(c->req);
    const char *path = dz_req_path(c->req);
    char pathbuf[2048];
    size_t plen = strcspn(path, "?");
    struct fwd *f;
    int rc;

    /* A target longer than a forwarded request can carry (the assertion
     * binds the whole target, in a token of bounded size) is the client's
     * fault, said as such (RFC 9110 15.5.15), not a 503 from signing. */
    if (plen >= sizeof(pathbuf) || strlen(path) > FORWARD_TARGET_MAX) {
        dz_rctx_problem(c, "uri_too_long", NULL);
        return;
    }
    if (!client_fields_fit(c->req)) {
        dz_rctx_problem(c, "header_fields_too_large", NULL);
        return;
    }
    memcpy(pathbuf, path, plen);
    pathbuf[plen] = '\0';
    rc = dz_policy_match(c->gen->policies, method, pathbuf, &m);
    switch (rc != 0 ? DZ_MATCH_NONE : m.status) {
    case DZ_MATCH_FOUND:
        break;
    case DZ_MATCH_INVALID_FIN:
        c->route = "invalid_fin";
        dz_rctx_problem(c, "invalid_fin", "the FIN in the path is not valid");
        return;
    case DZ_MATCH_METHOD:
        c->route = "method_not_allowed";
        dz_rctx_problem(c, "method_not_allowed", NULL);
        return;
    default:
        c->route = "not_found";
        dz_rctx_problem(c, "not_found", NULL);
        return;
    }
    c->route = m.route->rule;
    c->service = m.service->name;
    c->route_tpl = m.route->path;
    f = calloc(1, sizeof(*f));
    if (!f) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    f->c = c;
    f->svc = m.service;
    f->route = m.route;
    if (m.fin[0])
        memcpy(f->target, m.fin, sizeof(f->target));
    f->purpose = dz_req_header(c->req, "darvaza-purpose");
    /* The session read goes to the store without waiting on the loop. */
    dz_rctx_authenticate_async(c, forward_authed, f);
}

/* Whether a cookie-authenticated request came from a page of this origin
 * (or the address bar), by the browser's own Sec-Fetch-Site (Fetch
 * Metadata): "same-site" is refused too, since a sibling site (another
 * e-service under the same domain) gets the SameSite=Lax cookie sent along
 * on its <img>.  A bearer token is only ever sent on purpose; a browser
 * that sends no Sec-Fetch-Site is let through as before. */
static bool sent_by_own_page(struct dz_rctx *c)
{
    const char *site = dz_req_header(c->req, "sec-fetch-site");

    return !c->via_cookie || !site || strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0;
}

static void forward_authed(struct dz_rctx *c, int rc, void *arg)
{
    struct fwd *f = arg;
    struct dz_policy_subject subj;
    enum dz_decision d = DZ_DENY;
    const char *code = NULL;
    const char *rule = NULL;
    const char *method = dz_req_method(c->req);
    size_t body_len;

    if (c->closed) {
        fwd_free(f);
        return;
    }
    if (rc == DZ_ERR_UNAVAILABLE) {
        /* Never anonymous because the store could not say who this is. */
        fwd_free(f);
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        return;
    }
    if (c->has_session && f->target[0] && !sent_by_own_page(c)) {
        /* Another site's page made the browser send this with the person's
         * cookie (a link or an <img>: no purpose, no Origin).  It is not
         * the person reaching for someone's record, and must not enter
         * that record's access list under their name: refused like a
         * request without a session (sampled, actor unknown). */
        c->has_session = false;
        refuse(c, f, "bad_origin", NULL);
        return;
    }
    memset(&subj, 0, sizeof(subj));
    if (c->has_session) {
        subj.fin = c->session.fin;
        if (dz_policy_acr_parse(c->session.acr, &subj.acr) != 0)
            subj.acr = DZ_ACR_NONE;
        subj.amr = c->session.amr;
        subj.role = c->session.role[0] ? c->session.role : NULL;
        dz_b64_encode_to(c->session.sid, sizeof(c->session.sid), true, f->sid);
    }
    rc = dz_policy_eval(f->route, c->has_session ? &subj : NULL, f->purpose,
                        f->target[0] ? f->target : NULL, &d, &code, &rule);
    /* Only a valid purpose on a route with a purpose rule goes on record
     * (assertion, audit line; refusals too): a route without one ignores
     * the header (docs/policies.md), and an invalid one is refused by its
     * code, not written down (any client text up to the header limit). */
    if (f->route->purpose == DZ_PURPOSE_NONE ||
        (f->purpose && !dz_policy_purpose_valid(f->purpose)))
        f->purpose = NULL;
    if (rc != 0 || d != DZ_ALLOW) {
        if (!code)
            code = "forbidden";
        /* The path is not logged: it may carry the FIN looked up (the
         * access log has the route template; the audit line the target). */
        dz_rctx_logj(c, DZ_LOG_INFO, "forward_denied",
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "method", method, "route",
                               f->route->path, "service", f->svc->name, "code", code, "rule",
                               rule ? rule : "default deny"));
        refuse(c, f, code, rule);
        return;
    }
    if (dz_log_enabled(DZ_LOG_DEBUG))
        dz_rctx_logj(c, DZ_LOG_DEBUG, "forward_allowed",
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "method", method, "route",
                               f->route->path, "service", f->svc->name, "rule", rule ? rule : "",
                               "means", c->has_session ? c->session.method : ""));
    /* Refusals after the policy said yes are on record as every other
     * routed refusal is (sampled: refuse). */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
        strcmp(method, "OPTIONS") != 0 && !dz_rctx_origin_matches(c)) {
        /* With the cookie, another site's page had the browser send it:
         * not the person acting, so not a line under their name (as for
         * Sec-Fetch-Site above: sampled by address, actor unknown).  A
         * bearer token is only sent on purpose: its line names the person. */
        if (c->via_cookie)
            c->has_session = false;
        refuse(c, f, "bad_origin", NULL);
        return;
    }
    (void)dz_req_body(c->req, &body_len);
    if (dz_req_body_overflow(c->req) || body_len > route_body_max(c, f->route)) {
        refuse(c, f, "payload_too_large", NULL);
        return;
    }
    rate_check(c, f);
}

_Static_assert(sizeof(((struct dz_addr_key *)0)->b) <= DZ_INFLIGHT_KEY_MAX,
               "a caller's key fits the in-flight table's");

/* A slot among the service's requests in flight, before anything is signed
 * or audited as sent.  false: refused (answered or being answered). */
static bool take_slot(struct dz_rctx *c, struct fwd *f)
{
    struct dz_addr_key ak;
    enum dz_inflight_take t = DZ_INFLIGHT_NOMEM;

    /* The caller the share counts: the person when signed in, else the
     * address (unusable: refused, fail closed). */
    if (who(c, c->has_session, &ak))
        t = dz_inflight_take(f->svc, ak.b, ak.len, &f->slot);
    switch (t) {
    case DZ_INFLIGHT_TAKEN:
        return true;
    case DZ_INFLIGHT_SERVICE_FULL:
        dz_metrics_forward_refused(c->gw->metrics, f->svc->name, "in_flight");
        refuse(c, f, "in_flight", NULL);
        return false;
    case DZ_INFLIGHT_CALLER_FULL:
        dz_metrics_forward_refused(c->gw->metrics, f->svc->name, "in_flight_caller");
        refuse(c, f, "in_flight_caller", NULL);
        return false;
    default:
        fwd_free(f);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return false;
    }
}

static void forward_rated(struct dz_rctx *c, struct fwd *f, int rc)
{
    const unsigned char *body;
    size_t body_len;

    if (rc < 0) {
        fwd_free(f);
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    if (rc > 0) {
        refuse(c, f, "rate_limited", NULL);
        return;
    }
    if (!take_slot(c, f))
        return;
    body = dz_req_body(c->req, &body_len);
    if (f->route->require_signed_body) {
        dz_signed_body_start(c, f->route, f->purpose, body, body_len, signed_body_then, f);
        return;
    }
    sign_assertion(c, f, body, body_len);
}

static void sign_assertion(struct dz_rctx *c, struct fwd *f, const unsigned char *body,
                           size_t body_len)
{
    const char *method = dz_req_method(c->req);
    const char *path = dz_req_path(c->req);

    /* A public route's caller without a session has nobody to name: the
     * request goes without an assertion (an assertion always names a
     * person; signing one failed, and every such request was a 503), and
     * the back end treats it as anonymous.  The client's own Darvaza-*
     * fields are dropped as on every route; the audit line has no fin and
     * no jti. */
    if (!c->has_session) {
        signed_cb(c, 0, NULL, f);
        return;
    }
    f->in.iss = c->gen->config->gateway.id;
    f->in.sub = c->session.fin;
    f->in.aud = f->svc->name;
    f->in.sid_b64 = f->sid;
    f->in.acr = c->session.acr;
    f->in.amr = c->session.amr;
    f->in.iat = dz_unix_ms() / 1000;
    f->in.auth_time = c->session.auth_time;
    f->in.ttl_s = (int)(c->gen->config->signing.assertion_ttl_ms / 1000);
    f->in.prf = c->session.has_prf ? c->session.prf : NULL;
    f->in.htm = method;
    f->in.htu = path;
    f->in.body = body;
    f->in.body_len = body_len;
    f->in.tgt = f->target[0] ? f->target : NULL;
    f->in.pur = f->purpose && f->purpose[0] ? f->purpose : NULL;
    /* Made here, not read back from the token: the audit lines carry it. */
    if (dz_assertion_new_jti(f->jti) != 0) {
        dz_rctx_problem(c, "service_unavailable", "no randomness for the assertion");
        fwd_free(f);
        return;
    }
    f->in.jti = f->jti;
    if (f->svc->assertion_signing == DZ_SIGNING_BATCH)
        dz_gw_sign_batched(c, &f->in, signed_cb, f);
    else
        dz_gw_sign(c, &f->in, signed_cb, f);
}
