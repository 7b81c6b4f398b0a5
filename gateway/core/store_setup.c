/*
 * store_setup.c - the configured ephemeral store and its metrics; see
 * store_setup.h.
 */
#include "core/store_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/histo.h"
#include "base/parse.h"
#include "base/secret.h"
#include "base/secretfile.h"
#include "state/store_redis.h"

#include "base/compat.h"

/* 64 hex characters into 32 bytes. */
static int read_value_key(const char *path, unsigned char key[DZ_STORE_REDIS_KEY_LEN], char *why,
                          size_t why_cap)
{
    char *text = NULL;
    int rc = dz_secret_file_read(path, 2 * DZ_STORE_REDIS_KEY_LEN, &text, why, why_cap);

    if (rc)
        return rc;
    rc = strlen(text) == 2 * DZ_STORE_REDIS_KEY_LEN ? 0 : DZ_ERR_INVAL;
    for (size_t i = 0; rc == 0 && i < DZ_STORE_REDIS_KEY_LEN; i++) {
        int hi = dz_hex_digit(text[2 * i]);
        int lo = dz_hex_digit(text[2 * i + 1]);

        if (hi < 0 || lo < 0)
            rc = DZ_ERR_INVAL;
        else
            key[i] = (unsigned char)(hi << 4 | lo);
    }
    if (rc)
        snprintf(why, why_cap, "%s: not 64 hex characters", path);
    dz_secret_free_str(text);
    return rc;
}

static int open_redis(const struct dz_config_store *cf, const struct dz_store_quotas *q,
                      struct dz_store **out, char *why, size_t why_cap)
{
    struct dz_store_redis_config rc_cfg;
    char hosts[1 + DZ_STORE_REDIS_SENTINELS_MAX][256];
    unsigned char key[DZ_STORE_REDIS_KEY_LEN];
    char *password = NULL;
    int rc;

    memset(&rc_cfg, 0, sizeof(rc_cfg));
    if (cf->redis_address &&
        !dz_config_hostport(cf->redis_address, hosts[0], sizeof(hosts[0]), &rc_cfg.master.port))
        return DZ_ERR_INVAL; /* checked at load */
    rc_cfg.master.host = cf->redis_address ? hosts[0] : NULL;
    for (size_t i = 0; i < cf->n_redis_sentinels && i < DZ_STORE_REDIS_SENTINELS_MAX; i++) {
        if (!dz_config_hostport(cf->redis_sentinels[i].address, hosts[1 + i], sizeof(hosts[0]),
                                &rc_cfg.sentinels[i].port))
            return DZ_ERR_INVAL;
        rc_cfg.sentinels[i].host = hosts[1 + i];
        rc_cfg.n_sentinels = i + 1;
    }
    rc_cfg.master_name = cf->redis_master_name;
    rc_cfg.username = cf->redis_username;
    rc_cfg.prefix = cf->redis_prefix;
    rc_cfg.connect_timeout_ms = cf->redis_connect_timeout_ms;
    rc_cfg.command_timeout_ms = cf->redis_command_timeout_ms;
    rc_cfg.retry_max_ms = cf->redis_retry_max_ms;
    rc_cfg.wait_replicas = cf->redis_wait_replicas;
    rc_cfg.rate_batch = cf->redis_rate_batch;
    rc_cfg.near_cache = cf->redis_near_cache;
    if (cf->redis_password_file) {
        rc = dz_secret_file_read(cf->redis_password_file, 512, &password, why, why_cap);
        if (rc)
            return rc;
        rc_cfg.password = password;
    }
    if (cf->redis_value_key_file) {
        rc = read_value_key(cf->redis_value_key_file, key, why, why_cap);
        if (rc)
            goto out;
        rc_cfg.value_key = key;
    }
    rc = dz_store_redis_new(&rc_cfg, q, out);
    if (rc)
        snprintf(why, why_cap, "store.redis: %s", dz_err_str(rc));
out:
    dz_secret_wipe(key, sizeof(key));
    if (password)
        dz_secret_free_str(password);
    return rc;
}

int dz_store_setup_open(const struct dz_config_store *cf, struct dz_store **out, char *why,
                        size_t why_cap)
{
    struct dz_store_quotas q;
    int rc;

    *out = NULL;
    snprintf(why, why_cap, "store");
    dz_store_quotas_default(&q);
    q.max[DZ_STORE_SESSIONS] = cf->sessions;
    q.max[DZ_STORE_PENDING_QR] = cf->pending_qr;
    q.max[DZ_STORE_PENDING_MOBILE] = cf->pending_mobile;
    q.max[DZ_STORE_CHALLENGES] = cf->challenges;
    q.max[DZ_STORE_FAILURES] = cf->failures;
    q.max[DZ_STORE_RATES] = cf->rates;
    if (cf->backend == DZ_STORE_REDIS)
        return open_redis(cf, &q, out, why, why_cap);
    rc = dz_store_mem_new(64, &q, out);
    if (rc)
        snprintf(why, why_cap, "store: %s", dz_err_str(rc));
    return rc;
}

static uint64_t gauge_up(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.up ? 1 : 0;
}

static uint64_t counter_errors(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.errors;
}

static uint64_t counter_reconnects(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.reconnects;
}

static uint64_t counter_loop_waits(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.loop_waits;
}

static uint64_t gauge_inflight(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.inflight;
}

static uint64_t counter_switches(void *arg)
{
    struct dz_store_health h;

    dz_store_health(arg, &h);
    return h.master_switches;
}

static int collect_latency(void *arg, struct dz_buf *out)
{
    struct dz_store_health h;
    int rc;

    dz_store_health(arg, &h);
    if (!h.latency)
        return 0; /* in process: no round trips to time */
    if ((rc = dz_metrics_put_family(out, "darvaza_store_latency_seconds", "histogram",
                                    "Round trips to the shared state store")) != 0)
        return rc;
    return dz_metrics_put_histo(out, "darvaza_store_latency_seconds", NULL, h.latency);
}

int dz_store_setup_metrics(struct dz_metrics *m, struct dz_store *s)
{
    int rc;

    if ((rc = dz_metrics_gauge_fn(m, "darvaza_store_up",
                                  "1 when the state store answers (always 1 in process)", gauge_up,
                                  s)) != 0 ||
        (rc = dz_metrics_counter_fn(m, "darvaza_store_errors_total",
                                    "State store calls that failed on the store's side",
                                    counter_errors, s)) != 0 ||
        (rc = dz_metrics_counter_fn(
             m, "darvaza_store_reconnects_total",
             "Connections to the state store made after a failure or at start", counter_reconnects,
             s)) != 0 ||
        (rc = dz_metrics_counter_fn(
             m, "darvaza_store_loop_waits_total",
             "Blocking state store round trips made on a worker loop (each stalls that loop)",
             counter_loop_waits, s)) != 0 ||
        (rc = dz_metrics_gauge_fn(m, "darvaza_store_inflight",
                                  "Asynchronous state store calls waiting for an answer",
                                  gauge_inflight, s)) != 0 ||
        (rc = dz_metrics_counter_fn(m, "darvaza_store_master_switches_total",
                                    "Redis failovers followed from the sentinels' +switch-master",
                                    counter_switches, s)) != 0)
        return rc;
    return dz_metrics_collector(m, collect_latency, s);
}
