/*
 * oidc_authreq.h - an authorization request (OpenID Connect Core 3.1.2.1,
 * RFC 7636) checked against the client registry: pure, no I/O, any thread.
 *
 * The order of the checks is the security of /authorize: the client and
 * its redirect URI are established first, and until both are, an error is
 * shown to the person (a problem document), never sent to a URI the
 * request named (RFC 6749 4.1.2.1: no open redirect).  A state or nonce
 * longer than its bound is refused the same way, since echoing it would
 * make the gateway carry whatever the request put there.
 */
#ifndef DZ_OIDC_AUTHREQ_H
#define DZ_OIDC_AUTHREQ_H

#include <stdbool.h>
#include <stdint.h>

#include "oidc/oidc_params.h"
#include "policy/policy_oidc.h"

#define DZ_OIDC_STATE_MAX 512    /* bytes of state and of nonce */
#define DZ_OIDC_CHALLENGE_LEN 43 /* base64url SHA-256 */

struct dz_oidc_authreq {
    const struct dz_policy_service *svc;
    const struct dz_policy_oidc *client;
    const char *redirect_uri; /* the registered copy (owned by the policy set) */
    char state[DZ_OIDC_STATE_MAX + 1];
    bool has_state;
    char nonce[DZ_OIDC_STATE_MAX + 1];
    bool has_nonce;
    char challenge[DZ_OIDC_CHALLENGE_LEN + 1];
    unsigned scopes; /* DZ_OIDC_SCOPE_* */
    enum dz_acr acr; /* the level the session must have */
    bool prompt_none;
    bool prompt_login;
    bool prompt_consent;
    int64_t max_age;    /* seconds; -1 when not asked */
    char login_hint[8]; /* a normalised FIN, "" when none */
    char lang[3];       /* "az" or "en" (ui_locales), "" when none */
};

/* Where an error goes. */
enum dz_oidc_authreq_error {
    DZ_OIDC_AUTHREQ_OK = 0,
    DZ_OIDC_AUTHREQ_SHOW = 1,    /* *code is a problem code: answer it, never redirect */
    DZ_OIDC_AUTHREQ_REDIRECT = 2 /* *code is an OAuth error: redirect to out->redirect_uri */
};

/*
 * Check the parameters p of an authorization request against the clients
 * of set.  out is cleared on entry.  Returns DZ_OIDC_AUTHREQ_OK with out
 * filled, or one of the error kinds with *code (a static string) and
 * *detail (static, a sentence for the integrator) set; with
 * DZ_OIDC_AUTHREQ_REDIRECT, out->redirect_uri, state and has_state are set.
 * Problem codes: invalid_request, unknown_client, invalid_redirect_uri.
 * OAuth errors: invalid_request, unsupported_response_type, invalid_scope.
 */
enum dz_oidc_authreq_error dz_oidc_authreq_check(const struct dz_policy_set *set,
                                                 const struct dz_oidc_params *p,
                                                 struct dz_oidc_authreq *out, const char **code,
                                                 const char **detail);

/*
 * The request as a query again, holding only what the check above read,
 * as it read it (the client's registered redirect_uri, the scopes and
 * prompt as words, the level the check chose, the normalised FIN, the
 * language): checked again, it gives the same request.  This is what a
 * parked request keeps for its minutes in the store, never the client's own
 * query (up to DZ_OIDC_INPUT_MAX bytes of anything).  Its length is at most
 * DZ_OIDC_PARKED_QUERY_MAX: each value percent-encoded (at most 3 bytes a
 * byte), so 3 x (512 redirect_uri + 512 state + 512 nonce) plus about 500
 * for the names, client_id, code_challenge and the short words; a usual
 * request is about 0.3-0.5 KiB.  Returns the length written to out (cap
 * bytes, NUL-terminated), or 0 when it does not fit.
 */
#define DZ_OIDC_PARKED_QUERY_MAX (3 * (DZ_OIDC_URI_MAX + 2 * DZ_OIDC_STATE_MAX) + 512)

size_t dz_oidc_authreq_compact(const struct dz_oidc_authreq *ar, char *out, size_t cap);

#endif
