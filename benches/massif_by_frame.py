#!/usr/bin/env python3
"""Where netalias's heap goes: a valgrind massif snapshot's bytes by the first netalias frame.

Each allocation in a detailed snapshot is charged to the netalias frame closest to malloc (the
registry map, record set or source that asked for it), with the library frame just below it
(which container allocated: a BTreeMap node, a DashMap table, an Arc). Used for the "Memory"
notes in benches/README.md; see there for the commands.

Usage: python3 benches/massif_by_frame.py MASSIF_OUT [peak|last] [ENDPOINTS]
  peak: the snapshot massif marked as the peak; last: the last detailed one (a snapshot taken
  with `vgdb --pid=PID detailed_snapshot FILE` has only that one). ENDPOINTS divides the bytes.
"""
import re, sys, collections
path = sys.argv[1]; want = sys.argv[2] if len(sys.argv) > 2 else 'peak'
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1
# netalias's own source files (massif shows them by base name; libraries by src/... paths).
NA_FILES = {'writer.rs','serve.rs','server.rs','main.rs','static_file.rs','tracked.rs','record_set.rs',
 'name_key.rs','fast.rs','change.rs','view.rs','early.rs','zone_tails.rs','listing.rs','describe.rs',
 'config.rs','publish.rs','live.rs','reach.rs','engine.rs','bridge.rs','handler.rs','udp.rs','tcp.rs',
 'answer.rs','predict.rs','turns.rs','listener.rs','host.rs','gateways.rs','exchange.rs','batch.rs','wire.rs','kept.rs','ptr_targets.rs','mod.rs'}
lines = open(path).read().split('\n')
# The snapshot to read.
i = 0; start = None; last_detailed = None
while i < len(lines):
    if lines[i].startswith('heap_tree=') and lines[i] != 'heap_tree=empty':
        last_detailed = i
        if want == 'peak' and lines[i] == 'heap_tree=peak': start = i
    i += 1
if want == 'last' or start is None: start = last_detailed
snap = [l for l in lines[start-6:start+1]]
print('\n'.join(snap[-5:]), file=sys.stderr)
node_re = re.compile(r'^(\s*)n(\d+): (\d+) (.*)$')
stack = []  # (indent, label)
totals = collections.Counter(); detail = collections.defaultdict(collections.Counter)
def is_na(label):
    m = re.search(r'\(([^()]*):\d+\)\s*$', label)
    f = m.group(1) if m else ''
    if 'netalias::' in label and '/' not in f: return True
    return '/' not in f and f in NA_FILES
def short(label):
    label = re.sub(r'^0x[0-9A-F]+: ', '', label)
    return label[:150]
j = start + 1
while j < len(lines):
    m = node_re.match(lines[j])
    if not m: break
    ind, nch, b, label = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    while stack and stack[-1][0] >= ind: stack.pop()
    stack.append((ind, label))
    if nch == 0:
        path_ = [l for _, l in stack[1:]]
        k = None; below = ''
        for idx, l in enumerate(path_):
            if is_na(l):
                k = short(l); 
                # nearest dependency frame below with a real function name
                for l2 in reversed(path_[:idx]):
                    if 'UnknownInlinedFun' not in l2:
                        below = short(l2); break
                break
        if k is None: k = 'OTHER: ' + (short(path_[-1]) if path_ else '?')
        totals[k] += b; detail[k][below] += b
    j += 1
tot = sum(totals.values())
print(f'total {tot} B, {tot/N:.0f} B/endpoint')
for k, b in totals.most_common(40):
    print(f'{b:>11} {b/N:8.1f} B/ep  {k}')
    for d, bb in detail[k].most_common(2):
        print(f'{"":>30}{bb:>11}  <- {d[:120]}')
