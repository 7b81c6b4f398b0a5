/*
 * peer_auth.h - how a peer (a back end behind the gateway) checks the
 * Darvaza-Assertion of a request: the gateway's key set fetched from its
 * JWKS URL, the assertion verified against the request actually received
 * (lib/keys/assertion.h: issuer, audience, method, path, body digest, lifetime),
 * and the jti remembered so a token is accepted once.
 *
 * Keys: fetched lazily at the first request that needs them, and again when
 * a token names a kid the set does not have (key rotation), at most once per
 * DZ_PEER_AUTH_REFETCH_S.  The fetch blocks, so it runs on the pool and the
 * waiting requests are parked; the loop never waits.  The fetch has a short
 * timeout: the gateway that serves the JWKS may itself be waiting for us.
 *
 * Threading: everything here runs on the peer's single worker loop (see
 * peer.h) except the fetch, which runs on the pool and only hands its result
 * back.  Never logs a token.
 */
#ifndef DZ_PEER_AUTH_H
#define DZ_PEER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct dz_pool;
struct dz_req;
struct dz_peer_auth;

#define DZ_PEER_AUTH_REFETCH_S 5 /* at most one JWKS fetch per this */
#define DZ_PEER_AUTH_FETCH_TIMEOUT_MS 3000
#define DZ_PEER_AUTH_REPLAY_S 120     /* how long a jti is remembered */
#define DZ_PEER_AUTH_REPLAY_MAX 65536 /* jti entries; beyond, tokens are refused */
#define DZ_PEER_AUTH_LEEWAY_S 30      /* clock skew allowed */
#define DZ_PEER_AUTH_HEADER "darvaza-assertion"

struct dz_peer_auth_conf {
    const char *jwks_url; /* https://localhost:8443/.well-known/jwks.json */
    const char *cacert;   /* trust anchor for the JWKS fetch (PEM), or NULL */
    const char *iss;      /* expected issuer */
    const char *aud;      /* this service's name */
};

/* The options of a peer that checks assertions, for its getopt_long table:
 * --jwks-url URL, --cacert F, --iss ISS, --aud AUD (codes 'j', 'a', 'i',
 * 'u'). */
#define DZ_PEER_AUTH_OPTIONS                                                                       \
    {"jwks-url", required_argument, NULL, 'j'}, {"cacert", required_argument, NULL, 'a'},          \
        {"iss", required_argument, NULL, 'i'},                                                     \
    {                                                                                              \
        "aud", required_argument, NULL, 'u'                                                        \
    }

/* Take getopt code c with arg into conf; false when c is not one of them. */
bool dz_peer_auth_option(struct dz_peer_auth_conf *conf, int c, const char *arg);

/* Strings are copied.  pool runs the fetch (borrowed; must outlive a).
 * 0, DZ_ERR_INVAL (missing url/iss/aud), DZ_ERR_NOMEM.  Main thread. */
int dz_peer_auth_new(const struct dz_peer_auth_conf *conf, struct dz_pool *pool,
                     struct dz_peer_auth **out);

/* After the server stopped (no request, no fetch pending). NULL no-op. */
void dz_peer_auth_free(struct dz_peer_auth *a);

/* The verdict on one request: claims (borrowed, valid during the call) when
 * the assertion is valid and new, else NULL and reason says why ("missing",
 * "replayed", "jwks_unavailable", "replay_cache_full", or a reason of
 * dz_assertion_verify). */
typedef void (*dz_peer_auth_cb)(struct dz_req *r, void *arg, const json_t *claims,
                                const char *reason);

/* Check r's Darvaza-Assertion against r's method, path and body.  cb runs
 * exactly once on r's loop: before this returns, or later after a key
 * fetch (a reference on r is held meanwhile; r may have been closed by the
 * peer by then - check dz_req_is_closed before answering).  Loop thread. */
void dz_peer_auth_check(struct dz_peer_auth *a, struct dz_req *r, dz_peer_auth_cb cb, void *arg);

#endif
