/*
 * metrics.h - the gateway's Prometheus metrics (GET /metrics, text format
 * 0.0.4).
 *
 *   darvaza_requests_total{route,status}            counter
 *   darvaza_request_duration_seconds{route}         histogram, buckets
 *       0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf
 *   darvaza_logins_total{means,result}              counter
 *   darvaza_upstream_errors_total{service,kind}     counter
 *   gauges registered with dz_metrics_gauge_fn, read when rendered; the
 *   gateway registers darvaza_open_connections and darvaza_sessions.
 *
 * Label sets are bounded so a client cannot grow the memory or the scrape:
 * at most DZ_METRICS_ROUTES_MAX routes (then route="other"), at most
 * DZ_METRICS_STATUS_MAX statuses per route (then status="other"), at most
 * DZ_METRICS_PAIRS_MAX label pairs per two-label counter (then the first
 * label becomes "other").  A label value is 1..DZ_METRICS_LABEL_MAX bytes of
 * printable ASCII; anything else counts as "other".  Callers pass code
 * constants or policy rule ids, never request data.
 *
 * Threading: dz_metrics_request/_login/_upstream_error may be called from
 * any number of threads at once; they take no lock (relaxed atomics and a
 * lock-free insert-only label table), never allocate after a label is
 * first seen, and never fail.  dz_metrics_render may run at the same time on
 * any thread (each number is read atomically; a scrape is not a snapshot
 * across numbers, which Prometheus tolerates).  dz_metrics_new/_free on the
 * main thread; dz_metrics_gauge_fn on any thread (a mutex, not a hot path).
 */
#ifndef DZ_METRICS_H
#define DZ_METRICS_H

#include <stdint.h>

struct dz_buf;
struct dz_metrics;

#define DZ_METRICS_ROUTES_MAX 128 /* distinct routes before route="other" */
#define DZ_METRICS_STATUS_MAX 24  /* distinct statuses per route */
#define DZ_METRICS_PAIRS_MAX 64   /* distinct label pairs per 2-label counter */
#define DZ_METRICS_LABEL_MAX 64   /* bytes of a label value */
#define DZ_METRICS_GAUGES_MAX 16  /* registered gauges */

/* A new, empty set.  0 or DZ_ERR_NOMEM (*out NULL).  Main thread. */
int dz_metrics_new(struct dz_metrics **out);

/* NULL is a no-op.  No other thread may use m any more.  Main thread. */
void dz_metrics_free(struct dz_metrics *m);

/* One answered request: route is the policy rule id or the builtin
 * endpoint's name ("healthz", "login_password", ...), status the HTTP
 * status sent (0..999; others count as 0 = none sent), duration from the
 * request's arrival to its last byte queued.  Any thread; lock-free. */
void dz_metrics_request(struct dz_metrics *m, const char *route, int status, uint64_t duration_us);

/* One login attempt: means "password" | "card" | "mobile" | "qr" ...,
 * result "ok" | "bad_credentials" | "locked" | "error" ...  Any thread. */
void dz_metrics_login(struct dz_metrics *m, const char *means, const char *result);

/* One failed upstream exchange: service name, kind "connect" | "timeout" |
 * "tls" | "protocol" | "too_large" ...  Any thread. */
void dz_metrics_upstream_error(struct dz_metrics *m, const char *service, const char *kind);

/*
 * Register a gauge read by calling fn(arg) at each render (on the rendering
 * thread: fn must be thread-safe and must not block, e.g.
 * dz_httpd_open_connections).  name is a Prometheus metric name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 63 bytes), help one line of at most
 * 127 bytes (both copied).  fn and arg must stay valid until
 * dz_metrics_free.  Returns 0, DZ_ERR_INVAL (bad name/help/fn),
 * DZ_ERR_EXISTS (name taken), DZ_ERR_TOOBIG (DZ_METRICS_GAUGES_MAX reached).
 * Any thread.
 */
int dz_metrics_gauge_fn(struct dz_metrics *m, const char *name, const char *help,
                        uint64_t (*fn)(void *arg), void *arg);

/*
 * Append the Prometheus text exposition (format 0.0.4: # HELP and # TYPE
 * lines, label values escaped, families and labels in sorted order) to out,
 * a buffer the caller set up with its own maximum.  Serve it as
 * "text/plain; version=0.0.4; charset=utf-8".  Returns 0, or the dz_buf
 * error (DZ_ERR_TOOBIG, DZ_ERR_NOMEM: out has then been freed).  Any thread.
 */
int dz_metrics_render(const struct dz_metrics *m, struct dz_buf *out);

#endif
