/*
 * oidc_answer.c - see oidc_answer.h.
 */
#include "oidc/oidc_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/oidc_params.h"

#include "base/compat.h"

bool dz_oidc_can_answer(const struct dz_rctx *c)
{
    return !c->closed && !c->answered;
}

char *dz_oidc_build_url(const char *base, const char *const *names, const char *const *values,
                        size_t n)
{
    char *url = malloc(DZ_OIDC_URL_MAX);
    size_t len = strlen(base);
    bool has_q = strchr(base, '?') != NULL;

    if (!url || len >= DZ_OIDC_URL_MAX)
        goto fail;
    memcpy(url, base, len + 1);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        if (!values[i])
            continue;
        k = strlen(names[i]);
        if (len + k + 2 >= DZ_OIDC_URL_MAX)
            goto fail;
        url[len++] = has_q ? '&' : '?';
        has_q = true;
        memcpy(url + len, names[i], k);
        len += k;
        url[len++] = '=';
        k = dz_oidc_urlencode(values[i], strlen(values[i]), url + len, DZ_OIDC_URL_MAX - len);
        if (k == (size_t)-1)
            goto fail;
        len += k;
    }
    url[len] = '\0';
    return url;
fail:
    free(url);
    return NULL;
}

void dz_oidc_redirect(struct dz_rctx *c, const char *base, const char *const *names,
                      const char *const *values, size_t n)
{
    char *url = dz_oidc_build_url(base, names, values, n);

    if (!url) {
        dz_rctx_problem(c, "internal_error", "redirect too long");
        return;
    }
    dz_rctx_respond(c, 302, NULL, NULL, 0, &(struct dz_hdr){"location", url}, 1);
    free(url);
}

void dz_oidc_error(struct dz_rctx *c, int status, const char *error, const char *desc,
                   const char *scheme)
{
    char www[160];
    json_t *body = json_pack("{s:s}", "error", error);
    struct dz_hdr h[2];
    size_t n = 0;

    if (body && desc)
        json_object_set_new(body, "error_description", json_string(desc));
    if (status == 401 && scheme) {
        snprintf(www, sizeof(www), "%s realm=\"darvaza\", error=\"%s\"", scheme, error);
        h[n++] = (struct dz_hdr){"www-authenticate", www};
    }
    h[n++] = (struct dz_hdr){"pragma", "no-cache"};
    dz_rctx_json(c, status, body, h, n);
}

const char *dz_oidc_query(const struct dz_rctx *c, size_t *len)
{
    const char *q = strchr(dz_req_path(c->req), '?');

    q = q ? q + 1 : "";
    *len = strlen(q);
    return q;
}
