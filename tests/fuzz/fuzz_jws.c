/*
 * fuzz_jws.c - feeds arbitrary bytes to every parser of lib/keys/jws.c and
 * lib/keys/assertion.c that sees outside input: the compact JWS verifier (against
 * a fixed one-key JWKS whose private key is not in the tree), the assertion
 * verifier (same bytes as a C string), the JWKS parser, and the assertion
 * claim checker (bytes as JSON).  Besides not crashing, it checks their
 * promises: out-parameters are set exactly on success, a reason is always
 * given and is "ok" exactly on success, and a parsed JWKS survives a
 * to_json/parse round trip with the same keys.
 *
 * Seeds (tests/fuzz/corpus/jws/) include real tokens signed by the key of
 * JWKS below, so the fuzzer starts past the signature check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "keys/assertion.h"
#include "keys/jws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JWKS[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"td0uMreVUX25pwkg7umdfbR75YR59kvYI-j-GFNT_TI\","
                           "\"y\":\"P7RGhHcyTijeFhtTpi3LrPhOW5vcV3BdzL1yz3YWhrA\","
                           "\"kid\":\"fuzz-1\",\"use\":\"sig\",\"alg\":\"ES256\"}]}";

static struct dz_jwks *jwks;

static void check_reason(int rc, const char *reason)
{
    if (!reason || (rc == 0) != (strcmp(reason, "ok") == 0))
        abort();
}

static void fuzz_verify(const uint8_t *data, size_t size)
{
    json_t *h = NULL, *c = NULL;
    const char *reason = NULL;
    int rc = dz_jws_verify_detail((const char *)data, size, jwks, NULL, &h, &c, &reason);

    check_reason(rc, reason);
    if ((rc == 0) != (h != NULL) || (rc == 0) != (c != NULL))
        abort();
    if (rc == 0 && (!json_is_object(h) || !json_is_object(c)))
        abort();
    json_decref(h);
    json_decref(c);
}

static void fuzz_assertion(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct dz_assertion_expect e = {
        .iss = "darvaza-fuzz",
        .aud = "registry",
        .now = 1800000010,
        .leeway_s = 5,
        .skip_body = true,
    };
    const char *reason = NULL;
    json_t *c = NULL;
    int rc;

    if (!s)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    rc = dz_assertion_verify(s, jwks, &e, &c, &reason);
    check_reason(rc, reason);
    if ((rc == 0) != (c != NULL))
        abort();
    json_decref(c);
    free(s);
}

static void fuzz_jwks(const uint8_t *data, size_t size)
{
    struct dz_jwks *j = NULL, *again = NULL;
    char *json = NULL;

    if (dz_jwks_parse((const char *)data, size, &j) != 0) {
        if (j)
            abort();
        return;
    }
    if (dz_jwks_count(j) == 0 || dz_jwks_to_json(j, &json) != 0 ||
        dz_jwks_parse(json, strlen(json), &again) != 0 || dz_jwks_count(again) != dz_jwks_count(j))
        abort();
    free(json);
    dz_jwks_free(again);
    dz_jwks_free(j);
}

static void fuzz_claims(const uint8_t *data, size_t size)
{
    struct dz_assertion_expect e = {
        .iss = "darvaza-fuzz",
        .aud = "registry",
        .htm = "GET",
        .htu = "/api/registry/me",
        .now = 1800000010,
        .leeway_s = 5,
    };
    json_error_t err;
    json_t *c = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    const char *reason = NULL;
    int rc;

    if (!c)
        return;
    rc = dz_assertion_check_claims(c, &e, &reason);
    check_reason(rc, reason);
    json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!jwks) {
        dz_log_set_level(DZ_LOG_ERROR);
        if (dz_jwks_parse(JWKS, sizeof(JWKS) - 1, &jwks) != 0)
            abort();
    }
    fuzz_verify(data, size);
    fuzz_assertion(data, size);
    fuzz_jwks(data, size);
    fuzz_claims(data, size);
    return 0;
}
