/* test_session.c - login sessions over the in-process store.  The store
 * sources are included so the test can walk every stored byte (no token may
 * be there) and wrap the store in a counting backend (a malformed token must
 * not reach it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* System headers first: the included .c files pull in compat.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../gateway/state/session.c"
#include "../../gateway/state/store.c"
#include "../../gateway/state/store_mem.c"

#include <ev.h>

#include "base/b64.h"

static const struct dz_session_limits LIM = {
    .idle_ms = 30u * 60u * 1000u, .idle_high_ms = 15u * 60u * 1000u, .absolute_ms = 12u * 3600000u};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static struct dz_store *mkstore(void)
{
    struct dz_store *s = NULL;

    assert_int_equal(dz_store_mem_new(4, NULL, &s), 0);
    return s;
}

static struct dz_session person(const char *method, unsigned amr, const char *acr)
{
    struct dz_session s;

    memset(&s, 0, sizeof(s));
    memcpy(s.fin, "AB12C3D", 8);
    snprintf(s.method, sizeof(s.method), "%s", method);
    s.amr = amr;
    snprintf(s.acr, sizeof(s.acr), "%s", acr);
    s.auth_time = (int64_t)time(NULL);
    return s;
}

/* ---- a store wrapper that counts every call */

static unsigned calls;

static int c_put(void *i, enum dz_store_kind kind, const char *ns, const void *k, size_t kl,
                 const void *v, size_t vl, uint64_t ttl, int f)
{
    (void)kind; /* the wrapped store finds it again */
    calls++;
    return dz_store_put(i, ns, k, kl, v, vl, ttl, f);
}
static int c_get(void *i, const char *ns, const void *k, size_t kl, struct dz_buf *o)
{
    calls++;
    return dz_store_get(i, ns, k, kl, o);
}
static int c_take(void *i, const char *ns, const void *k, size_t kl, struct dz_buf *o)
{
    calls++;
    return dz_store_take(i, ns, k, kl, o);
}
static int c_del(void *i, const char *ns, const void *k, size_t kl)
{
    calls++;
    return dz_store_del(i, ns, k, kl);
}
static int c_del_if(void *i, const char *ns, const void *k, size_t kl, const void *v, size_t vl)
{
    calls++;
    return dz_store_del_if(i, ns, k, kl, v, vl);
}
static int c_incr(void *i, enum dz_store_kind kind, const char *ns, const void *k, size_t kl,
                  uint64_t ttl, int64_t *o)
{
    (void)kind;
    calls++;
    return dz_store_incr(i, ns, k, kl, ttl, o);
}
static int c_ttl(void *i, const char *ns, const void *k, size_t kl, uint64_t *o)
{
    calls++;
    return dz_store_ttl(i, ns, k, kl, o);
}
static int c_touch(void *i, const char *ns, const void *k, size_t kl, uint64_t ttl)
{
    calls++;
    return dz_store_touch(i, ns, k, kl, ttl);
}
static size_t c_count(void *i, const char *ns)
{
    calls++;
    return dz_store_count(i, ns);
}
static void c_free(void *i)
{
    dz_store_free(i);
}
static const struct dz_store_ops counting_ops = {
    .put = c_put,
    .get = c_get,
    .take = c_take,
    .del = c_del,
    .del_if = c_del_if,
    .incr = c_incr,
    .ttl = c_ttl,
    .touch = c_touch,
    .count = c_count,
    .free = c_free,
};

/* ---- tests */

static void test_create_lookup_delete(void **state)
{
    struct dz_store *st = mkstore();
    struct dz_session s = person("password", DZ_AMR_PWD | DZ_AMR_OTP, "substantial");
    struct dz_session got;
    struct dz_session s2;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    char tok2[DZ_SESSION_TOKEN_LEN + 1];
    unsigned char h[32];
    int64_t before = (int64_t)time(NULL) * 1000;

    (void)state;
    snprintf(s.role, sizeof(s.role), "judge");
    s.has_prf = true;
    memset(s.prf, 0xab, sizeof(s.prf));
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    assert_int_equal(strlen(tok), DZ_SESSION_TOKEN_LEN);
    dz_sha256(tok, DZ_SESSION_TOKEN_LEN, h);
    assert_memory_equal(h, s.sid, 32);
    assert_true(s.created_ms >= before - 1000 && s.created_ms <= before + 2000);
    assert_true(s.expires_abs_ms == s.created_ms + (int64_t)LIM.absolute_ms);
    assert_true(s.expires_idle_ms == s.created_ms + (int64_t)LIM.idle_ms);
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 1);

    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    assert_string_equal(got.fin, "AB12C3D");
    assert_string_equal(got.method, "password");
    assert_string_equal(got.acr, "substantial");
    assert_string_equal(got.role, "judge");
    assert_int_equal(got.amr, DZ_AMR_PWD | DZ_AMR_OTP);
    assert_true(got.auth_time == s.auth_time);
    assert_true(got.created_ms == s.created_ms);
    assert_true(got.expires_abs_ms == s.expires_abs_ms);
    assert_true(got.expires_idle_ms >= s.expires_idle_ms);
    assert_true(got.has_prf);
    assert_memory_equal(got.prf, s.prf, 32);
    assert_memory_equal(got.sid, s.sid, 32);

    /* every login is a new token and a new session */
    s2 = person("password", DZ_AMR_PWD, "low");
    assert_int_equal(dz_session_create(st, &LIM, &s2, tok2), 0);
    assert_string_not_equal(tok, tok2);
    assert_memory_not_equal(s.sid, s2.sid, 32);
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 2);

    /* logout removes exactly that session */
    assert_int_equal(dz_session_delete(st, tok, strlen(tok)), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_NOTFOUND);
    assert_int_equal(got.amr, 0); /* out zeroed */
    assert_int_equal(dz_session_delete(st, tok, strlen(tok)), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_session_lookup(st, &LIM, tok2, strlen(tok2), &got), 0);
    assert_string_equal(got.acr, "low");
    assert_false(got.has_prf);
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 1);
    dz_store_free(st);
}

static void test_idle_expiry_high_vs_low(void **state)
{
    const struct dz_session_limits lim = {
        .idle_ms = 300, .idle_high_ms = 100, .absolute_ms = 60000};
    struct dz_store *st = mkstore();
    struct dz_session lo = person("password", DZ_AMR_PWD, "low");
    struct dz_session hi = person("card", DZ_AMR_SC | DZ_AMR_PIN, "high");
    struct dz_session got;
    char tlo[DZ_SESSION_TOKEN_LEN + 1];
    char thi[DZ_SESSION_TOKEN_LEN + 1];
    uint64_t ms = 0;
    int i;

    (void)state;
    assert_int_equal(dz_session_create(st, &lim, &lo, tlo), 0);
    assert_int_equal(dz_session_create(st, &lim, &hi, thi), 0);
    assert_true(hi.expires_idle_ms - hi.created_ms == 100);
    assert_int_equal(dz_store_ttl(st, DZ_SESSION_NS, hi.sid, 32, &ms), 0);
    assert_true(ms <= 100);
    sleep_ms(160);
    /* high idles out after 100 ms; low (300 ms) is still there */
    assert_int_equal(dz_session_lookup(st, &lim, thi, strlen(thi), &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_session_lookup(st, &lim, tlo, strlen(tlo), &got), 0);
    /* sliding: used every 150 ms for 900 ms it stays, each use restarts idle */
    for (i = 0; i < 6; i++) {
        sleep_ms(150);
        assert_int_equal(dz_session_lookup(st, &lim, tlo, strlen(tlo), &got), 0);
        assert_int_equal(dz_store_ttl(st, DZ_SESSION_NS, got.sid, 32, &ms), 0);
        assert_true(ms > 200 && ms <= 300);
    }
    /* left alone it goes */
    sleep_ms(360);
    assert_int_equal(dz_session_lookup(st, &lim, tlo, strlen(tlo), &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 0);
    dz_store_free(st);
}

static void test_absolute_cap(void **state)
{
    const struct dz_session_limits lim = {.idle_ms = 200, .idle_high_ms = 200, .absolute_ms = 350};
    struct dz_store *st = mkstore();
    struct dz_session s = person("mobile", DZ_AMR_MOB | DZ_AMR_PIN, "high");
    struct dz_session got;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    uint64_t ms = 0;
    int64_t t = 0;
    int alive = 0;
    int i;

    (void)state;
    assert_int_equal(dz_session_create(st, &lim, &s, tok), 0);
    /* Kept busy (every 60 ms, well inside the 200 ms idle), it lives past
     * the idle limit but ends at the absolute one; the store TTL never
     * reaches past it. */
    for (i = 0; i < 20; i++) {
        sleep_ms(60);
        t = wall_ms();
        if (dz_session_lookup(st, &lim, tok, strlen(tok), &got) != 0)
            break;
        alive++;
        assert_true(t < s.expires_abs_ms);
        assert_int_equal(dz_store_ttl(st, DZ_SESSION_NS, got.sid, 32, &ms), 0);
        assert_true(ms <= 200);
        assert_true((int64_t)ms <= s.expires_abs_ms - t);
    }
    assert_true(i < 20);
    assert_true(t >= s.expires_abs_ms - 20);
    assert_true(t - s.created_ms > 200);
    assert_true(alive >= 2);
    assert_int_equal(dz_session_lookup(st, &lim, tok, strlen(tok), &got), DZ_ERR_NOTFOUND);
    dz_store_free(st);
}

static void test_bad_tokens_do_not_touch_store(void **state)
{
    struct dz_store *inner = mkstore();
    struct dz_store *st = NULL;
    struct dz_session s = person("qr", DZ_AMR_QR | DZ_AMR_MOB | DZ_AMR_PIN, "high");
    struct dz_session got;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    char bad[64];
    unsigned before;
    size_t i;
    const char *shapes[] = {
        "",
        "A",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* padding */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",  /* base64, not url */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/AAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", /* stray low bits */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_", /* 63: low bits set */
        "AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAA",
        "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };

    (void)state;
    assert_int_equal(dz_store_new(&counting_ops, inner, &st), 0);
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    before = calls;
    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        assert_int_equal(dz_session_lookup(st, &LIM, shapes[i], strlen(shapes[i]), &got),
                         DZ_ERR_NOTFOUND);
        assert_int_equal(dz_session_delete(st, shapes[i], strlen(shapes[i])), DZ_ERR_NOTFOUND);
    }
    /* an embedded NUL, and the real token with a length that cuts it short
     * or runs past it */
    memcpy(bad, tok, sizeof(tok));
    bad[10] = '\0';
    assert_int_equal(dz_session_lookup(st, &LIM, bad, DZ_SESSION_TOKEN_LEN, &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, DZ_SESSION_TOKEN_LEN - 1, &got),
                     DZ_ERR_NOTFOUND);
    memcpy(bad, tok, DZ_SESSION_TOKEN_LEN);
    bad[DZ_SESSION_TOKEN_LEN] = 'A';
    assert_int_equal(dz_session_lookup(st, &LIM, bad, DZ_SESSION_TOKEN_LEN + 1, &got),
                     DZ_ERR_NOTFOUND);
    assert_int_equal(dz_session_lookup(st, &LIM, NULL, 0, &got), DZ_ERR_NOTFOUND);
    assert_int_equal(calls, before);
    /* a well-formed token that was never issued does reach the store */
    assert_int_equal(dz_session_lookup(st, &LIM, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE",
                                       DZ_SESSION_TOKEN_LEN, &got),
                     DZ_ERR_NOTFOUND);
    assert_true(calls > before);
    /* the issued one still works */
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    dz_store_free(st);
}

/* Walk every entry in the in-process store: neither the token text nor the
 * 32 random bytes behind it may appear in any key or value. */
static void test_store_holds_no_token(void **state)
{
    struct dz_store *st = mkstore();
    struct mem *m = st->impl;
    struct dz_session s = person("card", DZ_AMR_SC | DZ_AMR_PIN, "high");
    struct dz_session got;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    size_t seen = 0;
    unsigned i;
    size_t j;

    (void)state;
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    assert_int_equal(dz_b64_decode(tok, strlen(tok), true, &raw, &raw_len), 0);
    assert_int_equal(raw_len, 32);
    for (i = 0; i < m->nshards; i++) {
        for (j = 0; j < m->shards[i].nb; j++) {
            const struct entry *e;

            for (e = m->shards[i].b[j]; e; e = e->next) {
                seen++;
                assert_int_equal(e->key_len, 32); /* SHA-256 */
                assert_memory_equal(e->k + e->ns_len, s.sid, 32);
                assert_int_equal(e->val_len, REC_LEN);
                assert_null(memmem(e->k, e->ns_len + e->key_len, tok, 8));
                assert_null(memmem(e->val, e->val_len, tok, 8));
                assert_null(memmem(e->val, e->val_len, raw, 8));
                assert_null(memmem(e->k, e->ns_len + e->key_len, raw, 8));
            }
        }
    }
    assert_int_equal(seen, 1);
    free(raw);
    dz_store_free(st);
}

static void test_create_rejects_bad_fields(void **state)
{
    struct dz_store *st = mkstore();
    struct dz_session s;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    struct dz_session_limits lim = LIM;

    (void)state;
#define BAD(mutate)                                                                                \
    do {                                                                                           \
        s = person("password", DZ_AMR_PWD, "low");                                                 \
        mutate;                                                                                    \
        memset(tok, 'x', sizeof(tok));                                                             \
        assert_int_equal(dz_session_create(st, &lim, &s, tok), DZ_ERR_INVAL);                      \
        assert_int_equal(tok[0], '\0');                                                            \
        lim = LIM;                                                                                 \
    } while (0)
    BAD(memcpy(s.fin, "ab12c3d", 8));
    BAD(memcpy(s.fin, "AB12C3", 7));
    BAD(memset(s.fin, 'A', 8)); /* no NUL */
    BAD(snprintf(s.method, sizeof(s.method), "sms"));
    BAD(snprintf(s.acr, sizeof(s.acr), "medium"));
    BAD(memset(s.acr, 'h', sizeof(s.acr)));
    BAD(s.amr = 0);
    BAD(s.amr = 64);
    BAD(snprintf(s.role, sizeof(s.role), "ju dge"));
    BAD(memset(s.role, 'r', sizeof(s.role)));
    BAD(s.auth_time = 0);
    BAD(lim.idle_ms = 0);
    BAD(lim.absolute_ms = 0);
    BAD(lim.absolute_ms = UINT64_MAX);
#undef BAD
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 0);
    dz_store_free(st);
}

/* The asynchronous lookup (the forward path) answers as the synchronous
 * one: the record, the slid idle expiry, not found after a logout, a bad
 * token at once without the store, a corrupt record as a parse error. */
struct lookup_seen {
    int calls;
    int rc;
    struct dz_session s;
};

static void on_lookup(void *arg, int rc, const struct dz_session *s)
{
    struct lookup_seen *l = arg;

    l->calls++;
    l->rc = rc;
    if (s)
        l->s = *s;
    else
        memset(&l->s, 0, sizeof(l->s));
}

static void test_lookup_async(void **state)
{
    struct dz_store *st = mkstore();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dz_session s = person("password", DZ_AMR_PWD | DZ_AMR_OTP, "substantial");
    struct lookup_seen l;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    uint64_t ttl = 0;

    (void)state;
    assert_non_null(loop);
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    assert_int_equal(dz_store_touch(st, DZ_SESSION_NS, s.sid, 32, 1000), 0);
    memset(&l, 0, sizeof(l));
    dz_session_lookup_async(st, loop, &LIM, tok, strlen(tok), on_lookup, &l);
    assert_int_equal(l.calls, 1); /* in process: at once */
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.s.fin, "AB12C3D");
    assert_string_equal(l.s.acr, "substantial");
    assert_int_equal(l.s.amr, DZ_AMR_PWD | DZ_AMR_OTP);
    assert_memory_equal(l.s.sid, s.sid, 32);
    assert_true(l.s.expires_abs_ms == s.expires_abs_ms);
    assert_int_equal(dz_store_ttl(st, DZ_SESSION_NS, s.sid, 32, &ttl), 0);
    assert_true(ttl > 1000); /* the idle expiry slid again */

    memset(&l, 0, sizeof(l));
    dz_session_lookup_async(st, loop, &LIM, "short", 5, on_lookup, &l);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.rc, DZ_ERR_NOTFOUND);

    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, "x", 1, 60000, 0), 0);
    memset(&l, 0, sizeof(l));
    dz_session_lookup_async(st, loop, &LIM, tok, strlen(tok), on_lookup, &l);
    assert_int_equal(l.rc, DZ_ERR_PARSE);

    assert_int_equal(dz_session_delete(st, tok, strlen(tok)), 0);
    memset(&l, 0, sizeof(l));
    dz_session_lookup_async(st, loop, &LIM, tok, strlen(tok), on_lookup, &l);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.rc, DZ_ERR_NOTFOUND);
    dz_store_free(st);
    ev_loop_destroy(loop);
}

static void test_corrupt_record_fails_closed(void **state)
{
    struct dz_store *st = mkstore();
    struct dz_session s = person("password", DZ_AMR_PWD, "low");
    struct dz_session got;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    struct dz_buf b;
    unsigned char rec[REC_LEN];

    (void)state;
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_get(st, DZ_SESSION_NS, s.sid, 32, &b), 0);
    assert_int_equal(b.len, REC_LEN);
    memcpy(rec, b.data, REC_LEN);
    /* another version */
    rec[OFF_VERSION] = 3;
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, rec, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    /* an unterminated string */
    memcpy(rec, b.data, REC_LEN);
    memset(rec + OFF_ACR, 'h', 16);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, rec, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    /* an acr this file never writes */
    memcpy(rec, b.data, REC_LEN);
    memcpy(rec + OFF_ACR, "root", 5);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, rec, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    /* short and long */
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN - 1, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, "x", 1, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    memcpy(rec, b.data, REC_LEN);
    {
        unsigned char big[REC_LEN + 1];

        memcpy(big, rec, REC_LEN);
        big[REC_LEN] = 0;
        assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, big, sizeof(big), 60000, 0), 0);
        assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    }
    /* an absolute expiry in the past: gone, and deleted */
    put_i64(rec + OFF_ABS, (int64_t)time(NULL) * 1000 - 1000);
    put_i64(rec + OFF_CREATED, (int64_t)time(NULL) * 1000 - 5000);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, rec, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_store_count(st, DZ_SESSION_NS), 0);
    /* the original record works again */
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    dz_buf_cleanup(&b);
    dz_store_free(st);
}

/* The name: kept from create to lookup and in the public view; version 1
 * records (before names) still read, with no name; a name that is not
 * clean UTF-8 is never stored. */
static void test_name(void **state)
{
    struct dz_store *st = mkstore();
    struct dz_session s = person("card", DZ_AMR_SC | DZ_AMR_PIN, "high");
    struct dz_session got;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    char long_name[200];
    struct dz_buf b;
    json_t *j = NULL;

    (void)state;
    dz_session_set_name(&s, "Aysel Məmmədova");
    assert_string_equal(s.name, "Aysel Məmmədova");
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    assert_string_equal(got.name, "Aysel Məmmədova");
    assert_int_equal(dz_session_to_json(&got, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Aysel Məmmədova");
    json_decref(j);
    /* a version 1 record: the first REC_LEN_V1 bytes, version 1 */
    dz_buf_init(&b, 1024);
    assert_int_equal(dz_store_get(st, DZ_SESSION_NS, s.sid, 32, &b), 0);
    ((unsigned char *)b.data)[OFF_VERSION] = 1;
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN_V1, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), 0);
    assert_string_equal(got.name, "");
    assert_string_equal(got.fin, s.fin);
    assert_int_equal(dz_session_to_json(&got, &j), 0);
    assert_null(json_object_get(j, "name"));
    json_decref(j);
    /* version 2 with the v1 length, and an unterminated name: refused */
    ((unsigned char *)b.data)[OFF_VERSION] = 2;
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN_V1, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    memset((unsigned char *)b.data + OFF_NAME, 'x', DZ_SESSION_NAME_MAX);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    /* a control character in a stored name: refused */
    memset((unsigned char *)b.data + OFF_NAME, 0, DZ_SESSION_NAME_MAX);
    memcpy((unsigned char *)b.data + OFF_NAME, "A\nB", 3);
    assert_int_equal(dz_store_put(st, DZ_SESSION_NS, s.sid, 32, b.data, REC_LEN, 60000, 0), 0);
    assert_int_equal(dz_session_lookup(st, &LIM, tok, strlen(tok), &got), DZ_ERR_PARSE);
    dz_buf_cleanup(&b);
    /* set_name: bad UTF-8, control characters and NULL leave it unknown */
    dz_session_set_name(&s, "Ali\xff");
    assert_string_equal(s.name, "");
    dz_session_set_name(&s, "Ali\tVeli");
    assert_string_equal(s.name, "");
    dz_session_set_name(&s, "\xc3\xa9\xed\xa0\x80"); /* a surrogate */
    assert_string_equal(s.name, "");
    dz_session_set_name(&s, NULL);
    assert_string_equal(s.name, "");
    /* too long: cut between characters ("ə" is two bytes) */
    for (size_t i = 0; i + 2 < sizeof(long_name); i += 2)
        memcpy(long_name + i, "ə", 2);
    long_name[sizeof(long_name) - 2] = '\0';
    dz_session_set_name(&s, long_name);
    assert_int_equal(strlen(s.name), DZ_SESSION_NAME_MAX - 2);
    assert_memory_equal(s.name, long_name, DZ_SESSION_NAME_MAX - 2);
    dz_store_free(st);
}

static void test_record_is_fully_defined(void **state)
{
    struct dz_session a = person("password", DZ_AMR_PWD, "low");
    struct dz_session b;
    unsigned char ra[REC_LEN];
    unsigned char rb[REC_LEN];

    (void)state;
    /* junk after the NULs in the caller's arrays never reaches the record */
    memset(&b, 0x5a, sizeof(b));
    memcpy(b.fin, "AB12C3D", 8);
    memcpy(b.method, "password", 9);
    memcpy(b.acr, "low", 4);
    b.role[0] = '\0';
    b.name[0] = '\0';
    b.amr = a.amr;
    b.auth_time = a.auth_time;
    b.created_ms = a.created_ms = 1;
    b.expires_abs_ms = a.expires_abs_ms = 2;
    b.has_prf = false;
    encode(&a, ra);
    encode(&b, rb);
    assert_memory_equal(ra, rb, REC_LEN);
}

static void test_to_json(void **state)
{
    struct dz_session s = person("qr", DZ_AMR_PIN | DZ_AMR_MOB | DZ_AMR_QR, "high");
    json_t *j = NULL;
    char *txt;

    (void)state;
    s.auth_time = 1764000000;
    s.expires_abs_ms = 1764043200000;  /* 2025-11-25T04:00:00Z */
    s.expires_idle_ms = 1764000900000; /* 2025-11-24T16:15:00Z, earlier */
    assert_int_equal(dz_session_to_json(&s, &j), 0);
    txt = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"acr\":\"high\",\"amr\":[\"qr\",\"mob\",\"pin\"],"
                             "\"auth_time\":1764000000,\"expires_at\":\"2025-11-24T16:15:00Z\","
                             "\"fin\":\"AB12C3D\",\"method\":\"qr\"}");
    free(txt);
    json_decref(j);
    /* absolute earlier than idle */
    s.expires_idle_ms = 1764050000000;
    s.amr = DZ_AMR_SC | DZ_AMR_PIN;
    assert_int_equal(dz_session_to_json(&s, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "expires_at")),
                        "2025-11-25T04:00:00Z");
    assert_int_equal(json_array_size(json_object_get(j, "amr")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "amr"), 0)), "sc");
    assert_null(json_object_get(j, "token"));
    json_decref(j);
    s.amr = DZ_AMR_PWD | DZ_AMR_OTP;
    assert_int_equal(dz_session_to_json(&s, &j), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "amr"), 1)), "otp");
    json_decref(j);
    s.amr = 0;
    assert_int_equal(dz_session_to_json(&s, &j), DZ_ERR_INVAL);
    assert_null(j);
    s.amr = DZ_AMR_PWD;
    s.expires_abs_ms = -5;
    s.expires_idle_ms = 0;
    assert_int_equal(dz_session_to_json(&s, &j), DZ_ERR_INVAL);
}

static void test_store_full_and_sid_b64(void **state)
{
    struct dz_store *st = NULL;
    struct dz_session s = person("password", DZ_AMR_PWD, "low");
    struct dz_session s2 = person("password", DZ_AMR_PWD, "low");
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    char tok2[DZ_SESSION_TOKEN_LEN + 1];
    char sid[DZ_SESSION_TOKEN_LEN + 1];
    unsigned char *dec = NULL;
    size_t dec_len = 0;

    (void)state;
    struct dz_store_quotas q;
    dz_store_quotas_default(&q);
    q.max[DZ_STORE_SESSIONS] = 1;
    assert_int_equal(mem_new(1, &q, &st), 0);
    assert_int_equal(dz_session_create(st, &LIM, &s, tok), 0);
    memset(tok2, 'x', sizeof(tok2));
    assert_int_equal(dz_session_create(st, &LIM, &s2, tok2), DZ_ERR_FULL);
    assert_int_equal(tok2[0], '\0');
    dz_session_sid_b64(&s, sid);
    assert_int_equal(strlen(sid), 43);
    assert_int_equal(dz_b64_decode(sid, 43, true, &dec, &dec_len), 0);
    assert_int_equal(dec_len, 32);
    assert_memory_equal(dec, s.sid, 32);
    free(dec);
    dz_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_lookup_delete),
        cmocka_unit_test(test_idle_expiry_high_vs_low),
        cmocka_unit_test(test_absolute_cap),
        cmocka_unit_test(test_bad_tokens_do_not_touch_store),
        cmocka_unit_test(test_store_holds_no_token),
        cmocka_unit_test(test_create_rejects_bad_fields),
        cmocka_unit_test(test_corrupt_record_fails_closed),
        cmocka_unit_test(test_lookup_async),
        cmocka_unit_test(test_record_is_fully_defined),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_store_full_and_sid_b64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
