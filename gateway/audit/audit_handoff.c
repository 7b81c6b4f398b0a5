/*
 * audit_handoff.c - records go from the worker loops to the audit writer
 * thread, and their results come back, in batches rather than one by one.
 *
 * A loop thread that appends records collects them during one turn of its
 * loop and hands them to the writer once, when the turn's callbacks are done
 * (one lock, one wake-up for the batch instead of one per line); the writer
 * posts the results of a durable batch back with one post per worker (no
 * allocation: the post is in the first entry; one lock and at most one
 * wake-up of that loop).  Durability is unchanged: a record's done() still
 * runs only after the batch holding its line was written and fdatasync'ed
 * (audit.c).
 *
 * The end of the turn is an event fed to the loop (ev_feed_event) at the
 * lowest priority: libev runs it after every other callback pending in the
 * same pass, so the batch never waits for the loop to poll again, whether
 * the records came from an I/O callback, a timer, a post or a prepare
 * watcher (the batch signer, gateway/core/batchsign.c, answers from one).
 * Records appended outside a running loop (before ev_run, after it returned,
 * from any other thread) go straight to the writer, as before.
 */
#include "audit/audit_int.h"

#include <stdlib.h>

#include <ev.h>

#include "base/log.h"
#include "base/looptag.h"
#include "http/httpd.h"

#include "base/compat.h"

/* At most this many records wait for the end of a turn: a long turn does
 * not hold the first lines back from the disk. */
#define LOOP_BATCH_MAX 64

/* The calling loop thread's batch.  Thread-local: a thread runs one loop,
 * and the event below is pending only inside that loop's current pass, so
 * nothing refers to this after the pass (or the thread) ends. */
struct loop_batch {
    ev_prepare ev; /* never started: only fed (an initialised watcher of any type will do) */
    bool fed;
    struct dz_audit *a;
    struct dz_worker *w;
    struct entry *head;
    struct entry *tail;
    size_t n;
};

static _Thread_local struct loop_batch tl;

static void flush(struct loop_batch *b)
{
    struct entry *head = b->head;
    struct entry *tail = b->tail;
    size_t n = b->n;
    int rc;

    b->head = b->tail = NULL;
    b->n = 0;
    if (!head)
        return;
    rc = dz_audit_enqueue_list(b->a, head, tail);
    if (rc == 0)
        return;
    /* The log closed or failed after these were admitted: each caller
     * learns it through done(), later on its loop, as for a failed write. */
    dz_audit_uncount(b->a, n);
    for (struct entry *e = head; e; e = e->next) {
        dz_audit_entry_drop(e);
        e->result = rc;
    }
    dz_audit_deliver(head);
}

static void turn_end_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    tl.fed = false;
    flush(&tl);
}

bool dz_audit_loop_batch(struct dz_audit *a, struct entry *e)
{
    struct ev_loop *loop;

    if (!e->w || !dz_thread_on_loop())
        return false;
    loop = dz_worker_loop(e->w);
    /* Outside ev_run nothing would ever run the fed event. */
    if (!loop || ev_depth(loop) == 0)
        return false;
    /* One batch goes to one log and names one worker's loop. */
    if (tl.n > 0 && (tl.a != a || tl.w != e->w))
        flush(&tl);
    tl.a = a;
    tl.w = e->w;
    e->next = NULL;
    if (tl.tail)
        tl.tail->next = e;
    else
        tl.head = e;
    tl.tail = e;
    tl.n++;
    if (tl.n >= LOOP_BATCH_MAX) {
        flush(&tl);
        return true;
    }
    if (!tl.fed) {
        ev_init(&tl.ev, turn_end_cb);
        ev_set_priority(&tl.ev, EV_MINPRI);
        ev_feed_event(loop, &tl.ev, EV_CUSTOM);
        tl.fed = true;
    }
    return true;
}

/* Run the results of one worker's entries, in order, on its loop. */
static void run_results(void *p)
{
    struct entry *e = p;

    while (e) {
        struct entry *next = e->next;
        e->done(e->arg, e->result);
        free(e);
        e = next;
    }
}

void dz_audit_deliver(struct entry *batch)
{
    while (batch) {
        struct dz_worker *w = batch->w;
        struct entry *mine = NULL, **mt = &mine;
        struct entry *rest = NULL, **rt = &rest;
        size_t n = 0;

        /* A batch comes from a few loops: split off the first one's entries,
         * keeping their order, and go on with the rest. */
        for (struct entry *e = batch, *next; e; e = next) {
            next = e->next;
            e->next = NULL;
            if (e->w == w) {
                *mt = e;
                mt = &e->next;
                n++;
            } else {
                *rt = e;
                rt = &e->next;
            }
        }
        batch = rest;
        if (!w) {
            run_results(mine);
            continue;
        }
        /* The first entry carries the post: nothing to allocate, so the
         * requests waiting for these lines always hear of them. */
        if (dz_worker_post_node(w, &mine->post, run_results, mine) != 0) {
            /* The worker has stopped: calling done here would run loop-thread
             * code on the wrong thread, so the completions are dropped. */
            dz_log(DZ_LOG_ERROR, "audit_done_lost",
                   "%zu audit result(s) could not be posted to their worker (stopping)", n);
            while (mine) {
                struct entry *next = mine->next;
                free(mine);
                mine = next;
            }
        }
    }
}
