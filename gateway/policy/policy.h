/*
 * policy.h - the policy engine: which connected information system (a
 * service) answers which paths, and who may call each route, at what
 * assurance, with which means, role and purpose, and which registry fields
 * each route releases.  DESIGN.md §4.9.
 *
 * One YAML file per service in the policies directory.  Loading compiles all
 * files into an immutable struct dz_policy_set; matching and evaluation walk
 * it without allocating, take no locks and know nothing of HTTP beyond a
 * method name and a path.  Default deny: a request no route matches is not
 * forwarded, and every evaluation starts as DZ_DENY.  A bad directory never
 * yields a partial set, so the gateway keeps its old set on a bad reload.
 *
 * Thread affinity: load and free from one thread (start-up or the reload
 * path; loading reads files, so never on a loop thread).  A loaded set is
 * read-only: match, eval and the accessors may run on any thread at once.
 * The caller keeps the set alive while any request uses its routes.
 */
#ifndef DZ_POLICY_H
#define DZ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/parse.h"
#include "keys/assertion.h"

#define DZ_POLICY_MAX_FILES 64    /* services (files) in a directory */
#define DZ_POLICY_MAX_ROUTES 256  /* routes in one service */
#define DZ_POLICY_MAX_TOTAL 1024  /* routes in a set */
#define DZ_POLICY_MAX_SEGMENTS 32 /* path segments in a template or a request */
#define DZ_POLICY_MAX_BYTES (256 * 1024)
#define DZ_POLICY_SERVICE_NAME_MAX 63 /* a service's name: [a-z0-9-], 1..63 */
#define DZ_POLICY_PURPOSE_MAX 128     /* Darvaza-Purpose: printable ASCII, 1..128 */

/* Assurance levels (DESIGN §3), ordered. */
enum dz_acr { DZ_ACR_NONE = 0, DZ_ACR_LOW = 1, DZ_ACR_SUBSTANTIAL = 2, DZ_ACR_HIGH = 3 };

/* Authentication means: enum dz_amr (DZ_AMR_* bits) from assertion.h. */

enum dz_decision { DZ_DENY = 0, DZ_ALLOW = 1 };

enum dz_policy_purpose {
    DZ_PURPOSE_NONE = 0,     /* Darvaza-Purpose is ignored */
    DZ_PURPOSE_OPTIONAL = 1, /* validated when present */
    DZ_PURPOSE_REQUIRED = 2  /* must be present and valid */
};

enum dz_method {
    DZ_METHOD_GET = 1 << 0,
    DZ_METHOD_HEAD = 1 << 1,
    DZ_METHOD_POST = 1 << 2,
    DZ_METHOD_PUT = 1 << 3,
    DZ_METHOD_PATCH = 1 << 4,
    DZ_METHOD_DELETE = 1 << 5,
    DZ_METHOD_OPTIONS = 1 << 6
};

/* Registry record fields a route may release; bit i is dz_policy_release_names[i]. */
enum dz_release {
    DZ_RELEASE_FIN = 1 << 0,
    DZ_RELEASE_NAME = 1 << 1,
    DZ_RELEASE_SURNAME = 1 << 2,
    DZ_RELEASE_PATRONYMIC = 1 << 3,
    DZ_RELEASE_BIRTH_DATE = 1 << 4,
    DZ_RELEASE_BIRTH_PLACE = 1 << 5,
    DZ_RELEASE_GENDER = 1 << 6,
    DZ_RELEASE_DOCUMENT = 1 << 7,
    DZ_RELEASE_ADDRESS = 1 << 8,
    DZ_RELEASE_PHONES = 1 << 9
};
#define DZ_RELEASE_COUNT 10
/* "fin", "name", "surname", "patronymic", "birth_date", "birth_place",
 * "gender", "document", "address", "phones": the JSON member names. */
extern const char *const dz_policy_release_names[DZ_RELEASE_COUNT];

enum dz_upstream_http {
    DZ_UPSTREAM_H2 = 0,  /* HTTP/2 over TLS (ALPN h2): default for https */
    DZ_UPSTREAM_H2C = 1, /* HTTP/2 prior knowledge, cleartext: default for http */
    DZ_UPSTREAM_HTTP1 = 2
};

enum dz_rate_scope {
    DZ_RATE_PER_SUBJECT = 0, /* per FIN (the client address when there is no session) */
    DZ_RATE_PER_ADDRESS = 1  /* per client address */
};

struct dz_policy_limits {
    uint64_t body;       /* bytes; 0 = unset: the config's limits.body applies */
    uint64_t timeout_ms; /* 0 = unset: the config's limits.request_timeout applies */
    struct dz_rate rate; /* rate.count 0 = no rate limit */
    enum dz_rate_scope rate_scope;
    /* Service level only (a route's limits refuse them); 0 = unset.  The
     * service's effective caps are dz_policy_service.in_flight*. */
    unsigned in_flight;            /* requests in flight to the back end, whole process */
    unsigned in_flight_per_caller; /* of those, one caller's, per worker */
};

/* The cap on a service's requests in flight when its policy sets none, and
 * the largest it may set (docs/policies.md "limits"). */
#define DZ_POLICY_IN_FLIGHT_DEFAULT 512
#define DZ_POLICY_IN_FLIGHT_MAX 100000

/* A compiled template segment (read by dz_policy_match). */
enum dz_policy_seg_kind { DZ_SEG_LITERAL = 0, DZ_SEG_FIN = 1, DZ_SEG_ANY = 2 };
struct dz_policy_seg {
    enum dz_policy_seg_kind kind;
    const char *text; /* literals: the segment, NUL-terminated */
    size_t len;
};

struct dz_policy_service;

struct dz_policy_route {
    const struct dz_policy_service *service;
    const char *path; /* template as written: "/api/registry/persons/{fin}" */
    unsigned methods; /* DZ_METHOD_* bits */
    enum dz_acr acr;  /* minimum level (DZ_ACR_NONE only on public routes) */
    unsigned means;   /* DZ_AMR_* bits; the session needs one; 0 = any */
    const char *role; /* required subject role, or NULL */
    enum dz_policy_purpose purpose;
    unsigned release;                 /* DZ_RELEASE_* bits */
    bool require_signed_body;         /* body must be a CAdES document signed by the subject */
    bool self_only;                   /* the {fin} must be the subject's own FIN */
    bool is_public;                   /* no session needed */
    bool has_fin;                     /* the template has a {fin} segment */
    struct dz_policy_limits limits;   /* effective: each field from the route, else the service */
    const char *rule;                 /* "registry.yaml:8 GET /api/registry/persons/{fin}" */
    const char *file;                 /* the policy file's path */
    unsigned line;                    /* the route's line in it */
    const struct dz_policy_seg *segs; /* compiled template */
    size_t n_segs;
};

struct dz_policy_oidc; /* policy_oidc.h: the service as an OpenID Connect client */

/* How the service's assertions are signed (docs/assertions.md): one
 * signature each, or batched with the requests of the same moment. */
enum dz_assertion_signing { DZ_SIGNING_REQUEST = 0, DZ_SIGNING_BATCH = 1 };

struct dz_policy_service {
    const char *name;          /* [a-z0-9-]+, unique; the assertion's aud */
    const char *registered_as; /* state register entry, e.g. "DIS-0001", unique */
    const char *upstream;      /* "https://127.0.0.1:9101" (no trailing '/') */
    const char *upstream_host; /* host part (no brackets) */
    uint16_t upstream_port;
    bool upstream_is_https;
    enum dz_upstream_http upstream_http;
    struct dz_policy_limits limits;              /* as written at service level (0 = unset) */
    enum dz_assertion_signing assertion_signing; /* policy "assertion: {signing}" */
    /* Effective caps on requests in flight (limits.in_flight, else
     * DZ_POLICY_IN_FLIGHT_DEFAULT; per caller: limits.in_flight_per_caller,
     * else a quarter of the cap, at least 1) and the process-wide count
     * against the first (forward/inflight.h keeps it; allocated with the
     * set, so a reload starts a new count). */
    unsigned in_flight;
    unsigned in_flight_per_caller;
    _Atomic unsigned *in_flight_now;
    const struct dz_policy_route *routes;
    size_t n_routes;
    const char *file;
    /* Its "oidc:" block, or NULL.  A service with one may leave out
     * upstream and routes (then upstream is NULL and n_routes 0). */
    const struct dz_policy_oidc *oidc;
};

/* The compiled set (fields are the engine's; use the functions below). */
struct dz_policy_set {
    struct dz_policy_service *services;
    size_t n_services;
    const struct dz_policy_route **routes; /* every route, in load order */
    size_t n_routes;
};

/*
 * Load every "*.yaml" file of dir (sorted by name; names starting with '.'
 * skipped), one service per file, into a new set.  On success *out is set
 * to the new set (the caller owns it; a set it held before is NOT freed).
 * On any error *out is not touched (so the current set stays in force on a
 * bad reload) and err reads "file:line: key: reason".  Returns 0, DZ_ERR_INVAL (a policy error),
 * DZ_ERR_PARSE (YAML syntax), DZ_ERR_IO, DZ_ERR_TOOBIG, DZ_ERR_NOMEM.
 * Blocking (reads files).
 */
int dz_policy_load_dir(const char *dir, struct dz_policy_set **out, char *err, size_t err_len);

/* The same for one policy text held in memory (name used in messages and
 * rule names); gives a one-service set.  For tests and the fuzzer. */
int dz_policy_load_buf(const char *name, const void *data, size_t len, struct dz_policy_set **out,
                       char *err, size_t err_len);

/* Free a set; NULL is a no-op. */
void dz_policy_set_free(struct dz_policy_set *s);

/* Services of a set (NULL when i is out of range or the name unknown). */
size_t dz_policy_service_count(const struct dz_policy_set *s);
const struct dz_policy_service *dz_policy_service_at(const struct dz_policy_set *s, size_t i);
const struct dz_policy_service *dz_policy_service_find(const struct dz_policy_set *s,
                                                       const char *name);

enum dz_policy_match_status {
    DZ_MATCH_FOUND = 0,      /* service, route and fin are set */
    DZ_MATCH_NONE = 1,       /* no route has this path: 404 not_found */
    DZ_MATCH_METHOD = 2,     /* routes have this path, not this method: 405 (allowed) */
    DZ_MATCH_INVALID_FIN = 3 /* the path fits only with a {fin} that is no FIN: 400 invalid_fin */
};

struct dz_policy_match {
    enum dz_policy_match_status status;
    const struct dz_policy_service *service;
    const struct dz_policy_route *route;
    char fin[8];      /* the {fin} value upper-cased, "" when the route has none */
    unsigned allowed; /* DZ_MATCH_METHOD: DZ_METHOD_* bits accepted on this path */
};

/*
 * Find the route for method and path (no query string; the caller strips
 * it and does not decode percent-escapes).  Segments are compared exactly:
 * a literal segment beats {fin}, which beats "*"; empty, "." and ".."
 * segments never match.  *out is cleared on entry; the outcome is
 * out->status.  Returns 0, or DZ_ERR_INVAL for NULL arguments.
 * No allocation; any thread.
 */
int dz_policy_match(const struct dz_policy_set *s, const char *method,
                    const char *path_without_query, struct dz_policy_match *out);

/* Who is asking (from the session).  fin NULL or "" = no session. */
struct dz_policy_subject {
    const char *fin; /* normalised upper-case FIN */
    enum dz_acr acr;
    unsigned amr;     /* DZ_AMR_* bits */
    const char *role; /* e.g. "judge", or NULL */
};

/*
 * Decide one request on route r.  subj may be NULL (no session);
 * purpose_header is the Darvaza-Purpose value or NULL; target_fin is the
 * matched {fin} (struct dz_policy_match .fin) or NULL.
 * On entry *out = DZ_DENY, *out_reason_code = "forbidden" and *out_rule the
 * rule's name ("default deny" without a route).  Checks, in order:
 *   public route                     -> DZ_ALLOW, reason "allowed"
 *   no subject                       -> "unauthenticated"          (401)
 *   acr below the route's, or none of the route's means in amr
 *                                    -> "insufficient_assurance"   (403)
 *   role differs, or a self-only route whose target is not the subject
 *                                    -> "forbidden"                (403)
 *   purpose required and absent/empty -> "purpose_required"        (400)
 *   purpose given but not 1..128 printable ASCII (route purpose not none)
 *                                    -> "invalid_purpose"          (400)
 *   otherwise                        -> DZ_ALLOW, reason "allowed"
 * Returns 0 with the decision, or DZ_ERR_INVAL (NULL route or out-params, a
 * {fin} route without a valid target) with *out left DZ_DENY: fail closed.
 * No allocation; any thread; the strings returned are static or owned by
 * the set.
 */
int dz_policy_eval(const struct dz_policy_route *r, const struct dz_policy_subject *subj,
                   const char *purpose_header, const char *target_fin, enum dz_decision *out,
                   const char **out_reason_code, const char **out_rule);

/* Whether route r releases the registry field named field ("phones"...);
 * false for unknown names and NULL arguments. */
bool dz_policy_release_allows(const struct dz_policy_route *r, const char *field);

/* Name tables (all return 0 / NULL for unknown input; no allocation). */
unsigned dz_policy_release_bit(const char *field);        /* DZ_RELEASE_* or 0 */
unsigned dz_policy_method_bit(const char *method);        /* DZ_METHOD_* or 0 */
unsigned dz_policy_amr_bit(const char *name);             /* DZ_AMR_* or 0 */
const char *dz_policy_amr_name(unsigned bit);             /* "pwd"..., NULL if not one bit */
int dz_policy_acr_parse(const char *s, enum dz_acr *out); /* "low"|"substantial"|"high" */
const char *dz_policy_acr_name(enum dz_acr acr);          /* "none" for DZ_ACR_NONE */
bool dz_policy_purpose_valid(const char *purpose);        /* printable ASCII, 1..128 */

#endif
