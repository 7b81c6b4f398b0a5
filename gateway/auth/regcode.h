/*
 * regcode.h - the one-time code that proves a registering person holds the
 * mobile phone the population registry lists for them (docs/api.md
 * "Registration").  FIN + document number are printed on the ID card, so
 * they alone prove nothing; the code closes that gap.
 *
 * State lives in the ephemeral store (state/store.h), keyed by FIN:
 *   "regcode"      -> expiry, salt, SHA-256(salt || FIN || document || code),
 *                     the phone it went to.  Kept 10 minutes past the code's
 *                     life so that "expired" can be told from "never sent /
 *                     used".
 *   "fail_regcode" -> tries of the current code (dz_store_incr, so
 *                     concurrent guesses are all counted), each counted
 *                     before its code is compared: however many race,
 *                     at most max_attempts are ever compared.
 * Only a hash of the code is stored; the code itself leaves this module
 * once, to be sent.  A code is taken (dz_store_take) when it is used, so
 * exactly one request can complete a registration with it.
 *
 * Any thread; each call is a few store operations (no other I/O).
 */
#ifndef DZ_REGCODE_H
#define DZ_REGCODE_H

#include <stddef.h>
#include <stdint.h>

#include "state/store.h"

#define DZ_REGCODE_DIGITS 6
#define DZ_REGCODE_PHONE_MAX 15 /* "+994" and nine digits fit; longer is refused */

enum dz_regcode_verdict {
    DZ_REGCODE_OK,      /* right code for this FIN and document: now spent */
    DZ_REGCODE_WRONG,   /* counted; *left tries remain (0: the code is spent) */
    DZ_REGCODE_EXPIRED, /* older than its ttl: spent */
    DZ_REGCODE_NONE     /* no code pending: never sent, used, spent or long gone */
};

/* Make a fresh code for (fin, document), replacing any pending one and its
 * count of wrong tries, valid ttl_ms from now_ms; phone is where it goes.
 * code receives the digits (NUL-terminated) for the caller to send and then
 * wipe.  0, DZ_ERR_INVAL, DZ_ERR_FULL/NOMEM from the store, DZ_ERR_CRYPTO
 * (no randomness). */
int dz_regcode_issue(struct dz_store *s, const char *fin, const char *document, const char *phone,
                     int64_t now_ms, uint64_t ttl_ms, char code[DZ_REGCODE_DIGITS + 1]);

/* Check code for (fin, document).  *out is DZ_REGCODE_NONE on entry; any
 * non-zero return is a refusal too.  On OK, phone (DZ_REGCODE_PHONE_MAX+1
 * bytes) receives the number the code went to.  max_attempts wrong tries
 * spend the code.  0 or a store error (the caller fails closed). */
int dz_regcode_check(struct dz_store *s, const char *fin, const char *document, const char *code,
                     int64_t now_ms, unsigned max_attempts, enum dz_regcode_verdict *out,
                     char *phone, unsigned *left);

/* "+994501234567" -> "+99450*****67": enough for the person to recognise
 * their number, not enough to learn it.  out holds DZ_REGCODE_PHONE_MAX+1. */
void dz_regcode_mask(const char *phone, char *out);

#endif
