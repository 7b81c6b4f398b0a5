/*
 * api_auth.c - the HTTP side of §4.2-4.3: registration, password login,
 * the session endpoint and logout.  The decisions are made in
 * auth_password.c on the blocking pool; this file parses, sequences the
 * asynchronous steps (registry check, argon2id, audit) and answers.
 *
 * It never logs or echoes a password, code or token, and every failure of
 * a login answers exactly like a wrong password (no account enumeration).
 */
#include "auth/auth.h"
#include "auth/login.h"
#include "core/startlimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/api_common.h"
#include "auth/auth_password.h"
#include "auth/login.h"
#include "auth/session_end.h"
#include "base/b64.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "http/httpc.h"
#include "keys/assertion.h"
#include "state/session.h"
#include "state/store.h"

#include "base/compat.h"

#define MAX_PASSWORD 1024

void dz_auth_fill_pwd_ctx(struct dz_rctx *c, struct dz_auth_password_ctx *a)
{
    const struct dz_config *cf = c->gen->config;

    memset(a, 0, sizeof(*a));
    a->accounts = c->gw->accounts;
    a->store = c->gw->store;
    a->lockout.pair_attempts = cf->lockout.pair_attempts;
    a->lockout.fin_attempts = cf->lockout.fin_attempts;
    a->lockout.fin_delay_ms = cf->lockout.fin_delay_ms;
    a->lockout.fin_limit = cf->lockout.fin_limit;
    a->lockout.fin_limit_window_ms = cf->lockout.fin_limit_window_ms;
    a->lockout.address_attempts = cf->lockout.address_attempts;
    a->lockout.window_ms = cf->lockout.window_ms;
    a->lockout.duration_ms = cf->lockout.duration_ms;
    a->totp_window = 1;
    a->password_min_length = cf->accounts.password_min_length;
    a->docpat = cf->accounts.document;
}

/* ---------------------------------------------------------------- login */

struct login_op {
    struct dz_auth_password_ctx actx;
    char fin[16];
    char *password;
    size_t pw_len;
    char otp[16];
    bool has_otp;
    char ip[64];
    int rc;
    struct dz_auth_password_result res;
};

char *dz_auth_secret_dup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p)
        memcpy(p, s, len + 1);
    return p;
}

void dz_auth_secret_drop(char **p, size_t len)
{
    if (*p) {
        dz_secret_wipe(*p, len);
        free(*p);
        *p = NULL;
    }
}

void dz_auth_body_drop(json_t *body)
{
    static const char *const secrets[] = {"password", "otp", "code", "current_password"};

    for (size_t i = 0; body && i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        json_t *v = json_object_get(body, secrets[i]);
        if (json_is_string(v))
            dz_secret_wipe((void *)json_string_value(v), json_string_length(v));
    }
    json_decref(body);
}

static void login_free(struct login_op *op)
{
    if (!op)
        return;
    dz_auth_secret_drop(&op->password, op->pw_len);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void login_work(void *arg)
{
    struct login_op *op = arg;

    op->rc = dz_auth_password(&op->actx, op->fin, op->password, op->pw_len,
                              op->has_otp ? op->otp : NULL, op->ip, dz_unix_ms(), &op->res);
    dz_secret_wipe(op->password, op->pw_len);
    dz_secret_wipe(op->otp, sizeof(op->otp));
}

static void login_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct login_op *op = arg;
    char retry[24];

    if (c->closed)
        goto out;
    if (rc != 0) {
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        goto out;
    }
    /* An attempt whose failure could not be counted (a full failure budget,
     * a store or database error) is refused as such, never answered like
     * a wrong password: that would let a guess go uncounted. */
    /* A crypto failure is not a passing store trouble: in a login it is a
     * TOTP seed that does not decrypt (the seed key is not the one the
     * accounts were made with, docs/operations.md "Back up and restore";
     * logged by accounts.c).  Retrying will not help: 500, not 503. */
    if (op->rc == DZ_ERR_CRYPTO) {
        dz_rctx_problem(c, "internal_error", "the one-time code cannot be checked now");
        goto out;
    }
    if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
        goto out;
    }
    switch (op->res.decision) {
    case DZ_PWD_INVALID_FIN:
        dz_rctx_problem(c, "invalid_fin", NULL);
        break;
    case DZ_PWD_OTP_REQUIRED:
        dz_rctx_problem(c, "otp_required", "enter the code from your authenticator app");
        break;
    case DZ_PWD_LOCKED:
        snprintf(retry, sizeof(retry), "%u", op->res.retry_after ? op->res.retry_after : 1);
        dz_rctx_problem_h(c, "locked", NULL, &(struct dz_hdr){"retry-after", retry}, 1);
        break;
    default:
        dz_rctx_problem(c, "bad_credentials", NULL);
        break;
    }
out:
    login_free(op);
}

static const char *pwd_result_name(int rc, const struct dz_auth_password_result *r)
{
    if (rc != 0)
        return "error";
    switch (r->decision) {
    case DZ_PWD_OK:
        return "ok";
    case DZ_PWD_OTP_REQUIRED:
        return "otp_required";
    case DZ_PWD_LOCKED:
        return "locked";
    case DZ_PWD_INVALID_FIN:
        return "invalid_fin";
    default:
        return "bad_credentials";
    }
}

static int pwd_status(int rc, const struct dz_auth_password_result *r)
{
    if (rc != 0)
        return 503;
    switch (r->decision) {
    case DZ_PWD_INVALID_FIN:
        return 400;
    case DZ_PWD_LOCKED:
        return 429;
    default:
        return 401;
    }
}

static void login_done(struct dz_rctx *c, void *arg)
{
    struct login_op *op = arg;
    const char *result = pwd_result_name(op->rc, &op->res);
    json_t *rec = json_pack("{s:s, s:s, s:s}", "type", "login", "means", "password", "ip",
                            dz_req_peer_ip(c->req));
    unsigned char tag[DZ_ACCOUNT_TAG_LEN];

    if (rec && op->rc == 0 && op->res.reason)
        json_object_set_new(rec, "reason", json_string(op->res.reason));
    /* The FIN is recorded for every attempt, including unknown ones: the
     * audit log is for the operator, who may see attempts. */
    if (rec && op->fin[0])
        json_object_set_new(rec, "fin", json_string(op->res.fin[0] ? op->res.fin : op->fin));
    if (op->rc == 0 && op->res.decision == DZ_PWD_OK) {
        struct dz_session s;
        memset(&s, 0, sizeof(s));
        memcpy(s.fin, op->res.fin, sizeof(s.fin));
        snprintf(s.method, sizeof(s.method), "password");
        s.amr = op->res.amr;
        snprintf(s.acr, sizeof(s.acr), "%s", op->res.acr);
        s.auth_time = dz_unix_ms() / 1000;
        memcpy(tag, op->res.cred_tag, sizeof(tag));
        login_free(op);
        dz_login_complete_password(c, &s, rec, c->gw->accounts, tag);
        dz_secret_wipe(tag, sizeof(tag));
        return;
    }
    dz_metrics_login(c->gw->metrics, "password", result);
    if (rec) {
        json_object_set_new(rec, "result", json_string(result));
        json_object_set_new(rec, "decision", json_string("deny"));
        json_object_set_new(rec, "status", json_integer(pwd_status(op->rc, &op->res)));
    }
    dz_gw_audit(c, rec, login_answer, op);
}

void dz_ep_password(struct dz_rctx *c)
{
    json_t *body = NULL;
    struct login_op *op = NULL;
    const char *fin;
    const char *password;
    const json_t *otp;

    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        return;
    fin = dz_json_str(body, "fin", 64);
    password = dz_json_str(body, "password", MAX_PASSWORD);
    otp = json_object_get(body, "otp");
    if (!fin || !password || (otp && !json_is_string(otp) && !json_is_null(otp))) {
        dz_rctx_problem(c, "invalid_request", "fin and password are required strings");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_auth_fill_pwd_ctx(c, &op->actx);
    snprintf(op->fin, sizeof(op->fin), "%s", fin);
    op->pw_len = strlen(password);
    op->password = dz_auth_secret_dup(password, op->pw_len);
    if (!op->password) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    if (json_is_string(otp)) {
        /* A malformed code is just a wrong code: same answer, same count. */
        snprintf(op->otp, sizeof(op->otp), "%s", json_string_value(otp));
        op->has_otp = true;
    }
    snprintf(op->ip, sizeof(op->ip), "%s", dz_req_peer_ip(c->req));
    if (dz_gw_blocking(c, login_work, login_done, op) == 0)
        op = NULL;
out:
    login_free(op);
    dz_auth_body_drop(body);
}

/* ------------------------------------------------------------ session */

static void session_authed(struct dz_rctx *c, int rc, void *arg)
{
    if (c->closed)
        return;
    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        return;
    }
    dz_rctx_json(c, 200, dz_session_answer(&c->session, NULL), NULL, 0);
}

void dz_ep_session(struct dz_rctx *c)
{
    dz_rctx_authenticate_async(c, session_authed, NULL);
}

static void logout_answer(struct dz_rctx *c, void *arg)
{
    static const struct dz_hdr clear = {"set-cookie",
                                        DZ_COOKIE_SESSION_EQ "; Max-Age=0" DZ_COOKIE_SESSION_ATTRS};

    if (c->closed)
        return;
    dz_rctx_respond(c, 204, NULL, NULL, 0, &clear, 1);
}

/* The session is gone and on record (a failed audit line is logged by
 * dz_gw_audit and does not resurrect it): now, and only now, its OpenID
 * Connect clients are told (back-channel logout, session_end.h). */
static void logout_recorded(struct dz_rctx *c, int rc, void *arg)
{
    (void)rc;
    dz_session_end_notify(c, (const unsigned char(*)[32])c->session.sid, 1, c->session.fin,
                          logout_answer, NULL);
}

struct logout_op {
    struct dz_store *store;
    char token[128];
    size_t len;
    int rc;
};

static void logout_work(void *arg)
{
    struct logout_op *op = arg;

    op->rc = dz_session_delete(op->store, op->token, op->len);
}

static void logout_deleted(struct dz_rctx *c, void *arg)
{
    struct logout_op *op = arg;
    int rc = op->rc;
    json_t *rec;

    dz_secret_wipe(op, sizeof(*op));
    free(op);
    if (dz_store_failed(rc)) {
        /* A logout that did not reach the store did not happen: say so
         * rather than let the person (or the session's clients: nobody is
         * told) believe the session is gone; a retry tells them. */
        if (!c->closed)
            dz_rctx_state_unavailable(c, rc);
        return;
    }
    /* Gone: recorded even if the client went away meanwhile. */
    rec = json_pack("{s:s, s:s, s:s}", "type", "logout", "fin", c->session.fin, "means",
                    c->session.method);
    dz_gw_audit(c, rec, logout_recorded, NULL);
}

static bool logout_allowed(struct dz_rctx *c, int rc)
{
    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, rc);
        return false;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        return false;
    }
    return dz_rctx_origin_ok(c);
}

static void logout_end(struct dz_rctx *c)
{
    struct logout_op *op;
    const char *tok;
    bool via_cookie;
    char buf[128];
    size_t len;

    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->store = c->gw->store;
    tok = dz_rctx_token(c, buf, sizeof(buf), &len, &via_cookie);
    if (tok && len < sizeof(op->token)) {
        memcpy(op->token, tok, len);
        op->len = len;
    }
    dz_secret_wipe(buf, sizeof(buf));
    if (!op->len) {
        logout_deleted(c, op); /* an authenticated request has a token: not reached */
        return;
    }
    if (dz_gw_state(c, logout_work, logout_deleted, op) != 0) {
        dz_secret_wipe(op, sizeof(*op));
        free(op);
    }
}

static void logout_authed(struct dz_rctx *c, int rc, void *arg)
{
    if (!c->closed && logout_allowed(c, rc))
        logout_end(c);
}

void dz_ep_logout(struct dz_rctx *c)
{
    dz_rctx_authenticate_async(c, logout_authed, NULL);
}
