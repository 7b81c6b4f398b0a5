#!/usr/bin/env bash
# tests/bench/idle_h2.sh HOST PORT COUNT HOLD_SECONDS READY_FILE
# Opens COUNT idle HTTP/2 connections over TLS (ALPN h2, client preface and
# SETTINGS exchanged, no stream), writes how many are open to READY_FILE,
# holds them HOLD_SECONDS, then closes them.  Used by run.sh to measure the
# memory a server spends per idle HTTP/2 connection.  Python's ssl module
# only: no HTTP/2 library needed for a preface and a SETTINGS ack.
exec python3 - "$@" <<'PY'
import socket, ssl, sys, time
host, port, count, hold, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
conns = []
try:
    for _ in range(count):
        s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname="localhost")
        if s.selected_alpn_protocol() != "h2":
            sys.exit("server did not select h2")
        s.sendall(PREFACE)
        s.recv(4096)            # the server's SETTINGS
        s.sendall(SETTINGS_ACK)
        conns.append(s)
except OSError as e:
    print(f"opened {len(conns)} of {count}: {e}", file=sys.stderr)
with open(ready, "w") as f:
    f.write(f"{len(conns)}\n")
time.sleep(hold)
PY
