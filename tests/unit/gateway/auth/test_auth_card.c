/*
 * test_auth_card.c - card login, POST /auth/card/challenge then POST
 * /auth/card (gateway/auth/auth_card.c), through the router on the
 * request-layer harness.  The card is a throwaway key with a certificate
 * of the demo citizen card's profile (certs/mkcards.sh) under a test card
 * CA; the gateway's side (nonce store, signature check, certificate check
 * on the pool, session, audit) is all real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "card_case.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "pki/certid.h"

#define FIN "5ABC123"

struct fx {
    struct fake_gw *g;
    struct fake_pki_ca cards;
    struct fake_pki_ca rogue; /* a CA nobody trusts */
    EVP_PKEY *card_key;
    char *card_b64;   /* the citizen card's authentication certificate */
    char *rogue_b64;  /* same key and FIN, issued by the rogue CA */
    char *mobile_b64; /* same key and FIN, mobile-signature policy */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct fake_gw_opts o = {
        .config_extra = "cards:\n"
                        "  ca: @DIR@/esign-chain.pem\n"
                        "  revocation: none\n",
    };

    assert_non_null(f);
    fake_trust_new(&f->cards, "Test E-Signature", "esign-chain.pem", &o, &f->g);
    fake_pki_ca_init(&f->rogue, "Rogue");
    f->card_key = fake_pki_key();
    f->card_b64 =
        fake_pki_person_b64(&f->cards, f->card_key, FIN, DZ_CERTID_POLICY_CARD, false, 100);
    f->rogue_b64 =
        fake_pki_person_b64(&f->rogue, f->card_key, FIN, DZ_CERTID_POLICY_CARD, false, 101);
    f->mobile_b64 =
        fake_pki_person_b64(&f->cards, f->card_key, FIN, DZ_CERTID_POLICY_MOBILE, false, 102);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool idle = fake_trust_free(f->g, &f->cards);

    fake_pki_ca_cleanup(&f->rogue);
    EVP_PKEY_free(f->card_key);
    free(f->card_b64);
    free(f->rogue_b64);
    free(f->mobile_b64);
    free(f);
    assert_true(idle);
    return 0;
}

/* What the card signs: SHA-256(origin) || SHA-256(nonce) (docs/api.md). */
static char *card_sign(EVP_PKEY *key, const char *origin, const char *nonce)
{
    unsigned char msg[64];

    SHA256((const unsigned char *)origin, strlen(origin), msg);
    SHA256((const unsigned char *)nonce, strlen(nonce), msg + 32);
    return fake_pki_sign_es256_b64(key, msg, sizeof(msg));
}

static struct dz_req *card_login(struct fake_gw *g, const char *cert_b64, const char *nonce,
                                 const char *sig_b64)
{
    return card_post(g, json_pack("{s:s, s:s, s:s, s:s}", "certificate", cert_b64, "algorithm",
                                  "ES256", "nonce", nonce, "signature", sig_b64));
}

static void test_card_login(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;
    json_t *j;
    json_t *line;
    const char *rid;

    card_challenge(f->g, nonce);
    sig = card_sign(f->card_key, FAKE_GW_ORIGIN, nonce);
    r = card_login(f->g, f->card_b64, nonce, sig);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    assert_string_equal(json_string_value(json_object_get(j, "acr")), "high");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "card");
    assert_int_equal(json_array_size(json_object_get(j, "amr")), 2);
    assert_non_null(json_string_value(json_object_get(j, "token")));
    json_decref(j);
    assert_non_null(fake_req_resp_header(r, "set-cookie"));
    assert_int_equal(strncmp(fake_req_resp_header(r, "set-cookie"), "__Host-darvaza=", 15), 0);
    rid = fake_req_resp_header(r, "darvaza-request-id");
    line = fake_gw_audit_find(f->g, rid, "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "means")), "card");
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(line, "fin")), FIN);
    json_decref(line);
    assert_non_null(strstr(fake_req_note(r), rid));
    fake_req_free(r);

    /* The same challenge and signature again: the nonce is spent. */
    r = card_login(f->g, f->card_b64, nonce, sig);
    assert_problem(r, 401, "invalid_nonce");
    fake_req_free(r);
    free(sig);
}

static void test_wrong_signature(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;
    EVP_PKEY *other = fake_pki_key();

    /* Made for another origin (a look-alike site collected it). */
    card_challenge(f->g, nonce);
    sig = card_sign(f->card_key, "https://gw.test.evil", nonce);
    r = card_login(f->g, f->card_b64, nonce, sig);
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);
    /* That refusal spent the nonce too: a retry with a good signature
     * needs a fresh challenge. */
    sig = card_sign(f->card_key, FAKE_GW_ORIGIN, nonce);
    r = card_login(f->g, f->card_b64, nonce, sig);
    assert_problem(r, 401, "invalid_nonce");
    fake_req_free(r);
    free(sig);

    /* Made with another key than the certificate's. */
    card_challenge(f->g, nonce);
    sig = card_sign(other, FAKE_GW_ORIGIN, nonce);
    r = card_login(f->g, f->card_b64, nonce, sig);
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    free(sig);
    EVP_PKEY_free(other);
}

static void test_unknown_nonce_and_bad_certificates(void **state)
{
    struct fx *f = *state;
    char nonce[128];
    char *sig;
    struct dz_req *r;

    /* A nonce the gateway never gave. */
    sig = card_sign(f->card_key, FAKE_GW_ORIGIN, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    r = card_login(f->g, f->card_b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", sig);
    assert_problem(r, 401, "invalid_nonce");
    fake_req_free(r);
    free(sig);

    /* A good signature under a certificate nobody trusts. */
    card_challenge(f->g, nonce);
    sig = card_sign(f->card_key, FAKE_GW_ORIGIN, nonce);
    r = card_login(f->g, f->rogue_b64, nonce, sig);
    assert_problem(r, 401, "certificate_invalid");
    fake_req_free(r);
    free(sig);

    /* A mobile-signature certificate never passes as a card. */
    card_challenge(f->g, nonce);
    sig = card_sign(f->card_key, FAKE_GW_ORIGIN, nonce);
    r = card_login(f->g, f->mobile_b64, nonce, sig);
    assert_problem(r, 401, "certificate_invalid");
    fake_req_free(r);
    free(sig);

    /* Not base64, not a certificate. */
    r = card_login(f->g, "%%%", nonce, "AAAA");
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    r = card_login(f->g, "AAAA", nonce, "AAAA");
    assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_card_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_nonce_and_bad_certificates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
