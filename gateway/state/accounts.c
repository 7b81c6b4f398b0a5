/*
 * accounts.c - the storage-independent half of accounts (see accounts.h):
 * argon2id hashing, the dummy hash that hides whether a FIN has an account,
 * AES-256-GCM for TOTP seeds at rest, and TOTP replay refusal.  It owns the
 * seed key and the dummy hash.  It must never log or copy a password, never
 * let a decrypted seed outlive the call that needed it, and never treat an
 * error as a successful check.
 *
 * Seed blob layout (version 1): 0x01 | nonce[12] | ciphertext[seed_len] |
 * tag[16], AES-256-GCM under the seed key with the FIN as additional data,
 * so a seed copied onto another account's row does not decrypt.  The version
 * byte leaves room for key rotation (a key id) later.
 */
#include "state/accounts.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/sha256.h"
#include "state/totp.h"

#include "base/compat.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define BLOB_V1 0x01

struct dz_accounts {
    const struct dz_accounts_ops *ops;
    void *impl;
    unsigned char seed_key[DZ_SEED_KEY_LEN];
    struct dz_argon2_params cost;
    char dummy_hash[DZ_PWD_HASH_MAX]; /* argon2id of a random password nobody knows */
    atomic_uint_fast64_t dummy_count;
};

int dz_argon2_params_check(const struct dz_argon2_params *p)
{
    /* The lower bound is argon2's own (8 KiB per lane, RFC 9106 §3.1); the
     * upper bounds stop a config typo from making every login take minutes
     * or gigabytes on the blocking pool. */
    if (!p || p->parallelism < 1 || p->parallelism > 16 || p->t_cost < 1 || p->t_cost > 100 ||
        p->m_cost_kib < 8u * p->parallelism || p->m_cost_kib > DZ_ARGON2_M_MAX_KIB)
        return DZ_ERR_INVAL;
    return 0;
}

static int map_argon2(int arc)
{
    switch (arc) {
    case ARGON2_OK:
        return 0;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        return DZ_ERR_NOMEM;
    case ARGON2_THREAD_FAIL:
        return DZ_ERR_IO;
    /* Anything else is a parameter or library fault: it must never read as a
     * mismatch (deny) or a match, only as an error the caller refuses on. */
    default:
        return DZ_ERR_CRYPTO;
    }
}

/* Hash pw into out[DZ_PWD_HASH_MAX] with a fresh salt. */
static int hash_password(const struct dz_accounts *a, const void *pw, size_t pw_len, char *out)
{
    unsigned char salt[SALT_LEN];
    int rc;

    out[0] = '\0';
    rc = dz_random(salt, sizeof(salt));
    if (rc < 0)
        return rc;
    rc = map_argon2(argon2id_hash_encoded(a->cost.t_cost, a->cost.m_cost_kib, a->cost.parallelism,
                                          pw, pw_len, salt, sizeof(salt), HASH_LEN, out,
                                          DZ_PWD_HASH_MAX));
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

/* *match on a verified password; DZ_ERR_PARSE when the stored string is not
 * an argon2id hash we can read. */
static int verify_hash(const char *encoded, const void *pw, size_t pw_len, bool *match)
{
    int arc;

    *match = false;
    arc = argon2id_verify(encoded, pw, pw_len);
    if (arc == ARGON2_OK) {
        *match = true;
        return 0;
    }
    /* A mismatch is a decision (match stays false), not an error. */
    if (arc == ARGON2_VERIFY_MISMATCH)
        return 0;
    if (arc == ARGON2_MEMORY_ALLOCATION_ERROR)
        return DZ_ERR_NOMEM;
    /* An unreadable stored hash is an error, never a silent mismatch, so a
     * damaged row is noticed instead of locking its owner out quietly. */
    return DZ_ERR_PARSE;
}

int dz_accounts_new(const struct dz_accounts_ops *ops, void *impl,
                    const unsigned char seed_key[DZ_SEED_KEY_LEN], const struct dz_argon2_params *p,
                    struct dz_accounts **out)
{
    struct dz_accounts *a = NULL;
    unsigned char pw[32];
    int rc;

    *out = NULL;
    if (!ops || !impl || !seed_key) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    rc = dz_argon2_params_check(p);
    if (rc < 0)
        goto out;
    a = calloc(1, sizeof(*a));
    if (!a) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    a->ops = ops;
    a->impl = impl;
    impl = NULL;
    memcpy(a->seed_key, seed_key, DZ_SEED_KEY_LEN);
    a->cost = *p;
    atomic_init(&a->dummy_count, 0);
    rc = dz_random(pw, sizeof(pw));
    if (rc == 0)
        /* Hashed with the configured cost, so a FIN without an account costs
         * the same argon2id work as one with an account (no timing oracle). */
        rc = hash_password(a, pw, sizeof(pw), a->dummy_hash);
    dz_secret_wipe(pw, sizeof(pw));
    if (rc < 0)
        goto out;
    *out = a;
    a = NULL;
out:
    if (impl && ops)
        ops->free(impl);
    dz_accounts_close(a);
    return rc;
}

int dz_accounts_open(const char *path, const unsigned char seed_key[DZ_SEED_KEY_LEN],
                     const struct dz_argon2_params *p, struct dz_accounts **out)
{
    void *impl = NULL;
    int rc;

    *out = NULL;
    rc = dz_argon2_params_check(p);
    if (rc < 0)
        return rc;
    rc = dz_accounts_sqlite_open(path, &impl);
    if (rc < 0)
        return rc;
    return dz_accounts_new(&dz_accounts_sqlite_ops, impl, seed_key, p, out);
}

void dz_accounts_close(struct dz_accounts *a)
{
    if (!a)
        return;
    if (a->impl)
        a->ops->free(a->impl);
    dz_secret_wipe(a, sizeof(*a));
    free(a);
}

/* Encrypt seed into blob (DZ_SEED_BLOB_MAX bytes). */
static int seal_seed(const struct dz_accounts *a, const char *fin, const unsigned char *seed,
                     size_t seed_len, unsigned char *blob, size_t *blob_len)
{
    EVP_CIPHER_CTX *c = NULL;
    unsigned char *nonce = blob + 1;
    unsigned char *ct = blob + 1 + NONCE_LEN;
    int n = 0;
    int fin_n = 0;
    int rc = DZ_ERR_CRYPTO;

    *blob_len = 0;
    blob[0] = BLOB_V1;
    if (dz_random(nonce, NONCE_LEN) < 0)
        goto out;
    c = EVP_CIPHER_CTX_new();
    if (!c)
        goto out;
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, a->seed_key, nonce) != 1 ||
        /* The FIN as AAD binds the blob to its row (header comment).  A fresh
         * random 96-bit nonce per seal is safe for GCM at our volume: seeds are
         * sealed once per enrolment, far below the 2^32 messages per key limit
         * of NIST SP 800-38D §8.3. */
        EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)fin, DZ_FIN_LEN) != 1 ||
        EVP_EncryptUpdate(c, ct, &n, seed, (int)seed_len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + n, &fin_n) != 1 || (size_t)(n + fin_n) != seed_len ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + seed_len) != 1)
        goto out;
    *blob_len = 1 + NONCE_LEN + seed_len + TAG_LEN;
    rc = 0;
out:
    if (rc < 0) {
        dz_log_openssl("accounts_seal");
        dz_secret_wipe(blob, DZ_SEED_BLOB_MAX);
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* Decrypt blob into seed[DZ_ACCOUNT_SEED_MAX]; DZ_ERR_CRYPTO when it does not
 * authenticate (wrong key, other FIN, tampering). */
static int open_seed(const struct dz_accounts *a, const char *fin, const unsigned char *blob,
                     size_t blob_len, unsigned char *seed, size_t *seed_len)
{
    EVP_CIPHER_CTX *c = NULL;
    unsigned char tag[TAG_LEN];
    size_t ct_len;
    int n = 0;
    int fin_n = 0;
    int rc = DZ_ERR_CRYPTO;

    *seed_len = 0;
    if (blob_len < 1 + NONCE_LEN + 1 + TAG_LEN || blob_len > DZ_SEED_BLOB_MAX || blob[0] != BLOB_V1)
        return DZ_ERR_CRYPTO;
    ct_len = blob_len - 1 - NONCE_LEN - TAG_LEN;
    /* Copied because SET_TAG takes a non-const buffer. */
    memcpy(tag, blob + blob_len - TAG_LEN, TAG_LEN);
    c = EVP_CIPHER_CTX_new();
    if (!c)
        goto out;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, a->seed_key, blob + 1) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)fin, DZ_FIN_LEN) != 1 ||
        EVP_DecryptUpdate(c, seed, &n, blob + 1 + NONCE_LEN, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        /* Final is where GCM checks the tag: until it passes, the bytes in seed
         * are unauthenticated and are wiped below on failure. */
        EVP_DecryptFinal_ex(c, seed + n, &fin_n) != 1 || (size_t)(n + fin_n) != ct_len)
        goto out;
    *seed_len = ct_len;
    rc = 0;
out:
    if (rc < 0)
        dz_secret_wipe(seed, DZ_ACCOUNT_SEED_MAX);
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int dz_accounts_create(struct dz_accounts *a, const char *fin, const char *password, size_t pw_len,
                       const unsigned char *totp_seed, size_t seed_len)
{
    struct dz_account_rec rec;
    int rc;

    memset(&rec, 0, sizeof(rec));
    if (!a || !dz_fin_is_normal(fin) || !password || pw_len == 0 || pw_len > DZ_PASSWORD_MAX ||
        seed_len > DZ_ACCOUNT_SEED_MAX || (seed_len && !totp_seed)) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    memcpy(rec.fin, fin, DZ_FIN_LEN + 1);
    rc = hash_password(a, password, pw_len, rec.pwd_hash);
    if (rc < 0)
        goto out;
    if (seed_len) {
        rc = seal_seed(a, fin, totp_seed, seed_len, rec.totp_seed, &rec.totp_seed_len);
        if (rc < 0)
            goto out;
    }
    rec.totp_active = false;
    rec.totp_last_step = -1;
    rec.created_at = (int64_t)time(NULL);
    rec.updated_at = rec.created_at;
    rc = a->ops->insert(a->impl, &rec);
out:
    dz_secret_wipe(&rec, sizeof(rec));
    return rc;
}

/* The credentials of rec as a tag: its password hash (NUL-terminated, so
 * the two parts cannot be shifted into each other) and its sealed seed. */
static int cred_tag(const struct dz_account_rec *rec, unsigned char tag[DZ_ACCOUNT_TAG_LEN])
{
    const struct dz_sha256_part parts[] = {
        {rec->pwd_hash, strnlen(rec->pwd_hash, DZ_PWD_HASH_MAX - 1) + 1},
        {rec->totp_seed, rec->totp_seed_len},
    };

    return dz_sha256_parts(parts, 2, tag);
}

/* Whether encoded was made with the configured cost: the same
 * "$argon2id$v=..$m=..,t=..,p=..$" head as the dummy hash, which was, and
 * the same length (salt and hash sizes).  Not secret: parameters only. */
static bool has_current_cost(const struct dz_accounts *a, const char *encoded)
{
    const char *d = a->dummy_hash;
    size_t head = 0;
    int dollars = 0;

    while (d[head] && dollars < 4)
        if (d[head++] == '$')
            dollars++;
    return strlen(encoded) == strlen(d) && strncmp(encoded, d, head) == 0;
}

/* An account hashed with older, cheaper parameters answers a wrong password
 * faster than the dummy hash answers an unknown FIN: that time would say
 * which FINs have such accounts.  So a successful login stores the password
 * hashed with the configured cost, with a compare-and-set on the hash it
 * verified: a concurrent password change is never overwritten.  On success
 * rec->pwd_hash becomes the new hash.  A failure is logged and leaves the
 * old hash (tried again at the next login); it does not undo the login. */
static void rehash(struct dz_accounts *a, struct dz_account_rec *rec, const char *password,
                   size_t pw_len)
{
    char hash[DZ_PWD_HASH_MAX];
    bool swapped = false;
    int rc = hash_password(a, password, pw_len, hash);

    if (rc == 0)
        rc = a->ops->swap_password(a->impl, rec->fin, rec->pwd_hash, hash, (int64_t)time(NULL),
                                   &swapped);
    if (rc < 0)
        dz_log(DZ_LOG_WARN, "accounts_rehash", "password hash not renewed: %s", dz_err_str(rc));
    else if (swapped)
        memcpy(rec->pwd_hash, hash, sizeof(hash));
    dz_secret_wipe(hash, sizeof(hash));
}

int dz_accounts_verify_password(struct dz_accounts *a, const char *fin, const char *password,
                                size_t pw_len, bool *ok, struct dz_account_info *info)
{
    struct dz_account_rec rec;
    bool match = false;
    bool found;
    int rc;

    *ok = false;
    memset(info, 0, sizeof(*info));
    memset(&rec, 0, sizeof(rec));
    if (!a || !dz_fin_is_normal(fin) || (!password && pw_len)) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    /* Refused without hashing: an attacker cannot make us run argon2 over
     * megabytes.  Such a password can never have been set (create refuses
     * it), so this is a plain mismatch. */
    if (pw_len > DZ_PASSWORD_MAX) {
        rc = 0;
        goto out;
    }
    if (!password)
        password = "";
    rc = a->ops->get(a->impl, fin, &rec);
    if (rc < 0 && rc != DZ_ERR_NOTFOUND)
        goto out;
    found = rc == 0;
    if (!found) {
        /* The same argon2id work as for a real account, then a refusal
         * whatever the outcome. */
        atomic_fetch_add(&a->dummy_count, 1);
        rc = verify_hash(a->dummy_hash, password, pw_len, &match);
        match = false;
        goto out;
    }
    rc = verify_hash(rec.pwd_hash, password, pw_len, &match);
    if (rc < 0 || !match)
        goto out;
    /* The tag is of the hash now stored: the new one if the swap won, else
     * the one verified (so a change that won is seen by the login). */
    if (!has_current_cost(a, rec.pwd_hash))
        rehash(a, &rec, password, pw_len);
    rc = cred_tag(&rec, info->cred_tag);
    if (rc < 0)
        goto out;
    *ok = true;
    memcpy(info->fin, rec.fin, sizeof(info->fin));
    info->has_totp = rec.totp_seed_len > 0;
    info->totp_active = info->has_totp && rec.totp_active;
    info->created_at = rec.created_at;
out:
    if (rc < 0) {
        *ok = false;
        memset(info, 0, sizeof(*info));
    }
    dz_secret_wipe(&rec, sizeof(rec));
    return rc;
}

int dz_accounts_unchanged(struct dz_accounts *a, const char *fin,
                          const unsigned char tag[DZ_ACCOUNT_TAG_LEN], bool *same)
{
    struct dz_account_rec rec;
    unsigned char now_tag[DZ_ACCOUNT_TAG_LEN];
    int rc;

    *same = false;
    memset(&rec, 0, sizeof(rec));
    if (!a || !dz_fin_is_normal(fin) || !tag)
        return DZ_ERR_INVAL;
    rc = a->ops->get(a->impl, fin, &rec);
    if (rc == DZ_ERR_NOTFOUND) {
        rc = 0; /* deleted since: nothing to sign in to */
        goto out;
    }
    if (rc == 0)
        rc = cred_tag(&rec, now_tag);
    if (rc == 0)
        *same = CRYPTO_memcmp(now_tag, tag, DZ_ACCOUNT_TAG_LEN) == 0;
out:
    dz_secret_wipe(&rec, sizeof(rec));
    dz_secret_wipe(now_tag, sizeof(now_tag));
    return rc;
}

int dz_accounts_totp_check_and_consume(struct dz_accounts *a, const char *fin, const char *code,
                                       int64_t now, unsigned window, enum dz_accounts_otp *out)
{
    struct dz_account_rec rec;
    unsigned char seed[DZ_ACCOUNT_SEED_MAX];
    size_t seed_len = 0;
    uint64_t step = 0;
    bool valid = false;
    bool advanced = false;
    int rc;

    *out = DZ_ACCOUNTS_OTP_BAD;
    memset(&rec, 0, sizeof(rec));
    if (!a || !dz_fin_is_normal(fin) || now < 0 || window > DZ_TOTP_WINDOW_MAX) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    rc = a->ops->get(a->impl, fin, &rec);
    if (rc < 0)
        goto out;
    if (rec.totp_seed_len == 0) {
        *out = DZ_ACCOUNTS_OTP_NONE;
        goto out;
    }
    rc = open_seed(a, fin, rec.totp_seed, rec.totp_seed_len, seed, &seed_len);
    if (rc < 0) {
        dz_log(DZ_LOG_ERROR, "accounts_seed", "TOTP seed does not decrypt (seed key changed?)");
        goto out;
    }
    rc = dz_totp_validate(seed, seed_len, code, now, window, DZ_TOTP_DIGITS, &valid, &step);
    if (rc < 0 || !valid)
        goto out;
    /* Steps fit in int64 for any time_t liboath takes. */
    if (step > (uint64_t)INT64_MAX || (int64_t)step <= rec.totp_last_step) {
        *out = DZ_ACCOUNTS_OTP_REPLAYED;
        goto out;
    }
    /* The read above may be stale: the conditional UPDATE is what decides,
     * so of two concurrent logins with the same code exactly one wins, and
     * a code of a seed that a TOTP reset replaced meanwhile never passes
     * (nor marks the new seed used). */
    rc = a->ops->advance_totp(a->impl, fin, (int64_t)step, rec.totp_seed, rec.totp_seed_len, now,
                              &advanced);
    if (rc < 0)
        goto out;
    *out = advanced ? DZ_ACCOUNTS_OTP_OK : DZ_ACCOUNTS_OTP_REPLAYED;
out:
    if (rc < 0)
        *out = DZ_ACCOUNTS_OTP_BAD;
    dz_secret_wipe(seed, sizeof(seed));
    dz_secret_wipe(&rec, sizeof(rec));
    return rc;
}

int dz_accounts_equalize(struct dz_accounts *a, const char *password, size_t pw_len)
{
    bool match = false;
    int rc;

    if (!a || (!password && pw_len))
        return DZ_ERR_INVAL;
    /* Cut, not refused: this only has to cost the same time as a real
     * check, and the result is thrown away. */
    if (pw_len > DZ_PASSWORD_MAX)
        pw_len = DZ_PASSWORD_MAX;
    atomic_fetch_add(&a->dummy_count, 1);
    rc = verify_hash(a->dummy_hash, password ? password : "", pw_len, &match);
    return rc == DZ_ERR_NOMEM ? rc : 0;
}

int dz_accounts_set_password(struct dz_accounts *a, const char *fin, const char *password,
                             size_t pw_len)
{
    char hash[DZ_PWD_HASH_MAX];
    int rc;

    if (!a || !dz_fin_is_normal(fin) || !password || pw_len == 0 || pw_len > DZ_PASSWORD_MAX)
        return DZ_ERR_INVAL;
    rc = hash_password(a, password, pw_len, hash);
    if (rc == 0)
        rc = a->ops->set_password(a->impl, fin, hash, (int64_t)time(NULL));
    dz_secret_wipe(hash, sizeof(hash));
    return rc;
}

int dz_accounts_set_totp(struct dz_accounts *a, const char *fin, const unsigned char *seed,
                         size_t seed_len)
{
    unsigned char blob[DZ_SEED_BLOB_MAX];
    size_t blob_len = 0;
    int rc;

    if (!a || !dz_fin_is_normal(fin) || !seed || seed_len == 0 || seed_len > DZ_ACCOUNT_SEED_MAX)
        return DZ_ERR_INVAL;
    rc = seal_seed(a, fin, seed, seed_len, blob, &blob_len);
    if (rc == 0)
        rc = a->ops->set_totp(a->impl, fin, blob, blob_len, (int64_t)time(NULL));
    dz_secret_wipe(blob, sizeof(blob));
    return rc;
}

int dz_accounts_delete(struct dz_accounts *a, const char *fin)
{
    if (!a || !dz_fin_is_normal(fin))
        return DZ_ERR_INVAL;
    return a->ops->remove(a->impl, fin);
}

uint64_t dz_accounts_dummy_verifications(const struct dz_accounts *a)
{
    return a ? atomic_load(&((struct dz_accounts *)a)->dummy_count) : 0;
}
