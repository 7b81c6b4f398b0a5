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

#include "auth/auth_password.h"
#include "auth/login.h"
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

static void fill_pwd_ctx(struct dz_rctx *c, struct dz_auth_password_ctx *a)
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

/* A copy of a secret string that outlives the parsed body. */
static char *secret_dup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p)
        memcpy(p, s, len + 1);
    return p;
}

static void secret_drop(char **p, size_t len)
{
    if (*p) {
        dz_secret_wipe(*p, len);
        free(*p);
        *p = NULL;
    }
}

/* Wipe the secret members of a parsed body, then free it. */
static void body_drop(json_t *body)
{
    static const char *const secrets[] = {"password", "otp"};

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
    secret_drop(&op->password, op->pw_len);
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
        login_free(op);
        dz_login_complete(c, &s, "password", rec);
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
    fill_pwd_ctx(c, &op->actx);
    snprintf(op->fin, sizeof(op->fin), "%s", fin);
    op->pw_len = strlen(password);
    op->password = secret_dup(password, op->pw_len);
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
    body_drop(body);
}

/* ------------------------------------------------------------ session */

void dz_ep_session(struct dz_rctx *c)
{
    int rc = dz_rctx_authenticate(c);

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

static void logout_answer(struct dz_rctx *c, int rc, void *arg)
{
    static const struct dz_hdr clear = {"set-cookie",
                                        DZ_COOKIE_SESSION_EQ "; Max-Age=0" DZ_COOKIE_SESSION_ATTRS};

    if (c->closed)
        return;
    /* The session is already gone; a failed audit line is logged by
     * dz_gw_audit and does not resurrect it. */
    dz_rctx_respond(c, 204, NULL, NULL, 0, &clear, 1);
}

void dz_ep_logout(struct dz_rctx *c)
{
    char buf[128];
    size_t len;
    bool via_cookie;
    const char *tok;
    json_t *rec;
    int rc = dz_rctx_authenticate(c);

    if (rc == DZ_ERR_UNAVAILABLE) {
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        return;
    }
    if (!dz_rctx_origin_ok(c))
        return;
    tok = dz_rctx_token(c, buf, sizeof(buf), &len, &via_cookie);
    rc = tok ? dz_session_delete(c->gw->store, tok, len) : 0;
    dz_secret_wipe(buf, sizeof(buf));
    if (dz_store_failed(rc)) {
        /* A logout that did not reach the store did not happen: say so
         * rather than let the person believe the session is gone. */
        dz_rctx_state_unavailable(c, rc);
        return;
    }
    rec = json_pack("{s:s, s:s, s:s}", "type", "logout", "fin", c->session.fin, "means",
                    c->session.method);
    dz_gw_audit(c, rec, logout_answer, NULL);
}

/* -------------------------------------------------------- registration */

struct reg_op {
    struct dz_auth_password_ctx actx;
    char fin[8];
    char document[DZ_DOC_MAX + 1];
    char ip[DZ_CLIENT_ADDR_MAX + 1];
    bool document_matches;
    char *password;
    size_t pw_len;
    struct dz_httpc_xfer *xfer;
    char *assertion;
    char body[128];
    struct dz_hdr hdrs[3];
    struct dz_assertion_in in;
    int rc;
    struct dz_auth_register_result res;
};

static void reg_free(struct reg_op *op)
{
    if (!op)
        return;
    secret_drop(&op->password, op->pw_len);
    free(op->assertion);
    dz_auth_register_result_cleanup(&op->res);
    free(op);
}

static void reg_cancel(struct dz_rctx *c)
{
    struct reg_op *op = c->op;

    c->op = NULL;
    c->cancel = NULL;
    if (op && op->xfer) {
        dz_httpc_cancel(op->xfer);
        op->xfer = NULL;
        reg_free(op);
        dz_rctx_release(c); /* the hold taken for the transfer */
    }
}

static void reg_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;
    json_t *body;

    if (c->closed)
        goto out;
    if (rc != 0) {
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        goto out;
    }
    if (op->rc != 0 && op->res.decision != DZ_REG_CREATED) {
        dz_rctx_state_unavailable(c, op->rc); /* never a refusal that was not counted */
        goto out;
    }
    if (op->res.decision != DZ_REG_CREATED) {
        dz_rctx_problem(c, "registration_refused",
                        "the FIN and document do not match a person who can register");
        goto out;
    }
    body =
        json_pack("{s:s, s:{s:s, s:s, s:s}}", "fin", op->fin, "totp", "secret", op->res.secret_b32,
                  "otpauth_uri", op->res.otpauth_uri, "qr_svg", op->res.qr_svg);
    dz_rctx_json(c, 201, body, NULL, 0);
out:
    reg_free(op);
}

static void reg_work(void *arg)
{
    struct reg_op *op = arg;

    /* A refused document still goes through here, so that a refusal and
     * an account creation take about the same time. */
    op->rc = dz_auth_register_create(&op->actx, op->fin, op->password, op->pw_len,
                                     op->document_matches, op->ip, dz_unix_ms(), &op->res);
    dz_secret_wipe(op->password, op->pw_len);
}

static void reg_created(struct dz_rctx *c, void *arg)
{
    struct reg_op *op = arg;
    bool ok = op->rc == 0 && op->res.decision == DZ_REG_CREATED;
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "register", "fin", op->fin, "result",
                            ok ? "ok" : "refused", "reason",
                            op->res.reason ? op->res.reason : dz_err_str(op->rc));

    dz_metrics_login(c->gw->metrics, "register", ok ? "ok" : "refused");
    dz_gw_audit(c, rec, reg_answer, op);
}

static void reg_checked(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                        const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct reg_op *op = c->op;
    json_t *j = NULL;
    bool match = false;

    op->xfer = NULL;
    c->op = NULL;
    c->cancel = NULL;
    if (result != 0) {
        dz_metrics_upstream_error(c->gw->metrics, "registry",
                                  result == DZ_ERR_TIMEOUT ? "timeout" : "unavailable");
        dz_rctx_problem(c, result == DZ_ERR_TIMEOUT ? "upstream_timeout" : "upstream_unavailable",
                        "the population registry did not answer");
        reg_free(op);
        dz_rctx_release(c);
        return;
    }
    if (status == 200)
        j = json_loadb((const char *)body, len, 0, NULL);
    match = json_is_true(json_object_get(j, "match"));
    json_decref(j);
    if (status != 200) {
        dz_rctx_logj(
            c, DZ_LOG_WARN, "registry_check",
            json_pack("{s:s, s:i}", "msg", "the registry refused the check", "up_status", status));
        dz_rctx_problem(c, "upstream_unavailable", "the population registry refused the check");
        reg_free(op);
    } else {
        op->document_matches = match;
        if (dz_gw_blocking(c, reg_work, reg_created, op) != 0)
            reg_free(op);
    }
    dz_rctx_release(c);
}

static void reg_signed(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct reg_op *op = arg;
    const struct dz_config *cf = c->gen->config;
    struct dz_httpc_request r;
    struct dz_httpc_tls tls = {cf->upstream_tls.ca, cf->upstream_tls.certificate,
                               cf->upstream_tls.key};
    char url[512];

    op->assertion = token;
    if (rc != 0 || c->closed) {
        if (!c->closed)
            dz_rctx_problem(c, "service_unavailable", "could not sign");
        reg_free(op);
        return;
    }
    snprintf(url, sizeof(url), "%s/api/registry/document-check", cf->registry.url);
    op->hdrs[0] = (struct dz_hdr){"content-type", "application/json"};
    op->hdrs[1] = (struct dz_hdr){"darvaza-assertion", op->assertion};
    op->hdrs[2] = (struct dz_hdr){"darvaza-request-id", c->rid};
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.url = url;
    r.headers = op->hdrs;
    r.nheaders = 3;
    r.body = op->body;
    r.body_len = strlen(op->body);
    r.version = DZ_HTTPC_H2;
    r.timeout_ms = (uint32_t)cf->registry.timeout_ms;
    r.connect_timeout_ms = (uint32_t)cf->registry.timeout_ms;
    r.tls = &tls;
    r.max_response_bytes = 64 * 1024;
    c->op = op;
    c->cancel = reg_cancel;
    dz_rctx_hold(c);
    if (dz_httpc_fetch(c->gw_worker->httpc, &r, reg_checked, c, &op->xfer) != 0) {
        c->op = NULL;
        c->cancel = NULL;
        dz_rctx_release(c);
        dz_rctx_problem(c, "upstream_unavailable", NULL);
        reg_free(op);
    }
}

void dz_ep_register(struct dz_rctx *c)
{
    json_t *body = NULL;
    struct reg_op *op = NULL;
    const char *fin;
    const char *document;
    const char *password;
    struct dz_auth_register_input vin;
    json_t *jb;
    char *text;

    if (!dz_rctx_origin_ok(c) || !dz_start_allowed(c, "register") ||
        dz_rctx_body_json(c, &body) != 0)
        return;
    fin = dz_json_str(body, "fin", 64);
    document = dz_json_str(body, "document", 64);
    /* Any length is taken here (the body is bounded): a password over
     * DZ_PASSWORD_MAX is a weak_password for the validation below to say,
     * not a malformed request. */
    jb = json_object_get(body, "password");
    password = json_is_string(jb) ? json_string_value(jb) : NULL;
    if (!fin || !document || !password) {
        dz_rctx_problem(c, "invalid_request", "fin, document and password are required strings");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    fill_pwd_ctx(c, &op->actx);
    snprintf(op->ip, sizeof(op->ip), "%s", dz_req_peer_ip(c->req));
    if (dz_auth_register_validate(&op->actx, fin, document, password, strlen(password), op->ip,
                                  dz_unix_ms(), &vin) != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    switch (vin.decision) {
    case DZ_REG_VALID:
        break;
    case DZ_REG_INVALID_FIN:
        dz_rctx_problem(c, "invalid_fin", NULL);
        goto out;
    case DZ_REG_INVALID_DOCUMENT:
        dz_rctx_problem(c, "invalid_document", NULL);
        goto out;
    case DZ_REG_WEAK_PASSWORD:
        dz_rctx_problem(c, "weak_password", vin.reason);
        goto out;
    case DZ_REG_LOCKED: {
        char retry[24];
        snprintf(retry, sizeof(retry), "%u", vin.retry_after ? vin.retry_after : 1);
        dz_rctx_problem_h(c, "locked", NULL, &(struct dz_hdr){"retry-after", retry}, 1);
        goto out;
    }
    default:
        dz_rctx_problem(c, "registration_refused", NULL);
        goto out;
    }
    memcpy(op->fin, vin.fin, sizeof(op->fin));
    snprintf(op->document, sizeof(op->document), "%s", vin.document);
    op->pw_len = strlen(password);
    op->password = secret_dup(password, op->pw_len);
    jb = json_pack("{s:s, s:s}", "fin", op->fin, "document", op->document);
    text = jb ? json_dumps(jb, JSON_COMPACT) : NULL;
    json_decref(jb);
    if (!op->password || !text || strlen(text) >= sizeof(op->body)) {
        free(text);
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    memcpy(op->body, text, strlen(text) + 1);
    free(text);
    /* The registry is asked under a service assertion: the subject is the
     * FIN being registered, the purpose says why (§2 inter-system linking). */
    op->in = (struct dz_assertion_in){0};
    op->in.iss = c->gen->config->gateway.id;
    op->in.sub = op->fin;
    op->in.aud = "registry";
    op->in.acr = "none";
    op->in.iat = dz_unix_ms() / 1000;
    op->in.auth_time = op->in.iat;
    op->in.ttl_s = 60;
    op->in.htm = "POST";
    op->in.htu = "/api/registry/document-check";
    op->in.body = (const unsigned char *)op->body;
    op->in.body_len = strlen(op->body);
    op->in.pur = "registration";
    op->in.sid_b64 = c->rid;
    dz_gw_sign(c, &op->in, reg_signed, op);
    op = NULL;
out:
    reg_free(op);
    body_drop(body);
}
