/*
 * looptag.h - whether the calling thread runs an event loop.
 *
 * A worker thread marks itself at start; code that may wait (a blocking
 * round trip to a shared store) asks, so that a wait on a loop, which stalls
 * every other request of that loop, is counted and found rather than
 * guessed at (darvaza_store_loop_waits_total).
 */
#ifndef DZ_LOOPTAG_H
#define DZ_LOOPTAG_H

#include <stdbool.h>

/* Mark (or unmark) the calling thread as an event-loop thread. */
void dz_thread_set_loop(bool on);

/* True on a thread marked by dz_thread_set_loop(true). */
bool dz_thread_on_loop(void);

#endif
