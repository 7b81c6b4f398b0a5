/*
 * accounts.h - password accounts: FIN -> argon2id password hash and an
 * encrypted TOTP seed with its replay state.
 *
 * Two layers.  struct dz_accounts (accounts.c) holds the logic that does not
 * depend on where records live: argon2id hashing and verification (with a
 * dummy hash for unknown FINs), AES-256-GCM encryption of TOTP seeds under
 * the configured seed key, and TOTP checking with replay refusal.  Records
 * live behind struct dz_accounts_ops: SQLite (accounts_sqlite.c) or
 * PostgreSQL (accounts_pg.c), the same five operations.
 *
 * THREADS: every dz_accounts_* call BLOCKS (argon2id takes tens of
 * milliseconds by design; SQLite does file I/O and may wait on its busy
 * timeout) and must run on a lib/http/pool.h thread, never on an event loop.
 * They are thread-safe: a struct dz_accounts is immutable after open except
 * for an atomic counter, and the SQLite backend serialises its single
 * connection with a mutex (argon2id runs outside that mutex).
 *
 * SECRETS: passwords are borrowed (pointer + length, never copied, never
 * logged); decrypted seeds live on the stack and are wiped on every path;
 * the seed key is copied in at open and wiped at close.
 */
#ifndef DZ_ACCOUNTS_H
#define DZ_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/fin.h"

struct dz_accounts;

/* argon2id cost, from the config (accounts.argon2_*; the config owns the
 * defaults, mirrored here: 64 MiB, 3 passes, 1 lane, the RFC 9106 §4 memory
 * figure).  Measured on the 2-core reference machine: 64 MiB/t=3 about
 * 320 ms per hash, OWASP's lighter 19 MiB/t=2 about 60 ms.  Memory in use is
 * at most pool_threads x m.  Hashes keep their own parameters, so old ones
 * still verify after a change; each is hashed again with the configured
 * ones at its next successful login (dz_accounts_verify_password). */
struct dz_argon2_params {
    uint32_t m_cost_kib;  /* memory in KiB, 8 * parallelism .. 4 GiB */
    uint32_t t_cost;      /* passes, 1 .. 100 */
    uint32_t parallelism; /* lanes (and threads), 1 .. 16 */
};
#define DZ_ARGON2_DEFAULT_M_KIB 65536u
#define DZ_ARGON2_DEFAULT_T 3u
#define DZ_ARGON2_DEFAULT_P 1u
#define DZ_ARGON2_M_MAX_KIB (4u * 1024u * 1024u)

/* 0 when the parameters are inside the ranges above, else DZ_ERR_INVAL
 * (for the config checker).  Any thread. */
int dz_argon2_params_check(const struct dz_argon2_params *p);

#define DZ_SEED_KEY_LEN 32     /* AES-256-GCM key for TOTP seeds */
#define DZ_PASSWORD_MAX 1024   /* bytes; longer is never a valid password */
#define DZ_PWD_HASH_MAX 256    /* encoded argon2id string, NUL included */
#define DZ_ACCOUNT_SEED_MAX 64 /* raw TOTP seed bytes */
#define DZ_SEED_BLOB_MAX (1 + 12 + DZ_ACCOUNT_SEED_MAX + 16) /* ver|nonce|ct|tag */

#define DZ_ACCOUNT_TAG_LEN 32

/* What the logic layer may tell its caller about an account whose password
 * was just verified.  Never filled for a failed verification. */
struct dz_account_info {
    char fin[DZ_FIN_LEN + 1];
    bool has_totp;    /* a seed is enrolled */
    bool totp_active; /* a code has been accepted once: codes are now required */
    int64_t created_at;
    /* SHA-256 of the password hash and sealed TOTP seed that were verified
     * (dz_accounts_unchanged): what a password change or a TOTP reset
     * replaces.  Not a secret anyone can log in with, but wiped all the
     * same. */
    unsigned char cred_tag[DZ_ACCOUNT_TAG_LEN];
};

/* ---- storage backends ------------------------------------------------- */

/* One stored row.  pwd_hash is an encoded argon2id string; totp_seed is the
 * encrypted blob (see accounts.c), totp_seed_len 0 when none is enrolled;
 * totp_last_step is the last accepted time step, -1 before the first. */
struct dz_account_rec {
    char fin[DZ_FIN_LEN + 1];
    char pwd_hash[DZ_PWD_HASH_MAX];
    unsigned char totp_seed[DZ_SEED_BLOB_MAX];
    size_t totp_seed_len;
    bool totp_active;
    int64_t totp_last_step;
    int64_t created_at; /* Unix seconds */
    int64_t updated_at;
};

/*
 * A backend.  All operations are blocking, thread-safe, and return 0 or a
 * negative enum dz_err (DZ_ERR_DB for the database's own failures).
 *   get:          fill *out; DZ_ERR_NOTFOUND when the FIN has no row.
 *   insert:       add a row; DZ_ERR_EXISTS when the FIN has one.
 *   advance_totp: atomically set totp_last_step = step, totp_active = 1,
 *                 updated_at = now, only if the stored totp_last_step < step
 *                 and the stored sealed seed is still seed[0..seed_len) (the
 *                 one the code was checked against); *advanced says whether
 *                 that happened (false: a concurrent login consumed this or
 *                 a later step, a TOTP reset replaced the seed, or no row).
 *   remove:       delete; DZ_ERR_NOTFOUND when absent.
 *   set_password: replace pwd_hash, updated_at = now; DZ_ERR_NOTFOUND when
 *                 no row.  The TOTP state is left alone (one statement, so a
 *                 concurrent login's advance_totp is never undone).
 *   swap_password: the same, atomically, only if the stored pwd_hash is
 *                 still old_hash; *swapped says whether that happened
 *                 (false: a password change came first, or no row).
 *   set_totp:     replace the sealed seed (len 0: none), totp_last_step =
 *                 -1, updated_at = now, totp_active as it was;
 *                 DZ_ERR_NOTFOUND.
 *   free:         close and free impl.
 */
struct dz_accounts_ops {
    const char *name;
    int (*get)(void *impl, const char *fin, struct dz_account_rec *out);
    int (*insert)(void *impl, const struct dz_account_rec *rec);
    int (*advance_totp)(void *impl, const char *fin, int64_t step, const unsigned char *seed,
                        size_t seed_len, int64_t now, bool *advanced);
    int (*remove)(void *impl, const char *fin);
    int (*set_password)(void *impl, const char *fin, const char *pwd_hash, int64_t now);
    int (*swap_password)(void *impl, const char *fin, const char *old_hash, const char *new_hash,
                         int64_t now, bool *swapped);
    int (*set_totp)(void *impl, const char *fin, const unsigned char *seed, size_t seed_len,
                    int64_t now);
    void (*free)(void *impl);
};

/* The SQLite backend (accounts_sqlite.c): one database file in WAL mode with
 * synchronous=FULL and a 5 s busy timeout, created 0600 if absent; one
 * connection guarded by a mutex.  0, DZ_ERR_DB (cannot open, or the schema
 * version is unknown), DZ_ERR_NOMEM.  Start-up thread. */
extern const struct dz_accounts_ops dz_accounts_sqlite_ops;
int dz_accounts_sqlite_open(const char *path, void **impl);

/* The PostgreSQL backend (accounts_pg.c): a pool of `pool` connections
 * (libpq), statements prepared once per connection, every wait bounded
 * (connect_timeout_ms for connecting, statement_timeout_ms for a statement
 * or for a free connection).  A failed connection is dropped and
 * reconnected on next use with backoff; meanwhile operations return
 * DZ_ERR_DB at once.  conninfo is a libpq conninfo string or URI (it may
 * hold a password: copied, wiped at free, never logged). */
struct dz_accounts_pg_params {
    const char *conninfo;
    unsigned pool;                 /* 1..64 */
    unsigned connect_timeout_ms;   /* rounded up to whole seconds */
    unsigned statement_timeout_ms; /* >= 1 */
};
extern const struct dz_accounts_ops dz_accounts_pg_ops;

/* Connect, create the schema in an empty database or refuse one whose
 * schema version is not ours, prepare the statements.  0, DZ_ERR_DB (down,
 * refused, unknown schema), DZ_ERR_INVAL, DZ_ERR_NOMEM.  Start-up thread. */
int dz_accounts_pg_open(const struct dz_accounts_pg_params *p, void **impl);

/* `darvaza accounts migrate`: create or migrate the schema and disconnect.
 * *from is the version found (0: empty database), *to the version now.
 * 0, DZ_ERR_DB, DZ_ERR_INVAL, DZ_ERR_NOMEM. */
int dz_accounts_pg_migrate(const struct dz_accounts_pg_params *p, int *from, int *to);

/* ---- the logic layer -------------------------------------------------- */

/*
 * Open the SQLite file at path.  seed_key is copied.  Computes the dummy
 * hash (one argon2id run with p), so this takes as long as one login.
 * 0, DZ_ERR_INVAL (bad params), DZ_ERR_DB, DZ_ERR_NOMEM, DZ_ERR_CRYPTO.
 * Start-up thread; the result is shared by all pool threads.
 */
int dz_accounts_open(const char *path, const unsigned char seed_key[DZ_SEED_KEY_LEN],
                     const struct dz_argon2_params *p, struct dz_accounts **out);

/* Same over any backend; takes ownership of impl (freed with ops->free, on
 * failure too). */
int dz_accounts_new(const struct dz_accounts_ops *ops, void *impl,
                    const unsigned char seed_key[DZ_SEED_KEY_LEN], const struct dz_argon2_params *p,
                    struct dz_accounts **out);

/* Close the backend and wipe the key.  NULL is a no-op.  No call may be in
 * flight. */
void dz_accounts_close(struct dz_accounts *a);

/*
 * Create an account for a normalised FIN: argon2id(password) with a fresh
 * 16-byte salt and the configured cost, and, when seed_len > 0, the TOTP
 * seed encrypted with AAD = FIN (inactive, last step -1).
 * The password is hashed BEFORE the row is looked at, so creating and
 * colliding take the same time.
 * 0, DZ_ERR_EXISTS (the FIN has an account), DZ_ERR_INVAL (FIN not normal,
 * pw_len 0 or over DZ_PASSWORD_MAX, seed_len over DZ_ACCOUNT_SEED_MAX),
 * DZ_ERR_CRYPTO, DZ_ERR_DB, DZ_ERR_NOMEM.
 */
int dz_accounts_create(struct dz_accounts *a, const char *fin, const char *password, size_t pw_len,
                       const unsigned char *totp_seed, size_t seed_len);

/*
 * Check a password.  *ok is false and *info cleared on entry; on a match *ok
 * is true and *info describes the account.  For a FIN without an account
 * argon2id still runs, against a fixed dummy hash made at open with the
 * same cost, so the time taken does not say whether the account exists.
 * A match against a hash made with other parameters than the configured
 * ones (an older, cheaper config) hashes the password again with these and
 * stores it, only if the row still holds the hash just verified (a
 * password change meanwhile wins); a failure there is logged and leaves
 * the old hash, the login stands.  Until then such an account answers a
 * wrong password in its old hash's time, not the dummy's.
 * A password over DZ_PASSWORD_MAX bytes is refused without hashing (no
 * account can have one, so that says nothing about the FIN).
 * 0 (see *ok), DZ_ERR_INVAL (FIN not normal), DZ_ERR_DB, DZ_ERR_PARSE (a
 * stored hash is corrupt), DZ_ERR_NOMEM.  Any error is a deny.
 */
int dz_accounts_verify_password(struct dz_accounts *a, const char *fin, const char *password,
                                size_t pw_len, bool *ok, struct dz_account_info *info);

/*
 * Whether fin still has the password hash and TOTP seed that tag (a
 * dz_account_info.cred_tag of a verification) was made from: *same false
 * when a password change or a TOTP reset replaced either since, or the
 * account is gone.  A login calls it once its session is listed, so that a
 * change that listed the sessions before that entry is still seen
 * (docs/internals/accounts.md "Password change, TOTP reset, recovery").
 * *same false on entry.  0 (see *same), DZ_ERR_INVAL, DZ_ERR_DB,
 * DZ_ERR_CRYPTO.  Any error is a deny.  Blocks (one read).
 */
int dz_accounts_unchanged(struct dz_accounts *a, const char *fin,
                          const unsigned char tag[DZ_ACCOUNT_TAG_LEN], bool *same);

/* Outcome of a one-time code.  0 is the deny, so a cleared value refuses. */
enum dz_accounts_otp {
    DZ_ACCOUNTS_OTP_BAD = 0,      /* wrong, malformed, or outside the window */
    DZ_ACCOUNTS_OTP_OK = 1,       /* accepted and consumed (TOTP now active) */
    DZ_ACCOUNTS_OTP_REPLAYED = 2, /* right code, but its step was already used */
    DZ_ACCOUNTS_OTP_NONE = 3      /* the account has no TOTP enrolled */
};

/*
 * Validate code (6 digits) for Unix time now within +-window steps (the
 * gateway uses 1, at most DZ_TOTP_WINDOW_MAX), refuse any step <= the
 * stored last step, and on success store the step and set totp_active in
 * one conditional UPDATE, so two concurrent logins with the same code
 * cannot both succeed.  *out is DZ_ACCOUNTS_OTP_BAD on entry.
 * 0 (see *out), DZ_ERR_NOTFOUND (no account), DZ_ERR_INVAL, DZ_ERR_CRYPTO
 * (the seed does not decrypt: wrong seed key, or the row was tampered
 * with), DZ_ERR_DB.  Any error is a deny.
 */
int dz_accounts_totp_check_and_consume(struct dz_accounts *a, const char *fin, const char *code,
                                       int64_t now, unsigned window, enum dz_accounts_otp *out);

/*
 * Spend the same argon2id work as dz_accounts_create / verify_password on
 * password without touching any account (verifies it against the dummy
 * hash).  Registration calls it when the registry says "no", so a refusal
 * takes as long as a creation or a collision.  0, DZ_ERR_NOMEM.
 */
int dz_accounts_equalize(struct dz_accounts *a, const char *password, size_t pw_len);

/* Self-service (account page): a new password (argon2id, fresh salt), the
 * TOTP state untouched.  0, DZ_ERR_NOTFOUND (no account), DZ_ERR_INVAL,
 * DZ_ERR_DB, DZ_ERR_NOMEM.  Blocks (argon2id). */
int dz_accounts_set_password(struct dz_accounts *a, const char *fin, const char *password,
                             size_t pw_len);

/* A new TOTP seed (sealed like at creation); the old authenticator stops
 * working at once.  An account whose TOTP was active stays active, so a
 * password login needs a code of the new seed at once: a reset (after a
 * lost phone) never leaves the password alone enough to sign in.  One
 * whose TOTP was not yet active stays so.  0, DZ_ERR_NOTFOUND,
 * DZ_ERR_INVAL, DZ_ERR_DB, DZ_ERR_CRYPTO.  Blocks. */
int dz_accounts_set_totp(struct dz_accounts *a, const char *fin, const unsigned char *seed,
                         size_t seed_len);

/* Delete an account (operator tool, tests).  0, DZ_ERR_NOTFOUND, DZ_ERR_DB. */
int dz_accounts_delete(struct dz_accounts *a, const char *fin);

/* How many times the dummy hash was verified (unknown FINs): lets tests see
 * that the equal-time path ran.  Any thread. */
uint64_t dz_accounts_dummy_verifications(const struct dz_accounts *a);

#endif
