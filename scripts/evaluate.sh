#!/usr/bin/env bash
# Reproduces docs/evaluation.md's table and learning curve: for each seed, the same
# simulated sessions under the simulator's fixed policies (random, popularity, and the
# oracle yardsticks myopic and oracle-longterm) and under the main job's learner in the
# closed loop (scripts/closed-loop.sh) at several discounts γ.
#
#   bash scripts/evaluate.sh [OUT_DIR]        (default var/eval)
#
# Environment: EVAL_SEEDS (default "7 8 21"), EVAL_SESSIONS (default 50000),
# EVAL_GAMMAS (default "0.9 0.5 0"), EVAL_TAIL (sessions at the end the second table is
# over; default 10000), EVAL_BLOCK (sessions per point of the curve; default 2500).
# EVAL_SIM_ARGS: simulator options for every run (another setting of the world, e.g.
# "--w-pay 0"); EVAL_JOB_SET: --set options for the learner's job (e.g.
# "--set operators.join.rewards.pay=0", so that the job learns the same reward).
# Writes OUT_DIR/results.md (the tables) and OUT_DIR/curves.svg (the picture), and the
# runs under OUT_DIR/runs/. Needs build/ (scripts/build.sh) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/eval}
seeds=${EVAL_SEEDS:-7 8 21}
sessions=${EVAL_SESSIONS:-50000}
gammas=${EVAL_GAMMAS:-0.9 0.5 0}
tail_n=${EVAL_TAIL:-10000}
block=${EVAL_BLOCK:-2500}
mkdir -p "$out/runs"
for seed in $seeds; do
  for p in random popularity myopic oracle-longterm; do
    d="$out/runs/$p-$seed"
    mkdir -p "$d"
    # shellcheck disable=SC2086
    build/rn_sim --policy $p --sessions "$sessions" --seed "$seed" ${EVAL_SIM_ARGS:-} --out /dev/null \
      --returns "$d/returns.txt" 2>"$d/sim.txt"
    echo "seed $seed $p: $(grep -o 'mean_session_return=[^ ]* ci95=\[[^]]*\]' "$d/sim.txt")"
  done
  for g in $gammas; do
    d="$out/runs/learned-g$g-$seed"
    # shellcheck disable=SC2086
    echo "seed $seed learned γ=$g: $(SIM_ARGS=${EVAL_SIM_ARGS:-} RUNNEL_GAMMA=$g \
      bash scripts/closed-loop.sh "$d" "$seed" "$sessions" ${EVAL_JOB_SET:-})"
  done
done
python3 scripts/eval_report.py "$out" "$tail_n" "$block" $seeds
echo "tables: $out/results.md   picture: $out/curves.svg"
