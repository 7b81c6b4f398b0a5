/*
 * session.h - login sessions (DESIGN §4.2): opaque bearer tokens that map,
 * server side, to who logged in, how, and until when.
 *
 * A token is 32 bytes from the CSPRNG written as 43 base64url characters.
 * Only SHA-256 of the token text is kept: it is the store key (namespace
 * "sess") and the session id (sid) that assertions carry, so a dump of the
 * store or a back end's log yields nothing that can be presented as a token.
 * A session ends at the earlier of its idle expiry (sliding: every lookup
 * moves it, 15 min for acr "high", 30 min otherwise by default) and its
 * absolute expiry (12 h after login, never moved).  Every login creates a
 * new token; logout deletes the record everywhere the store reaches.
 *
 * The caller owns the token text and must wipe it (dz_secret_wipe) when done;
 * nothing here copies, stores or logs it.  All functions are thread-safe
 * (the store is) and never block, so they may run on a loop thread.
 */
#ifndef DZ_SESSION_H
#define DZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct dz_store;

#include "keys/assertion.h" /* enum dz_amr */

#define DZ_SESSION_TOKEN_LEN 43 /* base64url characters of a token */
#define DZ_SESSION_NS "sess"    /* store namespace */

/* Room for a name, with its NUL (a longer one is cut at a character). */
#define DZ_SESSION_NAME_MAX 96

struct dz_session {
    char fin[8];                    /* normalised FIN (7 of [0-9A-Z]) + NUL */
    char method[16];                /* "password", "card", "mobile" or "qr" */
    unsigned amr;                   /* enum dz_amr bits, at least one */
    char acr[16];                   /* "low", "substantial" or "high" */
    char role[16];                  /* e.g. "judge"; "" for none; printable ASCII */
    char name[DZ_SESSION_NAME_MAX]; /* the person's name as the login means gave it
                                     * (a certificate's CN), UTF-8; "" when unknown */
    int64_t auth_time;              /* unix seconds of the login (> 0) */
    int64_t created_ms;             /* unix ms; set by dz_session_create */
    int64_t expires_abs_ms;         /* unix ms, absolute end; set by create */
    int64_t expires_idle_ms;        /* unix ms the session idles out unless used;
                                     * set by create and by every lookup */
    unsigned char prf[32];          /* SHA-256 of the login evidence */
    bool has_prf;
    unsigned char sid[32]; /* SHA-256 of the token text; set by create/lookup */
};

struct dz_session_limits {
    uint64_t idle_ms;      /* acr low/substantial, e.g. 30 min */
    uint64_t idle_high_ms; /* acr high, e.g. 15 min */
    uint64_t absolute_ms;  /* from login, e.g. 12 h */
};

/* Fill l with the DESIGN §4.2 values: 30 min, 15 min, 12 h. */
void dz_session_limits_default(struct dz_session_limits *l);

/*
 * Open a session.  In: s->fin, method, amr, acr, role, auth_time, prf,
 * has_prf (validated: bad values are DZ_ERR_INVAL and nothing is stored).
 * Out on success: s->sid, created_ms, expires_abs_ms, expires_idle_ms, and
 * token_out holding the 43-character token + NUL, which the caller hands to
 * the client and then wipes.  On any error token_out is wiped to "".
 * Returns 0, DZ_ERR_INVAL, DZ_ERR_CRYPTO (no randomness), or the store's
 * DZ_ERR_NOMEM / DZ_ERR_FULL (the sessions budget is used up).
 */
int dz_session_create(struct dz_store *st, const struct dz_session_limits *l, struct dz_session *s,
                      char token_out[DZ_SESSION_TOKEN_LEN + 1]);

/*
 * Find the session for a token and slide its idle expiry (never past the
 * absolute one).  *out is zeroed on entry and filled only on success.
 * A token that is not exactly 43 canonical base64url characters is
 * DZ_ERR_NOTFOUND without touching the store.  Returns 0, DZ_ERR_NOTFOUND
 * (absent, expired, logged out, malformed token), DZ_ERR_PARSE (a stored
 * record that does not decode: handle as unauthenticated), DZ_ERR_INVAL (bad
 * limits), DZ_ERR_NOMEM.
 */
int dz_session_lookup(struct dz_store *st, const struct dz_session_limits *l, const char *token,
                      size_t token_len, struct dz_session *out);

struct ev_loop;
typedef void (*dz_session_cb)(void *arg, int rc, const struct dz_session *s);

/* The same on a worker loop without waiting for a shared store
 * (store.h dz_store_get_async, dz_store_touch_async): cb(arg, rc, s) once,
 * on loop's thread, possibly before returning; s (valid during the call
 * only) on rc 0, NULL otherwise.  rc as above, or DZ_ERR_UNAVAILABLE. */
void dz_session_lookup_async(struct dz_store *st, struct ev_loop *loop,
                             const struct dz_session_limits *l, const char *token, size_t token_len,
                             dz_session_cb cb, void *arg);

/* Log out: delete the session of a token.  0, or DZ_ERR_NOTFOUND (absent,
 * already gone, malformed token). */
int dz_session_delete(struct dz_store *st, const char *token, size_t token_len);

/*
 * The public view of a session, for GET /auth/session and the login answer:
 * {"fin","amr":[...],"acr","method","expires_at","auth_time"} (and "name"
 * when the login means gave one) where
 * expires_at is RFC 3339 UTC ("2026-11-22T10:00:00Z") of the earlier of the
 * idle and absolute expiry, and amr is written by dz_amr_to_json (one order
 * for every amr array the gateway writes).  Never contains the token.
 * *out is a new reference (caller json_decref's) or NULL on error.
 * Returns 0, DZ_ERR_INVAL (amr or times out of range), DZ_ERR_NOMEM.
 */
int dz_session_to_json(const struct dz_session *s, json_t **out);

/* The sid as unpadded base64url (43 characters + NUL), as assertions carry
 * it in "sid". */
void dz_session_sid_b64(const struct dz_session *s, char out[DZ_SESSION_TOKEN_LEN + 1]);

/*
 * Set s->name from a login means' name (a certificate's CN): UTF-8 without
 * control characters, cut at a character boundary to fit.  Anything else
 * (NULL, invalid UTF-8, a control character) leaves the name "" (unknown):
 * a name is shown to people and written to the audit log, never guessed.
 */
void dz_session_set_name(struct dz_session *s, const char *name);

#endif
