#!/usr/bin/env python3
"""Reference results of the shipped Nexmark queries (bench/nexmark/q*.yaml),
computed straightforwardly from the generated events as the file sink wrote
them (test_nexmark.sh).

  nexmark_ref.py QUERY events.jsonl > expected.jsonl
  nexmark_ref.py compare expected.jsonl actual.jsonl
  nexmark_ref.py check events.jsonl     (the generator's proportions and ids)
"""
import json
import sys


def bids(path):
    with open(path) as f:
        evs = [json.loads(l) for l in f]
    return [e for e in evs if e["kind"] == "bid"]


def q0(path):
    return bids(path)


def q1(path):
    out = []
    for b in bids(path):
        b = dict(b)
        b["price"] = int(b["price"] * 0.908)  # truncated toward zero, as the job's integer field
        out.append(b)
    return out


def q2(path):
    return [b for b in bids(path) if b["auction"] % 123 == 0]


def q5(path):
    size, slide = 60000, 10000
    counts = {}  # window end -> auction -> bids
    for b in bids(path):
        start = b["date_time"] // slide * slide
        while start > b["date_time"] - size:
            per = counts.setdefault(start + size, {})
            per[b["auction"]] = per.get(b["auction"], 0) + 1
            start -= slide
    return [{"key": str(end), "start": end - slide, "end": end, "top": max(per.values()),
             "auctions": len(per)} for end, per in counts.items()]


def q11(path):
    gap = 10000
    per = {}
    for b in bids(path):
        per.setdefault(b["bidder"], []).append(b["date_time"])
    out = []
    for bidder, ts in per.items():
        ts.sort()
        first, n = ts[0], 0
        for i, t in enumerate(ts):
            if i and t >= ts[i - 1] + gap:
                out.append({"key": str(bidder), "start": first, "end": ts[i - 1] + gap, "bids": n})
                first, n = t, 0
            n += 1
        out.append({"key": str(bidder), "start": first, "end": ts[-1] + gap, "bids": n})
    return out


def check(path):
    with open(path) as f:
        evs = [json.loads(l) for l in f]
    bad = []
    for i, e in enumerate(evs):
        want = "person" if i % 50 < 1 else "auction" if i % 50 < 4 else "bid"
        if e["kind"] != want:
            bad.append("event %d is a %s, expected a %s" % (i, e["kind"], want))
            break
    persons = [e["id"] for e in evs if e["kind"] == "person"]
    auctions = [e["id"] for e in evs if e["kind"] == "auction"]
    if persons != list(range(1000, 1000 + len(persons))):
        bad.append("person ids are not 1000, 1001, ...")
    if auctions != list(range(1000, 1000 + len(auctions))):
        bad.append("auction ids are not 1000, 1001, ...")
    bs = [e for e in evs if e["kind"] == "bid"]
    hot = sum(1 for b in bs if b["auction"] % 100 == 0) / len(bs)
    if not 0.45 < hot < 0.6:
        bad.append("%.2f of the bids go to hot auctions, expected about 1/2" % hot)
    if any(b["auction"] > 1000 + len(auctions) + 10 for b in bs):
        bad.append("a bid on an auction that does not exist yet")
    if any(not 100 <= b["price"] <= 100000000 for b in bs):
        bad.append("a price outside [1, 1000000] dollars")
    ts = [e["date_time"] for e in evs]
    if ts != sorted(ts):
        bad.append("event time goes back")
    print("; ".join(bad) if bad else "ok: %d events, %d persons, %d auctions, %d bids, %.2f hot"
          % (len(evs), len(persons), len(auctions), len(bs), hot))
    return 1 if bad else 0


def compare(exp_path, act_path):
    def load(p):
        with open(p) as f:
            return sorted(json.dumps(json.loads(l), sort_keys=True) for l in f if l.strip())
    exp, act = load(exp_path), load(act_path)
    if exp == act:
        return 0
    e, a = set(exp), set(act)
    print("expected %d, got %d; missing e.g. %s; unexpected e.g. %s" %
          (len(exp), len(act), sorted(e - a)[:1], sorted(a - e)[:1]))
    return 1


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if cmd == "check":
        sys.exit(check(sys.argv[2]))
    for r in globals()[cmd](sys.argv[2]):
        print(json.dumps(r))
