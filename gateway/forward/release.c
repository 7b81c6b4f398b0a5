/*
 * release.c - the release filter (release.h): the fields of a back end's
 * answer that a route releases, on every answer with content.
 */
#include "forward/release.h"

#include <string.h>

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
