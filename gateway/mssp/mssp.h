/*
 * mssp.h - darvaza as a relying party of the MSSP (mobile signature service
 * provider), shared by mobile login, mobile document signing and QR login:
 * whether it is configured, phone number syntax, the request skeleton
 * (mssp_rp.c), the per-phone limits (mssp_phone.c) and one call's lifecycle
 * (mssp_call.c).
 * Uses only the core; none of the flows that use it.  Loop thread only.
 */
#ifndef DZ_MSSP_H
#define DZ_MSSP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/rctx.h"
#include "http/httpc.h"

/* True when mobile login is configured; otherwise answers 404 itself. */
bool dz_mssp_enabled(struct dz_rctx *c);

/* "+994" and nine digits. */
bool dz_mssp_az_phone_valid(const char *phone);

/* The session id in the MSSP's answer j to a start (json "session_id"),
 * or NULL when it has none, or one over max bytes or with anything but
 * letters, digits, '-' and '_' (a UUID, base64url).  The id goes into the
 * path of our later calls to the MSSP (status, poll), authenticated with
 * our secret: a '/', '?', '#', '%', '.' or a space in it would send them
 * to another of the MSSP's paths, so a start answered so has failed. */
const char *dz_mssp_session_id(const json_t *j, size_t max);

/* Fill r with what every MSSP call carries (bearer secret of the relying
 * party, TLS towards the MSSP, bounds); h needs 3 slots, auth 300 bytes,
 * and all of them must live until the call returns. */
void dz_mssp_request_init(struct dz_rctx *c, struct dz_httpc_request *r, struct dz_hdr *h,
                          char *auth, size_t auth_len, struct dz_httpc_tls *tls);

/* The value of a phone's one-at-a-time lock: random, one per claim, so a
 * release (dz_mssp_phone_release_in) and a start that frees an ended
 * request's lock compare-and-delete exactly the lock they mean. */
#define DZ_MSSP_LOCK_LEN 22 /* base64url of 16 random bytes */

/* Before a request to a phone (login or signing): at most
 * mobile.phone_rate a minute, and one waiting at a time (the lock lives
 * mobile.request_ttl_ms).  A lock found taken whose request the MSSP says
 * has ended (refused, cancelled, timed out, failed, or approved and not
 * yet collected: nobody polled it since), or no longer has (404), is
 * freed and taken; one whose state is unknown (its start still on the
 * way, the MSSP not answering or answering badly) stays.  Counted and
 * locked without waiting on the loop; then(c, ok, arg) once, possibly
 * before returning.  ok true: lock (DZ_MSSP_LOCK_LEN + 1 bytes, living
 * until then runs) holds the lock's value.  ok false: c has been answered
 * (429 rate_limited or request_pending, 503 state_unavailable when the
 * store cannot answer), or the client went away (c->closed; a lock taken
 * meanwhile is released): only free what arg owns. */
void dz_mssp_phone_claim(struct dz_rctx *c, const char *phone, char *lock,
                         void (*then)(struct dz_rctx *c, bool ok, void *arg), void *arg);

/* Off the loop, once the MSSP has taken the request that holds phone's
 * lock (value lock): which MSSP session that is, for a later start to ask
 * about (dz_mssp_phone_claim).  Kept ttl_ms; 0 or the store's error (the
 * lock then simply lasts its time). */
struct dz_store;
int dz_mssp_phone_started_in(struct dz_store *s, const char *phone, const char *lock,
                             const char *mssp_id, uint64_t ttl_ms);

/* Drop phone's lock on a failed start (before or after the MSSP took the
 * request), without waiting on the loop (core/gwasync.h dz_gw_state_try):
 * only if it still holds lock, this start's value (a compare-and-delete,
 * as dz_mssp_phone_release_in): a lock that expired during the start and
 * was taken by another request stays that request's.  A full pool or no
 * memory leaves the lock to its TTL.  c is not answered. */
void dz_mssp_phone_release(struct dz_rctx *c, const char *phone, const char *lock);

/* The request holding lock on phone ended: drop the lock if it is still
 * that value (a newer request's lock stays), waiting for the store: for
 * work already off the loop (core/gwasync.h dz_gw_state). */
void dz_mssp_phone_release_in(struct dz_store *s, const char *phone, const char *lock);

/* "wait" from c's query string, in seconds, as milliseconds bounded by
 * mobile.poll_max_ms; 0 when absent. */
uint32_t dz_mssp_wait_ms(struct dz_rctx *c);

/* An MSSP end result other than OK as the API's failed result
 * (user_cancelled, timeout, not_mobile_client, phone_absent); static. */
const char *dz_mssp_result_code(const char *mssp_result);

/* One call to the MSSP on behalf of request c (mssp_call.c).  While it
 * runs, c->op is the call and a client that goes away cancels it: drop(c,
 * owner) then frees the flow's state as failed. */
struct dz_mssp_call {
    char auth[300]; /* "Bearer <relying-party secret>", wiped when done */
    struct dz_httpc_xfer *xfer;
    void *owner;
    void (*drop)(struct dz_rctx *c, void *owner);
};

/* Start method url with body (NULL: none); timeout_ms 0 keeps the default.
 * cb gets c as its argument and must call dz_mssp_call_done first.  0, or
 * DZ_ERR_UNAVAILABLE when nothing could be started (c not answered). */
int dz_mssp_call_start(struct dz_rctx *c, struct dz_mssp_call *call, void *owner,
                       void (*drop)(struct dz_rctx *c, void *owner), const char *method,
                       const char *url, const char *body, uint32_t timeout_ms,
                       dz_httpc_fetch_cb cb);

/* Long-poll the MSSP session mssp_id (GET /mid/session/ID?timeoutMs= the
 * client's ?wait=, bounded), as dz_mssp_call_start does. */
int dz_mssp_call_poll(struct dz_rctx *c, struct dz_mssp_call *call, void *owner,
                      void (*drop)(struct dz_rctx *c, void *owner), const char *mssp_id,
                      dz_httpc_fetch_cb cb);

/* In cb: the call is over (the hold it took is still the caller's to
 * release at the end of cb).  True when the MSSP answered 200; otherwise
 * counts and logs it, answers c 502/504 unless the client went, and returns
 * false. */
bool dz_mssp_call_done(struct dz_rctx *c, struct dz_mssp_call *call, int result, int status);

/* The same, answering nothing: the caller picks the answer. */
bool dz_mssp_call_end(struct dz_rctx *c, struct dz_mssp_call *call, int result, int status);

/* In cb, for an answer other than 200 that the caller reads as an answer,
 * not a failure (a 404 for a session the MSSP no longer has): the call is
 * over, nothing is counted or logged. */
void dz_mssp_call_over(struct dz_rctx *c, struct dz_mssp_call *call);

/* The owner of the call in flight for c (inside cb, before _done). */
void *dz_mssp_call_owner(const struct dz_rctx *c);

#endif
