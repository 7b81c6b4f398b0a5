/*
 * totp.h - TOTP (RFC 6238) and HOTP (RFC 4226) over liboath: secret
 * generation, base32, the otpauth:// enrolment URI, and stateless
 * compute / validate.
 *
 * The gateway's profile is fixed for authenticator compatibility (DESIGN
 * §4.3): HMAC-SHA-1, 30 s steps from the Unix epoch, 6 digits.  The 8-digit
 * and HOTP entry points exist for the RFC test vectors.
 *
 * These functions keep NO state: replay protection (a step is accepted once)
 * is the caller's job and lives in accounts.c, which persists the last
 * accepted step.  Secrets are raw bytes; callers wipe them.  Codes are
 * compared in constant time.  Thread-safe (liboath is initialised once via
 * pthread_once); pure CPU, cheap, but callers normally run them on the pool
 * next to the database work.
 */
#ifndef DZ_TOTP_H
#define DZ_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dz_buf;

#define DZ_TOTP_SECRET_LEN 20 /* bytes of a new secret (160 bits, RFC 4226 §4) */
#define DZ_TOTP_SECRET_MAX 64 /* longest secret accepted by compute/validate */
#define DZ_TOTP_STEP 30       /* seconds per step */
#define DZ_TOTP_DIGITS 6      /* digits of a gateway code */
#define DZ_TOTP_CODE_MAX 8    /* longest code (digits), without the NUL */
#define DZ_TOTP_WINDOW_MAX 10 /* widest validation window accepted (steps) */
#define DZ_TOTP_B32_MAX 104   /* base32 of DZ_TOTP_SECRET_MAX bytes, plus NUL */
#define DZ_TOTP_ISSUER "Darvaza"
#define DZ_TOTP_URI_MAX 1024 /* longest otpauth URI built */

/* Fill secret[DZ_TOTP_SECRET_LEN] from the CSPRNG.  0 or DZ_ERR_CRYPTO. */
int dz_totp_secret_new(unsigned char secret[DZ_TOTP_SECRET_LEN]);

/*
 * Base32 (RFC 4648 §6 alphabet, upper case) without '=' padding, as
 * otpauth URIs want it.  out[out_size] receives the text and a NUL.
 * 0, DZ_ERR_INVAL (len 0 or > DZ_TOTP_SECRET_MAX), DZ_ERR_TOOBIG (out too
 * small), DZ_ERR_NOMEM.  The intermediate copy is wiped.
 */
int dz_totp_base32(const unsigned char *secret, size_t len, char *out, size_t out_size);

/*
 * Decode base32 text (upper or lower case, with or without padding; spaces
 * ignored as authenticator apps show them) into out[out_size]; *out_len is
 * the byte count.  0, DZ_ERR_PARSE (bad text or empty), DZ_ERR_TOOBIG.
 */
int dz_totp_base32_decode(const char *b32, unsigned char *out, size_t out_size, size_t *out_len);

/*
 * The enrolment URI, appended to out:
 *   otpauth://totp/Darvaza:<FIN>?secret=<b32>&issuer=Darvaza&algorithm=SHA1&digits=6&period=30
 * account and b32 are percent-encoded (RFC 3986 unreserved characters pass).
 * The URI contains the secret: wipe the buffer (dz_buf_wipe) after use.
 * 0, DZ_ERR_INVAL (empty argument), DZ_ERR_TOOBIG (URI over
 * DZ_TOTP_URI_MAX, or over out's max), DZ_ERR_NOMEM.
 */
int dz_totp_uri(const char *account, const char *b32, struct dz_buf *out);

/* HOTP value of counter, digits 6..8, written zero-padded with a NUL into
 * out[DZ_TOTP_CODE_MAX + 1].  0 or DZ_ERR_INVAL. */
int dz_totp_hotp(const unsigned char *secret, size_t len, uint64_t counter, unsigned digits,
                 char out[DZ_TOTP_CODE_MAX + 1]);

/* TOTP code for Unix time now (>= 0; 64-bit, so years past 2038 work),
 * 30 s steps, SHA-1.  0 or DZ_ERR_INVAL. */
int dz_totp_generate(const unsigned char *secret, size_t len, int64_t now, unsigned digits,
                     char out[DZ_TOTP_CODE_MAX + 1]);

/* The step number of Unix time now: now / 30 (now >= 0). */
uint64_t dz_totp_step(int64_t now);

/*
 * Validate code for time now within +-window steps (window <=
 * DZ_TOTP_WINDOW_MAX; the gateway uses 1).  The code must be exactly
 * `digits` ASCII digits; anything else is simply not valid.
 * Decision in *ok (false on entry); on a match *step (may be NULL) is the
 * matched time step, which the caller must compare with the last accepted
 * one (replay).  Returns 0, or DZ_ERR_INVAL for bad arguments (secret,
 * window, digits), DZ_ERR_CRYPTO when liboath fails; any error is a deny.
 */
int dz_totp_validate(const unsigned char *secret, size_t len, const char *code, int64_t now,
                     unsigned window, unsigned digits, bool *ok, uint64_t *step);

#endif
