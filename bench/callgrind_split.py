#!/usr/bin/env python3
"""Split a callgrind profile of `cutover rehearse` into where the instructions go.

    bench/callgrind_split.py CALLGRIND_OUT

Each function's own instructions go to a category: the category of its name when it has
one (cutover's own modules, below), else those of its callers, in proportion to the
instructions each caller spent calling it. So malloc, memcpy, regex or a decimal parse count
for the rule, parser or encoder that called them; code with no categorised caller (the
runtime's scheduler, start-up) is "other". The map to target values is a function of its
own (`Compiled::transform`, never inlined): "transform".
"""
import json
import re
import sys
from collections import defaultdict

# First match wins; names are callgrind's demangled Rust paths.
CATEGORIES = [
    ("extract checksums", r"^<?cutover::sources::csv::sha256_file|^<?cutover::steps::extract::"),
    ("reconciliation", r"^<?cutover::values::Fingerprint|^<?cutover::reconcile::"
                       r"|^<?cutover::steps::validate::|^<?cutover::db::query::"),
    ("csv parse", r"^<?cutover::sources::"),
    ("encoding", r"^<?cutover::target::sql::postgres::copy_text|^<?cutover::values::"
                 # SQLite: the per-row binding closure is inlined into sqlx's push_values
                 r"|^sqlx_core::query_builder::QueryBuilder<DB>::push_values"),
    ("transform", r"^<?cutover::engine::rules::Compiled::transform"),
    ("rules", r"^<?cutover::engine::rules::"),
    ("rejects", r"^<?cutover::engine::rejects::"),
    ("pipeline", r"^<?cutover::engine::pipeline::"),
    ("target driver", r"^<?cutover::target::"),
    ("journal", r"^<?cutover::journal::"),
    # sqlx runs each SQLite connection on a thread of its own: its statements are no call
    # of the code that asked for them, so they are a line of their own.
    ("sqlite worker", r"sqlx_sqlite::connection::|^sqlite3"),
]
# A new thread is nobody's callee: what runs on it is not charged to the code that spawned it.
BARRIER = re.compile(r"^(clone3?|start_thread)('\d+)?$|thread_start")


def category_of(name, cache={}):
    if name not in cache:
        cache[name] = next((c for c, pat in CATEGORIES if re.search(pat, name)), None)
    return cache[name]


def parse(path):
    """Self cost per (fn, line category) and call edges (caller, caller line cat, callee, cost)."""
    names = {"fl": {}, "fn": {}}
    self_cost = defaultdict(int)   # (fn, sub) -> Ir
    edges = defaultdict(int)       # (caller, sub, callee) -> Ir
    fn = file = fl_file = None
    cfn = None
    in_call = False
    last = 0

    def name_of(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")

    def pos(tok):
        nonlocal last
        if tok == "*":
            return last
        if tok[0] in "+-":
            last = last + int(tok)
        else:
            last = int(tok)
        return last

    total = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                ln = pos(parts[0])
                ir = int(parts[1]) if len(parts) > 1 else 0
                sub = None
                if in_call:
                    edges[(fn, sub, cfn)] += ir
                    in_call = False
                else:
                    self_cost[(fn, sub)] += ir
                    total += ir
                continue
            key, _, rest = line.rstrip("\n").partition("=")
            if key == "fn":
                fn = name_of("fn", rest)
                file = fl_file
            elif key == "fl":
                fl_file = name_of("fl", rest)
                file = fl_file
            elif key in ("fi", "fe"):
                file = name_of("fl", rest)
            elif key in ("cfn",):
                cfn = name_of("fn", rest)
            elif key in ("cfi", "cfl"):
                name_of("fl", rest)
            elif key == "calls":
                in_call = True
    return self_cost, edges, total


def split(self_cost, edges):
    callers = defaultdict(list)  # callee -> [(caller, sub, cost)]
    for (caller, sub, callee), ir in edges.items():
        if caller != callee:
            callers[callee].append((caller, sub, ir))
    fns = {f for f, _ in self_cost} | set(callers)
    dist = {}

    def own(f, sub):
        if sub is not None:
            return {sub: 1.0}
        c = category_of(f)
        return {c: 1.0} if c else None

    # Fixpoint over the call graph (cycles converge; a dozen passes is plenty here).
    for f in fns:
        dist[f] = own(f, None) or {"other": 1.0}
    for _ in range(30):
        changed = False
        for f in fns:
            if own(f, None) or BARRIER.search(f):
                continue
            inc = callers.get(f)
            if not inc:
                continue
            acc = defaultdict(float)
            w = 0.0
            for caller, sub, ir in inc:
                d = own(caller, sub) or dist.get(caller, {"other": 1.0})
                for k, v in d.items():
                    acc[k] += v * ir
                w += ir
            if w == 0:
                continue
            new = {k: v / w for k, v in acc.items()}
            if any(abs(new.get(k, 0) - dist[f].get(k, 0)) > 1e-6 for k in set(new) | set(dist[f])):
                dist[f] = new
                changed = True
        if not changed:
            break
    out = defaultdict(float)
    for (f, sub), ir in self_cost.items():
        for k, v in (own(f, sub) or dist[f]).items():
            out[k] += v * ir
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    self_cost, edges, total = parse(args[0])
    out = split(self_cost, edges)
    out["total"] = total
    print(json.dumps({k: round(v) for k, v in out.items()}, sort_keys=True))
