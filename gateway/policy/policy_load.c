/*
 * policy_load.c - reads policy files and compiles them into a struct
 * dz_policy_set; see policy.h.  Owns the validation of everything a policy
 * may say (unknown keys, names, URLs, templates, combinations that would
 * widen access) and reports each problem as file:line: key: reason.  It
 * never hands out a partly built set: any error frees all and returns.
 */
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/parse.h"
#include "base/yamltree.h"
#include "policy/policy_oidc.h"

#include "base/compat.h"

#define KEY_LEN 96

struct pctx {
    const char *file; /* path, for messages */
    const char *base; /* file name, for rule names */
    char *err;
    size_t err_len;
};

static int perr(struct pctx *c, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(struct pctx *c, unsigned line, const char *key, const char *fmt, ...)
{
    char reason[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return dz_yaml_error(c->err, c->err_len, c->file, line, key, "%s", reason);
}

static void route_key(char *out, size_t len, size_t idx, const char *name)
{
    int n = snprintf(out, len, "routes[%zu].%s", idx, name);
    if (n < 0 && len)
        out[0] = '\0';
}

/* Unknown keys are errors, not ignored: a misspelt "rol: judge" would
 * otherwise load as a route with no role restriction at all. */
static int check_keys(struct pctx *c, const struct dz_yaml_node *map, const char *const *known,
                      const char *prefix)
{
    char key[KEY_LEN];

    for (const struct dz_yaml_node *m = map->first; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], m->key) == 0;
        if (!ok) {
            int n = snprintf(key, sizeof(key), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                             m->key);
            if (n < 0)
                key[0] = '\0';
            return perr(c, m->key_line, key, "unknown key");
        }
    }
    return 0;
}

/* A non-empty scalar, or an error naming the key. */
static int scalar(struct pctx *c, const struct dz_yaml_node *n, const char *key, const char **out)
{
    *out = NULL;
    if (n->kind != DZ_YAML_SCALAR)
        return perr(c, n->key_line, key, "expected a value, got %s", dz_yaml_kind_name(n->kind));
    if (dz_yaml_is_null(n))
        return perr(c, n->key_line, key, "empty value");
    *out = n->str;
    return 0;
}

static int get_bool(struct pctx *c, const struct dz_yaml_node *map, const char *name,
                    const char *key, bool *out, bool *present)
{
    const struct dz_yaml_node *n = dz_yaml_get(map, name);
    const char *s = NULL;
    int rc;

    *out = false;
    *present = n != NULL;
    if (!n)
        return 0;
    rc = scalar(c, n, key, &s);
    if (rc != 0)
        return rc;
    if (dz_parse_bool(s, out) != 0)
        return perr(c, n->key_line, key, "expected true or false, got \"%.40s\"", s);
    return 0;
}

/* A list of names, each mapped to a bit by lookup; no repeats. */
static int get_bits(struct pctx *c, const struct dz_yaml_node *n, const char *key,
                    unsigned (*lookup)(const char *), const char *choices, unsigned *out)
{
    *out = 0;
    if (n->kind != DZ_YAML_SEQ)
        return perr(c, n->key_line, key, "expected a list such as [%s], got %s", choices,
                    dz_yaml_kind_name(n->kind));
    for (const struct dz_yaml_node *i = n->first; i; i = i->next) {
        unsigned bit;
        if (i->kind != DZ_YAML_SCALAR || dz_yaml_is_null(i))
            return perr(c, i->line, key, "expected one of %s", choices);
        bit = lookup(i->str);
        if (!bit)
            return perr(c, i->line, key, "\"%.40s\" is not one of %s", i->str, choices);
        if (*out & bit)
            /* A repeat changes nothing in the bits, but it usually means a
             * different name was meant: let the author look again. */
            return perr(c, i->line, key, "\"%s\" is listed twice", i->str);
        *out |= bit;
    }
    return 0;
}

static int parse_rate(struct pctx *c, const struct dz_yaml_node *n, const char *key,
                      struct dz_policy_limits *l)
{
    const char *s = n->str;
    const char *sp = strchr(s, ' ');
    char head[24];
    size_t hlen = sp ? (size_t)(sp - s) : strlen(s);
    int rc;

    if (hlen >= sizeof(head))
        return perr(c, n->key_line, key, "expected a rate such as \"20/s per subject\"");
    memcpy(head, s, hlen);
    head[hlen] = '\0';
    rc = dz_parse_rate(head, &l->rate);
    if (rc == DZ_ERR_INVAL)
        return perr(c, n->key_line, key, "the count must be between 1 and 1000000");
    if (rc != 0)
        return perr(c, n->key_line, key,
                    "expected a rate such as \"20/s per subject\" (N/s, N/m or N/h)");
    /* Per subject by default: a per-address count would put everyone
     * behind one NAT or proxy into one bucket. */
    l->rate_scope = DZ_RATE_PER_SUBJECT;
    if (!sp)
        return 0;
    if (strcmp(sp, " per subject") == 0)
        return 0;
    if (strcmp(sp, " per address") == 0) {
        l->rate_scope = DZ_RATE_PER_ADDRESS;
        return 0;
    }
    return perr(c, n->key_line, key, "the scope must be \"per subject\" or \"per address\"");
}

/* in_flight and in_flight_per_caller: a count from 1 to the cap's bound.
 * 0 is refused as in the other limits (it would mean "inherit"), and a
 * route cannot have them: the cap guards the back end, which all the
 * service's routes share. */
static int parse_in_flight(struct pctx *c, const struct dz_yaml_node *m, const char *key,
                           const char *s, bool service_level, unsigned *out)
{
    long long v;

    if (!service_level)
        return perr(c, m->key_line, key,
                    "a service limit: write it in the service's limits, not a route's");
    if (dz_parse_int(s, 1, DZ_POLICY_IN_FLIGHT_MAX, &v) != 0)
        return perr(c, m->key_line, key, "expected a count from 1 to %d, got \"%.40s\"",
                    DZ_POLICY_IN_FLIGHT_MAX, s);
    *out = (unsigned)v;
    return 0;
}

static int load_limits(struct pctx *c, const struct dz_yaml_node *n, const char *prefix,
                       bool service_level, struct dz_policy_limits *l)
{
    static const char *const known[] = {
        "body", "timeout", "rate", "in_flight", "in_flight_per_caller", NULL};
    char key[KEY_LEN];
    const char *s = NULL;
    int rc;

    memset(l, 0, sizeof(*l));
    if (n->kind != DZ_YAML_MAP)
        return perr(c, n->key_line, prefix, "expected a mapping {body, timeout, rate}");
    rc = check_keys(c, n, known, prefix);
    if (rc != 0)
        return rc;
    for (const struct dz_yaml_node *m = n->first; m; m = m->next) {
        rc = snprintf(key, sizeof(key), "%s.%s", prefix, m->key);
        if (rc < 0)
            key[0] = '\0';
        rc = scalar(c, m, key, &s);
        if (rc != 0)
            return rc;
        if (strcmp(m->key, "body") == 0) {
            /* 0 is left out on purpose: in limits it means "inherit", so a
             * written value must be a real bound (docs/internals/policy.md). */
            rc = dz_parse_size(s, 1, 1024ULL * 1024 * 1024, &l->body);
            if (rc != 0)
                return perr(c, m->key_line, key,
                            "expected a size from 1 byte to 1GiB such as 64KiB or 1MiB, got "
                            "\"%.40s\"",
                            s);
        } else if (strcmp(m->key, "timeout") == 0) {
            rc = dz_parse_duration(s, 100, 10 * 60 * 1000, &l->timeout_ms);
            if (rc != 0)
                return perr(c, m->key_line, key,
                            "expected a duration from 100ms to 10m such as 10s, got \"%.40s\"", s);
        } else if (strcmp(m->key, "in_flight") == 0) {
            rc = parse_in_flight(c, m, key, s, service_level, &l->in_flight);
            if (rc != 0)
                return rc;
        } else if (strcmp(m->key, "in_flight_per_caller") == 0) {
            rc = parse_in_flight(c, m, key, s, service_level, &l->in_flight_per_caller);
            if (rc != 0)
                return rc;
        } else {
            rc = parse_rate(c, m, key, l);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* The service's effective caps and its count.  A quarter per caller by
 * default: one caller (a person, or an address) can never take the whole
 * back end, and four busy ones together still can, which is what a shared
 * back end is for. */
static int service_in_flight(struct pctx *c, const struct dz_yaml_node *lim,
                             struct dz_policy_service *svc)
{
    const struct dz_policy_limits *l = &svc->limits;

    svc->in_flight = l->in_flight ? l->in_flight : DZ_POLICY_IN_FLIGHT_DEFAULT;
    svc->in_flight_per_caller =
        l->in_flight_per_caller ? l->in_flight_per_caller : (svc->in_flight + 3) / 4;
    if (svc->in_flight_per_caller > svc->in_flight) {
        const struct dz_yaml_node *m = dz_yaml_get(lim, "in_flight_per_caller");
        return perr(c, m->key_line, "limits.in_flight_per_caller",
                    "%u is more than the service's in_flight (%u)", svc->in_flight_per_caller,
                    svc->in_flight);
    }
    /* A cache line of its own: every worker writes it twice per request,
     * and a neighbour read on every request would bounce with it. */
    svc->in_flight_now = aligned_alloc(64, 64);
    if (!svc->in_flight_now)
        return perr(c, 0, NULL, "out of memory");
    memset((void *)svc->in_flight_now, 0, 64);
    return 0;
}

static bool is_literal_char(unsigned char ch)
{
    /* RFC 3986 unreserved plus ':' and '@' (pchar), and deliberately no '%',
     * so a literal never needs decoding to compare with a request path. */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':' || ch == '@';
}

/*
 * Compile "/api/registry/persons/{fin}" into segments.  Literal segments
 * use unreserved characters (plus ':' '@'), so an escaped or dotted request
 * path can never equal one; "{fin}" and "*" stand only as whole segments.
 */
static int compile_path(struct pctx *c, const char *path, unsigned line, const char *key,
                        struct dz_policy_route *r)
{
    struct dz_policy_seg *segs = NULL;
    size_t n = 0;
    const char *p = path;

    if (path[0] != '/')
        return perr(c, line, key, "must start with /");
    if (strlen(path) > 512)
        return perr(c, line, key, "longer than 512 characters");
    segs = calloc(DZ_POLICY_MAX_SEGMENTS, sizeof(*segs));
    if (!segs)
        return perr(c, line, key, "out of memory");
    r->segs = segs; /* owned by the route from here: freed with it on any error */
    if (path[1] == '\0')
        return 0; /* "/" */
    while (*p == '/') {
        const char *start = ++p;
        size_t len;
        while (*p && *p != '/')
            p++;
        len = (size_t)(p - start);
        if (len == 0)
            return perr(c, line, key, "empty segment (// or a trailing /)");
        if (n >= DZ_POLICY_MAX_SEGMENTS)
            return perr(c, line, key, "more than %d segments", DZ_POLICY_MAX_SEGMENTS);
        if (len == 5 && memcmp(start, "{fin}", 5) == 0) {
            if (r->has_fin)
                return perr(c, line, key, "only one {fin} per path");
            segs[n].kind = DZ_SEG_FIN;
            r->has_fin = true;
        } else if (len == 1 && start[0] == '*') {
            segs[n].kind = DZ_SEG_ANY;
        } else {
            if ((len == 1 && start[0] == '.') || (len == 2 && start[0] == '.' && start[1] == '.'))
                return perr(c, line, key, "\".\" and \"..\" segments are not allowed");
            for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)start[i];
                if (ch == '{' || ch == '}')
                    return perr(c, line, key,
                                "{fin} is the only placeholder and must be a whole segment");
                if (ch == '*')
                    return perr(c, line, key, "* must be a whole segment");
                if (!is_literal_char(ch))
                    return perr(c, line, key,
                                "character '%c' is not allowed (letters, digits, - . _ ~ : @)",
                                ch > 0x20 && ch < 0x7f ? ch : '?');
            }
            segs[n].kind = DZ_SEG_LITERAL;
            segs[n].text = strndup(start, len);
            segs[n].len = len;
            if (!segs[n].text)
                return perr(c, line, key, "out of memory");
        }
        r->n_segs = ++n;
    }
    return 0;
}

static bool is_role(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 32 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int make_rule(struct dz_policy_route *r, const char *base)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    char methods[64];
    size_t used = 0;
    size_t need;
    char *rule;

    methods[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (r->methods & (1u << i)) {
            size_t len = strlen(names[i]);
            if (used)
                methods[used++] = ',';
            memcpy(methods + used, names[i], len + 1);
            used += len;
        }
    }
    need = strlen(base) + strlen(r->path) + used + 16;
    rule = malloc(need);
    if (!rule)
        return DZ_ERR_NOMEM;
    if (snprintf(rule, need, "%s:%u %s %s", base, r->line, methods, r->path) < 0)
        rule[0] = '\0';
    r->rule = rule;
    return 0;
}

static void inherit(struct dz_policy_limits *route, const struct dz_policy_limits *svc)
{
    if (!route->body)
        route->body = svc->body;
    if (!route->timeout_ms)
        route->timeout_ms = svc->timeout_ms;
    if (!route->rate.count) {
        route->rate = svc->rate;
        route->rate_scope = svc->rate_scope;
    }
}

static int load_route(struct pctx *c, const struct dz_yaml_node *map, size_t idx,
                      const struct dz_policy_service *svc, struct dz_policy_route *r)
{
    static const char *const known[] = {"path",      "methods", "acr",     "means",
                                        "role",      "purpose", "release", "require_signed_body",
                                        "self_only", "public",  "limits",  NULL};
    const struct dz_yaml_node *n;
    char prefix[KEY_LEN];
    char key[KEY_LEN];
    const char *s = NULL;
    bool self_set = false;
    bool self_value = false;
    bool present = false;
    int rc;

    r->service = svc;
    r->file = svc->file;
    r->line = map->line;
    route_key(prefix, sizeof(prefix), idx, "");
    prefix[strlen(prefix) - 1] = '\0'; /* "routes[3]" */
    rc = check_keys(c, map, known, prefix);
    if (rc != 0)
        return rc;

    route_key(key, sizeof(key), idx, "path");
    n = dz_yaml_get(map, "path");
    if (!n)
        return perr(c, map->line, key, "required key is missing");
    rc = scalar(c, n, key, &s);
    if (rc != 0)
        return rc;
    r->path = strdup(s);
    if (!r->path)
        return perr(c, n->key_line, key, "out of memory");
    rc = compile_path(c, s, n->key_line, key, r);
    if (rc != 0)
        return rc;

    route_key(key, sizeof(key), idx, "methods");
    n = dz_yaml_get(map, "methods");
    if (!n)
        return perr(c, map->line, key, "required key is missing");
    rc = get_bits(c, n, key, dz_policy_method_bit, "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS",
                  &r->methods);
    if (rc != 0)
        return rc;
    if (!r->methods)
        return perr(c, n->key_line, key, "at least one method");

    route_key(key, sizeof(key), idx, "public");
    rc = get_bool(c, map, "public", key, &r->is_public, &present);
    if (rc != 0)
        return rc;

    route_key(key, sizeof(key), idx, "acr");
    n = dz_yaml_get(map, "acr");
    /* A non-public route always needs a session: without an acr key it still
     * asks for low, the least any login gives. */
    r->acr = r->is_public ? DZ_ACR_NONE : DZ_ACR_LOW;
    if (n) {
        rc = scalar(c, n, key, &s);
        if (rc != 0)
            return rc;
        if (dz_policy_acr_parse(s, &r->acr) != 0)
            return perr(c, n->key_line, key, "expected low|substantial|high, got \"%.40s\"", s);
    }

    route_key(key, sizeof(key), idx, "means");
    n = dz_yaml_get(map, "means");
    if (n) {
        rc = get_bits(c, n, key, dz_policy_amr_bit, "pwd|otp|sc|pin|mob|qr", &r->means);
        if (rc != 0)
            return rc;
        if (!r->means)
            /* means: [] is refused: inside, 0 means "any means", so an empty
             * list would silently admit every session. */
            return perr(c, n->key_line, key, "an empty list would admit no session");
    }

    route_key(key, sizeof(key), idx, "role");
    n = dz_yaml_get(map, "role");
    if (n) {
        rc = scalar(c, n, key, &s);
        if (rc != 0)
            return rc;
        if (!is_role(s))
            return perr(c, n->key_line, key,
                        "expected a role name such as judge ([a-z][a-z0-9_-]*)");
        r->role = strdup(s);
        if (!r->role)
            return perr(c, n->key_line, key, "out of memory");
    }

    route_key(key, sizeof(key), idx, "purpose");
    n = dz_yaml_get(map, "purpose");
    if (n) {
        rc = scalar(c, n, key, &s);
        if (rc != 0)
            return rc;
        if (strcmp(s, "required") == 0)
            r->purpose = DZ_PURPOSE_REQUIRED;
        else if (strcmp(s, "optional") == 0)
            r->purpose = DZ_PURPOSE_OPTIONAL;
        else if (strcmp(s, "none") == 0)
            r->purpose = DZ_PURPOSE_NONE;
        else
            return perr(c, n->key_line, key, "expected required|optional|none, got \"%.40s\"", s);
    }

    route_key(key, sizeof(key), idx, "release");
    n = dz_yaml_get(map, "release");
    if (n) {
        rc = get_bits(c, n, key, dz_policy_release_bit,
                      "fin|name|surname|patronymic|birth_date|birth_place|gender|document|"
                      "address|phones",
                      &r->release);
        if (rc != 0)
            return rc;
    }

    route_key(key, sizeof(key), idx, "require_signed_body");
    rc = get_bool(c, map, "require_signed_body", key, &r->require_signed_body, &present);
    if (rc != 0)
        return rc;
    if (r->require_signed_body &&
        !(r->methods & (DZ_METHOD_POST | DZ_METHOD_PUT | DZ_METHOD_PATCH)))
        return perr(c, dz_yaml_get(map, "require_signed_body")->key_line, key,
                    "needs a method with a body (POST, PUT or PATCH)");

    route_key(key, sizeof(key), idx, "self_only");
    rc = get_bool(c, map, "self_only", key, &self_value, &self_set);
    if (rc != 0)
        return rc;
    if (self_set && !r->has_fin)
        return perr(c, dz_yaml_get(map, "self_only")->key_line, key,
                    "only for a path with {fin} (without one, a route is always about the "
                    "subject)");
    /* A {fin} route is a self lookup unless a role is granted cross-person
     * access; "self_only: false" without a role would open every record to
     * every logged-in person, so it is refused. */
    if (self_set && !self_value && !r->role)
        return perr(c, dz_yaml_get(map, "self_only")->key_line, key,
                    "false needs a role: cross-person access is granted to a role");
    r->self_only = r->has_fin && (self_set ? self_value : r->role == NULL);

    if (r->is_public) {
        /* Each of these only means something for a session; on a public route
         * it would read like a restriction that is never enforced. */
        static const char *const not_public[] = {"acr",     "means",     "role",
                                                 "release", "self_only", "require_signed_body"};
        route_key(key, sizeof(key), idx, "public");
        for (size_t i = 0; i < sizeof(not_public) / sizeof(not_public[0]); i++) {
            n = dz_yaml_get(map, not_public[i]);
            if (n)
                return perr(c, n->key_line, key, "a public route has no %s (there is no session)",
                            not_public[i]);
        }
        if (r->purpose != DZ_PURPOSE_NONE)
            return perr(c, dz_yaml_get(map, "purpose")->key_line, key,
                        "a public route has no purpose");
        if (r->has_fin)
            return perr(c, dz_yaml_get(map, "public")->key_line, key,
                        "a public route cannot name a person with {fin}");
    }

    n = dz_yaml_get(map, "limits");
    if (n) {
        route_key(key, sizeof(key), idx, "limits");
        rc = load_limits(c, n, key, false, &r->limits);
        if (rc != 0)
            return rc;
    }
    inherit(&r->limits, &svc->limits);
    if (make_rule(r, c->base) != 0)
        return perr(c, map->line, prefix, "out of memory");
    return 0;
}

static bool is_service_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DZ_POLICY_SERVICE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

static bool is_register_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == '/'))
            return false;
    }
    return true;
}

static int load_upstream(struct pctx *c, const struct dz_yaml_node *map,
                         struct dz_policy_service *svc)
{
    const struct dz_yaml_node *n = dz_yaml_get(map, "upstream");
    const char *s = NULL;
    struct dz_url u;
    const char *why;
    char *url;
    int rc;

    if (!n)
        return perr(c, map->line, "upstream", "required key is missing");
    rc = scalar(c, n, "upstream", &s);
    if (rc != 0)
        return rc;
    /* Cleartext to a back end crosses a network only if it is not loopback;
     * the assertion is a bearer token for its lifetime, so refuse that. */
    why = dz_outbound_url_problem(s, &u);
    if (why)
        return perr(c, n->key_line, "upstream", "%s, got \"%.80s\"", why, s);
    /* A base path would be prepended to every forwarded path, and the
     * route templates would then no longer describe what the back end sees. */
    if (s[u.path_off] != '\0' && strcmp(s + u.path_off, "/") != 0)
        return perr(c, n->key_line, "upstream", "no path: the request path is forwarded as it is");
    url = strndup(s, u.path_off);
    svc->upstream_host = strdup(u.host);
    svc->upstream = url;
    if (!url || !svc->upstream_host)
        return perr(c, n->key_line, "upstream", "out of memory");
    svc->upstream_port = u.port;
    svc->upstream_is_https = u.is_https;
    /* h2 is HTTP/2 over TLS and h2c HTTP/2 in clear (RFC 9113 §3), so each
     * is accepted only with its own scheme; http1 goes with either. */
    svc->upstream_http = u.is_https ? DZ_UPSTREAM_H2 : DZ_UPSTREAM_H2C;

    n = dz_yaml_get(map, "upstream_http");
    if (n) {
        rc = scalar(c, n, "upstream_http", &s);
        if (rc != 0)
            return rc;
        if (strcmp(s, "h2") == 0 && u.is_https)
            svc->upstream_http = DZ_UPSTREAM_H2;
        else if (strcmp(s, "h2c") == 0 && !u.is_https)
            svc->upstream_http = DZ_UPSTREAM_H2C;
        else if (strcmp(s, "http1") == 0)
            svc->upstream_http = DZ_UPSTREAM_HTTP1;
        else
            return perr(c, n->key_line, "upstream_http", "expected %s for an %s upstream",
                        u.is_https ? "h2|http1" : "h2c|http1", u.is_https ? "https" : "http");
    }
    return 0;
}

/* assertion: { signing: request | batch } (docs/assertions.md). */
static int load_assertion(struct pctx *c, const struct dz_yaml_node *n,
                          struct dz_policy_service *svc)
{
    static const char *const known[] = {"signing", NULL};
    const struct dz_yaml_node *m;
    const char *s = NULL;
    int rc;

    if (n->kind != DZ_YAML_MAP)
        return perr(c, n->key_line, "assertion", "expected a mapping {signing}");
    if ((rc = check_keys(c, n, known, "assertion")) != 0)
        return rc;
    m = dz_yaml_get(n, "signing");
    if (!m)
        return 0;
    if ((rc = scalar(c, m, "assertion.signing", &s)) != 0)
        return rc;
    if (strcmp(s, "request") == 0)
        svc->assertion_signing = DZ_SIGNING_REQUEST;
    else if (strcmp(s, "batch") == 0)
        svc->assertion_signing = DZ_SIGNING_BATCH;
    else
        return perr(c, m->key_line, "assertion.signing", "expected request|batch, got \"%.40s\"",
                    s);
    return 0;
}

static int load_service(struct pctx *c, const struct dz_yaml_doc *doc,
                        struct dz_policy_service *svc, unsigned *name_line, unsigned *reg_line)
{
    static const char *const known[] = {"service",       "registered_as", "upstream",
                                        "upstream_http", "routes",        "limits",
                                        "oidc",          "assertion",     NULL};
    const struct dz_yaml_node *map = dz_yaml_root(doc);
    const struct dz_yaml_node *n;
    struct dz_policy_route *routes = NULL;
    const char *s = NULL;
    size_t i = 0;
    int rc;

    svc->file = strdup(c->file);
    if (!svc->file)
        return perr(c, 0, NULL, "out of memory");
    if (!map)
        return perr(c, 0, NULL, "empty policy");
    if (map->kind != DZ_YAML_MAP)
        return perr(c, map->line, NULL, "expected a mapping (service, upstream, routes...)");
    rc = check_keys(c, map, known, NULL);
    if (rc != 0)
        return rc;

    n = dz_yaml_get(map, "service");
    if (!n)
        return perr(c, map->line, "service", "required key is missing");
    rc = scalar(c, n, "service", &s);
    if (rc != 0)
        return rc;
    if (!is_service_name(s))
        return perr(c, n->key_line, "service", "expected a name of [a-z0-9-], 1..63 long");
    svc->name = strdup(s);
    *name_line = n->key_line;

    n = dz_yaml_get(map, "registered_as");
    if (!n)
        return perr(c, map->line, "registered_as", "required key is missing");
    rc = scalar(c, n, "registered_as", &s);
    if (rc != 0)
        return rc;
    if (!is_register_id(s))
        return perr(c, n->key_line, "registered_as", "expected a register entry such as DIS-0001");
    svc->registered_as = strdup(s);
    *reg_line = n->key_line;
    if (!svc->name || !svc->registered_as)
        return perr(c, n->key_line, NULL, "out of memory");

    /* A service that is only an OpenID Connect client (its own origin, no
     * back end behind the gateway) has no upstream and no routes. */
    n = dz_yaml_get(map, "oidc");
    if (n) {
        struct dz_policy_oidc *o = NULL;
        rc = dz_policy_oidc_load(c->file, svc->name, n, &o, c->err, c->err_len);
        if (rc != 0)
            return rc;
        svc->oidc = o;
        if (!dz_yaml_get(map, "upstream") && !dz_yaml_get(map, "routes"))
            return dz_yaml_get(map, "limits")
                       ? perr(c, dz_yaml_get(map, "limits")->key_line, "limits",
                              "a service without routes has nothing to limit")
                       : 0;
    }

    rc = load_upstream(c, map, svc);
    if (rc != 0)
        return rc;

    n = dz_yaml_get(map, "limits");
    if (n) {
        rc = load_limits(c, n, "limits", true, &svc->limits);
        if (rc != 0)
            return rc;
    }
    rc = service_in_flight(c, n, svc);
    if (rc != 0)
        return rc;

    n = dz_yaml_get(map, "assertion");
    if (n && (rc = load_assertion(c, n, svc)) != 0)
        return rc;

    n = dz_yaml_get(map, "routes");
    if (!n)
        return perr(c, map->line, "routes", "required key is missing");
    if (n->kind != DZ_YAML_SEQ)
        return perr(c, n->key_line, "routes", "expected a list of routes");
    if (n->count < 1 || n->count > DZ_POLICY_MAX_ROUTES)
        return perr(c, n->key_line, "routes", "must have 1 to %d routes", DZ_POLICY_MAX_ROUTES);
    routes = calloc(n->count, sizeof(*routes));
    if (!routes)
        return perr(c, n->key_line, "routes", "out of memory");
    svc->routes = routes;
    for (const struct dz_yaml_node *item = n->first; item; item = item->next, i++) {
        char key[KEY_LEN];
        svc->n_routes = i + 1; /* so that a failure frees this route too */
        if (item->kind != DZ_YAML_MAP) {
            route_key(key, sizeof(key), i, "");
            key[strlen(key) - 1] = '\0';
            return perr(c, item->line, key, "expected a mapping (path, methods, ...)");
        }
        rc = load_route(c, item, i, svc, &routes[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool same_template(const struct dz_policy_route *a, const struct dz_policy_route *b)
{
    if (a->n_segs != b->n_segs)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == DZ_SEG_LITERAL && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

/* Cross-file rules, then the flat route index used by dz_policy_match. */
static int link_set(struct dz_policy_set *s, const unsigned *name_line, const unsigned *reg_line,
                    char *err, size_t err_len)
{
    size_t total = 0;
    size_t k = 0;

    for (size_t i = 0; i < s->n_services; i++) {
        const struct dz_policy_service *a = &s->services[i];
        for (size_t j = 0; j < i; j++) {
            const struct dz_policy_service *b = &s->services[j];
            if (strcmp(a->name, b->name) == 0)
                return dz_yaml_error(err, err_len, a->file, name_line[i], "service",
                                     "\"%s\" is already defined in %s", a->name, b->file);
            if (strcmp(a->registered_as, b->registered_as) == 0)
                return dz_yaml_error(err, err_len, a->file, reg_line[i], "registered_as",
                                     "\"%s\" is already used by %s", a->registered_as, b->file);
            if (a->oidc && b->oidc && strcmp(a->oidc->client_id, b->oidc->client_id) == 0)
                return dz_yaml_error(err, err_len, a->file, name_line[i], "oidc.client_id",
                                     "\"%s\" is already used by %s", a->oidc->client_id, b->file);
        }
        total += a->n_routes;
    }
    /* Bounds the linear scan in dz_policy_match as well as memory. */
    if (total > DZ_POLICY_MAX_TOTAL)
        return dz_yaml_error(err, err_len, s->services[0].file, 0, NULL,
                             "more than %d routes in all", DZ_POLICY_MAX_TOTAL);
    s->routes = calloc(total ? total : 1, sizeof(*s->routes));
    if (!s->routes)
        return dz_yaml_error(err, err_len, s->services[0].file, 0, NULL, "out of memory");
    for (size_t i = 0; i < s->n_services; i++) {
        for (size_t j = 0; j < s->services[i].n_routes; j++) {
            const struct dz_policy_route *r = &s->services[i].routes[j];
            /* Two routes that fit the same requests would make the decision
             * depend on file order: refuse the ambiguity. */
            for (size_t m = 0; m < k; m++) {
                const struct dz_policy_route *o = s->routes[m];
                if ((o->methods & r->methods) && same_template(o, r)) {
                    char key[KEY_LEN];
                    route_key(key, sizeof(key), j, "path");
                    return dz_yaml_error(err, err_len, r->file, r->line, key,
                                         "%s with these methods is already routed by %s:%u",
                                         r->path, o->file, o->line);
                }
            }
            s->routes[k++] = r;
        }
    }
    s->n_routes = k;
    return 0;
}

static int load_one(const char *path, const char *base, const void *data, size_t len,
                    struct dz_policy_service *svc, unsigned *name_line, unsigned *reg_line,
                    char *err, size_t err_len)
{
    struct dz_yaml_limits lim = dz_yaml_default_limits;
    struct dz_yaml_doc *doc = NULL;
    struct pctx c = {path, base, err, err_len};
    int rc;

    lim.max_bytes = DZ_POLICY_MAX_BYTES;
    /* A policy is at most service -> routes -> route -> limits or a list
     * deep; 8 leaves room while keeping a hostile file shallow. */
    lim.max_depth = 8;
    if (data)
        rc = dz_yaml_load_buf(path, data, len, &lim, &doc, err, err_len);
    else
        rc = dz_yaml_load_file(path, &lim, &doc, err, err_len);
    if (rc == 0)
        rc = load_service(&c, doc, svc, name_line, reg_line);
    dz_yaml_free(doc);
    return rc;
}

int dz_policy_load_buf(const char *name, const void *data, size_t len, struct dz_policy_set **out,
                       char *err, size_t err_len)
{
    struct dz_policy_set *s = NULL;
    const char *base;
    unsigned name_line = 0;
    unsigned reg_line = 0;
    int rc = DZ_ERR_NOMEM;

    if (err && err_len)
        err[0] = '\0';
    if (!name)
        name = "<policy>";
    base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    s = calloc(1, sizeof(*s));
    if (s)
        s->services = calloc(1, sizeof(*s->services));
    if (!s || !s->services) {
        dz_yaml_error(err, err_len, name, 0, NULL, "out of memory");
        goto out;
    }
    s->n_services = 1;
    rc = load_one(name, base, data ? data : "", len, &s->services[0], &name_line, &reg_line, err,
                  err_len);
    if (rc == 0)
        rc = link_set(s, &name_line, &reg_line, err, err_len);
    if (rc == 0) {
        *out = s;
        s = NULL;
    }
out:
    dz_policy_set_free(s);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_policy_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".yaml") == 0;
}

int dz_policy_load_dir(const char *dir, struct dz_policy_set **out, char *err, size_t err_len)
{
    char *names[DZ_POLICY_MAX_FILES];
    unsigned name_line[DZ_POLICY_MAX_FILES];
    unsigned reg_line[DZ_POLICY_MAX_FILES];
    struct dz_policy_set *s = NULL;
    struct dirent *e;
    size_t n = 0;
    DIR *d = NULL;
    int rc = DZ_ERR_IO;

    /* *out is written only on success: a caller may pass its current set
     * and keep it on a failed reload. */
    if (err && err_len)
        err[0] = '\0';
    d = opendir(dir);
    if (!d) {
        dz_yaml_error(err, err_len, dir, 0, NULL, "cannot open directory: %s", strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_policy_name(e->d_name))
            continue;
        if (n >= DZ_POLICY_MAX_FILES) {
            rc = dz_yaml_error(err, err_len, dir, 0, NULL, "more than %d policy files",
                               DZ_POLICY_MAX_FILES);
            goto out;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = DZ_ERR_NOMEM;
            dz_yaml_error(err, err_len, dir, 0, NULL, "out of memory");
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = dz_yaml_error(err, err_len, dir, 0, NULL, "no *.yaml policy files");
        goto out;
    }
    /* Sorted so errors, rule names and the route index do not depend on
     * readdir's order: the same directory always loads the same way. */
    qsort(names, n, sizeof(names[0]), cmp_names);
    rc = DZ_ERR_NOMEM;
    s = calloc(1, sizeof(*s));
    if (s)
        s->services = calloc(n, sizeof(*s->services));
    if (!s || !s->services) {
        dz_yaml_error(err, err_len, dir, 0, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + 1 + strlen(names[i]) + 1;
        bool slash = dir[0] && dir[strlen(dir) - 1] == '/';
        char *path = malloc(plen);
        if (!path) {
            rc = DZ_ERR_NOMEM;
            dz_yaml_error(err, err_len, dir, 0, NULL, "out of memory");
            goto out;
        }
        if (snprintf(path, plen, "%s%s%s", dir, slash ? "" : "/", names[i]) < 0)
            path[0] = '\0';
        s->n_services = i + 1;
        rc = load_one(path, names[i], NULL, 0, &s->services[i], &name_line[i], &reg_line[i], err,
                      err_len);
        free(path);
        if (rc != 0)
            goto out;
    }
    rc = link_set(s, name_line, reg_line, err, err_len);
    if (rc != 0)
        goto out;
    *out = s;
    s = NULL;
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    dz_policy_set_free(s);
    return rc;
}
