/*
 * test_signed_docs.c - the gateway's signed documents through the router on
 * the request-layer harness: the public validation report's rate limit
 * (POST /api/documents/verify, gateway/sign/api_documents.c) counted per
 * client address with an IPv6 /64 as one address, and the signed-body step
 * of a require_signed_body route (gateway/sign/signed_body.c) refusing a
 * signature whose certificate lacks the role the route requires.  The
 * signatures are real CAdES-B (lib/pki/cades.c) by throwaway keys under a
 * test card CA; the TSA is a closed port, so a signature that passes every
 * check before the time-stamp ends as 503 timestamp_unavailable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ts.h>

#include "base/b64.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "keys/assertion.h"
#include "pki/cades.h"
#include "pki/certid.h"
#include "pki/tsp.h"

#define FIN "5ABC123"
#define DOC "{\"case\":\"2-1234/2026\",\"party\":\"7XYZ987\",\"text\":\"Notice\"}"

static const char policy[] = "service: court\n"
                             "registered_as: \"DIS-7002\"\n"
                             "upstream: @UPSTREAM@\n"
                             "upstream_http: http1\n"
                             "routes:\n"
                             "  - path: /api/court/notices\n"
                             "    methods: [POST]\n"
                             "    means: [sc]\n"
                             "    role: judge\n"
                             "    purpose: required\n"
                             "    require_signed_body: true\n"
                             "  - path: /api/court/letters\n"
                             "    methods: [POST]\n"
                             "    acr: low\n"
                             "    purpose: optional\n"
                             "    require_signed_body: true\n"
                             "limits: { body: 1MiB, timeout: 10s }\n";

/* The registry's policy for a lookup of another person, as
 * policies/registry.yaml has it. */
static const char registry_policy[] = "service: registry\n"
                                      "registered_as: \"DIS-7001\"\n"
                                      "upstream: http://127.0.0.1:9\n"
                                      "upstream_http: http1\n"
                                      "routes:\n"
                                      "  - path: /api/registry/persons/{fin}\n"
                                      "    methods: [GET]\n"
                                      "    means: [sc]\n"
                                      "    role: judge\n"
                                      "    purpose: required\n"
                                      "    release: [fin, name, phones]\n";

struct fx {
    struct fake_gw *g;
    struct fake_pki_ca cards;
    EVP_PKEY *key;
    X509 *judge;   /* the judge's non-repudiation certificate (judge policy, title) */
    X509 *citizen; /* the same person's citizen card: no judge role */
    EVP_PKEY *tsa_key;
    X509 *tsa; /* a TSA under the card root (documents.tsa_ca is that chain) */
};

static void write_registry(const char *dir, void *arg)
{
    assert_int_equal(fake_gw_write_file(dir, "policies/registry.yaml", registry_policy, 0600), 0);
}

/* A signing certificate of the card profile: nonRepudiation, the card
 * policy, and for a judge the judge policy and title=Judge. */
static X509 *signing_cert(struct fx *f, bool judge, long serial)
{
    const char *exts[] = {"keyUsage=critical,nonRepudiation",
                          judge ? "certificatePolicies=" DZ_CERTID_POLICY_CARD
                                  "," DZ_CERTID_POLICY_JUDGE
                                : "certificatePolicies=" DZ_CERTID_POLICY_CARD,
                          "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", NULL};

    return fake_pki_cert(judge ? "CN=Ayten Quliyeva/serialNumber=PNOAZ-" FIN "/title=Judge"
                               : "CN=Ayten Quliyeva/serialNumber=PNOAZ-" FIN,
                         serial, f->key, f->cards.ca, f->cards.ca_key, exts);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct fake_gw_opts o = {
        .policy_yaml = policy,
        .config_extra = "cards:\n"
                        "  ca: @DIR@/esign-chain.pem\n"
                        "  revocation: none\n"
                        "documents:\n"
                        "  tsa_url: http://127.0.0.1:9/\n"
                        "  tsa_ca: @DIR@/esign-chain.pem\n"
                        "  tsa_timeout: 2s\n"
                        "  verify_rate: 2\n",
        .prepare = write_registry,
    };

    assert_non_null(f);
    fake_trust_new(&f->cards, "Test E-Signature", "esign-chain.pem", &o, &f->g);
    f->key = fake_pki_key();
    f->judge = signing_cert(f, true, 200);
    f->citizen = signing_cert(f, false, 201);
    f->tsa_key = fake_pki_key();
    f->tsa = fake_pki_cert("CN=Test TSA", 202, f->tsa_key, f->cards.root, f->cards.root_key,
                           (const char *const[]){"keyUsage=critical,digitalSignature",
                                                 "extendedKeyUsage=critical,timeStamping",
                                                 "subjectKeyIdentifier=hash",
                                                 "authorityKeyIdentifier=keyid:always", NULL});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool idle = fake_trust_free(f->g, &f->cards);

    EVP_PKEY_free(f->key);
    X509_free(f->judge);
    X509_free(f->citizen);
    EVP_PKEY_free(f->tsa_key);
    X509_free(f->tsa);
    free(f);
    assert_true(idle);
    return 0;
}

/* ------------------------------------------------- the report's rate */

/* POST /api/documents/verify {} from ip: 400 invalid_request once counted
 * within the rate, 429 rate_limited beyond it. */
static int verify_from(struct fake_gw *g, const char *ip)
{
    struct dz_req *r = fake_gw_req(g, "POST", "/api/documents/verify");
    int status;

    fake_req_set_peer(r, ip);
    fake_req_set_json(r, "{}");
    assert_true(fake_gw_roundtrip(g, r));
    status = fake_req_status(r);
    if (status == 429)
        assert_problem(r, 429, "rate_limited");
    else
        assert_problem(r, 400, "invalid_request");
    fake_req_free(r);
    return status;
}

static void test_verify_rate_per_prefix(void **state)
{
    struct fx *f = *state;

    /* documents.verify_rate 2: the third call of one address in a minute
     * is refused, IPv4 as before. */
    assert_int_equal(verify_from(f->g, "192.0.2.10"), 400);
    assert_int_equal(verify_from(f->g, "192.0.2.10"), 400);
    assert_int_equal(verify_from(f->g, "192.0.2.10"), 429);
    /* A host holds a whole IPv6 /64: a new address of the same /64 per
     * call must not be a new budget (each call validates a chain and may
     * fetch OCSP). */
    assert_int_equal(verify_from(f->g, "2001:db8:5:6::1"), 400);
    assert_int_equal(verify_from(f->g, "2001:db8:5:6::2"), 400);
    assert_int_equal(verify_from(f->g, "2001:db8:5:6:ffff::3"), 429);
    /* Another /64 has its own count. */
    assert_int_equal(verify_from(f->g, "2001:db8:5:7::1"), 400);
}

/* ------------------------------------------------ the signed body */

/* sig raised to level T by the test's TSA (an in-process TS_RESP_CTX
 * answering the gateway's own request form): *sig is replaced. */
static void stamp(struct fx *f, unsigned char **sig, size_t *sig_len)
{
    unsigned char d[32], nonce[8];
    unsigned char *req = NULL, *tok = NULL, *sig_t = NULL;
    size_t req_len = 0, sig_t_len = 0;
    TS_RESP_CTX *ctx = TS_RESP_CTX_new();
    ASN1_OBJECT *pol = OBJ_txt2obj("1.3.6.1.4.1.55555.3.1", 1);
    BIO *in;
    TS_RESP *resp;
    int n;

    assert_int_equal(dz_cades_signature_digest(*sig, *sig_len, d), 0);
    assert_int_equal(dz_tsp_request_der(d, nonce, &req, &req_len), 0);
    assert_int_equal(TS_RESP_CTX_set_signer_cert(ctx, f->tsa), 1);
    assert_int_equal(TS_RESP_CTX_set_signer_key(ctx, f->tsa_key), 1);
    TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256());
    TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256());
    TS_RESP_CTX_set_def_policy(ctx, pol);
    TS_RESP_CTX_add_md(ctx, EVP_sha256());
    in = BIO_new_mem_buf(req, (int)req_len);
    resp = TS_RESP_create_response(ctx, in);
    assert_non_null(resp);
    assert_non_null(TS_RESP_get_token(resp));
    n = i2d_PKCS7(TS_RESP_get_token(resp), &tok);
    assert_true(n > 0);
    assert_int_equal(dz_cades_add_timestamp(*sig, *sig_len, tok, (size_t)n, &sig_t, &sig_t_len), 0);
    OPENSSL_free(*sig);
    *sig = sig_t;
    *sig_len = sig_t_len;
    OPENSSL_free(tok);
    TS_RESP_free(resp);
    BIO_free(in);
    ASN1_OBJECT_free(pol);
    TS_RESP_CTX_free(ctx);
    OPENSSL_free(req);
}

/* The envelope {"document","signature"[,"party"]} of a CAdES signature by
 * cert over DOC, level B, or T when level_t. */
static char *envelope_for(struct fx *f, X509 *cert, bool level_t, const char *party)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *doc_b64 = NULL, *sig_b64 = NULL, *text;
    json_t *j;

    assert_non_null(chain);
    assert_true(sk_X509_push(chain, f->cards.ca) > 0);
    assert_int_equal(dz_cades_sign(DOC, strlen(DOC), cert, chain, 0, dz_cades_sign_with_pkey,
                                   f->key, &sig, &sig_len),
                     0);
    sk_X509_free(chain);
    if (level_t)
        stamp(f, &sig, &sig_len);
    assert_int_equal(dz_b64_encode(DOC, strlen(DOC), false, &doc_b64), 0);
    assert_int_equal(dz_b64_encode(sig, sig_len, false, &sig_b64), 0);
    j = json_pack("{s:s, s:s}", "document", doc_b64, "signature", sig_b64);
    if (party)
        json_object_set_new(j, "party", json_string(party));
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    json_decref(j);
    OPENSSL_free(sig);
    free(doc_b64);
    free(sig_b64);
    return text;
}

static char *envelope(struct fx *f, X509 *cert)
{
    return envelope_for(f, cert, false, NULL);
}

static struct dz_req *post_signed(struct fake_gw *g, const char *path, const char *token,
                                  const char *body)
{
    struct dz_req *r = fake_gw_req(g, "POST", path);

    fake_req_bearer(r, token);
    fake_req_add_header(r, "darvaza-purpose", "2-1234/2026");
    fake_req_set_json(r, body);
    assert_true(fake_gw_roundtrip(g, r));
    return r;
}

static struct dz_req *file_notice(struct fake_gw *g, const char *token, const char *body)
{
    return post_signed(g, "/api/court/notices", token, body);
}

static void test_signer_role(void **state)
{
    struct fx *f = *state;
    char judge[64];
    char *body;
    struct dz_req *r;
    json_t *line;

    fake_gw_session(f->g, FIN, "card", DZ_AMR_SC | DZ_AMR_PIN, "high", "judge", judge);

    /* The control: the judge's signature passes every check before the
     * time-stamp, and the TSA (a closed port) is what stops it. */
    body = envelope(f, f->judge);
    r = file_notice(f->g, judge, body);
    assert_problem(r, 503, "timestamp_unavailable");
    fake_req_free(r);
    free(body);

    /* The same judge signed in, the same FIN, but the signature made with
     * their citizen card: a valid signature of the person, not an act in
     * the judge's role the route requires.  Refused before the TSA is
     * asked, audited, nothing forwarded. */
    body = envelope(f, f->citizen);
    r = file_notice(f->g, judge, body);
    assert_problem(r, 403, "signer_mismatch");
    line = fake_gw_audit_find(f->g, fake_req_resp_header(r, "darvaza-request-id"), "signed_body");
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "signer_mismatch");
    assert_string_equal(json_string_value(json_object_get(line, "signer_fin")), FIN);
    json_decref(line);
    fake_req_free(r);
    free(body);
    assert_int_equal(fake_upstream_requests(f->g->up), 0);
}

/* The onward registry assertion lends the back end the signer's authority
 * for one lookup: a judge filing a notice gets it; a citizen posting a
 * signed letter with a party and a purpose does not, the registry's route
 * for another person's record being a judge's. */
static void test_onward_needs_the_lookup_right(void **state)
{
    struct fx *f = *state;
    char judge[64], citizen[64], hdr[2048];
    char *body;
    struct dz_req *r;

    fake_upstream_set_answer(f->g->up, 200, NULL, "ok");
    fake_gw_session(f->g, FIN, "card", DZ_AMR_SC | DZ_AMR_PIN, "high", "judge", judge);
    body = envelope_for(f, f->judge, true, "7XYZ987");
    r = file_notice(f->g, judge, body);
    assert_int_equal(fake_req_status(r), 200);
    assert_non_null(
        fake_upstream_last_header(f->g->up, "darvaza-onward-assertion", hdr, sizeof(hdr)));
    fake_req_free(r);
    free(body);

    fake_gw_session(f->g, FIN, "card", DZ_AMR_SC | DZ_AMR_PIN, "high", "citizen", citizen);
    body = envelope_for(f, f->citizen, true, "7XYZ987");
    r = post_signed(f->g, "/api/court/letters", citizen, body);
    assert_int_equal(fake_req_status(r), 200);
    assert_int_equal(fake_upstream_requests(f->g->up), 2);
    assert_null(fake_upstream_last_header(f->g->up, "darvaza-onward-assertion", hdr, sizeof(hdr)));
    fake_req_free(r);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_rate_per_prefix),
        cmocka_unit_test(test_signer_role),
        cmocka_unit_test(test_onward_needs_the_lookup_right),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
