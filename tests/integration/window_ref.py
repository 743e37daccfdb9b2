#!/usr/bin/env python3
"""Reference computations for the `window` operator tests (test_window.sh).

  window_ref.py gen N SEED DISORDER_MS SORTED > events.jsonl
      pay events of 20 users, about 7 ms apart, each shifted by up to
      DISORDER_MS back in time (SORTED=1: then sorted by time).
  window_ref.py fixed events.jsonl SIZE SLIDE LATENESS OOO > expected.jsonl
      tumbling/sliding windows, simulated record by record: the watermark
      after each record is max(ts) - OOO - 1 (watermark.emit_every: 1); a
      window's result is written when the watermark reaches end - 1, again
      (with "update": true) for each record that reaches it later but before
      end - 1 + LATENESS; a record with no window left is late. The last
      line is {"late": n}.
  window_ref.py session events.jsonl GAP > expected.jsonl
      session windows of sorted input, computed offline: a key's records
      closer than GAP form one session [first, last + GAP).
  window_ref.py compare expected.jsonl actual.jsonl
      the same multiset of results (integral numbers compared as integers)?
Aggregates: n: count, total: sum(amount), lo: min(amount), hi: max(amount),
mean: avg(amount), last: collect(amount, 3) (not with sessions).
"""
import json
import random
import sys


def norm(v):
    if isinstance(v, float) and v == int(v):
        return int(v)
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def result(key, start, end, vals, update, collect=True):
    r = {"key": key, "start": start, "end": end, "n": len(vals), "total": float(sum(vals)),
         "lo": float(min(vals)), "hi": float(max(vals)), "mean": float(sum(vals)) / len(vals)}
    if collect:
        r["last"] = vals[-3:]
    if update:
        r["update"] = True
    return r


def read(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def gen(n, seed, disorder, sort):
    rnd = random.Random(seed)
    evs = []
    for i in range(n):
        ts = 1_000_000 + i * 7 - rnd.randint(0, disorder)
        evs.append({"type": "pay", "ts": ts, "request": "r%d" % i, "user": "u%d" % rnd.randint(0, 19),
                    "item": "i", "amount": rnd.randint(1, 100)})
    if sort:
        evs.sort(key=lambda e: e["ts"])
    for e in evs:
        print(json.dumps(e, separators=(",", ":")))


def fixed(path, size, slide, lateness, ooo):
    wm = float("-inf")
    maxts = float("-inf")
    state = {}  # (key, end) -> amounts in arrival order
    out, late = [], 0

    def advance(nw):
        for (k, end) in sorted(state):
            if wm < end - 1 <= nw:
                out.append(result(k, end - size, end, state[(k, end)], False))
            if end - 1 + lateness <= nw:
                del state[(k, end)]

    for e in read(path):
        ts, k, a = e["ts"], e["user"], e["amount"]
        counted = False
        start = ts // slide * slide
        while start > ts - size:
            end = start + size
            if end - 1 + lateness > wm:
                state.setdefault((k, end), []).append(a)
                if end - 1 <= wm:
                    out.append(result(k, start, end, state[(k, end)], True))
                counted = True
            start -= slide
        late += not counted
        maxts = max(maxts, ts)
        nw = maxts - ooo - 1
        if nw > wm:
            advance(nw)
            wm = nw
    advance(float("inf"))
    for r in out:
        print(json.dumps(r))
    print(json.dumps({"late": late}))


def session(path, gap):
    per = {}
    for e in read(path):
        per.setdefault(e["user"], []).append((e["ts"], e["amount"]))
    for k, evs in per.items():
        cur, first, last = [], None, None
        for ts, a in evs:
            if cur and ts >= last + gap:
                print(json.dumps(result(k, first, last + gap, cur, False, False)))
                cur = []
            if not cur:
                first = ts
            cur.append(a)
            last = ts
        print(json.dumps(result(k, first, last + gap, cur, False, False)))


def compare(exp_path, act_path):
    def key(r):
        return json.dumps({k: norm(v) for k, v in r.items()}, sort_keys=True)
    exp = sorted(key(r) for r in read(exp_path) if "late" not in r)
    act = sorted(key(r) for r in read(act_path))
    if exp == act:
        return 0
    e, a = set(exp), set(act)
    print("expected %d, got %d; missing e.g. %s; unexpected e.g. %s" %
          (len(exp), len(act), sorted(e - a)[:2], sorted(a - e)[:2]))
    return 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(int(args[0]), int(args[1]), int(args[2]), args[3] == "1")
    elif cmd == "fixed":
        fixed(args[0], *map(int, args[1:5]))
    elif cmd == "session":
        session(args[0], int(args[1]))
    elif cmd == "compare":
        sys.exit(compare(args[0], args[1]))
