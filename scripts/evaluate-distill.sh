#!/usr/bin/env bash
# Reproduces docs/evaluation.md's "Distillation (DRL-Rec)" table: for each seed, the same
# simulated sessions as the dueling-Q table (scripts/evaluate.sh: the simulator's defaults,
# the main job at γ = 0.5, 50,000 sessions) ranked in the closed loop by
#   teacher  the main job's learner (D = 16, the world's table), with a student learning
#            beside it (the teacher's versions are the plain learner's, byte for byte);
#   student  the distilled student (d = DISTILL_DIM, the table's principal components,
#            `runnel embed-reduce`), served instead: the simulator ranks with its store
#            while the teacher goes on learning from the student's own traffic;
#   small    the same small model without a teacher (the learner on the reduced table).
# Then bench_distill on seed SEED0's final models: scoring latency and cost per request,
# model size, and the learner's CPU per transition with and without a student.
#
#   bash scripts/evaluate-distill.sh [OUT_DIR]        (default var/eval-distill)
#
# Environment: EVAL_SEEDS (default "7 8"), EVAL_SESSIONS (default 50000), EVAL_TAIL
# (default 10000), DISTILL_DIM (default 4), DISTILL_SET (more --set options for the
# distilling runs, e.g. "--set operators.learn.distill_top=5"). Writes OUT_DIR/results.md
# and the runs under OUT_DIR/runs/. Needs build/ (scripts/build.sh) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/eval-distill}
seeds=${EVAL_SEEDS:-7 8}
sessions=${EVAL_SESSIONS:-50000}
tail_n=${EVAL_TAIL:-10000}
dim=${DISTILL_DIM:-4}
mkdir -p "$out/runs" "$out/tables"
out=$(cd "$out" && pwd)
for seed in $seeds; do
  world="$out/tables/world-$seed.txt" small="$out/tables/d$dim-$seed.txt"
  # the world's table depends on the seed alone: one session writes it
  build/rn_sim --policy random --sessions 1 --seed "$seed" --out /dev/null --embeddings "$world" \
    2>/dev/null
  build/runnel embed-reduce "$world" "$small" --dim "$dim" >/dev/null
  student=(--set "operators.learn.student_embeddings=$small")
  d="$out/runs/teacher-$seed"
  # shellcheck disable=SC2086
  echo "seed $seed teacher: $(bash scripts/closed-loop.sh "$d" "$seed" "$sessions" "${student[@]}" \
    --set "operators.learn.student_model_store=$d/student-models" ${DISTILL_SET:-})"
  d="$out/runs/student-$seed"
  # shellcheck disable=SC2086
  echo "seed $seed student: $(SIM_MODELS="$d/student-models" SIM_ARGS="--model-embeddings $small" \
    bash scripts/closed-loop.sh "$d" "$seed" "$sessions" "${student[@]}" \
    --set "operators.learn.student_model_store=$d/student-models" ${DISTILL_SET:-})"
  d="$out/runs/small-$seed"
  echo "seed $seed small: $(SIM_ARGS="--model-embeddings $small" bash scripts/closed-loop.sh "$d" \
    "$seed" "$sessions" --set "operators.learn.embeddings=$small")"
done
seed0=${seeds%% *}
r="$out/runs"
build/bench_distill --requests 20000 --rounds 5 \
  --model "teacher=$r/teacher-$seed0/models,$out/tables/world-$seed0.txt" \
  --model "student=$r/student-$seed0/student-models,$out/tables/d$dim-$seed0.txt" \
  --model "small=$r/small-$seed0/models,$out/tables/d$dim-$seed0.txt" \
  --train-student "$out/tables/d$dim-$seed0.txt" >"$out/bench.txt"
python3 - "$out" "$tail_n" "$dim" $seeds <<'EOF'
import math, re, sys
out, tail_n, dim, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def ci(path, last):
    xs = [float(l.split()[2]) for l in open(path)]
    if last: xs = xs[-last:]
    n = len(xs); m = sum(xs) / n
    v = sum((x - m) ** 2 for x in xs) / (n - 1)
    h = 1.96 * math.sqrt(v / n)
    return m, m - h, m + h
def cpu(run):
    t = open(f"{out}/runs/{run}/job.txt").read()
    m = re.search(r"head=learn records=(\d+) cpu_s=([0-9.]+)", t)
    # a job that missed its stop deadline prints no thread report
    return f"{float(m.group(2)) * 1e6 / int(m.group(1)):.1f}" if m else "—"
rows = [("teacher", "dueling-Q learner = teacher (D = 16)"),
        ("student", f"distilled student (d = {dim}), served"),
        ("small", f"small learner without a teacher (d = {dim})")]
lines = [f"Mean session return over the last {tail_n:,} sessions [95 % CI]:", "",
         "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | student / teacher |",
         "| --- |" + " --- |" * (len(seeds) + 1)]
means = {}
for key, label in rows:
    cells = []
    for s in seeds:
        m, lo, hi = ci(f"{out}/runs/{key}-{s}/returns.txt", tail_n)
        means[(key, s)] = m
        cells.append(f"{m:.2f} [{lo:.2f}, {hi:.2f}]")
    ratio = " / ".join(f"{means[(key, s)] / means[('teacher', s)]:.3f}" for s in seeds)
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
lines += ["", "Over all sessions:", "",
          "| model | " + " | ".join(f"seed {s}" for s in seeds) + " |",
          "| --- |" + " --- |" * len(seeds)]
for key, label in rows:
    cells = []
    for s in seeds:
        m, lo, hi = ci(f"{out}/runs/{key}-{s}/returns.txt", 0)
        cells.append(f"{m:.2f} [{lo:.2f}, {hi:.2f}]")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
lines += ["", "Learner thread CPU per transition in the loop (µs; job.txt, chain `learn`):", "",
          "| run | " + " | ".join(f"seed {s}" for s in seeds) + " |",
          "| --- |" + " --- |" * len(seeds)]
for key, label in rows:
    lines.append(f"| {label} | " + " | ".join(cpu(f"{key}-{s}") for s in seeds) + " |")
lines += ["", "```", open(f"{out}/bench.txt").read().rstrip(), "```", ""]
open(f"{out}/results.md", "w").write("\n".join(lines))
print("\n".join(lines))
EOF
echo "tables: $out/results.md"
