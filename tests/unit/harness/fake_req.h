/*
 * fake_req.h - the HTTP engine's request and worker API (lib/http/httpd.h)
 * in memory: no socket, no nghttp2, one libev loop on the test's thread.
 *
 * The seam: fake_req.c defines every dz_req_* and dz_worker_* function the
 * gateway calls.  A test binary links fake_req.o before build/libgateway.a
 * and build/libdarvaza.a, so the linker resolves those names here and never
 * pulls lib/http/h2req.o or httpd.o out of the archive (nothing else in the
 * gateway needs a symbol only they define; main.c, the one user of
 * dz_httpd_*, is not in libgateway.a).  Were one pulled, the link would fail
 * with a duplicate symbol, never silently mix the two.
 *
 * What it mimics of the real engine (docs/internals/httpd.md):
 *   - a request holds two references: the engine's, dropped after on_close,
 *     and the test's, dropped by fake_req_free; dz_req_ref/unref add more;
 *     the object is freed with the last one (ASan sees any use after);
 *   - a complete answer (dz_req_respond, dz_req_end) closes the stream
 *     later, from the loop (an ev_prepare watcher), never inside the call,
 *     as the engine reaps streams outside nghttp2;
 *   - fake_req_reset is the client's RST_STREAM: on_close runs from the
 *     test (the loop thread, outside any callback), then the engine's
 *     reference goes; answering afterwards is a no-op returning 0;
 *   - answers are checked like h2req.c checks them (status range, lower-case
 *     token names, no connection-specific names, no CR/LF/controls in
 *     values, answered twice = DZ_ERR_STATE); a refused answer is counted
 *     (fake_req_invalid_answers) so a test can insist there was none;
 *   - memory is taken where the engine takes it, from malloc (so a test
 *     linked with harness/fail_alloc.h can refuse it): dz_req_start and
 *     dz_req_respond first take one block for the head, of
 *     n * sizeof(struct dz_hdr) + each name and value with its NUL (the
 *     shape of nghttp2's copy of the fields), then dz_req_respond and
 *     dz_req_write take one block of out_len + len + 1 bytes per append
 *     (out_len: the body answered so far); refused, the call returns
 *     DZ_ERR_NOMEM having recorded nothing, and fake_req_nomem_answers
 *     counts it;
 *   - dz_worker_post is thread-safe (mutex + ev_async), so the real blocking
 *     pool and audit writer deliver to this loop as they do in darvazad;
 *     fake_worker_hold_posts lets a test stop deliveries at a chosen moment
 *     (e.g. the audit line is durable but its callback has not run yet).
 * Single worker, loop thread = the test's thread.
 */
#ifndef DZ_TEST_FAKE_REQ_H
#define DZ_TEST_FAKE_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "http/httpd.h"

/* --- the worker ----------------------------------------------------------- */

/* A worker with its own loop (ev_loop_new).  NULL on failure. */
struct dz_worker *fake_worker_new(void);
/* Runs posts still queued, then frees.  Every request must be gone. */
void fake_worker_free(struct dz_worker *w);
void fake_worker_set_data(struct dz_worker *w, void *data);
/* true: posts are queued but not run until set back to false. */
void fake_worker_hold_posts(struct dz_worker *w, bool hold);
/* Posts queued and not yet run; outstanding dz_worker_hold count. */
size_t fake_worker_posts_waiting(struct dz_worker *w);
int fake_worker_holds(struct dz_worker *w);
/* Live request objects of this worker (created and not yet freed). */
size_t fake_worker_live_reqs(struct dz_worker *w);

/* Called at the first byte of every answer (dz_req_respond or dz_req_start,
 * before it is recorded), e.g. to look at the audit log at that moment. */
void fake_worker_on_first_byte(struct dz_worker *w, void (*fn)(struct dz_req *r, void *arg),
                               void *arg);

/* Spin the loop (EVRUN_ONCE, woken at least every 20 ms by a heartbeat)
 * until done(arg) is true or timeout_ms passed; returns done(arg).  Never
 * sleeps otherwise: work that is ready runs at once. */
bool fake_spin(struct dz_worker *w, bool (*done)(void *arg), void *arg, unsigned timeout_ms);
/* The common case: until r's answer is complete (or r is closed). */
bool fake_spin_answer(struct dz_worker *w, struct dz_req *r, unsigned timeout_ms);
/* Until nothing is pending: no hold, no queued post, no live request but
 * the ones the test still owns and has seen closed.  For teardown. */
bool fake_spin_idle(struct dz_worker *w, unsigned timeout_ms);

/* --- building a request ----------------------------------------------------- */

/* method and path (":path", with query) are copied.  scheme "https",
 * authority "localhost:8443", peer 127.0.0.1, not TLS, listener tag 0. */
struct dz_req *fake_req_new(struct dz_worker *w, const char *method, const char *path);
/* Append a header (name lower case; copied).  Before the request is handed
 * to the application. */
void fake_req_add_header(struct dz_req *r, const char *name, const char *value);
void fake_req_set_body(struct dz_req *r, const void *body, size_t len);
/* Shortcut: content-type application/json and body text. */
void fake_req_set_json(struct dz_req *r, const char *json);
void fake_req_set_body_overflow(struct dz_req *r);
void fake_req_set_peer(struct dz_req *r, const char *ip);
void fake_req_set_tls(struct dz_req *r, bool tls);
/* ":authority" as the client sent it (default "localhost:8443"). */
void fake_req_set_authority(struct dz_req *r, const char *authority);

/* The client resets the stream (RST_STREAM / lost connection): on_close
 * runs now, then the engine's reference is dropped.  No-op once closed. */
void fake_req_reset(struct dz_req *r);
/* Drop the test's reference (after fake_req_reset or a complete answer;
 * an open stream is reset first).  NULL is a no-op. */
void fake_req_free(struct dz_req *r);

/* --- what was answered ------------------------------------------------------ */

/* 0 until answered. */
int fake_req_status(const struct dz_req *r);
/* Headers sent (dz_req_start or dz_req_respond) / answer complete. */
bool fake_req_started(const struct dz_req *r);
bool fake_req_complete(const struct dz_req *r);
/* dz_req_reset: the answer was cut (RST_STREAM), not ended. */
bool fake_req_was_reset(const struct dz_req *r);
/* dz_req_start..dz_req_end, not dz_req_respond. */
bool fake_req_streamed(const struct dz_req *r);
/* First value of an answer header (name lower case) or NULL. */
const char *fake_req_resp_header(const struct dz_req *r, const char *name);
/* How many answer headers have this name. */
size_t fake_req_resp_header_count(const struct dz_req *r, const char *name);
/* The answer body so far (NUL-terminated for convenience). */
const char *fake_req_resp_body(const struct dz_req *r, size_t *len);
/* Answers the checks refused (should stay 0). */
unsigned fake_req_invalid_answers(const struct dz_req *r);
/* Answer calls refused for want of memory (DZ_ERR_NOMEM, see above). */
unsigned fake_req_nomem_answers(const struct dz_req *r);
/* References held (the test's included). */
int fake_req_refs(const struct dz_req *r);
bool fake_req_on_close_ran(const struct dz_req *r);
/* A note a first-byte hook may attach (copied; freed with r). */
void fake_req_set_note(struct dz_req *r, const char *note);
const char *fake_req_note(const struct dz_req *r);

#endif
