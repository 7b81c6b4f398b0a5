/*
 * oidc_params.c - see oidc_params.h.  Every byte of a value is inside the
 * one arena, sized from the input, so a decoded value can never be longer
 * than what was sent.
 */
#include "oidc/oidc_params.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"

#include "base/compat.h"

/* Decode [s, s+len) into out (at least len+1 bytes); no NUL or control
 * characters in the result (a tab and a blank are allowed in values). */
static int decode(const char *s, size_t len, char *out, size_t *out_len)
{
    size_t k = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            int hi;
            int lo;
            if (i + 2 >= len)
                return DZ_ERR_PARSE;
            hi = dz_hex_digit(s[i + 1]);
            lo = dz_hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0)
                return DZ_ERR_PARSE;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f)
            return DZ_ERR_PARSE;
        out[k++] = (char)ch;
    }
    out[k] = '\0';
    *out_len = k;
    return 0;
}

static bool is_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return true;
}

int dz_oidc_params_parse(const char *s, size_t len, struct dz_oidc_params *out)
{
    char *arena = NULL;
    size_t used = 0;
    size_t pos = 0;
    int rc = DZ_ERR_NOMEM;

    memset(out, 0, sizeof(*out));
    if (!s)
        len = 0;
    if (len > DZ_OIDC_INPUT_MAX)
        return DZ_ERR_TOOBIG;
    /* Each pair needs at most its own bytes plus two NULs. */
    arena = malloc(len + 2 * DZ_OIDC_PARAMS_MAX + 2);
    if (!arena)
        return DZ_ERR_NOMEM;
    while (pos < len) {
        size_t end = pos;
        size_t eq;
        size_t nlen;
        size_t vlen;
        char *name;
        char *value;

        while (end < len && s[end] != '&')
            end++;
        if (end == pos) {
            pos++;
            continue;
        }
        eq = pos;
        while (eq < end && s[eq] != '=')
            eq++;
        if (out->n == DZ_OIDC_PARAMS_MAX) {
            rc = DZ_ERR_TOOBIG;
            goto fail;
        }
        if (eq - pos > DZ_OIDC_PARAM_NAME_MAX * 3) {
            rc = DZ_ERR_TOOBIG;
            goto fail;
        }
        name = arena + used;
        rc = decode(s + pos, eq - pos, name, &nlen);
        if (rc != 0)
            goto fail;
        if (nlen > DZ_OIDC_PARAM_NAME_MAX) {
            rc = DZ_ERR_TOOBIG;
            goto fail;
        }
        if (!is_name(name, nlen)) {
            rc = DZ_ERR_PARSE;
            goto fail;
        }
        used += nlen + 1;
        value = arena + used;
        rc =
            eq < end ? decode(s + eq + 1, end - eq - 1, value, &vlen) : decode("", 0, value, &vlen);
        if (rc != 0)
            goto fail;
        used += vlen + 1;
        for (size_t i = 0; i < out->n; i++) {
            if (strcmp(out->p[i].name, name) == 0) {
                rc = DZ_ERR_EXISTS;
                goto fail;
            }
        }
        out->p[out->n].name = name;
        out->p[out->n].value = value;
        out->p[out->n].value_len = vlen;
        out->n++;
        pos = end + 1;
    }
    out->arena = arena;
    return 0;
fail:
    dz_secret_wipe(arena, len + 2 * DZ_OIDC_PARAMS_MAX + 2);
    free(arena);
    memset(out, 0, sizeof(*out));
    return rc;
}

const char *dz_oidc_params_get(const struct dz_oidc_params *ps, const char *name, size_t *len)
{
    if (len)
        *len = 0;
    for (size_t i = 0; ps && i < ps->n; i++) {
        if (strcmp(ps->p[i].name, name) == 0) {
            if (len)
                *len = ps->p[i].value_len;
            return ps->p[i].value;
        }
    }
    return NULL;
}

void dz_oidc_params_cleanup(struct dz_oidc_params *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++)
        dz_secret_wipe(ps->p[i].value, ps->p[i].value_len);
    free(ps->arena);
    memset(ps, 0, sizeof(*ps));
}

int dz_oidc_basic_parse(const char *value, char *id, size_t id_cap, char *secret, size_t secret_cap)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    size_t colon;
    size_t n;
    int rc = DZ_ERR_PARSE;

    if (id_cap)
        id[0] = '\0';
    if (secret_cap)
        secret[0] = '\0';
    if (!value || strncasecmp(value, "Basic ", 6) != 0)
        return DZ_ERR_PARSE;
    value += 6;
    while (*value == ' ')
        value++;
    n = strlen(value);
    if (n == 0 || n > 4096)
        return n ? DZ_ERR_TOOBIG : DZ_ERR_PARSE;
    if (dz_b64_decode(value, n, false, &raw, &raw_len) != 0)
        return DZ_ERR_PARSE;
    for (colon = 0; colon < raw_len && raw[colon] != ':'; colon++)
        ;
    if (colon == 0 || colon == raw_len)
        goto out;
    /* Both halves are form-urlencoded (RFC 6749 2.3.1); the decoded text is
     * never longer than the encoded one. */
    if (colon >= id_cap || raw_len - colon - 1 >= secret_cap) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    rc = decode((const char *)raw, colon, id, &n);
    if (rc == 0 && n == 0)
        rc = DZ_ERR_PARSE;
    if (rc == 0)
        rc = decode((const char *)raw + colon + 1, raw_len - colon - 1, secret, &n);
out:
    if (rc != 0) {
        dz_secret_wipe(id, id_cap);
        dz_secret_wipe(secret, secret_cap);
        if (id_cap)
            id[0] = '\0';
        if (secret_cap)
            secret[0] = '\0';
    }
    if (raw) {
        dz_secret_wipe(raw, raw_len);
        free(raw);
    }
    return rc;
}

size_t dz_oidc_urlencode(const char *s, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;

    if (cap == 0)
        return (size_t)-1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (k + (plain ? 1 : 3) >= cap) {
            out[0] = '\0';
            return (size_t)-1;
        }
        if (plain) {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
    return k;
}
