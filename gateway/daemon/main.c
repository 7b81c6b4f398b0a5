/*
 * main.c - darvazad: loads the configuration, opens the process-wide
 * objects, starts the workers, then waits for signals on the main thread:
 * SIGHUP reloads (config, certificates, keys, policies; a broken reload
 * keeps the old state and says why), SIGUSR1 rotates the audit log and
 * reopens the access log, SIGTERM/SIGINT drain and exit.
 * Fatal exits happen only here, at start-up.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/version.h"
#include "core/accounts_setup.h"
#include "core/gen.h"
#include "core/metrics.h"
#include "core/rctx.h"
#include "core/store_setup.h"
#include "core/wake.h"
#include "daemon/audit_setup.h"
#include "daemon/consent_hook.h"
#include "daemon/drain.h"
#include "daemon/notify.h"
#include "daemon/privdrop.h"
#include "daemon/restartkeys.h"
#include "daemon/router.h"
#include "daemon/transparency_setup.h"
#include "http/httpd.h"
#include "http/pool.h"
#include "keys/signer.h"
#include "ops/accesslog.h"
#include "ops/mgmt.h"
#include "ops/opsmetrics.h"
#include "pki/ocsp.h"
#include "state/accounts.h"
#include "state/store.h"

#include "base/compat.h"

static void usage(FILE *to)
{
    fputs("usage: darvazad -c FILE [--check [--dump]]\n"
          "       darvazad --version\n"
          "  -c, --config FILE  configuration (YAML)\n"
          "      --check        validate the configuration and policies, then exit\n"
          "      --dump         with --check: print the effective configuration\n"
          "  -V, --version      print the version, the commit and the TLS/HTTP/2 libraries\n",
          to);
}

static int read_seed_key(const char *path, unsigned char key[32])
{
    char *text = NULL;
    size_t len;
    int rc = dz_signer_read_secret(path, &text);

    if (rc != 0)
        return rc;
    len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    rc = DZ_ERR_INVAL;
    if (len == 64) {
        rc = 0;
        for (size_t i = 0; i < 32; i++) {
            unsigned v = 0;
            for (int k = 0; k < 2; k++) {
                char ch = text[2 * i + (size_t)k];
                v <<= 4;
                if (ch >= '0' && ch <= '9')
                    v |= (unsigned)(ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                    v |= (unsigned)(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                    v |= (unsigned)(ch - 'A' + 10);
                else
                    rc = DZ_ERR_INVAL;
            }
            key[i] = (unsigned char)v;
        }
    }
    dz_secret_free_str(text);
    return rc;
}

/* The engine's cap is the largest body any route accepts; each route's own
 * limit is checked by the forwarder.  Reloads cannot raise it (the engine
 * keeps its limits), which is logged by the reload if a policy asks more. */
static size_t max_body(const struct dz_gen *g)
{
    uint64_t max = g->config->limits.body;

    for (size_t i = 0; i < g->policies->n_routes; i++) {
        if (g->policies->routes[i]->limits.body > max)
            max = g->policies->routes[i]->limits.body;
    }
    return (size_t)max;
}

static uint64_t gauge_connections(void *arg)
{
    struct dz_gw *gw = arg;
    return dz_httpd_open_connections(gw->httpd);
}

static uint64_t gauge_sessions(void *arg)
{
    struct dz_gw *gw = arg;
    return dz_store_count(gw->store, "sess");
}

static uint64_t gauge_refused_addr(void *arg)
{
    struct dz_gw *gw = arg;
    return gw->httpd ? dz_httpd_refused_per_address(gw->httpd) : 0;
}

static uint64_t gauge_closed_stalled(void *arg)
{
    struct dz_gw *gw = arg;
    return gw->httpd ? dz_httpd_closed_stalled(gw->httpd) : 0;
}

static uint64_t gauge_refused_full(void *arg)
{
    struct dz_gw *gw = arg;
    return gw->httpd ? dz_httpd_refused_full(gw->httpd) : 0;
}

static uint64_t gauge_shed(void *arg)
{
    struct dz_gw *gw = arg;
    return gw->httpd ? dz_httpd_shed(gw->httpd) : 0;
}

static uint64_t gauge_shed_missed(void *arg)
{
    struct dz_gw *gw = arg;
    return gw->httpd ? dz_httpd_shed_missed(gw->httpd) : 0;
}

/* One gauge per budget: creations refused because that kind was full. */
struct refusal_gauge {
    struct dz_gw *gw;
    enum dz_store_kind kind;
    char name[64];
};
static struct refusal_gauge refusal_gauges[DZ_STORE_KINDS];

static uint64_t gauge_refusals(void *arg)
{
    const struct refusal_gauge *g = arg;
    return dz_store_refusals(g->gw->store, g->kind);
}

/* Reload counts and certificate expiry (gateway/ops/opsmetrics.c). */
static struct dz_opsmetrics *opsmetrics;

struct gen_handoff {
    struct dz_post post; /* queued without an allocation: see handoffs_new */
    struct dz_gw_worker *w;
    struct dz_gen *gen;
};

static void handoff_cb(void *arg)
{
    struct gen_handoff *h = arg;
    dz_router_set_gen(h->w, h->gen);
    free(h);
}

/* gateway.log_level and gateway.log_levels (one per subsystem). */
static void apply_log_levels(const struct dz_config *cf)
{
    dz_log_set_level(cf->gateway.log_level);
    dz_log_clear_sub_levels();
    for (int i = 0; i < DZ_CONFIG_LOG_SUBS; i++) {
        int l = cf->gateway.log_levels.level[i];
        if (l != DZ_CONFIG_LOG_INHERIT)
            dz_log_set_sub_level(dz_config_log_subs[i], l);
    }
}

/* SIGUSR1: the access log file was renamed (logrotate); write a new one. */
static void reopen_access_log(void)
{
    char err[512] = "";

    if (dz_accesslog_reopen(err, sizeof(err)) != 0)
        dz_logj(DZ_LOG_ERROR, "access_log_reopen_failed", json_pack("{s:s}", "error", err));
    else
        dz_log(DZ_LOG_INFO, "access_log_reopened", "on SIGUSR1");
}

/* SIGUSR1, also during a drain's grace (drain.h). */
static void on_sigusr1(struct dz_gw *gw)
{
    /* The audit writer closes its segment on its own thread. */
    dz_audit_rotate(gw->audit);
    reopen_access_log();
}

/* One hand-off per worker, all made before the reload changes anything: a
 * worker left on the old generation by a failed allocation would go on
 * quietly with the policies and limits the operator replaced.  NULL when
 * out of memory (the reload then fails as a whole). */
static struct gen_handoff **handoffs_new(struct dz_gw *gw, struct dz_gen *g)
{
    struct gen_handoff **hs = calloc(gw->nworkers ? gw->nworkers : 1, sizeof(*hs));

    if (!hs)
        return NULL;
    for (unsigned i = 0; i < gw->nworkers; i++) {
        if (!gw->workers[i])
            continue;
        hs[i] = malloc(sizeof(*hs[i]));
        if (!hs[i]) {
            for (unsigned j = 0; j < i; j++)
                free(hs[j]);
            free(hs);
            return NULL;
        }
        hs[i]->w = gw->workers[i];
        hs[i]->gen = g;
    }
    return hs;
}

static void reload(struct dz_gw *gw, const char *config_path)
{
    struct dz_gen *g = NULL;
    struct gen_handoff **hs;
    char err[1024] = "";
    int rc = dz_gen_load(config_path, gw->gen->number + 1, &g, err, sizeof(err));

    if (rc != 0) {
        dz_log(DZ_LOG_ERROR, "reload_failed", "kept generation %llu: %s",
               (unsigned long long)gw->gen->number, err);
        dz_opsmetrics_reloaded(opsmetrics, false, NULL);
        return;
    }
    hs = handoffs_new(gw, g);
    if (!hs) {
        dz_log(DZ_LOG_ERROR, "reload_failed", "kept generation %llu: out of memory",
               (unsigned long long)gw->gen->number);
        dz_opsmetrics_reloaded(opsmetrics, false, NULL);
        dz_gen_unref(g);
        return;
    }
    for (size_t i = 0; i < g->config->n_listeners && i < DZ_GEN_MAX_LISTENERS; i++) {
        if (g->tls[i])
            dz_httpd_set_tls(gw->httpd, i, g->tls[i]);
    }
    for (unsigned i = 0; i < gw->nworkers; i++) {
        if (!hs[i])
            continue;
        dz_gen_ref(g);
        /* Fails only for a worker that has stopped. */
        if (dz_worker_post_node(hs[i]->w->worker, &hs[i]->post, handoff_cb, hs[i]) != 0) {
            dz_gen_unref(g);
            free(hs[i]);
        }
    }
    free(hs);
    dz_restartkeys_warn(gw->gen->config, g->config);
    dz_gen_unref(gw->gen);
    gw->gen = g;
    dz_audit_setup_reload(gw->audit, g);
    apply_log_levels(g->config);
    /* A new access log path (or output) takes effect now; a failure keeps
     * the old one and says so. */
    if (dz_accesslog_configure(&g->config->access_log, err, sizeof(err)) != 0)
        dz_logj(DZ_LOG_ERROR, "access_log_reopen_failed", json_pack("{s:s}", "error", err));
    dz_opsmetrics_reloaded(opsmetrics, true, g);
    dz_log(DZ_LOG_INFO, "reloaded", "generation %llu in force", (unsigned long long)g->number);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"dump", no_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    bool check = false;
    bool dump = false;
    struct dz_gw gw;
    char err[1024] = "";
    unsigned char seed_key[32];
    struct dz_listener_conf lconf[DZ_GEN_MAX_LISTENERS];
    struct dz_httpd_conf hconf;
    sigset_t sigs;
    int opt;
    int rc;

    if (argc == 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
        dz_version_print(stdout, "darvazad");
        return 0;
    }
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'd':
            dump = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    memset(&gw, 0, sizeof(gw));
    rc = dz_gen_load(config_path, 1, &gw.gen, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "darvazad: %s\n", err);
        return 1;
    }
    if (check) {
        if (dump)
            dz_config_dump(gw.gen->config, stdout);
        /* After a dump the line is a YAML comment, so the dump checks again. */
        printf("%sconfiguration OK: %zu listener(s), %zu policy service(s), %zu key(s)\n",
               dump ? "# " : "", gw.gen->config->n_listeners,
               dz_policy_service_count(gw.gen->policies), gw.gen->nsigners);
        dz_gen_unref(gw.gen);
        return 0;
    }
    apply_log_levels(gw.gen->config);
    /* Secrets must not end up in core files. */
    prctl(PR_SET_DUMPABLE, 0);
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    /* Nor in freed memory: jansson's copies of request bodies are wiped. */
    dz_json_wipe_frees();
    /* The account API lists and withdraws OIDC consents (auth/consent.h). */
    dz_consent_hook_install();

    /* Signals go to the main thread only: block them before any thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1); /* reopen logs, rotate the audit log */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    const struct dz_config *cf = gw.gen->config;
    {
        /* memory or redis (store.backend); a Redis that is down is no
         * reason not to start: calls answer unavailable until it is up. */
        char why[200];
        if (dz_store_setup_open(&cf->store, &gw.store, why, sizeof(why)) != 0) {
            fprintf(stderr, "darvazad: %s: cannot make the state store\n", why);
            return 1;
        }
    }
    if ((rc = dz_ocsp_cache_new(10000, &gw.ocsp_cache)) != 0 ||
        (rc = dz_metrics_new(&gw.metrics)) != 0) {
        fprintf(stderr, "darvazad: out of memory\n");
        return 1;
    }
    rc = read_seed_key(cf->accounts.seed_key_file, seed_key);
    if (rc != 0) {
        fprintf(stderr, "darvazad: %s: cannot read the seed key (64 hex characters)\n",
                cf->accounts.seed_key_file);
        return 1;
    }
    {
        const char *what = "";
        rc = dz_accounts_setup_open(&cf->accounts, seed_key, &gw.accounts, &what);
        dz_secret_wipe(seed_key, sizeof(seed_key));
        if (rc != 0) {
            fprintf(stderr, "darvazad: %s: cannot open the accounts database (%s)\n", what,
                    dz_err_str(rc));
            return 1;
        }
    }
    if (dz_audit_setup_open(gw.gen, &gw.audit) != 0)
        return 1;
    if (dz_transparency_setup_open(&gw) != 0)
        return 1;
    rc = dz_accesslog_open(&cf->access_log, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "darvazad: %s\n", err);
        return 1;
    }
    rc = dz_pool_new(cf->gateway.blocking_threads, cf->gateway.blocking_queue, &gw.pool);
    if (rc != 0) {
        fprintf(stderr, "darvazad: cannot start the blocking pool\n");
        return 1;
    }

    memset(&hconf, 0, sizeof(hconf));
    for (size_t i = 0; i < cf->n_listeners && i < DZ_GEN_MAX_LISTENERS; i++) {
        lconf[i].host = cf->listeners[i].address;
        lconf[i].port = (uint16_t)cf->listeners[i].port;
        lconf[i].tls = gw.gen->tls[i];
        lconf[i].tag = (int)i;
    }
    hconf.listeners = lconf;
    hconf.nlisteners = cf->n_listeners;
    hconf.workers = cf->gateway.workers;
    dz_httpd_limits_default(&hconf.limits);
    hconf.limits.max_header_bytes = (uint32_t)cf->limits.header_bytes;
    hconf.limits.max_header_count = (uint32_t)cf->limits.header_count;
    hconf.limits.max_body_bytes = max_body(gw.gen);
    hconf.limits.max_concurrent_streams = (uint32_t)cf->limits.streams;
    hconf.limits.max_connections = (uint32_t)cf->limits.connections;
    hconf.limits.max_connections_per_address = (uint32_t)cf->limits.connections_per_address;
    hconf.limits.max_buffered_per_connection = (size_t)cf->limits.answer_buffer_per_connection;
    hconf.limits.max_buffered_total = (size_t)cf->limits.answer_buffer_total;
    hconf.limits.handshake_timeout_ms = (uint32_t)cf->limits.handshake_timeout_ms;
    hconf.limits.idle_timeout_ms = (uint32_t)cf->limits.idle_timeout_ms;
    hconf.limits.request_timeout_ms = (uint32_t)cf->limits.request_timeout_ms;
    hconf.handlers.worker_init = dz_router_worker_init;
    hconf.handlers.worker_fini = dz_router_worker_fini;
    hconf.handlers.on_headers = dz_router_on_headers;
    hconf.handlers.on_request = dz_router_on_request;
    hconf.app = &gw;
    gw.nworkers = cf->gateway.workers;
    rc = dz_httpd_new(&hconf, &gw.httpd);
    if (rc != 0) {
        fprintf(stderr, "darvazad: cannot listen (%s); see the log above\n", dz_err_str(rc));
        return 1;
    }
    if (dz_privdrop(cf->gateway.user, cf->gateway.group, err, sizeof(err)) != 0) {
        fprintf(stderr, "darvazad: %s: %s\n", config_path, err);
        return 1;
    }
    dz_metrics_gauge_fn(gw.metrics, "darvaza_open_connections", "Open client connections",
                        gauge_connections, &gw);
    dz_metrics_gauge_fn(gw.metrics, "darvaza_sessions", "Live sessions", gauge_sessions, &gw);
    dz_metrics_counter_fn(gw.metrics, "darvaza_connections_refused_per_address_total",
                          "Connections closed at accept: their address had too many open",
                          gauge_refused_addr, &gw);
    dz_metrics_counter_fn(
        gw.metrics, "darvaza_connections_refused_full_total",
        "Connections closed at accept: the process was full and no worker had one to shed",
        gauge_refused_full, &gw);
    dz_metrics_counter_fn(gw.metrics, "darvaza_connections_shed_total",
                          "Connections serving nobody closed at the process cap to let one in",
                          gauge_shed, &gw);
    dz_metrics_counter_fn(
        gw.metrics, "darvaza_connections_shed_missed_total",
        "Newcomers let in at the cap whose shed, asked of another worker, found nothing",
        gauge_shed_missed, &gw);
    dz_metrics_counter_fn(gw.metrics, "darvaza_connections_closed_stalled_total",
                          "Connections closed for holding too many unsent answer bytes",
                          gauge_closed_stalled, &gw);
    dz_store_setup_metrics(gw.metrics, gw.store);
    for (int k = 0; k < DZ_STORE_KINDS; k++) {
        struct refusal_gauge *g = &refusal_gauges[k];
        g->gw = &gw;
        g->kind = (enum dz_store_kind)k;
        snprintf(g->name, sizeof(g->name), "darvaza_store_refusals_%s_total",
                 dz_store_kind_name(g->kind));
        dz_metrics_counter_fn(gw.metrics, g->name,
                              "New entries refused because this store budget was used up",
                              gauge_refusals, g);
    }
    /* The operator's metrics and the management listener. */
    struct dz_mgmt *mgmt = NULL;
    if (dz_opsmetrics_new(&gw, &opsmetrics) != 0) {
        fprintf(stderr, "darvazad: out of memory\n");
        return 1;
    }
    if (cf->management.enabled && dz_mgmt_start(&cf->management, &gw, &mgmt) != 0) {
        fprintf(stderr, "darvazad: management.listen %s: cannot listen; see the log above\n",
                cf->management.listen);
        return 1;
    }
    /* Long polls woken when what they wait for is written, on any instance. */
    if (dz_wake_setup(&gw) != 0) {
        fprintf(stderr, "darvazad: cannot subscribe to the store's wake-ups\n");
        return 1;
    }
    rc = dz_httpd_start(gw.httpd);
    if (rc != 0) {
        fprintf(stderr, "darvazad: cannot start workers\n");
        return 1;
    }
    atomic_store(&gw.ready, true);
    dz_log(DZ_LOG_INFO, "started", "darvazad %s: %zu listener(s), %u worker(s)", cf->gateway.id,
           cf->n_listeners, cf->gateway.workers);
    dz_notify_ready();

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            dz_notify_reloading();
            reload(&gw, config_path);
            dz_notify_ready();
            continue;
        }
        if (sig == SIGUSR1) {
            on_sigusr1(&gw);
            continue;
        }
        break;
    }
    dz_notify_stopping();
    dz_drain_run(&gw, &sigs, on_sigusr1); /* drain.h: readiness off, grace, deadline */
    dz_mgmt_stop(mgmt);
    dz_httpd_free(gw.httpd);
    dz_pool_free(gw.pool);
    dz_audit_close(gw.audit);
    dz_transparency_setup_close(&gw);
    dz_accesslog_close();
    dz_accounts_close(gw.accounts);
    dz_store_free(gw.store);
    dz_ocsp_cache_free(gw.ocsp_cache);
    dz_metrics_free(gw.metrics);
    dz_opsmetrics_free(opsmetrics);
    dz_gen_unref(gw.gen);
    dz_log(DZ_LOG_INFO, "stopped", "bye");
    return 0;
}
