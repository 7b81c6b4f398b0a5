#!/usr/bin/env python3
"""loop_waits.py - where a gateway waited on Redis on a worker loop.

Run a test with DARVAZA_DEBUG_LOOP_WAITS=1 in the daemon's environment (and
KEEP_STATE=1 to keep its logs); every blocking store round trip made on a
worker loop is then logged (event store_loop_wait) with the raw stack.  This
groups those stacks by call chain, names the functions (addr2line), and
prints the chains, most frequent first:

    tools/loop_waits.py build/darvazad LOG...
"""
import collections
import re
import subprocess
import sys


def frames_of(lines, i):
    """The stack lines after the log line at i: (offset, next index)."""
    out = []
    j = i + 1
    while j < len(lines) and re.search(r"\(\+?0x[0-9a-f]+\)|\[0x[0-9a-f]+\]", lines[j]):
        m = re.search(r"\(\+(0x[0-9a-f]+)\)", lines[j])
        out.append(m.group(1) if m and "darvazad" in lines[j] else "")
        j += 1
    return out, j


def name(binary, addr, cache={}):
    if addr not in cache:
        r = subprocess.run(["addr2line", "-f", "-e", binary, addr], capture_output=True, text=True)
        cache[addr] = r.stdout.split("\n")[0] or "?"
    return cache[addr]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary = sys.argv[1]
    chains = collections.Counter()
    for path in sys.argv[2:]:
        lines = open(path, errors="replace").read().split("\n")
        i = 0
        while i < len(lines):
            if "store_loop_wait" not in lines[i]:
                i += 1
                continue
            m = re.search(r"redis: (\S+)", lines[i])
            frames, i = frames_of(lines, i)
            names = [name(binary, a) for a in frames[1:10] if a]
            chains[(m.group(1) if m else "?", " < ".join(names))] += 1
    for (cmd, chain), n in chains.most_common():
        print(f"{n:5d} {cmd:8s} {chain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
