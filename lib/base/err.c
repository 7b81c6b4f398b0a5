/* err.c - names of the error codes, for logs. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *dz_err_str(int err)
{
    switch (err) {
    case DZ_OK:
        return "ok";
    case DZ_ERR_NOMEM:
        return "nomem";
    case DZ_ERR_INVAL:
        return "inval";
    case DZ_ERR_TOOBIG:
        return "toobig";
    case DZ_ERR_CRYPTO:
        return "crypto";
    case DZ_ERR_TLS:
        return "tls";
    case DZ_ERR_IO:
        return "io";
    case DZ_ERR_PKCS11:
        return "pkcs11";
    case DZ_ERR_NOTFOUND:
        return "notfound";
    case DZ_ERR_DB:
        return "db";
    case DZ_ERR_PARSE:
        return "parse";
    case DZ_ERR_TIMEOUT:
        return "timeout";
    case DZ_ERR_STATE:
        return "state";
    case DZ_ERR_DENIED:
        return "denied";
    case DZ_ERR_EXISTS:
        return "exists";
    case DZ_ERR_UNAVAILABLE:
        return "unavailable";
    case DZ_ERR_FULL:
        return "full";
    }
    return "unknown";
}

void dz_why(char *why, size_t why_cap, const char *fmt, ...)
{
    va_list ap;

    if (!why || why_cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_cap, fmt, ap);
    va_end(ap);
}
