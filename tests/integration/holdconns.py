#!/usr/bin/python3
"""holdconns.py - open N TCP connections from a source address and hold them
without ever sending a byte (no TLS ClientHello): the connection flood of the
hardening tests.  Prints "open K" once all connects were tried and again each
time the server closes some (K: how many it still holds), and holds them
until killed or MAX_S seconds pass (bounded: it stops by itself).

  holdconns.py HOST PORT N SOURCE_ADDR [MAX_S]
"""
import select
import socket
import sys
import time


def main():
    host, port, n, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    max_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        try:
            s.connect((host, port))
            socks.append(s)
        except OSError:
            s.close()
    # Report how many the server still holds, again whenever it closes
    # some (a closed one reads EOF): the caller waits for the state it
    # expects instead of guessing how long the server takes.
    alive = set(socks)
    print("open %d" % len(alive), flush=True)
    end = time.time() + max_s
    while time.time() < end:
        if not alive:
            time.sleep(0.5)
            continue
        ready, _, _ = select.select(list(alive), [], [], 0.5)
        gone = 0
        for s in ready:
            try:
                if not s.recv(1, socket.MSG_PEEK):
                    alive.discard(s)
                    gone += 1
            except OSError:
                alive.discard(s)
                gone += 1
        if gone:
            print("open %d" % len(alive), flush=True)


if __name__ == "__main__":
    main()
