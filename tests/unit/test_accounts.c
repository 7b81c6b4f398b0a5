/* test_accounts.c - accounts over the SQLite backend (gateway/state/accounts.c,
 * gateway/state/accounts_sqlite.c) in a temporary directory, with cheap argon2id
 * parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/err.h"
#include "state/accounts.h"
#include "state/totp.h"

static const struct dz_argon2_params cheap = {64, 1, 1};
static const unsigned char rfc_key[20] = "12345678901234567890";

struct fx {
    char dir[64];
    char path[128];
    unsigned char key[DZ_SEED_KEY_LEN];
    struct dz_accounts *a;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    memcpy(f->dir, "/tmp/test_accounts_XXXXXX", 26);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/accounts.db", f->dir);
    memset(f->key, 0x42, sizeof(f->key));
    assert_int_equal(dz_accounts_open(f->path, f->key, &cheap, &f->a), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[160];

    dz_accounts_close(f->a);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_params(void **state)
{
    struct dz_argon2_params p = {DZ_ARGON2_DEFAULT_M_KIB, DZ_ARGON2_DEFAULT_T, DZ_ARGON2_DEFAULT_P};
    struct fx *f = *state;
    struct dz_accounts *a = (struct dz_accounts *)1;

    assert_int_equal(dz_argon2_params_check(&p), 0);
    p.parallelism = 0;
    assert_int_equal(dz_argon2_params_check(&p), DZ_ERR_INVAL);
    p.parallelism = 4;
    p.m_cost_kib = 31;
    assert_int_equal(dz_argon2_params_check(&p), DZ_ERR_INVAL);
    p.m_cost_kib = 32;
    p.t_cost = 0;
    assert_int_equal(dz_argon2_params_check(&p), DZ_ERR_INVAL);
    assert_int_equal(dz_argon2_params_check(NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_open(f->path, f->key, &p, &a), DZ_ERR_INVAL);
    assert_null(a);
    assert_int_equal(dz_accounts_open("/nonexistent/dir/x.db", f->key, &cheap, &a), DZ_ERR_DB);
    assert_null(a);
}

static void test_create_verify(void **state)
{
    struct fx *f = *state;
    struct dz_account_info info;
    struct stat st;
    bool ok = true;
    uint64_t d0;

    assert_int_equal(dz_accounts_create(f->a, "ABC1234", "correct horse", 13, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_create(f->a, "ABC1234", "another pass", 12, NULL, 0),
                     DZ_ERR_EXISTS);
    assert_int_equal(dz_accounts_create(f->a, "NOTOTP1", "pw without totp", 15, NULL, 0), 0);

    d0 = dz_accounts_dummy_verifications(f->a);
    assert_int_equal(dz_accounts_verify_password(f->a, "ABC1234", "correct horse", 13, &ok, &info),
                     0);
    assert_true(ok);
    assert_string_equal(info.fin, "ABC1234");
    assert_true(info.has_totp);
    assert_false(info.totp_active);
    assert_true(info.created_at > 1700000000);
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0);

    /* wrong password: same account path, no dummy */
    assert_int_equal(dz_accounts_verify_password(f->a, "ABC1234", "correct horsE", 13, &ok, &info),
                     0);
    assert_false(ok);
    assert_string_equal(info.fin, "");
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0);
    /* a prefix is not the password (length is part of it) */
    assert_int_equal(dz_accounts_verify_password(f->a, "ABC1234", "correct horse", 12, &ok, &info),
                     0);
    assert_false(ok);

    /* unknown FIN: refused, and the dummy hash was verified */
    assert_int_equal(dz_accounts_verify_password(f->a, "ZZZ9999", "correct horse", 13, &ok, &info),
                     0);
    assert_false(ok);
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0 + 1);
    assert_int_equal(dz_accounts_verify_password(f->a, "ZZZ9999", "", 0, &ok, &info), 0);
    assert_false(ok);
    assert_int_equal(dz_accounts_dummy_verifications(f->a), d0 + 2);

    assert_int_equal(
        dz_accounts_verify_password(f->a, "NOTOTP1", "pw without totp", 15, &ok, &info), 0);
    assert_true(ok);
    assert_false(info.has_totp);
    assert_false(info.totp_active);

    /* bad arguments */
    assert_int_equal(dz_accounts_verify_password(f->a, "abc1234", "x", 1, &ok, &info),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_create(f->a, "ABC123", "x", 1, NULL, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_create(f->a, "NEW0001", "", 0, NULL, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_create(f->a, "NEW0001", "x", DZ_PASSWORD_MAX + 1, NULL, 0),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_create(f->a, "NEW0001", "x", 1, rfc_key, DZ_ACCOUNT_SEED_MAX + 1),
                     DZ_ERR_INVAL);
    {
        char big[DZ_PASSWORD_MAX + 2];

        memset(big, 'a', sizeof(big));
        assert_int_equal(dz_accounts_verify_password(f->a, "ABC1234", big, sizeof(big), &ok, &info),
                         0);
        assert_false(ok);
        assert_int_equal(dz_accounts_create(f->a, "NEW0002", big, DZ_PASSWORD_MAX, NULL, 0), 0);
        assert_int_equal(
            dz_accounts_verify_password(f->a, "NEW0002", big, DZ_PASSWORD_MAX, &ok, &info), 0);
        assert_true(ok);
    }

    /* the database file is private */
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(dz_accounts_delete(f->a, "NOTOTP1"), 0);
    assert_int_equal(dz_accounts_delete(f->a, "NOTOTP1"), DZ_ERR_NOTFOUND);
    assert_int_equal(
        dz_accounts_verify_password(f->a, "NOTOTP1", "pw without totp", 15, &ok, &info), 0);
    assert_false(ok);
}

/* Search haystack for needle (binary). */
static bool contains(const unsigned char *h, size_t hn, const void *needle, size_t nn)
{
    size_t i;

    for (i = 0; nn && i + nn <= hn; i++)
        if (memcmp(h + i, needle, nn) == 0)
            return true;
    return false;
}

static void scan_file(const char *path, const void *needle, size_t nn, bool *found)
{
    unsigned char *buf;
    FILE *fp = fopen(path, "rb");
    long n;

    if (!fp)
        return;
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    if (contains(buf, (size_t)n, needle, nn))
        *found = true;
    free(buf);
}

static void test_seed_encrypted_at_rest(void **state)
{
    struct fx *f = *state;
    unsigned char seed[DZ_TOTP_SECRET_LEN];
    char b32[DZ_TOTP_B32_MAX];
    char wal[160];
    bool found = false;
    sqlite3 *db;
    sqlite3_stmt *st;
    const char *pw = "a very distinct password 8f2k";

    assert_int_equal(dz_totp_secret_new(seed), 0);
    assert_int_equal(dz_totp_base32(seed, sizeof(seed), b32, sizeof(b32)), 0);
    assert_int_equal(dz_accounts_create(f->a, "SEED001", pw, strlen(pw), seed, sizeof(seed)), 0);
    /* look at every byte while open (the row is in the WAL), then after a
     * close has checkpointed it into the main file */
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    scan_file(wal, seed, sizeof(seed), &found);
    scan_file(wal, b32, strlen(b32), &found);
    scan_file(wal, pw, strlen(pw), &found);
    assert_false(found);
    {
        /* and the scan does find what is there: the FIN is stored in clear */
        bool fin_found = false;

        scan_file(wal, "SEED001", 7, &fin_found);
        scan_file(f->path, "SEED001", 7, &fin_found);
        assert_true(fin_found);
    }
    dz_accounts_close(f->a);
    f->a = NULL;
    scan_file(f->path, seed, sizeof(seed), &found);
    scan_file(f->path, b32, strlen(b32), &found);
    scan_file(f->path, pw, strlen(pw), &found);
    scan_file(wal, seed, sizeof(seed), &found);
    scan_file(wal, b32, strlen(b32), &found);
    scan_file(wal, pw, strlen(pw), &found);
    assert_false(found);

    /* the stored row has a 1+12+20+16 byte blob and an argon2id hash */
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT length(totp_seed), pwd_hash, totp_active, "
                                        "totp_last_step FROM accounts WHERE fin='SEED001'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1 + 12 + 20 + 16);
    assert_true(
        strncmp((const char *)sqlite3_column_text(st, 1), "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
    assert_int_equal(sqlite3_column_int(st, 2), 0);
    assert_int_equal(sqlite3_column_int(st, 3), -1);
    sqlite3_finalize(st);

    /* moving the blob onto another account's row does not decrypt (AAD=FIN) */
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO accounts SELECT 'SEED002', pwd_hash, totp_seed, 0,"
                                  " -1, created_at, updated_at FROM accounts WHERE fin='SEED001'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(dz_accounts_open(f->path, f->key, &cheap, &f->a), 0);
    {
        char code[DZ_TOTP_CODE_MAX + 1];
        enum dz_accounts_otp v = DZ_ACCOUNTS_OTP_OK;
        unsigned char other[DZ_SEED_KEY_LEN];
        struct dz_accounts *a2 = NULL;

        assert_int_equal(dz_totp_generate(seed, sizeof(seed), 1700000000, 6, code), 0);
        assert_int_equal(
            dz_accounts_totp_check_and_consume(f->a, "SEED002", code, 1700000000, 1, &v),
            DZ_ERR_CRYPTO);
        assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
        /* a different seed key cannot read it either */
        memset(other, 0x43, sizeof(other));
        assert_int_equal(dz_accounts_open(f->path, other, &cheap, &a2), 0);
        v = DZ_ACCOUNTS_OTP_OK;
        assert_int_equal(dz_accounts_totp_check_and_consume(a2, "SEED001", code, 1700000000, 1, &v),
                         DZ_ERR_CRYPTO);
        assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
        dz_accounts_close(a2);
        /* the right key and FIN: accepted */
        assert_int_equal(
            dz_accounts_totp_check_and_consume(f->a, "SEED001", code, 1700000000, 1, &v), 0);
        assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);
    }
}

static void test_totp_replay(void **state)
{
    struct fx *f = *state;
    struct dz_account_info info;
    char code[DZ_TOTP_CODE_MAX + 1];
    enum dz_accounts_otp v;
    const int64_t t = 1700000000; /* step 56666666 */
    bool ok;

    assert_int_equal(dz_accounts_create(f->a, "OTP0001", "pw", 2, rfc_key, 20), 0);

    /* wrong code: BAD, nothing consumed, not active */
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", "000000", t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", "12345", t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
    assert_int_equal(dz_accounts_verify_password(f->a, "OTP0001", "pw", 2, &ok, &info), 0);
    assert_true(ok);
    assert_false(info.totp_active);

    /* the current code: OK, and TOTP becomes active */
    assert_int_equal(dz_totp_generate(rfc_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);
    assert_int_equal(dz_accounts_verify_password(f->a, "OTP0001", "pw", 2, &ok, &info), 0);
    assert_true(info.totp_active);

    /* the same code again, a few seconds later: replay */
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t + 5, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    /* the previous step's code, still inside the window: below the last step */
    assert_int_equal(dz_totp_generate(rfc_key, 20, t - 30, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    /* the next step's code (clock drift): accepted once */
    assert_int_equal(dz_totp_generate(rfc_key, 20, t + 30, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);
    /* now even the code of the current step is behind the last step */
    assert_int_equal(dz_totp_generate(rfc_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    /* two steps ahead: outside the window */
    assert_int_equal(dz_totp_generate(rfc_key, 20, t + 90, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);

    /* persisted, not in memory: a reopened handle still refuses */
    dz_accounts_close(f->a);
    assert_int_equal(dz_accounts_open(f->path, f->key, &cheap, &f->a), 0);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t + 30, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t + 30, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t + 60, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t + 60, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);

    /* no TOTP enrolled, unknown FIN, bad args */
    assert_int_equal(dz_accounts_create(f->a, "NOTOTP2", "pw", 2, NULL, 0), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "NOTOTP2", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_NONE);
    v = DZ_ACCOUNTS_OTP_OK;
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "NOONE00", code, t, 1, &v),
                     DZ_ERR_NOTFOUND);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
    assert_int_equal(
        dz_accounts_totp_check_and_consume(f->a, "OTP0001", code, t, DZ_TOTP_WINDOW_MAX + 1, &v),
        DZ_ERR_INVAL);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "OTP0001", NULL, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD);
}

/* The step only moves forward, also when the database is written behind
 * our back (a second handle standing for a concurrent login). */
static void test_step_monotonic_two_handles(void **state)
{
    struct fx *f = *state;
    struct dz_accounts *b = NULL;
    char code[DZ_TOTP_CODE_MAX + 1];
    enum dz_accounts_otp v;
    const int64_t t = 1800000000;

    assert_int_equal(dz_accounts_create(f->a, "MONO001", "pw", 2, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_open(f->path, f->key, &cheap, &b), 0);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(b, "MONO001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "MONO001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    dz_accounts_close(b);
}

/* A backend whose read is stale (what a concurrent login looks like between
 * the SELECT and the UPDATE): the conditional UPDATE must still refuse. */
static const struct dz_accounts_ops *real_ops;
static int stale_get(void *impl, const char *fin, struct dz_account_rec *out)
{
    int rc = real_ops->get(impl, fin, out);

    if (rc == 0)
        out->totp_last_step = -1;
    return rc;
}

static void test_conditional_update(void **state)
{
    struct fx *f = *state;
    struct dz_accounts_ops stale;
    struct dz_accounts *s = NULL;
    void *impl = NULL;
    char code[DZ_TOTP_CODE_MAX + 1];
    enum dz_accounts_otp v;
    const int64_t t = 1900000000;

    real_ops = &dz_accounts_sqlite_ops;
    stale = dz_accounts_sqlite_ops;
    stale.get = stale_get;
    assert_int_equal(dz_accounts_create(f->a, "RACE001", "pw", 2, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_sqlite_open(f->path, &impl), 0);
    assert_int_equal(dz_accounts_new(&stale, impl, f->key, &cheap, &s), 0);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(s, "RACE001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);
    assert_int_equal(dz_accounts_totp_check_and_consume(s, "RACE001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED);
    dz_accounts_close(s);
}

/* A backend whose read is followed at once by a TOTP reset (what a login
 * racing the reset looks like between its SELECT and its UPDATE): the code
 * of the replaced seed must not pass, nor mark the new seed used. */
static const unsigned char reset_key[20] = "resetresetresetreset";
static struct dz_accounts *resetter; /* another instance, on the same file */
static int reset_after_get(void *impl, const char *fin, struct dz_account_rec *out)
{
    static const unsigned char new_key[20] = "a-new-seed-a-new-see";
    int rc = real_ops->get(impl, fin, out);

    if (rc == 0 && out->totp_seed_len > 0)
        rc = dz_accounts_set_totp(resetter, fin, new_key, sizeof(new_key));
    return rc;
}

static void test_reset_between_read_and_update(void **state)
{
    struct fx *f = *state;
    struct dz_accounts_ops racing;
    struct dz_accounts *s = NULL;
    struct dz_account_info info;
    void *impl = NULL;
    char code[DZ_TOTP_CODE_MAX + 1];
    enum dz_accounts_otp v;
    const int64_t t = 1900000000;
    bool ok;

    real_ops = &dz_accounts_sqlite_ops;
    racing = dz_accounts_sqlite_ops;
    racing.get = reset_after_get;
    resetter = f->a;
    assert_int_equal(dz_accounts_create(f->a, "RESET01", "pw", 2, reset_key, 20), 0);
    assert_int_equal(dz_accounts_sqlite_open(f->path, &impl), 0);
    assert_int_equal(dz_accounts_new(&racing, impl, f->key, &cheap, &s), 0);
    assert_int_equal(dz_totp_generate(reset_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(s, "RESET01", code, t, 1, &v), 0);
    assert_int_not_equal(v, DZ_ACCOUNTS_OTP_OK);
    dz_accounts_close(s);
    /* the new seed is still enrolled, not active: nobody has used it */
    assert_int_equal(dz_accounts_verify_password(f->a, "RESET01", "pw", 2, &ok, &info), 0);
    assert_true(ok);
    assert_false(info.totp_active);
}

/* Self-service: a new password leaves the TOTP state alone; a new TOTP
 * seed starts with no step used, as active as the old one was, and the old
 * seed stops. */
static void test_set_password_and_totp(void **state)
{
    struct fx *f = *state;
    static const unsigned char new_key[20] = "abcdefghijabcdefghij";
    struct dz_account_info info;
    char code[DZ_TOTP_CODE_MAX + 1];
    enum dz_accounts_otp v;
    const int64_t t = 1700000000;
    bool ok;

    assert_int_equal(dz_accounts_create(f->a, "SET0001", "old-pw", 6, rfc_key, 20), 0);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "SET0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK);

    assert_int_equal(dz_accounts_set_password(f->a, "SET0001", "new-pw", 6), 0);
    assert_int_equal(dz_accounts_verify_password(f->a, "SET0001", "old-pw", 6, &ok, &info), 0);
    assert_false(ok);
    assert_int_equal(dz_accounts_verify_password(f->a, "SET0001", "new-pw", 6, &ok, &info), 0);
    assert_true(ok);
    assert_true(info.totp_active); /* untouched */
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "SET0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_REPLAYED); /* the replay state too */

    assert_int_equal(dz_accounts_set_totp(f->a, "SET0001", new_key, sizeof(new_key)), 0);
    assert_int_equal(dz_accounts_verify_password(f->a, "SET0001", "new-pw", 6, &ok, &info), 0);
    assert_true(ok);
    /* still active: the password alone does not become enough */
    assert_true(info.totp_active);
    assert_int_equal(dz_totp_generate(rfc_key, 20, t + 30, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "SET0001", code, t + 30, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_BAD); /* the old authenticator */
    assert_int_equal(dz_totp_generate(new_key, 20, t, 6, code), 0);
    assert_int_equal(dz_accounts_totp_check_and_consume(f->a, "SET0001", code, t, 1, &v), 0);
    assert_int_equal(v, DZ_ACCOUNTS_OTP_OK); /* an earlier step than before: state reset */

    /* an account whose TOTP was never used stays not active */
    assert_int_equal(dz_accounts_create(f->a, "SET0002", "pw", 2, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_set_totp(f->a, "SET0002", new_key, sizeof(new_key)), 0);
    assert_int_equal(dz_accounts_verify_password(f->a, "SET0002", "pw", 2, &ok, &info), 0);
    assert_true(ok);
    assert_false(info.totp_active);

    assert_int_equal(dz_accounts_set_password(f->a, "NONE001", "x", 1), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_accounts_set_totp(f->a, "NONE001", new_key, 20), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_accounts_set_password(f->a, "bad", "x", 1), DZ_ERR_INVAL);
}

/* The stored hash of fin (for the caller to free). */
static char *stored_hash(const struct fx *f, const char *fin)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *h;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT pwd_hash FROM accounts WHERE fin = ?1", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, fin, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    h = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_non_null(h);
    return h;
}

/* The configured cost, higher than the cheap one the accounts were made
 * with (as after raising accounts.argon2_* in the config). */
static const struct dz_argon2_params raised = {128, 2, 1};
#define RAISED_HEAD "$argon2id$v=19$m=128,t=2,p=1$"
#define CHEAP_HEAD "$argon2id$v=19$m=64,t=1,p=1$"

/* A hash made with older parameters answers a wrong password in its own
 * time, not the dummy hash's: the first successful login stores the
 * password hashed with the configured parameters; a wrong one changes
 * nothing. */
static void test_rehash_old_parameters(void **state)
{
    struct fx *f = *state;
    struct dz_account_info info;
    struct dz_accounts *b = NULL;
    bool ok, same;
    char *h;

    assert_int_equal(dz_accounts_create(f->a, "OLD0001", "old-pw", 6, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_open(f->path, f->key, &raised, &b), 0);

    assert_int_equal(dz_accounts_verify_password(b, "OLD0001", "wrong", 5, &ok, &info), 0);
    assert_false(ok);
    h = stored_hash(f, "OLD0001");
    assert_true(strncmp(h, CHEAP_HEAD, strlen(CHEAP_HEAD)) == 0);
    free(h);

    assert_int_equal(dz_accounts_verify_password(b, "OLD0001", "old-pw", 6, &ok, &info), 0);
    assert_true(ok);
    h = stored_hash(f, "OLD0001");
    assert_true(strncmp(h, RAISED_HEAD, strlen(RAISED_HEAD)) == 0);
    free(h);
    /* The login's tag is of the hash now stored: its check after listing
     * its session passes. */
    assert_int_equal(dz_accounts_unchanged(b, "OLD0001", info.cred_tag, &same), 0);
    assert_true(same);
    /* The same password still signs in, on either instance, and a login
     * with the configured parameters stores nothing new. */
    h = stored_hash(f, "OLD0001");
    assert_int_equal(dz_accounts_verify_password(b, "OLD0001", "old-pw", 6, &ok, &info), 0);
    assert_true(ok);
    {
        char *h2 = stored_hash(f, "OLD0001");

        assert_string_equal(h, h2);
        free(h2);
    }
    free(h);
    assert_int_equal(dz_accounts_verify_password(f->a, "OLD0001", "old-pw", 6, &ok, &info), 0);
    assert_true(ok);
    dz_accounts_close(b);
}

/* A password change lands between the login's read and its rehash: the
 * rehash must not write the old password back over the new one, and the
 * login's tag must tell its check after listing that the change won. */
static struct dz_accounts *changer; /* another instance, on the same file */
static int change_after_get(void *impl, const char *fin, struct dz_account_rec *out)
{
    int rc = real_ops->get(impl, fin, out);

    if (rc == 0 && changer) {
        rc = dz_accounts_set_password(changer, fin, "changed-pw", 10);
        changer = NULL; /* once */
    }
    return rc;
}

static void test_rehash_loses_to_change(void **state)
{
    struct fx *f = *state;
    struct dz_accounts_ops racing;
    struct dz_account_info info;
    struct dz_accounts *b = NULL;
    void *impl = NULL;
    bool ok, same = true;
    char *h;

    real_ops = &dz_accounts_sqlite_ops;
    racing = dz_accounts_sqlite_ops;
    racing.get = change_after_get;
    assert_int_equal(dz_accounts_create(f->a, "OLD0002", "old-pw", 6, rfc_key, 20), 0);
    assert_int_equal(dz_accounts_sqlite_open(f->path, &impl), 0);
    assert_int_equal(dz_accounts_new(&racing, impl, f->key, &raised, &b), 0);
    changer = f->a;
    assert_int_equal(dz_accounts_verify_password(b, "OLD0002", "old-pw", 6, &ok, &info), 0);
    assert_true(ok); /* it was the password when it was read */
    assert_null(changer);
    assert_int_equal(dz_accounts_unchanged(b, "OLD0002", info.cred_tag, &same), 0);
    assert_false(same);
    dz_accounts_close(b);

    /* The change stands: made with the cheap instance, not rehashed. */
    h = stored_hash(f, "OLD0002");
    assert_true(strncmp(h, CHEAP_HEAD, strlen(CHEAP_HEAD)) == 0);
    free(h);
    assert_int_equal(dz_accounts_verify_password(f->a, "OLD0002", "old-pw", 6, &ok, &info), 0);
    assert_false(ok);
    assert_int_equal(dz_accounts_verify_password(f->a, "OLD0002", "changed-pw", 10, &ok, &info), 0);
    assert_true(ok);
}

static void test_corrupt_rows(void **state)
{
    struct fx *f = *state;
    struct dz_account_info info;
    sqlite3 *db;
    bool ok = true;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO accounts VALUES('BAD0001','not a hash',NULL,0,-1,0,0);"
                     "INSERT INTO accounts VALUES('BAD0002','$argon2id$x',"
                     "zeroblob(200),0,-1,0,0);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dz_accounts_verify_password(f->a, "BAD0001", "pw", 2, &ok, &info),
                     DZ_ERR_PARSE);
    assert_false(ok);
    assert_int_equal(dz_accounts_verify_password(f->a, "BAD0002", "pw", 2, &ok, &info), DZ_ERR_DB);
    assert_false(ok);

    /* an unknown schema version is refused at open */
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    {
        struct dz_accounts *a2 = (struct dz_accounts *)1;

        assert_int_equal(dz_accounts_open(f->path, f->key, &cheap, &a2), DZ_ERR_DB);
        assert_null(a2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_encrypted_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_totp_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_monotonic_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditional_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_between_read_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_password_and_totp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehash_old_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehash_loses_to_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
