/*
 * sessidx.h - the sessions of one person, for the account page's list and
 * "sign out everywhere" (docs/portal.md "Account").
 *
 * The store (store.h) has no way to list keys, and must not get one (a shared
 * store would have to scan).  So each person has DZ_SESSIDX_SLOTS slots,
 * namespace "sessidx", key FIN || slot number; a login takes the first free
 * slot with a put-if-absent (DZ_STORE_NX), which every backend does
 * atomically, so two instances logging the same person in at once never
 * share a slot.  A slot holds the session id (the "sess" key), when and how
 * it began and the client address, and lives as long as the session can.
 * A slot whose session has ended (logout, idle expiry) is found dead when
 * read (the "sess" key is gone) and freed then.  When all slots hold live
 * sessions, a new login ends the oldest of them: a person has at most
 * DZ_SESSIDX_SLOTS sessions at once.  A slot is only ever freed with a
 * compare-and-delete of the entry read (dz_store_del_if), so an entry
 * another login has put there since is never deleted: every live session
 * stays listed.  Logins of one person racing on a full list each end the
 * oldest entry they read and try again (up to DZ_SESSIDX_SLOTS + 1
 * passes), so up to DZ_SESSIDX_SLOTS of them at once all get in.
 *
 * Thread-safe and non-blocking like the store (a few store calls each; up to
 * 2 x DZ_SESSIDX_SLOTS for a list, about 3 x DZ_SESSIDX_SLOTS for each
 * pass of an add on a full list), so loop threads may call them.
 */
#ifndef DZ_SESSIDX_H
#define DZ_SESSIDX_H

#include <stddef.h>
#include <stdint.h>

#include "state/session.h"
#include "state/store.h"

#define DZ_SESSIDX_NS "sessidx"
#define DZ_SESSIDX_SLOTS 16
#define DZ_SESSIDX_ADDR_MAX 46

struct dz_sessidx_entry {
    unsigned char sid[32];
    int64_t created_ms;
    char method[16];
    char acr[16];
    char addr[DZ_SESSIDX_ADDR_MAX];
};

/* Record s (after dz_session_create: fin, sid, created_ms, expires_abs_ms,
 * method, acr) from client address addr.  0, DZ_ERR_INVAL, or a store error
 * (the caller ends the session: a session that is not listed could not be
 * ended by "sign out everywhere"); DZ_ERR_FULL when the list stayed full
 * through every pass (more racing logins than the bound). */
int dz_sessidx_add(struct dz_store *st, const struct dz_session *s, const char *addr,
                   int64_t now_ms);

/* The live sessions of fin, oldest first, into out[DZ_SESSIDX_SLOTS];
 * *n how many.  Dead slots are freed on the way.  0 or a store error. */
int dz_sessidx_list(struct dz_store *st, const char *fin, struct dz_sessidx_entry *out, size_t *n);

/* End fin's session sid (the session and its slot).  0, DZ_ERR_NOTFOUND
 * (not one of fin's live sessions: nobody ends another person's), or a
 * store error. */
int dz_sessidx_end(struct dz_store *st, const char *fin, const unsigned char sid[32]);

/* End every session of fin except keep (NULL: all).  *ended counts the
 * sessions this call ended, and sids (NULL: not wanted; else room for
 * DZ_SESSIDX_SLOTS) gets their ids, so that only the clients of sessions
 * that really ended are told, even when another one could not be.  0 or
 * the first store error (the others are still tried): then some may live
 * on, and a second call ends what the first could not. */
int dz_sessidx_end_all(struct dz_store *st, const char *fin, const unsigned char *keep,
                       unsigned char (*sids)[32], size_t *ended);

#endif
