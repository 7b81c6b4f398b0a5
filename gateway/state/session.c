/*
 * session.c - login sessions over the ephemeral store; see session.h.
 *
 * It owns the token format (43 canonical base64url characters), the store
 * record (a fixed little-endian layout, version byte first, every byte
 * written so no stray memory reaches the store), and the expiry rules.  It
 * must never store, copy or log a token: the store sees SHA-256 of it, and
 * the only copy made of the random bytes behind a new token is wiped before
 * return.  Anything unexpected in a stored record fails closed.
 */
#include "state/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/secret.h"
#include "state/store.h"

#include "base/compat.h"

/* Record layout, version 2 (offsets in bytes, integers little-endian).
 * Version 1 was the same without the name (REC_LEN_V1 bytes): such records,
 * written before an upgrade, are still read, with the name unknown. */
enum {
    REC_VERSION = 2,
    REC_VERSION_V1 = 1,
    OFF_VERSION = 0,
    OFF_FIN = 1,      /* 8 */
    OFF_METHOD = 9,   /* 16 */
    OFF_AMR = 25,     /* u32 */
    OFF_ACR = 29,     /* 16 */
    OFF_ROLE = 45,    /* 16 */
    OFF_AUTH = 61,    /* i64 unix s */
    OFF_CREATED = 69, /* i64 unix ms */
    OFF_ABS = 77,     /* i64 unix ms */
    OFF_HAS_PRF = 85, /* u8 0/1 */
    OFF_PRF = 86,     /* 32 */
    REC_LEN_V1 = 118,
    OFF_NAME = 118, /* DZ_SESSION_NAME_MAX */
    REC_LEN = OFF_NAME + DZ_SESSION_NAME_MAX
};

#define CREATE_TRIES 3 /* a token collision is ~2^-256; retry only for form */

void dz_session_limits_default(struct dz_session_limits *l)
{
    /* Defaults when the config gives none (docs/internals/sessions.md); high
     * assurance idles out sooner because an unattended session of that level
     * can do more. */
    l->idle_ms = 30u * 60u * 1000u;
    l->idle_high_ms = 15u * 60u * 1000u;
    l->absolute_ms = 12u * 3600u * 1000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    /* Wall clock, not monotonic: the absolute deadline is stored in the
     * record and must mean the same to every process that reads it (a
     * shared store, later).  The idle limit is the store's TTL, which
     * runs on the store's monotonic clock (docs/internals/sessions.md). */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- validation */

static bool str_in(const char *s, size_t cap, const char *const *set)
{
    if (!memchr(s, '\0', cap))
        return false;
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* Closed lists: a decoded record naming anything else did not come from
 * dz_session_create and is refused (fail closed). */
static const char *const METHODS[] = {"password", "card", "mobile", "qr", NULL};
static const char *const ACRS[] = {"low", "substantial", "high", NULL};

static bool role_ok(const char *r, size_t cap)
{
    size_t n = strnlen(r, cap);
    size_t i;

    if (n == cap)
        return false;
    for (i = 0; i < n; i++)
        if (r[i] < 0x21 || r[i] > 0x7e)
            return false;
    return true;
}

/* Bytes the name may hold: UTF-8 (no overlongs, no surrogates) without
 * control characters, NUL-terminated within cap. */
static bool name_ok(const char *p, size_t cap)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t n = strnlen(p, cap);
    size_t i = 0;

    if (n == cap)
        return false;
    while (i < n) {
        size_t len = u[i] < 0x80             ? 1
                     : (u[i] & 0xe0) == 0xc0 ? 2
                     : (u[i] & 0xf0) == 0xe0 ? 3
                     : (u[i] & 0xf8) == 0xf0 ? 4
                                             : 0;
        if (len == 0 || i + len > n || (len == 1 && (u[i] < 0x20 || u[i] == 0x7f)))
            return false;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xc0) != 0x80)
                return false;
        if ((len == 2 && u[i] < 0xc2) || (len == 3 && u[i] == 0xe0 && u[i + 1] < 0xa0) ||
            (len == 3 && u[i] == 0xed && u[i + 1] >= 0xa0) ||
            (len == 4 && u[i] == 0xf0 && u[i + 1] < 0x90) || (len == 4 && u[i] > 0xf4) ||
            (len == 4 && u[i] == 0xf4 && u[i + 1] >= 0x90))
            return false;
        i += len;
    }
    return true;
}

void dz_session_set_name(struct dz_session *s, const char *name)
{
    size_t n = name ? strlen(name) : 0;

    memset(s->name, 0, sizeof(s->name));
    if (n >= sizeof(s->name)) {
        /* Cut before a continuation byte, so the cut is between characters. */
        n = sizeof(s->name) - 1;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--;
    }
    if (n)
        memcpy(s->name, name, n);
    if (!name_ok(s->name, sizeof(s->name)))
        memset(s->name, 0, sizeof(s->name));
}

static bool fields_ok(const struct dz_session *s)
{
    return memchr(s->fin, '\0', sizeof(s->fin)) && dz_fin_is_normal(s->fin) &&
           str_in(s->method, sizeof(s->method), METHODS) && s->amr != 0 &&
           (s->amr & ~(unsigned)DZ_AMR_ALL) == 0 && str_in(s->acr, sizeof(s->acr), ACRS) &&
           role_ok(s->role, sizeof(s->role)) && name_ok(s->name, sizeof(s->name)) &&
           s->auth_time > 0;
}

static bool limits_ok(const struct dz_session_limits *l)
{
    /* Bounded so that wall-clock arithmetic cannot overflow int64. */
    const uint64_t year = 366ull * 24 * 3600 * 1000;

    return l && l->idle_ms && l->idle_high_ms && l->absolute_ms && l->idle_ms <= year &&
           l->idle_high_ms <= year && l->absolute_ms <= year;
}

static uint64_t idle_for(const struct dz_session_limits *l, const char *acr)
{
    return strcmp(acr, "high") == 0 ? l->idle_high_ms : l->idle_ms;
}

/* Exactly 43 base64url characters whose last one carries no stray bits, so
 * each 32-byte value has one spelling.  Branch-free over the whole string:
 * the time taken does not say where a guessed token went wrong. */
static bool token_ok(const char *t, size_t len)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned bad = 0;
    size_t i;

    if (!t || len != DZ_SESSION_TOKEN_LEN)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';

        bad |= !ok;
    }
    if (bad)
        return false;
    /* 43 * 6 = 258 bits for 256: the last character's low two bits are 0. */
    return ((size_t)(strchr(A, t[len - 1]) - A) & 3) == 0;
}

/* ---- record */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t u = 0;

    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}

/* Copy a NUL-terminated string into a zero-filled field (bytes after the NUL
 * in the caller's array never reach the store). */
static void put_str(unsigned char *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);

    memset(p, 0, cap);
    memcpy(p, s, n);
}

static bool get_str(char *dst, const unsigned char *p, size_t cap)
{
    if (!memchr(p, '\0', cap))
        return false;
    memcpy(dst, p, cap);
    return true;
}

static void encode(const struct dz_session *s, unsigned char rec[REC_LEN])
{
    memset(rec, 0, REC_LEN);
    rec[OFF_VERSION] = REC_VERSION;
    put_str(rec + OFF_FIN, s->fin, sizeof(s->fin));
    put_str(rec + OFF_METHOD, s->method, sizeof(s->method));
    put_u32(rec + OFF_AMR, s->amr);
    put_str(rec + OFF_ACR, s->acr, sizeof(s->acr));
    put_str(rec + OFF_ROLE, s->role, sizeof(s->role));
    put_i64(rec + OFF_AUTH, s->auth_time);
    put_i64(rec + OFF_CREATED, s->created_ms);
    put_i64(rec + OFF_ABS, s->expires_abs_ms);
    rec[OFF_HAS_PRF] = s->has_prf ? 1 : 0;
    if (s->has_prf)
        memcpy(rec + OFF_PRF, s->prf, sizeof(s->prf));
    put_str(rec + OFF_NAME, s->name, sizeof(s->name));
}

static int decode(const unsigned char *rec, size_t len, struct dz_session *s)
{
    bool v1 = len == REC_LEN_V1 && rec[OFF_VERSION] == REC_VERSION_V1;

    if (!v1 && (len != REC_LEN || rec[OFF_VERSION] != REC_VERSION))
        return DZ_ERR_PARSE;
    if (rec[OFF_HAS_PRF] > 1)
        return DZ_ERR_PARSE;
    if (v1)
        memset(s->name, 0, sizeof(s->name));
    else if (!get_str(s->name, rec + OFF_NAME, sizeof(s->name)))
        return DZ_ERR_PARSE;
    if (!get_str(s->fin, rec + OFF_FIN, sizeof(s->fin)) ||
        !get_str(s->method, rec + OFF_METHOD, sizeof(s->method)) ||
        !get_str(s->acr, rec + OFF_ACR, sizeof(s->acr)) ||
        !get_str(s->role, rec + OFF_ROLE, sizeof(s->role)))
        return DZ_ERR_PARSE;
    s->amr = get_u32(rec + OFF_AMR);
    s->auth_time = get_i64(rec + OFF_AUTH);
    s->created_ms = get_i64(rec + OFF_CREATED);
    s->expires_abs_ms = get_i64(rec + OFF_ABS);
    s->has_prf = rec[OFF_HAS_PRF] == 1;
    if (s->has_prf)
        memcpy(s->prf, rec + OFF_PRF, sizeof(s->prf));
    /* A record this file did not write is not a session. */
    if (!fields_ok(s) || s->created_ms <= 0 || s->expires_abs_ms <= s->created_ms)
        return DZ_ERR_PARSE;
    return 0;
}

/* ---- API */

int dz_session_create(struct dz_store *st, const struct dz_session_limits *l, struct dz_session *s,
                      char token_out[DZ_SESSION_TOKEN_LEN + 1])
{
    struct dz_session n;
    unsigned char raw[32];
    unsigned char rec[REC_LEN];
    uint64_t idle;
    uint64_t ttl;
    int64_t now;
    int rc = DZ_ERR_INVAL;
    int i;

    memset(&n, 0, sizeof(n));
    memset(raw, 0, sizeof(raw));
    memset(rec, 0, sizeof(rec));
    token_out[0] = '\0';
    if (!st || !s || !limits_ok(l) || !fields_ok(s))
        goto out;
    n = *s;
    now = wall_ms();
    idle = idle_for(l, n.acr);
    /* The store forgets the record at the sooner deadline, so even a store
     * that is never asked again holds a session no longer than allowed. */
    ttl = idle < l->absolute_ms ? idle : l->absolute_ms;
    n.created_ms = now;
    n.expires_abs_ms = now + (int64_t)l->absolute_ms;
    n.expires_idle_ms = now + (int64_t)idle;
    encode(&n, rec);
    for (i = 0; i < CREATE_TRIES; i++) {
        rc = dz_random(raw, sizeof(raw));
        if (rc)
            goto out;
        dz_b64_encode_to(raw, sizeof(raw), true, token_out);
        token_out[DZ_SESSION_TOKEN_LEN] = '\0';
        dz_sha256(token_out, DZ_SESSION_TOKEN_LEN, n.sid);
        rc = dz_store_put(st, DZ_SESSION_NS, n.sid, sizeof(n.sid), rec, sizeof(rec), ttl,
                          DZ_STORE_NX);
        /* NX: never overwrite. A collision (only a broken RNG makes one) must
         * not hand someone else's session to this login, so it draws again. */
        if (rc != DZ_ERR_EXISTS)
            break;
    }
    if (rc)
        goto out;
    *s = n;
out:
    if (rc)
        dz_secret_wipe(token_out, DZ_SESSION_TOKEN_LEN + 1);
    dz_secret_wipe(&n, sizeof(n));
    dz_secret_wipe(raw, sizeof(raw));
    dz_secret_wipe(rec, sizeof(rec));
    return rc;
}

int dz_session_lookup(struct dz_store *st, const struct dz_session_limits *l, const char *token,
                      size_t token_len, struct dz_session *out)
{
    struct dz_session s;
    unsigned char sid[32];
    struct dz_buf b;
    uint64_t idle;
    uint64_t ttl;
    int64_t now;
    int rc;

    memset(&s, 0, sizeof(s));
    dz_buf_init(&b, REC_LEN);
    if (out)
        memset(out, 0, sizeof(*out));
    if (!st || !out || !limits_ok(l)) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    /* Malformed is reported as not found: the caller cannot tell a badly
     * formed guess from an unknown or expired token, and the store is never
     * asked about input that cannot be a token. */
    if (!token_ok(token, token_len)) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    dz_sha256(token, token_len, sid);
    rc = dz_store_get(st, DZ_SESSION_NS, sid, sizeof(sid), &b);
    if (rc == DZ_ERR_TOOBIG)
        rc = DZ_ERR_PARSE; /* longer than any record we write */
    if (rc)
        goto out;
    rc = decode((const unsigned char *)b.data, b.len, &s);
    if (rc)
        goto out;
    now = wall_ms();
    if (now >= s.expires_abs_ms) {
        /* The store TTL should already have dropped it; this covers a wall
         * clock stepped forward, which the store's monotonic TTL does not see. */
        dz_store_del(st, DZ_SESSION_NS, sid, sizeof(sid));
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    idle = idle_for(l, s.acr);
    /* Sliding expiry: each use restarts the idle period, but never past
     * the absolute deadline written at login. */
    ttl = (uint64_t)(s.expires_abs_ms - now);
    if (idle < ttl)
        ttl = idle;
    /* Touch fails if a logout or expiry won the race since the get. */
    rc = dz_store_touch(st, DZ_SESSION_NS, sid, sizeof(sid), ttl);
    if (rc)
        goto out;
    s.expires_idle_ms = now + (int64_t)idle;
    memcpy(s.sid, sid, sizeof(sid));
    *out = s;
out:
    dz_buf_wipe(&b);
    dz_secret_wipe(&s, sizeof(s));
    return rc;
}

int dz_session_delete(struct dz_store *st, const char *token, size_t token_len)
{
    unsigned char sid[32];

    if (!st)
        return DZ_ERR_INVAL;
    if (!token_ok(token, token_len))
        return DZ_ERR_NOTFOUND;
    dz_sha256(token, token_len, sid);
    return dz_store_del(st, DZ_SESSION_NS, sid, sizeof(sid));
}

static int rfc3339(int64_t unix_ms, char out[32])
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;

    if (unix_ms < 0 || !gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999)
        return DZ_ERR_INVAL;
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return 0;
}

int dz_session_to_json(const struct dz_session *s, json_t **out)
{
    json_t *o = NULL;
    json_t *amr = NULL;
    char when[32];
    int64_t exp;
    int rc = DZ_ERR_INVAL;

    *out = NULL;
    if (!s || s->amr == 0 || (s->amr & ~(unsigned)DZ_AMR_ALL) || !memchr(s->fin, 0, 8) ||
        !memchr(s->method, 0, 16) || !memchr(s->acr, 0, 16))
        goto out;
    exp = s->expires_abs_ms;
    if (s->expires_idle_ms > 0 && s->expires_idle_ms < exp)
        exp = s->expires_idle_ms;
    if (rfc3339(exp, when))
        goto out;
    rc = DZ_ERR_NOMEM;
    o = json_object();
    /* One order for every amr array the gateway writes (assertion.c). */
    if (!o || dz_amr_to_json(s->amr, &amr) != 0)
        goto out;
    /* json_object_set_new takes the value even when it fails. */
    if (json_object_set_new(o, "amr", amr)) {
        amr = NULL;
        goto out;
    }
    amr = NULL;
    if (json_object_set_new(o, "fin", json_string(s->fin)) ||
        json_object_set_new(o, "acr", json_string(s->acr)) ||
        json_object_set_new(o, "method", json_string(s->method)) ||
        json_object_set_new(o, "expires_at", json_string(when)) ||
        json_object_set_new(o, "auth_time", json_integer(s->auth_time)))
        goto out;
    if (s->name[0] && name_ok(s->name, sizeof(s->name)) &&
        json_object_set_new(o, "name", json_string(s->name)))
        goto out;
    *out = o;
    o = NULL;
    rc = 0;
out:
    json_decref(amr);
    json_decref(o);
    return rc;
}

void dz_session_sid_b64(const struct dz_session *s, char out[DZ_SESSION_TOKEN_LEN + 1])
{
    dz_b64_encode_to(s->sid, sizeof(s->sid), true, out);
}

/* ---- asynchronous lookup: get, then (after the checks above) touch. */

struct lookup {
    struct dz_store *st;
    struct ev_loop *loop;
    struct dz_session_limits l;
    struct dz_session s;
    unsigned char sid[32];
    dz_session_cb cb;
    void *arg;
};

static void lookup_end(struct lookup *lk, int rc)
{
    lk->cb(lk->arg, rc, rc == 0 ? &lk->s : NULL);
    dz_secret_wipe(lk, sizeof(*lk));
    free(lk);
}

static void lookup_touched(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    (void)value;
    (void)data;
    (void)len;
    lookup_end(arg, rc);
}

/* A session past its absolute expiry, deleted (or not: it is refused all
 * the same, and its entry expires with its TTL). */
static void lookup_expired(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    (void)rc;
    (void)value;
    (void)data;
    (void)len;
    lookup_end(arg, DZ_ERR_NOTFOUND);
}

static void lookup_got(void *arg, int rc, int64_t value, const void *data, size_t len)
{
    struct lookup *lk = arg;
    const unsigned char *sid = lk->sid;
    uint64_t idle, ttl;
    int64_t now;

    (void)value;
    if (rc == 0 && len > REC_LEN)
        rc = DZ_ERR_PARSE; /* longer than any record we write */
    if (rc == 0)
        rc = decode(data, len, &lk->s);
    if (rc) {
        lookup_end(lk, rc);
        return;
    }
    now = wall_ms();
    if (now >= lk->s.expires_abs_ms) {
        /* As in dz_session_lookup (rare: a wall clock stepped forward);
         * without waiting on the loop either. */
        dz_store_del_async(lk->st, lk->loop, DZ_SESSION_NS, sid, sizeof(lk->sid), lookup_expired,
                           lk);
        return;
    }
    idle = idle_for(&lk->l, lk->s.acr);
    ttl = (uint64_t)(lk->s.expires_abs_ms - now);
    if (idle < ttl)
        ttl = idle;
    lk->s.expires_idle_ms = now + (int64_t)idle;
    memcpy(lk->s.sid, sid, sizeof(lk->sid));
    /* Touch fails if a logout or expiry won the race since the get. */
    dz_store_touch_async(lk->st, lk->loop, DZ_SESSION_NS, sid, sizeof(lk->sid), ttl, lookup_touched,
                         lk);
}

void dz_session_lookup_async(struct dz_store *st, struct ev_loop *loop,
                             const struct dz_session_limits *l, const char *token, size_t token_len,
                             dz_session_cb cb, void *arg)
{
    struct lookup *lk;

    if (!st || !loop || !limits_ok(l)) {
        cb(arg, DZ_ERR_INVAL, NULL);
        return;
    }
    if (!token_ok(token, token_len)) {
        cb(arg, DZ_ERR_NOTFOUND, NULL);
        return;
    }
    lk = calloc(1, sizeof(*lk));
    if (!lk) {
        cb(arg, DZ_ERR_NOMEM, NULL);
        return;
    }
    lk->st = st;
    lk->loop = loop;
    lk->l = *l;
    lk->cb = cb;
    lk->arg = arg;
    dz_sha256(token, token_len, lk->sid);
    dz_store_get_async(st, loop, DZ_SESSION_NS, lk->sid, sizeof(lk->sid), lookup_got, lk);
}
