/*
 * fake_upstream.h - a tiny HTTP/1.1 back end on a loopback socket, driven by
 * the test's own libev loop (no thread), for the forwarder's tests.
 *
 * Why a real socket and not a fake dz_httpc: the forwarder's hard parts are
 * where it meets the outbound client - on_head/on_data/on_done arriving
 * around the audit step, dz_httpc_cancel when the client goes away mid-
 * transfer, libcurl's deferred callbacks.  Faking httpc would test the fake.
 * With the real httpc (libcurl on the same loop) and a server the test
 * scripts, every step still happens in a known order: the server answers
 * only what and when the test says, and the loop is the only thread besides
 * the audit writer and the blocking pool.  The cost is one ephemeral port on
 * 127.0.0.1 (safe with parallel tests: the kernel picks it).
 *
 * Each connection serves one request (the answer says "connection: close").
 * Answers are small: written with one send on a fresh socket.
 */
#ifndef DZ_TEST_FAKE_UPSTREAM_H
#define DZ_TEST_FAKE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct fake_upstream;

enum fake_up_mode {
    FAKE_UP_ANSWER,         /* the whole answer at once */
    FAKE_UP_HOLD,           /* read the request, answer nothing */
    FAKE_UP_HEAD_THEN_HOLD, /* status, headers (a content-length 1000 bytes
                             * longer than the body) and the body, then
                             * nothing: a transfer in the middle */
};

int fake_upstream_new(struct ev_loop *loop, struct fake_upstream **out);
/* Closes every connection.  NULL is a no-op. */
void fake_upstream_free(struct fake_upstream *u);
/* Close every connection now (a back end that dies mid-transfer); it
 * still accepts new ones. */
void fake_upstream_drop(struct fake_upstream *u);
uint16_t fake_upstream_port(const struct fake_upstream *u);
void fake_upstream_set_mode(struct fake_upstream *u, enum fake_up_mode mode);
/* The answer to send; extra_headers "name: value\r\n"... (may be NULL). */
void fake_upstream_set_answer(struct fake_upstream *u, int status, const char *extra_headers,
                              const char *body);
/* The next answer only has this status (its headers and body as set),
 * the ones after it the answer's status again: a back end that answers
 * a flow's first call otherwise than its second. */
void fake_upstream_set_next_status(struct fake_upstream *u, int status);
/* Complete requests received; the last one's head and body as received. */
size_t fake_upstream_requests(const struct fake_upstream *u);
const char *fake_upstream_last_request(const struct fake_upstream *u);
/* First value of a header of the last request (name case-insensitive),
 * copied into buf; NULL if absent. */
const char *fake_upstream_last_header(const struct fake_upstream *u, const char *name, char *buf,
                                      size_t buf_len);
/* Connections open now; connections the client closed. */
size_t fake_upstream_open(const struct fake_upstream *u);
size_t fake_upstream_closed_by_client(const struct fake_upstream *u);

#endif
