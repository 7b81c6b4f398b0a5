/*
 * fuzz_release.c - the release filter (gateway/forward/release.c) over a
 * back end's answer, which is outside input: the first two bytes are the
 * status (100..699), the third's low bit says whether the answer is coded,
 * the rest is the body, also tried as the value of a `date` and a
 * `retry-after` field.
 * Promises checked besides no crash, no leak:
 *  - a filtered answer is JSON (an object, or for a 2xx an array of
 *    objects), and every member it keeps is released by the route (fin,
 *    name) or, on an error, says what kind of error: type and title
 *    (strings), status (an integer), code (a snake_case token), detail
 *    (the kept title itself);
 *  - a 1xx, 3xx or 206 is never filtered, nor a coded body with content;
 *  - an allowed `date` is 29 bytes, an allowed `retry-after` digits only
 *    and only on a 429 or 503.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "forward/release.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy[] = "service: t\nregistered_as: DIS-0001\nupstream: http://127.0.0.1:9\n"
                             "routes:\n  - path: /r\n    methods: [GET]\n    acr: low\n"
                             "    release: [fin, name]\n";

static struct dz_policy_set *set;

static void init(void)
{
    char err[256];

    if (set)
        return;
    if (dz_policy_load_buf("t.yaml", policy, sizeof(policy) - 1, &set, err, sizeof(err)) != 0 ||
        set->n_routes != 1)
        abort();
}

static bool is_token(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= 64 && s[0] >= 'a' && s[0] <= 'z' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Every member of o is released, or (on an error) of the error's kind. */
static void check_object(const json_t *o, bool is_error)
{
    const struct dz_policy_route *r = set->routes[0];
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        abort();
    json_object_foreach((json_t *)o, key, v)
    {
        if (dz_policy_release_allows(r, key))
            continue;
        if (!is_error)
            abort();
        if ((strcmp(key, "type") == 0 || strcmp(key, "title") == 0) && json_is_string(v))
            continue;
        if (strcmp(key, "status") == 0 && json_is_integer(v))
            continue;
        if (strcmp(key, "code") == 0 && is_token(v))
            continue;
        if (strcmp(key, "detail") == 0 && json_is_string(v) &&
            json_equal(v, json_object_get(o, "title")))
            continue;
        abort();
    }
}

static void check_fields(int status, const char *v)
{
    if (dz_release_field_allows(status, "date", v) && strlen(v) != 29)
        abort();
    if (dz_release_field_allows(status, "retry-after", v) &&
        ((status != 429 && status != 503) || strspn(v, "0123456789") != strlen(v)))
        abort();
    if (dz_release_field_allows(status, "x-record", v) ||
        dz_release_field_allows(status, "set-cookie", v))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int status;
    bool coded;
    char *out = NULL;
    size_t out_len = 0;
    char *text;
    enum dz_release_verdict v;

    init();
    if (size < 3)
        return 0;
    status = 100 + (data[0] << 8 | data[1]) % 600;
    coded = data[2] & 1;
    data += 3;
    size -= 3;

    v = dz_release_filter(set->routes[0], status, coded, data, size, &out, &out_len);
    if (v == DZ_RELEASE_FILTERED &&
        (status < 200 || (status >= 300 && status < 400) || status == 206 || (coded && size > 0)))
        abort();
    if (v == DZ_RELEASE_FILTERED && out) {
        json_t *j = json_loadb(out, out_len, 0, NULL);
        if (!j)
            abort();
        if (json_is_array(j) && status < 300) {
            for (size_t i = 0; i < json_array_size(j); i++)
                check_object(json_array_get(j, i), false);
        } else {
            check_object(j, status >= 400);
        }
        json_decref(j);
    }
    free(out);

    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_fields(status, text);
    free(text);
    return 0;
}
