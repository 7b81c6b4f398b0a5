/*
 * oidc_jwt.c - see oidc_jwt.h.
 */
#include "oidc/oidc_jwt.h"

#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "keys/jws.h"
#include "keys/signer.h"

#include "base/compat.h"

static int deny(const char **reason, const char *why)
{
    *reason = why;
    return DZ_ERR_DENIED;
}

static bool aud_has(const json_t *aud, const char *a, const char *b)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), a) == 0 || strcmp(json_string_value(aud), b) == 0;
    if (!json_is_array(aud))
        return false;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) &&
            (strcmp(json_string_value(v), a) == 0 || strcmp(json_string_value(v), b) == 0))
            return true;
    }
    return false;
}

int dz_oidc_assertion_check(const json_t *claims, const char *client_id, const char *token_url,
                            const char *issuer, int64_t now, int leeway_s, const char **jti,
                            int64_t *exp, const char **reason)
{
    const json_t *v;
    const char *s;

    *jti = NULL;
    *exp = 0;
    *reason = "malformed";
    if (!json_is_object(claims))
        return DZ_ERR_DENIED;
    v = json_object_get(claims, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), client_id) != 0)
        return deny(reason, "wrong_issuer");
    v = json_object_get(claims, "sub");
    if (!json_is_string(v) || strcmp(json_string_value(v), client_id) != 0)
        return deny(reason, "wrong_subject");
    if (!aud_has(json_object_get(claims, "aud"), token_url, issuer))
        return deny(reason, "wrong_audience");
    v = json_object_get(claims, "exp");
    if (!json_is_integer(v))
        return deny(reason, "bad_lifetime");
    if (json_integer_value(v) + leeway_s <= now)
        return deny(reason, "expired");
    if (json_integer_value(v) > now + DZ_OIDC_ASSERTION_LIFETIME_MAX + leeway_s)
        return deny(reason, "bad_lifetime");
    v = json_object_get(claims, "iat");
    if (v && (!json_is_integer(v) || json_integer_value(v) > now + leeway_s))
        return deny(reason, "not_yet_valid");
    v = json_object_get(claims, "nbf");
    if (v && (!json_is_integer(v) || json_integer_value(v) > now + leeway_s))
        return deny(reason, "not_yet_valid");
    v = json_object_get(claims, "jti");
    s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || !s[0] || strlen(s) > DZ_OIDC_JTI_MAX)
        return deny(reason, "missing_jti");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return deny(reason, "missing_jti");
    *jti = s;
    *exp = json_integer_value(json_object_get(claims, "exp"));
    *reason = "ok";
    return 0;
}

void dz_oidc_at_hash(const char *token, char out[23])
{
    unsigned char h[32];

    dz_sha256(token, strlen(token), h);
    dz_b64_encode_to(h, 16, true, out);
}

struct sign_op {
    json_t *claims;
    const char *typ;
    void (*then)(struct dz_rctx *c, int rc, char *token, void *arg);
    void *arg;
    struct dz_gen *gen;
    int rc;
    char *token;
};

static void sign_work(void *p)
{
    struct sign_op *op = p;
    struct dz_gen *g = op->gen;

    op->rc = dz_jws_sign_es256(g->signers[g->active], g->kids[g->active], op->typ, op->claims,
                               &op->token);
}

static void sign_done(struct dz_rctx *c, void *p)
{
    struct sign_op *op = p;

    op->then(c, op->rc, op->token, op->arg);
    free(op);
}

void dz_oidc_sign(struct dz_rctx *c, json_t *claims, const char *typ,
                  void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg)
{
    struct dz_gen *g = c->gen;
    struct sign_op *op;
    char *token = NULL;
    int rc;

    if (!dz_signer_is_blocking(g->signers[g->active])) {
        rc = dz_jws_sign_es256(g->signers[g->active], g->kids[g->active], typ, claims, &token);
        then(c, rc, token, arg);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        then(c, DZ_ERR_NOMEM, NULL, arg);
        return;
    }
    /* The generation stays alive: c holds it until c is freed, and the
     * pool's hold on c lasts until sign_done. */
    *op = (struct sign_op){claims, typ, then, arg, g, 0, NULL};
    if (dz_gw_blocking(c, sign_work, sign_done, op) != 0) {
        free(op);
        then(c, DZ_ERR_UNAVAILABLE, NULL, arg);
    }
}
