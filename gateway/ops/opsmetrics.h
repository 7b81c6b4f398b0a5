/*
 * opsmetrics.h - the operator's metrics that are not about one request:
 * build, config reloads, certificate expiry, and the figures the lower
 * layers keep (audit fdatasync durations, blocking pool, OCSP cache, store
 * budgets).  It registers collectors on the gateway's metrics and renders
 * those families at each scrape; docs/metrics.md lists them.
 *
 * Certificates are read from the files a generation's config names when
 * that generation is loaded (start-up and each successful reload, on the
 * main thread), never at a scrape: a scrape must not touch the disk.
 */
#ifndef DZ_OPSMETRICS_H
#define DZ_OPSMETRICS_H

#include <stdbool.h>

#include "core/gen.h"

#define DZ_OPSMETRICS_CERTS_MAX 64 /* certificate series kept; more are not shown */

struct dz_opsmetrics;

/*
 * Register the collectors on gw->metrics and take the certificates of
 * gw->gen as the first successful load.  gw (metrics, store, pool, audit,
 * ocsp_cache; each may be NULL and is then not shown) must outlive the
 * metrics' last render.  0, DZ_ERR_NOMEM, or the registration's error.
 * Main thread.
 */
int dz_opsmetrics_new(struct dz_gw *gw, struct dz_opsmetrics **out);

/* A reload was tried: ok with its new generation g, or failed (g NULL).
 * Counts it, and on success re-reads the certificates.  Main thread. */
void dz_opsmetrics_reloaded(struct dz_opsmetrics *om, bool ok, const struct dz_gen *g);

/* NULL is a no-op.  Only after the last render (dz_metrics_free first or
 * no scrape can run).  Main thread. */
void dz_opsmetrics_free(struct dz_opsmetrics *om);

#endif
