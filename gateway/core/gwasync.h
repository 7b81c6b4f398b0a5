/*
 * gwasync.h - the asynchronous steps every endpoint shares: run blocking
 * work on the pool, append an audit line and wait until it is durable, sign
 * an assertion (on the pool when the key is on a token).  Each step holds a
 * reference on the request and calls back on its worker loop; if the client
 * went away meanwhile, the callback still runs (to free what it owns) with
 * dz_req_is_closed(c->req) true and must not answer.
 */
#ifndef DZ_GWASYNC_H
#define DZ_GWASYNC_H

#include <jansson.h>

#include "core/rctx.h"
#include "keys/assertion.h"

/* Run work(arg) on the blocking pool, then done(c, arg) on c's loop.  When
 * the pool is full, answers 503 service_unavailable and returns
 * DZ_ERR_UNAVAILABLE without calling anything (the caller frees arg). */
int dz_gw_blocking(struct dz_rctx *c, void (*work)(void *arg),
                   void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Run done(c, arg) on c's loop soon, after the caller's own callback has
 * returned (a post to the loop c runs on): for a step that knew its answer
 * at once but whose callers were promised an answer later, never from
 * inside the call that started it.  c is held until done has run.
 * Returns 0, or DZ_ERR_UNAVAILABLE (cannot post: out of memory, or the
 * worker has stopped) without calling anything and without answering the
 * client: the caller still owns arg and can take the slow way. */
int dz_gw_later(struct dz_rctx *c, void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Run work(arg), which makes synchronous store calls (state/store.h) and
 * possibly account calls, without waiting on c's loop: on the blocking pool
 * when the store may wait on I/O (Redis), inline otherwise (the in-process
 * store answers at once; a thread hop would only cost).  Then done(c, arg)
 * on c's loop — possibly before dz_gw_state returns.  A full pool: as
 * dz_gw_blocking (503 answered, DZ_ERR_UNAVAILABLE, nothing called).  If
 * the client went away meanwhile, done still runs with c->closed true. */
int dz_gw_state(struct dz_rctx *c, void (*work)(void *arg),
                void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* The same, but a full pool answers nothing: DZ_ERR_UNAVAILABLE, nothing
 * called, the caller still owns arg and picks the answer its protocol has
 * for "busy" (an OAuth temporarily_unavailable), or goes on without one (a
 * background step such as a logout hook). */
int dz_gw_state_try(struct dz_rctx *c, void (*work)(void *arg),
                    void (*done)(struct dz_rctx *c, void *arg), void *arg);

/* Append record (consumed; the request id is added here) to the audit log,
 * then then(c, rc, arg) once the line is durable (rc 0) or failed. */
void dz_gw_audit(struct dz_rctx *c, json_t *record,
                 void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg);

/* The same for a record built without jansson (audit/auditrec.h), for the
 * lines written for every request; a record that met an error is refused
 * with it (then() gets it). */
struct dz_audit_rec;
void dz_gw_audit_rec(struct dz_rctx *c, struct dz_audit_rec *record,
                     void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg);

/*
 * An audit line reserved before its action (audit/audit.h dz_audit_slot):
 * the record, its queue entry and this hand-off's state are allocated by
 * dz_gw_audit_slot_new, so dz_gw_audit_slot_append allocates nothing and
 * is not refused for back-pressure.  For a line that follows an action no
 * one can refuse any more (a forwarded request's outcome: the request has
 * left).  If the line is lost all the same (the log failed or is closing,
 * or the record was bad), that is logged as an error "audit_lost" naming
 * the kind, the record's type and the request id, and counted in
 * darvaza_audit_lost_total{kind}; then() gets the error and has nothing
 * to refuse.
 *   dz_gw_audit_slot_new:    type: the record's "type"; lost_kind: a static
 *                            string, the metric's kind ("outcome");
 *                            members_max, values_max: as dz_audit_slot_new's
 *                            (the request id is added to them).  NULL
 *                            when out of memory.
 *   dz_gw_audit_slot_rec:    the record to fill (auditrec.h setters).
 *   dz_gw_audit_slot_free:   an unused slot; NULL: no-op.
 *   dz_gw_audit_slot_append: consumes gs (NULL is told as a lost line of
 *                            kind "other"); adds the request id; then(c,
 *                            rc, arg) as dz_gw_audit_rec's.
 * c's loop thread.
 */
struct dz_gw_audit_slot;
struct dz_gw_audit_slot *dz_gw_audit_slot_new(const char *type, const char *lost_kind,
                                              size_t members_max, size_t values_max);
struct dz_audit_rec *dz_gw_audit_slot_rec(struct dz_gw_audit_slot *gs);
void dz_gw_audit_slot_free(struct dz_gw_audit_slot *gs);
void dz_gw_audit_slot_append(struct dz_rctx *c, struct dz_gw_audit_slot *gs,
                             void (*then)(struct dz_rctx *c, int rc, void *arg), void *arg);

/* Sign an assertion with the generation's active key; then(c, rc, token,
 * arg) receives a malloc'd token (the callee frees it).  The pointers in in
 * must stay valid until then runs (they normally point into c). */
void dz_gw_sign(struct dz_rctx *c, const struct dz_assertion_in *in,
                void (*then)(struct dz_rctx *c, int rc, char *token, void *arg), void *arg);

struct dz_httpc_xfer;

/* The cancel hook of an endpoint waiting on one outgoing HTTP transfer
 * (c->op is its op, *xfer the transfer, which holds a reference on the
 * request): unhooks the op, and if the transfer is still running cancels
 * it, frees the op with free_op and drops the transfer's reference.  Once
 * the transfer has finished its callback owns the op: nothing is freed. */
void dz_gw_cancel_transfer(struct dz_rctx *c, struct dz_httpc_xfer **xfer,
                           void (*free_op)(void *op));

#endif
