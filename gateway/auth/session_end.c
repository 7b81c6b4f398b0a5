/*
 * session_end.c - see session_end.h.  The hook is one pointer, written
 * before the workers exist and only read afterwards.
 */
#include "auth/session_end.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "state/session.h"

#include "base/compat.h"

static dz_session_end_fn hook;

struct notify_op {
    unsigned char (*sids)[32];
    size_t n, next;
    char fin[16];
    void (*done)(struct dz_rctx *c, void *arg);
    void *arg;
};

void dz_session_end_set_hook(dz_session_end_fn fn)
{
    hook = fn;
}

static void next_one(struct dz_rctx *c, void *arg)
{
    struct notify_op *op = arg;
    char sid[DZ_SESSION_TOKEN_LEN + 1];

    if (op->next < op->n) {
        /* The hook calls back here when it is done with this one: the
         * sessions are told one at a time, never all at once. */
        dz_b64_encode_to(op->sids[op->next++], 32, true, sid);
        hook(c, sid, op->fin, next_one, op);
        return;
    }
    op->done(c, op->arg);
    free(op->sids);
    free(op);
}

void dz_session_end_notify(struct dz_rctx *c, const unsigned char (*sids)[32], size_t n,
                           const char *fin, void (*done)(struct dz_rctx *c, void *arg), void *arg)
{
    struct notify_op *op;

    if (!hook || n == 0 || !(op = calloc(1, sizeof(*op)))) {
        done(c, arg);
        return;
    }
    op->sids = malloc(n * sizeof(*op->sids));
    if (!op->sids) {
        free(op);
        done(c, arg);
        return;
    }
    memcpy(op->sids, sids, n * sizeof(*op->sids));
    op->n = n;
    snprintf(op->fin, sizeof(op->fin), "%s", fin);
    op->done = done;
    op->arg = arg;
    next_one(c, op);
}
