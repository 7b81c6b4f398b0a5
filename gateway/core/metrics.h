/*
 * metrics.h - the gateway's Prometheus metrics (GET /metrics, text format
 * 0.0.4).
 *
 *   darvaza_requests_total{service,route,method,status}        counter
 *   darvaza_request_duration_seconds{service,route,method}     histogram
 *   darvaza_upstream_request_duration_seconds{service}         histogram
 *   darvaza_logins_total{means,result}                         counter
 *   darvaza_upstream_errors_total{service,kind}                counter
 *   darvaza_forward_refused_total{service,reason}              counter
 *   gauges and counters registered with dz_metrics_gauge_fn /
 *   dz_metrics_counter_fn, read when rendered, and collectors
 *   (dz_metrics_collector) that append whole families (gateway/ops).
 * docs/metrics.md lists every metric the gateway exposes.
 *
 * Labels survive policy edits: route is the template as written in the
 * policy (no file, no line), status a class ("2xx" .. "5xx", "other" when
 * nothing was sent), method one of a fixed list (else "other").
 *
 * Label sets are bounded so a client cannot grow the memory or the scrape:
 * at most DZ_METRICS_ROUTES_MAX (service, route, method) series (then one
 * series with all three "other"), at most DZ_METRICS_SERVICES_MAX upstream
 * services (then service="other"), at most DZ_METRICS_PAIRS_MAX label pairs
 * per two-label counter (then the first label becomes "other").  A label value
 * is 1..DZ_METRICS_LABEL_MAX bytes of printable ASCII; anything else counts as "other".  Callers
 * pass code constants or policy rule ids, never request data.
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
struct dz_histo;
struct dz_metrics;

#define DZ_METRICS_ROUTES_MAX 128  /* distinct routes before route="other" */
#define DZ_METRICS_SERVICES_MAX 64 /* upstream services before service="other" */
#define DZ_METRICS_PAIRS_MAX 64    /* distinct label pairs per 2-label counter */
#define DZ_METRICS_LABEL_MAX 96    /* bytes of a label value */
#define DZ_METRICS_GAUGES_MAX 24   /* registered gauges and counters */
#define DZ_METRICS_COLLECTORS_MAX 16

/* A new, empty set.  0 or DZ_ERR_NOMEM (*out NULL).  Main thread. */
int dz_metrics_new(struct dz_metrics **out);

/* NULL is a no-op.  No other thread may use m any more.  Main thread. */
void dz_metrics_free(struct dz_metrics *m);

/* One answered request: service the policy's service name ("darvaza" for
 * the gateway's own endpoints, "none" when no route matched), route the
 * route template as written ("/api/registry/me", "/healthz"), method the
 * request's method, status the HTTP status sent (counted by class; 0 = none
 * sent), duration from the request's arrival to its last byte queued.
 * Labels longer than DZ_METRICS_LABEL_MAX or not printable ASCII count as
 * "other".  Any thread; lock-free. */
void dz_metrics_request(struct dz_metrics *m, const char *service, const char *route,
                        const char *method, int status, uint64_t duration_us);

/* One answer head from a back end of service, duration_us after the
 * request was sent.  Any thread; lock-free. */
void dz_metrics_upstream(struct dz_metrics *m, const char *service, uint64_t duration_us);

/* One login attempt: means "password" | "card" | "mobile" | "qr" ...,
 * result "ok" | "bad_credentials" | "locked" | "error" ...  Any thread. */
void dz_metrics_login(struct dz_metrics *m, const char *means, const char *result);

/* One failed upstream exchange: service name, kind "connect" | "timeout" |
 * "tls" | "protocol" | "too_large" ...  Any thread. */
void dz_metrics_upstream_error(struct dz_metrics *m, const char *service, const char *kind);

/* A forward refused before it reached the back end for want of room:
 * reason "in_flight" (the service's cap) or "in_flight_caller" (one
 * caller's share).  Any thread; lock-free. */
void dz_metrics_forward_refused(struct dz_metrics *m, const char *service, const char *reason);

/* One audit line lost after the action it records had happened (nothing
 * could refuse the action any more): kind "outcome" (a forwarded
 * request's outcome line); another kind counts as "other".  Any thread;
 * lock-free. */
void dz_metrics_audit_lost(struct dz_metrics *m, const char *kind);

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

/* The same for a number that only grows: rendered with # TYPE counter
 * (its name should end in _total). */
int dz_metrics_counter_fn(struct dz_metrics *m, const char *name, const char *help,
                          uint64_t (*fn)(void *arg), void *arg);

/*
 * Register a collector: fn(arg, out) is called at each render, after the
 * built-in families, on the rendering thread, and appends whole families
 * (with dz_metrics_put_family and samples) to out; it returns 0 or the
 * dz_buf error.  Same rules as dz_metrics_gauge_fn for fn and arg.
 * 0, DZ_ERR_INVAL, DZ_ERR_TOOBIG.  Any thread.
 */
int dz_metrics_collector(struct dz_metrics *m, int (*fn)(void *arg, struct dz_buf *out), void *arg);

/* Helpers for collectors.  "# HELP name help" and "# TYPE name type". */
int dz_metrics_put_family(struct dz_buf *out, const char *name, const char *type, const char *help);
/* value escaped for a label value (\, ", newline). */
int dz_metrics_put_label(struct dz_buf *out, const char *value);
/* name_bucket{labels,le=..}, name_sum, name_count of h; labels is
 * preformatted ('a="x",b="y"', already escaped) or "" / NULL. */
int dz_metrics_put_histo(struct dz_buf *out, const char *name, const char *labels,
                         const struct dz_histo *h);

/*
 * Append the Prometheus text exposition (format 0.0.4: # HELP and # TYPE
 * lines, label values escaped, families and labels in sorted order) to out,
 * a buffer the caller set up with its own maximum.  Serve it as
 * "text/plain; version=0.0.4; charset=utf-8".  Returns 0, or the dz_buf
 * error (DZ_ERR_TOOBIG, DZ_ERR_NOMEM: out has then been freed).  Any thread.
 */
int dz_metrics_render(const struct dz_metrics *m, struct dz_buf *out);

#endif
