/*
 * api_register.c - POST /auth/register (docs/api.md "Registration").
 *
 * FIN and document number are both printed on the ID card, so a photocopy
 * knows them: they only start a registration.  Three ways through:
 *
 *   1. {"fin","document","password"}: the registry is asked whether the
 *      document is the FIN's (a service assertion, purpose "registration");
 *      on a match a one-time code goes by SMS to the mobile number the
 *      registry holds for the person, and the answer is 401 code_required
 *      with that number masked.  Nothing is created.
 *   2. the same with "code": the code (bound to FIN and document, single
 *      use, bounded tries, regcode.h) creates the account; the person is
 *      told by SMS that an account now exists in their name.
 *   3. {"password"} with a `high` session (card or mobile signature): the
 *      person has just proved who they are; no document and no code.  The
 *      notice goes to every number the registry holds.
 *
 * Never logs or echoes a password or a code.  Every failure that could be
 * a guess is counted against the client address (the lockout's budget).
 */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/api_common.h"
#include "auth/auth_password.h"
#include "auth/regcode.h"
#include "auth/sms_out.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "core/metrics.h"
#include "core/startlimit.h"
#include "http/httpc.h"
#include "keys/assertion.h"
#include "mssp/mssp.h"

#include "base/compat.h"

#define NS_SMS_PER_FIN "lim_regsms"
#define SMS_PER_FIN_WINDOW_MS (3600 * 1000ull)
#define SMS_TEXT_MAX 480

struct reg_op {
    struct dz_auth_password_ctx actx;
    char fin[DZ_FIN_LEN + 1];
    char document[DZ_DOC_MAX + 1];
    char ip[DZ_CLIENT_ADDR_MAX + 1];
    char code[DZ_REGCODE_DIGITS + 1]; /* the one sent with the request */
    bool has_code;
    bool high;                            /* way 3: a high session registers */
    char means[16];                       /* way 3: how that session signed in */
    char phone[DZ_REGCODE_PHONE_MAX + 1]; /* the code's: the first the registry lists */
    unsigned nphones;                     /* how many usable numbers it lists */
    bool document_matches;
    bool no_phone;                      /* way 1: the registry holds no mobile number */
    unsigned code_attempts;             /* sms.code_attempts of the request's generation */
    unsigned codes_per_fin;             /* sms.codes_per_fin */
    uint64_t code_ttl_ms;               /* sms.code_ttl_ms */
    char fin_raw[DZ_DOC_INPUT_MAX + 1]; /* as sent, for the validation */
    char doc_raw[DZ_DOC_INPUT_MAX + 1];
    struct dz_auth_register_input vin;
    bool over_limit;        /* send_code: sms.codes_per_fin used up */
    uint64_t retry_after_s; /* then: when the hour's window ends */
    char *password;
    size_t pw_len;
    struct dz_httpc_xfer *xfer;
    char *assertion;
    char body[128];
    struct dz_hdr hdrs[3];
    struct dz_assertion_in in;
    int rc;
    enum dz_regcode_verdict verdict;
    unsigned left;
    struct dz_auth_register_result res;
    char text[SMS_TEXT_MAX + 1];
};

static void reg_free(struct reg_op *op)
{
    if (!op)
        return;
    dz_auth_secret_drop(&op->password, op->pw_len);
    free(op->assertion);
    dz_auth_register_result_cleanup(&op->res);
    dz_secret_wipe(op, sizeof(*op));
    free(op);
}

static void reg_drop(void *arg)
{
    reg_free(arg);
}

static void reg_cancel(struct dz_rctx *c)
{
    struct reg_op *op = c->op;

    dz_gw_cancel_transfer(c, op ? &op->xfer : NULL, reg_drop);
}

static void utc_minute(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* ------------------------------------------------- the account is made */

static json_t *created_body(struct reg_op *op, bool notice_sent)
{
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:b}", "fin", op->fin, "totp", "secret",
                     op->res.secret_b32, "otpauth_uri", op->res.otpauth_uri, "qr_svg",
                     op->res.qr_svg, "notice_sent", notice_sent);
}

static void notice_sent(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;

    if (rc != 0)
        dz_rctx_logj(c, DZ_LOG_WARN, "register_notice",
                     json_pack("{s:s, s:s}", "msg", "the registration notice was not sent", "error",
                               dz_err_str(rc)));
    if (!c->closed)
        dz_rctx_json(c, 201, created_body(op, rc == 0), NULL, 0);
    reg_free(op);
}

/* The audit line of a creation is durable: now tell the person, then
 * answer.  The notice cannot be unsent, so it goes after the record. */
static void created_recorded(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;
    char when[32];

    if (c->closed) {
        reg_free(op);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        reg_free(op);
        return;
    }
    utc_minute(when, sizeof(when));
    snprintf(op->text, sizeof(op->text),
             "Darvaza: %s adınıza hesab yaradıldı. An account was registered in your name "
             "(FIN %s) on %s%s%s. If this was not you, sign in with your ID card or mobile "
             "signature and end its sessions, or call the help line.",
             when, op->fin, when, op->high ? " with " : "", op->high ? op->means : "");
    /* Every number the registry holds: whoever registered, the person
     * learns of it on each phone they have (the code went to one). */
    dz_sms_notify_also(c, op->fin, op->high ? NULL : op->phone, op->text, notice_sent, reg_drop,
                       op);
}

/* ------------------------------------------------------ refusals */

static void refusal_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;

    if (c->closed)
        goto out;
    if (rc != 0) {
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        goto out;
    }
    if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc); /* never a refusal that was not counted */
        goto out;
    }
    if (op->no_phone) {
        dz_rctx_problem(c, "no_registered_phone",
                        "register with an ID card or a mobile signature instead");
    } else if (op->has_code && op->verdict == DZ_REGCODE_EXPIRED) {
        dz_rctx_problem(c, "code_expired", "ask for a new code: send the request without it");
    } else if (op->has_code && op->verdict != DZ_REGCODE_OK) {
        dz_rctx_problem_x(c, "code_invalid",
                          op->left ? "the code is not right" : "ask for a new code",
                          json_pack("{s:i}", "attempts_left", (int)op->left));
    } else {
        dz_rctx_problem(c, "registration_refused",
                        "the FIN and document do not match a person who can register");
    }
out:
    reg_free(op);
}

static const char *verdict_name(enum dz_regcode_verdict v)
{
    switch (v) {
    case DZ_REGCODE_OK:
        return "code_ok";
    case DZ_REGCODE_WRONG:
        return "code_wrong";
    case DZ_REGCODE_EXPIRED:
        return "code_expired";
    default:
        return "code_none";
    }
}

/* After the blocking step of ways 1 (a refused document), 2 and 3. */
static void reg_done(struct dz_rctx *c, void *arg)
{
    struct reg_op *op = arg;
    bool ok = op->rc == 0 && op->res.decision == DZ_REG_CREATED;
    const char *reason = op->rc != 0                                    ? dz_err_str(op->rc)
                         : op->has_code && op->verdict != DZ_REGCODE_OK ? verdict_name(op->verdict)
                         : op->res.reason                               ? op->res.reason
                                                                        : "error";
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "register", "fin", op->fin,
                            "result", ok ? "ok" : "refused", "reason", reason, "means",
                            op->high       ? op->means
                            : op->has_code ? "document+sms"
                                           : "document");

    dz_metrics_login(c->gw->metrics, "register", ok ? "ok" : "refused");
    dz_gw_audit(c, rec, ok ? created_recorded : refusal_answer, op);
}

static void reg_create_work(void *arg)
{
    struct reg_op *op = arg;
    int64_t now = dz_unix_ms();

    if (op->has_code) {
        op->rc = dz_regcode_check(op->actx.store, op->fin, op->document, op->code, now,
                                  op->code_attempts, &op->verdict, op->phone, &op->left);
        dz_secret_wipe(op->code, sizeof(op->code));
        if (op->rc == 0 && op->verdict != DZ_REGCODE_OK) {
            op->rc = dz_auth_count_address_failure(&op->actx, op->ip, now);
            goto out;
        }
        if (op->rc != 0)
            goto out;
        op->document_matches = true;
    }
    /* A refused document (way 1) comes through here too, so that a refusal
     * and a creation take about the same time. */
    op->rc = dz_auth_register_create(&op->actx, op->fin, op->password, op->pw_len,
                                     op->document_matches, op->ip, now, &op->res);
out:
    dz_secret_wipe(op->password, op->pw_len);
}

/* ---------------------------------------- way 1: send the code */

static void code_answer(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;
    char masked[DZ_REGCODE_PHONE_MAX + 1];

    if (c->closed)
        goto out;
    if (rc != 0) {
        dz_rctx_problem(c, "service_unavailable", "audit log unavailable");
        goto out;
    }
    dz_regcode_mask(op->phone, masked);
    dz_rctx_problem_x(c, "code_required", "a code was sent by SMS to the phone the registry holds",
                      json_pack("{s:s, s:I, s:I}", "phone", masked, "expires_in",
                                (json_int_t)(c->gen->config->sms.code_ttl_ms / 1000), "phones_held",
                                (json_int_t)op->nphones));
out:
    reg_free(op);
}

static void code_sent(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;
    char masked[DZ_REGCODE_PHONE_MAX + 1];
    json_t *rec;

    dz_secret_wipe(op->text, sizeof(op->text));
    if (c->closed) {
        reg_free(op);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, rc == DZ_ERR_TIMEOUT ? "upstream_timeout" : "upstream_unavailable",
                        "the SMS gateway did not take the code; try again");
        reg_free(op);
        return;
    }
    dz_regcode_mask(op->phone, masked);
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "register", "fin", op->fin, "result",
                    "code_sent", "means", "document", "phone", masked);
    dz_gw_audit(c, rec, code_answer, op);
}

/* The document is the FIN's and the registry gave a number: a fresh code
 * goes there, at most sms.codes_per_fin an hour (a victim's phone must not
 * be flooded by someone holding a photocopy).  Store calls: off the loop. */
static void code_work(void *arg)
{
    struct reg_op *op = arg;
    char code[DZ_REGCODE_DIGITS + 1];
    int64_t n = 0;

    op->rc = dz_store_incr(op->actx.store, NS_SMS_PER_FIN, op->fin, DZ_FIN_LEN,
                           SMS_PER_FIN_WINDOW_MS, &n);
    if (op->rc != 0)
        return;
    if (n > (int64_t)op->codes_per_fin) {
        uint64_t left = 0;

        if (dz_store_ttl(op->actx.store, NS_SMS_PER_FIN, op->fin, DZ_FIN_LEN, &left) != 0)
            left = SMS_PER_FIN_WINDOW_MS;
        op->over_limit = true;
        op->retry_after_s = left / 1000 + 1;
        return;
    }
    op->rc = dz_regcode_issue(op->actx.store, op->fin, op->document, op->phone, dz_unix_ms(),
                              op->code_ttl_ms, code);
    if (op->rc != 0)
        return;
    snprintf(op->text, sizeof(op->text),
             "Darvaza: qeydiyyat kodu %s. Your registration code %s, valid %u min. "
             "Never tell it to anyone. If you did not ask for it, someone knows your ID "
             "card's numbers; no account is made without this code.",
             code, code, (unsigned)(op->code_ttl_ms / 60000));
    dz_secret_wipe(code, sizeof(code));
}

static void code_issued(struct dz_rctx *c, void *arg)
{
    struct reg_op *op = arg;
    char retry[24];

    if (c->closed) {
        reg_free(op);
        return;
    }
    if (op->rc != 0) {
        dz_rctx_state_unavailable(c, op->rc);
        reg_free(op);
        return;
    }
    if (op->over_limit) {
        snprintf(retry, sizeof(retry), "%llu", (unsigned long long)op->retry_after_s);
        dz_rctx_problem_h(c, "rate_limited", "too many codes for this person; wait",
                          &(struct dz_hdr){"retry-after", retry}, 1);
        reg_free(op);
        return;
    }
    dz_sms_send(c, op->phone, op->text, code_sent, reg_drop, op);
}

static void send_code(struct dz_rctx *c, struct reg_op *op)
{
    if (dz_gw_state(c, code_work, code_issued, op) != 0)
        reg_free(op);
}

static void reg_checked(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                        const unsigned char *body, size_t len)
{
    struct dz_rctx *c = arg;
    struct reg_op *op = c->op;
    json_t *j = NULL;
    const char *phone;

    op->xfer = NULL;
    c->op = NULL;
    c->cancel = NULL;
    if (result != 0) {
        dz_metrics_upstream_error(c->gw->metrics, "registry",
                                  result == DZ_ERR_TIMEOUT ? "timeout" : "unavailable");
        dz_rctx_problem(c, result == DZ_ERR_TIMEOUT ? "upstream_timeout" : "upstream_unavailable",
                        "the population registry did not answer");
        reg_free(op);
        goto out;
    }
    if (status != 200) {
        dz_rctx_logj(
            c, DZ_LOG_WARN, "registry_check",
            json_pack("{s:s, s:i}", "msg", "the registry refused the check", "up_status", status));
        dz_rctx_problem(c, "upstream_unavailable", "the population registry refused the check");
        reg_free(op);
        goto out;
    }
    j = json_loadb((const char *)body, len, 0, NULL);
    op->document_matches = json_is_true(json_object_get(j, "match"));
    /* The code goes to ONE number: the first usable one in the registry's
     * order (its primary number first).  The answer names it, masked, and
     * says how many the registry holds, so a person with two phones knows
     * which to look at. */
    phone = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "mobile")); i++) {
        const char *p = json_string_value(json_array_get(json_object_get(j, "mobile"), i));
        if (!p || !dz_mssp_az_phone_valid(p) || strlen(p) > DZ_REGCODE_PHONE_MAX)
            continue;
        if (!phone)
            phone = p;
        op->nphones++;
    }
    if (!op->document_matches) {
        if (dz_gw_blocking(c, reg_create_work, reg_done, op) != 0)
            reg_free(op);
        goto out;
    }
    if (!phone) {
        op->no_phone = true;
        dz_gw_audit(c,
                    json_pack("{s:s, s:s, s:s, s:s}", "type", "register", "fin", op->fin, "result",
                              "refused", "reason", "no_registered_phone"),
                    refusal_answer, op);
        goto out;
    }
    snprintf(op->phone, sizeof(op->phone), "%s", phone);
    send_code(c, op);
out:
    json_decref(j);
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

/* Way 1: ask the registry (the answer goes on in reg_checked). */
static void ask_registry(struct dz_rctx *c, struct reg_op *op)
{
    json_t *jb = json_pack("{s:s, s:s}", "fin", op->fin, "document", op->document);
    char *text = jb ? json_dumps(jb, JSON_COMPACT) : NULL;

    json_decref(jb);
    if (!text || strlen(text) >= sizeof(op->body)) {
        free(text);
        dz_rctx_problem(c, "service_unavailable", NULL);
        reg_free(op);
        return;
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
}

/* ------------------------------------------------------------ entry */

/* Way 3: {"password"} (in op) and a high session. */
static void high_authed(struct dz_rctx *c, int rc, void *arg)
{
    struct reg_op *op = arg;
    const char *reason = NULL;

    if (c->closed) {
        reg_free(op);
        return;
    }
    if (rc != 0) {
        dz_rctx_problem(c, "invalid_request",
                        "fin, document and password are required strings (or sign in with a "
                        "card or mobile signature and send only the password)");
        reg_free(op);
        return;
    }
    /* Checked again now that the session is known: the entry's check ran
     * before it, when a cookie-authenticated request still looked like an
     * anonymous one and passed without an Origin (docs/api.md: a request
     * authenticated by the cookie must carry one). */
    if (!dz_rctx_origin_ok(c)) {
        reg_free(op);
        return;
    }
    if (strcmp(c->session.acr, "high") != 0) {
        dz_rctx_problem(c, "insufficient_assurance",
                        "registration without a document needs a card or mobile signature");
        reg_free(op);
        return;
    }
    memcpy(op->fin, c->session.fin, sizeof(op->fin));
    snprintf(op->means, sizeof(op->means), "%s", c->session.method);
    if (!dz_auth_password_rules_ok(&op->actx, op->password, op->pw_len, op->fin, NULL, &reason)) {
        dz_rctx_problem(c, "weak_password", reason);
        reg_free(op);
        return;
    }
    op->high = true;
    op->document_matches = true; /* the high means proved the person */
    if (dz_gw_blocking(c, reg_create_work, reg_done, op) != 0)
        reg_free(op);
}

static bool validation_answered(struct dz_rctx *c, const struct dz_auth_register_input *vin)
{
    char retry[24];

    switch (vin->decision) {
    case DZ_REG_VALID:
        return false;
    case DZ_REG_INVALID_FIN:
        dz_rctx_problem(c, "invalid_fin", NULL);
        break;
    case DZ_REG_INVALID_DOCUMENT:
        dz_rctx_problem(c, "invalid_document", NULL);
        break;
    case DZ_REG_WEAK_PASSWORD:
        dz_rctx_problem(c, "weak_password", vin->reason);
        break;
    case DZ_REG_LOCKED:
        snprintf(retry, sizeof(retry), "%u", vin->retry_after ? vin->retry_after : 1);
        dz_rctx_problem_h(c, "locked", NULL, &(struct dz_hdr){"retry-after", retry}, 1);
        break;
    default:
        dz_rctx_problem(c, "registration_refused", NULL);
        break;
    }
    return true;
}

/* Ways 1 and 2 after the syntax, policy and address-lock checks (made off
 * the loop: the lock is in the store). */
static void validated(struct dz_rctx *c, void *arg)
{
    struct reg_op *op = arg;

    if (c->closed)
        goto out;
    if (op->rc != 0) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        goto out;
    }
    if (validation_answered(c, &op->vin))
        goto out;
    if (!c->gen->config->sms.url) {
        /* No way to reach the person's phone: FIN and document alone
         * prove nothing (they are printed on the card). */
        dz_rctx_problem(c, "registration_refused",
                        "register with an ID card or a mobile signature");
        goto out;
    }
    memcpy(op->fin, op->vin.fin, sizeof(op->fin));
    snprintf(op->document, sizeof(op->document), "%s", op->vin.document);
    if (op->has_code) {
        if (dz_gw_blocking(c, reg_create_work, reg_done, op) == 0)
            op = NULL;
        goto out;
    }
    ask_registry(c, op);
    op = NULL;
out:
    reg_free(op);
}

static void validate_work(void *arg)
{
    struct reg_op *op = arg;

    op->rc = dz_auth_register_validate(&op->actx, op->fin_raw, op->doc_raw, op->password,
                                       op->pw_len, op->ip, dz_unix_ms(), &op->vin);
}

static void reg_begin(struct dz_rctx *c, json_t *body)
{
    struct reg_op *op = NULL;
    const char *fin, *document, *password;
    const json_t *jcode;
    json_t *jb;

    fin = dz_json_str(body, "fin", 64);
    document = dz_json_str(body, "document", 64);
    /* Any length is taken here (the body is bounded): a password over
     * DZ_PASSWORD_MAX is a weak_password for the validation below to say,
     * not a malformed request. */
    jb = json_object_get(body, "password");
    password = json_is_string(jb) ? json_string_value(jb) : NULL;
    jcode = json_object_get(body, "code");
    if (!password || (jcode && !json_is_string(jcode)) ||
        (!(fin && document) &&
         (json_object_get(body, "fin") || json_object_get(body, "document") || jcode))) {
        dz_rctx_problem(c, "invalid_request", "fin, document and password are required strings");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    dz_auth_fill_pwd_ctx(c, &op->actx);
    op->code_attempts = c->gen->config->sms.code_attempts;
    op->codes_per_fin = c->gen->config->sms.codes_per_fin;
    op->code_ttl_ms = c->gen->config->sms.code_ttl_ms;
    snprintf(op->ip, sizeof(op->ip), "%s", dz_req_peer_ip(c->req));
    op->pw_len = strlen(password);
    op->password = dz_auth_secret_dup(password, op->pw_len);
    if (!op->password) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        reg_free(op);
        return;
    }
    if (!fin && !document) {
        dz_rctx_authenticate_async(c, high_authed, op);
        return;
    }
    snprintf(op->fin_raw, sizeof(op->fin_raw), "%s", fin);
    snprintf(op->doc_raw, sizeof(op->doc_raw), "%s", document);
    if (jcode) {
        /* A malformed code is just a wrong code: same answer, same count
         * (a longer one is never cut down to a right one). */
        if (json_string_length(jcode) == DZ_REGCODE_DIGITS)
            memcpy(op->code, json_string_value(jcode), DZ_REGCODE_DIGITS + 1);
        op->has_code = true;
    }
    if (dz_gw_state(c, validate_work, validated, op) != 0)
        reg_free(op);
}

static void reg_started(struct dz_rctx *c, bool ok, void *arg)
{
    json_t *body = arg;

    if (ok && !c->closed)
        reg_begin(c, body);
    dz_auth_body_drop(body);
}

void dz_ep_register(struct dz_rctx *c)
{
    json_t *body = NULL;
    struct dz_start_limit limit;

    if (!dz_rctx_origin_ok(c) || dz_rctx_body_json(c, &body) != 0)
        return;
    /* A start is what costs: a registry check and an SMS.  Finishing with
     * a code starts nothing (its wrong tries are counted as failures). */
    if (json_object_get(body, "code")) {
        reg_begin(c, body);
        dz_auth_body_drop(body);
        return;
    }
    limit = dz_start_limit_of(c, "register");
    dz_start_check(c, &limit, 1, reg_started, body);
}
