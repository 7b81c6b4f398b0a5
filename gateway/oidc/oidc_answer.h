/*
 * oidc_answer.h - how the provider answers: redirects to a client (with
 * its query parameters encoded), OAuth error documents (RFC 6749 5.2,
 * RFC 6750 3), and the checks every OIDC handler shares.  Loop thread.
 */
#ifndef DZ_OIDC_ANSWER_H
#define DZ_OIDC_ANSWER_H

#include <stdbool.h>

#include "core/rctx.h"

#define DZ_OIDC_URL_MAX 4096 /* a redirect we build */

/* Whether c may still be answered (not closed, not answered yet). */
bool dz_oidc_can_answer(const struct dz_rctx *c);

/* 302 to base with the parameters names[i]=values[i] (NULL values
 * skipped) appended as a query ('?' or '&' as base needs), each value
 * percent-encoded.  A URL over DZ_OIDC_URL_MAX answers 500. */
void dz_oidc_redirect(struct dz_rctx *c, const char *base, const char *const *names,
                      const char *const *values, size_t n);

/* The same URL, malloc'd (caller frees), or NULL when too long or out of
 * memory. */
char *dz_oidc_build_url(const char *base, const char *const *names, const char *const *values,
                        size_t n);

/* {"error":error,"error_description":desc} with status (400, 401); for 401
 * a WWW-Authenticate of scheme ("Basic", "Bearer") naming the error. */
void dz_oidc_error(struct dz_rctx *c, int status, const char *error, const char *desc,
                   const char *scheme);

/* The query of the request's path (after '?'), "" when none; *len its
 * length. */
const char *dz_oidc_query(const struct dz_rctx *c, size_t *len);

#endif
