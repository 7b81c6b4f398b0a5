/*
 * login.h - the last steps every means of login shares: make the session,
 * record the login in the audit log (durable before the answer), answer
 * 200 with the session and the __Host-darvaza cookie.  Loop thread only;
 * the store calls (the session, its index entry, the lockout's forgive)
 * do not wait on the loop (core/gwasync.h dz_gw_state).
 */
#ifndef DZ_LOGIN_H
#define DZ_LOGIN_H

#include <jansson.h>

#include "core/rctx.h"
#include "state/accounts.h"
#include "state/session.h"

/* Open a session from tmpl (fin, method, amr, acr, role, auth_time, prf),
 * append record (consumed; "sid" and "acr" are added) and answer.  If the
 * session cannot be made or the audit line cannot be written, the client gets
 * 503 and no session survives (fail closed).  Also counts the login in the
 * metrics under means. */
void dz_login_complete(struct dz_rctx *c, const struct dz_session *tmpl, const char *means,
                       json_t *record);

/* The password login's: as dz_login_complete, but once the session is made
 * and listed, the account is read again (on the blocking pool): if a
 * password change or a TOTP reset replaced what the login verified (tag,
 * dz_auth_password_result.cred_tag) meanwhile, the session is ended again
 * and the login refused as bad_credentials (reason credentials_changed on
 * its audit line), for that change may have listed the person's sessions
 * before this one was listed, and so not ended it.  A failed read: 503, no
 * session. */
void dz_login_complete_password(struct dz_rctx *c, const struct dz_session *tmpl, json_t *record,
                                struct dz_accounts *accounts,
                                const unsigned char tag[DZ_ACCOUNT_TAG_LEN]);

/* The same for the long-polled means (mobile, QR): the answer also carries
 * "state":"complete". */
void dz_login_complete_polled(struct dz_rctx *c, const struct dz_session *tmpl, const char *means,
                              json_t *record);

/* Record a refused login (consumed) and then answer with code (a static
 * string) and optional detail (copied). */
void dz_login_refuse(struct dz_rctx *c, const char *means, json_t *record, const char *code,
                     const char *detail);

/* The session answer body (without the token) shared by every login path and
 * GET /auth/session. */
json_t *dz_session_answer(const struct dz_session *s, const char *token);

#endif
