/*
 * backchannel_case.h - what the unit tests of session ends that OpenID
 * Connect clients must hear of (test_oidc_logout.c here,
 * auth/test_api_account_partial_end.c) share: a client with a back-channel
 * URI on the harness's fake back end, a session signed in to it, and
 * whether it is still owed that session's end.  Static: each test is one
 * translation unit.
 */
#ifndef DZ_TEST_BACKCHANNEL_CASE_H
#define DZ_TEST_BACKCHANNEL_CASE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/b64.h"
#include "base/secret.h"
#include "harness/fake_gw.h"
#include "oidc/oidc_state.h"
#include "state/session.h"
#include "state/store.h"

/* A client with a back-channel URI on the fake back end (plain http to a
 * loopback host is allowed there). */
static const char policy[] = "service: rp\n"
                             "registered_as: \"DIS-7100\"\n"
                             "oidc:\n"
                             "  client_id: rp\n"
                             "  token_endpoint_auth_method: private_key_jwt\n"
                             "  jwks: '{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"1\","
                             "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
                             "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\"}]}'\n"
                             "  redirect_uris: [https://rp.test/cb]\n"
                             "  backchannel_logout_uri: @UPSTREAM@/bc\n"
                             "  scopes: [openid]\n"
                             "  release: [fin]\n"
                             "  acr_default: low\n"
                             "  consent: pre-approved\n";

static void sid_of(const char *token, char sid[DZ_SESSION_TOKEN_LEN + 1])
{
    unsigned char h[32];

    dz_sha256(token, strlen(token), h);
    dz_b64_encode_to(h, sizeof(h), true, sid);
}

/* The session of token signed in to the client (as a code exchange
 * records it), so that its end is owed to the client. */
static void signed_in_to_rp(struct fake_gw *g, const char *token)
{
    char sid[DZ_SESSION_TOKEN_LEN + 1];

    sid_of(token, sid);
    assert_int_equal(dz_oidc_sid_add(g->gw.store, sid, "rp", 3600 * 1000), 0);
}

/* Whether the client is still owed the end of that session (its entry not
 * taken, so no logout token was signed for it). */
static bool rp_still_owed(struct fake_gw *g, const char *token)
{
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    char key[DZ_SESSION_TOKEN_LEN + 8];
    unsigned char h[32];
    uint64_t left = 0;

    sid_of(token, sid);
    snprintf(key, sizeof(key), "%s rp", sid);
    dz_sha256(key, strlen(key), h);
    return dz_store_ttl(g->gw.store, DZ_OIDC_NS_SID, h, sizeof(h), &left) == 0;
}

#endif
