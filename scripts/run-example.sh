#!/usr/bin/env bash
# The main example: installs what is missing, builds, then for the simulator's
# random and popularity policies writes a simulated log (build/rn_sim) and runs
# the main job (jobs/guess-you-like.yaml: log_collector -> online_joiner ->
# experience_collector, RocksDB state, checkpoints, status page on
# http://127.0.0.1:8081/) over it, and prints each policy's per-session return
# as the simulator saw it and as the pipeline computed it.
#   bash scripts/run-example.sh [--hold]     (--hold: keep the last status page up)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
mkdir -p var/sim
sessions=${RUNNEL_SESSIONS:-2000}
build/rn_sim --policy random --sessions "$sessions" --seed 7 --out var/sim/random.jsonl \
  --embeddings var/sim/embeddings.txt 2>var/sim/random.txt
build/rn_sim --policy popularity --sessions "$sessions" --seed 7 --out var/sim/popularity.jsonl \
  2>var/sim/popularity.txt
hold=""
for policy in random popularity; do
  [ "$policy" = popularity ] && hold="${1:-}"
  echo "== policy $policy: $(grep -o 'mean_session_return=.*' "var/sim/$policy.txt")"
  RUNNEL_LOG="var/sim/$policy.jsonl" RUNNEL_OUT="var/out/$policy" \
    build/runnel run jobs/guess-you-like.yaml --fresh $hold 2>"var/sim/$policy-run.txt" &
  pid=$!
  trap 'kill -INT $pid 2>/dev/null' INT TERM
  wait $pid
  grep -E "runnel: (status|job)|^  (collect|join|experience) " "var/sim/$policy-run.txt" || true
  awk -v p="$policy" '
    / join / { for (i = 1; i <= NF; i++) if ($i == "reward_sum_milli") r = $(i + 1) }
    / experience / { for (i = 1; i <= NF; i++) if ($i == "sessions_ended") s = $(i + 1) }
    END { if (s) printf "   pipeline: %s sessions, per-session return %.4f (policy %s)\n", s, r / 1000 / s, p }
  ' "var/sim/$policy-run.txt"
done
echo "outputs: var/out/{random,popularity}/{samples,experiences,late-feedback,rejected}.jsonl"
