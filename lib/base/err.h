/*
 * err.h - the error codes every darvaza function returns.
 *
 * Functions return 0 on success or a negative enum dz_err.  Decisions (allow,
 * deny, bad credentials) are never errors: they are out-parameters, and any
 * non-zero return is handled by the caller as a deny (fail closed).
 */
#ifndef DZ_ERR_H
#define DZ_ERR_H

#include <stddef.h>

enum dz_err {
    DZ_OK = 0,
    DZ_ERR_NOMEM = -1,        /* allocation failed */
    DZ_ERR_INVAL = -2,        /* bad argument or malformed input */
    DZ_ERR_TOOBIG = -3,       /* a bound was reached */
    DZ_ERR_CRYPTO = -4,       /* OpenSSL failed (queue drained into the log) */
    DZ_ERR_TLS = -5,          /* TLS handshake or I/O failed */
    DZ_ERR_IO = -6,           /* system call failed */
    DZ_ERR_PKCS11 = -7,       /* libp11 / the token failed */
    DZ_ERR_NOTFOUND = -8,     /* no such key/record */
    DZ_ERR_DB = -9,           /* SQLite failed */
    DZ_ERR_PARSE = -10,       /* input could not be parsed */
    DZ_ERR_TIMEOUT = -11,     /* a deadline passed */
    DZ_ERR_STATE = -12,       /* call not valid in the object's state */
    DZ_ERR_DENIED = -13,      /* verification failed (signature, MAC, policy) */
    DZ_ERR_EXISTS = -14,      /* already present */
    DZ_ERR_UNAVAILABLE = -15, /* a peer or a queue cannot take the work now */
    DZ_ERR_FULL = -16         /* a budget is used up (a store kind at its quota) */
};

/* Static English name of an error code ("nomem", "inval", ...); never NULL. */
const char *dz_err_str(int err);

/* Format why a call failed into the caller's why[why_cap] (the "why" out
 * parameter of the file and key readers); nothing when why is NULL or
 * why_cap 0. */
__attribute__((format(printf, 3, 4))) void dz_why(char *why, size_t why_cap, const char *fmt, ...);

#endif
