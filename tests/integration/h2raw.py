#!/usr/bin/python3
"""h2raw.py - a raw HTTP/2 client for conformance tests: it writes frames a
well-behaved client never would (DATA on a closed stream, PRIORITY on stream
0, a stream depending on itself) and prints the frame the server answers
with, one line per case, so a TAP script can compare it exactly.

    h2raw.py [--host H] [--port P] [--cafile F] [--h2c] CASE

Frames are packed by hand (RFC 9113 §4.1) so nothing stops us from sending
invalid ones; header blocks go through Debian's python3-hpack.  Output
lines are one of
    GOAWAY <ERROR_NAME>            the connection was ended with this code
    RST_STREAM <id> <ERROR_NAME>   a stream error
    STATUS <id> <code>             an answer (HEADERS with :status)
    IGNORED                        the frame was processed, no answer (our
                                   PING came back first)
    SILENCE                        nothing at all within the wait
    CLOSED                         the connection closed without a GOAWAY
Exit status: 0 when the case ran (whatever the server answered), 2 when the
client itself could not run it (connection refused, TLS failure).

It waits for frames, never for fixed times: a read that sees nothing for
--wait seconds is SILENCE, and a control PING (answered in order) proves the
server has processed everything sent before it.
"""
import argparse
import socket
import ssl
import struct
import sys

import hpack

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x20

ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
          "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
          "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
          "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def err_name(code):
    return ERRORS[code] if code < len(ERRORS) else "0x%x" % code


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class Conn:
    def __init__(self, args):
        self.args = args
        raw = socket.create_connection((args.host, args.port), timeout=10)
        if args.h2c:
            self.sock = raw
        else:
            ctx = ssl.create_default_context(cafile=args.cafile)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(raw, server_hostname=args.servername)
            if self.sock.selected_alpn_protocol() != "h2":
                raise OSError("the server did not select h2")
        self.buf = b""
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.ping_seq = 0
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        """Write; a peer that has already closed is not an error here (its
        GOAWAY, if any, is still in our receive buffer for events())."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def read_frame(self, wait):
        """One frame (type, flags, sid, payload), or 'SILENCE' / 'CLOSED'."""
        self.sock.settimeout(wait)
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[0:3], "big")
                if len(self.buf) >= 9 + n:
                    ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    return ftype, flags, sid & 0x7FFFFFFF, payload
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return "SILENCE"
            except (ConnectionResetError, ssl.SSLError):
                return "CLOSED"
            if not chunk:
                return "CLOSED"
            self.buf += chunk

    def headers(self, sid, fields, end_stream=True, prio=None):
        block = self.enc.encode(fields)
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        if prio is not None:  # (depends_on, weight): RFC 7540 priority fields
            block = struct.pack(">IB", prio[0], prio[1]) + block
            flags |= PRIORITY_FLAG
        return frame(HEADERS, flags, sid, block)

    def request(self, sid, method="GET", path="/healthz", end_stream=True, extra=()):
        fields = [(":method", method), (":scheme", "http" if self.args.h2c else "https"),
                  (":authority", "%s:%d" % (self.args.servername, self.args.port)),
                  (":path", path)] + list(extra)
        return self.headers(sid, fields, end_stream)

    def events(self, wait, until=None):
        """Read frames and turn the interesting ones into result lines.
        SETTINGS, PING acks, WINDOW_UPDATE and DATA are consumed silently.
        Stops at the first GOAWAY, SILENCE or CLOSED, or once until(line)
        is true for a line.  Returns the lines."""
        out = []
        while True:
            f = self.read_frame(wait)
            if isinstance(f, str):
                out.append(f)
                return out
            ftype, flags, sid, p = f
            line = None
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                self.send(frame(PING, ACK, 0, p))
            elif ftype == PING:
                line = "PONG %d" % struct.unpack(">Q", p)[0]
            elif ftype == GOAWAY:
                code = struct.unpack(">I", p[4:8])[0]
                out.append("GOAWAY %s" % err_name(code))
                return out
            elif ftype == RST_STREAM:
                line = "RST_STREAM %d %s" % (sid, err_name(struct.unpack(">I", p[0:4])[0]))
            elif ftype == HEADERS:
                block = p
                if flags & 0x8:  # PADDED
                    block = block[1:len(block) - block[0]]
                if flags & PRIORITY_FLAG:
                    block = block[5:]
                hdrs = dict(self.dec.decode(block))
                if ":status" in hdrs:
                    line = "STATUS %d %s" % (sid, hdrs[":status"])
            elif ftype == DATA and flags & END_STREAM:
                line = "END %d" % sid
            if line is not None:
                out.append(line)
                if until and until(line):
                    return out

    def ping(self):
        """PING round trips until everything the server did about the frames
        sent before has reached us.  nghttp2 sends a PING ACK ahead of
        RST_STREAM (urgent queue first), so the first ACK only proves our
        frames were processed; a second round trip, started after the first
        ACK came, brings whatever was queued with it.  Returns the lines."""
        out = []
        for _ in range(2):
            self.ping_seq += 1
            tag = "PONG %d" % self.ping_seq
            self.send(frame(PING, 0, 0, struct.pack(">Q", self.ping_seq)))
            out += self.events(self.args.wait, until=lambda l, t=tag: l == t)
            if out[-1] != tag:  # GOAWAY, CLOSED or SILENCE: nothing more to wait for
                break
        return out

    def complete(self, sid):
        """Read until stream sid's answer has ended (DATA END_STREAM, or the
        HEADERS ended it).  Returns the lines."""
        return self.events(self.args.wait,
                           until=lambda l: l == "END %d" % sid or l.startswith("GOAWAY"))


def answer(lines):
    """The result line of a case: the first line that is not a PONG/END, or
    IGNORED when our PING came back with nothing before it (the server
    processed the frame and said nothing)."""
    pong = False
    for l in lines:
        if l.startswith("PONG"):
            pong = True
        elif not l.startswith("END"):
            return l
    return "IGNORED" if pong else "SILENCE"


# ---- the cases --------------------------------------------------------------------------------
# Each prints its result lines; the TAP script compares them exactly.

def case_get(c):
    """Control: a normal GET is answered."""
    c.send(c.request(1))
    print(answer(c.complete(1)))


def finished_stream(c, sid=1):
    """Stream sid requested and fully answered: closed on both sides."""
    c.send(c.request(sid))
    lines = c.complete(sid)
    if "END %d" % sid not in lines:
        raise RuntimeError("stream %d not answered: %s" % (sid, lines))


def case_data_closed(c):
    """RFC 9113 §5.1: DATA on a stream closed by both END_STREAMs."""
    finished_stream(c)
    c.send(frame(DATA, END_STREAM, 1, b"x"))
    print(answer(c.ping()))


def case_headers_closed(c):
    """RFC 9113 §5.1: HEADERS on a stream closed by both END_STREAMs."""
    finished_stream(c)
    c.send(c.request(1))
    print(answer(c.ping()))


def case_data_half_closed(c):
    """RFC 9113 §5.1 half-closed (remote): DATA after the client's own
    END_STREAM.  Both go in one write, so the server reads the DATA before it
    has sent its answer: the stream is still half-closed, not closed."""
    c.send(c.request(1) + frame(DATA, END_STREAM, 1, b"x"))
    print(answer(c.ping()))


def case_data_after_rst(c):
    """RFC 9113 §5.1: DATA on a stream the client has reset: the server
    received RST_STREAM, so any later frame is a STREAM_CLOSED error."""
    c.send(c.request(1, method="POST", path="/auth/password", end_stream=False,
                     extra=[("content-type", "application/json")]))
    c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))  # CANCEL
    c.ping()
    c.send(frame(DATA, END_STREAM, 1, b"{}"))
    lines = c.ping()
    print(answer(lines))
    if lines and lines[0].startswith("RST_STREAM"):
        # A stream error only: the connection still serves a new stream.
        c.send(c.request(3))
        print(answer(c.complete(3)))


def case_data_after_server_rst(c):
    """RFC 9113 §5.1: frames on a stream the server reset are ignored (the
    client may have sent them before it saw the RST_STREAM); the stream error
    ends only that stream, and the connection still serves a new one.  The
    server resets stream 1 because a field name in upper case makes the
    request malformed (RFC 9113 §8.2.1)."""
    c.send(c.request(1, method="POST", path="/auth/password", end_stream=False,
                     extra=[("X-Upper", "1")]))
    print(answer(c.ping()))
    c.send(frame(DATA, END_STREAM, 1, b"{}"))
    print(answer(c.ping()))
    c.send(c.request(3))
    print(answer(c.complete(3)))


def case_priority_zero(c):
    """RFC 9113 §6.3: PRIORITY with stream id 0 is a PROTOCOL_ERROR."""
    c.send(frame(PRIORITY, 0, 0, struct.pack(">IB", 1, 15)))
    print(answer(c.ping()))


def case_priority_self(c):
    """RFC 9113 §5.3.1: a stream cannot depend on itself (PRIORITY frame)."""
    c.send(frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 15)))
    print(answer(c.ping()))


def case_headers_priority_self(c):
    """RFC 9113 §5.3.1: a stream cannot depend on itself (HEADERS priority)."""
    fields = [(":method", "GET"), (":scheme", "http" if c.args.h2c else "https"),
              (":authority", c.args.servername), (":path", "/healthz")]
    c.send(c.headers(1, fields, prio=(1, 15)))
    print(answer(c.ping()))


def case_priority_valid(c):
    """Control: a valid PRIORITY (idle stream 5 on stream 3) is accepted and
    the connection keeps serving."""
    c.send(frame(PRIORITY, 0, 5, struct.pack(">IB", 3, 15)))
    c.send(c.request(1))
    print(answer(c.complete(1)))


def case_forgotten_stream(c):
    """Bound: after --count further finished streams, stream 1 is no longer
    remembered (closed-stream memory is bounded): DATA on it is ignored and
    the connection still serves."""
    finished_stream(c, 1)
    sid = 3
    for _ in range(c.args.count):
        finished_stream(c, sid)
        sid += 2
    c.send(frame(DATA, END_STREAM, 1, b"x"))
    lines = c.ping()
    print(answer(lines))
    c.send(c.request(sid))
    print(answer(c.complete(sid)))


def case_rapid_reset(c):
    """Bound: --count streams opened and reset at once end in GOAWAY."""
    batch = b""
    for i in range(c.args.count):
        sid = 1 + 2 * i
        batch += c.request(sid, end_stream=False) + frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
    c.send(batch)
    lines = c.events(c.args.wait, until=lambda l: l.startswith("GOAWAY"))
    print(next((l for l in lines if l.startswith("GOAWAY") or l in ("CLOSED", "SILENCE")),
               "SILENCE"))


def case_continuation_flood(c):
    """Bound: a HEADERS never ended, followed by --count empty CONTINUATION
    frames (CVE-2024-27316 class), ends in GOAWAY, not in unbounded work."""
    block = c.enc.encode([(":method", "GET"), (":scheme", "https"),
                          (":authority", c.args.servername), (":path", "/healthz")])
    data = frame(HEADERS, END_STREAM, 1, block)
    for _ in range(c.args.count):
        data += frame(CONTINUATION, 0, 1, b"")
    c.send(data)
    print(answer(c.events(c.args.wait)))


def case_stalled_reader(c):
    """Bound: a client that reads nothing (every stream's window 0) asks for
    --count answers of --path at once (with each --header); the server
    holds what it cannot send until the connection's answer budget is
    spent, then ends the connection.  Prints each answer's STATUS line,
    then how the connection ended."""
    c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 0)))  # INITIAL_WINDOW_SIZE 0
    extra = [tuple(h.split(": ", 1)) for h in c.args.header]
    c.send(b"".join(c.request(1 + 2 * i, path=c.args.path, extra=extra)
                    for i in range(c.args.count)))
    for line in c.events(c.args.wait):
        print(line)


CASES = {n[5:].replace("_", "-"): f for n, f in globals().items() if n.startswith("case_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--servername", default="localhost")
    ap.add_argument("--cafile")
    ap.add_argument("--h2c", action="store_true", help="cleartext, prior knowledge")
    ap.add_argument("--wait", type=float, default=5.0, help="seconds of silence that end a read")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--header", action="append", default=[], help="NAME: VALUE (repeatable)")
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    try:
        c = Conn(args)
    except (OSError, ssl.SSLError) as e:
        print("h2raw: cannot connect: %s" % e, file=sys.stderr)
        return 2
    try:
        CASES[args.case](c)
    except (RuntimeError, BrokenPipeError, ConnectionResetError) as e:
        print("h2raw: %s: %s" % (args.case, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
