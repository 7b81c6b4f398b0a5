/*
 * card_case.h - what the card login's unit tests (test_auth_card.c,
 * test_auth_webeid.c in this folder) share: the challenge and the POST
 * /auth/card, through the router on the request-layer harness.  Static
 * inline: each test is one translation unit.
 */
#ifndef DZ_TEST_CARD_CASE_H
#define DZ_TEST_CARD_CASE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness/fake_gw.h"

/* POST /auth/card/challenge: 200, the nonce (copied into nonce), valid for
 * 300 s.  Web eID refuses nonces under 44 characters (256 bits, base64). */
static inline void card_challenge(struct fake_gw *g, char nonce[128])
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/card/challenge");
    json_t *j;
    const char *n;

    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    n = json_string_value(json_object_get(j, "nonce"));
    assert_non_null(n);
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 300);
    snprintf(nonce, 128, "%s", n);
    assert_true(strlen(nonce) >= 44);
    json_decref(j);
    fake_req_free(r);
}

/* POST /auth/card with body (consumed), answered; the caller frees it. */
static inline struct dz_req *card_post(struct fake_gw *g, json_t *body)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/card");
    char *text = json_dumps(body, JSON_COMPACT);

    fake_req_set_json(r, text);
    free(text);
    json_decref(body);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

#endif
