/*
 * audit_int.h - what the audit writer (audit.c) and its hand-off between
 * worker loops and the writer thread (audit_handoff.c) share.  Not for use
 * outside gateway/audit.
 */
#ifndef DZ_AUDIT_INT_H
#define DZ_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "http/httpd.h"

struct dz_audit;
struct dz_audit_rec;
struct dz_worker;

/* One queued record and where its result goes. */
struct entry {
    struct entry *next;
    json_t *rec;               /* one of the two: a jansson object */
    struct dz_audit_rec *frec; /* or a record built without it (auditrec.h) */
    struct dz_worker *w;
    void (*done)(void *arg, int result);
    void *arg;
    int result;
    bool patient; /* nobody waits on it (dz_audit_append_slot) */
    /* The post that carries a worker's results home, when this entry heads
     * them (audit_handoff.c): in the entry, so that a result someone waits
     * for is never lost for want of memory. */
    struct dz_post post;
};

/* audit.c */
/* Free the record an entry carries (the entry itself stays). */
void dz_audit_entry_drop(struct entry *e);
/* Append the list head..tail (admitted records) to the writer's queue and
 * wake it once.  0, or DZ_ERR_STATE (closing or failed): the list is then
 * still the caller's and still counted in flight. */
int dz_audit_enqueue_list(struct dz_audit *a, struct entry *head, struct entry *tail);
/* n admitted records will not reach the writer's queue. */
void dz_audit_uncount(struct dz_audit *a, size_t n);

/* audit_handoff.c */
/* Take e (admitted, its worker set) into the batch of the calling loop
 * thread, handed to the writer once at the end of the current loop turn.
 * false: the caller is not running e->w's loop; queue e directly. */
bool dz_audit_loop_batch(struct dz_audit *a, struct entry *e);
/* Report every entry's result: one post per worker for its entries, in
 * their order (entries without a worker: here, in order); frees them.
 * Allocates nothing: only a worker that has stopped loses its results
 * (logged "audit_done_lost"). */
void dz_audit_deliver(struct entry *batch);

#endif
