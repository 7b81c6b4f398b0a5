/*
 * registry.c - `darvaza-peer registry`: the population registry stand-in.
 * Serves the registry's JSON API over HTTP/2 with TLS, only to the gateway
 * (its client certificate is required) and only for requests that carry a
 * valid, fresh, unreplayed Darvaza-Assertion bound to that very request.
 * Owns the routes and the rules that tie each route to the assertion's
 * claims (sub, tgt, pur).  It never answers from the database without a
 * verified assertion, never filters fields (the gateway releases what the
 * policy allows), and never touches SQLite on the loop (pool).
 */
#include "peer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secret.h"
#include "http/pool.h"
#include "http/tls.h"
#include "peer_auth.h"
#include "registry_db.h"

#include "base/compat.h"

#define REGISTRY_BODY_MAX (64 * 1024)
#define PERSONS_PREFIX "/api/registry/persons/"

struct registry {
    struct dz_regdb *db;
    struct dz_pool *pool;
    struct dz_peer_auth *auth;
    struct dz_docpat *docpat;
};

enum route { ROUTE_ME, ROUTE_PHONES, ROUTE_PERSON, ROUTE_DOC_CHECK };

/* One request between its assertion check and its answer. */
struct lookup {
    struct registry *app;
    struct dz_req *r; /* referenced */
    json_t *claims;   /* referenced, for the request log */
    enum route route;
    char fin[DZ_FIN_LEN + 1];
    char doc[DZ_DOC_MAX + 1];
    struct dz_person person;
    int rc;
};

/* Every answer after the assertion check goes through here, so the request
 * log always says what the peer decided. */
static void answer_problem(struct dz_req *r, const json_t *claims, const char *reason, int status,
                           const char *code, const char *detail)
{
    dz_peer_log_request(r, claims, reason, status);
    dz_log(DZ_LOG_INFO, "registry_request", "%s %s -> %d %s%s%s", dz_req_method(r), dz_req_path(r),
           status, code, reason ? " " : "", reason ? reason : "");
    dz_peer_problem(r, status, code, detail, reason);
}

static void answer_json(struct dz_req *r, const json_t *claims, json_t *body)
{
    dz_peer_log_request(r, claims, NULL, 200);
    dz_log(DZ_LOG_INFO, "registry_request", "%s %s -> 200", dz_req_method(r), dz_req_path(r));
    dz_peer_respond_json(r, 200, body);
}

static void lookup_free(struct lookup *lk)
{
    if (!lk)
        return;
    json_decref(lk->claims);
    if (lk->r)
        dz_req_unref(lk->r);
    dz_secret_wipe(lk->doc, sizeof(lk->doc));
    free(lk);
}

/* Pool thread. */
static void lookup_work(void *arg)
{
    struct lookup *lk = arg;

    lk->rc = dz_regdb_get(lk->app->db, lk->fin, &lk->person);
}

static json_t *phones_json(const struct dz_person *p)
{
    json_t *a = json_array();

    for (unsigned i = 0; a && i < p->nphones; i++) {
        if (json_array_append_new(a, json_string(p->phones[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Loop thread, after lookup_work. */
static void lookup_done(void *arg)
{
    struct lookup *lk = arg;
    struct dz_req *r = lk->r;
    const struct dz_person *p = &lk->person;

    if (dz_req_is_closed(r))
        goto out;
    if (lk->route == ROUTE_DOC_CHECK) {
        char have[DZ_DOC_MAX + 1];
        bool match = false;

        if (lk->rc != 0 && lk->rc != DZ_ERR_NOTFOUND) {
            answer_problem(r, lk->claims, NULL, 503, "unavailable", "registry database error");
            goto out;
        }
        /* An unknown FIN is simply "no match": the answer tells nothing
         * more than a wrong document would. */
        if (lk->rc == 0) {
            snprintf(have, sizeof(have), "%s%s", p->doc_series, p->doc_number);
            match = dz_secret_equal(have, strlen(have), lk->doc, strlen(lk->doc));
        }
        /* On a match the gateway also learns where to send the
         * registration code: the person's own numbers, never anyone's
         * for a wrong document. */
        if (match)
            answer_json(r, lk->claims,
                        json_pack("{s:b, s:o}", "match", true, "mobile", phones_json(p)));
        else
            answer_json(r, lk->claims, json_pack("{s:b}", "match", false));
        goto out;
    }
    if (lk->rc == DZ_ERR_NOTFOUND) {
        answer_problem(r, lk->claims, NULL, 404, "not_found", "no person with this FIN");
        goto out;
    }
    if (lk->rc != 0) {
        answer_problem(r, lk->claims, NULL, 503, "unavailable", "registry database error");
        goto out;
    }
    if (lk->route == ROUTE_PHONES)
        answer_json(r, lk->claims,
                    json_pack("{s:s, s:o}", "fin", p->fin, "phones", phones_json(p)));
    else
        answer_json(r, lk->claims, dz_person_to_json(p));
out:
    lookup_free(lk);
}

static void start_lookup(struct registry *app, struct dz_req *r, const json_t *claims,
                         enum route route, const char *fin, const char *doc)
{
    struct lookup *lk = calloc(1, sizeof(*lk));
    int rc;

    if (!lk) {
        answer_problem(r, claims, NULL, 500, "internal_error", "out of memory");
        return;
    }
    lk->app = app;
    lk->route = route;
    lk->claims = json_incref((json_t *)claims);
    snprintf(lk->fin, sizeof(lk->fin), "%s", fin);
    if (doc)
        snprintf(lk->doc, sizeof(lk->doc), "%s", doc);
    lk->r = r;
    dz_req_ref(r);
    rc = dz_pool_submit(app->pool, dz_req_worker(r), lookup_work, lookup_done, lk);
    if (rc) {
        answer_problem(r, claims, NULL, 503, "unavailable", "registry busy, try again");
        lookup_free(lk);
    }
}

static const char *claim_str(const json_t *claims, const char *name)
{
    const char *s = json_string_value(json_object_get(claims, name));

    return s ? s : "";
}

/* POST /api/registry/document-check {"fin","document"}: used by the gateway
 * at registration, with an assertion for that FIN and purpose. */
static void document_check(struct registry *app, struct dz_req *r, const json_t *claims)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *in = NULL;
    json_error_t jerr;
    const char *fin_in, *doc_in;
    char fin[DZ_FIN_LEN + 1], doc[DZ_DOC_MAX + 1];

    in = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(in)) {
        answer_problem(r, claims, NULL, 400, "bad_request", "body must be a JSON object");
        goto out;
    }
    fin_in = json_string_value(json_object_get(in, "fin"));
    doc_in = json_string_value(json_object_get(in, "document"));
    if (!fin_in || dz_fin_normalize(fin_in, strlen(fin_in), fin) != 0) {
        answer_problem(r, claims, NULL, 400, "invalid_fin", "fin must be 7 letters or digits");
        goto out;
    }
    if (!doc_in || dz_docpat_match(app->docpat, doc_in, strlen(doc_in), doc, sizeof(doc)) != 0) {
        answer_problem(r, claims, NULL, 400, "invalid_document",
                       "document must be like AZE12345678 or AA1234567");
        goto out;
    }
    if (strcmp(claim_str(claims, "sub"), fin) != 0) {
        answer_problem(r, claims, "subject_mismatch", 403, "forbidden",
                       "the assertion's subject is not the FIN checked");
        goto out;
    }
    if (strcmp(claim_str(claims, "pur"), "registration") != 0) {
        answer_problem(r, claims, "purpose_mismatch", 403, "forbidden",
                       "document checks are for registration only");
        goto out;
    }
    start_lookup(app, r, claims, ROUTE_DOC_CHECK, fin, doc);
out:
    json_decref(in);
    dz_secret_wipe(doc, sizeof(doc));
}

static void route_request(struct registry *app, struct dz_req *r, const json_t *claims)
{
    char pbuf[512];
    const char *path = dz_peer_req_path(r, pbuf, sizeof(pbuf));
    const char *method = dz_req_method(r);
    bool is_get = strcmp(method, "GET") == 0;
    const char *sub = claim_str(claims, "sub");

    if (strcmp(path, "/api/registry/me") == 0 || strcmp(path, "/api/registry/me/phones") == 0) {
        enum route rt = path[sizeof("/api/registry/me") - 1] ? ROUTE_PHONES : ROUTE_ME;

        if (!is_get) {
            answer_problem(r, claims, NULL, 405, "method_not_allowed", "use GET");
            return;
        }
        if (!dz_fin_is_normal(sub)) {
            answer_problem(r, claims, "invalid_subject", 403, "forbidden",
                           "the assertion's subject is not a FIN");
            return;
        }
        start_lookup(app, r, claims, rt, sub, NULL);
        return;
    }
    if (strncmp(path, PERSONS_PREFIX, sizeof(PERSONS_PREFIX) - 1) == 0) {
        const char *raw = path + sizeof(PERSONS_PREFIX) - 1;
        char fin[DZ_FIN_LEN + 1];

        if (!is_get) {
            answer_problem(r, claims, NULL, 405, "method_not_allowed", "use GET");
            return;
        }
        if (dz_fin_normalize(raw, strlen(raw), fin) != 0) {
            answer_problem(r, claims, NULL, 400, "invalid_fin",
                           "a FIN is 7 Latin letters or digits");
            return;
        }
        /* A cross-person lookup must have been authorised for this very
         * person and for a stated purpose (DESIGN.md §2, §4.8). */
        if (strcmp(claim_str(claims, "tgt"), fin) != 0) {
            answer_problem(r, claims, "target_mismatch", 403, "forbidden",
                           "the assertion does not authorise a lookup of this FIN");
            return;
        }
        if (!*claim_str(claims, "pur")) {
            answer_problem(r, claims, "purpose_required", 403, "forbidden",
                           "a lookup of another person needs a purpose");
            return;
        }
        start_lookup(app, r, claims, ROUTE_PERSON, fin, NULL);
        return;
    }
    if (strcmp(path, "/api/registry/document-check") == 0) {
        if (strcmp(method, "POST") != 0) {
            answer_problem(r, claims, NULL, 405, "method_not_allowed", "use POST");
            return;
        }
        document_check(app, r, claims);
        return;
    }
    answer_problem(r, claims, NULL, 404, "not_found", "no such resource");
}

static void auth_done(struct dz_req *r, void *arg, const json_t *claims, const char *reason)
{
    struct registry *app = arg;

    if (dz_req_is_closed(r)) {
        dz_peer_log_request(r, claims, reason, 0);
        return;
    }
    if (!claims) {
        char detail[128];

        snprintf(detail, sizeof(detail), "Darvaza-Assertion refused: %s", reason);
        answer_problem(r, NULL, reason, 401, "bad_assertion", detail);
        return;
    }
    route_request(app, r, claims);
}

static void on_request(struct dz_req *r, void *wdata)
{
    struct registry *app = wdata;
    char pbuf[64];

    if (strcmp(dz_peer_req_path(r, pbuf, sizeof(pbuf)), DZ_PEER_LOG_PATH) == 0) {
        dz_peer_log_serve(r);
        return;
    }
    if (dz_req_body_overflow(r)) {
        answer_problem(r, NULL, NULL, 413, "payload_too_large", "body too large");
        return;
    }
    dz_peer_auth_check(app->auth, r, auth_done, app);
}

/* ---- start-up ---- */

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer registry --db FILE [--init-db N [--seed S]]\n"
          "         [--listen HOST:PORT --tls-cert F --tls-key F [--client-ca F]\n"
          "          --jwks-url URL [--cacert F] [--iss ISS] [--aud AUD]]\n"
          "  --init-db N   create FILE with N generated people if it does not exist\n"
          "                (then serve if --listen is given, else exit)\n"
          "  --client-ca F the CA that issued the gateway's client certificate; a\n"
          "                client certificate for TLS client auth is then required\n",
          to);
    return 2;
}

int dz_peer_registry_main(int argc, char **argv)
{
    static const struct option opts[] = {DZ_PEER_LISTEN_OPTIONS,
                                         {"client-ca", required_argument, NULL, 'C'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"init-db", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 's'},
                                         DZ_PEER_AUTH_OPTIONS,
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct dz_peer_listen_opts lo = {0};
    const char *client_ca = NULL, *dbfile = NULL;
    struct dz_peer_auth_conf ac = {.iss = "darvaza-demo", .aud = "registry"};
    long long init_n = 0, seed = 1;
    struct registry app = {0};
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    char host[64];
    uint16_t port = 0;
    int c, rc, status = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'C':
            client_ca = optarg;
            break;
        case 'd':
            dbfile = optarg;
            break;
        case 'n':
            if (dz_parse_int(optarg, 1, DZ_PEOPLE_MAX, &init_n) != 0) {
                fprintf(stderr, "registry: --init-db wants 1..%d\n", DZ_PEOPLE_MAX);
                return 2;
            }
            break;
        case 's':
            if (dz_parse_int(optarg, 0, INT64_MAX, &seed) != 0) {
                fprintf(stderr, "registry: --seed wants a non-negative integer\n");
                return 2;
            }
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
    if (optind != argc || !dbfile)
        return usage(stderr);
    if (init_n > 0) {
        rc = dz_regdb_create(dbfile, (uint64_t)seed, (size_t)init_n);
        if (rc == DZ_ERR_EXISTS) {
            dz_log(DZ_LOG_INFO, "registry_db", "%s exists, kept as it is", dbfile);
        } else if (rc) {
            dz_log(DZ_LOG_ERROR, "registry_db", "cannot create %s: %s", dbfile, dz_err_str(rc));
            return 1;
        } else {
            dz_log(DZ_LOG_INFO, "registry_db", "created %s with %lld people (seed %lld)", dbfile,
                   init_n, seed);
        }
        if (!lo.listen)
            return 0;
    }
    if (!lo.listen || !lo.cert || !lo.key || !ac.jwks_url)
        return usage(stderr);
    if (dz_peer_parse_listen(lo.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "registry: bad --listen '%s' (HOST:PORT)\n", lo.listen);
        return 2;
    }
    if (!client_ca)
        dz_log(DZ_LOG_WARN, "registry_tls", "no --client-ca: any client may connect");

    if (dz_regdb_open(dbfile, &app.db) != 0 ||
        dz_docpat_compile(DZ_DOCPAT_DEFAULT, &app.docpat, NULL, 0) != 0 ||
        dz_peer_tls_gateway_client(lo.cert, lo.key, client_ca, "registry_tls", &tls) != 0 ||
        dz_pool_new(2, 256, &app.pool) != 0 || dz_peer_auth_new(&ac, app.pool, &app.auth) != 0)
        goto out;
    {
        size_t n = 0;

        if (dz_regdb_count(app.db, &n) == 0)
            dz_log(DZ_LOG_INFO, "registry_db", "%s: %zu people", dbfile, n);
    }
    h.worker_init = dz_peer_worker_init;
    h.worker_fini = dz_peer_worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("registry", host, port, tls, REGISTRY_BODY_MAX, &h, &app) == 0)
        status = 0;
out:
    /* The pool first: its pending work references the database. */
    dz_pool_free(app.pool);
    dz_peer_auth_free(app.auth);
    SSL_CTX_free(tls);
    dz_docpat_free(app.docpat);
    dz_regdb_close(app.db);
    return status;
}
