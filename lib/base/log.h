/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Each line: {"ts":"2026-11-22T10:00:00.123Z","level":"info","event":"...",
 * "msg":"...", ...extra fields}.  Callers must never pass a password, PIN,
 * OTP code, token or key: log the FIN, the request id, the reason, not the
 * secret.  Thread-safe (one write(2) per line).
 */
#ifndef DZ_LOG_H
#define DZ_LOG_H

#include <jansson.h>

enum dz_log_level { DZ_LOG_DEBUG, DZ_LOG_INFO, DZ_LOG_WARN, DZ_LOG_ERROR };

/* Lines below this level are dropped. Default DZ_LOG_INFO. */
void dz_log_set_level(enum dz_log_level level);
/* Parse "debug"|"info"|"warn"|"error"; 0 or DZ_ERR_INVAL. */
int dz_log_level_parse(const char *s, enum dz_log_level *out);

/* Log event with a printf-style message. */
void dz_log(enum dz_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log event with extra fields; takes ownership of fields (may be NULL). */
void dz_logj(enum dz_log_level level, const char *event, json_t *fields);

/* Drain OpenSSL's error queue into one log line under event. */
void dz_log_openssl(const char *event);

#endif
