/*
 * oidc_consent.h - consent for clients that are not pre-approved: the
 * decision of a person for a client and the fields it receives, remembered
 * in the store (one entry per person and client, key SHA-256 of
 * "consent|FIN|client_id", each written whole by one put or removed by one
 * delete, so that concurrent decisions about different clients never undo
 * one another), shown and withdrawn from the account page.  Every decision
 * is audited.
 * Endpoints (the portal's page calls them; JSON, same origin only):
 *   GET  /authorize/consent?id=   what the parked request asks
 *   POST /authorize/consent       {"id","approve":true|false}
 *   GET  /oidc/consents           the person's decisions
 *   POST /oidc/consents           {"withdraw": client_id}
 * The endpoints: loop thread (their store calls run off it, oidc_offloop.h).
 * The functions below make synchronous store calls: any thread, and on a
 * worker loop only with a store that never waits (dz_store_waits false).
 */
#ifndef DZ_OIDC_CONSENT_H
#define DZ_OIDC_CONSENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "oidc/oidc_authreq.h"

struct dz_store;
struct dz_policy_set;

#define DZ_OIDC_CONSENT_TTL_MS (365ull * 24 * 3600 * 1000)

/* Whether fin approved ar's client for at least ar's scopes and the
 * client's release fields, at or after since_ms (unix milliseconds; 0:
 * whenever).  Any error reads as "not given" (ask again). */
bool dz_oidc_consent_given(struct dz_store *st, const char *fin, const struct dz_oidc_authreq *ar,
                           int64_t since_ms);

/* Remember that fin approved ar's client for ar's scopes and the client's
 * release fields (now).  0 or the store's error. */
int dz_oidc_consent_remember(struct dz_store *st, const char *fin,
                             const struct dz_oidc_authreq *ar);

/* fin's decisions as [{"client","name","fields":[...],"at"}] for the clients
 * ps registers (in its order; names from their oidc: blocks), *out a new
 * reference.  0, DZ_ERR_NOMEM, or the store's failure (never a partial
 * list). */
int dz_oidc_consents_list(struct dz_store *st, const struct dz_policy_set *ps, const char *fin,
                          json_t **out);

/* Forget fin's consent for client (the next sign-in there asks again).
 * 0, DZ_ERR_NOTFOUND (none), or a store error. */
int dz_oidc_consent_withdraw(struct dz_store *st, const char *fin, const char *client);

#endif
