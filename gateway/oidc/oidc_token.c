/*
 * oidc_token.c - POST /token (RFC 6749 4.1.3, RFC 7636 4.6, OpenID Connect
 * Core 3.1.3): a client that proves who it is (oidc_clientauth.c) trades a
 * code for an ID token and an access token.
 *
 * A code is taken from the store (so exactly one exchange can have it) and
 * then must match everything it was issued for: the client, the redirect
 * URI, the PKCE verifier.  A code presented again finds its "used" mark,
 * and the access token the first exchange issued is revoked (RFC 6749
 * 4.1.2: the code may have been stolen, so what it bought is suspect too),
 * also when both come at once (oidc_code.h).
 *
 * The client is verified on the loop; every store call of the exchange
 * (the assertion's jti, the code, the tokens, the used mark) is one step
 * off the loop (oidc_offloop.h), whose outcome the loop then answers.  A
 * store that cannot answer is 503 temporarily_unavailable: never
 * "unknown code", which would make the client drop a good one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "oidc/oidc.h"
#include "oidc/oidc_answer.h"
#include "oidc/oidc_clientauth.h"
#include "oidc/oidc_code.h"
#include "oidc/oidc_endpoints.h"
#include "oidc/oidc_jwks_uri.h"
#include "oidc/oidc_jwt.h"
#include "oidc/oidc_offloop.h"
#include "oidc/oidc_params.h"
#include "oidc/oidc_state.h"
#include "policy/policy_oidc.h"
#include "state/store.h"

#include "base/compat.h"

#define ACCESS_TOKEN_TTL_S 300 /* the access token is for userinfo, right after login */
#define ID_TOKEN_TTL_S 300

/* What the exchange's store step (off the loop) found, in the order the
 * answers take precedence. */
enum token_outcome {
    T_ISSUED,       /* code taken and checked, access token and used mark stored */
    T_JTI_REPLAY,   /* the client assertion was used before */
    T_UNAVAILABLE,  /* the store could not answer: nothing spent that is known */
    T_FULL,         /* the jti could not be recorded (quota) */
    T_BAD_GRANT,    /* grant_type is not authorization_code */
    T_NO_CODE,      /* unknown or expired code */
    T_REPLAY,       /* the code was used: its first tokens are revoked */
    T_REPLAY_OPEN,  /* the code was used, and the store could not revoke for good */
    T_RACED,        /* (code spent) used again meanwhile: this token is revoked */
    T_OTHER_CLIENT, /* (code spent) issued to another client */
    T_BAD_URI,      /* (code spent) redirect_uri differs */
    T_BAD_PKCE,     /* (code spent) the verifier does not match */
    T_ENDED,        /* (code spent) the session that authorized it has ended */
    T_STORE_FAILED, /* (code spent) the token or its mark could not be stored */
    T_INTERNAL,     /* (code spent) no memory, no randomness */
};

struct token_op {
    /* in: copied on the loop, so the store step touches nothing of c */
    struct dz_store *st;
    struct dz_oidc_jti_mark jti;
    bool grant_ok;
    char code[DZ_OIDC_SECRET_LEN + 1];
    char *redirect_uri;
    char *verifier;
    /* out */
    enum token_outcome outcome;
    json_t *rec;        /* the code's record (T_ISSUED) */
    char *replay_first; /* the client the replayed code went to (T_REPLAY*) */
    char access_token[DZ_OIDC_SECRET_LEN + 1];
    char *id_token;
    json_t *claims;
    json_t *audit;
    const char *client_id; /* owned by the generation c holds */
    const struct dz_policy_service *svc;
};

static void op_free(struct token_op *op)
{
    dz_secret_wipe(op->access_token, sizeof(op->access_token));
    dz_secret_wipe(op->code, sizeof(op->code));
    if (op->id_token) {
        dz_secret_wipe(op->id_token, strlen(op->id_token));
        free(op->id_token);
    }
    if (op->verifier) {
        dz_secret_wipe(op->verifier, strlen(op->verifier));
        free(op->verifier);
    }
    free(op->redirect_uri);
    free(op->replay_first);
    json_decref(op->rec);
    json_decref(op->claims);
    json_decref(op->audit);
    free(op);
}

static void answered(struct dz_rctx *c, int rc, void *arg)
{
    struct token_op *op = arg;

    if (!dz_oidc_can_answer(c)) {
        /* The client left: it never got the tokens; revoke what would
         * otherwise stay usable until it expires. */
        dz_oidc_revoke_token(c, op->access_token);
        op_free(op);
        return;
    }
    if (rc != 0) {
        dz_oidc_revoke_token(c, op->access_token);
        dz_oidc_error(c, 500, "server_error", "audit log unavailable", NULL);
    } else {
        json_t *body =
            json_pack("{s:s, s:s, s:i, s:s}", "access_token", op->access_token, "token_type",
                      "Bearer", "expires_in", ACCESS_TOKEN_TTL_S, "id_token", op->id_token);
        dz_rctx_json(c, 200, body, &(struct dz_hdr){"pragma", "no-cache"}, 1);
    }
    op_free(op);
}

static void signed_cb(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct token_op *op = arg;
    json_t *audit = op->audit;

    op->id_token = token;
    if (rc != 0 || !token) {
        dz_oidc_revoke_token(c, op->access_token);
        if (dz_oidc_can_answer(c))
            dz_oidc_error(c, 500, "server_error", "the ID token could not be signed", NULL);
        op_free(op);
        return;
    }
    op->audit = NULL;
    dz_gw_audit(c, audit, answered, op);
}

static bool verifier_ok(const char *verifier, const char *challenge)
{
    unsigned char h[32];
    char b64[DZ_OIDC_SECRET_LEN + 1];
    size_t n = verifier ? strlen(verifier) : 0;

    /* RFC 7636 4.1: 43..128 unreserved characters. */
    if (n < 43 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = verifier[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == '~'))
            return false;
    }
    dz_sha256(verifier, n, h);
    dz_b64_encode_to(h, sizeof(h), true, b64);
    return strlen(challenge) == DZ_OIDC_SECRET_LEN &&
           dz_secret_equal(b64, DZ_OIDC_SECRET_LEN, challenge, DZ_OIDC_SECRET_LEN);
}

static void audit_noted(struct dz_rctx *c, int rc, void *arg)
{
    if (rc != 0)
        dz_rctx_log(c, DZ_LOG_ERROR, "oidc_audit", "a code replay could not be recorded");
}

/* Store the access token the claim named, then look at the code's mark
 * again: a second use that came meanwhile revokes it (oidc_code.h).
 * Store step. */
static enum token_outcome store_tokens(struct token_op *op, const json_t *rec)
{
    json_t *at;
    int rc;

    at = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "client", op->client_id, "service",
                   op->svc->name, "fin", json_object_get(rec, "fin"), "acr",
                   json_object_get(rec, "acr"), "amr", json_object_get(rec, "amr"), "sid",
                   json_object_get(rec, "sid"), "scopes", json_object_get(rec, "scopes"),
                   "auth_time", json_object_get(rec, "auth_time"));
    rc = at ? dz_oidc_state_put(op->st, DZ_OIDC_NS_TOKEN, op->access_token, at,
                                ACCESS_TOKEN_TTL_S * 1000ull, DZ_STORE_NX)
            : DZ_ERR_NOMEM;
    json_decref(at);
    if (rc != 0)
        return T_STORE_FAILED;
    rc = dz_oidc_code_confirm(op->st, op->code);
    if (rc != 0) {
        dz_oidc_state_del(op->st, DZ_OIDC_NS_TOKEN, op->access_token);
        return rc == DZ_ERR_EXISTS ? T_RACED : T_STORE_FAILED;
    }
    return T_ISSUED;
}

/* The person logged out (or the session expired, or was ended from the
 * account page) between the code and its exchange: its clients have been
 * told the session is over, so nothing may be issued for it now.  Store
 * step. */
static enum token_outcome live_session(struct token_op *op, const json_t *rec)
{
    int rc = dz_oidc_session_alive(op->st, json_string_value(json_object_get(rec, "sid")));

    if (rc == DZ_ERR_NOTFOUND)
        return T_ENDED;
    if (rc != 0)
        return T_STORE_FAILED;
    return store_tokens(op, rec);
}

/* Every store call of an exchange, in one step off the loop: the jti, the
 * code (taken: exactly one exchange has it), the checks, the tokens. */
static void exchange_work(void *arg)
{
    struct token_op *op = arg;
    json_t *rec = NULL;
    unsigned char h[32];
    char at_key[DZ_OIDC_SECRET_LEN + 1];
    int rc = dz_oidc_jti_record(op->st, &op->jti);

    if (rc == DZ_ERR_EXISTS) {
        op->outcome = T_JTI_REPLAY;
        return;
    }
    if (rc == DZ_ERR_FULL || rc == DZ_ERR_NOMEM) {
        op->outcome = T_FULL;
        return;
    }
    if (rc != 0) {
        op->outcome = T_UNAVAILABLE;
        return;
    }
    if (!op->grant_ok) {
        op->outcome = T_BAD_GRANT;
        return;
    }
    if (strlen(op->code) != DZ_OIDC_SECRET_LEN) {
        op->outcome = T_NO_CODE;
        return;
    }
    if (dz_oidc_secret_new(op->access_token) != 0) {
        op->outcome = T_INTERNAL;
        return;
    }
    /* The code's "used" mark first, naming the token this exchange will
     * issue: a replay, even one at the same moment on another instance,
     * finds it and revokes that token (oidc_code.h). */
    dz_sha256(op->access_token, strlen(op->access_token), h);
    dz_b64_encode_to(h, sizeof(h), true, at_key);
    rc = dz_oidc_code_claim(op->st, op->code, at_key, op->client_id);
    if (rc == DZ_ERR_EXISTS) {
        /* A replay: the first exchange's token is revoked before anyone
         * is told so, and for good (oidc_code.h), or the answer is 503. */
        rc = dz_oidc_code_replayed(op->st, op->code, &op->replay_first);
        op->outcome = rc == 0 ? T_REPLAY : T_REPLAY_OPEN;
        return;
    }
    if (rc != 0) {
        op->outcome = rc == DZ_ERR_FULL || rc == DZ_ERR_NOMEM ? T_FULL : T_UNAVAILABLE;
        return;
    }
    rc = dz_oidc_state_get(op->st, DZ_OIDC_NS_CODE, op->code, true, &rec);
    if (rc != 0) {
        /* Unknown or expired: it reads so again (no "used" mark).  A store
         * that could not answer says nothing about the code: not "unknown",
         * and the claim is dropped so that a retry may have it. */
        dz_oidc_code_unclaim(op->st, op->code);
        op->outcome = dz_store_failed(rc) ? T_UNAVAILABLE : T_NO_CODE;
        return;
    }
    /* Taken: whatever happens next, this code is spent. */
    if (strcmp(json_string_value(json_object_get(rec, "client")) ?: "", op->client_id) != 0)
        op->outcome = T_OTHER_CLIENT;
    else if (!op->redirect_uri ||
             strcmp(json_string_value(json_object_get(rec, "redirect_uri")) ?: "",
                    op->redirect_uri) != 0)
        op->outcome = T_BAD_URI;
    else if (!verifier_ok(op->verifier, json_string_value(json_object_get(rec, "challenge")) ?: ""))
        op->outcome = T_BAD_PKCE;
    else
        op->outcome = live_session(op, rec);
    if (op->outcome == T_ISSUED)
        op->rec = rec;
    else
        json_decref(rec);
}

/* An exchange that issued nothing: its answer. */
static void refuse(struct dz_rctx *c, struct token_op *op, bool basic)
{
    json_t *r;

    switch (op->outcome) {
    case T_JTI_REPLAY:
        dz_rctx_logj(c, DZ_LOG_INFO, "oidc_client_refused",
                     json_pack("{s:s}", "reason", "the client assertion was already used (jti)"));
        dz_oidc_error(c, 401, "invalid_client", "the client assertion was already used (jti)",
                      basic ? "Basic" : NULL);
        break;
    case T_FULL:
    case T_UNAVAILABLE:
    case T_STORE_FAILED:
        dz_oidc_error(c, 503, "temporarily_unavailable", "state cannot be recorded now", NULL);
        break;
    case T_BAD_GRANT:
        dz_oidc_error(c, 400, "unsupported_grant_type", "only authorization_code", NULL);
        break;
    case T_NO_CODE:
        dz_oidc_error(c, 400, "invalid_grant", "unknown or expired code", NULL);
        break;
    case T_REPLAY:
    case T_REPLAY_OPEN:
        r = json_pack("{s:s, s:s, s:s, s:b}", "type", "oidc_code_replay", "client", op->client_id,
                      "first_client", op->replay_first ?: "", "revoked", op->outcome == T_REPLAY);
        dz_rctx_logj(
            c, DZ_LOG_WARN, "oidc_code_replay",
            json_pack("{s:s, s:b}", "client", op->client_id, "revoked", op->outcome == T_REPLAY));
        /* The refusal does not wait for the record: a replay must not be
         * slowed by the audit, and nothing is issued. */
        dz_gw_audit(c, r, audit_noted, NULL);
        if (op->outcome == T_REPLAY)
            dz_oidc_error(c, 400, "invalid_grant",
                          "the code was already used; its tokens are revoked", NULL);
        else
            /* Not "revoked" while a failover could bring the token back:
             * the store's answer; the same request again revokes again. */
            dz_oidc_error(c, 503, "temporarily_unavailable", "state cannot be recorded now", NULL);
        break;
    case T_RACED:
        /* The second use audits the replay; this one only refuses. */
        dz_oidc_error(c, 400, "invalid_grant",
                      "the code was used twice at once; its tokens are revoked", NULL);
        break;
    case T_OTHER_CLIENT:
        dz_oidc_error(c, 400, "invalid_grant", "the code was issued to another client", NULL);
        break;
    case T_BAD_URI:
        dz_oidc_error(c, 400, "invalid_grant", "redirect_uri differs from the authorization's",
                      NULL);
        break;
    case T_ISSUED:
    case T_INTERNAL:
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        break;
    case T_BAD_PKCE:
        dz_oidc_error(c, 400, "invalid_grant", "the PKCE code_verifier does not match", NULL);
        break;
    case T_ENDED:
        dz_oidc_error(c, 400, "invalid_grant", "the session that authorized the code has ended",
                      NULL);
        break;
    }
}

static void exchange_done(struct dz_rctx *c, void *arg)
{
    struct token_op *op = arg;
    const json_t *rec = op->rec;
    char at_hash[23];
    int64_t now = dz_unix_ms() / 1000;

    if (!dz_oidc_can_answer(c)) {
        if (op->outcome == T_ISSUED)
            dz_oidc_revoke_token(c, op->access_token);
        op_free(op);
        return;
    }
    if (op->outcome != T_ISSUED) {
        refuse(c, op, dz_req_header(c->req, "authorization") != NULL);
        op_free(op);
        return;
    }
    dz_oidc_at_hash(op->access_token, at_hash);
    op->claims = json_pack("{s:s, s:O, s:s, s:I, s:I, s:O, s:O, s:O, s:O, s:s}", "iss",
                           dz_oidc_issuer(c), "sub", json_object_get(rec, "fin"), "aud",
                           op->client_id, "exp", (json_int_t)(now + ID_TOKEN_TTL_S), "iat",
                           (json_int_t)now, "auth_time", json_object_get(rec, "auth_time"), "acr",
                           json_object_get(rec, "acr"), "amr", json_object_get(rec, "amr"), "sid",
                           json_object_get(rec, "sid"), "at_hash", at_hash);
    if (op->claims && json_object_get(rec, "nonce"))
        json_object_set(op->claims, "nonce", json_object_get(rec, "nonce"));
    op->audit =
        json_pack("{s:s, s:s, s:s, s:O, s:O, s:O}", "type", "oidc_token", "client", op->client_id,
                  "service", op->svc->name, "fin", json_object_get(rec, "fin"), "acr",
                  json_object_get(rec, "acr"), "sid", json_object_get(rec, "sid"));
    if (!op->claims || !op->audit) {
        dz_oidc_revoke_token(c, op->access_token);
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        op_free(op);
        return;
    }
    dz_oidc_sign(c, op->claims, DZ_OIDC_ID_TOKEN_TYP, signed_cb, op);
}

static void exchange(struct dz_rctx *c, const struct dz_policy_service *svc,
                     const struct dz_oidc_params *p, const struct dz_oidc_jti_mark *jti)
{
    const char *code = dz_oidc_params_get(p, "code", NULL);
    const char *ruri = dz_oidc_params_get(p, "redirect_uri", NULL);
    const char *verifier = dz_oidc_params_get(p, "code_verifier", NULL);
    const char *grant = dz_oidc_params_get(p, "grant_type", NULL);
    struct token_op *op = calloc(1, sizeof(*op));

    if (!op || (ruri && !(op->redirect_uri = strdup(ruri))) ||
        (verifier && !(op->verifier = strdup(verifier)))) {
        if (op)
            op_free(op);
        dz_oidc_error(c, 500, "server_error", NULL, NULL);
        return;
    }
    op->st = c->gw->store;
    op->jti = *jti;
    op->grant_ok = grant && strcmp(grant, "authorization_code") == 0;
    op->svc = svc;
    op->client_id = svc->oidc->client_id;
    /* Longer than a code: left empty, and refused as unknown. */
    if (code && strlen(code) == DZ_OIDC_SECRET_LEN)
        memcpy(op->code, code, sizeof(op->code));
    if (dz_gw_state_try(c, exchange_work, exchange_done, op) != 0) {
        op_free(op);
        dz_oidc_error(c, 503, "temporarily_unavailable", "the gateway is busy", NULL);
    }
}

static void token_run(struct dz_rctx *c, bool may_fetch);

/* The client's key set has been fetched (or could not be): authenticate
 * again, now with what the cache holds. */
static void keys_fetched(struct dz_rctx *c, void *arg)
{
    if (dz_oidc_can_answer(c))
        token_run(c, false);
}

void dz_oidc_ep_token(struct dz_rctx *c)
{
    token_run(c, true);
}

static void token_run(struct dz_rctx *c, bool may_fetch)
{
    struct dz_oidc_params p;
    const struct dz_policy_service *svc = NULL;
    const char *ctype = dz_req_header(c->req, "content-type");
    struct dz_oidc_jti_mark jti;
    const char *why = NULL;
    const unsigned char *body;
    size_t len = 0;
    int rc;

    if (!ctype || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
        dz_oidc_error(c, 400, "invalid_request",
                      "the body must be application/x-www-form-urlencoded", NULL);
        return;
    }
    body = dz_req_body(c->req, &len);
    rc = dz_oidc_params_parse((const char *)body, len, &p);
    if (rc != 0) {
        dz_oidc_error(c, 400, "invalid_request",
                      rc == DZ_ERR_EXISTS ? "a parameter is given twice" : "malformed form body",
                      NULL);
        return;
    }
    rc = dz_oidc_client_authenticate(c, &p, may_fetch, &svc, &jti, &why);
    if (rc == DZ_ERR_STATE) {
        /* Nothing is spent yet (the code is taken only after this): the
         * request starts over once the keys are in. */
        dz_oidc_params_cleanup(&p);
        dz_oidc_jwks_fetch(c, svc->oidc, keys_fetched, NULL);
        return;
    }
    if (rc != 0) {
        bool basic = dz_req_header(c->req, "authorization") != NULL;
        dz_rctx_logj(c, DZ_LOG_INFO, "oidc_client_refused", json_pack("{s:s}", "reason", why));
        dz_oidc_error(c, 401, "invalid_client", why, basic ? "Basic" : NULL);
        goto out;
    }
    /* The jti, the grant type and the code are answered in that order, by
     * the store step (oidc_offloop.h). */
    exchange(c, svc, &p, &jti);
out:
    dz_oidc_params_cleanup(&p);
}
