/*
 * api_account.c - the person's own account (docs/api.md "Account"), every
 * endpoint under /api/account/ and for a signed-in person only:
 *
 *   GET    /api/account/sessions          their live sessions (state/sessidx.h)
 *   DELETE /api/account/sessions/{id}     end one
 *   DELETE /api/account/sessions          end all ("?except=current" keeps this one)
 *   POST   /api/account/password          new password: current password + code,
 *                                         or a high session alone
 *   POST   /api/account/totp              new TOTP secret: a high session only
 *   GET    /api/account/services          the e-services and what each receives
 *   GET    /api/account/consents          OIDC consents (auth/consent.h hook)
 *   DELETE /api/account/consents/{client} withdraw one
 *
 * Recovery after a lost phone is a high login (card, mobile signature, QR:
 * it also lifts the password lockout) followed by the TOTP reset and, if
 * needed, a new password; never by e-mail or by the password alone.  Each
 * change is on the audit log before it is answered, and the person is told
 * by SMS.  Never logs or echoes a password, code or secret.
 */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/api_common.h"
#include "auth/auth_password.h"
#include "auth/consent.h"
#include "auth/session_end.h"
#include "auth/sms_out.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/qrsvg.h"
#include "base/secret.h"
#include "core/cookies.h"
#include "core/gwasync.h"
#include "policy/policy.h"
#include "state/accounts.h"
#include "state/sessidx.h"
#include "state/totp.h"

#include "base/compat.h"

#define NOTICE_MAX 480

static bool is_high(const struct dz_rctx *c)
{
    return strcmp(c->session.acr, "high") == 0;
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------ sessions */

/* Every store call of this file runs in a work function (off the loop
 * for a shared store, core/gwasync.h); what it needs is copied into its
 * op on the loop first. */
struct list_op {
    struct dz_store *store;
    char fin[DZ_FIN_LEN + 1];
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    size_t n;
    int rc;
};

static void list_work(void *arg)
{
    struct list_op *op = arg;

    op->rc = dz_sessidx_list(op->store, op->fin, op->e, &op->n);
}

static void listed(struct dz_rctx *c, void *arg)
{
    struct list_op *op = arg;
    json_t *a;

    if (c->closed)
        goto out;
    if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
        goto out;
    }
    a = json_array();
    for (size_t i = 0; a && i < op->n; i++) {
        const struct dz_sessidx_entry *e = &op->e[i];
        char id[DZ_SESSION_TOKEN_LEN + 1], when[32];

        dz_b64_encode_to(e->sid, sizeof(e->sid), true, id);
        iso_time(e->created_ms, when, sizeof(when));
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", id, "method",
                                           e->method, "acr", e->acr, "created_at", when, "address",
                                           e->addr, "current",
                                           memcmp(e->sid, c->session.sid, 32) == 0));
    }
    dz_rctx_json(c, 200, json_pack("{s:o?}", "sessions", a), NULL, 0);
out:
    free(op);
}

static void sessions_list(struct dz_rctx *c)
{
    struct list_op *op = calloc(1, sizeof(*op));

    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->store = c->gw->store;
    memcpy(op->fin, c->session.fin, sizeof(op->fin));
    if (dz_gw_state(c, list_work, listed, op) != 0)
        free(op);
}

static void ended_recorded(struct dz_rctx *c, int rc, void *arg)
{
    static const struct dz_hdr clear = {"set-cookie",
                                        DZ_COOKIE_SESSION_EQ "; Max-Age=0" DZ_COOKIE_SESSION_ATTRS};
    bool self = arg != NULL;

    /* The sessions are already gone; a failed audit line is logged by
     * dz_gw_audit and does not bring them back. */
    if (!c->closed)
        dz_rctx_respond(c, 204, NULL, NULL, 0, self ? &clear : NULL, self ? 1 : 0);
}

/* Sessions ended from the account page, whose OIDC clients are told once
 * the end is recorded; the answer goes out after that. */
struct end_op {
    unsigned char sids[DZ_SESSIDX_SLOTS + 1][32];
    size_t n;
    bool self;    /* the current session is among them: clear its cookie */
    bool partial; /* some could not be ended: say so, not 204 */
};

static struct end_op *end_op_new(const unsigned char (*sids)[32], size_t n, bool self, bool partial)
{
    struct end_op *op = calloc(1, sizeof(*op));

    if (op) {
        op->n = n < DZ_SESSIDX_SLOTS + 1 ? n : DZ_SESSIDX_SLOTS + 1;
        memcpy(op->sids, sids, op->n * 32);
        op->self = self;
        op->partial = partial;
    }
    return op;
}

/* "Sign out everywhere" that ended only some: those are gone and their
 * clients told; this session was kept, so the same button ends the rest. */
static void ended_partly(struct dz_rctx *c, const size_t *n)
{
    if (!c->closed)
        dz_rctx_problem_x(c, "state_unavailable",
                          "not every session could be ended: this one still works, sign out "
                          "everywhere again",
                          n ? json_pack("{s:I}", "sessions_ended", (json_int_t)*n) : NULL);
}

/* As ended_partly, without the list of the ended (no memory for it: they
 * are ended all the same, but their clients are not told). */
static void ended_partly_recorded(struct dz_rctx *c, int rc, void *arg)
{
    (void)rc;
    (void)arg;
    dz_rctx_log(c, DZ_LOG_WARN, "oidc_backchannel", "ended sessions' clients not told");
    ended_partly(c, NULL);
}

static void ended_told(struct dz_rctx *c, void *arg)
{
    struct end_op *op = arg;

    if (op->partial)
        ended_partly(c, &op->n);
    else
        ended_recorded(c, 0, op->self ? (void *)c : NULL);
    free(op);
}

static void ended_notify(struct dz_rctx *c, int rc, void *arg)
{
    struct end_op *op = arg;

    /* No memory for the list: the sessions are ended all the same, but
     * their clients are not told (logged). */
    if (!op) {
        dz_rctx_log(c, DZ_LOG_WARN, "oidc_backchannel", "ended sessions' clients not told");
        ended_recorded(c, rc, NULL);
        return;
    }
    dz_session_end_notify(c, (const unsigned char(*)[32])op->sids, op->n, c->session.fin,
                          ended_told, op);
}

struct end_work {
    struct dz_store *store;
    char fin[DZ_FIN_LEN + 1];
    unsigned char current[32]; /* the request's session */
    unsigned char sid[32];     /* one: the session to end */
    char id[DZ_SESSION_TOKEN_LEN + 1];
    bool keep_current;                            /* all: "?except=current" */
    unsigned char sids[DZ_SESSIDX_SLOTS + 1][32]; /* all: the ended, for their clients */
    size_t k;
    size_t ended;
    int rc;
};

static void end_one_work(void *arg)
{
    struct end_work *w = arg;

    w->rc = dz_sessidx_end(w->store, w->fin, w->sid);
}

static void end_one_done(struct dz_rctx *c, void *arg)
{
    struct end_work *w = arg;

    if (w->rc == DZ_ERR_NOTFOUND) {
        if (!c->closed)
            dz_rctx_problem(c, "not_found", "no such session");
    } else if (w->rc != 0) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, w->rc);
    } else {
        /* The session's OIDC clients hear of it too (back-channel logout),
         * once the end is on the audit record; recorded even if the
         * client went away meanwhile, for the session is gone. */
        struct end_op *op = end_op_new((const unsigned char(*)[32]) & w->sid, 1,
                                       memcmp(w->sid, w->current, 32) == 0, false);

        dz_gw_audit(c,
                    json_pack("{s:s, s:s, s:s, s:s%}", "type", "session_end", "fin", w->fin,
                              "scope", "one", "sid", w->id, (size_t)12),
                    ended_notify, op);
    }
    free(w);
}

static void session_end_one(struct dz_rctx *c, const char *id)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    struct end_work *w;

    if (strlen(id) != DZ_SESSION_TOKEN_LEN || dz_b64_decode(id, strlen(id), true, &raw, &n) != 0 ||
        n != 32) {
        free(raw);
        dz_rctx_problem(c, "not_found", "no such session");
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        free(raw);
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    w->store = c->gw->store;
    memcpy(w->fin, c->session.fin, sizeof(w->fin));
    memcpy(w->current, c->session.sid, 32);
    memcpy(w->sid, raw, 32);
    memcpy(w->id, id, DZ_SESSION_TOKEN_LEN + 1);
    free(raw);
    if (dz_gw_state(c, end_one_work, end_one_done, w) != 0)
        free(w);
}

static void end_all_work(void *arg)
{
    struct end_work *w = arg;
    int rc;

    /* The others first, each one's id kept only if it really ended: only
     * their OIDC clients are told (back-channel logout), and told even if
     * a later one fails. */
    w->rc = dz_sessidx_end_all(w->store, w->fin, w->current, w->sids, &w->k);
    /* Then the current session unless kept, even if it was not listed;
     * not if another could not be ended: the person stays signed in here
     * to try again (a retry ends only what is left).  If its own delete
     * fails it still works: 503, and its clients are not told. */
    if (w->rc == 0 && !w->keep_current) {
        rc = dz_sessidx_end(w->store, w->fin, w->current);
        if (rc == DZ_ERR_NOTFOUND)
            rc = dz_store_del(w->store, DZ_SESSION_NS, w->current, sizeof(w->current));
        if (rc == 0)
            memcpy(w->sids[w->k++], w->current, 32);
        else if (rc != DZ_ERR_NOTFOUND)
            w->rc = rc;
    }
    w->ended = w->k;
}

static void end_all_done(struct dz_rctx *c, void *arg)
{
    struct end_work *w = arg;
    bool partial = w->rc != 0;
    struct end_op *op;
    json_t *line;

    if (partial && w->k == 0) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, w->rc);
        free(w);
        return;
    }
    line = json_pack("{s:s, s:s, s:s, s:I}", "type", "session_end", "fin", w->fin, "scope",
                     w->keep_current ? "others" : "all", "ended", (json_int_t)w->ended);
    op = end_op_new((const unsigned char(*)[32])w->sids, w->k, !w->keep_current && !partial,
                    partial);
    if (partial) {
        dz_rctx_log(c, DZ_LOG_WARN, "sessions_end", "not every session was ended");
        json_object_set_new(line, "sessions_end_failed", json_true());
    }
    dz_gw_audit(c, line, partial && !op ? ended_partly_recorded : ended_notify, op);
    free(w);
}

static void session_end_all(struct dz_rctx *c, bool keep_current)
{
    struct end_work *w = calloc(1, sizeof(*w));

    if (!w) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    w->store = c->gw->store;
    memcpy(w->fin, c->session.fin, sizeof(w->fin));
    memcpy(w->current, c->session.sid, 32);
    w->keep_current = keep_current;
    if (dz_gw_state(c, end_all_work, end_all_done, w) != 0)
        free(w);
}

/* ----------------------------------------- password change, TOTP reset */

struct change_op {
    struct dz_auth_password_ctx actx;
    bool totp; /* a TOTP reset, else a password change */
    bool high; /* the session is high: no current password needed */
    char fin[DZ_FIN_LEN + 1];
    char ip[DZ_CLIENT_ADDR_MAX + 1];
    unsigned char sid[32];
    char *current;
    size_t cur_len;
    char otp[16];
    char *password;
    size_t pw_len;
    int rc;
    struct dz_auth_password_result check; /* the current password + code */
    bool proven;                          /* a high session, or the current password and a code */
    char secret_b32[DZ_TOTP_B32_MAX];
    char *otpauth_uri;
    char *qr_svg;
    size_t ended;
    /* The other sessions a new password ends, for their OIDC clients. */
    unsigned char ended_sids[DZ_SESSIDX_SLOTS][32];
    size_t n_ended_sids;
    bool end_failed;
    int audit_rc;
    char text[NOTICE_MAX + 1];
};

static void change_free(struct change_op *op)
{
    if (!op)
        return;
    dz_auth_secret_drop(&op->current, op->cur_len);
    dz_auth_secret_drop(&op->password, op->pw_len);
    dz_secret_free_str(op->otpauth_uri);
    dz_secret_free_str(op->qr_svg);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void change_drop(void *arg)
{
    change_free(arg);
}

/* A new password or TOTP secret ends the person's other sessions: whoever
 * knew the old password or held the old authenticator is out, and so are
 * the clients they signed in to.  On the pool, with the change. */
static void end_others(struct change_op *op)
{
    /* Only the sessions that did end are told to their clients; any that
     * could not be is said in the answer and on the record. */
    op->end_failed =
        dz_sessidx_end_all(op->actx.store, op->fin, op->sid, op->ended_sids, &op->ended) != 0;
    op->n_ended_sids = op->ended;
}

static void change_work(void *arg)
{
    struct change_op *op = arg;
    unsigned char secret[DZ_TOTP_SECRET_LEN];
    struct dz_buf uri;

    dz_buf_init(&uri, 1024);
    if (!op->high) {
        /* The current password and a code, with the lockout's counting:
         * a stolen session must not become a password oracle. */
        op->rc = dz_auth_password(&op->actx, op->fin, op->current, op->cur_len,
                                  op->otp[0] ? op->otp : NULL, op->ip, dz_unix_ms(), &op->check);
        if (op->rc != 0 || op->check.decision != DZ_PWD_OK || !(op->check.amr & DZ_AMR_OTP))
            goto out;
    }
    op->proven = true;
    if (!op->totp) {
        op->rc = dz_accounts_set_password(op->actx.accounts, op->fin, op->password, op->pw_len);
        if (op->rc == 0)
            end_others(op);
        goto out;
    }
    op->rc = dz_totp_secret_new(secret);
    if (op->rc == 0)
        op->rc = dz_totp_base32(secret, sizeof(secret), op->secret_b32, sizeof(op->secret_b32));
    if (op->rc == 0)
        op->rc = dz_totp_uri(op->fin, op->secret_b32, &uri);
    if (op->rc == 0) {
        op->otpauth_uri = dz_buf_steal(&uri, NULL);
        op->rc = op->otpauth_uri ? 0 : DZ_ERR_NOMEM;
    }
    if (op->rc == 0)
        op->rc = dz_qrsvg_render(op->otpauth_uri, &op->qr_svg);
    /* The new secret is shown only if it is stored. */
    if (op->rc == 0)
        op->rc = dz_accounts_set_totp(op->actx.accounts, op->fin, secret, sizeof(secret));
    /* A reset is what follows a lost or stolen phone: the sessions signed
     * in with its codes end with it, as with a new password. */
    if (op->rc == 0)
        end_others(op);
out:
    dz_secret_wipe(secret, sizeof(secret));
    dz_buf_wipe(&uri);
    if (op->current)
        dz_secret_wipe(op->current, op->cur_len);
    if (op->password)
        dz_secret_wipe(op->password, op->pw_len);
    dz_secret_wipe(op->otp, sizeof(op->otp));
}

static void change_notified(struct dz_rctx *c, int rc, void *arg)
{
    struct change_op *op = arg;
    json_t *body;

    if (c->closed)
        goto out;
    /* The change is made, so 200; but a session that could not be ended
     * may be the thief's: the person is told so, to sign out everywhere
     * again (which ends what is left), never left to believe it done. */
    if (op->totp)
        body = json_pack("{s:{s:s, s:s, s:s}, s:I, s:b, s:b}", "totp", "secret", op->secret_b32,
                         "otpauth_uri", op->otpauth_uri, "qr_svg", op->qr_svg, "sessions_ended",
                         (json_int_t)op->ended, "sessions_end_failed", op->end_failed,
                         "notice_sent", rc == 0);
    else
        body = json_pack("{s:b, s:I, s:b, s:b}", "changed", true, "sessions_ended",
                         (json_int_t)op->ended, "sessions_end_failed", op->end_failed,
                         "notice_sent", rc == 0);
    dz_rctx_json(c, 200, body, NULL, 0);
out:
    change_free(op);
}

static void change_recorded(struct dz_rctx *c, int rc, void *arg)
{
    struct change_op *op = arg;
    char when[32];

    if (c->closed) {
        change_free(op);
        return;
    }
    if (rc != 0) {
        /* The change is made; only its record failed (logged). */
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        change_free(op);
        return;
    }
    iso_time(dz_unix_ms(), when, sizeof(when));
    snprintf(op->text, sizeof(op->text),
             op->totp ? "Darvaza: the one-time code app of your account (FIN %s) was reset on %s. "
                        "If this was not you, sign in with your ID card or mobile signature "
                        "and end every session."
                      : "Darvaza: the password of your account (FIN %s) was changed on %s. If "
                        "this was not you, sign in with your ID card or mobile signature and "
                        "end every session.",
             op->fin, when);
    dz_sms_notify(c, op->fin, op->text, change_notified, change_drop, op);
}

static void change_told(struct dz_rctx *c, void *arg)
{
    struct change_op *op = arg;

    change_recorded(c, op->audit_rc, op);
}

/* The change is on the record: the ended sessions' OIDC clients hear of it
 * (back-channel logout, as after "sign out everywhere"), then the answer. */
static void change_audited(struct dz_rctx *c, int rc, void *arg)
{
    struct change_op *op = arg;

    op->audit_rc = rc;
    dz_session_end_notify(c, (const unsigned char(*)[32])op->ended_sids, op->n_ended_sids, op->fin,
                          change_told, op);
}

static void change_done(struct dz_rctx *c, void *arg)
{
    struct change_op *op = arg;
    char retry[24];
    /* Only what change_work did: a right password without a code (an
     * account whose code was never used lets that sign in) changes
     * nothing, and must not be answered, recorded or told as a change. */
    bool ok = op->rc == 0 && op->proven;
    json_t *line;

    if (ok) {
        line = json_pack("{s:s, s:s, s:s, s:I}", "type",
                         op->totp ? "account_totp_reset" : "account_password", "fin", op->fin,
                         "means", op->high ? "high_session" : "password+otp", "sessions_ended",
                         (json_int_t)op->ended);
        if (op->end_failed) {
            dz_rctx_log(c, DZ_LOG_WARN, "sessions_end", "not every other session was ended");
            json_object_set_new(line, "sessions_end_failed", json_true());
        }
        dz_gw_audit(c, line, change_audited, op);
        return;
    }
    if (c->closed)
        goto out;
    if (op->rc == DZ_ERR_NOTFOUND)
        dz_rctx_problem(c, "not_found", "no password account for this FIN: register first");
    else if (op->rc != 0)
        dz_rctx_state_unavailable(c, op->rc);
    else if (op->check.decision == DZ_PWD_LOCKED) {
        snprintf(retry, sizeof(retry), "%u", op->check.retry_after ? op->check.retry_after : 1);
        dz_rctx_problem_h(c, "locked", NULL, &(struct dz_hdr){"retry-after", retry}, 1);
    } else if (op->check.decision == DZ_PWD_OTP_REQUIRED || (op->check.decision == DZ_PWD_OK))
        dz_rctx_problem(c, "otp_required", "the current password and a one-time code");
    else
        dz_rctx_problem(c, "bad_credentials", NULL);
out:
    change_free(op);
}

static void change_start(struct dz_rctx *c, bool totp)
{
    json_t *body = NULL;
    struct change_op *op = NULL;
    const char *pw = NULL, *cur = NULL, *reason = NULL;
    const json_t *otp;

    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        return;
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    dz_auth_fill_pwd_ctx(c, &op->actx);
    op->totp = totp;
    op->high = is_high(c);
    memcpy(op->fin, c->session.fin, sizeof(op->fin));
    memcpy(op->sid, c->session.sid, sizeof(op->sid));
    snprintf(op->ip, sizeof(op->ip), "%s", dz_req_peer_ip(c->req));
    if (totp && !op->high) {
        /* A lost phone is exactly when the code cannot prove anything. */
        dz_rctx_problem(c, "insufficient_assurance",
                        "reset the one-time code after signing in with a card or mobile signature");
        goto out;
    }
    if (!totp) {
        json_t *j = json_object_get(body, "password");

        pw = json_is_string(j) ? json_string_value(j) : NULL;
        cur = dz_json_str(body, "current_password", 1024);
        otp = json_object_get(body, "otp");
        if (!pw || (!op->high && (!cur || !json_is_string(otp)))) {
            dz_rctx_problem(c, "invalid_request",
                            op->high ? "password is required"
                                     : "current_password, otp and password are required strings");
            goto out;
        }
        if (!dz_auth_password_rules_ok(&op->actx, pw, strlen(pw), op->fin, NULL, &reason)) {
            dz_rctx_problem(c, "weak_password", reason);
            goto out;
        }
        op->pw_len = strlen(pw);
        op->password = dz_auth_secret_dup(pw, op->pw_len);
        if (!op->high) {
            op->cur_len = strlen(cur);
            op->current = dz_auth_secret_dup(cur, op->cur_len);
            if (json_string_length(otp) < sizeof(op->otp))
                memcpy(op->otp, json_string_value(otp), json_string_length(otp) + 1);
            else
                memcpy(op->otp, "x", 2); /* too long: a wrong code, counted as one */
        }
        if (!op->password || (!op->high && !op->current)) {
            dz_rctx_problem(c, "service_unavailable", NULL);
            goto out;
        }
    }
    if (dz_gw_blocking(c, change_work, change_done, op) == 0)
        op = NULL;
out:
    change_free(op);
    dz_auth_body_drop(body);
}

/* ------------------------------------------------------------ services */

static json_t *route_json(const struct dz_policy_route *r)
{
    json_t *rel = json_array();
    json_t *m = json_array();
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};

    for (unsigned i = 0; rel && i < DZ_RELEASE_COUNT; i++) {
        if (r->release & (1u << i))
            json_array_append_new(rel, json_string(dz_policy_release_names[i]));
    }
    for (unsigned i = 0; m && i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (r->methods & (1u << i))
            json_array_append_new(m, json_string(methods[i]));
    }
    return json_pack("{s:s, s:o?, s:s, s:s?, s:b, s:o?}", "path", r->path, "methods", m, "acr",
                     dz_policy_acr_name(r->acr), "role", r->role, "purpose_required",
                     r->purpose == DZ_PURPOSE_REQUIRED, "releases", rel);
}

/* What every e-service receives comes from the policies: the subject (the
 * FIN) and how the person signed in on every request, the registry fields
 * each route releases, and, for a route with a role, only that role's
 * holders reach it. */
static void services_list(struct dz_rctx *c)
{
    const struct dz_policy_set *ps = c->gen->policies;
    json_t *a = json_array();

    for (size_t i = 0; a && ps && i < dz_policy_service_count(ps); i++) {
        const struct dz_policy_service *s = dz_policy_service_at(ps, i);
        json_t *routes = json_array();

        for (size_t j = 0; routes && j < s->n_routes; j++)
            json_array_append_new(routes, route_json(&s->routes[j]));
        json_array_append_new(a, json_pack("{s:s, s:s, s:[s,s,s], s:o?}", "service", s->name,
                                           "registered_as", s->registered_as, "always", "fin",
                                           "acr", "amr", "routes", routes));
    }
    dz_rctx_json(c, 200, json_pack("{s:o?}", "services", a), NULL, 0);
}

/* ------------------------------------------------------------ consents */

struct consent_op {
    const struct dz_consent_ops *ops;
    struct dz_store *store;
    const struct dz_policy_set *ps; /* the request's generation: pinned by it */
    char fin[DZ_FIN_LEN + 1];
    bool withdraw;    /* else list */
    char client[128]; /* withdraw: the client (a path segment under 128) */
    json_t *list;
    int rc;
};

static void consent_work(void *arg)
{
    struct consent_op *op = arg;

    if (op->withdraw)
        op->rc = op->ops ? op->ops->withdraw(op->store, op->fin, op->client) : DZ_ERR_NOTFOUND;
    else
        op->rc = op->ops ? op->ops->list(op->store, op->ps, op->fin, &op->list) : 0;
}

static void consent_done(struct dz_rctx *c, void *arg)
{
    struct consent_op *op = arg;

    if (!op->withdraw) {
        if (!c->closed && op->rc != 0) {
            dz_rctx_state_unavailable(c, op->rc);
        } else if (!c->closed) {
            dz_rctx_json(c, 200,
                         json_pack("{s:o, s:b}", "consents", op->list ? op->list : json_array(),
                                   "provider", op->ops != NULL),
                         NULL, 0);
            op->list = NULL; /* the answer took it */
        }
    } else if (op->rc == DZ_ERR_NOTFOUND) {
        if (!c->closed)
            dz_rctx_problem(c, "not_found", "no consent for this client");
    } else if (op->rc != 0) {
        if (!c->closed)
            dz_rctx_state_unavailable(c, op->rc);
    } else {
        /* Withdrawn: recorded even if the client went away meanwhile. */
        dz_gw_audit(c,
                    json_pack("{s:s, s:s, s:s}", "type", "consent_withdrawn", "fin", op->fin,
                              "client", op->client),
                    ended_recorded, NULL);
    }
    json_decref(op->list);
    free(op);
}

static void consents(struct dz_rctx *c, const char *client, const char *method)
{
    struct consent_op *op;

    if (client && strcmp(method, "DELETE") != 0) {
        dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "DELETE"}, 1);
        return;
    }
    if (!client && strcmp(method, "GET") != 0) {
        dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "GET"}, 1);
        return;
    }
    if (client && !dz_rctx_origin_ok(c))
        return;
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    op->ops = dz_consent_provider();
    op->store = c->gw->store;
    op->ps = c->gen->policies;
    memcpy(op->fin, c->session.fin, sizeof(op->fin));
    if (client) {
        op->withdraw = true;
        snprintf(op->client, sizeof(op->client), "%s", client);
    }
    if (dz_gw_state(c, consent_work, consent_done, op) != 0)
        free(op);
}

/* ------------------------------------------------------------ dispatch */

/* What the dispatch needs once the session is known. */
struct account_req {
    char sub[128];
    bool except_current; /* DELETE sessions?except=current */
};

static void account_authed(struct dz_rctx *c, int rc, void *arg)
{
    struct account_req *r = arg;
    const char *method = dz_req_method(c->req);
    const char *sub = r->sub;

    if (c->closed)
        goto out;
    if (rc != 0) {
        dz_rctx_problem(c, "unauthenticated", NULL);
        goto out;
    }
    if (strcmp(sub, "sessions") == 0) {
        c->route_tpl = "/api/account/sessions";
        if (strcmp(method, "GET") == 0) {
            sessions_list(c);
        } else if (strcmp(method, "DELETE") == 0) {
            if (dz_rctx_origin_ok(c))
                session_end_all(c, r->except_current);
        } else {
            dz_rctx_problem_h(c, "method_not_allowed", NULL,
                              &(struct dz_hdr){"allow", "GET, DELETE"}, 1);
        }
        goto out;
    }
    if (strncmp(sub, "sessions/", 9) == 0) {
        c->route_tpl = "/api/account/sessions/{id}";
        if (strcmp(method, "DELETE") != 0)
            dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "DELETE"},
                              1);
        else if (dz_rctx_origin_ok(c))
            session_end_one(c, sub + 9);
        goto out;
    }
    if (strcmp(sub, "password") == 0 || strcmp(sub, "totp") == 0) {
        c->route_tpl = sub[0] == 'p' ? "/api/account/password" : "/api/account/totp";
        if (strcmp(method, "POST") != 0)
            dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "POST"}, 1);
        else
            change_start(c, sub[0] == 't');
        goto out;
    }
    if (strcmp(sub, "services") == 0) {
        c->route_tpl = "/api/account/services";
        if (strcmp(method, "GET") != 0)
            dz_rctx_problem_h(c, "method_not_allowed", NULL, &(struct dz_hdr){"allow", "GET"}, 1);
        else
            services_list(c);
        goto out;
    }
    if (strcmp(sub, "consents") == 0 || strncmp(sub, "consents/", 9) == 0) {
        c->route_tpl = sub[8] ? "/api/account/consents/{client}" : "/api/account/consents";
        consents(c, sub[8] ? sub + 9 : NULL, method);
        goto out;
    }
    dz_rctx_problem(c, "not_found", NULL);
out:
    free(r);
}

void dz_ep_account(struct dz_rctx *c, const char *rest)
{
    size_t n = strcspn(rest, "?");
    struct account_req *r;

    if (n >= sizeof(r->sub)) {
        dz_rctx_problem(c, "not_found", NULL);
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    memcpy(r->sub, rest, n);
    r->sub[n] = '\0';
    r->except_current = strstr(rest + n, "except=current") != NULL;
    dz_rctx_authenticate_async(c, account_authed, r);
}
