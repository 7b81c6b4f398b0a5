/*
 * fuzz_policy.c - feeds arbitrary bytes to the policy loader (YAML tree,
 * compiler) and, as a request path, to the matcher of a fixed policy set;
 * then checks the engine's promises: a failed load leaves no set and names
 * the file; a loaded set matches each of its own templates; a decision is
 * DZ_ALLOW only with reason "allowed", never for a missing subject on a
 * non-public route, and never from an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_policy[] = "service: t\n"
                                   "registered_as: T-1\n"
                                   "upstream: https://127.0.0.1:9000\n"
                                   "routes:\n"
                                   "  - path: /a/me\n"
                                   "    methods: [GET]\n"
                                   "  - path: /a/persons/{fin}\n"
                                   "    methods: [GET]\n"
                                   "    role: judge\n"
                                   "    purpose: required\n"
                                   "  - path: /a/persons/lookups\n"
                                   "    methods: [GET, POST]\n"
                                   "  - path: /a/files/*\n"
                                   "    methods: [GET]\n"
                                   "  - path: /\n"
                                   "    methods: [GET]\n"
                                   "    public: true\n";

static const struct dz_policy_subject subjects[] = {
    {"AB12CD3", DZ_ACR_LOW, DZ_AMR_PWD, NULL},
    {"AB12CD3", DZ_ACR_SUBSTANTIAL, DZ_AMR_PWD | DZ_AMR_OTP, "citizen"},
    {"JUDGE01", DZ_ACR_HIGH, DZ_AMR_SC | DZ_AMR_PIN, "judge"},
    {"ZZ99YY8", DZ_ACR_HIGH, DZ_AMR_QR | DZ_AMR_MOB | DZ_AMR_PIN, NULL},
};

static void check_eval(const struct dz_policy_route *r, const char *purpose, const char *target)
{
    enum dz_decision d;
    const char *reason = NULL;
    const char *rule = NULL;
    int rc;

    rc = dz_policy_eval(r, NULL, purpose, target, &d, &reason, &rule);
    if (!reason || !rule)
        abort();
    if (d == DZ_ALLOW && (rc != 0 || !r->is_public || strcmp(reason, "allowed") != 0))
        abort();
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        rc = dz_policy_eval(r, &subjects[i], purpose, target, &d, &reason, &rule);
        if (d == DZ_ALLOW && (rc != 0 || strcmp(reason, "allowed") != 0))
            abort();
        if (d == DZ_ALLOW && !r->is_public && subjects[i].acr < r->acr)
            abort();
        if (d == DZ_ALLOW && r->role && !r->is_public &&
            (!subjects[i].role || strcmp(subjects[i].role, r->role) != 0))
            abort();
    }
}

/* A concrete path for a template: {fin} -> a valid FIN, * -> "x". */
static void instantiate(const struct dz_policy_route *r, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    if (r->n_segs == 0) {
        memcpy(out, "/", 2);
        return;
    }
    for (size_t i = 0; i < r->n_segs; i++) {
        const char *text = r->segs[i].kind == DZ_SEG_LITERAL ? r->segs[i].text
                           : r->segs[i].kind == DZ_SEG_FIN   ? "AB12CD3"
                                                             : "x";
        size_t n = strlen(text);
        if (used + n + 2 > len)
            abort(); /* templates are at most 512 characters */
        out[used++] = '/';
        memcpy(out + used, text, n + 1);
        used += n;
    }
}

static void check_loaded(const struct dz_policy_set *s)
{
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    char path[1100];

    if (dz_policy_service_count(s) != 1)
        abort();
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct dz_policy_route *r = s->routes[i];
        struct dz_policy_match m;
        const char *method = NULL;

        if (!r->rule || !r->path || !r->methods || r->service != dz_policy_service_at(s, 0))
            abort();
        for (size_t j = 0; j < 7 && !method; j++)
            if (r->methods & (1u << j))
                method = methods[j];
        instantiate(r, path, sizeof(path));
        if (dz_policy_match(s, method, path, &m) != 0 || m.status != DZ_MATCH_FOUND)
            abort();
        check_eval(m.route, "case 1", m.fin[0] ? m.fin : NULL);
        check_eval(m.route, NULL, m.fin[0] ? m.fin : NULL);
    }
}

static void fuzz_path(const uint8_t *data, size_t size)
{
    static struct dz_policy_set *fixed;
    struct dz_policy_match m;
    char err[256];
    char *path;

    if (!fixed && dz_policy_load_buf("fixed.yaml", fixed_policy, sizeof(fixed_policy) - 1, &fixed,
                                     err, sizeof(err)) != 0)
        abort();
    if (size > 4096)
        size = 4096;
    path = malloc(size + 1);
    if (!path)
        return;
    memcpy(path, data, size);
    path[size] = '\0';
    if (dz_policy_match(fixed, "GET", path, &m) != 0)
        abort();
    if (m.status == DZ_MATCH_FOUND) {
        /* Whatever matched is one of the declared templates, exactly. */
        if (!m.route || strchr(path, '?') || strstr(path, "//") || strstr(path, "/../") ||
            strstr(path, "/./") || strchr(path, '%'))
            abort();
        check_eval(m.route, path, m.fin[0] ? m.fin : NULL);
    } else if (m.route || m.service || m.fin[0]) {
        abort();
    }
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_policy_set *s = NULL;
    char err[512];
    int rc;

    err[0] = '\0';
    rc = dz_policy_load_buf("fuzz.yaml", data, size, &s, err, sizeof(err));
    if (rc != 0) {
        if (s || strncmp(err, "fuzz.yaml", 9) != 0)
            abort();
    } else {
        check_loaded(s);
        dz_policy_set_free(s);
    }
    fuzz_path(data, size);
    return 0;
}
