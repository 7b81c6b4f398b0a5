/*
 * test_oidc_code.c - the single use of an authorization code
 * (oidc_code.c), on the in-process store, with the steps of two exchanges
 * of one code interleaved as two instances can run them: whatever the
 * order, the access token of the first exchange does not survive the
 * second use, and a code that was never there reads as unknown, not used.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/secret.h"
#include "oidc/oidc_code.h"
#include "oidc/oidc_state.h"
#include "state/store.h"

static struct dz_store *st;

static const char CODE[] = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0d";

static int setup(void **state)
{
    return dz_store_mem_new(4, NULL, &st);
}

static int teardown(void **state)
{
    dz_store_free(st);
    st = NULL;
    return 0;
}

/* The store key of an access token, as the token endpoint names it. */
static void at_key_of(const char *token, char out[DZ_OIDC_SECRET_LEN + 1])
{
    unsigned char h[32];

    dz_sha256(token, strlen(token), h);
    dz_b64_encode_to(h, sizeof(h), true, out);
}

static void store_token(const char *token)
{
    json_t *v = json_pack("{s:s}", "client", "rp");

    assert_int_equal(dz_oidc_state_put(st, DZ_OIDC_NS_TOKEN, token, v, 300000, DZ_STORE_NX), 0);
    json_decref(v);
}

static bool token_alive(const char *token)
{
    json_t *v = NULL;
    int rc = dz_oidc_state_get(st, DZ_OIDC_NS_TOKEN, token, false, &v);

    json_decref(v);
    return rc == 0;
}

/* One use, then another after it: the second is a replay, names the first
 * client and revokes the first token. */
static void test_replay_after_revokes(void **state)
{
    char k[DZ_OIDC_SECRET_LEN + 1];
    char *first = NULL;

    at_key_of("token-a", k);
    assert_int_equal(dz_oidc_code_claim(st, CODE, k, "rp"), 0);
    store_token("token-a");
    assert_int_equal(dz_oidc_code_confirm(st, CODE), 0);
    assert_true(token_alive("token-a"));

    at_key_of("token-b", k);
    assert_int_equal(dz_oidc_code_claim(st, CODE, k, "other"), DZ_ERR_EXISTS);
    assert_int_equal(dz_oidc_code_replayed(st, CODE, &first), 0);
    assert_string_equal(first, "rp");
    free(first);
    assert_false(token_alive("token-a"));
}

/* The second use comes after the first claimed the code and before it
 * stored its token (the window where the code was already taken but not
 * yet marked used): the first looks again, finds the flag, issues nothing. */
static void test_replay_between_claim_and_token_revokes(void **state)
{
    char ka[DZ_OIDC_SECRET_LEN + 1];
    char kb[DZ_OIDC_SECRET_LEN + 1];

    at_key_of("token-a", ka);
    at_key_of("token-b", kb);
    assert_int_equal(dz_oidc_code_claim(st, CODE, ka, "rp"), 0);
    assert_int_equal(dz_oidc_code_claim(st, CODE, kb, "rp"), DZ_ERR_EXISTS);
    assert_int_equal(dz_oidc_code_replayed(st, CODE, NULL), 0);
    store_token("token-a");
    assert_int_equal(dz_oidc_code_confirm(st, CODE), DZ_ERR_EXISTS);
}

/* The second use comes after the first stored its token and before it
 * looked again: the second deletes it, the first then refuses too. */
static void test_replay_between_token_and_confirm_revokes(void **state)
{
    char ka[DZ_OIDC_SECRET_LEN + 1];
    char kb[DZ_OIDC_SECRET_LEN + 1];

    at_key_of("token-a", ka);
    at_key_of("token-b", kb);
    assert_int_equal(dz_oidc_code_claim(st, CODE, ka, "rp"), 0);
    store_token("token-a");
    assert_int_equal(dz_oidc_code_claim(st, CODE, kb, "rp"), DZ_ERR_EXISTS);
    assert_int_equal(dz_oidc_code_replayed(st, CODE, NULL), 0);
    assert_false(token_alive("token-a"));
    assert_int_equal(dz_oidc_code_confirm(st, CODE), DZ_ERR_EXISTS);
}

/* A code that was not there (never issued, expired): its claim is dropped,
 * so presenting it again is still "unknown", not a replay. */
static void test_unclaimed_code_is_not_used(void **state)
{
    char k[DZ_OIDC_SECRET_LEN + 1];

    at_key_of("token-a", k);
    assert_int_equal(dz_oidc_code_claim(st, CODE, k, "rp"), 0);
    dz_oidc_code_unclaim(st, CODE);
    assert_int_equal(dz_oidc_code_claim(st, CODE, k, "rp"), 0);
}

/* A mark that is gone cannot vouch for the token: not confirmed. */
static void test_confirm_without_mark_fails_closed(void **state)
{
    assert_int_equal(dz_oidc_code_confirm(st, CODE), DZ_ERR_STATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_after_revokes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_between_claim_and_token_revokes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_between_token_and_confirm_revokes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unclaimed_code_is_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirm_without_mark_fails_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
