/*
 * auditrec.c - audit records encoded member by member and written in key
 * order (see auditrec.h).  Each value is encoded once, when it is set, into
 * one buffer; writing the line is then a sort of a few keys and copies.
 */
#include "audit/auditrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/jsonout.h"

#include "base/compat.h"

/* dz_audit_rec_new's bounds: the forwarding lines have at most 17 members
 * with the chain's, and about 350 bytes of values. */
#define MEMBERS_MAX 32
#define VALUES_ROOM 1024

struct member {
    const char *key;
    size_t off; /* the encoded value in vals */
    size_t len;
};

struct dz_audit_rec {
    size_t n;
    size_t members_max;
    int err;
    struct dz_buf vals;
    const char *type;
    struct member m[]; /* members_max of them */
};

static bool key_ok(const char *key)
{
    if (!key || !*key)
        return false;
    for (const char *p = key; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return false;
    return true;
}

/* strcmp's order; keys are code constants that mostly differ in their
 * first byte, or are the same literal: those need no call. */
static int key_cmp(const char *a, const char *b)
{
    if (a == b)
        return 0;
    if (a[0] != b[0])
        return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
    return strcmp(a, b);
}

static void fail(struct dz_audit_rec *r, int rc)
{
    if (r->err == 0)
        r->err = rc;
}

/* Record the value just appended to vals (from off) under key. */
static void set(struct dz_audit_rec *r, const char *key, size_t off)
{
    size_t i = 0;

    while (i < r->n && key_cmp(r->m[i].key, key) != 0)
        i++;
    if (i == r->n) {
        if (r->n == r->members_max) {
            fail(r, DZ_ERR_TOOBIG);
            return;
        }
        r->n++;
    }
    r->m[i] = (struct member){key, off, r->vals.len - off};
}

/* The start of a member's value, or false when the record is already bad
 * or the key is. */
static bool begin(struct dz_audit_rec *r, const char *key, size_t *off)
{
    if (!r || r->err)
        return false;
    if (!key_ok(key)) {
        fail(r, DZ_ERR_INVAL);
        return false;
    }
    *off = r->vals.len;
    return true;
}

static void put_str(struct dz_audit_rec *r, const char *key, const char *v, bool required)
{
    size_t off, n;
    int rc;

    if (!begin(r, key, &off))
        return;
    if (!v || !dz_json_utf8_valid(v, n = strlen(v))) {
        if (required)
            fail(r, DZ_ERR_INVAL);
        return;
    }
    if ((rc = dz_json_put_string(&r->vals, v, n)) != 0)
        fail(r, rc);
    else
        set(r, key, off);
}

void dz_audit_rec_str(struct dz_audit_rec *r, const char *key, const char *v)
{
    put_str(r, key, v, true);
}

void dz_audit_rec_opt_str(struct dz_audit_rec *r, const char *key, const char *v)
{
    put_str(r, key, v, false);
}

static void put_raw(struct dz_audit_rec *r, const char *key, const char *text, size_t n)
{
    size_t off;
    int rc;

    if (!begin(r, key, &off))
        return;
    if ((rc = dz_buf_append(&r->vals, text, n)) != 0)
        fail(r, rc);
    else
        set(r, key, off);
}

/* Decimal digits by hand: the writer sets "seq" on every line, and a
 * snprintf cost more than the rest of setting it. */
void dz_audit_rec_int(struct dz_audit_rec *r, const char *key, long long v)
{
    char digits[24];
    size_t i = sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        digits[--i] = '-';
    put_raw(r, key, digits + i, sizeof(digits) - i);
}

void dz_audit_rec_bool(struct dz_audit_rec *r, const char *key, bool v)
{
    put_raw(r, key, v ? "true" : "false", v ? 4 : 5);
}

struct dz_audit_rec *dz_audit_rec_new_sized(const char *type, size_t members_max, size_t values_max)
{
    struct dz_audit_rec *r;

    if (members_max < 1 || members_max > DZ_AUDITREC_MEMBERS_MAX ||
        values_max > DZ_AUDITREC_VALUES_MAX)
        return NULL;
    r = calloc(1, sizeof(*r) + members_max * sizeof(r->m[0]));
    if (!r)
        return NULL;
    r->members_max = members_max;
    /* The values of one record are bounded by what one line may hold. */
    dz_buf_init(&r->vals, DZ_AUDITREC_VALUES_MAX);
    /* One allocation for all the values the caller expects. */
    if (dz_buf_reserve(&r->vals, values_max) != 0) {
        free(r);
        return NULL;
    }
    r->type = type;
    dz_audit_rec_str(r, "type", type);
    return r;
}

struct dz_audit_rec *dz_audit_rec_new(const char *type)
{
    return dz_audit_rec_new_sized(type, MEMBERS_MAX, VALUES_ROOM);
}

void dz_audit_rec_free(struct dz_audit_rec *r)
{
    if (!r)
        return;
    dz_buf_cleanup(&r->vals);
    free(r);
}

bool dz_audit_rec_has(const struct dz_audit_rec *r, const char *key)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (key_cmp(r->m[i].key, key) == 0)
            return true;
    return false;
}

int dz_audit_rec_error(const struct dz_audit_rec *r)
{
    return r ? r->err : DZ_ERR_INVAL;
}

const char *dz_audit_rec_type(const struct dz_audit_rec *r)
{
    return r ? r->type : NULL;
}

int dz_audit_rec_write(struct dz_audit_rec *r, struct dz_buf *out)
{
    int rc;

    if (r->err)
        return r->err;
    /* Insertion sort by strcmp, the order of jansson's JSON_SORT_KEYS (it
     * compares the keys' bytes, the shorter first on a common prefix). */
    for (size_t i = 1; i < r->n; i++) {
        struct member m = r->m[i];
        size_t j = i;
        while (j > 0 && key_cmp(r->m[j - 1].key, m.key) > 0) {
            r->m[j] = r->m[j - 1];
            j--;
        }
        r->m[j] = m;
    }
    for (size_t i = 0; i < r->n; i++) {
        if ((rc = dz_buf_append(out, i ? ",\"" : "{\"", 2)) != 0 ||
            (rc = dz_buf_append_str(out, r->m[i].key)) != 0 ||
            (rc = dz_buf_append(out, "\":", 2)) != 0 ||
            (rc = dz_buf_append(out, r->vals.data + r->m[i].off, r->m[i].len)) != 0)
            return rc;
    }
    return dz_buf_append(out, r->n ? "}" : "{}", r->n ? 1 : 2);
}
