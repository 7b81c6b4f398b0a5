/*
 * test_oidc_consent.c - remembered consent (oidc_consent.c) when a person's
 * decisions about two clients are written at the same moment (two
 * instances sharing the store): an approval of one client and a withdrawal
 * of another are interleaved by hand, the second run by a store hook just
 * before the first one writes.  Whatever the order, the withdrawn client
 * has no consent left and the approved one keeps it; the list shows
 * exactly that, and a list the store cannot give is an error, not empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "base/err.h"
#include "harness/store_wrap.h"
#include "oidc/oidc_consent.h"
#include "oidc/oidc_state.h"
#include "policy/policy.h"
#include "state/store.h"

#define FIN "5ABC123"

static struct dz_policy_oidc client_a = {
    .client_id = "rp-a", .display_name = "Service A", .release = DZ_RELEASE_FIN};
static struct dz_policy_oidc client_b = {
    .client_id = "rp-b", .display_name = "Service B", .release = DZ_RELEASE_FIN};
static struct dz_policy_service services[] = {{.name = "a", .oidc = &client_a},
                                              {.name = "b", .oidc = &client_b}};
static const struct dz_policy_set ps = {.services = services, .n_services = 2};

static struct dz_store *st;
static struct store_wrap *hook;

/* What "another instance" does, once, just before the next consent write. */
static void (*meanwhile)(void);

static int before(struct store_wrap *w, const char *op, const char *ns)
{
    void (*f)(void) = meanwhile;

    (void)w;
    if (f && strcmp(ns, DZ_OIDC_NS_CONSENT) == 0 && strcmp(op, "get") != 0 &&
        strcmp(op, "ttl") != 0) {
        meanwhile = NULL; /* its own writes pass */
        f();
    }
    return 0;
}

static struct dz_oidc_authreq req_for(const struct dz_policy_oidc *c)
{
    return (struct dz_oidc_authreq){.client = c, .scopes = DZ_OIDC_SCOPE_OPENID};
}

static bool given(const struct dz_policy_oidc *c)
{
    struct dz_oidc_authreq ar = req_for(c);

    return dz_oidc_consent_given(st, FIN, &ar, 0);
}

static void approve(const struct dz_policy_oidc *c)
{
    struct dz_oidc_authreq ar = req_for(c);

    assert_int_equal(dz_oidc_consent_remember(st, FIN, &ar), 0);
}

static void approve_b(void)
{
    approve(&client_b);
}

static void withdraw_a(void)
{
    assert_int_equal(dz_oidc_consent_withdraw(st, FIN, "rp-a"), 0);
}

/* The list's client ids, comma-separated. */
static void listed(char *out, size_t len)
{
    json_t *a = NULL;
    json_t *e;
    size_t i;

    out[0] = '\0';
    assert_int_equal(dz_oidc_consents_list(st, &ps, FIN, &a), 0);
    json_array_foreach(a, i, e)
    {
        const char *c = json_string_value(json_object_get(e, "client"));
        assert_non_null(c);
        assert_string_equal(json_string_value(json_object_get(e, "name")),
                            strcmp(c, "rp-a") == 0 ? "Service A" : "Service B");
        strncat(out, i ? "," : "", len - strlen(out) - 1);
        strncat(out, c, len - strlen(out) - 1);
    }
    json_decref(a);
}

static int setup(void **state)
{
    struct dz_store *inner = NULL;

    (void)state;
    meanwhile = NULL;
    if (dz_store_mem_new(4, NULL, &inner) != 0 || store_wrap_new(inner, &hook, &st) != 0)
        return -1;
    hook->before = before;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dz_store_free(st);
    st = NULL;
    return 0;
}

/* B approved while A is withdrawn: the withdrawal runs between the
 * approval's reading and its write.  A must stay withdrawn. */
static void test_approval_does_not_undo_withdrawal(void **state)
{
    char l[64];

    (void)state;
    approve(&client_a);
    assert_true(given(&client_a));
    meanwhile = withdraw_a;
    approve(&client_b);
    assert_null(meanwhile); /* the withdrawal ran in between */
    assert_false(given(&client_a));
    assert_true(given(&client_b));
    listed(l, sizeof(l));
    assert_string_equal(l, "rp-b");
}

/* A withdrawn while B is approved: the approval runs between the
 * withdrawal's reading and its write.  B must keep its consent. */
static void test_withdrawal_does_not_lose_approval(void **state)
{
    char l[64];

    (void)state;
    approve(&client_a);
    meanwhile = approve_b;
    withdraw_a();
    assert_null(meanwhile);
    assert_false(given(&client_a));
    assert_true(given(&client_b));
    listed(l, sizeof(l));
    assert_string_equal(l, "rp-b");
}

/* Withdrawing what is not there is not_found; both listed in the
 * policies' order; a withdrawal of one leaves the other. */
static void test_list_and_withdraw(void **state)
{
    char l[64];

    (void)state;
    assert_int_equal(dz_oidc_consent_withdraw(st, FIN, "rp-a"), DZ_ERR_NOTFOUND);
    listed(l, sizeof(l));
    assert_string_equal(l, "");
    approve(&client_b);
    approve(&client_a);
    listed(l, sizeof(l));
    assert_string_equal(l, "rp-a,rp-b");
    assert_false(dz_oidc_consent_given(
        st, "9ZZZ999",
        &(struct dz_oidc_authreq){.client = &client_a, .scopes = DZ_OIDC_SCOPE_OPENID}, 0));
    withdraw_a();
    listed(l, sizeof(l));
    assert_string_equal(l, "rp-b");
}

static int fail_gets(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    return strcmp(op, "get") == 0 && strcmp(ns, DZ_OIDC_NS_CONSENT) == 0 ? DZ_ERR_UNAVAILABLE : 0;
}

/* A store that cannot be read gives no list (the page answers 503), never
 * an empty one that would hide a consent. */
static void test_list_fails_closed(void **state)
{
    json_t *a = NULL;

    (void)state;
    approve(&client_a);
    hook->before = fail_gets;
    assert_int_equal(dz_oidc_consents_list(st, &ps, FIN, &a), DZ_ERR_UNAVAILABLE);
    assert_null(a);
    assert_false(given(&client_a));
}

static unsigned consent_dels;

/* A delete of a consent that cannot be made durable (Redis: too few
 * replicas acknowledged), and any plain delete counted. */
static int fail_durable_dels(struct store_wrap *w, const char *op, const char *ns)
{
    (void)w;
    if (strcmp(ns, DZ_OIDC_NS_CONSENT) != 0)
        return 0;
    if (strcmp(op, "del") == 0)
        consent_dels++;
    return strcmp(op, "del_durable") == 0 ? DZ_ERR_UNAVAILABLE : 0;
}

/* A withdrawal is a durable delete: one the store cannot make durable is
 * the store's failure (the endpoints answer 503), never a plain delete
 * that a failover could undo, giving the client its consent back. */
static void test_withdrawal_is_durable(void **state)
{
    (void)state;
    approve(&client_a);
    consent_dels = 0;
    hook->before = fail_durable_dels;
    assert_int_equal(dz_oidc_consent_withdraw(st, FIN, "rp-a"), DZ_ERR_UNAVAILABLE);
    assert_int_equal(consent_dels, 0);
    hook->before = before;
    assert_true(given(&client_a)); /* not withdrawn, as the 503 says */
    withdraw_a();
    assert_false(given(&client_a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_approval_does_not_undo_withdrawal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdrawal_does_not_lose_approval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_withdraw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdrawal_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_fails_closed, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
