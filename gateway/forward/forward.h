/*
 * forward.h - the forwarder (DESIGN §4.8): every path the policies route.
 * Runs on the worker loop thread; holds the request while the assertion,
 * the audit line and the upstream transfer are in flight.
 */
#ifndef DZ_FORWARD_H
#define DZ_FORWARD_H

#include "audit/auditrec.h"
#include "core/rctx.h"
#include "keys/assertion.h"
#include "policy/policy.h"

void dz_forward(struct dz_rctx *c);

/* True while c's forward owns its outcome line (from signing to the end of
 * the transfer): a stream closed then is recorded by the forwarder itself
 * ("forward_result" with result drain_cut or client_gone).  Loop thread. */
bool dz_forward_in_flight(const struct dz_rctx *c);

/* What the members of a "forward_result" line the forwarder sets take at
 * most (audit_outcome: type, service, result, status, bytes, sent, jti),
 * the room its reservation holds (dz_gw_audit_slot_new adds the request
 * id's and the audit chain's): a line that cannot be lost for memory once
 * the request is out must not need more.  The longest result is
 * "upstream_timeout". */
#define DZ_FORWARD_OUTCOME_MEMBERS 7
#define DZ_FORWARD_OUTCOME_RESULT_MAX (sizeof("upstream_timeout") - 1)
#define DZ_FORWARD_OUTCOME_VALUES_MAX                                                              \
    (DZ_AUDITREC_PLAIN_STR_MAX(sizeof("forward_result") - 1) +                                     \
     DZ_AUDITREC_PLAIN_STR_MAX(DZ_POLICY_SERVICE_NAME_MAX) +                                       \
     DZ_AUDITREC_PLAIN_STR_MAX(DZ_FORWARD_OUTCOME_RESULT_MAX) + 2 * DZ_AUDITREC_INT_MAX +          \
     DZ_AUDITREC_BOOL_MAX + DZ_AUDITREC_PLAIN_STR_MAX(DZ_ASSERTION_JTI_LEN))

#endif
