/*
 * h2raw_client.h - a raw HTTP/2 client on a loopback TCP socket, for the
 * unit tests of the real engine (lib/http): what curl will not do (streams
 * reset as fast as they open, a window never opened, a request whose body
 * never comes, a connection that says nothing), and a reader the test
 * paces.  An nghttp2 client session over a blocking socket, driven on the
 * test's own thread: nothing runs unless the test calls in.
 *
 * Not part of the fake engine: a test that includes this header calls the
 * real dz_httpd_* and is linked with this object directly, never with
 * libtestharness.a (the Makefile finds it by the include; README "The
 * seam").  Errors of the socket or of the session fail the test (cmocka
 * asserts): call from the test's thread only.
 */
#ifndef DZ_TEST_H2RAW_CLIENT_H
#define DZ_TEST_H2RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct h2raw_opts {
    /* Send the connection preface and an empty SETTINGS at once; false:
     * connect and say nothing (a test may then submit its own SETTINGS). */
    bool is_preface_sent;
    /* SO_RCVBUF set before connect, so the window the kernel offers the
     * server is that small from the handshake on; 0: the kernel's. */
    int rcvbuf;
    /* Called after the counters below are updated, with user; may be NULL. */
    nghttp2_on_frame_recv_callback on_frame;
    nghttp2_on_data_chunk_recv_callback on_data;
    void *user;
};

struct h2raw {
    int fd;
    nghttp2_session *s; /* submit to it, then h2raw_flush */
    bool eof;           /* the server closed (or reset) the connection */
    bool goaway;
    uint32_t goaway_code;
    int n_rst_recv;
    uint32_t last_rst_code;
    int n_closed; /* streams closed, whatever the reason */
    int n_status; /* HEADERS frames received */
    unsigned pings_sent, ping_acks;
    size_t bytes_sent;
    /* Read and drop: the session never sees the server's frames (no ACK,
     * no WINDOW_UPDATE ever goes back). */
    bool is_silent;
    /* Read into the session but send nothing back while reading: the
     * automatic WINDOW_UPDATEs and ACKs stay queued until h2raw_flush. */
    bool is_mute;
    struct h2raw_opts opts;
};

/* Connects to 127.0.0.1:port; o NULL: the defaults above (all zero). */
void h2raw_open_opts(struct h2raw *r, uint16_t port, const struct h2raw_opts *o);
/* The same with only is_preface_sent set. */
void h2raw_open(struct h2raw *r, uint16_t port, bool is_preface_sent);
/* Sends everything the session has queued; stops quietly when the server
 * no longer takes bytes (a closed connection shows up as eof on reading). */
void h2raw_flush(struct h2raw *r);
/* One read: waits up to ms for bytes, hands them to the session (unless
 * silent) and answers (unless mute).  False when nothing came within ms, or
 * at EOF (then eof is set). */
bool h2raw_read(struct h2raw *r, int ms);
/* Reads and answers for up to ms, or until EOF or stop(r) is true. */
void h2raw_pump(struct h2raw *r, int ms, bool (*stop)(const struct h2raw *));
/* Sends a PING (after the preface, if nothing was sent yet) and reads,
 * answering, until its ACK comes: true then; false at EOF or after ms.
 * The server handles a connection's frames in order, so once the ACK is
 * in, it has acted on everything sent before the PING, and what it sent in
 * answer was read first (a RST_STREAM, a GOAWAY): a state to wait for
 * where a test would otherwise wait a while for something not to happen. */
bool h2raw_ping(struct h2raw *r, int ms);
/* True when the server still serves the connection: two PINGs answered in
 * turn.  The first proves the server acted on everything sent before it;
 * a close it decided then still lets the ACK out first (the connection is
 * closed after its last write), so the second proves it was not closed. */
bool h2raw_is_kept(struct h2raw *r, int ms);
void h2raw_close(struct h2raw *r);

#endif
