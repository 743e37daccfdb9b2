#!/usr/bin/env python3
"""Tables and learning curves of scripts/evaluate.sh's runs (python3 standard library only).

    python3 scripts/eval_report.py OUT_DIR TAIL BLOCK SEED...

Reads OUT_DIR/runs/<policy>-<seed>/returns.txt (rn_sim --returns: "index pages return"
per session, in arrival order) and writes OUT_DIR/results.md — mean session return with a
95% confidence interval (normal approximation, mean ± 1.96 s/√n) over all sessions and
over the last TAIL sessions, per policy and seed — and OUT_DIR/curves.svg: the mean
return of each BLOCK consecutive sessions, one panel per seed, one line per policy.
"""
import math
import os
import sys


def stats(xs):
    n = len(xs)
    m = sum(xs) / n
    v = sum((x - m) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    h = 1.96 * math.sqrt(v / n) if n > 1 else float("nan")
    return m, m - h, m + h


def load(path):
    with open(path) as f:
        return [float(line.split()[2]) for line in f if line.strip()]


def order_key(name):
    fixed = ["random", "popularity", "myopic", "oracle-longterm"]
    if name in fixed:
        return (0, fixed.index(name), 0.0)
    return (1, 0, -float(name.split("-g")[1]) if "-g" in name else 0.0)


def label(name):
    if name.startswith("learned-g"):
        return "learned, γ = " + name[len("learned-g"):]
    return name


def main():
    out, tail, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seeds = sys.argv[4:]
    runs = {}
    for d in sorted(os.listdir(os.path.join(out, "runs"))):
        policy, _, seed = d.rpartition("-")
        path = os.path.join(out, "runs", d, "returns.txt")
        if seed in seeds and os.path.exists(path):
            runs.setdefault(policy, {})[seed] = load(path)
    policies = sorted(runs, key=order_key)
    lines = []
    for title, pick in (("all sessions", lambda xs: xs), ("the last %d sessions" % tail, lambda xs: xs[-tail:])):
        lines.append("Mean session return over %s [95%% CI]:\n" % title)
        lines.append("| policy | " + " | ".join("seed %s" % s for s in seeds) + " |")
        lines.append("| --- | " + " | ".join("---" for _ in seeds) + " |")
        for p in policies:
            cells = []
            for s in seeds:
                xs = runs[p].get(s)
                if not xs:
                    cells.append("—")
                    continue
                m, lo, hi = stats(pick(xs))
                cells.append("%.2f [%.2f, %.2f]" % (m, lo, hi))
            lines.append("| %s | %s |" % (label(p), " | ".join(cells)))
        lines.append("")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))

    # The picture: one panel per seed.
    colours = ["#6b6b6b", "#b07aa1", "#e15759", "#59a14f", "#4e79a7", "#f28e2b", "#76b7b2", "#edc948"]
    pw, ph, ml, mt, mb = 420, 300, 50, 30, 44
    width = ml + len(seeds) * (pw + 20) + 180
    height = mt + ph + mb
    ymax = 0.0
    curves = {}
    for p in policies:
        for s in seeds:
            xs = runs[p].get(s, [])
            pts = [sum(xs[i:i + block]) / len(xs[i:i + block]) for i in range(0, len(xs) - block + 1, block)]
            curves[(p, s)] = pts
            if pts:
                ymax = max(ymax, max(pts))
    ymax = math.ceil(ymax / 5.0) * 5.0 or 1.0
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (width, height),
           '<title>Mean session return per block of %d sessions, by policy and seed</title>' % block,
           '<rect width="100%" height="100%" fill="white"/>']
    for k, s in enumerate(seeds):
        x0 = ml + k * (pw + 20)
        svg.append('<text x="%d" y="%d" text-anchor="middle">seed %s</text>' % (x0 + pw // 2, mt - 10, s))
        svg.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (x0, mt, pw, ph))
        for t in range(0, int(ymax) + 1, 5):
            y = mt + ph - ph * t / ymax
            svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>' % (x0, x0 + pw, y, y))
            if k == 0:
                svg.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>' % (x0 - 5, y + 4, t))
        n = max(len(curves[(p, s)]) for p in policies)
        for j, p in enumerate(policies):
            pts = curves[(p, s)]
            if not pts:
                continue
            coords = " ".join("%.1f,%.1f" % (x0 + pw * (i + 0.5) / n, mt + ph - ph * v / ymax) for i, v in enumerate(pts))
            svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>' % (colours[j % len(colours)], coords, label(p)))
        total = n * block
        step = 10 ** max(0, len(str(total)) - 1)
        if total // step < 3:
            step //= 2 if step >= 2 else 1
        for xs_ in range(0, total + 1, step or 1):
            x = x0 + pw * xs_ / total
            svg.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/>' % (x, x, mt + ph, mt + ph + 4))
            svg.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, mt + ph + 16, "{:,}".format(xs_)))
        svg.append('<text x="%d" y="%d" text-anchor="middle">sessions (points: means of %d)</text>' % (x0 + pw // 2, mt + ph + 32, block))
    lx = ml + len(seeds) * (pw + 20)
    for j, p in enumerate(policies):
        y = mt + 20 + 20 * j
        svg.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>' % (lx, lx + 20, y, y, colours[j % len(colours)]))
        svg.append('<text x="%d" y="%d">%s</text>' % (lx + 26, y + 4, label(p)))
    svg.append('<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle">mean session return</text>' % (mt + ph // 2, mt + ph // 2))
    svg.append("</svg>")
    with open(os.path.join(out, "curves.svg"), "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
