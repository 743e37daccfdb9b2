#!/usr/bin/env bash
# Offline RL on the simulator (docs/evaluation.md, "Other systems of the seeds",
# "Offline actors"): for each seed,
#   1. the popularity policy ranks SESSIONS sessions (build/rn_sim, defaults), writing the
#      log with its logging propensities; its per-session returns are the baseline;
#   2. the main job (jobs/guess-you-like.yaml, not following) reads that log once: the
#      online_joiner's hourly training output (out/training) and, as a side effect, the
#      dueling-Q learner's versions learnt from the same log (models/);
#   3. runnel train-offline trains each actor (reinforce-topk, ddpg, bcq) on the first
#      80 % of the lists by time;
#   4. runnel evaluate estimates each actor and the learner's last version on the last
#      20 % (SNIPS, the OPE of docs/evaluation.md), next to the logging policy;
#   5. rn_sim serves each model (model:DIR, live mode: one fixed version) to the same
#      seed's SESSIONS sessions — the world and the arrivals of the dueling-Q table;
#   6. bench_serve model times the scoring path of each model (seed 7 only).
# The tables go to OUT/results.md (scripts/offline_rl_report.py).
#
#   bash scripts/offline-rl.sh [OUT]      (ORL_SEEDS="7 8 21", ORL_SESSIONS=50000,
#                                          ORL_EPOCHS=5, ORL_TAIL=10000)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/offline-rl}
seeds=${ORL_SEEDS:-7 8 21}
sessions=${ORL_SESSIONS:-50000}
epochs=${ORL_EPOCHS:-5}
tail_n=${ORL_TAIL:-10000}
algos="reinforce-topk ddpg bcq"
mkdir -p "$out"
for seed in $seeds; do
  d="$out/$seed"
  rm -rf "$d"
  mkdir -p "$d"
  build/rn_sim --policy popularity --sessions "$sessions" --seed "$seed" --out "$d/log.jsonl" \
    --embeddings "$d/embeddings.txt" --returns "$d/popularity.returns" 2>"$d/popularity.sim"
  RUNNEL_LOG="$d/log.jsonl" RUNNEL_FOLLOW=false RUNNEL_VAR="$d/var" RUNNEL_OUT="$d/out" \
    RUNNEL_MODELS="$d/dueling-q" RUNNEL_EMBEDDINGS="$d/embeddings.txt" \
    RUNNEL_HTTP=127.0.0.1:0 RUNNEL_SERVE=127.0.0.1:0 \
    build/runnel run jobs/guess-you-like.yaml --fresh 2>"$d/job.txt"
  policies=(--policy logging --policy "model:$d/dueling-q")
  for a in $algos; do
    build/runnel train-offline --algo "$a" --data "$d/out/training" \
      --embeddings "$d/embeddings.txt" --out "$d/$a" --epochs "$epochs" --train-fraction 0.8 \
      --seed "$seed" >"$d/$a.train" 2>"$d/$a.log"
    policies+=(--policy "model:$d/$a")
  done
  build/runnel evaluate --data "$d/out/training" --train-fraction 0.8 \
    --embeddings "$d/embeddings.txt" "${policies[@]}" --bootstrap 1000 --seed 1 --json \
    >"$d/ope.json"
  for m in dueling-q $algos; do
    build/rn_sim --policy "model:$d/$m" --model-lag 0 --sessions "$sessions" --seed "$seed" \
      --out /dev/null --embeddings "$d/$m.embeddings" --returns "$d/$m.returns" 2>"$d/$m.sim"
    cmp -s "$d/embeddings.txt" "$d/$m.embeddings" # the same world
    if [ "$seed" = "$(echo $seeds | cut -d' ' -f1)" ]; then
      build/bench_serve model --store "$d/$m" --embeddings "$d/embeddings.txt" --seconds 2 \
        --candidates 50 >"$d/$m.serve"
    fi
  done
  echo "seed $seed: $(grep -o 'mean_session_return=[^ ]*' "$d/popularity.sim") (popularity)"
done
python3 scripts/offline_rl_report.py "$out" "$tail_n" $seeds
echo "tables: $out/results.md"
