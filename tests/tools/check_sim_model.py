#!/usr/bin/env python3
"""check_sim_model.py — checks an rn_sim log written with --policy model:DIR, independently of
the C code: it rebuilds each user's history from the log, computes the simple state features
and the advantages A(s, i) = e_i . (W phi + w) + bias(i) of the model file, and checks every
impression against them (docs/simulator.md, "The model policy").

usage: check_sim_model.py LOG EMB MODEL.safetensors --lag S --period S --start MS --first MS
           --k K --slate L --epsilon E [--bias ITEM=V ...] [--history N] [--half-life S]

--first: the event_time of version 1; the versions are 1, 2, ... at --period apart, all with
the parameters of MODEL (apart from their ids).  Prints what it checked; exits 1 on a mismatch.
"""
import argparse
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        out[name] = (t["shape"], struct.unpack("<%df" % (len(raw) // 4), raw))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("emb")
    ap.add_argument("model")
    for a in ("--lag", "--period", "--start", "--first", "--k", "--slate"):
        ap.add_argument(a, type=int, required=True)
    ap.add_argument("--epsilon", type=float, required=True)
    ap.add_argument("--bias", action="append", default=[])
    ap.add_argument("--history", type=int, default=10)
    ap.add_argument("--half-life", type=float, default=1800)
    o = ap.parse_args()

    emb = {}
    for line in open(o.emb):
        p = line.split()
        emb[p[0]] = [float(x) for x in p[1:]]
    D = len(next(iter(emb.values())))
    t = read_safetensors(o.model)
    F = 2 * D + 2
    W = t["W"][1]
    w = t["w"][1]
    bias = {b.split("=")[0]: float(b.split("=")[1]) for b in o.bias}
    K, L, eps = o.k, o.slate, o.epsilon
    greedy_p, explore_p = 1 - eps, eps / (K - L)
    P, lag = o.period * 1000, o.lag * 1000
    hl = o.half_life * 1000

    hist = {}      # user -> [(item, ts)], oldest first
    last = {}      # user -> [request, impression ts, items, clicked set]
    requests = {}  # request -> (user, ts, candidates, greedy top L or None, margin)
    stats = dict(impressions=0, random=0, model=0, slots_checked=0, slots_close=0, explored=0)
    bad = []

    def fold(user):
        lst = last.pop(user, None)
        if not lst:
            return
        h = hist.setdefault(user, [])
        for it in lst[2]:
            if it in lst[3]:
                h.append((it, lst[1]))
        del h[:-o.history]

    def scores(user, now, cands):
        h = hist.get(user, [])[-o.history:]
        phi = [0.0] * F
        found = 0
        for it, ts in h:
            e = emb.get(it)
            if e is None:
                continue
            wgt = 2.0 ** (-max(0, now - ts) / hl) if hl > 0 else 1.0
            for d in range(D):
                phi[d] += e[d]
                phi[D + d] += wgt * e[d]
            found += 1
        if found:
            for d in range(D):
                phi[d] /= found
        phi[2 * D] = 1.0
        phi[2 * D + 1] = len(h) / o.history
        u = [w[d] + sum(W[d * F + f] * phi[f] for f in range(F)) for d in range(D)]
        return [sum(a * b for a, b in zip(emb[c], u)) + bias.get(c, 0.0) for c in cands]

    for n, line in enumerate(open(o.log), 1):
        ev = json.loads(line)
        user, ts = ev["user"], ev["ts"]
        if ev["type"] == "request":
            fold(user)
            b = ((ts - lag) // P) * P
            want_v = (b - o.first) // P + 1 if b >= o.start else 0
            cands = ev["candidates"]
            top, margin = None, None
            if want_v:
                s = scores(user, ts, cands)
                order = sorted(range(K), key=lambda c: (-s[c], c))
                top = [cands[c] for c in order[:L]]
                ss = sorted(s, reverse=True)
                # Exact ties (a bias-only model) break by candidate order in both; near ties
                # may come out either way in float arithmetic, so those slates are skipped.
                gaps = [ss[j] - ss[j + 1] for j in range(min(L, K - 1))]
                margin = min([g for g in gaps if g > 0] or [1.0])
            requests[ev["request"]] = (user, ts, cands, top, margin, want_v)
        elif ev["type"] == "impression":
            fold(user)
            stats["impressions"] += 1
            _, _, cands, top, margin, want_v = requests[ev["request"]]
            items, props, v = ev["items"], ev["propensities"], ev["model_version"]
            last[user] = [ev["request"], ts, items, set()]
            if v != want_v:
                bad.append("line %d: model_version %d, want %d" % (n, v, want_v))
                continue
            if len(set(items)) != L or any(i not in cands for i in items):
                bad.append("line %d: items not %d distinct candidates" % (n, L))
                continue
            if v == 0:
                stats["random"] += 1
                if any(abs(p - 1 / K) > 1e-5 for p in props):
                    bad.append("line %d: random slate with propensities %s" % (n, props))
                continue
            stats["model"] += 1
            close = margin < 1e-4
            for j, (it, p) in enumerate(zip(items, props)):
                if abs(p - greedy_p) < 1e-5:
                    if close:
                        stats["slots_close"] += 1
                    elif it != top[j]:
                        bad.append("line %d: slot %d shows %s, the model's #%d is %s" %
                                   (n, j, it, j + 1, top[j]))
                    else:
                        stats["slots_checked"] += 1
                elif abs(p - explore_p) < 1e-5 * explore_p + 1e-9:
                    stats["explored"] += 1
                    if it in top:
                        bad.append("line %d: explored slot %d shows %s from the top %d" %
                                   (n, j, it, L))
                else:
                    bad.append("line %d: slot %d propensity %g" % (n, j, p))
        elif ev["type"] == "click":
            lst = last.get(user)
            if lst and lst[0] == ev["request"]:
                lst[3].add(ev["item"])

    print(" ".join("%s=%d" % kv for kv in stats.items()))
    for b in bad[:10]:
        print("  " + b)
    if bad or stats["slots_checked"] == 0 or stats["random"] == 0:
        print("check_sim_model: %d mismatches" % len(bad))
        sys.exit(1)


main()
