#!/usr/bin/env python3
"""loop_wait_callers.py - which source file made each blocking Redis round
trip on a worker loop.

The daemon must run with DARVAZA_DEBUG_LOOP_WAITS=1: every such round trip
is then logged (event store_loop_wait) with its raw stack.  For each one
this prints one line: the file of the first frame outside the store itself
(gateway/state/) and the libraries (lib/), i.e. the code that asked for the
state, then the command:

    loop_wait_callers.py BINARY LOG...
    gateway/auth/login.c EVALSHA

A stack with no such frame prints "?".  tools/loop_waits.py shows whole
call chains; this is what a test asserts on.
"""
import re
import subprocess
import sys


def where(binary, addr, cache={}):
    """The source file of a return address (the call site's file)."""
    if addr not in cache:
        # A return address is just past its call: one byte back stays in it.
        a = hex(int(addr, 16) - 1)
        r = subprocess.run(["addr2line", "-e", binary, a], capture_output=True, text=True)
        cache[addr] = (r.stdout.split("\n")[0] or "?").split(":")[0]
    return cache[addr]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary = sys.argv[1]
    root = re.compile(r".*?/(gateway|lib)/")
    for path in sys.argv[2:]:
        lines = open(path, errors="replace").read().split("\n")
        for i, line in enumerate(lines):
            if '"event":"store_loop_wait"' not in line or "stack:" not in line:
                continue
            m = re.search(r"redis: (\S+)", line)
            caller = "?"
            for frame in lines[i + 1:i + 17]:
                f = re.search(r"darvazad\(\+(0x[0-9a-f]+)\)", frame)
                if not f:
                    if not re.search(r"\(\+?0x[0-9a-f]*\)|\[0x[0-9a-f]+\]", frame):
                        break
                    continue
                src = root.sub(r"\1/", where(binary, f.group(1)))
                if not src.startswith(("gateway/state/", "lib/")) and src != "?":
                    caller = src
                    break
            print(f"{caller} {m.group(1) if m else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
