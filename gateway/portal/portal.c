/*
 * portal.c - serving the portal's pages from memory (see portal.h); the
 * files themselves are read when a generation is built (core/web.c).
 */
#include "portal/portal.h"

#include <stdbool.h>
#include <string.h>

#include "core/gen.h"
#include "core/web.h"

static void respond_file(struct dz_rctx *c, const struct dz_web_file *f)
{
    struct dz_hdr common[8];
    struct dz_hdr h[24];
    size_t nc = dz_rctx_common_headers(c, common);
    size_t n = 0;
    bool fresh = dz_web_etag_match(dz_req_header(c->req, "if-none-match"), f->etag);

    /* The common headers, but a cache that asks first instead of no-store:
     * an ETag answer of 304 costs a round trip and no bytes. */
    for (size_t i = 0; i < nc; i++) {
        if (strcmp(common[i].name, "cache-control") != 0)
            h[n++] = common[i];
    }
    h[n++] = (struct dz_hdr){"cache-control", "no-cache"};
    h[n++] = (struct dz_hdr){"etag", f->etag};
    h[n++] = (struct dz_hdr){"content-security-policy", DZ_WEB_CSP};
    h[n++] = (struct dz_hdr){"x-frame-options", "DENY"};
    h[n++] = (struct dz_hdr){"referrer-policy", "no-referrer"};
    h[n++] = (struct dz_hdr){"cross-origin-opener-policy", "same-origin"};
    h[n++] = (struct dz_hdr){"cross-origin-resource-policy", "same-origin"};
    h[n++] = (struct dz_hdr){"permissions-policy",
                             "camera=(), microphone=(), geolocation=(), payment=(), usb=()"};
    if (!fresh)
        h[n++] = (struct dz_hdr){"content-type", f->content_type};
    c->status = fresh ? 304 : 200;
    c->answered = true;
    dz_req_respond(c->req, c->status, h, n, fresh ? NULL : f->data, fresh ? 0 : f->len);
}

void dz_ep_web(struct dz_rctx *c)
{
    const struct dz_web *w = c->gen->web;
    const char *method = dz_req_method(c->req);
    const char *path = dz_req_path(c->req);
    char name[DZ_WEB_NAME_MAX + 1];
    const struct dz_web_file *f = NULL;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "GET, HEAD"}, 1);
        return;
    }
    if (path[0] == '/' && (path[1] == '\0' || path[1] == '?'))
        f = dz_web_find(w, "index.html", 10);
    else if (dz_web_static_name(path, name, sizeof(name)) == 0)
        f = dz_web_find(w, name, strlen(name));
    if (!f) {
        dz_rctx_problem(c, "not_found", NULL);
        return;
    }
    respond_file(c, f);
}
