/*
 * midcode.h - the Mobile-ID verification code (DESIGN §4.5), shared by the
 * gateway (shown in the browser), the MSSP stand-in and the phone stand-in
 * (shown on the phone), so that all three derive the same four digits from
 * the same hash.
 *
 * The code is computed over the hash being signed itself (the bytes the
 * relying party sends to the MSSP in "hash"), not over a hash of it:
 *
 *     code = ((h[0] & 0xFC) << 5) | (h[len - 1] & 0x7F)      0 .. 8191
 *
 * i.e. the 6 high bits of the first byte followed by the 7 low bits of the
 * last byte, written as 4 decimal digits ("%04d").  This is SK ID
 * Solutions' Mobile-ID rule (MID REST API, §2.4; the reference Java client
 * SK-EID/mid-rest-java-client MidVerificationCodeCalculator), whose test
 * vectors tests/unit/test_midcode.c replays.  For a SHA-256 hash h[len - 1]
 * is h[31], as DESIGN §4.5 writes it.
 *
 * Pure functions, no allocation, no globals; any thread.
 */
#ifndef DZ_MIDCODE_H
#define DZ_MIDCODE_H

#include <stddef.h>

#define DZ_MID_HASH_MIN 20 /* shortest hash accepted (SHA-1 size, as Mobile-ID) */
#define DZ_MID_HASH_MAX 64 /* longest (SHA-512) */
#define DZ_MID_CODE_MAX 8191
#define DZ_MID_CODE_LEN 4 /* decimal digits; buffers are DZ_MID_CODE_LEN + 1 */

/* The code (0..8191) of hash[0..len), or DZ_ERR_INVAL when hash is NULL or
 * len is outside DZ_MID_HASH_MIN..DZ_MID_HASH_MAX.  (Mobile-ID's client
 * shows "0000" for a hash that is too short; here that is an error, so a
 * caller can never display a code that does not come from its hash.) */
int dz_mid_verification_code(const unsigned char *hash, size_t len);

/* The code of hash as 4 decimal digits plus a NUL in out.  0, or
 * DZ_ERR_INVAL as above (out is then ""). */
int dz_mid_verification_code_str(const unsigned char *hash, size_t len,
                                 char out[DZ_MID_CODE_LEN + 1]);

#endif
