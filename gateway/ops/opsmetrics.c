/*
 * opsmetrics.c - collectors for the operator's metrics (see opsmetrics.h).
 * Renders run on whatever thread scrapes (the management listener's, or a
 * worker's when public_metrics is on): the reload figures are atomics, the
 * certificate table sits behind a mutex that only a reload and a render
 * take, and everything else is read through the lower layers' own
 * thread-safe accessors.
 */
#include "ops/opsmetrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/histo.h"
#include "base/version.h"
#include "core/certcheck.h"
#include "core/config.h"
#include "core/metrics.h"
#include "http/pool.h"
#include "pki/ocsp.h"
#include "state/store.h"

#include "base/compat.h"

#define SUBJECT_MAX 64 /* bytes of a subject label (longer ones are cut) */
#define SERIAL_MAX 40  /* hex digits of a serial label (20 bytes, RFC 5280 4.1.2.2) */

struct cert_row {
    const char *role; /* a string constant */
    char subject[SUBJECT_MAX + 1];
    char serial[SERIAL_MAX + 1];
    int64_t not_after; /* Unix seconds */
};

struct dz_opsmetrics {
    struct dz_gw *gw;
    atomic_uint_fast64_t reload_ok;
    atomic_uint_fast64_t reload_failed;
    atomic_bool last_ok;
    atomic_int_fast64_t last_ok_time; /* Unix seconds */
    pthread_mutex_t mu;               /* guards certs, ncerts, certs_dropped */
    struct cert_row certs[DZ_OPSMETRICS_CERTS_MAX];
    size_t ncerts;
    size_t certs_dropped;
    struct dz_store_quotas quotas; /* as the store was made (store.* is read at start) */
};

/* ------------------------------------------------------- certificates --- */

/* Printable ASCII only, so the label is valid and bounded whatever the
 * certificate holds. */
static void clean_copy(char *dst, size_t dst_len, const char *src)
{
    size_t n = 0;

    for (; src && *src && n + 1 < dst_len; src++)
        dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[n] = '\0';
}

static void add_cert(struct cert_row *rows, size_t *n, size_t *dropped, const char *role, X509 *x)
{
    struct cert_row r;
    struct tm tm;
    char *text = NULL;
    BIGNUM *bn = NULL;
    X509_NAME *name = X509_get_subject_name(x);
    const ASN1_TIME *na = X509_get0_notAfter(x);
    BIO *bio = NULL;
    char line[256] = "";

    memset(&r, 0, sizeof(r));
    r.role = role;
    if (!na || ASN1_TIME_to_tm(na, &tm) != 1)
        return;
    r.not_after = (int64_t)timegm(&tm);
    bio = BIO_new(BIO_s_mem());
    if (bio && name && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        int len = BIO_read(bio, line, sizeof(line) - 1);
        line[len > 0 ? len : 0] = '\0';
    }
    BIO_free(bio);
    clean_copy(r.subject, sizeof(r.subject), line[0] ? line : "-");
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    text = bn ? BN_bn2hex(bn) : NULL;
    clean_copy(r.serial, sizeof(r.serial), text ? text : "-");
    OPENSSL_free(text);
    BN_free(bn);
    for (size_t i = 0; i < *n; i++) {
        if (rows[i].role == r.role && strcmp(rows[i].serial, r.serial) == 0 &&
            strcmp(rows[i].subject, r.subject) == 0)
            return; /* the same anchor in two bundles */
    }
    if (*n == DZ_OPSMETRICS_CERTS_MAX) {
        (*dropped)++;
        return;
    }
    rows[(*n)++] = r;
}

/* Every certificate of a PEM file (first_only: the leaf of a chain). */
static void add_file(struct cert_row *rows, size_t *n, size_t *dropped, const char *role,
                     const char *path, bool first_only)
{
    FILE *f;
    X509 *x;

    if (!path || !(f = fopen(path, "r")))
        return;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        add_cert(rows, n, dropped, role, x);
        X509_free(x);
        if (first_only)
            break;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    fclose(f);
}

static void load_certs(struct dz_opsmetrics *om, const struct dz_config *cf)
{
    struct cert_row *rows = calloc(DZ_OPSMETRICS_CERTS_MAX, sizeof(*rows));
    size_t n = 0;
    size_t dropped = 0;

    if (!rows)
        return; /* keep the last table: better stale than none */
    for (size_t i = 0; i < cf->n_listeners; i++) {
        const struct dz_config_tls *t = &cf->listeners[i].tls;
        if (t->enabled)
            add_file(rows, &n, &dropped, "tls_server", t->certificate, true);
        if (t->enabled && t->client_ca)
            add_file(rows, &n, &dropped, "trust_anchor", t->client_ca, false);
    }
    add_file(rows, &n, &dropped, "upstream_client", cf->upstream_tls.certificate, true);
    add_file(rows, &n, &dropped, "trust_anchor", cf->upstream_tls.ca, false);
    add_file(rows, &n, &dropped, "trust_anchor", cf->cards.ca, false);
    add_file(rows, &n, &dropped, "trust_anchor", cf->mobile.ca, false);
    add_file(rows, &n, &dropped, "trust_anchor", cf->documents.tsa_ca, false);
    pthread_mutex_lock(&om->mu);
    memcpy(om->certs, rows, n * sizeof(*rows));
    om->ncerts = n;
    om->certs_dropped = dropped;
    pthread_mutex_unlock(&om->mu);
    free(rows);
}

/* ---------------------------------------------------------- rendering --- */

static int put_labelled(struct dz_buf *out, const char *name, const char *label, const char *value,
                        const char *fmt_value)
{
    int rc = dz_buf_appendf(out, "%s{%s=\"", name, label);

    if (rc == 0)
        rc = dz_metrics_put_label(out, value);
    if (rc == 0)
        rc = dz_buf_appendf(out, "\"} %s\n", fmt_value);
    return rc;
}

static int render_build_and_reload(void *arg, struct dz_buf *out)
{
    struct dz_opsmetrics *om = arg;
    char v[32];
    int rc = dz_metrics_put_family(out, "darvaza_build_info", "gauge",
                                   "Always 1; the labels say which build runs.");

    if (rc == 0)
        rc = dz_buf_appendf(out, "darvaza_build_info{version=\"");
    if (rc == 0)
        rc = dz_metrics_put_label(out, dz_version());
    if (rc == 0)
        rc = dz_buf_appendf(out, "\",commit=\"");
    if (rc == 0)
        rc = dz_metrics_put_label(out, dz_version_commit());
    if (rc == 0)
        rc = dz_buf_appendf(out, "\"} 1\n");
    if (rc == 0)
        rc = dz_metrics_put_family(out, "darvaza_config_reloads_total", "counter",
                                   "Configuration reloads (SIGHUP) tried, by result.");
    snprintf(v, sizeof(v), "%" PRIu64, (uint64_t)atomic_load(&om->reload_failed));
    if (rc == 0)
        rc = put_labelled(out, "darvaza_config_reloads_total", "result", "failure", v);
    snprintf(v, sizeof(v), "%" PRIu64, (uint64_t)atomic_load(&om->reload_ok));
    if (rc == 0)
        rc = put_labelled(out, "darvaza_config_reloads_total", "result", "success", v);
    if (rc == 0)
        rc = dz_metrics_put_family(out, "darvaza_config_last_reload_successful", "gauge",
                                   "1 if the last configuration load (start or reload) succeeded, "
                                   "else 0 (the previous generation stays in force).");
    if (rc == 0)
        rc = dz_buf_appendf(out, "darvaza_config_last_reload_successful %d\n",
                            atomic_load(&om->last_ok) ? 1 : 0);
    if (rc == 0)
        rc = dz_metrics_put_family(out, "darvaza_config_last_reload_success_timestamp_seconds",
                                   "gauge", "Unix time of the last successful configuration load.");
    if (rc == 0)
        rc = dz_buf_appendf(out,
                            "darvaza_config_last_reload_success_timestamp_seconds %" PRId64 "\n",
                            (int64_t)atomic_load(&om->last_ok_time));
    return rc;
}

static int render_certs(void *arg, struct dz_buf *out)
{
    struct dz_opsmetrics *om = arg;
    static const char name[] = "darvaza_certificate_expiry_timestamp_seconds";
    int rc = dz_metrics_put_family(out, name, "gauge",
                                   "Unix time a configured certificate expires (notAfter), by "
                                   "role, subject and serial.");

    pthread_mutex_lock(&om->mu);
    for (size_t i = 0; i < om->ncerts && rc == 0; i++) {
        const struct cert_row *r = &om->certs[i];
        rc = dz_buf_appendf(out, "%s{role=\"%s\",subject=\"", name, r->role);
        if (rc == 0)
            rc = dz_metrics_put_label(out, r->subject);
        if (rc == 0)
            rc = dz_buf_appendf(out, "\",serial=\"");
        if (rc == 0)
            rc = dz_metrics_put_label(out, r->serial);
        if (rc == 0)
            rc = dz_buf_appendf(out, "\"} %" PRId64 "\n", r->not_after);
    }
    if (rc == 0)
        rc = dz_metrics_put_family(out, "darvaza_certificates_not_shown", "gauge",
                                   "Configured certificates left out of the expiry metric (over "
                                   "its cap of 64).");
    if (rc == 0)
        rc = dz_buf_appendf(out, "darvaza_certificates_not_shown %zu\n", om->certs_dropped);
    pthread_mutex_unlock(&om->mu);
    return rc;
}

static int render_layers(void *arg, struct dz_buf *out)
{
    struct dz_opsmetrics *om = arg;
    struct dz_gw *gw = om->gw;
    int rc = 0;

    if (gw->audit) {
        rc = dz_metrics_put_family(out, "darvaza_audit_fsync_duration_seconds", "histogram",
                                   "Time each fdatasync of an audit batch took.");
        if (rc == 0)
            rc = dz_metrics_put_histo(out, "darvaza_audit_fsync_duration_seconds", NULL,
                                      dz_audit_fsync_histo(gw->audit));
    }
    if (gw->pool && rc == 0) {
        size_t queued;
        uint64_t rejected;
        dz_pool_stats(gw->pool, &queued, &rejected);
        rc = dz_metrics_put_family(out, "darvaza_pool_queue_depth", "gauge",
                                   "Blocking jobs (password hashing, database) waiting for a "
                                   "thread.");
        if (rc == 0)
            rc = dz_buf_appendf(out, "darvaza_pool_queue_depth %zu\n", queued);
        if (rc == 0)
            rc = dz_metrics_put_family(out, "darvaza_pool_rejected_total", "counter",
                                       "Blocking jobs refused because the queue was full.");
        if (rc == 0)
            rc = dz_buf_appendf(out, "darvaza_pool_rejected_total %" PRIu64 "\n", rejected);
    }
    if (gw->ocsp_cache && rc == 0) {
        struct dz_ocsp_cache_stats st;
        dz_ocsp_cache_stats(gw->ocsp_cache, &st);
        rc = dz_metrics_put_family(out, "darvaza_ocsp_cache_lookups_total", "counter",
                                   "OCSP cache lookups, by result (hit or miss).");
        if (rc == 0)
            rc = dz_buf_appendf(out,
                                "darvaza_ocsp_cache_lookups_total{result=\"hit\"} %" PRIu64 "\n"
                                "darvaza_ocsp_cache_lookups_total{result=\"miss\"} %" PRIu64 "\n",
                                st.hits, st.misses);
        if (rc == 0)
            rc = dz_metrics_put_family(out, "darvaza_ocsp_failures_total", "counter",
                                       "OCSP queries that gave no usable answer (the CRL was "
                                       "tried next).");
        if (rc == 0)
            rc = dz_buf_appendf(out, "darvaza_ocsp_failures_total %" PRIu64 "\n", st.failures);
        if (rc == 0)
            rc = dz_metrics_put_family(out, "darvaza_ocsp_cache_entries", "gauge",
                                       "OCSP answers cached now.");
        if (rc == 0)
            rc = dz_buf_appendf(out, "darvaza_ocsp_cache_entries %zu\n", st.entries);
    }
    if (rc == 0) {
        uint64_t loop, pool;
        dz_certcheck_counts(&loop, &pool);
        rc = dz_metrics_put_family(out, "darvaza_certchecks_total", "counter",
                                   "Login and signing certificate checks, by where they ran: "
                                   "on the worker loop (all cached) or on the pool.");
        if (rc == 0)
            rc = dz_buf_appendf(out,
                                "darvaza_certchecks_total{path=\"loop\"} %" PRIu64 "\n"
                                "darvaza_certchecks_total{path=\"pool\"} %" PRIu64 "\n",
                                loop, pool);
    }
    if (gw->store && rc == 0) {
        rc = dz_metrics_put_family(out, "darvaza_store_entries", "gauge",
                                   "Ephemeral state entries held, by kind (counted against the "
                                   "kind's budget).");
        for (int k = 0; k < DZ_STORE_KINDS && rc == 0; k++) {
            char v[32];
            snprintf(v, sizeof(v), "%zu", dz_store_kind_count(gw->store, (enum dz_store_kind)k));
            rc = put_labelled(out, "darvaza_store_entries", "kind",
                              dz_store_kind_name((enum dz_store_kind)k), v);
        }
        if (rc == 0)
            rc = dz_metrics_put_family(out, "darvaza_store_quota", "gauge",
                                       "The budget of live entries per kind (store.*).");
        for (int k = 0; k < DZ_STORE_KINDS && rc == 0; k++) {
            char v[32];
            snprintf(v, sizeof(v), "%zu", om->quotas.max[k]);
            rc = put_labelled(out, "darvaza_store_quota", "kind",
                              dz_store_kind_name((enum dz_store_kind)k), v);
        }
    }
    return rc;
}

/* ---------------------------------------------------------- lifecycle --- */

int dz_opsmetrics_new(struct dz_gw *gw, struct dz_opsmetrics **out)
{
    struct dz_opsmetrics *om = NULL;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    om = calloc(1, sizeof(*om));
    if (!om)
        return rc;
    om->gw = gw;
    if (pthread_mutex_init(&om->mu, NULL) != 0) {
        free(om);
        return rc;
    }
    /* The same budgets darvazad gave the store (main.c): store.* is read
     * once, at start. */
    const struct dz_config_store *st = &gw->gen->config->store;
    dz_store_quotas_default(&om->quotas);
    om->quotas.max[DZ_STORE_SESSIONS] = st->sessions;
    om->quotas.max[DZ_STORE_PENDING_QR] = st->pending_qr;
    om->quotas.max[DZ_STORE_PENDING_MOBILE] = st->pending_mobile;
    om->quotas.max[DZ_STORE_CHALLENGES] = st->challenges;
    om->quotas.max[DZ_STORE_FAILURES] = st->failures;
    om->quotas.max[DZ_STORE_RATES] = st->rates;
    atomic_store(&om->last_ok, true);
    atomic_store(&om->last_ok_time, (int_fast64_t)time(NULL));
    load_certs(om, gw->gen->config);
    if ((rc = dz_metrics_collector(gw->metrics, render_build_and_reload, om)) != 0 ||
        (rc = dz_metrics_collector(gw->metrics, render_certs, om)) != 0 ||
        (rc = dz_metrics_collector(gw->metrics, render_layers, om)) != 0) {
        /* Collectors cannot be removed: om stays allocated for the ones
         * registered, and is freed with the process. */
        return rc;
    }
    *out = om;
    return 0;
}

void dz_opsmetrics_reloaded(struct dz_opsmetrics *om, bool ok, const struct dz_gen *g)
{
    if (!om)
        return;
    if (!ok) {
        atomic_fetch_add(&om->reload_failed, 1);
        atomic_store(&om->last_ok, false);
        return;
    }
    load_certs(om, g->config);
    atomic_fetch_add(&om->reload_ok, 1);
    atomic_store(&om->last_ok_time, (int_fast64_t)time(NULL));
    atomic_store(&om->last_ok, true);
}

void dz_opsmetrics_free(struct dz_opsmetrics *om)
{
    if (!om)
        return;
    pthread_mutex_destroy(&om->mu);
    free(om);
}
