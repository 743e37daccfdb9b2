#!/usr/bin/env python3
"""Reference computations for the FlinkRL job test (test_flinkrl.sh), independent of the C code.

  flinkrl_ref.py windows LOG SIZE SLIDE OOO N > expected.jsonl
      the last N clicked items per user in each sliding event-time window [start, start +
      SIZE), starts every SLIDE ms, simulated line by line: every event of the log moves the
      watermark to max(ts) - OOO - 1 (watermark.emit_every: 1); a window's result is written
      when the watermark reaches end - 1, and a click arriving after that is dropped from it
      (no allowed lateness). Results {"key","start","end","items"}, items oldest first;
      on stderr "cut: M", the number of windows that had more than N clicks.
  flinkrl_ref.py topk WINDOWS RECS EMB MODEL.safetensors K HISTORY VERSION
      for every window of WINDOWS (the job's window output), the recommendation the job
      wrote for it (RECS): the simple state features of the window's items (all seen at
      end - 1, so each weighs 1 in the decayed sum), the advantages e_i . (W phi + w) of every
      item of the embedding table, the top K without the window's items (ties: the earlier
      row), model_version VERSION. The model's item biases must be zero (mkmodel --random).
      An actor file (runnel-actor/1, no item_bias, no perturbation) is scored by
      e_i . scale * g(W phi + w) instead. Prints what it checked; exits 1 on a mismatch.
  flinkrl_ref.py mkactor STORE D SEED
      writes version 1 of an actor (runnel-actor/1, activation tanh, random F64 weights in
      [-0.5, 0.5), F = 2D + 2) into the model store STORE, with nothing but the standard
      library: an actor trained elsewhere, in the documented layout.
  flinkrl_ref.py compare expected.jsonl actual.jsonl
      the same multiset of window results?
"""
import json
import math
import os
import random
import struct
import sys


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def windows(path, size, slide, ooo, n):
    wm = maxts = float("-inf")
    state = {}  # (user, end) -> items in arrival order
    out = []
    cut = 0

    def advance(nw):
        nonlocal cut
        for (k, end) in sorted(state):
            if end - 1 <= nw:
                cut += len(state[(k, end)]) > n
                out.append({"key": k, "start": end - size, "end": end, "items": state[(k, end)][-n:]})
                del state[(k, end)]

    for e in read(path):
        ts = e["ts"]
        if e["type"] == "click":
            start = ts // slide * slide
            while start > ts - size:
                end = start + size
                if end - 1 > wm:
                    state.setdefault((e["user"], end), []).append(e["item"])
                start -= slide
        maxts = max(maxts, ts)
        if maxts - ooo - 1 > wm:
            wm = maxts - ooo - 1
            advance(wm)
    advance(float("inf"))
    for r in out:
        print(json.dumps(r))
    print("cut: %d" % cut, file=sys.stderr)


def compare(exp_path, act_path):
    def key(r):
        return json.dumps(r, sort_keys=True)
    exp = sorted(key(r) for r in read(exp_path))
    act = sorted(key(r) for r in read(act_path))
    if exp == act:
        return 0
    e, a = set(exp), set(act)
    print("expected %d, got %d; missing e.g. %s; unexpected e.g. %s" %
          (len(exp), len(act), sorted(e - a)[:2], sorted(a - e)[:2]))
    return 1


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hn,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hn])
    out = {"__metadata__": header.get("__metadata__", {})}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[8 + hn + b:8 + hn + e]
        fmt = {"F32": "f", "F64": "d"}[t["dtype"]]
        out[name] = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw)
    return out


def mkactor(store, D, seed):
    rnd = random.Random(seed)
    F = 2 * D + 2
    tensors = {"actor.weight": ([D, F], [rnd.random() - 0.5 for _ in range(D * F)]),
               "actor.bias": ([D], [rnd.random() - 0.5 for _ in range(D)])}
    header, blob = {"__metadata__": {"format": "runnel-actor/1", "activation": "tanh"}}, b""
    for name, (shape, vals) in tensors.items():
        raw = struct.pack("<%dd" % len(vals), *vals)
        header[name] = {"dtype": "F64", "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    os.makedirs(store, exist_ok=True)
    with open(os.path.join(store, "v000000000001.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    with open(os.path.join(store, "v000000000001.json"), "w") as f:
        f.write('{"id":1,"created_ms":0,"event_time":0,"updates":0,"transitions":0}')


def topk(win_path, rec_path, emb_path, model_path, k, history, version):
    rows, emb = [], {}
    for line in open(emb_path):
        p = line.split()
        if p:
            rows.append(p[0])
            emb[p[0]] = [float(x) for x in p[1:]]
    D = len(emb[rows[0]])
    F = 2 * D + 2
    t = read_safetensors(model_path)
    meta = t["__metadata__"]
    actor = meta.get("format") == "runnel-actor/1"
    W, w = (t["actor.weight"], t["actor.bias"]) if actor else (t["W"], t["w"])
    if any(x != 0 for x in t.get("b", ())) or "item_bias" in t or "perturb.weight" in t:
        print("the model has item biases or a perturbation: this reference does not compute them")
        return 1
    g = math.tanh if meta.get("activation") == "tanh" else (lambda x: x)
    scale = float(meta.get("scale", 1))
    recs = {(r["user"], r["end"]): r for r in read(rec_path)}
    bad, checked, ties = [], 0, 0
    for win in read(win_path):
        r = recs.pop((win["key"], win["end"]), None)
        if r is None:
            bad.append("window %s/%d: no recommendation" % (win["key"], win["end"]))
            continue
        h = win["items"][-history:]
        phi = [0.0] * F
        found = [emb[i] for i in h if i in emb]
        for e in found:
            for d in range(D):
                phi[d] += e[d] / len(found)
                phi[D + d] += e[d]
        phi[2 * D] = 1.0
        phi[2 * D + 1] = len(h) / history
        u = [w[d] + sum(W[d * F + f] * phi[f] for f in range(F)) for d in range(D)]
        if actor:
            u = [scale * g(x) for x in u]
        s = [sum(a * b for a, b in zip(emb[it], u)) for it in rows]
        seen = set(win["items"])
        order = [j for j in sorted(range(len(rows)), key=lambda j: (-s[j], j)) if rows[j] not in seen]
        want = [rows[j] for j in order[:k]]
        gaps = [s[order[j]] - s[order[j + 1]] for j in range(min(k, len(order) - 1))]
        if r["model_version"] != version:
            bad.append("window %s/%d: model_version %s, want %d" % (win["key"], win["end"], r["model_version"], version))
        elif min(gaps) < 1e-5:
            ties += 1  # float32 against float64: a near tie may come out either way
        elif r["items"] != want:
            bad.append("window %s/%d: items %s, want %s" % (win["key"], win["end"], r["items"], want))
        elif any(abs(a - s[j]) > 1e-4 * max(1.0, abs(s[j])) for a, j in zip(r["scores"], order)):
            bad.append("window %s/%d: scores %s, want %s" % (win["key"], win["end"], r["scores"],
                                                           [s[j] for j in order[:k]]))
        else:
            checked += 1
    if recs:
        bad.append("%d recommendations for no window, e.g. %s" % (len(recs), next(iter(recs))))
    print("%d recommendations equal the offline top %d, %d skipped for near ties" % (checked, k, ties))
    for b in bad[:5]:
        print(b)
    return 1 if bad or not checked else 0


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "windows":
        windows(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]))
    elif a[1] == "compare":
        sys.exit(compare(a[2], a[3]))
    elif a[1] == "mkactor":
        mkactor(a[2], int(a[3]), int(a[4]))
    elif a[1] == "topk":
        sys.exit(topk(a[2], a[3], a[4], a[5], int(a[6]), int(a[7]), int(a[8])))
    else:
        sys.exit("usage: see the docstring")
