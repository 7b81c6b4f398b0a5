/*
 * oidc_state.h - what the provider remembers between requests, all of it
 * in the ephemeral store (state/store.h), so that any instance sharing the
 * store can finish what another began: authorization requests waiting for
 * a login, codes, access tokens, codes already used, client assertion jti
 * values, consent decisions, and which clients each session signed in to.
 *
 * Secrets (codes, access tokens, request ids) are never keys: the key is
 * SHA-256 of the secret's text, so a dump of the store yields nothing a
 * client could present.  Values are compact JSON objects.  Thread-safe;
 * each call is a synchronous store call, which may wait on a shared store:
 * a worker loop makes them through oidc_offloop.h.
 */
#ifndef DZ_OIDC_STATE_H
#define DZ_OIDC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct dz_policy_set;
struct dz_store;

#define DZ_OIDC_NS_REQUEST "oidcreq"     /* pending authorization requests */
#define DZ_OIDC_NS_CODE "oidccode"       /* authorization codes (single use) */
#define DZ_OIDC_NS_USED "oidcused"       /* codes already exchanged: replay detection */
#define DZ_OIDC_NS_TOKEN "oidcat"        /* access tokens */
#define DZ_OIDC_NS_JTI "oidcjti"         /* client assertion ids seen */
#define DZ_OIDC_NS_CONSENT "oidcconsent" /* remembered consent decisions */
#define DZ_OIDC_NS_SID "oidcsid"         /* (session, client) pairs signed in */

#define DZ_OIDC_SECRET_LEN 43 /* base64url of 32 random bytes */

/* A fresh secret (code, token, request id) into out.  0 or DZ_ERR_CRYPTO. */
int dz_oidc_secret_new(char out[DZ_OIDC_SECRET_LEN + 1]);

/* Store val (not consumed) under SHA-256 of key text.  flags as for
 * dz_store_put.  0, or the store's error. */
int dz_oidc_state_put(struct dz_store *st, const char *ns, const char *key, const json_t *val,
                      uint64_t ttl_ms, int flags);

/* Get (take: and delete in the same step) the JSON object under SHA-256 of
 * key.  *out a new reference on success, NULL otherwise.  0,
 * DZ_ERR_NOTFOUND, DZ_ERR_PARSE (not a JSON object), DZ_ERR_NOMEM. */
int dz_oidc_state_get(struct dz_store *st, const char *ns, const char *key, bool take,
                      json_t **out);

/* Delete the entry under SHA-256 of key.  0 or DZ_ERR_NOTFOUND. */
int dz_oidc_state_del(struct dz_store *st, const char *ns, const char *key);

/* The same as a durable delete (dz_store_del_durable): for an entry whose
 * return after a failover would give a right back (a withdrawn consent).
 * 0, DZ_ERR_NOTFOUND, or the store's failure (not known to be deleted). */
int dz_oidc_state_del_durable(struct dz_store *st, const char *ns, const char *key);

/* Whether the session whose sid (base64url, as ID tokens carry it) is
 * sid_b64 is still alive: 0; DZ_ERR_NOTFOUND when it has ended (logout,
 * expiry, ended from the account page) or sid_b64 is no sid; or the
 * store's failure (which says nothing about the session). */
int dz_oidc_session_alive(struct dz_store *st, const char *sid_b64);

/* Record that the session sid signed in to client_id (for back-channel
 * logout), kept for ttl_ms: one store entry per (session, client), so
 * concurrent additions from several instances never lose one another.
 * 0 or the store's error. */
int dz_oidc_sid_add(struct dz_store *st, const char *sid_b64, const char *client_id,
                    uint64_t ttl_ms);

/* Take the session's clients among those ps registers with a back-channel
 * URI (one take each, so each is handed out once across instances): *out a
 * new reference to a JSON array of client ids (empty when none; what was
 * taken even when a take failed).  0, DZ_ERR_NOMEM, or the first store
 * error. */
int dz_oidc_sid_take(struct dz_store *st, const struct dz_policy_set *ps, const char *sid_b64,
                     json_t **out);

#endif
