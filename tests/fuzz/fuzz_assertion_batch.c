/*
 * fuzz_assertion_batch.c - feeds arbitrary bytes to the batch-form parsers
 * (lib/keys/jws_batch.c and the batch branch of dz_assertion_verify) against
 * a fixed one-key JWKS whose private key is not in the tree.  The Merkle
 * path and the claims sit outside the root's signature, so mutations of the
 * seeds (real batch tokens of that key, tests/fuzz/corpus/assertion_batch/)
 * reach the path walk and the claims parser.  Besides not crashing, it checks
 * the promises: out-parameters set exactly on success, a reason always given
 * and "ok" exactly on success, an opened payload NUL-terminated, and a token
 * the assertion verifier accepts is one dz_jws_batch_open accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "keys/assertion.h"
#include "keys/jws.h"
#include "keys/jws_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JWKS[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"KfBYndPd479nJAPzZ7LMa2MUEeXTqmhX-bj6FF6liRw\","
                           "\"y\":\"UOide3_mTPvQYU6QJhEha4aaEp_js4DaOq2ZVj9Nwnw\","
                           "\"kid\":\"fuzz-b1\",\"use\":\"sig\",\"alg\":\"ES256\"}]}";

static struct dz_jwks *jwks;

static void check_reason(int rc, const char *reason)
{
    if (!reason || (rc == 0) != (strcmp(reason, "ok") == 0))
        abort();
}

static int fuzz_open(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    unsigned char *payload = NULL;
    size_t payload_len = 0;
    const char *reason = NULL;
    int rc = dz_jws_batch_open((const char *)data, size, jwks, DZ_ASSERTION_BATCH_TYP, &root,
                               &payload, &payload_len, &reason);

    check_reason(rc, reason);
    if ((rc == 0) != (root != NULL) || (rc == 0) != (payload != NULL))
        abort();
    if (rc == 0 && (payload_len == 0 || payload[payload_len] != '\0' || !json_is_object(root)))
        abort();
    if (rc != 0 && payload_len != 0)
        abort();
    json_decref(root);
    free(payload);
    return rc;
}

static void fuzz_assertion(const uint8_t *data, size_t size, int open_rc)
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
    /* A batch token the verifier takes has a path that leads to its root
     * (a NUL inside the input cuts the C string, hence the length test). */
    if (rc == 0 && strlen(s) == size && memchr(s, '~', size) && open_rc != 0)
        abort();
    json_decref(c);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc;

    if (!jwks) {
        dz_log_set_level(DZ_LOG_ERROR);
        if (dz_jwks_parse(JWKS, sizeof(JWKS) - 1, &jwks) != 0)
            abort();
    }
    rc = fuzz_open(data, size);
    fuzz_assertion(data, size, rc);
    return 0;
}
