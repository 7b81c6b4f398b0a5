/*
 * auth_password.c - password login and registration decisions; see
 * auth_password.h.  Owns no state of its own: accounts live in accounts.c,
 * failure counters and locks in the ephemeral store.  It must never tell a
 * client whether a FIN has an account (same answer, same work for unknown
 * FINs and wrong passwords), never verify a password for a locked FIN or
 * address, never copy or log a password or a code, and never let an error
 * become an allow.
 */
#include "auth/auth_password.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/qrsvg.h"
#include "base/secret.h"
#include "state/accounts.h"
#include "state/store.h"

#include "base/compat.h"

#define NS_FAIL_FIN "fail_fin"
#define NS_FAIL_IP "fail_ip"
#define NS_LOCK_FIN "lock_fin"
#define NS_LOCK_IP "lock_ip"
#define NS_FAIL_PAIR "fail_pair"
#define NS_LOCK_PAIR "lock_pair"
#define NS_FAIL_CONSEC "fail_consec"
#define NS_LOCK_HARD "lock_hard"
#define PAIR_KEY_MAX (DZ_FIN_LEN + sizeof(((struct dz_addr_key *)0)->b))
#define URI_MAX 1024

static void put_be64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Milliseconds a lock still has to run (0 when none).  The lock holds its
 * end time, compared with the caller's clock, so time is injectable and the
 * store's TTL only collects it. */
static int lock_left(struct dz_store *s, const char *ns, const void *key, size_t key_len,
                     int64_t now_ms, uint64_t *left_ms)
{
    struct dz_buf b;
    uint64_t until;
    int rc;

    *left_ms = 0;
    dz_buf_init(&b, 64);
    rc = dz_store_get(s, ns, key, key_len, &b);
    if (rc == DZ_ERR_NOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (b.len != 8) {
        rc = DZ_ERR_PARSE; /* not ours: fail closed rather than ignore it */
        goto out;
    }
    until = get_be64((const unsigned char *)b.data);
    if (now_ms >= 0 && until > (uint64_t)now_ms)
        *left_ms = until - (uint64_t)now_ms;
out:
    dz_buf_cleanup(&b);
    return rc;
}

static uint32_t to_retry_after(uint64_t left_ms)
{
    uint64_t s = (left_ms + 999) / 1000;

    if (s < 1)
        s = 1;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Lock (ns_lock, key) until now + ms. */
static int put_lock(const struct dz_auth_password_ctx *ctx, const char *ns_lock, const void *key,
                    size_t key_len, int64_t now_ms, uint64_t ms)
{
    unsigned char until[8];

    put_be64(until, (uint64_t)now_ms + ms);
    return dz_store_put(ctx->store, ns_lock, key, key_len, until, sizeof(until), ms, 0);
}

/* Count one failure under (ns_fail, key); at limit, lock (ns_lock, key)
 * for lockout.duration_ms and start a fresh count. */
static int count_failure(const struct dz_auth_password_ctx *ctx, const char *ns_fail,
                         const char *ns_lock, const void *key, size_t key_len, unsigned limit,
                         int64_t now_ms)
{
    int64_t n = 0;
    int rc;

    rc = dz_store_incr(ctx->store, ns_fail, key, key_len, ctx->lockout.window_ms, &n);
    if (rc < 0)
        return rc;
    if (limit == 0 || n < (int64_t)limit)
        return 0;
    rc = put_lock(ctx, ns_lock, key, key_len, now_ms, ctx->lockout.duration_ms);
    if (rc < 0)
        return rc;
    /* A fresh count after the lock: the lock is the penalty, not a hair
     * trigger that relocks on the first mistake after it ends. */
    rc = dz_store_del(ctx->store, ns_fail, key, key_len);
    return rc == DZ_ERR_NOTFOUND ? 0 : rc;
}

/* The FIN from everywhere: past fin_attempts failures in the window, each
 * failure makes the FIN wait fin_delay_ms, doubled per failure, at most
 * duration_ms.  Loose on purpose: anyone can fail for any FIN, so this
 * only slows guessing; it never shuts the person out for long. */
static int count_fin_failure(const struct dz_auth_password_ctx *ctx, const char *fin,
                             int64_t now_ms)
{
    const struct dz_auth_lockout *l = &ctx->lockout;
    uint64_t delay = l->fin_delay_ms;
    int64_t n = 0;
    int rc;

    rc = dz_store_incr(ctx->store, NS_FAIL_FIN, fin, DZ_FIN_LEN, l->window_ms, &n);
    if (rc < 0 || l->fin_attempts == 0 || n < (int64_t)l->fin_attempts || delay == 0)
        return rc < 0 ? rc : 0;
    for (int64_t i = l->fin_attempts; i < n && delay < l->duration_ms; i++)
        delay *= 2;
    if (delay > l->duration_ms)
        delay = l->duration_ms;
    return put_lock(ctx, NS_LOCK_FIN, fin, DZ_FIN_LEN, now_ms, delay);
}

/* The hard cap: fin_limit consecutive failures (no success in between,
 * within fin_limit_window_ms) close password login for the FIN until the
 * person signs in another way (dz_auth_password_forgive). */
static int count_consecutive(const struct dz_auth_password_ctx *ctx, const char *fin,
                             int64_t now_ms)
{
    const struct dz_auth_lockout *l = &ctx->lockout;
    int64_t n = 0;
    int rc;

    if (l->fin_limit == 0 || l->fin_limit_window_ms == 0)
        return 0;
    rc = dz_store_incr(ctx->store, NS_FAIL_CONSEC, fin, DZ_FIN_LEN, l->fin_limit_window_ms, &n);
    if (rc < 0 || n < (int64_t)l->fin_limit)
        return rc < 0 ? rc : 0;
    return put_lock(ctx, NS_LOCK_HARD, fin, DZ_FIN_LEN, now_ms, l->fin_limit_window_ms);
}

static size_t pair_key(const char *fin, const struct dz_addr_key *ak, unsigned char *out)
{
    memcpy(out, fin, DZ_FIN_LEN);
    memcpy(out + DZ_FIN_LEN, ak->b, ak->len);
    return DZ_FIN_LEN + ak->len;
}

/* Every counter a failure feeds.  Any that cannot be kept fails the whole
 * attempt (the caller answers state_unavailable): a guess is never let
 * through uncounted. */
static int count_login_failure(const struct dz_auth_password_ctx *ctx, const char *fin,
                               const struct dz_addr_key *ak, int64_t now_ms)
{
    unsigned char pk[PAIR_KEY_MAX];
    size_t pk_len = pair_key(fin, ak, pk);
    int rc;

    rc = count_failure(ctx, NS_FAIL_PAIR, NS_LOCK_PAIR, pk, pk_len, ctx->lockout.pair_attempts,
                       now_ms);
    if (rc == 0)
        rc = count_failure(ctx, NS_FAIL_IP, NS_LOCK_IP, ak->b, ak->len,
                           ctx->lockout.address_attempts, now_ms);
    if (rc == 0)
        rc = count_fin_failure(ctx, fin, now_ms);
    if (rc == 0)
        rc = count_consecutive(ctx, fin, now_ms);
    return rc;
}

static int del_quiet(struct dz_store *s, const char *ns, const void *key, size_t len)
{
    int rc = dz_store_del(s, ns, key, len);
    return rc == DZ_ERR_NOTFOUND ? 0 : rc;
}

int dz_auth_password_forgive(struct dz_store *store, const char *fin)
{
    int rc;

    if (!store || !dz_fin_is_normal(fin))
        return DZ_ERR_INVAL;
    rc = del_quiet(store, NS_FAIL_FIN, fin, DZ_FIN_LEN);
    if (rc == 0)
        rc = del_quiet(store, NS_LOCK_FIN, fin, DZ_FIN_LEN);
    if (rc == 0)
        rc = del_quiet(store, NS_FAIL_CONSEC, fin, DZ_FIN_LEN);
    if (rc == 0)
        rc = del_quiet(store, NS_LOCK_HARD, fin, DZ_FIN_LEN);
    return rc;
}

static bool ctx_ok(const struct dz_auth_password_ctx *ctx)
{
    return ctx && ctx->accounts && ctx->store && ctx->lockout.window_ms > 0 &&
           ctx->lockout.duration_ms > 0;
}

int dz_auth_password(const struct dz_auth_password_ctx *ctx, const char *fin_raw,
                     const char *password, size_t pw_len, const char *otp, const char *client_ip,
                     int64_t now_ms, struct dz_auth_password_result *out)
{
    struct dz_account_info info;
    struct dz_addr_key ak;
    enum dz_accounts_otp verdict = DZ_ACCOUNTS_OTP_BAD;
    bool ok = false;
    bool has_otp;
    int rc;

    if (!out)
        return DZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->decision = DZ_PWD_BAD_CREDENTIALS;
    out->reason = "error";
    memset(&info, 0, sizeof(info));
    if (!ctx_ok(ctx) || (!password && pw_len) || now_ms < 0) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    rc = dz_addr_key(client_ip, &ak);
    if (rc < 0)
        goto out;

    /* 1. syntax: purely about the text, so it says nothing about accounts */
    if (!fin_raw || dz_fin_normalize(fin_raw, strnlen(fin_raw, DZ_FIN_LEN + 1), out->fin) < 0) {
        out->decision = DZ_PWD_INVALID_FIN;
        out->reason = "invalid_fin";
        rc = 0;
        goto out;
    }

    /* 2. locks, before any password work.  Known and unknown FINs are
     * counted and locked alike, so LOCKED says nothing about accounts. */
    {
        unsigned char pk[PAIR_KEY_MAX];
        size_t pk_len = pair_key(out->fin, &ak, pk);
        static const char *const reasons[] = {"locked_fin_hard", "locked_pair", "locked_address",
                                              "locked_fin"};
        uint64_t left[4] = {0, 0, 0, 0};
        size_t worst = 0;

        rc = lock_left(ctx->store, NS_LOCK_HARD, out->fin, DZ_FIN_LEN, now_ms, &left[0]);
        if (rc == 0)
            rc = lock_left(ctx->store, NS_LOCK_PAIR, pk, pk_len, now_ms, &left[1]);
        if (rc == 0)
            rc = lock_left(ctx->store, NS_LOCK_IP, ak.b, ak.len, now_ms, &left[2]);
        if (rc == 0)
            rc = lock_left(ctx->store, NS_LOCK_FIN, out->fin, DZ_FIN_LEN, now_ms, &left[3]);
        if (rc < 0)
            goto out;
        for (size_t i = 1; i < 4; i++) {
            if (left[i] > left[worst])
                worst = i;
        }
        if (left[worst]) {
            out->decision = DZ_PWD_LOCKED;
            out->reason = reasons[worst];
            out->retry_after = to_retry_after(left[worst]);
            goto out;
        }
    }

    /* 3. the password: argon2id, against a dummy hash for unknown FINs */
    rc = dz_accounts_verify_password(ctx->accounts, out->fin, password ? password : "", pw_len, &ok,
                                     &info);
    if (rc < 0)
        goto out;
    if (!ok) {
        out->reason = "bad_password";
        rc = count_login_failure(ctx, out->fin, &ak, now_ms);
        goto out;
    }

    /* 4. the one-time code; otp_required only now that the password is right */
    has_otp = otp && otp[0];
    if (!has_otp) {
        if (info.totp_active) {
            out->decision = DZ_PWD_OTP_REQUIRED;
            out->reason = "otp_required";
            goto out;
        }
        out->decision = DZ_PWD_OK;
        out->reason = "ok";
        out->amr = DZ_AMR_PWD;
        out->acr = "low";
    } else if (!info.has_totp) {
        /* A code we cannot check must not pass for a second factor. */
        out->reason = "otp_not_enrolled";
        rc = count_login_failure(ctx, out->fin, &ak, now_ms);
        goto out;
    } else {
        rc = dz_accounts_totp_check_and_consume(ctx->accounts, out->fin, otp, now_ms / 1000,
                                                ctx->totp_window, &verdict);
        if (rc < 0)
            goto out;
        if (verdict != DZ_ACCOUNTS_OTP_OK) {
            out->reason = verdict == DZ_ACCOUNTS_OTP_REPLAYED ? "otp_replayed"
                          : verdict == DZ_ACCOUNTS_OTP_NONE   ? "otp_not_enrolled"
                                                              : "otp_wrong";
            rc = count_login_failure(ctx, out->fin, &ak, now_ms);
            goto out;
        }
        out->decision = DZ_PWD_OK;
        out->reason = "ok_otp";
        out->amr = DZ_AMR_PWD | DZ_AMR_OTP;
        out->acr = "substantial";
    }

    memcpy(out->cred_tag, info.cred_tag, sizeof(out->cred_tag));

    /* Success forgets this FIN's failures.  The address's stay: one account
     * the attacker owns must not reset the count of guesses at others. */
    rc = del_quiet(ctx->store, NS_FAIL_FIN, out->fin, DZ_FIN_LEN);
    if (rc == 0)
        rc = del_quiet(ctx->store, NS_FAIL_CONSEC, out->fin, DZ_FIN_LEN);
    if (rc == 0) {
        unsigned char pk[PAIR_KEY_MAX];
        size_t pk_len = pair_key(out->fin, &ak, pk);

        rc = del_quiet(ctx->store, NS_FAIL_PAIR, pk, pk_len);
    }
out:
    if (rc < 0 && out) {
        /* fail closed: an error is never a login */
        char fin[DZ_FIN_LEN + 1];

        memcpy(fin, out->fin, sizeof(fin));
        memset(out, 0, sizeof(*out));
        memcpy(out->fin, fin, sizeof(fin));
        out->decision = DZ_PWD_BAD_CREDENTIALS;
        out->reason = "error";
    }
    dz_secret_wipe(&info, sizeof(info));
    return rc;
}

bool dz_auth_utf8_check(const char *p, size_t len, size_t *chars)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    size_t n = 0;

    if (chars)
        *chars = 0;
    if (!p && len)
        return false;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t need;
        size_t j;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, C0/C1 overlong lead, or > U+10FFFF */
        }
        if (len - i - 1 < need)
            return false;
        for (j = 1; j <= need; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
        n++;
    }
    if (chars)
        *chars = n;
    return true;
}

/* ASCII case-insensitive equality of a password with an identifier. */
static bool same_as_id(const char *pw, size_t pw_len, const char *id)
{
    size_t n = strlen(id);
    size_t i;

    if (n == 0 || pw_len != n)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char a = (unsigned char)pw[i];
        unsigned char b = (unsigned char)id[i];

        if (a >= 'a' && a <= 'z')
            a = (unsigned char)(a - 'a' + 'A');
        if (b >= 'a' && b <= 'z')
            b = (unsigned char)(b - 'a' + 'A');
        if (a != b)
            return false;
    }
    return true;
}

bool dz_auth_password_rules_ok(const struct dz_auth_password_ctx *ctx, const char *password,
                               size_t pw_len, const char *fin, const char *document,
                               const char **reason)
{
    size_t chars = 0;

    *reason = "password_too_long";
    if (!ctx || (!password && pw_len) || pw_len > DZ_PASSWORD_MAX_BYTES)
        return false;
    *reason = "password_not_utf8";
    if (!dz_auth_utf8_check(password, pw_len, &chars))
        return false;
    *reason = "password_too_short";
    if (chars < ctx->password_min_length || chars == 0)
        return false;
    *reason = "password_is_identifier";
    if ((fin && same_as_id(password, pw_len, fin)) ||
        (document && same_as_id(password, pw_len, document)))
        return false;
    *reason = "valid";
    return true;
}

int dz_auth_count_address_failure(const struct dz_auth_password_ctx *ctx, const char *client_ip,
                                  int64_t now_ms)
{
    struct dz_addr_key ak;
    int rc;

    if (!ctx_ok(ctx) || now_ms < 0)
        return DZ_ERR_INVAL;
    rc = dz_addr_key(client_ip, &ak);
    if (rc < 0)
        return rc;
    return count_failure(ctx, NS_FAIL_IP, NS_LOCK_IP, ak.b, ak.len, ctx->lockout.address_attempts,
                         now_ms);
}

int dz_auth_register_validate(const struct dz_auth_password_ctx *ctx, const char *fin_raw,
                              const char *document_raw, const char *password, size_t pw_len,
                              const char *client_ip, int64_t now_ms,
                              struct dz_auth_register_input *out)
{
    struct dz_addr_key ak;
    uint64_t left = 0;
    int rc;

    if (!out)
        return DZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->decision = DZ_REG_REFUSED;
    out->reason = "error";
    if (!ctx_ok(ctx) || !ctx->docpat || !fin_raw || !document_raw || (!password && pw_len) ||
        now_ms < 0)
        return DZ_ERR_INVAL;
    rc = dz_addr_key(client_ip, &ak);
    if (rc < 0)
        return rc;

    rc = lock_left(ctx->store, NS_LOCK_IP, ak.b, ak.len, now_ms, &left);
    if (rc < 0)
        return rc;
    if (left) {
        out->decision = DZ_REG_LOCKED;
        out->reason = "locked_address";
        out->retry_after = to_retry_after(left);
        return 0;
    }
    if (dz_fin_normalize(fin_raw, strnlen(fin_raw, DZ_FIN_LEN + 1), out->fin) < 0) {
        out->decision = DZ_REG_INVALID_FIN;
        out->reason = "invalid_fin";
        return 0;
    }
    if (dz_docpat_match(ctx->docpat, document_raw, strnlen(document_raw, DZ_DOC_INPUT_MAX + 1),
                        out->document, sizeof(out->document)) < 0) {
        out->decision = DZ_REG_INVALID_DOCUMENT;
        out->reason = "invalid_document";
        return 0;
    }
    out->decision = DZ_REG_WEAK_PASSWORD;
    if (!dz_auth_password_rules_ok(ctx, password, pw_len, out->fin, out->document, &out->reason))
        return 0;
    out->decision = DZ_REG_VALID;
    out->reason = "valid";
    return 0;
}

void dz_auth_register_result_cleanup(struct dz_auth_register_result *r)
{
    if (!r)
        return;
    dz_secret_free_str(r->otpauth_uri);
    dz_secret_free_str(r->qr_svg);
    dz_secret_wipe(r, sizeof(*r));
}

int dz_auth_register_create(const struct dz_auth_password_ctx *ctx, const char *fin,
                            const char *password, size_t pw_len, bool document_matches,
                            const char *client_ip, int64_t now_ms,
                            struct dz_auth_register_result *out)
{
    unsigned char secret[DZ_TOTP_SECRET_LEN];
    struct dz_addr_key ak;
    struct dz_buf uri;
    int rc;

    if (!out)
        return DZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->decision = DZ_REG_REFUSED;
    out->reason = "error";
    dz_buf_init(&uri, URI_MAX);
    if (!ctx_ok(ctx) || !dz_fin_is_normal(fin) || !password || pw_len == 0 ||
        pw_len > DZ_PASSWORD_MAX_BYTES || now_ms < 0) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    rc = dz_addr_key(client_ip, &ak);
    if (rc < 0)
        goto out;
    memcpy(out->fin, fin, DZ_FIN_LEN + 1);

    if (!document_matches) {
        /* The same argon2id work as a creation, then the same refusal as
         * for an existing account. */
        rc = dz_accounts_equalize(ctx->accounts, password, pw_len);
        if (rc == 0)
            rc = count_failure(ctx, NS_FAIL_IP, NS_LOCK_IP, ak.b, ak.len,
                               ctx->lockout.address_attempts, now_ms);
        out->reason = "document_mismatch";
        goto out;
    }

    /* Everything the answer needs is made before the account exists, so a
     * failure here cannot leave an account whose secret nobody saw. */
    rc = dz_totp_secret_new(secret);
    if (rc == 0)
        rc = dz_totp_base32(secret, sizeof(secret), out->secret_b32, sizeof(out->secret_b32));
    if (rc == 0)
        rc = dz_totp_uri(fin, out->secret_b32, &uri);
    if (rc == 0) {
        out->otpauth_uri = dz_buf_steal(&uri, NULL);
        rc = out->otpauth_uri ? 0 : DZ_ERR_NOMEM;
    }
    if (rc == 0)
        rc = dz_qrsvg_render(out->otpauth_uri, &out->qr_svg);
    if (rc < 0)
        goto out;

    rc = dz_accounts_create(ctx->accounts, fin, password, pw_len, secret, sizeof(secret));
    if (rc == DZ_ERR_EXISTS) {
        out->reason = "account_exists";
        rc = count_failure(ctx, NS_FAIL_IP, NS_LOCK_IP, ak.b, ak.len, ctx->lockout.address_attempts,
                           now_ms);
        goto out;
    }
    if (rc < 0)
        goto out;
    out->decision = DZ_REG_CREATED;
    out->reason = "created";
out:
    dz_secret_wipe(secret, sizeof(secret));
    dz_buf_wipe(&uri);
    if (out->decision != DZ_REG_CREATED) {
        /* Nothing of a secret that was not stored leaves this function. */
        const char *reason = rc < 0 ? "error" : out->reason;
        char f[DZ_FIN_LEN + 1];

        memcpy(f, out->fin, sizeof(f));
        dz_auth_register_result_cleanup(out);
        memcpy(out->fin, f, sizeof(f));
        out->decision = DZ_REG_REFUSED;
        out->reason = reason;
    }
    return rc;
}
