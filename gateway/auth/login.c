/*
 * login.c - see login.h.  The token exists only in this file's answer and
 * the client's cookie; the store keeps its hash.
 */
#include "auth/login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_password.h"
#include "base/b64.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "core/problem.h"
#include "state/sessidx.h"

#include "base/compat.h"

struct complete_op {
    bool polled;
    bool forgives; /* a card, mobile or QR login: lifts the password lockout */
    char means[16];
    json_t *record;
    /* What the store work needs, copied on the loop: it runs on the
     * blocking pool when the store is shared (core/gwasync.h). */
    struct dz_store *store;
    struct dz_session_limits limits;
    char peer[64];
    int64_t now_ms;
    int rc;       /* the session and its index entry */
    int audit_rc; /* the audit line of the login */
    int forgive_rc;
    struct dz_session sess;
    char token[DZ_SESSION_TOKEN_LEN + 1];
    /* A password login: the account is read again once the session is
     * listed (dz_login_complete_password). */
    struct dz_accounts *accounts;
    unsigned char cred_tag[DZ_ACCOUNT_TAG_LEN];
    int check_rc;
    bool unchanged;
};

static void complete_free(struct complete_op *op)
{
    json_decref(op->record);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

/* After the audit line: a login that could not be recorded did not happen
 * (its session goes), one that was lifts the password lockout if it
 * proved the person otherwise.  Store calls: off the loop. */
static void answer_work(void *arg)
{
    struct complete_op *op = arg;

    if (op->audit_rc != 0)
        dz_session_delete(op->store, op->token, strlen(op->token));
    else if (op->forgives)
        op->forgive_rc = dz_auth_password_forgive(op->store, op->sess.fin);
}

static void answered(struct dz_rctx *c, void *arg)
{
    struct complete_op *op = arg;
    char cookie[128];

    if (op->audit_rc != 0) {
        if (!c->closed)
            dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        complete_free(op);
        return;
    }
    /* The person proved who they are without the password: guesses by
     * others must not keep them out of password login. */
    if (op->forgive_rc != 0)
        dz_rctx_log(c, DZ_LOG_WARN, "lockout_forgive", "the password lockout was not lifted");
    if (!c->closed) {
        snprintf(cookie, sizeof(cookie), DZ_COOKIE_SESSION_EQ "%s" DZ_COOKIE_SESSION_ATTRS,
                 op->token);
        json_t *body = dz_session_answer(&op->sess, op->token);
        if (body && op->polled)
            json_object_set_new(body, "state", json_string("complete"));
        dz_rctx_json(c, 200, body, &(struct dz_hdr){"set-cookie", cookie}, 1);
        dz_secret_wipe(cookie, sizeof(cookie));
    }
    complete_free(op);
}

static void complete_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct complete_op *op = arg;

    op->audit_rc = rc;
    if (rc == 0 && !op->forgives) {
        answered(c, op); /* no store call left */
        return;
    }
    /* A full pool answered 503 itself; the session stays until its TTL,
     * unusable: its token is wiped and was never sent. */
    if (dz_gw_state(c, answer_work, answered, op) != 0)
        complete_free(op);
}

/* The session and its entry in the person's list, off the loop.  Listed
 * for the account page: a session that cannot be listed could not be
 * ended by "sign out everywhere", so none at all. */
static void create_work(void *arg)
{
    struct complete_op *op = arg;

    op->rc = dz_session_create(op->store, &op->limits, &op->sess, op->token);
    if (op->rc == 0) {
        op->rc = dz_sessidx_add(op->store, &op->sess, op->peer, op->now_ms);
        if (op->rc != 0)
            dz_session_delete(op->store, op->token, strlen(op->token));
    }
}

/* The session is made and listed: recorded, then answered. */
static void made(struct dz_rctx *c, struct complete_op *op)
{
    json_t *record = op->record;
    char sid[64];

    /* Made: recorded even if the client went away meanwhile, as a login
     * whose answer was lost after the record. */
    op->record = NULL;
    dz_metrics_login(c->gw->metrics, op->means, "ok");
    dz_b64_encode_to(op->sess.sid, sizeof(op->sess.sid), true, sid);
    /* The session id is SHA-256 of the token: its first characters say
     * which session without being anything one could present. */
    dz_rctx_logj(c, DZ_LOG_DEBUG, "login_ok",
                 json_pack("{s:s, s:s, s:s%, s:b}", "means", op->means, "acr", op->sess.acr, "sid",
                           sid, (size_t)12, "polled", op->polled));
    json_object_set_new(record, "sid", json_string(sid));
    json_object_set_new(record, "acr", json_string(op->sess.acr));
    json_object_set_new(record, "result", json_string("ok"));
    json_object_set_new(record, "decision", json_string("allow"));
    json_object_set_new(record, "status", json_integer(200));
    dz_gw_audit(c, record, complete_answer, op);
}

/* The session could not be made, listed or checked: no login (503). */
static void failed(struct dz_rctx *c, struct complete_op *op, int rc)
{
    dz_metrics_login(c->gw->metrics, op->means, "error");
    if (!c->closed)
        dz_rctx_state_unavailable(c, rc);
    complete_free(op);
}

/*
 * A password change or TOTP reset updates the account first, then lists the
 * person's sessions and ends them.  This login verified the account before
 * its session was listed: if the change's list came first, it missed this
 * session, but then the change's update came before this read, which sees
 * it.  So one of the two always sees the other, and whoever knew only the
 * old password or held only the old authenticator keeps no session.  On
 * the pool (an account read blocks).
 */
static void recheck_work(void *arg)
{
    struct complete_op *op = arg;

    op->check_rc = dz_accounts_unchanged(op->accounts, op->sess.fin, op->cred_tag, &op->unchanged);
    if (op->check_rc == 0 && op->unchanged)
        return;
    /* The token was never sent; the session and its slot go all the same
     * (best effort: unusable either way, and the change's list no longer
     * shows it once its key is gone). */
    dz_session_delete(op->store, op->token, strlen(op->token));
    (void)dz_sessidx_end(op->store, op->sess.fin, op->sess.sid);
}

static void rechecked(struct dz_rctx *c, void *arg)
{
    struct complete_op *op = arg;

    if (op->check_rc != 0) {
        failed(c, op, op->check_rc);
        return;
    }
    if (!op->unchanged) {
        /* Answered like the wrong password it now is; not counted as a
         * guess (the password was right when it was checked). */
        json_object_set_new(op->record, "reason", json_string("credentials_changed"));
        dz_login_refuse(c, op->means, op->record, "bad_credentials", NULL);
        op->record = NULL;
        complete_free(op);
        return;
    }
    made(c, op);
}

static void created(struct dz_rctx *c, void *arg)
{
    struct complete_op *op = arg;

    if (op->rc != 0) {
        failed(c, op, op->rc);
        return;
    }
    if (!op->accounts) {
        made(c, op);
        return;
    }
    /* A full pool answered 503 itself; the session stays until its TTL,
     * unusable: its token is wiped and was never sent. */
    if (dz_gw_blocking(c, recheck_work, rechecked, op) != 0) {
        dz_metrics_login(c->gw->metrics, op->means, "error");
        complete_free(op);
    }
}

static void complete(struct dz_rctx *c, const struct dz_session *tmpl, const char *means,
                     json_t *record, bool polled, struct dz_accounts *accounts,
                     const unsigned char *tag)
{
    struct complete_op *op = calloc(1, sizeof(*op));

    if (!op || !record) {
        free(op);
        json_decref(record);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->polled = polled;
    op->forgives = strcmp(means, "password") != 0;
    snprintf(op->means, sizeof(op->means), "%s", means);
    op->record = record;
    op->store = c->gw->store;
    op->limits = c->gen->session_limits;
    snprintf(op->peer, sizeof(op->peer), "%s", dz_req_peer_ip(c->req));
    op->now_ms = dz_unix_ms();
    op->sess = *tmpl;
    op->accounts = accounts;
    if (tag)
        memcpy(op->cred_tag, tag, sizeof(op->cred_tag));
    if (dz_gw_state(c, create_work, created, op) != 0) {
        dz_metrics_login(c->gw->metrics, means, "error");
        complete_free(op);
    }
}

void dz_login_complete(struct dz_rctx *c, const struct dz_session *tmpl, const char *means,
                       json_t *record)
{
    complete(c, tmpl, means, record, false, NULL, NULL);
}

void dz_login_complete_password(struct dz_rctx *c, const struct dz_session *tmpl, json_t *record,
                                struct dz_accounts *accounts,
                                const unsigned char tag[DZ_ACCOUNT_TAG_LEN])
{
    if (!accounts || !tag) {
        /* Nothing to read again would be a login nobody rechecked. */
        json_decref(record);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    complete(c, tmpl, "password", record, false, accounts, tag);
}

void dz_login_complete_polled(struct dz_rctx *c, const struct dz_session *tmpl, const char *means,
                              json_t *record)
{
    complete(c, tmpl, means, record, true, NULL, NULL);
}

struct refuse_op {
    const char *code;
    char detail[256];
};

static void refuse_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct refuse_op *op = arg;

    if (!c->closed)
        dz_rctx_problem(c, rc == 0 ? op->code : "service_unavailable",
                        rc == 0 && op->detail[0] ? op->detail : NULL);
    free(op);
}

void dz_login_refuse(struct dz_rctx *c, const char *means, json_t *record, const char *code,
                     const char *detail)
{
    struct refuse_op *op = calloc(1, sizeof(*op));

    dz_metrics_login(c->gw->metrics, means, code);
    if (!op || !record) {
        free(op);
        json_decref(record);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_rctx_logj(c, DZ_LOG_DEBUG, "login_refused",
                 json_pack("{s:s, s:s}", "means", means, "code", code));
    op->code = code;
    if (detail)
        snprintf(op->detail, sizeof(op->detail), "%s", detail);
    json_object_set_new(record, "result", json_string(code));
    json_object_set_new(record, "decision", json_string("deny"));
    json_object_set_new(record, "status", json_integer(dz_problem_status(code)));
    dz_gw_audit(c, record, refuse_answer, op);
}

json_t *dz_session_answer(const struct dz_session *s, const char *token)
{
    json_t *j = NULL;

    if (dz_session_to_json(s, &j) != 0)
        return NULL;
    if (token)
        json_object_set_new(j, "token", json_string(token));
    /* The role the certificate gave (cards, SIMs): the portal shows a
     * judge's workspace by it; the policies decide on their own. */
    if (s->role[0])
        json_object_set_new(j, "role", json_string(s->role));
    return j;
}
