/* timefmt.c - see timefmt.h. */
#include "base/timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/compat.h"

void dz_rfc3339_ms(int64_t unix_ms, char out[DZ_RFC3339_MS_MAX])
{
    /* The lines of a busy thread fall in the same second: the part up to
     * the second is formatted once a second per thread, the milliseconds
     * added by hand (a gmtime_r and a snprintf per line less). */
    static _Thread_local int64_t cached_sec = -1;
    static _Thread_local char cached[DZ_RFC3339_MS_MAX];
    static _Thread_local size_t cached_len;
    int64_t sec, ms;

    if (unix_ms < 0)
        unix_ms = 0;
    sec = unix_ms / 1000;
    ms = unix_ms % 1000;
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        int n;

        if (!gmtime_r(&t, &tm) ||
            (n = snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec)) <= 0 ||
            (size_t)n + 5 > sizeof(cached)) {
            cached_sec = -1;
            out[0] = '\0';
            return;
        }
        cached_len = (size_t)n;
        cached_sec = sec;
    }
    memcpy(out, cached, cached_len);
    out[cached_len] = (char)('0' + ms / 100);
    out[cached_len + 1] = (char)('0' + ms / 10 % 10);
    out[cached_len + 2] = (char)('0' + ms % 10);
    out[cached_len + 3] = 'Z';
    out[cached_len + 4] = '\0';
}

void dz_rfc3339_now(char out[DZ_RFC3339_MS_MAX])
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    dz_rfc3339_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}
