/*
 * mssp_rp.c - darvaza as a relying party of the MSSP, the part every mobile
 * flow shares (login, document signing, QR's mobile fallback): whether the
 * MSSP is configured, the phone number's and its session id's form, the
 * request every call carries, the long-poll wait and the mapping of the
 * MSSP's end results to the API's codes (the per-phone rate and lock:
 * mssp_phone.c).  Loop thread only.
 */
#include "mssp/mssp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/config.h"
#include "core/gen.h"

#include "base/compat.h"

bool dz_mssp_enabled(struct dz_rctx *c)
{
    if (c->gen->mobile_trust && c->gen->config->mobile.mssp_url && c->gen->mssp_secret)
        return true;
    dz_rctx_problem(c, "not_found", "mobile signature login is not configured");
    return false;
}

bool dz_mssp_az_phone_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;

    /* Azerbaijani mobile numbers in E.164: +994 and nine digits. */
    if (n != 13 || strncmp(p, "+994", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
    }
    return true;
}

const char *dz_mssp_session_id(const json_t *j, size_t max)
{
    const char *id = dz_json_str(j, "session_id", max);

    /* A "\u0000" inside would cut the C string short of what was sent. */
    if (!id || !id[0] || strlen(id) != json_string_length(json_object_get(j, "session_id")))
        return NULL;
    for (const char *p = id; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return NULL;
    }
    return id;
}

void dz_mssp_request_init(struct dz_rctx *c, struct dz_httpc_request *r, struct dz_hdr *h,
                          char *auth, size_t auth_len, struct dz_httpc_tls *tls)
{
    const struct dz_config *cf = c->gen->config;

    snprintf(auth, auth_len, "Bearer %s", c->gen->mssp_secret);
    h[0] = (struct dz_hdr){"authorization", auth};
    h[1] = (struct dz_hdr){"content-type", "application/json"};
    h[2] = (struct dz_hdr){"darvaza-request-id", c->rid};
    *tls = (struct dz_httpc_tls){cf->upstream_tls.ca, cf->upstream_tls.certificate,
                                 cf->upstream_tls.key};
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->nheaders = 3;
    r->version = DZ_HTTPC_H2;
    r->tls = strncmp(cf->mobile.mssp_url, "https:", 6) == 0 ? tls : NULL;
    r->max_response_bytes = 64 * 1024;
    r->connect_timeout_ms = 5000;
    r->timeout_ms = 10000;
}

const char *dz_mssp_result_code(const char *r)
{
    static const char *const map[][2] = {
        {"USER_CANCELLED", "user_cancelled"},    {"TIMEOUT", "timeout"},
        {"NOT_MID_CLIENT", "not_mobile_client"}, {"PHONE_ABSENT", "phone_absent"},
        {"DELIVERY_ERROR", "phone_absent"},
    };
    for (size_t i = 0; r && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i][0], r) == 0)
            return map[i][1];
    }
    return "phone_absent";
}

uint32_t dz_mssp_wait_ms(struct dz_rctx *c)
{
    const char *q = strchr(dz_req_path(c->req), '?');
    const char *w = q ? strstr(q, "wait=") : NULL;
    uint64_t max = c->gen->config->mobile.poll_max_ms;
    uint64_t v = 0;

    if (!w || (w != q + 1 && w[-1] != '&'))
        return 0;
    for (w += 5; *w >= '0' && *w <= '9' && v < 1000000; w++)
        v = v * 10 + (uint64_t)(*w - '0');
    v *= 1000;
    return (uint32_t)(v > max ? max : v);
}
