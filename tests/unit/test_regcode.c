/* test_regcode.c - registration codes (gateway/auth/regcode.c) and the
 * per-person session slots (gateway/state/sessidx.c) over the in-process
 * store, through their public interfaces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/regcode.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "state/sessidx.h"
#include "state/session.h"
#include "state/store.h"

#include "sessidx_race.h"

#define FIN "5ABC123"
#define DOC "AZE12345678"
#define PHONE "+994501234567"
#define TTL 60000

static struct dz_store *mk(void)
{
    struct dz_store *s = NULL;

    assert_int_equal(dz_store_mem_new(4, NULL, &s), 0);
    return s;
}

/* A different code of six digits. */
static void other(const char *code, char *out)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%06d", (atoi(code) + 1) % 1000000);
    memcpy(out, buf, DZ_REGCODE_DIGITS + 1);
}

static void test_right_code_once(void **state)
{
    struct dz_store *s = mk();
    char code[DZ_REGCODE_DIGITS + 1], phone[DZ_REGCODE_PHONE_MAX + 1];
    enum dz_regcode_verdict v;
    unsigned left;

    (void)state;
    assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, code), 0);
    assert_int_equal(strlen(code), 6);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, code, 2000, 5, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_OK);
    assert_string_equal(phone, PHONE);
    /* single use */
    assert_int_equal(dz_regcode_check(s, FIN, DOC, code, 2000, 5, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_NONE);
    assert_string_equal(phone, "");
    dz_store_free(s);
}

static void test_bound_to_document_and_tries(void **state)
{
    struct dz_store *s = mk();
    char code[DZ_REGCODE_DIGITS + 1], bad[DZ_REGCODE_DIGITS + 1], longer[16];
    char phone[DZ_REGCODE_PHONE_MAX + 1];
    enum dz_regcode_verdict v;
    unsigned left;

    (void)state;
    assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, code), 0);
    other(code, bad);
    assert_int_equal(dz_regcode_check(s, FIN, "AA1234567", code, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_WRONG); /* another document */
    assert_int_equal(left, 2);
    snprintf(longer, sizeof(longer), "%s0", code);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, longer, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_WRONG); /* never cut down to the right one */
    assert_int_equal(left, 1);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, bad, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_WRONG);
    assert_int_equal(left, 0);
    /* spent: the right code is no longer there */
    assert_int_equal(dz_regcode_check(s, FIN, DOC, code, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_NONE);
    dz_store_free(s);
}

/* A guess with the right code that raced the budget's wrong ones: race
 * puts the store where that guess finds it when its check runs (the code
 * issued just before).  It is refused, and the code is spent for good. */
static void racing_right_guess(void (*race)(struct dz_store *s, const char *code))
{
    struct dz_store *s = mk();
    char code[DZ_REGCODE_DIGITS + 1], phone[DZ_REGCODE_PHONE_MAX + 1];
    enum dz_regcode_verdict v;
    unsigned left;

    assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, code), 0);
    race(s, code);
    /* the right code, as a fourth try of a budget of three */
    assert_int_equal(dz_regcode_check(s, FIN, DOC, code, 2000, 3, &v, phone, &left), 0);
    assert_int_not_equal(v, DZ_REGCODE_OK);
    assert_int_equal(left, 0);
    assert_string_equal(phone, "");
    /* and the code is spent for good */
    assert_int_equal(dz_regcode_check(s, FIN, DOC, code, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_NONE);
    dz_store_free(s);
}

/* Guesses racing on one code: each reads the entry, and before, each was
 * compared first and counted only when wrong, so every guess that had read
 * the entry before the last allowed wrong one spent it was still compared,
 * and a right one among them won.  The moment reproduced: the budget's
 * tries are all counted (the last one has not yet spent the code). */
static void tries_counted(struct dz_store *s, const char *code)
{
    int64_t n = 0;

    (void)code;
    for (int i = 0; i < 3; i++)
        assert_int_equal(dz_store_incr(s, "fail_regcode", FIN, DZ_FIN_LEN, TTL, &n), 0);
    assert_int_equal(n, 3);
}

static void test_racing_tries_over_budget_refused(void **state)
{
    (void)state;
    racing_right_guess(tries_counted);
}

/* The same race after the budget's last wrong try spent the code: a guess
 * that had read the entry before must not start a fresh count (it would be
 * compared, and so on for every group of racing guesses).  Reproduced by
 * putting the entry back as that guess read it. */
static void spent_then_put_back(struct dz_store *s, const char *code)
{
    char bad[DZ_REGCODE_DIGITS + 1], phone[DZ_REGCODE_PHONE_MAX + 1];
    struct dz_buf entry;
    enum dz_regcode_verdict v;
    unsigned left;

    dz_buf_init(&entry, 128);
    assert_int_equal(dz_store_get(s, "regcode", FIN, DZ_FIN_LEN, &entry), 0);
    other(code, bad);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dz_regcode_check(s, FIN, DOC, bad, 2000, 3, &v, phone, &left), 0);
    assert_int_equal(left, 0); /* spent */
    /* a racing guess's read of the entry, from before it was spent */
    assert_int_equal(
        dz_store_put(s, "regcode", FIN, DZ_FIN_LEN, entry.data, entry.len, TTL + 600000, 0), 0);
    dz_buf_wipe(&entry);
}

static void test_spent_code_count_kept(void **state)
{
    (void)state;
    racing_right_guess(spent_then_put_back);
}

static void test_expiry_and_reissue(void **state)
{
    struct dz_store *s = mk();
    char c1[DZ_REGCODE_DIGITS + 1], c2[DZ_REGCODE_DIGITS + 1];
    char phone[DZ_REGCODE_PHONE_MAX + 1];
    enum dz_regcode_verdict v;
    unsigned left;

    (void)state;
    assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, c1), 0);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, c1, 1000 + TTL, 5, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_EXPIRED);
    /* a new code replaces the old one, which then never works */
    assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, c1), 0);
    do
        assert_int_equal(dz_regcode_issue(s, FIN, DOC, PHONE, 1000, TTL, c2), 0);
    while (strcmp(c1, c2) == 0);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, c1, 2000, 5, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_WRONG);
    assert_int_equal(dz_regcode_check(s, FIN, DOC, c2, 2000, 5, &v, phone, &left), 0);
    assert_int_equal(v, DZ_REGCODE_OK);
    dz_store_free(s);
}

static void test_mask(void **state)
{
    char out[DZ_REGCODE_PHONE_MAX + 1];

    (void)state;
    dz_regcode_mask("+994501234567", out);
    assert_string_equal(out, "+99450*****67");
    dz_regcode_mask("+99", out);
    assert_string_equal(out, "");
}

/* ---- sessidx ---- */

static void login(struct dz_store *s, const char *fin, int64_t created, struct dz_session *out)
{
    struct dz_session_limits l;
    char tok[DZ_SESSION_TOKEN_LEN + 1];

    dz_session_limits_default(&l);
    memset(out, 0, sizeof(*out));
    snprintf(out->fin, sizeof(out->fin), "%s", fin);
    snprintf(out->method, sizeof(out->method), "password");
    out->amr = DZ_AMR_PWD;
    snprintf(out->acr, sizeof(out->acr), "low");
    out->auth_time = 1;
    assert_int_equal(dz_session_create(s, &l, out, tok), 0);
    out->created_ms = created; /* order them for the test */
    assert_int_equal(dz_sessidx_add(s, out, "127.0.0.1", created), 0);
}

static void test_sessions_listed_and_ended(void **state)
{
    struct dz_store *s = mk();
    struct dz_session a, b, other;
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    size_t n = 0, ended = 0;

    (void)state;
    login(s, FIN, 2000, &b);
    login(s, FIN, 1000, &a);
    login(s, "7XYZ987", 1500, &other);
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(e[0].sid, a.sid, 32); /* oldest first */
    assert_string_equal(e[1].addr, "127.0.0.1");
    /* nobody ends another person's session */
    assert_int_equal(dz_sessidx_end(s, FIN, other.sid), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_sessidx_end(s, FIN, b.sid), 0);
    {
        uint64_t left = 0;

        assert_int_equal(dz_store_ttl(s, DZ_SESSION_NS, b.sid, 32, &left), DZ_ERR_NOTFOUND);
    }
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, 1);
    /* a logged-out session's slot is found dead and freed */
    assert_int_equal(dz_store_del(s, DZ_SESSION_NS, a.sid, 32), 0);
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dz_sessidx_end_all(s, "7XYZ987", NULL, NULL, &ended), 0);
    assert_int_equal(ended, 1);
    dz_store_free(s);
}

static void test_full_ends_oldest(void **state)
{
    struct dz_store *s = mk();
    struct dz_session first, x;
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    size_t n = 0;
    uint64_t left = 0;

    (void)state;
    login(s, FIN, 1000, &first);
    for (int i = 1; i < DZ_SESSIDX_SLOTS; i++)
        login(s, FIN, 1000 + i, &x);
    login(s, FIN, 5000, &x); /* one more than the slots */
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, DZ_SESSIDX_SLOTS);
    assert_int_equal(dz_store_ttl(s, DZ_SESSION_NS, first.sid, 32, &left), DZ_ERR_NOTFOUND);
    assert_memory_equal(e[DZ_SESSIDX_SLOTS - 1].sid, x.sid, 32);
    dz_store_free(s);
}

/* A slot holding something that is not a slot entry (another version's,
 * shorter or longer than ours) is freed, never trusted, and never keeps
 * the person from logging in or listing their sessions. */
static void test_foreign_slot_values_freed(void **state)
{
    static const size_t lens[] = {1, 87, 89, 300, 60000};
    struct dz_store *s = mk();
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    struct dz_session x;
    unsigned char key[DZ_FIN_LEN + 1], *junk = malloc(60000);
    size_t n = 0;

    (void)state;
    assert_non_null(junk);
    memset(junk, 'j', 60000);
    memcpy(key, FIN, DZ_FIN_LEN);
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        key[DZ_FIN_LEN] = (unsigned char)i;
        assert_int_equal(dz_store_put(s, DZ_SESSIDX_NS, key, sizeof(key), junk,
                                      lens[i % (sizeof(lens) / sizeof(lens[0]))], 600000, 0),
                         0);
    }
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dz_store_count(s, DZ_SESSIDX_NS), 0);
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        key[DZ_FIN_LEN] = (unsigned char)i;
        assert_int_equal(dz_store_put(s, DZ_SESSIDX_NS, key, sizeof(key), junk, 300, 600000, 0), 0);
    }
    login(s, FIN, 1000, &x);
    assert_int_equal(dz_sessidx_list(s, FIN, e, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(e[0].sid, x.sid, 32);
    free(junk);
    dz_store_free(s);
}

/* Eight logins of one person at once on a full list, two hundred times: every
 * one listed, none refused, none left out (sessidx_race.h). */
static void test_full_list_racing_logins(void **state)
{
    struct dz_store *s = mk();

    (void)state;
    sessidx_race(s, "5ABC124", 200);
    dz_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_code_once),
        cmocka_unit_test(test_bound_to_document_and_tries),
        cmocka_unit_test(test_racing_tries_over_budget_refused),
        cmocka_unit_test(test_spent_code_count_kept),
        cmocka_unit_test(test_expiry_and_reissue),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_sessions_listed_and_ended),
        cmocka_unit_test(test_full_ends_oldest),
        cmocka_unit_test(test_foreign_slot_values_freed),
        cmocka_unit_test(test_full_list_racing_logins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
