/*
 * accesslog.h - the access log: one JSON line per answered request, on a
 * stream of its own (stderr or a file; config access_log:).
 *
 * A line says who asked what and what came of it — time, request id (the
 * "instance" of a problem document), gateway and host, client address,
 * method, route template, status, bytes, duration, the back end's status
 * and time, a short hash of the session id, means and acr — and never a
 * token, a cookie, a password, a one-time code or, unless access_log.log_fin
 * is true, a path that carries a FIN.  docs/operations.md lists the fields.
 *
 * Lines are built on the loop thread and handed to one writer thread
 * through a bounded queue: the loop never waits for the disk.  When the
 * queue is full (the disk stalls for longer than the queue lasts) lines are
 * dropped and counted, and the writer says so in the ops log.
 */
#ifndef DZ_ACCESSLOG_H
#define DZ_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/rctx.h"

/* How much of a path may be logged without knowing whether it holds a FIN. */
enum dz_access_path {
    DZ_ACCESS_PATH_SAFE,    /* its route has no FIN or id in it: log it */
    DZ_ACCESS_PATH_FIN,     /* its route carries a FIN or a login id: never (log_fin aside) */
    DZ_ACCESS_PATH_UNKNOWN, /* no route matched: log it unless a segment looks like a FIN */
};

/* What one line says; strings may be NULL (left out). */
struct dz_access_entry {
    int64_t time_ms; /* unix milliseconds, when the request ended */
    const char *rid;
    const char *gw;   /* gateway.id */
    const char *host; /* the machine's host name */
    const char *client;
    const char *method;
    const char *route; /* template or built-in endpoint name */
    const char *service;
    const char *path; /* without the query string: never logged */
    enum dz_access_path path_kind;
    int status;
    uint64_t bytes;
    uint64_t dur_us;
    int upstream_status; /* 0: no back end was asked */
    uint64_t upstream_us;
    const char *sid; /* short hash of the session id, or NULL */
    const char *means;
    const char *acr;
};

/*
 * Format e as one JSON line ending in '\n' (ASCII only, escaped by jansson).
 * The path is written when log_fin is true, or by e->path_kind.  Pure: no
 * I/O, no globals.  *out is malloc'd (caller frees) and NULL on error.
 * 0 or DZ_ERR_NOMEM.  Any thread.
 */
int dz_accesslog_format(const struct dz_access_entry *e, bool log_fin, char **out, size_t *out_len);

/*
 * The route template of a route label: "/api/registry/me" from a policy
 * rule "registry.yaml:9 GET /api/registry/me", the label itself for a
 * built-in name.  Writes into buf; returns buf.  Pure.
 */
const char *dz_accesslog_route(const char *label, char *buf, size_t buf_len);

/*
 * Start the writer for cf (output off starts nothing).  Opens the file
 * (O_APPEND, created mode 0640).  0, DZ_ERR_IO (err says why), DZ_ERR_NOMEM.
 * Main thread, before the workers start.
 */
int dz_accesslog_open(const struct dz_config_access_log *cf, char *err, size_t err_len);

/*
 * Apply a reloaded config: switches output and reopens when the path
 * changed.  On failure the old output stays and err says why.  0 or
 * DZ_ERR_IO.  Main thread.
 */
int dz_accesslog_configure(const struct dz_config_access_log *cf, char *err, size_t err_len);

/* Reopen the file at the same path (after a rename by logrotate): 0, or
 * DZ_ERR_IO (the old file stays in use; err says why).  Main thread. */
int dz_accesslog_reopen(char *err, size_t err_len);

/* Log c's line (once the stream has closed).  Never blocks.  Loop thread. */
void dz_accesslog_request(const struct dz_rctx *c);

/* Write what is queued, stop the writer, close.  Main thread, at exit. */
void dz_accesslog_close(void);

#endif
