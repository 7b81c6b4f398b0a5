/*
 * oidc_logout.c - GET /logout, RP-initiated logout (OpenID Connect
 * RP-Initiated Logout 1.0): a client sends the person here with the ID
 * token it holds (id_token_hint) and, optionally, a registered
 * post_logout_redirect_uri and a state.
 *
 * The session in the browser ends only when the hint is an ID token this
 * gateway signed for that very session (same sid): a link on another site
 * cannot log the person out.  Without such a hint the person lands on the
 * portal's account page, where they can log out themselves.  A
 * post_logout_redirect_uri is followed only when it is registered for the
 * client the hint names (or client_id names): never an open redirect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "keys/jws.h"
#include "oidc/oidc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_authreq.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_offloop.h"
#include "oidc/oidc_params.h"
#include "policy/policy_oidc.h"
#include "state/store.h"

#include "base/compat.h"

struct logout_op {
    char *location;
    char token[128];
    size_t token_len;
    json_t *claims; /* of the id_token_hint, or NULL */
    bool has_ruri;
    char sid[DZ_SESSION_TOKEN_LEN + 1]; /* of the session that ends, for its clients */
    struct dz_store *st;
    int rc; /* of the session's deletion */
};

static void op_free(struct logout_op *op)
{
    dz_secret_wipe(op->token, sizeof(op->token));
    json_decref(op->claims);
    free(op->location);
    free(op);
}

static void recorded(struct dz_rctx *c, int rc, void *arg)
{
    struct logout_op *op = arg;

    if (dz_oidc_can_answer(c)) {
        if (rc != 0)
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        else
            dz_rctx_respond(c, 302, NULL, NULL, 0, &(struct dz_hdr){"location", op->location}, 1);
    }
    op_free(op);
}

/* Store step: the session ends. */
static void delete_work(void *arg)
{
    struct logout_op *op = arg;

    op->rc = dz_session_delete(op->st, op->token, op->token_len);
}

static void notified(struct dz_rctx *c, void *arg)
{
    struct logout_op *op = arg;
    json_t *rec = json_pack("{s:s, s:s, s:s}", "type", "oidc_logout", "fin", c->session.fin,
                            "means", c->session.method);

    dz_gw_audit(c, rec, recorded, op);
}

static void deleted(struct dz_rctx *c, void *arg)
{
    struct logout_op *op = arg;

    if (dz_store_failed(op->rc)) {
        /* A logout that did not reach the store did not happen: the
         * session still works, so neither tell its clients it ended (a
         * retry tells them, once it succeeds), nor send the person on as
         * if it ended, nor audit it (as the portal's logout, api_auth.c). */
        if (dz_oidc_can_answer(c))
            dz_rctx_state_unavailable(c, op->rc);
        op_free(op);
        return;
    }
    /* Gone: now its clients are told (back-channel logout), before the
     * person is sent on; told even if the person left meanwhile. */
    dz_oidc_session_ended(c, op->sid, c->session.fin, notified, op);
}

/* The session is known (or the store could not say): a logout only when
 * the hint proves the request comes from a client of this session. */
static void authenticated(struct dz_rctx *c, int rc, void *arg)
{
    struct logout_op *op = arg;
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    bool via_cookie = false;
    const char *tok;

    if (!dz_oidc_can_answer(c)) {
        op_free(op);
        return;
    }
    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        op_free(op);
        return;
    }
    tok = c->has_session
              ? dz_rctx_token(c, op->token, sizeof(op->token), &op->token_len, &via_cookie)
              : NULL;
    if (tok && tok != op->token && op->token_len < sizeof(op->token)) {
        memcpy(op->token, tok, op->token_len);
        op->token[op->token_len] = '\0';
    }
    dz_session_sid_b64(&c->session, sid);
    if (!tok || !op->claims ||
        strcmp(json_string_value(json_object_get(op->claims, "sid")) ?: "", sid) != 0) {
        /* Not proven to come from a client of this session: no logout. */
        if (!op->has_ruri) {
            free(op->location);
            op->location = strdup("/#/account");
        }
        recorded(c, 0, op);
        return;
    }
    /* The session ends first (off the loop: oidc_offloop.h), its clients
     * are told only once it has: a logout that fails tells nobody. */
    snprintf(op->sid, sizeof(op->sid), "%s", sid);
    op->st = c->gw->store;
    if (dz_gw_state_try(c, delete_work, deleted, op) != 0) {
        dz_rctx_problem(c, "service_unavailable", "the gateway is busy");
        op_free(op);
    }
}

/* The claims of an ID token this gateway signed (expired ones too: a
 * client holds the last one it got, RP-Initiated Logout 2). */
static json_t *hint_claims(struct dz_rctx *c, const char *hint)
{
    struct dz_jwks *jwks = NULL;
    json_t *claims = NULL;
    const char *iss;

    if (dz_jwks_parse(c->gen->jwks_json, strlen(c->gen->jwks_json), &jwks) != 0)
        return NULL;
    if (dz_jws_verify(hint, strlen(hint), jwks, DZ_OIDC_ID_TOKEN_TYP, NULL, &claims) != 0)
        claims = NULL;
    dz_jwks_free(jwks);
    iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, dz_oidc_issuer(c)) != 0) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

void dz_oidc_ep_logout(struct dz_rctx *c)
{
    struct dz_oidc_params p;
    size_t qlen;
    const char *q = dz_oidc_query(c, &qlen);
    const char *hint;
    const char *ruri;
    const char *state;
    const char *cid;
    const struct dz_policy_service *svc = NULL;
    struct logout_op *op = NULL;
    json_t *claims = NULL;
    int rc;

    rc = dz_oidc_params_parse(q, qlen, &p);
    if (rc != 0) {
        dz_rctx_problem(c, "invalid_request",
                        rc == DZ_ERR_TOOBIG ? "the request is too large"
                                            : "the query is not well formed");
        return;
    }
    hint = dz_oidc_params_get(&p, "id_token_hint", NULL);
    ruri = dz_oidc_params_get(&p, "post_logout_redirect_uri", NULL);
    state = dz_oidc_params_get(&p, "state", NULL);
    cid = dz_oidc_params_get(&p, "client_id", NULL);
    if (state && strlen(state) > DZ_OIDC_STATE_MAX) {
        dz_rctx_problem(c, "invalid_request", "state is longer than 512 bytes");
        goto out;
    }
    if (hint && !(claims = hint_claims(c, hint))) {
        dz_rctx_problem(c, "invalid_request", "id_token_hint is not an ID token of this gateway");
        goto out;
    }
    if (claims) {
        const char *aud = json_string_value(json_object_get(claims, "aud"));
        if (cid && aud && strcmp(cid, aud) != 0) {
            dz_rctx_problem(c, "invalid_request", "client_id is not the hint's audience");
            goto out;
        }
        cid = aud;
    }
    if (cid)
        svc = dz_policy_oidc_client(c->gen->policies, cid);
    if (ruri && (!svc || !dz_policy_oidc_uri_listed(svc->oidc->post_logout_uris,
                                                    svc->oidc->n_post_logout_uris, ruri))) {
        dz_rctx_problem(c, "invalid_redirect_uri",
                        "post_logout_redirect_uri is not one the client registered");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op)
        goto busy;
    {
        const char *names[] = {"state"};
        const char *values[] = {state};
        op->location = ruri ? dz_oidc_build_url(ruri, names, values, 1) : strdup("/#/account");
    }
    if (!op->location)
        goto busy;
    op->claims = claims;
    claims = NULL;
    op->has_ruri = ruri != NULL;
    dz_rctx_authenticate_async(c, authenticated, op);
    op = NULL;
    goto out;
busy:
    dz_rctx_problem(c, "service_unavailable", NULL);
out:
    if (op)
        op_free(op);
    json_decref(claims);
    dz_oidc_params_cleanup(&p);
}
