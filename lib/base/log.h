/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Each line: {"ts":"2026-11-22T10:00:00.123Z","level":"info","event":"...",
 * "msg":"...", ...extra fields}.  Callers must never pass a password, PIN,
 * OTP code, token or key: log the FIN, the request id, the reason, not the
 * secret.  Each line also names its subsystem ("sub"), the folder of the
 * source file that wrote it, whose level may differ from the global one
 * (gateway.log_levels).  Thread-safe (one write(2) per line).
 */
#ifndef DZ_LOG_H
#define DZ_LOG_H

#include <stdbool.h>

#include <jansson.h>

enum dz_log_level { DZ_LOG_DEBUG, DZ_LOG_INFO, DZ_LOG_WARN, DZ_LOG_ERROR };

/* Lines below this level are dropped. Default DZ_LOG_INFO. */
void dz_log_set_level(enum dz_log_level level);
/* Parse "debug"|"info"|"warn"|"error"; 0 or DZ_ERR_INVAL. */
int dz_log_level_parse(const char *s, enum dz_log_level *out);

/*
 * Levels per subsystem.  A subsystem is the folder of the source file that
 * logs ("forward" for gateway/forward/forward.c, "http" for lib/http/...),
 * taken from __FILE__ by the macros below, so a new file needs no
 * registration.  dz_log_set_sub_level sets one subsystem's threshold (it
 * then ignores the global one); a negative level clears it.  At most
 * DZ_LOG_MAX_SUBS subsystems; 0, DZ_ERR_INVAL (bad name) or DZ_ERR_FULL.
 * dz_log_clear_sub_levels forgets them all (before applying a reload).
 * Set from one thread (start-up, reload); read by every thread.
 */
#define DZ_LOG_MAX_SUBS 24
int dz_log_set_sub_level(const char *sub, int level);
void dz_log_clear_sub_levels(void);
/* Would a line at level from the source file be written?  Lets a caller
 * skip building fields for a debug line nobody reads. */
bool dz_log_enabled_at(const char *file, enum dz_log_level level);
/* The subsystem of a source path: its last folder ("" for none). */
void dz_log_sub_of(const char *file, char out[32]);

/* Log event with a printf-style message. */
void dz_log_at(const char *file, enum dz_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Log event with extra fields; takes ownership of fields (may be NULL). */
void dz_logj_at(const char *file, enum dz_log_level level, const char *event, json_t *fields);

/* Drain OpenSSL's error queue into one log line under event. */
void dz_log_openssl_at(const char *file, const char *event);

/* The names callers use: the file that logs picks the subsystem. */
#define dz_log(level, event, ...) dz_log_at(__FILE__, level, event, __VA_ARGS__)
#define dz_logj(level, event, fields) dz_logj_at(__FILE__, level, event, fields)
#define dz_log_openssl(event) dz_log_openssl_at(__FILE__, event)
#define dz_log_enabled(level) dz_log_enabled_at(__FILE__, level)

#endif
