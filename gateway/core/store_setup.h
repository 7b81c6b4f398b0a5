/*
 * store_setup.h - make the ephemeral store the config names (store.backend:
 * memory | redis) and publish its health in /metrics.  The Redis password
 * and value key are read from their files (0600) here and wiped once the
 * backend has its copy.  Start-up thread.
 */
#ifndef DZ_STORE_SETUP_H
#define DZ_STORE_SETUP_H

#include <stddef.h>

#include "core/config.h"
#include "core/metrics.h"
#include "state/store.h"

/* The configured store, with the budgets of cf.  0 or a negative dz_err;
 * why (why_cap bytes) says what failed (a path, never a secret). */
int dz_store_setup_open(const struct dz_config_store *cf, struct dz_store **out, char *why,
                        size_t why_cap);

/* darvaza_store_up, darvaza_store_errors_total, darvaza_store_reconnects_total
 * and darvaza_store_latency_seconds (docs/metrics.md).  s must outlive m. */
int dz_store_setup_metrics(struct dz_metrics *m, struct dz_store *s);

#endif
