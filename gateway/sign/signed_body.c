/*
 * signed_body.c - the require_signed_body step of the forwarder (see
 * signed_body.h): read the envelope, verify the CAdES signature on the pool
 * (chain, revocation: it may fetch), require the signer to be the session's
 * person, remove the unsigned attributes nobody vouches for (all but a
 * client's time-stamp that checks as ours would), time-stamp the signature
 * at the TSA (level T) unless that one stayed, build the
 * envelope that is forwarded and, for a document about another person, the
 * onward assertion for the registry.  Every refusal is audited before it is
 * answered, and nothing is forwarded unless every step passed: a TSA that
 * is down is 503 timestamp_unavailable, never a level-B forward.  It never
 * changes the document bytes and never forwards anything itself.
 */
#include "sign/signed_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/gwasync.h"
#include "core/problem.h"
#include "pki/tsp.h"

#include "base/compat.h"

enum outcome {
    OUT_OK,
    OUT_REJECTED,
    OUT_MISMATCH,
    OUT_ROLE_MISMATCH,
    OUT_MALFORMED,
    OUT_TSA,
    OUT_INTERNAL
};

struct sb_op {
    dz_signed_body_cb cb;
    void *arg;
    /* input */
    /* The document goes on in the client's own base64 text (held by env),
     * never decoded and re-encoded, so the bytes forwarded are the bytes
     * that were signed. */
    const char *doc_b64; /* into env */
    json_t *env;
    unsigned char *doc;
    size_t doc_len;
    unsigned char *sig;
    size_t sig_len;
    char party[8];
    const char *purpose;
    /* A copy: work() runs on a pool thread and must not read c->session,
     * which belongs to the loop. */
    char session_fin[8];
    /* The role the route requires of the session ("judge"), or "": the
     * signature must be made in that role too. */
    char role[33]; /* policy_load.c: a role name is at most 32 characters */
    struct dz_cades_verify_opts opts;
    const char *tsa_url;
    const char *tsa_ca;
    uint32_t tsa_timeout_ms;
    /* output of the pool step */
    enum outcome outcome;
    struct dz_cades_report rep;
    char detail[192];
    unsigned char *sig_t;
    size_t sig_t_len;
    bool stamped;
    /* the onward assertion */
    struct dz_assertion_in in;
    char htu[64];
    char sid[48];
    struct dz_signed_body *sb;
};

void dz_signed_body_free(struct dz_signed_body *sb)
{
    if (!sb)
        return;
    free(sb->body);
    free(sb->onward);
    free(sb);
}

void dz_documents_opts(struct dz_rctx *c, struct dz_cades_verify_opts *o)
{
    const struct dz_config *cf = c->gen->config;
    enum dz_config_revocation rev = cf->cards.revocation;

    memset(o, 0, sizeof(*o));
    if (c->gen->card_trust) {
        o->anchors[o->nanchors].trust = c->gen->card_trust;
        o->anchors[o->nanchors++].policy = cf->cards.policy;
    }
    if (c->gen->mobile_trust) {
        o->anchors[o->nanchors].trust = c->gen->mobile_trust;
        o->anchors[o->nanchors++].policy = cf->mobile.policy;
    }
    o->revocation = rev == DZ_CONFIG_REV_NONE  ? DZ_X509_REV_NONE
                    : rev == DZ_CONFIG_REV_CRL ? DZ_X509_REV_CRL_ONLY
                                               : DZ_X509_REV_OCSP_CRL;
    o->fetch_timeout_ms = (uint32_t)cf->cards.fetch_timeout_ms;
    o->ocsp_cache = c->gw->ocsp_cache;
    o->tsa_trust = c->gen->tsa_trust;
}

static void op_free(struct sb_op *op)
{
    if (!op)
        return;
    json_decref(op->env);
    free(op->doc);
    free(op->sig);
    OPENSSL_free(op->sig_t);
    dz_signed_body_free(op->sb);
    free(op);
}

/* Pool thread: everything that may block (OCSP/CRL fetches, the TSA). */
static void work(void *arg)
{
    struct sb_op *op = arg;
    unsigned char digest[32];
    unsigned char *tok = NULL;
    size_t tok_len = 0;
    struct dz_tsp_info info;
    struct dz_httpc_tls tls = {op->tsa_ca, NULL, NULL};
    bool https = strncmp(op->tsa_url, "https:", 6) == 0;
    unsigned char *clean = NULL;
    size_t clean_len = 0;
    bool kept_ts = false;
    unsigned removed = 0;
    int rc;

    op->outcome = OUT_INTERNAL;
    rc = dz_cades_verify(op->doc, op->doc_len, op->sig, op->sig_len, &op->opts, &op->rep);
    if (rc == DZ_ERR_PARSE || rc == DZ_ERR_TOOBIG) {
        op->outcome = OUT_MALFORMED;
        return;
    }
    if (rc)
        return;
    if (strcmp(op->rep.indication, "TOTAL_PASSED") != 0) {
        op->outcome = OUT_REJECTED;
        return;
    }
    /* Only the logged-in person's own signature is accepted: a valid
     * signature by someone else is not their document. */
    if (!op->rep.fin[0] || strcmp(op->rep.fin, op->session_fin) != 0) {
        op->outcome = OUT_MISMATCH;
        return;
    }
    /* On a route for a role (a judge's), the session's role came from the
     * login certificate; the signature must carry it as well.  The same
     * person's citizen card signs as a private person: that is not the
     * judge's act, however valid the signature. */
    if (op->role[0] && strcmp(op->rep.role, op->role) != 0) {
        op->outcome = OUT_ROLE_MISMATCH;
        return;
    }
    /* What goes on is only what was checked: the unsigned attributes are
     * outside the signer's signature, so they are removed, but for a
     * client's own time-stamp that checks as ours would (trusted TSA,
     * policy, imprint over this signature value, genTime within the skew
     * of now).  A stale one would be a proof of existence the gateway
     * never saw made: it is replaced by ours. */
    rc = dz_cades_clean_unsigned(op->sig, op->sig_len, op->opts.tsa_trust, (int64_t)time(NULL),
                                 &clean, &clean_len, &kept_ts, &removed);
    if (rc)
        return;
    free(op->sig);
    op->sig = malloc(clean_len); /* op->sig is free()d, clean OPENSSL_free()d */
    if (op->sig)
        memcpy(op->sig, clean, clean_len);
    OPENSSL_free(clean);
    if (!op->sig)
        return;
    op->sig_len = clean_len;
    if (op->rep.level == 'T' && !kept_ts) {
        /* The verdict leant on the dropped time-stamp (a certificate
         * revoked after it passes as proof of existence): judged again
         * without it. */
        rc = dz_cades_verify(op->doc, op->doc_len, op->sig, op->sig_len, &op->opts, &op->rep);
        if (rc)
            return;
        if (strcmp(op->rep.indication, "TOTAL_PASSED") != 0) {
            op->outcome = OUT_REJECTED;
            return;
        }
    }
    if (kept_ts) {
        op->sig_t = OPENSSL_memdup(op->sig, op->sig_len);
        op->sig_t_len = op->sig_len;
        op->outcome = op->sig_t ? OUT_OK : OUT_INTERNAL;
        return;
    }
    /* The TSA stamps a digest of the signature value, not of the document
     * (the CAdES signature-time-stamp, level T): it proves the signature
     * existed at that time, and the TSA never sees the document. */
    if (dz_cades_signature_digest(op->sig, op->sig_len, digest) != 0)
        return;
    rc = dz_tsp_stamp(op->tsa_url, https ? &tls : NULL, https ? DZ_HTTPC_H2 : DZ_HTTPC_H2C,
                      op->tsa_timeout_ms, op->opts.tsa_trust, digest, &tok, &tok_len, &info,
                      op->detail, sizeof(op->detail));
    if (rc) {
        op->outcome = OUT_TSA;
        return;
    }
    rc = dz_cades_add_timestamp(op->sig, op->sig_len, tok, tok_len, &op->sig_t, &op->sig_t_len);
    OPENSSL_free(tok);
    if (rc)
        return;
    op->stamped = true;
    op->rep.timestamp_time = info.gen_time;
    op->outcome = OUT_OK;
}

struct refusal {
    const char *code;
    char detail[256];
};

static void refused_then(struct dz_rctx *c, int rc, void *arg)
{
    struct refusal *r = arg;

    /* If the audit line could not be written the client gets 503: the
     * refusal stands either way, but a verdict that was never recorded is
     * not announced as if it had been. */
    if (!c->closed)
        dz_rctx_problem(c, rc == 0 ? r->code : "service_unavailable", r->detail);
    free(r);
}

/* Audit the refusal, then answer it; the forwarder's callback gets NULL. */
static void refuse(struct dz_rctx *c, struct sb_op *op, const char *code, const char *detail)
{
    struct refusal *r = calloc(1, sizeof(*r));
    json_t *rec;

    dz_rctx_logj(c, DZ_LOG_INFO, "signed_body_refused",
                 json_pack("{s:s, s:s}", "code", code, "detail", detail ? detail : ""));
    if (!r) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    r->code = code;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "signed_body", "decision", "deny",
                    "reason", code, "route", c->route ? c->route : "", "fin",
                    c->has_session ? c->session.fin : "", "status", dz_problem_status(code));
    if (rec && op && op->rep.has_signer) {
        json_object_set_new(rec, "signer_fin", json_string(op->rep.fin));
        json_object_set_new(rec, "indication", json_string(op->rep.indication));
        if (op->rep.sub_indication)
            json_object_set_new(rec, "sub_indication", json_string(op->rep.sub_indication));
    }
    dz_gw_audit(c, rec, refused_then, r);
}

static void deliver(struct dz_rctx *c, struct sb_op *op)
{
    struct dz_signed_body *sb = op->sb;
    dz_signed_body_cb cb = op->cb;
    void *arg = op->arg;

    /* op is freed before cb runs: cb may end the request, after which
     * nothing of it may be left to clean up. */
    op->sb = NULL;
    op_free(op);
    cb(c, sb, arg);
}

static void onward_signed(struct dz_rctx *c, int rc, char *token, void *arg)
{
    struct sb_op *op = arg;

    if (c->closed) {
        free(token);
        op->cb(c, NULL, op->arg);
        op_free(op);
        return;
    }
    if (rc != 0) {
        free(token);
        dz_rctx_logj(
            c, DZ_LOG_ERROR, "assertion_sign",
            json_pack("{s:s, s:s}", "msg", "onward assertion not signed", "error", dz_err_str(rc)));
        dz_rctx_problem(c, "service_unavailable", "could not sign the onward assertion");
        op->cb(c, NULL, op->arg);
        op_free(op);
        return;
    }
    op->sb->onward = token;
    deliver(c, op);
}

/*
 * The onward assertion lends the back end the signer's own authority for
 * one registry read, which the registry then serves whole (it trusts the
 * gateway's signature, not the registry policy's release list).  So it is
 * made only when the signer, as signed in, would be let through that very
 * request at the gateway: the registry policy's route for op->htu (means,
 * acr, role, purpose).  A require_signed_body route open to anyone must
 * not let its back end read any person's record.
 */
static bool onward_allowed(struct dz_rctx *c, const struct sb_op *op)
{
    struct dz_policy_match m;
    struct dz_policy_subject subj;
    enum dz_decision d = DZ_DENY;
    const char *code = NULL, *rule = NULL;

    if (dz_policy_match(c->gen->policies, "GET", op->htu, &m) != 0 || m.status != DZ_MATCH_FOUND ||
        strcmp(m.service->name, DZ_DOCUMENTS_ONWARD_SERVICE) != 0)
        return false;
    memset(&subj, 0, sizeof(subj));
    subj.fin = c->session.fin;
    if (dz_policy_acr_parse(c->session.acr, &subj.acr) != 0)
        subj.acr = DZ_ACR_NONE;
    subj.amr = c->session.amr;
    subj.role = c->session.role[0] ? c->session.role : NULL;
    return dz_policy_eval(m.route, &subj, op->purpose, m.fin[0] ? m.fin : NULL, &d, &code, &rule) ==
               0 &&
           d == DZ_ALLOW;
}

static void done(struct dz_rctx *c, void *arg)
{
    struct sb_op *op = arg;
    char detail[256];
    char *b64 = NULL;
    char *text = NULL;
    json_t *out = NULL;

    if (c->closed) {
        op->cb(c, NULL, op->arg);
        op_free(op);
        return;
    }
    switch (op->outcome) {
    case OUT_OK:
        break;
    case OUT_MALFORMED:
        refuse(c, op, "malformed_signature", "the signature is not a CMS SignedData");
        goto refused;
    case OUT_REJECTED:
        snprintf(detail, sizeof(detail), "the signature is %s (%s)", op->rep.indication,
                 op->rep.sub_indication ? op->rep.sub_indication : "");
        refuse(c, op, "signature_rejected", detail);
        goto refused;
    case OUT_MISMATCH:
        refuse(c, op, "signer_mismatch", "the document is not signed by the person signed in");
        goto refused;
    case OUT_ROLE_MISMATCH:
        snprintf(detail, sizeof(detail),
                 "the signing certificate does not carry the role %s this route requires",
                 op->role);
        refuse(c, op, "signer_mismatch", detail);
        goto refused;
    case OUT_TSA:
        refuse(c, op, "timestamp_unavailable", op->detail[0] ? op->detail : NULL);
        goto refused;
    default:
        refuse(c, op, "service_unavailable", "could not verify the signature");
        goto refused;
    }
    op->sb = calloc(1, sizeof(*op->sb));
    if (!op->sb || dz_b64_encode(op->sig_t, op->sig_t_len, false, &b64) != 0)
        goto internal;
    out = json_pack("{s:s, s:s}", "document", op->doc_b64, "signature", b64);
    if (out && op->party[0])
        json_object_set_new(out, "party", json_string(op->party));
    text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (!text)
        goto internal;
    op->sb->body = (unsigned char *)text;
    op->sb->body_len = strlen(text);
    text = NULL;
    memcpy(op->sb->fin, op->rep.fin, sizeof(op->sb->fin));
    json_decref(out);
    free(b64);
    if (op->party[0])
        snprintf(op->htu, sizeof(op->htu), "/api/registry/persons/%s", op->party);
    if (op->party[0] && op->purpose && onward_allowed(c, op)) {
        /* The registry lookup the back end will make for this document:
         * narrowed to this party, this purpose, one GET, 60 s at most. */
        dz_b64_encode_to(c->session.sid, sizeof(c->session.sid), true, op->sid);
        /* The strings below point into op and c; both live until onward_signed
         * runs (gwasync.h: they must stay valid until then). */
        op->in.iss = c->gen->config->gateway.id;
        op->in.sub = c->session.fin;
        op->in.aud = DZ_DOCUMENTS_ONWARD_SERVICE;
        op->in.sid_b64 = op->sid;
        op->in.acr = c->session.acr;
        op->in.amr = c->session.amr;
        op->in.iat = dz_unix_ms() / 1000;
        op->in.auth_time = c->session.auth_time;
        op->in.ttl_s = (int)(c->gen->config->signing.assertion_ttl_ms / 1000);
        op->in.prf = c->session.has_prf ? c->session.prf : NULL;
        op->in.htm = "GET";
        op->in.htu = op->htu;
        op->in.tgt = op->party;
        op->in.pur = op->purpose;
        dz_gw_sign(c, &op->in, onward_signed, op);
        return;
    }
    deliver(c, op);
    return;
internal:
    free(b64);
    json_decref(out);
    dz_rctx_problem(c, "service_unavailable", NULL);
refused:
    op->cb(c, NULL, op->arg);
    op_free(op);
}

void dz_signed_body_start(struct dz_rctx *c, const struct dz_policy_route *r, const char *purpose,
                          const unsigned char *body, size_t len, dz_signed_body_cb cb, void *arg)
{
    const struct dz_config_documents *dc = &c->gen->config->documents;
    struct sb_op *op = calloc(1, sizeof(*op));
    const char *sig_b64, *party;
    json_error_t jerr;

    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        cb(c, NULL, arg);
        return;
    }
    op->cb = cb;
    op->arg = arg;
    if (!c->has_session) {
        /* The policy engine refuses routes without a session first; this
         * is the second fence. */
        dz_rctx_problem(c, "unauthenticated", NULL);
        goto fail;
    }
    /* Duplicates refused: a body with two "document" members has no one
     * meaning, and what we verify must be what the sender meant. */
    op->env =
        body && len ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    /* Bounded by the base64 length of the largest document or signature the
     * verifier accepts, so nothing larger is even decoded. */
    op->doc_b64 = op->env ? dz_json_str(op->env, "document", DZ_CADES_MAX_DOC / 3 * 4 + 4) : NULL;
    sig_b64 = op->env ? dz_json_str(op->env, "signature", DZ_CADES_MAX_SIG / 3 * 4 + 4) : NULL;
    if (!json_is_object(op->env) || !op->doc_b64 || !sig_b64) {
        refuse(c, NULL, "signed_body_required",
               "the body must be {\"document\":base64,\"signature\":base64 CAdES}");
        goto fail;
    }
    party = json_object_get(op->env, "party") ? dz_json_str(op->env, "party", 16) : NULL;
    if (json_object_get(op->env, "party") &&
        (!party || dz_fin_normalize(party, strlen(party), op->party) != 0)) {
        refuse(c, NULL, "invalid_fin", "party must be a FIN");
        goto fail;
    }
    if (dz_b64_decode(op->doc_b64, strlen(op->doc_b64), false, &op->doc, &op->doc_len) != 0 ||
        dz_b64_decode(sig_b64, strlen(sig_b64), false, &op->sig, &op->sig_len) != 0) {
        refuse(c, NULL, "signed_body_required", "document and signature must be base64");
        goto fail;
    }
    /* Checked before the pool: without a TSA the outcome is known, and
     * forwarding at level B is never an option (file comment). */
    if (!dc->tsa_url || !c->gen->tsa_trust) {
        refuse(c, NULL, "timestamp_unavailable", "no time-stamping authority is configured");
        goto fail;
    }
    op->purpose = purpose && purpose[0] ? purpose : NULL;
    memcpy(op->session_fin, c->session.fin, sizeof(op->session_fin));
    if (r && r->role)
        snprintf(op->role, sizeof(op->role), "%s", r->role);
    dz_documents_opts(c, &op->opts);
    op->tsa_url = dc->tsa_url;
    op->tsa_ca = dc->tsa_ca;
    op->tsa_timeout_ms = (uint32_t)dc->tsa_timeout_ms;
    if (dz_gw_blocking(c, work, done, op) != 0)
        goto fail; /* answered 503 */
    return;
fail:
    cb(c, NULL, arg);
    op_free(op);
}
