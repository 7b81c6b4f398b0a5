/*
 * fake_gw.h - one gateway generation and its process-wide objects, built
 * for a test through the real loaders, serving fake requests on one fake
 * worker (fake_req.h).  How to write a request-layer test: README.md here.
 *
 * What is real: the config loader (a small YAML file written from a
 * template plus the test's own sections), the policy loader (the test's
 * policy YAML), the generation (dz_gen_load: a file signing key, JWKS,
 * trust stores), the in-memory store, the accounts database (SQLite in the
 * temporary directory; argon2id with test-cheap costs, set when the harness
 * opens it, since darvazad takes them from the config), the audit log (its
 * writer thread, fdatasync and all, in a temporary file), the blocking pool
 * (2 threads), metrics, the router's worker data (dz_router_worker_init:
 * the outbound httpc on the test's loop) and an HTTP/1.1 back end on a
 * loopback port (fake_upstream.h).  What is fake: the HTTP engine only.
 *
 * Everything lives in a mkdtemp directory under /tmp, removed by
 * fake_gw_free; nothing is shared between tests.
 */
#ifndef DZ_TEST_FAKE_GW_H
#define DZ_TEST_FAKE_GW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/gen.h"
#include "fake_req.h"
#include "fake_upstream.h"

struct fake_gw {
    char dir[64];
    struct dz_gw gw;
    struct dz_worker *w;
    struct dz_gw_worker *gww;
    struct fake_upstream *up;
    char upstream_url[64];
    char audit_path[128];
};

struct fake_gw_opts {
    /* One policy file (NULL: a service "backend" with GET /api/default).  "@UPSTREAM@" is replaced
     * by the fake back end's URL, e.g. http://127.0.0.1:40123. */
    const char *policy_yaml;
    /* Extra top-level config sections (cards:, mobile:, documents:...).
     * "@DIR@" is replaced by the temporary directory: write the files they
     * name there first, with fake_gw_opts.prepare; "@UPSTREAM@" as above
     * (the fake back end as another service the gateway calls, an MSSP). */
    const char *config_extra;
    /* Replaces the default lockout: section ("fin_attempts: 3 ..."), NULL:
     * the defaults. */
    const char *lockout;
    /* Called with the temporary directory before the generation loads, to
     * write the files config_extra names (e.g. a CA bundle). */
    void (*prepare)(const char *dir, void *arg);
    void *prepare_arg;
};

#define FAKE_GW_ORIGIN "https://gw.test"
#define FAKE_GW_TIMEOUT_MS 15000u

/* Write text to dir/name with mode (e.g. 0600 for a secret); 0 or -1.
 * For fake_gw_opts.prepare. */
int fake_gw_write_file(const char *dir, const char *name, const char *text, unsigned mode);

/* Build everything; 0, or -1 with the reason on stderr. */
int fake_gw_new(const struct fake_gw_opts *o, struct fake_gw **out);
/* Spin until idle (no work in flight), then tear down in the daemon's
 * order.  Returns false if work was still in flight (a leak to report). */
bool fake_gw_free(struct fake_gw *g);

/* A request from 127.0.0.1 with Origin FAKE_GW_ORIGIN absent. */
struct dz_req *fake_gw_req(struct fake_gw *g, const char *method, const char *path);
/* Hand the request to the router, as the engine does when it is complete
 * (on_headers, then on_request). */
void fake_gw_send(struct fake_gw *g, struct dz_req *r);
/* send, then spin until the answer is complete; false on timeout. */
bool fake_gw_roundtrip(struct fake_gw *g, struct dz_req *r);

/* A session opened straight in the store (as a login would), with its
 * token in token[44]; amr is enum dz_amr bits. */
void fake_gw_session(struct fake_gw *g, const char *fin, const char *method, unsigned amr,
                     const char *acr, const char *role, char token[64]);
/* "authorization: Bearer <token>" on r. */
void fake_req_bearer(struct dz_req *r, const char *token);

/* The audit log as it is on disk now (malloc'd, "" if empty). */
char *fake_gw_audit_text(struct fake_gw *g);
/* The audit line with "rid" = rid and "type" = type (type NULL: any), parsed;
 * NULL if none.  json_decref it. */
json_t *fake_gw_audit_find(struct fake_gw *g, const char *rid, const char *type);

/* The answer's body parsed as JSON (NULL if it is not); json_decref it. */
json_t *fake_req_json(const struct dz_req *r);
/* The "code" of a problem+json answer, copied into buf; "" if the answer
 * is not problem+json or has no code. */
const char *fake_req_problem_code(const struct dz_req *r, char *buf, size_t buf_len);

#endif
