/*
 * court.c - `darvaza-peer court`: the e-court stand-in (DESIGN §5).
 *
 *   POST /api/court/notices  {"document","signature","party"} (the envelope
 *        of gateway/sign/signed_body.h, forwarded by the gateway after its
 *        require_signed_body step).  The court trusts nothing it has not
 *        checked itself: the Darvaza-Assertion (peer_auth.c), then the CAdES
 *        signature again with lib/cades (level T required, chain to the
 *        e-signature or mobile-signature CA, nonRepudiation, revocation, the
 *        time-stamp by a TSA it trusts), the signer's FIN equal to the
 *        assertion's sub, the signer's certificate carrying the judge role,
 *        and the document ({"case","party",...}) naming the same party and,
 *        when the assertion has a purpose, the same case.  It then asks the
 *        population registry for the party's phones with the gateway's
 *        Darvaza-Onward-Assertion (aud registry, tgt the party, pur the case:
 *        the registry still trusts only the gateway's signature) over mutual
 *        TLS, and stores the notice with one outbox row per phone in one
 *        transaction.  Any failure stores nothing; a notice whose signature
 *        value was filed before (a photocopy, re-stamped or not) is 409
 *        already_filed.
 *   GET /api/court/my-notices  the assertion's subject's notices, each with
 *        its document, level-T signature and the court's report.
 *
 * Every blocking step (verification with OCSP, the registry, SQLite) runs
 * on the pool; one loop thread (peer.h).  It never logs documents.
 */
#include "peer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/parse.h"
#include "court_db.h"
#include "http/httpc.h"
#include "http/pool.h"
#include "http/tls.h"
#include "peer_auth.h"
#include "pki/cades.h"
#include "pki/certid.h"
#include "pki/tsp.h"
#include "pki/x509check.h"

#include "base/compat.h"

#define COURT_BODY_MAX (2 * 1024 * 1024)
#define ONWARD_HEADER "darvaza-onward-assertion"
#define REGISTRY_ANSWER_MAX (64 * 1024)
#define MAX_PHONES 4

struct court {
    struct dz_courtdb *db;
    struct dz_pool *pool;
    struct dz_peer_auth *auth;
    struct dz_x509_trust *card_trust;
    struct dz_x509_trust *mobile_trust;
    X509_STORE *tsa_trust;
    enum dz_x509_revocation revocation;
    const char *registry_url;
    struct dz_httpc_tls registry_tls;
};

#define NOTICES_PREFIX "/api/court/notices/"

struct op {
    struct court *app;
    struct dz_req *r; /* referenced */
    json_t *claims;   /* referenced */
    bool is_list;
    bool is_filed;   /* GET /api/court/filed: the judge's own notices */
    int64_t read_id; /* > 0: POST /api/court/notices/{id}/read */
    char sub[8];
    char pur[DZ_FIN_LEN + 130];
    char party[8];
    char *onward;
    unsigned char *doc;
    size_t doc_len;
    unsigned char *sig;
    size_t sig_len;
    /* answer */
    int status;
    const char *code;
    char detail[256];
    json_t *answer;
};

static void op_free(struct op *op)
{
    if (!op)
        return;
    json_decref(op->claims);
    json_decref(op->answer);
    if (op->r)
        dz_req_unref(op->r);
    free(op->onward);
    free(op->doc);
    free(op->sig);
    free(op);
}

static void answer_problem(struct dz_req *r, const json_t *claims, int status, const char *code,
                           const char *detail)
{
    dz_peer_log_request(r, claims, code, status);
    dz_log(DZ_LOG_INFO, "court_request", "%s %s -> %d %s", dz_req_method(r), dz_req_path(r), status,
           code);
    dz_peer_problem(r, status, code, detail, NULL);
}

static const char *claim_str(const json_t *claims, const char *name)
{
    const char *s = json_string_value(json_object_get(claims, name));

    return s ? s : "";
}

static void refuse(struct op *op, int status, const char *code, const char *detail)
{
    op->status = status;
    op->code = code;
    if (detail != op->detail)
        snprintf(op->detail, sizeof(op->detail), "%s", detail);
}

/* Pool: the party's phones from the registry, with the onward assertion. */
static int registry_phones(struct op *op, char phones[MAX_PHONES][16], size_t *n)
{
    char url[512];
    struct dz_hdr h[2] = {{"darvaza-assertion", op->onward}, {"accept", "application/json"}};
    struct dz_httpc_request rq;
    struct dz_buf body;
    json_t *j = NULL, *arr;
    int status = 0;
    int rc;

    *n = 0;
    snprintf(url, sizeof(url), "%s/api/registry/persons/%s", op->app->registry_url, op->party);
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = url;
    rq.headers = h;
    rq.nheaders = 2;
    rq.version = DZ_HTTPC_H2;
    rq.timeout_ms = 5000;
    rq.tls = strncmp(url, "https:", 6) == 0 ? &op->app->registry_tls : NULL;
    rq.max_response_bytes = REGISTRY_ANSWER_MAX;
    dz_buf_init(&body, REGISTRY_ANSWER_MAX);
    rc = dz_http_fetch_blocking(&rq, &status, &body);
    if (rc == 0 && status == 404) {
        /* The registry has no such person: nothing to deliver to. */
        snprintf(op->detail, sizeof(op->detail), "no person with this FIN in the registry");
        rc = DZ_ERR_NOTFOUND;
    } else if (rc == 0 && status != 200) {
        snprintf(op->detail, sizeof(op->detail), "the registry answered %d", status);
        rc = DZ_ERR_DENIED;
    } else if (rc) {
        snprintf(op->detail, sizeof(op->detail), "the registry cannot be reached: %s",
                 dz_err_str(rc));
    }
    if (rc == 0) {
        j = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
        arr = json_object_get(j, "phones");
        if (!json_is_array(arr) || strcmp(claim_str(j, "fin"), op->party) != 0) {
            snprintf(op->detail, sizeof(op->detail), "the registry's answer is not a record");
            rc = DZ_ERR_PARSE;
        }
        for (size_t i = 0; rc == 0 && i < json_array_size(arr) && *n < MAX_PHONES; i++) {
            const char *p = json_string_value(json_array_get(arr, i));
            if (p && strlen(p) < 16)
                snprintf(phones[(*n)++], 16, "%s", p);
        }
    }
    json_decref(j);
    dz_buf_cleanup(&body);
    return rc;
}

static void notice_work(void *arg)
{
    struct op *op = arg;
    struct court *app = op->app;
    struct dz_cades_verify_opts o;
    struct dz_cades_report rep;
    json_t *doc = NULL, *report = NULL;
    const char *case_no, *party;
    char phones[MAX_PHONES][16];
    const char *pp[MAX_PHONES];
    size_t nphones = 0;
    char *report_text = NULL;
    struct dz_court_notice n;
    unsigned char sv_sha256[32];
    int64_t id = 0;
    int rc;

    memset(&o, 0, sizeof(o));
    o.anchors[o.nanchors].trust = app->card_trust;
    o.anchors[o.nanchors++].policy = DZ_CERTID_POLICY_CARD;
    if (app->mobile_trust) {
        o.anchors[o.nanchors].trust = app->mobile_trust;
        o.anchors[o.nanchors++].policy = DZ_CERTID_POLICY_MOBILE;
    }
    o.revocation = app->revocation;
    o.tsa_trust = app->tsa_trust;
    o.require_t = true;
    rc = dz_cades_verify(op->doc, op->doc_len, op->sig, op->sig_len, &o, &rep);
    if (rc == DZ_ERR_PARSE || rc == DZ_ERR_TOOBIG) {
        refuse(op, 400, "malformed_signature", "the signature is not a CMS SignedData");
        goto out;
    }
    if (rc || !(report = dz_cades_report_json(&rep))) {
        refuse(op, 500, "internal_error", "cannot verify the signature");
        goto out;
    }
    if (strcmp(rep.indication, "TOTAL_PASSED") != 0 || rep.level != 'T') {
        char d[160];
        snprintf(d, sizeof(d), "the signature is %s (%s)", rep.indication,
                 rep.sub_indication ? rep.sub_indication : "level B: no time-stamp");
        refuse(op, 403, "signature_rejected", d);
        goto out;
    }
    if (strcmp(rep.fin, op->sub) != 0) {
        refuse(op, 403, "signer_mismatch", "the signer is not the assertion's subject");
        goto out;
    }
    if (strcmp(rep.role, "judge") != 0) {
        refuse(op, 403, "not_a_judge", "the signer's certificate carries no judge role");
        goto out;
    }
    doc = json_loadb((const char *)op->doc, op->doc_len, JSON_REJECT_DUPLICATES, NULL);
    case_no = json_string_value(json_object_get(doc, "case"));
    party = json_string_value(json_object_get(doc, "party"));
    if (!json_is_object(doc) || !case_no || !case_no[0] || strlen(case_no) > 128 || !party) {
        refuse(op, 400, "invalid_notice", "the document must be {\"case\",\"party\",...}");
        goto out;
    }
    if (strcmp(party, op->party) != 0) {
        refuse(op, 403, "party_mismatch", "the signed notice names another party");
        goto out;
    }
    if (op->pur[0] && strcmp(case_no, op->pur) != 0) {
        refuse(op, 403, "purpose_mismatch", "the signed notice is for another case");
        goto out;
    }
    if (!op->onward) {
        refuse(op, 403, "onward_assertion_required",
               "the party's contact data needs the gateway's onward assertion");
        goto out;
    }
    rc = registry_phones(op, phones, &nphones);
    if (rc == DZ_ERR_NOTFOUND) {
        refuse(op, 404, "unknown_party", op->detail);
        goto out;
    }
    if (rc != 0) {
        refuse(op, 502, "registry_unavailable", op->detail);
        goto out;
    }
    for (size_t i = 0; i < nphones; i++)
        pp[i] = phones[i];
    report_text = json_dumps(report, JSON_COMPACT);
    n.judge_fin = op->sub;
    n.party_fin = op->party;
    n.case_no = case_no;
    n.document = op->doc;
    n.document_len = op->doc_len;
    n.signature = op->sig;
    n.signature_len = op->sig_len;
    n.report_json = report_text ? report_text : "{}";
    if (dz_cades_signature_digest(op->sig, op->sig_len, sv_sha256) != 0) {
        refuse(op, 500, "internal_error", "cannot read the signature value");
        goto out;
    }
    n.signature_value_sha256 = sv_sha256;
    /* The registry keeps no e-mail addresses: deliveries go to the phones.
     * A photocopy of a filed notice (the same signature value, however
     * re-stamped) is refused: one act of signing is served once. */
    rc = dz_courtdb_store(app->db, &n, pp, nphones, NULL, &id);
    if (rc == DZ_ERR_EXISTS) {
        refuse(op, 409, "already_filed", "this signed notice has been filed already");
        goto out;
    }
    if (rc != 0) {
        refuse(op, 503, "unavailable", "the court's database cannot store the notice");
        goto out;
    }
    op->status = 201;
    op->answer = json_pack("{s:I, s:s, s:s, s:s, s:O}", "id", (json_int_t)id, "case", case_no,
                           "party", op->party, "judge_fin", op->sub, "report", report);
    {
        json_t *d = json_array();
        for (size_t i = 0; d && i < nphones; i++)
            json_array_append_new(d, json_pack("{s:s, s:s, s:s}", "channel", "sms", "address",
                                               phones[i], "state", "queued"));
        if (op->answer)
            json_object_set_new(op->answer, "deliveries", d ? d : json_array());
        else
            json_decref(d);
    }
out:
    free(report_text);
    json_decref(report);
    json_decref(doc);
}

static void list_work(void *arg)
{
    struct op *op = arg;
    json_t *a = NULL;

    if (dz_courtdb_list(op->app->db, op->sub, &a) != 0) {
        refuse(op, 503, "unavailable", "the court's database cannot be read");
        return;
    }
    op->status = 200;
    op->answer = json_pack("{s:s, s:o}", "fin", op->sub, "notices", a);
}

static void filed_work(void *arg)
{
    struct op *op = arg;
    json_t *a = NULL;

    if (dz_courtdb_list_filed(op->app->db, op->sub, &a) != 0) {
        refuse(op, 503, "unavailable", "the court's database cannot be read");
        return;
    }
    op->status = 200;
    op->answer = json_pack("{s:s, s:o}", "judge_fin", op->sub, "notices", a);
}

static void read_work(void *arg)
{
    struct op *op = arg;
    int64_t at = 0;
    int rc = dz_courtdb_mark_read(op->app->db, op->read_id, op->sub, (int64_t)time(NULL), &at);

    if (rc == DZ_ERR_NOTFOUND) {
        refuse(op, 404, "not_found", "no such notice for this party");
        return;
    }
    if (rc != 0) {
        refuse(op, 503, "unavailable", "the court's database cannot be written");
        return;
    }
    op->status = 200;
    op->answer = json_pack("{s:I, s:I}", "id", (json_int_t)op->read_id, "read_at", (json_int_t)at);
}

static void op_done(void *arg)
{
    struct op *op = arg;

    if (dz_req_is_closed(op->r))
        goto out;
    if (op->status >= 200 && op->status < 300 && op->answer) {
        dz_peer_log_request(op->r, op->claims, NULL, op->status);
        dz_log(DZ_LOG_INFO, "court_request", "%s %s -> %d", dz_req_method(op->r),
               dz_req_path(op->r), op->status);
        dz_peer_respond_json(op->r, op->status, op->answer);
        op->answer = NULL;
    } else {
        answer_problem(op->r, op->claims, op->status ? op->status : 500,
                       op->code ? op->code : "internal_error", op->detail);
    }
out:
    op_free(op);
}

static void start(struct court *app, struct dz_req *r, const json_t *claims, struct op *op)
{
    op->app = app;
    op->r = r;
    dz_req_ref(r);
    op->claims = json_incref((json_t *)claims);
    void (*work)(void *) = op->is_list    ? list_work
                           : op->is_filed ? filed_work
                           : op->read_id  ? read_work
                                          : notice_work;

    if (dz_pool_submit(app->pool, dz_req_worker(r), work, op_done, op) != 0) {
        answer_problem(r, claims, 503, "unavailable", "court busy, try again");
        op_free(op);
    }
}

static void notice_post(struct court *app, struct dz_req *r, const json_t *claims)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *in = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *doc = json_string_value(json_object_get(in, "document"));
    const char *sig = json_string_value(json_object_get(in, "signature"));
    const char *party = json_string_value(json_object_get(in, "party"));
    const char *onward = dz_req_header(r, ONWARD_HEADER);
    struct op *op = calloc(1, sizeof(*op));

    if (!op) {
        answer_problem(r, claims, 500, "internal_error", "out of memory");
        goto out;
    }
    if (!json_is_object(in) || !doc || !sig || !party) {
        answer_problem(r, claims, 400, "invalid_notice",
                       "the body must be {\"document\",\"signature\",\"party\"}");
        goto out;
    }
    if (dz_fin_normalize(party, strlen(party), op->party) != 0) {
        answer_problem(r, claims, 400, "invalid_fin", "party must be a FIN");
        goto out;
    }
    if (dz_b64_decode(doc, strlen(doc), false, &op->doc, &op->doc_len) != 0 ||
        dz_b64_decode(sig, strlen(sig), false, &op->sig, &op->sig_len) != 0) {
        answer_problem(r, claims, 400, "invalid_notice", "document and signature are base64");
        goto out;
    }
    snprintf(op->sub, sizeof(op->sub), "%s", claim_str(claims, "sub"));
    snprintf(op->pur, sizeof(op->pur), "%s", claim_str(claims, "pur"));
    if (onward && !(op->onward = strdup(onward))) {
        answer_problem(r, claims, 500, "internal_error", "out of memory");
        goto out;
    }
    start(app, r, claims, op);
    op = NULL;
out:
    op_free(op);
    json_decref(in);
}

static void auth_done(struct dz_req *r, void *arg, const json_t *claims, const char *reason)
{
    struct court *app = arg;
    char pbuf[256];
    const char *path = dz_peer_req_path(r, pbuf, sizeof(pbuf));
    const char *method = dz_req_method(r);

    if (dz_req_is_closed(r)) {
        dz_peer_log_request(r, claims, reason, 0);
        return;
    }
    if (!claims) {
        char detail[128];
        snprintf(detail, sizeof(detail), "Darvaza-Assertion refused: %s", reason);
        answer_problem(r, NULL, 401, "bad_assertion", detail);
        return;
    }
    if (!dz_fin_is_normal(claim_str(claims, "sub"))) {
        answer_problem(r, claims, 403, "forbidden", "the assertion's subject is not a FIN");
        return;
    }
    if (strcmp(path, "/api/court/notices") == 0) {
        if (strcmp(method, "POST") != 0) {
            answer_problem(r, claims, 405, "method_not_allowed", "use POST");
            return;
        }
        notice_post(app, r, claims);
        return;
    }
    if (strcmp(path, "/api/court/my-notices") == 0) {
        struct op *op;
        if (strcmp(method, "GET") != 0) {
            answer_problem(r, claims, 405, "method_not_allowed", "use GET");
            return;
        }
        op = calloc(1, sizeof(*op));
        if (!op) {
            answer_problem(r, claims, 500, "internal_error", "out of memory");
            return;
        }
        op->is_list = true;
        snprintf(op->sub, sizeof(op->sub), "%s", claim_str(claims, "sub"));
        start(app, r, claims, op);
        return;
    }
    if (strcmp(path, "/api/court/filed") == 0 ||
        (strncmp(path, NOTICES_PREFIX, sizeof(NOTICES_PREFIX) - 1) == 0 &&
         strcmp(path + strlen(path) - 5, "/read") == 0)) {
        struct op *op;
        bool filed = path[11] == 'f';
        long long id = 0;

        if (strcmp(method, filed ? "GET" : "POST") != 0) {
            answer_problem(r, claims, 405, "method_not_allowed", filed ? "use GET" : "use POST");
            return;
        }
        if (!filed) {
            char num[24];
            size_t n = strlen(path) - (sizeof(NOTICES_PREFIX) - 1) - 5;

            if (n == 0 || n >= sizeof(num)) {
                answer_problem(r, claims, 404, "not_found", "no such notice");
                return;
            }
            memcpy(num, path + sizeof(NOTICES_PREFIX) - 1, n);
            num[n] = '\0';
            if (dz_parse_int(num, 1, INT64_MAX, &id) != 0) {
                answer_problem(r, claims, 404, "not_found", "no such notice");
                return;
            }
        }
        op = calloc(1, sizeof(*op));
        if (!op) {
            answer_problem(r, claims, 500, "internal_error", "out of memory");
            return;
        }
        op->is_filed = filed;
        op->read_id = id;
        snprintf(op->sub, sizeof(op->sub), "%s", claim_str(claims, "sub"));
        start(app, r, claims, op);
        return;
    }
    answer_problem(r, claims, 404, "not_found", "no such resource");
}

static void on_request(struct dz_req *r, void *wdata)
{
    struct court *app = wdata;
    char pbuf[64];

    if (strcmp(dz_peer_req_path(r, pbuf, sizeof(pbuf)), DZ_PEER_LOG_PATH) == 0) {
        dz_peer_log_serve(r);
        return;
    }
    if (dz_req_body_overflow(r)) {
        answer_problem(r, NULL, 413, "payload_too_large", "body too large");
        return;
    }
    dz_peer_auth_check(app->auth, r, auth_done, app);
}

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer court --db FILE --listen HOST:PORT --tls-cert F --tls-key F\n"
          "         [--client-ca F] --jwks-url URL [--cacert F] [--iss ISS] [--aud court]\n"
          "         --esign-ca F [--mobile-ca F] --tsa-ca F --tsa-policy OID...\n"
          "         [--revocation ocsp|crl|none]\n"
          "         --registry-url URL --registry-cert F --registry-key F\n"
          "  --esign-ca/--mobile-ca  anchors + CAs for signers' certificates (PEM bundles)\n"
          "  --tsa-ca                anchors for time-stamp tokens\n"
          "  --tsa-policy            a TSA policy OID whose tokens are accepted (repeatable)\n"
          "  --registry-cert/-key    the court's TLS client certificate for the registry\n",
          to);
    return 2;
}

static int load_trust(const char *file, struct dz_x509_trust **out)
{
    int rc = dz_x509_trust_new(out);
    return rc ? rc : dz_x509_trust_add_ca_file(*out, file);
}

int dz_peer_court_main(int argc, char **argv)
{
    static const struct option opts[] = {DZ_PEER_LISTEN_OPTIONS,
                                         {"client-ca", required_argument, NULL, 'C'},
                                         {"db", required_argument, NULL, 'd'},
                                         DZ_PEER_AUTH_OPTIONS,
                                         {"esign-ca", required_argument, NULL, 'E'},
                                         {"mobile-ca", required_argument, NULL, 'M'},
                                         {"tsa-ca", required_argument, NULL, 'T'},
                                         {"tsa-policy", required_argument, NULL, 'P'},
                                         {"revocation", required_argument, NULL, 'R'},
                                         {"registry-url", required_argument, NULL, 'r'},
                                         {"registry-cert", required_argument, NULL, 'x'},
                                         {"registry-key", required_argument, NULL, 'y'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct dz_peer_listen_opts lo = {0};
    const char *client_ca = NULL, *dbfile = NULL;
    const char *esign = NULL, *mobile = NULL, *tsa = NULL;
    const char *tsa_pol[DZ_TSP_MAX_POLICIES];
    size_t ntsa_pol = 0;
    struct dz_peer_auth_conf ac = {.iss = "darvaza-demo", .aud = "court"};
    struct court app = {0};
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    char host[64];
    uint16_t port = 0;
    int c, status = 1;

    app.revocation = DZ_X509_REV_OCSP_CRL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'C':
            client_ca = optarg;
            break;
        case 'd':
            dbfile = optarg;
            break;
        case 'a':
            ac.cacert = optarg;
            app.registry_tls.ca_file = optarg;
            break;
        case 'E':
            esign = optarg;
            break;
        case 'M':
            mobile = optarg;
            break;
        case 'T':
            tsa = optarg;
            break;
        case 'P':
            if (ntsa_pol == DZ_TSP_MAX_POLICIES)
                return usage(stderr);
            tsa_pol[ntsa_pol++] = optarg;
            break;
        case 'r':
            app.registry_url = optarg;
            break;
        case 'x':
            app.registry_tls.cert_file = optarg;
            break;
        case 'y':
            app.registry_tls.key_file = optarg;
            break;
        case 'R':
            if (strcmp(optarg, "ocsp") == 0)
                app.revocation = DZ_X509_REV_OCSP_CRL;
            else if (strcmp(optarg, "crl") == 0)
                app.revocation = DZ_X509_REV_CRL_ONLY;
            else if (strcmp(optarg, "none") == 0)
                app.revocation = DZ_X509_REV_NONE;
            else
                return usage(stderr);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!dz_peer_listen_option(&lo, c, optarg) && !dz_peer_auth_option(&ac, c, optarg))
                return usage(stderr);
            break;
        }
    }
    if (optind != argc || !lo.listen || !lo.cert || !lo.key || !dbfile || !ac.jwks_url || !esign ||
        !tsa || ntsa_pol == 0 || !app.registry_url)
        return usage(stderr);
    if (dz_peer_parse_listen(lo.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "court: bad --listen '%s' (HOST:PORT)\n", lo.listen);
        return 2;
    }
    if (load_trust(esign, &app.card_trust) != 0 ||
        (mobile && load_trust(mobile, &app.mobile_trust) != 0) ||
        dz_tsp_trust_load(tsa, &app.tsa_trust) != 0 ||
        dz_tsp_trust_set_policies(app.tsa_trust, tsa_pol, ntsa_pol) != 0) {
        fprintf(stderr, "court: cannot load --esign-ca, --mobile-ca, --tsa-ca or --tsa-policy\n");
        goto out;
    }
    if (dz_courtdb_open(dbfile, &app.db) != 0 ||
        dz_peer_tls_gateway_client(lo.cert, lo.key, client_ca, "court_tls", &tls) != 0 ||
        dz_pool_new(2, 256, &app.pool) != 0 || dz_peer_auth_new(&ac, app.pool, &app.auth) != 0)
        goto out;
    h.worker_init = dz_peer_worker_init;
    h.worker_fini = dz_peer_worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("court", host, port, tls, COURT_BODY_MAX, &h, &app) == 0)
        status = 0;
out:
    dz_pool_free(app.pool);
    dz_peer_auth_free(app.auth);
    SSL_CTX_free(tls);
    dz_courtdb_close(app.db);
    dz_x509_trust_free(app.card_trust);
    dz_x509_trust_free(app.mobile_trust);
    X509_STORE_free(app.tsa_trust);
    return status;
}
