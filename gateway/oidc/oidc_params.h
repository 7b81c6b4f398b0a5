/*
 * oidc_params.h - the parsers of what an OpenID Connect client sends: the
 * query of /authorize and /logout, the form body of /token, and HTTP Basic
 * client credentials.  Pure functions over bounded buffers: no I/O, no
 * globals, any thread; fuzzed by tests/fuzz/fuzz_oidc_params.c.
 *
 * A parameter given twice is refused (RFC 6749 3.1, 3.2): two copies would
 * let one part of the gateway read one and another part the other.
 */
#ifndef DZ_OIDC_PARAMS_H
#define DZ_OIDC_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#define DZ_OIDC_PARAMS_MAX 24         /* parameters in one request */
#define DZ_OIDC_PARAM_NAME_MAX 40     /* bytes of a name */
#define DZ_OIDC_INPUT_MAX (16 * 1024) /* bytes of a query or form body */

struct dz_oidc_param {
    char *name;  /* decoded, NUL-terminated, no NUL inside */
    char *value; /* decoded, NUL-terminated, no NUL inside */
    size_t value_len;
};

struct dz_oidc_params {
    struct dz_oidc_param p[DZ_OIDC_PARAMS_MAX];
    size_t n;
    char *arena; /* one allocation holds every name and value */
};

/*
 * Parse application/x-www-form-urlencoded text (a query without its '?',
 * or a form body): name=value pairs split on '&', '+' as a blank, %XX
 * escapes (hex, either case).  Empty pairs ("a=1&&b=2") are skipped; a pair
 * without '=' has an empty value.  out is cleared on entry and, on success,
 * owns its memory (dz_oidc_params_cleanup).  Returns 0; DZ_ERR_TOOBIG (more
 * than DZ_OIDC_INPUT_MAX bytes, more than DZ_OIDC_PARAMS_MAX parameters, a
 * name over DZ_OIDC_PARAM_NAME_MAX); DZ_ERR_PARSE (a bad escape, a decoded
 * NUL or control character, a name outside [a-z0-9_]); DZ_ERR_EXISTS (a
 * name twice); DZ_ERR_NOMEM.  On error out holds nothing.
 */
int dz_oidc_params_parse(const char *s, size_t len, struct dz_oidc_params *out);

/* The value of name, or NULL when absent.  *len (may be NULL) its length. */
const char *dz_oidc_params_get(const struct dz_oidc_params *ps, const char *name, size_t *len);

/* Release what parse allocated (values are wiped: they may be secrets);
 * safe on a cleared or already cleaned-up struct. */
void dz_oidc_params_cleanup(struct dz_oidc_params *ps);

/*
 * Client credentials from an Authorization field value "Basic base64"
 * (RFC 7617, with RFC 6749 2.3.1's form-urlencoding of both parts).
 * id gets at most id_cap-1 bytes and secret at most secret_cap-1; both
 * NUL-terminated, cleared on entry and wiped on error.  Returns 0,
 * DZ_ERR_PARSE (not Basic, bad base64, no ':', bad escape, empty id),
 * DZ_ERR_TOOBIG (longer than the buffers).
 */
int dz_oidc_basic_parse(const char *value, char *id, size_t id_cap, char *secret,
                        size_t secret_cap);

/* Append s (len bytes) to out percent-encoded for a query value: only
 * RFC 3986 unreserved characters pass.  out has cap bytes; returns the
 * length written (without the NUL), or (size_t)-1 when it does not fit
 * (out is then ""). */
size_t dz_oidc_urlencode(const char *s, size_t len, char *out, size_t cap);

#endif
