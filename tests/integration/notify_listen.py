#!/usr/bin/env python3
"""notify_listen.py SOCKET OUT - stands in for systemd's notify socket:
binds a datagram socket at SOCKET and appends every message it receives to
OUT, one message per record, records separated by a line "--".  Runs until
killed (the test script ends it by pid)."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)  # the gateway sends after dropping root
open(out, "w").close()
while True:
    msg = s.recv(4096)
    with open(out, "a") as f:
        f.write(msg.decode("utf-8", "replace") + "\n--\n")
