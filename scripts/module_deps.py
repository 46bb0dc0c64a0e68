#!/usr/bin/env python3
"""Lists which library modules include which (a module is a folder of src/ganlite) and the modules
on an include cycle ("none" expected; see docs/architecture.md). Usage: scripts/module_deps.py [src/ganlite]"""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else 'src/ganlite'
edges = {}
for d in sorted(os.listdir(root)):
    p = os.path.join(root, d)
    if not os.path.isdir(p): continue
    for f in os.listdir(p):
        for m in re.finditer(r'#include "ganlite/(\w+)/', open(os.path.join(p, f)).read()):
            if m.group(1) != d: edges.setdefault(d, set()).add(m.group(1))
for a in sorted(edges): print(a, '->', ' '.join(sorted(edges[a])))
# a module on a cycle reaches itself
def reach(a):
    seen, todo = set(), list(edges.get(a, ()))
    while todo:
        b = todo.pop()
        if b not in seen: seen.add(b); todo += edges.get(b, ())
    return seen
cyc = [a for a in sorted(edges) if a in reach(a)]
print('cycles through:', ' '.join(cyc) if cyc else 'none')
