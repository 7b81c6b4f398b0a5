/*
 * fake_trust.h - a request-layer gateway (fake_gw.h) that trusts a test CA
 * (fake_pki.h): the card, Web eID, QR, mobile, certificate-check and
 * signed-document tests' set-up.  The CA is made first, its bundle (root
 * then issuing CA, as a "ca:" of the config wants it) written into the
 * gateway's directory before the generation loads, and both go away
 * together.  Fails the test (cmocka) when the gateway does not build.
 */
#ifndef DZ_TEST_FAKE_TRUST_H
#define DZ_TEST_FAKE_TRUST_H

#include <stdbool.h>

#include "fake_gw.h"
#include "fake_pki.h"

/* fake_pki_ca_init(ca, ca_name), then fake_gw_new(o) into *out, with the
 * CA's bundle written to <dir>/<bundle> before o->prepare runs (o's
 * config_extra names it "@DIR@/<bundle>").  o->prepare may be NULL. */
void fake_trust_new(struct fake_pki_ca *ca, const char *ca_name, const char *bundle,
                    const struct fake_gw_opts *o, struct fake_gw **out);
/* fake_gw_free(g), then fake_pki_ca_cleanup(ca).  False, as fake_gw_free:
 * work was still in flight (the caller asserts it after freeing its own). */
bool fake_trust_free(struct fake_gw *g, struct fake_pki_ca *ca);

#endif
