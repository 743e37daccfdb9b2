#!/usr/bin/env python3
"""learner_torch.py — the runnel learner's update in PyTorch, for bench/run_learner.sh.

Reads the data file of `build/bench_learner gen` and runs the same mini-batch TD step as
rn_learner_update (rn_model.h, rn_learner_loss): the dueling Q per shown item

    Q_i = V(s) + A_i - mean_j A_j,   V(s) = v.phi,   A_i = e_i.W phi + w.e_i + b[id mod H] + c[pos]
    y_i = r_i + gamma (1 - done) n share_i Vhat_target(s'),  share_i = clicked_i / #clicked or 1/n
    loss = 1/2 sum (Q - y)^2 / N_items

with Adam (lr 0.01, betas 0.9/0.999, eps 1e-8), L2 1e-6 on v, W, w (Adam's weight_decay: added
to the gradient, as runnel does), the gradient's global norm clipped to 10, batches of 32 in
file order, the target's v refreshed every 200 updates, from a zero model.

    python3 bench/learner_torch.py DATA [--updates 20000] [--threads 1|0] [--curve FILE]
                                   [--params FILE] [--check-curve FILE --check-params FILE]

--threads 0 leaves PyTorch's default thread count. Prints the updates' CPU time
(getrusage, user + sys, every thread of the process) and transitions per CPU-second, and the
wall-clock rate. --check-* compare this run's loss curve and final parameters with runnel's
(written by bench_learner run --curve/--params) and print the largest differences.
"""
import argparse
import resource
import sys
import time

import numpy as np
import torch


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"RNLBENCH":
        sys.exit(f"{path}: not a bench_learner data file")
    n, d, f_, l, h, p = np.frombuffer(raw, np.uint32, 6, 8)
    n, d, f_, l, h, p = int(n), int(d), int(f_), int(l), int(h), int(p)
    off = 32

    def take(dtype, count, shape):
        nonlocal off
        a = np.frombuffer(raw, dtype, count, off).reshape(shape)
        off += a.nbytes
        return a

    phi = take(np.float32, n * f_, (n, f_))
    phin = take(np.float32, n * f_, (n, f_))
    E = take(np.float32, n * l * d, (n, l, d))
    items = take(np.uint64, n * l, (n, l))
    pos = take(np.uint32, n * l, (n, l))
    rew = take(np.float32, n * l, (n, l))
    clk = take(np.uint8, n * l, (n, l))
    done = take(np.uint8, n, (n,))
    # The same bucket (id mod H) and position (capped at P - 1) as runnel.
    bucket = (items % np.uint64(h)).astype(np.int64)
    pos = np.minimum(pos, p - 1).astype(np.int64)
    t = lambda a: torch.from_numpy(np.array(a))  # a writable copy
    return dict(n=n, d=d, f=f_, l=l, h=h, p=p, phi=t(phi), phin=t(phin), E=t(E), bucket=t(bucket),
                pos=t(pos), rew=t(rew), clk=t(clk.astype(np.float32)),
                done=t(done.astype(np.float32)))


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--updates", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="0: PyTorch's default")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--curve")
    ap.add_argument("--params")
    ap.add_argument("--check-curve")
    ap.add_argument("--check-params")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    x = load(a.data)
    d, f_, h, p, l, B = x["d"], x["f"], x["h"], x["p"], x["l"], a.batch
    gamma, lr, l2, clip, target_every = 0.9, 0.01, 1e-6, 10.0, 200
    v = torch.zeros(f_, requires_grad=True)
    W = torch.zeros(d, f_, requires_grad=True)
    w = torch.zeros(d, requires_grad=True)
    b = torch.zeros(h, requires_grad=True)
    c = torch.zeros(p, requires_grad=True)
    params = [v, W, w, b, c]
    opt = torch.optim.Adam([{"params": [v, W, w], "weight_decay": l2},
                            {"params": [b, c], "weight_decay": 0.0}],
                           lr=lr, betas=(0.9, 0.999), eps=1e-8)
    vt = v.detach().clone()
    batches = x["n"] // B
    curve = []
    keep_curve = bool(a.curve or a.check_curve)
    c0, w0 = cpu_s(), time.perf_counter()
    for u in range(a.updates):
        s = slice((u % batches) * B, (u % batches + 1) * B)
        phi, E, bucket, pos = x["phi"][s], x["E"][s], x["bucket"][s], x["pos"][s]
        with torch.no_grad():
            vnext = x["phin"][s] @ vt
            clk = x["clk"][s]
            nclk = clk.sum(1, keepdim=True)
            share = torch.where(nclk > 0, clk / nclk.clamp(min=1), torch.full_like(clk, 1.0 / l))
            y = x["rew"][s] + (gamma * (1 - x["done"][s]) * l * vnext).unsqueeze(1) * share
        V = phi @ v
        uvec = phi @ W.t() + w
        A = torch.bmm(E, uvec.unsqueeze(2)).squeeze(2) + b[bucket] + c[pos]
        Q = V.unsqueeze(1) + A - A.mean(1, keepdim=True)
        loss = 0.5 * ((Q - y) ** 2).sum() / (B * l)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        if (u + 1) % target_every == 0:
            vt.copy_(v.detach())
        if keep_curve:
            curve.append(loss.item())
    cpu, wall = cpu_s() - c0, time.perf_counter() - w0
    tr = a.updates * B
    print(f"torch {torch.__version__} learner (threads {torch.get_num_threads()}): "
          f"{a.updates} updates of {B}, {cpu:.3f} CPU-s, {wall:.3f} s wall, "
          f"{tr / cpu:.0f} transitions per CPU-second, {tr / wall:.0f} per wall-second, "
          f"{cpu / a.updates * 1e6:.1f} us per update, last loss {loss.item():.6g}")
    if a.curve:
        np.savetxt(a.curve, np.array(curve), fmt="%.9g")
    flat = torch.cat([t.detach().reshape(-1) for t in params]).numpy()
    if a.params:
        flat.astype(np.float32).tofile(a.params)
    if a.check_curve:
        theirs = np.loadtxt(a.check_curve)[: len(curve)]
        ours = np.array(curve[: len(theirs)])
        rel = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)
        print(f"agreement: loss curve over {len(ours)} updates, max relative difference "
              f"{rel.max():.2e} (at update {int(rel.argmax()) + 1}), median {np.median(rel):.2e}")
    if a.check_params:
        theirs = np.fromfile(a.check_params, np.float32)
        if theirs.shape != flat.shape:
            sys.exit(f"{a.check_params}: {theirs.size} parameters, expected {flat.size}")
        diff = np.abs(flat - theirs)
        print(f"agreement: {flat.size} parameters after {a.updates} updates, max |difference| "
              f"{diff.max():.2e} (largest |parameter| {np.abs(theirs).max():.3g}), "
              f"mean {diff.mean():.2e}")


if __name__ == "__main__":
    main()
