#!/usr/bin/env python3
"""Tables of scripts/offline-rl.sh's runs (python3 standard library only).

    python3 scripts/offline_rl_report.py OUT_DIR TAIL SEED...

Reads, per seed, OUT_DIR/<seed>/<model>.returns (rn_sim --returns: "index pages return"
per session, in arrival order), ope.json (runnel evaluate --json), <algo>.train
(runnel train-offline's summary line), job.txt (the job's learner counters), the model
stores and, for the first seed, <model>.serve (bench_serve model), and writes
OUT_DIR/results.md: the mean session return over the last TAIL sessions [95 % CI, normal
approximation], the SNIPS estimate on the held-out 20 % [95 % bootstrap CI], and per model
its size, training cost and serving latency.
"""
import json
import math
import os
import re
import sys

from eval_report import stats  # mean and normal-approximation 95 % interval

MODELS = ["popularity", "dueling-q", "reinforce-topk", "ddpg", "bcq"]
LABEL = {
    "popularity": "popularity (the logging policy)",
    "dueling-q": "dueling-Q learner, one pass over the same log",
    "reinforce-topk": "REINFORCE, top-K off-policy correction",
    "ddpg": "DDPG",
    "bcq": "BCQ (VAE + perturbation + Q)",
}


def returns(path, tail):
    with open(path) as f:
        xs = [float(line.split()[2]) for line in f if line.strip()]
    return stats(xs[-tail:])


def n_params(path):
    """The number of values in a safetensors file, from its header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
    return sum(math.prod(t["shape"]) for k, t in head.items() if k != "__metadata__")


def store_file(store):
    names = sorted(n for n in os.listdir(store) if n.endswith(".safetensors"))
    return os.path.join(store, names[-1])


def main():
    out, tail = sys.argv[1], int(sys.argv[2])
    seeds = sys.argv[3:]
    lines = ["Mean session return over the last %d sessions [95 %% CI]:\n" % tail,
             "| policy | " + " | ".join("seed %s" % s for s in seeds) + " |",
             "| --- | " + " | ".join("---" for _ in seeds) + " |"]
    for m in MODELS:
        cells = []
        for s in seeds:
            p = os.path.join(out, s, m + ".returns")
            if not os.path.exists(p):
                cells.append("—")
                continue
            cells.append("%.2f [%.2f, %.2f]" % returns(p, tail))
        lines.append("| %s | %s |" % (LABEL[m], " | ".join(cells)))
    lines += ["", "SNIPS (reward per shown slot) on the held-out last 20 % of the popularity log "
              "[95 % bootstrap CI] (matched slots, ESS):\n",
              "| policy | " + " | ".join("seed %s" % s for s in seeds) + " |",
              "| --- | " + " | ".join("---" for _ in seeds) + " |"]
    ope = {}
    for s in seeds:
        with open(os.path.join(out, s, "ope.json")) as f:
            for p in json.load(f)["policies"]:
                name = p["policy"]
                key = "popularity" if name == "logging" else \
                    os.path.basename(name.split()[0].rstrip("/"))
                ope.setdefault(key, {})[s] = p
    for m in MODELS:
        cells = []
        for s in seeds:
            p = ope.get(m, {}).get(s)
            if not p:
                cells.append("—")
                continue
            e = p["snips"]
            cells.append("%.3f [%.3f, %.3f] (%d, %.0f)" % (e["estimate"], e["lo"], e["hi"],
                                                          p["matched"], p["ess"]))
        lines.append("| %s | %s |" % (LABEL[m], " | ".join(cells)))
    s0 = seeds[0]
    lines += ["", "Cost (seed %s): model file, training time per logged item and pass (the learner: "
              "its thread's CPU time in the job; the actors: train-offline's wall time, one "
              "thread), "
              "serving (bench_serve model: one thread, 50 candidates, p50 / p99):\n" % s0,
              "| model | file bytes | parameters | training | passes | serving p50 / p99 |",
              "| --- | --- | --- | --- | --- | --- |"]
    d = os.path.join(out, s0)
    for m in MODELS[1:]:
        path = store_file(os.path.join(d, m))
        size, params = os.path.getsize(path), n_params(path)
        serve = "—"
        sp = os.path.join(d, m + ".serve")
        if os.path.exists(sp):
            g = re.search(r"p50 +([0-9.]+) +p99 +([0-9.]+)", open(sp).read())
            if g:
                serve = "%s / %s µs" % g.groups()
        if m == "dueling-q":
            job = open(os.path.join(d, "job.txt")).read()
            cpu = float(re.search(r"head=learn records=\d+ cpu_s=([0-9.]+)", job).group(1))
            items = sum(1 for _ in open(os.path.join(d, "log.jsonl")) if '"impression"' in _) * 5
            cost, passes = cpu / items * 1e9, "1 (online)"
        else:
            t = open(os.path.join(d, m + ".train")).read()
            cost = float(re.search(r"ns_per_transition=([0-9.]+)", t).group(1))
            passes = re.search(r"epochs=(\d+)", t).group(1)
        lines.append("| %s | %d | %d | %.0f ns | %s | %s |" % (LABEL[m], size, params, cost,
                                                                passes, serve))
    lines.append("")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
