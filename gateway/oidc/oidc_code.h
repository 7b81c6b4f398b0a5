/*
 * oidc_code.h - the single use of an authorization code, cluster-wide
 * (RFC 6749 4.1.2: a code used twice is refused, and the tokens its first
 * use issued SHOULD be revoked), through the code's "used" mark in the
 * store (DZ_OIDC_NS_USED, under SHA-256 of the code).
 *
 * The mark is claimed (put if absent) before the code is taken, naming the
 * store key of the access token the exchange will issue, and looked at
 * again once that token is stored.  A second use finds the mark, flags it
 * and deletes the token it names (both waited for on the replicas).  So
 * two uses at once, on two instances, cannot both miss each other: either
 * the first looks again after the flag (and issues nothing), or the second
 * flags after the first's token is stored (and deletes it).  Before, the
 * mark was written after the take, and a second use between the two read
 * as an unknown code, leaving the first's tokens alive.
 *
 * Synchronous store calls: any thread, off the loop (oidc_offloop.h).
 */
#ifndef DZ_OIDC_CODE_H
#define DZ_OIDC_CODE_H

#include "oidc/oidc_state.h"

struct dz_store;

/*
 * Claim the code for an exchange that will issue the access token whose
 * store key (base64url SHA-256 of its text) is at_key, for client.
 * Returns 0 (claimed: take the code next); DZ_ERR_EXISTS when the code was
 * claimed before (a replay: call dz_oidc_code_replayed next, before any
 * answer); or the store's failure (nothing claimed).
 */
int dz_oidc_code_claim(struct dz_store *st, const char *code, const char *at_key,
                       const char *client);

/*
 * The code's claim found it claimed before: flag the mark and revoke the
 * access token it names, both so that a failover cannot undo them (the
 * flag is a single-use mark, the revocation dz_store_del_durable: a token
 * revoked on the master and alive on the promoted replica would be worse
 * than useless, for the refusal says it is revoked).  *first_client, when
 * not NULL, gets a malloc'd copy of the client the code went to (or NULL).
 * 0 (revoked, or nothing left to revoke), or the store's failure: not
 * known to be revoked, so the caller refuses as the store being
 * unavailable (a retry of the replay revokes again).
 */
int dz_oidc_code_replayed(struct dz_store *st, const char *code, char **first_client);

/* The code was not there to take (never issued, or expired): drop the
 * claim, so it reads as unknown, not used.  Best effort. */
void dz_oidc_code_unclaim(struct dz_store *st, const char *code);

/*
 * The exchange has stored its access token: 0 when no second use came
 * since the claim; DZ_ERR_EXISTS when one did (the caller deletes its token
 * and issues nothing); DZ_ERR_STATE when the mark is gone, or the store's
 * failure (likewise: fail closed).
 */
int dz_oidc_code_confirm(struct dz_store *st, const char *code);

/* The mark of a used code lives this long: a replay is recognised within. */
#define DZ_OIDC_CODE_USED_TTL_MS (10 * 60 * 1000)

#endif
