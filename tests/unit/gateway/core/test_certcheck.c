/*
 * test_certcheck.c - where a login certificate is checked
 * (gateway/core/certcheck.c): on the worker loop when everything the check
 * needs is cached, on the blocking pool otherwise, with the same answer
 * either way.  Through POST /auth/card on the request-layer harness, with
 * cards.revocation ocsp and the OCSP answers put in the gateway's cache
 * (the test cards carry no OCSP URL: an answer not cached cannot be
 * learned and the login fails closed, 503 revocation_unavailable).  The
 * loop's answer is posted, never given from inside the call that started
 * the check: it waits behind fake_worker_hold_posts like the pool's, and a
 * client gone meanwhile leaves nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "core/certcheck.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "pki/certid.h"
#include "pki/ocsp.h"

struct fx {
    struct fake_gw *g;
    struct fake_pki_ca cards;
    EVP_PKEY *card_key;
    X509 *good, *revoked, *unknown, *held;
};

static void cache_answer(struct fx *f, X509 *leaf, enum dz_ocsp_status status)
{
    struct dz_ocsp_answer a;
    unsigned char key[32];
    int64_t now = (int64_t)time(NULL);

    memset(&a, 0, sizeof(a));
    a.status = status;
    a.this_update = now - 60;
    a.next_update = now + 3600;
    a.revoked_at = status == DZ_OCSP_REVOKED ? now - 86400 : 0;
    a.revocation_reason = -1;
    assert_int_equal(dz_ocsp_key(leaf, f->cards.ca, key), 0);
    assert_int_equal(dz_ocsp_cache_put(f->g->gw.ocsp_cache, key, &a, now), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct fake_gw_opts o = {
        .config_extra = "cards:\n"
                        "  ca: @DIR@/esign-chain.pem\n"
                        "  revocation: ocsp\n",
    };

    assert_non_null(f);
    fake_trust_new(&f->cards, "Test E-Signature", "esign-chain.pem", &o, &f->g);
    f->card_key = fake_pki_key();
    f->good = fake_pki_person(&f->cards, f->card_key, "5ABC123", DZ_CERTID_POLICY_CARD, false, 200);
    f->revoked =
        fake_pki_person(&f->cards, f->card_key, "5ABC124", DZ_CERTID_POLICY_CARD, false, 201);
    f->unknown =
        fake_pki_person(&f->cards, f->card_key, "5ABC125", DZ_CERTID_POLICY_CARD, false, 202);
    f->held = fake_pki_person(&f->cards, f->card_key, "5ABC126", DZ_CERTID_POLICY_CARD, false, 203);
    cache_answer(f, f->good, DZ_OCSP_GOOD);
    cache_answer(f, f->revoked, DZ_OCSP_REVOKED);
    cache_answer(f, f->held, DZ_OCSP_GOOD);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool idle = fake_trust_free(f->g, &f->cards);

    EVP_PKEY_free(f->card_key);
    X509_free(f->good);
    X509_free(f->revoked);
    X509_free(f->unknown);
    X509_free(f->held);
    free(f);
    assert_true(idle);
    return 0;
}

/* A POST /auth/card for leaf, signed for a fresh challenge, not yet sent. */
static struct dz_req *card_req(struct fx *f, X509 *leaf)
{
    struct dz_req *r = fake_gw_req(f->g, "POST", "/auth/card/challenge");
    unsigned char msg[64];
    const char *nonce;
    char *cert, *sig, *text;
    json_t *j, *body;

    assert_true(fake_gw_roundtrip(f->g, r));
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    nonce = json_string_value(json_object_get(j, "nonce"));
    assert_non_null(nonce);
    SHA256((const unsigned char *)FAKE_GW_ORIGIN, strlen(FAKE_GW_ORIGIN), msg);
    SHA256((const unsigned char *)nonce, strlen(nonce), msg + 32);
    sig = fake_pki_sign_es256_b64(f->card_key, msg, sizeof(msg));
    cert = fake_pki_cert_b64(leaf);
    body = json_pack("{s:s, s:s, s:s, s:s}", "certificate", cert, "algorithm", "ES256", "nonce",
                     nonce, "signature", sig);
    text = json_dumps(body, JSON_COMPACT);
    fake_req_free(r);
    r = fake_gw_req(f->g, "POST", "/auth/card");
    fake_req_set_json(r, text);
    free(text);
    json_decref(body);
    json_decref(j);
    free(cert);
    free(sig);
    return r;
}

/* Log in with leaf; expect status and problem code (NULL: none), and the
 * check to have run on the loop (true) or the pool. */
static void login(struct fx *f, X509 *leaf, int status, const char *code, bool on_loop)
{
    uint64_t loop0, pool0, loop1, pool1;
    char buf[64];
    struct dz_req *r = card_req(f, leaf);

    dz_certcheck_counts(&loop0, &pool0);
    assert_true(fake_gw_roundtrip(f->g, r));
    dz_certcheck_counts(&loop1, &pool1);
    assert_int_equal(fake_req_invalid_answers(r), 0);
    assert_int_equal(fake_req_status(r), status);
    if (code)
        assert_string_equal(fake_req_problem_code(r, buf, sizeof(buf)), code);
    assert_int_equal(loop1 - loop0, on_loop ? 1 : 0);
    assert_int_equal(pool1 - pool0, on_loop ? 0 : 1);
    fake_req_free(r);
}

/* The first login of a card goes to the pool (its signature is new); the
 * second, with the OCSP answer cached, is decided on the loop. */
static void test_second_login_on_the_loop(void **state)
{
    struct fx *f = *state;

    login(f, f->good, 200, NULL, false);
    login(f, f->good, 200, NULL, true);
    login(f, f->good, 200, NULL, true);
}

/* A cached "revoked" is refused on the loop with the pool's code. */
static void test_revoked_refused_on_the_loop(void **state)
{
    struct fx *f = *state;

    login(f, f->revoked, 401, "certificate_revoked", false);
    login(f, f->revoked, 401, "certificate_revoked", true);
}

/* No answer cached: the pool every time, failing closed here. */
static void test_no_answer_always_the_pool(void **state)
{
    struct fx *f = *state;

    login(f, f->unknown, 503, "revocation_unavailable", false);
    login(f, f->unknown, 503, "revocation_unavailable", false);
}

/* The loop's answer is a post: nothing is answered from inside the
 * request's own handler, and a client that went away before the post ran
 * leaves no reference or hold behind. */
static void test_answer_posted(void **state)
{
    struct fx *f = *state;
    uint64_t loop0, pool0, loop1, pool1;
    struct dz_req *r;

    login(f, f->held, 200, NULL, false); /* the signature remembered */

    r = card_req(f, f->held);
    dz_certcheck_counts(&loop0, &pool0);
    fake_worker_hold_posts(f->g->w, true);
    fake_gw_send(f->g, r);
    dz_certcheck_counts(&loop1, &pool1);
    assert_int_equal(loop1 - loop0, 1); /* decided on the loop, in the handler */
    assert_false(fake_req_started(r));  /* but not answered there */
    assert_true(fake_worker_posts_waiting(f->g->w) >= 1);
    fake_worker_hold_posts(f->g->w, false);
    assert_true(fake_spin_answer(f->g->w, r, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);

    r = card_req(f, f->held);
    fake_worker_hold_posts(f->g->w, true);
    fake_gw_send(f->g, r);
    assert_false(fake_req_started(r));
    fake_req_reset(r); /* the client goes away */
    fake_worker_hold_posts(f->g->w, false);
    assert_true(fake_spin_idle(f->g->w, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_started(r));
    assert_int_equal(fake_req_refs(r), 1); /* only the test's own */
    assert_int_equal(fake_worker_holds(f->g->w), 0);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_login_on_the_loop),
        cmocka_unit_test(test_revoked_refused_on_the_loop),
        cmocka_unit_test(test_no_answer_always_the_pool),
        cmocka_unit_test(test_answer_posted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
