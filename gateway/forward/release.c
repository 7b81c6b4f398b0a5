/*
 * release.c - the release filter (release.h): the fields of a back end's
 * answer that a route releases, on every answer with content, and the few
 * header fields of that answer that may go with them.
 */
#include "forward/release.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/compat.h"

/* A problem code as the contract writes it (../shared/DESIGN.md: a
 * stable snake_case token): too narrow a shape to carry a phone number,
 * an address or a document number. */
static bool is_code_token(const json_t *val)
{
    const char *s = json_string_value(val);
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The members that say what kind of error, never which record: RFC 9457's
 * type, title and status, and the contract's code (the portal's pages tell
 * "not_found" from others by it), each only with its own JSON type (a
 * "title" that is an object could be the record itself). */
static bool is_problem_kind(const char *key, const json_t *val)
{
    if (strcmp(key, "type") == 0 || strcmp(key, "title") == 0)
        return json_is_string(val);
    if (strcmp(key, "code") == 0)
        return is_code_token(val);
    return strcmp(key, "status") == 0 && json_is_integer(val);
}

/* Strips o of every field not released (on an error, but its kind). */
static void strip(const struct dz_policy_route *r, json_t *o, bool is_error)
{
    const char *key;
    json_t *val;
    void *tmp;

    json_object_foreach_safe(o, tmp, key, val)
    {
        if (!dz_policy_release_allows(r, key) && !(is_error && is_problem_kind(key, val)))
            json_object_del(o, key);
    }
    /* The contract's problem document always has a detail; the back end's
     * went (free text), so a problem keeps the shape clients read with its
     * title in its place, as the gateway's own problems without a detail. */
    val = is_error ? json_object_get(o, "title") : NULL;
    if (json_is_string(val) && !json_object_get(o, "detail"))
        json_object_set_new(o, "detail", json_string(json_string_value(val)));
}

enum dz_release_verdict dz_release_filter(const struct dz_policy_route *r, int status, bool coded,
                                          const void *body, size_t len, char **out, size_t *out_len)
{
    bool is_error = status >= 400;
    enum dz_release_verdict bad = is_error ? DZ_RELEASE_WITHHELD : DZ_RELEASE_REFUSED;
    enum dz_release_verdict v = bad;
    json_error_t err;
    json_t *j;

    *out = NULL;
    *out_len = 0;
    if (status < 200 || (status >= 300 && status < 400) || status == 206)
        return DZ_RELEASE_REFUSED;
    if (is_error && len == 0)
        return DZ_RELEASE_FILTERED;
    /* A coded body is no JSON the filter reads: the gateway asks for
     * identity (is_filter_ask), and passes nothing else on. */
    if (coded)
        return bad;
    memset(&err, 0, sizeof(err));
    j = json_loadb(len ? body : "", len, 0, &err);
    /* Our memory or the service's JSON, told apart: jansson (2.14) never
     * reports json_error_out_of_memory from a parse: a failed allocation
     * returns with no error set (the code stays zero, json_error_unknown),
     * while every fault of the text sets a code.  A failed copy of a
     * string token is the exception (told as an invalid token): that one
     * is read as the service's. */
    if (!j)
        return json_error_code(&err) == json_error_unknown ||
                       json_error_code(&err) == json_error_out_of_memory
                   ? DZ_RELEASE_NOMEM
                   : bad;
    if (json_is_object(j)) {
        strip(r, j, is_error);
    } else if (json_is_array(j) && !is_error) {
        /* A list of records; an error is one problem document. */
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (!json_is_object(json_array_get(j, i)))
                goto out;
            strip(r, json_array_get(j, i), false);
        }
    } else {
        goto out;
    }
    *out = json_dumps(j, JSON_COMPACT);
    if (*out) {
        *out_len = strlen(*out);
        v = DZ_RELEASE_FILTERED;
    } else {
        v = DZ_RELEASE_NOMEM;
    }
out:
    json_decref(j);
    return v;
}

/* delay-seconds (RFC 9110 10.2.3), bounded: the HTTP-date form is the
 * back end's text, which could be a date of the record. */
static bool is_delay_seconds(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
    }
    return true;
}

/* An IMF-fixdate's shape ("Sun, 06 Nov 1994 08:49:37 GMT"): the back
 * end's clock, never a free text. */
static bool is_fixdate(const char *v)
{
    static const char shape[] = "Aaa, 00 Aaa 0000 00:00:00 GMT";

    if (strlen(v) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        bool ok;

        if (shape[i] == 'A' || shape[i] == 'a')
            ok = (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z');
        else if (shape[i] == '0')
            ok = v[i] >= '0' && v[i] <= '9';
        else
            ok = v[i] == shape[i];
        if (!ok)
            return false;
    }
    return true;
}

bool dz_release_field_allows(int status, const char *name, const char *value)
{
    if (strcasecmp(name, "date") == 0)
        return is_fixdate(value);
    if (strcasecmp(name, "retry-after") == 0)
        return (status == 429 || status == 503) && is_delay_seconds(value);
    return false;
}

const char *dz_release_content_type(int status, const char *backend_type)
{
    static const char problem[] = "application/problem+json";
    size_t n = sizeof(problem) - 1;

    /* Only the media type is read, never a parameter (a back end's text). */
    if (status >= 400 && backend_type && strncasecmp(backend_type, problem, n) == 0 &&
        (backend_type[n] == '\0' || backend_type[n] == ';' || backend_type[n] == ' '))
        return problem;
    return "application/json";
}
