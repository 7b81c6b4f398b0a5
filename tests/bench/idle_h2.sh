#!/usr/bin/env bash
# tests/bench/idle_h2.sh HOST PORT COUNT HOLD_SECONDS READY_FILE [PATH]
# Opens COUNT idle HTTP/2 connections over TLS (ALPN h2, client preface and
# SETTINGS exchanged), writes how many are open to READY_FILE, holds them
# HOLD_SECONDS, then closes them.  Used by run.sh to measure the memory a
# server spends per idle HTTP/2 connection.
#
# Without PATH no stream is opened.  With PATH each connection first sends
# one GET for PATH with the header fields a browser sends (HPACK with
# incremental indexing, as browsers encode them, so the server's decoder
# table holds what a browser's would put there), reads the whole answer,
# then idles.  While idle the client goes on doing what a browser does:
# it answers SETTINGS and PING, and applies a new SETTINGS_HEADER_TABLE_SIZE
# to its encoder.  READY_FILE is written once every answer has come and
# the server has been quiet for a second (or 5 s have passed): a server
# that tidies a connection shortly after its last stream is measured after
# it did.  Python's ssl module and Debian's python3-hpack only.
exec /usr/bin/python3 - "$@" <<'PY'
import select, socket, ssl, struct, sys, time
host, port, count, hold, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
path = sys.argv[6] if len(sys.argv) > 6 else None
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
# What Firefox 120 sends for a same-origin fetch, cookie and all.
BROWSER = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    ("referer", "https://localhost/portal/"),
    ("cookie", "__Host-darvaza=" + "q" * 43),
    ("sec-fetch-dest", "empty"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-site", "same-origin"),
    ("te", "trailers"),
]


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


class Conn:
    def __init__(self, s):
        self.s, self.buf, self.done, self.enc = s, b"", path is None, None
        self.last_rx = time.monotonic()

    def frames(self):
        """Whole frames received so far; answers SETTINGS and PING."""
        try:
            data = self.s.recv(65536)
        except ssl.SSLWantReadError:
            return
        if not data:
            raise OSError("closed by the server")
        self.buf += data
        self.last_rx = time.monotonic()
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            ftype, flags, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            if ftype == 4 and not flags & 1:  # SETTINGS
                for i in range(0, len(payload), 6):
                    ident, value = struct.unpack(">HI", payload[i:i + 6])
                    if ident == 1 and self.enc is not None:
                        self.enc.header_table_size = value
                self.s.sendall(SETTINGS_ACK)
            elif ftype == 6 and not flags & 1:  # PING
                self.s.sendall(frame(6, 1, 0, payload))
            elif ftype == 7:
                raise OSError("GOAWAY from the server")
            elif ftype in (0, 1) and sid == 1 and flags & 1:  # END_STREAM of our GET
                self.done = True


conns = []
try:
    if path is not None:
        import hpack
    for _ in range(count):
        s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname="localhost")
        if s.selected_alpn_protocol() != "h2":
            sys.exit("server did not select h2")
        c = Conn(s)
        s.sendall(PREFACE)
        if path is None:
            s.recv(4096)            # the server's SETTINGS
            s.sendall(SETTINGS_ACK)
        else:
            c.enc = hpack.Encoder()
            block = c.enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", f"localhost:{port}"),
                                  (":path", path)] + BROWSER)
            s.sendall(frame(1, 0x5, 1, block))  # HEADERS, END_STREAM | END_HEADERS
            while not c.done:
                c.frames()
        s.setblocking(False)
        conns.append(c)
except OSError as e:
    print(f"opened {len(conns)} of {count}: {e}", file=sys.stderr)


def serve(seconds, until_quiet):
    """Read and answer for the given time (or until quiet for a second)."""
    end = time.monotonic() + seconds
    while conns and time.monotonic() < end:
        r, _, _ = select.select([c.s for c in conns], [], [], 0.2)
        for c in [c for c in conns if c.s in r]:
            try:
                c.frames()
            except OSError as e:
                print(f"connection lost while idle: {e}", file=sys.stderr)
                conns.remove(c)
        if until_quiet and time.monotonic() - max(c.last_rx for c in conns) > 1.0:
            return


if path is not None:
    serve(5.0, True)
with open(ready, "w") as f:
    f.write(f"{len(conns)}\n")
serve(hold, False)
PY
