/*
 * forward.h - the forwarder (DESIGN §4.8): every path the policies route.
 * Runs on the worker loop thread; holds the request while the assertion,
 * the audit line and the upstream transfer are in flight.
 */
#ifndef DZ_FORWARD_H
#define DZ_FORWARD_H

#include "core/rctx.h"

void dz_forward(struct dz_rctx *c);

/* True while c's forward owns its outcome line (from signing to the end of
 * the transfer): a stream closed then is recorded by the forwarder itself
 * ("forward_result" with result drain_cut or client_gone).  Loop thread. */
bool dz_forward_in_flight(const struct dz_rctx *c);

#endif
