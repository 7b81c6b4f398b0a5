/*
 * policy.c - the run-time half of the policy engine: route matching,
 * decisions, release checks and the name tables; see policy.h.  Loading and
 * compiling is policy_load.c.  Everything here reads an immutable set and
 * must never allocate, block, or return an allow it cannot justify: every
 * path that is not an explicit allow leaves DZ_DENY in place.
 */
#include "policy/policy.h"
#include "policy/policy_oidc.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fin.h"

#include "base/compat.h"

const char *const dz_policy_release_names[DZ_RELEASE_COUNT] = {
    "fin",         "name",   "surname",  "patronymic", "birth_date",
    "birth_place", "gender", "document", "address",    "phones",
};

/* Position i is bit 1u << i: amr_names must follow the DZ_AMR_* bits of
 * assertion.h and method_names the DZ_METHOD_* bits of policy.h, or a
 * policy would grant a means or method it never named. */
static const char *const amr_names[] = {"pwd", "otp", "sc", "pin", "mob", "qr"};
static const char *const method_names[] = {"GET",   "HEAD",   "POST",   "PUT",
                                           "PATCH", "DELETE", "OPTIONS"};
static const char *const acr_names[] = {"none", "low", "substantial", "high"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static unsigned bit_of(const char *const *names, size_t n, const char *s)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0)
            return 1u << i;
    }
    return 0;
}

unsigned dz_policy_release_bit(const char *field)
{
    return bit_of(dz_policy_release_names, DZ_RELEASE_COUNT, field);
}

unsigned dz_policy_method_bit(const char *method)
{
    return bit_of(method_names, N(method_names), method);
}

unsigned dz_policy_amr_bit(const char *name)
{
    return bit_of(amr_names, N(amr_names), name);
}

const char *dz_policy_amr_name(unsigned bit)
{
    for (size_t i = 0; i < N(amr_names); i++) {
        if (bit == (1u << i))
            return amr_names[i];
    }
    return NULL;
}

int dz_policy_acr_parse(const char *s, enum dz_acr *out)
{
    *out = DZ_ACR_NONE;
    if (!s)
        return DZ_ERR_INVAL;
    /* From 1: "none" is what a public route gets implicitly; a policy may
     * not write it as a minimum, so it parses as an error. */
    for (size_t i = 1; i < N(acr_names); i++) {
        if (strcmp(acr_names[i], s) == 0) {
            *out = (enum dz_acr)i;
            return 0;
        }
    }
    return DZ_ERR_INVAL;
}

const char *dz_policy_acr_name(enum dz_acr acr)
{
    /* An out-of-range value names the lowest level, never a higher one. */
    return (unsigned)acr < N(acr_names) ? acr_names[acr] : "none";
}

bool dz_policy_purpose_valid(const char *purpose)
{
    size_t n = 0;

    if (!purpose)
        return false;
    for (const char *p = purpose; *p; p++, n++) {
        if (n >= DZ_POLICY_PURPOSE_MAX || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return false;
    }
    return n > 0;
}

bool dz_policy_release_allows(const struct dz_policy_route *r, const char *field)
{
    unsigned bit = dz_policy_release_bit(field);
    return r && bit && (r->release & bit);
}

size_t dz_policy_service_count(const struct dz_policy_set *s)
{
    return s ? s->n_services : 0;
}

const struct dz_policy_service *dz_policy_service_at(const struct dz_policy_set *s, size_t i)
{
    return s && i < s->n_services ? &s->services[i] : NULL;
}

const struct dz_policy_service *dz_policy_service_find(const struct dz_policy_set *s,
                                                       const char *name)
{
    for (size_t i = 0; s && name && i < s->n_services; i++) {
        if (strcmp(s->services[i].name, name) == 0)
            return &s->services[i];
    }
    return NULL;
}

/* ---- matching ------------------------------------------------------------ */

struct span {
    const char *p;
    size_t len;
};

/* RFC 3986 §2.3 unreserved characters.  A "*" segment matches only
 * these, so a '%' escape (which a back end would decode into something
 * else, maybe a '/') never fits a wildcard. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Split "/a/b/c" into spans; false when the path cannot match any route:
 * not absolute, too many segments, or an empty, "." or ".." segment (the
 * back end might normalise those into a path the policy never allowed). */
static bool split_path(const char *path, struct span *segs, size_t *n)
{
    const char *p = path;

    *n = 0;
    if (p[0] != '/')
        return false;
    if (p[1] == '\0')
        return true; /* "/" has no segments */
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0 || (len == 1 && start[0] == '.') ||
            (len == 2 && start[0] == '.' && start[1] == '.'))
            return false;
        if (*n >= DZ_POLICY_MAX_SEGMENTS)
            return false;
        segs[*n].p = start;
        segs[*n].len = len;
        (*n)++;
    }
    return *p == '\0';
}

enum fit { FIT_NO, FIT_YES, FIT_BAD_FIN };

static enum fit fits(const struct dz_policy_route *r, const struct span *segs, size_t n)
{
    enum fit result = FIT_YES;
    char fin[8];

    if (r->n_segs != n)
        return FIT_NO;
    for (size_t i = 0; i < n; i++) {
        const struct dz_policy_seg *s = &r->segs[i];
        switch (s->kind) {
        case DZ_SEG_LITERAL:
            if (s->len != segs[i].len || memcmp(s->text, segs[i].p, s->len) != 0)
                return FIT_NO;
            break;
        /* A malformed FIN does not end the scan: another route may fit with a
         * literal here, and only if none does is the answer 400 invalid_fin
         * rather than 404. */
        case DZ_SEG_FIN:
            if (dz_fin_normalize(segs[i].p, segs[i].len, fin) != 0)
                result = FIT_BAD_FIN;
            break;
        case DZ_SEG_ANY:
            for (size_t j = 0; j < segs[i].len; j++) {
                if (!is_unreserved((unsigned char)segs[i].p[j]))
                    return FIT_NO;
            }
            break;
        }
    }
    return result;
}

/* Rank of a segment kind: a literal is more specific than {fin}, {fin}
 * more than "*".  >0 when a is more specific than b. */
static int more_specific(const struct dz_policy_route *a, const struct dz_policy_route *b)
{
    static const int rank[] = {[DZ_SEG_LITERAL] = 2, [DZ_SEG_FIN] = 1, [DZ_SEG_ANY] = 0};

    /* Compared left to right: the first segment where the kinds differ
     * decides, whatever follows.  Two fitting routes with a common method
     * never tie: same kinds plus same literals is the same template, which
     * link_set (policy_load.c) refuses at load. */
    for (size_t i = 0; i < a->n_segs && i < b->n_segs; i++) {
        int d = rank[a->segs[i].kind] - rank[b->segs[i].kind];
        if (d)
            return d;
    }
    return 0;
}

int dz_policy_match(const struct dz_policy_set *s, const char *method,
                    const char *path_without_query, struct dz_policy_match *out)
{
    struct span segs[DZ_POLICY_MAX_SEGMENTS];
    const struct dz_policy_route *best = NULL;
    bool bad_fin = false;
    unsigned mbit;
    size_t n = 0;

    if (!out)
        return DZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->status = DZ_MATCH_NONE;
    if (!s || !method || !path_without_query)
        return DZ_ERR_INVAL;
    if (!split_path(path_without_query, segs, &n))
        return 0;
    mbit = dz_policy_method_bit(method);
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct dz_policy_route *r = s->routes[i];
        enum fit f = fits(r, segs, n);
        if (f == FIT_NO)
            continue;
        if (f == FIT_BAD_FIN) {
            bad_fin = true;
            continue;
        }
        /* Collected from every route that fits the path, so a 405 can list
         * the methods allowed there (RFC 9110 §15.5.6 wants them in Allow). */
        out->allowed |= r->methods;
        if ((r->methods & mbit) && (!best || more_specific(r, best) > 0))
            best = r;
    }
    if (best) {
        out->status = DZ_MATCH_FOUND;
        out->route = best;
        out->service = best->service;
        out->allowed = 0;
        for (size_t i = 0; i < n; i++) {
            if (best->segs[i].kind == DZ_SEG_FIN)
                /* Cannot fail: fits() already normalised this segment for best. */
                dz_fin_normalize(segs[i].p, segs[i].len, out->fin);
        }
    } else if (out->allowed) {
        out->status = DZ_MATCH_METHOD;
    } else if (bad_fin) {
        out->status = DZ_MATCH_INVALID_FIN;
    }
    return 0;
}

/* ---- decisions ------------------------------------------------------------- */

int dz_policy_eval(const struct dz_policy_route *r, const struct dz_policy_subject *subj,
                   const char *purpose_header, const char *target_fin, enum dz_decision *out,
                   const char **out_reason_code, const char **out_rule)
{
    char target[8];

    if (out)
        *out = DZ_DENY;
    if (out_reason_code)
        *out_reason_code = "forbidden";
    if (out_rule)
        *out_rule = r ? r->rule : "default deny";
    if (!r || !out || !out_reason_code || !out_rule)
        return DZ_ERR_INVAL;

    if (r->is_public) {
        *out_reason_code = "allowed";
        *out = DZ_ALLOW;
        return 0;
    }
    if (!subj || !subj->fin || !subj->fin[0]) {
        *out_reason_code = "unauthenticated";
        return 0;
    }
    /* An acr above the scale can only come from a corrupt session: it is
     * refused, not taken as very high assurance. */
    if (subj->acr < r->acr || subj->acr > DZ_ACR_HIGH) {
        *out_reason_code = "insufficient_assurance";
        return 0;
    }
    /* means: the session must have been opened with one of the listed means. */
    if (r->means && !(subj->amr & r->means)) {
        *out_reason_code = "insufficient_assurance";
        return 0;
    }
    /* Exact, case-sensitive: a policy role is [a-z][a-z0-9_-]* (checked
     * at load), so folding could only make a foreign spelling match. */
    if (r->role && (!subj->role || strcmp(subj->role, r->role) != 0)) {
        *out_reason_code = "forbidden";
        return 0;
    }
    if (r->has_fin) {
        /* The route names a person: without a well-formed target there is
         * nothing to decide on, and that is a caller error, not an allow. */
        if (!target_fin || dz_fin_normalize(target_fin, strlen(target_fin), target) != 0)
            return DZ_ERR_INVAL;
        if (r->self_only && strcmp(target, subj->fin) != 0) {
            *out_reason_code = "forbidden";
            return 0;
        }
    }
    if (r->purpose != DZ_PURPOSE_NONE) {
        bool given = purpose_header && purpose_header[0];
        if (!given && r->purpose == DZ_PURPOSE_REQUIRED) {
            *out_reason_code = "purpose_required";
            return 0;
        }
        /* Checked even where a purpose is optional: whatever is given goes into
         * the audit line, so it must be bounded printable text. */
        if (given && !dz_policy_purpose_valid(purpose_header)) {
            *out_reason_code = "invalid_purpose";
            return 0;
        }
    }
    *out_reason_code = "allowed";
    *out = DZ_ALLOW;
    return 0;
}

/* ---- freeing ----------------------------------------------------------------- */

static void free_service(struct dz_policy_service *svc)
{
    for (size_t i = 0; svc->routes && i < svc->n_routes; i++) {
        const struct dz_policy_route *r = &svc->routes[i];
        for (size_t j = 0; r->segs && j < r->n_segs; j++)
            free((void *)r->segs[j].text);
        free((void *)r->segs);
        free((void *)r->path);
        free((void *)r->role);
        free((void *)r->rule);
    }
    free((void *)svc->routes);
    free((void *)svc->name);
    free((void *)svc->registered_as);
    free((void *)svc->upstream);
    free((void *)svc->upstream_host);
    free((void *)svc->file);
    free((void *)svc->in_flight_now);
    dz_policy_oidc_free((struct dz_policy_oidc *)svc->oidc);
}

void dz_policy_set_free(struct dz_policy_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->services && i < s->n_services; i++)
        free_service(&s->services[i]);
    free(s->services);
    free(s->routes);
    free(s);
}
