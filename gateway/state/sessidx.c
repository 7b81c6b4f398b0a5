/*
 * sessidx.c - the slots of a person's sessions; see sessidx.h.
 */
#include "state/sessidx.h"

#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"

#include "base/compat.h"

/* sid (32) | created_ms (8, big-endian) | method (16) | acr (16) | addr (46) */
#define SLOT_LEN (32 + 8 + 16 + 16 + DZ_SESSIDX_ADDR_MAX)
#define KEY_LEN (DZ_FIN_LEN + 1)

static void slot_key(const char *fin, unsigned slot, unsigned char key[KEY_LEN])
{
    memcpy(key, fin, DZ_FIN_LEN);
    key[DZ_FIN_LEN] = (unsigned char)slot;
}

static void encode(const struct dz_sessidx_entry *e, unsigned char v[SLOT_LEN])
{
    uint64_t t = (uint64_t)e->created_ms;

    memset(v, 0, SLOT_LEN);
    memcpy(v, e->sid, 32);
    for (int i = 7; i >= 0; i--) {
        v[32 + i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    memcpy(v + 40, e->method, strnlen(e->method, 15));
    memcpy(v + 56, e->acr, strnlen(e->acr, 15));
    memcpy(v + 72, e->addr, strnlen(e->addr, DZ_SESSIDX_ADDR_MAX - 1));
}

static int decode(const struct dz_buf *b, struct dz_sessidx_entry *e)
{
    const unsigned char *v = (const unsigned char *)b->data;
    uint64_t t = 0;

    if (b->len != SLOT_LEN)
        return DZ_ERR_PARSE;
    memset(e, 0, sizeof(*e));
    memcpy(e->sid, v, 32);
    for (int i = 0; i < 8; i++)
        t = (t << 8) | v[32 + i];
    e->created_ms = (int64_t)t;
    memcpy(e->method, v + 40, 15);
    memcpy(e->acr, v + 56, 15);
    memcpy(e->addr, v + 72, DZ_SESSIDX_ADDR_MAX - 1);
    return 0;
}

/* Read slot: 0 with *live and e filled, DZ_ERR_NOTFOUND (empty), or an
 * error.  A dead slot (its session gone) is freed and reads as empty. */
static int read_slot(struct dz_store *st, const char *fin, unsigned slot,
                     struct dz_sessidx_entry *e)
{
    unsigned char key[KEY_LEN];
    struct dz_buf b;
    uint64_t left = 0;
    int rc;

    slot_key(fin, slot, key);
    dz_buf_init(&b, SLOT_LEN);
    rc = dz_store_get(st, DZ_SESSIDX_NS, key, sizeof(key), &b);
    if (rc == 0)
        rc = decode(&b, e);
    dz_buf_cleanup(&b);
    if (rc == DZ_ERR_PARSE) {
        /* not ours: free the slot rather than trust it */
        dz_store_del(st, DZ_SESSIDX_NS, key, sizeof(key));
        return DZ_ERR_NOTFOUND;
    }
    if (rc != 0)
        return rc;
    rc = dz_store_ttl(st, DZ_SESSION_NS, e->sid, sizeof(e->sid), &left);
    if (rc == DZ_ERR_NOTFOUND) {
        dz_store_del(st, DZ_SESSIDX_NS, key, sizeof(key));
        return DZ_ERR_NOTFOUND;
    }
    return rc;
}

int dz_sessidx_add(struct dz_store *st, const struct dz_session *s, const char *addr,
                   int64_t now_ms)
{
    struct dz_sessidx_entry e, old;
    unsigned char key[KEY_LEN], v[SLOT_LEN];
    uint64_t ttl;
    int64_t oldest_ms = INT64_MAX;
    unsigned oldest = DZ_SESSIDX_SLOTS;
    int rc = DZ_ERR_FULL;

    if (!st || !s || !dz_fin_is_normal(s->fin) || s->expires_abs_ms <= now_ms)
        return DZ_ERR_INVAL;
    memset(&e, 0, sizeof(e));
    memcpy(e.sid, s->sid, sizeof(e.sid));
    e.created_ms = s->created_ms;
    snprintf(e.method, sizeof(e.method), "%s", s->method);
    snprintf(e.acr, sizeof(e.acr), "%s", s->acr);
    snprintf(e.addr, sizeof(e.addr), "%s", addr ? addr : "");
    encode(&e, v);
    ttl = (uint64_t)(s->expires_abs_ms - now_ms);
    /* Two passes: the first may free dead slots or the oldest live one. */
    for (int pass = 0; pass < 2 && rc == DZ_ERR_FULL; pass++) {
        for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
            slot_key(s->fin, i, key);
            rc = dz_store_put(st, DZ_SESSIDX_NS, key, sizeof(key), v, sizeof(v), ttl, DZ_STORE_NX);
            if (rc == 0)
                return 0;
            if (rc != DZ_ERR_EXISTS)
                return rc;
            rc = read_slot(st, s->fin, i, &old);
            if (rc == DZ_ERR_NOTFOUND) {
                /* freed just now (dead): take it */
                rc = dz_store_put(st, DZ_SESSIDX_NS, key, sizeof(key), v, sizeof(v), ttl,
                                  DZ_STORE_NX);
                if (rc == 0)
                    return 0;
                if (rc != DZ_ERR_EXISTS)
                    return rc;
            } else if (rc != 0) {
                return rc;
            } else if (old.created_ms < oldest_ms) {
                oldest_ms = old.created_ms;
                oldest = i;
            }
            rc = DZ_ERR_FULL;
        }
        if (pass == 0 && oldest < DZ_SESSIDX_SLOTS && read_slot(st, s->fin, oldest, &old) == 0)
            dz_sessidx_end(st, s->fin, old.sid);
    }
    return rc;
}

int dz_sessidx_list(struct dz_store *st, const char *fin, struct dz_sessidx_entry *out, size_t *n)
{
    struct dz_sessidx_entry e;
    int rc;

    if (n)
        *n = 0;
    if (!st || !dz_fin_is_normal(fin) || !out || !n)
        return DZ_ERR_INVAL;
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        rc = read_slot(st, fin, i, &e);
        if (rc == DZ_ERR_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        /* insertion sort by start time: at most 16 */
        size_t j = *n;
        while (j > 0 && out[j - 1].created_ms > e.created_ms) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = e;
        (*n)++;
    }
    return 0;
}

int dz_sessidx_end(struct dz_store *st, const char *fin, const unsigned char sid[32])
{
    struct dz_sessidx_entry e;
    unsigned char key[KEY_LEN];
    int rc;

    if (!st || !dz_fin_is_normal(fin) || !sid)
        return DZ_ERR_INVAL;
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        rc = read_slot(st, fin, i, &e);
        if (rc == DZ_ERR_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (memcmp(e.sid, sid, 32) != 0)
            continue;
        /* The session first: once it is gone it cannot be used, whatever
         * happens to its slot. */
        rc = dz_store_del(st, DZ_SESSION_NS, sid, 32);
        if (rc != 0 && rc != DZ_ERR_NOTFOUND)
            return rc;
        slot_key(fin, i, key);
        rc = dz_store_del(st, DZ_SESSIDX_NS, key, sizeof(key));
        return rc == DZ_ERR_NOTFOUND ? 0 : rc;
    }
    return DZ_ERR_NOTFOUND;
}

int dz_sessidx_end_all(struct dz_store *st, const char *fin, const unsigned char *keep,
                       size_t *ended)
{
    struct dz_sessidx_entry list[DZ_SESSIDX_SLOTS];
    size_t n = 0;
    int first = 0;
    int rc;

    if (ended)
        *ended = 0;
    rc = dz_sessidx_list(st, fin, list, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (keep && memcmp(list[i].sid, keep, 32) == 0)
            continue;
        rc = dz_sessidx_end(st, fin, list[i].sid);
        if (rc == 0 && ended)
            (*ended)++;
        else if (rc != 0 && rc != DZ_ERR_NOTFOUND && first == 0)
            first = rc;
    }
    return first;
}
