/*
 * fake_gw.c - see fake_gw.h.  Built in darvazad's order (main.c) and torn
 * down in its shutdown order: workers idle, pool, audit, accounts, store.
 */
#include "fake_gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "base/log.h"
#include "core/metrics.h"
#include "core/rctx.h"
#include "daemon/router.h"
#include "fake_pki.h"
#include "http/pool.h"
#include "pki/ocsp.h"
#include "state/accounts.h"
#include "state/session.h"
#include "state/store.h"

/* argon2id at 64 KiB and one pass: the tests test decisions, not costs. */
static const struct dz_argon2_params cheap_argon2 = {64, 1, 1};

static const char config_template[] = "gateway:\n"
                                      "  id: darvaza-test\n"
                                      "  origin: " FAKE_GW_ORIGIN "\n"
                                      "  workers: 1\n"
                                      "  blocking_threads: 2\n"
                                      "  blocking_queue: 64\n"
                                      "  log_level: warn\n"
                                      "listeners:\n"
                                      "  - address: 127.0.0.1\n"
                                      "    port: 8080\n"
                                      "accounts:\n"
                                      "  database: @DIR@/accounts.db\n"
                                      "  seed_key_file: @DIR@/seed.key\n"
                                      "lockout:\n"
                                      "  @LOCKOUT@\n"
                                      "registry:\n"
                                      "  url: http://127.0.0.1:9/\n"
                                      "signing:\n"
                                      "  active: k1\n"
                                      "  keys:\n"
                                      "    - kid: k1\n"
                                      "      key: @DIR@/assertion-k1.pem\n"
                                      "upstream_tls:\n"
                                      "  ca: @DIR@/upstream-ca.pem\n"
                                      "audit:\n"
                                      "  file: @DIR@/audit.log\n"
                                      "policies: @DIR@/policies\n";

static void say(const char *what, const char *detail)
{
    fprintf(stderr, "fake_gw: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

/* text with every "@NAME@" of the table replaced; malloc'd. */
static char *subst(const char *text, const char *const (*table)[2], size_t n)
{
    size_t cap = strlen(text) * 2 + 4096;
    char *out = malloc(cap);
    size_t used = 0;

    if (!out)
        abort();
    while (*text) {
        size_t i;
        for (i = 0; i < n; i++) {
            size_t klen = strlen(table[i][0]);
            if (strncmp(text, table[i][0], klen) == 0) {
                size_t vlen = strlen(table[i][1]);
                if (used + vlen + 1 >= cap) {
                    cap = (used + vlen) * 2 + 1;
                    out = realloc(out, cap);
                    if (!out)
                        abort();
                }
                memcpy(out + used, table[i][1], vlen);
                used += vlen;
                text += klen;
                break;
            }
        }
        if (i < n)
            continue;
        if (used + 2 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
        out[used++] = *text++;
    }
    out[used] = '\0';
    return out;
}

int fake_gw_write_file(const char *dir, const char *name, const char *text, unsigned mode)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        return -1;
    if (fchmod(fileno(f), (mode_t)mode) != 0) {
        fclose(f);
        return -1;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    return fake_gw_write_file(dir, name, text, 0600);
}

/* At the first byte of every answer, the audit log as it is on disk then:
 * what "durable before the answer" promises can be checked afterwards. */
static void snapshot_audit(struct dz_req *r, void *arg)
{
    struct fake_gw *g = arg;
    char *text = fake_gw_audit_text(g);

    fake_req_set_note(r, text);
    free(text);
}

int fake_gw_new(const struct fake_gw_opts *o, struct fake_gw **out)
{
    static const struct fake_gw_opts none;
    struct fake_gw *g = calloc(1, sizeof(*g));
    char path[256];
    char err[1024] = "";
    EVP_PKEY *k = NULL;
    X509 *ca = NULL;
    char *text = NULL;
    unsigned char seed[DZ_SEED_KEY_LEN];

    *out = NULL;
    if (!o)
        o = &none;
    if (!g)
        return -1;
    snprintf(g->dir, sizeof(g->dir), "/tmp/dz_reqtest_XXXXXX");
    if (!mkdtemp(g->dir)) {
        say("mkdtemp", NULL);
        free(g);
        return -1;
    }
    g->w = fake_worker_new();
    if (!g->w || fake_upstream_new(dz_worker_loop(g->w), &g->up) != 0) {
        say("worker or upstream", NULL);
        goto fail;
    }
    snprintf(g->upstream_url, sizeof(g->upstream_url), "http://127.0.0.1:%u",
             (unsigned)fake_upstream_port(g->up));

    /* Files the config names. */
    k = fake_pki_key();
    snprintf(path, sizeof(path), "%s/assertion-k1.pem", g->dir);
    fake_pki_write_key(path, k);
    ca = fake_pki_cert("CN=test upstream CA", 1, k, NULL, NULL, NULL);
    snprintf(path, sizeof(path), "%s/upstream-ca.pem", g->dir);
    fake_pki_write_cert(path, ca);
    X509_free(ca);
    EVP_PKEY_free(k);
    if (write_file(g->dir, "seed.key",
                   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n") != 0)
        goto fail;
    for (size_t i = 0; i < sizeof(seed); i++)
        seed[i] = (unsigned char)i; /* the same key as seed.key */
    snprintf(path, sizeof(path), "%s/policies", g->dir);
    if (mkdir(path, 0700) != 0)
        goto fail;
    {
        const char *const table[][2] = {{"@UPSTREAM@", g->upstream_url}, {"@DIR@", g->dir}};
        {
            /* The loader wants at least one policy file. */
            static const char default_policy[] = "service: backend\n"
                                                 "registered_as: \"DIS-7000\"\n"
                                                 "upstream: @UPSTREAM@\n"
                                                 "upstream_http: http1\n"
                                                 "routes:\n"
                                                 "  - path: /api/default\n"
                                                 "    methods: [GET]\n"
                                                 "    acr: low\n";
            text = subst(o->policy_yaml ? o->policy_yaml : default_policy, table, 2);
            if (write_file(g->dir, "policies/test.yaml", text) != 0)
                goto fail;
            free(text);
            text = NULL;
        }
    }
    if (o->prepare)
        o->prepare(g->dir, o->prepare_arg);
    {
        const char *const table[][2] = {
            {"@DIR@", g->dir},
            {"@LOCKOUT@", o->lockout ? o->lockout : "fin_attempts: 3"},
            {"@UPSTREAM@", g->upstream_url},
        };
        char *base = subst(config_template, table, 2);
        char *extra = o->config_extra ? subst(o->config_extra, table, 3) : NULL;
        size_t n = strlen(base) + (extra ? strlen(extra) : 0) + 2;
        text = malloc(n);
        if (!text)
            abort();
        snprintf(text, n, "%s%s", base, extra ? extra : "");
        free(base);
        free(extra);
        if (write_file(g->dir, "darvaza.yaml", text) != 0)
            goto fail;
        free(text);
        text = NULL;
    }
    snprintf(path, sizeof(path), "%s/darvaza.yaml", g->dir);
    if (dz_gen_load(path, 1, &g->gw.gen, err, sizeof(err)) != 0) {
        say("dz_gen_load", err);
        goto fail;
    }
    dz_log_set_level(g->gw.gen->config->gateway.log_level);
    snprintf(g->audit_path, sizeof(g->audit_path), "%s", g->gw.gen->config->audit.file);
    {
        /* The budgets from the config, as darvazad sets them. */
        const struct dz_config *cf = g->gw.gen->config;
        struct dz_store_quotas q;
        dz_store_quotas_default(&q);
        q.max[DZ_STORE_SESSIONS] = cf->store.sessions;
        q.max[DZ_STORE_PENDING_QR] = cf->store.pending_qr;
        q.max[DZ_STORE_PENDING_MOBILE] = cf->store.pending_mobile;
        q.max[DZ_STORE_CHALLENGES] = cf->store.challenges;
        q.max[DZ_STORE_FAILURES] = cf->store.failures;
        q.max[DZ_STORE_RATES] = cf->store.rates;
        if (dz_store_mem_new(4, &q, &g->gw.store) != 0)
            g->gw.store = NULL;
    }
    if (!g->gw.store || dz_ocsp_cache_new(100, &g->gw.ocsp_cache) != 0 ||
        dz_metrics_new(&g->gw.metrics) != 0) {
        say("store, OCSP cache or metrics", NULL);
        goto fail;
    }
    if (dz_accounts_open(g->gw.gen->config->accounts.database, seed, &cheap_argon2,
                         &g->gw.accounts) != 0) {
        say("dz_accounts_open", NULL);
        goto fail;
    }
    if (dz_audit_open(g->audit_path, &g->gw.audit) != 0) {
        say("dz_audit_open", g->audit_path);
        goto fail;
    }
    if (dz_pool_new(g->gw.gen->config->gateway.blocking_threads,
                    g->gw.gen->config->gateway.blocking_queue, &g->gw.pool) != 0) {
        say("dz_pool_new", NULL);
        goto fail;
    }
    g->gw.nworkers = 1;
    g->gww = dz_router_worker_init(g->w, &g->gw);
    if (!g->gww) {
        say("dz_router_worker_init", NULL);
        goto fail;
    }
    fake_worker_set_data(g->w, g->gww);
    fake_worker_on_first_byte(g->w, snapshot_audit, g);
    atomic_store(&g->gw.ready, true);
    *out = g;
    return 0;
fail:
    free(text);
    fake_gw_free(g);
    return -1;
}

bool fake_gw_free(struct fake_gw *g)
{
    bool idle = true;
    char cmd[128];

    if (!g)
        return true;
    if (g->w)
        idle = fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS);
    if (!idle)
        say("work still in flight at teardown", NULL);
    if (g->gww)
        dz_router_worker_fini(g->w, g->gww);
    dz_pool_free(g->gw.pool);
    dz_audit_close(g->gw.audit);
    dz_accounts_close(g->gw.accounts);
    dz_store_free(g->gw.store);
    dz_ocsp_cache_free(g->gw.ocsp_cache);
    dz_metrics_free(g->gw.metrics);
    dz_gen_unref(g->gw.gen);
    fake_upstream_free(g->up);
    fake_worker_free(g->w);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g->dir);
    if (system(cmd) != 0)
        say("cannot remove", g->dir);
    free(g);
    return idle;
}

struct dz_req *fake_gw_req(struct fake_gw *g, const char *method, const char *path)
{
    return fake_req_new(g->w, method, path);
}

void fake_gw_send(struct fake_gw *g, struct dz_req *r)
{
    dz_router_on_headers(r, g->gww);
    dz_router_on_request(r, g->gww);
}

bool fake_gw_roundtrip(struct fake_gw *g, struct dz_req *r)
{
    fake_gw_send(g, r);
    return fake_spin_answer(g->w, r, FAKE_GW_TIMEOUT_MS);
}

void fake_gw_session(struct fake_gw *g, const char *fin, const char *method, unsigned amr,
                     const char *acr, const char *role, char token[64])
{
    struct dz_session s;

    memset(&s, 0, sizeof(s));
    snprintf(s.fin, sizeof(s.fin), "%s", fin);
    snprintf(s.method, sizeof(s.method), "%s", method);
    s.amr = amr;
    snprintf(s.acr, sizeof(s.acr), "%s", acr);
    snprintf(s.role, sizeof(s.role), "%s", role ? role : "");
    s.auth_time = dz_unix_ms() / 1000;
    if (dz_session_create(g->gw.store, &g->gw.gen->session_limits, &s, token) != 0) {
        say("dz_session_create", fin);
        abort();
    }
}

void fake_req_bearer(struct dz_req *r, const char *token)
{
    char v[128];

    snprintf(v, sizeof(v), "Bearer %s", token);
    fake_req_add_header(r, "authorization", v);
}

char *fake_gw_audit_text(struct fake_gw *g)
{
    FILE *f = fopen(g->audit_path, "r");
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;

    if (!m)
        abort();
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    if (f)
        fclose(f);
    fclose(m);
    return text;
}

json_t *fake_gw_audit_find(struct fake_gw *g, const char *rid, const char *type)
{
    char *text = fake_gw_audit_text(g);
    char *save = NULL;
    json_t *found = NULL;

    for (char *line = strtok_r(text, "\n", &save); line && !found;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *r = json_string_value(json_object_get(j, "rid"));
        const char *t = json_string_value(json_object_get(j, "type"));
        if (r && strcmp(r, rid) == 0 && (!type || (t && strcmp(t, type) == 0)))
            found = j;
        else
            json_decref(j);
    }
    free(text);
    return found;
}

json_t *fake_req_json(const struct dz_req *r)
{
    size_t len;
    const char *body = fake_req_resp_body(r, &len);

    return json_loadb(body, len, 0, NULL);
}

const char *fake_req_problem_code(const struct dz_req *r, char *buf, size_t buf_len)
{
    const char *ct = fake_req_resp_header(r, "content-type");
    json_t *j;
    const char *code;

    buf[0] = '\0';
    if (!ct || strcmp(ct, "application/problem+json") != 0)
        return buf;
    j = fake_req_json(r);
    code = json_string_value(json_object_get(j, "code"));
    if (code)
        snprintf(buf, buf_len, "%s", code);
    json_decref(j);
    return buf;
}
