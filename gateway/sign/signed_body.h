/*
 * signed_body.h - signed documents in the gateway (DESIGN §4.7): the
 * verification options every document check uses, and the
 * require_signed_body step of the forwarder.
 *
 * The envelope of a require_signed_body request (and of what is forwarded):
 *   {"document": base64 of the exact document bytes,
 *    "signature": base64 of a detached CAdES signature (CMS DER) over them,
 *    "party": FIN (optional: the person the document concerns)}
 * The gateway verifies the signature (certificate chain to the card or
 * mobile-signature CA, nonRepudiation, revocation), requires the signer's
 * FIN to be the session's FIN (and, on a route with a role, the signing
 * certificate to carry that role), raises the signature to level T at the
 * TSA, and forwards the same envelope with the level-T signature.  When "party"
 * is given, the request carries a Darvaza-Purpose and the signer would be
 * allowed GET /api/registry/persons/{party} by the registry's policy, the
 * back end also gets Darvaza-Onward-Assertion: an assertion signed by the
 * gateway for the registry service (aud "registry", sub the signer, tgt the
 * party, pur the purpose, htm GET, htu /api/registry/persons/{party}), so
 * the back end can fetch the party's contact data from the registry, which
 * still trusts only the gateway's signature.
 *
 * Loop thread only; the blocking parts run on the pool.
 */
#ifndef DZ_SIGNED_BODY_H
#define DZ_SIGNED_BODY_H

#include <stddef.h>

#include "core/rctx.h"
#include "pki/cades.h"
#include "policy/policy.h"

#define DZ_DOCUMENTS_ONWARD_SERVICE "registry"
#define DZ_DOCUMENTS_ONWARD_HEADER "darvaza-onward-assertion"

/* Options for dz_cades_verify from c's generation: the card trust (card
 * policy) and the mobile trust (mobile policy), revocation as their
 * sections say, the TSA trust.  Fills *o. */
void dz_documents_opts(struct dz_rctx *c, struct dz_cades_verify_opts *o);

/* What the forwarder sends on after the signed-body step (all owned). */
struct dz_signed_body {
    unsigned char *body; /* the envelope with the level-T signature */
    size_t body_len;
    char *onward; /* Darvaza-Onward-Assertion value, or NULL */
    char fin[8];  /* the signer (= the session's FIN) */
};

void dz_signed_body_free(struct dz_signed_body *sb);

/* Called once on c's loop: sb (the callee owns it) on success; NULL when
 * the client has been answered already (400/403/503) or went away. */
typedef void (*dz_signed_body_cb)(struct dz_rctx *c, struct dz_signed_body *sb, void *arg);

/* Start the step for a request on route r (which has require_signed_body)
 * with body; purpose is the valid Darvaza-Purpose or NULL.  The caller
 * keeps body alive until cb runs (it is the request's).  cb always runs. */
void dz_signed_body_start(struct dz_rctx *c, const struct dz_policy_route *r, const char *purpose,
                          const unsigned char *body, size_t len, dz_signed_body_cb cb, void *arg);

#endif
