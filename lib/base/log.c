/* log.c - JSON lines on stderr; see log.h.  Never formats secrets itself. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/timefmt.h"

/* Written once at start-up or reload and read by every worker without a
 * lock: a stale read only logs or skips one line more, so no lock is
 * worth taking on every call. */
static volatile int min_level = DZ_LOG_INFO;

/* Indexed by enum dz_log_level: keep the order of log.h. */
static const char *level_name[] = {"debug", "info", "warn", "error"};

/* Subsystem levels.  Entries are only ever added (a name is written before
 * n_subs counts it, with release order) and cleared to -1, never removed,
 * so a reader on another thread always sees a whole name. */
struct sub_level {
    char name[32];
    _Atomic int level; /* -1: follow min_level */
};
static struct sub_level subs[DZ_LOG_MAX_SUBS];
static _Atomic size_t n_subs;
/* The lowest threshold of all: a line under it is dropped at once. */
static _Atomic int floor_level = DZ_LOG_INFO;

static void update_floor(void)
{
    int lo = min_level;
    size_t n = atomic_load(&n_subs);

    for (size_t i = 0; i < n; i++) {
        int l = atomic_load(&subs[i].level);
        if (l >= 0 && l < lo)
            lo = l;
    }
    atomic_store(&floor_level, lo);
}

void dz_log_set_level(enum dz_log_level level)
{
    min_level = (int)level;
    update_floor();
}

int dz_log_level_parse(const char *s, enum dz_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_name[i]) == 0) {
            *out = (enum dz_log_level)i;
            return 0;
        }
    }
    return DZ_ERR_INVAL;
}

void dz_log_sub_of(const char *file, char out[32])
{
    const char *end = file ? strrchr(file, '/') : NULL;
    const char *start;
    size_t len;

    out[0] = '\0';
    if (!end)
        return;
    start = end;
    while (start > file && start[-1] != '/')
        start--;
    len = (size_t)(end - start);
    if (len == 0 || len >= 32)
        return;
    memcpy(out, start, len);
    out[len] = '\0';
}

int dz_log_set_sub_level(const char *sub, int level)
{
    size_t n = atomic_load(&n_subs);
    size_t len = sub ? strlen(sub) : 0;

    if (len == 0 || len >= sizeof(subs[0].name) || level > DZ_LOG_ERROR)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(subs[i].name, sub) == 0) {
            atomic_store(&subs[i].level, level < 0 ? -1 : level);
            update_floor();
            return 0;
        }
    }
    if (n >= DZ_LOG_MAX_SUBS)
        return DZ_ERR_FULL;
    memcpy(subs[n].name, sub, len + 1);
    atomic_store(&subs[n].level, level < 0 ? -1 : level);
    atomic_store(&n_subs, n + 1);
    update_floor();
    return 0;
}

void dz_log_clear_sub_levels(void)
{
    size_t n = atomic_load(&n_subs);

    for (size_t i = 0; i < n; i++)
        atomic_store(&subs[i].level, -1);
    update_floor();
}

/* The threshold for lines from file: its subsystem's, else the global. */
static int threshold(const char *file, char sub[32])
{
    size_t n = atomic_load(&n_subs);

    dz_log_sub_of(file, sub);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(subs[i].name, sub) == 0) {
            int l = atomic_load(&subs[i].level);
            return l >= 0 ? l : min_level;
        }
    }
    return min_level;
}

bool dz_log_enabled_at(const char *file, enum dz_log_level level)
{
    char sub[32];

    if ((int)level < atomic_load(&floor_level))
        return false;
    return (int)level >= threshold(file, sub);
}

static void emit(json_t *obj)
{
    /* JSON_ENSURE_ASCII: non-ASCII bytes taken from a request go out as
     * \u escapes, so whatever reads the log sees plain ASCII lines. */
    char *line = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    size_t len;
    ssize_t w;

    if (!line)
        return;
    len = strlen(line);
    /* json_dumps leaves the NUL at line[len]; it becomes the newline, so the
     * record goes out without a copy. */
    line[len] = '\n';
    /* One write per line keeps lines whole across threads. */
    w = write(STDERR_FILENO, line, len + 1);
    (void)w;
    free(line);
}

void dz_logj_at(const char *file, enum dz_log_level level, const char *event, json_t *fields)
{
    char when[DZ_RFC3339_MS_MAX];
    char sub[32] = "";
    json_t *obj;

    if ((int)level < atomic_load(&floor_level) || (int)level < threshold(file, sub)) {
        json_decref(fields);
        return;
    }
    dz_rfc3339_now(when);
    obj = json_object();
    if (!obj) {
        json_decref(fields);
        return;
    }
    json_object_set_new(obj, "ts", json_string(when));
    json_object_set_new(obj, "level", json_string(level_name[level]));
    json_object_set_new(obj, "event", json_string(event));
    if (sub[0])
        json_object_set_new(obj, "sub", json_string(sub));
    /* update() overwrites: a field named ts, level, event or sub would replace
     * ours, so callers must not use those names.  fields is consumed on
     * every path: the caller handed it over (log.h). */
    if (fields && json_is_object(fields))
        json_object_update(obj, fields);
    json_decref(fields);
    emit(obj);
    json_decref(obj);
}

void dz_log_at(const char *file, enum dz_log_level level, const char *event, const char *fmt, ...)
{
    struct dz_buf msg;
    va_list ap;
    json_t *fields;

    if (!dz_log_enabled_at(file, level))
        return;
    dz_buf_init(&msg, 4096);
    va_start(ap, fmt);
    /* A message over the bound is dropped whole, never logged cut short
     * (a cut line could read as something else). */
    if (dz_buf_vappendf(&msg, fmt, ap) != 0 && dz_buf_append_str(&msg, "(message too long)") != 0)
        dz_buf_reset(&msg);
    va_end(ap);
    fields = json_object();
    if (fields)
        json_object_set_new(fields, "msg", json_stringn(dz_buf_cstr(&msg), msg.len));
    dz_buf_cleanup(&msg);
    dz_logj_at(file, level, event, fields);
}

void dz_log_openssl_at(const char *file, const char *event)
{
    struct dz_buf msg;
    unsigned long e;
    char one[256];

    dz_buf_init(&msg, 2048);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, one, sizeof(one));
        if ((msg.len && dz_buf_append_str(&msg, "; ") != 0) || dz_buf_append_str(&msg, one) != 0)
            break; /* the buffer is gone: log the fallback, drain the rest */
    }
    /* The queue is drained even when the message was cut short: a stale
     * entry left behind would be blamed on the next unrelated failure. */
    ERR_clear_error();
    dz_log_at(file, DZ_LOG_WARN, event, "%s", msg.len ? dz_buf_cstr(&msg) : "openssl error");
    dz_buf_cleanup(&msg);
}
