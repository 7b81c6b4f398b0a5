/*
 * api_common.h - what the password-based endpoints share (api_auth.c,
 * api_register.c, api_account.c): the decision context from the config,
 * and the handling of secrets taken from a request body.  Loop thread.
 */
#ifndef DZ_API_COMMON_H
#define DZ_API_COMMON_H

#include <jansson.h>
#include <stddef.h>

#include "auth/auth_password.h"
#include "core/rctx.h"

/* The lockout, password rules and stores of c's generation, into a. */
void dz_auth_fill_pwd_ctx(struct dz_rctx *c, struct dz_auth_password_ctx *a);

/* A malloc'd copy of the secret s[0..len] (NUL included) that outlives the
 * parsed body; NULL when out of memory. */
char *dz_auth_secret_dup(const char *s, size_t len);

/* Wipe and free *p (len bytes), then *p = NULL.  *p NULL: no-op. */
void dz_auth_secret_drop(char **p, size_t len);

/* Wipe the secret members of a parsed body ("password", "otp", "code",
 * "current_password"), then free it. */
void dz_auth_body_drop(json_t *body);

#endif
