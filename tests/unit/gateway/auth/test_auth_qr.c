/*
 * test_auth_qr.c - QR login (gateway/auth/auth_qr.c) through the router on
 * the request-layer harness: the browser starts and collects, a phone (a
 * throwaway key with a mobile-signature certificate under a test CA)
 * answers the code the browser shows.  Start -> pending; collect before the
 * phone answered -> pending; after -> the session; a second collect and a
 * second answer are refused.  Also a long-poll the answer completes, and a
 * browser that leaves while long-polling.
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

#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "pki/certid.h"

#define FIN "5ABC123"

struct fx {
    struct fake_gw *g;
    struct fake_pki_ca mobile;
    EVP_PKEY *phone_key;
    char *phone_b64; /* the SIM's authentication certificate */
    char *card_b64;  /* same key and FIN under the card policy */
};

static void write_secret(const char *dir, void *arg)
{
    /* The MSSP is not asked in a QR login, but mobile login is "on" only
     * with its URL and secret configured. */
    assert_int_equal(fake_gw_write_file(dir, "mssp.secret", "test-rp-secret\n", 0600), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct fake_gw_opts o = {
        .config_extra = "mobile:\n"
                        "  mssp_url: http://127.0.0.1:9/\n"
                        "  rp_secret_file: @DIR@/mssp.secret\n"
                        "  ca: @DIR@/mobile-chain.pem\n"
                        "  revocation: none\n",
        .prepare = write_secret,
    };

    assert_non_null(f);
    fake_trust_new(&f->mobile, "Test Mobile Signature", "mobile-chain.pem", &o, &f->g);
    f->phone_key = fake_pki_key();
    f->phone_b64 =
        fake_pki_person_b64(&f->mobile, f->phone_key, FIN, DZ_CERTID_POLICY_MOBILE, false, 200);
    f->card_b64 =
        fake_pki_person_b64(&f->mobile, f->phone_key, FIN, DZ_CERTID_POLICY_CARD, false, 201);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool idle = fake_trust_free(f->g, &f->mobile);

    EVP_PKEY_free(f->phone_key);
    free(f->phone_b64);
    free(f->card_b64);
    free(f);
    assert_true(idle);
    return 0;
}

struct browser {
    char id[64];
    char cookie[160]; /* "__Host-darvaza-qr=..." */
};

/* POST /auth/qr: 201, the id and the binding cookie. */
static void start(struct fake_gw *g, struct browser *b)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/auth/qr");
    const char *set_cookie;
    json_t *j;

    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 201);
    j = fake_req_json(r);
    snprintf(b->id, sizeof(b->id), "%s", json_string_value(json_object_get(j, "id")));
    assert_int_equal(strlen(b->id), 22);
    json_decref(j);
    set_cookie = fake_req_resp_header(r, "set-cookie");
    assert_non_null(set_cookie);
    assert_int_equal(strncmp(set_cookie, "__Host-darvaza-qr=", 18), 0);
    snprintf(b->cookie, sizeof(b->cookie), "%.*s", (int)strcspn(set_cookie, ";"), set_cookie);
    fake_req_free(r);
}

/* GET /auth/qr/{id}[suffix] as browser b (NULL: no cookie); not answered yet. */
static struct dz_req *browser_get(struct fake_gw *g, const struct browser *b, const char *id,
                                  const char *suffix)
{
    char path[128];
    struct dz_req *r;

    snprintf(path, sizeof(path), "/auth/qr/%s%s", id, suffix);
    r = fake_gw_req(g, "GET", path);
    if (b)
        fake_req_add_header(r, "cookie", b->cookie);
    return r;
}

static struct dz_req *collect(struct fake_gw *g, const struct browser *b)
{
    struct dz_req *r = browser_get(g, b, b->id, "");

    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

static void assert_pending(struct dz_req *r)
{
    json_t *j = fake_req_json(r);

    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "pending");
    assert_null(json_object_get(j, "token"));
    assert_null(fake_req_resp_header(r, "set-cookie"));
    json_decref(j);
}

/* The code the browser shows now. */
static void shown_code(struct fake_gw *g, const struct browser *b, char payload[160])
{
    struct dz_req *r = browser_get(g, b, b->id, "/code");
    json_t *j;

    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    snprintf(payload, 160, "%s", json_string_value(json_object_get(j, "payload")));
    assert_int_equal(strncmp(payload, "darvaza-qr:1:", 13), 0);
    json_decref(j);
    fake_req_free(r);
}

/* The phone answers payload for QR login id: signs SHA-256(payload) ||
 * SHA-256(origin) with key, sends cert. */
static struct dz_req *phone_answer(struct fake_gw *g, const char *id, const char *payload,
                                   EVP_PKEY *key, const char *origin, const char *cert_b64)
{
    unsigned char msg[64];
    char path[128];
    char *sig;
    char *text;
    json_t *body;
    struct dz_req *r;

    SHA256((const unsigned char *)payload, strlen(payload), msg);
    SHA256((const unsigned char *)origin, strlen(origin), msg + 32);
    sig = fake_pki_sign_es256_b64(key, msg, sizeof(msg));
    body = json_pack("{s:s, s:s, s:s, s:s}", "payload", payload, "certificate", cert_b64,
                     "algorithm", "ES256", "signature", sig);
    text = json_dumps(body, JSON_COMPACT);
    snprintf(path, sizeof(path), "/auth/qr/%s/answer", id);
    r = fake_gw_req(g, "POST", path);
    fake_req_set_json(r, text);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    free(text);
    free(sig);
    json_decref(body);
    return r;
}

static void test_qr_flow(void **state)
{
    struct fx *f = *state;
    struct browser b;
    char payload[160];
    struct dz_req *r;
    json_t *j;
    json_t *line;
    const char *rid;

    start(f->g, &b);
    /* Before the phone: pending. */
    r = collect(f->g, &b);
    assert_pending(r);
    fake_req_free(r);

    shown_code(f->g, &b, payload);
    r = phone_answer(f->g, b.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "accepted");
    json_decref(j);
    fake_req_free(r);

    /* After: the session, with the session cookie. */
    r = collect(f->g, &b);
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "complete");
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "qr");
    assert_string_equal(json_string_value(json_object_get(j, "acr")), "high");
    assert_non_null(json_string_value(json_object_get(j, "token")));
    json_decref(j);
    assert_int_equal(strncmp(fake_req_resp_header(r, "set-cookie"), "__Host-darvaza=", 15), 0);
    rid = fake_req_resp_header(r, "darvaza-request-id");
    line = fake_gw_audit_find(f->g, rid, "login");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "means")), "qr");
    assert_string_equal(json_string_value(json_object_get(line, "decision")), "allow");
    json_decref(line);
    assert_non_null(strstr(fake_req_note(r), rid));
    fake_req_free(r);

    /* A second collect: the login is finished. */
    r = collect(f->g, &b);
    assert_problem(r, 404, "not_found");
    fake_req_free(r);
}

static void test_qr_refusals(void **state)
{
    struct fx *f = *state;
    struct browser b;
    struct browser other;
    char payload[160];
    char forged[160];
    struct dz_req *r;

    start(f->g, &b);
    start(f->g, &other);
    shown_code(f->g, &b, payload);

    /* Another browser may neither see the code nor collect. */
    r = browser_get(f->g, &other, b.id, "");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_problem(r, 403, "forbidden");
    fake_req_free(r);
    r = browser_get(f->g, NULL, b.id, "/code");
    assert_true(fake_gw_roundtrip(f->g, r));
    assert_problem(r, 403, "forbidden");
    fake_req_free(r);

    /* This payload posted to another QR login. */
    r = phone_answer(f->g, other.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_problem(r, 400, "qr_invalid");
    fake_req_free(r);
    /* A code that is not the HMAC of this login. */
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(strlen(payload) - 64), payload,
             "0000000000000000000000000000000000000000000000000000000000000000");
    r = phone_answer(f->g, b.id, forged, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_problem(r, 400, "qr_invalid");
    fake_req_free(r);
    /* Signed for another origin. */
    r = phone_answer(f->g, b.id, payload, f->phone_key, "https://gw.test.evil", f->phone_b64);
    assert_problem(r, 401, "bad_signature");
    fake_req_free(r);
    /* A card certificate is not a mobile signature. */
    r = phone_answer(f->g, b.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->card_b64);
    assert_problem(r, 401, "certificate_invalid");
    fake_req_free(r);
    /* None of that answered the login. */
    r = collect(f->g, &b);
    assert_pending(r);
    fake_req_free(r);

    /* The real answer, then a second one. */
    shown_code(f->g, &b, payload);
    r = phone_answer(f->g, b.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);
    r = phone_answer(f->g, b.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_problem(r, 409, "qr_used");
    fake_req_free(r);
}

static bool long_poll_waiting(void *arg)
{
    struct dz_req *r = arg;

    return fake_req_refs(r) > 2; /* the wait holds the request */
}

/* A browser waiting (?wait=) is answered when the phone answers. */
static void test_long_poll(void **state)
{
    struct fx *f = *state;
    struct browser b;
    char payload[160];
    struct dz_req *poll;
    struct dz_req *r;
    json_t *j;

    start(f->g, &b);
    poll = browser_get(f->g, &b, b.id, "?wait=10");
    fake_gw_send(f->g, poll);
    assert_true(fake_spin(f->g->w, long_poll_waiting, poll, FAKE_GW_TIMEOUT_MS));
    assert_false(fake_req_started(poll));

    shown_code(f->g, &b, payload);
    r = phone_answer(f->g, b.id, payload, f->phone_key, FAKE_GW_ORIGIN, f->phone_b64);
    assert_int_equal(fake_req_status(r), 200);
    fake_req_free(r);

    assert_true(fake_spin_answer(f->g->w, poll, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(poll), 200);
    j = fake_req_json(poll);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "complete");
    assert_string_equal(json_string_value(json_object_get(j, "fin")), FIN);
    json_decref(j);
    fake_req_free(poll);
}

/* The browser leaves during its long-poll: the wait lets go at once. */
static void test_long_poll_reset(void **state)
{
    struct fx *f = *state;
    struct browser b;
    struct dz_req *poll;

    start(f->g, &b);
    poll = browser_get(f->g, &b, b.id, "?wait=10");
    fake_gw_send(f->g, poll);
    assert_true(fake_spin(f->g->w, long_poll_waiting, poll, FAKE_GW_TIMEOUT_MS));
    fake_req_reset(poll);
    assert_int_equal(fake_req_refs(poll), 1);
    assert_true(fake_spin_idle(f->g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(poll), 0);
    fake_req_free(poll);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qr_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qr_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
