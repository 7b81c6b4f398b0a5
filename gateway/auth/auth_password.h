/*
 * auth_password.h - the decisions of the "FIN + password + one-time code"
 * login and of registration (DESIGN §4.3), without any HTTP.
 *
 * The HTTP glue parses the JSON, calls these functions on a pool thread,
 * and maps each decision to one response:
 *
 *   login decision            HTTP  problem code       notes
 *   DZ_PWD_OK                 200   -                  open a session with fin/amr/acr
 *   DZ_PWD_BAD_CREDENTIALS    401   bad_credentials    wrong FIN, password or code
 *   DZ_PWD_OTP_REQUIRED       401   otp_required       only after a correct password
 *   DZ_PWD_LOCKED             429   locked             Retry-After: retry_after
 *   DZ_PWD_INVALID_FIN        400   invalid_fin        syntax only
 *
 *   registration decision     HTTP  problem code       notes
 *   DZ_REG_VALID              -     -                  (validate) ask the registry next
 *   DZ_REG_CREATED            201   -                  {"fin","totp":{secret,otpauth_uri,qr_svg}}
 *   DZ_REG_REFUSED            403   registration_refused  the SAME answer whether the
 *                                                      document did not match or the FIN
 *                                                      already has an account
 *   DZ_REG_INVALID_FIN        400   invalid_fin
 *   DZ_REG_INVALID_DOCUMENT   400   invalid_document   syntax only
 *   DZ_REG_WEAK_PASSWORD      400   weak_password      policy; detail may say which rule
 *   DZ_REG_LOCKED             429   locked             Retry-After: retry_after
 *
 * A non-zero return is an internal failure (database, store, memory): the
 * glue answers 500/503 and never opens a session (fail closed).
 *
 * No answer tells whether a FIN has an account: an unknown FIN costs the same
 * argon2id work as a wrong password and gives the same answer; the lock is
 * checked before any password work and answers the same for every FIN;
 * otp_required comes only after a correct password; registration refusals
 * look and take alike.  `reason` strings are for the audit log and metrics
 * only and MAY distinguish these cases: never put them in a response.
 *
 * The lockout (docs/api.md "Lockout") is built so that an attacker cannot
 * turn it on a victim: failures are counted per (FIN, address) and per
 * address tightly (a lock for lockout.duration_ms after pair_attempts or
 * address_attempts), per FIN from everywhere loosely (after fin_attempts,
 * each further failure makes the FIN wait a delay that doubles from
 * lockout.fin_delay_ms up to lockout.duration_ms), and per FIN with a hard
 * cap of fin_limit consecutive failures (NIST SP 800-63B §5.2.2: at most
 * 100), after which password login for that FIN stays closed until the
 * person signs in with a card, a mobile signature or QR
 * (dz_auth_password_forgive) or the count expires (fin_limit_window_ms).
 * The person's other ways in are never locked.
 *
 * State lives in the ephemeral store (gateway/state/store.h), namespaces
 * "fail_pair", "fail_ip", "fail_fin" (counters over lockout.window_ms),
 * "fail_consec" (over fin_limit_window_ms) and "lock_pair", "lock_ip",
 * "lock_fin", "lock_hard" (8-byte big-endian lock-until time in ms since
 * the epoch).  Addresses are keyed per IPv4 address and per IPv6 /64 (one
 * host usually holds a whole /64).
 *
 * THREADS: dz_auth_password and dz_auth_register_create BLOCK (argon2id,
 * SQLite): pool threads only.  dz_auth_register_validate makes one store
 * read (the address lock), which waits on Redis for a shared store: not on a
 * worker loop (core/gwasync.h dz_gw_state).  dz_auth_password_forgive and
 * dz_auth_count_address_failure likewise.  All are thread-safe given a
 * shared, read-only ctx.
 * Passwords and codes are borrowed, never copied into the store or logs.
 */
#ifndef DZ_AUTH_PASSWORD_H
#define DZ_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/fin.h"
#include "core/addrkey.h"   /* DZ_CLIENT_ADDR_MAX */
#include "keys/assertion.h" /* enum dz_amr */
#include "state/accounts.h"
#include "state/totp.h"

struct dz_store;
struct dz_docpat;

/* Same meaning and ranges as the config's lockout section. */
struct dz_auth_lockout {
    unsigned pair_attempts;       /* failures per (FIN, address) within window that lock the pair */
    unsigned address_attempts;    /* failures per client address within window */
    unsigned fin_attempts;        /* failures per FIN within window before delays begin */
    uint64_t fin_delay_ms;        /* the first delay; doubles with each failure after */
    unsigned fin_limit;           /* consecutive failures per FIN that close password login */
    uint64_t fin_limit_window_ms; /* how long that count lives without a success */
    uint64_t window_ms;           /* how long a failure counts */
    uint64_t duration_ms;         /* how long a lock lasts (and the longest delay) */
};

/* Shared by every call; read-only while calls run. */
struct dz_auth_password_ctx {
    struct dz_accounts *accounts;
    struct dz_store *store;
    struct dz_auth_lockout lockout;
    unsigned totp_window;           /* steps either side accepted; DESIGN says 1 */
    unsigned password_min_length;   /* registration: characters (code points) */
    const struct dz_docpat *docpat; /* registration: document pattern */
};

#define DZ_PASSWORD_MAX_BYTES DZ_PASSWORD_MAX /* registration refuses longer */

enum dz_pwd_decision {
    DZ_PWD_BAD_CREDENTIALS = 0, /* the cleared value is a refusal */
    DZ_PWD_OK,
    DZ_PWD_OTP_REQUIRED,
    DZ_PWD_LOCKED,
    DZ_PWD_INVALID_FIN
};

struct dz_auth_password_result {
    enum dz_pwd_decision decision;
    char fin[DZ_FIN_LEN + 1]; /* normalised FIN; "" for INVALID_FIN (audit) */
    unsigned amr;             /* OK: DZ_AMR_PWD, or DZ_AMR_PWD | DZ_AMR_OTP; else 0 */
    const char *acr;          /* OK: "low" or "substantial"; else NULL */
    uint32_t retry_after;     /* LOCKED: whole seconds, >= 1; else 0 */
    const char *reason;       /* static; audit/metrics only, see above:
                               * ok, ok_otp, invalid_fin, locked_fin, locked_address,
                               * bad_password (wrong password or no account),
                               * otp_required, otp_wrong, otp_replayed,
                               * otp_not_enrolled, error */
    /* OK: the password hash and TOTP seed this login proved itself against
     * (dz_account_info.cred_tag), for dz_accounts_unchanged once its
     * session is listed; else zeros. */
    unsigned char cred_tag[DZ_ACCOUNT_TAG_LEN];
};

/*
 * Decide a password login.  fin_raw as received; password[0..pw_len);
 * otp NULL or "" when none was given; client_ip the peer address as text
 * ("192.0.2.1", "2001:db8::1"); now_ms wall-clock ms since the epoch (also
 * the TOTP clock).  Order: FIN syntax -> locks (FIN and address; no argon2id
 * when locked) -> password (argon2id, dummy hash for unknown FINs) -> code.
 * Every wrong password, unknown FIN, wrong, replayed or unexpected code
 * counts one failure for the (FIN, address) pair, the address, the FIN and
 * the FIN's consecutive count (see the lockout above; the attempt that
 * reaches a limit still answers BAD_CREDENTIALS, the next ones LOCKED, with
 * reason locked_pair, locked_address, locked_fin or locked_fin_hard).
 * OTP_REQUIRED neither counts nor clears.  Success clears the FIN's and
 * the pair's counts (not the address's, so one good account cannot launder
 * guesses on others).
 * TOTP: active -> a code is required; enrolled but not yet active -> a code,
 * if given, is checked and activates it (acr substantial), no code is a
 * low-assurance login; a code for an account without TOTP is refused.
 * *out is cleared on entry (decision BAD_CREDENTIALS).
 * Returns 0 (see out->decision), DZ_ERR_INVAL (NULL ctx/out/password,
 * missing client_ip), or the accounts/store error; any error is a deny.
 * Pool thread (blocks).
 */
int dz_auth_password(const struct dz_auth_password_ctx *ctx, const char *fin_raw,
                     const char *password, size_t pw_len, const char *otp, const char *client_ip,
                     int64_t now_ms, struct dz_auth_password_result *out);

/* A person proved who they are another way (card, mobile signature, QR):
 * forget the FIN's failure counts and lift its delay and its hard lock.
 * Loop or pool thread (the store does not block).  0 or the store error. */
int dz_auth_password_forgive(struct dz_store *store, const char *fin);

enum dz_reg_decision {
    DZ_REG_REFUSED = 0, /* the cleared value is a refusal */
    DZ_REG_VALID,
    DZ_REG_CREATED,
    DZ_REG_INVALID_FIN,
    DZ_REG_INVALID_DOCUMENT,
    DZ_REG_WEAK_PASSWORD,
    DZ_REG_LOCKED
};

struct dz_auth_register_input {
    enum dz_reg_decision decision; /* VALID, INVALID_*, WEAK_PASSWORD, LOCKED */
    char fin[DZ_FIN_LEN + 1];      /* normalised, for the registry query */
    char document[DZ_DOC_MAX + 1]; /* normalised, for the registry query */
    uint32_t retry_after;          /* LOCKED: seconds */
    const char *reason;            /* static; audit only: valid, invalid_fin,
                                    * invalid_document, password_too_short,
                                    * password_too_long, password_not_utf8,
                                    * password_is_identifier, locked_address */
};

/*
 * Step 1 of registration: syntax and policy only, no account lookup.
 * FIN syntax; document via ctx->docpat; password: at least
 * ctx->password_min_length code points, at most DZ_PASSWORD_MAX_BYTES bytes,
 * strict UTF-8 (no overlong forms, surrogates or U+0000), and not equal
 * (ignoring ASCII case) to the FIN or the document number.  Also refuses
 * while the client address is locked.  The checks run in that order and the
 * first failure decides.  *out cleared on entry.
 * 0 (see out->decision), DZ_ERR_INVAL (NULL arguments), store errors.
 * Any thread; one store read (see THREADS above).
 */
int dz_auth_register_validate(const struct dz_auth_password_ctx *ctx, const char *fin_raw,
                              const char *document_raw, const char *password, size_t pw_len,
                              const char *client_ip, int64_t now_ms,
                              struct dz_auth_register_input *out);

/* The password rules of registration and of a password change: UTF-8, at
 * least ctx->password_min_length code points, at most DZ_PASSWORD_MAX_BYTES
 * bytes, not the FIN or the document (either may be NULL).  false with
 * *reason (static: password_too_long, password_not_utf8,
 * password_too_short, password_is_identifier) when refused.  Pure. */
bool dz_auth_password_rules_ok(const struct dz_auth_password_ctx *ctx, const char *password,
                               size_t pw_len, const char *fin, const char *document,
                               const char **reason);

/* Count one failure against client_ip's address budget (a wrong
 * registration or password-change code): the same counter and lock as a
 * wrong password (lockout.address_attempts).  0 or a store error (the
 * caller refuses as state_unavailable: a failure is never left uncounted). */
int dz_auth_count_address_failure(const struct dz_auth_password_ctx *ctx, const char *client_ip,
                                  int64_t now_ms);

struct dz_auth_register_result {
    enum dz_reg_decision decision; /* CREATED or REFUSED */
    const char *reason;            /* audit only: created, document_mismatch,
                                    * account_exists */
    char fin[DZ_FIN_LEN + 1];
    char secret_b32[DZ_TOTP_B32_MAX]; /* CREATED: base32 TOTP secret (a secret!) */
    char *otpauth_uri;                /* CREATED: malloc'd, contains the secret */
    char *qr_svg;                     /* CREATED: malloc'd SVG of otpauth_uri */
};

/*
 * Step 3 of registration, after the glue asked the registry whether the
 * document belongs to the FIN (document_matches).  fin is in->fin from
 * step 1.  Matching: create the account with a fresh 20-byte TOTP secret
 * (enrolled, not active) and fill the TOTP fields.  Not matching, or the FIN
 * already has an account: REFUSED - both spend the same argon2id work and
 * count one failure for the client address, so neither the answer nor its
 * timing says which it was.  *out cleared on entry; call
 * dz_auth_register_result_cleanup whatever the result.
 * 0 (see out->decision), DZ_ERR_INVAL, accounts/store/crypto errors.
 * Pool thread (blocks).
 */
int dz_auth_register_create(const struct dz_auth_password_ctx *ctx, const char *fin,
                            const char *password, size_t pw_len, bool document_matches,
                            const char *client_ip, int64_t now_ms,
                            struct dz_auth_register_result *out);

/* Wipe the secret, the URI and the SVG and free them. */
void dz_auth_register_result_cleanup(struct dz_auth_register_result *r);

/* The strict UTF-8 check used for passwords: true when p[0..len) is valid
 * UTF-8 without U+0000; *chars (may be NULL) receives the code point count.
 * Any thread. */
bool dz_auth_utf8_check(const char *p, size_t len, size_t *chars);

#endif
