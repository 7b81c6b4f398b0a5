#!/usr/bin/env python3
"""depcheck.py - darvaza's dependency check (run by `make lint`).

Reads the layers from tools/layers.conf and checks two kinds of edges:
  - includes: every `#include "folder/x.h"` in a .c or .h file, and
  - calls: from the built objects (`nm`): a file that uses a symbol another
    file defines depends on that file.
Refuses an edge to a folder of a higher or equal rank (other than its own),
an edge outside a folder's "only" prefix, a source in no known folder, and
any cycle of files (from the objects) unless it stays inside one folder and
inside one allow-cycle group.  Prints one line per fault (file:line for
includes) and exits 1 if there is any.

  tools/depcheck.py [--root DIR] [--objdir DIR] [--layers FILE]
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def load_layers(path):
    ranks, only, groups = {}, {}, []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('allow-cycle '):
                files, sep, reason = line[len('allow-cycle '):].partition(':')
                if not sep or not reason.strip() or not files.split():
                    sys.exit('%s:%d: allow-cycle needs files, ":" and a reason' % (path, n))
                groups.append(set(files.split()))
                continue
            parts = line.split()
            if len(parts) not in (2, 4) or not parts[0].isdigit() or \
                    (len(parts) == 4 and parts[2] != 'only'):
                sys.exit('%s:%d: expected "RANK FOLDER [only PREFIX]"' % (path, n))
            ranks[parts[1]] = int(parts[0])
            if len(parts) == 4:
                only[parts[1]] = parts[3]
    return ranks, only, groups


def folder_of(path, ranks):
    d = os.path.dirname(path)
    return d if d in ranks else None


class Checker:
    def __init__(self, root, ranks, only, groups):
        self.root, self.ranks, self.only, self.groups = root, ranks, only, groups
        self.faults = []

    def edge_fault(self, src, dst):
        """Why src folder may not use dst folder, or None."""
        if src == dst:
            return None
        if src in self.only and not dst.startswith(self.only[src]):
            return '%s may use only %s*' % (src, self.only[src])
        if self.ranks[dst] > self.ranks[src]:
            return 'points up (%s is above %s)' % (dst, src)
        if self.ranks[dst] == self.ranks[src]:
            return 'crosses to a sibling layer (%s and %s have one rank)' % (src, dst)
        return None

    def resolve_include(self, name, including):
        """The folder a quoted include lands in, or None if not ours."""
        here = os.path.join(os.path.dirname(including), name)
        if '/' not in name and os.path.exists(os.path.join(self.root, here)):
            return os.path.dirname(os.path.normpath(here))
        for top in ('lib', 'gateway'):
            cand = os.path.normpath(os.path.join(top, name))
            if os.path.exists(os.path.join(self.root, cand)):
                return os.path.dirname(cand)
        return None

    def check_includes(self, files):
        for path in files:
            src = folder_of(path, self.ranks)
            with open(os.path.join(self.root, path), errors='replace') as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    dst = self.resolve_include(m.group(1), path)
                    if dst is None or dst not in self.ranks:
                        continue
                    why = self.edge_fault(src, dst)
                    if why:
                        self.faults.append('%s:%d: #include "%s" %s' % (path, n, m.group(1), why))

    def symbol_graph(self, sources, objdir):
        defs, undefs = {}, {}
        for src in sources:
            obj = os.path.join(objdir, src[:-2] + '.o')
            if not os.path.exists(obj):
                self.faults.append('%s: no object %s (build first)' % (src, obj))
                continue
            out = subprocess.run(['nm', '-P', obj], capture_output=True, text=True,
                                 check=True).stdout
            node = src[:-2]
            undefs[node] = set()
            for line in out.splitlines():
                p = line.split()
                if len(p) < 2:
                    continue
                if p[1] in 'TDBRCV':
                    defs.setdefault(p[0], node)
                elif p[1] == 'U':
                    undefs[node].add(p[0])
        graph = {}
        for node, syms in undefs.items():
            graph[node] = {}
            for s in sorted(syms):
                d = defs.get(s)
                if d and d != node:
                    graph[node].setdefault(d, s)
        return graph

    def check_calls(self, graph):
        for a, outs in sorted(graph.items()):
            for b, sym in sorted(outs.items()):
                why = self.edge_fault(os.path.dirname(a), os.path.dirname(b))
                if why:
                    self.faults.append('%s.c: calls %s (%s.c): %s' % (a, sym, b, why))

    def check_cycles(self, graph):
        for comp in strongly_connected(graph):
            if len(comp) < 2:
                continue
            folders = {os.path.dirname(n) for n in comp}
            if len(folders) == 1 and any(set(comp) <= g for g in self.groups):
                continue
            where = 'crosses folders' if len(folders) > 1 else 'is in no allow-cycle group'
            self.faults.append('cycle %s: %s' % (' <-> '.join(sorted(comp)), where))


def strongly_connected(graph):
    """Tarjan's algorithm, iterative (the graph is small, recursion is not
    the problem; clarity is)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    nodes = set(graph) | {b for outs in graph.values() for b in outs}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default='.')
    ap.add_argument('--objdir', default='build/obj')
    ap.add_argument('--layers', default=None)
    args = ap.parse_args()
    layers = args.layers or os.path.join(args.root, 'tools', 'layers.conf')
    ranks, only, groups = load_layers(layers)
    chk = Checker(args.root, ranks, only, groups)

    files, sources = [], []
    for top in sorted({f.split('/')[0] for f in ranks}):
        for d, _, names in os.walk(os.path.join(args.root, top)):
            for name in sorted(names):
                if not name.endswith(('.c', '.h')):
                    continue
                rel = os.path.relpath(os.path.join(d, name), args.root)
                if folder_of(rel, ranks) is None:
                    chk.faults.append('%s: in no folder of %s' % (rel, layers))
                    continue
                files.append(rel)
                if name.endswith('.c'):
                    sources.append(rel)
    chk.check_includes(files)
    graph = chk.symbol_graph(sources, args.objdir)
    chk.check_calls(graph)
    chk.check_cycles(graph)
    for f in chk.faults:
        print('depcheck: ' + f)
    if chk.faults:
        print('depcheck: %d fault(s); the layers are in %s' % (len(chk.faults), layers))
        return 1
    print('depcheck: %d files, %d folders, arrows point down' % (len(files), len(ranks)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
