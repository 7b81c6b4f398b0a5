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

/* A slot as read: its entry, and the bytes it was read from (what a
 * compare-and-delete of the slot must still find there). */
struct slot {
    struct dz_sessidx_entry e;
    unsigned char raw[SLOT_LEN];
};

/* Free slot i only if it still holds raw: an entry a login wrote there
 * since the read (after someone else freed the slot) is never deleted, or
 * its live session would be left out of the list.  0 or a store error. */
static int free_slot(struct dz_store *st, const char *fin, unsigned i, const void *raw,
                     size_t raw_len)
{
    unsigned char key[KEY_LEN];
    int rc;

    slot_key(fin, i, key);
    rc = dz_store_del_if(st, DZ_SESSIDX_NS, key, sizeof(key), raw, raw_len);
    return rc == DZ_ERR_NOTFOUND || rc == DZ_ERR_EXISTS ? 0 : rc;
}

/* Read slot: 0 with sl filled (its session live), DZ_ERR_NOTFOUND (empty),
 * or an error.  A dead slot (its session gone) is freed and reads as
 * empty. */
static int read_slot(struct dz_store *st, const char *fin, unsigned slot, struct slot *sl)
{
    unsigned char key[KEY_LEN];
    struct dz_buf b;
    uint64_t left = 0;
    int rc;

    slot_key(fin, slot, key);
    /* Room for any value the store holds: a longer one (not ours) must be
     * read whole to be freed, not refused as too big at every read, which
     * would keep its person from logging in and from their list. */
    dz_buf_init(&b, DZ_STORE_VAL_MAX);
    rc = dz_store_get(st, DZ_SESSIDX_NS, key, sizeof(key), &b);
    if (rc == 0)
        rc = decode(&b, &sl->e);
    if (rc == DZ_ERR_PARSE) {
        /* not ours: free the slot rather than trust it (best effort: it
         * reads as empty either way, and is tried again next read) */
        (void)free_slot(st, fin, slot, b.data, b.len);
        rc = DZ_ERR_NOTFOUND;
    } else if (rc == 0) {
        memcpy(sl->raw, b.data, SLOT_LEN);
    }
    dz_buf_cleanup(&b);
    if (rc != 0)
        return rc;
    rc = dz_store_ttl(st, DZ_SESSION_NS, sl->e.sid, sizeof(sl->e.sid), &left);
    if (rc == DZ_ERR_NOTFOUND) {
        /* dead: best effort, as above */
        (void)free_slot(st, fin, slot, sl->raw, SLOT_LEN);
        return DZ_ERR_NOTFOUND;
    }
    return rc;
}

/* End the session of slot i as read (sl): the session first, by its id
 * (once it is gone it cannot be used, whatever happens to its slot), then
 * the slot if it still holds that entry.  0 once the session is gone, or a
 * store error: freeing the slot is best effort, for a slot whose session
 * is gone reads as dead and is freed then; answering an error there would
 * call an ended session live, and its clients would never be told. */
static int end_slot(struct dz_store *st, const char *fin, unsigned i, const struct slot *sl)
{
    int rc = dz_store_del(st, DZ_SESSION_NS, sl->e.sid, sizeof(sl->e.sid));

    if (rc != 0 && rc != DZ_ERR_NOTFOUND)
        return rc;
    (void)free_slot(st, fin, i, sl->raw, SLOT_LEN);
    return 0;
}

/* Put v in slot i if it is free: 0 (taken), DZ_ERR_EXISTS, or an error. */
static int take_slot(struct dz_store *st, const char *fin, unsigned i,
                     const unsigned char v[SLOT_LEN], uint64_t ttl)
{
    unsigned char key[KEY_LEN];

    slot_key(fin, i, key);
    return dz_store_put(st, DZ_SESSIDX_NS, key, sizeof(key), v, SLOT_LEN, ttl, DZ_STORE_NX);
}

/*
 * Passes of a login on a full list.  Each pass tries every slot; one that
 * finds them all live ends the oldest entry it read and tries again.  When
 * logins of one person race on a full list, each pass of each of them ends
 * an entry (or finds that another did), and every slot so freed is taken
 * by one of them in its next scan: so at least one of them gets in per
 * pass, and up to DZ_SESSIDX_SLOTS racing logins all get in within
 * DZ_SESSIDX_SLOTS + 1 passes.  Past that (more at once, or slots that keep
 * filling) DZ_ERR_FULL rather than looping on.
 */
#define ADD_PASSES (DZ_SESSIDX_SLOTS + 1)

int dz_sessidx_add(struct dz_store *st, const struct dz_session *s, const char *addr,
                   int64_t now_ms)
{
    struct dz_sessidx_entry e;
    struct slot sl, oldest;
    unsigned char v[SLOT_LEN];
    uint64_t ttl;
    int rc;

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
    for (int pass = 0; pass < ADD_PASSES; pass++) {
        unsigned oldest_i = DZ_SESSIDX_SLOTS;

        for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
            rc = take_slot(st, s->fin, i, v, ttl);
            if (rc != DZ_ERR_EXISTS)
                return rc;
            rc = read_slot(st, s->fin, i, &sl);
            if (rc == DZ_ERR_NOTFOUND) {
                /* freed just now (dead), unless another login took it */
                rc = take_slot(st, s->fin, i, v, ttl);
                if (rc != DZ_ERR_EXISTS)
                    return rc;
            } else if (rc != 0) {
                return rc;
            } else if (oldest_i == DZ_SESSIDX_SLOTS || sl.e.created_ms < oldest.e.created_ms) {
                oldest = sl;
                oldest_i = i;
            }
        }
        /* The oldest as read, not as it may be now: another login may have
         * ended it and taken its slot, which end_slot then leaves alone. */
        if (oldest_i < DZ_SESSIDX_SLOTS && (rc = end_slot(st, s->fin, oldest_i, &oldest)) != 0)
            return rc;
    }
    return DZ_ERR_FULL;
}

int dz_sessidx_list(struct dz_store *st, const char *fin, struct dz_sessidx_entry *out, size_t *n)
{
    struct slot sl;
    int rc;

    if (n)
        *n = 0;
    if (!st || !dz_fin_is_normal(fin) || !out || !n)
        return DZ_ERR_INVAL;
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        rc = read_slot(st, fin, i, &sl);
        if (rc == DZ_ERR_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        /* insertion sort by start time: at most 16 */
        size_t j = *n;
        while (j > 0 && out[j - 1].created_ms > sl.e.created_ms) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = sl.e;
        (*n)++;
    }
    return 0;
}

int dz_sessidx_end(struct dz_store *st, const char *fin, const unsigned char sid[32])
{
    struct slot sl;
    int rc;

    if (!st || !dz_fin_is_normal(fin) || !sid)
        return DZ_ERR_INVAL;
    for (unsigned i = 0; i < DZ_SESSIDX_SLOTS; i++) {
        rc = read_slot(st, fin, i, &sl);
        if (rc == DZ_ERR_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (memcmp(sl.e.sid, sid, 32) == 0)
            return end_slot(st, fin, i, &sl);
    }
    return DZ_ERR_NOTFOUND;
}

int dz_sessidx_end_all(struct dz_store *st, const char *fin, const unsigned char *keep,
                       unsigned char (*sids)[32], size_t *ended)
{
    struct dz_sessidx_entry list[DZ_SESSIDX_SLOTS];
    size_t n = 0, k = 0;
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
        if (rc == 0) {
            if (sids)
                memcpy(sids[k], list[i].sid, 32);
            k++;
        } else if (rc != DZ_ERR_NOTFOUND && first == 0) {
            first = rc;
        }
    }
    if (ended)
        *ended = k;
    return first;
}
