/*
 * timefmt.h - a moment as RFC 3339 in UTC with milliseconds
 * ("2026-12-07T12:03:08.559Z"): the "time"/"ts" of every log, access-log
 * and audit line and of the audit tree's heads.
 */
#ifndef DZ_TIMEFMT_H
#define DZ_TIMEFMT_H

#include <stdint.h>

/* Room for any year an int holds, and the terminating NUL. */
#define DZ_RFC3339_MS_MAX 40

/* unix_ms: milliseconds since the epoch (a negative value is taken as 0). */
void dz_rfc3339_ms(int64_t unix_ms, char out[DZ_RFC3339_MS_MAX]);

/* The wall clock (CLOCK_REALTIME) now. */
void dz_rfc3339_now(char out[DZ_RFC3339_MS_MAX]);

#endif
