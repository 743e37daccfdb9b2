#!/usr/bin/env python3
"""The LAST table of scripts/eval-last.sh's runs (python3 standard library only).

    python3 scripts/eval_last_report.py OUT_DIR SESSIONS SEED...

Reads OUT_DIR/runs/<arm>-<seed>/{returns.txt,sim.txt} (rn_sim --returns and its summary,
with LAST's line "sim: last: ...") and OUT_DIR/runs/http-<arm>-<seed>/inference.json (GET
/api/v1/inference after the HTTP run), and writes OUT_DIR/results.md: per seed and arm the
mean session return with its 95% confidence interval (normal approximation), the
difference from the model without LAST (interval from both standard errors), how often
LAST changed the list, the evaluator's predicted gain per page, and the added time per
page; then the serving latency over HTTP without and with LAST.
"""
import json
import math
import os
import re
import sys

from eval_report import load, stats


def se(xs):
    n = len(xs)
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n)


def main():
    out, sessions, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
    runs = os.path.join(out, "runs")
    arms = sorted({d.rsplit("-", 1)[0] for d in os.listdir(runs)
                   if not d.startswith(("train-", "http-", "model-", "evaluator-"))})
    lines = [f"Mean session return of the same {sessions} sessions served by the closed loop's "
             "model (γ = 0.5; the version that ranked its last page), without and with LAST, "
             "and by the evaluator alone [95 % CI]:", "",
             "| seed | policy | mean session return | Δ vs model | lists changed | "
             "predicted gain / page | added µs p50 / p99 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for seed in seeds:
        base = load(os.path.join(runs, f"model-{seed}", "returns.txt"))
        m, lo, hi = stats(base)
        lines.append(f"| {seed} | model | {m:.2f} [{lo:.2f}, {hi:.2f}] | | | | |")
        ev = os.path.join(runs, f"evaluator-{seed}", "returns.txt")
        if os.path.exists(ev):
            xs = load(ev)
            a, alo, ahi = stats(xs)
            diff, h = a - m, 1.96 * math.hypot(se(xs), se(base))
            lines.append(f"| {seed} | *evaluator alone* | {a:.2f} [{alo:.2f}, {ahi:.2f}] | "
                         f"{diff:+.2f} [{diff - h:+.2f}, {diff + h:+.2f}] | | | |")
        for arm in arms:
            d = os.path.join(runs, f"{arm}-{seed}")
            if not os.path.isdir(d):
                continue
            xs = load(os.path.join(d, "returns.txt"))
            a, alo, ahi = stats(xs)
            diff = a - m
            h = 1.96 * math.hypot(se(xs), se(base))
            with open(os.path.join(d, "sim.txt")) as f:
                text = f.read()
            g = dict(re.findall(r"(\w+)=([-0-9.]+)", text.split("sim: last:")[1].splitlines()[0]))
            ch = 100.0 * float(g["changed"]) / max(1.0, float(g["searches"]))
            lines.append(f"| {seed} | {arm} | {a:.2f} [{alo:.2f}, {ahi:.2f}] | "
                         f"{diff:+.2f} [{diff - h:+.2f}, {diff + h:+.2f}] | {ch:.1f} % | "
                         f"{float(g['predicted_gain_per_page']):+.3f} | "
                         f"{float(g['added_us_p50']):.1f} / {float(g['added_us_p99']):.1f} |")
    lines += ["", "Serving over HTTP (jobs/last-serve.yaml, GET /api/v1/inference; µs, the "
              "upper bounds of its log2 buckets):", "",
              "| seed | serving | requests | request p50 / p99 | LAST searches | changed | "
              "LAST added p50 / p99 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for seed in seeds:
        for arm in ("model", "last"):
            p = os.path.join(runs, f"http-{arm}-{seed}", "inference.json")
            if not os.path.exists(p):
                continue
            with open(p) as f:
                j = json.load(f)
            lat = j["latency_us"]
            row = f"| {seed} | {arm} | {j['requests_ok']} | {lat['p50']:.0f} / {lat['p99']:.0f} |"
            if "last" in j:
                la = j["last"]
                row += (f" {la['searches']} | {100.0 * la['changed'] / max(1, la['searches']):.1f} % |"
                        f" {la['added_latency_us']['p50']:.0f} / {la['added_latency_us']['p99']:.0f} |")
            else:
                row += " | | |"
            lines.append(row)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
