#!/usr/bin/env bash
# The main example: installs what is missing, builds, then closes the loop of an
# online RL recommender. Simulated users (build/rn_sim) ask the main job
# (jobs/guess-you-like.yaml) for every page over HTTP (POST /api/v1/recommend on
# :8090), as an app would, and write what they do to a log; the job follows that
# log: log_collector -> online_joiner -> experience_collector ->
# value_advantage_learner -> model versions (var/loop/models) -> inference ->
# the users' next pages. Status page on http://127.0.0.1:8081/ while it runs.
# The same users (same seed) are then shown random and popularity slates, and
# the three per-session returns are printed side by side.
#   bash scripts/run-example.sh [--hold]     (--hold: keep the job and its status page up)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
hold="${1:-}"
sessions=${RUNNEL_SESSIONS:-20000}
seed=${RUNNEL_SEED:-7}
serve=${RUNNEL_SERVE:-127.0.0.1:8090}
http=${RUNNEL_HTTP:-127.0.0.1:8081}
mkdir -p var/sim
rm -rf var/loop var/out/learned
mkdir -p var/loop
# The item-embedding table of this simulated world (the same for every policy).
build/rn_sim --sessions 0 --seed "$seed" --embeddings var/sim/embeddings.txt --out /dev/null 2>/dev/null
: >var/loop/log.jsonl

echo "== the loop: $sessions sessions of simulated users served by jobs/guess-you-like.yaml"
RUNNEL_LOG=var/loop/log.jsonl RUNNEL_FOLLOW=true RUNNEL_VAR=var/loop RUNNEL_MODELS=var/loop/models \
  RUNNEL_OUT=var/out/learned RUNNEL_SERVE="$serve" RUNNEL_HTTP="$http" \
  build/runnel run jobs/guess-you-like.yaml --fresh 2>var/loop/job.txt &
job=$!
trap 'kill -TERM $job 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 300); do
  curl -sf "http://$serve/api/v1/inference" >/dev/null 2>&1 && break
  kill -0 $job 2>/dev/null || { cat var/loop/job.txt; exit 1; }
  sleep 0.1
done
echo "   status page: http://$http/   serving: http://$serve/api/v1/recommend"
build/rn_sim --policy "http://$serve" --sessions "$sessions" --seed "$seed" \
  --out var/loop/log.jsonl --embeddings var/sim/embeddings.txt 2>var/sim/learned.txt
echo "   models published: $(ls var/loop/models 2>/dev/null | grep -c json || true)," \
  "serving version $(curl -sf "http://$serve/api/v1/inference" | sed -n 's/.*"model_version":\([0-9]*\).*/\1/p')"

for policy in random popularity; do
  build/rn_sim --policy $policy --sessions "$sessions" --seed "$seed" --out var/sim/$policy.jsonl \
    2>var/sim/$policy.txt
done
echo "== mean session return of the same $sessions sessions (seed $seed), 95% CI:"
for policy in random popularity learned; do
  printf '   %-11s %s\n' "$policy" "$(grep -o 'mean_session_return=.*' var/sim/$policy.txt | cut -d' ' -f1-3)"
done
if [ "$hold" = --hold ]; then
  echo "   (--hold: the job keeps following var/loop/log.jsonl; Ctrl-C stops it)"
  wait $job || true
  exit 0
fi
kill -TERM $job
wait $job || true
trap - EXIT INT TERM
grep -E "runnel: job|^  (collect|join|experience|learn|rank) " var/loop/job.txt | cut -c1-200 || true
echo "outputs: var/out/learned/{samples,experiences,recommendations,rejected}.jsonl, models in var/loop/models"
