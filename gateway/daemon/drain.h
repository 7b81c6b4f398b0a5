/*
 * drain.h - how darvazad stops on SIGTERM/SIGINT (config `drain:`):
 *
 *   t = 0       /readyz answers 503 `draining`; the listeners keep accepting
 *               and serving, so a load balancer that polls /readyz sees the
 *               stop and moves traffic while nothing is refused yet;
 *   t = grace   the listeners close, every connection gets GOAWAY, open
 *               requests go on;
 *   t = deadline  what is still open is cut; each cut request gets an audit
 *               line (forwards: "forward_result" with result "drain_cut";
 *               anything else: a "drain_cut" line), then the process exits.
 *
 * A second SIGTERM or SIGINT during the grace ends the grace at once (the
 * listeners close, the deadline still counts from the first signal); during
 * the deadline phase signals are ignored: the deadline is the bound, SIGKILL
 * the way to stop sooner.  SIGHUP during a drain is logged and ignored;
 * SIGUSR1 during the grace still rotates and reopens the logs.
 * See docs/operations.md, "Stopping".
 */
#ifndef DZ_DRAIN_H
#define DZ_DRAIN_H

#include <signal.h>

#include "core/gen.h"
#include "core/rctx.h"

/* Run the whole stop sequence above with the drain settings of the
 * generation in force (gw->gen), waiting for further signals of sigs (the
 * set the main thread blocks and waits on) during the grace; a SIGUSR1
 * then calls on_usr1 (may be NULL: ignored), as the main loop would.
 * Returns once every worker has stopped.  Main thread only; blocks. */
void dz_drain_run(struct dz_gw *gw, const sigset_t *sigs, void (*on_usr1)(struct dz_gw *gw));

/* Write the audit line of a request the drain deadline cut that no other
 * part of the gateway records (the router calls it from on_close when
 * dz_req_is_drain_cut and no forward owns the outcome).  Never the path
 * (it may carry a FIN): the route name, the method, whether an answer had
 * begun, and who, when a session was known.  Loop thread of c. */
void dz_drain_audit_cut(struct dz_rctx *c);

#endif
