/* test_auditrec.c - audit records built without jansson (gateway/audit/auditrec.c):
 * the line is byte for byte what json_dumps(JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII) writes for the same members, for thousands of generated
 * records (escapes, control characters, every UTF-8 length, long values, keys
 * that are prefixes of others, members set twice), and the builder refuses
 * what jansson refused. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit/auditrec.h"
#include "base/buf.h"
#include "base/err.h"

/* A fixed generator: the same records on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Keys of the forwarding lines and the chain, plus ones that test the order:
 * prefixes ("p" < "path" < "path2"), upper case before lower, digits, '_'. */
static const char *const KEYS[] = {
    "type",   "phase",    "decision", "service", "route", "method", "path",  "fin",
    "means",  "sid",      "tgt",      "pur",     "jti",   "role",   "rel",   "bdy",
    "rid",    "instance", "seq",      "time",    "prev",  "status", "bytes", "sent",
    "result", "p",        "path2",    "Z",       "a_b",   "a",      "ab",    "9",
};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

/* Append the UTF-8 encoding of cp to s (room checked by the caller). */
static size_t put_utf8(char *s, uint32_t cp)
{
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xc0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        s[0] = (char)(0xe0 | cp >> 12);
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    s[0] = (char)(0xf0 | cp >> 18);
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string of up to max bytes: plain text, quotes and backslashes, every
 * control character, DEL, '/', 2-, 3- and 4-byte sequences; with bad set,
 * sometimes a byte sequence that is not UTF-8 (a lone continuation byte, an
 * overlong form, a surrogate, a cut sequence). */
static char *gen_string(size_t max, bool bad)
{
    char *s = malloc(max + 8);
    size_t n = 0, want = max ? next() % (max + 1) : 0;

    assert_non_null(s);
    while (n < want) {
        uint32_t k = next() % 12, cp;
        switch (k) {
        case 0:
            cp = 1 + next() % 0x1f; /* controls, never NUL */
            break;
        case 1:
            cp = "\"\\/\x7f"[next() % 4];
            break;
        case 2:
            cp = 0x80 + next() % 0x780;
            break;
        case 3:
            cp = 0x800 + next() % 0xf800;
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xe000;
            break;
        case 4:
            cp = 0x10000 + next() % 0x100000;
            break;
        default:
            cp = 0x20 + next() % 0x5f;
        }
        n += put_utf8(s + n, cp);
    }
    if (bad && next() % 4 == 0) {
        static const char *const broken[] = {"\x80",     "\xc0\xaf",         "\xed\xa0\x80",
                                             "\xe2\x82", "\xf5\x80\x80\x80", "\xff"};
        const char *b = broken[next() % 6];
        size_t at = n ? next() % n : 0;
        /* Inserted at a character boundary or not: either way not UTF-8. */
        memmove(s + at + strlen(b), s + at, n - at);
        memcpy(s + at, b, strlen(b));
        n += strlen(b);
    }
    s[n] = '\0';
    return s;
}

static char *rec_text(struct dz_audit_rec *r)
{
    struct dz_buf b;
    size_t len;
    char *out;

    dz_buf_init(&b, 1 << 20);
    assert_int_equal(dz_audit_rec_write(r, &b), 0);
    out = dz_buf_steal(&b, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

/* Thousands of records, each built both ways with the same calls. */
static void test_same_bytes_as_jansson(void **state)
{
    (void)state;
    for (int round = 0; round < 3000; round++) {
        struct dz_audit_rec *r = dz_audit_rec_new("forward");
        json_t *j = json_pack("{s:s}", "type", "forward");
        size_t members = next() % 20;
        bool ok = true; /* jansson could build it */
        size_t longest = round % 50 == 0 ? 6000 : 40;

        assert_non_null(r);
        for (size_t m = 0; m < members; m++) {
            const char *key = KEYS[1 + next() % (NKEYS - 1)];
            uint32_t kind = next() % 8;
            if (kind < 3) { /* a required string (json_pack's "s") */
                char *v = gen_string(longest, true);
                json_t *s = json_string(v);
                dz_audit_rec_str(r, key, v);
                if (!s)
                    ok = false;
                else
                    json_object_set_new(j, key, s);
                free(v);
            } else if (kind < 6) { /* an optional one: left out when not UTF-8 */
                char *v = gen_string(longest, true);
                dz_audit_rec_opt_str(r, key, v);
                json_object_set_new(j, key, json_string(v));
                free(v);
            } else if (kind == 6) {
                long long v = (long long)((uint64_t)next() << 32 | next());
                if (next() % 2)
                    v %= 1000;
                dz_audit_rec_int(r, key, v);
                json_object_set_new(j, key, json_integer(v));
            } else {
                bool v = next() % 2;
                dz_audit_rec_bool(r, key, v);
                json_object_set_new(j, key, json_boolean(v));
            }
        }
        if (ok) {
            char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
            char *got;
            assert_int_equal(dz_audit_rec_error(r), 0);
            got = rec_text(r);
            assert_non_null(want);
            if (strcmp(want, got) != 0)
                fprintf(stderr, "round %d:\n want %s\n got  %s\n", round, want, got);
            assert_string_equal(got, want);
            free(want);
            free(got);
        } else {
            assert_int_equal(dz_audit_rec_error(r), DZ_ERR_INVAL);
        }
        json_decref(j);
        dz_audit_rec_free(r);
    }
}

/* A forwarding line as forward.c builds it, with the chain members, against
 * the literal bytes (so a change in jansson would be seen too). */
static void test_forward_line(void **state)
{
    struct dz_audit_rec *r = dz_audit_rec_new("forward");
    char *got;

    (void)state;
    dz_audit_rec_str(r, "phase", "sent");
    dz_audit_rec_str(r, "decision", "allow");
    dz_audit_rec_str(r, "service", "registry");
    dz_audit_rec_str(r, "route", "/api/registry/{fin}");
    dz_audit_rec_str(r, "method", "GET");
    dz_audit_rec_str(r, "path", "/api/registry/\xc5\x9f\"x\"\n");
    dz_audit_rec_opt_str(r, "fin", "ABC1234");
    dz_audit_rec_opt_str(r, "rid", "0123456789abcdef01234567");
    dz_audit_rec_int(r, "seq", 42);
    dz_audit_rec_str(r, "time", "2026-12-07T01:02:03.004Z");
    dz_audit_rec_bool(r, "sent", false);
    got = rec_text(r);
    assert_string_equal(got, "{\"decision\":\"allow\",\"fin\":\"ABC1234\",\"method\":\"GET\","
                             "\"path\":\"/api/registry/\\u015F\\\"x\\\"\\n\",\"phase\":\"sent\","
                             "\"rid\":\"0123456789abcdef01234567\",\"route\":\"/api/registry/"
                             "{fin}\",\"sent\":false,\"seq\":42,\"service\":\"registry\","
                             "\"time\":\"2026-12-07T01:02:03.004Z\",\"type\":\"forward\"}");
    free(got);
    dz_audit_rec_free(r);
}

/* Integers at their ends are written as jansson writes them. */
static void test_int_ends(void **state)
{
    static const long long v[] = {0, -1, 9, 10, -10, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct dz_audit_rec *r = dz_audit_rec_new("forward");
        json_t *j = json_pack("{s:s, s:I}", "type", "forward", "n", (json_int_t)v[i]);
        char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        char *got;
        dz_audit_rec_int(r, "n", v[i]);
        got = rec_text(r);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(j);
        dz_audit_rec_free(r);
    }
}

/* What jansson refused is refused: a required value that is NULL or not
 * UTF-8, a bad key; the first error stays and writing reports it. */
static void test_refusals(void **state)
{
    struct dz_audit_rec *r;
    struct dz_buf b;

    (void)state;
    r = dz_audit_rec_new("forward");
    dz_audit_rec_opt_str(r, "fin", "\xff"); /* optional: left out */
    dz_audit_rec_opt_str(r, "sid", NULL);   /* the same */
    assert_int_equal(dz_audit_rec_error(r), 0);
    assert_false(dz_audit_rec_has(r, "fin"));
    assert_false(dz_audit_rec_has(r, "sid"));
    dz_audit_rec_str(r, "path", "/a\xc0\xaf"); /* required: the record is bad */
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_INVAL);
    dz_audit_rec_str(r, "route", "fine"); /* ignored after an error */
    assert_false(dz_audit_rec_has(r, "route"));
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_audit_rec_write(r, &b), DZ_ERR_INVAL);
    dz_buf_cleanup(&b);
    dz_audit_rec_free(r);

    r = dz_audit_rec_new("forward");
    dz_audit_rec_str(r, "path", NULL);
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_INVAL);
    dz_audit_rec_free(r);

    r = dz_audit_rec_new("forward");
    dz_audit_rec_int(r, "a\"b", 1);
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_INVAL);
    dz_audit_rec_free(r);

    r = dz_audit_rec_new(NULL);
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_INVAL);
    dz_audit_rec_free(r);

    /* More members than a record holds. */
    r = dz_audit_rec_new("forward");
    static char keys[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", i);
        dz_audit_rec_int(r, keys[i], i);
    }
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_TOOBIG);
    dz_audit_rec_free(r);

    /* Values over what a line may hold. */
    r = dz_audit_rec_new("forward");
    char *big = malloc(DZ_AUDITREC_VALUES_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', DZ_AUDITREC_VALUES_MAX);
    big[DZ_AUDITREC_VALUES_MAX] = '\0';
    dz_audit_rec_str(r, "path", big);
    assert_int_equal(dz_audit_rec_error(r), DZ_ERR_TOOBIG);
    free(big);
    dz_audit_rec_free(r);
    dz_audit_rec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_jansson),
        cmocka_unit_test(test_forward_line),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_int_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
