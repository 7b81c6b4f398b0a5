/*
 * card_util.c - the pure parts of darvaza-card (see card.h): the origin a
 * gateway URL names, the challenge message, the gateway's JSON answers and
 * the login request body (ECDSA DER -> r||s is keys/ecdsa_sig.c's).  No I/O, no globals,
 * bounded input: everything here is unit-tested with bad input and fuzzed
 * (tests/unit/test_card.c, tests/fuzz/fuzz_card.c).  It never touches the
 * token or the PIN.
 */
#include "card.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

/* ---------------------------------------------------------------- origin */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

static bool ipv6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int dz_card_origin_from_url(const char *url, char *out, size_t cap)
{
    const char *p;
    const char *auth_end;
    const char *host;
    const char *host_end;
    const char *port = NULL;
    size_t url_len;
    size_t n = 0;
    long port_val = 0;
    bool https;
    char buf[DZ_CARD_ORIGIN_MAX + 1];

    if (out && cap > 0)
        out[0] = '\0';
    if (!url || !out || cap == 0)
        return DZ_ERR_INVAL;
    url_len = strnlen(url, DZ_CARD_URL_MAX + 1);
    if (url_len > DZ_CARD_URL_MAX)
        return DZ_ERR_INVAL;
    if (strncasecmp(url, "https://", 8) == 0) {
        https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        https = false;
        p = url + 7;
    } else {
        return DZ_ERR_INVAL;
    }
    auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return DZ_ERR_INVAL; /* userinfo: a classic look-alike trick */
    host = p;
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end || host_end == host + 1)
            return DZ_ERR_INVAL;
        for (const char *q = host + 1; q < host_end; q++)
            if (!ipv6_char(*q))
                return DZ_ERR_INVAL;
        host_end++; /* keep the bracket */
    } else {
        host_end = host;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        if (host_end == host)
            return DZ_ERR_INVAL;
        for (const char *q = host; q < host_end; q++)
            if (!host_char(*q))
                return DZ_ERR_INVAL;
    }
    if (host_end < auth_end) {
        if (*host_end != ':')
            return DZ_ERR_INVAL;
        port = host_end + 1;
        if (port == auth_end || auth_end - port > 5)
            return DZ_ERR_INVAL;
        for (const char *q = port; q < auth_end; q++) {
            if (*q < '0' || *q > '9')
                return DZ_ERR_INVAL;
            port_val = port_val * 10 + (*q - '0');
        }
        if (port_val < 1 || port_val > 65535)
            return DZ_ERR_INVAL;
    }
    if ((size_t)(host_end - host) > DZ_CARD_ORIGIN_MAX - 16)
        return DZ_ERR_INVAL;

    n = (size_t)snprintf(buf, sizeof(buf), "%s://", https ? "https" : "http");
    for (const char *q = host; q < host_end; q++)
        buf[n++] = lower(*q);
    buf[n] = '\0';
    if (port && port_val != (https ? 443 : 80))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%ld", port_val);
    if (n + 1 > cap)
        return DZ_ERR_TOOBIG;
    memcpy(out, buf, n + 1);
    return 0;
}

/* ------------------------------------------------------------- challenge */

void dz_card_challenge_message(const char *origin, const char *nonce, unsigned char msg[64])
{
    dz_sha256(origin, strlen(origin), msg);
    dz_sha256(nonce, strlen(nonce), msg + 32);
}

/* ------------------------------------------------------------ the answers */

static json_t *load_object(const char *body, size_t len)
{
    json_t *j;

    if (!body || len == 0 || len > DZ_CARD_BODY_MAX)
        return NULL;
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int dz_card_parse_challenge(const char *body, size_t len, char nonce[DZ_CARD_NONCE_MAX + 1],
                            long *expires_in)
{
    json_t *j;
    json_t *n;
    json_t *e;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    const char *s;
    size_t s_len;
    int rc = DZ_ERR_PARSE;

    nonce[0] = '\0';
    *expires_in = 0;
    if (len > DZ_CARD_BODY_MAX)
        return DZ_ERR_TOOBIG;
    j = load_object(body, len);
    if (!j)
        return DZ_ERR_PARSE;
    n = json_object_get(j, "nonce");
    e = json_object_get(j, "expires_in");
    if (!json_is_string(n) || !json_is_integer(e))
        goto out;
    s = json_string_value(n);
    s_len = json_string_length(n);
    if (s_len == 0 || s_len > DZ_CARD_NONCE_MAX || strlen(s) != s_len)
        goto out;
    /* The gateway promises 32 random bytes in standard base64: anything
     * else is not our gateway (or not this protocol). */
    if (dz_b64_decode(s, s_len, false, &raw, &raw_len) != 0 || raw_len != 32)
        goto out;
    if (json_integer_value(e) < 1 || json_integer_value(e) > 86400)
        goto out;
    memcpy(nonce, s, s_len + 1);
    *expires_in = (long)json_integer_value(e);
    rc = 0;
out:
    free(raw);
    json_decref(j);
    return rc;
}

/* Copy a JSON string value, truncated, control characters (and DEL) as '?'
 * so a hostile answer cannot drive the terminal. */
static void copy_clean(char *dst, size_t cap, const json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    size_t i;

    for (i = 0; i < len && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    /* Do not leave half a UTF-8 sequence at the cut. */
    if (i < len) {
        while (i > 0 && ((unsigned char)dst[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0 && ((unsigned char)dst[i - 1] & 0xC0) == 0xC0)
            i--;
    }
    dst[i] = '\0';
}

int dz_card_parse_problem(const char *body, size_t len, struct dz_card_problem *out)
{
    json_t *j;
    json_t *code;

    memset(out, 0, sizeof(*out));
    j = load_object(body, len);
    if (!j)
        return DZ_ERR_PARSE;
    code = json_object_get(j, "code");
    if (!json_is_string(code) || json_string_length(code) == 0) {
        json_decref(j);
        return DZ_ERR_PARSE;
    }
    copy_clean(out->code, sizeof(out->code), code);
    copy_clean(out->title, sizeof(out->title), json_object_get(j, "title"));
    copy_clean(out->detail, sizeof(out->detail), json_object_get(j, "detail"));
    json_decref(j);
    return 0;
}

int dz_card_parse_session(const char *body, size_t len, char token[257])
{
    json_t *j;
    json_t *t;
    const char *s;
    size_t n;
    int rc = DZ_ERR_PARSE;

    token[0] = '\0';
    j = load_object(body, len);
    if (!j)
        return DZ_ERR_PARSE;
    t = json_object_get(j, "token");
    if (!json_is_string(t))
        goto out;
    s = json_string_value(t);
    n = json_string_length(t);
    if (n == 0 || n > 256)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            goto out;
    memcpy(token, s, n + 1);
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int dz_card_request_json(const unsigned char *cert_der, size_t cert_len, const char *alg,
                         const char *nonce, const unsigned char *sig, size_t sig_len, char **out)
{
    char *cert_b64 = NULL;
    char *sig_b64 = NULL;
    json_t *j = NULL;
    int rc;

    *out = NULL;
    if (!cert_der || cert_len == 0 || !alg || !nonce || !sig || sig_len == 0 ||
        sig_len > DZ_CARD_SIG_MAX)
        return DZ_ERR_INVAL;
    if ((rc = dz_b64_encode(cert_der, cert_len, false, &cert_b64)) != 0 ||
        (rc = dz_b64_encode(sig, sig_len, false, &sig_b64)) != 0)
        goto out;
    j = json_pack("{s:s, s:s, s:s, s:s}", "certificate", cert_b64, "algorithm", alg, "nonce", nonce,
                  "signature", sig_b64);
    if (!j) {
        rc = DZ_ERR_INVAL; /* a string that is not UTF-8 */
        goto out;
    }
    *out = json_dumps(j, JSON_COMPACT);
    rc = *out ? 0 : DZ_ERR_NOMEM;
out:
    json_decref(j);
    free(cert_b64);
    free(sig_b64);
    return rc;
}
