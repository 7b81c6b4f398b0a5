/*
 * midcode.c - the Mobile-ID verification code (see midcode.h).  Owns only
 * the arithmetic; it never sees a key, never chooses the hash, and never
 * decides whether a code shown to a user was the right one.
 */
#include "keys/midcode.h"

#include <stdio.h>

#include "base/err.h"

#include "base/compat.h"

int dz_mid_verification_code(const unsigned char *hash, size_t len)
{
    if (!hash || len < DZ_MID_HASH_MIN || len > DZ_MID_HASH_MAX)
        return DZ_ERR_INVAL;
    return ((hash[0] & 0xFC) << 5) | (hash[len - 1] & 0x7F);
}

int dz_mid_verification_code_str(const unsigned char *hash, size_t len,
                                 char out[DZ_MID_CODE_LEN + 1])
{
    int code = dz_mid_verification_code(hash, len);

    out[0] = '\0';
    if (code < 0)
        return code;
    /* 0..8191: four digits, written by hand so no format can overflow. */
    for (int i = DZ_MID_CODE_LEN - 1; i >= 0; i--) {
        out[i] = (char)('0' + code % 10);
        code /= 10;
    }
    out[DZ_MID_CODE_LEN] = '\0';
    return 0;
}
