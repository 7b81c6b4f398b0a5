/*
 * router.c - from the engine to the gateway: one request context per
 * stream, a fixed table of the gateway's own endpoints, everything else to
 * the forwarder (which consults the policies: default deny).
 */
#include "daemon/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/batchsign.h"
#include "core/metrics.h"
#include "core/rctx.h"
#include "daemon/drain.h"
#include "forward/forward.h"
#include "http/httpc.h"
#include "oidc/oidc.h"
#include "oidc/oidc_expiry.h"
#include "ops/accesslog.h"
#include "ops/ops.h"
#include "portal/api_access.h"
#include "portal/portal.h"
#include "sign/sign.h"

#include "base/compat.h"

struct endpoint {
    const char *method;
    const char *path;
    const char *name; /* metrics label */
    void (*handler)(struct dz_rctx *c);
};

static const struct endpoint endpoints[] = {
    {"GET", "/healthz", "healthz", dz_ep_healthz},
    {"GET", "/readyz", "readyz", dz_ep_readyz},
    {"GET", "/metrics", "metrics", dz_ep_metrics},
    {"GET", "/.well-known/jwks.json", "jwks", dz_ep_jwks},
    {"POST", "/auth/register", "auth_register", dz_ep_register},
    {"POST", "/auth/password", "auth_password", dz_ep_password},
    {"GET", "/auth/session", "auth_session", dz_ep_session},
    {"POST", "/auth/logout", "auth_logout", dz_ep_logout},
    {"POST", "/auth/card/challenge", "auth_card_challenge", dz_ep_card_challenge},
    {"POST", "/auth/card", "auth_card", dz_ep_card},
    {"POST", "/auth/card/tls", "auth_card_tls", dz_ep_card_tls},
    {"POST", "/auth/card/tls/start", "auth_card_tls_start", dz_ep_card_tls_start},
    {"POST", "/auth/card/tls/exchange", "auth_card_tls_exchange", dz_ep_card_tls_exchange},
    {"POST", "/auth/mobile", "auth_mobile", dz_ep_mobile_start},
    {"POST", "/auth/qr", "auth_qr", dz_ep_qr_start},
    {"POST", "/api/documents/verify", "documents_verify", dz_ep_documents_verify},
    {"POST", "/sign/mobile", "sign_mobile", dz_ep_sign_mobile_start},
    {"GET", "/api/my/access", "my_access", dz_ep_my_access},
    {"GET", "/.well-known/audit-head", "audit_head", dz_ep_audit_head},
    {"GET", "/api/transparency/consistency", "audit_consistency", dz_ep_audit_consistency},
};

/* The card listener (client_auth: required) serves these and nothing else:
 * it asks every client for a certificate, and a page or an API reached
 * through it would be one more place a certificate picker pops up.  The
 * card login page is not served anywhere else. */
static const struct endpoint card_endpoints[] = {
    {"GET", "/healthz", "healthz", dz_ep_healthz},
    {"GET", "/auth/card/tls/login", "auth_card_tls_login", dz_ep_card_tls_login},
    {"POST", "/auth/card/tls", "auth_card_tls", dz_ep_card_tls},
};

static bool on_card_listener(const struct dz_rctx *c)
{
    int tag = dz_req_listener_tag(c->req);
    const struct dz_config *cf = c->gen->config;

    return tag >= 0 && (size_t)tag < cf->n_listeners &&
           cf->listeners[tag].tls.client_auth == DZ_CLIENT_AUTH_REQUIRED;
}

/* Route through table (n entries): true when the path is one of them (then
 * c has been handled), false when it is not. */
static bool route_table(struct dz_rctx *c, const struct endpoint *table, size_t n,
                        const char *method, const char *path, size_t plen)
{
    for (size_t i = 0; i < n; i++) {
        const struct endpoint *e = &table[i];
        if (strlen(e->path) != plen || strncmp(e->path, path, plen) != 0)
            continue;
        c->route = e->name;
        c->route_tpl = e->path;
        if (strcmp(e->method, method) != 0) {
            dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", e->method},
                              1);
            return true;
        }
        e->handler(c);
        return true;
    }
    return false;
}

/* The back-end connections libcurl may hold open on one worker (HTTPS and
 * HTTP/2 back ends, h2c, OCSP, TSA, MSSP, JWKS, back-channel logout):
 * the worker's share of limits.connections.  Without a bound, a burst to
 * an HTTP/1.1-over-TLS back end opened a connection per request in flight
 * (the cache's CURLMOPT_MAXCONNECTS bounds only the idle ones), each a
 * descriptor, up to the process's limit, and the back end took them all.
 * With it, the gateway holds no more connections to its back ends than it
 * accepts from clients (the descriptors an operator provisions for
 * limits.connections cover both sides), and a request over the bound waits
 * in libcurl's queue for one to end or be reused: queued, not refused.  A
 * service's own bound is its policy's in_flight.  Read again at each
 * reload. */
#define UPSTREAM_CONNECTIONS_MIN 16
static void bound_upstream_connections(struct dz_gw_worker *gww)
{
    const struct dz_config *cf = gww->gen->config;
    unsigned workers = cf->gateway.workers ? cf->gateway.workers : 1;
    unsigned share = (cf->limits.connections + workers - 1) / workers;

    /* At least a few: the gateway's own calls (OCSP, TSA, MSSP, JWKS)
     * need connections beside the forwards, and a small client cap (a
     * test's, an operator's) must not queue them one behind another. */
    (void)dz_httpc_set_max_connections(
        gww->httpc, share > UPSTREAM_CONNECTIONS_MIN ? share : UPSTREAM_CONNECTIONS_MIN);
}

void *dz_router_worker_init(struct dz_worker *w, void *app)
{
    struct dz_gw *gw = app;
    struct dz_gw_worker *gww = calloc(1, sizeof(*gww));
    unsigned char rnd[6];

    if (!gww)
        return NULL;
    gww->gw = gw;
    gww->worker = w;
    if (dz_httpc_new(dz_worker_loop(w), &gww->httpc) != 0) {
        free(gww);
        return NULL;
    }
    dz_random(rnd, sizeof(rnd));
    dz_hex(rnd, sizeof(rnd), gww->rid_prefix);
    /* The main thread holds gw->gen until every worker has its own. */
    gww->gen = gw->gen;
    dz_gen_ref(gww->gen);
    bound_upstream_connections(gww);
    if (dz_worker_index(w) < sizeof(gw->workers) / sizeof(gw->workers[0]))
        gw->workers[dz_worker_index(w)] = gww;
    /* One sweeper per instance, for the back-channel logout of expired
     * sessions (oidc/oidc_expiry.h). */
    if (dz_worker_index(w) == 0)
        dz_oidc_expiry_start(gww);
    return gww;
}

void dz_router_worker_fini(struct dz_worker *w, void *wdata)
{
    struct dz_gw_worker *gww = wdata;

    if (!gww)
        return;
    dz_oidc_expiry_stop(gww);
    dz_batchsign_free(gww->batch);
    dz_httpc_free(gww->httpc);
    dz_gen_unref(gww->gen);
    free(gww);
}

void dz_router_set_gen(struct dz_gw_worker *gww, struct dz_gen *gen)
{
    struct dz_gen *old = gww->gen;

    gww->gen = gen; /* the caller's reference moves here */
    dz_gen_unref(old);
    bound_upstream_connections(gww);
}

static void on_close(struct dz_req *req, void *arg)
{
    struct dz_rctx *c = arg;
    uint64_t took = dz_now_us() - c->start_us;

    c->closed = true;
    /* Cut by the drain deadline: on record, once (a forward writes its own
     * outcome line from its cancel). */
    if (dz_req_is_drain_cut(req) && !dz_forward_in_flight(c))
        dz_drain_audit_cut(c);
    if (c->cancel)
        c->cancel(c);
    /* Labels that survive policy edits: the service and the route template
     * as written, never the rule id (which carries the file and line).  The
     * gateway's own endpoints are service "darvaza"; a request no route
     * matched (or refused before routing) is ("none", "unmatched"). */
    dz_metrics_request(c->gw->metrics,
                       c->service ? c->service : (c->route_tpl ? "darvaza" : "none"),
                       c->route_tpl ? c->route_tpl : "unmatched", dz_req_method(req),
                       c->answered ? c->status : 499, took);
    dz_accesslog_request(c);
    dz_req_set_data(req, NULL);
    dz_rctx_release(c); /* the stream's own hold */
}

static struct dz_rctx *rctx_new(struct dz_req *req, struct dz_gw_worker *gww)
{
    struct dz_rctx *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->req = req;
    c->gw_worker = gww;
    c->gw = gww->gw;
    c->gen = gww->gen;
    dz_gen_ref(c->gen);
    c->start_us = dz_now_us();
    dz_rctx_hold(c); /* the stream's own hold, released in on_close */
    snprintf(c->rid, sizeof(c->rid), "%s%012llx", gww->rid_prefix,
             (unsigned long long)++gww->rid_counter);
    dz_req_set_data(req, c);
    dz_req_on_close(req, on_close, c);
    return c;
}

void dz_router_on_headers(struct dz_req *req, void *wdata)
{
    /* The engine's cap is the largest route limit; the forwarder checks the
     * route's own limit once it knows the route. */
}

/* Fields the gateway reads as one value.  Two copies are refused rather
 * than resolved: whichever copy one part of the gateway took, a back end
 * or a later check could take the other (an Origin check passed on the
 * first Origin, a purpose audited from the first and forwarded as both). */
static const char *duplicated_field(struct dz_req *req)
{
    /* (cookie is not here: HTTP/2 clients may split it into several fields,
     * RFC 9113 8.2.3.) */
    static const char *const single[] = {"origin", "darvaza-purpose", "authorization",
                                         "content-type"};
    size_t n = dz_req_header_count(req);
    unsigned seen[sizeof(single) / sizeof(single[0])] = {0};

    for (size_t i = 0; i < n; i++) {
        const char *name;
        const char *value;

        dz_req_header_at(req, i, &name, &value);
        for (size_t k = 0; k < sizeof(single) / sizeof(single[0]); k++) {
            if (strcmp(name, single[k]) == 0 && ++seen[k] > 1)
                return single[k];
        }
    }
    return NULL;
}

void dz_router_on_request(struct dz_req *req, void *wdata)
{
    struct dz_gw_worker *gww = wdata;
    struct dz_rctx *c;
    const char *method = dz_req_method(req);
    const char *path = dz_req_path(req);
    size_t plen = strcspn(path, "?");

    c = rctx_new(req, gww);
    if (!c) {
        static const struct dz_hdr h[] = {{"content-type", "application/problem+json"}};
        static const char body[] = "{\"code\":\"internal_error\",\"status\":500}";
        dz_req_respond(req, 500, h, 1, body, sizeof(body) - 1);
        return;
    }
    /* An authority is a host[:port] (RFC 3986 3.2.2, registered names and
     * IP literals): anything else is refused before any part of the
     * gateway reads it. */
    const char *auth = dz_req_authority(req);
    if (auth && auth[0] &&
        strspn(auth, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-:[]") != strlen(auth)) {
        c->route = "other";
        dz_rctx_problem(c, "invalid_request", "malformed :authority");
        return;
    }
    const char *dup = duplicated_field(req);
    if (dup) {
        char detail[80];
        snprintf(detail, sizeof(detail), "more than one %s header", dup);
        c->route = "other";
        dz_rctx_problem(c, "invalid_request", detail);
        return;
    }
    if (on_card_listener(c)) {
        /* One request per connection.  The card proves its key only in the
         * handshake, and a browser keeps its connection after a login: a
         * login started later on it would pass with the card pulled out and
         * no PIN, as a resumed session would (lib/http/tls.c).  After
         * GOAWAY the next request brings a new handshake. */
        dz_req_goaway(c->req);
        if (!route_table(c, card_endpoints, sizeof(card_endpoints) / sizeof(card_endpoints[0]),
                         method, path, plen)) {
            c->route = "other";
            dz_rctx_problem(c, "not_found", "the card listener serves only the card login");
        }
        return;
    }
    if (route_table(c, endpoints, sizeof(endpoints) / sizeof(endpoints[0]), method, path, plen))
        return;
    /* The long-polled logins carry an id in the path. */
    if (strncmp(path, "/auth/mobile/", 13) == 0 && strcmp(method, "GET") == 0) {
        char id[64];
        size_t n = strcspn(path + 13, "?/");
        c->route = "auth_mobile_poll";
        c->route_tpl = "/auth/mobile/{id}";
        if (n == 0 || n >= sizeof(id) || (path[13 + n] != '\0' && path[13 + n] != '?')) {
            dz_rctx_problem(c, "not_found", NULL);
            return;
        }
        memcpy(id, path + 13, n);
        id[n] = '\0';
        dz_ep_mobile_poll(c, id);
        return;
    }
    if (strncmp(path, "/sign/mobile/", 13) == 0 && strcmp(method, "GET") == 0) {
        char id[64];
        size_t n = strcspn(path + 13, "?/");
        c->route = "sign_mobile_poll";
        c->route_tpl = "/sign/mobile/{id}";
        if (n == 0 || n >= sizeof(id) || (path[13 + n] != '\0' && path[13 + n] != '?')) {
            dz_rctx_problem(c, "not_found", NULL);
            return;
        }
        memcpy(id, path + 13, n);
        id[n] = '\0';
        dz_ep_sign_mobile_poll(c, id);
        return;
    }
    /* The person's own account (auth/api_account.c dispatches). */
    if (strncmp(path, "/api/account/", 13) == 0) {
        c->route = "account";
        c->route_tpl = "/api/account/{what}";
        dz_ep_account(c, path + 13);
        return;
    }
    if (strncmp(path, "/auth/qr/", 9) == 0) {
        c->route = "auth_qr_session";
        c->route_tpl = "/auth/qr/{id}";
        dz_ep_qr_sub(c, path + 9);
        return;
    }
    /* The OpenID Connect provider (oidc/). */
    if (dz_oidc_route(c))
        return;
    /* The portal's pages, when gateway.web_root is set (web.c). */
    if (c->gen->web && ((plen == 1 && path[0] == '/') || strncmp(path, "/static/", 8) == 0)) {
        c->route = "web";
        c->route_tpl = plen == 1 ? "/" : "/static/{name}";
        dz_ep_web(c);
        return;
    }
    dz_forward(c);
}
