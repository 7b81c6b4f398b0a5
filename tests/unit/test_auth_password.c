/* test_auth_password.c - the password login and registration decision table
 * (gateway/auth/auth_password.c) over real accounts (SQLite in a temporary
 * directory, cheap argon2id) and the in-memory store, with an injected
 * clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth_password.h"
#include "base/err.h"
#include "base/fin.h"
#include "state/accounts.h"
#include "state/store.h"
#include "state/totp.h"

static const struct dz_argon2_params cheap = {64, 1, 1};
static const unsigned char rfc_key[20] = "12345678901234567890";

#define T0 1700000000000LL /* ms; step 56666666 */
#define IP "192.0.2.10"

struct fx {
    char dir[64];
    char path[128];
    struct dz_accounts *a;
    struct dz_store *s;
    struct dz_docpat *dp;
    struct dz_auth_password_ctx ctx;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    unsigned char key[DZ_SEED_KEY_LEN];

    assert_non_null(f);
    memcpy(f->dir, "/tmp/test_authpw_XXXXXX", 24);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/accounts.db", f->dir);
    memset(key, 7, sizeof(key));
    assert_int_equal(dz_accounts_open(f->path, key, &cheap, &f->a), 0);
    assert_int_equal(dz_store_mem_new(4, NULL, &f->s), 0);
    assert_int_equal(dz_docpat_compile(DZ_DOCPAT_DEFAULT, &f->dp, NULL, 0), 0);
    f->ctx.accounts = f->a;
    f->ctx.store = f->s;
    f->ctx.lockout.pair_attempts = 3;
    f->ctx.lockout.fin_attempts = 3;
    f->ctx.lockout.fin_delay_ms = 1000;
    f->ctx.lockout.fin_limit = 100;
    f->ctx.lockout.fin_limit_window_ms = 3600 * 1000;
    f->ctx.lockout.address_attempts = 5;
    f->ctx.lockout.window_ms = 15 * 60 * 1000;
    f->ctx.lockout.duration_ms = 5 * 60 * 1000;
    f->ctx.totp_window = 1;
    f->ctx.password_min_length = 10;
    f->ctx.docpat = f->dp;
    /* one account with TOTP enrolled (not active), one without TOTP */
    assert_int_equal(dz_accounts_create(f->a, "ABC1234", "good password", 13, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_create(f->a, "NOTOTP1", "good password", 13, NULL, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    dz_accounts_close(f->a);
    dz_store_free(f->s);
    dz_docpat_free(f->dp);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct dz_auth_password_result login_at(struct fx *f, const char *fin, const char *pw,
                                               const char *otp, const char *ip, int64_t now)
{
    struct dz_auth_password_result r;

    assert_int_equal(dz_auth_password(&f->ctx, fin, pw, strlen(pw), otp, ip, now, &r), 0);
    return r;
}

static struct dz_auth_password_result login(struct fx *f, const char *fin, const char *pw,
                                            const char *otp)
{
    return login_at(f, fin, pw, otp, IP, T0);
}

static void code_at(int64_t ms, char out[DZ_TOTP_CODE_MAX + 1])
{
    assert_int_equal(dz_totp_generate(rfc_key, 20, ms / 1000, 6, out), 0);
}

static void test_ok_low_and_bad(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    uint64_t d0;

    r = login(f, "abc1234", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.fin, "ABC1234");
    assert_int_equal(r.amr, DZ_AMR_PWD);
    assert_string_equal(r.acr, "low");
    assert_string_equal(r.reason, "ok");
    assert_int_equal(r.retry_after, 0);
    r = login(f, "ABC1234", "good password", ""); /* empty code = none */
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "low");

    r = login(f, "ABC1234", "bad password", NULL);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_int_equal(r.amr, 0);
    assert_null(r.acr);
    assert_string_equal(r.reason, "bad_password");

    /* unknown FIN: the same decision, after the same (dummy) argon2id work */
    d0 = dz_accounts_dummy_verifications(f->a);
    r = login(f, "ZZZ0000", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "bad_password");
    assert_string_equal(r.fin, "ZZZ0000");
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0 + 1);
    /* ...also with a code: no otp_* reason can tell it apart */
    r = login(f, "ZZZ0001", "good password", "123456");
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "bad_password");

    r = login(f, "NOTOTP1", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "low");
    /* a code for an account without TOTP is not a second factor */
    r = login(f, "NOTOTP1", "good password", "123456");
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "otp_not_enrolled");
}

static void test_invalid_fin(void **state)
{
    static const char *const bad[] = {"", "ABC123", "ABC12345", "ABC 234", "ÄBC1234", "ABC-234"};
    struct fx *f = *state;
    struct dz_auth_password_result r;
    uint64_t d0 = dz_accounts_dummy_verifications(f->a);
    size_t i;
    int k;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = login(f, bad[i], "good password", NULL);
        assert_int_equal(r.decision, DZ_PWD_INVALID_FIN);
        assert_string_equal(r.fin, "");
        assert_string_equal(r.reason, "invalid_fin");
    }
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0); /* no password work */
    /* syntax errors do not count as failures: the address is not locked */
    for (k = 0; k < 10; k++)
        (void)login(f, "bad", "x", NULL);
    r = login(f, "ABC1234", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
}

static void test_totp_flow(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    char code[DZ_TOTP_CODE_MAX + 1];

    f->ctx.lockout.fin_attempts = 100; /* this test is about codes, not locks */
    f->ctx.lockout.pair_attempts = 100;
    f->ctx.lockout.address_attempts = 100;
    /* enrolled, not active: a wrong code is refused and does not activate */
    r = login(f, "ABC1234", "good password", "000000");
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "otp_wrong");
    r = login(f, "ABC1234", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "low");

    /* the first right code activates TOTP */
    code_at(T0, code);
    r = login(f, "ABC1234", "good password", code);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_int_equal(r.amr, DZ_AMR_PWD | DZ_AMR_OTP);
    assert_string_equal(r.acr, "substantial");
    assert_string_equal(r.reason, "ok_otp");

    /* from now on a code is required - but only a right password learns that */
    r = login_at(f, "ABC1234", "good password", NULL, IP, T0 + 1000);
    assert_int_equal(r.decision, DZ_PWD_OTP_REQUIRED);
    assert_int_equal(r.amr, 0);
    assert_null(r.acr);
    r = login_at(f, "ABC1234", "wrong password", NULL, IP, T0 + 1000);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    r = login_at(f, "ABC1234", "wrong password", code, IP, T0 + 1000);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "bad_password");

    /* the same code again: replay */
    r = login_at(f, "ABC1234", "good password", code, IP, T0 + 2000);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "otp_replayed");
    /* the next step's code: fine */
    code_at(T0 + 30000, code);
    r = login_at(f, "ABC1234", "good password", code, IP, T0 + 30000);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "substantial");
    /* a code two steps away from the clock: refused */
    code_at(T0 + 120000, code);
    r = login_at(f, "ABC1234", "good password", code, IP, T0 + 60000);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "otp_wrong");
    /* malformed codes are just wrong codes */
    r = login_at(f, "ABC1234", "good password", "12345a", IP, T0 + 60000);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_string_equal(r.reason, "otp_wrong");
}

/* Failures of one FIN from one address lock that pair only: the attacker
 * at that address, not the person elsewhere. */
static void test_pair_lockout(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    const int64_t dur = 5 * 60 * 1000;
    uint64_t d0;
    int i;

    f->ctx.lockout.address_attempts = 100; /* this test is about the pair lock */
    f->ctx.lockout.fin_attempts = 100;
    /* 3 failures lock the pair; the 3rd still answers bad_credentials */
    for (i = 0; i < 3; i++) {
        r = login(f, "ABC1234", "nope", NULL);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    }
    r = login(f, "ABC1234", "good password", NULL); /* even the right password */
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_pair");
    assert_int_equal(r.retry_after, dur / 1000);
    assert_int_equal(r.amr, 0);
    /* Retry-After counts down with the clock, rounding up */
    r = login_at(f, "ABC1234", "good password", NULL, IP, T0 + 100500);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_int_equal(r.retry_after, (dur - 100500 + 999) / 1000);
    r = login_at(f, "ABC1234", "good password", NULL, IP, T0 + dur - 1);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_int_equal(r.retry_after, 1);
    /* the person, from another address, is not locked out meanwhile */
    r = login_at(f, "ABC1234", "good password", NULL, "198.51.100.1", T0 + 1000);
    assert_int_equal(r.decision, DZ_PWD_OK);
    /* after the lock: the right password works from the first address too */
    r = login_at(f, "ABC1234", "good password", NULL, IP, T0 + dur);
    assert_int_equal(r.decision, DZ_PWD_OK);

    /* an unknown FIN locks exactly the same way, and while locked no
     * argon2id runs for it either */
    for (i = 0; i < 3; i++) {
        r = login(f, "QQQ1111", "nope", NULL);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    }
    d0 = dz_accounts_dummy_verifications(f->a);
    r = login(f, "QQQ1111", "nope", NULL);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_pair");
    assert_int_equal(r.retry_after, dur / 1000);
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0);
    /* lower case is the same FIN */
    r = login(f, "qqq1111", "nope", NULL);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
}

/* The FIN from everywhere: past fin_attempts, each failure makes the FIN
 * wait, 1 s doubling up to lockout.duration, whatever the address. */
static void test_fin_delays(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    const uint64_t dur = 300000;
    int64_t t = T0;
    char ip[32];
    int i;

    f->ctx.lockout.address_attempts = 1000;
    f->ctx.lockout.pair_attempts = 1000;
    /* three failures from three addresses: the third starts a 1 s delay */
    for (i = 0; i < 3; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
        r = login_at(f, "NOTOTP1", "nope", NULL, ip, t);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    }
    r = login_at(f, "NOTOTP1", "good password", NULL, "192.0.2.200", t);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_fin");
    assert_int_equal(r.retry_after, 1);
    /* each further failure (once the delay is over) doubles it, up to the
     * lock duration */
    uint64_t delay = 1000;
    for (i = 0; i < 10; i++) {
        t += (int64_t)delay;
        delay = delay * 2 > dur ? dur : delay * 2;
        snprintf(ip, sizeof(ip), "198.51.100.%d", 10 + i);
        r = login_at(f, "NOTOTP1", "nope", NULL, ip, t);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
        r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.99", t);
        assert_int_equal(r.decision, DZ_PWD_LOCKED);
        assert_int_equal(r.retry_after, delay / 1000);
    }
    assert_int_equal(delay, dur); /* capped */
    /* after the delay the right password works and forgets the count */
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.99", t + (int64_t)delay);
    assert_int_equal(r.decision, DZ_PWD_OK);
    r = login_at(f, "NOTOTP1", "nope", NULL, "203.0.113.99", t + (int64_t)delay);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.99", t + (int64_t)delay);
    assert_int_equal(r.decision, DZ_PWD_OK);
}

/* NIST SP 800-63B: a hard cap of consecutive failures closes password login
 * for the FIN until the person proves who they are another way. */
static void test_hard_limit(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    char ip[32];
    int i;

    f->ctx.lockout.address_attempts = 1000;
    f->ctx.lockout.pair_attempts = 1000;
    f->ctx.lockout.fin_attempts = 1000;
    f->ctx.lockout.fin_limit = 5;
    /* a success in between starts the count again */
    for (i = 0; i < 4; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%d", 10 + i);
        assert_int_equal(login_at(f, "NOTOTP1", "nope", NULL, ip, T0).decision,
                         DZ_PWD_BAD_CREDENTIALS);
    }
    assert_int_equal(login(f, "NOTOTP1", "good password", NULL).decision, DZ_PWD_OK);
    for (i = 0; i < 5; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%d", 20 + i);
        assert_int_equal(login_at(f, "NOTOTP1", "nope", NULL, ip, T0).decision,
                         DZ_PWD_BAD_CREDENTIALS);
    }
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.1", T0 + 60000);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_fin_hard");
    assert_int_equal(r.retry_after, 3600 - 60);
    /* a card, mobile or QR login forgives: password login opens again */
    assert_int_equal(dz_auth_password_forgive(f->s, "NOTOTP1"), 0);
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.1", T0 + 60000);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_int_equal(dz_auth_password_forgive(f->s, "not a fin"), DZ_ERR_INVAL);
}

static void test_success_resets_fin_count(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    int round;

    f->ctx.lockout.address_attempts = 1000;
    for (round = 0; round < 3; round++) {
        r = login(f, "NOTOTP1", "nope", NULL);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
        r = login(f, "NOTOTP1", "nope", NULL);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
        r = login(f, "NOTOTP1", "good password", NULL);
        assert_int_equal(r.decision, DZ_PWD_OK);
    }
    /* without the reset those were 6 failures: now 3 in a row lock */
    for (round = 0; round < 3; round++)
        (void)login(f, "NOTOTP1", "nope", NULL);
    r = login(f, "NOTOTP1", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
}

static void test_otp_failures_count(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    char code[DZ_TOTP_CODE_MAX + 1];
    int i;

    code_at(T0, code);
    r = login(f, "ABC1234", "good password", code); /* activate */
    assert_int_equal(r.decision, DZ_PWD_OK);
    /* otp_required does not count: many of them lock nothing */
    for (i = 0; i < 10; i++) {
        r = login(f, "ABC1234", "good password", NULL);
        assert_int_equal(r.decision, DZ_PWD_OTP_REQUIRED);
    }
    /* wrong and replayed codes do count */
    r = login(f, "ABC1234", "good password", "000000");
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    r = login(f, "ABC1234", "good password", code);
    assert_string_equal(r.reason, "otp_replayed");
    r = login(f, "ABC1234", "good password", "111111");
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    code_at(T0 + 30000, code);
    r = login_at(f, "ABC1234", "good password", code, IP, T0 + 30000);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
}

static void test_address_lockout(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    char fin[8];
    int i;

    f->ctx.lockout.fin_attempts = 100;
    /* 5 failures from one address, each on a different FIN */
    for (i = 0; i < 5; i++) {
        snprintf(fin, sizeof(fin), "ADR%04u", (unsigned)i % 10000u);
        r = login_at(f, fin, "nope", NULL, "203.0.113.7", T0);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    }
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.7", T0);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_address");
    assert_int_equal(r.retry_after, 300);
    /* IPv4-mapped IPv6 is the same address */
    r = login_at(f, "NOTOTP1", "good password", NULL, "::ffff:203.0.113.7", T0);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    /* another address is not affected */
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.8", T0);
    assert_int_equal(r.decision, DZ_PWD_OK);
    /* IPv6: one /64 counts as one address */
    for (i = 0; i < 5; i++) {
        char ip[64];

        snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
        snprintf(fin, sizeof(fin), "SIX%04u", (unsigned)i % 10000u);
        r = login_at(f, fin, "nope", NULL, ip, T0);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    }
    r = login_at(f, "NOTOTP1", "good password", NULL, "2001:db8:1:2:ffff::1", T0);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    assert_string_equal(r.reason, "locked_address");
    r = login_at(f, "NOTOTP1", "good password", NULL, "2001:db8:1:3::1", T0);
    assert_int_equal(r.decision, DZ_PWD_OK);
    /* the lock ends */
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.7", T0 + 300000);
    assert_int_equal(r.decision, DZ_PWD_OK);
    /* a success did not clear the address count: a fresh one begins after
     * the lock, so 5 new failures are needed again */
    for (i = 0; i < 4; i++) {
        snprintf(fin, sizeof(fin), "NEW%04u", (unsigned)i % 10000u);
        r = login_at(f, fin, "nope", NULL, "203.0.113.7", T0 + 300000);
        assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
        r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.7", T0 + 300000);
        assert_int_equal(r.decision, DZ_PWD_OK);
    }
    r = login_at(f, "NEW9999", "nope", NULL, "203.0.113.7", T0 + 300000);
    r = login_at(f, "NOTOTP1", "good password", NULL, "203.0.113.7", T0 + 300000);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
}

static void test_failure_window(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;

    /* the store's clock runs the window: keep it short and really wait */
    f->ctx.lockout.window_ms = 150;
    r = login(f, "NOTOTP1", "nope", NULL);
    r = login(f, "NOTOTP1", "nope", NULL);
    usleep(300 * 1000);
    r = login(f, "NOTOTP1", "nope", NULL); /* the first two have expired */
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    r = login(f, "NOTOTP1", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct dz_auth_password_result r;
    struct dz_auth_password_ctx c = f->ctx;

    assert_int_equal(dz_auth_password(&f->ctx, "ABC1234", "good password", 13, NULL, NULL, T0, &r),
                     DZ_ERR_INVAL);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_int_equal(dz_auth_password(&f->ctx, "ABC1234", "good password", 13, NULL, "", T0, &r),
                     DZ_ERR_INVAL);
    c.store = NULL;
    assert_int_equal(dz_auth_password(&c, "ABC1234", "good password", 13, NULL, IP, T0, &r),
                     DZ_ERR_INVAL);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_int_equal(dz_auth_password(&f->ctx, "ABC1234", NULL, 5, NULL, IP, T0, &r), DZ_ERR_INVAL);
    assert_int_equal(dz_auth_password(&f->ctx, "ABC1234", "x", 1, NULL, IP, T0, NULL),
                     DZ_ERR_INVAL);
    /* a lock entry that is not ours fails closed */
    assert_int_equal(dz_store_put(f->s, "lock_fin", "ABC1234", 7, "xx", 2, 60000, 0), 0);
    assert_int_equal(dz_auth_password(&f->ctx, "ABC1234", "good password", 13, NULL, IP, T0, &r),
                     DZ_ERR_PARSE);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);
    assert_int_equal(r.amr, 0);
    /* an odd but non-empty address string is a key of its own */
    r = login_at(f, "NOTOTP1", "good password", NULL, "unix:/run/x.sock", T0);
    assert_int_equal(r.decision, DZ_PWD_OK);
}

static void test_utf8(void **state)
{
    size_t n = 99;

    (void)state;
    assert_true(dz_auth_utf8_check("abc", 3, &n));
    assert_int_equal(n, 3);
    assert_true(dz_auth_utf8_check("Ərazi ŞÇĞ ü 😀", strlen("Ərazi ŞÇĞ ü 😀"), &n));
    assert_int_equal(n, 13);
    assert_true(dz_auth_utf8_check("", 0, &n));
    assert_int_equal(n, 0);
    assert_false(dz_auth_utf8_check("a\0b", 3, &n));           /* NUL */
    assert_false(dz_auth_utf8_check("\xc0\xaf", 2, NULL));     /* overlong '/' */
    assert_false(dz_auth_utf8_check("\xe0\x80\xaf", 3, NULL)); /* overlong */
    assert_false(dz_auth_utf8_check("\xf0\x80\x80\xaf", 4, NULL));
    assert_false(dz_auth_utf8_check("\xed\xa0\x80", 3, NULL));     /* surrogate */
    assert_false(dz_auth_utf8_check("\xf4\x90\x80\x80", 4, NULL)); /* > U+10FFFF */
    assert_false(dz_auth_utf8_check("\xf5\x80\x80\x80", 4, NULL));
    assert_false(dz_auth_utf8_check("\x80", 1, NULL)); /* lone continuation */
    assert_false(dz_auth_utf8_check("\xc3", 1, NULL)); /* truncated */
    assert_false(dz_auth_utf8_check("\xe2\x82", 2, NULL));
    assert_false(dz_auth_utf8_check("\xc3\x28", 2, NULL));
    assert_false(dz_auth_utf8_check("\xff", 1, NULL));
    assert_true(dz_auth_utf8_check("\xf4\x8f\xbf\xbf", 4, &n)); /* U+10FFFF */
    assert_int_equal(n, 1);
}

static struct dz_auth_register_input validate(struct fx *f, const char *fin, const char *doc,
                                              const char *pw, const char *ip)
{
    struct dz_auth_register_input in;

    assert_int_equal(dz_auth_register_validate(&f->ctx, fin, doc, pw, strlen(pw), ip, T0, &in), 0);
    return in;
}

static void test_register_validate(void **state)
{
    struct fx *f = *state;
    struct dz_auth_register_input in;
    char big[DZ_PASSWORD_MAX_BYTES + 2];

    in = validate(f, "new1234", "aa 123 4567", "a long enough password", IP);
    assert_int_equal(in.decision, DZ_REG_VALID);
    assert_string_equal(in.fin, "NEW1234");
    assert_string_equal(in.document, "AA1234567");
    assert_string_equal(in.reason, "valid");

    in = validate(f, "NEW123", "AA1234567", "a long enough password", IP);
    assert_int_equal(in.decision, DZ_REG_INVALID_FIN);
    in = validate(f, "NEW1234", "AA123456", "a long enough password", IP);
    assert_int_equal(in.decision, DZ_REG_INVALID_DOCUMENT);
    in = validate(f, "NEW1234", "AA1234567", "short", IP);
    assert_int_equal(in.decision, DZ_REG_WEAK_PASSWORD);
    assert_string_equal(in.reason, "password_too_short");
    /* the minimum counts characters, not bytes: 9 two-byte letters are short */
    in = validate(f, "NEW1234", "AA1234567", "ƏƏƏƏƏƏƏƏƏ", IP);
    assert_string_equal(in.reason, "password_too_short");
    in = validate(f, "NEW1234", "AA1234567", "ƏƏƏƏƏƏƏƏƏƏ", IP);
    assert_int_equal(in.decision, DZ_REG_VALID);
    in = validate(f, "NEW1234", "AA1234567", "bad \xc3\x28 utf-8 password", IP);
    assert_string_equal(in.reason, "password_not_utf8");
    memset(big, 'x', sizeof(big));
    assert_int_equal(dz_auth_register_validate(&f->ctx, "NEW1234", "AA1234567", big,
                                               DZ_PASSWORD_MAX_BYTES + 1, IP, T0, &in),
                     0);
    assert_string_equal(in.reason, "password_too_long");
    assert_int_equal(dz_auth_register_validate(&f->ctx, "NEW1234", "AA1234567", big,
                                               DZ_PASSWORD_MAX_BYTES, IP, T0, &in),
                     0);
    assert_int_equal(in.decision, DZ_REG_VALID);
    /* the password may not be the FIN or the document number */
    f->ctx.password_min_length = 7;
    in = validate(f, "NEW1234", "AA1234567", "new1234", IP);
    assert_string_equal(in.reason, "password_is_identifier");
    in = validate(f, "NEW1234", "AA1234567", "aa1234567", IP);
    assert_string_equal(in.reason, "password_is_identifier");
    in = validate(f, "NEW1234", "AA1234567", "new12345", IP);
    assert_int_equal(in.decision, DZ_REG_VALID);
    assert_int_equal(dz_auth_register_validate(&f->ctx, NULL, "AA1234567", "x", 1, IP, T0, &in),
                     DZ_ERR_INVAL);
}

static void test_register_create(void **state)
{
    struct fx *f = *state;
    struct dz_auth_register_result res;
    struct dz_auth_password_result r;
    unsigned char secret[DZ_TOTP_SECRET_MAX];
    char code[DZ_TOTP_CODE_MAX + 1];
    char want[256];
    size_t n;
    uint64_t d0;
    const char *pw = "my new password";

    assert_int_equal(
        dz_auth_register_create(&f->ctx, "NEW1234", pw, strlen(pw), true, IP, T0, &res), 0);
    assert_int_equal(res.decision, DZ_REG_CREATED);
    assert_string_equal(res.reason, "created");
    assert_string_equal(res.fin, "NEW1234");
    assert_int_equal(strlen(res.secret_b32), 32);
    snprintf(want, sizeof(want),
             "otpauth://totp/Darvaza:NEW1234?secret=%s&issuer=Darvaza&algorithm=SHA1&digits=6"
             "&period=30",
             res.secret_b32);
    assert_string_equal(res.otpauth_uri, want);
    assert_non_null(res.qr_svg);
    assert_true(strncmp(res.qr_svg, "<svg ", 5) == 0);
    assert_int_equal(dz_totp_base32_decode(res.secret_b32, secret, sizeof(secret), &n), 0);
    assert_int_equal(n, 20);
    dz_auth_register_result_cleanup(&res);
    assert_null(res.otpauth_uri);

    /* the new account logs in; its first code makes it "substantial" */
    r = login(f, "NEW1234", pw, NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "low");
    assert_int_equal(dz_totp_generate(secret, 20, T0 / 1000, 6, code), 0);
    r = login(f, "NEW1234", pw, code);
    assert_int_equal(r.decision, DZ_PWD_OK);
    assert_string_equal(r.acr, "substantial");
    r = login(f, "NEW1234", pw, NULL);
    assert_int_equal(r.decision, DZ_PWD_OTP_REQUIRED);

    /* existing account and document mismatch: the same refusal, same work */
    d0 = dz_accounts_dummy_verifications(f->a);
    assert_int_equal(
        dz_auth_register_create(&f->ctx, "NEW1234", "other password", 14, true, IP, T0, &res), 0);
    assert_int_equal(res.decision, DZ_REG_REFUSED);
    assert_string_equal(res.reason, "account_exists");
    assert_string_equal(res.secret_b32, "");
    assert_null(res.otpauth_uri);
    assert_null(res.qr_svg);
    dz_auth_register_result_cleanup(&res);
    /* the original password still works: nothing was overwritten */
    r = login(f, "NEW1234", "other password", NULL);
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);

    assert_int_equal(
        dz_auth_register_create(&f->ctx, "NEW5678", "some password", 13, false, IP, T0, &res), 0);
    assert_int_equal(res.decision, DZ_REG_REFUSED);
    assert_string_equal(res.reason, "document_mismatch");
    assert_null(res.otpauth_uri);
    dz_auth_register_result_cleanup(&res);
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0 + 1); /* equalize ran */
    r = login(f, "NEW5678", "some password", NULL);                  /* no account was made */
    assert_int_equal(r.decision, DZ_PWD_BAD_CREDENTIALS);

    assert_int_equal(dz_auth_register_create(&f->ctx, "new5678", "x", 1, true, IP, T0, &res),
                     DZ_ERR_INVAL);
    assert_int_equal(res.decision, DZ_REG_REFUSED);
    dz_auth_register_result_cleanup(&res);
}

static void test_register_refusals_lock_address(void **state)
{
    struct fx *f = *state;
    struct dz_auth_register_result res;
    struct dz_auth_register_input in;
    struct dz_auth_password_result r;
    int i;

    /* guessing documents from one address: 5 refusals lock it */
    for (i = 0; i < 5; i++) {
        in = validate(f, "ABC1234", "AA1234567", "a long enough password", "192.0.2.99");
        assert_int_equal(in.decision, DZ_REG_VALID);
        assert_int_equal(dz_auth_register_create(&f->ctx, in.fin, "a long enough password", 22,
                                                 false, "192.0.2.99", T0, &res),
                         0);
        assert_int_equal(res.decision, DZ_REG_REFUSED);
        dz_auth_register_result_cleanup(&res);
    }
    in = validate(f, "ABC1234", "AA1234567", "a long enough password", "192.0.2.99");
    assert_int_equal(in.decision, DZ_REG_LOCKED);
    assert_string_equal(in.reason, "locked_address");
    assert_int_equal(in.retry_after, 300);
    /* the same lock covers password logins from there */
    r = login_at(f, "NOTOTP1", "good password", NULL, "192.0.2.99", T0);
    assert_int_equal(r.decision, DZ_PWD_LOCKED);
    /* but not the FIN itself: registration refusals do not lock a FIN */
    r = login(f, "ABC1234", "good password", NULL);
    assert_int_equal(r.decision, DZ_PWD_OK);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_ok_low_and_bad),
        FX(test_invalid_fin),
        FX(test_totp_flow),
        FX(test_pair_lockout),
        FX(test_fin_delays),
        FX(test_hard_limit),
        FX(test_success_resets_fin_count),
        FX(test_otp_failures_count),
        FX(test_address_lockout),
        FX(test_failure_window),
        FX(test_bad_args),
        cmocka_unit_test(test_utf8),
        FX(test_register_validate),
        FX(test_register_create),
        FX(test_register_refusals_lock_address),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
